package lab

import (
	"encoding/binary"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// parentSends plays world.c's part: the result, and the descriptors when
// the world is ready.
func parentSends(t *testing.T, step, errno int32, fds ...int) int {
	t.Helper()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var res [8]byte
	binary.NativeEndian.PutUint32(res[0:], uint32(step))
	binary.NativeEndian.PutUint32(res[4:], uint32(errno))
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if err := unix.Sendmsg(pair[1], res[:], oob, nil, 0); err != nil {
		t.Fatal(err)
	}
	unix.Close(pair[1])
	return pair[0]
}

// sameFile reports whether descriptors a and b are the same open file.
func sameFile(t *testing.T, a, b int) bool {
	var sa, sb unix.Stat_t
	if unix.Fstat(a, &sa) != nil || unix.Fstat(b, &sb) != nil {
		t.Fatal("fstat")
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

func TestReceiveWorld(t *testing.T) {
	var sent []int
	for _, path := range []string{"/proc/self/ns/net", "/dev/null", "/dev/zero", "/dev/full"} {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sent = append(sent, int(f.Fd()))
	}
	got, err := receiveWorld(parentSends(t, 9, 0, sent...))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != worldFDs {
		t.Fatalf("got %d descriptors, want %d", len(got), worldFDs)
	}
	for i, fd := range got {
		if !sameFile(t, fd, sent[i]) {
			t.Errorf("descriptor %d is not the one sent", i)
		}
		unix.Close(fd)
	}
}

// A world without its descriptors is an error, and leaks none.
func TestReceiveWorldShort(t *testing.T) {
	f, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := receiveWorld(parentSends(t, 9, 0, int(f.Fd()))); err == nil ||
		!strings.Contains(err.Error(), "1 descriptors, want 4") {
		t.Fatalf("err = %v", err)
	}
}

// A failed step is reported as the command it stands for, with its errno.
func TestReceiveWorldFailure(t *testing.T) {
	_, err := receiveWorld(parentSends(t, 2, int32(syscall.EEXIST)))
	if err == nil || !strings.HasPrefix(err.Error(), "ip addr add 198.51.100.2/24 dev eth0: ") {
		t.Fatalf("err = %v, want the failed command first", err)
	}
	if !strings.Contains(err.Error(), syscall.EEXIST.Error()) {
		t.Errorf("err = %v, want the errno", err)
	}
	_, err = receiveWorld(parentSends(t, 99, int32(syscall.EPERM)))
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
