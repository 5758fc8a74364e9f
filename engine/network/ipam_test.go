package network

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"vscript/engine/errdefs"
)

func TestDefaultPools(t *testing.T) {
	pools := DefaultPools()
	want := map[int]string{
		0:  "172.18.0.0/16",
		1:  "172.19.0.0/16",
		13: "172.31.0.0/16",
		14: "192.168.0.0/20",
		15: "192.168.16.0/20",
		29: "192.168.240.0/20",
	}
	if len(pools) != 30 {
		t.Fatalf("len(pools) = %d, want 30", len(pools))
	}
	for i, w := range want {
		if pools[i].String() != w {
			t.Errorf("pools[%d] = %s, want %s", i, pools[i], w)
		}
	}
}

func TestParseSubnet(t *testing.T) {
	tests := []struct {
		subnet, gateway string
		want            Subnet
		err             string // substring; "" means success
	}{
		{"", "", Subnet{}, ""},
		{"172.86.86.0/24", "172.86.86.1", subnet("172.86.86.0/24", "172.86.86.1"), ""},
		{"172.86.86.0/24", "", subnet("172.86.86.0/24", "172.86.86.1"), ""},
		{"10.0.0.0/8", "10.200.0.1", subnet("10.0.0.0/8", "10.200.0.1"), ""},
		{"192.168.5.0/30", "192.168.5.2", subnet("192.168.5.0/30", "192.168.5.2"), ""},
		{"", "10.0.0.1", Subnet{}, "gateway 10.0.0.1: a gateway needs a subnet"},
		{"10.0.0.0/33", "", Subnet{}, "subnet 10.0.0.0/33: not a CIDR"},
		{"10.0.0.0", "", Subnet{}, "subnet 10.0.0.0: not a CIDR"},
		{"fd00::/64", "", Subnet{}, "only IPv4"},
		{"10.0.0.5/24", "", Subnet{}, "not a network address (did you mean 10.0.0.0/24?)"},
		{"10.0.0.0/31", "", Subnet{}, "too small"},
		{"10.0.0.0/24", "10.0.1.1", Subnet{}, "gateway 10.0.1.1: not in subnet 10.0.0.0/24"},
		{"10.0.0.0/24", "10.0.0.0", Subnet{}, "network address"},
		{"10.0.0.0/24", "10.0.0.255", Subnet{}, "broadcast address"},
		{"10.0.0.0/24", "x", Subnet{}, "gateway x: not an IP address"},
	}
	for _, tt := range tests {
		got, err := ParseSubnet(tt.subnet, tt.gateway)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("ParseSubnet(%q, %q) error = %v, want ErrInvalid containing %q", tt.subnet, tt.gateway, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSubnet(%q, %q) = %v, %v; want %v", tt.subnet, tt.gateway, got, err, tt.want)
		}
	}
}

func subnet(p, gw string) Subnet {
	return Subnet{Prefix: netip.MustParsePrefix(p), Gateway: netip.MustParseAddr(gw)}
}

func TestIPAMSubnets(t *testing.T) {
	m := NewIPAM()
	steps := []struct {
		name   string
		subnet Subnet
		want   string // prefix and gateway, or the error
	}{
		{"bridge", Subnet{Prefix: DefaultBridgeSubnet, Gateway: DefaultBridgeGateway}, "172.17.0.0/16 172.17.0.1"},
		{"a", Subnet{}, "172.18.0.0/16 172.18.0.1"},
		{"b", Subnet{}, "172.19.0.0/16 172.19.0.1"},
		{"my_net", subnet("172.86.86.0/24", "172.86.86.1"), "172.86.86.0/24 172.86.86.1"},
		{"clash", Subnet{Prefix: netip.MustParsePrefix("172.19.128.0/17")}, "error: network clash: subnet 172.19.128.0/17 overlaps with network b (172.19.0.0/16)"},
		{"a", Subnet{}, "error: network a: already has a subnet"},
		{"gwonly", Subnet{Gateway: netip.MustParseAddr("10.0.0.1")}, "error: network gwonly: gateway 10.0.0.1 needs a subnet"},
		{"bad", Subnet{Prefix: netip.MustParsePrefix("10.1.2.3/16")}, "error: network bad: subnet 10.1.2.3/16: not a network address"},
		// 172.20 is taken explicitly, so the next automatic pick skips it.
		{"explicit20", Subnet{Prefix: netip.MustParsePrefix("172.20.0.0/16")}, "172.20.0.0/16 172.20.0.1"},
		{"c", Subnet{}, "172.21.0.0/16 172.21.0.1"},
	}
	for _, s := range steps {
		got, err := m.AddNetwork(s.name, s.subnet)
		text := got.Prefix.String() + " " + got.Gateway.String()
		if err != nil {
			text = "error: " + err.Error()
		}
		if !strings.HasPrefix(text, s.want) {
			t.Errorf("AddNetwork(%s, %v) = %q, want %q", s.name, s.subnet, text, s.want)
		}
	}
	_, err := m.AddNetwork("clash", Subnet{Prefix: netip.MustParsePrefix("172.19.0.0/24")})
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("overlap error %v is not ErrConflict", err)
	}

	// Removing b frees 172.19 for the next automatic network.
	if err := m.RemoveNetwork("b"); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.AddNetwork("d", Subnet{}); got.Prefix.String() != "172.19.0.0/16" {
		t.Errorf("after removing b, d got %s, want 172.19.0.0/16", got.Prefix)
	}
	if err := m.RemoveNetwork("b"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("second RemoveNetwork(b) = %v, want ErrNotFound", err)
	}
}

