package lab

// #include <errno.h>
// extern int vscript_lab_entered;
// extern int vscript_lab_errno;
// extern int vscript_world_fd;
import "C"

import "syscall"

// entered reports whether the C constructor (enter.c) has made this process
// PID 1 of a fresh lab, and if it tried and failed, why.
func entered() (bool, error) {
	if C.vscript_lab_errno != 0 {
		return false, syscall.Errno(C.vscript_lab_errno)
	}
	return C.vscript_lab_entered == 1, nil
}

// worldSocket is where the parent sends the world it wires (world.c); it is
// taken once, by the first Ready, and -1 after that or outside a lab.
func worldSocket() int {
	fd := int(C.vscript_world_fd)
	C.vscript_world_fd = -1
	return fd
}
