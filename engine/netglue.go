package engine

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"vscript/engine/errdefs"
	"vscript/engine/lab"
	"vscript/engine/network"
	"vscript/engine/network/dns"
	"vscript/engine/network/proxy"
	"vscript/engine/runtime"
)

// This file joins containers to networks: the hooks container.go calls at
// create (netCreate), start (netNS, netEtc, netStart), exit (netStop), rm
// (netRemove) and inspect (netInspect, netAddrs). As in Docker, a container
// takes its addresses and host ports when it starts and gives them back when
// its command ends; what it asked for (networks, aliases, ip=, -p) stays
// with it from create to rm.

// ctrNet is a container's networking.
type ctrNet struct {
	// mode is "none", "host", "container:NAME", or the name of the network
	// it was created on (bridge networking), as HostConfig.NetworkMode.
	mode string
	// The rest is guarded by netState.mu.
	eps   []*endpoint           // its bridge networks, in attachment order
	ports []network.PortBinding // -p, parsed
	pid   int                   // while running: a process in its namespace
	pubs  []*published          // while running: its published ports
	dns   *dns.Server           // while running, on a user network
	// unwired is closed once the veths of the last run are deleted;
	// nil if there is nothing to wait for.
	unwired chan struct{}
}

// bridged reports whether the container has a network namespace of its own
// wired to bridges (as opposed to none, host or another container's).
func (n *ctrNet) bridged() bool {
	return n.mode != "none" && n.mode != "host" && !strings.HasPrefix(n.mode, "container:")
}

// published is one published port of a running container.
type published struct {
	b     network.PortBinding // with the host port chosen
	ep    *endpoint           // the network it is published from
	proxy *proxy.Proxy
	rule  *network.PublishedPort // set once its iptables rules are in
}

// netCreate validates run(network=..., aliases=..., ip=..., ports=...) and
// records it. Call with e.mu held.
func (e *Engine) netCreate(c *container) error {
	spec := c.spec
	mode := spec.Network
	if mode == "" {
		mode = network.DefaultNetworkName
	}
	if mode == "none" || mode == "host" || strings.HasPrefix(mode, "container:") {
		if strings.HasPrefix(mode, "container:") {
			target, err := e.lookup(strings.TrimPrefix(mode, "container:"))
			if err != nil {
				return err
			}
			mode = "container:" + target.name
		}
		switch {
		case len(spec.Ports) > 0:
			return errdefs.WithHint(fmt.Errorf("container create %s: %w: ports cannot be published with network %s", c.name, errdefs.ErrInvalid, mode),
				"published ports need a bridge network (the default, or one made with network())")
		case len(spec.Aliases) > 0 || spec.IP != "":
			return fmt.Errorf("container create %s: %w: aliases and ip apply to a bridge network, not to network %s", c.name, errdefs.ErrInvalid, mode)
		}
		c.net.mode = mode
		return nil
	}

	var ports []network.PortBinding
	for _, p := range spec.Ports {
		bs, err := network.ParsePortSpec(p)
		if err != nil {
			return fmt.Errorf("container create %s: %w", c.name, err)
		}
		ports = append(ports, bs...)
	}
	s := e.netsLocked()
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.findNet(mode)
	if err != nil {
		return err
	}
	if n.internal && len(ports) > 0 {
		return fmt.Errorf("container create %s: %w: network %s is internal: nothing outside can reach it, so ports cannot be published", c.name, errdefs.ErrInvalid, n.name)
	}
	ep, err := newEndpoint(n, c, EndpointSpec{Aliases: spec.Aliases, IP: spec.IP})
	if err != nil {
		return fmt.Errorf("container create %s: %w", c.name, err)
	}
	if n.dflt {
		// The default bridge's first container: its rules (and the lab's
		// base chains) install while the rootfs is made and the container
		// set up, rather than after. A failure shows at start.
		e.queueRules(n)
	}
	c.net = ctrNet{mode: n.name, eps: []*endpoint{ep}, ports: ports}
	n.eps = append(n.eps, ep)
	return nil
}

