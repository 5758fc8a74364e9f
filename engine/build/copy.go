package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"vscript/engine/errdefs"
)

// Source is one resolved COPY or ADD source: a file or a directory below
// Root, found by Context.Resolve or ResolveInImage.
type Source struct {
	// Root is the host directory the source lives in: the build context or
	// an image's root filesystem.
	Root string
	// Path is the source below Root, slash-separated, symlinks resolved;
	// "." for Root itself.
	Path string
	// Name is the last element of the path as written; a file copied into
	// a directory keeps it (so a symlink source keeps its own name).
	Name string

	ctx *Context // the context whose .dockerignore applies; nil in an image
}

func (s Source) fullPath() string {
	return filepath.Join(s.Root, filepath.FromSlash(s.Path))
}

// walk calls fn for the source and everything below it, a directory before
// its contents, in lexical order. rel is relative to the source ("." for
// the source itself). What .dockerignore excludes is left out.
func (s Source) walk(fn func(rel, full string, fi fs.FileInfo) error) error {
	top := s.fullPath()
	return filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(top, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if s.ctx != nil && rel != "." {
			ex, err := s.ctx.Excluded(path.Join(s.Path, rel))
			if err != nil {
				return fmt.Errorf(".dockerignore: %w: %w", err, errdefs.ErrInvalid)
			}
			if ex {
				// Without "!" patterns nothing below can come back.
				if d.IsDir() && !s.ctx.descendExcluded() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return fn(rel, p, fi)
	})
}

// Owner is a numeric owner for copied files.
type Owner struct{ UID, GID int }

// CopyOptions says how CopyInto treats what it copies.
type CopyOptions struct {
	// Owner, if set, owns everything copied and every directory created.
	// nil keeps each entry's owner (COPY --from does; copies from the
	// build context pass root or the --chown owner).
	Owner *Owner
	// Unpack, if set (ADD), extracts a source file that is a tar archive —
	// plain, gzip, bzip2, xz or zstd — into the destination directory
	// instead of copying it. It gets the uncompressed tar stream and must
	// refuse entries that would land outside dir.
	Unpack func(r io.Reader, dir string) error
}

// CopyInto copies srcs into the root filesystem at root as COPY and ADD do.
// dest is an absolute path in that filesystem; a trailing "/" says it is a
// directory. A directory source has its contents copied into dest; a file
// goes to dest/NAME when dest ends in "/" or is an existing directory, else
// to dest itself; several sources need a dest ending in "/". Missing parent
// directories are created with mode 0755. dest is resolved with root as
// "/", so symlinks in the image cannot redirect a write outside it; an
// existing entry that is in the way (a file where a directory goes, a
// symlink) is replaced, as Docker's tar extraction does.
func CopyInto(root string, srcs []Source, dest string, opt CopyOptions) error {
	root = filepath.Clean(root)
	dirDest := strings.HasSuffix(dest, "/")
	dest = path.Clean("/" + dest)
	if len(srcs) > 1 && !dirDest {
		return fmt.Errorf("%s: with more than one source the destination must be a directory and end with a /: %w", dest, errdefs.ErrInvalid)
	}
	for _, s := range srcs {
		if err := copyOne(root, s, dest, dirDest, opt); err != nil {
			return err
		}
	}
	return nil
}

func copyOne(root string, s Source, dest string, dirDest bool, opt CopyOptions) error {
	top := s.fullPath()
	fi, err := os.Lstat(top)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		dir, err := mkdirIn(root, dest, opt.Owner)
		if err != nil {
			return err
		}
		return copyTree(root, s, dest, dir, opt.Owner)
	}
	if opt.Unpack != nil && fi.Mode().IsRegular() {
		ok, err := isArchive(top)
		if err != nil {
			return err
		}
		if ok {
			// Extracted entries keep the owners in the archive, as with
			// Docker, whatever --chown says.
			dir, err := mkdirIn(root, dest, nil)
			if err != nil {
				return err
			}
			r, err := openArchive(top)
			if err != nil {
				return err
			}
			err = opt.Unpack(r, dir)
			if cerr := r.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("unpack %s: %w", s.Name, err)
			}
			return nil
		}
	}
	target := dest
	if dirDest {
		target = path.Join(dest, s.Name)
	} else if p, err := securejoin.SecureJoin(root, dest); err == nil {
		if dfi, err := os.Stat(p); err == nil && dfi.IsDir() {
			target = path.Join(dest, s.Name)
		}
	}
	parent, err := mkdirIn(root, path.Dir(target), opt.Owner)
	if err != nil {
		return err
	}
	dst := filepath.Join(parent, path.Base(target))
	if err := copyEntry(top, dst, fi, opt.Owner); err != nil {
		return err
	}
	return setTimes(dst, fi)
}

