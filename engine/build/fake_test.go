package build

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	securejoin "github.com/cyphar/filepath-securejoin"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"vscript/engine/errdefs"
)

// needRoot skips a test that must chown, or fails it on CI.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root")
		}
		t.Skip("needs root")
	}
}

// fakeImage is an image of the fake backend: a full copy of its root
// filesystem rather than layers, which is all the executor can observe.
type fakeImage struct {
	id      string
	config  v1.Config
	rootfs  string
	layers  int
	history []v1.History
}

// fakeBackend implements Backend with plain directories and a toy shell
// instead of containers.
type fakeBackend struct {
	t      *testing.T
	dir    string
	images map[string]*fakeImage
	tags   map[string]string

	mu      sync.Mutex
	n       int
	mounted int // mounts not yet released
	runs    []RunSpec
	commits []CommitRequest
}

func newFakeBackend(t *testing.T) *fakeBackend {
	t.Helper()
	b := &fakeBackend{t: t, dir: t.TempDir(), images: map[string]*fakeImage{}, tags: map[string]string{}}
	// A busybox-like base: passwd and group as DESIGN describes.
	root := b.newDir("busybox")
	writeFiles(t, root, map[string]string{
		"bin/sh":     "#!busybox\n",
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nwww-data:x:33:33:www-data:/var/www:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
		"etc/group":  "root:x:0:\ndaemon:x:1:\nwww-data:x:33:\nnogroup:x:65534:\n",
		"tmp/.keep":  "",
	})
	img := &fakeImage{
		id:      "sha256:" + strings.Repeat("b", 64),
		rootfs:  root,
		layers:  1,
		config:  v1.Config{Env: []string{"PATH=" + defaultPath}, Cmd: []string{"sh"}},
		history: []v1.History{{CreatedBy: "/bin/sh -c #(nop) ADD file:busybox in / "}, {CreatedBy: `/bin/sh -c #(nop)  CMD ["sh"]`, EmptyLayer: true}},
	}
	b.images[img.id] = img
	b.tags["busybox"] = img.id
	return b
}

func (b *fakeBackend) newDir(name string) string {
	b.n++
	d := filepath.Join(b.dir, fmt.Sprintf("%s-%d", name, b.n))
	if err := os.Mkdir(d, 0o755); err != nil {
		b.t.Fatal(err)
	}
	return d
}

func (b *fakeBackend) Image(_ context.Context, ref string) (Image, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if id, ok := b.tags[ref]; ok {
		ref = id
	}
	img, ok := b.images[ref]
	if !ok {
		return Image{}, fmt.Errorf("image %s: %w", ref, errdefs.ErrNotFound)
	}
	return Image{ID: img.id, Config: cloneConfig(img.config)}, nil
}

type fakeMount struct {
	b    *fakeBackend
	root string
}

func (m *fakeMount) Root() string { return m.root }
func (m *fakeMount) Release() error {
	m.b.mu.Lock()
	m.b.mounted--
	m.b.mu.Unlock()
	return os.RemoveAll(m.root)
}

func (b *fakeBackend) Mount(_ context.Context, id string) (Mount, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	root := b.newDir("mount")
	if id != "" {
		img, ok := b.images[id]
		if !ok {
			return nil, fmt.Errorf("mount %s: %w", id, errdefs.ErrNotFound)
		}
		cpTree(b.t, img.rootfs, root)
	}
	b.mounted++
	return &fakeMount{b: b, root: root}, nil
}

func (b *fakeBackend) Run(_ context.Context, m Mount, spec RunSpec, out io.Writer) (int, error) {
	b.mu.Lock()
	b.runs = append(b.runs, spec)
	b.mu.Unlock()
	return toyShell(m.Root(), spec, out)
}

