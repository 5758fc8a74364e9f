package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"vscript/engine/errdefs"
	"vscript/engine/event"
)

// harness builds Dockerfiles against one fake backend and cache, the way
// successive image_build calls share the state directory.
type harness struct {
	t       *testing.T
	backend *fakeBackend
	cache   memCache
	ctxDir  string
}

func newHarness(t *testing.T, files map[string]string) *harness {
	t.Helper()
	h := &harness{t: t, backend: newFakeBackend(t), cache: memCache{}, ctxDir: t.TempDir()}
	writeFiles(t, h.ctxDir, files)
	return h
}

type result struct {
	id     string
	err    error
	events []event.Event
	output string
}

func (h *harness) build(dockerfile string, args map[string]string, noCache bool) result {
	h.t.Helper()
	plan, err := Parse(strings.NewReader(dockerfile))
	if err != nil {
		h.t.Fatalf("Parse: %v", err)
	}
	rec := &event.Recorder{}
	var out bytes.Buffer
	id, err := Build(context.Background(), plan, Options{
		ContextDir: h.ctxDir,
		BuildArgs:  args,
		NoCache:    noCache,
		Tag:        "test",
		Events:     rec,
		Output:     &out,
	}, Deps{Backend: h.backend, Cache: h.cache, Unpack: untar})
	if h.backend.mounted != 0 {
		h.t.Errorf("%d mounts not released", h.backend.mounted)
	}
	return result{id: id, err: err, events: rec.Events(), output: out.String()}
}

func (h *harness) mustBuild(dockerfile string, args map[string]string) result {
	h.t.Helper()
	r := h.build(dockerfile, args, false)
	if r.err != nil {
		h.t.Fatalf("Build: %v", r.err)
	}
	return r
}

// stepLines returns the Docker text of the "build step" events.
func stepLines(evs []event.Event) []string {
	var out []string
	for _, e := range evs {
		if e.Op == "build step" {
			out = append(out, e.Docker)
		}
	}
	return out
}

// cacheHits lists, per step event, whether it was a cache hit.
func cacheHits(evs []event.Event) []bool {
	var out []bool
	for _, d := range stepLines(evs) {
		out = append(out, strings.Contains(d, "---> Using cache"))
	}
	return out
}

const dataPacked = `FROM busybox
ADD htdocs/ /usr/local/apache2/htdocs
VOLUME /usr/local/apache2/htdocs
`

func TestBuildDataPackedVolume(t *testing.T) {
	needRoot(t) // files copied from the context become root's
	h := newHarness(t, map[string]string{
		"htdocs/index.html":     "<h1>data-packed</h1>\n",
		"htdocs/img/logo.txt":   "logo\n",
		"Dockerfile":            dataPacked,
		"htdocs/.hidden-but-ok": "x",
	})
	r := h.mustBuild(dataPacked, nil)
	img := h.backend.image(r.id)

	if got := readFile(t, filepath.Join(img.rootfs, "usr/local/apache2/htdocs/index.html")); got != "<h1>data-packed</h1>\n" {
		t.Errorf("index.html = %q", got)
	}
	if got := readFile(t, filepath.Join(img.rootfs, "usr/local/apache2/htdocs/img/logo.txt")); got != "logo\n" {
		t.Errorf("logo.txt = %q", got)
	}
	if _, err := os.Stat(filepath.Join(img.rootfs, "usr/local/apache2/htdocs/htdocs")); err == nil {
		t.Error("ADD dir/ copied the directory itself, want its contents")
	}
	if !reflect.DeepEqual(img.config.Volumes, map[string]struct{}{"/usr/local/apache2/htdocs": {}}) {
		t.Errorf("Volumes = %v", img.config.Volumes)
	}
	if !reflect.DeepEqual(img.config.Cmd, []string{"sh"}) {
		t.Errorf("Cmd = %q, want inherited [sh]", img.config.Cmd)
	}
	if img.layers != 2 {
		t.Errorf("layers = %d, want busybox's 1 + ADD", img.layers)
	}
	hist := img.history[len(img.history)-2:]
	if !strings.HasPrefix(hist[0].CreatedBy, "/bin/sh -c #(nop) ADD dir:") ||
		!strings.HasSuffix(hist[0].CreatedBy, " in /usr/local/apache2/htdocs ") || hist[0].EmptyLayer {
		t.Errorf("ADD history = %+v", hist[0])
	}
	if want := (v1.History{CreatedBy: "/bin/sh -c #(nop)  VOLUME [/usr/local/apache2/htdocs]", EmptyLayer: true}); hist[1] != want {
		t.Errorf("VOLUME history = %+v, want %+v", hist[1], want)
	}

	lines := stepLines(r.events)
	want := []string{
		"Step 1/3 : FROM busybox\n ---> bbbbbbbbbbbb",
		"Step 2/3 : ADD htdocs/ /usr/local/apache2/htdocs\n ---> ",
		"Step 3/3 : VOLUME /usr/local/apache2/htdocs\n ---> " + shortID(r.id),
	}
	if len(lines) != 3 {
		t.Fatalf("step events = %q", lines)
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("event %d = %q, want prefix %q", i, lines[i], want[i])
		}
	}

	// The same build again is all cache hits and the same image.
	commits := len(h.backend.commits)
	again := h.mustBuild(dataPacked, nil)
	if again.id != r.id {
		t.Errorf("rebuild id %s, want %s", again.id, r.id)
	}
	if got := cacheHits(again.events); !reflect.DeepEqual(got, []bool{false, true, true}) {
		t.Errorf("rebuild cache hits = %v, want FROM then hits", got)
	}
	if len(h.backend.commits) != commits {
		t.Errorf("rebuild committed %d images", len(h.backend.commits)-commits)
	}
}

