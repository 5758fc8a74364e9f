package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.starlark.net/syntax"

	"vscript/builtins"
)

// `vscript test`: every test_ function of every *_test.star file runs in a
// lab of its own. This process stays outside any lab (enter.c lists "test"
// among the commands it leaves alone) and starts, per test,
// `vscript run --test-func=NAME FILE`: a lab whose PID 1 runs the file's top
// level as setup, then calls the function.

// exitLoadFailed is how a `run --test-func` child says that the file's top
// level failed before the test could be called, so that a broken file is
// reported once rather than once per test.
const exitLoadFailed = 3

type testOptions struct {
	jobs  int
	run   string // regexp selecting test names
	junit string // file to write a JUnit XML report to
}

// A testCase is one line of the report: a test_ function, or a file that
// cannot be tested (name "").
type testCase struct {
	file    string
	name    string
	problem string // why it cannot run, found before any lab starts
	inline  bool   // the problem is short enough for the FAIL line itself
}

func (c *testCase) label() string {
	if c.name == "" {
		return c.file
	}
	return c.file + ":" + c.name
}

type testStatus int

const (
	testPassed testStatus = iota
	testFailed
	testLoadFailed // the file's top level failed: reported once per file
	testSkipped    // not run: its file failed to load, or the run was interrupted
)

type testResult struct {
	status testStatus
	ran    bool // a lab ran it (the duration means something)
	dur    time.Duration
	code   int    // the child's exit code
	output string // what the child printed, stdout and stderr interleaved
}

// testRunner runs one test function in a fresh lab. Tests replace it.
type testRunner func(ctx context.Context, file, name string) *testResult

// runTests is `vscript test`: it returns the exit code.
func runTests(f *flags, opts testOptions, paths []string, stdout, stderr io.Writer) int {
	if f.host {
		fmt.Fprintln(stderr, "vscript: test runs each test in a lab of its own; --host is not supported")
		return exitUsage
	}
	if opts.jobs < 1 {
		fmt.Fprintf(stderr, "vscript: -j %d: want at least 1\n", opts.jobs)
		return exitUsage
	}
	match, err := regexp.Compile(opts.run)
	if err != nil {
		fmt.Fprintf(stderr, "vscript: -run: %v\n", err)
		return exitUsage
	}
	if len(paths) == 0 {
		paths = []string{"."}
	}
	files, err := findTestFiles(paths)
	if err != nil {
		fmt.Fprintf(stderr, "vscript: test %v\n", err)
		return exitUsage
	}
	if len(files) == 0 {
		fmt.Fprintf(stderr, "vscript: no *_test.star files in %s\n", strings.Join(paths, " "))
		return exitFailed
	}
	cases := planTests(files, match)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	var ended os.Signal
	var endedMu sync.Mutex
	go func() {
		if sig, ok := <-sigs; ok {
			endedMu.Lock()
			ended = sig
			endedMu.Unlock()
			cancel()
		}
	}()

	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "vscript: test: %v\n", err)
		return exitFailed
	}
	start := time.Now()
	rep := runCases(ctx, cases, opts.jobs, childRunner(f, self), f.verbose || f.explain, stdout)
	fmt.Fprintf(stdout, "%d passed, %d failed\n", rep.passed, rep.failed)

	if opts.junit != "" {
		if err := writeJUnit(opts.junit, rep, time.Since(start)); err != nil {
			fmt.Fprintf(stderr, "vscript: %v\n", err)
			return exitFailed
		}
	}
	endedMu.Lock()
	sig := ended
	endedMu.Unlock()
	switch {
	case sig != nil:
		fmt.Fprintln(stderr, "vscript: interrupted")
		return 128 + int(sig.(syscall.Signal))
	case rep.failed > 0:
		return exitFailed
	case rep.passed == 0:
		fmt.Fprintf(stderr, "vscript: no test_ function matches -run %q\n", opts.run)
		return exitFailed
	}
	return exitOK
}

