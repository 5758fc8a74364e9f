package runtime

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// view is a container's file tree as the parent sees it from outside: the
// root directory, with the mounts the container will have laid over it. It
// lets Create resolve paths (symlinks included, never out of the root)
// exactly as the container will, before the container exists: to make
// mountpoints, read /etc/passwd and look the command up. For a running
// container the root is /proc/PID/root, where the kernel shows its mounts,
// and the view has none of its own.
type view struct {
	root   string // clean
	mounts []viewMount
}

// viewMount is a mount, in the order they are made: a later one hides what
// an earlier one shows at or below its destination.
type viewMount struct {
	dst string // a resolved, clean container path
	// src is the host path whose contents the mount shows; "" for a
	// filesystem the container gets fresh and empty (tmpfs, proc, sysfs).
	src string
}

func newView(root string) *view { return &view{root: filepath.Clean(root)} }

func (v *view) addMount(dst, src string) {
	v.mounts = append(v.mounts, viewMount{dst: dst, src: src})
}

// under returns the mount that shows container path p and p's path inside
// it, or nil and p when p is in the root itself.
func (v *view) under(p string) (*viewMount, string) {
	for i := len(v.mounts) - 1; i >= 0; i-- {
		m := &v.mounts[i]
		if p == m.dst {
			return m, ""
		}
		prefix := m.dst + "/"
		if m.dst == "/" {
			prefix = "/"
		}
		if rest, ok := strings.CutPrefix(p, prefix); ok {
			return m, rest
		}
	}
	return nil, p
}

// host returns the host path that shows container path p (resolved, clean),
// or false when p lies in a fresh filesystem, which only the container sees.
func (v *view) host(p string) (string, bool) {
	m, rest := v.under(p)
	switch {
	case m == nil:
		return filepath.Join(v.root, p), true
	case m.src == "":
		return "", false
	}
	return filepath.Join(m.src, rest), true
}

// containerPath turns a path securejoin built under v.root back into the
// container's path.
func (v *view) containerPath(name string) string {
	return path.Clean("/" + strings.TrimPrefix(name, v.root))
}

// Lstat and Readlink make the view a securejoin.VFS.
func (v *view) Lstat(name string) (fs.FileInfo, error) {
	p := v.containerPath(name)
	m, rest := v.under(p)
	switch {
	case m != nil && m.src == "":
		// Nothing in a fresh filesystem yet, and certainly no symlink.
		return nil, &fs.PathError{Op: "lstat", Path: p, Err: syscall.ENOENT}
	case m != nil && rest == "":
		// A mount's root is what its source leads to, never a link.
		return os.Stat(m.src)
	}
	h, _ := v.host(p)
	return os.Lstat(h)
}

func (v *view) Readlink(name string) (string, error) {
	h, ok := v.host(v.containerPath(name))
	if !ok {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: syscall.EINVAL}
	}
	return os.Readlink(h)
}

// resolve returns container path p with its symlinks resolved inside the
// container, as a clean absolute path.
func (v *view) resolve(p string) (string, error) {
	full, err := securejoin.SecureJoinVFS(v.root, p, v)
	if err != nil {
		return "", err
	}
	return v.containerPath(full), nil
}

// open opens container path p for reading.
func (v *view) open(p string) (*os.File, error) {
	r, err := v.resolve(p)
	if err != nil {
		return nil, err
	}
	h, ok := v.host(r)
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: p, Err: syscall.ENOENT}
	}
	return os.Open(h)
}

// mountpoint resolves dst and makes sure there is something to mount on: a
// directory, or an empty file. It returns the resolved path, and the ops
// that create it when it lies in a fresh filesystem, which only the child,
// having mounted it, can write to.
func (v *view) mountpoint(dst string, dir bool) (string, []op, error) {
	p, err := v.resolve(dst)
	if err != nil {
		return "", nil, &opError{"resolve " + dst, err}
	}
	if m, rest := v.under(p); m != nil && m.src == "" {
		var ops []op
		cur := m.dst
		desc := "create mountpoint " + dst
		for rest != "" {
			var part string
			part, rest, _ = strings.Cut(rest, "/")
			cur = path.Join(cur, part)
			if rest == "" && !dir {
				ops = append(ops, mkfileOp(filepath.Join(v.root, cur), desc))
			} else {
				ops = append(ops, mkdirOp(filepath.Join(v.root, cur), 0o755, desc))
			}
		}
		return p, ops, nil
	}
	h, _ := v.host(p)
	if _, err := os.Lstat(h); err == nil {
		return p, nil, nil
	}
	if dir {
		err = os.MkdirAll(h, 0o755)
	} else if err = os.MkdirAll(filepath.Dir(h), 0o755); err == nil {
		var f *os.File
		if f, err = os.OpenFile(h, os.O_CREATE|os.O_RDONLY, 0o644); err == nil {
			f.Close()
		}
	}
	if err != nil {
		return "", nil, &opError{"create mountpoint " + dst, err}
	}
	return p, nil, nil
}

// lookPath finds the command file as exec.LookPath would inside the
// container: in the directories of pathList unless file holds a slash,
// relative to the working directory cwd, and executable by the user uid with
// the groups gids. The errors are exec.LookPath's, with container paths.
func (v *view) lookPath(file, pathList, cwd string, uid int, gids []int) (string, error) {
	if strings.Contains(file, "/") {
		if err := v.executable(file, cwd, uid, gids); err != nil {
			return "", &exec.Error{Name: file, Err: err}
		}
		return file, nil
	}
	for _, dir := range filepath.SplitList(pathList) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if v.executable(p, cwd, uid, gids) == nil {
			return p, nil
		}
	}
	return "", &exec.Error{Name: file, Err: exec.ErrNotFound}
}

// executable is exec's findExecutable for a container path.
func (v *view) executable(file, cwd string, uid int, gids []int) error {
	p := file
	if !path.IsAbs(p) {
		p = path.Join(cwd, p)
	}
	notThere := func(err error) error {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return &fs.PathError{Op: "stat", Path: file, Err: err}
	}
	r, err := v.resolve(p)
	if err != nil {
		return notThere(err)
	}
	h, ok := v.host(r)
	if !ok {
		return notThere(syscall.ENOENT)
	}
	fi, err := os.Stat(h)
	if err != nil {
		return notThere(err)
	}
	if fi.IsDir() {
		return syscall.EISDIR
	}
	if !mayExecute(fi, uid, gids) {
		return fs.ErrPermission
	}
	return nil
}

// mayExecute is the kernel's permission check for execve by uid with the
// groups gids: root needs one execute bit, anyone else the bit of the class
// they are in.
func mayExecute(fi fs.FileInfo, uid int, gids []int) bool {
	mode := fi.Mode().Perm()
	if uid == 0 {
		return mode&0o111 != 0
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !ok:
		return mode&0o111 != 0
	case int(st.Uid) == uid:
		return mode&0o100 != 0
	case slices.Contains(gids, int(st.Gid)):
		return mode&0o010 != 0
	}
	return mode&0o001 != 0
}
