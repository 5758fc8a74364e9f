package lab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The world's addresses: TEST-NET-2 (RFC 5737), documentation space that is
// never routed, so nothing addressed to the world can leave the machine.
const (
	WorldIP    = "198.51.100.1"
	HostIP     = "198.51.100.2"
	worldPlen  = 24
	uplink     = "eth0" // the lab host's interface to the world, as a host's eth0
	worldLink  = "eth0" // the world's end
	worldHTTP  = ":80"
	worldDNSPt = ":53"
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

// startWorld receives the world the parent wired, on sock, and starts its
// servers.
func startWorld(sock int, dns func(net.PacketConn, net.Listener) (func(), error)) (*world, error) {
	if sock < 0 {
		return nil, errors.New("no world: this process did not enter its lab through enter.c")
	}
	ns, err := receiveWorld(sock)
	if err != nil {
		return nil, err
	}
	w := &world{ns: ns}

	var httpLn net.Listener
	var dnsUDP net.PacketConn
	var dnsTCP net.Listener
	err = InNetNS(ns, func() error {
		var err error
		if httpLn, err = net.Listen("tcp4", worldHTTP); err != nil {
			return err
		}
		if dns == nil {
			return nil
		}
		if dnsUDP, err = net.ListenPacket("udp4", worldDNSPt); err != nil {
			return err
		}
		dnsTCP, err = net.Listen("tcp4", worldDNSPt)
		return err
	})
	if err != nil {
		for _, c := range []interface{ Close() error }{httpLn, dnsUDP, dnsTCP} {
			if c != nil {
				c.Close()
			}
		}
		w.stop()
		return nil, fmt.Errorf("world: listen: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(whoami)}
	go srv.Serve(httpLn)
	w.servers = append(w.servers, func() { srv.Close() })
	if dns != nil {
		stop, err := dns(dnsUDP, dnsTCP)
		if err != nil {
			w.stop()
			return nil, fmt.Errorf("world: dns: %w", err)
		}
		w.servers = append(w.servers, stop)
	}
	return w, nil
}

// receiveWorld reads the parent's result (struct vscript_world_result in
// world.h) and, when the world is wired, the descriptor of its namespace.
func receiveWorld(sock int) (netns.NsHandle, error) {
	defer unix.Close(sock)
	var res [8]byte
	oob := make([]byte, unix.CmsgSpace(4))
	var n, oobn int
	var err error
	for {
		n, oobn, _, _, err = unix.Recvmsg(sock, res[:], oob, unix.MSG_CMSG_CLOEXEC)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil || n != len(res) {
		return 0, fmt.Errorf("world: from the parent: %d bytes, %v", n, err)
	}
	step := int(int32(binary.NativeEndian.Uint32(res[0:])))
	if errno := syscall.Errno(binary.NativeEndian.Uint32(res[4:])); errno != 0 {
		if step < 0 || step >= len(worldCommands) {
			return 0, fmt.Errorf("world: step %d: %w", step, errno)
		}
		return 0, fmt.Errorf("%s: %w", worldCommands[step], errno)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err == nil && len(msgs) == 1 {
		var fds []int
		if fds, err = unix.ParseUnixRights(&msgs[0]); err == nil && len(fds) == 1 {
			return netns.NsHandle(fds[0]), nil
		}
	}
	return 0, fmt.Errorf("world: from the parent: no namespace (%v)", err)
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
