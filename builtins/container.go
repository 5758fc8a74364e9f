package builtins

import (
	"fmt"
	"net"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"vscript/engine"
)

const runParams = `image, cmd=None, name=None, detach=False, network="bridge", aliases=[], ip=None, ports=[], ` +
	`volumes=[], volumes_from=[], env={}, workdir=None, user=None, hostname=None, entrypoint=None, rm=False, ` +
	`read_only=False, tty=False, memory=None, pids_limit=None, cpus=None, labels={}`

// runArgsDoc explains the arguments run and create share.
const runArgsDoc = "`image` is a name[:tag], an id or an image. " +
	"`cmd` replaces the image's CMD: a list (argv) or a string (run with `/bin/sh -c`). " +
	"`entrypoint` replaces its ENTRYPOINT: a string (one program, as `--entrypoint`) or a list; `\"\"` or `[]` clears it. " +
	"`network` is `\"bridge\"` (the default), `\"none\"`, `\"host\"` (or `host`), a network (object or name), or a container " +
	"(object or `\"container:NAME\"`) whose network namespace to share; `aliases` and `ip` apply on that network. " +
	"`ports` take `-p` syntax: `\"8000:80\"`, `\"127.0.0.1:8081:80/tcp\"`, `\"53:53/udp\"`, `\"80\"` (a free host port). " +
	"`volumes` take `-v` syntax — `\"/host/dir:/ctr/path[:ro]\"` (a host path starting with `./` or `../` is relative " +
	"to the script's directory), `\"NAME:/ctr/path[:ro]\"`, `\"/ctr/path\"` (anonymous) — or a tuple " +
	"`(volume, \"/ctr/path\")` with an optional third element `\"ro\"`. " +
	"`volumes_from` lists containers (objects or names; `\"NAME:ro\"` mounts read-only). " +
	"`env` and `labels` are dicts of strings. `memory` is bytes, or a string in Docker's units " +
	"(`\"512k\"`, `\"64m\"`, `\"1g\"`, base 1024); `cpus` a number of CPUs; `pids_limit` the most processes it may run."

