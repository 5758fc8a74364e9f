package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"vscript/engine/errdefs"
)

// A helper finds its descriptors through the environment, as runc's init
// does with _LIBCONTAINER_INITPIPE.
const (
	// envConfigPipe names the pipe the helper reads its JSON config from, to EOF.
	envConfigPipe = "_VSCRIPT_CONFIGPIPE"
	// envSyncPipe names the SOCK_SEQPACKET socket for messages both ways. It
	// is close-on-exec in the helper, so EOF after "start" means execve worked.
	envSyncPipe = "_VSCRIPT_SYNCPIPE"
	// envNsenter names the pid whose namespaces the cgo constructor joins.
	envNsenter = "_VSCRIPT_NSENTER"
)

// The fds the helpers get them at (ExtraFiles start at 3).
const (
	configFD = 3
	syncFD   = 4
)

// syncMsg is one message on the sync socket.
type syncMsg struct {
	// Type is "ready" (init: set up, waiting), "start" (parent: execve now),
	// "pty" (helper: the terminal's master comes with this message),
	// "pid" (nsenter: the pid of the process inside) or "error".
	Type  string `json:"type"`
	Pid   int    `json:"pid,omitempty"`
	Error string `json:"error,omitempty"`
	// Code is 126 or 127 when the command itself cannot run.
	Code  int    `json:"code,omitempty"`
	Class string `json:"class,omitempty"` // "notfound", "invalid"
}

// errorMsg turns a helper's failure into a message.
func errorMsg(err error) syncMsg {
	m := syncMsg{Type: "error", Error: err.Error()}
	var ce *CommandError
	switch {
	case errors.As(err, &ce):
		m.Code = ce.Code
	case errors.Is(err, errdefs.ErrNotFound):
		m.Class = "notfound"
	case errors.Is(err, errdefs.ErrInvalid):
		m.Class = "invalid"
	}
	return m
}

// err rebuilds the helper's error on the parent's side.
func (m syncMsg) err() error {
	switch {
	case m.Code != 0:
		return &CommandError{Code: m.Code, Msg: m.Error}
	case m.Class == "notfound":
		return &classError{m.Error, errdefs.ErrNotFound}
	case m.Class == "invalid":
		return &classError{m.Error, errdefs.ErrInvalid}
	}
	return errors.New(m.Error)
}

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

// parentSync is the parent's end of the sync socket. It is non-blocking,
// so the os.File is pollable and Close interrupts a pending recv.
type parentSync struct{ f *os.File }

// newSyncPair returns the parent's end and the file to hand to the helper.
func newSyncPair() (*parentSync, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	unix.SetNonblock(fds[0], true)
	return &parentSync{os.NewFile(uintptr(fds[0]), "sync")}, os.NewFile(uintptr(fds[1]), "sync-child"), nil
}

func (p *parentSync) send(m syncMsg) error {
	b, _ := json.Marshal(m)
	_, err := p.f.Write(b)
	return err
}

// recv returns the next message and the file passed with it, if any; io.EOF
// when the helper has closed its end (exited or execve'd).
func (p *parentSync) recv() (syncMsg, *os.File, error) {
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4))
	rc, err := p.f.SyscallConn()
	if err != nil {
		return syncMsg{}, nil, err
	}
	var n, oobn int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return syncMsg{}, nil, err
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
		return syncMsg{}, file, io.EOF
	}
	var m syncMsg
	if err := json.Unmarshal(buf[:n], &m); err != nil {
		return syncMsg{}, file, fmt.Errorf("sync message %q: %w", buf[:n], err)
	}
	return m, file, nil
}

func (p *parentSync) close() { p.f.Close() }

// childSync is a helper's end: blocking, on a raw fd.
type childSync int

// helperFDs reads the fds named in the environment and marks them
// close-on-exec, so the user's command never inherits them.
func helperFDs() (config *os.File, sync childSync, err error) {
	cfd, err1 := strconv.Atoi(os.Getenv(envConfigPipe))
	sfd, err2 := strconv.Atoi(os.Getenv(envSyncPipe))
	if err1 != nil || err2 != nil {
		return nil, -1, errors.New("helper started without its pipes")
	}
	unix.CloseOnExec(cfd)
	unix.CloseOnExec(sfd)
	return os.NewFile(uintptr(cfd), "config"), childSync(sfd), nil
}

func (c childSync) send(m syncMsg, fd int) error {
	b, _ := json.Marshal(m)
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	return unix.Sendmsg(int(c), b, oob, nil, 0)
}

// recv returns io.EOF when the parent closed its end without a message.
func (c childSync) recv() (syncMsg, error) {
	buf := make([]byte, 4096)
	n, err := unix.Read(int(c), buf)
	for err == unix.EINTR {
		n, err = unix.Read(int(c), buf)
	}
	if err != nil {
		return syncMsg{}, err
	}
	if n == 0 {
		return syncMsg{}, io.EOF
	}
	var m syncMsg
	return m, json.Unmarshal(buf[:n], &m)
}

// fail reports err to the parent and exits; the exit code is the command
// error's code for a command that cannot run.
func (c childSync) fail(err error) {
	m := errorMsg(err)
	c.send(m, -1)
	code := m.Code
	if code == 0 {
		code = 1
	}
	os.Exit(code)
}
