package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"
)

// envEnter asks enter.c to make a lab of a program whatever its name.
const envEnter = "_VSCRIPT_LAB"

// Inside reports whether this process is the lab's PID 1, entered before Go
// started (enter.c).
func Inside() bool {
	in, _ := entered()
	return in
}

// Spawn runs this program again with the same arguments, and with envEnter
// set so that it enters a fresh lab before Go starts (enter.c); it returns
// the exit status it should end with. vscript itself enters without it, by
// its name; Spawn is for test binaries and renamed copies. Signals that
// would end vscript are passed on to the lab so it can tear down and report;
// a SIGKILL of vscript kills the lab through Pdeathsig.
func Spawn(args []string) (int, error) {
	if _, err := entered(); err != nil {
		// The constructor tried; re-trying the same unshare would only fail again.
		return 1, fmt.Errorf("lab create: unshare: %w", hintUnshare(err))
	}
	self, err := os.Executable()
	if err != nil {
		return 1, fmt.Errorf("lab create: %w", err)
	}
	cmd := exec.Command(self, args[1:]...)
	cmd.Args[0] = args[0] // the name the test harness dispatches on
	cmd.Env = append(os.Environ(), envEnter+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)

	started := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		// Pdeathsig is tied to the thread that forked the child: keep this
		// goroutine on its thread for the lab's whole life, and let the
		// thread die with it.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		done <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return 1, fmt.Errorf("lab create: %w", hintUnshare(err))
	}
	for {
		select {
		case sig := <-sigs:
			cmd.Process.Signal(sig)
		case err := <-done:
			return exitStatus(cmd.ProcessState, err), nil
		}
	}
}

// exitStatus turns a wait result into a shell-style exit code.
func exitStatus(ps *os.ProcessState, err error) int {
	if ps == nil {
		return 1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) || err == nil {
		return ps.ExitCode()
	}
	return 1
}

func hintUnshare(err error) error {
	if errors.Is(err, syscall.EPERM) {
		return fmt.Errorf("%w (creating namespaces needs root; run as root, or use --host)", err)
	}
	return err
}