// netNS is the runtime's NetNS for c: a new namespace, the lab host's, or
// the joined container's, looked up at each start since its owner may have
// restarted.
func (e *Engine) netNS(c *container) (string, error) {
	switch mode := c.net.mode; {
	case mode == "host":
		return "host", nil
	case strings.HasPrefix(mode, "container:"):
		e.mu.Lock()
		defer e.mu.Unlock()
		target, err := e.lookup(strings.TrimPrefix(mode, "container:"))
		if err != nil {
			return "", err
		}
		if target.rt == nil {
			return "", fmt.Errorf("network %s: %w: container %s is not running", mode, errdefs.ErrConflict, target.name)
		}
		return fmt.Sprintf("/proc/%d/ns/net", target.rt.Pid()), nil
	}
	return "", nil // none, or bridges wired by netStart
}

// netStart wires c's new network namespace (pid's) before its command runs:
// a veth on each of its networks, the embedded DNS server, /etc/hosts, the
// published ports. On failure nothing of it is left. It returns the commands
// it amounts to.
func (e *Engine) netStart(c *container, pid int) (linux []string, err error) {
	if !c.net.bridged() {
		return nil, nil
	}
	s := &e.nets
	s.op.Lock()
	defer s.op.Unlock()
	defer func() {
		if err != nil {
			e.netDown(c, true)
		}
	}()
	e.waitUnwired(c) // a restart reuses the veth names of the last run
	s.mu.Lock()
	c.net.pid = pid
	eps := slices.Clone(c.net.eps)
	s.mu.Unlock()
	for _, ep := range eps {
		lines, err := e.attach(c, ep, pid)
		if err != nil {
			return nil, err
		}
		linux = append(linux, lines...)
	}
	if e.embeddedDNS(c) {
		lines, err := e.startDNS(c, pid)
		if err != nil {
			return nil, err
		}
		linux = append(linux, lines...)
	}
	if err := e.writeHosts(c); err != nil {
		return nil, err
	}
	lines, err := e.publish(c)
	if err != nil {
		return nil, err
	}
	return append(linux, lines...), nil
}

// netStop undoes netStart when c's command has ended (or failed to start).
func (e *Engine) netStop(c *container) {
	if !c.net.bridged() {
		return
	}
	e.nets.op.Lock()
	defer e.nets.op.Unlock()
	e.netDown(c, false)
}

// netDown releases everything c's run holds: ports, DNS server, addresses
// and veths. Call with nets.op held; it is a no-op for a stopped container.
//
// Deleting a veth takes the kernel 20-60 ms (an RCU grace period), three
// times the rest of a run, so unless wait is set the veths are deleted in
// the background: the addresses are free at once (the next container takes
// them, as in Docker). The container's namespace is dead by then, so nothing
// can use the old interfaces meanwhile; what could see them waits for the
// deletion: this container's next start (it reuses the names) and whatever
// looks at the lab host (settleLinks).
func (e *Engine) netDown(c *container, wait bool) {
	s := &e.nets
	s.mu.Lock()
	pubs, srv := c.net.pubs, c.net.dns
	c.net.pubs, c.net.dns, c.net.pid = nil, nil, 0
	eps := slices.Clone(c.net.eps)
	s.mu.Unlock()
	e.unpublish(pubs)
	if srv != nil {
		// Its sockets keep the namespace, and so the veths, alive.
		srv.Close()
	}
	var veths []string
	for _, ep := range eps {
		if v := e.detach(c, ep); v != "" {
			veths = append(veths, v)
		}
	}
	if len(veths) == 0 {
		return
	}
	if wait {
		s.links.DeleteLinks(veths...)
		return
	}
	s.mu.Lock()
	c.net.unwired = e.deleteLater(veths)
	s.mu.Unlock()
}

