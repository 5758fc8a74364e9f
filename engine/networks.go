package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"vscript/engine/errdefs"
	"vscript/engine/event"
	"vscript/engine/network"
)

// This file holds the lab's networks: `docker network create/ls/inspect/rm`
// and `connect/disconnect` on the Engine, and the machinery they share with
// the container hooks in netglue.go.
//
// Locking: nets.op serialises every change to the kernel's network state
// (bridges, veths, addresses, ports); it is taken first. e.mu guards the
// containers, nets.mu the network records, endpoints and each container's
// ctrNet; when both are held, e.mu comes first. Nothing slow runs under e.mu
// or nets.mu.
//
// iptables changes go through one queue (fwQueue) so they apply in the
// order they were asked for, and most are not waited for: a network's rules
// are installed while the script goes on, and only what needs them — a
// container starting on the network, host.iptables(), a published port —
// waits. That keeps `network create` at the cost of a bridge instead of an
// iptables-restore process.

// NetworkSpec is a network to create, in `docker network create` terms.
type NetworkSpec struct {
	Name     string
	Driver   string // "bridge", the only driver; "" means bridge
	Subnet   string // CIDR; "" picks the next of Docker's default pools
	Gateway  string // "" is the subnet's first address
	Internal bool   // no route to or from the outside
}

// NetworkInfo is a network as builtins show it.
type NetworkInfo struct {
	ID       string
	Name     string
	Driver   string // bridge, host or null (none)
	Subnet   string // "" for host and none
	Gateway  string
	Bridge   string // the Linux bridge: vscript0 for the default network, br-<id12> for others
	Internal bool
	// DNS reports whether containers resolve each other's names here
	// (user-defined networks), unlike on the default bridge.
	DNS bool
	// Containers are the attached containers in attachment order.
	Containers []NetworkMember
}

// NetworkMember is a container attached to a network.
type NetworkMember struct {
	ID, Name string
	IP       string // "" unless the container runs
	MAC      string
	Aliases  []string
}

// EndpointSpec is what `docker network connect` takes besides the names.
type EndpointSpec struct {
	Aliases []string
	IP      string // "" takes the next free address
}

// netState is the lab's networks. The zero value is ready: the rest is made
// on first use, since most labs never touch a network.
type netState struct {
	op sync.Mutex // serialises kernel changes; taken before e.mu and mu

	mu    sync.Mutex
	ready bool
	ipam  *network.IPAM
	ports *network.PortAllocator
	nets  []*bridgeNet // the default bridge first, then user networks in creation order

	links   *network.Links // lab host's netlink socket; nil until a bridge is made
	fw      *fwQueue
	fwErr   error    // why there is no firewall (iptables missing)
	setup   *pending // the firewall's base chains, once per lab
	shown   bool     // setup's commands were shown in an event
	restore string   // host mode: what to put back at Close ("ip_forward=0 forward_policy=ACCEPT")

	// Link deletions in the background, by what is closed once each is
	// done (see deleteLater).
	unwiring map[chan struct{}][]string
}

// bridgeNet is one bridge network of the lab.
type bridgeNet struct {
	id, name string
	sub      network.Subnet
	bridge   string
	internal bool
	dflt     bool // the default bridge: no DNS, no aliases, no ip=
	driver   string

	// Guarded by netState.mu.
	eps     []*endpoint
	removed bool
	up      bool     // the bridge exists
	rules   *pending // its iptables rules; nil until up
}

func (n *bridgeNet) firewallNet() network.BridgeNet {
	return network.BridgeNet{Name: n.name, Bridge: n.bridge, Subnet: n.sub.Prefix, Internal: n.internal, ICC: true}
}

// endpoint is a container's membership of a network: configured at create or
// connect, wired (ip, veth) while the container runs.
type endpoint struct {
	net     *bridgeNet
	ctr     *container
	aliases []string
	want    netip.Addr // ip=

	// Guarded by netState.mu; set while the container runs.
	ip     netip.Addr
	ifname string
	veth   string
	gw     bool // carries the container's default route
}

