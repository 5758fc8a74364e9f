package cli

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestJUnitRoundTrip writes a report with every kind of result and reads it
// back with encoding/xml: the file must be valid XML whatever a test printed.
func TestJUnitRoundTrip(t *testing.T) {
	broken := &testResult{status: testLoadFailed, ran: true, dur: 40 * time.Millisecond, code: exitLoadFailed,
		output: "Traceback (most recent call last):\n  b_test.star:1:5: in <toplevel>\nError in fail: fail: setup\n"}
	rep := &testReport{
		cases: []*testCase{
			{file: "a_test.star", name: "test_ok"},
			{file: "a_test.star", name: "test_bad"},
			{file: "a_test.star", name: "test_args", problem: "test_args takes arguments; test functions take none"},
			{file: "b_test.star", name: "test_1"},
			{file: "b_test.star", name: "test_2"},
			{file: "c_test.star", problem: "no test_ functions", inline: true},
		},
		results: []*testResult{
			{status: testPassed, ran: true, dur: 12 * time.Millisecond},
			{status: testFailed, ran: true, dur: 1500 * time.Millisecond, code: 1,
				output: "out \x1b[31mred\x1b[0m \x00 <&> ]]>\nError in assert.eq: assertion failed: 1 != 2\n"},
			{status: testFailed},
			broken,
			broken, // the same load failure: reported once
			{status: testFailed},
		},
	}
	path := filepath.Join(t.TempDir(), "report.xml")
	if err := writeJUnit(path, rep, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), xml.Header) {
		t.Errorf("no XML header:\n%s", data)
	}
	var got junitSuites
	if err := xml.Unmarshal(data, &got); err != nil {
		t.Fatalf("not valid XML: %v\n%s", err, data)
	}
	if got.Tests != 5 || got.Failures != 4 || got.Time != "2.000" || len(got.Suites) != 3 {
		t.Fatalf("totals: tests %d failures %d time %s suites %d; want 5, 4, 2.000, 3\n%s",
			got.Tests, got.Failures, got.Time, len(got.Suites), data)
	}
	a := got.Suites[0]
	if a.Name != "a_test.star" || a.Tests != 3 || a.Failures != 2 || a.Time != "1.512" {
		t.Errorf("suite a: %+v", a)
	}
	if c := a.Cases[0]; c.Name != "test_ok" || c.Classname != "a_test.star" || c.Time != "0.012" || c.Failure != nil {
		t.Errorf("passing case: %+v", c)
	}
	bad := a.Cases[1].Failure
	if bad == nil || bad.Message != "Error in assert.eq: assertion failed: 1 != 2" ||
		!strings.Contains(bad.Text, "<&> ]]>") || !strings.Contains(bad.Text, "\uFFFD[31mred") {
		t.Errorf("failing case: %+v", bad)
	}
	if f := a.Cases[2].Failure; f == nil || f.Message != "test_args takes arguments; test functions take none" {
		t.Errorf("case with arguments: %+v", a.Cases[2])
	}
	b := got.Suites[1]
	if len(b.Cases) != 1 || b.Cases[0].Name != "(load)" || b.Cases[0].Failure.Message != "Error in fail: fail: setup" {
		t.Errorf("broken file: %+v", b)
	}
	c := got.Suites[2]
	if len(c.Cases) != 1 || c.Cases[0].Name != "(no tests)" || c.Cases[0].Failure.Message != "no test_ functions" {
		t.Errorf("file without tests: %+v", c)
	}
}

func TestJUnitUnwritable(t *testing.T) {
	rep := &testReport{}
	err := writeJUnit(filepath.Join(t.TempDir(), "nosuchdir", "r.xml"), rep, 0)
	if err == nil || !strings.HasPrefix(err.Error(), "junit ") {
		t.Errorf("got %v, want a junit error", err)
	}
}