// deleteLater deletes links in the background and returns what is closed
// once they are gone. Call with nets.mu held.
//
// Each deletion is a request of its own, sent at once: the kernel unlists
// the links within a millisecond or two, then holds the request for its
// RCU wait, and the waits of requests sent together are shared (a burst
// of them costs one or two grace periods, not one each).
func (e *Engine) deleteLater(links []string) chan struct{} {
	s := &e.nets
	done := make(chan struct{})
	if s.unwiring == nil {
		s.unwiring = map[chan struct{}][]string{}
	}
	s.unwiring[done] = links
	go func() {
		s.links.DeleteLinks(links...)
		s.mu.Lock()
		delete(s.unwiring, done)
		s.mu.Unlock()
		close(done)
	}()
	return done
}

// waitUnwired waits until the veths of c's last run are deleted.
func (e *Engine) waitUnwired(c *container) {
	e.nets.mu.Lock()
	done := c.net.unwired
	e.nets.mu.Unlock()
	if done != nil {
		<-done
	}
}

// settleLinks waits until the links being deleted are out of the lab host's
// list, so that it is seen as the script left it: a removed container's
// veth, a removed network's bridge are gone, as after docker rm and docker
// network rm. That is long before their deletions return (see deleteLater).
func (e *Engine) settleLinks() {
	s := &e.nets
	s.mu.Lock()
	pending := maps.Clone(s.unwiring)
	s.mu.Unlock()
	for done, links := range pending {
		e.waitUnlisted(links, done)
	}
}

// WaitBackground waits for the network work the lab does in the background
// — link deletions to their end, queued firewall changes — so that a
// benchmark can keep one operation's aftermath out of the next one's time.
func (e *Engine) WaitBackground() {
	e.nets.mu.Lock()
	pending := slices.Collect(maps.Keys(e.nets.unwiring))
	e.nets.mu.Unlock()
	for _, done := range pending {
		<-done
	}
	e.netDrain()
}

func (e *Engine) waitUnlisted(links []string, done chan struct{}) {
	for e.nets.links.Listed(links...) {
		select {
		case <-done:
			return
		case <-time.After(time.Millisecond):
		}
	}
}

// netRemove forgets c's networks when it is removed; netStop has already
// given back what its last run held.
func (e *Engine) netRemove(c *container) {
	s := &e.nets
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ep := range c.net.eps {
		ep.net.eps = removeEndpoint(ep.net.eps, ep)
	}
	c.net.eps = nil
}

// attach wires c to one network: the bridge (made now for the default
// network's first container), an address, and a veth whose container end is
// the next free ethN. The first network attached that is not internal
// carries the default route; an internal network has none, as in Docker,
// so a container only on internal networks reaches nothing beyond them.
// Call with nets.op held.
func (e *Engine) attach(c *container, ep *endpoint, pid int) ([]string, error) {
	s := &e.nets
	n := ep.net
	s.mu.Lock()
	removed := n.removed
	s.mu.Unlock()
	if removed {
		return nil, errdefs.WithHint(fmt.Errorf("network %s: %w: it was removed", n.name, errdefs.ErrNotFound),
			"disconnect the container from it, or remove the container")
	}
	linux, err := e.bringUp(n)
	if err != nil {
		return nil, err
	}
	if _, err := n.rules.wait(); err != nil {
		return nil, fmt.Errorf("network %s: %w", n.name, err)
	}
	ip, err := s.ipam.Allocate(n.name, c.name, ep.want)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	ifname, routed := nextIfname(c)
	s.mu.Unlock()
	gw := !routed && !n.internal
	veth, lines, err := s.links.Attach(network.Endpoint{
		ContainerID: c.id, NetworkID: n.id, Bridge: n.bridge, Pid: pid, IfName: ifname,
		Addr: netip.PrefixFrom(ip, n.sub.Prefix.Bits()), Gateway: n.sub.Gateway, DefaultRoute: gw,
	})
	if err != nil {
		s.ipam.Release(n.name, ip)
		return nil, err
	}
	s.mu.Lock()
	ep.ip, ep.ifname, ep.veth, ep.gw = ip, ifname, veth, gw
	s.mu.Unlock()
	return append(linux, lines...), nil
}

