// Command benchtable is `make bench`: it runs vscript's benchmarks (the Go
// benchmarks of cmd/vscript, engine and engine/nettest, with
// -benchtime Nx) and prints their figures as a Markdown table, each a
// median with min and max, beside the performance goals. When a Docker
// engine answers on its socket, the same operations run on Docker in the
// same call — each row's Docker figure right after vscript's — through the
// Engine API, on busybox and httpd images imported from vscript's own
// built-in ones (`image_save(format="docker")`, then the API's load), as
// no registry is reachable.
//
//	go run ./cmd/benchtable [-n 20] [-heavy 5] [-docker auto|off|on] [-rows REGEX]
//
// Progress goes to stderr, the table to stdout. See docs/benchmarks.md.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"
)

// row is one operation of the table: where vscript's figure comes from,
// its goal, and how Docker does the same.
type row struct {
	name   string
	unit   string // as shown: "ms", "MiB/s", "MiB"
	higher bool   // a higher figure is better (throughput)
	goal   *goal

	pkg    string // the Go package of the benchmark, "./engine"
	result string // the benchmark's name, sub-benchmark included
	prefix string // the metrics' prefix ("rules-"), usually ""
	metric string // the metrics' unit: "ms" for median-ms, min-ms, max-ms
	heavy  bool   // one sample takes seconds: -heavy samples, not -n

	docker     func(d *docker, n int) ([]float64, error)
	dockerNote string // why Docker has no figure, when docker is nil
}

func rows(module string) []row {
	// The lesson the README leads to; the day-6 lesson when it exists.
	lesson, lessonName := "hello", "bundled lab end to end (`vscript scripts/hello.star`)"
	if _, err := os.Stat(filepath.Join(module, "scripts", "day6.star")); err == nil {
		lesson, lessonName = "day6", "day-6 lesson end to end (`vscript scripts/day6.star`)"
	}
	return []row{
		{name: "empty lab, world up (`vscript` on `world.ip`, start to exit)", unit: "ms", goal: &goal{25},
			pkg: "./cmd/vscript", result: "BenchmarkEmptyLab", metric: "ms",
			dockerNote: "n/a (no lab)"},
		{name: "container run to exit, network none", unit: "ms", goal: &goal{8},
			pkg: "./engine", result: "BenchmarkContainerRunNone", metric: "ms",
			docker: func(d *docker, n int) ([]float64, error) { return d.runToExit("none", n) }},
		{name: "container run to exit, user network", unit: "ms", goal: &goal{15},
			pkg: "./engine/nettest", result: "BenchmarkRunUserNetwork/benchrun", metric: "ms",
			docker: (*docker).runUserNetwork},
		{name: "exec `true` in a running container", unit: "ms", goal: &goal{5},
			pkg: "./engine", result: "BenchmarkContainerExec", metric: "ms",
			docker: (*docker).execTrue},
		{name: "network create (call returns)", unit: "ms", goal: &goal{5},
			pkg: "./engine/nettest", result: "BenchmarkNetworkCreate", metric: "ms",
			docker: (*docker).networkCreateRemove},
		{name: "network create (iptables rules in)", unit: "ms",
			pkg: "./engine/nettest", result: "BenchmarkNetworkCreate", prefix: "rules-", metric: "ms",
			docker: (*docker).networkCreateRemove},
		{name: "DNS lookup of a container name, from a container", unit: "ms", goal: &goal{1},
			pkg: "./engine/nettest", result: "BenchmarkDNSLookup", metric: "ms",
			docker: (*docker).dnsLookup},
		{name: "published port via the userland proxy (127.0.0.1), 32 MiB", unit: "MiB/s", higher: true,
			pkg: "./engine/nettest", result: "BenchmarkProxyVsDirect/proxy", metric: "MiB/s",
			docker: (*docker).proxyThroughput},
		{name: "image build, data-packed Dockerfile, cold", unit: "ms", goal: &goal{50},
			pkg: "./engine", result: "BenchmarkImageBuildDataPacked/cold", metric: "ms",
			docker: func(d *docker, n int) ([]float64, error) { return d.buildDataPacked(true, n) }},
		{name: "image build, data-packed Dockerfile, cached", unit: "ms", goal: &goal{5},
			pkg: "./engine", result: "BenchmarkImageBuildDataPacked/cached", metric: "ms",
			docker: func(d *docker, n int) ([]float64, error) { return d.buildDataPacked(false, n) }},
		{name: "volume create", unit: "ms", goal: &goal{1},
			pkg: "./engine", result: "BenchmarkVolumeCreate", metric: "ms",
			docker: (*docker).volumeCreate},
		{name: "100 containers on one network, then a DNS lookup", unit: "ms", goal: &goal{2000},
			pkg: "./engine/nettest", result: "BenchmarkHundredContainers", metric: "ms", heavy: true,
			docker: (*docker).hundred},
		{name: lessonName, unit: "ms", goal: &goal{1000},
			pkg: "./cmd/vscript", result: "BenchmarkLab/" + lesson, metric: "ms", heavy: true,
			dockerNote: "n/a (a vscript lab)"},
		{name: "resident memory with 100 idle containers", unit: "MiB", goal: &goal{60},
			pkg: "./engine", result: "BenchmarkIdleContainersRSS", metric: "RSS-MiB", heavy: true,
			docker: (*docker).idleRSS},
	}
}

