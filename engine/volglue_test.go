package engine

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"vscript/engine/errdefs"
	"vscript/engine/event"
	"vscript/engine/image"
	"vscript/engine/store"
)

// These tests drive the volume hooks the way container.go does, on an
// Engine without a lab: a container's rootfs is a plain directory standing
// for its mounted overlay, which is all volCreate and volPath look at.

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("needs root (chown, open_tree)")
	}
	t.Skip("needs root")
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// testEngine is an Engine over a fresh state directory, its volume state
// open as in New.
func testEngine(t testing.TB, root string) (*Engine, *event.Recorder) {
	t.Helper()
	st, err := store.Open(root)
	must(t, err)
	rec := &event.Recorder{}
	e := &Engine{opts: Options{Root: root, Seed: "test"}, sink: rec, store: st, count: map[string]int{},
		ctrs: map[string]*container{}, names: map[string]string{}}
	must(t, e.volOpen())
	t.Cleanup(func() {
		e.volClose()
		st.Close()
	})
	return e, rec
}

// httpdRoot is what the httpd image shows at its htdocs: a page owned by
// www-data in a 0750 directory; and a plain file at /etc/motd.
func httpdRoot(t testing.TB) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "merged")
	htdocs := filepath.Join(root, "usr/local/apache2/htdocs")
	must(t, os.MkdirAll(htdocs, 0o755))
	must(t, os.WriteFile(filepath.Join(htdocs, "index.html"), []byte("<h1>It works!</h1>\n"), 0o644))
	must(t, os.Chown(filepath.Join(htdocs, "index.html"), 33, 33))
	must(t, os.Chown(htdocs, 33, 33))
	must(t, os.Chmod(htdocs, 0o750))
	must(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "etc/motd"), []byte("welcome\n"), 0o644))
	must(t, os.Symlink("/usr/local/apache2/htdocs", filepath.Join(root, "www")))
	return root
}