// copyTree copies the contents of directory source s into dir, the host
// path of dest. The destination directory itself keeps its metadata, as
// Docker's tar extraction skips the archive's "." entry.
func copyTree(root string, s Source, dest, dir string, owner *Owner) error {
	type dirTime struct {
		path string
		fi   fs.FileInfo
	}
	var dirs []dirTime
	err := s.walk(func(rel, full string, fi fs.FileInfo) error {
		if rel == "." {
			return nil
		}
		dst := filepath.Join(dir, filepath.FromSlash(rel))
		// Parents are copied before their contents, so this only fires
		// when .dockerignore excluded a directory and a "!" pattern
		// brought back something inside it.
		if pfi, err := os.Lstat(filepath.Dir(dst)); err != nil || !pfi.IsDir() {
			if _, err := mkdirIn(root, path.Join(dest, path.Dir(rel)), owner); err != nil {
				return err
			}
		}
		if err := copyEntry(full, dst, fi, owner); err != nil {
			return err
		}
		if fi.IsDir() {
			dirs = append(dirs, dirTime{dst, fi})
			return nil
		}
		return setTimes(dst, fi)
	})
	if err != nil {
		return err
	}
	// Directory times last: writing their contents changed them.
	for _, d := range slices.Backward(dirs) {
		if err := setTimes(d.path, d.fi); err != nil {
			return err
		}
	}
	return nil
}

// mkdirIn returns the host path of directory dir of the filesystem at
// root, creating what is missing with mode 0755, owned by owner or, when
// nil, by the builder (root, as Docker's are).
func mkdirIn(root, dir string, owner *Owner) (string, error) {
	p, err := securejoin.SecureJoin(root, dir)
	if err != nil {
		return "", err
	}
	var missing []string
	for q := p; ; q = filepath.Dir(q) {
		fi, err := os.Lstat(q)
		if err == nil {
			if !fi.IsDir() {
				rel, _ := filepath.Rel(root, q)
				return "", fmt.Errorf("%s: not a directory: %w", "/"+filepath.ToSlash(rel), errdefs.ErrConflict)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) || q == root {
			return "", err
		}
		missing = append(missing, q)
	}
	for _, q := range slices.Backward(missing) {
		if err := os.Mkdir(q, 0o755); err != nil {
			return "", err
		}
		if owner != nil {
			if err := os.Lchown(q, owner.UID, owner.GID); err != nil {
				return "", err
			}
		}
		// Mkdir is subject to the umask; the mode must not be.
		if err := os.Chmod(q, 0o755); err != nil {
			return "", err
		}
	}
	return p, nil
}

// copyEntry makes dst a copy of src (not following symlinks): content,
// mode including setuid bits, and owner (owner, or src's when nil).
// Whatever is at dst is replaced, unless both are directories.
func copyEntry(src, dst string, fi fs.FileInfo, owner *Owner) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("copy %s: no stat data", src)
	}
	uid, gid := int(st.Uid), int(st.Gid)
	if owner != nil {
		uid, gid = owner.UID, owner.GID
	}
	if old, err := os.Lstat(dst); err == nil && !(old.IsDir() && fi.IsDir()) {
		if err := os.RemoveAll(dst); err != nil {
			return err
		}
	}
	mode := fi.Mode()
	switch {
	case mode.IsDir():
		if err := os.Mkdir(dst, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	case mode.IsRegular():
		if err := copyFile(src, dst); err != nil {
			return err
		}
	case mode&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
		return os.Lchown(dst, uid, gid)
	case mode&(fs.ModeDevice|fs.ModeNamedPipe) != 0:
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return fmt.Errorf("mknod %s: %w", dst, err)
		}
	default:
		return nil // sockets are not copied; tar cannot carry them either
	}
	if err := os.Lchown(dst, uid, gid); err != nil {
		return err
	}
	// After chown, which clears setuid and setgid.
	return unix.Fchmodat(unix.AT_FDCWD, dst, st.Mode&0o7777, 0)
}

