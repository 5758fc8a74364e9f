package lab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"syscall"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The world's addresses: TEST-NET-2 (RFC 5737), documentation space that is
// never routed, so nothing addressed to the world can leave the machine.
const (
	WorldIP   = "198.51.100.1"
	HostIP    = "198.51.100.2"
	worldPlen = 24
	uplink    = "eth0" // the lab host's interface to the world, as a host's eth0
	worldLink = "eth0" // the world's end
	// WorldDomain is the world's DNS zone: every name under it is the world.
	WorldDomain = "world.test"
)

type world struct {
	ns      netns.NsHandle
	servers []func()
}

// worldCommands is what making the world amounts to, for --explain. The
// first eight are wired by the parent (world.c), which names a failed step
// by its index here; the servers are started by startWorld.
var worldCommands = []string{
	"ip netns add world",
	fmt.Sprintf("ip link add %s type veth peer name %s netns world", uplink, worldLink),
	fmt.Sprintf("ip addr add %s/%d dev %s", HostIP, worldPlen, uplink),
	fmt.Sprintf("ip link set %s up", uplink),
	fmt.Sprintf("ip -n world addr add %s/%d dev %s", WorldIP, worldPlen, worldLink),
	fmt.Sprintf("ip -n world link set %s up", worldLink),
	"ip -n world link set lo up",
	"ip route add default via " + WorldIP,
	"ip netns exec world <http server on :80, answering with the client's address>",
	"ip netns exec world <dns server on :53 for *." + WorldDomain + ">",
}

// The descriptors that come with a ready world, in the order of world.h.
const (
	fdNS = iota
	fdHTTP
	fdDNSUDP
	fdDNSTCP
	worldFDs
)

// startWorld receives the world the parent wired, on sock, and serves on the
// sockets the parent opened in it.
func startWorld(sock int, dns func(net.PacketConn, net.Listener) (func(), error)) (_ *world, err error) {
	if sock < 0 {
		return nil, errors.New("no world: this process did not enter its lab through enter.c")
	}
	fds, err := receiveWorld(sock)
	if err != nil {
		return nil, err
	}
	w := &world{ns: netns.NsHandle(fds[fdNS])}
	files := make([]*os.File, worldFDs)
	for i := fdHTTP; i < worldFDs; i++ {
		files[i] = os.NewFile(uintptr(fds[i]), "world")
		defer files[i].Close() // the net package holds its own descriptors
	}
	defer func() {
		if err != nil {
			w.stop()
		}
	}()

	httpLn, err := net.FileListener(files[fdHTTP])
	if err != nil {
		return nil, fmt.Errorf("world: http: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(whoami)}
	go srv.Serve(httpLn)
	w.servers = append(w.servers, func() { srv.Close() })
	if dns == nil {
		return w, nil
	}
	udp, err := net.FilePacketConn(files[fdDNSUDP])
	if err != nil {
		return nil, fmt.Errorf("world: dns: %w", err)
	}
	tcp, err := net.FileListener(files[fdDNSTCP])
	if err != nil {
		udp.Close()
		return nil, fmt.Errorf("world: dns: %w", err)
	}
	stop, err := dns(udp, tcp)
	if err != nil {
		return nil, fmt.Errorf("world: dns: %w", err)
	}
	w.servers = append(w.servers, stop)
	return w, nil
}

// receiveWorld reads the parent's result (struct vscript_world_result in
// world.h) and, when the world is ready, its descriptors.
func receiveWorld(sock int) ([]int, error) {
	defer unix.Close(sock)
	var res [8]byte
	oob := make([]byte, unix.CmsgSpace(4*worldFDs))
	var n, oobn int
	var err error
	for {
		n, oobn, _, _, err = unix.Recvmsg(sock, res[:], oob, unix.MSG_CMSG_CLOEXEC)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil || n != len(res) {
		return nil, fmt.Errorf("world: from the parent: %d bytes, %v", n, err)
	}
	step := int(int32(binary.NativeEndian.Uint32(res[0:])))
	if errno := syscall.Errno(binary.NativeEndian.Uint32(res[4:])); errno != 0 {
		if step < 0 || step >= len(worldCommands) {
			return nil, fmt.Errorf("world: step %d: %w", step, errno)
		}
		return nil, fmt.Errorf("%s: %w", worldCommands[step], errno)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	var fds []int
	if err == nil && len(msgs) == 1 {
		fds, err = unix.ParseUnixRights(&msgs[0])
	}
	if err == nil && len(fds) == worldFDs {
		return fds, nil
	}
	for _, fd := range fds {
		unix.Close(fd)
	}
	return nil, fmt.Errorf("world: from the parent: %d descriptors, want %d (%v)", len(fds), worldFDs, err)
}

// whoami answers every request with the address it came from: what the
// outside world sees of a lab's traffic, after any NAT.
func whoami(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, host)
}

func (w *world) stop() {
	for _, stop := range w.servers {
		stop()
	}
	w.ns.Close()
}