func init() {
	Register(Builtin{Name: "run", Params: runParams, Fn: runBuiltin,
		Doc: "Runs a container, as `docker run`: creates it and starts it; unless `detach=True`, waits for it to exit " +
			"(a non-zero exit is not an error: see `.exit_code`) and then, with `rm=True`, removes it and its anonymous " +
			"volumes (the container returned is then gone). With `detach=True, rm=True` it is removed when it exits. " +
			"Returns the container (see `container`). " + runArgsDoc})
	Register(Builtin{Name: "create", Params: strings.Replace(runParams, " detach=False,", "", 1), Fn: createBuiltin,
		Doc: "Creates a container without starting it, as `docker create`; `.start()` starts it. A created container " +
			"can lend its volumes to others (`volumes_from`) without ever running. `rm=True` removes it when it exits " +
			"after a start. Returns the container. " + runArgsDoc})
	Register(Builtin{Name: "containers", Params: `all=False`, Fn: containersBuiltin,
		Doc: "The lab's running containers, as `docker ps`; with `all=True` also created and exited ones (`docker ps -a`)."})
	Register(Builtin{Name: "container", Params: `name`, Fn: containerBuiltin,
		Doc: "The container called `name` (or with that id or unique id prefix). Fails if there is none. A container's " +
			"attributes are looked up on each use: `.name .id .image` (the reference it was made from) `.status` " +
			"(created, running or exited) `.exit_code .pid` (0 unless running) `.ip` (its address on its first " +
			"network; None without one) `.ips` (a dict network → address, in attachment order) `.hostname`. " +
			"Containers compare equal when they are the same container."})

	Register(Builtin{Name: "container.start", Params: ``, Fn: containerStart,
		Doc: "Starts the container (`docker start`): a created one for the first time, an exited one again with the same filesystem."})
	Register(Builtin{Name: "container.stop", Params: `timeout=10`, Fn: containerStop,
		Doc: "Stops the container (`docker stop`): SIGTERM, then SIGKILL if it is still running after `timeout` " +
			"(seconds, or a duration string such as \"2s\")."})
	Register(Builtin{Name: "container.kill", Params: `signal="KILL"`, Fn: containerKill,
		Doc: "Sends a signal to the container's main process (`docker kill -s`): a name (\"KILL\", \"SIGTERM\", \"HUP\") or a number."})
	Register(Builtin{Name: "container.wait", Params: ``, Fn: containerWait,
		Doc: "Waits for the container to exit (`docker wait`) and returns its exit code. Ctrl-C interrupts it."})
	Register(Builtin{Name: "container.restart", Params: `timeout=10`, Fn: containerRestart,
		Doc: "Stops the container as `.stop(timeout)` does, then starts it again (`docker restart`)."})
	Register(Builtin{Name: "container.rm", Params: `force=False, volumes=False`, Fn: containerRm,
		Doc: "Removes the container (`docker rm`). A running container is an error unless `force=True` (which kills it). " +
			"`volumes=True` also removes its anonymous volumes; named volumes always stay."})
	Register(Builtin{Name: "container.logs", Params: ``, Fn: containerLogs,
		Doc: "What the container's main process has written to stdout and stderr, interleaved (`docker logs`)."})
	Register(Builtin{Name: "container.exec", Params: `cmd, env={}, workdir=None, user=None, check=False, stdin=None, tty=False`,
		Fn: containerExec,
		Doc: "Runs a program in the running container, in all of its namespaces (`docker exec`), and waits for it. " +
			"`cmd` is a list (argv) or a string (run with `/bin/sh -c`); `user` a name or uid[:gid]. Returns a result " +
			"with `.exit_code .ok .stdout .stderr .output`; `str()` of it is `.output`. With `check=True` a non-zero " +
			"exit fails the script, showing the command, exit code and output."})
	Register(Builtin{Name: "container.port", Params: `port`, Fn: containerPort,
		Doc: "The host port published for a container port (`docker port`): `port` is a number (TCP) or a string " +
			"such as \"80/tcp\" or \"53/udp\". Returns an int. Fails if the port is not published."})
	Register(Builtin{Name: "container.inspect", Params: ``, Fn: containerInspect,
		Doc: "The container as `docker inspect` shows it, as a dict: `Id`, `Name`, `State`, `Config`, `Mounts`, " +
			"`NetworkSettings` (`Networks`, `Ports`), `GraphDriver`. Keys are sorted."})
	Register(Builtin{Name: "container.diff", Params: ``, Fn: containerDiff,
		Doc: "The changes to the container's filesystem against its image (`docker diff`): a list of " +
			"`(kind, path)` tuples, kind \"A\" (added), \"C\" (changed) or \"D\" (deleted)."})
	Register(Builtin{Name: "container.commit", Params: `tag`, Fn: containerCommit,
		Doc: "Makes a new image of the container's image plus its changes, tagged `tag` (`docker commit`), and returns it."})
	Register(Builtin{Name: "container.read_file", Params: `path`, Fn: containerReadFile,
		Doc: "The content of the file at `path` inside the container, as a string. The container need not be running."})
	Register(Builtin{Name: "container.write_file", Params: `path, content`, Fn: containerWriteFile,
		Doc: "Writes `content` (a string) to the file at `path` inside the container, replacing it."})
	Register(Builtin{Name: "container.shell", Params: ``, Fn: containerShell,
		Doc: "Opens an interactive shell in the running container on vscript's terminal (`docker exec -it NAME sh`); " +
			"the script goes on when it exits."})
}

// containerValue is a container. It holds only its identity: everything
// else is looked up on each use, because status, pid and exit code change
// under the script's feet.
type containerValue struct {
	id, name string
	env      *Env
}

var (
	_ starlark.HasAttrs   = (*containerValue)(nil)
	_ starlark.Comparable = (*containerValue)(nil)
)

var containerAttrs = []string{"exit_code", "hostname", "id", "image", "ip", "ips", "name", "pid", "status"}

func newContainer(e *Env, info *engine.ContainerInfo) *containerValue {
	return &containerValue{id: info.ID, name: info.Name, env: e}
}

