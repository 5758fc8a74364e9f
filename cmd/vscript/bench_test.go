package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"
)

// buildVscript builds the real binary once per benchmark run, so figures are
// those of what users run, not of the test binary.
func buildVscript(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "vscript")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// benchScript runs `vscript script` b.N times and reports the median and
// worst wall time and the peak RSS of vscript (the larger of the launcher
// and the lab process).
func benchScript(b *testing.B, src string) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	bin := buildVscript(b)
	dir := b.TempDir()
	script := filepath.Join(dir, "lab.star")
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		b.Fatal(err)
	}
	root := filepath.Join(dir, "root")
	var times []time.Duration
	var peak int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(bin, "--root", root, script)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		times = append(times, time.Since(start))
		if err != nil {
			b.Fatalf("%v\n%s", err, out)
		}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > peak {
			peak = ru.Maxrss
		}
	}
	b.StopTimer()
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(times[0].Microseconds())/1000, "min-ms")
	b.ReportMetric(float64(times[len(times)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(peak)/1024, "peak-RSS-MiB")
}

// BenchmarkEmptyLab: re-exec, namespaces, world up, teardown.
// Goal (issue 2): median ≤ 25 ms, peak RSS ≤ 30 MiB.
func BenchmarkEmptyLab(b *testing.B) { benchScript(b, "pass\n") }

// BenchmarkWorldRoundTrip: an empty lab plus one HTTP GET to the world.
func BenchmarkWorldRoundTrip(b *testing.B) {
	benchScript(b, "http_get(\"http://198.51.100.1/\")\n")
}