var validNetworkName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// predefined networks besides the default bridge, as `docker network ls`
// shows them.
var predefined = map[string]string{"host": "host", "none": "null"}

// netsLocked returns the lab's networks, making the records on first use.
// Call with e.mu held (it hands out the default bridge's id).
func (e *Engine) netsLocked() *netState {
	s := &e.nets
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready {
		return s
	}
	s.ipam = network.NewIPAM()
	s.ports = network.NewPortAllocator()
	// The default bridge exists from the start, as Docker's; its kernel
	// objects are made when the first container starts on it.
	sub, _ := s.ipam.AddNetwork(network.DefaultNetworkName,
		network.Subnet{Prefix: network.DefaultBridgeSubnet, Gateway: network.DefaultBridgeGateway})
	s.nets = []*bridgeNet{{
		id: e.newIDLocked("network"), name: network.DefaultNetworkName, sub: sub,
		bridge: network.DefaultBridgeName, dflt: true, driver: "bridge",
	}}
	s.ready = true
	return s
}

// netsInit is netsLocked for callers that do not hold e.mu.
func (e *Engine) netsInit() *netState {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.netsLocked()
}

// findNet looks a bridge network up by name, id or unique id prefix. Call
// with s.mu held.
func (s *netState) findNet(ref string) (*bridgeNet, error) {
	for _, n := range s.nets {
		if n.name == ref || n.id == ref {
			return n, nil
		}
	}
	var found *bridgeNet
	if ref != "" && isHex(ref) {
		for _, n := range s.nets {
			if strings.HasPrefix(n.id, ref) {
				if found != nil {
					return nil, fmt.Errorf("network %s: %w: ambiguous id prefix", ref, errdefs.ErrInvalid)
				}
				found = n
			}
		}
	}
	if found == nil {
		return nil, errdefs.WithHint(fmt.Errorf("network %s: %w", ref, errdefs.ErrNotFound),
			"networks() lists the networks of this lab; network(name) makes one")
	}
	return found, nil
}

// NetworkCreate makes a user-defined bridge network, as `docker network
// create`: a subnet (given, or the next free one of Docker's pools), a Linux
// bridge br-<id12> holding the gateway address, and its iptables rules.
func (e *Engine) NetworkCreate(ctx context.Context, spec NetworkSpec) (*NetworkInfo, error) {
	start := time.Now()
	name := spec.Name
	fail := func(class error, format string, args ...any) (*NetworkInfo, error) {
		return nil, fmt.Errorf("network create %s: %w: %s", name, class, fmt.Sprintf(format, args...))
	}
	switch {
	case !validNetworkName.MatchString(name):
		return fail(errdefs.ErrInvalid, "invalid name (want [a-zA-Z0-9][a-zA-Z0-9_.-]*)")
	case spec.Driver != "" && spec.Driver != "bridge":
		return fail(errdefs.ErrInvalid, "driver %q is not supported (only bridge)", spec.Driver)
	}
	sub, err := network.ParseSubnet(spec.Subnet, spec.Gateway)
	if err != nil {
		return nil, fmt.Errorf("network create %s: %w", name, err)
	}

	s := e.netsInit()
	s.op.Lock()
	defer s.op.Unlock()
	id := e.NewID("network")
	s.mu.Lock()
	if _, taken := predefined[name]; taken || s.byName(name) != nil {
		s.mu.Unlock()
		return nil, errdefs.WithHint(fmt.Errorf("network create %s: %w: a network with that name already exists", name, errdefs.ErrConflict),
			fmt.Sprintf("network(%q) with just the name returns the existing one", name))
	}
	sub, err = s.ipam.AddNetwork(name, sub)
	if err != nil {
		s.mu.Unlock()
		return nil, createError(name, err)
	}
	n := &bridgeNet{id: id, name: name, sub: sub, bridge: network.BridgeName(id), internal: spec.Internal, driver: "bridge"}
	s.nets = append(s.nets, n)
	s.mu.Unlock()

	linux, err := e.bringUp(n)
	if err != nil {
		s.mu.Lock()
		s.nets = s.nets[:len(s.nets)-1]
		s.ipam.RemoveNetwork(name)
		s.mu.Unlock()
		return nil, createError(name, err)
	}
	e.emit(event.Event{Op: "network create", Subject: name, Docker: dockerNetworkCreate(spec), Linux: linux}, start)
	return e.Network(name)
}

