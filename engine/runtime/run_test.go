package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"vscript/engine/errdefs"
)

func TestExitCodes(t *testing.T) {
	t.Run("zero", func(t *testing.T) {
		spec, _, _ := newSpec(t, "true")
		if st, err := run(t, spec); err != nil || st.Code != 0 {
			t.Fatalf("true: %+v, %v", st, err)
		}
	})
	t.Run("three", func(t *testing.T) {
		spec, _, _ := newSpec(t, "sh", "-c", "exit 3")
		if st, err := run(t, spec); err != nil || st.Code != 3 || st.Signal != 0 {
			t.Fatalf("exit 3: %+v, %v", st, err)
		}
	})
	t.Run("not found", func(t *testing.T) {
		spec, _, _ := newSpec(t, "nosuch")
		_, err := Create(spec)
		var ce *CommandError
		if !errors.As(err, &ce) || ce.Code != 127 {
			t.Fatalf("Create: %v, want a CommandError with code 127", err)
		}
		if want := `exec: "nosuch": executable file not found in $PATH`; !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
		if !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("error %v is not ErrNotFound", err)
		}
	})
	t.Run("not executable", func(t *testing.T) {
		spec, _, _ := newSpec(t, "/etc/passwd")
		_, err := Create(spec)
		var ce *CommandError
		if !errors.As(err, &ce) || ce.Code != 126 {
			t.Fatalf("Create: %v, want a CommandError with code 126", err)
		}
	})
	t.Run("execve fails at start", func(t *testing.T) {
		// An executable script whose interpreter is missing passes the
		// lookup, and execve itself fails with ENOENT.
		spec, _, _ := newSpec(t, "/run.sh")
		if err := os.WriteFile(filepath.Join(spec.Rootfs.Merged, "run.sh"), []byte("#!/nosuch\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		c, err := Create(spec)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Destroy()
		err = c.Start()
		var ce *CommandError
		if !errors.As(err, &ce) || ce.Code != 127 {
			t.Fatalf("Start: %v, want a CommandError with code 127", err)
		}
		if st, err := c.Wait(); err != nil || st.Code != 127 {
			t.Fatalf("Wait: %+v, %v; want exit 127", st, err)
		}
	})
	t.Run("SIGKILL", func(t *testing.T) {
		c := startSleeper(t, nil)
		if err := c.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		st, err := c.Wait()
		if err != nil || st.Code != 137 || st.Signal != syscall.SIGKILL {
			t.Fatalf("Wait: %+v, %v; want 137 by SIGKILL", st, err)
		}
		if err := c.Signal(syscall.SIGKILL); !errors.Is(err, errdefs.ErrConflict) {
			t.Errorf("Signal after exit: %v, want ErrConflict", err)
		}
	})
}

func TestPID1IsTheCommand(t *testing.T) {
	spec, stdout, stderr := newSpec(t, "cat", "/proc/1/cmdline")
	if out := mustRun(t, spec, stdout, stderr); out != "cat\x00/proc/1/cmdline\x00" {
		t.Errorf("/proc/1/cmdline = %q", out)
	}
}

func TestHostname(t *testing.T) {
	spec, stdout, stderr := newSpec(t, "sh", "-c", "hostname; cat /etc/hostname")
	spec.Hostname = "web1"
	spec.Etc = map[string][]byte{"/etc/hostname": []byte("web1\n")}
	if out := mustRun(t, spec, stdout, stderr); out != "web1\nweb1\n" {
		t.Errorf("output %q", out)
	}
	if _, err := os.Stat(spec.EtcDir()); !os.IsNotExist(err) {
		t.Errorf("etc dir left after Destroy: %v", err)
	}

	spec, stdout, stderr = newSpec(t, "hostname")
	spec.ID = "0123456789abcdef0123"
	if out := mustRun(t, spec, stdout, stderr); out != "0123456789ab\n" {
		t.Errorf("default hostname %q, want the id's first 12 characters", out)
	}
}

func TestEnvCwdUser(t *testing.T) {
	spec, stdout, stderr := newSpec(t, "sh", "-c", `echo "$PATH|$HOME|$HOSTNAME|$FOO|$TERM"; pwd; id`)
	spec.Hostname = "h1"
	spec.Env = []string{"FOO=bar"}
	spec.Cwd = "/work/dir"
	spec.User = "www-data"
	want := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|/var/www|h1|bar|\n" +
		"/work/dir\n" +
		"uid=33(www-data) gid=33(www-data) groups=33(www-data),50(staff)\n"
	if out := mustRun(t, spec, stdout, stderr); out != want {
		t.Errorf("output\n%s\nwant\n%s", out, want)
	}

	spec, stdout, stderr = newSpec(t, "sh", "-c", `echo "$PATH"; id`)
	spec.Env = []string{"PATH=/bin"}
	spec.User = "1000:50"
	if out := mustRun(t, spec, stdout, stderr); out != "/bin\nuid=1000 gid=50(staff) groups=50(staff)\n" {
		t.Errorf("output %q", out)
	}

	spec, _, _ = newSpec(t, "true")
	spec.User = "nosuch"
	_, err := Create(spec)
	if err == nil || !strings.Contains(err.Error(), "unable to find user nosuch: no matching entries in passwd file") {
		t.Fatalf("Create as a missing user: %v", err)
	}
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("error %v is not ErrNotFound", err)
	}
}

