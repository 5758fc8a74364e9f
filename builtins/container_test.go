package builtins

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"vscript/engine"
)

// runIn is run that also tells the script's directory, for paths made
// absolute from it.
func runIn(t *testing.T, src string) (out string, fake *fakeEngine, dir string, err error) {
	t.Helper()
	dir = t.TempDir()
	path := filepath.Join(dir, "lab.star")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	fake = &fakeEngine{}
	s := NewScript(&Env{Engine: fake, Ctx: context.Background(), ScriptDir: dir, Stdout: &buf})
	_, err = s.Exec(path)
	return buf.String(), fake, dir, err
}

// The last container spec the script made must be want; "$DIR" in want's
// volumes stands for the script's directory, "$PARENT" for its parent.
func TestRunArguments(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want engine.RunSpec
	}{
		{`create("busybox")`, engine.RunSpec{Image: "busybox", Network: "bridge"}},
		{`create("busybox", "echo hi")`,
			engine.RunSpec{Image: "busybox", Network: "bridge", Cmd: []string{"/bin/sh", "-c", "echo hi"}}},
		{`create("busybox", ["echo", "hi"])`,
			engine.RunSpec{Image: "busybox", Network: "bridge", Cmd: []string{"echo", "hi"}}},
		{`create("busybox", cmd = ("ls",), entrypoint = "/bin/env")`,
			engine.RunSpec{Image: "busybox", Network: "bridge", Cmd: []string{"ls"}, Entrypoint: []string{"/bin/env"}}},
		{`create("busybox", entrypoint = ["/bin/sh", "-c"])`,
			engine.RunSpec{Image: "busybox", Network: "bridge", Entrypoint: []string{"/bin/sh", "-c"}}},
		{`create("busybox", entrypoint = "")`, engine.RunSpec{Image: "busybox", Network: "bridge", Entrypoint: []string{}}},
		{`create("busybox", entrypoint = [])`, engine.RunSpec{Image: "busybox", Network: "bridge", Entrypoint: []string{}}},
		{`create(image("httpd"), name = "web", hostname = "h", workdir = "/w", user = "33:33", ip = "172.18.0.9")`,
			engine.RunSpec{Image: "httpd:latest", Name: "web", Hostname: "h", Workdir: "/w", User: "33:33", IP: "172.18.0.9",
				Network: "bridge"}},
		{`create("busybox", network = "mynet", aliases = ["db", "sql"])`,
			engine.RunSpec{Image: "busybox", Network: "mynet", Aliases: []string{"db", "sql"}}},
		{`create("busybox", network = struct(name = "net1"))`, engine.RunSpec{Image: "busybox", Network: "net1"}},
		{`create("busybox", network = create("busybox", name = "db"))`,
			engine.RunSpec{Image: "busybox", Network: "container:db"}},
		{`create("busybox", network = "container:db")`, engine.RunSpec{Image: "busybox", Network: "container:db"}},
		{`create("busybox", network = host)`, engine.RunSpec{Image: "busybox", Network: "host"}},
		{`create("busybox", ports = ["8000:80", "127.0.0.1:8081:80/tcp", 53])`,
			engine.RunSpec{Image: "busybox", Network: "bridge", Ports: []string{"8000:80", "127.0.0.1:8081:80/tcp", "53"}}},
		{`create("busybox", volumes = ["/data", "v1:/v:ro", "/srv:/srv", "./site:/www", "../up:/up", ".:/here"])`,
			engine.RunSpec{Image: "busybox", Network: "bridge", Volumes: []string{"/data", "v1:/v:ro", "/srv:/srv",
				"$DIR/site:/www", "$PARENT/up:/up", "$DIR:/here"}}},
		{`create("busybox", volumes = [("v2", "/x"), ("v3", "/y", "ro"), (struct(name = "v4"), "/z", "rw"), ("./d", "/d")])`,
			engine.RunSpec{Image: "busybox", Network: "bridge", Volumes: []string{"v2:/x", "v3:/y:ro", "v4:/z:rw", "$DIR/d:/d"}}},
		{`create("busybox", volumes_from = [create("busybox", name = "data"), "other:ro"])`,
			engine.RunSpec{Image: "busybox", Network: "bridge", VolumesFrom: []string{"data", "other:ro"}}},
		{`create("busybox", env = {"B": "2", "A": "1"}, labels = {"team": "red", "x": ""})`,
			engine.RunSpec{Image: "busybox", Network: "bridge", Env: []string{"B=2", "A=1"},
				Labels: map[string]string{"team": "red", "x": ""}}},
		{`create("busybox", memory = "64m", cpus = 1.5, pids_limit = 20, read_only = True, tty = True, rm = True)`,
			engine.RunSpec{Image: "busybox", Network: "bridge", Memory: 64 << 20, CPUs: 1.5, PidsLimit: 20, ReadOnly: true,
				TTY: true, AutoRemove: true}},
		{`create("busybox", memory = 1000000, cpus = 2)`,
			engine.RunSpec{Image: "busybox", Network: "bridge", Memory: 1000000, CPUs: 2}},
		{`run("busybox", "sleep 9", detach = True, rm = True)`,
			engine.RunSpec{Image: "busybox", Network: "bridge", Cmd: []string{"/bin/sh", "-c", "sleep 9"}, AutoRemove: true}},
		{`run("busybox", "true", rm = True)`,
			engine.RunSpec{Image: "busybox", Network: "bridge", Cmd: []string{"/bin/sh", "-c", "true"}}},
	} {
		_, fake, dir, err := runIn(t, tc.src)
		if err != nil {
			t.Errorf("%s: %s", tc.src, FormatError(err))
			continue
		}
		want := tc.want
		paths := strings.NewReplacer("$DIR", dir, "$PARENT", filepath.Dir(dir))
		for i, v := range want.Volumes {
			want.Volumes[i] = paths.Replace(v)
		}
		got := fake.specs[len(fake.specs)-1]
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %#v\nwant %#v", tc.src, got, want)
		}
	}
}

