package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"vscript/engine/errdefs"
)

// ctxSources resolves srcs in a context directory or fails the test.
func ctxSources(t *testing.T, dir string, srcs ...string) []Source {
	t.Helper()
	c, err := OpenContext(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []Source
	for _, s := range srcs {
		ss, err := c.Resolve(s)
		if err != nil {
			t.Fatalf("resolve %s: %v", s, err)
		}
		out = append(out, ss...)
	}
	return out
}

func TestCopyIntoDestinations(t *testing.T) {
	needRoot(t)
	tests := []struct {
		name  string
		srcs  []string
		dest  string
		files map[string]string // expected files in the image
		err   error
	}{
		{"file to file", []string{"a.txt"}, "/b.txt", map[string]string{"b.txt": "a"}, nil},
		{"file into new dir", []string{"a.txt"}, "/new/", map[string]string{"new/a.txt": "a"}, nil},
		{"file into existing dir", []string{"a.txt"}, "/etc", map[string]string{"etc/a.txt": "a"}, nil},
		{"dir contents", []string{"dir"}, "/srv", map[string]string{"srv/x.txt": "x", "srv/sub/y.txt": "y"}, nil},
		{"dir into existing", []string{"dir/"}, "/etc/", map[string]string{"etc/x.txt": "x", "etc/passwd": "root", "etc/sub/y.txt": "y"}, nil},
		{"several into dir", []string{"a.txt", "dir"}, "/m/", map[string]string{"m/a.txt": "a", "m/x.txt": "x"}, nil},
		{"several need a slash", []string{"a.txt", "dir"}, "/m", nil, errdefs.ErrInvalid},
		{"file over file", []string{"a.txt"}, "/etc/passwd", map[string]string{"etc/passwd": "a"}, nil},
		{"symlink in image stays inside", []string{"a.txt"}, "/escape/a.txt", map[string]string{"outside-target/a.txt": "a"}, nil},
		{"symlink source keeps its name", []string{"link"}, "/l/", map[string]string{"l/link": "a"}, nil},
		{"file where a dir is needed", []string{"a.txt"}, "/etc/passwd/x", nil, errdefs.ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.TempDir()
			writeFiles(t, ctx, map[string]string{"a.txt": "a", "dir/x.txt": "x", "dir/sub/y.txt": "y"})
			os.Symlink("a.txt", filepath.Join(ctx, "link"))
			root := t.TempDir()
			writeFiles(t, root, map[string]string{"etc/passwd": "root"})
			// An absolute link that would leave the root if followed on the host.
			os.Symlink("/../../outside-target", filepath.Join(root, "escape"))
			os.Mkdir(filepath.Join(root, "outside-target"), 0o755)

			err := CopyInto(root, ctxSources(t, ctx, tt.srcs...), tt.dest, CopyOptions{Owner: &Owner{}})
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("error %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for p, want := range tt.files {
				if got := readFile(t, filepath.Join(root, p)); got != want {
					t.Errorf("%s = %q, want %q", p, got, want)
				}
			}
		})
	}
}

