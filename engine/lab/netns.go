package lab

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// InNetNS runs fn on an OS thread switched into the network namespace ns, and
// switches the thread back afterwards. Sockets fn opens stay in ns for their
// whole life, whichever thread later uses them; a child started by fn starts
// in ns. Joining a network namespace is per-thread and allowed in Go; joining
// a mount namespace is not (DESIGN §3), which is why only netns is done here.
func InNetNS(ns netns.NsHandle, fn func() error) error {
	runtime.LockOSThread()
	orig, err := threadNetNS()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns enter: %w", err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// The thread is stuck in ns: leave it locked so the runtime
		// discards it when this goroutine ends.
		return fmt.Errorf("netns leave: %w", err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// newNetNS makes a new network namespace and returns a handle on it, leaving
// the calling thread where it was.
func newNetNS() (netns.NsHandle, error) {
	runtime.LockOSThread()
	orig, err := threadNetNS()
	if err != nil {
		runtime.UnlockOSThread()
		return 0, err
	}
	defer orig.Close()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil { // this thread is now in a new one
		runtime.UnlockOSThread()
		return 0, err
	}
	ns, err := threadNetNS()
	if err := errors.Join(err, netns.Set(orig)); err != nil {
		ns.Close()
		return 0, err // the thread stays locked and dies with the goroutine
	}
	runtime.UnlockOSThread()
	return ns, nil
}

// threadNetNS opens the calling thread's network namespace. It goes through
// /proc/thread-self, which is right whichever PID namespace the /proc
// mounted now belongs to: the lab's world is begun (Prewarm) while /proc is
// still the machine's, and the lab is PID 1 of its own.
func threadNetNS() (netns.NsHandle, error) {
	fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return netns.None(), fmt.Errorf("open /proc/thread-self/ns/net: %w", err)
	}
	return netns.NsHandle(fd), nil
}
