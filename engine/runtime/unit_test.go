package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"vscript/engine/errdefs"
)

func TestMergeArgs(t *testing.T) {
	for _, tc := range []struct {
		name                                  string
		imageEntrypoint, imageCmd, entry, cmd []string
		want                                  []string
	}{
		{"image cmd", nil, []string{"sh"}, nil, nil, []string{"sh"}},
		{"cmd replaces image cmd", nil, []string{"sh"}, nil, []string{"ls", "-l"}, []string{"ls", "-l"}},
		{"image entrypoint and cmd", []string{"/init"}, []string{"--serve"}, nil, nil, []string{"/init", "--serve"}},
		{"cmd after image entrypoint", []string{"/init"}, []string{"--serve"}, nil, []string{"--check"}, []string{"/init", "--check"}},
		{"entrypoint drops image cmd", []string{"/init"}, []string{"--serve"}, []string{"/bin/sh"}, nil, []string{"/bin/sh"}},
		{"entrypoint and cmd", []string{"/init"}, []string{"--serve"}, []string{"/bin/sh"}, []string{"-c", "id"}, []string{"/bin/sh", "-c", "id"}},
		{"empty entrypoint keeps image cmd", []string{"/init"}, []string{"sh"}, []string{}, nil, []string{"sh"}},
		{"empty entrypoint with cmd", []string{"/init"}, []string{"sh"}, []string{}, []string{"id"}, []string{"id"}},
		{"empty cmd is no cmd", nil, []string{"sh"}, nil, []string{}, []string{"sh"}},
		{"nothing", nil, nil, nil, nil, []string{}},
	} {
		if got := MergeArgs(tc.imageEntrypoint, tc.imageCmd, tc.entry, tc.cmd); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestResolveUser(t *testing.T) {
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte(testPasswd+"# comment\n\nbob:x:1000:1000::/home/bob:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/group"), []byte(testGroup), 0o644)
	empty := t.TempDir()

	for _, tc := range []struct {
		root, user string
		uid, gid   int
		groups     []int
		home, err  string
	}{
		{root, "", 0, 0, []int{0, 10}, "/root", ""},
		{root, "root", 0, 0, []int{0, 10}, "/root", ""},
		{root, "0", 0, 0, []int{0, 10}, "/root", ""},
		{root, "www-data", 33, 33, []int{33, 50}, "/var/www", ""},
		{root, "daemon", 1, 1, []int{1, 50}, "/usr/sbin", ""},
		{root, "33", 33, 33, []int{33, 50}, "/var/www", ""},
		{root, "bob", 1000, 1000, []int{1000}, "/home/bob", ""},
		{root, "nobody", 65534, 65534, []int{65534}, "/home", ""},
		{root, "www-data:staff", 33, 50, []int{50}, "/var/www", ""},
		{root, "www-data:0", 33, 0, []int{0}, "/var/www", ""},
		{root, "www-data:4242", 33, 4242, []int{4242}, "/var/www", ""},
		{root, "4242", 4242, 0, []int{0}, "/", ""},
		{root, "4242:50", 4242, 50, []int{50}, "/", ""},
		{root, "nosuch", 0, 0, nil, "", "unable to find user nosuch: no matching entries in passwd file"},
		{root, "root:nosuch", 0, 0, nil, "", "unable to find group nosuch: no matching entries in group file"},
		{empty, "", 0, 0, []int{0}, "/", ""},
		{empty, "1000", 1000, 0, []int{0}, "/", ""},
		{empty, "root", 0, 0, nil, "", "unable to find user root: no matching entries in passwd file"},
	} {
		uid, gid, groups, home, err := ResolveUser(tc.root, tc.user)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err || !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("%q: error %v, want %q (ErrNotFound)", tc.user, err, tc.err)
			}
			continue
		}
		if err != nil || uid != tc.uid || gid != tc.gid || !reflect.DeepEqual(groups, tc.groups) || home != tc.home {
			t.Errorf("%q: got %d %d %v %q %v, want %d %d %v %q", tc.user, uid, gid, groups, home, err,
				tc.uid, tc.gid, tc.groups, tc.home)
		}
	}
}

func TestResolveUserStaysInRootfs(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "passwd"), []byte("evil:x:0:0::/:/bin/sh\n"), 0o644)
	os.Symlink(outside, filepath.Join(root, "etc"))
	if _, _, _, _, err := ResolveUser(root, "evil"); err == nil {
		t.Error("a symlinked /etc led ResolveUser out of the root filesystem")
	}
}

func TestBuildEnv(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		tty  bool
		want []string
	}{
		{nil, false, []string{defaultPath, "HOSTNAME=h", "HOME=/root"}},
		{nil, true, []string{defaultPath, "HOSTNAME=h", "TERM=xterm", "HOME=/root"}},
		{[]string{"A=1", "PATH=/bin", "HOME=/x"}, false, []string{"PATH=/bin", "HOSTNAME=h", "A=1", "HOME=/x"}},
		{[]string{"TERM=dumb", "HOSTNAME=other"}, true, []string{defaultPath, "HOSTNAME=other", "TERM=dumb", "HOME=/root"}},
		{[]string{"TERM=dumb"}, false, []string{defaultPath, "HOSTNAME=h", "TERM=dumb", "HOME=/root"}},
		{[]string{"A=1", "A=2"}, false, []string{defaultPath, "HOSTNAME=h", "A=1", "A=2", "HOME=/root"}},
		{[]string{"PATH", "B"}, false, []string{"HOSTNAME=h", "HOME=/root"}},
	} {
		if got := buildEnv(tc.env, "h", "/root", tc.tty); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("buildEnv(%q, tty=%v) = %q, want %q", tc.env, tc.tty, got, tc.want)
		}
	}
}

func TestExplain(t *testing.T) {
	s := &Spec{
		ID: "abc", Hostname: "web",
		Rootfs: Rootfs{Upper: "/c/upper", Work: "/c/work", Merged: "/c/merged"},
		Args:   []string{"sh", "-c", "echo hi"},
		Mounts: []Mount{{Source: "/v", Destination: "/data", ReadOnly: true}},
	}
	text := strings.Join(s.Explain(), "\n")
	for _, want := range []string{
		"unshare --pid --mount --uts --ipc --net --fork",
		"mount --rbind /v /c/merged/data\nmount -o remount,bind,ro /c/merged/data",
		"pivot_root . .",
		"hostname web",
		"ip link set lo up",
		"exec sh -c 'echo hi'",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("Explain lacks %q:\n%s", want, text)
		}
	}
	s.NetNS = "host"
	if text := strings.Join(s.Explain(), "\n"); strings.Contains(text, "--net") || strings.Contains(text, "lo up") {
		t.Errorf("Explain with the host's network:\n%s", text)
	}
}
