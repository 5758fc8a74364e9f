package engine

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/vishvananda/netlink"

	"vscript/engine/errdefs"
	"vscript/engine/image"
	"vscript/engine/lab"
	"vscript/engine/network"
)

// These tests drive the network hooks' bookkeeping on an Engine without a
// lab or a kernel: networks and endpoints are made as records, addresses
// set as netStart would. What needs bridges and iptables is tested end to
// end (testdata/script/network_*.txtar) and in engine/nettest.

func netTestEngine(t *testing.T) *Engine {
	t.Helper()
	return &Engine{opts: Options{Seed: "test"}, lab: &lab.Lab{}, count: map[string]int{},
		ctrs: map[string]*container{}, names: map[string]string{}}
}

// netAdd records a user network as NetworkCreate would, minus the kernel.
func netAdd(t *testing.T, e *Engine, name, subnet string, internal bool) *bridgeNet {
	t.Helper()
	e.mu.Lock()
	s := e.netsLocked()
	id := e.newIDLocked("network")
	e.mu.Unlock()
	sub, err := network.ParseSubnet(subnet, "")
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sub, err = s.ipam.AddNetwork(name, sub); err != nil {
		t.Fatal(err)
	}
	n := &bridgeNet{id: id, name: name, sub: sub, bridge: network.BridgeName(id), internal: internal, driver: "bridge"}
	s.nets = append(s.nets, n)
	return n
}

// netCtr creates a container record through netCreate, as create() does.
func netCtr(t *testing.T, e *Engine, name string, spec RunSpec) (*container, error) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	id := e.newIDLocked("container")
	c := &container{id: id, name: name, spec: spec, hostname: id[:12], status: "created",
		img: &image.Image{Config: v1.Config{ExposedPorts: map[string]struct{}{"80/tcp": {}}}}}
	if err := e.netCreate(c); err != nil {
		return nil, err
	}
	e.ctrs[id], e.names[name] = c, id
	e.order = append(e.order, id)
	return c, nil
}

// netUp gives c's endpoints addresses, as attach does.
func netUp(e *Engine, c *container, pid int) {
	s := &e.nets
	s.mu.Lock()
	defer s.mu.Unlock()
	c.net.pid = pid
	for i, ep := range c.net.eps {
		ip, _ := s.ipam.Allocate(ep.net.name, c.name, ep.want)
		ep.ip, ep.ifname, ep.gw = ip, "eth"+string(rune('0'+i)), i == 0
	}
}

func TestNetCreateModes(t *testing.T) {
	e := netTestEngine(t)
	netAdd(t, e, "my_net", "172.86.86.0/24", false)
	netAdd(t, e, "vault", "172.87.0.0/16", true)
	for _, tc := range []struct {
		spec RunSpec
		mode string
		err  string
	}{
		{RunSpec{}, "bridge", ""},
		{RunSpec{Network: "bridge", Ports: []string{"8000:80", "53:53/udp"}}, "bridge", ""},
		{RunSpec{Network: "my_net", Aliases: []string{"db"}, IP: "172.86.86.9"}, "my_net", ""},
		{RunSpec{Network: "none"}, "none", ""},
		{RunSpec{Network: "host"}, "host", ""},
		{RunSpec{Network: "nosuch"}, "", "network nosuch: not found"},
		{RunSpec{Network: "none", Ports: []string{"80"}}, "", "ports cannot be published with network none"},
		{RunSpec{Network: "host", IP: "1.2.3.4"}, "", "aliases and ip apply to a bridge network, not to network host"},
		{RunSpec{Network: "my_net", IP: "172.86.87.9"}, "", "ip 172.86.87.9 is not a free host address of 172.86.86.0/24"},
		{RunSpec{Network: "my_net", IP: "172.86.86.255"}, "", "is not a free host address"},
		{RunSpec{Network: "my_net", IP: "172.86.86.1"}, "", "is not a free host address"},
		{RunSpec{Network: "my_net", IP: "fe80::1"}, "", "is not an IPv4 address"},
		{RunSpec{IP: "172.17.0.9"}, "", "a fixed ip= works only on user-defined networks"},
		{RunSpec{Aliases: []string{"db"}}, "", "aliases work only on user-defined networks"},
		{RunSpec{Network: "my_net", Aliases: []string{"bad alias"}}, "", `invalid alias "bad alias"`},
		{RunSpec{Ports: []string{"70000:80"}}, "", `host port "70000" is not a number`},
		{RunSpec{Network: "vault", Ports: []string{"80"}}, "", "network vault is internal"},
	} {
		c, err := netCtr(t, e, "", tc.spec)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%+v: error %v, want %q", tc.spec, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%+v: %v", tc.spec, err)
		case err == nil && c.net.mode != tc.mode:
			t.Errorf("%+v: mode %q, want %q", tc.spec, c.net.mode, tc.mode)
		}
	}
	// The failed creates left no endpoint on any network.
	for _, n := range e.nets.nets {
		for _, ep := range n.eps {
			if _, ok := e.ctrs[ep.ctr.id]; !ok {
				t.Errorf("network %s keeps an endpoint of a container never made", n.name)
			}
		}
	}
}

