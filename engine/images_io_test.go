package engine

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"vscript/engine/errdefs"
	"vscript/engine/event"
	"vscript/engine/image"
	"vscript/engine/lab"
	"vscript/engine/store"
)

// These tests drive ImageSave, ImageLoad and ImageBuild on an Engine without
// a lab: a state directory of their own and a scratch directory for build
// mounts.

func ioRequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("needs root (layers keep owners, whiteouts are devices)")
	}
	t.Skip("needs root")
}

func ioCheck(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// ioEngine is an Engine over a fresh state directory.
func ioEngine(t testing.TB) (*Engine, *event.Recorder) {
	t.Helper()
	root := t.TempDir()
	st, err := store.Open(root)
	ioCheck(t, err)
	imgs, err := image.New(st)
	ioCheck(t, err)
	rec := &event.Recorder{}
	imgs.Events = rec
	e := &Engine{opts: Options{Root: root, Seed: "test"}, sink: rec, store: st, images: imgs,
		lab: &lab.Lab{Scratch: t.TempDir()}, count: map[string]int{},
		ctrs: map[string]*container{}, names: map[string]string{}}
	t.Cleanup(func() { st.Close() })
	return e, rec
}

type tarFile struct {
	name, body string
	typ        byte
	link       string
}

func tarBytes(t testing.TB, files ...tarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(f.body)),
			ModTime: time.Unix(1600000000, 0), Linkname: f.link}
		if f.typ != 0 {
			hdr.Typeflag, hdr.Size = f.typ, 0
			if f.typ == tar.TypeDir {
				hdr.Mode = 0o755
			}
		}
		ioCheck(t, tw.WriteHeader(hdr))
		_, err := tw.Write([]byte(f.body))
		ioCheck(t, err)
	}
	ioCheck(t, tw.Close())
	return buf.Bytes()
}

func gzipBytes(t testing.TB, data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(data)
	ioCheck(t, err)
	ioCheck(t, zw.Close())
	return buf.Bytes()
}

// makeApp stores a two-layer image (a plain and a gzip'd layer, a
// whiteout in the second) named test/app:v1.
func makeApp(t testing.TB, e *Engine) *image.Image {
	t.Helper()
	l1, err := e.images.WriteLayer(bytes.NewReader(tarBytes(t,
		tarFile{name: "app/", typ: tar.TypeDir}, tarFile{name: "app/a.txt", body: "alpha\n"}, tarFile{name: "app/gone", body: "x"})))
	ioCheck(t, err)
	l2, err := e.images.WriteLayer(bytes.NewReader(gzipBytes(t, tarBytes(t,
		tarFile{name: "app/", typ: tar.TypeDir}, tarFile{name: "app/b.txt", body: "beta\n"}, tarFile{name: "app/.wh.gone"}))))
	ioCheck(t, err)
	created := v1.Time{Time: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)}
	img, err := e.images.Create(v1.Config{Cmd: []string{"cat", "/app/a.txt"}, Env: []string{"A=1"},
		Volumes: map[string]struct{}{"/data": {}}, Labels: map[string]string{"k": "v"}},
		[]v1.History{{CreatedBy: "ADD a /", Created: created}, {CreatedBy: "ADD b /", Created: created}}, l1, l2)
	ioCheck(t, err)
	ioCheck(t, e.images.Tag(img, "test/app:v1"))
	return img
}

// listing is what the store holds, for comparing before and after.
func listing(t testing.TB, e *Engine) []string {
	t.Helper()
	list, err := e.images.List()
	ioCheck(t, err)
	var out []string
	for _, img := range list {
		out = append(out, img.Ref+" "+img.ID)
	}
	return out
}

