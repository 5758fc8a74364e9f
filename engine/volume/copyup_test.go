package volume

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"vscript/engine/errdefs"
)

// requireRoot skips without root, except on CI where a missing privilege is
// a failure.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("needs root (chown, trusted xattrs, mknod)")
	}
	t.Skip("needs root")
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var past = time.Date(2015, 6, 1, 12, 0, 0, 123456789, time.UTC)

// imageTree builds what an image might hold at a VOLUME path: owned by
// www-data (33:33), mode 0750, with every kind of entry copy-up must keep.
func imageTree(t testing.TB) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "htdocs")
	must(t, os.Mkdir(src, 0o750))
	must(t, os.WriteFile(filepath.Join(src, "index.html"), []byte("<h1>It works!</h1>\n"), 0o640))
	must(t, os.Chown(filepath.Join(src, "index.html"), 33, 33))
	must(t, unix.Setxattr(filepath.Join(src, "index.html"), "user.origin", []byte("image"), 0))
	must(t, unix.Setxattr(filepath.Join(src, "index.html"), "trusted.vscript", []byte("1"), 0))
	must(t, os.Chtimes(filepath.Join(src, "index.html"), past, past))

	must(t, os.Mkdir(filepath.Join(src, "cgi-bin"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "cgi-bin", "run"), bytes.Repeat([]byte("#!/bin/sh\n"), 100000), 0o755))
	must(t, os.Chmod(filepath.Join(src, "cgi-bin", "run"), 0o755|fs.ModeSetuid))
	// A hard link across directories, and a symlink owned by www-data.
	must(t, os.Link(filepath.Join(src, "index.html"), filepath.Join(src, "cgi-bin", "index-link")))
	must(t, os.Symlink("../index.html", filepath.Join(src, "cgi-bin", "home")))
	must(t, os.Lchown(filepath.Join(src, "cgi-bin", "home"), 33, 33))
	must(t, unix.Lutimes(filepath.Join(src, "cgi-bin", "home"), []unix.Timeval{unix.NsecToTimeval(past.UnixNano()), unix.NsecToTimeval(past.UnixNano())}))
	must(t, unix.Mkfifo(filepath.Join(src, "cgi-bin", "pipe"), 0o620))
	must(t, os.Chown(filepath.Join(src, "cgi-bin", "pipe"), 1, 2))
	must(t, os.WriteFile(filepath.Join(src, "empty"), nil, 0o600))

	// A read-only directory must still be filled.
	must(t, os.Mkdir(filepath.Join(src, "ro"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "ro", "f"), []byte("x"), 0o444))
	must(t, os.Chmod(filepath.Join(src, "ro"), 0o555))
	must(t, os.Chtimes(filepath.Join(src, "ro"), past, past))
	must(t, os.Chtimes(filepath.Join(src, "cgi-bin"), past, past))

	must(t, os.Chown(src, 33, 33))
	must(t, os.Chmod(src, 0o750))
	return src
}

// describe renders everything copy-up must preserve about a tree, one line
// per entry; the root's times are left out, as copy-up only sets its owner
// and mode.
func describe(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		line := fmt.Sprintf("%s mode=%o owner=%d:%d", rel, st.Mode, st.Uid, st.Gid)
		if rel != "." {
			line += fmt.Sprintf(" mtime=%d.%09d", st.Mtim.Sec, st.Mtim.Nsec)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" size=%d nlink=%d data=%x", st.Size, st.Nlink, data[:min(len(data), 16)])
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			line += " -> " + target
		}
		buf := make([]byte, 4096)
		n, err := unix.Llistxattr(p, buf)
		if err != nil {
			return err
		}
		keys := strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00")
		sort.Strings(keys)
		for _, k := range keys {
			if k == "" {
				continue
			}
			m, err := unix.Lgetxattr(p, k, buf)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %s=%q", k, buf[:m])
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func newVolumeDir(t testing.TB) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "_data")
	must(t, os.Mkdir(dst, 0o755))
	return dst
}

func TestCopyUpPreserves(t *testing.T) {
	requireRoot(t)
	src := imageTree(t)
	dst := newVolumeDir(t)
	if err := CopyUp(src, dst); err != nil {
		t.Fatal(err)
	}
	want, got := describe(t, src), describe(t, dst)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("copy differs:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
	// Spelled out, the properties the notes teach.
	fi, err := os.Stat(dst)
	must(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o750 || st.Uid != 33 || st.Gid != 33 {
		t.Fatalf("volume root %v %d:%d, want drwxr-x--- 33:33", fi.Mode(), st.Uid, st.Gid)
	}
	var a, b unix.Stat_t
	must(t, unix.Stat(filepath.Join(dst, "index.html"), &a))
	must(t, unix.Stat(filepath.Join(dst, "cgi-bin", "index-link"), &b))
	if a.Ino != b.Ino {
		t.Fatal("hard link became two files")
	}
}

func TestCopyUpOnlyIntoEmptyVolume(t *testing.T) {
	requireRoot(t)
	src := imageTree(t)
	dst := newVolumeDir(t)
	must(t, os.WriteFile(filepath.Join(dst, "mine"), []byte("user data"), 0o600))
	before := describe(t, dst)
	if err := CopyUp(src, dst); err != nil {
		t.Fatal(err)
	}
	if after := describe(t, dst); !reflect.DeepEqual(after, before) {
		t.Fatalf("non-empty volume changed:\n%s", strings.Join(after, "\n"))
	}
}

func TestCopyUpMissingSource(t *testing.T) {
	dst := newVolumeDir(t)
	if err := CopyUp(filepath.Join(t.TempDir(), "nope"), dst); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dst); len(entries) != 0 {
		t.Fatalf("volume not empty: %v", entries)
	}
	file := filepath.Join(t.TempDir(), "file")
	must(t, os.WriteFile(file, nil, 0o644))
	if err := CopyUp(file, dst); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("CopyUp from a file: %v, want invalid", err)
	}
}

// smallTree writes 1,000 small files in 10 directories.
func smallTree(b *testing.B) string {
	src := filepath.Join(b.TempDir(), "src")
	for d := range 10 {
		dir := filepath.Join(src, fmt.Sprint("d", d))
		must(b, os.MkdirAll(dir, 0o755))
		for f := range 100 {
			must(b, os.WriteFile(filepath.Join(dir, fmt.Sprint("f", f)), bytes.Repeat([]byte{'x'}, 200+f), 0o644))
		}
	}
	return src
}

func benchCopy(b *testing.B, copyTree func(src, dst string) error) {
	src := smallTree(b)
	base := b.TempDir()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dst := filepath.Join(base, fmt.Sprint(i))
		must(b, os.Mkdir(dst, 0o755))
		must(b, copyTree(src, dst))
	}
	b.StopTimer()
	if n, _ := os.ReadDir(filepath.Join(base, "0", "d9")); len(n) != 100 {
		b.Fatalf("copied %d files into d9, want 100", len(n))
	}
}

func BenchmarkCopyUp1000(b *testing.B) { benchCopy(b, CopyUp) }

// BenchmarkCpA1000 is the yardstick: coreutils' `cp -a` on the same tree.
func BenchmarkCpA1000(b *testing.B) {
	benchCopy(b, func(src, dst string) error {
		out, err := exec.Command("cp", "-a", src+"/.", dst).CombinedOutput()
		if err != nil {
			return fmt.Errorf("cp -a: %v: %s", err, out)
		}
		return nil
	})
}
