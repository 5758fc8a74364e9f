package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	goruntime "runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"vscript/engine/build"
	"vscript/engine/errdefs"
	"vscript/engine/event"
)

// Builds mount overlays. inMountNS runs them on an OS thread of its own in a
// private mount namespace: the mounts never reach the host's mount table and
// go away with the thread. (RUN steps need the lab: the runtime starts
// containers from threads of its own. testdata/script/image_*.txtar cover them.)
func inMountNS(t testing.TB, fn func() error) {
	t.Helper()
	ioRequireRoot(t)
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread ends with the goroutine, and its
		// namespace with it.
		goruntime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			errc <- err
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// writeTree writes files (path → content) under dir.
func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for p, body := range files {
		full := filepath.Join(dir, p)
		ioCheck(t, os.MkdirAll(filepath.Dir(full), 0o755))
		ioCheck(t, os.WriteFile(full, []byte(body), 0o644))
	}
}

const dataPacked = "FROM busybox\nADD htdocs/ /usr/local/apache2/htdocs\nVOLUME /usr/local/apache2/htdocs\n"

func buildIn(e *Engine, dir, tag, dockerfile string, noCache bool) (*ImageInfo, error) {
	return e.ImageBuild(context.Background(), BuildSpec{Tag: tag, Context: dir, DockerfileText: dockerfile, NoCache: noCache})
}

func usedCache(rec *event.Recorder) int {
	n := 0
	for _, ev := range rec.Events() {
		if ev.Op == "build step" && strings.Contains(ev.Docker, "Using cache") {
			n++
		}
	}
	return n
}

func TestBuildDataPacked(t *testing.T) {
	e, rec := ioEngine(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"htdocs/index.html": "<h1>data</h1>\n", "htdocs/sub/x.txt": "x"})
	inMountNS(t, func() error {
		first, err := buildIn(e, dir, "datapacked", dataPacked, false)
		if err != nil {
			return err
		}
		img, err := e.images.Get("datapacked")
		if err != nil {
			return err
		}
		bb, _ := e.images.Get("busybox")
		if len(img.Layers) != len(bb.Layers)+1 {
			t.Errorf("%d layers, want busybox's and one", len(img.Layers))
		}
		if !reflect.DeepEqual(first.Config.Volumes, []string{"/usr/local/apache2/htdocs"}) || !reflect.DeepEqual(first.Config.Cmd, []string{"sh"}) {
			t.Errorf("config %+v", first.Config)
		}
		top := e.images.LowerDirs(img)[0]
		if data, err := os.ReadFile(filepath.Join(top, "usr/local/apache2/htdocs/index.html")); err != nil || string(data) != "<h1>data</h1>\n" {
			t.Errorf("index.html in the layer: %q %v", data, err)
		}
		hist, _ := e.ImageHistory("datapacked")
		if !strings.HasPrefix(hist[0].CreatedBy, "/bin/sh -c #(nop)  VOLUME [/usr/local/apache2/htdocs]") || !hist[0].EmptyLayer ||
			!strings.HasPrefix(hist[1].CreatedBy, "/bin/sh -c #(nop) ADD dir:") || hist[1].EmptyLayer {
			t.Errorf("history %+v", hist[:2])
		}
		var steps []string
		for _, ev := range rec.Events() {
			if ev.Op == "build step" {
				steps = append(steps, strings.SplitN(ev.Docker, "\n", 2)[0])
			}
		}
		want := []string{"Step 1/3 : FROM busybox", "Step 2/3 : ADD htdocs/ /usr/local/apache2/htdocs", "Step 3/3 : VOLUME /usr/local/apache2/htdocs"}
		if !reflect.DeepEqual(steps, want) {
			t.Errorf("steps %q", steps)
		}

		// Unchanged: every step from the cache, the same id.
		again, err := buildIn(e, dir, "datapacked", dataPacked, false)
		if err != nil {
			return err
		}
		if again.ID != first.ID || usedCache(rec) != 2 {
			t.Errorf("rebuild: %s (cache hits %d), want %s from the cache", again.ID, usedCache(rec), first.ID)
		}
		// no_cache runs the steps again.
		if _, err := buildIn(e, dir, "datapacked", dataPacked, true); err != nil {
			return err
		}
		if usedCache(rec) != 2 {
			t.Errorf("no_cache build used the cache")
		}
		// A changed file: a new layer, a new id; the old image is dangling.
		writeTree(t, dir, map[string]string{"htdocs/index.html": "<h1>changed</h1>\n"})
		changed, err := buildIn(e, dir, "datapacked", dataPacked, false)
		if err != nil {
			return err
		}
		if changed.ID == first.ID {
			t.Errorf("a changed context gave the same id")
		}
		// Intermediate images are hidden from images().
		infos, err := e.Images()
		if err != nil {
			return err
		}
		var refs []string
		for _, i := range infos {
			refs = append(refs, i.Ref)
		}
		if want := []string{"busybox:latest", "datapacked:latest", "", ""}; !reflect.DeepEqual(refs, want) {
			t.Errorf("images() %q, want %q (the two earlier builds dangling)", refs, want)
		}
		return nil
	})
	// Every mount was released.
	if entries, _ := os.ReadDir(filepath.Join(e.lab.Scratch, "builds")); len(entries) != 0 {
		t.Errorf("left in scratch: %v", entries)
	}
}

