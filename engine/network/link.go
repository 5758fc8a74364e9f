package network

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"vscript/engine/errdefs"
)

// BridgeName is the Linux bridge of a user network, as Docker names it:
// br- and the first 12 characters of the network id.
func BridgeName(networkID string) string {
	return "br-" + networkID[:min(12, len(networkID))]
}

// VethName is the host end of a container's veth on a network: veth and 7
// hex digits, like Docker's, but derived from the ids so that runs repeat.
func VethName(containerID, networkID string) string {
	sum := sha256.Sum256([]byte(containerID + "\x00" + networkID))
	return "veth" + hex.EncodeToString(sum[:4])[:7]
}

// Links creates bridges and veth pairs in the current network namespace (the
// lab host's) and configures the container end of a veth from outside,
// through a netlink socket opened in the container's namespace.
type Links struct {
	h *netlink.Handle
}

// NewLinks opens a netlink socket in the current network namespace.
func NewLinks() (*Links, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return &Links{h: h}, nil
}

// Close releases the netlink socket.
func (l *Links) Close() { l.h.Close() }

// CreateBridge makes a bridge with the gateway address (172.18.0.1/16) and
// brings it up. Its MAC derives from the gateway: a bridge without a fixed
// MAC takes the lowest one of its ports, which changes as containers come
// and go and makes neighbours' ARP caches stale.
func (l *Links) CreateBridge(name string, gateway netip.Prefix) ([]string, error) {
	if !gateway.Addr().Is4() {
		return nil, errorf(errdefs.ErrInvalid, "bridge %s: gateway %s is not an IPv4 address", name, gateway)
	}
	mac := MACFromIP(gateway.Addr())
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	attrs.HardwareAddr = mac
	br := &netlink.Bridge{LinkAttrs: attrs}
	if err := l.h.LinkAdd(br); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil, errorf(errdefs.ErrConflict, "bridge %s: already exists", name)
		}
		return nil, fmt.Errorf("bridge %s: create: %w", name, err)
	}
	if err := l.h.AddrAdd(br, &netlink.Addr{IPNet: ipNet(gateway)}); err != nil {
		l.h.LinkDel(br)
		return nil, fmt.Errorf("bridge %s: address %s: %w", name, gateway, err)
	}
	if err := l.h.LinkSetUp(br); err != nil {
		l.h.LinkDel(br)
		return nil, fmt.Errorf("bridge %s: up: %w", name, err)
	}
	return []string{
		"ip link add name " + name + " address " + mac.String() + " type bridge",
		"ip addr add " + gateway.String() + " dev " + name,
		"ip link set " + name + " up",
	}, nil
}

// RetireBridge takes a bridge's addresses away, so that its subnet is free
// for another network at once; DeleteLinks deletes it later.
func (l *Links) RetireBridge(name string) ([]string, error) {
	br, err := l.h.LinkByName(name)
	if err != nil {
		return nil, linkError("bridge "+name, err)
	}
	addrs, err := l.h.AddrList(br, unix.AF_INET)
	if err != nil {
		return nil, fmt.Errorf("bridge %s: %w", name, err)
	}
	for _, a := range addrs {
		if err := l.h.AddrDel(br, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return nil, fmt.Errorf("bridge %s: delete address %s: %w", name, a.IPNet, err)
		}
	}
	return []string{"ip addr flush dev " + name}, nil
}

// DeleteBridge removes a bridge; veths still enslaved to it are detached by
// the kernel, not deleted.
func (l *Links) DeleteBridge(name string) ([]string, error) {
	br, err := l.h.LinkByName(name)
	if err != nil {
		return nil, linkError("bridge "+name, err)
	}
	if err := l.h.LinkDel(br); err != nil {
		return nil, fmt.Errorf("bridge %s: delete: %w", name, err)
	}
	return []string{"ip link del " + name}, nil
}

// Endpoint is a container's interface on a bridge network.
type Endpoint struct {
	// ContainerID and NetworkID name the host end of the veth.
	ContainerID string
	NetworkID   string
	Bridge      string
	// Pid is a process in the container's network namespace.
	Pid int
	// IfName is the interface's name in the container: eth0, eth1, ...
	IfName string
	// Addr is the container's address with the subnet's length: 172.18.0.2/16.
	Addr netip.Prefix
	// MAC defaults to MACFromIP(Addr).
	MAC     net.HardwareAddr
	Gateway netip.Addr
	// DefaultRoute routes everything off-subnet via Gateway; only the first
	// network of a container sets it.
	DefaultRoute bool
}

