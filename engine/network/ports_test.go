package network

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"vscript/engine/errdefs"
)

func TestParsePortSpec(t *testing.T) {
	tests := []struct {
		spec string
		want []string // PortBinding.String() of each binding, or one error substring
		err  bool
	}{
		{spec: "8000:80", want: []string{"0.0.0.0:8000:80/tcp"}},
		{spec: "127.0.0.1:8081:80/tcp", want: []string{"127.0.0.1:8081:80/tcp"}},
		{spec: "53:53/udp", want: []string{"0.0.0.0:53:53/udp"}},
		{spec: "53:53/UDP", want: []string{"0.0.0.0:53:53/udp"}},
		{spec: "80", want: []string{"0.0.0.0::80/tcp"}},
		{spec: "80/", want: []string{"0.0.0.0::80/tcp"}},
		{spec: "127.0.0.1::80", want: []string{"127.0.0.1::80/tcp"}},
		{spec: "0:80", want: []string{"0.0.0.0::80/tcp"}},
		{spec: "8000-8001:80-81", want: []string{"0.0.0.0:8000:80/tcp", "0.0.0.0:8001:81/tcp"}},
		{spec: "80-82/udp", want: []string{"0.0.0.0::80/udp", "0.0.0.0::81/udp", "0.0.0.0::82/udp"}},
		{spec: "8000-8010:80", want: []string{"0.0.0.0:8000-8010:80/tcp"}},
		{spec: "65535:1", want: []string{"0.0.0.0:65535:1/tcp"}},

		{spec: "", want: []string{"port : no container port"}, err: true},
		{spec: "8000:", want: []string{"port 8000:: no container port"}, err: true},
		{spec: "80/sctp", want: []string{`port 80/sctp: unsupported protocol "sctp"`}, err: true},
		{spec: "80/tcp/x", want: []string{"unsupported protocol"}, err: true},
		{spec: "0", want: []string{"port 0: container port 0 is not a port"}, err: true},
		{spec: "70000:80", want: []string{`port 70000:80: host port "70000" is not a number from 1 to 65535`}, err: true},
		{spec: "8000:65536", want: []string{"container port"}, err: true},
		{spec: "http", want: []string{"port http: container port"}, err: true},
		{spec: "-1:80", want: []string{"host port"}, err: true},
		{spec: "81-80", want: []string{"empty"}, err: true},
		{spec: "8000-8002:80-81", want: []string{"differ in length"}, err: true},
		{spec: "8000:80-81", want: []string{"differ in length"}, err: true},
		{spec: "localhost:8000:80", want: []string{`invalid host IPv4 address "localhost"`}, err: true},
		{spec: "[::1]:8000:80", want: []string{"IPv6"}, err: true},
		{spec: "1.2.3.4:1:2:3", want: []string{"too many colons"}, err: true},
	}
	for _, tt := range tests {
		got, err := ParsePortSpec(tt.spec)
		if tt.err {
			if err == nil || !strings.Contains(err.Error(), tt.want[0]) || !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("ParsePortSpec(%q) error = %v, want ErrInvalid containing %q", tt.spec, err, tt.want[0])
			}
			if err != nil && !strings.HasPrefix(err.Error(), "port "+tt.spec+": ") {
				t.Errorf("ParsePortSpec(%q) error %q does not start with the spec", tt.spec, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParsePortSpec(%q): %v", tt.spec, err)
			continue
		}
		var s []string
		for _, b := range got {
			s = append(s, b.String())
		}
		if strings.Join(s, " ") != strings.Join(tt.want, " ") {
			t.Errorf("ParsePortSpec(%q) = %v, want %v", tt.spec, s, tt.want)
		}
	}
}

func binding(t *testing.T, spec string) PortBinding {
	t.Helper()
	b, err := ParsePortSpec(spec)
	if err != nil || len(b) != 1 {
		t.Fatalf("ParsePortSpec(%q) = %v, %v", spec, b, err)
	}
	return b[0]
}

func TestPortAllocator(t *testing.T) {
	a := NewPortAllocator()
	steps := []struct {
		owner, spec string
		want        string // host port or error
	}{
		{"web1", "8000:80", "8000"},
		{"web2", "8000:80", "port 0.0.0.0:8000/tcp: already allocated to web1"},
		{"web2", "127.0.0.1:8000:80", "port 127.0.0.1:8000/tcp: already allocated to web1"},
		{"dns", "8000:53/udp", "8000"}, // another protocol
		{"web2", "127.0.0.1:8081:80", "8081"},
		{"web3", "8081:80", "port 0.0.0.0:8081/tcp: already allocated to web2"},
		{"web3", "127.0.0.2:8081:80", "8081"},
		{"web4", "80", "32768"},
		{"web5", "80", "32769"},
		{"web6", "32770:80", "32770"},
		{"web7", "80", "32771"}, // skips the port web6 holds
		{"web8", "8000-8002:80", "8001"},
		{"web9", "8000-8001:80", "port 0.0.0.0:8000-8001/tcp: every port of the range is allocated"},
	}
	for i, s := range steps {
		b, err := a.Allocate(s.owner, binding(t, s.spec))
		got := ""
		if err != nil {
			got = err.Error()
			if !errors.Is(err, errdefs.ErrConflict) {
				t.Errorf("step %d: %v is not ErrConflict", i, err)
			}
		} else {
			got = strconv.Itoa(int(b.HostPort))
			if b.HostPortEnd != 0 {
				t.Errorf("step %d: HostPortEnd = %d after allocation", i, b.HostPortEnd)
			}
		}
		if got != s.want {
			t.Errorf("step %d: Allocate(%s, %s) = %q, want %q", i, s.owner, s.spec, got, s.want)
		}
	}

	if owner, ok := a.Holder("tcp", netip.MustParseAddr("127.0.0.1"), 8081); !ok || owner != "web2" {
		t.Errorf("Holder(127.0.0.1:8081) = %q, %v; want web2", owner, ok)
	}
	if owner, ok := a.Holder("tcp", netip.IPv4Unspecified(), 8081); !ok || owner != "web2" {
		t.Errorf("Holder(0.0.0.0:8081) = %q, %v; want web2 (lowest address)", owner, ok)
	}
	if _, ok := a.Holder("udp", netip.IPv4Unspecified(), 8081); ok {
		t.Errorf("Holder(udp 8081) held, want free")
	}

	// A released port is free again; automatic picks keep going forward.
	a.Release(PortBinding{HostIP: netip.IPv4Unspecified(), HostPort: 32768, Proto: "tcp"})
	if b, err := a.Allocate("web10", binding(t, "80")); err != nil || b.HostPort != 32772 {
		t.Errorf("after release, Allocate = %v, %v; want 32772", b.HostPort, err)
	}
	if b, err := a.Allocate("web11", binding(t, "32768:80")); err != nil || b.HostPort != 32768 {
		t.Errorf("explicit released port = %v, %v; want 32768", b.HostPort, err)
	}
	a.Release(PortBinding{HostIP: netip.IPv4Unspecified(), HostPort: 9999, Proto: "tcp"}) // not held: no-op
}

func TestPortAllocatorWraps(t *testing.T) {
	a := NewPortAllocator()
	a.next["tcp"] = EphemeralPortEnd
	b, err := a.Allocate("c1", binding(t, "80"))
	if err != nil || b.HostPort != EphemeralPortEnd {
		t.Fatalf("Allocate = %v, %v; want %d", b.HostPort, err, EphemeralPortEnd)
	}
	b, err = a.Allocate("c2", binding(t, "80"))
	if err != nil || b.HostPort != EphemeralPortStart {
		t.Fatalf("after the end, Allocate = %v, %v; want %d", b.HostPort, err, EphemeralPortStart)
	}
}

func TestPortAllocatorExhausted(t *testing.T) {
	a := NewPortAllocator()
	for p := EphemeralPortStart; p <= EphemeralPortEnd; p++ {
		a.claim("x", PortBinding{HostIP: netip.IPv4Unspecified(), HostPort: uint16(p), Proto: "udp"})
	}
	_, err := a.Allocate("c", binding(t, "53/udp"))
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "no free host port in 32768-60999") {
		t.Errorf("error = %v", err)
	}
	if b, err := a.Allocate("c", binding(t, "53")); err != nil || b.HostPort != EphemeralPortStart {
		t.Errorf("tcp is separate: %v, %v", b.HostPort, err)
	}
}
