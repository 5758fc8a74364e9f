package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	mdns "github.com/miekg/dns"
)

// TTL of every locally answered record, as Docker's embedded DNS (600 s).
const TTL = 600

// DefaultTimeout bounds one exchange with one upstream server when
// Config.Timeout is zero; Docker's embedded DNS uses the same 4 s.
const DefaultTimeout = 4 * time.Second

// Resolver knows the local names. Both methods receive the querier's address
// and the name lowercased, without a trailing dot.
type Resolver interface {
	// LookupIP returns the addresses of name, IPv4 and IPv6 alike (the
	// server picks the family asked for). found reports whether the name
	// exists here at all: a known name without an address of the asked
	// family gets an empty NOERROR reply rather than being forwarded.
	LookupIP(client net.Addr, name string) (ips []net.IP, found bool)
	// LookupAddr returns the names of ip for PTR queries.
	LookupAddr(client net.Addr, ip net.IP) (names []string, found bool)
}

// LookupFunc is a Resolver made of a forward lookup alone; it knows no
// reverse names.
type LookupFunc func(client net.Addr, name string) (ips []net.IP, found bool)

// LookupIP calls f.
func (f LookupFunc) LookupIP(client net.Addr, name string) ([]net.IP, bool) { return f(client, name) }

// LookupAddr knows no names.
func (f LookupFunc) LookupAddr(net.Addr, net.IP) ([]string, bool) { return nil, false }

// Zone resolves domain and every name under it to ip, and nothing else. With
// Config.Authoritative it is the simulated world's DNS.
func Zone(domain string, ip net.IP) Resolver {
	domain = normalize(domain)
	return LookupFunc(func(_ net.Addr, name string) ([]net.IP, bool) {
		if name == domain || strings.HasSuffix(name, "."+domain) {
			return []net.IP{ip}, true
		}
		return nil, false
	})
}

// Config says how a Server answers.
type Config struct {
	// Resolver answers local names; nil makes a pure forwarder.
	Resolver Resolver
	// Upstreams are "host:port" servers tried in order for names the
	// Resolver does not know.
	Upstreams []string
	// Timeout bounds each upstream exchange; DefaultTimeout when zero.
	Timeout time.Duration
	// Authoritative servers answer NXDOMAIN for unknown names instead of
	// forwarding them, and set the AA bit.
	Authoritative bool
}

// Server serves DNS on any number of UDP and TCP sockets.
type Server struct {
	cfg    Config
	ctx    context.Context // cancelled by Close to abandon upstream exchanges
	cancel context.CancelFunc

	mu      sync.Mutex
	closed  bool
	servers []*mdns.Server
	addrs   []net.Addr
}

// NewServer returns a Server that serves nothing until Serve or Listen.
func NewServer(cfg Config) *Server {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{cfg: cfg, ctx: ctx, cancel: cancel}
}

// Serve answers queries arriving on pc (UDP) and l (TCP); either may be nil.
// It returns once both are being served. The Server owns the sockets from
// then on: Close closes them, and a failing Serve closes those it did not
// start serving.
func (s *Server) Serve(pc net.PacketConn, l net.Listener) error {
	if pc != nil {
		if err := s.start(&mdns.Server{PacketConn: pc}, pc.LocalAddr()); err != nil {
			if l != nil {
				l.Close()
			}
			return err
		}
	}
	if l != nil {
		return s.start(&mdns.Server{Listener: l}, l.Addr())
	}
	return nil
}

func (s *Server) start(srv *mdns.Server, addr net.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		closeSocket(srv)
		return fmt.Errorf("dns serve %s: %w", addr, net.ErrClosed)
	}
	srv.Handler = s
	// Queries with EDNS0 may be larger than the 512 bytes miekg reads by
	// default.
	srv.UDPSize = mdns.DefaultMsgSize
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	failed := make(chan error, 1)
	go func() { failed <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-failed:
		closeSocket(srv)
		return fmt.Errorf("dns serve %s: %w", addr, err)
	}
	s.servers = append(s.servers, srv)
	s.addrs = append(s.addrs, addr)
	return nil
}

func closeSocket(srv *mdns.Server) {
	if srv.PacketConn != nil {
		srv.PacketConn.Close()
	}
	if srv.Listener != nil {
		srv.Listener.Close()
	}
}

// Listen serves UDP and TCP on addr ("127.0.0.1:0" picks a free port, the
// same for both) and returns the address bound.
func (s *Server) Listen(addr string) (string, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("dns listen %s: %w", addr, err)
	}
	for attempt := 0; ; attempt++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return "", fmt.Errorf("dns listen %s: %w", addr, err)
		}
		bound := pc.LocalAddr().String()
		l, err := net.Listen("tcp", bound)
		if err != nil {
			pc.Close()
			// The free UDP port may be taken on TCP; pick another.
			if port == "0" && errors.Is(err, syscall.EADDRINUSE) && attempt < 20 {
				continue
			}
			return "", fmt.Errorf("dns listen %s: %w", addr, err)
		}
		return bound, s.Serve(pc, l)
	}
}

