package runtime

import (
	"sort"
	"testing"
	"time"
)

// reportMedian adds the median of the iterations' durations to the
// benchmark's output: the figure the targets are set for.
func reportMedian(b *testing.B, ds []time.Duration) {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "median-ms")
}

// BenchmarkRunTrue measures a whole container life: Create, Start, Wait and
// Destroy of /bin/true in a new network namespace, on an overlay on tmpfs
// (mounted once, as the engine mounts a container's root before starting it).
func BenchmarkRunTrue(b *testing.B) {
	spec, _, _ := newSpec(b, "/bin/true")
	var ds []time.Duration
	for b.Loop() {
		t0 := time.Now()
		st, err := run(b, spec)
		if err != nil || st.Code != 0 {
			b.Fatalf("run: %v, exit %d", err, st.Code)
		}
		ds = append(ds, time.Since(t0))
	}
	reportMedian(b, ds)
}

// BenchmarkExec measures exec of true into a running container, until it
// has exited.
func BenchmarkExec(b *testing.B) {
	c := startSleeper(b, nil)
	var ds []time.Duration
	for b.Loop() {
		t0 := time.Now()
		p, err := Exec(c.Pid(), &ExecSpec{Args: []string{"true"}})
		if err != nil {
			b.Fatal(err)
		}
		if st, err := p.Wait(); err != nil || st.Code != 0 {
			b.Fatalf("exec: %v, exit %d", err, st.Code)
		}
		ds = append(ds, time.Since(t0))
	}
	reportMedian(b, ds)
}