func TestImageSaveLoadRoundTrip(t *testing.T) {
	ioRequireRoot(t)
	src, _ := ioEngine(t)
	app := makeApp(t, src)
	bb, err := src.images.Get("busybox")
	ioCheck(t, err)
	// An untagged image, saved by id, stays untagged.
	loose, err := src.images.Create(v1.Config{Cmd: []string{"true"}}, nil, app.Layers[0])
	ioCheck(t, err)
	ctx := context.Background()

	for _, format := range []string{FormatOCI, FormatOCILayout, FormatDocker} {
		t.Run(format, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "images")
			ioCheck(t, src.ImageSave(ctx, []string{"test/app:v1", "busybox", loose.ID}, path, format))
			dst, rec := ioEngine(t)
			infos, err := dst.ImageLoad(ctx, path)
			ioCheck(t, err)
			var got []string
			for _, info := range infos {
				got = append(got, info.Ref+" "+info.ID)
			}
			slices.Sort(got)
			want := []string{" " + loose.ID, "busybox:latest " + bb.ID, "test/app:v1 " + app.ID}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("loaded:\n%q\nwant:\n%q", got, want)
			}
			for _, orig := range []*image.Image{app, bb, loose} {
				img, err := dst.images.Get(orig.ID)
				ioCheck(t, err)
				if !reflect.DeepEqual(img.Config, orig.Config) || !reflect.DeepEqual(img.History, orig.History) {
					t.Errorf("%s: config or history changed:\n%+v\n%+v", orig.ID, img.Config, orig.Config)
				}
				for i, l := range img.Layers {
					if l.DiffID != orig.Layers[i].DiffID || l.ChainID != orig.Layers[i].ChainID {
						t.Errorf("%s: layer %d: %+v, want %+v", orig.ID, i, l, orig.Layers[i])
					}
				}
			}
			// The whiteout of the second layer came through as one.
			loaded, err := dst.images.Get("test/app:v1")
			ioCheck(t, err)
			dirs := dst.images.LowerDirs(loaded)
			if fi, err := os.Lstat(filepath.Join(dirs[0], "app/gone")); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
				t.Errorf("whiteout app/gone in the top layer: %v %v", fi, err)
			}
			if data, err := os.ReadFile(filepath.Join(dirs[1], "app/a.txt")); err != nil || string(data) != "alpha\n" {
				t.Errorf("app/a.txt: %q %v", data, err)
			}
			// Loading again changes nothing.
			before := listing(t, dst)
			_, err = dst.ImageLoad(ctx, path)
			ioCheck(t, err)
			if after := listing(t, dst); !reflect.DeepEqual(after, before) {
				t.Errorf("a second load changed the store:\n%q\n%q", before, after)
			}
			var ops []string
			for _, ev := range rec.Events() {
				ops = append(ops, ev.Op)
			}
			if !slices.Contains(ops, "image load") {
				t.Errorf("no image load event in %q", ops)
			}
		})
	}
}

// TestImageSaveValidOCI checks a saved OCI layout and docker archive blob by
// blob with go-containerregistry's validator: digests, sizes, diff ids,
// manifests and configs.
func TestImageSaveValidOCI(t *testing.T) {
	ioRequireRoot(t)
	e, _ := ioEngine(t)
	makeApp(t, e)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "layout")
	ioCheck(t, e.ImageSave(ctx, []string{"test/app:v1", "busybox"}, dir, FormatOCILayout))
	idx, err := layout.ImageIndexFromPath(dir)
	ioCheck(t, err)
	// The validator reads every layer through gzip, and layers stay as
	// stored, plain tars included (as docker save writes them): it checks
	// the index, manifests and configs and that every layer exists, and
	// the layers are checked here through the same library.
	ioCheck(t, validate.Index(idx, validate.Fast))
	im, err := idx.IndexManifest()
	ioCheck(t, err)
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		ioCheck(t, err)
		validateLayers(t, img)
	}
	var names []string
	for _, d := range im.Manifests {
		names = append(names, d.Annotations[containerdNameAnnotation]+" "+d.Annotations[image.RefAnnotation])
	}
	slices.Sort(names)
	want := []string{"docker.io/library/busybox:latest latest", "docker.io/test/app:v1 v1"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("index names %q, want %q", names, want)
	}

	// The tarball package decides from an archive's first layer whether
	// all are compressed (Docker looks at each), so it reads back an image
	// of uniform layers only.
	archive := filepath.Join(t.TempDir(), "busybox.tar")
	ioCheck(t, e.ImageSave(ctx, []string{"busybox"}, archive, FormatDocker))
	tag, err := name.NewTag("busybox:latest")
	ioCheck(t, err)
	img, err := tarball.ImageFromPath(archive, &tag)
	ioCheck(t, err)
	ioCheck(t, validate.Image(img, validate.Fast))
	validateLayers(t, img)
	cfg, err := img.ConfigName()
	ioCheck(t, err)
	bb, _ := e.images.Get("busybox")
	if cfg.String() != bb.ID {
		t.Errorf("docker archive config %s, want the image id %s", cfg, bb.ID)
	}
	repos := readTarEntry(t, archive, "repositories")
	if want := `{"busybox":{"latest":"` + bb.Layers[0].DiffID.Hex + `"}}`; repos != want {
		t.Errorf("repositories = %s", repos)
	}
}

