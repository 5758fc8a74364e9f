package builtins

import (
	"fmt"
	"time"

	"go.starlark.net/lib/json"
	"go.starlark.net/starlark"
)

func init() {
	RegisterGlobal(Global{Name: "json", Doc: "The `json` module: `json.encode(x)`, `json.decode(s)`, `json.indent(s)`.",
		Value: func(*Env) starlark.Value { return json.Module }})
	RegisterGlobal(Global{Name: "args", Doc: "A dict of the `key=value` words given after the script on the command line.",
		Value: func(env *Env) starlark.Value { return strDict(env.Args) }})
	Register(Builtin{Name: "sleep", Params: `duration`, Fn: sleep,
		Doc: `Waits for duration: a string such as "1s" or "250ms", or a number of seconds. Ctrl-C interrupts it.`})
	Register(Builtin{Name: "wait_for", Params: `fn, timeout="5s"`, Fn: waitFor,
		Doc: "Calls `fn()` until it returns a true value, and returns that value. An error inside `fn` counts as " +
			"\"not yet\". At the timeout the script fails with the last error (or the last false value)."})
}

// parseDuration accepts "1s"-style strings and numbers of seconds.
func parseDuration(v starlark.Value) (time.Duration, error) {
	switch v := v.(type) {
	case starlark.String:
		d, err := time.ParseDuration(string(v))
		if err != nil {
			return 0, fmt.Errorf("bad duration %s (use e.g. \"1s\", \"250ms\")", v)
		}
		return d, nil
	case starlark.Int, starlark.Float:
		f, _ := starlark.AsFloat(v)
		return time.Duration(f * float64(time.Second)), nil
	}
	return 0, fmt.Errorf("bad duration %s: want a string like \"1s\" or a number of seconds", v.Type())
}

func sleep(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var dv starlark.Value
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "duration", &dv); err != nil {
		return nil, err
	}
	d, err := parseDuration(dv)
	if err != nil {
		return nil, err
	}
	ctx := env(thread).Ctx
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return starlark.None, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func waitFor(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var fn starlark.Callable
	var tv starlark.Value = starlark.String("5s")
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "fn", &fn, "timeout?", &tv); err != nil {
		return nil, err
	}
	timeout, err := parseDuration(tv)
	if err != nil {
		return nil, err
	}
	ctx := env(thread).Ctx
	deadline := time.Now().Add(timeout)
	pause := 5 * time.Millisecond
	var last string
	for {
		v, err := starlark.Call(thread, fn, nil, nil)
		switch {
		case err != nil:
			last = "last error: " + err.Error()
		case bool(v.Truth()):
			return v, nil
		default:
			last = "last result: " + v.String()
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s() not true after %s; %s", fn.Name(), timeout, last)
		}
		// Back off so a long wait does not spin, but start fast: most
		// conditions come true within milliseconds.
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if pause < 100*time.Millisecond {
			pause *= 2
		}
	}
}