func TestBuildMultiStage(t *testing.T) {
	needRoot(t) // files copied from the context become root's
	h := newHarness(t, map[string]string{"main.txt": "source\n"})
	df := `FROM busybox AS builder
WORKDIR /src
COPY main.txt .
RUN mkdir -p /out; echo built > /out/app
FROM scratch
COPY --from=builder /out/app /app
COPY --from=0 /src/main.txt /src/
CMD ["/app"]
`
	r := h.mustBuild(df, nil)
	img := h.backend.image(r.id)
	if got := readFile(t, filepath.Join(img.rootfs, "app")); got != "built\n" {
		t.Errorf("/app = %q", got)
	}
	if got := readFile(t, filepath.Join(img.rootfs, "src/main.txt")); got != "source\n" {
		t.Errorf("/src/main.txt = %q", got)
	}
	if _, err := os.Stat(filepath.Join(img.rootfs, "bin/sh")); err == nil {
		t.Error("final stage contains the builder's files")
	}
	if img.layers != 2 || len(img.history) != 3 {
		t.Errorf("layers %d history %d, want 2 and 3 (scratch + 2 COPY + CMD)", img.layers, len(img.history))
	}
	if !reflect.DeepEqual(img.config, v1.Config{Env: []string{"PATH=" + defaultPath}, Cmd: []string{"/app"}}) {
		t.Errorf("config = %+v", img.config)
	}
	// The builder's RUN ran in WORKDIR /src.
	if len(h.backend.runs) != 1 || h.backend.runs[0].WorkingDir != "/src" {
		t.Errorf("runs = %+v", h.backend.runs)
	}
	if n := len(stepLines(r.events)); n != 8 {
		t.Errorf("%d step events, want 8", n)
	}
}

func TestBuildRunFailure(t *testing.T) {
	h := newHarness(t, nil)
	r := h.build("FROM busybox\nRUN echo oops; false\n", nil, false)
	if r.err == nil {
		t.Fatal("build succeeded")
	}
	want := "dockerfile line 2: RUN echo oops; false: exit code 1\noops"
	if r.err.Error() != want {
		t.Errorf("error = %q, want %q", r.err, want)
	}
	var re *RunError
	if !errors.As(r.err, &re) || re.ExitCode != 1 {
		t.Errorf("error %v is not a RunError with exit code 1", r.err)
	}
	if r.output != "oops\n" {
		t.Errorf("streamed output = %q", r.output)
	}
	if len(h.cache) != 0 {
		t.Errorf("failed step left cache records: %v", h.cache)
	}
}

func TestBuildVolumeDiscardsRunChanges(t *testing.T) {
	needRoot(t) // files copied from the context become root's
	h := newHarness(t, map[string]string{"seed.txt": "seed\n"})
	df := `FROM busybox
RUN mkdir -p /data; touch /data/before
VOLUME /data
RUN touch /data/after /outside
COPY seed.txt /data/
`
	r := h.mustBuild(df, nil)
	img := h.backend.image(r.id)
	for p, want := range map[string]bool{
		"data/before":   true,  // written before VOLUME
		"data/after":    false, // RUN after VOLUME: discarded
		"outside":       true,
		"data/seed.txt": true, // COPY after VOLUME is kept, as Docker's builder does
	} {
		_, err := os.Stat(filepath.Join(img.rootfs, p))
		if (err == nil) != want {
			t.Errorf("%s exists = %v, want %v", p, err == nil, want)
		}
	}
	var discards [][]string
	for _, c := range h.backend.commits {
		if c.Mount != nil {
			discards = append(discards, c.Discard)
		}
	}
	if want := [][]string{nil, {"/data"}, nil}; !reflect.DeepEqual(discards, want) {
		t.Errorf("Discard per layer commit = %q, want %q", discards, want)
	}
}

