package dns

import (
	"net"
	"strings"
	"sync"
	"testing"

	mdns "github.com/miekg/dns"
)

// table is a Resolver over fixed names that records who asked.
type table struct {
	names map[string][]net.IP
	ptr   map[string][]string

	mu      sync.Mutex
	clients []net.Addr
}

func (t *table) LookupIP(client net.Addr, name string) ([]net.IP, bool) {
	t.mu.Lock()
	t.clients = append(t.clients, client)
	t.mu.Unlock()
	ips, ok := t.names[name]
	return ips, ok
}

func (t *table) LookupAddr(client net.Addr, ip net.IP) ([]string, bool) {
	names, ok := t.ptr[ip.String()]
	return names, ok
}

func labTable() *table {
	web := net.ParseIP("172.18.0.2")
	return &table{
		names: map[string][]net.IP{
			"web1":         {web},
			"www":          {web}, // an alias of web1
			"db":           {net.ParseIP("172.18.0.3"), net.ParseIP("fd00::3")},
			"3f4e5d6c7b8a": {web}, // an id prefix
		},
		ptr: map[string][]string{"172.18.0.2": {"web1.labnet"}},
	}
}

func serve(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	s := NewServer(cfg)
	addr, err := s.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, addr
}

func query(t *testing.T, network, addr, name string, qtype uint16) *mdns.Msg {
	t.Helper()
	c := &mdns.Client{Net: network}
	m := new(mdns.Msg).SetQuestion(name, qtype)
	resp, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s %s: %v", network, name, mdns.TypeToString[qtype], err)
	}
	return resp
}

// answers renders the answer section as "A 1.2.3.4" strings.
func answers(m *mdns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *mdns.A:
			out = append(out, "A "+rr.A.String())
		case *mdns.AAAA:
			out = append(out, "AAAA "+rr.AAAA.String())
		case *mdns.PTR:
			out = append(out, "PTR "+rr.Ptr)
		default:
			out = append(out, rr.String())
		}
	}
	return out
}

func TestLocalNames(t *testing.T) {
	_, addr := serve(t, Config{Resolver: labTable()})
	tests := []struct {
		name   string
		qtype  uint16
		rcode  int
		answer string
	}{
		{"web1.", mdns.TypeA, mdns.RcodeSuccess, "A 172.18.0.2"},
		{"WeB1.", mdns.TypeA, mdns.RcodeSuccess, "A 172.18.0.2"},
		{"www.", mdns.TypeA, mdns.RcodeSuccess, "A 172.18.0.2"},
		{"3f4e5d6c7b8a.", mdns.TypeA, mdns.RcodeSuccess, "A 172.18.0.2"},
		{"db.", mdns.TypeA, mdns.RcodeSuccess, "A 172.18.0.3"},
		{"db.", mdns.TypeAAAA, mdns.RcodeSuccess, "AAAA fd00::3"},
		// A known name without IPv6 is an empty success, not forwarded.
		{"web1.", mdns.TypeAAAA, mdns.RcodeSuccess, ""},
		{"web1.", mdns.TypeMX, mdns.RcodeSuccess, ""},
		{"2.0.18.172.in-addr.arpa.", mdns.TypePTR, mdns.RcodeSuccess, "PTR web1.labnet."},
		// Not local and no upstream: SERVFAIL, as Docker's.
		{"nope.", mdns.TypeA, mdns.RcodeServerFailure, ""},
		{"9.0.18.172.in-addr.arpa.", mdns.TypePTR, mdns.RcodeServerFailure, ""},
	}
	for _, tt := range tests {
		resp := query(t, "udp", addr, tt.name, tt.qtype)
		got := strings.Join(answers(resp), ",")
		if resp.Rcode != tt.rcode || got != tt.answer {
			t.Errorf("%s %s = %s [%s], want %s [%s]", tt.name, mdns.TypeToString[tt.qtype],
				mdns.RcodeToString[resp.Rcode], got, mdns.RcodeToString[tt.rcode], tt.answer)
		}
		if len(resp.Answer) > 0 && resp.Answer[0].Header().Ttl != TTL {
			t.Errorf("%s: ttl %d, want %d", tt.name, resp.Answer[0].Header().Ttl, TTL)
		}
	}
}

func TestClientAddressReachesResolver(t *testing.T) {
	tab := labTable()
	_, addr := serve(t, Config{Resolver: tab})
	c := &mdns.Client{Net: "udp"}
	conn, err := c.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, _, err := c.ExchangeWithConn(new(mdns.Msg).SetQuestion("web1.", mdns.TypeA), conn); err != nil {
		t.Fatal(err)
	}
	tab.mu.Lock()
	defer tab.mu.Unlock()
	if len(tab.clients) != 1 || tab.clients[0].String() != conn.LocalAddr().String() {
		t.Fatalf("resolver saw clients %v, want [%v]", tab.clients, conn.LocalAddr())
	}
}

