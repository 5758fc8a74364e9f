package runtime

/*
#include "spawn.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"vscript/engine/errdefs"
)

// rootfsOps returns the steps that build the container's root filesystem in
// its new mount namespace and pivot into it, in runc's order
// (libcontainer/rootfs_linux.go): system mounts, the spec's mounts, the Etc
// files, /dev's devices, pivot_root, then masked and read-only paths. The
// mountpoints are made here, from outside, in v; each mount is added to v
// as it is planned, so that v ends as the container will see its tree.
func rootfsOps(s *Spec, v *view, etc map[string]string) ([]op, error) {
	root := v.root
	// Nothing mounted from here on may propagate back to the caller.
	ops := []op{mountOp("make / rslave", "", "/", "", unix.MS_SLAVE|unix.MS_REC, "")}

	for _, m := range systemMounts {
		dst, mk, err := v.mountpoint(m.dst, true)
		if err != nil {
			return nil, err
		}
		ops = append(append(ops, mk...), mountOp("mount "+m.fstype+" on "+m.dst, m.src, inRoot(root, dst), m.fstype, m.flags, m.data))
		v.addMount(dst, "")
	}
	for _, m := range sortedMounts(s.Mounts) {
		mops, err := userMountOps(v, m)
		if err != nil {
			return nil, err
		}
		ops = append(ops, mops...)
	}
	for _, p := range sortedKeys(etc) {
		dst, mk, err := v.mountpoint(p, false)
		if err != nil {
			return nil, err
		}
		ops = append(append(ops, mk...), mountOp("bind "+p, etc[p], inRoot(root, dst), "", unix.MS_BIND, ""))
		v.addMount(dst, etc[p])
	}
	// Docker creates a missing working directory, before / can turn read-only.
	if s.Cwd != "" {
		_, mk, err := v.mountpoint(s.Cwd, true)
		if err != nil {
			return nil, err
		}
		ops = append(ops, mk...)
	}
	ops = append(ops, devOps(inRoot(root, "/dev"))...)

	// runc's pivot_root without a put_old directory: stack the old root under
	// the new one, then detach it.
	ops = append(ops,
		chdirOp(root, "chdir "+root),
		op{code: C.VS_PIVOT_ROOT, s: [4]string{".", "."}, desc: "pivot_root"},
		mountOp("make old root rslave", "", ".", "", unix.MS_SLAVE|unix.MS_REC, ""),
		op{code: C.VS_UMOUNT, s: [4]string{"."}, n: [3]int64{unix.MNT_DETACH}, desc: "detach old root"},
		chdirOp("/", "chdir /"))

	for _, p := range procPaths().masked {
		o := mountOp("mask "+p.path, "/dev/null", p.path, "", unix.MS_BIND, "")
		if p.dir {
			o = mountOp("mask "+p.path, "tmpfs", p.path, "tmpfs", unix.MS_RDONLY, "")
		}
		o.flags = C.VS_OK_ENOENT
		ops = append(ops, o)
	}
	for _, p := range procPaths().readonly {
		bind := mountOp("bind "+p, p, p, "", unix.MS_BIND|unix.MS_REC, "")
		ro := remountReadOnlyOp("remount "+p+" read-only", p)
		bind.flags, ro.flags = C.VS_OK_ENOENT, C.VS_OK_ENOENT
		ops = append(ops, bind, ro)
	}
	if s.ReadOnlyRootfs {
		ops = append(ops, remountReadOnlyOp("remount / read-only", "/"))
	}
	return ops, nil
}

type sysMount struct {
	src, dst, fstype string
	flags            uintptr
	data             string
}

// systemMounts are Docker's default mounts. /sys is always a fresh sysfs:
// it then shows the network devices of the container's own namespace.
var systemMounts = []sysMount{
	{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"tmpfs", "/dev", "tmpfs", unix.MS_NOSUID | unix.MS_STRICTATIME, "mode=755,size=65536k"},
	{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"},
	{"shm", "/dev/shm", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "mode=1777,size=65536k"},
	{"mqueue", "/dev/mqueue", "mqueue", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"sysfs", "/sys", "sysfs", unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
}

func userMountOps(v *view, m Mount) ([]op, error) {
	root := v.root
	if m.Type == "tmpfs" {
		dst, ops, err := v.mountpoint(m.Destination, true)
		if err != nil {
			return nil, err
		}
		flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
		if m.ReadOnly {
			flags |= unix.MS_RDONLY
		}
		v.addMount(dst, "")
		return append(ops, mountOp("mount tmpfs on "+m.Destination, "tmpfs", inRoot(root, dst), "tmpfs", flags, "")), nil
	}
	fi, err := os.Stat(m.Source)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &classError{fmt.Sprintf("bind source path does not exist: %s", m.Source), errdefs.ErrNotFound}
	}
	if err != nil {
		return nil, &opError{"bind source", err}
	}
	dst, ops, err := v.mountpoint(m.Destination, fi.IsDir())
	if err != nil {
		return nil, err
	}
	target := inRoot(root, dst)
	ops = append(ops, mountOp("bind "+m.Source+" on "+m.Destination, m.Source, target, "", unix.MS_BIND|unix.MS_REC, ""))
	if m.ReadOnly {
		ops = append(ops, remountReadOnlyOp("remount "+m.Destination+" read-only", target))
	}
	v.addMount(dst, m.Source)
	return ops, nil
}

// devOps fill the /dev tmpfs with Docker's minimal set of devices. The
// child runs with umask 0, so the modes are exact.
func devOps(dev string) []op {
	var ops []op
	for _, d := range []struct {
		name         string
		major, minor uint32
	}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}} {
		ops = append(ops, op{code: C.VS_MKNOD, s: [4]string{path.Join(dev, d.name)},
			n: [3]int64{unix.S_IFCHR | 0o666, int64(unix.Mkdev(d.major, d.minor))}, desc: "mknod /dev/" + d.name})
	}
	links := [][2]string{
		{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},
	}
	// As runc: /dev/core only where the kernel has a /proc/kcore.
	if procPaths().kcore {
		links = append(links, [2]string{"/proc/kcore", "core"})
	}
	for _, l := range links {
		ops = append(ops, op{code: C.VS_SYMLINK, s: [4]string{l[0], path.Join(dev, l[1])}, desc: "symlink /dev/" + l[1]})
	}
	return ops
}

// The paths Docker hides from containers, and those it makes read-only.
var (
	maskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
	}
	readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

type maskedPath struct {
	path string
	dir  bool // masked by an empty tmpfs; a file gets /dev/null
}

// procPaths returns which of those paths this kernel has, looked up once in
// our own /proc and /sys: the container's show the same kernel. (The child
// still skips a path it does not find.)
var procPaths = sync.OnceValue(func() (r struct {
	masked   []maskedPath
	readonly []string
	kcore    bool
}) {
	for _, p := range maskedPaths {
		if fi, err := os.Stat(p); err == nil {
			r.masked = append(r.masked, maskedPath{p, fi.IsDir()})
		}
	}
	for _, p := range readonlyPaths {
		if _, err := os.Stat(p); err == nil {
			r.readonly = append(r.readonly, p)
		}
	}
	_, err := os.Stat("/proc/kcore")
	r.kcore = err == nil
	return r
})

// inRoot is the container path p as seen from before pivot_root.
func inRoot(root, p string) string { return filepath.Join(root, p) }
