package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	goruntime "runtime"
	"strconv"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"vscript/engine/reexec"
)

func init() {
	reexec.Register("container-init", containerInit)
	reexec.Register("container-exec", containerExec)
}

// containerInit runs as PID 1 of the new namespaces until it execve's the
// user's command. Every failure goes back to Create over the sync socket.
func containerInit() {
	// Capabilities and credentials are set per thread, and execve must come
	// from that same thread.
	goruntime.LockOSThread()
	cfgFile, sync, err := helperFDs()
	if err != nil {
		fmt.Fprintln(os.Stderr, "container-init:", err)
		os.Exit(1)
	}
	var cfg initConfig
	if err := json.NewDecoder(cfgFile).Decode(&cfg); err != nil {
		sync.fail(fmt.Errorf("read config: %w", err))
	}
	cfgFile.Close()

	unix.Umask(0) // device nodes and mountpoints get exactly their modes
	if err := setupRootfs(&cfg); err != nil {
		sync.fail(err)
	}
	if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
		sync.fail(&opError{"sethostname", err})
	}
	if cfg.NewNet {
		if err := loopbackUp(); err != nil {
			sync.fail(err)
		}
	}
	var master *os.File
	masterFD := -1
	if cfg.TTY {
		if master, err = setupTTY(true); err != nil {
			sync.fail(err)
		}
		masterFD = int(master.Fd())
	}
	unix.Umask(0o022)
	proc, err := prepareProcess(cfg.Args, cfg.Env, cfg.Cwd, cfg.User, cfg.Hostname, cfg.TTY)
	if err != nil {
		sync.fail(err)
	}
	// The parent-death signal belongs to a thread and is cleared when its
	// credentials change: set it (again, as runc does) on the thread that
	// will execve, now that they are final.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		sync.fail(&opError{"set parent death signal", err})
	}
	if err := sync.send(syncMsg{Type: "ready"}, masterFD); err != nil {
		os.Exit(1)
	}
	if master != nil {
		master.Close()
	}
	if m, err := sync.recv(); err != nil || m.Type != "start" {
		os.Exit(0) // destroyed before start
	}
	sync.fail(proc.exec())
}

// containerExec runs inside a running container's namespaces, which the cgo
// constructor joined before the Go runtime started (see nsenter.c).
func containerExec() {
	goruntime.LockOSThread()
	cfgFile, sync, err := helperFDs()
	if err != nil {
		fmt.Fprintln(os.Stderr, "container-exec:", err)
		os.Exit(1)
	}
	var cfg execConfig
	if err := json.NewDecoder(cfgFile).Decode(&cfg); err != nil {
		sync.fail(fmt.Errorf("read config: %w", err))
	}
	cfgFile.Close()
	if cfg.TTY {
		// Not a process group leader: nsenter's clone made us.
		if _, err := unix.Setsid(); err != nil {
			sync.fail(&opError{"setsid", err})
		}
		m, err := setupTTY(false)
		if err != nil {
			sync.fail(err)
		}
		if err := sync.send(syncMsg{Type: "pty"}, int(m.Fd())); err != nil {
			os.Exit(1)
		}
		m.Close()
	}
	hostname, _ := os.Hostname()
	proc, err := prepareProcess(cfg.Args, cfg.Env, cfg.Cwd, cfg.User, hostname, cfg.TTY)
	if err != nil {
		sync.fail(err)
	}
	if cfg.Handshake {
		// The parent moves us into the container's cgroups now, as late as
		// it can: a Go process needs threads, which a tight pids.max refuses.
		if err := sync.send(syncMsg{Type: "ready"}, -1); err != nil {
			os.Exit(1)
		}
		if m, err := sync.recv(); err != nil || m.Type != "start" {
			os.Exit(1)
		}
	}
	sync.fail(proc.exec())
}

// setupTTY opens a terminal in the container's own devpts, makes it the
// controlling terminal and stdio of this process and returns its master, for
// the caller to pass on. The caller must be a session leader. With console,
// the terminal is also bound over /dev/console, as runc does.
func setupTTY(console bool) (*os.File, error) {
	master, slave, err := pty.Open()
	if err != nil {
		return nil, &opError{"open terminal", err}
	}
	defer slave.Close()
	fd := int(slave.Fd())
	if err := unix.IoctlSetInt(fd, unix.TIOCSCTTY, 0); err != nil {
		master.Close()
		return nil, &opError{"set controlling terminal", err}
	}
	for std := 0; std < 3; std++ {
		if fd == std {
			continue
		}
		if err := unix.Dup3(fd, std, 0); err != nil {
			master.Close()
			return nil, &opError{"dup terminal", err}
		}
	}
	if console {
		dst, err := mountpoint("/", "/dev/console", false)
		if err == nil {
			err = unix.Mount(slave.Name(), dst, "", unix.MS_BIND, "")
		}
		if err != nil {
			master.Close()
			return nil, &opError{"bind /dev/console", err}
		}
	}
	return master, nil
}

// process is a command ready to execve.
type process struct {
	path      string
	args, env []string
}

// prepareProcess does everything between the namespaces and execve that can
// fail: the user, the environment, the working directory, credentials and
// capabilities, and the lookup of the command (as that user, in the
// command's PATH). It must run on a locked thread, the one that will execve.
func prepareProcess(args, env []string, cwd, user, hostname string, tty bool) (*process, error) {
	uid, gid, groups, home, err := ResolveUser("/", user)
	if err != nil {
		return nil, err
	}
	env = buildEnv(env, hostname, home, tty)
	if cwd != "" {
		if err := unix.Chdir(cwd); err != nil {
			return nil, fmt.Errorf("chdir to cwd (%q): %w", cwd, err)
		}
	}
	if err := setCredentials(uid, gid, groups); err != nil {
		return nil, err
	}
	// exec.LookPath reads PATH from our own environment.
	os.Setenv("PATH", lookupEnv(env, "PATH"))
	path, err := exec.LookPath(args[0])
	if errors.Is(err, exec.ErrDot) {
		err = nil // "." in the command's PATH is the command's business
	}
	if err != nil {
		return nil, commandError(err)
	}
	return &process{path: path, args: args, env: env}, nil
}

// exec replaces this process with the command; it returns only on failure.
// Descriptors this process inherited beyond stdio are not passed on.
func (p *process) exec() error {
	if err := closeExtraFDs(); err != nil {
		return err
	}
	err := unix.Exec(p.path, p.args, p.env)
	return commandError(fmt.Errorf("exec %s: %w", p.path, err))
}

// commandError gives a command that cannot run Docker's exit code: 127 when
// it is not there, 126 otherwise.
func commandError(err error) *CommandError {
	code := 126
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		code = 127
	}
	return &CommandError{Code: code, Msg: err.Error()}
}

// closeExtraFDs marks every descriptor above stderr close-on-exec, as runc
// does: vscript may have inherited some from whatever started it.
func closeExtraFDs() error {
	err := unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	// Kernels before 5.11 lack the flag.
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return &opError{"list descriptors", err}
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
	return nil
}
