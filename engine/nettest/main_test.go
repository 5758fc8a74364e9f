package nettest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"vscript/engine"
	"vscript/engine/lab"
	"vscript/engine/reexec"
)

// TestMain runs the tests inside a fresh lab, as vscript runs a script: the
// bridges, veths and rules they make live and die in the lab's namespaces.
func TestMain(m *testing.M) {
	if reexec.Init() {
		return
	}
	inLab = lab.Inside()
	if os.Geteuid() == 0 && !inLab {
		code, err := lab.Spawn(os.Args)
		if err != nil {
			fmt.Fprintln(os.Stderr, "nettest: no lab:", err)
		}
		os.Exit(code)
	}
	code := m.Run()
	if shared.e != nil {
		shared.e.Close()
		os.RemoveAll(shared.root)
	}
	os.Exit(code)
}

// inLab says whether this process is a lab's PID 1.
var inLab bool

// shared is the test binary's Engine, made on first use.
var shared struct {
	once sync.Once
	root string
	e    *engine.Engine
	err  error
}

// newEngine is an Engine for the test's lab; the lab (one per test binary)
// is shared, so each test removes what it made.
func newEngine(tb testing.TB) *engine.Engine {
	tb.Helper()
	if !inLab {
		const msg = "needs root, to run in a lab of its own"
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	shared.once.Do(func() {
		shared.root, shared.err = os.MkdirTemp("", "vscript-nettest-")
		if shared.err != nil {
			return
		}
		shared.e, shared.err = engine.New(engine.Options{Root: shared.root, Seed: "nettest"})
		if shared.err == nil {
			// Make the built-in busybox image now, not inside a timer.
			_, shared.err = shared.e.Image("busybox")
		}
	})
	if shared.err != nil {
		tb.Fatal(shared.err)
	}
	return shared.e
}

// run creates and starts a container, and removes it when the test ends.
func run(tb testing.TB, e *engine.Engine, spec engine.RunSpec) *engine.ContainerInfo {
	tb.Helper()
	ctx := context.Background()
	info, err := e.Create(ctx, spec)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { e.Remove(ctx, info.ID, true, true) })
	if err := e.Start(ctx, info.ID); err != nil {
		tb.Fatal(err)
	}
	got, err := e.Container(info.ID)
	if err != nil {
		tb.Fatal(err)
	}
	return got
}
