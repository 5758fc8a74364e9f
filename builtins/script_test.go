package builtins

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"vscript/engine/errdefs"
)

// newTestScript writes files into a temporary directory and prepares a run
// of its lab.star against the fake engine.
func newTestScript(t *testing.T, files map[string]string) (*Script, string, *bytes.Buffer) {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	s := NewScript(&Env{Engine: &fakeEngine{}, Ctx: context.Background(), ScriptDir: dir, Stdout: &out})
	return s, filepath.Join(dir, "lab.star"), &out
}

func TestCallRunsAGlobalFunctionAfterTheTopLevel(t *testing.T) {
	s, path, out := newTestScript(t, map[string]string{"lab.star": `
seen = []
print("setup")
def test_ok():
    seen.append("ok")   # the script's globals stay mutable after its top level
    print("in test", seen)
def test_bad():
    assert.eq(1, 2)
`})
	if _, err := s.Exec(path); err != nil {
		t.Fatal(FormatError(err))
	}
	if err := s.Call("test_ok"); err != nil {
		t.Fatal(FormatError(err))
	}
	if got, want := out.String(), "setup\nin test [\"ok\"]\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
	err := s.Call("test_bad")
	if err == nil || !strings.Contains(FormatError(err), "lab.star:8:14: in test_bad") {
		t.Errorf("test_bad: got %v, want a backtrace through lab.star:8:14", err)
	}
	if err := s.Call("nope"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Call(nope) = %v, want ErrNotFound", err)
	}
	if err := s.Call("seen"); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("Call(seen) = %v, want ErrInvalid", err)
	}
}

func TestGlobalsOverlayTheScriptOnTheBuiltins(t *testing.T) {
	s, path, _ := newTestScript(t, map[string]string{"lab.star": "a = 1\nfail(\"stop\")\nb = 2\n"})
	if g := s.Globals(); g["host"] == nil || g["a"] != nil {
		t.Fatalf("before Exec: want the builtins alone, got %v", g.Keys())
	}
	if _, err := s.Exec(path); err == nil {
		t.Fatal("the script should fail")
	}
	g := s.Globals()
	if g["a"] == nil || g["b"] != nil || g["sleep"] == nil {
		t.Errorf("after a failed Exec: want a (bound before the failure) and the builtins, not b; got %v", g.Keys())
	}
	g["new"] = starlark.None
	if s.Globals()["new"] != nil {
		t.Error("Globals must return a new dict each time")
	}
}

func TestThreadUsesItsOwnContext(t *testing.T) {
	s, _, _ := newTestScript(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	th := s.Thread("repl", ctx)
	_, err := starlark.Call(th, s.Globals()["sleep"], starlark.Tuple{starlark.String("1h")}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("sleep on a thread whose context is done: got %v, want context.Canceled", err)
	}
}

func TestLoadFromTheREPLIsRelativeToTheScriptDir(t *testing.T) {
	s, _, _ := newTestScript(t, map[string]string{"lib.star": "answer = 42\n"})
	globals := s.Globals()
	opts := FileOptions()
	opts.LoadBindsGlobally = true
	lines := []string{`load("lib.star", "answer")` + "\n"}
	f, err := opts.ParseCompoundStmt(REPLFile, func() ([]byte, error) {
		line := lines[0]
		lines = lines[1:]
		return []byte(line), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := starlark.ExecREPLChunk(f, s.Thread("repl", context.Background()), globals); err != nil {
		t.Fatal(FormatError(err))
	}
	if got := globals["answer"]; got == nil || got.String() != "42" {
		t.Errorf("answer = %v, want 42", got)
	}
}