func TestNetRemoveForgetsEndpoints(t *testing.T) {
	e := netTestEngine(t)
	n := netAdd(t, e, "my_net", "172.86.86.0/24", false)
	a, _ := netCtr(t, e, "a", RunSpec{Network: "my_net"})
	b, _ := netCtr(t, e, "b", RunSpec{Network: "my_net"})
	e.netRemove(a)
	if len(n.eps) != 1 || n.eps[0].ctr != b || len(a.net.eps) != 0 {
		t.Errorf("after netRemove(a): network has %d endpoints, a has %d", len(n.eps), len(a.net.eps))
	}
}

func TestResolverScope(t *testing.T) {
	e := netTestEngine(t)
	netAdd(t, e, "my_net", "172.86.86.0/24", false)
	netAdd(t, e, "other", "172.87.0.0/16", false)
	a, _ := netCtr(t, e, "bbox1", RunSpec{Network: "my_net"})
	b, _ := netCtr(t, e, "bbox2", RunSpec{Network: "my_net", Aliases: []string{"DB"}})
	o, _ := netCtr(t, e, "far", RunSpec{Network: "other"})
	d, _ := netCtr(t, e, "plain", RunSpec{})
	stopped, _ := netCtr(t, e, "stopped", RunSpec{Network: "my_net"})
	for _, c := range []*container{a, b, o, d} {
		netUp(e, c, 1)
	}
	r := ctrResolver{e, a}
	for name, want := range map[string]string{
		"bbox2":         "172.86.86.3",
		"db":            "172.86.86.3", // aliases, any case (the server lowercases)
		"bbox2.my_net":  "172.86.86.3",
		b.id[:12]:       "172.86.86.3",
		"bbox1":         "172.86.86.2", // itself
		"far":           "",            // another network
		"plain":         "",            // the default bridge
		"stopped":       "",            // no address while stopped
		b.id[:11]:       "",            // only the 12-character short id
		"bbox2.other":   "",
		"world.test":    "",
		stopped.id[:12]: "",
	} {
		ips, found := r.LookupIP(nil, strings.ToLower(name))
		got := ""
		if found {
			got = ips[0].String()
		}
		if got != want || found != (want != "") {
			t.Errorf("LookupIP(%q) = %v %v, want %q", name, ips, found, want)
		}
	}
	if names, ok := r.LookupAddr(nil, net.ParseIP("172.86.86.3")); !ok || !slices.Equal(names, []string{"bbox2.my_net"}) {
		t.Errorf("LookupAddr = %v %v", names, ok)
	}
	// A container on the default bridge resolves nobody.
	if _, found := (ctrResolver{e, d}).LookupIP(nil, "plain"); found {
		t.Error("the default bridge resolved a name")
	}
	if e.embeddedDNS(d) || !e.embeddedDNS(a) {
		t.Errorf("embeddedDNS: default %v, user %v", e.embeddedDNS(d), e.embeddedDNS(a))
	}
}

func TestEtcFiles(t *testing.T) {
	e := netTestEngine(t)
	netAdd(t, e, "my_net", "172.86.86.0/24", false)
	a, _ := netCtr(t, e, "a", RunSpec{Network: "my_net"})
	d, _ := netCtr(t, e, "d", RunSpec{})
	h, _ := netCtr(t, e, "hh", RunSpec{Network: "host"})
	hostResolv := "search lab.test\nnameserver 198.51.100.1\noptions edns0\n"

	if got, want := string(e.resolvConf(a, hostResolv)), "nameserver 127.0.0.11\nsearch lab.test\noptions ndots:0\n"; got != want {
		t.Errorf("user network resolv.conf:\n%s\nwant:\n%s", got, want)
	}
	for _, c := range []*container{d, h} {
		if got := string(e.resolvConf(c, hostResolv)); got != hostResolv {
			t.Errorf("%s resolv.conf:\n%s\nwant the host's", c.net.mode, got)
		}
	}
	// With --host, a bridged container cannot reach the host's loopback
	// resolver: Docker drops it and falls back to public servers.
	if got, want := string(resolvFile("nameserver 127.0.0.53\nsearch x\n", false, true)), "search x\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"; got != want {
		t.Errorf("--host default bridge resolv.conf:\n%s\nwant:\n%s", got, want)
	}
	if got, want := string(resolvFile("nameserver 127.0.0.53\nnameserver 10.0.0.2\n", false, true)), "nameserver 10.0.0.2\n"; got != want {
		t.Errorf("--host resolv.conf with a reachable server: %q, want %q", got, want)
	}

	base := "127.0.0.1\tlocalhost\n"
	if got := string(e.hostsFile(a)); !strings.HasPrefix(got, base) || strings.Contains(got, "172.") {
		t.Errorf("hosts before start:\n%s", got)
	}
	netUp(e, a, 1)
	if got := string(e.hostsFile(a)); !strings.HasSuffix(got, "\n172.86.86.2\t"+a.hostname+"\n") {
		t.Errorf("hosts after start:\n%s", got)
	}
}

