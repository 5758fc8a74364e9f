package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// UDPIdleTimeout ends a UDP flow with no traffic either way for this long,
// docker-proxy's conntrack timeout.
const UDPIdleTimeout = 90 * time.Second

// udpBufSize holds the largest UDP payload over IPv4.
const udpBufSize = 65507

// Proxy relays one published port to one backend ("ip:port").
type Proxy struct {
	front   io.Closer
	backend string
	ctx     context.Context // cancelled by Close to abandon backend dials
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{} // TCP: both ends of every relayed connection
	flows  map[string]*flow      // UDP: by client address
}

func newProxy(front io.Closer, backend string) *Proxy {
	ctx, cancel := context.WithCancel(context.Background())
	return &Proxy{
		front:   front,
		backend: backend,
		ctx:     ctx,
		cancel:  cancel,
		conns:   map[net.Conn]struct{}{},
		flows:   map[string]*flow{},
	}
}

// Close stops accepting, ends every relayed connection and flow, and returns
// once all of the proxy's goroutines have finished. It closes the socket
// handed to TCP or UDP.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	err := p.front.Close()
	for c := range p.conns {
		c.Close()
	}
	for _, f := range p.flows {
		f.conn.Close()
	}
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	return err
}

// TCP relays every connection accepted on l to backend, each direction
// separately so that a half-close on one side reaches the other.
func TCP(l net.Listener, backend string) *Proxy {
	p := newProxy(l, backend)
	p.wg.Add(1)
	go p.accept(l)
	return p
}

func (p *Proxy) accept(l net.Listener) {
	defer p.wg.Done()
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if !outOfResources(err) {
				return // closed, or broken beyond retrying
			}
			// Out of descriptors or buffers: wait for connections to end
			// rather than spin, as net/http's server does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			select {
			case <-time.After(delay):
				continue
			case <-p.ctx.Done():
				return
			}
		}
		delay = 0
		p.wg.Add(1)
		go p.relay(c)
	}
}

func outOfResources(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

// track registers c so Close can end it; it refuses once the proxy closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *Proxy) relay(client net.Conn) {
	defer p.wg.Done()
	if !p.track(client) {
		client.Close()
		return
	}
	defer p.untrack(client)
	var d net.Dialer
	backend, err := d.DialContext(p.ctx, "tcp", p.backend)
	if err != nil {
		// Nothing listens in the container (yet): the client sees its
		// connection closed, as with docker-proxy.
		return
	}
	if !p.track(backend) {
		backend.Close()
		return
	}
	defer p.untrack(backend)

	done := make(chan struct{})
	go func() {
		pipe(backend, client)
		close(done)
	}()
	pipe(client, backend)
	<-done
}

// pipe copies src to dst until src's end closes its side, then passes the
// half-close on. A failure (a reset) ends both connections, so the copy in
// the other direction cannot wait forever on a peer that will never speak.
func pipe(dst, src net.Conn) {
	// With both ends *net.TCPConn, io.Copy splices in the kernel.
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		src.Close()
		return
	}
	if c, ok := dst.(interface{ CloseWrite() error }); ok {
		c.CloseWrite()
	}
	if c, ok := src.(interface{ CloseRead() error }); ok {
		c.CloseRead()
	}
}

// UDP relays datagrams arriving on conn to backend. Each client address gets
// its own socket towards the backend, so replies find their way back to the
// client that asked; a flow idle for UDPIdleTimeout is dropped.
func UDP(conn net.PacketConn, backend string) *Proxy {
	return udpProxy(conn, backend, UDPIdleTimeout)
}

func udpProxy(conn net.PacketConn, backend string, idle time.Duration) *Proxy {
	p := newProxy(conn, backend)
	p.wg.Add(1)
	go p.readClients(conn, idle)
	return p
}

func (p *Proxy) readClients(conn net.PacketConn, idle time.Duration) {
	defer p.wg.Done()
	buf := make([]byte, udpBufSize)
	for {
		n, client, err := conn.ReadFrom(buf)
		if err != nil {
			if isTransientUDP(err) {
				continue
			}
			return
		}
		f := p.flow(conn, client, idle)
		if f == nil {
			continue
		}
		f.touch()
		// A refused write means nothing listens in the container yet; the
		// client retries as it would without a proxy.
		f.conn.Write(buf[:n])
	}
}

// isTransientUDP tells errors that concern one datagram, such as an ICMP
// error queued on the socket, from a closed socket.
func isTransientUDP(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.ENOBUFS)
}

// flow is one UDP client's conversation with the backend.
type flow struct {
	conn *net.UDPConn
	last atomic.Int64 // time of the latest datagram either way, Unix ns
}

func (f *flow) touch() { f.last.Store(time.Now().UnixNano()) }

func (f *flow) idleSince() time.Time { return time.Unix(0, f.last.Load()) }

// flow returns client's flow, making it on first use; nil once the proxy is
// closed or when no socket can be made.
func (p *Proxy) flow(front net.PacketConn, client net.Addr, idle time.Duration) *flow {
	key := client.String()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	if f, ok := p.flows[key]; ok {
		return f
	}
	c, err := net.Dial("udp", p.backend)
	if err != nil {
		return nil
	}
	f := &flow{conn: c.(*net.UDPConn)}
	f.touch()
	p.flows[key] = f
	p.wg.Add(1)
	go p.replies(front, client, key, f, idle)
	return f
}

// replies sends the backend's datagrams for one flow back to its client
// until the flow has been idle for idle.
func (p *Proxy) replies(front net.PacketConn, client net.Addr, key string, f *flow, idle time.Duration) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.flows, key)
		p.mu.Unlock()
		f.conn.Close()
	}()
	buf := make([]byte, udpBufSize)
	for {
		f.conn.SetReadDeadline(f.idleSince().Add(idle))
		n, err := f.conn.Read(buf)
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				continue
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && time.Since(f.idleSince()) < idle {
				continue // the client spoke meanwhile
			}
			return
		}
		f.touch()
		if _, err := front.WriteTo(buf[:n], client); err != nil && !isTransientUDP(err) {
			return
		}
	}
}
