package builtins

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"vscript/engine/errdefs"
)

// fileOptions: lab scripts are programs, not config files — top-level
// control flow, while loops, sets and reassigned globals are allowed.
var fileOptions = &syntax.FileOptions{
	Set:             true,
	While:           true,
	TopLevelControl: true,
	GlobalReassign:  true,
	Recursion:       true,
}

// FileOptions returns the dialect lab scripts are written in, for callers
// that parse them (test discovery, the REPL).
func FileOptions() *syntax.FileOptions {
	opts := *fileOptions
	return &opts
}

// REPLFile is the file name of code typed at the REPL; a load() from it is
// relative to the script's directory.
const REPLFile = "<stdin>"

// Script is one run of a lab script and the modules it loads.
type Script struct {
	env     *Env
	predecl starlark.StringDict
	modules map[string]*module // by absolute path
	main    *module            // the script Exec ran
	loading []string           // the chain of files being loaded, for cycle reports
	thread  *starlark.Thread
}

type module struct {
	globals starlark.StringDict
	err     error
	loading bool
}

// NewScript prepares a run with env.
func NewScript(env *Env) *Script {
	s := &Script{env: env, modules: map[string]*module{}}
	s.predecl = predeclared(env)
	s.thread = s.newThread("main")
	return s
}

func (s *Script) newThread(name string) *starlark.Thread {
	return s.threadWith(name, s.env)
}

func (s *Script) threadWith(name string, env *Env) *starlark.Thread {
	t := &starlark.Thread{
		Name:  name,
		Print: func(_ *starlark.Thread, msg string) { fmt.Fprintln(env.Stdout, msg) },
		Load:  s.load,
	}
	t.SetLocal(envKey, env)
	return t
}

// Thread returns a new thread of this run whose blocking builtins give up
// when ctx is done. The REPL runs each input on its own so that Ctrl-C stops
// that input (Thread.Cancel is sticky) and not the lab.
func (s *Script) Thread(name string, ctx context.Context) *starlark.Thread {
	env := *s.env
	env.Ctx = ctx
	return s.threadWith(name, &env)
}

// Cancel interrupts the script at its next step; blocking builtins return
// through the env's context.
func (s *Script) Cancel(reason string) { s.thread.Cancel(reason) }

// Exec runs the script at path (as the user wrote it: error positions show it
// so) and returns its globals.
//
// Unlike loaded modules, the script's globals are not frozen afterwards: no
// other module sees them, and the code that may run after the top level — a
// test function, REPL input — should be able to append to a list the script
// made, as in Python.
func (s *Script) Exec(path string) (starlark.StringDict, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("script %s: %w", path, errors.Unwrap(err))
	}
	abs, _ := filepath.Abs(path)
	m := &module{loading: true}
	s.modules[abs] = m
	s.main = m
	s.loading = []string{path}
	_, prog, err := starlark.SourceProgramOptions(fileOptions, path, src, s.predecl.Has)
	if err != nil {
		m.err = err
	} else {
		m.globals, m.err = prog.Init(s.thread, s.predecl)
	}
	m.loading = false
	return m.globals, m.err
}

// Globals returns what code typed after the script sees: the predeclared
// builtins overlaid with the script's globals (those bound before it stopped,
// if it failed; none before Exec). The dict is new, for the caller to extend.
func (s *Script) Globals() starlark.StringDict {
	g := make(starlark.StringDict, len(s.predecl))
	for k, v := range s.predecl {
		g[k] = v
	}
	if s.main != nil {
		for k, v := range s.main.globals {
			g[k] = v
		}
	}
	return g
}

// Call calls the script's global function name with no arguments, on the
// script's thread (so Cancel stops it): how `vscript test` runs a test_
// function after the top level has run.
func (s *Script) Call(name string) error {
	var v starlark.Value
	if s.main != nil {
		v = s.main.globals[name]
	}
	if v == nil {
		return fmt.Errorf("call %s: %w", name, errdefs.ErrNotFound)
	}
	fn, ok := v.(starlark.Callable)
	if !ok {
		return fmt.Errorf("call %s: a %s is not callable: %w", name, v.Type(), errdefs.ErrInvalid)
	}
	_, err := starlark.Call(s.thread, fn, nil, nil)
	return err
}

// load implements load(): paths are relative to the loading file; each
// module runs once per run; a cycle is an error naming it.
func (s *Script) load(thread *starlark.Thread, name string) (starlark.StringDict, error) {
	from := thread.CallFrame(0).Pos.Filename()
	dir := filepath.Dir(from)
	if from == REPLFile {
		dir = s.env.ScriptDir
	}
	path := name
	if !filepath.IsAbs(name) {
		path = filepath.Join(dir, name)
	}
	abs, _ := filepath.Abs(path)
	if m, ok := s.modules[abs]; ok {
		if m.loading {
			return nil, fmt.Errorf("cycle in load graph: %s -> %s", strings.Join(s.loading, " -> "), path)
		}
		return m.globals, m.err
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, errors.Unwrap(err))
	}
	m := &module{loading: true}
	s.modules[abs] = m
	s.loading = append(s.loading, path)
	t := s.newThread("load " + name)
	m.globals, m.err = starlark.ExecFileOptions(fileOptions, t, path, src, s.predecl)
	var evalErr *starlark.EvalError
	if errors.As(m.err, &evalErr) {
		// The loading file's backtrace stops at its load statement: say
		// where in the module it failed, too.
		m.err = errors.New(strings.TrimSuffix(evalErr.Backtrace(), "\n"))
	}
	m.loading = false
	s.loading = s.loading[:len(s.loading)-1]
	if m.globals != nil {
		m.globals.Freeze()
	}
	return m.globals, m.err
}

// FormatError renders a script error for the terminal: the Starlark
// backtrace, every frame as file:line:col, then a hint if the engine gave one.
func FormatError(err error) string {
	var b strings.Builder
	var evalErr *starlark.EvalError
	if errors.As(err, &evalErr) {
		b.WriteString(evalErr.Backtrace())
	} else {
		b.WriteString(err.Error())
	}
	b.WriteString("\n")
	if hint := errdefs.Hint(err); hint != "" {
		fmt.Fprintf(&b, "hint: %s\n", hint)
	}
	return b.String()
}
