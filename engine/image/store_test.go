package image

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"vscript/engine/errdefs"
	"vscript/engine/store"
)

func writeLayer(t testing.TB, s *Store, ents ...ent) Layer {
	t.Helper()
	l, err := s.WriteLayer(bytes.NewReader(mkTar(t, ents...)))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func create(t testing.TB, s *Store, cfg v1.Config, layers ...Layer) *Image {
	t.Helper()
	img, err := s.Create(cfg, []v1.History{{CreatedBy: "test"}}, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestParseRef(t *testing.T) {
	tests := []struct{ in, want string }{
		{"busybox", "busybox:latest"},
		{"busybox:1.36", "busybox:1.36"},
		{"docker.io/library/busybox", "busybox:latest"},
		{"library/busybox:x", "busybox:x"},
		{"docker.io/someone/app", "someone/app:latest"},
		{"localhost:5000/app", "localhost:5000/app:latest"},
		{"localhost:5000/app:v2", "localhost:5000/app:v2"},
		{"my-app_2.x:a.b-c", "my-app_2.x:a.b-c"},
		{"Busybox", ""},
		{"app:", ""},
		{"app@sha256:abcd", ""},
		{"-app", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got, err := ParseRef(tt.in)
		if tt.want == "" {
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("ParseRef(%q) = %q, %v; want ErrInvalid", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseRef(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestCreateGetTag(t *testing.T) {
	requireRoot(t)
	s := newStore(t)
	cfg := v1.Config{Cmd: []string{"sh"}, Env: []string{"A=1"}, Labels: map[string]string{"k": "v"}}
	img := create(t, s, cfg, writeLayer(t, s, file("f", "1")))
	if img.Ref != "" {
		t.Errorf("new image has a name: %q", img.Ref)
	}
	if err := s.Tag(img, "app"); err != nil {
		t.Fatal(err)
	}
	hex := img.ID[len("sha256:"):]
	for _, ref := range []string{"app", "app:latest", "docker.io/library/app", img.ID, hex, hex[:4], "sha256:" + hex[:12]} {
		got, err := s.Get(ref)
		if err != nil {
			t.Errorf("Get(%q): %v", ref, err)
			continue
		}
		if got.ID != img.ID || got.Ref != "app:latest" || !reflect.DeepEqual(got.Config.Cmd, cfg.Cmd) {
			t.Errorf("Get(%q) = %s %q %v", ref, got.ID, got.Ref, got.Config.Cmd)
		}
	}

	for _, ref := range []string{"nope", "app:other", hex[:3], "sha256:" + hex[:3], "sha256:ffffffff"} {
		_, err := s.Get(ref)
		if !errors.Is(err, errdefs.ErrNotFound) || err.Error() != "image "+ref+": not found" {
			t.Errorf("Get(%q) = %v, want `image %s: not found`", ref, err, ref)
		}
	}
	if _, err := s.Get("Not A Ref"); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("Get of a malformed ref: %v, want ErrInvalid", err)
	}

	// Values handed out and taken are copies: changing one changes nothing
	// stored.
	cfg.Env[0] = "A=caller"
	got, _ := s.Get("app")
	got.Config.Env[0] = "A=changed"
	got.Config.Labels["k"] = "changed"
	again, _ := s.Get("app")
	if again.Config.Env[0] != "A=1" || again.Config.Labels["k"] != "v" {
		t.Errorf("stored image changed through a returned value: %v %v", again.Config.Env, again.Config.Labels)
	}
}

func TestCreateIsDeterministic(t *testing.T) {
	requireRoot(t)
	s := newStore(t)
	cfg := v1.Config{Cmd: []string{"true"}}
	a := create(t, s, cfg, writeLayer(t, s, file("f", "1")))
	b := create(t, s, cfg, writeLayer(t, s, file("f", "1")))
	if a.ID != b.ID || a.Digest != b.Digest {
		t.Errorf("same content, different images: %s %s", a.ID, b.ID)
	}
	other := newStore(t)
	c := create(t, other, cfg, writeLayer(t, other, file("f", "1")))
	if c.ID != a.ID {
		t.Errorf("same content in another root, different id: %s %s", c.ID, a.ID)
	}
	if !c.Created.Equal(time.Unix(0, 0)) {
		t.Errorf("created = %v, want the epoch", c.Created)
	}
	list, _ := s.List()
	if len(list) != 1 {
		t.Errorf("List = %d images, want 1", len(list))
	}
}

// The content directory must be an OCI layout other tools read: check it with
// go-containerregistry's own reader and validator.
func TestContentIsValidOCILayout(t *testing.T) {
	requireRoot(t)
	s := newStore(t)
	base := writeLayer(t, s, dir("etc/"), file("etc/hosts", "h"))
	img := create(t, s, v1.Config{Cmd: []string{"sh"}}, base, writeLayer(t, s, file("f", "1")))
	if err := s.Tag(img, "app:v1"); err != nil {
		t.Fatal(err)
	}
	p, err := layout.FromPath(s.st.Path("content"))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	man, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(man.Manifests) != 1 || man.Manifests[0].Annotations[RefAnnotation] != "app:v1" {
		t.Fatalf("index manifests = %+v", man.Manifests)
	}
	oimg, err := idx.Image(man.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	// Fast: its layer check assumes gzip; ours are plain tars, so digest
	// them here instead.
	if err := validate.Image(oimg, validate.Fast); err != nil {
		t.Errorf("validate: %v", err)
	}
	layers, err := oimg.Layers()
	if err != nil || len(layers) != 2 {
		t.Fatalf("layers: %d, %v", len(layers), err)
	}
	for i, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		digest, size, _ := v1.SHA256(rc)
		rc.Close()
		rc, err = l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		diff, _, _ := v1.SHA256(rc)
		rc.Close()
		wantDigest, _ := l.Digest()
		wantDiff, _ := l.DiffID()
		wantSize, _ := l.Size()
		if digest != wantDigest || diff != wantDiff || size != wantSize || diff != img.Layers[i].DiffID {
			t.Errorf("layer %d: digest %s size %d diff id %s; manifest says %s %d %s", i, digest, size, diff, wantDigest, wantSize, wantDiff)
		}
	}
	id, _ := oimg.ConfigName()
	if id.String() != img.ID {
		t.Errorf("config digest %s, want image id %s", id, img.ID)
	}
}

func TestTagMovesName(t *testing.T) {
	requireRoot(t)
	s := newStore(t)
	one := create(t, s, v1.Config{Cmd: []string{"one"}}, writeLayer(t, s, file("f", "1")))
	two := create(t, s, v1.Config{Cmd: []string{"two"}}, writeLayer(t, s, file("f", "2")))
	for _, tag := range []string{"x", "y"} {
		if err := s.Tag(one, tag); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Tag(two, "x"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get("x"); got.ID != two.ID {
		t.Errorf("x = %s, want the second image", got.ID)
	}
	if err := s.Tag(two, "y"); err != nil {
		t.Fatal(err)
	}
	// one lost both names and stays as an untagged image.
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, img := range list {
		rows = append(rows, img.Ref+"="+img.ID)
	}
	want := []string{"x:latest=" + two.ID, "y:latest=" + two.ID, "=" + one.ID}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("List = %v, want %v", rows, want)
	}
}

func TestRemove(t *testing.T) {
	requireRoot(t)
	s := newStore(t)
	shared := writeLayer(t, s, file("base", "b"))
	own := writeLayer(t, s, file("a", "a"))
	a := create(t, s, v1.Config{Cmd: []string{"a"}}, shared, own)
	b := create(t, s, v1.Config{Cmd: []string{"b"}}, shared, writeLayer(t, s, file("b", "b")))
	s.Tag(a, "a")
	s.Tag(a, "a2")
	s.Tag(b, "b")

	if err := s.Remove(a.ID); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("Remove by id of an image with two names: %v, want ErrConflict", err)
	}
	if err := s.Remove("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("a"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("a still there: %v", err)
	}
	if got, err := s.Get("a2"); err != nil || got.ID != a.ID {
		t.Fatalf("untagging a removed the image: %v", err)
	}
	if err := s.Remove("a2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(a.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("image still there: %v", err)
	}
	for _, gone := range []string{s.BlobPath(a.Digest), s.BlobPath(configDigest(a)), s.BlobPath(own.Digest), s.layers.Path(a.Layers[1].ChainID)} {
		if _, err := os.Stat(gone); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind", gone)
		}
	}
	for _, kept := range []string{s.BlobPath(shared.Digest), s.layers.Path(b.Layers[0].ChainID), s.layers.Path(b.Layers[1].ChainID)} {
		if _, err := os.Stat(kept); err != nil {
			t.Errorf("%s, used by b, removed: %v", kept, err)
		}
	}
	if err := s.Remove("a"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Remove of a missing image: %v", err)
	}
	assertTmpEmpty(t, s.st)
}

func TestRemoveSparesHeldLayersUntilPrune(t *testing.T) {
	requireRoot(t)
	s := newStore(t)
	img := create(t, s, v1.Config{}, writeLayer(t, s, file("f", "1")))
	s.Tag(img, "app")
	release, err := s.Hold(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("app"); err != nil {
		t.Fatal(err)
	}
	top := s.layers.Path(img.Layers[0].ChainID)
	if _, err := os.Stat(top); err != nil {
		t.Fatalf("held layer removed: %v", err)
	}
	stray := writeLayer(t, s, file("stray", "s")) // unreferenced, fresh

	if err := s.Prune(PruneGrace); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.BlobPath(stray.Digest)); err != nil {
		t.Errorf("Prune deleted fresh content: %v", err)
	}
	if err := s.Prune(0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(top); err != nil {
		t.Errorf("Prune removed a held layer: %v", err)
	}
	release()
	if err := s.Prune(0); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{top, s.BlobPath(stray.Digest)} {
		if _, err := os.Stat(gone); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived Prune", gone)
		}
	}
}

func TestCommitDir(t *testing.T) {
	requireRoot(t)
	s := newStore(t)
	parent := create(t, s, v1.Config{Cmd: []string{"sh"}}, writeLayer(t, s, dir("etc/"), file("etc/hosts", "h")))

	// Two containers making the same changes at the same times.
	changes := []ent{dir("etc/"), file("etc/.wh.hosts", ""), dir("app/"), file("app/run", "#!/bin/sh")}
	var imgs []*Image
	for range 2 {
		upper := t.TempDir()
		unpackT(t, upper, changes...)
		img, err := s.CommitDir(parent, upper, v1.Config{Cmd: []string{"/app/run"}}, v1.History{CreatedBy: "RUN make"})
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img)
	}
	a, b := imgs[0], imgs[1]
	if a.ID != b.ID || a.Layers[1].Digest != b.Layers[1].Digest {
		t.Errorf("same changes, different images: %s %s", a.ID, b.ID)
	}
	if len(a.Layers) != 2 || a.Layers[0] != parent.Layers[0] {
		t.Errorf("layers = %+v, want the parent's plus one", a.Layers)
	}
	if len(a.History) != 2 || a.History[1].CreatedBy != "RUN make" {
		t.Errorf("history = %+v", a.History)
	}
	top := s.layers.Path(a.Layers[1].ChainID)
	if got := mustRead(t, filepath.Join(top, "app/run")); got != "#!/bin/sh" {
		t.Errorf("app/run = %q", got)
	}
	if fi, err := os.Lstat(filepath.Join(top, "etc/hosts")); err != nil || !isWhiteout(fi) {
		t.Errorf("etc/hosts is not a whiteout in the committed layer: %v", err)
	}

	base, rel := s.Lowers(a)
	if len(rel) != 2 || rel[0] != linkName(a.Layers[1].ChainID) || base != s.st.Path("layers", "l") {
		t.Errorf("Lowers = %s %v", base, rel)
	}

	scratch, err := s.CommitDir(nil, t.TempDir(), v1.Config{}, v1.History{CreatedBy: "COPY nothing"})
	if err != nil {
		t.Fatal(err)
	}
	if len(scratch.Layers) != 1 || len(scratch.History) != 1 {
		t.Errorf("scratch commit: %d layers, %d history", len(scratch.Layers), len(scratch.History))
	}
}

func TestCommitDirMissingUpper(t *testing.T) {
	s := newStore(t)
	_, err := s.CommitDir(nil, filepath.Join(t.TempDir(), "none"), v1.Config{}, v1.History{})
	if err == nil {
		t.Fatal("CommitDir of a missing directory succeeded")
	}
	assertTmpEmpty(t, s.st)
}

func TestHoldRepairsMissingLayer(t *testing.T) {
	requireRoot(t)
	s := newStore(t)
	img := create(t, s, v1.Config{}, writeLayer(t, s, file("f", "1")), writeLayer(t, s, file("g", "2")))
	if err := os.RemoveAll(s.layers.Path(img.Layers[1].ChainID)); err != nil {
		t.Fatal(err)
	}
	release, err := s.Hold(img)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if got := mustRead(t, filepath.Join(s.layers.Path(img.Layers[1].ChainID), "g")); got != "2" {
		t.Errorf("g = %q", got)
	}
}

// A second run's writes show up in a store that has cached index.json.
func TestGetSeesOtherRuns(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	open := func() *Store {
		st, err := store.Open(root)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		s, err := New(st)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	mine, theirs := open(), open()
	if _, err := mine.Get("app"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatal(err)
	}
	img := create(t, theirs, v1.Config{}, writeLayer(t, theirs, file("f", "1")))
	if err := theirs.Tag(img, "app"); err != nil {
		t.Fatal(err)
	}
	if got, err := mine.Get("app"); err != nil || got.ID != img.ID {
		t.Errorf("Get after another run's Tag: %v", err)
	}
	if err := theirs.Remove("app"); err != nil {
		t.Fatal(err)
	}
	if _, err := mine.Get("app"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Get after another run's Remove: %v", err)
	}
}

func TestWriteLayerGzip(t *testing.T) {
	requireRoot(t)
	s := newStore(t)
	data := mkTar(t, file("f", "gz"))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()
	l, err := s.WriteLayer(bytes.NewReader(gz.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if l.DiffID != diffID(data) || l.Digest == l.DiffID || l.Size != int64(gz.Len()) {
		t.Errorf("layer = %+v", l)
	}
	img := create(t, s, v1.Config{}, l)
	if got := mustRead(t, filepath.Join(s.layers.Path(img.Layers[0].ChainID), "f")); got != "gz" {
		t.Errorf("f = %q", got)
	}
	raw, _ := os.ReadFile(s.BlobPath(img.Digest))
	var man v1.Manifest
	json.Unmarshal(raw, &man)
	if man.Layers[0].MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
		t.Errorf("media type = %s", man.Layers[0].MediaType)
	}
}