// validateLayers checks each layer blob of img against its manifest entry
// (digest, size) and its uncompressed content against the config's diff id,
// and that it is a readable tar.
func validateLayers(t *testing.T, img v1.Image) {
	t.Helper()
	cf, err := img.ConfigFile()
	ioCheck(t, err)
	m, err := img.Manifest()
	ioCheck(t, err)
	layers, err := img.Layers()
	ioCheck(t, err)
	if len(layers) != len(m.Layers) || len(layers) != len(cf.RootFS.DiffIDs) {
		t.Fatalf("%d layers, %d in the manifest, %d diff ids", len(layers), len(m.Layers), len(cf.RootFS.DiffIDs))
	}
	for i, l := range layers {
		rc, err := l.Compressed()
		ioCheck(t, err)
		digest, size, err := v1.SHA256(rc)
		rc.Close()
		ioCheck(t, err)
		if digest != m.Layers[i].Digest || size != m.Layers[i].Size {
			t.Errorf("layer %d: blob %s (%d bytes), manifest %s (%d bytes)", i, digest, size, m.Layers[i].Digest, m.Layers[i].Size)
		}
		rc, err = l.Uncompressed()
		ioCheck(t, err)
		h := sha256.New()
		tr := tar.NewReader(io.TeeReader(rc, h))
		for {
			if _, err := tr.Next(); err == io.EOF {
				break
			} else if err != nil {
				mt, _ := l.MediaType()
				t.Fatalf("layer %d (%s, %s): %v", i, m.Layers[i].Digest, mt, err)
			}
		}
		io.Copy(h, rc)
		rc.Close()
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != cf.RootFS.DiffIDs[i].String() {
			t.Errorf("layer %d: content %s, diff id %s", i, got, cf.RootFS.DiffIDs[i])
		}
	}
}

func readTarEntry(t testing.TB, archive, name string) string {
	t.Helper()
	f, err := os.Open(archive)
	ioCheck(t, err)
	defer f.Close()
	src, err := indexTar(f)
	ioCheck(t, err)
	rc, _, err := src.open(name)
	ioCheck(t, err)
	var buf bytes.Buffer
	_, err = buf.ReadFrom(rc)
	ioCheck(t, err)
	return buf.String()
}

// dockerArchive writes a docker archive by hand: manifest.json, a config
// and layers, as any tool might.
func dockerArchive(t testing.TB, dir string, images ...dockerImage) string {
	t.Helper()
	var files []tarFile
	var man tarball.Manifest
	for i, img := range images {
		cf := v1.ConfigFile{OS: "linux", Architecture: "amd64", Config: v1.Config{Cmd: []string{"sh"}},
			RootFS: v1.RootFS{Type: "layers"}}
		d := tarball.Descriptor{RepoTags: img.tags}
		for j, l := range img.layers {
			h, _, err := v1.SHA256(bytes.NewReader(l))
			ioCheck(t, err)
			cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, h)
			n := filepath.Join(string(rune('a'+i)), string(rune('0'+j)), "layer.tar")
			files = append(files, tarFile{name: n, body: string(l)})
			d.Layers = append(d.Layers, n)
		}
		if img.badDiffID {
			cf.RootFS.DiffIDs[0].Hex = strings.Repeat("0", 64)
		}
		data, err := json.Marshal(cf)
		ioCheck(t, err)
		d.Config = string(rune('a'+i)) + ".json"
		files = append(files, tarFile{name: d.Config, body: string(data)})
		man = append(man, d)
	}
	data, err := json.Marshal(man)
	ioCheck(t, err)
	files = append(files, tarFile{name: "manifest.json", body: string(data)})
	p := filepath.Join(dir, "archive.tar")
	ioCheck(t, os.WriteFile(p, tarBytes(t, files...), 0o644))
	return p
}

type dockerImage struct {
	tags      []string
	layers    [][]byte
	badDiffID bool
}

