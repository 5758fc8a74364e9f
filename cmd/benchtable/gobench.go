package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// goBench runs vscript's own benchmarks: each package's test binary is
// built once (`go test -c`), then run once per figure, in the package's
// directory as `go test` would.
type goBench struct {
	module string // the module's root directory
	dir    string // where the test binaries go
	built  map[string]string
	log    *os.File // progress, for the operator
}

// binary returns the test binary of pkg ("./engine"), building it on first use.
func (g *goBench) binary(pkg string) (string, error) {
	if bin, ok := g.built[pkg]; ok {
		return bin, nil
	}
	bin := filepath.Join(g.dir, strings.ReplaceAll(strings.Trim(pkg, "./"), "/", "_")+".test")
	cmd := exec.Command("go", "test", "-c", "-o", bin, pkg)
	cmd.Dir = g.module
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go test -c %s: %v\n%s", pkg, err, out)
	}
	g.built[pkg] = bin
	return bin, nil
}

// run runs the benchmarks of pkg matching pattern n times each
// (-benchtime Nx) and returns their result lines.
func (g *goBench) run(pkg, pattern string, n int) ([]benchResult, error) {
	bin, err := g.binary(pkg)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-test.run", "^$", "-test.bench", pattern,
		"-test.benchtime", strconv.Itoa(n)+"x")
	cmd.Dir = filepath.Join(g.module, pkg)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	results := parseBench(out.String())
	if err != nil || len(results) == 0 {
		return nil, fmt.Errorf("go test -bench %s %s: %v\n%s", pattern, pkg, err, tail(out.String(), 30))
	}
	return results, nil
}

// benchResult is one line of `go test -bench` output.
type benchResult struct {
	Name    string // without the -GOMAXPROCS suffix
	N       int
	Metrics map[string]float64 // unit → value: "ns/op", "median-ms", ...
}

var procsSuffix = regexp.MustCompile(`-\d+$`)

// parseBench reads the result lines of `go test -bench` output:
//
//	BenchmarkX/sub-2   20   123 ns/op   4.5 median-ms   3.9 min-ms
func parseBench(out string) []benchResult {
	var results []benchResult
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		r := benchResult{Name: procsSuffix.ReplaceAllString(f[0], ""), N: n, Metrics: map[string]float64{}}
		ok := true
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				ok = false
				break
			}
			r.Metrics[f[i+1]] = v
		}
		if ok {
			results = append(results, r)
		}
	}
	return results
}

// figure takes the median, min and max of a metric ("ms", "MiB/s",
// "RSS-MiB", "rules-…ms" spelled as prefix "rules-" and unit "ms") from the
// result named name.
func figure(results []benchResult, name, prefix, unit string) (stats, error) {
	for _, r := range results {
		if r.Name != name {
			continue
		}
		var s stats
		var ok [3]bool
		s.Median, ok[0] = r.Metrics[prefix+"median-"+unit]
		s.Min, ok[1] = r.Metrics[prefix+"min-"+unit]
		s.Max, ok[2] = r.Metrics[prefix+"max-"+unit]
		if ok != [3]bool{true, true, true} {
			return stats{}, fmt.Errorf("%s reports no %smedian/min/max-%s (it has %v)", name, prefix, unit, r.Metrics)
		}
		s.N = r.N
		return s, nil
	}
	return stats{}, fmt.Errorf("no result for %s", name)
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