func (b *fakeBackend) Commit(_ context.Context, req CommitRequest) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.commits = append(b.commits, req)
	parent := &fakeImage{rootfs: b.newDir("scratch")}
	if req.Parent != "" {
		p, ok := b.images[req.Parent]
		if !ok {
			return "", fmt.Errorf("commit: parent %s: %w", req.Parent, errdefs.ErrNotFound)
		}
		parent = p
	}
	img := &fakeImage{
		config:  cloneConfig(req.Config),
		rootfs:  parent.rootfs,
		layers:  parent.layers,
		history: append(append([]v1.History(nil), parent.history...), req.History),
	}
	if req.Mount != nil {
		img.rootfs = b.newDir("layer")
		cpTree(b.t, req.Mount.Root(), img.rootfs)
		// Discard: what the step did below a volume path is undone by
		// putting back the parent's content there.
		for _, v := range req.Discard {
			dst, err := securejoin.SecureJoin(img.rootfs, v)
			if err != nil {
				return "", err
			}
			os.RemoveAll(dst)
			src, err := securejoin.SecureJoin(parent.rootfs, v)
			if err != nil {
				return "", err
			}
			if _, err := os.Lstat(src); err == nil {
				os.MkdirAll(dst, 0o755)
				cpTree(b.t, src, dst)
			}
		}
		img.layers++
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("%d %s %s", b.n, req.Parent, req.History.CreatedBy)))
	img.id = fmt.Sprintf("sha256:%x", sum)
	b.images[img.id] = img
	return img.id, nil
}

// image returns a committed image or fails the test.
func (b *fakeBackend) image(id string) *fakeImage {
	b.t.Helper()
	img, ok := b.images[id]
	if !ok {
		b.t.Fatalf("no image %s", id)
	}
	return img
}

// cpTree copies the contents of src into dst, keeping everything.
func cpTree(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", src+"/.", dst+"/").CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v\n%s", src, dst, err, out)
	}
}

// toyShell stands in for a container: it runs the last argument as a few
// ";"-separated commands against root. It knows touch, mkdir -p, echo (with
// "> file"), env, false and exit N.
func toyShell(root string, spec RunSpec, out io.Writer) (int, error) {
	script := spec.Args[len(spec.Args)-1]
	in := func(p string) (string, error) {
		if !filepath.IsAbs(p) {
			p = filepath.Join("/", spec.WorkingDir, p)
		}
		return securejoin.SecureJoin(root, p)
	}
	for _, line := range strings.Split(script, ";") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "touch":
			for _, p := range f[1:] {
				hp, err := in(p)
				if err != nil {
					return 0, err
				}
				if err := os.WriteFile(hp, nil, 0o644); err != nil {
					fmt.Fprintf(out, "touch: %v\n", err)
					return 1, nil
				}
			}
		case "mkdir":
			for _, p := range f[2:] { // mkdir -p DIR...
				hp, err := in(p)
				if err != nil {
					return 0, err
				}
				if err := os.MkdirAll(hp, 0o755); err != nil {
					return 1, nil
				}
			}
		case "echo":
			words := f[1:]
			if i := indexOf(words, ">"); i >= 0 {
				hp, err := in(words[i+1])
				if err != nil {
					return 0, err
				}
				if err := os.WriteFile(hp, []byte(strings.Join(words[:i], " ")+"\n"), 0o644); err != nil {
					fmt.Fprintf(out, "echo: %v\n", err)
					return 1, nil
				}
				continue
			}
			fmt.Fprintln(out, strings.Join(words, " "))
		case "env":
			for _, e := range spec.Env {
				fmt.Fprintln(out, e)
			}
		case "false":
			return 1, nil
		case "exit":
			n, _ := strconv.Atoi(f[1])
			return n, nil
		default:
			fmt.Fprintf(out, "sh: %s: not found\n", f[0])
			return 127, nil
		}
	}
	return 0, nil
}

func indexOf(s []string, w string) int {
	for i, x := range s {
		if x == w {
			return i
		}
	}
	return -1
}

// memCache is an in-memory Cache.
type memCache map[string]string

func (c memCache) Get(key string) (string, bool, error) { id, ok := c[key]; return id, ok, nil }
func (c memCache) Put(key, id string) error             { c[key] = id; return nil }

// untar is a plain extractor standing in for the image package's Unpack.
func untar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		p, err := securejoin.SecureJoin(dir, h.Name)
		if err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, os.FileMode(h.Mode)); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode))
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			f.Close()
			if err != nil {
				return err
			}
		}
	}
}

// writeFiles creates files (and their directories) below dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
