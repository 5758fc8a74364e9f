package runtime

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// testNSEnv is set in the copy of the test binary that runs the tests
// inside a mount namespace of its own; it holds the tmpfs's path.
const testNSEnv = "_VSCRIPT_RUNTIME_TESTNS"

// TestMain runs the tests, as root, in a private mount namespace on a tmpfs:
// the test rootfs overlays are mounted there, the containers' mounts are made
// in namespaces of their own anyway, and this keeps any mistake away from the
// real host, and every test artefact on a tmpfs that vanishes with it.
func TestMain(m *testing.M) {
	if os.Geteuid() == 0 && os.Getenv(testNSEnv) == "" {
		os.Exit(runInMountNamespace())
	}
	if dir := os.Getenv(testNSEnv); dir != "" {
		if err := setupTestNamespace(dir); err != nil {
			fmt.Fprintln(os.Stderr, "test namespace:", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

func runInMountNamespace() int {
	dir, err := os.MkdirTemp("", "vscript-runtime-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.Remove(dir)
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Env = append(os.Environ(), testNSEnv+"="+dir)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "run tests in a mount namespace:", err)
		return 1
	}
	return 0
}

// setupTestNamespace cuts propagation to the host, then mounts a shared
// tmpfs: a container that forgot to make its mounts private would show
// them here, which TestNoMountLeft checks.
func setupTestNamespace(dir string) error {
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "mode=755"); err != nil {
		return err
	}
	if err := unix.Mount("", dir, "", unix.MS_SHARED, ""); err != nil {
		return err
	}
	return os.Setenv("TMPDIR", dir)
}

// needRoot skips a test that needs root, or fails it on CI.
func needRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		tb.Fatal("this test needs root (namespaces, mounts, cgroups)")
	}
	tb.Skip("needs root")
}

var (
	imageOnce sync.Once
	imageDir  string
	imageErr  error
)

const testPasswd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
`

const testGroup = `root:x:0:
daemon:x:1:
wheel:x:10:root
www-data:x:33:
staff:x:50:www-data,daemon
nogroup:x:65534:
`

// testImage builds, once, a busybox root filesystem as a lower layer:
// <imageDir>/busybox, with every applet linked under /bin.
func testImage(tb testing.TB) string {
	tb.Helper()
	imageOnce.Do(func() {
		imageDir, imageErr = os.MkdirTemp("", "image-")
		if imageErr != nil {
			return
		}
		imageErr = buildBusybox(filepath.Join(imageDir, "busybox"))
	})
	if imageErr != nil {
		tb.Fatalf("build test image: %v", imageErr)
	}
	return imageDir
}

func buildBusybox(root string) error {
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "tmp", "root", "home", "var/www", "usr/sbin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	bin, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), bin, 0o755); err != nil {
		return err
	}
	list, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		return err
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc/passwd"), []byte(testPasswd), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(root, "etc/group"), []byte(testGroup), 0o644)
}

var idSeq atomic.Int64

// newSpec returns a spec for args on the busybox image, with its root
// mounted in a fresh t.TempDir and output captured.
func newSpec(tb testing.TB, args ...string) (*Spec, *bytes.Buffer, *bytes.Buffer) {
	tb.Helper()
	needRoot(tb)
	var stdout, stderr bytes.Buffer
	return &Spec{
		ID:     fmt.Sprintf("rt%d-%d", os.Getpid(), idSeq.Add(1)),
		Rootfs: mountRootfs(tb, tb.TempDir()),
		Args:   args,
		Stdout: &stdout,
		Stderr: &stderr,
	}, &stdout, &stderr
}

// mountRootfs mounts an overlay of the busybox image under dir, as the
// engine does for a container before it calls Create; it is unmounted when
// the test ends.
func mountRootfs(tb testing.TB, dir string) Rootfs {
	tb.Helper()
	r := Rootfs{Upper: filepath.Join(dir, "upper"), Work: filepath.Join(dir, "work"), Merged: filepath.Join(dir, "merged")}
	for _, d := range []string{r.Upper, r.Work, r.Merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	data := "lowerdir=" + filepath.Join(testImage(tb), "busybox") + ",upperdir=" + r.Upper + ",workdir=" + r.Work
	if err := unix.Mount("overlay", r.Merged, "overlay", 0, data); err != nil {
		tb.Fatalf("mount the test rootfs: %v", err)
	}
	tb.Cleanup(func() { unix.Unmount(r.Merged, unix.MNT_DETACH) })
	return r
}

// run creates, starts and waits for the container, then destroys it.
func run(tb testing.TB, spec *Spec) (ExitStatus, error) {
	tb.Helper()
	c, err := Create(spec)
	if err != nil {
		return ExitStatus{}, err
	}
	defer func() {
		if err := c.Destroy(); err != nil {
			tb.Errorf("destroy: %v", err)
		}
	}()
	if err := c.Start(); err != nil {
		return ExitStatus{}, err
	}
	return c.Wait()
}

// mustRun runs the container and returns its stdout, failing the test on
// an error or a non-zero exit.
func mustRun(tb testing.TB, spec *Spec, stdout, stderr *bytes.Buffer) string {
	tb.Helper()
	st, err := run(tb, spec)
	if err != nil {
		tb.Fatalf("run %q: %v", spec.Args, err)
	}
	if st.Code != 0 {
		tb.Fatalf("run %q: exit %d\nstdout: %s\nstderr: %s", spec.Args, st.Code, stdout, stderr)
	}
	return stdout.String()
}

// startSleeper returns a started container whose PID 1 sleeps, destroyed
// at the end of the test.
func startSleeper(tb testing.TB, modify func(*Spec)) *Container {
	tb.Helper()
	spec, _, _ := newSpec(tb, "sleep", "1000")
	if modify != nil {
		modify(spec)
	}
	c, err := Create(spec)
	if err != nil {
		tb.Fatalf("create: %v", err)
	}
	tb.Cleanup(func() { c.Destroy() })
	if err := c.Start(); err != nil {
		tb.Fatalf("start: %v", err)
	}
	return c
}
