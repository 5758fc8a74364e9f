package lab

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// InNetNS runs fn on an OS thread switched into the network namespace ns, and
// switches the thread back afterwards. Sockets fn opens stay in ns for their
// whole life, whichever thread later uses them; a child started by fn starts
// in ns. Joining a network namespace is per-thread and allowed in Go; joining
// a mount namespace is not (DESIGN §3), which is why only netns is done here.
func InNetNS(ns netns.NsHandle, fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
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
	var ns netns.NsHandle
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return 0, err
	}
	defer orig.Close()
	ns, err = netns.New() // unshare: this thread is now in ns
	if err != nil {
		runtime.UnlockOSThread()
		return 0, err
	}
	if err := netns.Set(orig); err != nil {
		ns.Close()
		return 0, err // thread stays locked and dies with the goroutine
	}
	runtime.UnlockOSThread()
	return ns, nil
}
