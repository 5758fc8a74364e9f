package image

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"vscript/engine/errdefs"
	"vscript/engine/event"
	"vscript/engine/store"
)

func requireBusybox(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(DefaultBusybox); err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s missing: %s", DefaultBusybox, busyboxHint)
	}
	t.Skipf("%s missing", DefaultBusybox)
}

func TestBuiltinBusybox(t *testing.T) {
	requireRoot(t)
	requireBusybox(t)
	s := newStore(t)
	rec := &event.Recorder{}
	s.Events = rec
	img, err := s.Get("busybox")
	if err != nil {
		t.Fatal(err)
	}
	if img.Ref != "busybox:latest" || len(img.Layers) != 1 {
		t.Errorf("image = %q with %d layers", img.Ref, len(img.Layers))
	}
	if !reflect.DeepEqual(img.Config.Cmd, []string{"sh"}) ||
		!reflect.DeepEqual(img.Config.Env, []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}) {
		t.Errorf("config = %+v", img.Config)
	}
	root := s.layers.Path(img.Layers[0].ChainID)

	out, err := exec.Command(DefaultBusybox, "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	var bb unix.Stat_t
	if err := unix.Stat(filepath.Join(root, "bin/busybox"), &bb); err != nil {
		t.Fatal(err)
	}
	for _, applet := range strings.Fields(string(out)) {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, "bin", applet), &st); err != nil || st.Ino != bb.Ino {
			t.Errorf("bin/%s is not a hard link of bin/busybox: %v", applet, err)
		}
	}

	passwd := mustRead(t, filepath.Join(root, "etc/passwd"))
	for _, line := range []string{"root:x:0:0:root:/root:/bin/sh", "daemon:x:1:1:", "www-data:x:33:33:", "nobody:x:65534:65534:"} {
		if !strings.Contains(passwd, line) {
			t.Errorf("/etc/passwd lacks %q", line)
		}
	}
	group := mustRead(t, filepath.Join(root, "etc/group"))
	for _, line := range []string{"root:x:0:", "daemon:x:1:", "www-data:x:33:", "nogroup:x:65534:"} {
		if !strings.Contains(group, line) {
			t.Errorf("/etc/group lacks %q", line)
		}
	}
	for d, perm := range map[string]os.FileMode{"root": 0o700, "tmp": 0o777 | os.ModeSticky, "home": 0o755, "var/www": 0o755,
		"usr": 0o755, "dev": 0o755, "proc": 0o555, "sys": 0o555} {
		fi, err := os.Stat(filepath.Join(root, d))
		if err != nil || !fi.IsDir() || fi.Mode()&(os.ModePerm|os.ModeSticky) != perm {
			t.Errorf("/%s: %v %v, want dir %v", d, fi.Mode(), err, perm)
		} else if fi.ModTime().Unix() != 0 {
			t.Errorf("/%s mtime %v, want the fixed builtin time", d, fi.ModTime())
		}
	}

	// The image runs: its shell finds its applets and users.
	cmd := exec.Command("/bin/sh", "-c", "echo hi | tr a-z A-Z && id -u www-data && id -gn nobody")
	cmd.SysProcAttr = &unix.SysProcAttr{Chroot: root}
	cmd.Path = "/bin/sh"
	cmd.Env = img.Config.Env
	if out, err := cmd.CombinedOutput(); err != nil || string(out) != "HI\n33\nnogroup\n" {
		t.Errorf("running in the image: %q, %v", out, err)
	}

	events := rec.Events()
	if len(events) != 1 || events[0].Op != "image create" || events[0].Subject != "busybox:latest" || events[0].Docker == "" {
		t.Errorf("events = %+v", events)
	}
	if _, err := s.Get("busybox:latest"); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.Events()); n != 1 {
		t.Errorf("second Get emitted again: %d events", n)
	}

	// The same binary always gives the same image.
	again, err := newStore(t).EnsureBuiltin("busybox")
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != img.ID {
		t.Errorf("id differs between roots: %s %s", again.ID, img.ID)
	}
}

