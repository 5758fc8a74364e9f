package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"vscript/builtins"
	"vscript/engine/event"
)

// everyBuiltin calls each builtin that changes something, each after a
// marker line "@@ NAME" on stdout. With stdout and stderr on one pipe, the
// --json events that follow a marker are that builtin's.
const everyBuiltin = `
def step(name):
    print("@@ " + name)

step("image")
image("busybox")
step("network")
net = network("evnet", subnet = "172.30.0.0/24")
step("volume")
vol = volume("evvol")
step("create")
c = create("busybox", "sleep 3600", name = "c1", network = net, volumes = ["evvol:/data"])
step("container.start")
c.start()
step("container.exec")
c.exec("true")
step("container.write_file")
c.write_file("/tmp/x", "hello")
step("cp")
cp("c1:/tmp/x", "x")
step("container.stop")
c.stop(timeout = 1)
step("container.restart")
c.restart(timeout = 1)
step("container.kill")
c.kill()
c.wait()
step("run")
d = run("busybox", "sleep 3600", name = "d1", detach = True)
step("network.connect")
net.connect(d)
step("network.disconnect")
net.disconnect(d)
step("container.commit")
snap = c.commit("evsnap")
step("image.rm")
snap.rm(force = True)
step("http_get")
web = run("httpd", name = "web", ports = ["8080:80"], detach = True)
wait_for(lambda: http_get("http://127.0.0.1:8080/").status == 200)
step("host.exec")
host.exec("true")
step("world.exec")
world.exec("true")
step("image_build")
b = image_build("evbuild", dockerfile_text = "FROM busybox\nRUN echo hi > /hi\n", no_cache = True)
step("image_save")
image_save(b, "evbuild.tar")
b.rm()
step("image_load")
image_load("evbuild.tar")
step("container.rm")
c.rm(force = True)
d.rm(force = True)
web.rm(force = True)
step("network.rm")
net.rm()
step("volume.rm")
vol.rm()
step("volume_rm")
volume("evvol2")
volume_rm("evvol2")
step("volume_prune")
volume()
volume_prune()
step("end")
`

// readOnly are the builtins that change nothing, so owe no event; shell is
// interactive (container_tty.txtar drives it).
var readOnly = map[string]bool{
	"container": true, "containers": true, "images": true, "networks": true, "volumes": true,
	"sleep": true, "wait_for": true,
	"assert.contains": true, "assert.eq": true, "assert.fails": true, "assert.ne": true, "assert.true": true,
	"container.diff": true, "container.inspect": true, "container.logs": true, "container.port": true,
	"container.read_file": true, "container.wait": true, "container.shell": true,
	"image.history": true, "network.containers": true, "host.iptables": true,
}

// noDocker are builtins with no docker command to mirror.
var noDocker = map[string]bool{"host.exec": true, "world.exec": true}

// TestEveryBuiltinExplains checks that every builtin that changes something
// says what it did under -v (a docker command) and --explain (Linux lines):
// with --json, each emits an event with a Docker field, where Docker has an
// equivalent, and one with Linux lines.
func TestEveryBuiltinExplains(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "every.star")
	if err := os.WriteFile(script, []byte(everyBuiltin), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("vscript", "--root", filepath.Join(dir, "root"), "--json", script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}

	events := map[string][]event.Event{}
	step := ""
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "@@ "); ok {
			step = name
			events[step] = []event.Event{}
			continue
		}
		var e event.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("not a marker nor an event: %q", line)
		}
		events[step] = append(events[step], e)
	}

	for _, name := range registeredFunctions(t) {
		if readOnly[name] {
			continue
		}
		evs, ok := events[name]
		if !ok {
			t.Errorf("%s: not exercised by the script (or add it to readOnly)", name)
			continue
		}
		var docker, linux bool
		for _, e := range evs {
			docker = docker || e.Docker != ""
			linux = linux || len(e.Linux) > 0
		}
		if !docker && !noDocker[name] {
			t.Errorf("%s: no event with a docker command (-v shows nothing): %+v", name, evs)
		}
		if !linux {
			t.Errorf("%s: no event with Linux lines (--explain shows nothing): %+v", name, evs)
		}
	}
}

// registeredFunctions lists the builtin functions and methods, as the
// reference (vscript doc) names them.
func registeredFunctions(t *testing.T) []string {
	doc, err := builtins.Doc("")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range regexp.MustCompile("(?m)^### `([a-z_.]+)\\(").FindAllStringSubmatch(doc, -1) {
		names = append(names, m[1])
	}
	if len(names) < 20 {
		t.Fatalf("only %d builtins found in the reference", len(names))
	}
	return names
}