// Attach connects a container to a bridge: a veth pair whose host end is
// enslaved to the bridge and whose other end is created directly inside the
// container's namespace under its final name, then given its address, MAC
// and, for the first network, the default route. On any error nothing is
// left behind. It returns the host end's name.
func (l *Links) Attach(ep Endpoint) (string, []string, error) {
	host := VethName(ep.ContainerID, ep.NetworkID)
	subject := fmt.Sprintf("attach %s to %s", ep.IfName, ep.Bridge)
	switch {
	case ep.Pid <= 0:
		return "", nil, errorf(errdefs.ErrInvalid, "%s: no container process", subject)
	case ep.IfName == "" || len(ep.IfName) > 15:
		return "", nil, errorf(errdefs.ErrInvalid, "%s: bad interface name %q", subject, ep.IfName)
	case !ep.Addr.Addr().Is4():
		return "", nil, errorf(errdefs.ErrInvalid, "%s: address %s is not IPv4", subject, ep.Addr)
	case ep.DefaultRoute && !ep.Gateway.Is4():
		return "", nil, errorf(errdefs.ErrInvalid, "%s: a default route needs an IPv4 gateway", subject)
	}
	mac := ep.MAC
	if mac == nil {
		mac = MACFromIP(ep.Addr.Addr())
	}
	br, err := l.h.LinkByName(ep.Bridge)
	if err != nil {
		return "", nil, linkError(subject+": bridge "+ep.Bridge, err)
	}
	ns, err := netns.GetFromPid(ep.Pid)
	if err != nil {
		return "", nil, errorf(errdefs.ErrNotFound, "%s: network namespace of pid %d: %w", subject, ep.Pid, err)
	}
	defer ns.Close()

	attrs := netlink.NewLinkAttrs()
	attrs.Name = host
	attrs.MasterIndex = br.Attrs().Index
	// One queue each way, for both ends (the peer inherits them). Left to
	// itself the kernel allocates a queue per CPU and then cuts the pair
	// down to one, and each cut waits for an RCU grace period: most of a
	// veth's creation time.
	attrs.NumTxQueues, attrs.NumRxQueues = 1, 1
	veth := netlink.NewVeth(attrs)
	veth.PeerName = ep.IfName
	veth.PeerHardwareAddr = mac
	veth.PeerNamespace = netlink.NsFd(ns)
	if err := l.h.LinkAdd(veth); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return "", nil, errorf(errdefs.ErrConflict, "%s: %s or %s already exists", subject, host, ep.IfName)
		}
		// LinkAdd creates the pair before enslaving it; undo a half success.
		l.deleteLink(host)
		return "", nil, fmt.Errorf("%s: create veth %s: %w", subject, host, err)
	}
	if err := l.configure(veth, ns, ep, mac); err != nil {
		l.deleteLink(host)
		return "", nil, fmt.Errorf("%s: %w", subject, err)
	}

	pid := strconv.Itoa(ep.Pid)
	in := "nsenter -t " + pid + " -n "
	lines := []string{
		"ip link add " + host + " type veth peer name " + ep.IfName + " address " + mac.String() + " netns " + pid,
		"ip link set " + host + " master " + ep.Bridge + " up",
		in + "ip addr add " + ep.Addr.String() + " dev " + ep.IfName,
		in + "ip link set " + ep.IfName + " up",
	}
	if ep.DefaultRoute {
		lines = append(lines, in+"ip route add default via "+ep.Gateway.String())
	}
	return host, lines, nil
}

