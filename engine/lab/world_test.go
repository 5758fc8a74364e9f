package lab

import (
	"encoding/binary"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// parentSends plays world.c's part: the result, and the namespace when the
// world is wired.
func parentSends(t *testing.T, step, errno int32, fd int) int {
	t.Helper()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var res [8]byte
	binary.NativeEndian.PutUint32(res[0:], uint32(step))
	binary.NativeEndian.PutUint32(res[4:], uint32(errno))
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	if err := unix.Sendmsg(pair[1], res[:], oob, nil, 0); err != nil {
		t.Fatal(err)
	}
	unix.Close(pair[1])
	return pair[0]
}

func TestReceiveWorld(t *testing.T) {
	f, err := os.Open("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ns, err := receiveWorld(parentSends(t, 7, 0, int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	var got, want unix.Stat_t
	if err := unix.Fstat(int(ns), &got); err != nil {
		t.Fatal(err)
	}
	unix.Fstat(int(f.Fd()), &want)
	if got.Ino != want.Ino {
		t.Errorf("received namespace inode %d, sent %d", got.Ino, want.Ino)
	}
}

// A failed step is reported as the command it stands for, with its errno.
func TestReceiveWorldFailure(t *testing.T) {
	_, err := receiveWorld(parentSends(t, 2, int32(syscall.EEXIST), -1))
	if err == nil || !strings.HasPrefix(err.Error(), "ip addr add 198.51.100.2/24 dev eth0: ") {
		t.Fatalf("err = %v, want the failed command first", err)
	}
	if !strings.Contains(err.Error(), syscall.EEXIST.Error()) {
		t.Errorf("err = %v, want the errno", err)
	}
	_, err = receiveWorld(parentSends(t, 99, int32(syscall.EPERM), -1))
	if err == nil || !strings.Contains(err.Error(), "step 99") {
		t.Errorf("err = %v for an unknown step", err)
	}
}

// A lab whose parent died before sending anything: no hang, an error.
func TestReceiveWorldNothing(t *testing.T) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(pair[1])
	if _, err := receiveWorld(pair[0]); err == nil {
		t.Fatal("no error from a closed socket")
	}
	if _, err := startWorld(-1, nil); err == nil {
		t.Fatal("no error without a socket")
	}
}