// nextIfname picks the lowest ethN c does not use yet, and says whether c
// has a default route already. Call with nets.mu held.
func nextIfname(c *container) (name string, routed bool) {
	used := map[string]bool{}
	for _, ep := range c.net.eps {
		if ep.ifname != "" {
			used[ep.ifname] = true
		}
		routed = routed || ep.gw
	}
	for i := 0; ; i++ {
		if name := "eth" + strconv.Itoa(i); !used[name] {
			return name, routed
		}
	}
}

// detach unwires one network of a running c: its ports there and its
// address. It returns the veth to delete ("" if none). Call with nets.op
// held.
func (e *Engine) detach(c *container, ep *endpoint) string {
	s := &e.nets
	s.mu.Lock()
	veth, ip := ep.veth, ep.ip
	ep.veth, ep.ip, ep.ifname, ep.gw = "", netip.Addr{}, "", false
	var gone []*published
	c.net.pubs = slices.DeleteFunc(c.net.pubs, func(p *published) bool {
		if p.ep == ep {
			gone = append(gone, p)
			return true
		}
		return false
	})
	s.mu.Unlock()
	e.unpublish(gone)
	if veth != "" {
		s.ipam.Release(ep.net.name, ip)
	}
	return veth
}

// rerouteDefault gives a running c a default route again after the network
// that carried it was disconnected: through the first network left that is
// not internal.
func (e *Engine) rerouteDefault(c *container) []string {
	s := &e.nets
	s.mu.Lock()
	pid := c.net.pid
	var via *endpoint
	for _, ep := range c.net.eps {
		if ep.ip.IsValid() && !ep.net.internal {
			via = ep
			break
		}
	}
	var gw netip.Addr
	var ifname string
	if via != nil {
		gw, ifname = via.net.sub.Gateway, via.ifname
	}
	s.mu.Unlock()
	if pid == 0 || via == nil {
		return nil
	}
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		return nil
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil
	}
	defer h.Close()
	link, err := h.LinkByName(ifname)
	if err != nil {
		return nil
	}
	if err := h.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: net.IP(gw.AsSlice())}); err != nil {
		return nil
	}
	s.mu.Lock()
	via.gw = true
	s.mu.Unlock()
	return []string{fmt.Sprintf("nsenter -t %d -n ip route add default via %s", pid, gw)}
}

// publish opens c's published ports: a host port from the allocator, the
// userland proxy listening on it, and the DNAT rules, all or nothing. Ports
// are published from c's first network. Call with nets.op held.
func (e *Engine) publish(c *container) ([]string, error) {
	s := &e.nets
	s.mu.Lock()
	bindings := c.net.ports
	var ep *endpoint
	for _, x := range c.net.eps {
		if x.ip.IsValid() {
			ep = x
			break
		}
	}
	var ip netip.Addr
	if ep != nil {
		ip = ep.ip
	}
	s.mu.Unlock()
	if len(bindings) == 0 {
		return nil, nil
	}
	if ep == nil {
		return nil, fmt.Errorf("ports: %w: the container is on no network to publish them from", errdefs.ErrInvalid)
	}
	var pubs []*published
	var linux []string
	var rules []network.PublishedPort
	fail := func(err error) ([]string, error) {
		e.unpublish(pubs)
		return nil, err
	}
	for _, want := range bindings {
		b, err := s.ports.Allocate(c.name, want)
		if err != nil {
			return fail(err)
		}
		p := &published{b: b, ep: ep}
		backend := netip.AddrPortFrom(ip, b.ContainerPort).String()
		if p.proxy, err = listenProxy(b, backend); err != nil {
			s.ports.Release(b)
			return fail(err)
		}
		pubs = append(pubs, p)
		linux = append(linux, fmt.Sprintf("docker-proxy -proto %s -host-ip %s -host-port %d -container-ip %s -container-port %d &",
			b.Proto, b.HostIP, b.HostPort, ip, b.ContainerPort))
		rules = append(rules, network.PublishedPort{Bridge: ep.net.bridge, ContainerIP: ip, Proto: b.Proto,
			HostIP: b.HostIP, HostPort: b.HostPort, ContainerPort: b.ContainerPort})
	}
	lines, err := s.fw.do(func(fw *network.Firewall) ([]string, error) { return fw.AddPort(rules...) }).wait()
	if err != nil {
		return fail(err)
	}
	for i := range pubs {
		pubs[i].rule = &rules[i]
	}
	s.mu.Lock()
	c.net.pubs = append(c.net.pubs, pubs...)
	s.mu.Unlock()
	return append(linux, lines...), nil
}

