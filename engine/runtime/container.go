package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"vscript/engine/errdefs"
	"vscript/engine/reexec"
)

// ExitStatus is how a container's command or an exec'd process ended.
type ExitStatus struct {
	// Code is Docker's exit code: the exit status, or 128+n after signal n.
	Code int
	// Signal is the signal that killed the process, 0 if it exited.
	Signal syscall.Signal
}

func exitStatus(ps *os.ProcessState) ExitStatus {
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if ok && ws.Signaled() {
		return ExitStatus{Code: 128 + int(ws.Signal()), Signal: ws.Signal()}
	}
	return ExitStatus{Code: ps.ExitCode()}
}

// Container is a created container: its init runs in the new namespaces.
type Container struct {
	id     string
	spec   *Spec
	cmd    *exec.Cmd
	sync   *parentSync
	cgroup *cgroup
	etcDir string

	pty      *output // the terminal's output, with TTY
	ptyOnce  sync.Once
	done     chan struct{} // closed when init has been reaped
	status   ExitStatus
	waitErr  error
	startMu  sync.Mutex
	started  bool
	destroy  sync.Once
	destroyE error
}

// initConfig is what init reads from its config pipe.
type initConfig struct {
	Hostname       string            `json:"hostname"`
	Rootfs         Rootfs            `json:"rootfs"`
	OverlayData    string            `json:"overlay_data"`
	ReadOnlyRootfs bool              `json:"readonly_rootfs,omitempty"`
	Args           []string          `json:"args"`
	Env            []string          `json:"env,omitempty"`
	Cwd            string            `json:"cwd,omitempty"`
	User           string            `json:"user,omitempty"`
	Mounts         []Mount           `json:"mounts,omitempty"`
	Etc            map[string]string `json:"etc,omitempty"` // container path -> host file
	NewNet         bool              `json:"new_net,omitempty"`
	TTY            bool              `json:"tty,omitempty"`
}

// Create starts the container's init and has it build the root filesystem;
// it returns when init is ready to execve the command (call Start), or with
// init's error, leaving no process, mount or cgroup behind. A command that
// is not found or cannot run is a *CommandError (exit code 127 or 126).
func Create(spec *Spec) (*Container, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	var data string
	if len(spec.Rootfs.Lower) > 0 {
		data, _ = spec.OverlayData()
	}
	c := &Container{id: spec.ID, spec: spec, done: make(chan struct{})}
	fail := func(err error) (*Container, error) {
		c.kill()
		c.cleanup()
		return nil, fmt.Errorf("container create %s: %w", spec.ID, err)
	}

	for _, d := range []string{spec.Rootfs.Upper, spec.Rootfs.Work, spec.Rootfs.Merged} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fail(err)
		}
	}
	etc, err := c.writeEtc()
	if err != nil {
		return fail(err)
	}
	if c.cgroup, err = newCgroup(spec.ID, spec.Resources); err != nil {
		c.cleanup()
		return nil, err // already "cgroup ID: controller: cause"
	}

	cfg := initConfig{
		Hostname: spec.hostname(), Rootfs: spec.Rootfs, OverlayData: data,
		ReadOnlyRootfs: spec.ReadOnlyRootfs, Args: spec.Args, Env: spec.Env, Cwd: spec.Cwd,
		User: spec.User, Mounts: sortedMounts(spec.Mounts), Etc: etc,
		NewNet: spec.NetNS == "", TTY: spec.TTY,
	}
	cfgR, err := configPipe(&cfg)
	if err != nil {
		return fail(err)
	}
	sync, syncChild, err := newSyncPair()
	if err != nil {
		cfgR.Close()
		return fail(err)
	}
	c.sync = sync

	cmd := reexec.Command("container-init")
	// One P is all init needs, and fewer threads start and die faster (at
	// execve). The command's environment is built from the spec, not ours.
	cmd.Env = append(cmd.Env, "GOMAXPROCS=1", envConfigPipe+"="+strconv.Itoa(configFD), envSyncPipe+"="+strconv.Itoa(syncFD))
	cmd.ExtraFiles = []*os.File{cfgR, syncChild}
	flags := uintptr(unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC)
	if spec.NetNS == "" {
		flags |= unix.CLONE_NEWNET
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: flags, Setsid: true, Pdeathsig: syscall.SIGKILL}
	if !spec.TTY {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = spec.Stdin, spec.Stdout, spec.Stderr
	}
	c.cmd = cmd

	started := make(chan error)
	go c.run(started)
	err = <-started
	cfgR.Close()
	syncChild.Close()
	if err != nil {
		c.cmd = nil
		return fail(err)
	}

	m, file, err := sync.recv()
	if err == nil && m.Type == "error" {
		err = m.err()
	} else if err == nil && m.Type != "ready" {
		err = fmt.Errorf("init said %q, want ready", m.Type)
	}
	if err != nil {
		if file != nil {
			file.Close()
		}
		return fail(c.initError(err))
	}
	if spec.TTY {
		if file == nil {
			return fail(errors.New("init sent no terminal"))
		}
		c.attachPty(file, spec.Stdin, spec.Stdout)
	}
	return c, nil
}

