package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"vscript/builtins"
	"vscript/engine"
	"vscript/engine/event"
	"vscript/engine/lab"
	"vscript/engine/store"
)

// Version is set at link time (-ldflags "-X vscript/cli.Version=...").
var Version = "dev"

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // the script failed
	exitUsage  = 2 // bad flags, missing script
)

// commands holds the subcommands other files of this package add (images,
// volumes, test, ...), each made with the global flags it may read.
var commands []func(*flags) *cobra.Command

// usageError marks errors that are the user's invocation, not the script.
type usageError struct{ error }

type flags struct {
	root    string
	host    bool
	quiet   bool
	verbose bool
	explain bool
	json    bool
	seed    string

	interactive bool   // -i: a REPL after the script
	testFunc    string // run --test-func: call this function after the top level (vscript test's child)
}

// Main runs the command line and returns the process exit code.
func Main(args []string) int {
	var f flags
	code := exitOK
	root := &cobra.Command{
		Use:   "vscript FILE.star [key=value ...]",
		Short: "Run container labs written in Starlark",
		Long: "vscript runs a lab script: a disposable, sandboxed container host driven by Starlark builtins\n" +
			"(run, network, volume, image_build, ...). Everything the lab made goes away when it ends.",
		Args:          cobra.ArbitraryArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, rest []string) error {
			if len(rest) == 0 {
				if f.interactive {
					code = runScript(&f, args, "", nil) // a REPL in an empty lab
					return nil
				}
				return usageError{errors.New("no script given (usage: vscript FILE.star [key=value ...])")}
			}
			code = runScript(&f, args, rest[0], rest[1:])
			return nil
		},
	}
	root.SetArgs(goStyleTestFlags(args[1:]))
	root.SetOut(os.Stdout)
	root.SetErr(os.Stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&f.root, "root", envOr("VSCRIPT_ROOT", store.DefaultRoot), "state directory (images, volumes, cache); env VSCRIPT_ROOT")
	pf.BoolVar(&f.host, "host", false, "run the lab on the real host instead of a sandbox")
	pf.BoolVarP(&f.quiet, "quiet", "q", false, "print nothing but errors (the script's print() output is dropped)")
	pf.BoolVarP(&f.verbose, "verbose", "v", false, "print each operation as the docker command it mirrors, and containers' output as it comes")
	pf.BoolVar(&f.explain, "explain", false, "print the Linux commands each operation amounts to")
	pf.BoolVar(&f.json, "json", false, "print engine events as JSON lines (images, volumes, prune, clean: their output as JSON)")
	pf.StringVar(&f.seed, "seed", engine.DefaultSeed, "seed for deterministic ids")
	// Flags after the script name belong to the script (key=value words).
	root.Flags().SetInterspersed(false)
	root.Flags().BoolVarP(&f.interactive, "interactive", "i", false, interactiveUsage)

	runCmd := &cobra.Command{
		Use:   "run FILE.star [key=value ...]",
		Short: "Run a lab script (the same as `vscript FILE.star`)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, rest []string) error {
			code = runScript(&f, args, rest[0], rest[1:])
			return nil
		},
	}
	runCmd.Flags().BoolVarP(&f.interactive, "interactive", "i", false, interactiveUsage)
	runCmd.Flags().StringVar(&f.testFunc, "test-func", "", "call this function after the top level (used by vscript test)")
	runCmd.Flags().MarkHidden("test-func")

	var topts testOptions
	testCmd := &cobra.Command{
		Use:   "test [PATH ...]",
		Short: "Run the test_ functions of *_test.star files, each in a fresh lab",
		Long: "test finds *_test.star files (PATHs are files or directories, searched recursively; default .)\n" +
			"and runs each top-level test_ function in a lab of its own: the file's top level first, as setup,\n" +
			"then the function. It prints ok/FAIL per test, the output of failures, and \"N passed, N failed\".",
		RunE: func(cmd *cobra.Command, rest []string) error {
			code = runTests(&f, topts, rest, cmd.OutOrStdout(), cmd.ErrOrStderr())
			return nil
		},
	}
	testCmd.Flags().IntVarP(&topts.jobs, "jobs", "j", runtime.NumCPU(), "how many tests run at once")
	testCmd.Flags().StringVar(&topts.run, "run", "", "run only the tests whose name matches this regexp (-run works too)")
	testCmd.Flags().StringVar(&topts.junit, "junit", "", "write a JUnit XML report to this file")

	root.AddCommand(runCmd, testCmd, &cobra.Command{
		Use:   "version",
		Short: "Print vscript's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "vscript %s (%s, %s/%s)\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		},
	}, &cobra.Command{
		Use:   "doc [BUILTIN]",
		Short: "Print the builtin reference (Markdown), or one builtin's",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, rest []string) error {
			name := ""
			if len(rest) == 1 {
				name = rest[0]
			}
			text, err := builtins.Doc(name)
			if err != nil {
				return usageError{err}
			}
			fmt.Fprint(cmd.OutOrStdout(), text)
			return nil
		},
	})
	for _, mk := range commands {
		root.AddCommand(mk(&f))
	}
	for _, c := range root.Commands() {
		c.Flags().SetInterspersed(false)
	}
	testCmd.Flags().SetInterspersed(true) // `vscript test dir -run x`, as go test allows

	if err := root.Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "vscript: %v\n", err)
		var ue usageError
		if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
			return exitUsage
		}
		return exitFailed
	}
	return code
}

const interactiveUsage = "then a Starlark REPL in the lab with the script's globals (alone: an empty lab);\n" +
	"it opens even if the script failed (exit code 1 then); Ctrl-D ends the lab"

