package lab

// #include <errno.h>
// extern int vscript_lab_entered;
// extern int vscript_lab_errno;
import "C"

import "syscall"

// entered reports whether the C constructor (enter.c) has already made this
// process PID 1 of a fresh lab, and if it tried and failed, why.
func entered() (bool, error) {
	if C.vscript_lab_errno != 0 {
		return false, syscall.Errno(C.vscript_lab_errno)
	}
	return C.vscript_lab_entered == 1, nil
}