func capLine(status, name string) string {
	for _, l := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func TestCapabilities(t *testing.T) {
	for _, tc := range []struct{ user, eff string }{
		{"", "00000000a80425fb"},
		{"nobody", "0000000000000000"},
	} {
		spec, stdout, stderr := newSpec(t, "cat", "/proc/self/status")
		spec.User = tc.user
		status := mustRun(t, spec, stdout, stderr)
		for name, want := range map[string]string{
			"CapEff": tc.eff, "CapPrm": tc.eff, "CapBnd": "00000000a80425fb",
			"CapInh": "0000000000000000", "CapAmb": "0000000000000000", "NoNewPrivs": "0",
		} {
			if got := capLine(status, name); got != want {
				t.Errorf("user %q: %s = %s, want %s", tc.user, name, got, want)
			}
		}
	}
}

// runShell runs script in a fresh container and returns its exit code and
// combined output.
func runShell(t *testing.T, script string, modify func(*Spec)) (int, string) {
	t.Helper()
	spec, stdout, _ := newSpec(t, "sh", "-c", script)
	spec.Stderr = stdout
	if modify != nil {
		modify(spec)
	}
	st, err := run(t, spec)
	if err != nil {
		t.Fatalf("run %q: %v", script, err)
	}
	return st.Code, stdout.String()
}

func TestConfinement(t *testing.T) {
	t.Run("mount refused", func(t *testing.T) {
		code, out := runShell(t, "mount -t tmpfs none /tmp", nil)
		if code == 0 || !strings.Contains(strings.ToLower(out), "permission denied") && !strings.Contains(out, "Operation not permitted") {
			t.Errorf("mount in the container: exit %d, %q", code, out)
		}
	})
	t.Run("/proc/sys read-only", func(t *testing.T) {
		code, out := runShell(t, "echo x > /proc/sys/kernel/domainname", nil)
		if code == 0 || !strings.Contains(out, "Read-only file system") {
			t.Errorf("write to /proc/sys: exit %d, %q", code, out)
		}
	})
	t.Run("/sys read-only", func(t *testing.T) {
		code, out := runShell(t, "touch /sys/x", nil)
		if code == 0 || !strings.Contains(out, "Read-only file system") {
			t.Errorf("touch /sys/x: exit %d, %q", code, out)
		}
	})
	t.Run("masked paths", func(t *testing.T) {
		// Those this kernel has: /dev/null over files, an empty read-only
		// tmpfs over directories.
		var script strings.Builder
		var want strings.Builder
		for _, p := range maskedPaths {
			fi, err := os.Stat(p)
			if err != nil {
				continue
			}
			if fi.IsDir() {
				fmt.Fprintf(&script, "echo %s $(ls %s | wc -l) $(grep -c ' %s ro,.* tmpfs ' /proc/self/mountinfo)\n", p, p, p)
				fmt.Fprintf(&want, "%s 0 1\n", p)
			} else {
				fmt.Fprintf(&script, "echo %s $(stat -c %%t:%%T %s) $(wc -c < %s)\n", p, p, p)
				fmt.Fprintf(&want, "%s 1:3 0\n", p)
			}
		}
		if want.Len() == 0 {
			t.Skip("this kernel has none of the masked paths")
		}
		code, out := runShell(t, script.String(), nil)
		if code != 0 || out != want.String() {
			t.Errorf("exit %d\n got %q\nwant %q", code, out, want.String())
		}
	})
	t.Run("minimal /dev", func(t *testing.T) {
		code, out := runShell(t, "ls /dev", nil)
		want := []string{"fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm",
			"stderr", "stdin", "stdout", "tty", "urandom", "zero"}
		if _, err := os.Stat("/proc/kcore"); err == nil {
			want = append([]string{"core"}, want...)
		}
		got := strings.Fields(out)
		sort.Strings(got)
		if code != 0 || strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("ls /dev: exit %d\n got %q\nwant %q", code, got, want)
		}
	})
	t.Run("devices work", func(t *testing.T) {
		code, out := runShell(t, "echo x > /dev/null && head -c 4 /dev/zero | wc -c && head -c 4 /dev/urandom | wc -c", nil)
		if code != 0 || out != "4\n4\n" {
			t.Errorf("exit %d, %q", code, out)
		}
	})
	t.Run("read-only rootfs", func(t *testing.T) {
		code, out := runShell(t, "touch /x; echo $?; touch /dev/shm/x && echo shm ok; pwd",
			func(s *Spec) { s.ReadOnlyRootfs = true; s.Cwd = "/new/dir" })
		if code != 0 || !strings.Contains(out, "Read-only file system") || !strings.Contains(out, "1\nshm ok\n/new/dir\n") {
			t.Errorf("exit %d, %q", code, out)
		}
	})
}

