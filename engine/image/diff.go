package image

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ChangeKind is how a path changed, as `docker diff` prints it.
type ChangeKind string

const (
	Added    ChangeKind = "A"
	Modified ChangeKind = "C"
	Deleted  ChangeKind = "D"
)

// Change is one line of `docker diff`: a kind and an absolute path inside
// the container.
type Change struct {
	Kind ChangeKind
	Path string
}

// Diff lists the changes a container made, from its overlay upper directory
// and the lower directories of its image (topmost first, as Mount.Lower, but
// absolute or relative to the current directory).
//
// It follows Docker's overlay2 rules so the output reads the same: a
// whiteout is a deletion; an opaque directory that exists below was deleted
// and made anew; anything else is an addition unless the path exists below,
// then a change, except a directory whose mode, size and mtime match the one
// below (it was only copied up). The parent of an added or deleted path is
// reported changed even when its own metadata is unchanged. Paths come in
// lexical walk order, parents first.
func Diff(upper string, lowers []string) ([]Change, error) {
	var changes []Change
	changedDirs := map[string]bool{}
	err := filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(upper, p)
		if err != nil || rel == "." {
			return err
		}
		ctrPath := "/" + filepath.ToSlash(rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		below, err := lookupLower(lowers, ctrPath)
		if err != nil {
			return err
		}

		kind := Added
		switch {
		case isWhiteout(fi):
			kind = Deleted
		case fi.IsDir() && below != nil && isOpaque(p):
			kind = Deleted
		case below != nil:
			if fi.IsDir() && below.IsDir() && fi.Size() == below.Size() &&
				fi.Mode() == below.Mode() && sameFsTime(fi.ModTime(), below.ModTime()) {
				return nil
			}
			kind = Modified
		}
		if fi.IsDir() {
			changedDirs[ctrPath] = true
		}
		if kind != Modified {
			if parent := path.Dir(ctrPath); parent != "/" && !changedDirs[parent] {
				changes = append(changes, Change{Modified, parent})
				changedDirs[parent] = true
			}
		}
		changes = append(changes, Change{kind, ctrPath})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("container diff %s: %w", upper, err)
	}
	return changes, nil
}

// lookupLower finds ctrPath in the stacked lower directories as the overlay
// would show it: the topmost layer that has the name wins, and a whiteout
// there, or an opaque directory above it, hides everything below.
func lookupLower(lowers []string, ctrPath string) (fs.FileInfo, error) {
	for _, lower := range lowers {
		fi, err := os.Lstat(filepath.Join(lower, ctrPath))
		if err == nil {
			if isWhiteout(fi) {
				return nil, nil
			}
			return fi, nil
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, unix.ENOTDIR) {
			return nil, err
		}
		if hidden, err := hiddenBelow(lower, ctrPath); hidden || err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// hiddenBelow reports whether a layer stops the lookup of ctrPath from
// reaching the layers under it: one of the path's parents is opaque, a
// whiteout, or not a directory in this layer.
func hiddenBelow(lower, ctrPath string) (bool, error) {
	for dir := path.Dir(ctrPath); dir != "/"; dir = path.Dir(dir) {
		p := filepath.Join(lower, dir)
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			continue
		}
		if err != nil {
			return false, err
		}
		if !fi.IsDir() || isOpaque(p) {
			return true, nil
		}
	}
	return false, nil
}

func isWhiteout(fi fs.FileInfo) bool {
	if fi.Mode()&fs.ModeCharDevice == 0 {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	return st.Rdev == 0
}

// sameFsTime is Docker's: filesystems that keep only seconds match any
// nanoseconds.
func sameFsTime(a, b time.Time) bool {
	return a.Equal(b) || (a.Unix() == b.Unix() && (a.Nanosecond() == 0 || b.Nanosecond() == 0))
}