func TestNetInspectAndPort(t *testing.T) {
	e := netTestEngine(t)
	n := netAdd(t, e, "my_net", "172.86.86.0/24", false)
	c, err := netCtr(t, e, "web", RunSpec{Network: "my_net", Aliases: []string{"www"}, IP: "172.86.86.10", Ports: []string{"8000:80"}})
	if err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	stopped := e.netInspect(c)
	e.mu.Unlock()
	wantStopped := map[string]any{"IPAddress": "", "Gateway": "", "MacAddress": "", "IPPrefixLen": 0,
		"Aliases": []any{"www", c.id[:12]}, "NetworkID": n.id, "IPAMConfig": map[string]any{"IPv4Address": "172.86.86.10"}}
	if got := stopped["Networks"].(map[string]any)["my_net"]; !reflect.DeepEqual(got, wantStopped) {
		t.Errorf("stopped: %v\nwant %v", got, wantStopped)
	}
	if got := stopped["Ports"].(map[string]any); len(got) != 0 {
		t.Errorf("stopped ports: %v", got)
	}
	if _, err := e.Port("web", "80"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Port of a stopped container: %v", err)
	}

	netUp(e, c, 42)
	b := network.PortBinding{HostIP: netip.IPv4Unspecified(), HostPort: 8000, ContainerPort: 80, Proto: "tcp"}
	e.nets.mu.Lock()
	c.net.pubs = []*published{{b: b, ep: c.net.eps[0]}}
	e.nets.mu.Unlock()
	e.mu.Lock()
	running := e.netInspect(c)
	info := e.infoLocked(c)
	e.mu.Unlock()
	got := running["Networks"].(map[string]any)["my_net"].(map[string]any)
	if got["IPAddress"] != "172.86.86.10" || got["Gateway"] != "172.86.86.1" || got["MacAddress"] != "02:42:ac:56:56:0a" || got["IPPrefixLen"] != 24 {
		t.Errorf("running: %v", got)
	}
	wantPorts := map[string]any{"80/tcp": []any{map[string]any{"HostIp": "0.0.0.0", "HostPort": "8000"}}}
	if !reflect.DeepEqual(running["Ports"], wantPorts) {
		t.Errorf("ports: %v, want %v", running["Ports"], wantPorts)
	}
	if running["IPAddress"] != "" {
		t.Errorf("top-level IPAddress %v: Docker sets it for the default bridge only", running["IPAddress"])
	}
	if want := []NetworkAddr{{Network: "my_net", IP: "172.86.86.10"}}; !reflect.DeepEqual(info.Networks, want) {
		t.Errorf("ContainerInfo.Networks = %v, want %v", info.Networks, want)
	}
	for port, want := range map[string]string{"80": "0.0.0.0:8000", "80/tcp": "0.0.0.0:8000", "80/udp": "", "81": "", "x": ""} {
		got, err := e.Port("web", port)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("Port(%q) = %q, %v; want %q", port, got, err, want)
		}
	}
}

func TestNetworkLookup(t *testing.T) {
	e := netTestEngine(t)
	n := netAdd(t, e, "my_net", "172.86.86.0/24", false)
	for ref, want := range map[string]string{"my_net": "my_net", n.id: "my_net", n.id[:5]: "my_net", "bridge": "bridge",
		"host": "host", "none": "none", e.predefinedID("host"): "host"} {
		info, err := e.Network(ref)
		if err != nil || info.Name != want {
			t.Errorf("Network(%q) = %v, %v; want %s", ref, info, err, want)
		}
	}
	if _, err := e.Network("nosuch"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Network(nosuch): %v", err)
	}
	list, _ := e.Networks()
	var names []string
	for _, i := range list {
		names = append(names, i.Name+"/"+i.Driver)
	}
	if want := []string{"bridge/bridge", "host/host", "none/null", "my_net/bridge"}; !slices.Equal(names, want) {
		t.Errorf("Networks() = %v, want %v", names, want)
	}
	bridge, _ := e.Network("bridge")
	if bridge.Subnet != "172.17.0.0/16" || bridge.Gateway != "172.17.0.1" || bridge.Bridge != "vscript0" || bridge.DNS {
		t.Errorf("default bridge: %+v", bridge)
	}
	for _, ref := range []string{"bridge", "host", "none", e.predefinedID("none")} {
		if err := e.NetworkRemove(context.Background(), ref); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "pre-defined") {
			t.Errorf("NetworkRemove(%s): %v", ref, err)
		}
	}
}

