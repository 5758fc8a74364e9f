package runtime

import "golang.org/x/sys/unix"

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

// opError names the step that failed: "setuid: operation not permitted".
type opError struct {
	op  string
	err error
}

func (e *opError) Error() string { return e.op + ": " + e.err.Error() }
func (e *opError) Unwrap() error { return e.err }
