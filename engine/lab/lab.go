package lab

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"vscript/engine/event"
)

// ScratchDir is where a sandboxed lab mounts its scratch tmpfs. Every lab has
// its own mount namespace, so every lab has its own tmpfs at this same path.
const ScratchDir = "/run/vscript"

// Hostname is the lab host's hostname in a sandboxed lab.
const Hostname = "lab"

// Config says what kind of lab to set up.
type Config struct {
	// Host runs the lab on the real host: no namespaces, no world.
	Host bool
	// ID names the lab; host-mode leftovers are labelled with it.
	ID string
	// Sink receives the set-up events.
	Sink event.Sink
	// WorldDNS, if set, serves DNS for the world on the given sockets (UDP
	// and TCP on port 53 in the world's namespace) until stop is called at
	// teardown. The DNS server lives in the network package, which the lab
	// does not import.
	WorldDNS func(udp net.PacketConn, tcp net.Listener) (stop func(), err error)
}

// Lab is a running lab host, seen from its PID 1.
type Lab struct {
	cfg     Config
	Scratch string // per-lab scratch directory (tmpfs when sandboxed)
	Host    *Node  // the lab host

	// The world is wired by the parent while this process starts (world.c)
	// and its servers are started when something first needs it.
	worldOnce sync.Once
	world     *world
	worldNode *Node
	worldErr  error
}

// Node is a place programs can run and connections can start from: the lab
// host, the world, later a container's network namespace.
type Node struct {
	Name string
	IP   net.IP
	// ns is the node's network namespace; -1 means this process's own.
	ns netns.NsHandle
}

// Setup turns the current process into the lab host. Sandboxed, it must be
// a lab's PID 1 (Inside() is true).
func Setup(cfg Config) (*Lab, error) {
	if cfg.Sink == nil {
		cfg.Sink = event.Discard
	}
	start := time.Now()
	l := &Lab{cfg: cfg}
	if cfg.Host {
		dir := filepath.Join(ScratchDir, "host-"+cfg.ID)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("lab create: scratch: %w", err)
		}
		l.Scratch = dir
		// Who owns the directory, for `vscript clean` after a kill -9.
		if err := os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			return nil, fmt.Errorf("lab create: scratch: %w", err)
		}
		l.Host = &Node{Name: "host", IP: hostIP(), ns: -1}
		cfg.Sink.Emit(event.Event{Op: "lab create", Subject: "host", Linux: []string{"mkdir -p " + dir}, Duration: time.Since(start)})
		return l, nil
	}
	if !Inside() {
		return nil, fmt.Errorf("lab create: not inside a lab sandbox (internal error: Spawn first)")
	}
	os.Unsetenv(envEnter) // the lab's programs are not labs
	linux, err := l.setupHost()
	if err != nil {
		return nil, fmt.Errorf("lab create: %w", err)
	}
	cfg.Sink.Emit(event.Event{Op: "lab create", Linux: linux, Duration: time.Since(start)})

	l.Host = &Node{Name: "host", IP: net.ParseIP(HostIP), ns: -1}
	return l, nil
}

// Ready finishes the world if it is not finished yet: whatever could reach it
// — a program on the lab host, a container with a network, a connection, a
// network — calls it first, so its event comes at the same place in every
// run's transcript.
func (l *Lab) Ready() error {
	if l.cfg.Host {
		return nil
	}
	l.worldOnce.Do(func() {
		start := time.Now()
		w, err := startWorld(worldSocket(), l.cfg.WorldDNS)
		if err != nil {
			l.worldErr = fmt.Errorf("world create: %w", err)
			return
		}
		l.world = w
		l.worldNode = &Node{Name: "world", IP: net.ParseIP(WorldIP), ns: w.ns}
		l.cfg.Sink.Emit(event.Event{Op: "world create", Subject: "world", Linux: worldCommands, Duration: time.Since(start)})
	})
	return l.worldErr
}

// World returns the simulated outside world, made if need be; nil in --host
// mode.
func (l *Lab) World() (*Node, error) {
	if l.cfg.Host {
		return nil, nil
	}
	if err := l.Ready(); err != nil {
		return nil, err
	}
	return l.worldNode, nil
}