// listenProxy opens the host side of a published port on the lab host and
// relays it to backend, as docker-proxy does.
func listenProxy(b network.PortBinding, backend string) (*proxy.Proxy, error) {
	addr := netip.AddrPortFrom(b.HostIP, b.HostPort).String()
	var err error
	if b.Proto == "udp" {
		var pc net.PacketConn
		if pc, err = net.ListenPacket("udp4", addr); err == nil {
			return proxy.UDP(pc, backend), nil
		}
	} else {
		var l net.Listener
		if l, err = net.Listen("tcp4", addr); err == nil {
			return proxy.TCP(l, backend), nil
		}
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, errdefs.WithHint(
			fmt.Errorf("port %s/%s: %w: a program on the lab host is already listening on it", addr, b.Proto, errdefs.ErrConflict),
			"pick another host port, or let vscript choose one (ports=[\""+strconv.Itoa(int(b.ContainerPort))+"\"])")
	}
	return nil, fmt.Errorf("port %s/%s: %w", addr, b.Proto, err)
}

// unpublish closes published ports: proxies at once, iptables rules through
// the queue. Call with nets.op held.
func (e *Engine) unpublish(pubs []*published) {
	if len(pubs) == 0 {
		return
	}
	var rules []network.PublishedPort
	for _, p := range pubs {
		p.proxy.Close()
		e.nets.ports.Release(p.b)
		if p.rule != nil {
			rules = append(rules, *p.rule)
		}
	}
	if len(rules) > 0 {
		e.nets.fw.do(func(fw *network.Firewall) ([]string, error) { return fw.RemovePort(rules...) })
	}
}

// embeddedDNS reports whether c gets the embedded DNS server: it is on a
// user-defined network, as in Docker.
func (e *Engine) embeddedDNS(c *container) bool {
	if !c.net.bridged() {
		return false
	}
	e.nets.mu.Lock()
	defer e.nets.mu.Unlock()
	for _, ep := range c.net.eps {
		if !ep.net.dflt {
			return true
		}
	}
	return false
}

// dnsAddr is where containers on user networks find the embedded DNS server.
const dnsAddr = "127.0.0.11:53"