func (c *containerValue) String() string        { return "<container " + c.name + ">" }
func (c *containerValue) Type() string          { return "container" }
func (c *containerValue) Freeze()               {}
func (c *containerValue) Truth() starlark.Bool  { return true }
func (c *containerValue) Hash() (uint32, error) { return starlark.String(c.id).Hash() }

func (c *containerValue) CompareSameType(op syntax.Token, y starlark.Value, _ int) (bool, error) {
	same := c.id == y.(*containerValue).id
	switch op {
	case syntax.EQL:
		return same, nil
	case syntax.NEQ:
		return !same, nil
	}
	return false, fmt.Errorf("%s %s %s not implemented", c.Type(), op, y.Type())
}

func (c *containerValue) AttrNames() []string {
	return append(append([]string{}, containerAttrs...), methodNames("container")...)
}

func (c *containerValue) Attr(name string) (starlark.Value, error) {
	switch name {
	case "id":
		return starlark.String(c.id), nil
	case "name":
		return starlark.String(c.name), nil
	}
	if m := method("container", name, c); m != nil {
		return m, nil
	}
	if !slices.Contains(containerAttrs, name) {
		return nil, nil // Starlark reports "no .name field or method", with "did you mean"
	}
	info, err := c.env.Engine.Container(c.id)
	if err != nil {
		return nil, err
	}
	switch name {
	case "image":
		return starlark.String(info.Image), nil
	case "status":
		return starlark.String(info.Status), nil
	case "exit_code":
		return starlark.MakeInt(info.ExitCode), nil
	case "pid":
		return starlark.MakeInt(info.Pid), nil
	case "hostname":
		return starlark.String(info.Hostname), nil
	case "ip":
		if len(info.Networks) == 0 || info.Networks[0].IP == "" {
			return starlark.None, nil
		}
		return starlark.String(info.Networks[0].IP), nil
	case "ips":
		d := starlark.NewDict(len(info.Networks))
		for _, n := range info.Networks {
			d.SetKey(starlark.String(n.Network), starlark.String(n.IP))
		}
		return d, nil
	}
	return nil, nil
}