func TestRuleCommands(t *testing.T) {
	rules := []network.Rule{
		{Table: "nat", Chain: "POSTROUTING", Pos: 1, Spec: []string{"-s", "172.18.0.0/16", "!", "-o", "br-x", "-j", "MASQUERADE"}},
		{Table: "filter", Chain: "VSCRIPT", Spec: []string{"-d", "172.18.0.2/32", "-j", "ACCEPT"}},
	}
	add := []string{"iptables -t nat -I POSTROUTING 1 -s 172.18.0.0/16 ! -o br-x -j MASQUERADE", "iptables -A VSCRIPT -d 172.18.0.2/32 -j ACCEPT"}
	del := []string{"iptables -D VSCRIPT -d 172.18.0.2/32 -j ACCEPT", "iptables -t nat -D POSTROUTING -s 172.18.0.0/16 ! -o br-x -j MASQUERADE"}
	if got := ruleCommands(rules, false); !slices.Equal(got, add) {
		t.Errorf("add: %q", got)
	}
	if got := ruleCommands(rules, true); !slices.Equal(got, del) {
		t.Errorf("delete: %q", got)
	}
}

func TestCleanScript(t *testing.T) {
	dead := []labelled{{link: &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br-dead00000000"}}, subnets: []netip.Prefix{netip.MustParsePrefix("172.30.0.0/16")}}}
	nat := `# Generated by iptables-save
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [3:180]
:VSCRIPT - [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j VSCRIPT
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.30.0.0/16 ! -o br-dead00000000 -j MASQUERADE
-A POSTROUTING -s 172.31.0.0/16 ! -o br-live00000000 -j MASQUERADE
-A POSTROUTING -s 172.30.0.2/32 -d 172.30.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A VSCRIPT -i br-dead00000000 -j RETURN
-A VSCRIPT -i br-live00000000 -j RETURN
-A VSCRIPT ! -i br-dead00000000 -p tcp -m tcp --dport 8000 -j DNAT --to-destination 172.30.0.2:80
COMMIT
`
	// Another lab still runs: only the dead bridge's rules go, the chains stay.
	script, cmds := cleanScript("nat", nat, dead, false)
	want := []string{
		"iptables -t nat -D POSTROUTING -s 172.30.0.0/16 ! -o br-dead00000000 -j MASQUERADE",
		"iptables -t nat -D POSTROUTING -s 172.30.0.2/32 -d 172.30.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE",
		"iptables -t nat -D VSCRIPT -i br-dead00000000 -j RETURN",
		"iptables -t nat -D VSCRIPT ! -i br-dead00000000 -p tcp -m tcp --dport 8000 -j DNAT --to-destination 172.30.0.2:80",
	}
	if !slices.Equal(cmds, want) {
		t.Errorf("with a live lab:\n%s\nwant:\n%s", strings.Join(cmds, "\n"), strings.Join(want, "\n"))
	}
	if !strings.HasPrefix(script, "*nat\n-D POSTROUTING -s 172.30.0.0/16") || !strings.HasSuffix(script, "COMMIT\n") {
		t.Errorf("restore input:\n%s", script)
	}
	// The last lab is gone: the jumps and the chains go too; Docker's stay.
	_, cmds = cleanScript("nat", nat, dead, true)
	want = []string{
		"iptables -t nat -D PREROUTING -m addrtype --dst-type LOCAL -j VSCRIPT",
		"iptables -t nat -D POSTROUTING -s 172.30.0.0/16 ! -o br-dead00000000 -j MASQUERADE",
		"iptables -t nat -D POSTROUTING -s 172.30.0.2/32 -d 172.30.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE",
		"iptables -t nat -F VSCRIPT",
		"iptables -t nat -X VSCRIPT",
	}
	if !slices.Equal(cmds, want) {
		t.Errorf("last lab:\n%s\nwant:\n%s", strings.Join(cmds, "\n"), strings.Join(want, "\n"))
	}
}