func TestImageLoadHostile(t *testing.T) {
	ioRequireRoot(t)
	ctx := context.Background()
	good := func(t testing.TB) []byte { return tarBytes(t, tarFile{name: "ok.txt", body: "ok"}) }

	// An OCI layout saved by us, then tampered with.
	tampered := func(t *testing.T, what string) string {
		e, _ := ioEngine(t)
		makeApp(t, e)
		dir := filepath.Join(t.TempDir(), "layout")
		ioCheck(t, e.ImageSave(ctx, []string{"test/app:v1"}, dir, FormatOCILayout))
		app, _ := e.images.Get("test/app:v1")
		var target v1.Hash
		switch what {
		case "layer":
			target = app.Layers[0].Digest
		case "config":
			target, _ = v1.NewHash(app.ID)
		case "manifest":
			target = app.Digest
		}
		p := filepath.Join(dir, "blobs", "sha256", target.Hex)
		data, err := os.ReadFile(p)
		ioCheck(t, err)
		// Same size, one byte changed.
		data[len(data)/2] ^= 1
		ioCheck(t, os.WriteFile(p, data, 0o644))
		return dir
	}

	for _, tc := range []struct {
		name  string
		path  func(t *testing.T) string
		want  string
		class error
	}{
		{"path escape", func(t *testing.T) string {
			evil := tarBytes(t, tarFile{name: "../../escaped", body: "pwned"})
			return dockerArchive(t, t.TempDir(), dockerImage{tags: []string{"evil:1"}, layers: [][]byte{evil}})
		}, `path contains ".."`, errdefs.ErrInvalid},
		{"symlink escape", func(t *testing.T) string {
			evil := tarBytes(t, tarFile{name: "link", typ: tar.TypeSymlink, link: "../../.."}, tarFile{name: "link/escaped", body: "x"})
			return dockerArchive(t, t.TempDir(), dockerImage{tags: []string{"evil:1"}, layers: [][]byte{evil}})
		}, "", errdefs.ErrInvalid},
		{"second image hostile", func(t *testing.T) string {
			evil := tarBytes(t, tarFile{name: "/abs", body: "x"})
			return dockerArchive(t, t.TempDir(),
				dockerImage{tags: []string{"fine:1"}, layers: [][]byte{good(t)}},
				dockerImage{tags: []string{"evil:1"}, layers: [][]byte{good(t), evil}})
		}, "absolute path", errdefs.ErrInvalid},
		{"diff id mismatch", func(t *testing.T) string {
			return dockerArchive(t, t.TempDir(), dockerImage{tags: []string{"x:1"}, layers: [][]byte{good(t)}, badDiffID: true})
		}, "the config says sha256:0000", errdefs.ErrInvalid},
		{"bad layer digest", func(t *testing.T) string { return tampered(t, "layer") }, "content does not match its digest", errdefs.ErrInvalid},
		{"bad config digest", func(t *testing.T) string { return tampered(t, "config") }, "content does not match its digest", errdefs.ErrInvalid},
		{"bad manifest digest", func(t *testing.T) string { return tampered(t, "manifest") }, "content does not match its digest", errdefs.ErrInvalid},
		{"missing layer", func(t *testing.T) string {
			dir := tampered(t, "config")
			entries, _ := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
			for _, en := range entries {
				os.Remove(filepath.Join(dir, "blobs", "sha256", en.Name()))
			}
			return dir
		}, "blobs/sha256/", nil},
		{"not a tar", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "x.tar")
			ioCheck(t, os.WriteFile(p, bytes.Repeat([]byte("not a tar "), 100), 0o644))
			return p
		}, "not a tar archive", errdefs.ErrInvalid},
		{"tar without images", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "x.tar")
			ioCheck(t, os.WriteFile(p, tarBytes(t, tarFile{name: "hello.txt", body: "hi"}), 0o644))
			return p
		}, "not an image archive", errdefs.ErrInvalid},
		{"bad manifest.json", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "x.tar")
			ioCheck(t, os.WriteFile(p, tarBytes(t, tarFile{name: "manifest.json", body: "{"}), 0o644))
			return p
		}, "manifest.json", errdefs.ErrInvalid},
		{"bad tag", func(t *testing.T) string {
			return dockerArchive(t, t.TempDir(), dockerImage{tags: []string{"UPPER:case"}, layers: [][]byte{good(t)}})
		}, "invalid reference format", errdefs.ErrInvalid},
		{"missing", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nosuch.tar") }, "no such file", errdefs.ErrNotFound},
		{"empty dir", func(t *testing.T) string { return t.TempDir() }, "not an OCI image layout", errdefs.ErrInvalid},
		{"xz", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "x.tar.xz")
			ioCheck(t, os.WriteFile(p, []byte("\xfd7zXZ\x00rest"), 0o644))
			return p
		}, "decompress it first", errdefs.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path(t)
			e, _ := ioEngine(t)
			before := listing(t, e)
			_, err := e.ImageLoad(ctx, path)
			if err == nil {
				t.Fatal("loaded")
			}
			if !strings.HasPrefix(err.Error(), "image load "+path+": ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to start with the path and contain %q", err, tc.want)
			}
			if tc.class != nil && !errors.Is(err, tc.class) {
				t.Errorf("error %q is not %v", err, tc.class)
			}
			if after := listing(t, e); !reflect.DeepEqual(after, before) {
				t.Errorf("the store changed:\n%q\n%q", before, after)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(filepath.Dir(path)), "escaped")); err == nil {
				t.Error("a file escaped the layer")
			}
		})
	}
}