// pattern is the -bench pattern that selects exactly the named
// benchmark: each level anchored.
func pattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

func main() {
	n := flag.Int("n", 20, "samples per figure")
	heavy := flag.Int("heavy", 5, "samples per figure for the rows whose one sample takes seconds")
	mode := flag.String("docker", "auto", "measure Docker too: auto (when an engine answers), on, off")
	socket := flag.String("socket", "/var/run/docker.sock", "the Docker engine's socket")
	only := flag.String("rows", "", "measure only the rows whose name matches this regular expression")
	flag.Parse()
	if err := run(os.Stdout, *n, *heavy, *mode, *socket, *only); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
}

func run(w io.Writer, n, heavy int, mode, socket, only string) error {
	if n < 1 || heavy < 1 {
		return fmt.Errorf("-n and -heavy must be at least 1")
	}
	filter, err := regexp.Compile(only)
	if err != nil {
		return err
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		return fmt.Errorf("run from inside the vscript module (go env GOMOD: %v)", err)
	}
	module := filepath.Dir(strings.TrimSpace(string(out)))
	tmp, err := os.MkdirTemp("", "benchtable-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	g := &goBench{module: module, dir: tmp, built: map[string]string{}}

	var d *docker
	dockerVersion := ""
	switch mode {
	case "off":
	case "auto", "on":
		c := newDocker(socket)
		if dockerVersion, err = c.ping(); err != nil {
			if mode == "on" {
				return err
			}
			progress("no Docker engine answers (%v): vscript only", err)
			break
		}
		progress("Docker %s answers", dockerVersion)
		if err := c.sweep(); err != nil {
			return err
		}
		defer c.sweep()
		d = c
	default:
		return fmt.Errorf("-docker %s: want auto, on or off", mode)
	}

	var lines []*line
	failed, imported := false, false
	cache := map[string][]benchResult{}
	for _, r := range rows(module) {
		if !filter.MatchString(r.name) {
			continue
		}
		samples := n
		if r.heavy {
			samples = heavy
		}
		l := &line{Name: r.name, Unit: r.unit, HigherBetter: r.higher, Goal: r.goal}
		lines = append(lines, l)

		progress("%s: vscript (%d×)", r.name, samples)
		if s, err := vscriptFigure(g, cache, r, samples); err == nil {
			l.Vscript = &s
		} else {
			progress("%s: %v", r.name, err)
			l.VscriptErr, failed = err, true
		}

		switch {
		case d == nil:
		case r.docker == nil:
			l.DockerNote = r.dockerNote
		default:
			// Docker's images are loaded when a row first needs them, so
			// that the load's aftermath in dockerd is not in the figures of
			// the rows before (the empty lab).
			if !imported {
				progress("importing busybox and httpd into Docker from vscript's built-in images")
				if err := importImages(d, module, tmp); err != nil {
					return err
				}
				imported = true
			}
			progress("%s: Docker (%d×)", r.name, samples)
			s, err := r.docker(d, samples)
			if err == nil {
				st := summarize(s)
				l.Docker = &st
			} else {
				progress("%s: Docker: %v", r.name, err)
				l.DockerErr, failed = err, true
			}
		}
	}

	writeHeader(w, n, heavy, dockerVersion)
	writeTable(w, lines, d != nil)
	if failed {
		return fmt.Errorf("some figures could not be measured (see above)")
	}
	return nil
}

// vscriptFigure runs the row's benchmark, or takes its result from an
// earlier row that ran the same one (network create: the call, and its
// rules).
func vscriptFigure(g *goBench, cache map[string][]benchResult, r row, samples int) (stats, error) {
	key := fmt.Sprintf("%s %s %d", r.pkg, r.result, samples)
	results, ok := cache[key]
	if !ok {
		var err error
		if results, err = g.run(r.pkg, pattern(r.result), samples); err != nil {
			return stats{}, err
		}
		cache[key] = results
	}
	return figure(results, r.result, r.prefix, r.metric)
}

// importImages gives Docker vscript's built-in busybox and httpd: vscript
// saves them as a docker archive, which the engine loads.
func importImages(d *docker, module, tmp string) error {
	bin := filepath.Join(tmp, "vscript")
	build := exec.Command("go", "build", "-o", bin, "./cmd/vscript")
	build.Dir = module
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	script := filepath.Join(tmp, "save.star")
	if err := os.WriteFile(script, []byte(`image_save(["busybox", "httpd"], "images.tar", format = "docker")`+"\n"), 0o644); err != nil {
		return err
	}
	if out, err := exec.Command(bin, "--root", filepath.Join(tmp, "root"), script).CombinedOutput(); err != nil {
		return fmt.Errorf("vscript image_save: %v\n%s", err, out)
	}
	return d.load(filepath.Join(tmp, "images.tar"))
}

func writeHeader(w io.Writer, n, heavy int, dockerVersion string) {
	cpu := "unknown CPU"
	if info, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(info), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	fmt.Fprintf(w, "Measured %s on %s, %d CPUs, Linux %s, %s; %d samples per figure (%d for the heavy rows)",
		time.Now().Format("2006-01-02"), cpu, runtime.NumCPU(), strings.TrimSpace(string(kernel)),
		runtime.Version(), n, heavy)
	if dockerVersion != "" {
		fmt.Fprintf(w, "; Docker %s", dockerVersion)
	}
	fmt.Fprint(w, ".\n\n")
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "benchtable: "+format+"\n", args...)
}
