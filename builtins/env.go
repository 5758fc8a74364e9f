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

	ContainerEngine
	VolumeEngine
	BuildEngine
	NetworkEngine
}

// ContainerEngine is the container and image part of Engine. Containers are
// named by name, id or unique id prefix wherever a ref is taken.
type ContainerEngine interface {
	// Create makes a container (docker create); Start starts it.
	Create(ctx context.Context, spec engine.RunSpec) (*engine.ContainerInfo, error)
	Start(ctx context.Context, ref string) error
	// Wait blocks until the container exits and returns its exit code.
	Wait(ctx context.Context, ref string) (int, error)
	// Stop sends SIGTERM (or the image's stop signal), then SIGKILL after timeout.
	Stop(ctx context.Context, ref string, timeout time.Duration) error
	// Kill sends a signal by name ("KILL", "SIGTERM", "HUP") or number ("9").
	Kill(ctx context.Context, ref string, signal string) error
	Restart(ctx context.Context, ref string, timeout time.Duration) error
	// Remove deletes a container; force kills a running one; volumes also
	// removes its anonymous volumes.
	Remove(ctx context.Context, ref string, force, volumes bool) error
	Container(ref string) (*engine.ContainerInfo, error)
	Containers(all bool) ([]*engine.ContainerInfo, error)
	// Logs returns what the container wrote to stdout and stderr, interleaved.
	Logs(ref string) (string, error)
	ContainerExec(ctx context.Context, ref string, spec engine.ContainerExecSpec) (*engine.ExecResult, error)
	// Inspect returns docker inspect's shape for the fields DESIGN lists.
	Inspect(ref string) (map[string]any, error)
	Diff(ref string) ([]engine.Change, error)
	// Commit makes the container's changes a new image tagged tag.
	Commit(ctx context.Context, ref, tag string) (*engine.ImageInfo, error)
	ReadFile(ref, path string) ([]byte, error)
	WriteFile(ref, path string, data []byte) error
	// Copy is docker cp: either side may be "CONTAINER:/path".
	Copy(ctx context.Context, src, dst string) error
	// Port returns the host port (as "ip:port") published for a container port ("80", "53/udp").
	Port(ref, port string) (string, error)
	// Shell runs an interactive shell in the container on vscript's terminal.
	Shell(ctx context.Context, ref string) error

	Image(ref string) (*engine.ImageInfo, error)
	Images() ([]*engine.ImageInfo, error)
	ImageHistory(ref string) ([]engine.HistoryEntry, error)
	ImageRemove(ref string, force bool) error
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
