package network

import (
	"errors"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"vscript/engine/errdefs"
)

func TestNames(t *testing.T) {
	if got := BridgeName("3f1a2b4c5d6e7f8091a2b3c4d5e6f708"); got != "br-3f1a2b4c5d6e" {
		t.Errorf("BridgeName = %s", got)
	}
	v := VethName("c1", "n1")
	if !regexp.MustCompile(`^veth[0-9a-f]{7}$`).MatchString(v) {
		t.Errorf("VethName = %q, want veth + 7 hex digits", v)
	}
	if v != VethName("c1", "n1") {
		t.Errorf("VethName is not deterministic")
	}
	if v == VethName("c1", "n2") || v == VethName("c2", "n1") || VethName("c1n", "1") == VethName("c1", "n1") {
		t.Errorf("VethName collides for different container/network pairs")
	}
}

// linkIn returns the link name in the namespace of pid.
func linkIn(t *testing.T, pid int, name string) (netlink.Link, *netlink.Handle) {
	t.Helper()
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	link, err := h.LinkByName(name)
	if err != nil {
		return nil, h
	}
	return link, h
}

func TestBridgeAndAttach(t *testing.T) {
	if !inNetns(t) {
		return
	}
	needBusybox(t)
	l, err := NewLinks()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	gw := netip.MustParsePrefix("10.99.0.1/24")
	lines, err := l.CreateBridge("br-test", gw)
	if err != nil {
		t.Fatal(err)
	}
	wantLines := []string{
		"ip link add name br-test address 02:42:0a:63:00:01 type bridge",
		"ip addr add 10.99.0.1/24 dev br-test",
		"ip link set br-test up",
	}
	if !slices.Equal(lines, wantLines) {
		t.Errorf("CreateBridge lines = %q, want %q", lines, wantLines)
	}
	br, err := netlink.LinkByName("br-test")
	if err != nil {
		t.Fatal(err)
	}
	if br.Type() != "bridge" || br.Attrs().Flags&net.FlagUp == 0 || br.Attrs().HardwareAddr.String() != "02:42:0a:63:00:01" {
		t.Errorf("bridge: type %s flags %v mac %s", br.Type(), br.Attrs().Flags, br.Attrs().HardwareAddr)
	}
	addrs, _ := netlink.AddrList(br, unix.AF_INET)
	if len(addrs) != 1 || addrs[0].IPNet.String() != "10.99.0.1/24" {
		t.Errorf("bridge addresses = %v", addrs)
	}
	if _, err := l.CreateBridge("br-test", gw); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("second CreateBridge: %v, want ErrConflict", err)
	}

	c1 := startInNetns(t, busybox, "sleep", "30")
	c2 := startInNetns(t, busybox, "sleep", "30")
	ep := func(cid string, pid int, ip string) Endpoint {
		return Endpoint{ContainerID: cid, NetworkID: "net1", Bridge: "br-test", Pid: pid, IfName: "eth0",
			Addr: netip.MustParsePrefix(ip + "/24"), Gateway: gw.Addr(), DefaultRoute: true}
	}
	v1, lines, err := l.Attach(ep("c1", c1, "10.99.0.2"))
	if err != nil {
		t.Fatal(err)
	}
	if v1 != VethName("c1", "net1") {
		t.Errorf("host veth = %s, want %s", v1, VethName("c1", "net1"))
	}
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "ip link add "+v1+" type veth peer name eth0 address 02:42:0a:63:00:02 netns ") ||
		lines[4] != "nsenter -t "+strconv.Itoa(c1)+" -n ip route add default via 10.99.0.1" {
		t.Errorf("Attach lines = %q", lines)
	}
	v2, _, err := l.Attach(ep("c2", c2, "10.99.0.3"))
	if err != nil {
		t.Fatal(err)
	}

	// The host end is up on the bridge; the container end has its name,
	// address, MAC and default route.
	host, err := netlink.LinkByName(v1)
	if err != nil {
		t.Fatal(err)
	}
	if host.Attrs().MasterIndex != br.Attrs().Index || host.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("host veth: master %d (bridge %d), flags %v", host.Attrs().MasterIndex, br.Attrs().Index, host.Attrs().Flags)
	}
	eth0, h1 := linkIn(t, c1, "eth0")
	if eth0 == nil {
		t.Fatal("no eth0 in the container")
	}
	if eth0.Attrs().HardwareAddr.String() != "02:42:0a:63:00:02" || eth0.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("eth0: mac %s flags %v", eth0.Attrs().HardwareAddr, eth0.Attrs().Flags)
	}
	addrs, _ = h1.AddrList(eth0, unix.AF_INET)
	if len(addrs) != 1 || addrs[0].IPNet.String() != "10.99.0.2/24" {
		t.Errorf("eth0 addresses = %v", addrs)
	}
	routes, _ := h1.RouteList(eth0, unix.AF_INET)
	if !slices.ContainsFunc(routes, func(r netlink.Route) bool { return isDefault(r) && r.Gw.String() == "10.99.0.1" }) {
		t.Errorf("no default route via 10.99.0.1 in %v", routes)
	}

	for _, target := range []string{"10.99.0.3", "10.99.0.1"} {
		if out, err := inContainer(t, c1, busybox, "ping", "-c1", "-W1", target); err != nil {
			t.Errorf("ping %s from c1: %v\n%s", target, err, out)
		}
	}
	if out, err := inContainer(t, c2, busybox, "ping", "-c1", "-W1", "10.99.0.2"); err != nil {
		t.Errorf("ping c1 from c2: %v\n%s", err, out)
	}

	// A failure after the pair exists leaves nothing behind: a second
	// default route cannot be added, so eth1 must vanish with its host end.
	second := ep("c1", c1, "10.99.0.4")
	second.NetworkID, second.IfName = "net2", "eth1"
	if _, _, err := l.Attach(second); err == nil || !strings.Contains(err.Error(), "default route") {
		t.Errorf("Attach with a second default route: %v, want a route error", err)
	}
	if _, err := netlink.LinkByName(VethName("c1", "net2")); err == nil {
		t.Errorf("host veth of the failed attach is still there")
	}
	if eth1, _ := linkIn(t, c1, "eth1"); eth1 != nil {
		t.Errorf("eth1 of the failed attach is still in the container")
	}
	// An interface name taken in the container is a conflict, and does not
	// disturb the existing pair.
	dup := ep("c1", c1, "10.99.0.5")
	dup.NetworkID = "net3"
	if _, _, err := l.Attach(dup); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("Attach over an existing eth0: %v, want ErrConflict", err)
	}
	if _, err := netlink.LinkByName(v1); err != nil {
		t.Errorf("existing veth gone after a conflicting attach: %v", err)
	}
	if _, _, err := l.Attach(Endpoint{Bridge: "br-nope", Pid: c1, IfName: "eth2", Addr: netip.MustParsePrefix("10.99.0.6/24")}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Attach to a missing bridge: %v, want ErrNotFound", err)
	}

	if _, err := l.DeleteLinks(v1); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(v1); err == nil {
		t.Errorf("%s still exists after DeleteLinks", v1)
	}
	if eth0, _ := linkIn(t, c1, "eth0"); eth0 != nil {
		t.Errorf("container end still exists after DeleteLinks")
	}
	if _, err := l.DeleteLinks(v1); err != nil {
		t.Errorf("second DeleteLinks: %v, want nil", err)
	}
	// Several at once, one of them gone already: one deletion of their group.
	again := ep("c1", c1, "10.99.0.7")
	again.NetworkID = "net4"
	v3, _, err := l.Attach(again)
	if err != nil {
		t.Fatal(err)
	}
	lines, err = l.DeleteLinks(v1, v2, v3)
	if err != nil {
		t.Fatal(err)
	}
	if want := "ip link del group 30323"; lines[len(lines)-1] != want {
		t.Errorf("DeleteLinks lines = %q, want the last %q", lines, want)
	}
	for _, v := range []string{v2, v3} {
		if _, err := netlink.LinkByName(v); err == nil {
			t.Errorf("%s still exists after DeleteLinks of three", v)
		}
	}
	if _, err := l.DeleteBridge("br-test"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.DeleteBridge("br-test"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("second DeleteBridge: %v, want ErrNotFound", err)
	}
}

func TestRoutes(t *testing.T) {
	if !inNetns(t) {
		return
	}
	l, err := NewLinks()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.CreateBridge("br-r", netip.MustParsePrefix("172.18.0.1/16")); err != nil {
		t.Fatal(err)
	}
	routes, err := l.Routes()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(routes, netip.MustParsePrefix("172.18.0.0/16")) {
		t.Errorf("Routes() = %v, want 172.18.0.0/16 among them", routes)
	}
	m := NewIPAM()
	m.Avoid(routes...)
	if s, err := m.AddNetwork("n", Subnet{}); err != nil || s.Prefix.String() != "172.19.0.0/16" {
		t.Errorf("AddNetwork avoiding routes = %v, %v; want 172.19.0.0/16", s.Prefix, err)
	}
}