// goStyleTestFlags lets `vscript test` take -run and -junit with one dash,
// as `go test` does; pflag would read -run as -r -u -n.
func goStyleTestFlags(args []string) []string {
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--root" || a == "--seed" {
			i++
			continue
		}
		if !strings.HasPrefix(a, "-") {
			break
		}
	}
	if i >= len(args) || args[i] != "test" {
		return args
	}
	out := append([]string(nil), args...)
	for j := i + 1; j < len(out); j++ {
		if out[j] == "--" {
			break
		}
		for _, name := range []string{"run", "junit"} {
			if out[j] == "-"+name || strings.HasPrefix(out[j], "-"+name+"=") {
				out[j] = "-" + out[j]
			}
		}
	}
	return out
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// runScript runs one lab. Outside a sandbox it first checks what it can
// (the script is readable, the words are key=value) so that usage errors are
// reported without building a lab, then re-runs vscript inside a new lab.
// path is "" for `vscript -i` alone: a REPL in an empty lab.
func runScript(f *flags, argv []string, path string, words []string) int {
	scriptArgs, err := parseWords(words)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vscript: %v\n", err)
		return exitUsage
	}
	if path != "" {
		if fh, err := os.Open(path); err != nil {
			fmt.Fprintf(os.Stderr, "vscript: script %s: %v\n", path, errors.Unwrap(err))
			return exitUsage
		} else {
			fh.Close()
		}
	}
	if !f.host && !lab.Inside() {
		code, err := lab.Spawn(argv)
		if err != nil {
			fmt.Fprintf(os.Stderr, "vscript: %v\n", err)
		}
		return code
	}

	out := io.Writer(os.Stdout)
	if f.quiet {
		out = io.Discard
	}
	var sink event.Sink = event.Discard
	if p := (&printer{w: os.Stderr, verbose: f.verbose, explain: f.explain, json: f.json}); p.active() && !f.quiet {
		sink = p
	}

	// The lab lives until labCtx ends; the script's builtins wait on
	// scriptCtx, which a Ctrl-C under -i ends alone, keeping the lab for the
	// REPL.
	labCtx, endLab := context.WithCancel(context.Background())
	defer endLab()
	scriptCtx, stopScript := context.WithCancel(labCtx)
	defer stopScript()
	// Signals are registered beside the lab's set-up rather than before
	// it: signal.Notify makes round trips to a thread the Go runtime starts
	// for the purpose, ~2 ms on a VM. One that comes sooner ends the process
	// as during Go's start-up, and the kernel takes the lab down with it.
	// They stay registered until the process exits, when this returns.
	sigs := make(chan os.Signal, 2)
	go signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	var live io.Writer // -v: containers' and build steps' output as it comes
	if f.verbose && !f.quiet {
		live = os.Stderr
	}
	eng, err := engine.New(engine.Options{Root: f.root, Host: f.host, Seed: f.seed, Sink: sink,
		Progress: progressTerminal(f), LiveLogs: live})
	if err != nil {
		fmt.Fprint(os.Stderr, builtins.FormatError(err))
		return exitFailed
	}
	defer eng.Close()

	dir, _ := filepath.Abs(filepath.Dir(path))
	script := builtins.NewScript(&builtins.Env{
		Engine:    eng,
		Ctx:       scriptCtx,
		ScriptDir: dir,
		Args:      scriptArgs,
		Stdout:    out,
	})

	// Ctrl-C: stop the script at its next step and wake any builtin that is
	// waiting; the lab is then torn down as on any other exit. Under -i,
	// Ctrl-C stops only what runs now (the script, or one REPL input).
	var intr interrupter
	intr.set(func() {
		script.Cancel("interrupted")
		stopScript()
	})
	ended := make(chan os.Signal, 1)
	go func() {
		for sig := range sigs {
			if sig == syscall.SIGINT && f.interactive {
				intr.fire()
				continue
			}
			ended <- sig
			intr.fire()
			endLab()
			return
		}
	}()
	endedBy := func() os.Signal {
		select {
		case sig := <-ended:
			ended <- sig
			return sig
		default:
			return nil
		}
	}

	code := exitOK
	if path != "" {
		_, err = script.Exec(path)
		if err == nil && f.testFunc != "" {
			err = script.Call(f.testFunc)
		} else if err != nil && f.testFunc != "" && endedBy() == nil {
			fmt.Fprint(os.Stderr, builtins.FormatError(err))
			return exitLoadFailed
		}
	}
	intr.set(nil)
	if sig := endedBy(); sig != nil {
		fmt.Fprintln(os.Stderr, "vscript: interrupted")
		return 128 + int(sig.(syscall.Signal))
	}
	if err != nil {
		fmt.Fprint(os.Stderr, builtins.FormatError(err))
		if !f.interactive {
			return exitFailed
		}
		// The REPL still starts: a student wants to look at what the
		// script left behind. The failure is remembered for the exit code.
		code = exitFailed
	}
	if !f.interactive {
		return code
	}

	in, editor := newLineReader()
	defer in.Close()
	if editor {
		fmt.Fprintln(os.Stderr, "vscript: the lab is yours: its globals and the builtins are here; Ctrl-D ends the lab.")
	}
	err = newREPL(script, in, os.Stdout, os.Stderr, &intr).run(labCtx)
	if sig := endedBy(); sig != nil {
		fmt.Fprintln(os.Stderr, "vscript: interrupted")
		return 128 + int(sig.(syscall.Signal))
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "vscript: %v\n", err)
		return exitFailed
	}
	return code
}

// parseWords turns the key=value words after the script into args.
func parseWords(words []string) (map[string]string, error) {
	m := map[string]string{}
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("argument %q: want key=value (the words after the script become its args dict)", w)
		}
		m[k] = v
	}
	return m, nil
}
