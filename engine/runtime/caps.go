package runtime

import (
	"errors"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dockerCaps is Docker's default capability set (CapEff 00000000a80425fb).
var dockerCaps = []uint{
	unix.CAP_CHOWN, unix.CAP_DAC_OVERRIDE, unix.CAP_FSETID, unix.CAP_FOWNER,
	unix.CAP_MKNOD, unix.CAP_NET_RAW, unix.CAP_SETGID, unix.CAP_SETUID,
	unix.CAP_SETFCAP, unix.CAP_SETPCAP, unix.CAP_NET_BIND_SERVICE,
	unix.CAP_SYS_CHROOT, unix.CAP_KILL, unix.CAP_AUDIT_WRITE,
}

func dockerCapMask() uint64 {
	var m uint64
	for _, c := range dockerCaps {
		m |= 1 << c
	}
	return m
}

// setCredentials switches the calling thread to the user with Docker's
// capabilities: the bounding set is cut to the default set, root keeps it as
// effective and permitted set, any other uid ends with none (the kernel
// clears them on the uid change). Credentials are per thread here (raw
// syscalls), so the caller must be locked to its thread and execve from it;
// the other threads die at execve.
func setCredentials(uid, gid int, groups []int) error {
	keep := dockerCapMask()
	for c := uint(0); c < 64; c++ {
		if keep&(1<<c) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			if errors.Is(err, unix.EINVAL) {
				break // past the kernel's last capability
			}
			return &opError{"drop capability bounding set", err}
		}
	}
	gids := make([]uint32, len(groups))
	for i, g := range groups {
		gids[i] = uint32(g)
	}
	var ptr *uint32
	if len(gids) > 0 {
		ptr = &gids[0]
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(gids)), uintptr(unsafe.Pointer(ptr)), 0); e != 0 {
		return &opError{"setgroups", e}
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(gid), uintptr(gid), uintptr(gid)); e != 0 {
		return &opError{"setgid", e}
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid)); e != 0 {
		return &opError{"setuid", e}
	}
	if uid != 0 {
		return nil
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(keep), Permitted: uint32(keep)},
		{Effective: uint32(keep >> 32), Permitted: uint32(keep >> 32)},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return &opError{"capset", err}
	}
	return nil
}

// opError names the step that failed: "setuid: operation not permitted".
type opError struct {
	op  string
	err error
}

func (e *opError) Error() string { return e.op + ": " + e.err.Error() }
func (e *opError) Unwrap() error { return e.err }
