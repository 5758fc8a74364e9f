package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// upperDir builds an overlay upper directory as the kernel would leave it.
func upperDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(d, "etc"), 0o755))
	must(os.MkdirAll(filepath.Join(d, "usr/bin"), 0o755))
	must(os.WriteFile(filepath.Join(d, "etc/hosts"), []byte("127.0.0.1 localhost\n"), 0o644))
	must(os.WriteFile(filepath.Join(d, "usr/bin/tool"), []byte("tool"), 0o755))
	must(os.Link(filepath.Join(d, "usr/bin/tool"), filepath.Join(d, "usr/bin/alias")))
	must(os.Symlink("tool", filepath.Join(d, "usr/bin/link")))
	must(os.Chown(filepath.Join(d, "usr/bin/tool"), 33, 33))
	must(unix.Mknod(filepath.Join(d, "gone"), unix.S_IFCHR, 0))
	must(unix.Setxattr(filepath.Join(d, "etc"), opaqueXattr, []byte("y"), 0))
	must(unix.Setxattr(filepath.Join(d, "etc/hosts"), "user.note", []byte("n"), 0))
	must(unix.Setxattr(filepath.Join(d, "etc/hosts"), "trusted.overlay.origin", []byte("x"), 0))
	l, err := net.Listen("unix", filepath.Join(d, "sock"))
	must(err)
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	// Set mtimes last: the entries above changed the directories'.
	for _, p := range []string{"etc/hosts", "usr/bin/tool", "usr/bin", "usr", "etc", "gone"} {
		must(os.Chtimes(filepath.Join(d, p), testTime, testTime.Add(time.Nanosecond*123)))
	}
	return d
}

type tarLine struct {
	Name     string
	Type     byte
	Mode     int64
	Uid      int
	Link     string
	Xattrs   int
	Size     int64
	MTimeSec int64
}

func readTar(t *testing.T, data []byte) []tarLine {
	t.Helper()
	var out []tarLine
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uname != "" || h.Gname != "" || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() {
			t.Errorf("%s: host-dependent fields: uname %q gname %q atime %v ctime %v", h.Name, h.Uname, h.Gname, h.AccessTime, h.ChangeTime)
		}
		x := 0
		for k := range h.PAXRecords {
			if len(k) > len(paxXattr) && k[:len(paxXattr)] == paxXattr {
				x++
			}
		}
		out = append(out, tarLine{h.Name, h.Typeflag, h.Mode, h.Uid, h.Linkname, x, h.Size, h.ModTime.Unix()})
	}
}

func TestPack(t *testing.T) {
	requireRoot(t)
	d := upperDir(t)
	var buf bytes.Buffer
	if err := Pack(&buf, d); err != nil {
		t.Fatal(err)
	}
	ts := testTime.Unix()
	want := []tarLine{
		{"etc/", tar.TypeDir, 0o755, 0, "", 0, 0, ts},
		{"etc/.wh..wh..opq", tar.TypeReg, 0o755, 0, "", 0, 0, 0},
		{"etc/hosts", tar.TypeReg, 0o644, 0, "", 1, 20, ts}, // user.note only
		{".wh.gone", tar.TypeReg, 0o600, 0, "", 0, 0, ts},
		{"usr/", tar.TypeDir, 0o755, 0, "", 0, 0, ts},
		{"usr/bin/", tar.TypeDir, 0o755, 0, "", 0, 0, ts},
		{"usr/bin/alias", tar.TypeReg, 0o755, 33, "", 0, 4, ts},
		{"usr/bin/link", tar.TypeSymlink, 0o777, 0, "tool", 0, 0, -1},
		{"usr/bin/tool", tar.TypeLink, 0o755, 33, "usr/bin/alias", 0, 0, ts},
	}
	got := readTar(t, buf.Bytes())
	for i := range got {
		if want[i].MTimeSec == -1 {
			got[i].MTimeSec = -1 // a fresh symlink's mtime is now
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tar:\n got %+v\nwant %+v", got, want)
	}

	// Reading files changes atimes; the layer must not change with them.
	mustRead(t, filepath.Join(d, "etc/hosts"))
	var again bytes.Buffer
	if err := Pack(&again, d); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("packing the same directory twice gave different tars")
	}
}