// Addrs returns the addresses being served.
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]net.Addr(nil), s.addrs...)
}

// Close stops serving, closes the sockets and waits for queries in flight;
// upstream exchanges in flight are abandoned.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	servers := s.servers
	s.servers = nil
	s.mu.Unlock()

	s.cancel()
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("dns close: %w", err)
	}
	return nil
}

// ServeDNS answers one query; it implements miekg/dns's Handler.
func (s *Server) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	tcp := strings.HasPrefix(w.LocalAddr().Network(), "tcp")
	resp := s.answer(w.RemoteAddr(), tcp, req)
	if !tcp {
		size := mdns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		resp.Truncate(size)
	}
	w.WriteMsg(resp)
}

func (s *Server) answer(client net.Addr, tcp bool, req *mdns.Msg) *mdns.Msg {
	resp := new(mdns.Msg)
	if req.Opcode != mdns.OpcodeQuery {
		return resp.SetRcode(req, mdns.RcodeNotImplemented)
	}
	if len(req.Question) != 1 {
		return resp.SetRcodeFormatError(req)
	}
	if local := s.local(client, req); local != nil {
		return local
	}
	if s.cfg.Authoritative {
		resp.SetRcode(req, mdns.RcodeNameError)
		resp.Authoritative = true
		return resp
	}
	if fwd := s.forward(tcp, req); fwd != nil {
		return fwd
	}
	resp.SetRcode(req, mdns.RcodeServerFailure)
	resp.RecursionAvailable = true
	return resp
}

// local answers from the Resolver, or returns nil for a name it does not
// know.
func (s *Server) local(client net.Addr, req *mdns.Msg) *mdns.Msg {
	r := s.cfg.Resolver
	q := req.Question[0]
	if r == nil || q.Qclass != mdns.ClassINET {
		return nil
	}
	name := normalize(q.Name)
	hdr := mdns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: mdns.ClassINET, Ttl: TTL}
	var answers []mdns.RR
	if q.Qtype == mdns.TypePTR {
		ip := reverseIP(name)
		if ip == nil {
			return nil
		}
		names, found := r.LookupAddr(client, ip)
		if !found {
			return nil
		}
		for _, n := range names {
			answers = append(answers, &mdns.PTR{Hdr: hdr, Ptr: mdns.Fqdn(n)})
		}
	} else {
		ips, found := r.LookupIP(client, name)
		if !found {
			return nil
		}
		// Other types of a known name (MX, TXT, …) exist but are empty.
		for _, ip := range ips {
			if v4 := ip.To4(); v4 != nil && q.Qtype == mdns.TypeA {
				answers = append(answers, &mdns.A{Hdr: hdr, A: v4})
			} else if v4 == nil && q.Qtype == mdns.TypeAAAA {
				answers = append(answers, &mdns.AAAA{Hdr: hdr, AAAA: ip})
			}
		}
	}
	resp := new(mdns.Msg).SetReply(req)
	resp.Authoritative = s.cfg.Authoritative
	resp.RecursionAvailable = !s.cfg.Authoritative
	resp.Answer = answers
	if req.IsEdns0() != nil {
		resp.SetEdns0(mdns.DefaultMsgSize, false)
	}
	return resp
}

// forward asks the upstreams in order over the transport the query came on,
// so a truncated UDP answer makes the client retry over TCP end to end. It
// returns nil when no upstream gave a usable answer.
func (s *Server) forward(tcp bool, req *mdns.Msg) *mdns.Msg {
	c := &mdns.Client{Net: "udp", Timeout: s.cfg.Timeout}
	if tcp {
		c.Net = "tcp"
	}
	for _, up := range s.cfg.Upstreams {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
		resp, _, err := c.ExchangeContext(ctx, req, up)
		cancel()
		if err != nil || resp.Rcode == mdns.RcodeServerFailure || resp.Rcode == mdns.RcodeRefused {
			continue
		}
		return resp
	}
	return nil
}

func normalize(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

// reverseIP parses a normalized in-addr.arpa or ip6.arpa name.
func reverseIP(name string) net.IP {
	if rest, ok := strings.CutSuffix(name, ".in-addr.arpa"); ok {
		labels := strings.Split(rest, ".")
		if len(labels) != 4 {
			return nil
		}
		for i, j := 0, 3; i < j; i, j = i+1, j-1 {
			labels[i], labels[j] = labels[j], labels[i]
		}
		return net.ParseIP(strings.Join(labels, ".")).To4()
	}
	if rest, ok := strings.CutSuffix(name, ".ip6.arpa"); ok {
		nibbles := strings.Split(rest, ".")
		if len(nibbles) != 32 {
			return nil
		}
		var b strings.Builder
		for i := 31; i >= 0; i-- {
			if len(nibbles[i]) != 1 {
				return nil
			}
			b.WriteString(nibbles[i])
			if i%4 == 0 && i > 0 {
				b.WriteByte(':')
			}
		}
		return net.ParseIP(b.String())
	}
	return nil
}
