package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"vscript/engine/errdefs"
)

func TestUnpackKeepsMetadata(t *testing.T) {
	requireRoot(t)
	suid := file("bin/su", "#!") // parent bin/ is implied, as tars may do
	suid.hdr.Mode = 0o4755
	owned := file("home/u/data", "hello")
	owned.hdr.Uid, owned.hdr.Gid = 1000, 1001
	withXattr := file("cap", "")
	withXattr.hdr.PAXRecords = map[string]string{
		"SCHILY.xattr.user.note":              "kept",
		"SCHILY.xattr.trusted.overlay.opaque": "y", // never from a tar
	}
	tmp := dir("tmp/")
	tmp.hdr.Mode = 0o1777
	home := dir("home/")
	home.hdr.Uid = 65534
	fifo := ent{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o600, ModTime: testTime}}
	null := ent{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: testTime}}
	root := dir("./")
	root.hdr.Mode = 0o750

	d := t.TempDir()
	data := mkTar(t, root, home, dir("home/u/"), owned, suid, tmp, withXattr, fifo, null,
		symlink("etc/localtime", "/usr/share/zoneinfo/UTC"), symlink("bin/sh", "busybox"),
		file("bin/busybox", "elf"), hardlink("bin/ls", "bin/busybox"))
	if err := Unpack(bytes.NewReader(data), d); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		path      string
		typ       uint32
		perm      uint32
		uid, gid  uint32
		content   string // file content or symlink target
		checkTime bool
	}{
		{".", unix.S_IFDIR, 0o750, 0, 0, "", true},
		{"home", unix.S_IFDIR, 0o755, 65534, 0, "", true}, // mtime survives its children
		{"home/u/data", unix.S_IFREG, 0o644, 1000, 1001, "hello", true},
		{"bin", unix.S_IFDIR, 0o755, 0, 0, "", false},
		{"bin/su", unix.S_IFREG, 0o4755, 0, 0, "#!", true},
		{"tmp", unix.S_IFDIR, 0o1777, 0, 0, "", true},
		{"run/fifo", unix.S_IFIFO, 0o600, 0, 0, "", true},
		{"dev/null", unix.S_IFCHR, 0o666, 0, 0, "", true},
		{"etc/localtime", unix.S_IFLNK, 0o777, 0, 0, "/usr/share/zoneinfo/UTC", true},
		{"bin/sh", unix.S_IFLNK, 0o777, 0, 0, "busybox", true},
		{"bin/ls", unix.S_IFREG, 0o644, 0, 0, "elf", true},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			p := filepath.Join(d, tt.path)
			var st unix.Stat_t
			if err := unix.Lstat(p, &st); err != nil {
				t.Fatal(err)
			}
			if st.Mode&unix.S_IFMT != tt.typ || st.Mode&0o7777 != tt.perm {
				t.Errorf("mode = %o, want type %o perm %o", st.Mode, tt.typ, tt.perm)
			}
			if st.Uid != tt.uid || st.Gid != tt.gid {
				t.Errorf("owner = %d:%d, want %d:%d", st.Uid, st.Gid, tt.uid, tt.gid)
			}
			if tt.checkTime && st.Mtim.Sec != testTime.Unix() {
				t.Errorf("mtime = %d, want %d", st.Mtim.Sec, testTime.Unix())
			}
			switch tt.typ {
			case unix.S_IFREG:
				if got := mustRead(t, p); got != tt.content {
					t.Errorf("content = %q, want %q", got, tt.content)
				}
			case unix.S_IFLNK:
				if got, _ := os.Readlink(p); got != tt.content {
					t.Errorf("target = %q, want %q", got, tt.content)
				}
			case unix.S_IFCHR:
				if unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
					t.Errorf("device = %d:%d, want 1:3", unix.Major(st.Rdev), unix.Minor(st.Rdev))
				}
			}
		})
	}

	var a, b unix.Stat_t
	unix.Lstat(filepath.Join(d, "bin/ls"), &a)
	unix.Lstat(filepath.Join(d, "bin/busybox"), &b)
	if a.Ino != b.Ino {
		t.Error("bin/ls is not a hard link of bin/busybox")
	}
	if v, err := getxattr(filepath.Join(d, "cap"), "user.note"); err != nil || string(v) != "kept" {
		t.Errorf("user.note = %q, %v; want kept", v, err)
	}
	if isOpaque(filepath.Join(d, "cap")) {
		t.Error("a tar's trusted.overlay.opaque xattr was applied")
	}
}

