package main

import (
	"encoding/xml"
	"fmt"
	"os"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
)

// junit FILE parses a JUnit XML report with encoding/xml (failing on
// invalid XML) and prints it as lines a script can match:
//
//	testsuites tests=N failures=N
//	SUITE CASE ok | SUITE CASE FAIL MESSAGE
//	  output: FIRST LINES OF THE FAILURE TEXT (newlines as \n)
func cmdJUnit(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: junit FILE")
	}
	data, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	var report struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Name  string `xml:"name,attr"`
			Cases []struct {
				Name    string `xml:"name,attr"`
				Time    string `xml:"time,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &report); err != nil {
		ts.Fatalf("%s is not valid XML: %v", args[0], err)
	}
	w := ts.Stdout()
	fmt.Fprintf(w, "testsuites tests=%d failures=%d\n", report.Tests, report.Failures)
	for _, s := range report.Suites {
		for _, c := range s.Cases {
			if c.Time == "" {
				ts.Fatalf("%s %s: no time", s.Name, c.Name)
			}
			if c.Failure == nil {
				fmt.Fprintf(w, "%s %s ok\n", s.Name, c.Name)
				continue
			}
			fmt.Fprintf(w, "%s %s FAIL %s\n", s.Name, c.Name, c.Failure.Message)
			fmt.Fprintf(w, "  output: %s\n", strings.ReplaceAll(c.Failure.Text, "\n", `\n`))
		}
	}
}