func runBuiltin(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var detach bool
	spec, err := unpackRun(thread, b, args, kwargs, &detach)
	if err != nil {
		return nil, err
	}
	rm := spec.AutoRemove
	// Attached, run removes the container itself after waiting, so that the
	// engine never races it; detached, only the engine can.
	spec.AutoRemove = rm && detach
	e := env(thread)
	info, err := e.Engine.Create(e.Ctx, spec)
	if err != nil {
		return nil, err
	}
	if err := e.Engine.Start(e.Ctx, info.ID); err != nil {
		// A run that fails leaves nothing half-made behind (DESIGN §4):
		// unlike docker run, the container that could not start goes.
		if rmErr := e.Engine.Remove(e.Ctx, info.ID, true, true); rmErr != nil {
			return nil, fmt.Errorf("%w (and removing it: %v)", err, rmErr)
		}
		return nil, err
	}
	c := newContainer(e, info)
	if detach {
		return c, nil
	}
	if _, err := e.Engine.Wait(e.Ctx, info.ID); err != nil {
		return nil, err
	}
	if rm {
		if err := e.Engine.Remove(e.Ctx, info.ID, false, true); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func createBuiltin(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	spec, err := unpackRun(thread, b, args, kwargs, nil)
	if err != nil {
		return nil, err
	}
	e := env(thread)
	info, err := e.Engine.Create(e.Ctx, spec)
	if err != nil {
		return nil, err
	}
	return newContainer(e, info), nil
}

// unpackRun turns the arguments of run (detach non-nil) or create into a
// RunSpec; rm=True arrives as AutoRemove.
func unpackRun(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple, detach *bool) (engine.RunSpec, error) {
	var spec engine.RunSpec
	var img starlark.Value
	none, empty := starlark.Value(starlark.None), starlark.Value(starlark.Tuple{})
	cmd, name, ip, workdir, user, hostname := none, none, none, none, none, none
	entrypoint, memory, pidsLimit, cpus := none, none, none, none
	aliases, ports, volumes, volumesFrom := empty, empty, empty, empty
	network := starlark.Value(starlark.String("bridge"))
	envd, labels := new(starlark.Dict), new(starlark.Dict)
	pairs := []any{"image", &img, "cmd?", &cmd, "name?", &name}
	if detach != nil {
		pairs = append(pairs, "detach?", detach)
	}
	pairs = append(pairs, "network?", &network, "aliases?", &aliases, "ip?", &ip, "ports?", &ports,
		"volumes?", &volumes, "volumes_from?", &volumesFrom, "env?", &envd, "workdir?", &workdir, "user?", &user,
		"hostname?", &hostname, "entrypoint?", &entrypoint, "rm?", &spec.AutoRemove, "read_only?", &spec.ReadOnly,
		"tty?", &spec.TTY, "memory?", &memory, "pids_limit?", &pidsLimit, "cpus?", &cpus, "labels?", &labels)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, pairs...); err != nil {
		return spec, err
	}

	var err error
	if spec.Image, err = refOf(img); err != nil {
		return spec, fmt.Errorf("image: %v", err)
	}
	if cmd != starlark.None {
		if spec.Cmd, err = argvOf(cmd); err != nil {
			return spec, fmt.Errorf("cmd: %v", err)
		}
	}
	if spec.Entrypoint, err = entrypointOf(entrypoint); err != nil {
		return spec, fmt.Errorf("entrypoint: %v", err)
	}
	strs := []struct {
		arg string
		v   starlark.Value
		dst *string
	}{{"name", name, &spec.Name}, {"ip", ip, &spec.IP}, {"workdir", workdir, &spec.Workdir},
		{"user", user, &spec.User}, {"hostname", hostname, &spec.Hostname}}
	for _, s := range strs {
		if *s.dst, err = optString(s.v); err != nil {
			return spec, fmt.Errorf("%s: %v", s.arg, err)
		}
	}
	if spec.Network, err = networkOf(network); err != nil {
		return spec, fmt.Errorf("network: %v", err)
	}
	if spec.Aliases, err = stringList(aliases, nil); err != nil {
		return spec, fmt.Errorf("aliases: %v", err)
	}
	if spec.Ports, err = stringList(ports, portOf); err != nil {
		return spec, fmt.Errorf("ports: %v", err)
	}
	scriptDir := env(thread).ScriptDir
	if spec.Volumes, err = stringList(volumes, func(v starlark.Value) (string, error) { return volumeOf(v, scriptDir) }); err != nil {
		return spec, fmt.Errorf("volumes: %v", err)
	}
	if spec.VolumesFrom, err = stringList(volumesFrom, refOf); err != nil {
		return spec, fmt.Errorf("volumes_from: %v", err)
	}
	envItems, err := stringItems(envd)
	if err != nil {
		return spec, fmt.Errorf("env: %v", err)
	}
	for _, kv := range envItems {
		spec.Env = append(spec.Env, kv[0]+"="+kv[1])
	}
	labelItems, err := stringItems(labels)
	if err != nil {
		return spec, fmt.Errorf("labels: %v", err)
	}
	for _, kv := range labelItems {
		if spec.Labels == nil {
			spec.Labels = map[string]string{}
		}
		spec.Labels[kv[0]] = kv[1]
	}
	if spec.Memory, err = memoryOf(memory); err != nil {
		return spec, fmt.Errorf("memory: %v", err)
	}
	if pidsLimit != starlark.None {
		if err := starlark.AsInt(pidsLimit, &spec.PidsLimit); err != nil {
			return spec, fmt.Errorf("pids_limit: want an int, got %s", pidsLimit.Type())
		}
	}
	if cpus != starlark.None {
		f, ok := starlark.AsFloat(cpus)
		if !ok || f < 0 {
			return spec, fmt.Errorf("cpus: want a non-negative number, got %s", cpus)
		}
		spec.CPUs = f
	}
	return spec, nil
}

// refOf names what v stands for: a string as given, an image by its
// reference, anything else with a string .name (container, network,
// volume) by that name.
func refOf(v starlark.Value) (string, error) {
	switch v := v.(type) {
	case starlark.String:
		return string(v), nil
	case *imageValue:
		return v.ref(), nil
	case starlark.HasAttrs:
		if n, err := v.Attr("name"); err == nil {
			if s, ok := n.(starlark.String); ok {
				return string(s), nil
			}
		}
	}
	return "", fmt.Errorf("want a name or an object, got %s", v.Type())
}

// networkOf reads run's network: a container means sharing its namespace,
// and the lab host value means its namespace, as "host" does.
func networkOf(v starlark.Value) (string, error) {
	switch v := v.(type) {
	case *containerValue:
		return "container:" + v.name, nil
	case *node:
		if v.name == "host" {
			return "host", nil
		}
	}
	return refOf(v)
}

func optString(v starlark.Value) (string, error) {
	if v == starlark.None {
		return "", nil
	}
	s, ok := v.(starlark.String)
	if !ok {
		return "", fmt.Errorf("want a string, got %s", v.Type())
	}
	return string(s), nil
}

// stringList reads a list (or tuple) of strings; elem, if given, converts
// each element instead.
func stringList(v starlark.Value, elem func(starlark.Value) (string, error)) ([]string, error) {
	switch v.(type) {
	case *starlark.List, starlark.Tuple:
	default:
		return nil, fmt.Errorf("want a list, got %s", v.Type())
	}
	if elem == nil {
		elem = func(x starlark.Value) (string, error) {
			s, ok := x.(starlark.String)
			if !ok {
				return "", fmt.Errorf("want a string, got %s", x.Type())
			}
			return string(s), nil
		}
	}
	var out []string
	it := starlark.Iterate(v)
	defer it.Done()
	var x starlark.Value
	for it.Next(&x) {
		s, err := elem(x)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// stringItems reads a dict of strings, in the dict's order.
func stringItems(d *starlark.Dict) ([][2]string, error) {
	var out [][2]string
	for _, item := range d.Items() {
		k, ok1 := item[0].(starlark.String)
		v, ok2 := item[1].(starlark.String)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("want a dict of strings, got %s: %s", item[0].Type(), item[1].Type())
		}
		out = append(out, [2]string{string(k), string(v)})
	}
	return out, nil
}

// entrypointOf reads run's entrypoint. Unlike cmd, a string is one program
// (as --entrypoint), and an empty one clears the image's.
func entrypointOf(v starlark.Value) ([]string, error) {
	switch v := v.(type) {
	case starlark.NoneType:
		return nil, nil
	case starlark.String:
		if v == "" {
			return []string{}, nil
		}
		return []string{string(v)}, nil
	case *starlark.List, starlark.Tuple:
		if v.(starlark.Sequence).Len() == 0 {
			return []string{}, nil
		}
		return argvOf(v)
	}
	return nil, fmt.Errorf("want a string or a list of strings, got %s", v.Type())
}

// portOf reads one element of ports: -p syntax, or a bare container port.
func portOf(v starlark.Value) (string, error) {
	switch v := v.(type) {
	case starlark.String:
		return string(v), nil
	case starlark.Int:
		return v.String(), nil
	}
	return "", fmt.Errorf("want a string such as \"8000:80\" or a port number, got %s", v.Type())
}

// volumeOf reads one element of volumes: -v syntax, or (volume, path[, "ro"]).
// Host paths relative to the script are made absolute here: the engine does
// not know where the script is.
func volumeOf(v starlark.Value, scriptDir string) (string, error) {
	switch v := v.(type) {
	case starlark.String:
		src, rest, ok := strings.Cut(string(v), ":")
		if !ok {
			return string(v), nil // an anonymous volume: only a container path
		}
		return scriptRelative(src, scriptDir) + ":" + rest, nil
	case starlark.Tuple:
		if len(v) < 2 || len(v) > 3 {
			return "", fmt.Errorf("want (volume, path) or (volume, path, \"ro\"), got a tuple of %d", len(v))
		}
		src, err := refOf(v[0])
		if err != nil {
			return "", err
		}
		path, ok := v[1].(starlark.String)
		if !ok {
			return "", fmt.Errorf("container path: want a string, got %s", v[1].Type())
		}
		spec := scriptRelative(src, scriptDir) + ":" + string(path)
		if len(v) == 3 {
			mode, ok := v[2].(starlark.String)
			if !ok || (mode != "ro" && mode != "rw") {
				return "", fmt.Errorf("mode: want \"ro\" or \"rw\", got %s", v[2])
			}
			spec += ":" + string(mode)
		}
		return spec, nil
	}
	return "", fmt.Errorf("want a string or a (volume, path) tuple, got %s", v.Type())
}

func scriptRelative(src, scriptDir string) string {
	if src == "." || src == ".." || strings.HasPrefix(src, "./") || strings.HasPrefix(src, "../") {
		return filepath.Join(scriptDir, src)
	}
	return src
}

// sizeRE is Docker's RAMInBytes syntax: a number, a unit, optional "i" and "b".
var sizeRE = regexp.MustCompile(`^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$`)

// memoryOf reads a size as Docker's --memory does: bytes, or a number with a
// binary unit.
func memoryOf(v starlark.Value) (int64, error) {
	switch v := v.(type) {
	case starlark.NoneType:
		return 0, nil
	case starlark.Int:
		n, ok := v.Int64()
		if !ok || n < 0 {
			return 0, fmt.Errorf("bad size %s", v)
		}
		return n, nil
	case starlark.String:
		m := sizeRE.FindStringSubmatch(string(v))
		if m == nil {
			return 0, fmt.Errorf("bad size %q (use bytes or e.g. \"512k\", \"64m\", \"1g\")", string(v))
		}
		f, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			return 0, fmt.Errorf("bad size %q", string(v))
		}
		if m[2] != "" {
			f *= float64(int64(1) << (10 * (strings.Index("kmgtp", strings.ToLower(m[2])) + 1)))
		}
		return int64(f), nil
	}
	return 0, fmt.Errorf("want bytes or a size string such as \"64m\", got %s", v.Type())
}

func containersBuiltin(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var all bool
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "all?", &all); err != nil {
		return nil, err
	}
	e := env(thread)
	infos, err := e.Engine.Containers(all)
	if err != nil {
		return nil, err
	}
	list := make([]starlark.Value, len(infos))
	for i, info := range infos {
		list[i] = newContainer(e, info)
	}
	return starlark.NewList(list), nil
}

