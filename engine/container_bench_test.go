package engine

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// benchEngine is a whole engine on the "real host" of the test's private
// namespaces (see TestMain).
func benchEngine(b *testing.B) *Engine {
	b.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			b.Fatal("needs root")
		}
		b.Skip("needs root")
	}
	e, err := New(Options{Root: filepath.Join(b.TempDir(), "root"), Host: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	return e
}

// reportTimes adds the median, min and max of times to b's figures.
func reportTimes(b *testing.B, times []time.Duration) {
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(times[len(times)/2]), "median-ms")
	b.ReportMetric(ms(times[0]), "min-ms")
	b.ReportMetric(ms(times[len(times)-1]), "max-ms")
}

// BenchmarkContainerRunNone: run("busybox", ["true"], network="none") to exit
// — create, start, wait — and rm. Goal (issue 3): median ≤ 8 ms.
func BenchmarkContainerRunNone(b *testing.B) {
	e := benchEngine(b)
	ctx := context.Background()
	spec := RunSpec{Image: "busybox", Cmd: []string{"true"}, Network: "none"}
	e.Image("busybox") // made once, outside the timing
	var times []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		info, err := e.Create(ctx, spec)
		if err != nil {
			b.Fatal(err)
		}
		if err := e.Start(ctx, info.ID); err != nil {
			b.Fatal(err)
		}
		if code, err := e.Wait(ctx, info.ID); err != nil || code != 0 {
			b.Fatalf("exit %d, %v", code, err)
		}
		times = append(times, time.Since(start))
		b.StopTimer()
		e.Remove(ctx, info.ID, true, true)
		b.StartTimer()
	}
	b.StopTimer()
	reportTimes(b, times)
}

// BenchmarkContainerExec: exec `true` in a running container. Goal: ≤ 5 ms.
func BenchmarkContainerExec(b *testing.B) {
	e := benchEngine(b)
	ctx := context.Background()
	info, err := e.Create(ctx, RunSpec{Image: "busybox", Cmd: []string{"sleep", "600"}, Network: "none"})
	if err != nil {
		b.Fatal(err)
	}
	if err := e.Start(ctx, info.ID); err != nil {
		b.Fatal(err)
	}
	spec := ContainerExecSpec{ExecSpec: ExecSpec{Args: []string{"true"}}}
	var times []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		res, err := e.ContainerExec(ctx, info.ID, spec)
		if err != nil || res.ExitCode != 0 {
			b.Fatalf("%v %+v", err, res)
		}
		times = append(times, time.Since(start))
	}
	b.StopTimer()
	reportTimes(b, times)
}

// BenchmarkIdleContainersRSS: vscript's own memory with 100 idle containers,
// and no resident helper per container; each op is a fresh engine. Goal:
// ≤ 60 MiB.
func BenchmarkIdleContainersRSS(b *testing.B) {
	var rss []float64
	for i := 0; i < b.N; i++ {
		e := benchEngine(b)
		ctx := context.Background()
		for j := 0; j < 100; j++ {
			info, err := e.Create(ctx, RunSpec{Image: "busybox", Cmd: []string{"sleep", "600"}, Network: "none"})
			if err == nil {
				err = e.Start(ctx, info.ID)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		rss = append(rss, float64(rssKiB(b))/1024)
		b.ReportMetric(float64(childProcesses(b)), "processes")
		e.Close()
	}
	sort.Float64s(rss)
	b.ReportMetric(rss[len(rss)/2], "median-RSS-MiB")
	b.ReportMetric(rss[0], "min-RSS-MiB")
	b.ReportMetric(rss[len(rss)-1], "max-RSS-MiB")
}

func rssKiB(b *testing.B) int {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// childProcesses counts this process's direct children: one per container
// (its PID 1), none besides.
func childProcesses(b *testing.B) int {
	self := strconv.Itoa(os.Getpid())
	dirs, _ := os.ReadDir("/proc")
	n := 0
	for _, d := range dirs {
		stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		if f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]); len(f) > 1 && f[1] == self {
			n++
		}
	}
	return n
}