func TestMounts(t *testing.T) {
	needRoot(t)
	host := t.TempDir()
	rw, ro := filepath.Join(host, "rw"), filepath.Join(host, "ro")
	os.Mkdir(rw, 0o755)
	os.Mkdir(ro, 0o755)
	os.WriteFile(filepath.Join(ro, "in"), []byte("data\n"), 0o644)
	file := filepath.Join(host, "file")
	os.WriteFile(file, []byte("file\n"), 0o644)

	code, out := runShell(t, `
		echo hello > /data/rw/out
		cat /data/ro/in
		echo x > /data/ro/new; echo "ro write: $?"
		cat /etc/app.conf
		grep ' /scratch ' /proc/self/mountinfo | grep -c tmpfs
	`, func(s *Spec) {
		s.Mounts = []Mount{
			{Source: ro, Destination: "/data/ro", ReadOnly: true},
			{Source: rw, Destination: "/data/rw"},
			{Source: file, Destination: "/etc/app.conf"},
			{Destination: "/scratch", Type: "tmpfs"},
		}
	})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	for _, want := range []string{"data\n", "Read-only file system", "ro write: 1\n", "file\n", "1\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(rw, "out")); err != nil || string(b) != "hello\n" {
		t.Errorf("write through the rw bind mount: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(ro, "new")); err == nil {
		t.Error("write through the ro bind mount reached the host")
	}
}

func TestNetworkNamespace(t *testing.T) {
	t.Run("new", func(t *testing.T) {
		code, out := runShell(t, "ls /sys/class/net; cat /sys/class/net/lo/operstate; ping -c1 -W1 127.0.0.1 >/dev/null && echo ping ok", nil)
		// lo reports "unknown" once up, "down" before.
		if code != 0 || out != "lo\nunknown\nping ok\n" {
			t.Errorf("exit %d, %q", code, out)
		}
	})
	t.Run("host", func(t *testing.T) {
		code, out := runShell(t, "readlink /proc/self/ns/net", func(s *Spec) { s.NetNS = "host" })
		own, _ := os.Readlink("/proc/self/ns/net")
		if code != 0 || out != own+"\n" {
			t.Errorf("exit %d, %q; want %q", code, out, own)
		}
	})
	t.Run("join", func(t *testing.T) {
		c := startSleeper(t, nil)
		nsPath := filepath.Join("/proc", strconv.Itoa(c.Pid()), "ns/net")
		want, _ := os.Readlink(nsPath)
		code, out := runShell(t, "readlink /proc/self/ns/net", func(s *Spec) { s.NetNS = nsPath })
		if code != 0 || out != want+"\n" {
			t.Errorf("exit %d, %q; want %q", code, out, want)
		}
	})
}

func TestTTY(t *testing.T) {
	spec, stdout, _ := newSpec(t, "sh")
	spec.TTY = true
	spec.Stdin = strings.NewReader("tty; [ -t 0 ] && echo \"interactive $TERM\"; ls -l /dev/console | cut -c1\nexit 7\n")
	st, err := run(t, spec)
	if err != nil || st.Code != 7 {
		t.Fatalf("run: %+v, %v\n%s", st, err, stdout)
	}
	out := strings.ReplaceAll(stdout.String(), "\r\n", "\n")
	for _, want := range []string{"\n/dev/pts/0\n", "\ninteractive xterm\n", "\nc\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal output %q lacks %q", out, want)
		}
	}
}

