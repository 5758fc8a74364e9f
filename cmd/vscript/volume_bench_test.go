package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// BenchmarkStartWithMounts compares the engine's own figure for starting a
// container (the "container start" event's duration) with three mounts — a
// bind mount, a named volume, an anonymous volume — against none. Goal
// (issue 6): within 2 ms of each other.
func BenchmarkStartWithMounts(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	bin := buildVscript(b)
	dir := b.TempDir()
	script := filepath.Join(dir, "lab.star")
	src := `
for i in range(10):
    for vols in [[], ["%s/site:/site", "data:/data", "/cache"]]:
        c = create("busybox", "true", network = "none", volumes = vols)
        c.start()
        c.wait()
        c.rm(volumes = True)
`
	if err := os.WriteFile(script, []byte(strings.Replace(src, "%s", dir, 1)), 0o644); err != nil {
		b.Fatal(err)
	}
	root := filepath.Join(dir, "root")
	var plain, mounted []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err := exec.Command(bin, "--root", root, "--json", script).CombinedOutput()
		if err != nil {
			b.Fatalf("%v\n%s", err, out)
		}
		// Containers alternate: none, three mounts, none, ...
		n := 0
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			var ev struct {
				Op       string `json:"op"`
				Duration int64  `json:"duration_ns"`
			}
			if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.Op != "container start" {
				continue
			}
			if n%2 == 0 {
				plain = append(plain, time.Duration(ev.Duration))
			} else {
				mounted = append(mounted, time.Duration(ev.Duration))
			}
			n++
		}
		if n != 20 {
			b.Fatalf("%d container starts in the events, want 20:\n%s", n, out)
		}
	}
	b.StopTimer()
	median := func(ds []time.Duration) float64 {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return float64(ds[len(ds)/2].Microseconds()) / 1000
	}
	p, m := median(plain), median(mounted)
	b.ReportMetric(p, "start-0-mounts-ms")
	b.ReportMetric(m, "start-3-mounts-ms")
	b.ReportMetric(m-p, "extra-ms")
}
