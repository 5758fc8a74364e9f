package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLabs runs each bundled lab that has an expected transcript beside it
// (scripts/NAME.star and scripts/NAME.out) and compares what it prints.
// Each gets a state directory of its own.
func TestLabs(t *testing.T) {
	requireRoot(t)
	outs, err := filepath.Glob(filepath.Join("..", "..", "scripts", "*.out"))
	if err != nil || len(outs) == 0 {
		t.Fatalf("no expected transcripts in scripts/: %v", err)
	}
	for _, out := range outs {
		script := strings.TrimSuffix(out, ".out") + ".star"
		t.Run(filepath.Base(script), func(t *testing.T) {
			want, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("vscript", "--root", t.TempDir(), script)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			got, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s: %v\n%s", script, err, stderr.String())
			}
			if string(got) != string(want) {
				t.Errorf("%s printed:\n%s\nwant (%s):\n%s", script, got, out, want)
			}
		})
	}
}
