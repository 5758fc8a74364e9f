package network

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-iptables/iptables"

	"vscript/engine/errdefs"
)

func newFirewall(t testing.TB) *Firewall {
	t.Helper()
	f, err := NewFirewall()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// checkTables compares the kernel's tables with what the firewall's ruleset
// says they should be.
func checkTables(t *testing.T, f *Firewall, when string) {
	t.Helper()
	want, err := f.Ruleset().Save()
	if err != nil {
		t.Fatal(err)
	}
	filter, err := f.Save(TableFilter)
	if err != nil {
		t.Fatal(err)
	}
	nat, err := f.Save(TableNAT)
	if err != nil {
		t.Fatal(err)
	}
	if got := filter + nat; got != want {
		t.Errorf("%s: kernel tables differ from the ruleset:\n%s\nkernel:\n%s", when, diffLines(want, got), got)
	}
}

func TestFirewall(t *testing.T) {
	if !inNetns(t) {
		return
	}
	f := newFirewall(t)
	lines, err := f.AddNetwork(defaultNet)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"iptables -N VSCRIPT", "iptables -P FORWARD DROP", "sysctl -w net.ipv4.ip_forward=1",
		"iptables -t nat -I POSTROUTING 1 -s 172.17.0.0/16 ! -o vscript0 -j MASQUERADE"} {
		if !slices.Contains(lines, want) {
			t.Errorf("first AddNetwork lines lack %q:\n%s", want, strings.Join(lines, "\n"))
		}
	}
	if fwd, _ := os.ReadFile(ipForwardPath); strings.TrimSpace(string(fwd)) != "1" {
		t.Errorf("ip_forward = %q, want 1", fwd)
	}
	checkTables(t, f, "default bridge")

	for _, n := range []BridgeNet{userNetA, userNetB, internal, noICC} {
		lines, err := f.AddNetwork(n)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(lines, "iptables -N VSCRIPT") {
			t.Errorf("AddNetwork(%s) set up the base again", n.Name)
		}
	}
	ports := []PublishedPort{
		port(DefaultBridgeName, "172.17.0.2", "tcp", "0.0.0.0", 8000, 80),
		port(DefaultBridgeName, "172.17.0.2", "tcp", "127.0.0.1", 8081, 80),
		port(DefaultBridgeName, "172.17.0.3", "udp", "0.0.0.0", 53, 53),
		port(userNetA.Bridge, "172.18.0.2", "tcp", "0.0.0.0", 32768, 80),
	}
	// A container's ports come in one call, one iptables-restore run.
	if _, err := f.AddPort(ports[:3]...); err != nil {
		t.Fatal(err)
	}
	if _, err := f.AddPort(ports[3]); err != nil {
		t.Fatal(err)
	}
	checkTables(t, f, "five networks and four ports")

	// Go's own iptables client reads the same rules back.
	ipt, err := iptables.New()
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := ipt.Exists("nat", ChainVScript, "!", "-i", DefaultBridgeName, "-p", "tcp", "--dport", "8000",
		"-j", "DNAT", "--to-destination", "172.17.0.2:80"); !ok || err != nil {
		t.Errorf("DNAT rule for 8000 not found by go-iptables: %v %v", ok, err)
	}

	// Errors leave the tables alone.
	if _, err := f.AddNetwork(userNetA); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("AddNetwork twice: %v, want ErrConflict", err)
	}
	if _, err := f.AddPort(ports[0]); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("AddPort twice: %v, want ErrConflict", err)
	}
	if _, err := f.AddPort(port("br-nope", "10.0.0.2", "tcp", "0.0.0.0", 1, 1)); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("AddPort on an unknown bridge: %v, want ErrNotFound", err)
	}
	if _, err := f.AddPort(port(internal.Bridge, "172.20.0.2", "tcp", "0.0.0.0", 9000, 80)); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("AddPort on an internal network: %v, want ErrInvalid", err)
	}
	if _, err := f.RemoveNetwork("bridge"); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("RemoveNetwork with published ports: %v, want ErrConflict", err)
	}
	fresh := port(DefaultBridgeName, "172.17.0.4", "tcp", "0.0.0.0", 9090, 90)
	if _, err := f.AddPort(fresh, ports[1]); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("AddPort with one port already published: %v, want ErrConflict", err)
	}
	if _, err := f.AddPort(fresh, fresh); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("AddPort with a port twice: %v, want ErrConflict", err)
	}
	if _, err := f.RemovePort(ports[1], fresh); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("RemovePort with an unpublished port: %v, want ErrNotFound", err)
	}
	if _, err := f.RemovePort(port(DefaultBridgeName, "172.17.0.9", "tcp", "0.0.0.0", 1, 1)); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("RemovePort of an unknown port: %v, want ErrNotFound", err)
	}
	checkTables(t, f, "after refused changes")

	// The two ports of 172.17.0.2:80 share rules; removing one keeps them.
	lines, err = f.RemovePort(ports[0])
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"iptables -t nat -D VSCRIPT ! -i vscript0 -p tcp -m tcp --dport 8000 -j DNAT --to-destination 172.17.0.2:80"}
	if !slices.Equal(lines, want) {
		t.Errorf("RemovePort lines = %q, want %q", lines, want)
	}
	checkTables(t, f, "one shared port removed")

	if _, err := f.RemovePort(ports[1:]...); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"backend", "vault", "frontend", "quiet", "bridge"} {
		if _, err := f.RemoveNetwork(n); err != nil {
			t.Fatal(err)
		}
		checkTables(t, f, "network "+n+" removed")
	}
	// With everything gone only the base is left, exactly.
	base, _ := Ruleset{ForwardPolicy: "DROP"}.Save()
	if got := mustSave(t, f); got != base {
		t.Errorf("after removing everything:\n%s\nwant:\n%s", got, base)
	}

	// A second firewall in the same namespace (a restarted engine) finds the
	// base in place and adds nothing.
	g := newFirewall(t)
	if lines, err := g.Setup(); err != nil || len(lines) != 0 {
		t.Errorf("second Setup = %q, %v; want no changes", lines, err)
	}
	if got := mustSave(t, g); got != base {
		t.Errorf("second Setup changed the tables:\n%s", got)
	}
	checkTables(t, g, "second firewall")
}