// create runs volCreate for a new container as Engine.create does, and
// registers the container if it succeeds.
func create(t testing.TB, e *Engine, name string, spec RunSpec, imageVolumes ...string) (*container, error) {
	t.Helper()
	cfg := v1.Config{}
	if len(imageVolumes) > 0 {
		cfg.Volumes = map[string]struct{}{}
		for _, v := range imageVolumes {
			cfg.Volumes[v] = struct{}{}
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c := &container{id: e.newIDLocked("container"), name: name, spec: spec, img: &image.Image{Config: cfg},
		merged: httpdRoot(t), status: "created"}
	if err := e.volCreate(c); err != nil {
		return nil, err
	}
	e.ctrs[c.id] = c
	e.names[name] = c.id
	e.order = append(e.order, c.id)
	return c, nil
}

func mustCreate(t testing.TB, e *Engine, name string, spec RunSpec, imageVolumes ...string) *container {
	t.Helper()
	c, err := create(t, e, name, spec, imageVolumes...)
	must(t, err)
	return c
}

// remove is Engine.Remove's part for volumes.
func remove(e *Engine, c *container, volumes bool) {
	e.volRemove(c, volumes)
	e.mu.Lock()
	delete(e.ctrs, c.id)
	delete(e.names, c.name)
	e.mu.Unlock()
}

func volumeNames(t testing.TB, e *Engine) []string {
	t.Helper()
	vols, err := e.vol.store.List()
	must(t, err)
	var out []string
	for _, v := range vols {
		out = append(out, v.Name)
	}
	return out
}

// inspectJSON renders Mounts as docker inspect prints them.
func inspectJSON(t testing.TB, e *Engine, c *container) string {
	t.Helper()
	b, err := json.Marshal(e.volInspect(c))
	must(t, err)
	return string(b)
}

func TestVolumeContainer(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	e, _ := testEngine(t, root)
	site := filepath.Join(t.TempDir(), "htdocs")
	// The notes' volume container: a bind mount of the host's site and a
	// managed volume, never started; the image has a VOLUME of its own.
	web1 := mustCreate(t, e, "web1", RunSpec{Volumes: []string{site + ":/usr/local/apache2/htdocs", "/other/tools"}}, "/data")
	vols := volumeNames(t, e)
	if len(vols) != 2 {
		t.Fatalf("volumes %v, want two anonymous ones", vols)
	}
	var tools, data string
	for _, m := range web1.vols.mounts {
		switch m.Destination {
		case "/other/tools":
			tools = m.Name
		case "/data":
			data = m.Name
		}
	}
	anon1 := tools
	want := `[{"Destination":"/data","Driver":"local","Mode":"","Name":"` + data + `","Propagation":"","RW":true,"Source":"` +
		filepath.Join(root, "volumes", data, "_data") + `","Type":"volume"},` +
		`{"Destination":"/other/tools","Driver":"local","Mode":"z","Name":"` + anon1 + `","Propagation":"","RW":true,"Source":"` +
		filepath.Join(root, "volumes", anon1, "_data") + `","Type":"volume"},` +
		`{"Destination":"/usr/local/apache2/htdocs","Mode":"","Propagation":"rprivate","RW":true,"Source":"` + site + `","Type":"bind"}]`
	if got := inspectJSON(t, e, web1); got != want {
		t.Errorf("web1 Mounts:\n got %s\nwant %s", got, want)
	}
	if fi, err := os.Stat(site); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
		t.Fatalf("missing bind source not made as -v does: %v %v", fi, err)
	}

	// Three containers share them all; ":ro" downgrades every one.
	for _, name := range []string{"web2", "web3"} {
		mustCreate(t, e, name, RunSpec{VolumesFrom: []string{"web1"}})
	}
	web4 := mustCreate(t, e, "web4", RunSpec{VolumesFrom: []string{"web1:ro"}})
	mounts, err := e.volMounts(web4)
	must(t, err)
	for _, m := range mounts {
		if !m.ReadOnly || m.Type != "bind" {
			t.Errorf("web4 mount %+v, want read-only", m)
		}
	}
	if got := inspectJSON(t, e, web4); !strings.Contains(got, `"Mode":"","Name":"`+anon1+`","Propagation":"","RW":false`) ||
		strings.Contains(got, `"RW":true`) || strings.Contains(got, `"z"`) {
		t.Errorf("web4 Mounts: %s", got)
	}
	web2 := e.ctrs[e.names["web2"]]
	if inspectJSON(t, e, web2) != strings.ReplaceAll(want, `"Mode":"z"`, `"Mode":""`) {
		t.Errorf("web2 Mounts differ from web1's:\n%s", inspectJSON(t, e, web2))
	}
	// rw never upgrades a read-only mount.
	web5 := mustCreate(t, e, "web5", RunSpec{VolumesFrom: []string{"web4:rw"}})
	if strings.Contains(inspectJSON(t, e, web5), `"RW":true`) {
		t.Errorf("web5 upgraded a read-only mount: %s", inspectJSON(t, e, web5))
	}
	if got := e.vol.users(anon1); !reflect.DeepEqual(got, []string{"web1", "web2", "web3", "web4", "web5"}) {
		t.Errorf("users of %s: %v", anon1, got)
	}

	// A -v spec replaces the volumes_from mount at its destination, and an
	// image VOLUME covered by another mount gets no volume of its own.
	web6 := mustCreate(t, e, "web6", RunSpec{VolumesFrom: []string{"web1"}, Volumes: []string{"site:/data:ro"}}, "/data")
	if got := inspectJSON(t, e, web6); !strings.Contains(got, `"Destination":"/data","Driver":"local","Mode":"ro","Name":"site","Propagation":"","RW":false`) {
		t.Errorf("web6 Mounts: %s", got)
	}
	if got := e.vol.users(data); len(got) != 5 {
		t.Errorf("web6 holds %s it does not mount: users %v", data, got)
	}
	if n := len(volumeNames(t, e)); n != 3 {
		t.Errorf("%d volumes, want 3 (two anonymous, site)", n)
	}
}

func TestCopyUp(t *testing.T) {
	requireRoot(t)
	e, rec := testEngine(t, t.TempDir())
	c := mustCreate(t, e, "web", RunSpec{Volumes: []string{"web-data:/usr/local/apache2/htdocs"}})
	data := c.vols.mounts[0].Source
	page, err := os.ReadFile(filepath.Join(data, "index.html"))
	if err != nil || string(page) != "<h1>It works!</h1>\n" {
		t.Fatalf("copy-up: %q, %v", page, err)
	}
	var st syscall.Stat_t
	must(t, syscall.Stat(data, &st))
	if st.Uid != 33 || st.Gid != 33 || st.Mode&0o7777 != 0o750 {
		t.Errorf("volume root %o %d:%d, want the image directory's 0750 33:33", st.Mode&0o7777, st.Uid, st.Gid)
	}
	var ops []string
	for _, ev := range rec.Events() {
		ops = append(ops, ev.Op+" "+ev.Subject)
	}
	if want := []string{"volume create web-data", "volume copy-up web-data"}; !reflect.DeepEqual(ops, want) {
		t.Errorf("events %q, want %q", ops, want)
	}

	// The data outlives the container; a volume that has content is not
	// seeded again.
	must(t, os.WriteFile(filepath.Join(data, "index.html"), []byte("mine\n"), 0o644))
	remove(e, c, true)
	c2 := mustCreate(t, e, "web2", RunSpec{Volumes: []string{"web-data:/usr/local/apache2/htdocs"}})
	if page, _ := os.ReadFile(filepath.Join(c2.vols.mounts[0].Source, "index.html")); string(page) != "mine\n" {
		t.Errorf("named volume after rm: %q", page)
	}

	// Never for bind mounts, nor with nocopy; a VOLUME of the image is seeded.
	site := t.TempDir()
	mustCreate(t, e, "bind", RunSpec{Volumes: []string{site + ":/usr/local/apache2/htdocs", "fresh:/etc:nocopy"}})
	if names, _ := filepath.Glob(filepath.Join(site, "*")); len(names) != 0 {
		t.Errorf("copy-up into a bind mount: %v", names)
	}
	fresh, err := e.vol.store.Get("fresh")
	must(t, err)
	if names, _ := filepath.Glob(filepath.Join(fresh.Mountpoint, "*")); len(names) != 0 {
		t.Errorf("copy-up despite nocopy: %v", names)
	}
	img := mustCreate(t, e, "img", RunSpec{}, "/usr/local/apache2/htdocs/")
	if _, err := os.Stat(filepath.Join(img.vols.mounts[0].Source, "index.html")); err != nil || !img.vols.mounts[0].anonymous {
		t.Errorf("image VOLUME not seeded: %v %+v", err, img.vols.mounts[0])
	}
}

func TestVolumeSpecErrors(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	e, _ := testEngine(t, root)
	mustCreate(t, e, "source", RunSpec{})
	hostFile := filepath.Join(t.TempDir(), "file")
	must(t, os.WriteFile(hostFile, []byte("x"), 0o644))
	hostDir := t.TempDir()
	freshBase := t.TempDir()
	fresh := filepath.Join(freshBase, "made", "by", "create")
	for _, tc := range []struct {
		spec RunSpec
		img  []string
		want string
		is   error
	}{
		{RunSpec{Volumes: []string{"/a:/b:rw:zz"}}, nil, "volume spec /a:/b:rw:zz: too many colons", errdefs.ErrInvalid},
		{RunSpec{Volumes: []string{"data:relative"}}, nil, "mount path must be absolute", errdefs.ErrInvalid},
		{RunSpec{Volumes: []string{"/a:/b:zz"}}, nil, "invalid mode: zz", errdefs.ErrInvalid},
		{RunSpec{Volumes: []string{"xx:/data", "/data"}}, nil, "duplicate mount point: /data", errdefs.ErrInvalid},
		{RunSpec{VolumesFrom: []string{"nosuch"}}, nil, "volumes-from nosuch: container nosuch: not found", errdefs.ErrNotFound},
		{RunSpec{VolumesFrom: []string{"source:rx"}}, nil, "invalid mode: rx", errdefs.ErrInvalid},
		// Each failure comes after volumes and a directory were made: all
		// must be taken back.
		{RunSpec{Volumes: []string{"made:/one", "/two", fresh + ":/three", hostFile + ":/usr/local/apache2/htdocs"}}, []string{"/four"},
			"is a file on the host but a directory in the image", errdefs.ErrInvalid},
		{RunSpec{Volumes: []string{"made:/one", hostDir + ":/etc/motd"}}, nil,
			"is a directory on the host but a file in the image", errdefs.ErrInvalid},
		{RunSpec{Volumes: []string{"made:/one", hostFile + "/sub:/x"}}, nil,
			"bind " + hostFile + "/sub: invalid argument: cannot create the host directory: not a directory", errdefs.ErrInvalid},
		{RunSpec{Volumes: []string{"made:/one", "/etc/motd"}}, nil,
			"/etc/motd is a file in the image; a volume mounts only on a directory", errdefs.ErrInvalid},
	} {
		_, err := create(t, e, "bad", tc.spec, tc.img...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, tc.is) || !strings.HasPrefix(err.Error(), "container create bad: ") {
			t.Errorf("%+v: %v, want %q (%v)", tc.spec, err, tc.want, tc.is)
		}
		if vols := volumeNames(t, e); len(vols) != 0 {
			t.Errorf("%+v: volumes left behind: %v", tc.spec, vols)
		}
		if len(e.vol.held) != 0 {
			t.Errorf("%+v: references left: %v", tc.spec, e.vol.held)
		}
		if _, err := os.Stat(filepath.Join(freshBase, "made")); err == nil {
			t.Errorf("%+v: bind source directories left behind", tc.spec)
		}
	}
}

func TestVolumeInUse(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	e, _ := testEngine(t, root)
	_, err := e.VolumeCreate("shared")
	must(t, err)
	web := mustCreate(t, e, "web", RunSpec{Volumes: []string{"shared:/data"}})
	mustCreate(t, e, "web2", RunSpec{VolumesFrom: []string{"web"}})
	err = e.VolumeRemove("shared", true)
	if !errors.Is(err, errdefs.ErrConflict) || err.Error() != "volume rm shared: volume is in use - [web web2]" || errdefs.Hint(err) == "" {
		t.Fatalf("remove in use: %v (hint %q)", err, errdefs.Hint(err))
	}
	// Another lab on the same state directory, and the CLI, see it in use.
	other, _ := testEngine(t, root)
	if err := other.VolumeRemove("shared", false); err == nil || !strings.Contains(err.Error(), "in use - [a container of a running lab]") {
		t.Fatalf("remove from another lab: %v", err)
	}
	if err := RemoveVolume(root, "shared", false); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("vscript volume rm: %v", err)
	}
	remove(e, web, false)
	if err := e.VolumeRemove("shared", false); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("removed while web2 uses it: %v", err)
	}
	remove(e, e.ctrs[e.names["web2"]], false)
	must(t, RemoveVolume(root, "shared", false))
	if err := e.VolumeRemove("shared", false); !errors.Is(err, errdefs.ErrNotFound) || err.Error() != "volume shared: not found" {
		t.Fatalf("second remove: %v", err)
	}
	must(t, e.VolumeRemove("shared", true))
	must(t, RemoveVolume(root, "shared", true))
}

