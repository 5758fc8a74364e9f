package engine

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// mountOverlay mounts an overlay of lowers (absolute, topmost first) under a
// writable upper at target, in the lab's mount namespace.
//
// It uses the new mount API and adds the layers one at a time with
// "lowerdir+" (Linux 6.8+): no option string, so no page-size limit on the
// layer chain and no need to chdir — which a multithreaded Go process must
// not do. Older kernels get mount(2) with absolute paths, which works while
// the option string fits in a page.
func mountOverlay(lowers []string, upper, work, target string) error {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err == nil {
		defer unix.Close(fd)
		err = fsconfigOverlay(fd, lowers, upper, work)
		if err == nil {
			var mfd int
			mfd, err = unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, 0)
			if err == nil {
				err = unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH)
				unix.Close(mfd)
			}
		}
		if err == nil {
			return nil
		}
	}
	data := overlayData(lowers, upper, work)
	if len(data) >= unix.Getpagesize() {
		return fmt.Errorf("mount overlay %s: %w (and the option string is %d bytes, over a page)", target, err, len(data))
	}
	if merr := unix.Mount("overlay", target, "overlay", 0, data); merr != nil {
		return fmt.Errorf("mount overlay %s: %w", target, merr)
	}
	return nil
}

func fsconfigOverlay(fd int, lowers []string, upper, work string) error {
	for _, l := range lowers {
		if err := unix.FsconfigSetString(fd, "lowerdir+", l); err != nil {
			return err
		}
	}
	// index, redirect_dir and metacopy off: the upper directory must stand
	// on its own, so that diff() and commit() can read it alone.
	for _, kv := range [][2]string{{"upperdir", upper}, {"workdir", work}, {"index", "off"},
		{"redirect_dir", "off"}, {"metacopy", "off"}} {
		if err := unix.FsconfigSetString(fd, kv[0], kv[1]); err != nil {
			return err
		}
	}
	return unix.FsconfigCreate(fd)
}

// overlayData is the classic mount(2) option string, also what --explain shows.
func overlayData(lowers []string, upper, work string) string {
	return "lowerdir=" + strings.Join(lowers, ":") + ",upperdir=" + upper + ",workdir=" + work +
		",index=off,redirect_dir=off,metacopy=off"
}
