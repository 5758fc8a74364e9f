package builtins

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vscript/engine"
)

// fakeEngine answers like a lab would, without one.
type fakeEngine struct {
	execs []string
	fakeContainers
}

func (f *fakeEngine) Address(node string) (string, error) {
	switch node {
	case "host":
		return "198.51.100.2", nil
	case "world":
		return "198.51.100.1", nil
	}
	return "", fmt.Errorf("node %s: %w", node, engine.ErrNotFound)
}

func (f *fakeEngine) Exec(_ context.Context, node string, spec engine.ExecSpec) (*engine.ExecResult, error) {
	f.execs = append(f.execs, fmt.Sprintf("%s %q env=%q dir=%q stdin=%q", node, spec.Args, spec.Env, spec.Dir, spec.Stdin))
	if spec.Args[len(spec.Args)-1] == "false" {
		return &engine.ExecResult{ExitCode: 1, Stderr: "nope\n", Output: "nope\n"}, nil
	}
	return &engine.ExecResult{Stdout: "out\n", Output: "out\n"}, nil
}

func (f *fakeEngine) HTTPGet(_ context.Context, via, url string, timeout time.Duration) (*engine.HTTPResponse, error) {
	return &engine.HTTPResponse{Status: 200, Body: via + " " + url + " " + timeout.String(),
		Headers: map[string]string{"Content-Type": "text/plain"}}, nil
}

func (f *fakeEngine) Iptables(_ context.Context, table string) (string, error) {
	return "*" + table + "\nCOMMIT\n", nil
}

// run executes src as a script against a fake engine and returns what it printed.
func run(t *testing.T, src string) (string, *fakeEngine, error) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "lab.star")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	fake := &fakeEngine{}
	s := NewScript(&Env{Engine: fake, Ctx: context.Background(), ScriptDir: dir, Args: map[string]string{"k": "v"}, Stdout: &out})
	_, err := s.Exec(path)
	return out.String(), fake, err
}

func TestExecBuiltins(t *testing.T) {
	out, fake, err := run(t, `
r = host.exec("echo hi", env = {"A": "1"}, workdir = "/tmp", stdin = "in")
print(r.exit_code, r.ok, r.stdout == "out\n", str(r) == "out\n")
w = world.exec(["ls", "-l"])
print(host.ip, world.ip, args["k"])
print(host.iptables("filter"))
`)
	if err != nil {
		t.Fatal(FormatError(err))
	}
	want := "0 True True True\n198.51.100.2 198.51.100.1 v\n*filter\nCOMMIT\n\n"
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	wantExecs := []string{
		`host ["/bin/sh" "-c" "echo hi"] env=["A=1"] dir="/tmp" stdin="in"`,
		`world ["ls" "-l"] env=[] dir="" stdin=""`,
	}
	if fmt.Sprint(fake.execs) != fmt.Sprint(wantExecs) {
		t.Errorf("execs:\n%q\nwant:\n%q", fake.execs, wantExecs)
	}
}

func TestHTTPGetArguments(t *testing.T) {
	out, _, err := run(t, `
r = http_get("http://x/", via = world, timeout = "2s")
print(r.status, r.body, r.headers)
print(http_get("http://y/").body)
`)
	if err != nil {
		t.Fatal(FormatError(err))
	}
	want := "200 world http://x/ 2s {\"Content-Type\": \"text/plain\"}\nhost http://y/ 5s\n"
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`host.exec("false", check = True)`, `Error in host.exec: "false": exit code 1` + "\nnope"},
		{`host.exec([])`, `cmd: empty command`},
		{`host.exec(["a", 1])`, `cmd: want a list of strings, found int`},
		{`host.exec("x", env = {"A": 1})`, `env: want a dict of strings, got string: int`},
		{`http_get("http://x/", via = 3)`, `via: want host, world or a name, got int`},
		{`http_get("http://x/", timeout = "soon")`, `bad duration "soon"`},
		{`sleep()`, `sleep: missing argument for duration`},
		{`assert.eq(1, 2)`, `assertion failed: 1 != 2`},
		{`assert.true(None, "set")`, `assertion failed: set: None is not true`},
		{`assert.contains([1], 2)`, `assertion failed: 2 not in [1]`},
		{`host.nosuch`, `host has no .nosuch field or method`},
	} {
		_, _, err := run(t, tc.src)
		if err == nil {
			t.Errorf("%s: no error, want %q", tc.src, tc.want)
			continue
		}
		if got := FormatError(err); !strings.Contains(got, tc.want) {
			t.Errorf("%s:\n%s\nwant it to contain %q", tc.src, got, tc.want)
		}
	}
}

func TestWaitForCancelled(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "lab.star")
	os.WriteFile(path, []byte("wait_for(lambda: False, timeout = \"60s\")\n"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	s := NewScript(&Env{Engine: &fakeEngine{}, Ctx: ctx, ScriptDir: dir, Stdout: &bytes.Buffer{}})
	done := make(chan error)
	go func() { _, err := s.Exec(path); done <- err }()
	cancel()
	if err := <-done; err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("got %v, want a cancellation error", err)
	}
}

// Every registered builtin documents itself: a signature-less or doc-less
// registration would leave a hole in `vscript doc` and docs/reference.md.
func TestEveryBuiltinDocumented(t *testing.T) {
	for name, b := range funcs {
		if strings.TrimSpace(b.Doc) == "" {
			t.Errorf("%s: no doc", name)
		}
		if b.Fn == nil {
			t.Errorf("%s: no function", name)
		}
	}
	for name, g := range globals {
		if strings.TrimSpace(g.Doc) == "" {
			t.Errorf("%s: no doc", name)
		}
	}
	all, err := Doc("")
	if err != nil {
		t.Fatal(err)
	}
	for name := range funcs {
		if !strings.Contains(all, "`"+name+"(") {
			t.Errorf("%s missing from the reference", name)
		}
	}
}

// docs/reference.md is generated; this keeps it current (`make docs`).
func TestReferenceCurrent(t *testing.T) {
	want, err := Doc("")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join("..", "docs", "reference.md"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("docs/reference.md is out of date: run `make docs`")
	}
}
