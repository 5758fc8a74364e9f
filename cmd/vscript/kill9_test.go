package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// killLab is a busy lab: an image build that writes a new layer on every
// run, two user networks, published ports, a named, an anonymous and a bind
// volume, and 30 containers.
const killLab = `
img = image_build("killtest", dockerfile_text = DOCKERFILE, build_args = {"N": args["n"]})
front = network("front")
back = network("back", subnet = "10.77.0.0/24")
web = run("httpd", name = "web", network = front, ports = ["8000:80", "53/udp"], detach = True,
          volumes = ["kill-named:/usr/local/apache2/htdocs", "./site:/site:ro"])
web.exec("echo run %s >> /usr/local/apache2/htdocs/runs.txt" % args["n"], check = True)
back.connect(web)
for i in range(29):
    run(img if i % 3 == 0 else "busybox", "sleep 600.0734", name = "c" + str(i),
        network = front if i % 2 else back, ports = ["80"] if i % 5 == 0 else [],
        volumes = ["/anon"] if i % 4 == 0 else [], detach = True)
host.exec("sleep 600.0734 >/dev/null 2>&1 &")
host.exec(["touch", args["ready"]])
sleep("60s")
`

// killAfter is the run that follows a killed one on the same state
// directory: it builds, runs the image, mounts the named volume.
const killAfter = `
img = image_build("killtest", dockerfile_text = DOCKERFILE, build_args = {"N": "after"})
c = run(img, "cat /n /data/seed", network = "none")
print(c.logs().split())
c.rm(volumes = True)
print(run("busybox", "test -d /v", network = "none", volumes = ["kill-named:/v"]).exit_code)
print([v.name for v in volumes()])
`

const killDockerfile = `"FROM busybox\nARG N\nRUN echo $N > /n && mkdir /data && echo seed > /data/seed\nVOLUME /data\n"`

// TestKill9AtRandomMoments kills vscript with SIGKILL at random moments of
// killLab's set-up (seeded: VSCRIPT_KILL_SEED, default 8) and once when it
// is all up. After each kill the real host has the same interfaces, mounts
// and iptables rules as before and no process of the lab; the state
// directory is readable (`vscript images`, `vscript volumes`), every blob
// of its OCI layout is there with the content its digest names, and a
// following lab on the same root builds, runs and mounts.
func TestKill9AtRandomMoments(t *testing.T) {
	requireRoot(t)
	seed := int64(8)
	if s := os.Getenv("VSCRIPT_KILL_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("VSCRIPT_KILL_SEED: %v", err)
		}
	}
	rng := rand.New(rand.NewSource(seed))
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	write := func(name, content string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(content, "DOCKERFILE", killDockerfile)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("lab.star", killLab)
	write("after.star", killAfter)
	write("site/index.html", "site\n")
	before := hostState()

	// The first run is killed once all is up; how long that took bounds
	// the random moments of the next ones.
	setup := killRun(t, dir, root, 0, -1)
	checkAfterKill(t, dir, root, before)
	for i := 1; i <= 3; i++ {
		at := time.Duration(rng.Int63n(int64(setup)))
		t.Logf("seed %d, run %d: kill -9 at %v of a %v set-up", seed, i, at.Round(time.Millisecond), setup.Round(time.Millisecond))
		killRun(t, dir, root, i, at)
		checkAfterKill(t, dir, root, before)
	}
}

// killRun starts killLab and kills vscript with SIGKILL after at, or, when
// at is negative, once the lab is all up; it returns how long it ran.
func killRun(t *testing.T, dir, root string, n int, at time.Duration) time.Duration {
	t.Helper()
	ready := filepath.Join(dir, "ready")
	os.Remove(ready)
	cmd := exec.Command("vscript", "--root", root, "lab.star", "n="+strconv.Itoa(n), "ready="+ready)
	cmd.Dir = dir
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var deadline <-chan time.Time
	if at >= 0 {
		deadline = time.After(at)
	} else {
		deadline = time.After(60 * time.Second)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case err := <-exited:
			// A lab that ends on its own before the kill is a bug.
			t.Fatalf("run %d ended before the kill: %v\n%s", n, err, out.String())
		case <-deadline:
			if at < 0 {
				cmd.Process.Kill()
				<-exited
				t.Fatalf("run %d: the lab was not up within 60s:\n%s", n, out.String())
			}
			break wait
		case <-tick.C:
			if _, err := os.Stat(ready); err == nil && at < 0 {
				break wait
			}
		}
	}
	ran := time.Since(start)
	cmd.Process.Signal(syscall.SIGKILL)
	if err := <-exited; err == nil {
		t.Fatalf("run %d: exit 0 after SIGKILL:\n%s", n, out.String())
	}
	return ran
}

// checkAfterKill checks the real host against before and the state
// directory at root, then runs killAfter on it.
func checkAfterKill(t *testing.T, dir, root, before string) {
	t.Helper()
	var got, procs string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got, procs = hostState(), processesWith("600.0734"); got == before && procs == "" {
			break
		}
	}
	if procs != "" {
		t.Fatalf("processes left behind:\n%s", procs)
	}
	if got != before {
		t.Fatalf("host state changed:\n--- before\n%s\n--- after\n%s", before, got)
	}
	for _, sub := range []string{"images", "volumes"} {
		if out, err := exec.Command("vscript", "--root", root, sub).CombinedOutput(); err != nil {
			t.Fatalf("vscript %s after a kill: %v\n%s", sub, err, out)
		}
	}
	checkLayout(t, filepath.Join(root, "content"))
	cmd := exec.Command("vscript", "--root", root, "after.star")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("a run after the kill: %v\n%s", err, out)
	}
	if want := "[\"after\", \"seed\"]\n0\n[\"kill-named\"]\n"; string(out) != want {
		t.Fatalf("a run after the kill printed:\n%s\nwant:\n%s", out, want)
	}
}

// checkLayout checks an OCI image layout: index.json parses, and every
// manifest, config and layer it leads to is a blob whose content has its
// digest — a half-written blob must never be visible under its name.
func checkLayout(t *testing.T, dir string) {
	t.Helper()
	var index struct {
		Manifests []struct{ Digest string }
	}
	readJSON(t, filepath.Join(dir, "index.json"), &index)
	if len(index.Manifests) == 0 {
		t.Fatal("index.json lists no image")
	}
	for _, m := range index.Manifests {
		var manifest struct {
			Config struct{ Digest string }
			Layers []struct{ Digest string }
		}
		readJSON(t, blobPath(t, dir, m.Digest), &manifest)
		blobPath(t, dir, manifest.Config.Digest)
		for _, l := range manifest.Layers {
			blobPath(t, dir, l.Digest)
		}
	}
}

// blobPath is the path of a blob, checked against its digest.
func blobPath(t *testing.T, dir, digest string) string {
	t.Helper()
	hexDigest, ok := strings.CutPrefix(digest, "sha256:")
	if !ok {
		t.Fatalf("digest %q: want sha256", digest)
	}
	p := filepath.Join(dir, "blobs", "sha256", hexDigest)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("blob %s: %v", digest, err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != hexDigest {
		t.Fatalf("blob %s has other content (sha256 %x)", digest, sum)
	}
	return p
}

func readJSON(t *testing.T, p string, v any) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatal(fmt.Errorf("%s: %w", p, err))
	}
}
