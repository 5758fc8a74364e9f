package network

import (
	"fmt"
	"net"
	"net/netip"
	"sync"

	"vscript/engine/errdefs"
)

// The default network, as Docker's `bridge`.
const (
	DefaultNetworkName = "bridge"
	DefaultBridgeName  = "vscript0"
)

var (
	DefaultBridgeSubnet  = netip.MustParsePrefix("172.17.0.0/16")
	DefaultBridgeGateway = netip.MustParseAddr("172.17.0.1")
)

// defaultPools are Docker 20.10's predefined local pools (172.17-31 as /16s,
// then 192.168.0.0/16 cut into /20s) without 172.17, which belongs to the
// default bridge even before it exists.
var defaultPools = func() []netip.Prefix {
	var pools []netip.Prefix
	for b := 18; b <= 31; b++ {
		pools = append(pools, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(b), 0, 0}), 16))
	}
	for c := 0; c < 256; c += 16 {
		pools = append(pools, netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(c), 0}), 20))
	}
	return pools
}()

// DefaultPools returns the subnets given to user networks without one, in
// the order they are tried.
func DefaultPools() []netip.Prefix { return append([]netip.Prefix(nil), defaultPools...) }

// Subnet is a network's address range and its gateway (the bridge's address).
type Subnet struct {
	Prefix  netip.Prefix
	Gateway netip.Addr
}

// GatewayCIDR is the gateway with the subnet's prefix length, as the bridge
// carries it: 172.18.0.1/16.
func (s Subnet) GatewayCIDR() netip.Prefix { return netip.PrefixFrom(s.Gateway, s.Prefix.Bits()) }

// ParseSubnet checks user-given subnet and gateway strings. Either may be
// empty: no subnet means "pick one from the pools" (then a gateway is an
// error, as with `docker network create`), no gateway means the first address.
func ParseSubnet(subnet, gateway string) (Subnet, error) {
	var s Subnet
	if subnet == "" {
		if gateway != "" {
			return Subnet{}, errorf(errdefs.ErrInvalid, "gateway %s: a gateway needs a subnet", gateway)
		}
		return s, nil
	}
	p, err := netip.ParsePrefix(subnet)
	if err != nil {
		return Subnet{}, errorf(errdefs.ErrInvalid, "subnet %s: not a CIDR such as 172.20.0.0/16", subnet)
	}
	s.Prefix = p
	if gateway != "" {
		gw, err := netip.ParseAddr(gateway)
		if err != nil {
			return Subnet{}, errorf(errdefs.ErrInvalid, "gateway %s: not an IP address", gateway)
		}
		s.Gateway = gw
	}
	return s.complete()
}

// complete validates s and fills in the default gateway.
func (s Subnet) complete() (Subnet, error) {
	p := s.Prefix
	if !p.Addr().Is4() {
		return Subnet{}, errorf(errdefs.ErrInvalid, "subnet %s: only IPv4 subnets are supported", p)
	}
	if p.Masked() != p {
		return Subnet{}, errorf(errdefs.ErrInvalid, "subnet %s: not a network address (did you mean %s?)", p, p.Masked())
	}
	if p.Bits() > 30 {
		return Subnet{}, errorf(errdefs.ErrInvalid, "subnet %s: too small, a network needs at least a /30", p)
	}
	if !s.Gateway.IsValid() {
		s.Gateway = p.Addr().Next()
		return s, nil
	}
	gw := s.Gateway
	switch {
	case !p.Contains(gw):
		return Subnet{}, errorf(errdefs.ErrInvalid, "gateway %s: not in subnet %s", gw, p)
	case gw == p.Addr():
		return Subnet{}, errorf(errdefs.ErrInvalid, "gateway %s: is the network address of %s", gw, p)
	case gw == broadcast(p):
		return Subnet{}, errorf(errdefs.ErrInvalid, "gateway %s: is the broadcast address of %s", gw, p)
	}
	return s, nil
}

// broadcast is the last address of p (p must be IPv4 and masked).
func broadcast(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	hostBits := 32 - p.Bits()
	for i := 3; i >= 0 && hostBits > 0; i-- {
		n := min(hostBits, 8)
		a[i] |= byte(1<<n - 1)
		hostBits -= n
	}
	return netip.AddrFrom4(a)
}

// MACFromIP derives a container's MAC from its IPv4 address as Docker does:
// 02:42 (a locally administered prefix) followed by the four address bytes.
func MACFromIP(ip netip.Addr) net.HardwareAddr {
	a := ip.As4()
	return net.HardwareAddr{0x02, 0x42, a[0], a[1], a[2], a[3]}
}

// IPAM hands out subnets to networks and addresses inside them. It is safe
// for concurrent use. Allocation is deterministic: the first free pool, the
// lowest free address.
type IPAM struct {
	mu    sync.Mutex
	nets  map[string]*pool
	order []string // network names in creation order, for stable overlap errors
	avoid []netip.Prefix
}