// findTestFiles lists the test files PATHs name: a directory is searched
// recursively for *_test.star (hidden directories skipped), a file is taken
// whatever its name, since the user named it.
func findTestFiles(paths []string) ([]string, error) {
	var files []string
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			files = append(files, p)
		}
	}
	for _, p := range paths {
		p = filepath.Clean(p)
		info, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, errors.Unwrap(err))
		}
		if !info.IsDir() {
			add(p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != p && strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if strings.HasSuffix(d.Name(), "_test.star") {
				add(path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}

// testFunc is a test_ function found by reading a file.
type testFunc struct {
	name   string
	params int
}

// findTestFuncs lists the test_ functions file defines at module level, in
// definition order. It reads the syntax only: running the file would need a
// lab. Definitions inside top-level if/for/while blocks count (lab scripts
// allow top-level control flow); a name defined twice counts once.
func findTestFuncs(file string) ([]testFunc, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, errors.Unwrap(err))
	}
	f, err := builtins.FileOptions().Parse(file, src, 0)
	if err != nil {
		return nil, err
	}
	var funcs []testFunc
	seen := map[string]bool{}
	var walk func([]syntax.Stmt)
	walk = func(stmts []syntax.Stmt) {
		for _, st := range stmts {
			switch st := st.(type) {
			case *syntax.DefStmt:
				if name := st.Name.Name; strings.HasPrefix(name, "test_") && !seen[name] {
					seen[name] = true
					funcs = append(funcs, testFunc{name: name, params: len(st.Params)})
				}
			case *syntax.IfStmt:
				walk(st.True)
				walk(st.False)
			case *syntax.ForStmt:
				walk(st.Body)
			case *syntax.WhileStmt:
				walk(st.Body)
			}
		}
	}
	walk(f.Stmts)
	return funcs, nil
}

// planTests lists what the run will report, in discovery order.
func planTests(files []string, match *regexp.Regexp) []*testCase {
	var cases []*testCase
	for _, file := range files {
		funcs, err := findTestFuncs(file)
		switch {
		case err != nil:
			cases = append(cases, &testCase{file: file, problem: strings.TrimSuffix(builtins.FormatError(err), "\n")})
			continue
		case len(funcs) == 0:
			cases = append(cases, &testCase{file: file, problem: "no test_ functions", inline: true})
			continue
		}
		for _, fn := range funcs {
			if !match.MatchString(fn.name) {
				continue
			}
			c := &testCase{file: file, name: fn.name}
			if fn.params > 0 {
				c.problem = fn.name + " takes arguments; test functions take none"
			}
			cases = append(cases, c)
		}
	}
	return cases
}

// testReport is the outcome of a run, in discovery order.
type testReport struct {
	cases   []*testCase
	results []*testResult
	passed  int
	failed  int
}

// reported tells whether result i is a line of the report: a file that
// failed to load is one failure, however many of its tests saw it.
func (r *testReport) reported(i int) bool {
	switch r.results[i].status {
	case testSkipped:
		return false
	case testLoadFailed:
		for j := 0; j < i; j++ {
			if r.results[j].status == testLoadFailed && r.cases[j].file == r.cases[i].file {
				return false
			}
		}
	}
	return true
}

// runCases runs the cases, jobs at a time, and prints each result in
// discovery order as soon as it and those before it are known, so the output
// is the same whatever the timing.
func runCases(ctx context.Context, cases []*testCase, jobs int, run testRunner, showPassed bool, w io.Writer) *testReport {
	rep := &testReport{cases: cases, results: make([]*testResult, len(cases))}
	done := make([]chan struct{}, len(cases))
	for i := range done {
		done[i] = make(chan struct{})
	}
	var mu sync.Mutex
	brokenFiles := map[string]bool{} // files whose top level failed

	queue := make(chan int)
	go func() {
		for i := range cases {
			queue <- i
		}
		close(queue)
	}()
	for n := 0; n < jobs; n++ {
		go func() {
			for i := range queue {
				c := cases[i]
				mu.Lock()
				broken := brokenFiles[c.file]
				mu.Unlock()
				var res *testResult
				switch {
				case c.problem != "":
					res = &testResult{status: testFailed}
				case broken || ctx.Err() != nil:
					res = &testResult{status: testSkipped}
				default:
					res = run(ctx, c.file, c.name)
				}
				if res.status == testLoadFailed {
					mu.Lock()
					brokenFiles[c.file] = true
					mu.Unlock()
				}
				rep.results[i] = res
				close(done[i])
			}
		}()
	}

	for i, c := range cases {
		<-done[i]
		if !rep.reported(i) {
			continue
		}
		res := rep.results[i]
		if res.status == testPassed {
			rep.passed++
			fmt.Fprintf(w, "ok   %s (%s)\n", c.label(), res.dur.Round(time.Millisecond))
			if showPassed {
				writeIndented(w, res.output)
			}
			continue
		}
		rep.failed++
		switch {
		case c.inline:
			fmt.Fprintf(w, "FAIL %s: %s\n", c.label(), c.problem)
		case c.problem != "":
			fmt.Fprintf(w, "FAIL %s\n", c.label())
			writeIndented(w, c.problem)
		case res.status == testLoadFailed:
			fmt.Fprintf(w, "FAIL %s (%s)\n", c.file, res.dur.Round(time.Millisecond))
			writeIndented(w, res.output)
		default:
			fmt.Fprintf(w, "FAIL %s (%s)\n", c.label(), res.dur.Round(time.Millisecond))
			writeIndented(w, res.output)
		}
	}
	return rep
}

func writeIndented(w io.Writer, text string) {
	text = strings.TrimRight(text, "\n")
	if text == "" {
		return
	}
	for _, line := range strings.Split(text, "\n") {
		fmt.Fprintf(w, "    %s\n", line)
	}
}

// childRunner runs a test as `vscript run --test-func=NAME FILE` from the
// binary at self. argv[0] is "vscript" so that enter.c makes the child PID 1
// of a new lab (and the testscript harness, which dispatches on argv[0],
// runs vscript). Flags use the --flag=value form: enter.c knows only --root
// and --seed as taking a separate value.
func childRunner(f *flags, self string) testRunner {
	return func(ctx context.Context, file, name string) *testResult {
		args := []string{"run", "--test-func=" + name, "--root=" + f.root, "--seed=" + f.seed}
		if f.verbose {
			args = append(args, "-v")
		}
		if f.explain {
			args = append(args, "--explain")
		}
		args = append(args, "--", file)
		cmd := exec.Command(self, args...)
		cmd.Args[0] = "vscript"
		cmd.Env = childEnv(os.Environ())
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out // one pipe: the interleaving is kept
		// If vscript test is killed, its labs die with it. Pdeathsig fires
		// when the forking thread exits, so hold the thread until the child
		// is gone.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()

		start := time.Now()
		if err := cmd.Start(); err != nil {
			return &testResult{status: testFailed, code: -1, output: fmt.Sprintf("start %s: %v", name, err)}
		}
		// Ctrl-C reaches the labs from the terminal; a signal sent to this
		// process alone is passed on, so each lab still tears down and reports.
		stop := context.AfterFunc(ctx, func() { cmd.Process.Signal(syscall.SIGINT) })
		err := cmd.Wait()
		stop()
		res := &testResult{ran: true, dur: time.Since(start), output: out.String()}
		res.code = cmd.ProcessState.ExitCode()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.code = 128 + int(ws.Signal())
		}
		switch {
		case err == nil:
			res.status = testPassed
		case res.code == exitLoadFailed:
			res.status = testLoadFailed
		default:
			res.status = testFailed
		}
		return res
	}
}

// childEnv drops vscript's internal _VSCRIPT_* markers, which would make a
// child believe it is already inside a lab or is an engine helper (as when
// vscript test is itself started from a lab's host.exec).
func childEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if strings.HasPrefix(kv, "_VSCRIPT_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// failureMessage is the one line that says why a test failed: the error
// line of the backtrace if there is one.
func failureMessage(c *testCase, res *testResult) string {
	if c.problem != "" {
		first, _, _ := strings.Cut(c.problem, "\n")
		return first
	}
	lines := strings.Split(strings.TrimRight(res.output, "\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "Error") {
			return lines[i]
		}
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" && !strings.HasPrefix(l, "hint:") {
			return l
		}
	}
	return fmt.Sprintf("exit status %d", res.code)
}
