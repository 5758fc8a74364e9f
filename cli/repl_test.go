package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vscript/builtins"
)

// scriptFor runs src as a lab script without an engine (the REPL tests use
// only Starlark and sleep) and returns the run, as -i has it after the script.
func scriptFor(t *testing.T, src string, out io.Writer) *builtins.Script {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "lab.star")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	s := builtins.NewScript(&builtins.Env{Ctx: context.Background(), ScriptDir: dir, Stdout: out})
	if src != "" {
		if _, err := s.Exec(path); err != nil {
			t.Logf("script: %v", err)
		}
	}
	return s
}

func TestREPLDrivenByAPipe(t *testing.T) {
	var out, errOut bytes.Buffer
	s := scriptFor(t, "greeting = \"hi\"\nitems = [1]\ndef double(x):\n    return 2 * x\n", &out)
	input := strings.Join([]string{
		"1 + 2",
		"greeting",
		"undefined_name",
		"items.append(2)",
		"items",
		"def f(n):",
		"    return double(n) + 1",
		"",
		"f(20)",
		"_ * 2",
		"print('printed')",
		"1 +",
		"fail('boom')",
		"def last():",
		"    return 'no blank line before EOF'",
	}, "\n")
	var intr interrupter
	err := newREPL(s, &plainReader{bufio.NewReader(strings.NewReader(input))}, &out, &errOut, &intr).run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantOut := "3\n\"hi\"\n[1, 2]\n41\n82\nprinted\n"
	if out.String() != wantOut {
		t.Errorf("stdout:\n%s\nwant:\n%s", out.String(), wantOut)
	}
	for _, want := range []string{
		"<stdin>:1:1: undefined: undefined_name\n",
		"<stdin>:1:4: got newline, want primary expression\n",
		"<stdin>:1:5: in <expr>\nError in fail: fail: boom\n",
	} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut.String())
		}
	}
}

func TestREPLWithoutAScript(t *testing.T) {
	var out, errOut bytes.Buffer
	s := scriptFor(t, "", &out)
	var intr interrupter
	err := newREPL(s, &plainReader{bufio.NewReader(strings.NewReader("type(sleep)\n"))}, &out, &errOut, &intr).run(context.Background())
	if err != nil || out.String() != "\"builtin_function_or_method\"\n" || errOut.Len() != 0 {
		t.Errorf("err %v, stdout %q, stderr %q", err, out.String(), errOut.String())
	}
}

// TestREPLInterrupt: Ctrl-C stops the input being evaluated, even a blocked
// builtin, and the REPL goes on with the next one.
func TestREPLInterrupt(t *testing.T) {
	var out, errOut bytes.Buffer
	s := scriptFor(t, "", &out)
	var intr interrupter
	in := &plainReader{bufio.NewReader(strings.NewReader("sleep('1h')\n1 + 1\n"))}
	done := make(chan error, 1)
	go func() { done <- newREPL(s, in, &out, &errOut, &intr).run(context.Background()) }()
	// The interrupter holds a stop function only while an input runs.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		intr.mu.Lock()
		running := intr.stop != nil
		intr.mu.Unlock()
		if running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the REPL never started evaluating")
		}
	}
	intr.fire()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if out.String() != "2\n" {
		t.Errorf("stdout %q, want the input after the interrupted one", out.String())
	}
	if !strings.Contains(errOut.String(), "context canceled") && !strings.Contains(errOut.String(), "interrupted") {
		t.Errorf("stderr %q: want the interruption reported", errOut.String())
	}
}

// TestREPLEndsWithTheLab: a REPL waiting for input returns when the lab's
// context ends (SIGTERM), though the read itself cannot be interrupted.
func TestREPLEndsWithTheLab(t *testing.T) {
	var out, errOut bytes.Buffer
	s := scriptFor(t, "", &out)
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var intr interrupter
	done := make(chan error, 1)
	go func() { done <- newREPL(s, &plainReader{bufio.NewReader(pr)}, &out, &errOut, &intr).run(ctx) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}