func TestNothingLeftBehind(t *testing.T) {
	needRoot(t)
	host := t.TempDir()
	c := startSleeper(t, func(s *Spec) {
		s.Mounts = []Mount{{Source: host, Destination: "/data"}}
		s.Etc = map[string][]byte{"/etc/hosts": []byte("127.0.0.1 localhost\n")}
	})
	merged := c.spec.Rootfs.Merged
	// The test's tmpfs is shared, and so the rootfs mounted on it: the
	// container's mounts would show here if they propagated out of its
	// namespace.
	if mountedUnder(t, merged) {
		t.Error("the container's mounts are visible outside it")
	}
	pid := c.Pid()
	if err := c.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Kill(pid, 0); err != unix.ESRCH {
		t.Errorf("PID 1 (%d) still exists after Destroy: %v", pid, err)
	}
	if mountedUnder(t, merged) {
		t.Error("mounts left after Destroy")
	}
	if err := c.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}

func TestDestroyBeforeStart(t *testing.T) {
	spec, stdout, _ := newSpec(t, "echo", "ran")
	c, err := Create(spec)
	if err != nil {
		t.Fatal(err)
	}
	pid := c.Pid()
	if err := c.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Kill(pid, 0); err != unix.ESRCH {
		t.Errorf("init %d still exists: %v", pid, err)
	}
	if stdout.Len() != 0 {
		t.Errorf("the command ran: %q", stdout)
	}
	if err := c.Start(); err == nil {
		t.Error("Start after Destroy succeeded")
	}
}

// TestFailedCreate checks that an error during set-up comes back to Create
// and leaves no process, mount or cgroup behind.
func TestFailedCreate(t *testing.T) {
	spec, _, _ := newSpec(t, "true")
	spec.Resources.PidsLimit = 10
	spec.Mounts = []Mount{{Source: filepath.Join(t.TempDir(), "nosuch"), Destination: "/data"}}
	before := children(t)
	_, err := Create(spec)
	if err == nil || !strings.Contains(err.Error(), "bind source path does not exist") {
		t.Fatalf("Create: %v", err)
	}
	if !strings.HasPrefix(err.Error(), "container create "+spec.ID+": ") {
		t.Errorf("error %q does not name the operation and container", err)
	}
	if after := children(t); after != before {
		t.Errorf("children before %d, after %d", before, after)
	}
	if mountedUnder(t, spec.Rootfs.Merged) {
		t.Error("a mount is left")
	}
	if dirs := cgroupDirs(spec.ID); len(dirs) != 0 {
		t.Errorf("cgroups left: %v", dirs)
	}
}

