package builtins

import (
	"context"
	"io"
	"time"

	"go.starlark.net/starlark"

	"vscript/engine"
)

// Engine is what the builtins need of the engine. engine.Engine implements
// it; tests use a fake.
type Engine interface {
	// Address is the IPv4 address of a lab node: "host" or "world".
	Address(node string) (string, error)
	// Exec runs a program on a lab node and waits for it.
	Exec(ctx context.Context, node string, spec engine.ExecSpec) (*engine.ExecResult, error)
	// HTTPGet fetches a URL from inside a node's network namespace.
	HTTPGet(ctx context.Context, via, url string, timeout time.Duration) (*engine.HTTPResponse, error)
	// Iptables lists the lab host's rules of a table, iptables-save style.
	Iptables(ctx context.Context, table string) (string, error)
}

// Env is the state of one run, kept in the thread's locals.
type Env struct {
	Engine    Engine
	Ctx       context.Context // cancelled on Ctrl-C; blocking builtins select on it
	ScriptDir string          // directory of the main script; relative paths start here
	Args      map[string]string
	Stdout    io.Writer // where print() goes
}

const envKey = "vscript.env"

// env returns the run state of thread.
func env(thread *starlark.Thread) *Env {
	return thread.Local(envKey).(*Env)
}