func TestBuiltinHttpd(t *testing.T) {
	requireRoot(t)
	requireBusybox(t)
	s := newStore(t)
	img, err := s.Get("httpd")
	if err != nil {
		t.Fatal(err)
	}
	bb, err := s.Get("busybox")
	if err != nil {
		t.Fatal(err)
	}
	if len(img.Layers) != 2 || img.Layers[0] != bb.Layers[0] {
		t.Fatalf("httpd layers %+v, want busybox's plus one", img.Layers)
	}
	c := img.Config
	if c.WorkingDir != "/usr/local/apache2" || c.StopSignal != "SIGTERM" ||
		!reflect.DeepEqual(c.ExposedPorts, map[string]struct{}{"80/tcp": {}}) ||
		!reflect.DeepEqual(c.Cmd, []string{"httpd", "-f", "-v", "-p", "80", "-h", "/usr/local/apache2/htdocs"}) {
		t.Errorf("config = %+v", c)
	}
	index := filepath.Join(s.layers.Path(img.Layers[1].ChainID), "usr/local/apache2/htdocs/index.html")
	if got := mustRead(t, index); got != "<html><body><h1>It works!</h1></body></html>\n" {
		t.Errorf("index.html = %q", got)
	}
	var st unix.Stat_t
	if err := unix.Stat(index, &st); err != nil || st.Uid != 0 || st.Gid != 0 {
		t.Errorf("index.html owner %d:%d, %v", st.Uid, st.Gid, err)
	}
	list, _ := s.List()
	if len(list) != 2 || list[0].Ref != "busybox:latest" || list[1].Ref != "httpd:latest" {
		t.Errorf("List = %v", list)
	}
}

func TestBuiltinConcurrentRuns(t *testing.T) {
	requireRoot(t)
	requireBusybox(t)
	root := t.TempDir()
	const runs = 4
	ids := make([]string, runs)
	errs := make([]error, runs)
	// One store.Store per run, as separate processes have, all opened
	// first: store.Open sweeps tmp/ when nobody holds the lock.
	var stores []*Store
	for range runs {
		st, err := store.Open(root)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		s, err := New(st)
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, s)
	}
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			img, err := s.EnsureBuiltin("busybox")
			if err == nil {
				ids[i] = img.ID
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i := range runs {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Errorf("run %d: %s, %v", i, ids[i], errs[i])
		}
	}
	st, _ := store.Open(root)
	defer st.Close()
	s, _ := New(st)
	if list, _ := s.List(); len(list) != 1 {
		t.Errorf("List = %d images, want 1", len(list))
	}
	if entries, _ := os.ReadDir(filepath.Join(root, "tmp")); len(entries) != 0 {
		t.Errorf("tmp/ not empty: %v", entries)
	}
}

func TestBuiltinNeedsStaticBusybox(t *testing.T) {
	tests := []struct {
		name, bin, want string
	}{
		{"missing", filepath.Join(t.TempDir(), "busybox"), "not found"},
		{"dynamic", "/bin/ls", "dynamically linked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "dynamic" {
				if _, err := os.Stat(tt.bin); err != nil {
					t.Skip(err)
				}
			}
			s := newStore(t)
			s.Busybox = tt.bin
			_, err := s.Get("busybox")
			if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), tt.want) ||
				!strings.HasPrefix(err.Error(), "image busybox:latest: ") {
				t.Errorf("err = %v, want ErrUnavailable saying %q", err, tt.want)
			}
			if hint := errdefs.Hint(err); hint != "apt-get install -y busybox-static" {
				t.Errorf("hint = %q", hint)
			}
		})
	}
}

func TestEnsureBuiltinUnknown(t *testing.T) {
	if _, err := newStore(t).EnsureBuiltin("alpine"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("err = %v, want ErrNotFound", err)
	}
}