// createError puts "network create NAME" in front of err, in place of the
// "network NAME" the network package's errors start with.
func createError(name string, err error) error {
	if rest, ok := strings.CutPrefix(err.Error(), "network "+name+": "); ok {
		err = &renamed{msg: rest, err: err}
	}
	return fmt.Errorf("network create %s: %w", name, err)
}

// renamed is an error shown with another message; errors.Is and As still
// see the original, its class and hint.
type renamed struct {
	msg string
	err error
}

func (r *renamed) Error() string { return r.msg }
func (r *renamed) Unwrap() error { return r.err }

func dockerNetworkCreate(spec NetworkSpec) string {
	parts := []string{"docker network create --driver bridge"}
	if spec.Subnet != "" {
		parts = append(parts, "--subnet "+spec.Subnet)
	}
	if spec.Gateway != "" {
		parts = append(parts, "--gateway "+spec.Gateway)
	}
	if spec.Internal {
		parts = append(parts, "--internal")
	}
	return strings.Join(append(parts, spec.Name), " ")
}

func (s *netState) byName(name string) *bridgeNet {
	for _, n := range s.nets {
		if n.name == name {
			return n
		}
	}
	return nil
}

// bringUp makes a network's kernel objects: the firewall's base chains
// (first time in the lab, waited for), the bridge, and the network's rules
// (queued, not waited for). It returns the commands that amounts to. Call
// with s.op held.
func (e *Engine) bringUp(n *bridgeNet) ([]string, error) {
	s := &e.nets
	s.mu.Lock()
	up := n.up
	s.mu.Unlock()
	if up {
		return nil, nil
	}
	linux, err := e.firewallSetup()
	if err != nil {
		return nil, err
	}
	links, err := e.netLinks()
	if err != nil {
		return nil, err
	}
	if !e.lab.Sandboxed() {
		// On a real host, a subnet already routed (docker0's 172.17/16, a
		// VPN) would make the bridge steal or lose traffic.
		if err := checkRoutes(links, n); err != nil {
			return nil, err
		}
	}
	lines, err := links.CreateBridge(n.bridge, n.sub.GatewayCIDR())
	if err != nil {
		if errors.Is(err, errdefs.ErrConflict) && !e.lab.Sandboxed() {
			err = errdefs.WithHint(err, "a --host lab that was killed leaves its bridges behind: `vscript clean` removes them")
		}
		return nil, err
	}
	linux = append(linux, lines...)
	if !e.lab.Sandboxed() {
		alias, err := e.labelBridge(n.bridge)
		if err != nil {
			links.DeleteBridge(n.bridge)
			return nil, err
		}
		linux = append(linux, "ip link set "+n.bridge+" alias '"+alias+"'")
	}
	s.mu.Lock()
	err = e.queueRules(n)
	if err == nil {
		n.up = true
	}
	s.mu.Unlock()
	if err != nil {
		links.DeleteBridge(n.bridge)
		return nil, err
	}
	return append(linux, ruleCommands(network.NetworkRules(n.firewallNet()), false)...), nil
}

