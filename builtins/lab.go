package builtins

import (
	"fmt"

	"go.starlark.net/starlark"

	"vscript/engine"
)

func init() {
	RegisterGlobal(Global{Name: "host", Value: func(env *Env) starlark.Value { return &node{"host", env} },
		Doc: "The lab host: the machine the lab's containers run on. Sandboxed, it is a namespace of its own " +
			"(address 198.51.100.2 on its uplink to the world); with `--host`, the real machine. " +
			"Attribute `.ip`."})
	RegisterGlobal(Global{Name: "world", Value: func(env *Env) starlark.Value { return &node{"world", env} },
		Doc: "The simulated outside world (198.51.100.1): an HTTP server on port 80 that answers every GET with " +
			"the address the request came from, and a DNS server for `*.world.test`. Not available with `--host`. " +
			"Attribute `.ip`."})
	for _, typ := range []string{"host", "world"} {
		Register(Builtin{Name: typ + ".exec", Params: `cmd, env={}, workdir=None, stdin=None, check=False`, Fn: nodeExec,
			Doc: "Runs a program of the machine inside the " + typ + "'s namespaces and waits for it. `cmd` is a list " +
				"(argv) or a string (run with `/bin/sh -c`). Returns a result with `.exit_code .ok .stdout .stderr " +
				".output`; `str()` of it is `.output`. With `check=True` a non-zero exit fails the script."})
	}
	Register(Builtin{Name: "host.iptables", Params: `table="nat"`, Fn: hostIptables,
		Doc: "The lab host's iptables rules of `table` (nat, filter, mangle, raw) as `iptables-save` prints them, " +
			"without its comment lines and counters."})
	Register(Builtin{Name: "http_get", Params: `url, via=host, timeout="5s"`, Fn: httpGet,
		Doc: "A native HTTP GET from inside the network namespace of `via` (host, world or a running container, whose " +
			"names it resolves as a program in the container would). Returns `.status " +
			".body .headers`. A connection that fails, or no answer within `timeout`, fails the script."})
}

// node is the value of host and world. Its address is looked up on use, so
// that `world` in --host mode fails where it is used, with a hint.
type node struct {
	name string
	env  *Env
}

func (n *node) String() string        { return n.name }
func (n *node) Type() string          { return n.name }
func (n *node) Freeze()               {}
func (n *node) Truth() starlark.Bool  { return true }
func (n *node) Hash() (uint32, error) { return starlark.String(n.name).Hash() }
func (n *node) AttrNames() []string   { return append([]string{"ip"}, methodNames(n.name)...) }

func (n *node) Attr(name string) (starlark.Value, error) {
	if name == "ip" {
		ip, err := n.env.Engine.Address(n.name)
		if err != nil {
			return nil, err
		}
		return starlark.String(ip), nil
	}
	if m := method(n.name, name, n); m != nil {
		return m, nil
	}
	return nil, nil
}

func nodeExec(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	n := b.Receiver().(*node)
	var cmd starlark.Value
	var envd = new(starlark.Dict)
	var workdir, stdin starlark.Value = starlark.None, starlark.None
	var check bool
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "cmd", &cmd, "env?", &envd, "workdir?", &workdir,
		"stdin?", &stdin, "check?", &check); err != nil {
		return nil, err
	}
	spec, err := execSpec(cmd, envd, workdir, stdin)
	if err != nil {
		return nil, err
	}
	e := env(thread)
	res, err := e.Engine.Exec(e.Ctx, n.name, spec)
	if err != nil {
		return nil, err
	}
	return checkResult(spec.Args, res, check)
}

