package runtime

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"vscript/engine/errdefs"
)

// execOut runs args in c and returns the exit code and combined output.
func execOut(t *testing.T, c *Container, spec ExecSpec) (int, string) {
	t.Helper()
	var out bytes.Buffer
	spec.Stdout, spec.Stderr = &out, &out
	p, err := Exec(c.Pid(), &spec)
	if err != nil {
		t.Fatalf("exec %q: %v", spec.Args, err)
	}
	st, err := p.Wait()
	if err != nil {
		t.Fatalf("exec %q: wait: %v", spec.Args, err)
	}
	return st.Code, out.String()
}

func TestExec(t *testing.T) {
	c := startSleeper(t, func(s *Spec) { s.Hostname = "box" })

	if code, out := execOut(t, c, ExecSpec{Args: []string{"cat", "/proc/1/cmdline"}}); code != 0 || out != "sleep\x001000\x00" {
		t.Errorf("PID 1 seen by exec: exit %d, %q", code, out)
	}
	if code, out := execOut(t, c, ExecSpec{Args: []string{"hostname"}}); code != 0 || out != "box\n" {
		t.Errorf("hostname: exit %d, %q", code, out)
	}
	code, out := execOut(t, c, ExecSpec{Args: []string{"sh", "-c", "id; pwd; echo $HOME $HOSTNAME $X"},
		User: "www-data", Cwd: "/tmp", Env: []string{"X=1"}})
	if want := "uid=33(www-data) gid=33(www-data) groups=33(www-data),50(staff)\n/tmp\n/var/www box 1\n"; code != 0 || out != want {
		t.Errorf("user/cwd/env: exit %d, %q, want %q", code, out, want)
	}
	if code, out := execOut(t, c, ExecSpec{Args: []string{"grep", "CapEff", "/proc/self/status"}}); code != 0 || out != "CapEff:\t00000000a80425fb\n" {
		t.Errorf("root's capabilities: exit %d, %q", code, out)
	}

	// The same filesystem: a file written by exec is in the container's upper layer.
	if code, out := execOut(t, c, ExecSpec{Args: []string{"touch", "/marker"}}); code != 0 {
		t.Fatalf("touch: exit %d, %q", code, out)
	}
	if _, err := os.Stat(filepath.Join(c.spec.Rootfs.Upper, "marker")); err != nil {
		t.Errorf("file written by exec: %v", err)
	}
	if code, _ := execOut(t, c, ExecSpec{Args: []string{"sh", "-c", "exit 5"}}); code != 5 {
		t.Errorf("exit code %d, want 5", code)
	}
	code, out = execOut(t, c, ExecSpec{Args: []string{"cat"}, Stdin: strings.NewReader("piped\n")})
	if code != 0 || out != "piped\n" {
		t.Errorf("stdin: exit %d, %q", code, out)
	}

	_, err := Exec(c.Pid(), &ExecSpec{Args: []string{"nosuch"}})
	var ce *CommandError
	if !errors.As(err, &ce) || ce.Code != 127 || !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("exec nosuch: %v, want a CommandError with code 127", err)
	}
	if _, err := Exec(c.Pid(), &ExecSpec{Args: []string{"true"}, Cwd: "/nosuch"}); err == nil || !strings.Contains(err.Error(), "chdir") {
		t.Errorf("exec in a missing cwd: %v", err)
	}
	if _, err := Exec(c.Pid(), &ExecSpec{Args: []string{"true"}, User: "nosuch"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("exec as a missing user: %v", err)
	}
	if _, err := Exec(1<<22+1, &ExecSpec{Args: []string{"true"}}); err == nil {
		t.Error("exec into a missing pid succeeded")
	}
}

// TestExecNamespaces checks from outside that an exec'd process is in every
// namespace of the container's PID 1, and that it can be signalled.
func TestExecNamespaces(t *testing.T) {
	c := startSleeper(t, nil)
	p, err := Exec(c.Pid(), &ExecSpec{Args: []string{"sleep", "1000"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"ipc", "uts", "net", "pid", "mnt"} {
		want, _ := os.Readlink("/proc/" + strconv.Itoa(c.Pid()) + "/ns/" + ns)
		got, err := os.Readlink("/proc/" + strconv.Itoa(p.Pid()) + "/ns/" + ns)
		if err != nil || got != want {
			t.Errorf("%s namespace: %q (%v), want %q", ns, got, err, want)
		}
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if st, err := p.Wait(); err != nil || st.Code != 137 {
		t.Errorf("killed exec: %+v, %v", st, err)
	}
}

// TestExecOutlivedByContainerExit checks that a container whose PID 1 exits
// while an exec'd process runs still exits: the exec'd process is killed
// with the namespace and reaped.
func TestExecOutlivedByContainerExit(t *testing.T) {
	c := startSleeper(t, nil)
	p, err := Exec(c.Pid(), &ExecSpec{Args: []string{"sleep", "1000"}})
	if err != nil {
		t.Fatal(err)
	}
	c.Signal(syscall.SIGKILL)
	if st, err := c.Wait(); err != nil || st.Code != 137 {
		t.Errorf("container: %+v, %v", st, err)
	}
	if st, err := p.Wait(); err != nil || st.Code != 137 {
		t.Errorf("exec'd process: %+v, %v", st, err)
	}
}

func TestExecTTY(t *testing.T) {
	c := startSleeper(t, nil)
	var out bytes.Buffer
	p, err := Exec(c.Pid(), &ExecSpec{
		Args: []string{"sh"}, TTY: true, Stdout: &out,
		Stdin: strings.NewReader("tty; [ -t 1 ] && echo \"term $TERM\"\nexit 4\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := p.Wait()
	if err != nil || st.Code != 4 {
		t.Fatalf("exit %+v, %v\n%s", st, err, out.String())
	}
	text := strings.ReplaceAll(out.String(), "\r\n", "\n")
	for _, want := range []string{"\n/dev/pts/", "\nterm xterm\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("terminal output %q lacks %q", text, want)
		}
	}
}

// TestExecLeftoverChild checks that Wait returns when the exec'd process has
// exited but a child it left behind still holds its output open.
func TestExecLeftoverChild(t *testing.T) {
	c := startSleeper(t, nil)
	defer func(g time.Duration) { execStreamGrace = g }(execStreamGrace)
	execStreamGrace = 10 * time.Millisecond
	code, out := execOut(t, c, ExecSpec{Args: []string{"sh", "-c", "echo started; sleep 1000 &"}})
	if code != 0 || out != "started\n" {
		t.Errorf("exit %d, %q", code, out)
	}
}