// startDNS serves DNS for c on 127.0.0.11:53 inside its network namespace.
// Each container has its own server, because a query to a loopback address
// does not say which container sent it. Call with nets.op held.
func (e *Engine) startDNS(c *container, pid int) ([]string, error) {
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		return nil, fmt.Errorf("dns: network namespace of %d: %w", pid, err)
	}
	defer ns.Close()
	var udp net.PacketConn
	var tcp net.Listener
	err = lab.InNetNS(ns, func() error {
		var err error
		if udp, err = net.ListenPacket("udp4", dnsAddr); err != nil {
			return err
		}
		if tcp, err = net.Listen("tcp4", dnsAddr); err != nil {
			udp.Close()
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dns: listen on %s: %w", dnsAddr, err)
	}
	srv := dns.NewServer(dns.Config{Resolver: ctrResolver{e, c}, Upstreams: e.dnsUpstreams(c)})
	if err := srv.Serve(udp, tcp); err != nil {
		return nil, err
	}
	e.nets.mu.Lock()
	c.net.dns = srv
	e.nets.mu.Unlock()
	return []string{fmt.Sprintf("nsenter -t %d -n <vscript's embedded DNS server on %s, udp and tcp>", pid, dnsAddr)}, nil
}

// dnsUpstreams are where c's DNS server forwards names it does not know:
// the world's DNS in a sandbox, the machine's resolvers with --host, nowhere
// for a container only on internal networks.
func (e *Engine) dnsUpstreams(c *container) []string {
	e.nets.mu.Lock()
	internal := true
	for _, ep := range c.net.eps {
		internal = internal && ep.net.internal
	}
	e.nets.mu.Unlock()
	if internal {
		return nil
	}
	if e.lab.Sandboxed() {
		return []string{net.JoinHostPort(lab.WorldIP, "53")}
	}
	var ups []string
	for _, ns := range nameservers(readResolv()) {
		ups = append(ups, net.JoinHostPort(ns, "53"))
	}
	return ups
}

// ctrResolver answers one container's DNS queries: the names, aliases and
// short ids of the running containers on its user-defined networks, looked
// up in its networks' order.
type ctrResolver struct {
	e *Engine
	c *container
}

func (r ctrResolver) LookupIP(_ net.Addr, name string) ([]net.IP, bool) {
	s := &r.e.nets
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, mine := range r.c.net.eps {
		n := mine.net
		if n.dflt || !mine.ip.IsValid() {
			continue
		}
		short := name
		if base, ok := strings.CutSuffix(name, "."+strings.ToLower(n.name)); ok {
			short = base // bbox2.my_net
		}
		var ips []net.IP
		for _, ep := range n.eps {
			if ep.ip.IsValid() && ep.answers(short) {
				ips = append(ips, net.IP(ep.ip.AsSlice()))
			}
		}
		if len(ips) > 0 {
			return ips, true
		}
	}
	return nil, false
}

// answers reports whether ep's container goes by name (lowercase) on ep's
// network.
func (ep *endpoint) answers(name string) bool {
	if strings.ToLower(ep.ctr.name) == name || ep.ctr.id[:12] == name {
		return true
	}
	for _, a := range ep.aliases {
		if strings.ToLower(a) == name {
			return true
		}
	}
	return false
}

func (r ctrResolver) LookupAddr(_ net.Addr, ip net.IP) ([]string, bool) {
	addr, ok := netip.AddrFromSlice(ip.To4())
	if !ok {
		return nil, false
	}
	s := &r.e.nets
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, mine := range r.c.net.eps {
		if mine.net.dflt || !mine.ip.IsValid() {
			continue
		}
		for _, ep := range mine.net.eps {
			if ep.ip == addr {
				return []string{ep.ctr.name + "." + mine.net.name}, true
			}
		}
	}
	return nil, false
}

// netEtc returns c's /etc/hosts and /etc/resolv.conf as its command will
// first see them; netStart adds the addresses to /etc/hosts once it has
// them. A container sharing another's namespace shares its files, as in
// Docker.
func (e *Engine) netEtc(c *container) (hosts, resolv []byte) {
	if ref, ok := strings.CutPrefix(c.net.mode, "container:"); ok {
		e.mu.Lock()
		target, err := e.lookup(ref)
		e.mu.Unlock()
		if err == nil {
			h, err1 := os.ReadFile(etcPath(target, "hosts"))
			r, err2 := os.ReadFile(etcPath(target, "resolv.conf"))
			if err1 == nil && err2 == nil {
				return h, r
			}
		}
	}
	return e.hostsFile(c), e.resolvConf(c, readResolv())
}

// etcPath is where the runtime keeps c's file /etc/NAME, which may be
// rewritten in place while c runs.
func etcPath(c *container, name string) string {
	spec := runtime.Spec{Rootfs: runtime.Rootfs{Upper: filepath.Join(c.dir, "upper")}}
	return filepath.Join(spec.EtcDir(), name)
}

// hostsFile is Docker's /etc/hosts: the loopback names, then one line per
// address c has, with its hostname.
func (e *Engine) hostsFile(c *container) []byte {
	var b strings.Builder
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
	e.nets.mu.Lock()
	for _, ep := range c.net.eps {
		if ep.ip.IsValid() {
			b.WriteString(ep.ip.String() + "\t" + c.hostname + "\n")
		}
	}
	e.nets.mu.Unlock()
	return []byte(b.String())
}

// writeHosts rewrites a running c's /etc/hosts in place (the container sees
// the file through a bind mount of it).
func (e *Engine) writeHosts(c *container) error {
	e.nets.mu.Lock()
	running := c.net.pid != 0
	e.nets.mu.Unlock()
	if !running {
		return nil
	}
	hosts := e.hostsFile(c)
	f, err := os.OpenFile(etcPath(c, "hosts"), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("/etc/hosts: %w", err)
	}
	_, err = f.Write(hosts)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// The copy read_file and cp show.
		err = keepEtc(c, map[string][]byte{"/etc/hosts": hosts})
	}
	if err != nil {
		return fmt.Errorf("/etc/hosts: %w", err)
	}
	return nil
}