func TestBuildScratchAndStages(t *testing.T) {
	e, _ := ioEngine(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"hello.txt": "hello\n", "a.txt": "a\n", ".dockerignore": "secret\n", "secret": "s"})
	inMountNS(t, func() error {
		_, err := buildIn(e, dir, "tiny", "FROM scratch\nCOPY hello.txt /\nCMD [\"/hello.txt\"]\n", false)
		if err != nil {
			return err
		}
		tiny, _ := e.images.Get("tiny")
		if len(tiny.Layers) != 1 || len(tiny.History) != 2 {
			t.Errorf("scratch image: %d layers, %d history entries", len(tiny.Layers), len(tiny.History))
		}
		entries, _ := os.ReadDir(e.images.LowerDirs(tiny)[0])
		if len(entries) != 1 || entries[0].Name() != "hello.txt" {
			t.Errorf("scratch layer holds %v", entries)
		}

		multi := "FROM busybox AS builder\nWORKDIR /out\nCOPY a.txt .\nFROM scratch\nCOPY --from=builder /out/a.txt /a.txt\nWORKDIR /w\n"
		_, err = buildIn(e, dir, "multi", multi, false)
		if err != nil {
			return err
		}
		m, _ := e.images.Get("multi")
		// COPY --from and a WORKDIR that creates its directory: a layer each.
		if len(m.Layers) != 2 || m.Config.WorkingDir != "/w" {
			t.Errorf("multi-stage image: %d layers, workdir %q", len(m.Layers), m.Config.WorkingDir)
		}
		if data, err := os.ReadFile(filepath.Join(e.images.LowerDirs(m)[1], "a.txt")); err != nil || string(data) != "a\n" {
			t.Errorf("a.txt: %q %v", data, err)
		}
		return nil
	})
}

func TestBuildErrors(t *testing.T) {
	e, _ := ioEngine(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"a.txt": "a"})
	ioCheck(t, os.Symlink("/etc/passwd", filepath.Join(dir, "out")))
	inMountNS(t, func() error {
		for _, tc := range []struct {
			dockerfile, want string
			class            error
		}{
			{"FROM busybox\nCOPPY a.txt /\n", "image build bad:latest: dockerfile line 2: unknown instruction: COPPY", errdefs.ErrInvalid},
			{"FROM busybox\nCOPY nosuch /\n", "dockerfile line 2: COPY nosuch", errdefs.ErrNotFound},
			{"FROM busybox\nCOPY ../a.txt /\n", "outside the build context", nil},
			{"FROM busybox\nCOPY out /\n", "outside the build context", nil},
			{"FROM nosuch\n", "dockerfile line 1: FROM nosuch: image nosuch: not found", errdefs.ErrNotFound},
			{"FROM busybox\nCOPY --from=nostage /a /\n", "COPY --from=nostage: image nostage: not found", errdefs.ErrNotFound},
			{"FROM busybox\nADD http://example.com/x /\n", "not available offline", errdefs.ErrUnavailable},
			{"FROM scratch\n", "no image was generated", errdefs.ErrInvalid},
		} {
			before := listing(t, e)
			_, err := buildIn(e, dir, "bad", tc.dockerfile, false)
			if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.class != nil && !errors.Is(err, tc.class)) {
				t.Errorf("%q: %v, want %q (%v)", tc.dockerfile, err, tc.want, tc.class)
			}
			if _, err := e.images.Get("bad"); err == nil {
				t.Errorf("%q: the failed build was tagged", tc.dockerfile)
			}
			after := listing(t, e)
			if len(after) < len(before) {
				t.Errorf("%q: images went missing", tc.dockerfile)
			}
		}
		return nil
	})
	if _, err := buildIn(e, dir, "BAD", "FROM busybox\n", false); err == nil || !strings.Contains(err.Error(), "invalid reference format") {
		t.Errorf("bad tag: %v", err)
	}
	if _, err := e.ImageBuild(context.Background(), BuildSpec{Tag: "x", Context: dir, Dockerfile: filepath.Join(dir, "Dockerfile")}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing Dockerfile: %v", err)
	}
}