func TestAnonymousVolumeLifetime(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	e, _ := testEngine(t, root)
	keep := mustCreate(t, e, "keep", RunSpec{Volumes: []string{"/a", "named:/n"}})
	drop := mustCreate(t, e, "drop", RunSpec{Volumes: []string{"/b"}})
	shared := mustCreate(t, e, "shared", RunSpec{Volumes: []string{"/c"}})
	mustCreate(t, e, "borrower", RunSpec{VolumesFrom: []string{"shared"}})
	a, b, c := keep.vols.mounts[0].Name, drop.vols.mounts[0].Name, shared.vols.mounts[0].Name
	loose, err := e.VolumeCreate("")
	must(t, err)

	remove(e, keep, false) // docker rm: the anonymous volume stays
	remove(e, drop, true)  // docker rm -v: it goes
	remove(e, shared, true)
	got := volumeNames(t, e)
	for _, name := range []string{a, c, "named", loose.Name} {
		if !contains(got, name) {
			t.Errorf("%s removed; volumes %v", shortName(name), got)
		}
	}
	if contains(got, b) {
		t.Errorf("rm(volumes=True) kept %s", shortName(b))
	}
	pruned, err := e.VolumePrune()
	must(t, err)
	if len(pruned) != 2 || !contains(pruned, a) || !contains(pruned, loose.Name) {
		t.Errorf("prune removed %v, want %s and %s (not %s, in use)", pruned, shortName(a), shortName(loose.Name), shortName(c))
	}

	// When the lab ends, its anonymous volumes go; named ones stay.
	mustCreate(t, e, "late", RunSpec{Volumes: []string{"/d"}})
	e.volClose()
	if got := volumeNames(t, e); !reflect.DeepEqual(got, []string{"named"}) {
		t.Errorf("after the lab: %v, want [named]", got)
	}
	if labs, _ := os.ReadDir(filepath.Join(root, "labs")); len(labs) != 0 {
		t.Errorf("lab lock left: %v", labs)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// A lab killed with -9 never closes: its lock is free but its file stays.
// The next run clears its anonymous volumes, unless a live lab uses one.
func TestReapDeadLab(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	dead, _ := testEngine(t, root)
	lost := mustCreate(t, dead, "lost", RunSpec{Volumes: []string{"/x", "kept:/k"}}).vols.mounts[1].Name
	borrowed, err := dead.VolumeCreate("")
	must(t, err)
	live, _ := testEngine(t, root)
	liveAnon, err := live.VolumeCreate("")
	must(t, err)
	mustCreate(t, live, "borrower", RunSpec{Volumes: []string{borrowed.Name + ":/b"}})
	deadLab := dead.vol.lab
	// The kernel's part of kill -9: every descriptor closed.
	for _, h := range dead.vol.held {
		h.dir.Close()
	}
	dead.vol.held = map[string]*heldVolume{}
	dead.vol.lock.Close()
	dead.vol.lock = nil

	testEngine(t, root)
	got := volumeNames(t, live)
	if contains(got, lost) {
		t.Errorf("dead lab's anonymous volume %s not reaped", shortName(lost))
	}
	for _, name := range []string{"kept", borrowed.Name, liveAnon.Name} {
		if !contains(got, name) {
			t.Errorf("%s reaped", shortName(name))
		}
	}
	if _, err := os.Stat(filepath.Join(root, "labs", deadLab)); err != nil {
		t.Errorf("dead lab's lock removed while one of its volumes is in use: %v", err)
	}
	// Once the borrower is gone, `vscript volumes` finishes the job.
	remove(live, live.ctrs[live.names["borrower"]], false)
	vols, err := ListVolumes(root)
	must(t, err)
	var names []string
	for _, v := range vols {
		names = append(names, v.Name)
	}
	if contains(names, borrowed.Name) || !contains(names, liveAnon.Name) {
		t.Errorf("vscript volumes: %v", names)
	}
	if _, err := os.Stat(filepath.Join(root, "labs", deadLab)); !os.IsNotExist(err) {
		t.Errorf("dead lab's lock: %v", err)
	}
}

// Anonymous volume names follow the seed; a leftover with the next name is
// stepped over.
func TestAnonymousNames(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	e, _ := testEngine(t, root)
	v0, err := e.VolumeCreate("")
	must(t, err)
	other, _ := testEngine(t, root)
	w0, err := other.VolumeCreate("")
	must(t, err)
	probe := &Engine{opts: Options{Seed: "test"}, count: map[string]int{}}
	id0, id1 := probe.NewID("volume"), probe.NewID("volume")
	if v0.Name != id0 || w0.Name != id1 {
		t.Errorf("names %s %s, want %s %s", v0.Name, w0.Name, id0, id1)
	}
}

func TestVolPath(t *testing.T) {
	requireRoot(t)
	e, _ := testEngine(t, t.TempDir())
	site := t.TempDir()
	must(t, os.WriteFile(filepath.Join(site, "index.html"), []byte("from the host\n"), 0o644))
	must(t, os.Symlink("/etc/motd", filepath.Join(site, "motd")))
	c := mustCreate(t, e, "web", RunSpec{Volumes: []string{site + ":/usr/local/apache2/htdocs:ro", "logs:/var/log"}})
	logs := c.vols.mounts[1].Source

	for _, tc := range []struct{ path, want string }{
		{"/usr/local/apache2/htdocs/index.html", "from the host\n"},
		{"/www/index.html", "from the host\n"},          // a symlink of the image into the mount
		{"/usr/local/apache2/htdocs/motd", "welcome\n"}, // a symlink of the mount into the rootfs
		{"/usr/local/apache2/htdocs/../../../../etc/motd", "welcome\n"},
	} {
		got, err := e.ReadFile("web", tc.path)
		if err != nil || string(got) != tc.want {
			t.Errorf("read %s: %q, %v; want %q", tc.path, got, err, tc.want)
		}
	}
	must(t, e.WriteFile("web", "/var/log/httpd/access.log", []byte("GET /\n")))
	if b, err := os.ReadFile(filepath.Join(logs, "httpd/access.log")); err != nil || string(b) != "GET /\n" {
		t.Errorf("write through a volume: %q, %v", b, err)
	}
	err := e.WriteFile("web", "/www/index.html", []byte("defaced\n"))
	if !errors.Is(err, unix.EROFS) || !strings.Contains(err.Error(), "read-only file system") {
		t.Errorf("write into a read-only mount: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(site, "index.html")); string(b) != "from the host\n" {
		t.Errorf("read-only bind source changed: %q", b)
	}
	// cp both ways goes through the mounts too.
	out := filepath.Join(t.TempDir(), "copy")
	must(t, e.Copy(t.Context(), "web:/usr/local/apache2/htdocs", out))
	if b, err := os.ReadFile(filepath.Join(out, "index.html")); err != nil || string(b) != "from the host\n" {
		t.Errorf("cp out of a bind mount: %q, %v", b, err)
	}
	// Into a directory that exists, the copy takes the container path's
	// name, not the name of the directory holding the data.
	into := t.TempDir()
	must(t, e.Copy(t.Context(), "web:/usr/local/apache2/htdocs", into))
	must(t, e.Copy(t.Context(), "web:/var/log", into))
	for _, p := range []string{"htdocs/index.html", "log/httpd/access.log"} {
		if _, err := os.Stat(filepath.Join(into, p)); err != nil {
			t.Errorf("cp into a directory: %v", err)
		}
	}
	must(t, e.Copy(t.Context(), out, "web:/var/log/"))
	if _, err := os.Stat(filepath.Join(logs, "copy", "index.html")); err != nil {
		t.Errorf("cp into a volume: %v", err)
	}
	if err := e.Copy(t.Context(), out+"/index.html", "web:/usr/local/apache2/htdocs/new.html"); !errors.Is(err, unix.EROFS) {
		t.Errorf("cp into a read-only mount: %v", err)
	}
	remove(e, c, false)
	if c.vols.mounts[0].roView != nil {
		t.Error("read-only view left open")
	}
}

// BenchmarkVolumeCreate is volume("NAME") on a new name. Goal (issue 6): ≤ 1 ms.
func BenchmarkVolumeCreate(b *testing.B) {
	requireRoot(b)
	e, _ := testEngine(b, b.TempDir())
	var times []time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := e.VolumeCreate("vol" + strconv.Itoa(len(times))); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(start))
	}
	reportTimes(b, times)
}

// BenchmarkVolumeCreateAnonymous is volume() with no name.
func BenchmarkVolumeCreateAnonymous(b *testing.B) {
	requireRoot(b)
	e, _ := testEngine(b, b.TempDir())
	for b.Loop() {
		if _, err := e.VolumeCreate(""); err != nil {
			b.Fatal(err)
		}
	}
}
