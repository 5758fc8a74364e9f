package volume

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"vscript/engine/errdefs"
	"vscript/engine/store"
)

func openStore(t testing.TB, root string) *Store {
	t.Helper()
	st, err := store.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return NewStore(st)
}

// anonID stands in for the facade's seeded id source.
func anonID(n int) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("seed/volume/%d", n)))
	return hex.EncodeToString(sum[:])
}

func names(vols []*Volume) []string {
	var out []string
	for _, v := range vols {
		out = append(out, v.Name)
	}
	return out
}

func TestStoreLifecycle(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)

	v, err := s.Create("web-data", CreateOptions{Lab: "lab1", Labels: map[string]string{"course": "day6"}})
	if err != nil {
		t.Fatal(err)
	}
	wantMount := filepath.Join(root, "volumes", "web-data", "_data")
	if v.Mountpoint != wantMount || v.Anonymous || v.Lab != "lab1" {
		t.Fatalf("created %+v, want mountpoint %s", v, wantMount)
	}
	if fi, err := os.Stat(wantMount); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
		t.Fatalf("data dir: %v, %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(root, "volumes", "web-data", "volume.json")); err != nil {
		t.Fatal(err)
	}

	// A second create of a named volume returns the first, data intact.
	if err := os.WriteFile(filepath.Join(wantMount, "index.html"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := s.Create("web-data", CreateOptions{Lab: "lab2"})
	if err != nil {
		t.Fatal(err)
	}
	if again.Lab != "lab1" || !again.CreatedAt.Equal(v.CreatedAt) {
		t.Fatalf("re-create returned %+v, want the original %+v", again, v)
	}
	if _, err := os.Stat(filepath.Join(wantMount, "index.html")); err != nil {
		t.Fatal(err)
	}

	anon, err := s.Create("", CreateOptions{ID: anonID(1), Lab: "lab1"})
	if err != nil {
		t.Fatal(err)
	}
	if anon.Name != anonID(1) || !anon.Anonymous {
		t.Fatalf("anonymous volume %+v", anon)
	}
	if _, err := s.Create("", CreateOptions{ID: anonID(1)}); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("anonymous id reused: %v, want conflict", err)
	}
	if _, err := s.Create("", CreateOptions{ID: "abc"}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("short anonymous id: %v, want invalid", err)
	}
	if _, err := s.Create("../etc", CreateOptions{}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("bad name: %v, want invalid", err)
	}

	got, err := s.Get("web-data")
	if err != nil || !reflect.DeepEqual(got, v) {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, v)
	}
	if _, err := s.Get("missing"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Get(missing): %v, want not found", err)
	}
	// A stray directory is not a volume.
	if err := os.Mkdir(filepath.Join(root, "volumes", "stray"), 0o755); err != nil {
		t.Fatal(err)
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{anonID(1), "web-data"}; !reflect.DeepEqual(names(list), want) {
		t.Fatalf("List = %v, want %v", names(list), want)
	}

	// Records survive reopening the state directory.
	list, err = openStore(t, root).List()
	if err != nil || len(list) != 2 || !reflect.DeepEqual(list[1], v) {
		t.Fatalf("after reopen: %v, %v", list, err)
	}

	busy := func(v *Volume) []string {
		if v.Name == "web-data" {
			return []string{"3f4e5d6c7b8a", "9a8b7c6d5e4f"}
		}
		return nil
	}
	err = s.Remove("web-data", busy)
	if !errors.Is(err, errdefs.ErrConflict) || err.Error() != "volume rm web-data: volume is in use - [3f4e5d6c7b8a 9a8b7c6d5e4f]" {
		t.Fatalf("Remove in use: %v", err)
	}
	if err := s.Remove("web-data", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "volumes", "web-data")); !os.IsNotExist(err) {
		t.Fatalf("volume dir after Remove: %v", err)
	}
	if err := s.Remove("web-data", nil); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("second Remove: %v, want not found", err)
	}
	if tmp, _ := os.ReadDir(filepath.Join(root, "tmp")); len(tmp) != 0 {
		t.Fatalf("tmp/ not empty after Remove: %v", tmp)
	}
}

func TestPrune(t *testing.T) {
	s := openStore(t, t.TempDir())
	for _, name := range []string{"keep", "named"} {
		if _, err := s.Create(name, CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if _, err := s.Create("", CreateOptions{ID: anonID(i)}); err != nil {
			t.Fatal(err)
		}
	}
	inUse := func(v *Volume) []string {
		if v.Name == anonID(2) || v.Name == "keep" {
			return []string{"c1"}
		}
		return nil
	}
	removed, err := s.Prune(true, inUse)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{anonID(1), anonID(0)}
	if anonID(0) < anonID(1) {
		want = []string{anonID(0), anonID(1)}
	}
	if !reflect.DeepEqual(removed, want) {
		t.Fatalf("Prune(anonymous) removed %v, want %v", removed, want)
	}
	removed, err = s.Prune(false, inUse)
	if err != nil || !reflect.DeepEqual(removed, []string{"named"}) {
		t.Fatalf("Prune(all) removed %v, %v; want [named]", removed, err)
	}
	list, _ := s.List()
	if got := strings.Join(names(list), ","); got != anonID(2)+",keep" && got != "keep,"+anonID(2) {
		t.Fatalf("left %s", got)
	}
}

func TestConcurrentCreate(t *testing.T) {
	// Separate opens of one state directory stand for separate vscript runs:
	// the store's flock serializes them, so every run gets the one volume.
	root := t.TempDir()
	const runs = 8
	stores := make([]*Store, runs)
	for i := range stores {
		stores[i] = openStore(t, root)
	}
	created := make([]*Volume, runs)
	errs := make([]error, runs)
	var wg sync.WaitGroup
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			created[i], errs[i] = stores[i].Create("shared", CreateOptions{Lab: fmt.Sprint("lab", i)})
		}()
	}
	wg.Wait()
	for i := range runs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if created[i].Lab != created[0].Lab {
			t.Fatalf("run %d got a volume made by %s, run 0 one made by %s", i, created[i].Lab, created[0].Lab)
		}
	}
}

func BenchmarkCreate(b *testing.B) {
	s := openStore(b, b.TempDir())
	i := 0
	for b.Loop() {
		if _, err := s.Create(fmt.Sprint("vol", i), CreateOptions{Lab: "bench"}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