type pool struct {
	Subnet
	used map[netip.Addr]string // address -> owner
}

// NewIPAM returns an empty IPAM.
func NewIPAM() *IPAM { return &IPAM{nets: map[string]*pool{}} }

// Avoid keeps automatic subnet choices clear of the given ranges, as Docker
// skips pools that overlap the host's routes. Explicit subnets are not
// checked against them.
func (m *IPAM) Avoid(prefixes ...netip.Prefix) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.avoid = append(m.avoid, prefixes...)
}

// AddNetwork gives the network name a subnet. A zero s.Prefix picks the first
// default pool that overlaps no other network; a zero s.Gateway is the first
// address. The gateway address is reserved.
func (m *IPAM) AddNetwork(name string, s Subnet) (Subnet, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.nets[name]; ok {
		return Subnet{}, errorf(errdefs.ErrConflict, "network %s: already has a subnet", name)
	}
	if !s.Prefix.IsValid() {
		if s.Gateway.IsValid() {
			return Subnet{}, errorf(errdefs.ErrInvalid, "network %s: gateway %s needs a subnet", name, s.Gateway)
		}
		p, ok := m.freePool()
		if !ok {
			return Subnet{}, errorf(errdefs.ErrConflict, "network %s: no free subnet left in the default address pools", name)
		}
		s.Prefix = p
	}
	s, err := s.complete()
	if err != nil {
		return Subnet{}, fmt.Errorf("network %s: %w", name, err)
	}
	for _, other := range m.order {
		if o := m.nets[other]; o.Prefix.Overlaps(s.Prefix) {
			return Subnet{}, errorf(errdefs.ErrConflict, "network %s: subnet %s overlaps with network %s (%s)", name, s.Prefix, other, o.Prefix)
		}
	}
	m.nets[name] = &pool{Subnet: s, used: map[netip.Addr]string{s.Gateway: "the gateway"}}
	m.order = append(m.order, name)
	return s, nil
}

func (m *IPAM) freePool() (netip.Prefix, bool) {
next:
	for _, p := range defaultPools {
		for _, n := range m.nets {
			if n.Prefix.Overlaps(p) {
				continue next
			}
		}
		for _, a := range m.avoid {
			if a.Overlaps(p) {
				continue next
			}
		}
		return p, true
	}
	return netip.Prefix{}, false
}

// RemoveNetwork forgets the network and every address in it.
func (m *IPAM) RemoveNetwork(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.nets[name]; !ok {
		return errorf(errdefs.ErrNotFound, "network %s: no such network", name)
	}
	delete(m.nets, name)
	for i, n := range m.order {
		if n == name {
			m.order = append(m.order[:i], m.order[i+1:]...)
			break
		}
	}
	return nil
}

// Subnet returns the network's subnet.
func (m *IPAM) Subnet(name string) (Subnet, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.nets[name]
	if !ok {
		return Subnet{}, false
	}
	return p.Subnet, true
}

// Allocate reserves an address in the network for owner (a container name,
// used in conflict messages). A zero want takes the lowest free address;
// otherwise want must be a free host address of the subnet (`--ip`).
func (m *IPAM) Allocate(name, owner string, want netip.Addr) (netip.Addr, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.nets[name]
	if !ok {
		return netip.Addr{}, errorf(errdefs.ErrNotFound, "network %s: no such network", name)
	}
	last := broadcast(p.Prefix)
	if want.IsValid() {
		switch {
		case !p.Prefix.Contains(want):
			return netip.Addr{}, errorf(errdefs.ErrInvalid, "network %s: address %s is not in subnet %s", name, want, p.Prefix)
		case want == p.Prefix.Addr() || want == last:
			return netip.Addr{}, errorf(errdefs.ErrInvalid, "network %s: address %s is not a host address of %s", name, want, p.Prefix)
		}
		if by, taken := p.used[want]; taken {
			return netip.Addr{}, errorf(errdefs.ErrConflict, "network %s: address %s is already in use by %s", name, want, by)
		}
		p.used[want] = owner
		return want, nil
	}
	// The scan stops at the first free address, so it costs at most one step
	// per address in use.
	for a := p.Prefix.Addr().Next(); a != last; a = a.Next() {
		if _, taken := p.used[a]; !taken {
			p.used[a] = owner
			return a, nil
		}
	}
	return netip.Addr{}, errorf(errdefs.ErrConflict, "network %s: no free address in %s", name, p.Prefix)
}

// Release returns an address to the network's pool.
func (m *IPAM) Release(name string, addr netip.Addr) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.nets[name]
	if !ok {
		return errorf(errdefs.ErrNotFound, "network %s: no such network", name)
	}
	if _, taken := p.used[addr]; !taken || addr == p.Gateway {
		return errorf(errdefs.ErrNotFound, "network %s: address %s is not allocated", name, addr)
	}
	delete(p.used, addr)
	return nil
}
