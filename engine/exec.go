package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"vscript/engine/errdefs"
	"vscript/engine/event"
)

// ExecSpec is a program to run.
type ExecSpec struct {
	Args  []string // argv; a shell command is ["/bin/sh", "-c", cmd]
	Env   []string // KEY=VALUE added to the environment
	Dir   string   // working directory; "" keeps the current one
	Stdin []byte   // nil: no input
}

// ExecResult is what a finished program left behind.
type ExecResult struct {
	ExitCode int
	Stdout   string
	Stderr   string
	Output   string // stdout and stderr interleaved as written
}

// Exec runs spec on the lab node called on ("host" or "world") and waits for it.
// A program that exits non-zero is a result, not an error; one that cannot
// start is an error.
func (e *Engine) Exec(ctx context.Context, on string, spec ExecSpec) (*ExecResult, error) {
	start := time.Now()
	n, err := e.node(on)
	if err != nil {
		return nil, err
	}
	if len(spec.Args) == 0 {
		return nil, fmt.Errorf("%s exec: %w: empty command", on, errdefs.ErrInvalid)
	}
	if on == "host" {
		e.settleLinks() // `ip link` right after rm must not list the container's veth
	}
	cmd := exec.CommandContext(ctx, spec.Args[0], spec.Args[1:]...)
	cmd.Env = append(os.Environ(), spec.Env...)
	cmd.Dir = spec.Dir
	if spec.Stdin != nil {
		cmd.Stdin = bytes.NewReader(spec.Stdin)
	}
	var c Capture
	cmd.Stdout, cmd.Stderr = c.Stdout(), c.Stderr()
	if err := n.Start(cmd); err != nil {
		return nil, fmt.Errorf("%s exec %s: %w", on, spec.Args[0], err)
	}
	res := c.Result(cmd.Wait())
	linux := shellQuote(spec.Args)
	if on == "world" {
		linux = "ip netns exec world " + linux
	}
	e.emit(event.Event{Op: "exec", Subject: on, Linux: []string{linux}}, start)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return res, nil
}

// Capture collects a program's stdout and stderr separately and interleaved.
type Capture struct {
	mu                  sync.Mutex
	stdout, stderr, all bytes.Buffer
}

type captureStream struct {
	c   *Capture
	buf *bytes.Buffer
}

func (s captureStream) Write(p []byte) (int, error) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	s.buf.Write(p)
	return s.c.all.Write(p)
}

// Stdout and Stderr are the writers to give the program.
func (c *Capture) Stdout() io.Writer { return captureStream{c, &c.stdout} }
func (c *Capture) Stderr() io.Writer { return captureStream{c, &c.stderr} }

// Result turns the program's wait error into a result.
func (c *Capture) Result(waitErr error) *ExecResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &ExecResult{
		ExitCode: ExitCode(waitErr),
		Stdout:   c.stdout.String(),
		Stderr:   c.stderr.String(),
		Output:   c.all.String(),
	}
}

// ExitCode is a shell's view of a wait error: the exit status, or 128+n for
// a program killed by signal n.
func ExitCode(waitErr error) int {
	if waitErr == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(waitErr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return 1
}

// shellQuote renders argv as a command line a student could paste.
func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r == '/' || r == '.' || r == '-' || r == '_' || r == ':' || r == '=' || r == ',' ||
				r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
		}) < 0 {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}
