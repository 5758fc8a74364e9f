package network

import (
	"errors"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Tests never touch the machine's own network namespace. When run as root,
// TestMain re-executes the test binary in a fresh network namespace, so even
// a test that forgets to isolate itself changes only a throwaway namespace;
// tests that need a pristine one run in a namespace of their own (inNetns).
const (
	envPrivateNetns = "VSCRIPT_NETWORK_TEST_NETNS"     // "1" in the re-executed binary
	envTestNetns    = "VSCRIPT_NETWORK_TEST_NETNS_RUN" // the test a nested child runs
)

func TestMain(m *testing.M) {
	if os.Geteuid() == 0 && os.Getenv(envPrivateNetns) == "" {
		runtime.LockOSThread() // Pdeathsig follows the thread that starts the child
		cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
		cmd.Args[0] = os.Args[0]
		cmd.Env = append(os.Environ(), envPrivateNetns+"=1")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case err == nil:
			os.Exit(0)
		case errors.As(err, &exit):
			os.Exit(exit.ExitCode())
		}
		// Could not make a namespace: run without one; privileged tests
		// then skip (or fail on CI) in needPrivateNetns.
		os.Stderr.WriteString("network tests: no private network namespace: " + err.Error() + "\n")
	}
	os.Exit(m.Run())
}

// needPrivateNetns stops tb unless the binary runs in its own network
// namespace as root. On CI a missing privilege is a failure, not a skip.
func needPrivateNetns(tb testing.TB) {
	tb.Helper()
	if os.Getenv(envPrivateNetns) == "1" {
		return
	}
	const msg = "needs root to run in a private network namespace"
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}

// inNetns reports whether the calling test should run its body here: it does
// in a child started in a fresh network namespace for just this test. In the
// parent it runs that child, fails t if the child failed, and returns false.
// Only for top-level tests (the name is used as a -test.run pattern).
func inNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(envTestNetns) == t.Name() {
		return true
	}
	needPrivateNetns(t)
	// Pdeathsig follows the thread that starts the child; keep it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := exec.Command("/proc/self/exe", "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), envTestNetns+"="+t.Name())
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s in its own network namespace: %v\n%s", t.Name(), err, out)
	}
	if testing.Verbose() {
		t.Logf("%s in its own network namespace:\n%s", t.Name(), out)
	}
	return false
}

// startInNetns starts argv in a new network namespace, as a container's
// first process, and kills it when the test ends. It returns the pid.
func startInNetns(tb testing.TB, argv ...string) int {
	tb.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %v in a new network namespace: %v", argv, err)
	}
	tb.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd.Process.Pid
}

// inContainer runs argv in the network namespace of pid.
func inContainer(tb testing.TB, pid int, argv ...string) ([]byte, error) {
	tb.Helper()
	return inContainerStdin(tb, pid, "", argv...)
}

func inContainerStdin(tb testing.TB, pid int, stdin string, argv ...string) ([]byte, error) {
	tb.Helper()
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		tb.Fatalf("nsenter (util-linux) is needed: %v", err)
	}
	cmd := exec.Command(nsenter, append([]string{"-t", strconv.Itoa(pid), "-n", "--"}, argv...)...)
	cmd.Stdin = strings.NewReader(stdin)
	return cmd.CombinedOutput()
}

const busybox = "/bin/busybox"

func needBusybox(tb testing.TB) {
	tb.Helper()
	if _, err := os.Stat(busybox); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%s is needed: %v", busybox, err)
		}
		tb.Skipf("%s is needed: %v", busybox, err)
	}
}
