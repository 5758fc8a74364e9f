package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, src := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFindTestFiles(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"b_test.star":             "",
		"a/x_test.star":           "",
		"a/lab.star":              "",      // not a test file
		"a/.cache/y_test.star":    "",      // hidden directories are skipped
		"a/deeper/z_test.star":    "",      // recursion
		"named.star":              "",      // taken when named explicitly
		"a/x_test.star.orig/keep": "",      // a directory named like a test file is not one
		"c_test.starx":            "nope!", // wrong suffix
	})
	t.Chdir(dir)
	got, err := findTestFiles([]string{".", "named.star", "a/x_test.star"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a/deeper/z_test.star", "a/x_test.star", "b_test.star", "named.star"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if _, err := findTestFiles([]string{"nosuch"}); err == nil || !strings.Contains(err.Error(), "nosuch: no such file or directory") {
		t.Errorf("missing path: got %v", err)
	}
}

func TestFindTestFuncs(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a_test.star": `
def test_b():
    pass
def helper():
    pass
def test_a(x, y = 1):
    pass
if True:
    def test_c():
        pass
else:
    def test_d():
        pass
def test_b():   # redefined: still one test, in its first place
    pass
x = [1 for test_e in range(2)]
`,
		"broken_test.star": "def test_x(:\n",
	})
	got, err := findTestFuncs(filepath.Join(dir, "a_test.star"))
	if err != nil {
		t.Fatal(err)
	}
	want := []testFunc{{"test_b", 0}, {"test_a", 2}, {"test_c", 0}, {"test_d", 0}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	_, err = findTestFuncs(filepath.Join(dir, "broken_test.star"))
	if err == nil || !strings.Contains(err.Error(), "broken_test.star:1:13:") {
		t.Errorf("syntax error: got %v, want one at broken_test.star:1:13", err)
	}
}

func TestPlanTests(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a_test.star":     "def test_one():\n    pass\ndef test_two(a):\n    pass\ndef test_three():\n    pass\n",
		"empty_test.star": "x = 1\n",
		"bad_test.star":   "x = (\n",
	})
	t.Chdir(dir)
	plan := func(re string) []string {
		var out []string
		for _, c := range planTests([]string{"a_test.star", "empty_test.star", "bad_test.star"}, regexp.MustCompile(re)) {
			line := c.label()
			if c.problem != "" {
				line += " / " + c.problem
			}
			out = append(out, line)
		}
		return out
	}
	want := []string{
		"a_test.star:test_one",
		"a_test.star:test_two / test_two takes arguments; test functions take none",
		"a_test.star:test_three",
		"empty_test.star / no test_ functions",
		"bad_test.star / bad_test.star:2:1: got end of file, want primary expression",
	}
	if got := plan(""); !reflect.DeepEqual(got, want) {
		t.Errorf("all:\n%q\nwant\n%q", got, want)
	}
	// -run selects by name; a file without any test_ function fails whatever -run says.
	want = []string{"a_test.star:test_three", "empty_test.star / no test_ functions",
		"bad_test.star / bad_test.star:2:1: got end of file, want primary expression"}
	if got := plan("^test_th"); !reflect.DeepEqual(got, want) {
		t.Errorf("-run ^test_th:\n%q\nwant\n%q", got, want)
	}
}

// fakeRuns is a testRunner that answers from a table and records what ran.
type fakeRuns struct {
	mu       sync.Mutex
	ran      []string // in the order they started
	finished []string // in the order they finished
	results  map[string]*testResult
	// before, if set, is waited for before a test answers: tests make
	// later tests finish first.
	before map[string]chan struct{}
	after  map[string]chan struct{}
}

func (f *fakeRuns) run(_ context.Context, file, name string) *testResult {
	label := file + ":" + name
	f.mu.Lock()
	f.ran = append(f.ran, label)
	f.mu.Unlock()
	if ch := f.before[label]; ch != nil {
		<-ch
	}
	f.mu.Lock()
	f.finished = append(f.finished, label)
	f.mu.Unlock()
	if ch := f.after[label]; ch != nil {
		defer close(ch)
	}
	if r, ok := f.results[label]; ok {
		copy := *r
		return &copy
	}
	return &testResult{status: testPassed, ran: true}
}

func cases(labels ...string) []*testCase {
	var out []*testCase
	for _, l := range labels {
		file, name, _ := strings.Cut(l, ":")
		out = append(out, &testCase{file: file, name: name})
	}
	return out
}

func TestRunCasesPrintsInDiscoveryOrder(t *testing.T) {
	all := cases("a:test_1", "a:test_2", "b:test_1", "b:test_2")
	// Each test waits for the one after it: they finish last to first.
	f := &fakeRuns{before: map[string]chan struct{}{}, after: map[string]chan struct{}{}, results: map[string]*testResult{
		"a:test_2": {status: testFailed, ran: true, code: 1, output: "Traceback (most recent call last):\n  a:3:5: in test_2\nError in fail: fail: no\n"},
	}}
	for i := 0; i+1 < len(all); i++ {
		ch := make(chan struct{})
		f.before[all[i].label()], f.after[all[i+1].label()] = ch, ch
	}
	var out bytes.Buffer
	rep := runCases(context.Background(), all, len(all), f.run, false, &out)
	want := "ok   a:test_1 (0s)\n" +
		"FAIL a:test_2 (0s)\n" +
		"    Traceback (most recent call last):\n" +
		"      a:3:5: in test_2\n" +
		"    Error in fail: fail: no\n" +
		"ok   b:test_1 (0s)\n" +
		"ok   b:test_2 (0s)\n"
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	if rep.passed != 3 || rep.failed != 1 {
		t.Errorf("passed %d failed %d, want 3 and 1", rep.passed, rep.failed)
	}
	if want := []string{"b:test_2", "b:test_1", "a:test_2", "a:test_1"}; !reflect.DeepEqual(f.finished, want) {
		t.Errorf("the fake should have made the tests finish last to first; finished %v", f.finished)
	}
}

func TestRunCasesReportsABrokenFileOnce(t *testing.T) {
	broken := &testResult{status: testLoadFailed, ran: true, code: exitLoadFailed,
		output: "Traceback (most recent call last):\n  b:1:5: in <toplevel>\nError in fail: fail: setup\n"}
	for _, jobs := range []int{1, 4} {
		t.Run(fmt.Sprint("j", jobs), func(t *testing.T) {
			f := &fakeRuns{results: map[string]*testResult{"b:test_1": broken, "b:test_2": broken, "b:test_3": broken}}
			var out bytes.Buffer
			all := cases("a:test_1", "b:test_1", "b:test_2", "b:test_3", "c:test_1")
			rep := runCases(context.Background(), all, jobs, f.run, false, &out)
			want := "ok   a:test_1 (0s)\n" +
				"FAIL b (0s)\n" +
				"    Traceback (most recent call last):\n" +
				"      b:1:5: in <toplevel>\n" +
				"    Error in fail: fail: setup\n" +
				"ok   c:test_1 (0s)\n"
			if out.String() != want {
				t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
			}
			if rep.passed != 2 || rep.failed != 1 {
				t.Errorf("passed %d failed %d, want 2 and 1", rep.passed, rep.failed)
			}
			if jobs == 1 && len(f.ran) != 3 {
				t.Errorf("with -j 1, the rest of a broken file should not run; ran %v", f.ran)
			}
		})
	}
}

func TestRunCasesProblemsAndInterrupt(t *testing.T) {
	all := []*testCase{
		{file: "a", name: "test_x", problem: "test_x takes arguments; test functions take none"},
		{file: "e", problem: "no test_ functions", inline: true},
		{file: "f", name: "test_1"},
	}
	f := &fakeRuns{}
	var out bytes.Buffer
	rep := runCases(context.Background(), all, 2, f.run, false, &out)
	want := "FAIL a:test_x\n    test_x takes arguments; test functions take none\n" +
		"FAIL e: no test_ functions\n" +
		"ok   f:test_1 (0s)\n"
	if out.String() != want || rep.failed != 2 || rep.passed != 1 {
		t.Errorf("output:\n%s\nwant:\n%s(passed %d failed %d)", out.String(), want, rep.passed, rep.failed)
	}
	if !reflect.DeepEqual(f.ran, []string{"f:test_1"}) {
		t.Errorf("ran %v: tests with a problem must not start a lab", f.ran)
	}

	// Once the run is interrupted, nothing more starts.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f = &fakeRuns{}
	out.Reset()
	rep = runCases(ctx, cases("a:test_1", "a:test_2"), 1, f.run, false, &out)
	if len(f.ran) != 0 || out.String() != "" || rep.passed+rep.failed != 0 {
		t.Errorf("after an interrupt: ran %v, printed %q", f.ran, out.String())
	}
}

func TestShowPassedOutput(t *testing.T) {
	f := &fakeRuns{results: map[string]*testResult{"a:test_1": {status: testPassed, output: "$ docker run x\n"}}}
	var out bytes.Buffer
	runCases(context.Background(), cases("a:test_1"), 1, f.run, true, &out)
	if want := "ok   a:test_1 (0s)\n    $ docker run x\n"; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}

func TestGoStyleTestFlags(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"test -run x .", "test --run x ."},
		{"test -run=x -junit out.xml", "test --run=x --junit out.xml"},
		{"--root /r test dir -j 2 -run x", "--root /r test dir -j 2 --run x"},
		{"test -- -run", "test -- -run"},
		{"lab.star -run", "lab.star -run"}, // a script's words are its own
		{"run test -run", "run test -run"},
	} {
		if got := strings.Join(goStyleTestFlags(strings.Fields(tc.in)), " "); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestFailureMessage(t *testing.T) {
	c := &testCase{file: "a", name: "test_x"}
	for _, tc := range []struct {
		output string
		want   string
	}{
		{"Traceback (most recent call last):\n  a:1:1: in test_x\nError in assert.eq: assertion failed: 1 != 2\nhint: look\n",
			"Error in assert.eq: assertion failed: 1 != 2"},
		{"vscript: lab create: unshare: operation not permitted\n", "vscript: lab create: unshare: operation not permitted"},
		{"", "exit status 137"},
	} {
		if got := failureMessage(c, &testResult{status: testFailed, code: 137, output: tc.output}); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.output, got, tc.want)
		}
	}
	p := &testCase{file: "a", problem: "a:2:1: got end of file\nmore"}
	if got := failureMessage(p, &testResult{status: testFailed}); got != "a:2:1: got end of file" {
		t.Errorf("problem: got %q", got)
	}
}

func TestChildEnvDropsInternalMarkers(t *testing.T) {
	got := childEnv([]string{"PATH=/bin", "_VSCRIPT_LAB=1", "VSCRIPT_ROOT=/r", "_VSCRIPT_REEXEC=init"})
	if want := []string{"PATH=/bin", "VSCRIPT_ROOT=/r"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
