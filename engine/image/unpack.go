package image

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"vscript/engine/errdefs"
)

// Whiteout names of the layer tar format (the OCI image spec's, from AUFS).
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
	// Overlayfs marks an opaque directory with this xattr and a deleted
	// name with a 0/0 character device.
	opaqueXattr = "trusted.overlay.opaque"
	paxXattr    = "SCHILY.xattr."
)

// Unpack extracts a layer tar (plain or gzip'd) into dir, converting the
// tar's whiteouts into overlayfs ones, so that dir can serve as a lowerdir.
//
// The tar is untrusted: an entry naming an absolute path or "..", a relative
// symlink or a hard link leading out of dir, or a path through a symlink is
// refused with errdefs.ErrInvalid. Symlink targets are otherwise left alone:
// an absolute target is resolved inside the container's root when used, never
// here, and extraction never writes through a symlink.
func Unpack(r io.Reader, dir string) error {
	_, err := unpack(r, dir)
	return err
}

// unpack is Unpack that also returns the layer's diff ID: the digest of the
// uncompressed tar, hashed as it streams by.
func unpack(r io.Reader, dir string) (v1.Hash, error) {
	br := bufio.NewReader(r)
	var tr io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return v1.Hash{}, fmt.Errorf("layer unpack: %w: %v", errdefs.ErrInvalid, err)
		}
		defer zr.Close()
		tr = zr
	}
	h := sha256.New()
	tr = io.TeeReader(tr, h)
	u := unpacker{dir: dir, dirs: map[string]bool{".": true}}
	if err := u.run(tar.NewReader(tr)); err != nil {
		return v1.Hash{}, err
	}
	// The diff ID covers the tar's end-of-archive padding too.
	if _, err := io.Copy(io.Discard, tr); err != nil {
		return v1.Hash{}, fmt.Errorf("layer unpack: %w: %v", errdefs.ErrInvalid, err)
	}
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, nil
}

type unpacker struct {
	dir string
	// dirs caches relative paths known to be real directories, so that
	// checking an entry's parents costs a map lookup, not an lstat per
	// component. It is cleared whenever an entry replaces an existing file.
	dirs map[string]bool
	// Directory mtimes are set last: creating children changes them.
	dirTimes []dirTime
}

type dirTime struct {
	path  string
	mtime time.Time
}

func (u *unpacker) run(tr *tar.Reader) error {
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("layer unpack: reading tar: %w: %v", errdefs.ErrInvalid, err)
		}
		if err := u.entry(hdr, tr); err != nil {
			return fmt.Errorf("layer unpack %s: %w", hdr.Name, err)
		}
	}
	for i := len(u.dirTimes) - 1; i >= 0; i-- {
		d := u.dirTimes[i]
		if err := setMtime(d.path, d.mtime); err != nil {
			return fmt.Errorf("layer unpack %s: %w", d.path, err)
		}
	}
	return nil
}

// hostile builds the error for an entry that tries to leave the layer.
func hostile(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errdefs.ErrInvalid, fmt.Sprintf(format, a...))
}

// cleanName checks an archive path and returns it relative to the layer root.
func cleanName(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", hostile("absolute path")
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", hostile(`path contains ".."`)
		}
	}
	return path.Clean(name), nil
}

func (u *unpacker) entry(hdr *tar.Header, r io.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	}
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	parent, base := path.Split(rel)
	parent = path.Clean(parent)

	if strings.HasPrefix(base, whiteoutPrefix) {
		if err := u.mkparents(rel); err != nil {
			return err
		}
		return u.whiteout(hdr, parent, base)
	}
	if rel == "." {
		if hdr.Typeflag != tar.TypeDir {
			return hostile("the layer root must be a directory")
		}
		return u.attrs(u.dir, hdr)
	}
	if err := u.mkparents(rel); err != nil {
		return err
	}
	target := filepath.Join(u.dir, rel)

	// Whatever is at the name goes, unless a directory meets a directory:
	// tars may list a directory again to update it. Removing first is also
	// what keeps the creations below from following a symlink.
	if fi, err := os.Lstat(target); err == nil {
		if !(fi.IsDir() && hdr.Typeflag == tar.TypeDir) {
			if err := os.RemoveAll(target); err != nil {
				return err
			}
			clear(u.dirs)
			u.dirs["."] = true
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}

	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := os.Mkdir(target, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		u.dirs[rel] = true
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, r)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	case tar.TypeSymlink:
		// Relative targets are checked as Docker does: lexically, from the
		// link's own directory. Absolute ones name a path in the container.
		if !path.IsAbs(hdr.Linkname) && escapes(path.Join(parent, hdr.Linkname)) {
			return hostile("symlink target %s leaves the layer", hdr.Linkname)
		}
		if err := os.Symlink(hdr.Linkname, target); err != nil {
			return err
		}
	case tar.TypeLink:
		src, err := cleanName(hdr.Linkname)
		if err != nil {
			return hostile("hard link target %s leaves the layer", hdr.Linkname)
		}
		if err := u.checkParents(src); err != nil {
			return err
		}
		// link(2) does not follow a symlink at src, so this cannot reach out.
		if err := os.Link(filepath.Join(u.dir, src), target); err != nil {
			return err
		}
		// The link shares its inode, and so its metadata, with src.
		return nil
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		mode := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			mode = unix.S_IFCHR
		case tar.TypeBlock:
			mode = unix.S_IFBLK
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknod(target, mode|0o600, int(dev)); err != nil {
			return &os.PathError{Op: "mknod", Path: target, Err: err}
		}
	default:
		return fmt.Errorf("%w: unsupported tar entry type %q", errdefs.ErrInvalid, hdr.Typeflag)
	}
	return u.attrs(target, hdr)
}