func TestBuildCacheKeys(t *testing.T) {
	df := "FROM busybox\nARG V\nCOPY site/ /site/\nRUN echo $V\n"
	tests := []struct {
		name   string
		change func(t *testing.T, ctxDir string)
		args   map[string]string
		hits   []bool // ARG, COPY, RUN
	}{
		{"unchanged", nil, nil, []bool{true, true, true}},
		{"content changed", func(t *testing.T, d string) {
			writeFiles(t, d, map[string]string{"site/a.txt": "changed\n"})
		}, nil, []bool{true, false, false}},
		{"mtime only", func(t *testing.T, d string) {
			old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
			if err := os.Chtimes(filepath.Join(d, "site/a.txt"), old, old); err != nil {
				t.Fatal(err)
			}
		}, nil, []bool{true, true, true}},
		{"mode changed", func(t *testing.T, d string) {
			if err := os.Chmod(filepath.Join(d, "site/a.txt"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, nil, []bool{true, false, false}},
		{"file added", func(t *testing.T, d string) {
			writeFiles(t, d, map[string]string{"site/b.txt": "b\n"})
		}, nil, []bool{true, false, false}},
		{"build arg used by RUN", nil, map[string]string{"V": "2"}, []bool{true, true, false}},
		{"build arg nobody declares", nil, map[string]string{"OTHER": "x"}, []bool{true, true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			needRoot(t) // files copied from the context become root's
			h := newHarness(t, map[string]string{"site/a.txt": "a\n"})
			first := h.mustBuild(df, nil)
			if tt.change != nil {
				tt.change(t, h.ctxDir)
			}
			second := h.mustBuild(df, tt.args)
			hits := cacheHits(second.events)[1:] // after FROM
			if !reflect.DeepEqual(hits, tt.hits) {
				t.Errorf("cache hits = %v, want %v", hits, tt.hits)
			}
			allHit := !slicesContains(tt.hits, false)
			if (second.id == first.id) != allHit {
				t.Errorf("same image = %v, want %v", second.id == first.id, allHit)
			}
		})
	}
}

func slicesContains(s []bool, v bool) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestBuildUnusedBuildArgWarns(t *testing.T) {
	h := newHarness(t, nil)
	r := h.mustBuild("FROM busybox\nARG USED\nRUN echo $USED\n", map[string]string{"USED": "1", "NOPE": "2", "ALSO": "3"})
	var warnings []string
	for _, e := range r.events {
		if e.Op == "build warning" {
			warnings = append(warnings, e.Docker)
		}
	}
	if want := []string{"[Warning] One or more build-args [ALSO NOPE] were not consumed"}; !reflect.DeepEqual(warnings, want) {
		t.Errorf("warnings = %q, want %q", warnings, want)
	}
	// The RUN saw the declared arg in its environment and history.
	run := h.backend.runs[0]
	if !slicesContainsString(run.Env, "USED=1") || slicesContainsString(run.Env, "NOPE=2") {
		t.Errorf("RUN env = %q", run.Env)
	}
	hist := h.backend.image(r.id).history
	if got := hist[len(hist)-1].CreatedBy; got != "|1 USED=1 /bin/sh -c echo $USED" {
		t.Errorf("RUN created_by = %q", got)
	}
}

func slicesContainsString(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestBuildNoCache(t *testing.T) {
	h := newHarness(t, nil)
	df := "FROM busybox\nRUN touch /x\nENV A=1\n"
	first := h.mustBuild(df, nil)
	r := h.build(df, nil, true)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := cacheHits(r.events); slicesContains(got, true) {
		t.Errorf("no_cache build had cache hits: %v", got)
	}
	if r.id == first.id || len(h.backend.runs) != 2 {
		t.Errorf("no_cache reused the image (runs %d)", len(h.backend.runs))
	}
	// The fresh result is what the cache now holds.
	third := h.mustBuild(df, nil)
	if third.id != r.id {
		t.Errorf("after no_cache, cached build gave %s, want %s", third.id, r.id)
	}
}

func TestBuildCacheRecordOfRemovedImageIsMiss(t *testing.T) {
	h := newHarness(t, nil)
	df := "FROM busybox\nRUN touch /x\n"
	first := h.mustBuild(df, nil)
	delete(h.backend.images, first.id)
	second := h.mustBuild(df, nil)
	if got := cacheHits(second.events); !reflect.DeepEqual(got, []bool{false, false}) {
		t.Errorf("hits = %v, want a miss for the removed image", got)
	}
	if _, ok := h.backend.images[second.id]; !ok {
		t.Error("result image missing")
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name, df string
		want     string
		class    error
	}{
		{"missing source", "FROM busybox\nCOPY nope.txt /\n", "dockerfile line 2: COPY nope.txt: file not found in build context", errdefs.ErrNotFound},
		{"outside context", "FROM busybox\nCOPY ../x /\n", "dockerfile line 2: COPY ../x: forbidden path outside the build context", errdefs.ErrInvalid},
		{"symlink escapes", "FROM busybox\nCOPY escape /\n", "dockerfile line 2: COPY escape: forbidden path outside the build context", errdefs.ErrInvalid},
		{"remote ADD", "FROM busybox\nADD http://example.com/x.tgz /\n", "dockerfile line 2: ADD http://example.com/x.tgz: remote URLs are not available offline", errdefs.ErrUnavailable},
		{"excluded", "FROM busybox\nCOPY secret.txt /\n", "dockerfile line 2: COPY secret.txt: file not found in build context (excluded by .dockerignore)", errdefs.ErrNotFound},
		{"no such image", "FROM nosuch\n", "dockerfile line 1: FROM nosuch: image nosuch: not found", errdefs.ErrNotFound},
		{"empty scratch", "FROM scratch\n", "dockerfile line 1: FROM scratch: no image was generated", errdefs.ErrInvalid},
		{"multi source needs dir", "FROM busybox\nCOPY a.txt b.txt /x\n", "dockerfile line 2: COPY a.txt b.txt /x: with more than one source the destination must be a directory and end with a /", errdefs.ErrInvalid},
		{"wildcard without match", "FROM busybox\nCOPY *.md /\n", "dockerfile line 2: COPY *.md: file not found in build context", errdefs.ErrNotFound},
		{"copy from later stage", "FROM busybox\nCOPY --from=later /x /\nFROM busybox AS later\n", `dockerfile line 2: COPY --from=later: stage "later" is not built yet`, errdefs.ErrInvalid},
		{"chown unknown user", "FROM busybox\nCOPY --chown=alice a.txt /\n", `dockerfile line 2: COPY --chown=alice a.txt /: --chown=alice: no "alice" in the image's /etc/passwd`, errdefs.ErrNotFound},
		{"missing in stage", "FROM busybox AS b\nFROM scratch\nCOPY --from=b /nope /\n", "dockerfile line 3: COPY --from=b /nope: file not found", errdefs.ErrNotFound},
		{"bad expansion", "FROM busybox\nENV A=${X:?unset}\n", `dockerfile line 2: ENV A=${X:?unset}: failed to process "${X:?unset}": X: unset`, errdefs.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, map[string]string{
				"a.txt": "a", "b.txt": "b", "secret.txt": "s", ".dockerignore": "secret.txt\n",
			})
			outside := filepath.Join(t.TempDir(), "outside")
			writeFiles(t, outside, map[string]string{"x": "x"})
			if err := os.Symlink(outside, filepath.Join(h.ctxDir, "escape")); err != nil {
				t.Fatal(err)
			}
			r := h.build(tt.df, nil, false)
			if r.err == nil {
				t.Fatal("build succeeded")
			}
			if !strings.HasPrefix(r.err.Error(), tt.want) {
				t.Errorf("error = %q, want prefix %q", r.err, tt.want)
			}
			if !errors.Is(r.err, tt.class) {
				t.Errorf("error %v is not %v", r.err, tt.class)
			}
		})
	}
}

func TestBuildChownAndOwners(t *testing.T) {
	needRoot(t) // files copied from the context become root's
	h := newHarness(t, map[string]string{"site/index.html": "hi"})
	if err := os.Chown(filepath.Join(h.ctxDir, "site/index.html"), 1234, 1234); err != nil {
		t.Fatal(err)
	}
	df := `FROM busybox AS src
RUN mkdir -p /srv; touch /srv/f
FROM busybox
COPY site/ /plain/
COPY --chown=www-data site/ /web/
COPY --chown=nobody:www-data site/index.html /mixed.html
COPY --chown=1000 site/index.html /numeric.html
`
	r := h.mustBuild(df, nil)
	root := h.backend.image(r.id).rootfs
	for p, want := range map[string][2]uint32{
		"plain/index.html": {0, 0}, // context files become root's
		"web":              {33, 33},
		"web/index.html":   {33, 33}, // user alone brings its primary group
		"mixed.html":       {65534, 33},
		"numeric.html":     {1000, 1000},
	} {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(root, p), &st); err != nil {
			t.Fatal(err)
		}
		if got := [2]uint32{st.Uid, st.Gid}; got != want {
			t.Errorf("%s owner = %v, want %v", p, got, want)
		}
	}
}

func TestBuildAddArchive(t *testing.T) {
	needRoot(t) // files copied from the context become root's
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	body := []byte("from the tarball\n")
	tw.WriteHeader(&tar.Header{Name: "pkg/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "pkg/readme", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))})
	tw.Write(body)
	tw.Close()
	zw.Close()
	h := newHarness(t, map[string]string{"app.tar.gz": buf.String(), "plain.txt": "not an archive"})

	r := h.mustBuild("FROM busybox\nADD app.tar.gz /opt/\nADD plain.txt /opt/\nCOPY app.tar.gz /copied/\n", nil)
	root := h.backend.image(r.id).rootfs
	if got := readFile(t, filepath.Join(root, "opt/pkg/readme")); got != string(body) {
		t.Errorf("extracted readme = %q", got)
	}
	if got := readFile(t, filepath.Join(root, "opt/plain.txt")); got != "not an archive" {
		t.Errorf("plain.txt = %q", got)
	}
	if _, err := os.Stat(filepath.Join(root, "copied/app.tar.gz")); err != nil {
		t.Errorf("COPY must not extract: %v", err)
	}
}

func TestBuildWorkdirLayers(t *testing.T) {
	h := newHarness(t, nil)
	r := h.mustBuild("FROM busybox\nWORKDIR /tmp\nWORKDIR app\nRUN touch here\n", nil)
	img := h.backend.image(r.id)
	hist := img.history[len(img.history)-3:]
	want := []v1.History{
		{CreatedBy: "/bin/sh -c #(nop) WORKDIR /tmp", EmptyLayer: true}, // exists in busybox
		{CreatedBy: "/bin/sh -c #(nop) WORKDIR /tmp/app"},
		{CreatedBy: "/bin/sh -c touch here"},
	}
	if !reflect.DeepEqual(hist, want) {
		t.Errorf("history = %+v, want %+v", hist, want)
	}
	if img.layers != 3 {
		t.Errorf("layers = %d, want 3", img.layers)
	}
	if _, err := os.Stat(filepath.Join(img.rootfs, "tmp/app/here")); err != nil {
		t.Error(err)
	}
	if img.config.WorkingDir != "/tmp/app" {
		t.Errorf("WorkingDir = %q", img.config.WorkingDir)
	}
}

func TestBuildFromArgAndStage(t *testing.T) {
	h := newHarness(t, nil)
	df := `ARG BASE=busybox
ARG STAGE
FROM ${BASE} AS first
LABEL stage=first
FROM ${STAGE:-first}
ENV FROM_BASE="${BASE:-not visible}"
`
	r := h.mustBuild(df, nil)
	img := h.backend.image(r.id)
	if img.config.Labels["stage"] != "first" {
		t.Errorf("second stage did not start from the first: %+v", img.config)
	}
	if !slicesContainsString(img.config.Env, "FROM_BASE=not visible") {
		t.Errorf("a meta ARG leaked into the stage: %q", img.config.Env)
	}
	lines := stepLines(r.events)
	if len(lines) != 6 || lines[0] != "Step 1/6 : ARG BASE=busybox" || !strings.HasPrefix(lines[2], "Step 3/6 : FROM ${BASE} AS first\n ---> bbbbbbbbbbbb") {
		t.Errorf("events = %q", lines)
	}
	// A build arg picks another base.
	r2 := h.mustBuild(df, map[string]string{"BASE": "busybox", "STAGE": "busybox"})
	if h.backend.image(r2.id).config.Labels["stage"] == "first" {
		t.Error("STAGE=busybox still built on the first stage")
	}
}

func TestBuildParserWarnings(t *testing.T) {
	h := newHarness(t, nil)
	r := h.mustBuild("FROM busybox\nRUN echo a \\\n\n    b\n", nil)
	var warnings []string
	for _, e := range r.events {
		if e.Op == "build warning" {
			warnings = append(warnings, e.Docker)
		}
	}
	if len(warnings) != 1 || !strings.HasPrefix(warnings[0], "[WARNING]: Empty continuation line found in: RUN echo a") {
		t.Errorf("warnings = %q", warnings)
	}
}
