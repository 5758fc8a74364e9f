package builtins

import (
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

// Script is one run of a lab script and the modules it loads.
type Script struct {
	env     *Env
	predecl starlark.StringDict
	modules map[string]*module // by absolute path
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
	t := &starlark.Thread{
		Name:  name,
		Print: func(_ *starlark.Thread, msg string) { fmt.Fprintln(s.env.Stdout, msg) },
		Load:  s.load,
	}
	t.SetLocal(envKey, s.env)
	return t
}

// Cancel interrupts the script at its next step; blocking builtins return
// through the env's context.
func (s *Script) Cancel(reason string) { s.thread.Cancel(reason) }

// Exec runs the script at path (as the user wrote it: error positions show it
// so) and returns its globals.
func (s *Script) Exec(path string) (starlark.StringDict, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("script %s: %w", path, errors.Unwrap(err))
	}
	abs, _ := filepath.Abs(path)
	m := &module{loading: true}
	s.modules[abs] = m
	s.loading = []string{path}
	m.globals, m.err = starlark.ExecFileOptions(fileOptions, s.thread, path, src, s.predecl)
	m.loading = false
	return m.globals, m.err
}

// load implements load(): paths are relative to the loading file; each
// module runs once per run; a cycle is an error naming it.
func (s *Script) load(thread *starlark.Thread, name string) (starlark.StringDict, error) {
	from := thread.CallFrame(0).Pos.Filename()
	path := name
	if !filepath.IsAbs(name) {
		path = filepath.Join(filepath.Dir(from), name)
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