func containerBuiltin(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name starlark.Value
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "name", &name); err != nil {
		return nil, err
	}
	ref, err := refOf(name)
	if err != nil {
		return nil, fmt.Errorf("name: %v", err)
	}
	e := env(thread)
	info, err := e.Engine.Container(ref)
	if err != nil {
		return nil, err
	}
	return newContainer(e, info), nil
}

// noArgs unpacks a method that takes none and returns its receiver.
func noArgs(b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (*containerValue, error) {
	if err := starlark.UnpackArgs(b.Name(), args, kwargs); err != nil {
		return nil, err
	}
	return b.Receiver().(*containerValue), nil
}

func containerStart(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	c, err := noArgs(b, args, kwargs)
	if err != nil {
		return nil, err
	}
	e := env(thread)
	return starlark.None, e.Engine.Start(e.Ctx, c.id)
}

// timeoutArg unpacks the one argument of stop and restart: seconds or a
// duration string, 10 s by default, as docker stop -t.
func timeoutArg(b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (time.Duration, error) {
	var tv starlark.Value = starlark.MakeInt(10)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "timeout?", &tv); err != nil {
		return 0, err
	}
	timeout, err := parseDuration(tv)
	if err != nil {
		return 0, fmt.Errorf("timeout: %v", err)
	}
	return timeout, nil
}

func containerStop(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	timeout, err := timeoutArg(b, args, kwargs)
	if err != nil {
		return nil, err
	}
	e := env(thread)
	return starlark.None, e.Engine.Stop(e.Ctx, b.Receiver().(*containerValue).id, timeout)
}

func containerKill(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var sig starlark.Value = starlark.String("KILL")
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "signal?", &sig); err != nil {
		return nil, err
	}
	var signal string
	switch s := sig.(type) {
	case starlark.String:
		signal = string(s)
	case starlark.Int:
		signal = s.String()
	default:
		return nil, fmt.Errorf("signal: want a name such as \"TERM\" or a number, got %s", sig.Type())
	}
	e := env(thread)
	return starlark.None, e.Engine.Kill(e.Ctx, b.Receiver().(*containerValue).id, signal)
}

