package network

import (
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"vscript/engine/errdefs"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

var (
	defaultNet = BridgeNet{Name: "bridge", Bridge: DefaultBridgeName, Subnet: DefaultBridgeSubnet, ICC: true}
	userNetA   = BridgeNet{Name: "frontend", Bridge: "br-3f1a2b4c5d6e", Subnet: netip.MustParsePrefix("172.18.0.0/16"), ICC: true}
	userNetB   = BridgeNet{Name: "backend", Bridge: "br-9e8d7c6b5a40", Subnet: netip.MustParsePrefix("172.19.0.0/16"), ICC: true}
	internal   = BridgeNet{Name: "vault", Bridge: "br-0a0b0c0d0e0f", Subnet: netip.MustParsePrefix("172.20.0.0/16"), Internal: true, ICC: true}
	noICC      = BridgeNet{Name: "quiet", Bridge: "br-5555aaaa6666", Subnet: netip.MustParsePrefix("172.21.0.0/16"), ICC: false}
)

func port(br, cip, proto, hip string, hp, cp uint16) PublishedPort {
	return PublishedPort{Bridge: br, ContainerIP: netip.MustParseAddr(cip), Proto: proto,
		HostIP: netip.MustParseAddr(hip), HostPort: hp, ContainerPort: cp}
}

var scenarios = []struct {
	name string
	rs   Ruleset
}{
	{"default-bridge", Ruleset{ForwardPolicy: "DROP", Networks: []BridgeNet{defaultNet}}},
	{"user-net", Ruleset{ForwardPolicy: "DROP", Networks: []BridgeNet{defaultNet, userNetA}}},
	{"two-user-nets", Ruleset{ForwardPolicy: "DROP", Networks: []BridgeNet{defaultNet, userNetA, userNetB}}},
	{"internal-net", Ruleset{ForwardPolicy: "DROP", Networks: []BridgeNet{defaultNet, internal}}},
	{"icc-disabled", Ruleset{ForwardPolicy: "DROP", Networks: []BridgeNet{defaultNet, noICC, userNetA}}},
	{"published-ports", Ruleset{ForwardPolicy: "DROP", Networks: []BridgeNet{defaultNet, userNetA}, Ports: []PublishedPort{
		port(DefaultBridgeName, "172.17.0.2", "tcp", "0.0.0.0", 8000, 80),
		port(DefaultBridgeName, "172.17.0.2", "tcp", "127.0.0.1", 8081, 80), // shares the ACCEPT and hairpin rules
		port(DefaultBridgeName, "172.17.0.3", "udp", "0.0.0.0", 53, 53),
		port(userNetA.Bridge, "172.18.0.2", "tcp", "0.0.0.0", 32768, 80),
	}}},
}

func TestRulesetGolden(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			got, err := sc.rs.Save()
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", sc.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("Save() differs from %s (-update rewrites it):\n%s", path, diffLines(string(want), got))
			}
		})
	}
}

// diffLines shows the lines only one side has, enough to spot a misplaced rule.
func diffLines(want, got string) string {
	var b strings.Builder
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want " + wl + "\n  got  " + gl + "\n")
		}
	}
	return b.String()
}

// The layout must be the same whatever order networks and ports were
// interleaved in: network rules go to fixed places near the top of their
// chains, port rules to the ends.
func TestRulesetOrderOfPortsAndNetworks(t *testing.T) {
	rs := scenarios[len(scenarios)-1].rs
	want, err := rs.Save()
	if err != nil {
		t.Fatal(err)
	}
	// Replay: default bridge, its ports, then the user network and its port.
	ops := baseOps(nil, "DROP")
	l := ledger{}
	ops = append(ops, l.add(NetworkRules(defaultNet))...)
	for _, p := range rs.Ports[:3] {
		ops = append(ops, l.add(PortRules(p))...)
	}
	ops = append(ops, l.add(NetworkRules(userNetA))...)
	ops = append(ops, l.add(PortRules(rs.Ports[3]))...)
	m := newModel()
	for _, o := range ops {
		if err := m.apply(o); err != nil {
			t.Fatal(err)
		}
	}
	if got := m.save(TableFilter) + m.save(TableNAT); got != want {
		t.Errorf("interleaved order gives a different layout:\n%s", diffLines(want, got))
	}
}

func TestLedgerSharedRules(t *testing.T) {
	l := ledger{}
	p1 := port("br-x", "172.18.0.2", "tcp", "0.0.0.0", 8000, 80)
	p2 := port("br-x", "172.18.0.2", "tcp", "127.0.0.1", 8001, 80)
	if n := len(l.add(PortRules(p1))); n != 3 {
		t.Errorf("first port adds %d rules, want 3", n)
	}
	if n := len(l.add(PortRules(p2))); n != 1 {
		t.Errorf("second port of the same container port adds %d rules, want 1 (its DNAT)", n)
	}
	del := l.remove(PortRules(p1))
	if len(del) != 1 || !strings.Contains(del[0].command(), "--dport 8000 -j DNAT") {
		t.Errorf("removing the first port deletes %v, want only its DNAT", commands(del))
	}
	del = l.remove(PortRules(p2))
	if len(del) != 3 {
		t.Errorf("removing the last port deletes %d rules, want 3", len(del))
	}
	if len(l) != 0 {
		t.Errorf("ledger not empty: %v", l)
	}
}