// resolvConf is c's /etc/resolv.conf: the embedded DNS server's on a
// user-defined network, otherwise the lab host's own (host).
func (e *Engine) resolvConf(c *container, host string) []byte {
	return resolvFile(host, e.embeddedDNS(c), c.net.bridged() && !e.lab.Sandboxed())
}

// resolvFile makes a resolv.conf from the host's: for the embedded DNS
// server (keeping the host's search domains, as Docker), or the host's own,
// without loopback servers when a bridged container on a real host could not
// reach them (Docker then falls back to Google's public servers).
func resolvFile(host string, embedded, dropLoopback bool) []byte {
	if embedded {
		var b strings.Builder
		b.WriteString("nameserver 127.0.0.11\n")
		for line := range strings.Lines(host) {
			if f := strings.Fields(line); len(f) > 0 && (f[0] == "search" || f[0] == "domain") {
				b.WriteString(line)
			}
		}
		b.WriteString("options ndots:0\n")
		return []byte(b.String())
	}
	if !dropLoopback {
		return []byte(host)
	}
	var b strings.Builder
	servers := 0
	for line := range strings.Lines(host) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "nameserver" {
			if ip, err := netip.ParseAddr(f[1]); err == nil && ip.IsLoopback() {
				continue
			}
			servers++
		}
		b.WriteString(line)
	}
	if servers == 0 {
		b.WriteString("nameserver 8.8.8.8\nnameserver 8.8.4.4\n")
	}
	return []byte(b.String())
}

// readResolv is the lab host's /etc/resolv.conf (in a sandbox: the world).
func readResolv() string {
	b, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return ""
	}
	s := string(b)
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s
}

func nameservers(resolv string) []string {
	var out []string
	for line := range strings.Lines(resolv) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "nameserver" {
			out = append(out, f[1])
		}
	}
	return out
}

// netAddrs is ContainerInfo.Networks: c's networks in attachment order, with
// their addresses while it runs. Call with e.mu held.
func (e *Engine) netAddrs(c *container) []NetworkAddr {
	e.nets.mu.Lock()
	defer e.nets.mu.Unlock()
	var out []NetworkAddr
	for _, ep := range c.net.eps {
		a := NetworkAddr{Network: ep.net.name}
		if ep.ip.IsValid() {
			a.IP = ep.ip.String()
		}
		out = append(out, a)
	}
	return out
}