func TestForward(t *testing.T) {
	_, world := serve(t, Config{Resolver: Zone("world.test", net.ParseIP("198.51.100.1")), Authoritative: true})
	// The first upstream is a closed loopback port: it fails and the next
	// one is asked.
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.LocalAddr().String()
	dead.Close()
	_, addr := serve(t, Config{Resolver: labTable(), Upstreams: []string{deadAddr, world}})

	for _, network := range []string{"udp", "tcp"} {
		resp := query(t, network, addr, "www.World.Test.", mdns.TypeA)
		if got := strings.Join(answers(resp), ","); resp.Rcode != mdns.RcodeSuccess || got != "A 198.51.100.1" {
			t.Errorf("%s forwarded www.world.test = %s [%s]", network, mdns.RcodeToString[resp.Rcode], got)
		}
		// The upstream's NXDOMAIN is passed on.
		resp = query(t, network, addr, "nope.example.", mdns.TypeA)
		if resp.Rcode != mdns.RcodeNameError {
			t.Errorf("%s forwarded nope.example = %s, want NXDOMAIN", network, mdns.RcodeToString[resp.Rcode])
		}
		// Local names still win.
		resp = query(t, network, addr, "web1.", mdns.TypeA)
		if got := strings.Join(answers(resp), ","); got != "A 172.18.0.2" {
			t.Errorf("%s web1 = [%s]", network, got)
		}
	}
}

func TestNoUpstreamAnswers(t *testing.T) {
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.LocalAddr().String()
	dead.Close()
	_, addr := serve(t, Config{Upstreams: []string{deadAddr}})
	if resp := query(t, "udp", addr, "www.world.test.", mdns.TypeA); resp.Rcode != mdns.RcodeServerFailure {
		t.Fatalf("rcode %s, want SERVFAIL", mdns.RcodeToString[resp.Rcode])
	}
}

func TestZone(t *testing.T) {
	_, addr := serve(t, Config{Resolver: Zone("world.test.", net.ParseIP("198.51.100.1")), Authoritative: true})
	tests := []struct {
		name   string
		rcode  int
		answer string
	}{
		{"world.test.", mdns.RcodeSuccess, "A 198.51.100.1"},
		{"www.world.test.", mdns.RcodeSuccess, "A 198.51.100.1"},
		{"a.b.WORLD.test.", mdns.RcodeSuccess, "A 198.51.100.1"},
		{"otherworld.test.", mdns.RcodeNameError, ""},
		{"example.com.", mdns.RcodeNameError, ""},
	}
	for _, tt := range tests {
		for _, network := range []string{"udp", "tcp"} {
			resp := query(t, network, addr, tt.name, mdns.TypeA)
			got := strings.Join(answers(resp), ",")
			if resp.Rcode != tt.rcode || got != tt.answer || !resp.Authoritative {
				t.Errorf("%s %s = %s aa=%v [%s], want %s [%s]", network, tt.name,
					mdns.RcodeToString[resp.Rcode], resp.Authoritative, got, mdns.RcodeToString[tt.rcode], tt.answer)
			}
		}
	}
}

func TestTruncatedOverUDPFullOverTCP(t *testing.T) {
	var many []net.IP
	for i := 1; i <= 100; i++ {
		many = append(many, net.IPv4(10, 0, 0, byte(i)))
	}
	_, addr := serve(t, Config{Resolver: LookupFunc(func(net.Addr, string) ([]net.IP, bool) { return many, true })})
	udp := query(t, "udp", addr, "svc.", mdns.TypeA)
	if !udp.Truncated || len(udp.Answer) >= 100 {
		t.Errorf("udp: truncated=%v with %d answers, want truncated", udp.Truncated, len(udp.Answer))
	}
	tcp := query(t, "tcp", addr, "svc.", mdns.TypeA)
	if tcp.Truncated || len(tcp.Answer) != 100 {
		t.Errorf("tcp: truncated=%v with %d answers, want all 100", tcp.Truncated, len(tcp.Answer))
	}
}

func TestServeGivenSockets(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(Config{Resolver: labTable()})
	if err := s.Serve(pc, l); err != nil {
		t.Fatal(err)
	}
	if got := len(s.Addrs()); got != 2 {
		t.Fatalf("Addrs() has %d entries, want 2", got)
	}
	for _, c := range []struct{ network, addr string }{{"udp", pc.LocalAddr().String()}, {"tcp", l.Addr().String()}} {
		if got := strings.Join(answers(query(t, c.network, c.addr, "web1.", mdns.TypeA)), ","); got != "A 172.18.0.2" {
			t.Errorf("%s: web1 = [%s]", c.network, got)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Close owns the sockets: the TCP port no longer accepts.
	if conn, err := net.Dial("tcp", l.Addr().String()); err == nil {
		conn.Close()
		t.Fatal("tcp socket still accepting after Close")
	}
	if err := s.Serve(nil, nil); err != nil {
		t.Fatalf("Serve of nothing: %v", err)
	}
	pc2, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(pc2, nil); err == nil {
		t.Fatal("Serve after Close succeeded")
	}
}

func TestReverseIP(t *testing.T) {
	tests := map[string]string{
		"2.0.18.172.in-addr.arpa": "172.18.0.2",
		"b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa": "4321:0:1:2:3:4:567:89ab",
		"0.18.172.in-addr.arpa":   "<nil>",
		"x.0.18.172.in-addr.arpa": "<nil>",
		"web1":                    "<nil>",
	}
	for name, want := range tests {
		if got := reverseIP(name).String(); got != want {
			t.Errorf("reverseIP(%q) = %s, want %s", name, got, want)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	s := NewServer(Config{Resolver: labTable()})
	addr, err := s.Listen("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := &mdns.Client{Net: "udp"}
	conn, err := c.Dial(addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	m := new(mdns.Msg).SetQuestion("web1.", mdns.TypeA)
	b.ResetTimer()
	for b.Loop() {
		resp, _, err := c.ExchangeWithConn(m, conn)
		if err != nil {
			b.Fatal(err)
		}
		if len(resp.Answer) != 1 {
			b.Fatalf("answers %v", resp.Answer)
		}
	}
}