// configPipe returns the read end of a pipe holding cfg as JSON, written
// before the helper starts so that it never waits for us.
func configPipe(cfg any) (*os.File, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	// A pipe holds 64 KiB: more is written as the helper reads it.
	if len(b) <= 64<<10 {
		_, err = w.Write(b)
		w.Close()
		if err != nil {
			r.Close()
			return nil, err
		}
		return r, nil
	}
	go func() {
		w.Write(b)
		w.Close()
	}()
	return r, nil
}

// run starts init and waits for it from one locked OS thread: Pdeathsig
// fires when the thread that started a child exits, so that thread must live
// as long as the container. It also joins NetNS first when it is a path, and
// is never unlocked, so the Go runtime retires the thread with its namespace.
func (c *Container) run(started chan<- error) {
	goruntime.LockOSThread()
	if ns := c.spec.NetNS; ns != "" && ns != "host" {
		if err := setnsNet(ns); err != nil {
			started <- err
			close(c.done)
			return
		}
	}
	if err := c.cmd.Start(); err != nil {
		started <- fmt.Errorf("start init: %w", err)
		close(c.done)
		return
	}
	started <- nil
	err := c.cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		c.waitErr = err
	}
	c.status = exitStatus(c.cmd.ProcessState)
	close(c.done)
}

func setnsNet(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("join network namespace: %w", err)
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("join network namespace %s: %w", path, err)
	}
	return nil
}

// initError prefers what init reported over a broken pipe on our side.
func (c *Container) initError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE) {
		c.kill()
		<-c.done
		return fmt.Errorf("init exited early (status %d)", c.status.Code)
	}
	return err
}

// attachPty copies between the caller's streams and the terminal's master.
func (c *Container) attachPty(master *os.File, in io.Reader, out io.Writer) {
	o := copyPty(master, in, out)
	c.pty = &o
}

// ID returns the container's id.
func (c *Container) ID() string { return c.id }

// Pid returns the pid of the container's PID 1, in the caller's PID
// namespace: init before Start, the command after.
func (c *Container) Pid() int { return c.cmd.Process.Pid }

// Start moves init into the container's cgroups and lets it execve the
// command. (Init joins them only now: a Go process needs threads, which a
// tight pids.max would refuse it during set-up.) Start returns a
// *CommandError if execve fails; the container then exits with that code.
func (c *Container) Start() error {
	c.startMu.Lock()
	defer c.startMu.Unlock()
	if c.started {
		return fmt.Errorf("container start %s: already started: %w", c.id, errdefs.ErrConflict)
	}
	c.started = true
	if err := c.cgroup.add(c.Pid()); err != nil {
		return fmt.Errorf("container start %s: %w", c.id, err)
	}
	if err := c.sync.send(syncMsg{Type: "start"}); err != nil {
		return fmt.Errorf("container start %s: %w", c.id, err)
	}
	m, file, err := c.sync.recv()
	if file != nil {
		file.Close()
	}
	c.sync.close()
	switch {
	case errors.Is(err, io.EOF):
		return nil // init's end closed on execve
	case err != nil:
		return fmt.Errorf("container start %s: %w", c.id, err)
	case m.Type == "error":
		return fmt.Errorf("container start %s: %w", c.id, m.err())
	}
	return fmt.Errorf("container start %s: init said %q", c.id, m.Type)
}

// Wait waits for PID 1 to exit (and, with a TTY, for its output to be
// copied). It may be called any number of times, concurrently.
func (c *Container) Wait() (ExitStatus, error) {
	c.waitExit()
	if c.waitErr != nil {
		return c.status, fmt.Errorf("container wait %s: %w", c.id, c.waitErr)
	}
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
	if err := c.cmd.Process.Signal(sig); err != nil {
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
		c.kill()
		c.waitExit()
		c.destroyE = c.cleanup()
		if c.destroyE != nil {
			c.destroyE = fmt.Errorf("container rm %s: %w", c.id, c.destroyE)
		}
	})
	return c.destroyE
}

// kill SIGKILLs init if it was started; the whole PID namespace goes with it.
func (c *Container) kill() {
	if c.cmd != nil && c.cmd.Process != nil {
		c.cmd.Process.Kill()
	}
}

// cleanup removes what Create made besides the process; call it once init is
// reaped.
func (c *Container) cleanup() error {
	if c.cmd != nil && c.cmd.Process != nil {
		<-c.done
	}
	if c.sync != nil {
		c.sync.close()
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