func checkRoutes(links *network.Links, n *bridgeNet) error {
	routes, err := links.Routes()
	if err != nil {
		return err
	}
	for _, r := range routes {
		if r.Overlaps(n.sub.Prefix) {
			return errdefs.WithHint(
				fmt.Errorf("network %s: %w: subnet %s overlaps %s, already routed on this host", n.name, errdefs.ErrConflict, n.sub.Prefix, r),
				"give the network another subnet, or run the lab sandboxed (without --host)")
		}
	}
	return nil
}

// netLinks returns the lab host's netlink socket, opening it on first use.
func (e *Engine) netLinks() (*network.Links, error) {
	// The routes to keep clear of include the world's.
	if err := e.lab.Ready(); err != nil {
		return nil, err
	}
	s := &e.nets
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.links != nil {
		return s.links, nil
	}
	l, err := network.NewLinks()
	if err != nil {
		return nil, err
	}
	// Automatic subnets keep clear of what the host routes already.
	if routes, err := l.Routes(); err == nil {
		s.ipam.Avoid(routes...)
	}
	s.links = l
	return l, nil
}

// firewallSetup installs the base chains once per lab and waits for them;
// the first caller gets the commands.
func (e *Engine) firewallSetup() ([]string, error) {
	s := &e.nets
	s.mu.Lock()
	setup, err := e.startFirewall()
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	lines, err := setup.wait()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shown {
		return nil, nil
	}
	s.shown = true
	return lines, nil
}

// startFirewall queues the installation of the base chains, once per lab,
// and returns it. Call with s.mu held.
func (e *Engine) startFirewall() (*pending, error) {
	s := &e.nets
	if s.fw == nil && s.fwErr == nil {
		fw, err := network.NewFirewall()
		if err != nil {
			s.fwErr = err
		} else {
			s.fw = &fwQueue{fw: fw}
		}
	}
	if s.fwErr != nil {
		return nil, s.fwErr
	}
	if s.setup == nil {
		host := !e.lab.Sandboxed()
		s.setup = s.fw.do(func(fw *network.Firewall) ([]string, error) {
			before := ""
			if host {
				before = forwardingState(fw)
			}
			lines, err := fw.Setup()
			if err == nil && before != "" && len(lines) > 0 && strings.Contains(strings.Join(lines, "\n"), "ip_forward=1") {
				s.mu.Lock()
				s.restore = before
				s.mu.Unlock()
			}
			return lines, err
		})
	}
	return s.setup, nil
}

// queueRules queues the installation of n's rules unless it is queued
// already. Call with s.mu held.
func (e *Engine) queueRules(n *bridgeNet) error {
	if n.rules != nil {
		return nil
	}
	if _, err := e.startFirewall(); err != nil {
		return err
	}
	fwn := n.firewallNet()
	n.rules = e.nets.fw.do(func(fw *network.Firewall) ([]string, error) { return fw.AddNetwork(fwn) })
	return nil
}

// forwardingState reads what the firewall's setup may change on a real
// host, so Close can put it back: "ip_forward=0 forward_policy=ACCEPT", or
// "" if forwarding is on already (then setup changes neither).
func forwardingState(fw *network.Firewall) string {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil || strings.TrimSpace(string(b)) != "0" {
		return ""
	}
	policy := "ACCEPT"
	if out, err := fw.Save("filter"); err == nil {
		for line := range strings.Lines(out) {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == ":FORWARD" {
				policy = f[1]
			}
		}
	}
	return "ip_forward=0 forward_policy=" + policy
}

// labelBridge marks a bridge made on a real host as vscript's, with the
// process that owns it and what to restore when the last one goes, so
// `vscript clean` can tell a killed lab's leftovers from a running lab's.
func (e *Engine) labelBridge(name string) (string, error) {
	s := &e.nets
	s.mu.Lock()
	alias := hostLabel + " pid=" + strconv.Itoa(os.Getpid())
	if s.restore != "" {
		alias += " " + s.restore
	}
	s.mu.Unlock()
	link, err := netlink.LinkByName(name)
	if err == nil {
		err = netlink.LinkSetAlias(link, alias)
	}
	if err != nil {
		return "", fmt.Errorf("bridge %s: label: %w", name, err)
	}
	return alias, nil
}

