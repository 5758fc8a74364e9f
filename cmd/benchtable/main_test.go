package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

const sampleOutput = `goos: linux
goarch: amd64
pkg: vscript/engine/nettest
BenchmarkRunUserNetwork/benchrun-2         	      20	   9971662 ns/op	        12.35 max-ms	         9.652 median-ms	         7.903 min-ms
BenchmarkNetworkCreate-2                   	       3	    876678 ns/op	         1.211 max-ms	         0.8550 median-ms	         0.5440 min-ms	        15.58 rules-max-ms	        15.19 rules-median-ms	        12.96 rules-min-ms
--- BENCH: BenchmarkNetworkCreate-2
    net_test.go:162: first network of this lab, rules included: 14.699399ms
BenchmarkProxyVsDirect/proxy-2             	       3	  43588934 ns/op	 769.79 MB/s	      1060 max-MiB/s	       704.1 median-MiB/s	       580.5 min-MiB/s
BenchmarkVolumeCreate-2   	      10	    209670 ns/op
PASS
ok  	vscript/engine/nettest	4.877s
`

func TestParseBenchAndFigure(t *testing.T) {
	results := parseBench(sampleOutput)
	if len(results) != 4 {
		t.Fatalf("parsed %d results, want 4: %+v", len(results), results)
	}
	tests := []struct {
		name, prefix, unit string
		want               stats
	}{
		{"BenchmarkRunUserNetwork/benchrun", "", "ms", stats{Median: 9.652, Min: 7.903, Max: 12.35, N: 20}},
		{"BenchmarkNetworkCreate", "", "ms", stats{Median: 0.855, Min: 0.544, Max: 1.211, N: 3}},
		{"BenchmarkNetworkCreate", "rules-", "ms", stats{Median: 15.19, Min: 12.96, Max: 15.58, N: 3}},
		{"BenchmarkProxyVsDirect/proxy", "", "MiB/s", stats{Median: 704.1, Min: 580.5, Max: 1060, N: 3}},
	}
	for _, tt := range tests {
		got, err := figure(results, tt.name, tt.prefix, tt.unit)
		if err != nil {
			t.Errorf("%s %s%s: %v", tt.name, tt.prefix, tt.unit, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%s %s%s = %+v, want %+v", tt.name, tt.prefix, tt.unit, got, tt.want)
		}
	}
	// A benchmark without the figures, or none of that name, is an error.
	if _, err := figure(results, "BenchmarkVolumeCreate", "", "ms"); err == nil {
		t.Error("a result without median/min/max gave a figure")
	}
	if _, err := figure(results, "BenchmarkNope", "", "ms"); err == nil {
		t.Error("a missing result gave a figure")
	}
}

func TestPattern(t *testing.T) {
	p := regexp.MustCompile(strings.Split(pattern("BenchmarkLab/day6"), "/")[1])
	if !p.MatchString("day6") || p.MatchString("day66") {
		t.Errorf("pattern %q does not select exactly day6", pattern("BenchmarkLab/day6"))
	}
	if got := pattern("BenchmarkRunUserNetwork/benchrun"); got != "^BenchmarkRunUserNetwork$/^benchrun$" {
		t.Errorf("pattern = %q", got)
	}
}

func TestSummarize(t *testing.T) {
	got := summarize([]float64{5, 1, 4, 2, 3})
	if got != (stats{Median: 3, Min: 1, Max: 5, N: 5}) {
		t.Errorf("summarize = %+v", got)
	}
}

func TestTable(t *testing.T) {
	lines := []*line{
		{Name: "run", Unit: "ms", Goal: &goal{8}, Vscript: &stats{Median: 6.5, Min: 5, Max: 9},
			Docker: &stats{Median: 260, Min: 240, Max: 300}},
		{Name: "exec", Unit: "ms", Goal: &goal{5}, Vscript: &stats{Median: 8.87, Min: 4.29, Max: 12.3},
			Docker: &stats{Median: 4.435, Min: 4, Max: 5}},
		{Name: "proxy", Unit: "MiB/s", HigherBetter: true, Vscript: &stats{Median: 700, Min: 580, Max: 1060},
			Docker: &stats{Median: 350, Min: 300, Max: 400}},
		{Name: "rss", Unit: "MiB", Goal: &goal{60}, Vscript: &stats{Median: 20, Min: 19, Max: 21},
			Docker: &stats{Median: 1000, Min: 990, Max: 1010}},
		{Name: "lesson", Unit: "ms", Goal: &goal{1000}, Vscript: &stats{Median: 700, Min: 650, Max: 800},
			DockerNote: "n/a (a vscript lab)"},
	}
	var b bytes.Buffer
	writeTable(&b, lines, true)
	want := `| operation | goal (median) | vscript: median (min–max) | Docker: median (min–max) | vscript vs Docker |
|---|---|---|---|---|
| run | ≤ 8 ms ✓ | 6.50 ms (5.00–9.00) | 260 ms (240–300) | 40.0× faster |
| exec | ≤ 5 ms ✗ | 8.87 ms (4.29–12.3) | 4.43 ms (4.00–5.00) | 2.00× slower |
| proxy | — | 700 MiB/s (580–1060) | 350 MiB/s (300–400) | 2.00× faster |
| rss | ≤ 60 MiB ✓ | 20.0 MiB (19.0–21.0) | 1000 MiB (990–1010) | 50.0× smaller |
| lesson | ≤ 1000 ms ✓ | 700 ms (650–800) | n/a (a vscript lab) | — |
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	writeTable(&b, lines[:1], false)
	if want := "| operation | goal (median) | vscript: median (min–max) |\n|---|---|---|\n| run | ≤ 8 ms ✓ | 6.50 ms (5.00–9.00) |\n"; b.String() != want {
		t.Errorf("table without Docker:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestDemux(t *testing.T) {
	raw := []byte{1, 0, 0, 0, 0, 0, 0, 3, 'a', 'b', 'c', 2, 0, 0, 0, 0, 0, 0, 2, 'd', '\n'}
	if got := demux(raw); got != "abcd\n" {
		t.Errorf("demux = %q", got)
	}
}
