package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/chzyer/readline"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"vscript/builtins"
)

// `vscript -i`: after the script, a Starlark REPL in the same lab, with the
// script's globals and the builtins.
//
// It follows go.starlark.net/repl (an expression's value is printed and kept
// in `_`; other input runs as statements; a compound statement ends at a
// blank line) but is not that package: there, Ctrl-C only cancels a
// "context" thread-local that vscript's builtins do not read, and the line
// editor is used even when stdin is a pipe. Here each input runs on a thread
// of its own with a context of its own, so Ctrl-C stops that input — a
// blocked sleep or wait_for included — and the lab lives on; and the line
// editor (chzyer/readline, the one go.starlark.net/repl uses, with history)
// is used only on a terminal, so that tests and pipes drive the REPL line by
// line without prompts.

// errLineInterrupted is Ctrl-C typed at the prompt: the input so far is dropped.
var errLineInterrupted = errors.New("interrupted")

// lineReader is where REPL input comes from.
type lineReader interface {
	// ReadLine returns the next line without its newline: io.EOF at the end
	// (Ctrl-D), errLineInterrupted for Ctrl-C at the prompt.
	ReadLine(prompt string) (string, error)
	Close() error
}

// plainReader reads lines from a pipe or file, without prompts.
type plainReader struct{ r *bufio.Reader }

func (p *plainReader) ReadLine(string) (string, error) {
	line, err := p.r.ReadString('\n')
	if err == io.EOF && line != "" {
		err = nil // a last line without its newline still counts
	}
	if len(line) > 0 && line[len(line)-1] == '\n' {
		line = line[:len(line)-1]
	}
	return line, err
}

func (p *plainReader) Close() error { return nil }

// editorReader is the line editor on a terminal.
type editorReader struct{ rl *readline.Instance }

func (e *editorReader) ReadLine(prompt string) (string, error) {
	e.rl.SetPrompt(prompt)
	line, err := e.rl.Readline()
	if errors.Is(err, readline.ErrInterrupt) {
		return "", errLineInterrupted
	}
	return line, err
}

func (e *editorReader) Close() error { return e.rl.Close() }

// newLineReader reads the process's stdin: with the line editor when stdin
// and stdout are a terminal (readline puts the terminal, fd 0, in raw mode
// while it reads), else line by line.
func newLineReader() (lr lineReader, editor bool) {
	if readline.IsTerminal(int(os.Stdin.Fd())) && readline.IsTerminal(int(os.Stdout.Fd())) {
		cfg := &readline.Config{Prompt: ">>> "}
		if home, err := os.UserHomeDir(); err == nil {
			cfg.HistoryFile = filepath.Join(home, ".vscript_history")
		}
		if rl, err := readline.NewEx(cfg); err == nil {
			return &editorReader{rl}, true
		}
	}
	return &plainReader{bufio.NewReader(os.Stdin)}, false
}

// asyncReader reads on a goroutine of its own so that the REPL can stop
// waiting for input when the lab is ended (SIGTERM) while a read blocks.
type asyncReader struct {
	r    lineReader
	req  chan string
	resp chan lineResult
}

type lineResult struct {
	line string
	err  error
}

func newAsyncReader(r lineReader) *asyncReader {
	a := &asyncReader{r: r, req: make(chan string), resp: make(chan lineResult, 1)}
	go func() {
		for prompt := range a.req {
			line, err := r.ReadLine(prompt)
			a.resp <- lineResult{line, err}
		}
	}()
	return a
}

func (a *asyncReader) next(ctx context.Context, prompt string) (string, error) {
	select {
	case a.req <- prompt:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	select {
	case res := <-a.resp:
		return res.line, res.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// interrupter holds what a Ctrl-C stops now: the script while it runs, then
// the REPL input being evaluated; nothing while the REPL waits for input.
type interrupter struct {
	mu   sync.Mutex
	stop func()
}

func (i *interrupter) set(stop func()) {
	i.mu.Lock()
	i.stop = stop
	i.mu.Unlock()
}

func (i *interrupter) fire() {
	i.mu.Lock()
	stop := i.stop
	i.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// repl is one REPL session over a script's run.
type repl struct {
	script  *builtins.Script
	globals starlark.StringDict
	in      *asyncReader
	out     io.Writer // values of expressions
	errOut  io.Writer // errors
	intr    *interrupter
	opts    *syntax.FileOptions
}

func newREPL(script *builtins.Script, in lineReader, out, errOut io.Writer, intr *interrupter) *repl {
	opts := builtins.FileOptions()
	// load() at the prompt binds globally, as go.starlark.net/repl does:
	// the loaded names must outlive the input that loaded them.
	opts.LoadBindsGlobally = true
	return &repl{
		script:  script,
		globals: script.Globals(),
		in:      newAsyncReader(in),
		out:     out,
		errOut:  errOut,
		intr:    intr,
		opts:    opts,
	}
}

// run reads and evaluates until EOF (nil) or until ctx, the lab's, ends.
func (r *repl) run(ctx context.Context) error {
	for {
		err := r.one(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// errUnfinished is the parse error of an input that ends inside a statement.
var errUnfinished = errors.New("the input ended inside an unfinished statement")

// one reads one input — a line, or a compound statement and its blank line —
// and evaluates it. Starlark errors are printed, not returned: the REPL
// survives them.
func (r *repl) one(ctx context.Context) error {
	prompt := ">>> "
	var readErr error
	sawEOF := false
	readline := func() ([]byte, error) {
		if sawEOF {
			return nil, errUnfinished
		}
		line, err := r.in.next(ctx, prompt)
		if errors.Is(err, io.EOF) && prompt != ">>> " {
			// The input ends inside a compound statement: end it as a
			// blank line would, so a piped `def` without one still counts.
			sawEOF = true
			return []byte("\n"), nil
		}
		prompt = "... "
		if err != nil {
			readErr = err
			return nil, err
		}
		return []byte(line + "\n"), nil
	}

	f, err := r.opts.ParseCompoundStmt(builtins.REPLFile, readline)
	switch {
	case errors.Is(readErr, errLineInterrupted):
		return nil
	case readErr != nil:
		return readErr
	case err != nil:
		fmt.Fprint(r.errOut, builtins.FormatError(err))
	case len(f.Stmts) > 0:
		r.eval(ctx, f)
	}
	if sawEOF {
		return io.EOF
	}
	return nil
}

// eval runs one parsed input on a thread of its own, which Ctrl-C cancels.
func (r *repl) eval(ctx context.Context, f *syntax.File) {
	inputCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	thread := r.script.Thread("repl", inputCtx)
	r.intr.set(func() {
		thread.Cancel("interrupted")
		cancel()
	})
	defer r.intr.set(nil)

	if expr := soleExpr(f); expr != nil {
		v, err := starlark.EvalExprOptions(f.Options, thread, expr, r.globals)
		if err != nil {
			fmt.Fprint(r.errOut, builtins.FormatError(err))
		} else {
			r.globals["_"] = v
			if v != starlark.None {
				fmt.Fprintln(r.out, v)
			}
		}
	} else if err := starlark.ExecREPLChunk(f, thread, r.globals); err != nil {
		fmt.Fprint(r.errOut, builtins.FormatError(err))
	}
}

func soleExpr(f *syntax.File) syntax.Expr {
	if len(f.Stmts) == 1 {
		if st, ok := f.Stmts[0].(*syntax.ExprStmt); ok {
			return st.X
		}
	}
	return nil
}