// ruleCommands renders rules as the iptables commands that add (or, with
// del, delete) them, as the firewall runs them.
func ruleCommands(rules []network.Rule, del bool) []string {
	out := make([]string, 0, len(rules))
	for i := range rules {
		r := rules[i]
		if del {
			r = rules[len(rules)-1-i] // deleted last added first
		}
		cmd := "iptables "
		if r.Table != network.TableFilter {
			cmd += "-t " + r.Table + " "
		}
		switch {
		case del:
			cmd += "-D " + r.Chain
		case r.Pos > 0:
			cmd += "-I " + r.Chain + " " + strconv.Itoa(r.Pos)
		default:
			cmd += "-A " + r.Chain
		}
		out = append(out, cmd+" "+strings.Join(r.Spec, " "))
	}
	return out
}

// Network returns a network by name, id or unique id prefix: a user
// network, the default "bridge", or the predefined "host" and "none".
func (e *Engine) Network(ref string) (*NetworkInfo, error) {
	if name, ok := e.predefinedName(ref); ok {
		return &NetworkInfo{ID: e.predefinedID(name), Name: name, Driver: predefined[name]}, nil
	}
	s := e.netsInit()
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.findNet(ref)
	if err != nil {
		return nil, err
	}
	return s.info(n), nil
}

// predefinedID gives host and none stable ids of their own kind, so they
// take nothing from the networks' sequence.
func (e *Engine) predefinedID(name string) string {
	sum := sha256.Sum256([]byte(e.opts.Seed + "\x00network\x00" + name))
	return hex.EncodeToString(sum[:])
}

// predefinedName tells whether ref is host or none, by name or id.
func (e *Engine) predefinedName(ref string) (string, bool) {
	for name := range predefined {
		if ref == name || ref == e.predefinedID(name) {
			return name, true
		}
	}
	return "", false
}

// Networks lists the networks as `docker network ls`: bridge, host, none,
// then user networks in creation order.
func (e *Engine) Networks() ([]*NetworkInfo, error) {
	s := e.netsInit()
	s.mu.Lock()
	list := []*NetworkInfo{s.info(s.nets[0])}
	users := s.nets[1:]
	var infos []*NetworkInfo
	for _, n := range users {
		infos = append(infos, s.info(n))
	}
	s.mu.Unlock()
	for _, name := range []string{"host", "none"} {
		list = append(list, &NetworkInfo{ID: e.predefinedID(name), Name: name, Driver: predefined[name]})
	}
	return append(list, infos...), nil
}

// info describes n. Call with s.mu held.
func (s *netState) info(n *bridgeNet) *NetworkInfo {
	info := &NetworkInfo{ID: n.id, Name: n.name, Driver: n.driver, Subnet: n.sub.Prefix.String(),
		Gateway: n.sub.Gateway.String(), Bridge: n.bridge, Internal: n.internal, DNS: !n.dflt}
	for _, ep := range n.eps {
		m := NetworkMember{ID: ep.ctr.id, Name: ep.ctr.name, Aliases: append([]string(nil), ep.aliases...)}
		if ep.ip.IsValid() {
			m.IP, m.MAC = ep.ip.String(), network.MACFromIP(ep.ip).String()
		}
		info.Containers = append(info.Containers, m)
	}
	return info
}

