package volume

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"golang.org/x/sys/unix"

	"vscript/engine/errdefs"
)

// CopyUp seeds a volume with the image's content at its mount path, as
// Docker does for managed volumes: when volData is empty and srcDir exists,
// srcDir's tree is copied into it with owners, modes, times, extended
// attributes, symlinks, hard links and special files preserved, and volData
// itself takes srcDir's owner and mode. A non-empty volume or a missing
// srcDir is left alone. The caller resolves srcDir inside the container's
// rootfs (symlinks in it are followed here) and decides that copy-up applies
// at all: never for bind mounts, volumes-from or nocopy.
//
// The walk uses *at(2) calls on directory descriptors rather than paths, so
// each file costs a handful of system calls.
func CopyUp(srcDir, volData string) error {
	fail := func(err error) error { return fmt.Errorf("copy-up %s to %s: %w", srcDir, volData, err) }
	src, err := unix.Open(srcDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil
	case errors.Is(err, unix.ENOTDIR):
		return errorf(errdefs.ErrInvalid, "copy-up %s: not a directory", srcDir)
	case err != nil:
		return fail(err)
	}
	defer unix.Close(src)
	dst, err := unix.Open(volData, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(err)
	}
	defer unix.Close(dst)

	c := &copier{
		buf:     make([]byte, 64<<10),
		links:   map[inode]string{},
		dstRoot: dst,
		srcPath: srcDir,
		dstPath: volData,
	}
	names, err := c.readNames(dst)
	if err != nil {
		return fail(err)
	}
	if len(names) > 0 {
		return nil
	}
	if err := c.copyDir(src, dst, "."); err != nil {
		return fail(err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(src, &st); err != nil {
		return fail(err)
	}
	if err := unix.Fchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return fail(err)
	}
	if err := unix.Fchmod(dst, st.Mode&07777); err != nil {
		return fail(err)
	}
	return nil
}

type inode struct{ dev, ino uint64 }

type copier struct {
	buf     []byte           // directory listings, file data, xattr lists
	links   map[inode]string // first copy of a hard-linked file, relative to dstRoot
	dstRoot int
	// Root paths, for the calls that have no *at form (xattrs of symlinks
	// and special files).
	srcPath, dstPath string
	noCopyRange      bool // copy_file_range failed once; use read/write
}

func (c *copier) readNames(dir int) ([]string, error) {
	var names []string
	for {
		n, err := unix.Getdents(dir, c.buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(c.buf[:n], -1, names)
	}
}

// copyDir copies the entries of src into dst; rel is dst's path relative to
// the roots.
func (c *copier) copyDir(src, dst int, rel string) error {
	names, err := c.readNames(src)
	if err != nil {
		return &os.PathError{Op: "readdir", Path: rel, Err: err}
	}
	for _, name := range names {
		if err := c.copyEntry(src, dst, name, path.Join(rel, name)); err != nil {
			return err
		}
	}
	return nil
}

func (c *copier) copyEntry(src, dst int, name, rel string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(src, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "stat", Path: rel, Err: err}
	}
	typ := st.Mode & unix.S_IFMT
	if typ != unix.S_IFDIR && st.Nlink > 1 {
		key := inode{uint64(st.Dev), st.Ino}
		if first, ok := c.links[key]; ok {
			if err := unix.Linkat(c.dstRoot, first, dst, name, 0); err != nil {
				return &os.PathError{Op: "link", Path: rel, Err: err}
			}
			return nil
		}
		c.links[key] = rel
	}
	var err error
	switch typ {
	case unix.S_IFDIR:
		err = c.copySubdir(src, dst, name, rel, &st)
	case unix.S_IFREG:
		err = c.copyFile(src, dst, name, &st)
	case unix.S_IFLNK:
		err = c.copySymlink(src, dst, name, rel, &st)
	default: // devices, FIFOs, sockets
		err = c.copySpecial(dst, name, rel, &st)
	}
	if err != nil {
		return &os.PathError{Op: "copy", Path: rel, Err: err}
	}
	// Times last: setting anything else inside a directory changes its mtime.
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(dst, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimes", Path: rel, Err: err}
	}
	return nil
}

func (c *copier) copySubdir(src, dst int, name, rel string, st *unix.Stat_t) error {
	// Owner-only while filling it; its own mode is set once it is full, so
	// a read-only source directory can still be filled.
	if err := unix.Mkdirat(dst, name, 0o700); err != nil {
		return err
	}
	sfd, err := unix.Openat(src, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(sfd)
	dfd, err := unix.Openat(dst, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	if err := c.copyDir(sfd, dfd, rel); err != nil {
		return err
	}
	return c.setMeta(sfd, dfd, st)
}

func (c *copier) copyFile(src, dst int, name string, st *unix.Stat_t) error {
	sfd, err := unix.Openat(src, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(sfd)
	dfd, err := unix.Openat(dst, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	if err := c.copyData(sfd, dfd, st.Size); err != nil {
		return err
	}
	return c.setMeta(sfd, dfd, st)
}

// copyData copies size bytes, in the kernel where the filesystems allow it.
func (c *copier) copyData(src, dst int, size int64) error {
	for !c.noCopyRange && size > 0 {
		n, err := unix.CopyFileRange(src, nil, dst, nil, int(min(size, 1<<30)), 0)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EXDEV || err == unix.EINVAL || err == unix.ENOSYS || err == unix.EOPNOTSUPP:
			// Across filesystems (an overlay rootfs to the state dir) the
			// kernel may refuse; nothing has been copied then.
			c.noCopyRange = true
		case err != nil:
			return err
		case n == 0:
			return nil // the file shrank meanwhile
		default:
			size -= int64(n)
		}
	}
	for size > 0 {
		n, err := unix.Read(src, c.buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			return err
		}
		for w := c.buf[:n]; len(w) > 0; {
			m, err := unix.Write(dst, w)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return err
			}
			w = w[m:]
		}
		size -= int64(n)
	}
	return nil
}

// setMeta gives dfd sfd's owner, mode and extended attributes. Owner first:
// chown clears set-id bits and file capabilities.
func (c *copier) setMeta(sfd, dfd int, st *unix.Stat_t) error {
	if err := unix.Fchown(dfd, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if err := unix.Fchmod(dfd, st.Mode&07777); err != nil {
		return err
	}
	return c.copyXattrs(
		func(b []byte) (int, error) { return unix.Flistxattr(sfd, b) },
		func(k string, b []byte) (int, error) { return unix.Fgetxattr(sfd, k, b) },
		func(k string, v []byte) error { return unix.Fsetxattr(dfd, k, v, 0) })
}

func (c *copier) copySymlink(src, dst int, name, rel string, st *unix.Stat_t) error {
	n, err := unix.Readlinkat(src, name, c.buf)
	if err != nil {
		return err
	}
	if err := unix.Symlinkat(string(c.buf[:n]), dst, name); err != nil {
		return err
	}
	if err := unix.Fchownat(dst, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	return c.copyPathXattrs(rel)
}

func (c *copier) copySpecial(dst int, name, rel string, st *unix.Stat_t) error {
	if err := unix.Mknodat(dst, name, st.Mode, int(st.Rdev)); err != nil {
		return err
	}
	if err := unix.Fchownat(dst, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if err := unix.Fchmodat(dst, name, st.Mode&07777, 0); err != nil {
		return err
	}
	return c.copyPathXattrs(rel)
}

// copyPathXattrs copies the xattrs of an entry that cannot be opened (a
// symlink, a FIFO) by path.
func (c *copier) copyPathXattrs(rel string) error {
	src, dst := filepath.Join(c.srcPath, rel), filepath.Join(c.dstPath, rel)
	return c.copyXattrs(
		func(b []byte) (int, error) { return unix.Llistxattr(src, b) },
		func(k string, b []byte) (int, error) { return unix.Lgetxattr(src, k, b) },
		func(k string, v []byte) error { return unix.Lsetxattr(dst, k, v, 0) })
}

func (c *copier) copyXattrs(list func([]byte) (int, error), get func(string, []byte) (int, error), set func(string, []byte) error) error {
	n, err := list(c.buf)
	if err == unix.EOPNOTSUPP {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list xattrs: %w", err)
	}
	if n == 0 {
		return nil
	}
	// The names must survive the reads of values into c.buf.
	keys := splitNul(c.buf[:n])
	for _, k := range keys {
		m, err := get(k, c.buf)
		if err == unix.ENODATA {
			continue // removed meanwhile
		}
		if err != nil {
			return fmt.Errorf("get xattr %s: %w", k, err)
		}
		if err := set(k, c.buf[:m]); err != nil && err != unix.EOPNOTSUPP {
			return fmt.Errorf("set xattr %s: %w", k, err)
		}
	}
	return nil
}

func splitNul(b []byte) []string {
	var out []string
	for start := 0; start < len(b); {
		end := start
		for end < len(b) && b[end] != 0 {
			end++
		}
		if end > start {
			out = append(out, string(b[start:end]))
		}
		start = end + 1
	}
	return out
}
