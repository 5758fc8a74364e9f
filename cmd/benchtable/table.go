package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// stats is a figure: the median, min and max of N samples.
type stats struct {
	Median, Min, Max float64
	N                int
}

// summarize makes a figure of raw samples.
func summarize(samples []float64) stats {
	s := append([]float64(nil), samples...)
	sort.Float64s(s)
	return stats{Median: s[len(s)/2], Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// goal is a performance goal: a bound on the median.
type goal struct {
	Bound float64
}

// line is one row of the table once measured.
type line struct {
	Name         string
	Unit         string // "ms", "MiB/s", "MiB"
	HigherBetter bool
	Goal         *goal
	Vscript      *stats
	VscriptErr   error
	Docker       *stats
	DockerErr    error
	DockerNote   string // why there is no Docker figure
}

// number prints a figure with three significant digits, or fewer decimals
// for large values: 0.0731, 4.52, 37.1, 1204.
func number(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

func (l *line) cell(s *stats, err error, note string) string {
	switch {
	case err != nil:
		return "error (see above)"
	case s == nil && note != "":
		return note
	case s == nil:
		return "—"
	}
	return fmt.Sprintf("%s %s (%s–%s)", number(s.Median), l.Unit, number(s.Min), number(s.Max))
}

func (l *line) goalCell() string {
	if l.Goal == nil {
		return "—"
	}
	cmp := "≤"
	if l.HigherBetter {
		cmp = "≥"
	}
	verdict := ""
	if l.Vscript != nil {
		met := l.Vscript.Median <= l.Goal.Bound
		if l.HigherBetter {
			met = l.Vscript.Median >= l.Goal.Bound
		}
		verdict = " ✓"
		if !met {
			verdict = " ✗"
		}
	}
	return fmt.Sprintf("%s %s %s%s", cmp, strconv.FormatFloat(l.Goal.Bound, 'f', -1, 64), l.Unit, verdict)
}

// ratio says how vscript's median compares with Docker's, in words that
// read the same way for times, sizes and throughputs: "4.2× faster".
func (l *line) ratio() string {
	if l.Vscript == nil || l.Docker == nil || l.Vscript.Median <= 0 || l.Docker.Median <= 0 {
		return "—"
	}
	better, worse := "faster", "slower"
	switch l.Unit {
	case "MiB":
		better, worse = "smaller", "larger"
	}
	r := l.Docker.Median / l.Vscript.Median
	if l.HigherBetter {
		r = 1 / r
	}
	if r >= 1 {
		return fmt.Sprintf("%s× %s", number(r), better)
	}
	return fmt.Sprintf("%s× %s", number(1/r), worse)
}

// writeTable prints the lines as a Markdown table; the Docker columns only
// when Docker was measured.
func writeTable(w io.Writer, lines []*line, withDocker bool) {
	head := []string{"operation", "goal (median)", "vscript: median (min–max)"}
	if withDocker {
		head = append(head, "Docker: median (min–max)", "vscript vs Docker")
	}
	fmt.Fprintf(w, "| %s |\n", strings.Join(head, " | "))
	fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", len(head)))
	for _, l := range lines {
		cells := []string{l.Name, l.goalCell(), l.cell(l.Vscript, l.VscriptErr, "")}
		if withDocker {
			cells = append(cells, l.cell(l.Docker, l.DockerErr, l.DockerNote), l.ratio())
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
}