// NetworkRemove deletes a user network, as `docker network rm`. A network
// with running containers is refused; stopped containers keep their
// reference and fail to start, as Docker's do.
func (e *Engine) NetworkRemove(ctx context.Context, ref string) error {
	start := time.Now()
	if name, ok := e.predefinedName(ref); ok || ref == network.DefaultNetworkName {
		if !ok {
			name = ref
		}
		return fmt.Errorf("network rm %s: %w: %s is a pre-defined network and cannot be removed", name, errdefs.ErrInvalid, name)
	}
	s := e.netsInit()
	s.op.Lock()
	defer s.op.Unlock()
	s.mu.Lock()
	n, err := s.findNet(ref)
	if err == nil && n.dflt {
		err = fmt.Errorf("network rm %s: %w: bridge is a pre-defined network and cannot be removed", n.name, errdefs.ErrInvalid)
	}
	if err != nil {
		s.mu.Unlock()
		return err
	}
	var active []string
	for _, ep := range n.eps {
		if ep.ip.IsValid() {
			active = append(active, ep.ctr.name)
		}
	}
	if len(active) > 0 {
		s.mu.Unlock()
		what := "container " + active[0] + " is"
		if len(active) > 1 {
			what = "containers " + strings.Join(active, ", ") + " are"
		}
		return errdefs.WithHint(
			fmt.Errorf("network rm %s: %w: %s attached and running", n.name, errdefs.ErrConflict, what),
			"stop or remove them, or .disconnect() them, first")
	}
	n.removed = true
	for i, x := range s.nets {
		if x == n {
			s.nets = append(s.nets[:i], s.nets[i+1:]...)
			break
		}
	}
	s.ipam.RemoveNetwork(n.name)
	rules := n.rules
	s.mu.Unlock()

	var linux []string
	if rules != nil {
		fwn := n.firewallNet()
		// Queued behind the network's own install and its ports' removal;
		// if the install failed there is nothing to remove.
		s.fw.do(func(fw *network.Firewall) ([]string, error) {
			if rules.err != nil {
				return nil, nil
			}
			return fw.RemoveNetwork(fwn.Name)
		})
		linux = ruleCommands(network.NetworkRules(fwn), true)
	}
	if n.up {
		// The bridge goes with the link deletions in the background (see
		// netDown), its subnet free at once.
		lines, err := s.links.RetireBridge(n.bridge)
		if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return fmt.Errorf("network rm %s: %w", n.name, err)
		}
		s.mu.Lock()
		e.deleteLater([]string{n.bridge})
		s.mu.Unlock()
		linux = append(linux, append(lines, "ip link del "+n.bridge)...)
	}
	e.emit(event.Event{Op: "network rm", Subject: n.name, Docker: "docker network rm " + n.name, Linux: linux}, start)
	return nil
}

// NetworkConnect attaches a container to a network, as `docker network
// connect`: at once if it runs, at its next start otherwise.
func (e *Engine) NetworkConnect(ctx context.Context, netRef, ctrRef string, spec EndpointSpec) error {
	start := time.Now()
	if name, ok := e.predefinedName(netRef); ok {
		return fmt.Errorf("network connect %s: %w: a container joins %s only at create (run(network=%q))", name, errdefs.ErrInvalid, name, name)
	}
	s := e.netsInit()
	s.op.Lock()
	defer s.op.Unlock()
	e.mu.Lock()
	c, err := e.lookup(ctrRef)
	var pid int
	if err == nil && c.rt != nil {
		pid = c.rt.Pid()
	}
	e.mu.Unlock()
	if err != nil {
		return err
	}
	s.mu.Lock()
	n, err := s.findNet(netRef)
	if err == nil && !c.net.bridged() {
		err = fmt.Errorf("network connect %s %s: %w: the container's network mode is %s; only bridge-networked containers can join more networks",
			n.name, c.name, errdefs.ErrInvalid, c.net.mode)
	}
	if err == nil {
		for _, ep := range c.net.eps {
			if ep.net == n {
				err = fmt.Errorf("network connect %s %s: %w: the container is already attached", n.name, c.name, errdefs.ErrConflict)
			}
		}
	}
	var ep *endpoint
	if err == nil {
		ep, err = newEndpoint(n, c, spec)
	}
	if err != nil {
		s.mu.Unlock()
		return err
	}
	n.eps = append(n.eps, ep)
	c.net.eps = append(c.net.eps, ep)
	s.mu.Unlock()

	var linux []string
	if pid != 0 {
		linux, err = e.attach(c, ep, pid)
		if err == nil {
			err = e.writeHosts(c)
		}
		if err != nil {
			if veth := e.detach(c, ep); veth != "" {
				s.links.DeleteLinks(veth)
			}
			s.mu.Lock()
			n.eps = removeEndpoint(n.eps, ep)
			c.net.eps = removeEndpoint(c.net.eps, ep)
			s.mu.Unlock()
			return fmt.Errorf("network connect %s %s: %w", n.name, c.name, err)
		}
	}
	docker := "docker network connect"
	for _, a := range spec.Aliases {
		docker += " --alias " + a
	}
	if spec.IP != "" {
		docker += " --ip " + spec.IP
	}
	e.emit(event.Event{Op: "network connect", Subject: n.name, Docker: docker + " " + n.name + " " + c.name, Linux: linux}, start)
	return nil
}