func containerWait(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	c, err := noArgs(b, args, kwargs)
	if err != nil {
		return nil, err
	}
	e := env(thread)
	code, err := e.Engine.Wait(e.Ctx, c.id)
	if err != nil {
		return nil, err
	}
	return starlark.MakeInt(code), nil
}

func containerRestart(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	timeout, err := timeoutArg(b, args, kwargs)
	if err != nil {
		return nil, err
	}
	e := env(thread)
	return starlark.None, e.Engine.Restart(e.Ctx, b.Receiver().(*containerValue).id, timeout)
}

func containerRm(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var force, volumes bool
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "force?", &force, "volumes?", &volumes); err != nil {
		return nil, err
	}
	e := env(thread)
	return starlark.None, e.Engine.Remove(e.Ctx, b.Receiver().(*containerValue).id, force, volumes)
}

func containerLogs(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	c, err := noArgs(b, args, kwargs)
	if err != nil {
		return nil, err
	}
	logs, err := env(thread).Engine.Logs(c.id)
	if err != nil {
		return nil, err
	}
	return starlark.String(logs), nil
}

func containerExec(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var cmd starlark.Value
	var envd = new(starlark.Dict)
	var workdir, user, stdin starlark.Value = starlark.None, starlark.None, starlark.None
	var check, tty bool
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "cmd", &cmd, "env?", &envd, "workdir?", &workdir,
		"user?", &user, "check?", &check, "stdin?", &stdin, "tty?", &tty); err != nil {
		return nil, err
	}
	spec, err := execSpec(cmd, envd, workdir, stdin)
	if err != nil {
		return nil, err
	}
	u, err := optString(user)
	if err != nil {
		return nil, fmt.Errorf("user: %v", err)
	}
	e := env(thread)
	res, err := e.Engine.ContainerExec(e.Ctx, b.Receiver().(*containerValue).id,
		engine.ContainerExecSpec{ExecSpec: spec, User: u, TTY: tty})
	if err != nil {
		return nil, err
	}
	return checkResult(spec.Args, res, check)
}

