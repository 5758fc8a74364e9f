package lab

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// CleanHostScratch removes the scratch directories of --host labs that are
// no longer running — a killed one cannot unmount its containers' overlays or
// remove its files — and returns the commands that amounts to. A directory
// whose owner still runs is kept.
func CleanHostScratch() ([]string, error) {
	dirs, _ := filepath.Glob(filepath.Join(ScratchDir, "host-*"))
	var done []string
	var errs []error
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "pid"))
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && running(pid) {
			continue
		}
		// A lab writes its pid just after making the directory: one without
		// a pid may be starting now, unless it is older than any start.
		if errors.Is(err, fs.ErrNotExist) {
			if fi, err := os.Stat(dir); err == nil && time.Since(fi.ModTime()) < time.Minute {
				continue
			}
		}
		mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// Deepest first, so that nothing is unmounted from under another mount.
		sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
		for _, m := range mounts {
			if err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				errs = append(errs, err)
				continue
			}
			done = append(done, "umount -l "+m.Mountpoint)
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
			continue
		}
		done = append(done, "rm -rf "+dir)
	}
	return done, errors.Join(errs...)
}

func running(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