// configure brings the host end up and sets up the container end through a
// netlink socket opened in the container's namespace; no goroutine of ours
// ever switches namespaces.
func (l *Links) configure(veth *netlink.Veth, ns netns.NsHandle, ep Endpoint, mac net.HardwareAddr) error {
	if err := l.h.LinkSetUp(veth); err != nil {
		return fmt.Errorf("up %s: %w", veth.Name, err)
	}
	ch, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in the container: %w", err)
	}
	defer ch.Close()
	peer, err := ch.LinkByName(ep.IfName)
	if err != nil {
		return fmt.Errorf("find %s in the container: %w", ep.IfName, err)
	}
	if err := ch.AddrAdd(peer, &netlink.Addr{IPNet: ipNet(ep.Addr)}); err != nil {
		return fmt.Errorf("address %s: %w", ep.Addr, err)
	}
	if err := ch.LinkSetUp(peer); err != nil {
		return fmt.Errorf("up %s: %w", ep.IfName, err)
	}
	if ep.DefaultRoute {
		route := &netlink.Route{LinkIndex: peer.Attrs().Index, Gw: net.IP(ep.Gateway.AsSlice())}
		if err := ch.RouteAdd(route); err != nil {
			return fmt.Errorf("default route via %s: %w", ep.Gateway, err)
		}
	}
	return nil
}

// detachGroup is the link group veths join to be deleted together: 30323,
// 0x7673, "vs", far from the groups (0 by default) a host's own links are in.
const detachGroup = 0x7673

// DeleteLinks deletes links: veth pairs by their host ends, bridges. A link
// already gone (a veth's namespace died with its container, which takes the
// pair along) is not an error.
//
// The kernel waits for an RCU grace period per deletion request, 20-60 ms on
// this machine, so several links join one link group and the group is
// deleted in one request: one wait for all.
func (l *Links) DeleteLinks(names ...string) ([]string, error) {
	if len(names) == 1 {
		return l.deleteOne(names[0])
	}
	group := strconv.Itoa(detachGroup)
	var lines []string
	joined := 0
	for _, name := range names {
		lines = append(lines, "ip link set "+name+" group "+group)
		link, err := l.h.LinkByName(name)
		if errors.As(err, new(netlink.LinkNotFoundError)) {
			continue
		}
		if err == nil {
			err = l.h.LinkSetGroup(link, detachGroup)
		}
		if errors.Is(err, unix.ENODEV) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("delete %s: %w", name, err)
		}
		joined++
	}
	lines = append(lines, "ip link del group "+group)
	if joined == 0 {
		return lines, nil
	}
	req := nl.NewNetlinkRequest(unix.RTM_DELLINK, unix.NLM_F_ACK)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_GROUP, nl.Uint32Attr(detachGroup)))
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil && !errors.Is(err, unix.ENODEV) {
		return nil, fmt.Errorf("delete %s: %w", strings.Join(names, " "), err)
	}
	return lines, nil
}

func (l *Links) deleteOne(name string) ([]string, error) {
	line := []string{"ip link del " + name}
	link, err := l.h.LinkByName(name)
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		return line, nil
	}
	if err != nil {
		return nil, fmt.Errorf("delete %s: %w", name, err)
	}
	// On a socket of its own, as the group's below: the kernel answers
	// after its RCU wait, and l.h's socket is shared with the attaches of
	// starting containers, which must not queue behind it.
	if err := netlink.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return nil, fmt.Errorf("delete %s: %w", name, err)
	}
	return line, nil
}

// Listed reports whether any of the links is in the namespace's list still.
// A deleted link leaves it within a millisecond or two, long before its
// deletion returns.
func (l *Links) Listed(names ...string) bool {
	for _, name := range names {
		if _, err := l.h.LinkByName(name); err == nil {
			return true
		}
	}
	return false
}

// Routes lists the destinations of the namespace's IPv4 routes, for
// IPAM.Avoid: a network must not take a subnet the host already reaches.
func (l *Links) Routes() ([]netip.Prefix, error) {
	routes, err := l.h.RouteList(nil, unix.AF_INET)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	var out []netip.Prefix
	for _, r := range routes {
		if isDefault(r) {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		if a, ok := netip.AddrFromSlice(r.Dst.IP.To4()); ok {
			out = append(out, netip.PrefixFrom(a, ones))
		}
	}
	return out, nil
}

// isDefault tells a default route; netlink reports its destination as nil or
// as 0.0.0.0/0 depending on the version.
func isDefault(r netlink.Route) bool {
	if r.Dst == nil {
		return true
	}
	ones, _ := r.Dst.Mask.Size()
	return ones == 0
}

func (l *Links) deleteLink(name string) {
	if link, err := l.h.LinkByName(name); err == nil {
		l.h.LinkDel(link)
	}
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func linkError(subject string, err error) error {
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		return errorf(errdefs.ErrNotFound, "%s: no such interface", subject)
	}
	return fmt.Errorf("%s: %w", subject, err)
}