func mustSave(t *testing.T, f *Firewall) string {
	t.Helper()
	filter, err := f.Save(TableFilter)
	if err != nil {
		t.Fatal(err)
	}
	nat, err := f.Save(TableNAT)
	if err != nil {
		t.Fatal(err)
	}
	return filter + nat
}

// When the kernel refuses a change, the whole batch is left out and the
// error names the iptables command that failed.
func TestFirewallFailedChangeIsAtomic(t *testing.T) {
	if !inNetns(t) {
		return
	}
	f := newFirewall(t)
	if _, err := f.AddNetwork(userNetA); err != nil {
		t.Fatal(err)
	}
	// Someone deletes one of the network's rules behind the firewall's back.
	ipt, err := iptables.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := ipt.Delete("filter", "FORWARD", "-o", userNetA.Bridge, "-j", ChainVScript); err != nil {
		t.Fatal(err)
	}
	before := mustSave(t, f)
	_, err = f.RemoveNetwork(userNetA.Name)
	if err == nil {
		t.Fatal("RemoveNetwork succeeded with a rule missing")
	}
	if !strings.HasPrefix(err.Error(), "network frontend: iptables-restore: ") ||
		!strings.Contains(err.Error(), "(iptables -D FORWARD -o br-3f1a2b4c5d6e -j VSCRIPT)") {
		t.Errorf("error = %q, want it to name the failing command", err)
	}
	if after := mustSave(t, f); after != before {
		t.Errorf("a failed RemoveNetwork changed the tables:\n%s", diffLines(before, after))
	}
	// The firewall still owns the network; its rules are still counted.
	if rs := f.Ruleset(); len(rs.Networks) != 1 {
		t.Errorf("Ruleset networks after a failed removal = %v", rs.Networks)
	}
}
