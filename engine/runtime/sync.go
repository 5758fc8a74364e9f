package runtime

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"vscript/engine/errdefs"
)

// CommandError is a command that could not be run, with the exit code Docker
// reports for it: 127 when it is not found, 126 when it cannot be executed.
type CommandError struct {
	Code int
	Msg  string
}

func (e *CommandError) Error() string { return e.Msg }

// Unwrap makes a command that is not found match errdefs.ErrNotFound.
func (e *CommandError) Unwrap() error {
	if e.Code == 127 {
		return errdefs.ErrNotFound
	}
	return nil
}

// syncSocket is the parent's end of the socket a child reports on (see
// child.c): fixed-size records, a terminal's master passed along with one,
// end-of-file once the child has execve'd or died. It is non-blocking, so
// the os.File is pollable and Close interrupts a pending recv.
type syncSocket struct{ f *os.File }

// newSyncPair returns the parent's end and the child's. Both are
// close-on-exec: the child's end closing at execve is how success shows.
func newSyncPair() (*syncSocket, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	unix.SetNonblock(fds[0], true)
	return &syncSocket{os.NewFile(uintptr(fds[0]), "sync")}, os.NewFile(uintptr(fds[1]), "sync-child"), nil
}

// sendGo lets a child waiting in VS_READY go on to execve.
func (s *syncSocket) sendGo() error {
	_, err := s.f.Write([]byte{1})
	return err
}

// recv returns the next record and the file passed with it, if any; io.EOF
// when every copy of the child's end is closed.
func (s *syncSocket) recv() (report, *os.File, error) {
	var buf [reportSize]byte
	oob := make([]byte, unix.CmsgSpace(4))
	rc, err := s.f.SyscallConn()
	if err != nil {
		return report{}, nil, err
	}
	var n, oobn int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf[:], oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return report{}, nil, err
	}
	var file *os.File
	if oobn > 0 {
		cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err == nil && len(cmsgs) > 0 {
			if fds, err := unix.ParseUnixRights(&cmsgs[0]); err == nil && len(fds) > 0 {
				// Non-blocking, the file is pollable: closing it stops a read.
				unix.SetNonblock(fds[0], true)
				file = os.NewFile(uintptr(fds[0]), "pty")
			}
		}
	}
	if n == 0 {
		return report{}, file, io.EOF
	}
	if n != len(buf) {
		return report{}, file, fmt.Errorf("sync record of %d bytes, want %d", n, len(buf))
	}
	ne := binary.NativeEndian
	r := report{
		kind:  int32(ne.Uint32(buf[0:])),
		step:  int32(ne.Uint32(buf[4:])),
		errno: int32(ne.Uint32(buf[8:])),
		pid:   int32(ne.Uint32(buf[12:])),
	}
	return r, file, nil
}

func (s *syncSocket) close() { s.f.Close() }
