package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"vscript/engine/errdefs"
)

// setupRootfs builds the container's root filesystem in init's new mount
// namespace and pivots into it, in runc's order (libcontainer/rootfs_linux.go).
func setupRootfs(cfg *initConfig) error {
	// Nothing mounted from here on may propagate back to the caller.
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return &opError{"make / rslave", err}
	}
	root := cfg.Rootfs.Merged
	if base := cfg.Rootfs.LowerBase; base != "" {
		if err := unix.Chdir(base); err != nil {
			return &opError{"chdir " + base, err}
		}
	}
	if cfg.OverlayData != "" {
		if err := unix.Mount("overlay", root, "overlay", 0, cfg.OverlayData); err != nil {
			return &opError{"mount overlay on " + root, err}
		}
	}

	for _, m := range systemMounts {
		dst, err := mountpoint(root, m.dst, true)
		if err != nil {
			return err
		}
		if err := unix.Mount(m.src, dst, m.fstype, m.flags, m.data); err != nil {
			return &opError{"mount " + m.fstype + " on " + m.dst, err}
		}
	}
	for _, m := range cfg.Mounts {
		if err := userMount(root, m); err != nil {
			return err
		}
	}
	for _, p := range sortedKeys(cfg.Etc) {
		dst, err := mountpoint(root, p, false)
		if err != nil {
			return err
		}
		if err := unix.Mount(cfg.Etc[p], dst, "", unix.MS_BIND, ""); err != nil {
			return &opError{"bind " + p, err}
		}
	}
	if err := setupDev(filepath.Join(root, "dev")); err != nil {
		return err
	}
	// Docker creates a missing working directory, before / can turn read-only.
	if cfg.Cwd != "" {
		if _, err := mountpoint(root, cfg.Cwd, true); err != nil {
			return err
		}
	}

	// runc's pivot_root without a put_old directory: stack the old root under
	// the new one, then detach it.
	if err := unix.Chdir(root); err != nil {
		return &opError{"chdir " + root, err}
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return &opError{"pivot_root", err}
	}
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return &opError{"make old root rslave", err}
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return &opError{"detach old root", err}
	}
	if err := unix.Chdir("/"); err != nil {
		return &opError{"chdir /", err}
	}

	for _, p := range maskedPaths {
		if err := maskPath(p); err != nil {
			return err
		}
	}
	for _, p := range readonlyPaths {
		if err := readonlyPath(p); err != nil {
			return err
		}
	}
	if cfg.ReadOnlyRootfs {
		if err := unix.Mount("", "/", "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|mountFlags("/"), ""); err != nil {
			return &opError{"remount / read-only", err}
		}
	}
	return nil
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

// mountpoint resolves p inside root (symlinks cannot lead out of it) and
// creates it, as a directory or an empty file, if it is missing.
func mountpoint(root, p string, dir bool) (string, error) {
	dst, err := securejoin.SecureJoin(root, p)
	if err != nil {
		return "", &opError{"resolve " + p, err}
	}
	if _, err := os.Lstat(dst); err == nil {
		return dst, nil
	}
	if dir {
		err = os.MkdirAll(dst, 0o755)
	} else if err = os.MkdirAll(filepath.Dir(dst), 0o755); err == nil {
		var f *os.File
		if f, err = os.OpenFile(dst, os.O_CREATE|os.O_RDONLY, 0o644); err == nil {
			f.Close()
		}
	}
	if err != nil {
		return "", &opError{"create mountpoint " + p, err}
	}
	return dst, nil
}

func userMount(root string, m Mount) error {
	if m.Type == "tmpfs" {
		dst, err := mountpoint(root, m.Destination, true)
		if err != nil {
			return err
		}
		flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
		if m.ReadOnly {
			flags |= unix.MS_RDONLY
		}
		if err := unix.Mount("tmpfs", dst, "tmpfs", flags, ""); err != nil {
			return &opError{"mount tmpfs on " + m.Destination, err}
		}
		return nil
	}
	fi, err := os.Stat(m.Source)
	if errors.Is(err, fs.ErrNotExist) {
		return &classError{fmt.Sprintf("bind source path does not exist: %s", m.Source), errdefs.ErrNotFound}
	}
	if err != nil {
		return &opError{"bind source", err}
	}
	dst, err := mountpoint(root, m.Destination, fi.IsDir())
	if err != nil {
		return err
	}
	if err := unix.Mount(m.Source, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return &opError{"bind " + m.Source + " on " + m.Destination, err}
	}
	if m.ReadOnly {
		if err := unix.Mount("", dst, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|mountFlags(dst), ""); err != nil {
			return &opError{"remount " + m.Destination + " read-only", err}
		}
	}
	return nil
}

// mountFlags returns the per-mount flags of the mount holding p, which a bind
// remount must repeat or it would clear them.
func mountFlags(p string) uintptr {
	var st unix.Statfs_t
	if unix.Statfs(p, &st) != nil {
		return 0
	}
	var flags uintptr
	for st2ms, ms := range map[int64]uintptr{
		unix.ST_NOSUID: unix.MS_NOSUID, unix.ST_NODEV: unix.MS_NODEV, unix.ST_NOEXEC: unix.MS_NOEXEC,
		unix.ST_NOATIME: unix.MS_NOATIME, unix.ST_NODIRATIME: unix.MS_NODIRATIME, unix.ST_RELATIME: unix.MS_RELATIME,
	} {
		if st.Flags&st2ms != 0 {
			flags |= ms
		}
	}
	return flags
}

// setupDev fills the /dev tmpfs with Docker's minimal set of devices.
func setupDev(dev string) error {
	for _, d := range []struct {
		name         string
		major, minor uint32
	}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}} {
		if err := unix.Mknod(filepath.Join(dev, d.name), unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor))); err != nil {
			return &opError{"mknod /dev/" + d.name, err}
		}
	}
	links := [][2]string{
		{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},
	}
	// As runc: /dev/core only where the kernel has a /proc/kcore (this
	// /proc is still the caller's; the kernel is the same).
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "core"})
	}
	for _, l := range links {
		if err := os.Symlink(l[0], filepath.Join(dev, l[1])); err != nil {
			return &opError{"symlink /dev/" + l[1], err}
		}
	}
	return nil
}

// maskPath hides p: /dev/null over a file, a read-only tmpfs over a directory.
func maskPath(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return nil // nothing to hide
	}
	if fi.IsDir() {
		err = unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "")
	} else {
		err = unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
	}
	if err != nil {
		return &opError{"mask " + p, err}
	}
	return nil
}

func readonlyPath(p string) error {
	if _, err := os.Stat(p); err != nil {
		return nil
	}
	if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return &opError{"bind " + p, err}
	}
	if err := unix.Mount("", p, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|mountFlags(p), ""); err != nil {
		return &opError{"remount " + p + " read-only", err}
	}
	return nil
}

// loopbackUp brings lo up in a new network namespace, as runc does.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return &opError{"lo up", err}
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err == nil {
		err = unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr)
	}
	if err == nil {
		ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
		err = unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
	}
	if err != nil {
		return &opError{"lo up", err}
	}
	return nil
}