func TestMemorySizes(t *testing.T) {
	for _, tc := range []struct {
		in   starlark.Value
		want int64
	}{
		{starlark.None, 0},
		{starlark.MakeInt(4096), 4096},
		{starlark.String("100"), 100},
		{starlark.String("100b"), 100},
		{starlark.String("512k"), 512 << 10},
		{starlark.String("64m"), 64 << 20},
		{starlark.String("64M"), 64 << 20},
		{starlark.String("64MB"), 64 << 20},
		{starlark.String("64mib"), 64 << 20},
		{starlark.String("1g"), 1 << 30},
		{starlark.String("1.5g"), 3 << 29},
		{starlark.String("2t"), 2 << 40},
	} {
		got, err := memoryOf(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("memoryOf(%s) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []starlark.Value{starlark.String("lots"), starlark.String("1x"), starlark.String("-1m"),
		starlark.String(""), starlark.MakeInt(-1), starlark.Float(1.5), starlark.True} {
		if got, err := memoryOf(bad); err == nil {
			t.Errorf("memoryOf(%s) = %d, want an error", bad, got)
		}
	}
}

// What run does, step by step, and what state it leaves.
func TestRunSequences(t *testing.T) {
	for _, tc := range []struct {
		src, out string
		calls    []string
	}{
		{`c = run("busybox", "exit 3", name = "a"); print(c.status, c.exit_code, c.pid)`,
			"exited 3 0\n", []string{"create a", "start a", "wait a"}},
		{`c = run("busybox", "sleep 9", name = "a", detach = True); print(c.status, c.pid > 0)`,
			"running True\n", []string{"create a", "start a"}},
		{`c = run("busybox", ["false"], name = "a", rm = True); print(len(containers(all = True)))`,
			"0\n", []string{"create a", "start a", "wait a", "rm a force=false volumes=true"}},
		{`c = create("busybox", "exit 4", name = "a"); print(c.status); c.start(); print(c.status); print(c.wait(), c.status)`,
			"created\nrunning\n4 exited\n", []string{"create a", "start a", "wait a"}},
		{`
c = run("busybox", "sleep 9", name = "a", detach = True)
c.stop(); print(c.status, c.exit_code)
c.restart(timeout = "2s"); print(c.status)
c.kill(); print(c.status, c.exit_code)
c.start(); c.kill(signal = 15); print(c.exit_code)
c.rm(volumes = True); print(containers(all = True))`,
			"exited 143\nrunning\nexited 137\n143\n[]\n",
			[]string{"create a", "start a", "stop a 10s", "stop a 2s", "start a", "kill a KILL", "start a", "kill a 15",
				"rm a force=false volumes=true"}},
		{`
c = run("busybox", "sleep 9", name = "a", detach = True)
c.rm(force = True)`,
			"", []string{"create a", "start a", "rm a force=true volumes=false"}},
	} {
		out, fake, err := run(t, tc.src)
		if err != nil {
			t.Errorf("%s: %s", tc.src, FormatError(err))
			continue
		}
		if out != tc.out {
			t.Errorf("%s: printed %q, want %q", tc.src, out, tc.out)
		}
		if !reflect.DeepEqual(fake.calls, tc.calls) {
			t.Errorf("%s:\n calls %q\n want %q", tc.src, fake.calls, tc.calls)
		}
	}
}

// A run whose container cannot start leaves no container behind.
func TestRunStartFails(t *testing.T) {
	for _, tc := range []struct {
		src   string
		calls []string
		left  int
	}{
		{`run("busybox", ["missing"], name = "a")`, []string{"create a", "start a", "rm a force=true volumes=true"}, 0},
		{`run("busybox", ["missing"], name = "a", rm = True)`, []string{"create a", "start a", "rm a force=true volumes=true"}, 0},
	} {
		_, fake, err := run(t, tc.src)
		if err == nil || !strings.Contains(FormatError(err), "Error in run: container start a: exec missing: not found") {
			t.Errorf("%s: got error %v", tc.src, err)
		}
		if !reflect.DeepEqual(fake.calls, tc.calls) || len(fake.ctrs) != tc.left {
			t.Errorf("%s: calls %q, %d containers left; want %q, %d", tc.src, fake.calls, len(fake.ctrs), tc.calls, tc.left)
		}
	}
}

func TestContainerValue(t *testing.T) {
	out, _, err := run(t, `
web = run("httpd", name = "web", network = "front", detach = True)
db = create("busybox", name = "db", network = "none", hostname = "dbhost")
print(web, web.name, web.image, web.status, web.ip, web.ips)
print(db.ip, db.ips, db.hostname, db.status, web.hostname == web.id[:12])
print(container("web") == web, container("db") != web, {web: 1}[container("web")])
print(container(web) == web, container(web.id[:6]).name)
print([c.name for c in containers()], [c.name for c in containers(all = True)])
print(type(web), dir(web))
`)
	if err != nil {
		t.Fatal(FormatError(err))
	}
	want := `<container web> web httpd running 172.18.0.2 {"front": "172.18.0.2", "bridge": "172.17.0.2"}
None {"none": ""} dbhost created True
True True 1
True web
["web"] ["web", "db"]
container ["commit", "diff", "exec", "exit_code", "hostname", "id", "image", "inspect", "ip", "ips", "kill", "logs", "name", "pid", "port", "read_file", "restart", "rm", "shell", "start", "status", "stop", "wait", "write_file"]
`
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
}

func TestContainerMethods(t *testing.T) {
	out, fake, err := run(t, `
c = run("httpd", name = "web", ports = ["8000:80", "127.0.0.1:5353:53/udp", "443"], detach = True)
r = c.exec("echo hi", env = {"A": "1"}, workdir = "/tmp", user = "www-data", stdin = "in", tty = True)
print(r.exit_code, r.ok, str(r) == "out\n")
print(c.exec(["false"]).exit_code)
print(c.logs())
print(c.port(80), c.port("53/udp"), c.port("443/tcp"))
c.write_file("/b", "two")
c.write_file("/a", b"one")
print(c.read_file("/a"), c.read_file("/b"))
print(c.diff())
img = c.commit("web:v2")
print(img, img.ref, len(img.layers))
c.shell()
i = c.inspect()
print(i["Name"], i["State"], i["Config"]["Cmd"], i["Config"]["Entrypoint"])
print(i["Mounts"], i["NetworkSettings"], i["HostConfig"])
`)
	if err != nil {
		t.Fatal(FormatError(err))
	}
	want := `0 True True
1
logs of web

8000 5353 32768
one two
[("D", "/etc/motd"), ("A", "/a"), ("A", "/b")]
<image web:v2> web:v2 3
/web {"ExitCode": 0, "Pid": 1002, "Running": True, "Status": "running"} None None
[{"Propagation": "", "RW": True, "Type": "volume"}] {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8000"}]}} {"CPUs": 0.0, "Memory": 0, "NanoCpus": 0}
`
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	wantCalls := []string{"create web", "start web",
		`exec web ["/bin/sh" "-c" "echo hi"] env=["A=1"] dir="/tmp" user="www-data" tty=true stdin="in"`,
		`exec web ["false"] env=[] dir="" user="" tty=false stdin=""`,
		"commit web web:v2", "shell web"}
	if !reflect.DeepEqual(fake.calls, wantCalls) {
		t.Errorf("calls:\n%q\nwant:\n%q", fake.calls, wantCalls)
	}
}

func TestToStarlark(t *testing.T) {
	type named string
	type mount struct {
		Type   string `json:"Type"`
		Source string `json:"Source,omitempty"`
		Mode   string `json:"Mode,omitempty"`
		RW     bool
		Secret string `json:"-"`
		hidden int
	}
	in := map[string]any{
		"b": 1,
		"a": []any{"x", true, nil, 1.5},
		"c": map[string]string{"z": "1", "y": "2"},
		"d": []string(nil),
		"e": int64(-5),
		"f": uint16(7),
		"g": []map[string]any{{"k": named("v")}},
		"h": map[string]struct{}{"80/tcp": {}},
		"i": &[]int{1, 2},
		"j": (*int)(nil),
		"k": map[named]bool{"on": true},
		"l": [2]float32{0.5, 2},
		"m": []mount{{Type: "bind", Source: "/src", RW: true, Secret: "s", hidden: 1}},
		"n": map[string]any(nil),
	}
	got, err := toStarlark(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"a": ["x", True, None, 1.5], "b": 1, "c": {"y": "2", "z": "1"}, "d": None, "e": -5, "f": 7, ` +
		`"g": [{"k": "v"}], "h": {"80/tcp": {}}, "i": [1, 2], "j": None, "k": {"on": True}, "l": [0.5, 2.0], ` +
		`"m": [{"RW": True, "Source": "/src", "Type": "bind"}], "n": None}`
	if got.String() != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if _, err := toStarlark(map[string]any{"x": make(chan int)}); err == nil || err.Error() != "x: cannot show a chan int" {
		t.Errorf("chan: got error %v", err)
	}
	if _, err := toStarlark(map[int]string{1: "x"}); err == nil || err.Error() != "cannot show a map[int]string" {
		t.Errorf("int keys: got error %v", err)
	}
}

func TestContainerErrors(t *testing.T) {
	const web = `c = run("busybox", "sleep 9", name = "web", detach = True)` + "\n"
	for _, tc := range []struct{ src, want string }{
		{`run("busybox", memory = "lots")`, `Error in run: memory: bad size "lots"`},
		{`create("busybox", memory = -1)`, `Error in create: memory: bad size -1`},
		{`run(3)`, `Error in run: image: want a name or an object, got int`},
		{`run()`, `run: missing argument for image`},
		{`run("busybox", cmd = 3)`, `cmd: want a string or a list of strings, got int`},
		{`run("busybox", cmd = [])`, `cmd: empty command`},
		{`run("busybox", entrypoint = 1)`, `entrypoint: want a string or a list of strings, got int`},
		{`run("busybox", entrypoint = ["a", 1])`, `entrypoint: want a list of strings, found int`},
		{`run("busybox", volumes = "/data")`, `volumes: want a list, got string`},
		{`run("busybox", volumes = [1])`, `volumes: want a string or a (volume, path) tuple, got int`},
		{`run("busybox", volumes = [("v",)])`, `volumes: want (volume, path) or (volume, path, "ro"), got a tuple of 1`},
		{`run("busybox", volumes = [("v", "/x", "rx")])`, `volumes: mode: want "ro" or "rw", got "rx"`},
		{`run("busybox", volumes = [("v", 1)])`, `volumes: container path: want a string, got int`},
		{`run("busybox", volumes = [(1, "/x")])`, `volumes: want a name or an object, got int`},
		{`run("busybox", volumes_from = [1])`, `volumes_from: want a name or an object, got int`},
		{`run("busybox", network = 3)`, `network: want a name or an object, got int`},
		{`run("busybox", network = world)`, `network: want a name or an object, got world`},
		{`run("busybox", aliases = "db")`, `aliases: want a list, got string`},
		{`run("busybox", aliases = [1])`, `aliases: want a string, got int`},
		{`run("busybox", ports = [1.5])`, `ports: want a string such as "8000:80" or a port number, got float`},
		{`run("busybox", ports = {"80": "80"})`, `ports: want a list, got dict`},
		{`run("busybox", env = {"A": 1})`, `env: want a dict of strings, got string: int`},
		{`run("busybox", env = ["A=1"])`, `run: for parameter "env": got list, want dict`},
		{`run("busybox", labels = {1: "x"})`, `labels: want a dict of strings, got int: string`},
		{`run("busybox", cpus = "two")`, `cpus: want a non-negative number, got "two"`},
		{`run("busybox", cpus = -1)`, `cpus: want a non-negative number, got -1`},
		{`run("busybox", pids_limit = "x")`, `pids_limit: want an int, got string`},
		{`run("busybox", name = 3)`, `name: want a string, got int`},
		{`run("busybox", hostname = [])`, `hostname: want a string, got list`},
		{`run("busybox", detach = "yes")`, `run: for parameter "detach": got string, want bool`},
		{`create("busybox", detach = True)`, `create: unexpected keyword argument "detach"`},
		{`run("nosuch")`, `Error in run: image nosuch: not found`},
		{`run("busybox", name = "a"); run("busybox", name = "a")`, `container create a: conflict: the name is in use`},
		{`container("ghost")`, `Error in container: container ghost: not found`},
		{`container(1)`, `container: name: want a name or an object, got int`},
		{web + `c.exec("false", check = True)`, `Error in container.exec: "false": exit code 1` + "\nnope"},
		{web + `c.exec(["sh", "-c", "exit 2"], check = True)`, `Error in container.exec: ["sh" "-c" "exit 2"]: exit code 2`},
		{web + `c.exec("x", user = 0)`, `container.exec: user: want a string, got int`},
		{web + `c.exec("x", env = {"A": 1})`, `container.exec: env: want a dict of strings, got string: int`},
		{web + `c.stop(timeout = "soon")`, `container.stop: timeout: bad duration "soon"`},
		{web + `c.restart(timeout = [])`, `container.restart: timeout: bad duration list`},
		{web + `c.kill(1.5)`, `container.kill: signal: want a name such as "TERM" or a number, got float`},
		{web + `c.kill("BOGUS")`, `container kill web: invalid argument: unknown signal "BOGUS"`},
		{web + `c.port(1.5)`, `container.port: port: want a number or a string such as "53/udp", got float`},
		{web + `c.port(80)`, `Error in container.port: port web 80/tcp: not found: not published`},
		{web + `c.write_file("/x", 3)`, `container.write_file: content: want a string, got int`},
		{web + `c.read_file("/nope")`, `Error in container.read_file: read web:/nope: not found`},
		{web + `c.rm()`, `Error in container.rm: container rm web: conflict: it is running`},
		{web + `c.start(1)`, `container.start: got 1 arguments, want at most 0`},
		{web + `c.rm(force = True); c.status`, `container ` + fmt.Sprintf("%02x%062d", 1, 0) + `: not found`},
		{web + `c.statsu`, `container has no .statsu field or method (did you mean .status?)`},
		{web + `c < c`, `container < container not implemented`},
	} {
		_, _, err := run(t, tc.src)
		if err == nil {
			t.Errorf("%s: no error, want %q", tc.src, tc.want)
			continue
		}
		if got := FormatError(err); !strings.Contains(got, tc.want) {
			t.Errorf("%s:\n%s\nwant it to contain %q", tc.src, got, tc.want)
		}
	}
}
