package network

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPacketPaths builds a small lab in a namespace of its own and sends
// traffic along each path the rules are for: a world host on an uplink
// bridge, two user networks and an internal one, containers that are
// processes in namespaces of their own. All addresses belong to namespaces
// this test created.
func TestPacketPaths(t *testing.T) {
	if !inNetns(t) {
		return
	}
	needBusybox(t)
	l, err := NewLinks()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f := newFirewall(t)

	// The world: httpd answering /cgi-bin/ip with the client's address.
	worldDir := t.TempDir()
	mustWrite(t, filepath.Join(worldDir, "cgi-bin", "ip"), 0o755,
		"#!/bin/busybox sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n%s\\n' \"$REMOTE_ADDR\"\n")
	// An IPv4 socket, so REMOTE_ADDR is not an IPv4-mapped IPv6 address.
	world := startInNetns(t, busybox, "httpd", "-f", "-p", "0.0.0.0:80", "-h", worldDir)
	uplink := netip.MustParsePrefix("198.51.100.2/24")
	if _, err := l.CreateBridge("br-world", uplink); err != nil {
		t.Fatal(err)
	}
	attach(t, l, "world", "uplink", "br-world", world, "198.51.100.1/24", netip.Addr{})

	// Networks: bridge + firewall rules, as the engine will make them.
	for _, n := range []BridgeNet{userNetA, userNetB, internal} {
		gw := netip.PrefixFrom(n.Subnet.Addr().Next(), n.Subnet.Bits())
		if _, err := l.CreateBridge(n.Bridge, gw); err != nil {
			t.Fatal(err)
		}
		if _, err := f.AddNetwork(n); err != nil {
			t.Fatal(err)
		}
	}
	webDir := t.TempDir()
	mustWrite(t, filepath.Join(webDir, "index.html"), 0o644, "It works!\n")
	web := startInNetns(t, busybox, "httpd", "-f", "-p", "80", "-h", webDir)
	client := startInNetns(t, busybox, "sleep", "30")
	other := startInNetns(t, busybox, "sleep", "30")
	vault := startInNetns(t, busybox, "sleep", "30")
	attach(t, l, "web", userNetA.Name, userNetA.Bridge, web, "172.18.0.2/16", netip.MustParseAddr("172.18.0.1"))
	attach(t, l, "client", userNetA.Name, userNetA.Bridge, client, "172.18.0.3/16", netip.MustParseAddr("172.18.0.1"))
	attach(t, l, "other", userNetB.Name, userNetB.Bridge, other, "172.19.0.2/16", netip.MustParseAddr("172.19.0.1"))
	attach(t, l, "vault", internal.Name, internal.Bridge, vault, "172.20.0.2/16", netip.MustParseAddr("172.20.0.1"))
	published := port(userNetA.Bridge, "172.18.0.2", "tcp", "0.0.0.0", 8080, 80)
	if _, err := f.AddPort(published); err != nil {
		t.Fatal(err)
	}

	run := func(pid int, argv ...string) (string, error) {
		out, err := inContainer(t, pid, argv...)
		return strings.TrimSpace(string(out)), err
	}
	// busybox wget crashes in Debian's static build; nc speaks HTTP/1.0 well
	// enough. The body is what follows the blank line.
	get := func(pid int, addr, path string) (string, error) {
		host, port, _ := strings.Cut(addr, ":")
		if port == "" {
			port = "80"
		}
		out, err := inContainerStdin(t, pid, "GET "+path+" HTTP/1.0\r\n\r\n", busybox, "nc", "-w", "1", host, port)
		if err != nil {
			return "", fmt.Errorf("%w: %s", err, out)
		}
		_, body, ok := strings.Cut(string(out), "\r\n\r\n")
		if !ok {
			return "", fmt.Errorf("no HTTP response: %q", out)
		}
		return strings.TrimSpace(body), nil
	}

	t.Run("same network", func(t *testing.T) {
		if out, err := run(client, busybox, "ping", "-c1", "-W1", "172.18.0.2"); err != nil {
			t.Errorf("client -> web: %v\n%s", err, out)
		}
	})
	t.Run("isolation", func(t *testing.T) {
		if out, err := run(other, busybox, "ping", "-c1", "-W1", "172.18.0.2"); err == nil {
			t.Errorf("other network -> web got through:\n%s", out)
		}
	})
	t.Run("outbound masquerade", func(t *testing.T) {
		got, err := eventually(func() (string, error) { return get(client, "198.51.100.1", "/cgi-bin/ip") })
		if err != nil || got != "198.51.100.2" {
			t.Errorf("the world saw the client as %q (%v), want the lab host 198.51.100.2", got, err)
		}
	})
	t.Run("internal has no way out", func(t *testing.T) {
		if out, err := get(vault, "198.51.100.1", "/cgi-bin/ip"); err == nil {
			t.Errorf("internal network reached the world: %s", out)
		}
	})
	t.Run("inbound dnat from the world", func(t *testing.T) {
		got, err := eventually(func() (string, error) { return get(world, "198.51.100.2:8080", "/") })
		if err != nil || got != "It works!" {
			t.Errorf("world -> lab host:8080 = %q, %v", got, err)
		}
	})
	t.Run("dnat from the lab host itself", func(t *testing.T) {
		c := http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get("http://172.18.0.1:8080/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.TrimSpace(string(body)) != "It works!" {
			t.Errorf("lab host -> 172.18.0.1:8080 = %q", body)
		}
	})
	t.Run("removed port is closed", func(t *testing.T) {
		if _, err := f.RemovePort(published); err != nil {
			t.Fatal(err)
		}
		if out, err := get(world, "198.51.100.2:8080", "/"); err == nil {
			t.Errorf("world still reaches the unpublished port: %s", out)
		}
	})
}

func attach(t *testing.T, l *Links, cid, nid, bridge string, pid int, addr string, gw netip.Addr) {
	t.Helper()
	_, _, err := l.Attach(Endpoint{ContainerID: cid, NetworkID: nid, Bridge: bridge, Pid: pid, IfName: "eth0",
		Addr: netip.MustParsePrefix(addr), Gateway: gw, DefaultRoute: gw.IsValid()})
	if err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, path string, mode os.FileMode, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// eventually retries fn while a just-started server may not listen yet.
func eventually(fn func() (string, error)) (string, error) {
	var out string
	var err error
	for range 40 {
		if out, err = fn(); err == nil {
			return out, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return out, err
}
