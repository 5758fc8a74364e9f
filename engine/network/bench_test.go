package network

import (
	"net/netip"
	"testing"

	"github.com/coreos/go-iptables/iptables"
)

// Benchmarks run in the test binary's private network namespace (see
// TestMain) and undo each iteration's changes with the timer stopped.

var benchNet = BridgeNet{Name: "bench", Bridge: "br-bench0000000", Subnet: netip.MustParsePrefix("172.30.0.0/16"), ICC: true}

func benchSetup(b *testing.B) (*Links, *Firewall) {
	b.Helper()
	needPrivateNetns(b)
	l, err := NewLinks()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(l.Close)
	f := newFirewall(b)
	if _, err := f.Setup(); err != nil { // once per lab, not per network
		b.Fatal(err)
	}
	return l, f
}

// BenchmarkNetworkCreate is `network create` below the facade: the bridge
// with its address, and the network's iptables rules.
func BenchmarkNetworkCreate(b *testing.B) {
	l, f := benchSetup(b)
	gw := netip.MustParsePrefix("172.30.0.1/16")
	for b.Loop() {
		if _, err := l.CreateBridge(benchNet.Bridge, gw); err != nil {
			b.Fatal(err)
		}
		if _, err := f.AddNetwork(benchNet); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if _, err := f.RemoveNetwork(benchNet.Name); err != nil {
			b.Fatal(err)
		}
		if _, err := l.DeleteBridge(benchNet.Bridge); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkNetworkRules compares the two ways to install a network's eight
// rules: one iptables-restore run (what Firewall does) against one iptables
// process per rule through go-iptables.
func BenchmarkNetworkRules(b *testing.B) {
	_, f := benchSetup(b)
	b.Run("iptables-restore", func(b *testing.B) {
		for b.Loop() {
			if _, err := f.AddNetwork(benchNet); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if _, err := f.RemoveNetwork(benchNet.Name); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
	b.Run("go-iptables", func(b *testing.B) {
		ipt, err := iptables.New()
		if err != nil {
			b.Fatal(err)
		}
		rules := NetworkRules(benchNet)
		for b.Loop() {
			for _, r := range rules {
				if r.Pos > 0 {
					err = ipt.Insert(r.Table, r.Chain, r.Pos, r.Spec...)
				} else {
					err = ipt.Append(r.Table, r.Chain, r.Spec...)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			for _, r := range rules {
				if err := ipt.Delete(r.Table, r.Chain, r.Spec...); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
		}
	})
}

// BenchmarkAttach is connecting a running container to a network: a veth
// pair into the container's namespace, configured from outside.
func BenchmarkAttach(b *testing.B) {
	l, _ := benchSetup(b)
	needBusybox(b)
	gw := netip.MustParsePrefix("172.30.0.1/16")
	if _, err := l.CreateBridge(benchNet.Bridge, gw); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.DeleteBridge(benchNet.Bridge) })
	pid := startInNetns(b, busybox, "sleep", "300")
	ep := Endpoint{ContainerID: "c", NetworkID: "n", Bridge: benchNet.Bridge, Pid: pid, IfName: "eth0",
		Addr: netip.MustParsePrefix("172.30.0.2/16"), Gateway: gw.Addr(), DefaultRoute: true}
	for b.Loop() {
		host, _, err := l.Attach(ep)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if _, err := l.DeleteLinks(host); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