func copyFile(src, dst string) error {
	in, err := os.OpenFile(src, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// setTimes gives dst the source's access and modification times.
func setTimes(dst string, fi fs.FileInfo) error {
	st := fi.Sys().(*syscall.Stat_t)
	ts := []unix.Timespec{
		unix.NsecToTimespec(syscall.TimespecToNsec(st.Atim)),
		unix.NsecToTimespec(syscall.TimespecToNsec(st.Mtim)),
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// ResolveOwner reads a --chown value against the image at root: "user",
// "user:group", numeric ids or a mix. Names are looked up in the image's
// /etc/passwd and /etc/group. A user given alone brings its primary group
// from /etc/passwd; a uid given alone is also the gid (as BuildKit does).
func ResolveOwner(root, spec string) (Owner, error) {
	user, group, hasGroup := strings.Cut(spec, ":")
	if user == "" || (hasGroup && group == "") || strings.Contains(group, ":") {
		return Owner{}, fmt.Errorf("--chown=%s: want user, user:group, uid or uid:gid: %w", spec, errdefs.ErrInvalid)
	}
	var o Owner
	if uid, err := strconv.Atoi(user); err == nil {
		o = Owner{UID: uid, GID: uid}
	} else {
		entry, err := lookupDB(root, "/etc/passwd", user)
		if err != nil {
			return Owner{}, fmt.Errorf("--chown=%s: %w", spec, err)
		}
		// name:password:uid:gid:...
		uid, err1 := strconv.Atoi(field(entry, 2))
		gid, err2 := strconv.Atoi(field(entry, 3))
		if err1 != nil || err2 != nil {
			return Owner{}, fmt.Errorf("--chown=%s: bad /etc/passwd entry for %s: %w", spec, user, errdefs.ErrInvalid)
		}
		o = Owner{UID: uid, GID: gid}
	}
	if !hasGroup {
		return o, nil
	}
	if gid, err := strconv.Atoi(group); err == nil {
		o.GID = gid
		return o, nil
	}
	entry, err := lookupDB(root, "/etc/group", group)
	if err != nil {
		return Owner{}, fmt.Errorf("--chown=%s: %w", spec, err)
	}
	gid, err := strconv.Atoi(field(entry, 2))
	if err != nil {
		return Owner{}, fmt.Errorf("--chown=%s: bad /etc/group entry for %s: %w", spec, group, errdefs.ErrInvalid)
	}
	o.GID = gid
	return o, nil
}

// lookupDB finds name's line in a colon-separated database such as
// /etc/passwd inside the image at root.
func lookupDB(root, file, name string) ([]string, error) {
	p, err := securejoin.SecureJoin(root, file)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no %s in the image to look up %q: %w", file, name, errdefs.ErrNotFound)
		}
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) >= 3 && f[0] == name {
			return f, nil
		}
	}
	return nil, fmt.Errorf("no %q in the image's %s: %w", name, file, errdefs.ErrNotFound)
}

func field(f []string, i int) string {
	if i < len(f) {
		return f[i]
	}
	return ""
}

// Magic numbers of the compressions ADD recognises.
var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicBzip2 = []byte("BZh")
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// isArchive reports whether the file is a tar archive, maybe compressed:
// what ADD extracts rather than copies. Like Docker, it decides by content,
// not by name.
func isArchive(p string) (bool, error) {
	r, err := openArchive(p)
	if err != nil {
		if errors.Is(err, errdefs.ErrUnavailable) {
			return false, err
		}
		return false, nil
	}
	defer r.Close()
	_, err = tar.NewReader(r).Next()
	return err == nil, nil
}

// openArchive opens p and undoes its compression, if any. xz and zstd
// go through the host's xz and zstd programs, as Docker does for xz.
func openArchive(p string) (io.ReadCloser, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReader(f)
	head, _ := br.Peek(6)
	var r io.Reader
	switch {
	case bytes.HasPrefix(head, magicGzip):
		gz, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, err
		}
		r = gz
	case bytes.HasPrefix(head, magicBzip2):
		r = bzip2.NewReader(br)
	case bytes.HasPrefix(head, magicXz):
		return decompressWith("xz", br, f)
	case bytes.HasPrefix(head, magicZstd):
		return decompressWith("zstd", br, f)
	default:
		r = br
	}
	return struct {
		io.Reader
		io.Closer
	}{r, f}, nil
}

// decompressWith pipes in through `prog -d -c`.
func decompressWith(prog string, in io.Reader, f *os.File) (io.ReadCloser, error) {
	bin, err := exec.LookPath(prog)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s archive: the %s program is not installed: %w", prog, prog, errdefs.ErrUnavailable)
	}
	cmd := exec.Command(bin, "-d", "-c", "-q")
	cmd.Stdin = in
	out, err := cmd.StdoutPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", prog, err)
	}
	return &cmdReader{ReadCloser: out, cmd: cmd, f: f}, nil
}

// cmdReader reads a decompressor's output and reaps it on Close.
type cmdReader struct {
	io.ReadCloser
	cmd *exec.Cmd
	f   *os.File
	eof bool
}

func (c *cmdReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	if err == io.EOF {
		c.eof = true
	}
	return n, err
}

func (c *cmdReader) Close() error {
	c.ReadCloser.Close()
	werr := c.cmd.Wait()
	ferr := c.f.Close()
	// A reader that stops early (isArchive reads one header) makes the
	// program die of SIGPIPE, which is no error; a failure after the whole
	// output was read means the stream was corrupt.
	if c.eof && werr != nil {
		return fmt.Errorf("%s: %w", filepath.Base(c.cmd.Path), werr)
	}
	return ferr
}
