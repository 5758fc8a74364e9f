package runtime

/*
#include "spawn.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"vscript/engine/errdefs"
)

// ExitStatus is how a container's command or an exec'd process ended.
type ExitStatus struct {
	// Code is Docker's exit code: the exit status, or 128+n after signal n.
	Code int
	// Signal is the signal that killed the process, 0 if it exited.
	Signal syscall.Signal
}

func exitStatus(ws syscall.WaitStatus) ExitStatus {
	if ws.Signaled() {
		return ExitStatus{Code: 128 + int(ws.Signal()), Signal: ws.Signal()}
	}
	return ExitStatus{Code: ws.ExitStatus()}
}

// Container is a created container: its PID 1 waits, set up, to execve the
// command.
type Container struct {
	id     string
	spec   *Spec
	prog   *program
	pid    int
	proc   *os.Process // PID 1, for signals; set once it is ready
	sync   *syncSocket
	cgroup *cgroup
	etcDir string

	// The child's descriptors: closed on our side once it has its copies.
	childFiles     []*os.File
	childFilesOnce sync.Once
	outputs        []output // stdio copies, without a TTY
	pty            *output  // the terminal's output, with TTY
	ptyOnce        sync.Once

	done     chan struct{} // closed when PID 1 has been reaped
	spawnErr error         // why it could not be started, if so
	status   ExitStatus
	startMu  sync.Mutex
	started  bool
	destroy  sync.Once
	destroyE error
}

// Create starts the container's PID 1 in new namespaces and has it build the
// root filesystem; it returns when PID 1 is ready to execve the command
// (call Start), or with its error, leaving no process or cgroup behind. The
// user and the command are resolved first, as the container will see its
// files: a command that is not found or cannot run is a *CommandError (exit
// code 127 or 126) and nothing is started.
func Create(spec *Spec) (*Container, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	c := &Container{id: spec.ID, spec: spec, done: make(chan struct{})}
	fail := func(err error) (*Container, error) {
		c.abort()
		return nil, fmt.Errorf("container create %s: %w", spec.ID, err)
	}

	etc, err := c.writeEtc()
	if err != nil {
		return fail(err)
	}
	// The parent-death signal belongs to the thread that started us: run
	// keeps that thread for as long as we live.
	ops := []op{
		numOp(C.VS_PDEATHSIG, int64(unix.SIGKILL), "set parent death signal"),
		simpleOp(C.VS_SETSID, "setsid"),
		// Device nodes and mountpoints get exactly their modes.
		numOp(C.VS_UMASK, 0, "umask"),
	}
	v := newView(spec.Rootfs.Merged)
	rootfs, err := rootfsOps(spec, v, etc)
	if err != nil {
		return fail(err)
	}
	ops = append(ops, rootfs...)
	proc, err := resolveProcess(v, spec.Args, spec.Env, spec.Cwd, spec.User, spec.hostname(), spec.TTY)
	if err != nil {
		return fail(err)
	}
	if c.cgroup, err = newCgroup(spec.ID, spec.Resources); err != nil {
		c.cleanup()
		return nil, err // already "cgroup ID: controller: cause"
	}

	ops = append(ops, op{code: C.VS_SETHOSTNAME, s: [4]string{spec.hostname()}, desc: "sethostname"})
	if spec.NetNS == "" {
		ops = append(ops, simpleOp(C.VS_LO_UP, "lo up"))
	}
	var keep []int
	if ns := spec.NetNS; ns != "" && ns != "host" {
		f, err := os.Open(ns)
		if err != nil {
			return fail(fmt.Errorf("join network namespace: %w", err))
		}
		c.childFiles = append(c.childFiles, f)
		keep = append(keep, int(f.Fd()))
		// First: sysfs shows the network namespace of whoever mounts it.
		ops = append([]op{setnsOp(int(f.Fd()), unix.CLONE_NEWNET, "join network namespace "+ns)}, ops...)
	}
	if spec.TTY {
		ops = append(ops, ttyOps(true)...)
	} else {
		stdio, err := c.stdio(spec.Stdin, spec.Stdout, spec.Stderr)
		if err != nil {
			return fail(err)
		}
		keep = append(keep, stdio[:]...)
		ops = append(ops, stdioOp(stdio))
	}
	ops = append(ops, processOps(proc, spec.Cwd)...)
	ops = append(ops,
		// Cleared by the change of credentials: again, as runc does.
		numOp(C.VS_PDEATHSIG, int64(unix.SIGKILL), "set parent death signal"),
		simpleOp(C.VS_READY, "wait for start"),
		execOp(proc.path, proc.args, proc.env))

	sync, childSync, err := newSyncPair()
	if err != nil {
		return fail(err)
	}
	c.sync = sync
	c.childFiles = append(c.childFiles, childSync)
	flags := uintptr(unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC)
	if spec.NetNS == "" {
		flags |= unix.CLONE_NEWNET
	}
	c.prog = compile(ops, flags, int(childSync.Fd()), keep)
	go c.run()

	master, err := c.waitReady()
	if err != nil {
		return fail(err)
	}
	if spec.TTY {
		if master == nil {
			return fail(errors.New("init sent no terminal"))
		}
		o := copyPty(master, spec.Stdin, spec.Stdout)
		c.pty = &o
	}
	return c, nil
}

// waitReady waits for PID 1 to report that it is set up, and returns the
// terminal's master it sent on the way, if any.
func (c *Container) waitReady() (*os.File, error) {
	var master *os.File
	for {
		r, file, err := c.sync.recv()
		if err == nil && r.kind == reportPty && master == nil && file != nil {
			master = file
			continue
		}
		if file != nil {
			file.Close()
		}
		if err == nil && r.kind == reportReady {
			c.pid = int(r.pid)
			c.proc, _ = os.FindProcess(c.pid) // a pidfd on Linux: never signals a stranger
			c.closeChildFiles()
			return master, nil
		}
		if master != nil {
			master.Close()
		}
		switch {
		case err != nil:
			<-c.done
			if c.spawnErr != nil {
				return nil, c.spawnErr
			}
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("init exited early (status %d)", c.status.Code)
			}
			return nil, err
		case r.kind == reportError:
			<-c.done // it exits after reporting
			return nil, c.prog.err(r)
		}
		return nil, fmt.Errorf("init sent record %d, want ready", r.kind)
	}
}

// process is a command resolved in a container's view, ready to execve.
type process struct {
	path      string
	args, env []string
	uid, gid  int
	groups    []int
}

// resolveProcess resolves the user, builds the environment and looks the
// command up, as the container will see its files.
func resolveProcess(v *view, args, env []string, cwd, user, hostname string, tty bool) (*process, error) {
	uid, gid, groups, home, err := resolveUser(v, user)
	if err != nil {
		return nil, err
	}
	env = buildEnv(env, hostname, home, tty)
	if cwd == "" {
		cwd = "/"
	}
	path, err := v.lookPath(args[0], lookupEnv(env, "PATH"), cwd, uid, groups)
	if err != nil {
		return nil, commandError(err)
	}
	return &process{path: path, args: args, env: env, uid: uid, gid: gid, groups: groups}, nil
}

// processOps are the steps from the namespaces to the command: the working
// directory (entered before the user loses root's reach), the credentials
// and capabilities, and a umask.
func processOps(p *process, cwd string) []op {
	var ops []op
	if cwd != "" {
		ops = append(ops, chdirOp(cwd, fmt.Sprintf("chdir to cwd (%q)", cwd)))
	}
	ops = append(ops, credentialOps(p.uid, p.gid, p.groups)...)
	return append(ops, numOp(C.VS_UMASK, 0o022, "umask"))
}

// commandError gives a command that cannot run Docker's exit code: 127 when
// it is not there, 126 otherwise.
func commandError(err error) *CommandError {
	code := 126
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		code = 127
	}
	return &CommandError{Code: code, Msg: err.Error()}
}

// stdio returns the descriptors the child gets as stdin, stdout and stderr
// for the caller's streams (/dev/null for nil), copying through pipes
// what is not a file.
func (c *Container) stdio(in io.Reader, out, errOut io.Writer) ([3]int, error) {
	var fds [3]int
	files, childEnds, outputs, err := pipeStdio(in, out, errOut)
	if err != nil {
		return fds, err
	}
	c.childFiles = append(c.childFiles, childEnds...)
	c.outputs = outputs
	for i, f := range files {
		if f == nil {
			if f, err = os.OpenFile(os.DevNull, os.O_RDWR, 0); err != nil {
				return fds, err
			}
			c.childFiles = append(c.childFiles, f)
		}
		// Fd also makes the file blocking, as the command expects.
		fds[i] = int(f.Fd())
	}
	return fds, nil
}

// run starts PID 1 and waits for it, from one locked OS thread: the parent
// death signal fires when the thread that started a child exits, so that
// thread must live as long as the container.
func (c *Container) run() {
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	pid, err := c.prog.spawn() // returns once the command runs, or PID 1 died
	c.prog.free()
	c.closeChildFiles()
	if err != nil {
		c.spawnErr = fmt.Errorf("start init: %w", err)
		drain(c.outputs, 0)
		close(c.done)
		return
	}
	var ws syscall.WaitStatus
	for {
		if _, err = syscall.Wait4(pid, &ws, 0, nil); err != syscall.EINTR {
			break
		}
	}
	// The output's last holders died with the PID namespace.
	drain(c.outputs, -1)
	c.status = exitStatus(ws)
	close(c.done)
}

func (c *Container) closeChildFiles() {
	c.childFilesOnce.Do(func() {
		for _, f := range c.childFiles {
			f.Close()
		}
	})
}

// ID returns the container's id.
func (c *Container) ID() string { return c.id }

// Pid returns the pid of the container's PID 1 in the caller's PID
// namespace: the same process before and after Start.
func (c *Container) Pid() int { return c.pid }

// Start moves PID 1 into the container's cgroups and lets it execve the
// command. Start returns a *CommandError if execve fails; the container then
// exits with that code.
func (c *Container) Start() error {
	c.startMu.Lock()
	defer c.startMu.Unlock()
	if c.started {
		return fmt.Errorf("container start %s: already started: %w", c.id, errdefs.ErrConflict)
	}
	c.started = true
	select {
	case <-c.done:
		return fmt.Errorf("container start %s: not running: %w", c.id, errdefs.ErrConflict)
	default:
	}
	if err := c.cgroup.add(c.pid); err != nil {
		return fmt.Errorf("container start %s: %w", c.id, err)
	}
	defer c.sync.close()
	if err := c.sync.sendGo(); err != nil {
		return fmt.Errorf("container start %s: %w", c.id, err)
	}
	r, file, err := c.sync.recv()
	if file != nil {
		file.Close()
	}
	switch {
	case errors.Is(err, io.EOF):
		return nil // closed by execve
	case err != nil:
		return fmt.Errorf("container start %s: %w", c.id, err)
	case r.kind == reportError:
		return fmt.Errorf("container start %s: %w", c.id, c.prog.err(r))
	}
	return fmt.Errorf("container start %s: init sent record %d", c.id, r.kind)
}

// Wait waits for PID 1 to exit and its output to be copied. It may be called
// any number of times, concurrently.
func (c *Container) Wait() (ExitStatus, error) {
	c.waitExit()
	return c.status, nil
}

// waitExit waits for PID 1 to be reaped and its terminal output copied.
func (c *Container) waitExit() {
	<-c.done
	c.ptyOnce.Do(func() {
		if c.pty != nil {
			// The terminal's last holder died with the PID namespace.
			drain([]output{*c.pty}, -1)
		}
	})
}

// Signal sends sig to PID 1. As in Docker, PID 1 ignores signals it has no
// handler for, except SIGKILL and SIGSTOP.
func (c *Container) Signal(sig syscall.Signal) error {
	select {
	case <-c.done:
		return fmt.Errorf("container kill %s: not running: %w", c.id, errdefs.ErrConflict)
	default:
	}
	if err := c.proc.Signal(sig); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("container kill %s: not running: %w", c.id, errdefs.ErrConflict)
		}
		return fmt.Errorf("container kill %s: %w", c.id, err)
	}
	return nil
}

// Destroy kills the container if it runs, waits for it and removes its
// cgroups and Etc files. Its mounts lived in its own mount namespace and went
// with its last process. Destroy is idempotent.
func (c *Container) Destroy() error {
	c.destroy.Do(func() {
		c.proc.Kill() // the whole PID namespace goes with it
		c.waitExit()
		c.destroyE = c.cleanup()
		if c.destroyE != nil {
			c.destroyE = fmt.Errorf("container rm %s: %w", c.id, c.destroyE)
		}
	})
	return c.destroyE
}

// abort undoes a Create that failed: PID 1, if there is one, and the rest.
func (c *Container) abort() {
	if c.proc != nil {
		c.proc.Kill()
	}
	c.cleanup()
}

// cleanup removes what Create made besides the process, once that is gone.
func (c *Container) cleanup() error {
	c.closeChildFiles()
	if c.sync != nil {
		// A PID 1 still setting up fails to report ready, one waiting for
		// start reads the end: either way it exits.
		c.sync.close()
	}
	if c.prog != nil {
		<-c.done
	}
	var errs []error
	if c.cgroup != nil {
		errs = append(errs, c.cgroup.remove())
	}
	if c.etcDir != "" {
		errs = append(errs, os.RemoveAll(c.etcDir))
	}
	return errors.Join(errs...)
}

// writeEtc writes the Etc files and returns their host paths by container path.
func (c *Container) writeEtc() (map[string]string, error) {
	if len(c.spec.Etc) == 0 {
		return nil, nil
	}
	dir := c.spec.EtcDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	c.etcDir = dir
	paths := map[string]string{}
	for p, content := range c.spec.Etc {
		host := filepath.Join(dir, filepath.Base(p))
		if err := os.WriteFile(host, content, 0o644); err != nil {
			return nil, err
		}
		paths[p] = host
	}
	return paths, nil
}
