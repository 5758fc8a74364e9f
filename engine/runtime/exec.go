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
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"vscript/engine/errdefs"
)

// execStreamGrace is how long Docker copies an exec's output after the
// process exited (a variable for tests).
var execStreamGrace = 2 * time.Second

// Process is a process exec'd into a container.
type Process struct {
	pid     int
	proc    *os.Process
	outputs []output
	done    chan struct{}
	status  ExitStatus
	waitErr error
}

// The namespaces an exec'd process joins, in runc's order: the mount
// namespace last, as /proc/PID/ns is not reachable from inside it.
var execNamespaces = []struct {
	name string
	flag int
}{
	{"ipc", unix.CLONE_NEWIPC}, {"uts", unix.CLONE_NEWUTS}, {"net", unix.CLONE_NEWNET},
	{"pid", unix.CLONE_NEWPID}, {"mnt", unix.CLONE_NEWNS},
}

// Exec runs spec's command in all namespaces and cgroups of the container
// whose PID 1 is pid (in the caller's PID namespace); PID 1 stays the
// container's command. It returns once the command runs, or with a
// *CommandError (code 127 or 126) if it cannot.
//
// The user and the command are resolved beforehand through /proc/PID/root,
// where the container's files are as it sees them. Then a child of ours
// joins the container's namespaces (a single-threaded process may join a
// mount namespace, a Go process never can) and forks, with CLONE_PARENT,
// the process that execve's the command: that one is inside the PID
// namespace, and our own child.
func Exec(pid int, spec *ExecSpec) (*Process, error) {
	subject := strconv.Itoa(pid)
	fail := func(err error) (*Process, error) {
		return nil, fmt.Errorf("container exec %s: %w", subject, err)
	}
	if len(spec.Args) == 0 {
		return fail(fmt.Errorf("no command specified: %w", errdefs.ErrInvalid))
	}

	// The child's descriptors; ours are closed once it has run.
	var files []*os.File
	closeFiles := func() {
		for _, f := range files {
			f.Close()
		}
		files = nil
	}
	defer closeFiles()
	use := func(f *os.File) int {
		files = append(files, f)
		return int(f.Fd())
	}
	var ops []op
	var keep []int
	// Opened first: a pid that is gone fails here, and they hold the
	// namespaces while we prepare.
	for _, ns := range execNamespaces {
		f, err := os.Open(fmt.Sprintf("/proc/%d/ns/%s", pid, ns.name))
		if err != nil {
			return fail(fmt.Errorf("join namespaces: %w", err))
		}
		fd := use(f)
		keep = append(keep, fd)
		ops = append(ops, setnsOp(fd, ns.flag, "join namespaces: setns "+ns.name))
	}
	proc, err := resolveProcess(newView(fmt.Sprintf("/proc/%d/root", pid)),
		spec.Args, spec.Env, spec.Cwd, spec.User, hostnameSlot, spec.TTY)
	if err != nil {
		return fail(err)
	}
	ops = append(ops, simpleOp(C.VS_CLONE_PARENT, "fork into the PID namespace"))

	// The process joins the container's cgroups itself, first thing.
	cgroups, err := cgroupsOf(pid)
	if err != nil {
		return fail(err)
	}
	for _, dir := range cgroups {
		f, err := os.OpenFile(filepath.Join(dir, "cgroup.procs"), os.O_WRONLY, 0)
		if err != nil {
			return fail(fmt.Errorf("join cgroup %s: %w", dir, err))
		}
		fd := use(f)
		keep = append(keep, fd)
		ops = append(ops, op{code: C.VS_WRITE, s: [4]string{"0"}, n: [3]int64{int64(fd)}, desc: "join cgroup " + dir})
	}

	p := &Process{done: make(chan struct{})}
	if spec.TTY {
		// A session leader, to own the terminal.
		ops = append(append(ops, simpleOp(C.VS_SETSID, "setsid")), ttyOps(false)...)
	} else {
		stdio, childEnds, outputs, err := pipeStdio(spec.Stdin, spec.Stdout, spec.Stderr)
		if err != nil {
			return fail(err)
		}
		files = append(files, childEnds...)
		p.outputs = outputs
		var fds [3]int
		for i, f := range stdio {
			if f == nil {
				if f, err = os.OpenFile(os.DevNull, os.O_RDWR, 0); err != nil {
					drain(p.outputs, 0)
					return fail(err)
				}
				files = append(files, f)
			}
			fds[i] = int(f.Fd()) // also makes it blocking, as the command expects
		}
		keep = append(keep, fds[:]...)
		ops = append(ops, stdioOp(fds))
	}
	ops = append(ops, processOps(proc, spec.Cwd)...)
	ops = append(ops, execOp(proc.path, proc.args, proc.env))

	sync, childSync, err := newSyncPair()
	if err != nil {
		drain(p.outputs, 0)
		return fail(err)
	}
	defer sync.close()
	prog := compile(ops, 0, use(childSync), keep)
	middle, err := prog.spawn() // returns once the command runs, or failed
	p.pid = prog.siblingPid()
	prog.free()
	closeFiles()
	if err != nil {
		drain(p.outputs, 0)
		return fail(fmt.Errorf("join namespaces: %w", err))
	}
	var ws syscall.WaitStatus
	for {
		if _, err := syscall.Wait4(middle, &ws, 0, nil); err != syscall.EINTR {
			break
		}
	}

	// From here on the process is our child and must be reaped on every
	// path: the container's PID 1 cannot finish exiting while a process of
	// its namespace waits for us as a zombie.
	var master *os.File
	var failure error
	for {
		r, file, err := sync.recv()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				failure = err
			} else if failure == nil && p.pid == 0 {
				failure = fmt.Errorf("join namespaces: exited with status %d", exitStatus(ws).Code)
			}
			break
		}
		if r.kind == reportPty && master == nil && file != nil {
			master = file
			continue
		}
		if file != nil {
			file.Close()
		}
		if failure == nil && r.kind == reportError {
			failure = prog.err(r)
		} else if failure == nil {
			failure = fmt.Errorf("exec sent record %d", r.kind)
		}
	}
	if p.pid != 0 {
		p.proc, _ = os.FindProcess(p.pid)
	}
	if failure == nil && spec.TTY && master == nil {
		failure = errors.New("exec sent no terminal")
	}
	if failure != nil {
		if p.proc != nil {
			p.proc.Kill()
			p.proc.Wait()
		}
		if master != nil {
			master.Close()
		}
		drain(p.outputs, 0)
		return fail(failure)
	}
	if master != nil {
		p.outputs = append(p.outputs, copyPty(master, spec.Stdin, spec.Stdout))
	}
	go p.reap()
	return p, nil
}

func (p *Process) reap() {
	ps, err := p.proc.Wait()
	if err != nil {
		p.waitErr = err
	} else {
		p.status = exitStatus(ps.Sys().(syscall.WaitStatus))
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