func TestImageLoadGzipAndForeign(t *testing.T) {
	ioRequireRoot(t)
	ctx := context.Background()
	dir := t.TempDir()
	p := dockerArchive(t, dir, dockerImage{tags: []string{"docker.io/library/foreign:1", "foreign:2"},
		layers: [][]byte{tarBytes(t, tarFile{name: "f", body: "f"})}})
	data, err := os.ReadFile(p)
	ioCheck(t, err)
	gz := filepath.Join(dir, "archive.tar.gz")
	ioCheck(t, os.WriteFile(gz, gzipBytes(t, data), 0o644))
	e, _ := ioEngine(t)
	infos, err := e.ImageLoad(ctx, gz)
	ioCheck(t, err)
	var refs []string
	for _, i := range infos {
		refs = append(refs, i.Ref)
	}
	if want := []string{"foreign:1", "foreign:2"}; !reflect.DeepEqual(refs, want) {
		t.Errorf("refs %q, want %q", refs, want)
	}
	// The temporary plain copy is gone.
	entries, _ := os.ReadDir(e.store.Path("tmp"))
	for _, en := range entries {
		if strings.HasPrefix(en.Name(), "load-") {
			t.Errorf("left behind: %s", en.Name())
		}
	}
}

func TestImageSaveErrors(t *testing.T) {
	ioRequireRoot(t)
	e, _ := ioEngine(t)
	ctx := context.Background()
	dir := t.TempDir()
	busy := filepath.Join(dir, "busy")
	ioCheck(t, os.MkdirAll(filepath.Join(busy, "sub"), 0o755))
	for _, tc := range []struct {
		refs         []string
		path, format string
		want         string
		class        error
	}{
		{[]string{"nosuch"}, filepath.Join(dir, "a.tar"), FormatOCI, "image nosuch: not found", errdefs.ErrNotFound},
		{nil, filepath.Join(dir, "a.tar"), FormatOCI, "no images given", errdefs.ErrInvalid},
		{[]string{"busybox"}, filepath.Join(dir, "a.tar"), "zip", `format "zip"`, errdefs.ErrInvalid},
		{[]string{"busybox"}, busy, FormatOCILayout, "neither empty nor an OCI layout", errdefs.ErrConflict},
		{[]string{"busybox"}, busy, FormatDocker, "is a directory", errdefs.ErrConflict},
		{[]string{"busybox"}, filepath.Join(busy, "sub"), FormatOCI, "is a directory", errdefs.ErrConflict},
	} {
		err := e.ImageSave(ctx, tc.refs, tc.path, tc.format)
		if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.class != nil && !errors.Is(err, tc.class)) {
			t.Errorf("save %v %s %s: %v, want %q (%v)", tc.refs, tc.path, tc.format, err, tc.want, tc.class)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("left behind in %s: %v", dir, entries)
	}
	// A missing directory is made.
	ioCheck(t, e.ImageSave(ctx, []string{"busybox"}, filepath.Join(dir, "new", "dir", "a.tar"), FormatOCI))
	// A layout replaces an earlier one.
	layoutDir := filepath.Join(dir, "layout")
	ioCheck(t, e.ImageSave(ctx, []string{"busybox"}, layoutDir, FormatOCILayout))
	makeApp(t, e)
	ioCheck(t, e.ImageSave(ctx, []string{"test/app:v1"}, layoutDir, FormatOCILayout))
	idx, err := layout.ImageIndexFromPath(layoutDir)
	ioCheck(t, err)
	im, err := idx.IndexManifest()
	ioCheck(t, err)
	if len(im.Manifests) != 1 || im.Manifests[0].Annotations[image.RefAnnotation] != "v1" {
		t.Errorf("replaced layout holds %+v", im.Manifests)
	}
}
