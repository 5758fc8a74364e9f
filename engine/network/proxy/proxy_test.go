package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
)

// settle waits for the goroutine count to fall to want. The deadline only
// bounds a failing test; a passing one returns as soon as the count drops.
func settle(t testing.TB, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines left, want %d:\n%s", runtime.NumGoroutine(), want, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
}

// echoTCP serves on loopback: each connection gets back what it sent, and
// the server closes its side after the client's EOF.
func echoTCP(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	return l.Addr().String()
}

func tcpProxy(t testing.TB, backend string) (*Proxy, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := TCP(l, backend)
	t.Cleanup(func() { p.Close() })
	return p, l.Addr().String()
}

func TestTCPBothWaysAndHalfClose(t *testing.T) {
	_, addr := tcpProxy(t, echoTCP(t))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := bytes.Repeat([]byte("vscript "), 100000)
	go func() {
		c.Write(msg)
		// Half-close: the echo server sees EOF only through the proxy's
		// CloseWrite, and still answers everything before closing.
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echoed %d bytes, want %d", len(got), len(msg))
	}
}

func TestTCPServerHalfClose(t *testing.T) {
	// The backend speaks first and closes its write side; the client can
	// still send, and the backend reads it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	received := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			received <- err.Error()
			return
		}
		defer c.Close()
		c.Write([]byte("hello"))
		c.(*net.TCPConn).CloseWrite()
		b, _ := io.ReadAll(c)
		received <- string(b)
	}()
	_, addr := tcpProxy(t, l.Addr().String())
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	greeting, err := io.ReadAll(c) // ends at the backend's half-close
	if err != nil || string(greeting) != "hello" {
		t.Fatalf("read %q, %v; want hello", greeting, err)
	}
	c.Write([]byte("bye"))
	c.(*net.TCPConn).CloseWrite()
	if got := <-received; got != "bye" {
		t.Fatalf("backend received %q, want bye", got)
	}
}

func TestTCPConcurrent(t *testing.T) {
	_, addr := tcpProxy(t, echoTCP(t))
	const n = 50
	errs := make(chan error, n)
	for i := range n {
		go func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			msg := bytes.Repeat([]byte(fmt.Sprintf("conn %d;", i)), 1000)
			go func() {
				c.Write(msg)
				c.(*net.TCPConn).CloseWrite()
			}()
			got, err := io.ReadAll(c)
			if err == nil && !bytes.Equal(got, msg) {
				err = fmt.Errorf("conn %d: echoed %d bytes, want %d", i, len(got), len(msg))
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestTCPNoBackend(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	_, addr := tcpProxy(t, dead)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if b, err := io.ReadAll(c); len(b) != 0 {
		t.Fatalf("read %q, %v from a proxy without backend; want a closed connection", b, err)
	}
}

func TestTCPCloseEndsEverything(t *testing.T) {
	backend := echoTCP(t)
	before := runtime.NumGoroutine()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := TCP(l, backend)
	// Open connections that are mid-conversation when the proxy closes.
	var conns []net.Conn
	for range 5 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("ping"))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		if b, err := io.ReadAll(c); len(b) != 0 {
			t.Fatalf("read %q, %v after Close; want EOF", b, err)
		}
	}
	if c, err := net.Dial("tcp", l.Addr().String()); err == nil {
		c.Close()
		t.Fatal("listener still accepting after Close")
	}
	// The echo server's handlers end once they see the proxy's FIN; only
	// then is the count comparable.
	settle(t, before)
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// echoUDP answers each datagram with "echo:" and the datagram.
func echoUDP(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, udpBufSize)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte("echo:"), buf[:n]...), from)
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	return pc.LocalAddr().String()
}

func exchangeUDP(t *testing.T, c net.Conn, msg string) string {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestUDPTwoClients(t *testing.T) {
	backend := echoUDP(t)
	before := runtime.NumGoroutine()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := UDP(pc, backend)
	a, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i := range 3 {
		for name, c := range map[string]net.Conn{"a": a, "b": b} {
			msg := fmt.Sprintf("%s%d", name, i)
			if got := exchangeUDP(t, c, msg); got != "echo:"+msg {
				t.Fatalf("client %s got %q, want %q", name, got, "echo:"+msg)
			}
		}
	}
	p.mu.Lock()
	flows := len(p.flows)
	p.mu.Unlock()
	if flows != 2 {
		t.Fatalf("%d flows, want one per client (2)", flows)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	settle(t, before)
}

func TestUDPIdleFlowEnds(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := udpProxy(pc, echoUDP(t), 20*time.Millisecond)
	defer p.Close()
	c, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := exchangeUDP(t, c, "x"); got != "echo:x" {
		t.Fatalf("got %q", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		p.mu.Lock()
		flows := len(p.flows)
		p.mu.Unlock()
		if flows == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("idle flow never ended")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A new datagram from the same client makes a new flow that works.
	if got := exchangeUDP(t, c, "y"); got != "echo:y" {
		t.Fatalf("after idle: got %q", got)
	}
}

// sink reads each connection to EOF, then writes one byte so the writer
// knows everything arrived.
func sink(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(io.Discard, c)
				c.Write([]byte{1})
				c.Close()
			}()
		}
	}()
	b.Cleanup(func() { l.Close() })
	return l.Addr().String()
}

func BenchmarkTCPThroughput(b *testing.B) {
	const chunk = 1 << 20
	run := func(b *testing.B, addr string) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, chunk)
		b.SetBytes(chunk)
		b.ResetTimer()
		for b.Loop() {
			if _, err := c.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		c.(*net.TCPConn).CloseWrite()
		if _, err := io.ReadFull(c, buf[:1]); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("direct", func(b *testing.B) { run(b, sink(b)) })
	b.Run("proxy", func(b *testing.B) {
		_, addr := tcpProxy(b, sink(b))
		run(b, addr)
	})
}