// netInspect is inspect()'s NetworkSettings, in Docker's shape: the
// networks with their endpoint settings (empty while the container is
// stopped), and the ports — published ones with their host side, exposed
// ones with null. Call with e.mu held.
func (e *Engine) netInspect(c *container) map[string]any {
	nets := map[string]any{}
	ports := map[string]any{}
	settings := map[string]any{"Networks": nets, "Ports": ports,
		"IPAddress": "", "Gateway": "", "MacAddress": "", "IPPrefixLen": 0, "SandboxKey": ""}
	if c.net.mode == "none" || c.net.mode == "host" {
		nets[c.net.mode] = map[string]any{"IPAddress": "", "Gateway": "", "MacAddress": "", "IPPrefixLen": 0,
			"Aliases": nil, "NetworkID": e.predefinedID(c.net.mode)}
	}
	if c.rt != nil && c.net.mode != "host" && !strings.HasPrefix(c.net.mode, "container:") {
		settings["SandboxKey"] = fmt.Sprintf("/proc/%d/ns/net", c.rt.Pid())
	}
	s := &e.nets
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ep := range c.net.eps {
		n := ep.net
		var aliases []any
		if !n.dflt {
			aliases = []any{}
			for _, a := range ep.aliases {
				aliases = append(aliases, a)
			}
			aliases = append(aliases, c.id[:12])
		}
		m := map[string]any{"IPAddress": "", "Gateway": "", "MacAddress": "", "IPPrefixLen": 0,
			"Aliases": aliases, "NetworkID": n.id}
		if ep.want.IsValid() {
			m["IPAMConfig"] = map[string]any{"IPv4Address": ep.want.String()}
		}
		if ep.ip.IsValid() {
			m["IPAddress"], m["Gateway"] = ep.ip.String(), n.sub.Gateway.String()
			m["MacAddress"], m["IPPrefixLen"] = network.MACFromIP(ep.ip).String(), n.sub.Prefix.Bits()
			if n.dflt {
				for _, k := range []string{"IPAddress", "Gateway", "MacAddress", "IPPrefixLen"} {
					settings[k] = m[k]
				}
			}
		}
		nets[n.name] = m
	}
	if c.net.pid != 0 {
		for p := range c.img.Config.ExposedPorts {
			ports[p] = nil
		}
		for _, p := range c.net.pubs {
			key := fmt.Sprintf("%d/%s", p.b.ContainerPort, p.b.Proto)
			list, _ := ports[key].([]any)
			ports[key] = append(list, map[string]any{"HostIp": p.b.HostIP.String(), "HostPort": strconv.Itoa(int(p.b.HostPort))})
		}
	}
	return settings
}

// Port returns the host address ("0.0.0.0:32768") a running container's
// port ("80", "80/tcp", "53/udp") is published on, as `docker port`.
func (e *Engine) Port(ref, port string) (string, error) {
	e.mu.Lock()
	c, err := e.lookup(ref)
	e.mu.Unlock()
	if err != nil {
		return "", err
	}
	num, proto, _ := strings.Cut(port, "/")
	if proto == "" {
		proto = "tcp"
	}
	n, err := strconv.ParseUint(num, 10, 16)
	if err != nil || n == 0 || (proto != "tcp" && proto != "udp") {
		return "", fmt.Errorf("container port %s %s: %w: want a port such as 80, \"80/tcp\" or \"53/udp\"", c.name, port, errdefs.ErrInvalid)
	}
	e.nets.mu.Lock()
	defer e.nets.mu.Unlock()
	for _, p := range c.net.pubs {
		if p.b.ContainerPort == uint16(n) && p.b.Proto == proto {
			return netip.AddrPortFrom(p.b.HostIP, p.b.HostPort).String(), nil
		}
	}
	return "", fmt.Errorf("container port %s %d/%s: %w: no public port published (is it running, with ports=[...]?)", c.name, n, proto, errdefs.ErrNotFound)
}
