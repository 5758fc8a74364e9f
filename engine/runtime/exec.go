package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"
	"time"

	"vscript/engine/errdefs"
	"vscript/engine/reexec"
)

// execStreamGrace is how long Docker copies an exec's output after the
// process exited (a variable for tests).
var execStreamGrace = 2 * time.Second

// execConfig is what the container-exec helper reads from its config pipe.
type execConfig struct {
	Args []string `json:"args"`
	Env  []string `json:"env,omitempty"`
	Cwd  string   `json:"cwd,omitempty"`
	User string   `json:"user,omitempty"`
	TTY  bool     `json:"tty,omitempty"`
	// Handshake: report "ready" and wait for "start" before execve.
	Handshake bool `json:"handshake,omitempty"`
}

// Process is a process exec'd into a container.
type Process struct {
	pid     int
	proc    *os.Process
	outputs []output
	done    chan struct{}
	status  ExitStatus
	waitErr error
}

// Exec runs spec's command in all namespaces and cgroups of the container
// whose PID 1 is pid (in the caller's PID namespace); PID 1 stays the
// container's command. It returns once the command runs, or with a
// *CommandError (code 127 or 126) if it cannot.
//
// The helper is started with the pid in its environment, and the cgo
// constructor of this package joins the namespaces and forks with
// CLONE_PARENT before the Go runtime starts: the process inside is then our
// child, and the helper in between has already exited.
func Exec(pid int, spec *ExecSpec) (*Process, error) {
	subject := strconv.Itoa(pid)
	fail := func(err error) (*Process, error) {
		return nil, fmt.Errorf("container exec %s: %w", subject, err)
	}
	if !nsenterBuiltin {
		return fail(errdefs.WithHint(fmt.Errorf("built without cgo: %w", errdefs.ErrUnavailable),
			"build vscript with CGO_ENABLED=1"))
	}
	if len(spec.Args) == 0 {
		return fail(fmt.Errorf("no command specified: %w", errdefs.ErrInvalid))
	}

	// An exec'd process joins the container's cgroups right before execve
	// (a Go process needs threads, which a tight pids.max would refuse), at
	// the price of one more round trip; without cgroups there is none.
	cgroups, err := cgroupsOf(pid)
	if err != nil {
		return fail(err)
	}
	cfg := execConfig{Args: spec.Args, Env: spec.Env, Cwd: spec.Cwd, User: spec.User, TTY: spec.TTY,
		Handshake: len(cgroups) > 0}
	cfgR, err := configPipe(&cfg)
	if err != nil {
		return fail(err)
	}
	sync, syncChild, err := newSyncPair()
	if err != nil {
		cfgR.Close()
		return fail(err)
	}
	defer sync.close()
	p := &Process{done: make(chan struct{})}
	var stdio [3]*os.File
	var childEnds []*os.File
	if !spec.TTY {
		stdio, childEnds, p.outputs, err = pipeStdio(spec.Stdin, spec.Stdout, spec.Stderr)
		if err != nil {
			cfgR.Close()
			syncChild.Close()
			return fail(err)
		}
	}

	cmd := reexec.Command("container-exec")
	// One P is all the helper needs, and fewer threads start and die faster.
	cmd.Env = append(cmd.Env, "GOMAXPROCS=1", envNsenter+"="+subject,
		envConfigPipe+"="+strconv.Itoa(configFD), envSyncPipe+"="+strconv.Itoa(syncFD))
	cmd.ExtraFiles = []*os.File{cfgR, syncChild}
	// A nil *os.File in an io.Reader is not a nil Reader to exec.Cmd.
	if stdio[0] != nil {
		cmd.Stdin = stdio[0]
	}
	if stdio[1] != nil {
		cmd.Stdout = stdio[1]
	}
	if stdio[2] != nil {
		cmd.Stderr = stdio[2]
	}
	err = cmd.Start()
	for _, f := range append(childEnds, cfgR, syncChild) {
		f.Close()
	}
	failEarly := func(err error) (*Process, error) {
		drain(p.outputs, 0)
		return fail(err)
	}
	if err != nil {
		return failEarly(fmt.Errorf("start helper: %w", err))
	}
	m, _, err := sync.recv()
	cmd.Wait() // the helper exits right after forking
	switch {
	case err != nil:
		return failEarly(fmt.Errorf("join namespaces: helper exited (%v)", cmd.ProcessState))
	case m.Type == "error":
		return failEarly(m.err())
	case m.Type != "pid":
		return failEarly(fmt.Errorf("helper said %q, want pid", m.Type))
	}

	// From here on the process is our child and must be reaped on every
	// path: the container's PID 1 cannot finish exiting while a process of its
	// namespace waits for us as a zombie.
	p.pid = m.Pid
	if p.proc, err = os.FindProcess(m.Pid); err != nil {
		return fail(err)
	}
	abort := func(err error) (*Process, error) {
		p.proc.Kill()
		p.proc.Wait()
		drain(p.outputs, 0)
		return fail(err)
	}
	m, file, err := sync.recv()
	if err == nil && m.Type == "pty" {
		if file == nil {
			return abort(errors.New("helper sent no terminal"))
		}
		p.outputs = append(p.outputs, copyPty(file, spec.Stdin, spec.Stdout))
		m, _, err = sync.recv()
	}
	if cfg.Handshake && err == nil && m.Type == "ready" {
		if err := addToCgroups(cgroups, p.pid); err != nil {
			return abort(err)
		}
		if err := sync.send(syncMsg{Type: "start"}); err != nil {
			return abort(err)
		}
		m, _, err = sync.recv()
	}
	switch {
	case errors.Is(err, io.EOF):
		go p.reap() // the helper's end closed on execve: the command runs
		return p, nil
	case err != nil:
		return abort(err)
	case m.Type == "error":
		return abort(m.err())
	}
	return abort(fmt.Errorf("helper said %q", m.Type))
}

func (p *Process) reap() {
	ps, err := p.proc.Wait()
	if err != nil {
		p.waitErr = err
	} else {
		p.status = exitStatus(ps)
	}
	// As Docker: output still held open by the process's leftover children
	// (`sh -c 'daemon &'`) is copied for a grace period, then cut.
	drain(p.outputs, execStreamGrace)
	close(p.done)
}

// Pid returns the process's pid in the caller's PID namespace.
func (p *Process) Pid() int { return p.pid }

// Wait waits for the process to exit and its output to be copied. Output
// that children it left behind keep open is copied for execStreamGrace
// more, as Docker does, then cut.
func (p *Process) Wait() (ExitStatus, error) {
	<-p.done
	if p.waitErr != nil {
		return p.status, fmt.Errorf("exec wait %d: %w", p.pid, p.waitErr)
	}
	return p.status, nil
}

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error {
	if err := p.proc.Signal(sig); err != nil {
		return fmt.Errorf("exec kill %d: %w", p.pid, err)
	}
	return nil
}
