package network

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	"vscript/engine/errdefs"
)

// The host ports `-p 80` picks from: Linux's default ephemeral range, which
// Docker uses too.
const (
	EphemeralPortStart = 32768
	EphemeralPortEnd   = 60999
)

// PortBinding is one published port, `docker run -p` after parsing.
type PortBinding struct {
	// HostIP is the address the port is published on; 0.0.0.0 means all.
	HostIP netip.Addr
	// HostPort is the port on the lab host; 0 means any free one.
	HostPort uint16
	// HostPortEnd, when set, makes HostPort..HostPortEnd a range to take one
	// free port from (`-p 8000-8010:80`).
	HostPortEnd   uint16
	ContainerPort uint16
	// Proto is "tcp" or "udp".
	Proto string
}

// String is the binding in `-p` syntax: 0.0.0.0:8000:80/tcp.
func (b PortBinding) String() string {
	host := ""
	if b.HostPort != 0 {
		host = strconv.Itoa(int(b.HostPort))
		if b.HostPortEnd != 0 {
			host += "-" + strconv.Itoa(int(b.HostPortEnd))
		}
	}
	return b.HostIP.String() + ":" + host + ":" + strconv.Itoa(int(b.ContainerPort)) + "/" + b.Proto
}

// hostString names the host side: 0.0.0.0:8000/tcp.
func (b PortBinding) hostString() string {
	port := "any port"
	if b.HostPort != 0 {
		port = strconv.Itoa(int(b.HostPort))
		if b.HostPortEnd != 0 {
			port += "-" + strconv.Itoa(int(b.HostPortEnd))
		}
	}
	return b.HostIP.String() + ":" + port + "/" + b.Proto
}

// ParsePortSpec parses one `docker run -p` value: "80", "8000:80",
// "127.0.0.1:8081:80/tcp", "127.0.0.1::80", "53:53/udp", and ranges such as
// "8000-8001:80-81" (one binding per port) or "8000-8010:80" (any free port
// of the host range). The host IP is always set; 0.0.0.0 means every address.
func ParsePortSpec(spec string) ([]PortBinding, error) {
	bad := func(format string, args ...any) error {
		return errorf(errdefs.ErrInvalid, "port %s: "+format, append([]any{spec}, args...)...)
	}
	rest, proto, hasProto := strings.Cut(spec, "/")
	if !hasProto || proto == "" {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" {
		return nil, bad("unsupported protocol %q (use tcp or udp)", proto)
	}
	if strings.Contains(rest, "[") {
		return nil, bad("IPv6 host addresses are not supported")
	}
	var ipPart, hostPart, ctrPart string
	switch parts := strings.Split(rest, ":"); len(parts) {
	case 1:
		ctrPart = parts[0]
	case 2:
		hostPart, ctrPart = parts[0], parts[1]
	case 3:
		ipPart, hostPart, ctrPart = parts[0], parts[1], parts[2]
	default:
		return nil, bad("too many colons (want [IP:][HOSTPORT:]PORT[/PROTO])")
	}

	hostIP := netip.IPv4Unspecified()
	if ipPart != "" {
		ip, err := netip.ParseAddr(ipPart)
		if err != nil || !ip.Is4() {
			return nil, bad("invalid host IPv4 address %q", ipPart)
		}
		hostIP = ip
	}
	if ctrPart == "" {
		return nil, bad("no container port")
	}
	cLo, cHi, err := parsePortRange(ctrPart)
	if err != nil {
		return nil, bad("container port %w", err)
	}
	if cLo == 0 {
		return nil, bad("container port 0 is not a port")
	}
	var hLo, hHi uint16
	if hostPart != "" {
		if hLo, hHi, err = parsePortRange(hostPart); err != nil {
			return nil, bad("host port %w", err)
		}
	}

	one := PortBinding{HostIP: hostIP, ContainerPort: cLo, Proto: proto}
	switch {
	case cLo == cHi && hLo != hHi:
		one.HostPort, one.HostPortEnd = hLo, hHi
		return []PortBinding{one}, nil
	case cLo == cHi:
		one.HostPort = hLo
		return []PortBinding{one}, nil
	case hostPart != "" && hHi-hLo != cHi-cLo:
		return nil, bad("host range %s and container range %s differ in length", hostPart, ctrPart)
	}
	var out []PortBinding
	for p := int(cLo); p <= int(cHi); p++ {
		b := one
		b.ContainerPort = uint16(p)
		if hostPart != "" {
			b.HostPort = hLo + uint16(p-int(cLo))
		}
		out = append(out, b)
	}
	return out, nil
}

