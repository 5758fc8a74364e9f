package cli

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// JUnit XML as CI servers read it (Jenkins, GitLab): one testsuite per test
// file, one testcase per test_ function. A file that could not be tested is a
// testcase of its own, "(load)" or "(no tests)", so that it shows as a failure
// rather than vanishing.

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"` // the test's output
}

func junitTime(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// junitReport turns a run's report into JUnit's shape. encoding/xml escapes
// what XML cannot hold (control characters in a test's output become U+FFFD).
func junitReport(rep *testReport, total time.Duration) *junitSuites {
	out := &junitSuites{Name: "vscript test", Time: junitTime(total)}
	var durs []time.Duration
	suite := map[string]int{} // file -> index in out.Suites
	for i, c := range rep.cases {
		if !rep.reported(i) {
			continue
		}
		res := rep.results[i]
		s, ok := suite[c.file]
		if !ok {
			s = len(out.Suites)
			suite[c.file] = s
			out.Suites = append(out.Suites, junitSuite{Name: c.file})
			durs = append(durs, 0)
		}
		tc := junitCase{Name: c.name, Classname: c.file, Time: junitTime(res.dur)}
		switch {
		case c.inline:
			tc.Name = "(no tests)"
		case c.name == "" || res.status == testLoadFailed:
			tc.Name = "(load)"
		}
		if res.status != testPassed {
			text := res.output
			if c.problem != "" {
				text = c.problem
			}
			tc.Failure = &junitFailure{Message: failureMessage(c, res), Text: text}
			out.Suites[s].Failures++
			out.Failures++
		}
		out.Suites[s].Cases = append(out.Suites[s].Cases, tc)
		out.Suites[s].Tests++
		out.Tests++
		durs[s] += res.dur
	}
	for s := range out.Suites {
		out.Suites[s].Time = junitTime(durs[s])
	}
	return out
}

// writeJUnit writes the report to path, atomically so that a CI step never
// reads half a file.
func writeJUnit(path string, rep *testReport, total time.Duration) error {
	body, err := xml.MarshalIndent(junitReport(rep, total), "", "  ")
	if err != nil {
		return fmt.Errorf("junit %s: %w", path, err)
	}
	data := append([]byte(xml.Header), body...)
	data = append(data, '\n')
	tmp, err := os.CreateTemp(filepath.Dir(path), ".junit-*")
	if err != nil {
		return fmt.Errorf("junit %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("junit %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("junit %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("junit %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("junit %s: %w", path, err)
	}
	return nil
}
