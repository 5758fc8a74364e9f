package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Pack writes the overlay upper directory dir as a layer tar: 0/0 character
// devices become `.wh.NAME` whiteouts and opaque directories get a
// `.wh..wh..opq` entry, the inverse of Unpack.
//
// The tar is deterministic, so that the same changes always make the same
// layer digest: entries in lexical order, numeric owners only (no names
// looked up on this host), mtimes to the second, no atime or ctime.
// Overlayfs's own metadata xattrs (trusted.overlay.*) are not part of the
// layer and are left out; sockets are skipped, as Docker does.
//
// Pack reads the upper directory as overlayfs leaves it with
// redirect_dir=off and metacopy=off (Mount.Options asks for both): with
// either on, an upper directory alone no longer holds a layer's content.
func Pack(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	links := map[fileKey]string{}
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(dir, p)
		if err == nil && rel != "." {
			err = packEntry(tw, p, filepath.ToSlash(rel), links)
		}
		if err != nil && rel == "." {
			return fmt.Errorf("layer pack %s: %w", dir, err)
		}
		if err != nil {
			return fmt.Errorf("layer pack %s: %w", rel, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("layer pack %s: %w", dir, err)
	}
	return nil
}

type fileKey struct{ dev, ino uint64 }

func packEntry(tw *tar.Writer, p, rel string, links map[fileKey]string) error {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return err
	}
	hdr := &tar.Header{
		Name:    rel,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
	}
	var opaque bool
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
		opaque = isOpaque(p)
	case unix.S_IFREG:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = st.Size
		if st.Nlink > 1 {
			key := fileKey{st.Dev, st.Ino}
			if first, ok := links[key]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			} else {
				links[key] = rel
			}
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
	case unix.S_IFCHR:
		if st.Rdev == 0 {
			// A whiteout. Docker writes it with these fixed fields too.
			dir, base := path.Split(rel)
			hdr.Name = dir + whiteoutPrefix + base
			hdr.Typeflag, hdr.Mode = tar.TypeReg, 0o600
			return tw.WriteHeader(hdr)
		}
		hdr.Typeflag = tar.TypeChar
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFBLK:
		hdr.Typeflag = tar.TypeBlock
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil // sockets
	}
	xattrs, err := layerXattrs(p)
	if err != nil {
		return err
	}
	if len(xattrs) > 0 {
		hdr.PAXRecords = xattrs
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		// CopyN: a file that grows while packing must not overrun its header.
		if _, err := io.CopyN(tw, f, hdr.Size); err != nil {
			return err
		}
	}
	if opaque {
		return tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeReg,
			Name:     rel + "/" + whiteoutOpaque,
			Mode:     hdr.Mode & 0o777,
			Uid:      hdr.Uid,
			Gid:      hdr.Gid,
			ModTime:  time.Unix(0, 0),
		})
	}
	return nil
}

func isOpaque(p string) bool {
	buf := make([]byte, 1)
	n, err := unix.Lgetxattr(p, opaqueXattr, buf)
	return err == nil && n == 1 && buf[0] == 'y'
}

// layerXattrs returns p's extended attributes as tar PAX records, leaving
// out overlayfs's bookkeeping.
func layerXattrs(p string) (map[string]string, error) {
	names, err := listxattr(p)
	if err != nil || len(names) == 0 {
		return nil, err
	}
	recs := map[string]string{}
	for _, name := range names {
		if overlayXattr(name) {
			continue
		}
		val, err := getxattr(p, name)
		if err != nil {
			return nil, err
		}
		recs[paxXattr+name] = string(val)
	}
	return recs, nil
}

func listxattr(p string) ([]string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, &os.PathError{Op: "listxattr", Path: p, Err: err}
		}
		var names []string
		for _, name := range bytes.Split(buf[:n], []byte{0}) {
			if len(name) > 0 {
				names = append(names, string(name))
			}
		}
		return names, nil
	}
}

func getxattr(p, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(p, name, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "getxattr " + name, Path: p, Err: err}
		}
		return buf[:n], nil
	}
}