// execSpec unpacks the arguments shared by every exec-like builtin.
func execSpec(cmd starlark.Value, envd *starlark.Dict, workdir, stdin starlark.Value) (engine.ExecSpec, error) {
	var spec engine.ExecSpec
	argv, err := argvOf(cmd)
	if err != nil {
		return spec, fmt.Errorf("cmd: %v", err)
	}
	spec.Args = argv
	for _, item := range envd.Items() {
		k, ok1 := starlark.AsString(item[0])
		v, ok2 := starlark.AsString(item[1])
		if !ok1 || !ok2 {
			return spec, fmt.Errorf("env: want a dict of strings, got %s: %s", item[0].Type(), item[1].Type())
		}
		spec.Env = append(spec.Env, k+"="+v)
	}
	if workdir != starlark.None {
		s, ok := starlark.AsString(workdir)
		if !ok {
			return spec, fmt.Errorf("workdir: want a string, got %s", workdir.Type())
		}
		spec.Dir = s
	}
	if stdin != starlark.None {
		s, ok := starlark.AsString(stdin)
		if !ok {
			return spec, fmt.Errorf("stdin: want a string, got %s", stdin.Type())
		}
		spec.Stdin = []byte(s)
	}
	return spec, nil
}

// argvOf takes a command as scripts write it: a list of strings is argv, a
// string is a shell command line.
func argvOf(v starlark.Value) ([]string, error) {
	switch v := v.(type) {
	case starlark.String:
		return []string{"/bin/sh", "-c", string(v)}, nil
	case *starlark.List, starlark.Tuple:
		var argv []string
		it := starlark.Iterate(v)
		defer it.Done()
		var x starlark.Value
		for it.Next(&x) {
			s, ok := starlark.AsString(x)
			if !ok {
				return nil, fmt.Errorf("want a list of strings, found %s", x.Type())
			}
			argv = append(argv, s)
		}
		if len(argv) == 0 {
			return nil, fmt.Errorf("empty command")
		}
		return argv, nil
	}
	return nil, fmt.Errorf("want a string or a list of strings, got %s", v.Type())
}

// checkResult wraps an exec result, failing the script if check is set and
// the program did not succeed.
func checkResult(argv []string, res *engine.ExecResult, check bool) (starlark.Value, error) {
	if check && res.ExitCode != 0 {
		return nil, fmt.Errorf("%s: exit code %d\n%s", commandText(argv), res.ExitCode, res.Output)
	}
	return execResult(res), nil
}

func commandText(argv []string) string {
	if len(argv) == 3 && argv[0] == "/bin/sh" && argv[1] == "-c" {
		return fmt.Sprintf("%q", argv[2])
	}
	return fmt.Sprintf("%q", argv)
}

func execResult(r *engine.ExecResult) starlark.Value {
	return &attrs{typ: "exec_result", str: r.Output, fields: map[string]starlark.Value{
		"exit_code": starlark.MakeInt(r.ExitCode),
		"ok":        starlark.Bool(r.ExitCode == 0),
		"stdout":    starlark.String(r.Stdout),
		"stderr":    starlark.String(r.Stderr),
		"output":    starlark.String(r.Output),
	}}
}

func hostIptables(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	table := "nat"
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "table?", &table); err != nil {
		return nil, err
	}
	e := env(thread)
	out, err := e.Engine.Iptables(e.Ctx, table)
	if err != nil {
		return nil, err
	}
	return starlark.String(out), nil
}

func httpGet(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var url string
	var via starlark.Value = starlark.String("host")
	var tv starlark.Value = starlark.String("5s")
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "url", &url, "via?", &via, "timeout?", &tv); err != nil {
		return nil, err
	}
	timeout, err := parseDuration(tv)
	if err != nil {
		return nil, err
	}
	target, err := placeName(via)
	if err != nil {
		return nil, fmt.Errorf("via: %v", err)
	}
	e := env(thread)
	resp, err := e.Engine.HTTPGet(e.Ctx, target, url, timeout)
	if err != nil {
		return nil, err
	}
	return &attrs{typ: "http_response", str: resp.Body, fields: map[string]starlark.Value{
		"status":  starlark.MakeInt(resp.Status),
		"body":    starlark.String(resp.Body),
		"headers": strDict(resp.Headers),
	}}, nil
}

// placeName names where a connection or program starts: a lab node value or
// its name.
func placeName(v starlark.Value) (string, error) {
	switch v := v.(type) {
	case *node:
		return v.name, nil
	case starlark.String:
		return string(v), nil
	case *containerValue:
		return v.name, nil
	}
	return "", fmt.Errorf("want host, world or a name, got %s", v.Type())
}