func TestValidation(t *testing.T) {
	needRoot(t)
	for name, modify := range map[string]func(*Spec){
		"bad id":        func(s *Spec) { s.ID = "../x" },
		"no command":    func(s *Spec) { s.Args = nil },
		"relative dest": func(s *Spec) { s.Mounts = []Mount{{Source: "/", Destination: "data"}} },
		"etc path":      func(s *Spec) { s.Etc = map[string][]byte{"/etc/x/y": nil} },
		"netns":         func(s *Spec) { s.NetNS = "bridge" },
		"small memory":  func(s *Spec) { s.Resources.Memory = 1 << 20 },
		"many cpus":     func(s *Spec) { s.Resources.CPUs = 1000 },
	} {
		spec, _, _ := newSpec(t, "true")
		modify(spec)
		if _, err := Create(spec); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%s: Create: %v, want ErrInvalid", name, err)
		}
	}
}

// mountedUnder reports whether any mount of this process lies below dir.
func mountedUnder(t *testing.T, dir string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			return true
		}
	}
	return false
}

// children counts this process's child processes.
func children(t *testing.T) int {
	t.Helper()
	n := 0
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		n += len(strings.Fields(string(b)))
	}
	return n
}

// TestParallel runs containers and execs side by side, next to one created
// and never started: each must finish and get its own output.
func TestParallel(t *testing.T) {
	box := startSleeper(t, nil)
	idleSpec, _, _ := newSpec(t, "true")
	idle, err := Create(idleSpec)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Destroy()

	const n = 4
	specs := make([]*Spec, n)
	outs := make([]*bytes.Buffer, n)
	for i := range specs {
		specs[i], outs[i], _ = newSpec(t, "echo", "run", strconv.Itoa(i))
	}
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if st, err := run(t, specs[i]); err != nil || st.Code != 0 {
				t.Errorf("run %d: %+v, %v", i, st, err)
			} else if want := fmt.Sprintf("run %d\n", i); outs[i].String() != want {
				t.Errorf("run %d: output %q, want %q", i, outs[i], want)
			}
		}()
		go func() {
			defer wg.Done()
			var out bytes.Buffer
			p, err := Exec(box.Pid(), &ExecSpec{Args: []string{"echo", "exec", strconv.Itoa(i)}, Stdout: &out})
			if err != nil {
				t.Errorf("exec %d: %v", i, err)
				return
			}
			if st, err := p.Wait(); err != nil || st.Code != 0 {
				t.Errorf("exec %d: %+v, %v", i, st, err)
			} else if want := fmt.Sprintf("exec %d\n", i); out.String() != want {
				t.Errorf("exec %d: output %q, want %q", i, out.String(), want)
			}
		}()
	}
	wg.Wait()
}

// TestCreatedHoldsNoDescriptors checks that a created container's PID 1
// holds only its stdio and its sync socket. It starts with copies of every
// descriptor of this process, and must close them first thing: a pipe of
// some other container's output held open until this one starts would keep
// that output's reader waiting.
func TestCreatedHoldsNoDescriptors(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(w.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	ours := fmt.Sprintf("pipe:[%d]", st.Ino)

	spec, _, _ := newSpec(t, "true")
	c, err := Create(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Destroy()
	dir := fmt.Sprintf("/proc/%d/fd", c.Pid())
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var extra []string
	for _, e := range entries {
		target, _ := os.Readlink(filepath.Join(dir, e.Name()))
		if target == ours {
			t.Errorf("PID 1 holds our pipe as fd %s", e.Name())
		}
		if fd, _ := strconv.Atoi(e.Name()); fd > 2 {
			extra = append(extra, e.Name()+" -> "+target)
		}
	}
	if len(extra) != 1 || !strings.Contains(extra[0], "socket:") {
		t.Errorf("PID 1's descriptors above 2: %q, want its sync socket only", extra)
	}
}
