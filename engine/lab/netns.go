package lab

import (
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

// threadNetNS opens the calling thread's network namespace. It goes through
// /proc/thread-self, which names the calling thread in whichever PID
// namespace the /proc mounted belongs to.
func threadNetNS() (netns.NsHandle, error) {
	fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return netns.None(), fmt.Errorf("open /proc/thread-self/ns/net: %w", err)
	}
	return netns.NsHandle(fd), nil
}