// TestDiscard drives Commit's VOLUME rule on plain directories standing for
// a mount: what a RUN wrote below a volume path leaves the upper directory,
// and so do the untouched copies of its parents.
func TestDiscard(t *testing.T) {
	ioRequireRoot(t)
	base := t.TempDir()
	m := &buildMount{merged: filepath.Join(base, "merged"), upper: filepath.Join(base, "upper"),
		lowers: []string{filepath.Join(base, "lower")}}
	for _, d := range []string{"merged/var/data", "merged/etc", "lower/var/data", "lower/etc", "upper/var/data/sub", "upper/etc"} {
		ioCheck(t, os.MkdirAll(filepath.Join(base, d), 0o755))
	}
	writeTree(t, base, map[string]string{"upper/var/data/sub/f": "x", "upper/etc/new.conf": "y"})
	// var is an untouched copy of the lower one; etc changed (a new file).
	for _, d := range []string{"var", "etc"} {
		fi, err := os.Stat(filepath.Join(base, "lower", d))
		ioCheck(t, err)
		ioCheck(t, os.Chtimes(filepath.Join(base, "upper", d), fi.ModTime(), fi.ModTime()))
	}
	ioCheck(t, discard(m, "/var/data"))
	if _, err := os.Lstat(filepath.Join(m.upper, "var")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("upper/var stayed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(m.upper, "etc/new.conf")); err != nil {
		t.Errorf("unrelated change lost: %v", err)
	}

	// A parent directory the RUN changed (here made opaque) stays.
	ioCheck(t, os.MkdirAll(filepath.Join(m.upper, "var/data"), 0o755))
	ioCheck(t, unix.Lsetxattr(filepath.Join(m.upper, "var"), "trusted.overlay.opaque", []byte("y"), 0))
	ioCheck(t, discard(m, "/var/data"))
	if _, err := os.Lstat(filepath.Join(m.upper, "var")); err != nil {
		t.Errorf("opaque upper/var removed: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(m.upper, "var/data")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("upper/var/data stayed: %v", err)
	}
}

func TestRunMountpoints(t *testing.T) {
	root, upper := t.TempDir(), t.TempDir()
	ioCheck(t, os.MkdirAll(filepath.Join(root, "proc"), 0o755))
	got := missingPaths(root, runMountpoints)
	want := []string{"/etc/hosts", "/etc/hostname", "/dev", "/sys", "/etc"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("missing %q, want %q", got, want)
	}
	// What the runtime made is removed; what a RUN put there stays.
	for _, d := range []string{"dev", "sys", "etc"} {
		ioCheck(t, os.MkdirAll(filepath.Join(upper, d), 0o755))
	}
	writeTree(t, upper, map[string]string{"etc/hosts": "", "etc/hostname": "", "sys/kept": "x"})
	removeIfEmpty(upper, got)
	entries, _ := os.ReadDir(upper)
	var names []string
	for _, en := range entries {
		names = append(names, en.Name())
	}
	if !reflect.DeepEqual(names, []string{"sys"}) {
		t.Errorf("left %q, want [sys]", names)
	}
}

// A config-only step keeps the parent's layers, appends its history entry
// stamped with the time, and takes the step's config.
func TestCommitConfigOnly(t *testing.T) {
	ioRequireRoot(t)
	e, _ := ioEngine(t)
	b := &buildBackend{e: e}
	bb, err := e.images.Get("busybox")
	ioCheck(t, err)
	id, err := b.Commit(context.Background(), build.CommitRequest{Parent: bb.ID,
		Config:  v1.Config{Cmd: []string{"echo"}, User: "nobody"},
		History: v1.History{CreatedBy: "/bin/sh -c #(nop)  USER nobody", EmptyLayer: true}})
	ioCheck(t, err)
	img, err := e.images.Get(id)
	ioCheck(t, err)
	if img.Config.User != "nobody" || len(img.Layers) != len(bb.Layers) || len(img.History) != len(bb.History)+1 ||
		!img.History[len(img.History)-1].EmptyLayer || img.History[len(img.History)-1].Created.IsZero() {
		t.Errorf("config-only commit: %+v", img)
	}
}

// Removing a built image removes the intermediate images it was built on,
// as docker rmi does, but not a parent that another image starts with.
func TestImageRemoveParents(t *testing.T) {
	e, _ := ioEngine(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"htdocs/index.html": "x"})
	inMountNS(t, func() error {
		if _, err := buildIn(e, dir, "one", dataPacked, false); err != nil {
			return err
		}
		// two is one (from the cache) and a CMD step.
		if _, err := buildIn(e, dir, "two", dataPacked+"CMD [\"true\"]\n", false); err != nil {
			return err
		}
		return nil
	})
	ioCheck(t, e.ImageRemove("two", false))
	// two's parent is one, which is tagged: only two goes.
	if got, want := len(listing(t, e)), 3; got != want { // busybox, one, one's ADD step
		t.Errorf("after rm two: %q, want %d images", listing(t, e), want)
	}
	ioCheck(t, e.ImageRemove("one", false))
	if got := listing(t, e); len(got) != 1 || !strings.HasPrefix(got[0], "busybox:latest ") {
		t.Errorf("after rm one: %q, want busybox alone", got)
	}
}
