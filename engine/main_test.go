package engine

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"vscript/engine/reexec"
)

// testNSEnv marks the copy of the test binary that runs inside namespaces
// of its own.
const testNSEnv = "_VSCRIPT_ENGINE_TESTNS"

// TestMain hands re-exec'd helpers to reexec, and as root runs the tests in
// private mount, network and PID namespaces, as a lab would: whatever a test
// mounts, creates or leaves running goes with them.
func TestMain(m *testing.M) {
	if reexec.Init() {
		return
	}
	if os.Geteuid() == 0 && os.Getenv(testNSEnv) == "" {
		cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
		cmd.Env = append(os.Environ(), testNSEnv+"=1")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWNET | unix.CLONE_NEWPID,
			Pdeathsig:  syscall.SIGKILL,
		}
		if err := cmd.Run(); err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				os.Exit(ee.ExitCode())
			}
			fmt.Fprintln(os.Stderr, "engine tests: namespaces:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv(testNSEnv) != "" {
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			fmt.Fprintln(os.Stderr, "engine tests: make / private:", err)
			os.Exit(1)
		}
		if err := unix.Mount("proc", "/proc", "proc", 0, ""); err != nil {
			fmt.Fprintln(os.Stderr, "engine tests: mount proc:", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}