func TestCopyIntoMetadata(t *testing.T) {
	needRoot(t)
	ctx := t.TempDir()
	writeFiles(t, ctx, map[string]string{"d/run.sh": "#!/bin/sh\n", "d/sub/f": "f"})
	os.Chmod(filepath.Join(ctx, "d/run.sh"), 0o755|os.ModeSetuid)
	os.Chmod(filepath.Join(ctx, "d/sub"), 0o750)
	os.Symlink("run.sh", filepath.Join(ctx, "d/ln"))
	if err := exec.Command("mkfifo", filepath.Join(ctx, "d/fifo")).Run(); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	for _, p := range []string{"d/run.sh", "d/sub/f", "d/sub"} {
		os.Chtimes(filepath.Join(ctx, p), old, old)
	}
	os.Chown(filepath.Join(ctx, "d/sub/f"), 1000, 1000)

	root := t.TempDir()
	// The existing destination directory keeps its own mode.
	os.Mkdir(filepath.Join(root, "app"), 0o700)
	if err := CopyInto(root, ctxSources(t, ctx, "d"), "/app", CopyOptions{Owner: &Owner{UID: 33, GID: 34}}); err != nil {
		t.Fatal(err)
	}
	check := func(p string, mode os.FileMode, uid, gid uint32) {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != mode || st.Uid != uid || st.Gid != gid {
			t.Errorf("%s: %v %d:%d, want %v %d:%d", p, fi.Mode(), st.Uid, st.Gid, mode, uid, gid)
		}
	}
	check("app", os.ModeDir|0o700, 0, 0)
	check("app/run.sh", os.ModeSetuid|0o755, 33, 34)
	check("app/sub", os.ModeDir|0o750, 33, 34)
	check("app/sub/f", 0o644, 33, 34)
	check("app/ln", os.ModeSymlink|0o777, 33, 34)
	check("app/fifo", os.ModeNamedPipe|0o644, 33, 34)
	for _, p := range []string{"app/run.sh", "app/sub", "app/sub/f"} {
		fi, _ := os.Stat(filepath.Join(root, p))
		if !fi.ModTime().Equal(old) {
			t.Errorf("%s mtime %v, want %v", p, fi.ModTime(), old)
		}
	}

	// nil Owner keeps the source's owners (COPY --from).
	root2 := t.TempDir()
	if err := CopyInto(root2, ctxSources(t, ctx, "d/sub/f"), "/new/dir/", CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	root = root2
	check("new/dir/f", 0o644, 1000, 1000)
	check("new", os.ModeDir|0o755, 0, 0)
}

func TestCopyIntoReplacesSymlinkedDirs(t *testing.T) {
	needRoot(t)
	ctx := t.TempDir()
	writeFiles(t, ctx, map[string]string{"tree/lib/x": "x"})
	root := t.TempDir()
	outside := t.TempDir()
	os.MkdirAll(filepath.Join(root, "app"), 0o755)
	// An image whose /app/lib points out of the root (on the host).
	os.Symlink(outside, filepath.Join(root, "app/lib"))
	if err := CopyInto(root, ctxSources(t, ctx, "tree"), "/app", CopyOptions{Owner: &Owner{}}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(root, "app/lib")); err != nil || !fi.IsDir() {
		t.Errorf("app/lib: %v %v, want a real directory", fi, err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("copy wrote outside the root: %v", entries)
	}
}

func TestCopyIntoUnpack(t *testing.T) {
	tarball := func(compress func(io.Writer) io.WriteCloser) []byte {
		var buf bytes.Buffer
		w := compress(&buf)
		tw := tar.NewWriter(w)
		tw.WriteHeader(&tar.Header{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644, Size: 2})
		tw.Write([]byte("hi"))
		tw.Close()
		w.Close()
		return buf.Bytes()
	}
	plain := tarball(func(w io.Writer) io.WriteCloser { return nopCloser{w} })
	gz := tarball(func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) })
	ctx := t.TempDir()
	writeFiles(t, ctx, map[string]string{"p.tar": string(plain), "g.tgz": string(gz), "notar.gz": "\x1f\x8bnot really"})
	for _, prog := range []string{"bzip2", "xz", "zstd"} {
		if _, err := exec.LookPath(prog); err != nil {
			continue
		}
		cmd := exec.Command(prog, "-c")
		cmd.Stdin = bytes.NewReader(plain)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		writeFiles(t, ctx, map[string]string{"a." + prog: string(out)})
	}
	entries, _ := os.ReadDir(ctx)
	for _, e := range entries {
		t.Run(e.Name(), func(t *testing.T) {
			root := t.TempDir()
			var unpacked []string
			unpack := func(r io.Reader, dir string) error {
				h, err := tar.NewReader(r).Next()
				if err != nil {
					return err
				}
				unpacked = append(unpacked, h.Name)
				return nil
			}
			if err := CopyInto(root, ctxSources(t, ctx, e.Name()), "/x/", CopyOptions{Unpack: unpack}); err != nil {
				t.Fatal(err)
			}
			if e.Name() == "notar.gz" {
				if unpacked != nil || readFile(t, filepath.Join(root, "x/notar.gz")) != "\x1f\x8bnot really" {
					t.Errorf("a non-archive was not copied as a file: %v", unpacked)
				}
				return
			}
			if len(unpacked) != 1 || unpacked[0] != "f" {
				t.Errorf("unpacked %v", unpacked)
			}
		})
	}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func TestResolveOwner(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33::/var/www:/bin/false\nnobody:x:65534:65534::/:/bin/false\nbad:x:zz:1::/:\n",
		"etc/group":  "root:x:0:\nwww-data:x:33:\nnogroup:x:65534:\nstaff:x:50:a,b\n",
	})
	tests := []struct {
		spec string
		want Owner
		err  error
	}{
		{"www-data", Owner{33, 33}, nil},
		{"nobody", Owner{65534, 65534}, nil},
		{"nobody:staff", Owner{65534, 50}, nil},
		{"www-data:0", Owner{33, 0}, nil},
		{"1000", Owner{1000, 1000}, nil},
		{"1000:50", Owner{1000, 50}, nil},
		{"1000:staff", Owner{1000, 50}, nil},
		{"alice", Owner{}, errdefs.ErrNotFound},
		{"root:wheel", Owner{}, errdefs.ErrNotFound},
		{"bad", Owner{}, errdefs.ErrInvalid},
		{"a:b:c", Owner{}, errdefs.ErrInvalid},
		{":staff", Owner{}, errdefs.ErrInvalid},
		{"root:", Owner{}, errdefs.ErrInvalid},
	}
	for _, tt := range tests {
		got, err := ResolveOwner(root, tt.spec)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("%s: error %v, want %v", tt.spec, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s = %v, %v; want %v", tt.spec, got, err, tt.want)
		}
	}
	// An image without /etc/passwd still takes numeric ids.
	empty := t.TempDir()
	if o, err := ResolveOwner(empty, "7:8"); err != nil || o != (Owner{7, 8}) {
		t.Errorf("numeric in empty image = %v, %v", o, err)
	}
	if _, err := ResolveOwner(empty, "www-data"); !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "no /etc/passwd") {
		t.Errorf("name in empty image: %v", err)
	}
}