// setupHost configures the lab host's own namespaces.
func (l *Lab) setupHost() ([]string, error) {
	// Nothing mounted in the lab may reach the real host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return nil, fmt.Errorf("mount --make-rprivate /: %w", err)
	}
	if err := os.MkdirAll(ScratchDir, 0o755); err != nil {
		return nil, fmt.Errorf("scratch: %w", err)
	}
	if err := unix.Mount("tmpfs", ScratchDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0700"); err != nil {
		return nil, fmt.Errorf("mount tmpfs %s: %w", ScratchDir, err)
	}
	l.Scratch = ScratchDir
	// A /proc and /sys of the lab's own PID and network namespaces, so that
	// host.exec("ps") or "ip link" show the lab, not the machine.
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return nil, fmt.Errorf("mount proc: %w", err)
	}
	// The fresh /sys hides the machine's cgroup hierarchies, which container
	// limits need: carry them over.
	cgroups := filepath.Join(ScratchDir, ".cgroup")
	if err := os.Mkdir(cgroups, 0o700); err != nil {
		return nil, err
	}
	if err := unix.Mount("/sys/fs/cgroup", cgroups, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return nil, fmt.Errorf("mount --rbind /sys/fs/cgroup: %w", err)
	}
	if err := unix.Mount("sysfs", "/sys", "sysfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return nil, fmt.Errorf("mount sysfs: %w", err)
	}
	if err := unix.Mount(cgroups, "/sys/fs/cgroup", "", unix.MS_MOVE, ""); err != nil {
		return nil, fmt.Errorf("mount --move %s /sys/fs/cgroup: %w", cgroups, err)
	}
	// Programs on the lab host resolve names through the world, never
	// through the machine's own resolvers.
	resolv := filepath.Join(ScratchDir, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver "+WorldIP+"\n"), 0o644); err != nil {
		return nil, err
	}
	if err := unix.Mount(resolv, "/etc/resolv.conf", "", unix.MS_BIND, ""); err != nil {
		return nil, fmt.Errorf("mount --bind %s /etc/resolv.conf: %w", resolv, err)
	}
	if err := unix.Sethostname([]byte(Hostname)); err != nil {
		return nil, fmt.Errorf("hostname: %w", err)
	}
	if err := loUp(); err != nil {
		return nil, fmt.Errorf("ip link set lo up: %w", err)
	}
	return []string{
		"unshare --net --mount --pid --uts --ipc --fork",
		"mount --make-rprivate /",
		"mount -t tmpfs -o mode=0700 tmpfs " + ScratchDir,
		"mount -t proc proc /proc",
		"mount --rbind /sys/fs/cgroup " + cgroups,
		"mount -t sysfs sysfs /sys",
		"mount --move " + cgroups + " /sys/fs/cgroup",
		"mount --bind " + resolv + " /etc/resolv.conf",
		"hostname " + Hostname,
		"ip link set lo up",
	}, nil
}

// loUp brings the loopback interface up with one ioctl: a netlink request
// costs a socket registered with Go's poller, and two were most of the lab
// host's set-up.
func loUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// Close stops the lab's servers. In a sandbox everything else goes with the
// process; in --host mode the scratch directory is removed.
func (l *Lab) Close() error {
	if l.world != nil {
		l.world.stop()
	}
	if l.cfg.Host {
		return os.RemoveAll(l.Scratch)
	}
	return nil
}

// Sandboxed reports whether the lab has namespaces of its own.
func (l *Lab) Sandboxed() bool { return !l.cfg.Host }

// Command prepares cmd to run on node n; Start it with n.Start.
func (n *Node) Start(cmd *exec.Cmd) error {
	if n.ns == -1 {
		return cmd.Start()
	}
	return InNetNS(n.ns, cmd.Start)
}

// DialContext opens a connection from inside node n's network namespace.
func (n *Node) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	if n.ns == -1 {
		return d.DialContext(ctx, network, addr)
	}
	var c net.Conn
	err := InNetNS(n.ns, func() (err error) {
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// NewNode returns a node for the network namespace at path (for example
// /proc/PID/ns/net of a container). The caller closes it.
func NewNode(name string, ip net.IP, path string) (*Node, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", name, err)
	}
	return &Node{Name: name, IP: ip, ns: ns}, nil
}

// Close releases the node's namespace handle.
func (n *Node) Close() error {
	if n.ns == -1 {
		return nil
	}
	return n.ns.Close()
}

// hostIP is the address --host mode reports as host.ip: the source address
// the kernel would pick to leave the machine. No packet is sent.
func hostIP() net.IP {
	routes, err := netlink.RouteGet(net.IPv4(192, 0, 2, 1)) // a route lookup; nothing is sent
	if err != nil || len(routes) == 0 || routes[0].Src == nil {
		return net.IPv4(127, 0, 0, 1)
	}
	return routes[0].Src
}
