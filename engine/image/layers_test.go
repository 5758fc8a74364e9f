package image

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"vscript/engine/errdefs"
	"vscript/engine/store"
)

func hash(t testing.TB, s string) v1.Hash {
	t.Helper()
	h, err := v1.NewHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestChainID(t *testing.T) {
	a := hash(t, "sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb") // sha256("a")
	b := hash(t, "sha256:3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d") // sha256("b")
	if got := ChainID(v1.Hash{}, a); got != a {
		t.Errorf("base layer chain = %s, want its diff id", got)
	}
	// printf 'sha256:ca97… sha256:3e23…' | sha256sum
	want := "sha256:51c0c8ace48498d6f5fee6b0592cc06f2da0f3cbe09c5a34a97dce85c3889676"
	if got := ChainID(a, b); got.String() != want {
		t.Errorf("ChainID = %s, want %s", got, want)
	}
}

func newLayers(t testing.TB) (*Layers, *store.Store) {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	l, err := NewLayers(st)
	if err != nil {
		t.Fatal(err)
	}
	return l, st
}

func opener(data []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
}

func diffID(data []byte) v1.Hash {
	h, _, _ := v1.SHA256(bytes.NewReader(data))
	return h
}

func assertTmpEmpty(t *testing.T, st *store.Store) {
	t.Helper()
	if entries, _ := os.ReadDir(st.Path("tmp")); len(entries) != 0 {
		t.Errorf("tmp/ not empty: %v", entries)
	}
}

func TestLayersCommit(t *testing.T) {
	requireRoot(t)
	l, st := newLayers(t)
	data := mkTar(t, file("hello", "world"))
	chain, err := l.Commit(v1.Hash{}, diffID(data), opener(data))
	if err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, filepath.Join(l.Path(chain), "hello")); got != "world" {
		t.Errorf("hello = %q", got)
	}
	base, rel := l.Lowers([]v1.Hash{chain})
	if got := mustRead(t, filepath.Join(base, rel[0], "hello")); got != "world" {
		t.Errorf("via short link: hello = %q", got)
	}

	// Committed once: a second commit does not read the layer again.
	again, err := l.Commit(v1.Hash{}, diffID(data), func() (io.ReadCloser, error) {
		t.Error("layer opened although committed")
		return nil, errors.New("unreachable")
	})
	if err != nil || again != chain {
		t.Errorf("second commit = %s, %v", again, err)
	}

	// A child layer has its own chain id and directory.
	child := mkTar(t, file("child", "c"))
	childChain, err := l.Commit(chain, diffID(child), opener(child))
	if err != nil {
		t.Fatal(err)
	}
	if childChain != ChainID(chain, diffID(child)) || !l.Exists(childChain) {
		t.Errorf("child chain %s missing", childChain)
	}

	// Content that is not what the diff id says is refused, and leaves nothing.
	other := mkTar(t, file("x", "y"))
	_, err = l.Commit(chain, diffID(other), opener(data))
	if !errors.Is(err, errdefs.ErrInvalid) || l.Exists(ChainID(chain, diffID(other))) {
		t.Errorf("mismatched content: err = %v, layer exists %v", err, l.Exists(ChainID(chain, diffID(other))))
	}
	assertTmpEmpty(t, st)
}

func TestLayersConcurrentCommit(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	data := mkTar(t, dir("a/"), file("a/b", "c"))
	const runs = 6
	chains := make([]v1.Hash, runs)
	errs := make([]error, runs)
	// Each its own store.Store, as separate vscript runs would have, all
	// opened first: store.Open sweeps tmp/ when nobody holds the lock.
	var stores []*Layers
	for range runs {
		st, err := store.Open(root)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		l, err := NewLayers(st)
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, l)
	}
	var wg sync.WaitGroup
	for i, l := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			chains[i], errs[i] = l.Commit(v1.Hash{}, diffID(data), opener(data))
		}()
	}
	wg.Wait()
	for i := range runs {
		if errs[i] != nil || chains[i] != diffID(data) {
			t.Errorf("run %d: %s, %v", i, chains[i], errs[i])
		}
	}
	entries, _ := os.ReadDir(filepath.Join(root, "tmp"))
	if len(entries) != 0 {
		t.Errorf("losers left copies in tmp/: %v", entries)
	}
}

func TestLayersHoldAndRemove(t *testing.T) {
	requireRoot(t)
	l, st := newLayers(t)
	data := mkTar(t, file("f", "x"))
	chain, err := l.Commit(v1.Hash{}, diffID(data), opener(data))
	if err != nil {
		t.Fatal(err)
	}
	release, err := l.Hold([]v1.Hash{chain})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Remove(chain); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("Remove of a held layer: %v, want ErrConflict", err)
	}
	release()
	if err := l.Remove(chain); err != nil {
		t.Fatal(err)
	}
	if l.Exists(chain) {
		t.Error("layer still there after Remove")
	}
	if _, err := os.Lstat(filepath.Join(st.Path("layers", "l"), linkName(chain))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("short link left behind: %v", err)
	}
	if _, err := l.Hold([]v1.Hash{chain}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Hold of a removed layer: %v, want ErrNotFound", err)
	}
	if err := l.Remove(chain); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("second Remove: %v, want ErrNotFound", err)
	}
	assertTmpEmpty(t, st)
}

func TestLayersShortNameCollision(t *testing.T) {
	requireRoot(t)
	l, st := newLayers(t)
	data := mkTar(t, file("f", "x"))
	chain := diffID(data)
	// Another layer already owns the short name.
	if err := os.Symlink("../"+strings.Repeat("0", 64), filepath.Join(st.Path("layers", "l"), linkName(chain))); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Commit(v1.Hash{}, chain, opener(data)); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("Commit with a taken short name: %v, want ErrConflict", err)
	}
}

func TestMountOptions(t *testing.T) {
	l, _ := newLayers(t)
	chains := []v1.Hash{
		hash(t, "sha256:"+strings.Repeat("a", 64)),
		hash(t, "sha256:"+strings.Repeat("b", 64)),
		hash(t, "sha256:"+strings.Repeat("c", 64)),
	}
	a, b, c := strings.Repeat("a", LinkLen), strings.Repeat("b", LinkLen), strings.Repeat("c", LinkLen)

	view := l.View(chains)
	if want := "lowerdir=" + c + ":" + b + ":" + a; view.Options() != want {
		t.Errorf("view options = %q, want %q", view.Options(), want)
	}
	if view.Base != filepath.Join(l.dir, "l") {
		t.Errorf("base = %q", view.Base)
	}

	snap := t.TempDir()
	m, err := l.Prepare(snap, chains)
	if err != nil {
		t.Fatal(err)
	}
	want := "lowerdir=" + c + ":" + b + ":" + a + ",upperdir=" + snap + "/upper,workdir=" + snap +
		"/work,index=off,redirect_dir=off,metacopy=off"
	if m.Options() != want {
		t.Errorf("options = %q, want %q", m.Options(), want)
	}
	for _, d := range []string{m.Upper, m.Work} {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			t.Errorf("%s not made: %v", d, err)
		}
	}
}
