package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// benchSuite is eight small scenario tests of the kind a CI pipeline runs:
// each in its own lab, touching the lab host and the world.
const benchSuite = `
host.exec("ip link add br-setup type bridge", check = True)

def test_setup_seen():
    assert.true(host.exec("ip link show br-setup").ok)

def test_same_bridge_name():
    host.exec("ip link add br-same type bridge", check = True)

def test_world_http():
    assert.eq(http_get("http://198.51.100.1/").body.strip(), "198.51.100.2")

def test_world_dns():
    assert.eq(host.exec("getent hosts www.world.test").ok, True)

def test_host_ip():
    assert.eq(host.ip, "198.51.100.2")

def test_nat_table():
    host.exec("iptables -t nat -A POSTROUTING -s 10.99.0.0/16 -j MASQUERADE", check = True)
    assert.contains(host.iptables("nat"), "MASQUERADE")

def test_wait_for():
    host.exec("touch /run/vscript/flag")
    wait_for(lambda: host.exec("test -e /run/vscript/flag").ok)

def test_sleep():
    sleep("10ms")
`

// BenchmarkVscriptTest runs `vscript test` over eight scenario tests, one
// at a time (-j 1) and two at a time (-j 2, the CI machine's cores), and
// reports the wall time of the whole run.
func BenchmarkVscriptTest(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	bin := buildVscript(b)
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bench_test.star"), []byte(benchSuite), 0o644); err != nil {
		b.Fatal(err)
	}
	root := filepath.Join(dir, "root")
	for _, jobs := range []int{1, 2} {
		b.Run(fmt.Sprintf("j%d", jobs), func(b *testing.B) {
			var times []time.Duration
			for i := 0; i < b.N; i++ {
				cmd := exec.Command(bin, "--root", root, "test", "-j", fmt.Sprint(jobs), dir)
				start := time.Now()
				out, err := cmd.CombinedOutput()
				times = append(times, time.Since(start))
				if err != nil || !strings.Contains(string(out), "8 passed, 0 failed") {
					b.Fatalf("%v\n%s", err, out)
				}
			}
			b.StopTimer()
			sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
			b.ReportMetric(float64(times[0].Microseconds())/1000, "min-ms")
			b.ReportMetric(float64(times[len(times)-1].Microseconds())/1000, "max-ms")
		})
	}
}