func containerPort(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var pv starlark.Value
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "port", &pv); err != nil {
		return nil, err
	}
	var port string
	switch p := pv.(type) {
	case starlark.Int:
		port = p.String()
	case starlark.String:
		port = string(p)
	default:
		return nil, fmt.Errorf("port: want a number or a string such as \"53/udp\", got %s", pv.Type())
	}
	hostPort, err := env(thread).Engine.Port(b.Receiver().(*containerValue).id, port)
	if err != nil {
		return nil, err
	}
	_, ps, err := net.SplitHostPort(hostPort)
	if err != nil {
		return nil, fmt.Errorf("port %s: engine answered %q: %v", port, hostPort, err)
	}
	n, err := strconv.Atoi(ps)
	if err != nil {
		return nil, fmt.Errorf("port %s: engine answered %q", port, hostPort)
	}
	return starlark.MakeInt(n), nil
}

func containerInspect(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	c, err := noArgs(b, args, kwargs)
	if err != nil {
		return nil, err
	}
	m, err := env(thread).Engine.Inspect(c.id)
	if err != nil {
		return nil, err
	}
	return toStarlark(m)
}

// toStarlark converts the engine's JSON-like data. Dict keys are sorted, and
// nil slices and maps are None, as `docker inspect` shows them as null. Typed
// slices, maps and structs are taken as encoding/json takes them, so the
// engine may use Docker's own shapes (map[string]struct{} for a set).
func toStarlark(x any) (starlark.Value, error) {
	switch x := x.(type) {
	case nil:
		return starlark.None, nil
	case string:
		return starlark.String(x), nil
	case bool:
		return starlark.Bool(x), nil
	case int:
		return starlark.MakeInt(x), nil
	case float64:
		return starlark.Float(x), nil
	}
	rv := reflect.ValueOf(x)
	switch rv.Kind() {
	case reflect.String:
		return starlark.String(rv.String()), nil
	case reflect.Bool:
		return starlark.Bool(rv.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return starlark.MakeInt64(rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return starlark.MakeUint64(rv.Uint()), nil
	case reflect.Float32, reflect.Float64:
		return starlark.Float(rv.Float()), nil
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return starlark.None, nil
		}
		return toStarlark(rv.Elem().Interface())
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return starlark.None, nil
		}
		list := make([]starlark.Value, rv.Len())
		for i := range list {
			v, err := toStarlark(rv.Index(i).Interface())
			if err != nil {
				return nil, err
			}
			list[i] = v
		}
		return starlark.NewList(list), nil
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			break
		}
		if rv.IsNil() {
			return starlark.None, nil
		}
		keys := make([]string, 0, rv.Len())
		for _, k := range rv.MapKeys() {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		d := starlark.NewDict(len(keys))
		for _, k := range keys {
			v, err := toStarlark(rv.MapIndex(reflect.ValueOf(k).Convert(rv.Type().Key())).Interface())
			if err != nil {
				return nil, fmt.Errorf("%s: %v", k, err)
			}
			d.SetKey(starlark.String(k), v)
		}
		return d, nil
	case reflect.Struct:
		return structDict(rv)
	}
	return nil, fmt.Errorf("cannot show a %T", x)
}

