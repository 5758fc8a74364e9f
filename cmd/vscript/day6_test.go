package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// day6 is the whole day-6 lesson: every lab of scripts/, run as one.
var day6 = filepath.Join("..", "..", "scripts", "day6.star")

// TestLabDeterministic runs the day-6 lesson three times — in a fresh state
// directory, in another, and again in the second, which then holds what
// the first run left (images, build cache) — and wants the same transcript,
// byte for byte, every time: ids, addresses, names and ports must not
// depend on the machine, the state directory or earlier runs.
func TestLabDeterministic(t *testing.T) {
	requireRoot(t)
	rootA, rootB := t.TempDir(), t.TempDir()
	var outs []string
	for _, root := range []string{rootA, rootB, rootB} {
		cmd := exec.Command("vscript", "--root", root, day6)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("vscript --root %s %s: %v\n%s", root, day6, err, stderr.String())
		}
		outs = append(outs, string(out))
	}
	if outs[0] != outs[1] {
		t.Errorf("two fresh state directories, two transcripts:\n%s", lineDiff(outs[0], outs[1]))
	}
	if outs[1] != outs[2] {
		t.Errorf("the same state directory, run twice, two transcripts:\n%s", lineDiff(outs[1], outs[2]))
	}
}

// lineDiff shows the first line where a and b differ, with its number.
func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, x, y)
		}
	}
	return "(no line differs)"
}

// BenchmarkDay6: the whole day-6 lesson, end to end, as `make lab` runs it
// (images and build cache already in the state directory).
// Goal (issue 7): median ≤ 1.0 s.
func BenchmarkDay6(b *testing.B) {
	abs, err := filepath.Abs(day6)
	if err != nil {
		b.Fatal(err)
	}
	benchFile(b, abs)
}