// NetworkDisconnect detaches a container from a network, as `docker
// network disconnect`.
func (e *Engine) NetworkDisconnect(ctx context.Context, netRef, ctrRef string) error {
	start := time.Now()
	s := e.netsInit()
	s.op.Lock()
	defer s.op.Unlock()
	e.mu.Lock()
	c, err := e.lookup(ctrRef)
	e.mu.Unlock()
	if err != nil {
		return err
	}
	s.mu.Lock()
	n, err := s.findNet(netRef)
	var ep *endpoint
	for _, x := range c.net.eps {
		// A removed network is still c's until disconnected.
		if x.net == n || (x.net.removed && (x.net.name == netRef || x.net.id == netRef)) {
			ep, n, err = x, x.net, nil
		}
	}
	if err != nil {
		s.mu.Unlock()
		return err
	}
	if ep == nil {
		s.mu.Unlock()
		return fmt.Errorf("network disconnect %s %s: %w: the container is not attached to it", n.name, c.name, errdefs.ErrNotFound)
	}
	wasDefault := ep.gw
	s.mu.Unlock()

	var linux []string
	if veth := e.detach(c, ep); veth != "" {
		linux, _ = s.links.DeleteLinks(veth)
	}
	s.mu.Lock()
	ep.net.eps = removeEndpoint(ep.net.eps, ep)
	c.net.eps = removeEndpoint(c.net.eps, ep)
	s.mu.Unlock()
	if wasDefault {
		linux = append(linux, e.rerouteDefault(c)...)
	}
	if err := e.writeHosts(c); err != nil {
		return fmt.Errorf("network disconnect %s %s: %w", ep.net.name, c.name, err)
	}
	e.emit(event.Event{Op: "network disconnect", Subject: ep.net.name,
		Docker: "docker network disconnect " + ep.net.name + " " + c.name, Linux: linux}, start)
	return nil
}

// newEndpoint checks what run() or connect asked of a network. Call with
// s.mu held.
func newEndpoint(n *bridgeNet, c *container, spec EndpointSpec) (*endpoint, error) {
	ep := &endpoint{net: n, ctr: c}
	if n.dflt && len(spec.Aliases) > 0 {
		return nil, fmt.Errorf("network %s: %w: aliases work only on user-defined networks (the default bridge has no DNS)", n.name, errdefs.ErrInvalid)
	}
	for _, a := range spec.Aliases {
		if !validName.MatchString(a) && !validNetworkName.MatchString(a) {
			return nil, fmt.Errorf("network %s: %w: invalid alias %q", n.name, errdefs.ErrInvalid, a)
		}
		ep.aliases = append(ep.aliases, a)
	}
	if spec.IP != "" {
		if n.dflt {
			return nil, fmt.Errorf("network %s: %w: a fixed ip= works only on user-defined networks, as in Docker", n.name, errdefs.ErrInvalid)
		}
		ip, err := netip.ParseAddr(spec.IP)
		if err != nil || !ip.Is4() {
			return nil, fmt.Errorf("network %s: %w: ip %q is not an IPv4 address", n.name, errdefs.ErrInvalid, spec.IP)
		}
		p := n.sub.Prefix
		if !p.Contains(ip) || ip == p.Addr() || ip == n.sub.Gateway || !p.Contains(ip.Next()) {
			return nil, fmt.Errorf("network %s: %w: ip %s is not a free host address of %s (gateway %s)",
				n.name, errdefs.ErrInvalid, ip, p, n.sub.Gateway)
		}
		ep.want = ip
	}
	return ep, nil
}