func TestUnpackRefusesHostileEntries(t *testing.T) {
	requireRoot(t)
	outside := t.TempDir() // what a hostile layer would like to reach
	tests := []struct {
		name  string
		ents  []ent
		entry string // named in the error
	}{
		{"dotdot", []ent{file("../evil", "x")}, "../evil"},
		{"dotdot inside", []ent{file("a/../../evil", "x")}, "a/../../evil"},
		{"absolute", []ent{file("/evil", "x")}, "/evil"},
		{"symlink out", []ent{dir("a/"), symlink("a/link", "../../evil")}, "a/link"},
		{"hard link out", []ent{hardlink("h", "../evil")}, "h"},
		{"hard link absolute", []ent{hardlink("h", filepath.Join(outside, "secret"))}, "h"},
		{"file through symlink", []ent{symlink("d", outside), file("d/evil", "x")}, "d/evil"},
		{"dir through symlink", []ent{symlink("d", outside), dir("d/sub/")}, "d/sub/"},
		{"deep through symlink", []ent{symlink("d", outside), file("d/a/b/evil", "x")}, "d/a/b/evil"},
		{"hard link through symlink", []ent{symlink("d", outside), hardlink("h", "d/secret")}, "h"},
		{"whiteout through symlink", []ent{symlink("d", outside), file("d/.wh.secret", "")}, "d/.wh.secret"},
		{"opaque through symlink", []ent{symlink("d", outside), file("d/.wh..wh..opq", "")}, "d/.wh..wh..opq"},
		{"through a file", []ent{file("f", "x"), file("f/evil", "x")}, "f/evil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600); err != nil {
				t.Fatal(err)
			}
			err := Unpack(bytes.NewReader(mkTar(t, tt.ents...)), t.TempDir())
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if want := "layer unpack " + tt.entry + ": "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("err = %q, want prefix %q", err, want)
			}
			entries, _ := os.ReadDir(outside)
			if len(entries) != 1 || mustRead(t, filepath.Join(outside, "secret")) != "secret" || isOpaque(outside) {
				t.Errorf("outside dir changed: %v", entries)
			}
		})
	}
}

func TestUnpackReplacesSymlinkInsteadOfFollowingIt(t *testing.T) {
	requireRoot(t)
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	os.WriteFile(secret, []byte("secret"), 0o600)
	d := t.TempDir()
	if err := Unpack(bytes.NewReader(mkTar(t, symlink("f", secret), file("f", "mine"))), d); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, secret); got != "secret" {
		t.Errorf("wrote through the symlink: secret = %q", got)
	}
	if got := mustRead(t, filepath.Join(d, "f")); got != "mine" {
		t.Errorf("f = %q, want mine", got)
	}
}

func TestUnpackWhiteouts(t *testing.T) {
	requireRoot(t)
	d := t.TempDir()
	data := mkTar(t, file(".wh.gone", ""), dir("etc/"), file("etc/.wh..wh..opq", ""), file("etc/.wh.hosts", ""),
		file("etc/fresh", "new"), file(".wh..wh.plnk", ""))
	if err := Unpack(bytes.NewReader(data), d); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"gone", "etc/hosts"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(d, name), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			t.Errorf("%s: mode %o rdev %d, want a 0/0 char device", name, st.Mode, st.Rdev)
		}
	}
	if !isOpaque(filepath.Join(d, "etc")) {
		t.Error("etc is not opaque")
	}
	entries, _ := os.ReadDir(d)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".wh.") {
			t.Errorf("whiteout file %s left as is", e.Name())
		}
	}
}

func TestUnpackDiffID(t *testing.T) {
	requireRoot(t)
	data := mkTar(t, dir("a/"), file("a/b", "content"))
	sum := sha256.Sum256(data)
	want := "sha256:" + hex.EncodeToString(sum[:])
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()

	for name, input := range map[string][]byte{"plain": data, "gzip": gz.Bytes()} {
		t.Run(name, func(t *testing.T) {
			d := t.TempDir()
			got, err := unpack(bytes.NewReader(input), d)
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != want {
				t.Errorf("diff id = %s, want %s", got, want)
			}
			if mustRead(t, filepath.Join(d, "a/b")) != "content" {
				t.Error("a/b not unpacked")
			}
		})
	}
}

func TestUnpackRejectsGarbage(t *testing.T) {
	err := Unpack(strings.NewReader(strings.Repeat("not a tar archive ", 64)), t.TempDir())
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.HasPrefix(err.Error(), "layer unpack") {
		t.Errorf("err = %v, want a layer unpack ErrInvalid", err)
	}
}