// structDict shows a struct the way encoding/json does: exported fields
// under their json names (omitempty drops zero values), sorted; struct{},
// the element of Docker's sets, is an empty dict.
func structDict(rv reflect.Value) (starlark.Value, error) {
	fields := map[string]any{}
	for i := 0; i < rv.NumField(); i++ {
		f := rv.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" && opts == "" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if strings.Contains(opts, "omitempty") && rv.Field(i).IsZero() {
			continue
		}
		fields[name] = rv.Field(i).Interface()
	}
	return toStarlark(fields)
}

func containerDiff(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	c, err := noArgs(b, args, kwargs)
	if err != nil {
		return nil, err
	}
	changes, err := env(thread).Engine.Diff(c.id)
	if err != nil {
		return nil, err
	}
	list := make([]starlark.Value, len(changes))
	for i, ch := range changes {
		list[i] = starlark.Tuple{starlark.String(ch.Kind), starlark.String(ch.Path)}
	}
	return starlark.NewList(list), nil
}

func containerCommit(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var tag string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "tag", &tag); err != nil {
		return nil, err
	}
	e := env(thread)
	info, err := e.Engine.Commit(e.Ctx, b.Receiver().(*containerValue).id, tag)
	if err != nil {
		return nil, err
	}
	return &imageValue{info: info}, nil
}

func containerReadFile(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var path string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path", &path); err != nil {
		return nil, err
	}
	data, err := env(thread).Engine.ReadFile(b.Receiver().(*containerValue).id, path)
	if err != nil {
		return nil, err
	}
	return starlark.String(data), nil
}

func containerWriteFile(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var path string
	var content starlark.Value
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path", &path, "content", &content); err != nil {
		return nil, err
	}
	var data []byte
	switch c := content.(type) {
	case starlark.String:
		data = []byte(c)
	case starlark.Bytes:
		data = []byte(c)
	default:
		return nil, fmt.Errorf("content: want a string, got %s", content.Type())
	}
	return starlark.None, env(thread).Engine.WriteFile(b.Receiver().(*containerValue).id, path, data)
}

func containerShell(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	c, err := noArgs(b, args, kwargs)
	if err != nil {
		return nil, err
	}
	e := env(thread)
	return starlark.None, e.Engine.Shell(e.Ctx, c.id)
}