// parsePortRange reads "80" or "80-81". "0" is allowed for a host port,
// where it means any port; the caller rejects it for container ports.
func parsePortRange(s string) (lo, hi uint16, err error) {
	loS, hiS, isRange := strings.Cut(s, "-")
	if lo, err = parsePort(loS); err != nil {
		return 0, 0, err
	}
	hi = lo
	if isRange {
		if hi, err = parsePort(hiS); err != nil {
			return 0, 0, err
		}
		if hi < lo || lo == 0 {
			return 0, 0, errorf(errdefs.ErrInvalid, "range %q is empty or starts at 0", s)
		}
	}
	return lo, hi, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n > 65535 {
		return 0, errorf(errdefs.ErrInvalid, "%q is not a number from 1 to 65535", s)
	}
	return uint16(n), nil
}

// PortAllocator hands out host ports on the lab host and remembers who holds
// each, so a second `-p 8000:80` names the container in the way. A port held
// on 0.0.0.0 blocks that port on every address, as a bind would.
type PortAllocator struct {
	mu   sync.Mutex
	next map[string]int                      // proto -> where the next free-port search starts
	held map[protoPort]map[netip.Addr]string // -> host IP -> owner
}

type protoPort struct {
	proto string
	port  uint16
}

// NewPortAllocator returns an allocator with nothing held.
func NewPortAllocator() *PortAllocator {
	return &PortAllocator{next: map[string]int{}, held: map[protoPort]map[netip.Addr]string{}}
}

// Holder reports who holds port for proto on ip, counting 0.0.0.0 as
// overlapping every address.
func (a *PortAllocator) Holder(proto string, ip netip.Addr, port uint16) (owner string, held bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.holder(proto, ip, port)
}

func (a *PortAllocator) holder(proto string, ip netip.Addr, port uint16) (string, bool) {
	byIP := a.held[protoPort{proto, port}]
	if len(byIP) == 0 {
		return "", false
	}
	if ip.IsUnspecified() {
		// Report the lowest address, so the message is the same every run.
		ips := make([]netip.Addr, 0, len(byIP))
		for held := range byIP {
			ips = append(ips, held)
		}
		slices.SortFunc(ips, netip.Addr.Compare)
		return byIP[ips[0]], true
	}
	if owner, ok := byIP[ip]; ok {
		return owner, true
	}
	owner, ok := byIP[netip.IPv4Unspecified()]
	return owner, ok
}

// Allocate claims the host side of b for owner and returns b with HostPort
// fixed and HostPortEnd cleared. Free ports for `-p 80` are taken in order
// from 32768, continuing after the last one given, as Docker's allocator does.
func (a *PortAllocator) Allocate(owner string, b PortBinding) (PortBinding, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case b.HostPort != 0 && b.HostPortEnd == 0:
		if by, taken := a.holder(b.Proto, b.HostIP, b.HostPort); taken {
			return PortBinding{}, errorf(errdefs.ErrConflict, "port %s: already allocated to %s", b.hostString(), by)
		}
		a.claim(owner, b)
		return b, nil
	case b.HostPort != 0:
		for p := int(b.HostPort); p <= int(b.HostPortEnd); p++ {
			if _, taken := a.holder(b.Proto, b.HostIP, uint16(p)); !taken {
				b.HostPort, b.HostPortEnd = uint16(p), 0
				a.claim(owner, b)
				return b, nil
			}
		}
		return PortBinding{}, errorf(errdefs.ErrConflict, "port %s: every port of the range is allocated", b.hostString())
	}
	start := a.next[b.Proto]
	if start == 0 {
		start = EphemeralPortStart
	}
	const span = EphemeralPortEnd - EphemeralPortStart + 1
	for i := 0; i < span; i++ {
		p := EphemeralPortStart + (start-EphemeralPortStart+i)%span
		if _, taken := a.holder(b.Proto, b.HostIP, uint16(p)); !taken {
			b.HostPort = uint16(p)
			a.claim(owner, b)
			a.next[b.Proto] = p + 1
			if p == EphemeralPortEnd {
				a.next[b.Proto] = EphemeralPortStart
			}
			return b, nil
		}
	}
	return PortBinding{}, errorf(errdefs.ErrConflict, "port %s: no free host port in %d-%d", b.hostString(), EphemeralPortStart, EphemeralPortEnd)
}

func (a *PortAllocator) claim(owner string, b PortBinding) {
	k := protoPort{b.Proto, b.HostPort}
	if a.held[k] == nil {
		a.held[k] = map[netip.Addr]string{}
	}
	a.held[k][b.HostIP] = owner
}

// Release frees the host port of an allocated binding. Releasing a port that
// is not held is a no-op, so cleanup paths can call it unconditionally.
func (a *PortAllocator) Release(b PortBinding) {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := protoPort{b.Proto, b.HostPort}
	delete(a.held[k], b.HostIP)
	if len(a.held[k]) == 0 {
		delete(a.held, k)
	}
}