func TestNetworkCommands(t *testing.T) {
	l := ledger{}
	got := commands(l.add(NetworkRules(userNetA)))
	want := []string{
		"iptables -t nat -I POSTROUTING 1 -s 172.18.0.0/16 ! -o br-3f1a2b4c5d6e -j MASQUERADE",
		"iptables -t nat -I VSCRIPT 1 -i br-3f1a2b4c5d6e -j RETURN",
		"iptables -I FORWARD 3 -i br-3f1a2b4c5d6e -o br-3f1a2b4c5d6e -j ACCEPT",
		"iptables -I FORWARD 3 -i br-3f1a2b4c5d6e ! -o br-3f1a2b4c5d6e -j ACCEPT",
		"iptables -I FORWARD 3 -o br-3f1a2b4c5d6e -j VSCRIPT",
		"iptables -I FORWARD 3 -o br-3f1a2b4c5d6e -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
		"iptables -I VSCRIPT-ISOLATION-STAGE-1 1 -i br-3f1a2b4c5d6e ! -o br-3f1a2b4c5d6e -j VSCRIPT-ISOLATION-STAGE-2",
		"iptables -I VSCRIPT-ISOLATION-STAGE-2 1 -o br-3f1a2b4c5d6e -j DROP",
	}
	if !slices.Equal(got, want) {
		t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	got = commands(l.remove(NetworkRules(userNetA)))
	if len(got) != len(want) || got[0] != "iptables -D VSCRIPT-ISOLATION-STAGE-2 -o br-3f1a2b4c5d6e -j DROP" {
		t.Errorf("remove commands: %v", got)
	}
	got = commands(l.add(PortRules(port("br-x", "172.18.0.2", "udp", "127.0.0.1", 5353, 53))))
	want = []string{
		"iptables -t nat -A VSCRIPT -d 127.0.0.1/32 ! -i br-x -p udp -m udp --dport 5353 -j DNAT --to-destination 172.18.0.2:53",
		"iptables -A VSCRIPT -d 172.18.0.2/32 ! -i br-x -o br-x -p udp -m udp --dport 53 -j ACCEPT",
		"iptables -t nat -A POSTROUTING -s 172.18.0.2/32 -d 172.18.0.2/32 -p udp -m udp --dport 53 -j MASQUERADE",
	}
	if !slices.Equal(got, want) {
		t.Errorf("port commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestRestoreScript(t *testing.T) {
	ops := baseOps(map[string]bool{Rule{Table: TableFilter, Chain: ChainUser}.key(): true}, "DROP")
	script, lines := restoreScript(ops)
	want := `*filter
:VSCRIPT - [0:0]
:VSCRIPT-ISOLATION-STAGE-1 - [0:0]
:VSCRIPT-ISOLATION-STAGE-2 - [0:0]
:FORWARD DROP [0:0]
-I FORWARD 1 -j VSCRIPT-USER
-I FORWARD 2 -j VSCRIPT-ISOLATION-STAGE-1
-A VSCRIPT-ISOLATION-STAGE-1 -j RETURN
-A VSCRIPT-ISOLATION-STAGE-2 -j RETURN
-A VSCRIPT-USER -j RETURN
COMMIT
*nat
:VSCRIPT - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j VSCRIPT
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j VSCRIPT
COMMIT
`
	if script != want {
		t.Errorf("script:\n%s\nwant:\n%s", script, want)
	}
	if n := strings.Count(script, "\n"); n != len(lines) {
		t.Fatalf("%d lines, %d line ops", n, len(lines))
	}
	if lines[0] != nil || lines[1].command() != "iptables -N VSCRIPT" || lines[12].command() != "iptables -t nat -N VSCRIPT" {
		t.Errorf("line ops do not follow the script")
	}
}

func TestRulesetErrors(t *testing.T) {
	tests := []struct {
		rs    Ruleset
		class error
		text  string
	}{
		{Ruleset{Ports: []PublishedPort{port("br-x", "172.18.0.2", "tcp", "0.0.0.0", 80, 80)}},
			errdefs.ErrNotFound, "port 0.0.0.0:80->172.18.0.2:80/tcp: no network on bridge br-x"},
		{Ruleset{Networks: []BridgeNet{internal}, Ports: []PublishedPort{port(internal.Bridge, "172.20.0.2", "tcp", "0.0.0.0", 80, 80)}},
			errdefs.ErrInvalid, "network vault is internal"},
		{Ruleset{Networks: []BridgeNet{defaultNet}, Ports: []PublishedPort{port(DefaultBridgeName, "172.17.0.2", "sctp", "0.0.0.0", 80, 80)}},
			errdefs.ErrInvalid, "protocol must be tcp or udp"},
		{Ruleset{Networks: []BridgeNet{defaultNet}, Ports: []PublishedPort{port(DefaultBridgeName, "172.17.0.2", "tcp", "0.0.0.0", 0, 80)}},
			errdefs.ErrInvalid, "ports must be 1-65535"},
		{Ruleset{Networks: []BridgeNet{{Name: "x", Bridge: "much-too-long-bridge", Subnet: DefaultBridgeSubnet}}},
			errdefs.ErrInvalid, "bad bridge name"},
		{Ruleset{Networks: []BridgeNet{{Name: "x", Bridge: "br-x", Subnet: netip.MustParsePrefix("172.17.0.1/16")}}},
			errdefs.ErrInvalid, "bad subnet"},
	}
	for _, tt := range tests {
		_, err := tt.rs.Save()
		if !errors.Is(err, tt.class) || !strings.Contains(err.Error(), tt.text) {
			t.Errorf("Save() error = %v, want %v containing %q", err, tt.class, tt.text)
		}
	}
}