func removeEndpoint(eps []*endpoint, ep *endpoint) []*endpoint {
	for i, x := range eps {
		if x == ep {
			return append(eps[:i:i], eps[i+1:]...)
		}
	}
	return eps
}

// netClose ends the lab's networking. Sandboxed, the namespace takes it all
// away; on a real host every bridge, rule and sysctl change is undone.
func (e *Engine) netClose() {
	s := &e.nets
	s.mu.Lock()
	ready := s.ready
	s.mu.Unlock()
	if !ready || e.lab.Sandboxed() {
		return
	}
	s.op.Lock()
	defer s.op.Unlock()
	s.mu.Lock()
	var ctrs []*container
	for _, n := range s.nets {
		for _, ep := range n.eps {
			ctrs = append(ctrs, ep.ctr)
		}
	}
	s.mu.Unlock()
	for _, c := range ctrs {
		e.netDown(c, true)
	}
	e.settleLinks()
	s.mu.Lock()
	nets := append([]*bridgeNet(nil), s.nets...)
	fw, links, setup, restore := s.fw, s.links, s.setup, s.restore
	s.mu.Unlock()
	if fw != nil {
		fw.drain()
	}
	for _, n := range nets {
		if fw != nil && n.rules != nil && n.rules.err == nil {
			fw.fw.RemoveNetwork(n.name)
		}
		if n.up {
			links.DeleteBridge(n.bridge)
		}
	}
	if fw != nil && setup != nil {
		cleanHostNetwork(restore)
	}
	if links != nil {
		links.Close()
	}
}

// fwQueue runs firewall changes one at a time, in the order asked, on a
// goroutine that exists only while there is work.
type fwQueue struct {
	fw *network.Firewall

	mu      sync.Mutex
	jobs    []fwJob
	running bool
}

type fwJob struct {
	fn func(*network.Firewall) ([]string, error)
	p  *pending
}

// pending is the outcome of a queued change.
type pending struct {
	done  chan struct{}
	lines []string
	err   error
}

func (p *pending) wait() ([]string, error) {
	<-p.done
	return p.lines, p.err
}

func (q *fwQueue) do(fn func(*network.Firewall) ([]string, error)) *pending {
	p := &pending{done: make(chan struct{})}
	q.mu.Lock()
	q.jobs = append(q.jobs, fwJob{fn, p})
	if !q.running {
		q.running = true
		go q.run()
	}
	q.mu.Unlock()
	return p
}

func (q *fwQueue) run() {
	for {
		q.mu.Lock()
		if len(q.jobs) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		j := q.jobs[0]
		q.jobs = q.jobs[1:]
		q.mu.Unlock()
		j.p.lines, j.p.err = j.fn(q.fw)
		close(j.p.done)
	}
}

// drain waits for every change queued so far.
func (q *fwQueue) drain() {
	q.do(func(*network.Firewall) ([]string, error) { return nil, nil }).wait()
}

// netDrain waits for queued firewall changes, so iptables listings show them.
func (e *Engine) netDrain() {
	e.nets.mu.Lock()
	fw := e.nets.fw
	e.nets.mu.Unlock()
	if fw != nil {
		fw.drain()
	}
}