func TestPackUnpackRoundTrip(t *testing.T) {
	requireRoot(t)
	var first bytes.Buffer
	if err := Pack(&first, upperDir(t)); err != nil {
		t.Fatal(err)
	}
	d := t.TempDir()
	if err := Unpack(bytes.NewReader(first.Bytes()), d); err != nil {
		t.Fatal(err)
	}
	var second bytes.Buffer
	if err := Pack(&second, d); err != nil {
		t.Fatal(err)
	}
	// Only the symlink's mtime may differ: Unpack sets it from the tar.
	if !reflect.DeepEqual(readTar(t, first.Bytes()), readTar(t, second.Bytes())) {
		t.Errorf("round trip changed the layer:\n%+v\n%+v", readTar(t, first.Bytes()), readTar(t, second.Bytes()))
	}
}

func TestPackErrorNamesEntry(t *testing.T) {
	err := Pack(io.Discard, filepath.Join(t.TempDir(), "missing"))
	if err == nil || !bytes.HasPrefix([]byte(err.Error()), []byte("layer pack ")) {
		t.Errorf("err = %v, want a layer pack error", err)
	}
}

func TestDiff(t *testing.T) {
	requireRoot(t)
	// Two lower layers, topmost first, in overlay form.
	lowerTop, lowerBottom := t.TempDir(), t.TempDir()
	unpackT(t, lowerBottom, dir("etc/"), file("etc/hosts", "h"), file("etc/passwd", "p"),
		dir("var/"), dir("var/log/"), file("var/log/old", "o"), dir("data/"), file("data/a", "a"))
	unpackT(t, lowerTop, dir("data/"), file("data/.wh.a", ""), dir("etc/"), file("etc/motd", "m"))
	lowers := []string{lowerTop, lowerBottom}

	changedDir := dir("etc/")
	changedDir.hdr.Mode = 0o700
	tests := []struct {
		name  string
		upper []ent
		want  []Change
	}{
		{"add file, dir only copied up", []ent{dir("etc/"), file("etc/new", "n")},
			[]Change{{Modified, "/etc"}, {Added, "/etc/new"}}},
		{"modify file", []ent{dir("etc/"), file("etc/hosts", "changed")},
			[]Change{{Modified, "/etc/hosts"}}},
		{"modify file of the top layer", []ent{dir("etc/"), file("etc/motd", "changed")},
			[]Change{{Modified, "/etc/motd"}}},
		{"delete file", []ent{dir("etc/"), file("etc/.wh.passwd", "")},
			[]Change{{Modified, "/etc"}, {Deleted, "/etc/passwd"}}},
		{"changed directory", []ent{changedDir},
			[]Change{{Modified, "/etc"}}},
		{"new tree", []ent{dir("new/"), dir("new/sub/"), file("new/sub/f", "f")},
			[]Change{{Added, "/new"}, {Added, "/new/sub"}, {Added, "/new/sub/f"}}},
		{"opaque directory replacing one below", []ent{dir("var/"), dir("var/log/"), file("var/log/.wh..wh..opq", ""), file("var/log/new", "n")},
			[]Change{{Modified, "/var"}, {Deleted, "/var/log"}, {Added, "/var/log/new"}}},
		{"opaque directory that is new", []ent{dir("fresh/"), file("fresh/.wh..wh..opq", ""), file("fresh/x", "x")},
			[]Change{{Added, "/fresh"}, {Added, "/fresh/x"}}},
		{"recreate what a lower layer deleted", []ent{dir("data/"), file("data/a", "again")},
			[]Change{{Modified, "/data"}, {Added, "/data/a"}}},
		{"nothing", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upper := t.TempDir()
			unpackT(t, upper, tt.upper...)
			got, err := Diff(upper, lowers)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Diff = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLookupLowerHonoursOpaqueAndReplacedParents(t *testing.T) {
	requireRoot(t)
	top, bottom := t.TempDir(), t.TempDir()
	unpackT(t, bottom, dir("a/"), file("a/f", "f"), dir("b/"), file("b/g", "g"), file("c", "c"))
	// In the top layer a/ is opaque and b is a file: nothing below them shows.
	unpackT(t, top, dir("a/"), file("a/.wh..wh..opq", ""), file("b", "now a file"))
	lowers := []string{top, bottom}
	for path, want := range map[string]bool{"/a/f": false, "/b/g": false, "/c": true, "/a": true, "/b": true} {
		fi, err := lookupLower(lowers, path)
		if err != nil {
			t.Fatal(err)
		}
		if (fi != nil) != want {
			t.Errorf("lookupLower(%s) found = %v, want %v", path, fi != nil, want)
		}
	}
}

func unpackT(t *testing.T, d string, ents ...ent) {
	t.Helper()
	if err := Unpack(bytes.NewReader(mkTar(t, ents...)), d); err != nil {
		t.Fatal(fmt.Errorf("setup: %w", err))
	}
}