func TestIPAMAvoid(t *testing.T) {
	m := NewIPAM()
	m.Avoid(netip.MustParsePrefix("172.18.5.0/24"), netip.MustParsePrefix("172.19.0.0/16"))
	got, err := m.AddNetwork("a", Subnet{})
	if err != nil || got.Prefix.String() != "172.20.0.0/16" {
		t.Errorf("AddNetwork = %v, %v; want 172.20.0.0/16", got, err)
	}
	// Avoided ranges only steer automatic choices.
	if _, err := m.AddNetwork("b", Subnet{Prefix: netip.MustParsePrefix("172.19.0.0/16")}); err != nil {
		t.Errorf("explicit subnet in an avoided range: %v", err)
	}
}

func TestIPAMPoolsExhausted(t *testing.T) {
	m := NewIPAM()
	for i := range DefaultPools() {
		if _, err := m.AddNetwork("n"+string(rune('a'+i)), Subnet{}); err != nil {
			t.Fatalf("network %d: %v", i, err)
		}
	}
	_, err := m.AddNetwork("one-too-many", Subnet{})
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "no free subnet") {
		t.Errorf("error = %v, want ErrConflict about no free subnet", err)
	}
}

func TestIPAMAddresses(t *testing.T) {
	m := NewIPAM()
	if _, err := m.AddNetwork("net", subnet("10.9.0.0/29", "10.9.0.1")); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		op    string // "alloc" or "release"
		owner string
		addr  string // wanted (alloc) or released address
		want  string // address or error text
	}{
		{"alloc", "c1", "", "10.9.0.2"},
		{"alloc", "c2", "", "10.9.0.3"},
		{"alloc", "c3", "10.9.0.5", "10.9.0.5"},
		{"alloc", "c4", "", "10.9.0.4"},
		{"alloc", "c5", "", "10.9.0.6"},
		{"alloc", "c6", "", "network net: no free address in 10.9.0.0/29"},
		{"release", "", "10.9.0.3", ""},
		{"alloc", "c7", "", "10.9.0.3"},
		{"release", "", "10.9.0.3", ""},
		{"release", "", "10.9.0.3", "network net: address 10.9.0.3 is not allocated"},
		{"release", "", "10.9.0.1", "network net: address 10.9.0.1 is not allocated"},
		{"alloc", "c8", "10.9.0.5", "network net: address 10.9.0.5 is already in use by c3"},
		{"alloc", "c8", "10.9.0.1", "network net: address 10.9.0.1 is already in use by the gateway"},
		{"alloc", "c8", "10.9.0.7", "network net: address 10.9.0.7 is not a host address of 10.9.0.0/29"},
		{"alloc", "c8", "10.9.0.0", "network net: address 10.9.0.0 is not a host address"},
		{"alloc", "c8", "10.9.1.2", "network net: address 10.9.1.2 is not in subnet 10.9.0.0/29"},
		{"alloc", "c8", "10.9.0.3", "10.9.0.3"},
	}
	for i, s := range steps {
		var got string
		switch s.op {
		case "alloc":
			var want netip.Addr
			if s.addr != "" {
				want = netip.MustParseAddr(s.addr)
			}
			a, err := m.Allocate("net", s.owner, want)
			got = a.String()
			if err != nil {
				got = err.Error()
			}
		case "release":
			if err := m.Release("net", netip.MustParseAddr(s.addr)); err != nil {
				got = err.Error()
			}
		}
		if !strings.HasPrefix(got, s.want) {
			t.Errorf("step %d: %s %s = %q, want %q", i, s.op, s.addr, got, s.want)
		}
	}
	_, err := m.Allocate("net", "x", netip.Addr{})
	if !errors.Is(err, errdefs.ErrConflict) || err.Error() != "network net: no free address in 10.9.0.0/29" {
		t.Errorf("exhaustion error = %v (ErrConflict: %v)", err, errors.Is(err, errdefs.ErrConflict))
	}
	if _, err := m.Allocate("nope", "x", netip.Addr{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("unknown network: %v, want ErrNotFound", err)
	}
}

func TestIPAMCustomGateway(t *testing.T) {
	m := NewIPAM()
	if _, err := m.AddNetwork("net", subnet("10.8.0.0/24", "10.8.0.254")); err != nil {
		t.Fatal(err)
	}
	// With the gateway elsewhere, the lowest host address is free.
	if a, err := m.Allocate("net", "c1", netip.Addr{}); err != nil || a.String() != "10.8.0.1" {
		t.Errorf("Allocate = %v, %v; want 10.8.0.1", a, err)
	}
}

func TestMACFromIP(t *testing.T) {
	for ip, want := range map[string]string{
		"172.17.0.2":    "02:42:ac:11:00:02",
		"172.18.0.1":    "02:42:ac:12:00:01",
		"192.168.16.10": "02:42:c0:a8:10:0a",
	} {
		if got := MACFromIP(netip.MustParseAddr(ip)).String(); got != want {
			t.Errorf("MACFromIP(%s) = %s, want %s", ip, got, want)
		}
	}
}

func TestBroadcast(t *testing.T) {
	for p, want := range map[string]string{
		"10.0.0.0/8":      "10.255.255.255",
		"172.18.0.0/16":   "172.18.255.255",
		"192.168.16.0/20": "192.168.31.255",
		"10.9.0.0/29":     "10.9.0.7",
		"10.9.0.0/30":     "10.9.0.3",
	} {
		if got := broadcast(netip.MustParsePrefix(p)).String(); got != want {
			t.Errorf("broadcast(%s) = %s, want %s", p, got, want)
		}
	}
}
