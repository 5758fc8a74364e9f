package lab

import (
	"fmt"
	"net"
	"net/http"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
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

// startWorld makes the world's namespace, wires it to the lab host and starts
// its servers. It returns the commands it amounts to, for --explain.
func startWorld(dns func(net.PacketConn, net.Listener) (func(), error)) (*world, []string, error) {
	ns, err := newNetNS()
	if err != nil {
		return nil, nil, fmt.Errorf("ip netns add world: %w", err)
	}
	w := &world{ns: ns}
	fail := func(err error) (*world, []string, error) {
		w.stop()
		return nil, nil, err
	}

	// One netlink socket on each side: a request on a fresh socket costs
	// its creation and a registration with Go's poller, and there are ten.
	h, err := netlink.NewHandle()
	if err != nil {
		return fail(err)
	}
	defer h.Close()
	wh, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fail(err)
	}
	defer wh.Close()

	// Both ends are eth0: the peer is made straight in the world's namespace.
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: uplink},
		PeerName:      worldLink,
		PeerNamespace: netlink.NsFd(ns),
	}
	if err := h.LinkAdd(veth); err != nil {
		return fail(fmt.Errorf("ip link add %s type veth: %w", uplink, err))
	}
	hostAddr := &net.IPNet{IP: net.ParseIP(HostIP), Mask: net.CIDRMask(worldPlen, 32)}
	if err := h.AddrAdd(veth, &netlink.Addr{IPNet: hostAddr}); err != nil {
		return fail(fmt.Errorf("ip addr add %s dev %s: %w", hostAddr, uplink, err))
	}
	if err := h.LinkSetUp(veth); err != nil {
		return fail(fmt.Errorf("ip link set %s up: %w", uplink, err))
	}

	peer, err := wh.LinkByName(worldLink)
	worldAddr := &net.IPNet{IP: net.ParseIP(WorldIP), Mask: net.CIDRMask(worldPlen, 32)}
	if err == nil {
		err = wh.AddrAdd(peer, &netlink.Addr{IPNet: worldAddr})
	}
	if err == nil {
		err = wh.LinkSetUp(peer)
	}
	if err == nil {
		// A new namespace's loopback is always interface 1.
		err = wh.LinkSetUp(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 1}})
	}
	if err != nil {
		return fail(fmt.Errorf("world: configure %s: %w", worldLink, err))
	}
	// The lab host reaches everything else through the world, as a host
	// reaches the internet through its uplink.
	if err := h.RouteAdd(&netlink.Route{Gw: net.ParseIP(WorldIP), LinkIndex: veth.Attrs().Index}); err != nil {
		return fail(fmt.Errorf("ip route add default via %s: %w", WorldIP, err))
	}

	var httpLn net.Listener
	var dnsUDP net.PacketConn
	var dnsTCP net.Listener
	err = InNetNS(ns, func() error {
		var err error
		if httpLn, err = net.Listen("tcp", worldHTTP); err != nil {
			return err
		}
		if dns == nil {
			return nil
		}
		if dnsUDP, err = net.ListenPacket("udp", worldDNSPt); err != nil {
			return err
		}
		dnsTCP, err = net.Listen("tcp", worldDNSPt)
		return err
	})
	if err != nil {
		for _, c := range []interface{ Close() error }{httpLn, dnsUDP, dnsTCP} {
			if c != nil {
				c.Close()
			}
		}
		return fail(fmt.Errorf("world: listen: %w", err))
	}
	srv := &http.Server{Handler: http.HandlerFunc(whoami)}
	go srv.Serve(httpLn)
	w.servers = append(w.servers, func() { srv.Close() })
	if dns != nil {
		stop, err := dns(dnsUDP, dnsTCP)
		if err != nil {
			return fail(fmt.Errorf("world: dns: %w", err))
		}
		w.servers = append(w.servers, stop)
	}

	return w, []string{
		"ip netns add world",
		fmt.Sprintf("ip link add %s type veth peer name %s netns world", uplink, worldLink),
		fmt.Sprintf("ip addr add %s dev %s", hostAddr, uplink),
		fmt.Sprintf("ip link set %s up", uplink),
		fmt.Sprintf("ip -n world addr add %s dev %s", worldAddr, worldLink),
		fmt.Sprintf("ip -n world link set %s up", worldLink),
		"ip -n world link set lo up",
		"ip route add default via " + WorldIP,
		"ip netns exec world <http server on :80, answering with the client's address>",
		"ip netns exec world <dns server on :53 for *." + WorldDomain + ">",
	}, nil
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
