package builtins

import (
	"fmt"
	"regexp"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"
)

func init() {
	RegisterGlobal(Global{Name: "assert", Doc: "Assertions that fail the script with a clear message.",
		Value: func(*Env) starlark.Value {
			members := starlark.StringDict{}
			for _, m := range methodNames("assert") {
				members[m] = starlark.NewBuiltin("assert."+m, funcs["assert."+m].Fn)
			}
			return &starlarkstruct.Module{Name: "assert", Members: members}
		}})
	Register(Builtin{Name: "assert.eq", Params: "a, b, msg=None", Fn: assertEq,
		Doc: "Fails unless `a == b`, showing both."})
	Register(Builtin{Name: "assert.ne", Params: "a, b, msg=None", Fn: assertNe,
		Doc: "Fails if `a == b`."})
	Register(Builtin{Name: "assert.true", Params: "x, msg=None", Fn: assertTrue,
		Doc: "Fails unless `x` is true (non-empty, non-zero, not None, not False)."})
	Register(Builtin{Name: "assert.contains", Params: "haystack, needle, msg=None", Fn: assertContains,
		Doc: "Fails unless `needle in haystack` (a substring of a string, an element of a list, a key of a dict)."})
	Register(Builtin{Name: "assert.fails", Params: "fn, pattern", Fn: assertFails,
		Doc: "Calls `fn()`, fails unless it fails with an error matching the regular expression `pattern`; returns the error message."})
}

func assertFail(msg starlark.Value, format string, args ...any) error {
	text := fmt.Sprintf(format, args...)
	if s, ok := msg.(starlark.String); ok && s != "" {
		text = string(s) + ": " + text
	}
	return fmt.Errorf("assertion failed: %s", text)
}

func assertEq(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var x, y, msg starlark.Value = nil, nil, starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "a", &x, "b", &y, "msg?", &msg); err != nil {
		return nil, err
	}
	eq, err := starlark.Equal(x, y)
	if err != nil {
		return nil, err
	}
	if !eq {
		return nil, assertFail(msg, "%s != %s", repr(x), repr(y))
	}
	return starlark.None, nil
}

func assertNe(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var x, y, msg starlark.Value = nil, nil, starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "a", &x, "b", &y, "msg?", &msg); err != nil {
		return nil, err
	}
	eq, err := starlark.Equal(x, y)
	if err != nil {
		return nil, err
	}
	if eq {
		return nil, assertFail(msg, "both are %s", repr(x))
	}
	return starlark.None, nil
}

func assertTrue(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var x, msg starlark.Value = nil, starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "x", &x, "msg?", &msg); err != nil {
		return nil, err
	}
	if !x.Truth() {
		return nil, assertFail(msg, "%s is not true", repr(x))
	}
	return starlark.None, nil
}

func assertContains(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var hay, needle, msg starlark.Value = nil, nil, starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "haystack", &hay, "needle", &needle, "msg?", &msg); err != nil {
		return nil, err
	}
	var found bool
	if s, ok := hay.(starlark.String); ok {
		n, ok := needle.(starlark.String)
		if !ok {
			return nil, fmt.Errorf("needle must be a string when haystack is, got %s", needle.Type())
		}
		found = strings.Contains(string(s), string(n))
	} else {
		v, err := starlark.Binary(syntax.IN, needle, hay)
		if err != nil {
			return nil, err
		}
		found = bool(v.Truth())
	}
	if !found {
		return nil, assertFail(msg, "%s not in %s", repr(needle), repr(hay))
	}
	return starlark.None, nil
}

func assertFails(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var fn starlark.Callable
	var pattern string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "fn", &fn, "pattern", &pattern); err != nil {
		return nil, err
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("bad pattern: %v", err)
	}
	_, callErr := starlark.Call(thread, fn, nil, nil)
	if callErr == nil {
		return nil, fmt.Errorf("assertion failed: %s() succeeded; want an error matching %q", fn.Name(), pattern)
	}
	text := callErr.Error()
	if ee, ok := callErr.(*starlark.EvalError); ok {
		text = ee.Msg
	}
	if !re.MatchString(text) {
		return nil, fmt.Errorf("assertion failed: %s() failed with %q; want an error matching %q", fn.Name(), text, pattern)
	}
	return starlark.String(text), nil
}

// repr shows a value as Starlark source, truncated so one assertion cannot
// flood the terminal.
func repr(v starlark.Value) string {
	s := v.String()
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}