// whiteout turns `.wh.NAME` into overlayfs's 0/0 device NAME, and the opaque
// marker into the opaque xattr on its directory.
func (u *unpacker) whiteout(hdr *tar.Header, parent, base string) error {
	dir := filepath.Join(u.dir, parent)
	if base == whiteoutOpaque {
		// Unlike other xattrs this one is the layer's meaning: no fallback.
		if err := unix.Lsetxattr(dir, opaqueXattr, []byte("y"), 0); err != nil {
			return &os.PathError{Op: "setxattr " + opaqueXattr, Path: dir, Err: err}
		}
		return nil
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if strings.HasPrefix(name, whiteoutPrefix) || name == "" {
		// Other AUFS metadata (.wh..wh.plnk and friends) means nothing here.
		return nil
	}
	target := filepath.Join(dir, name)
	if err := os.RemoveAll(target); err != nil {
		return err
	}
	clear(u.dirs)
	u.dirs["."] = true
	if err := unix.Mknod(target, unix.S_IFCHR, 0); err != nil {
		return &os.PathError{Op: "mknod", Path: target, Err: err}
	}
	if err := os.Lchown(target, hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	return setMtime(target, hdr.ModTime)
}

// escapes reports whether a cleaned relative path climbs above its root.
func escapes(rel string) bool {
	rel = path.Clean(rel)
	return rel == ".." || strings.HasPrefix(rel, "../") || path.IsAbs(rel)
}

// mkparents makes sure every parent of rel is a real directory, creating
// missing ones, and refuses a parent that is anything else: writing through
// a symlink could land anywhere on the host.
func (u *unpacker) mkparents(rel string) error {
	return u.parents(rel, true)
}

// checkParents is mkparents without creating anything.
func (u *unpacker) checkParents(rel string) error {
	return u.parents(rel, false)
}

func (u *unpacker) parents(rel string, create bool) error {
	parent := path.Dir(rel)
	if u.dirs[parent] {
		return nil
	}
	if err := u.parents(parent, create); err != nil {
		return err
	}
	p := filepath.Join(u.dir, parent)
	fi, err := os.Lstat(p)
	switch {
	case err == nil && fi.IsDir():
	case err == nil && fi.Mode()&os.ModeSymlink != 0:
		return hostile("parent %s is a symlink", parent)
	case err == nil:
		return hostile("parent %s is not a directory", parent)
	case errors.Is(err, os.ErrNotExist) && create:
		if err := os.Mkdir(p, 0o755); err != nil {
			return err
		}
	default:
		return err
	}
	u.dirs[parent] = true
	return nil
}

// attrs applies an entry's owner, mode, xattrs and mtime to what was just
// created at p. None of the calls follow a symlink at p.
func (u *unpacker) attrs(p string, hdr *tar.Header) error {
	if err := os.Lchown(p, hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	for k, v := range hdr.PAXRecords {
		// Overlayfs's own xattrs would change what the mount shows (say an
		// opaque directory, or a redirect to another layer's file); only
		// whiteout entries may say such things.
		if name, ok := strings.CutPrefix(k, paxXattr); ok && !overlayXattr(name) {
			if err := setxattr(p, name, v); err != nil {
				return err
			}
		}
	}
	if hdr.Typeflag == tar.TypeSymlink {
		return setMtime(p, hdr.ModTime)
	}
	// After chown, which clears the setuid and setgid bits.
	if err := os.Chmod(p, tarMode(hdr.Mode)); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeDir {
		u.dirTimes = append(u.dirTimes, dirTime{p, hdr.ModTime})
		return nil
	}
	return setMtime(p, hdr.ModTime)
}

// tarMode converts a tar header's mode bits to os.FileMode permissions.
func tarMode(m int64) os.FileMode {
	mode := os.FileMode(m) & os.ModePerm
	if m&04000 != 0 {
		mode |= os.ModeSetuid
	}
	if m&02000 != 0 {
		mode |= os.ModeSetgid
	}
	if m&01000 != 0 {
		mode |= os.ModeSticky
	}
	return mode
}

func setMtime(p string, mtime time.Time) error {
	ts := unix.Timespec{Sec: mtime.Unix(), Nsec: int64(mtime.Nanosecond())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimes", Path: p, Err: err}
	}
	return nil
}

func setxattr(p, name, value string) error {
	err := unix.Lsetxattr(p, name, []byte(value), 0)
	// A filesystem without xattrs of that namespace loses them, as Docker's
	// unpacking does; failing the whole layer for it would help nobody.
	if err == nil || errors.Is(err, unix.ENOTSUP) {
		return nil
	}
	return &os.PathError{Op: "setxattr " + name, Path: p, Err: err}
}

// overlayXattr reports whether an xattr is overlayfs metadata rather than
// file content.
func overlayXattr(name string) bool {
	return strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.")
}
