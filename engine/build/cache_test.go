package build

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vscript/engine/store"
)

func TestSourceHash(t *testing.T) {
	base := map[string]string{"site/index.html": "hello", "site/css/a.css": "a", "one.txt": "1"}
	tests := []struct {
		name      string
		src       string
		change    func(t *testing.T, dir string)
		withOwner bool
		same      bool
	}{
		{"unchanged", "site", nil, false, true},
		{"content", "site", func(t *testing.T, d string) { writeFiles(t, d, map[string]string{"site/css/a.css": "b"}) }, false, false},
		{"mtime only", "site", func(t *testing.T, d string) {
			old := time.Unix(1e9, 0)
			os.Chtimes(filepath.Join(d, "site/index.html"), old, old)
			os.Chtimes(filepath.Join(d, "site"), old, old)
		}, false, true},
		{"mode", "site", func(t *testing.T, d string) { os.Chmod(filepath.Join(d, "site/index.html"), 0o600) }, false, false},
		{"rename inside", "site", func(t *testing.T, d string) {
			os.Rename(filepath.Join(d, "site/index.html"), filepath.Join(d, "site/home.html"))
		}, false, false},
		{"new empty dir", "site", func(t *testing.T, d string) { os.Mkdir(filepath.Join(d, "site/img"), 0o755) }, false, false},
		{"symlink target", "site", func(t *testing.T, d string) { os.Symlink("index.html", filepath.Join(d, "site/l")) }, false, false},
		{"owner ignored for context copies", "site", chown7, false, true},
		{"owner counts when kept", "site", chown7, true, false},
		{"dir's own mode is not copied", "site", func(t *testing.T, d string) { os.Chmod(filepath.Join(d, "site"), 0o700) }, false, true},
		{"excluded file", "site", func(t *testing.T, d string) {
			writeFiles(t, d, map[string]string{".dockerignore": "site/css\n"})
		}, false, false},
		{"file content", "one.txt", func(t *testing.T, d string) { writeFiles(t, d, map[string]string{"one.txt": "2"}) }, false, false},
		{"file mtime", "one.txt", func(t *testing.T, d string) {
			os.Chtimes(filepath.Join(d, "one.txt"), time.Unix(5, 0), time.Unix(5, 0))
		}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, base)
			h1, err := hashSources(ctxSources(t, dir, tt.src), tt.withOwner)
			if err != nil {
				t.Fatal(err)
			}
			if tt.change != nil {
				tt.change(t, dir)
			}
			h2, err := hashSources(ctxSources(t, dir, tt.src), tt.withOwner)
			if err != nil {
				t.Fatal(err)
			}
			if (h1 == h2) != tt.same {
				t.Errorf("hash %s -> %s, want same=%v", h1, h2, tt.same)
			}
		})
	}
}

func chown7(t *testing.T, d string) {
	needRoot(t)
	if err := os.Chown(filepath.Join(d, "site/index.html"), 7, 7); err != nil {
		t.Fatal(err)
	}
}

func TestSourceHashNotation(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a.txt": "a", "b.txt": "a", "d/x": "x"})
	hash := func(srcs ...string) string {
		h, err := hashSources(ctxSources(t, dir, srcs...), false)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	for src, prefix := range map[string]string{"a.txt": "file:", "d": "dir:", "*.txt": "multi:"} {
		if h := hash(src); !strings.HasPrefix(h, prefix) || len(h) != len(prefix)+64 {
			t.Errorf("%s: hash %q, want %s<sha256>", src, h, prefix)
		}
	}
	// Same content under another name lands elsewhere: a different hash.
	if hash("a.txt") == hash("b.txt") {
		t.Error("a.txt and b.txt hash alike")
	}
	if hash("a.txt", "d") == hash("d", "a.txt") {
		t.Error("source order does not count")
	}
}

func TestCacheKey(t *testing.T) {
	k := CacheKey("sha256:1", "/bin/sh -c make")
	for _, other := range []string{
		CacheKey("sha256:2", "/bin/sh -c make"),
		CacheKey("sha256:1", "/bin/sh -c make all"),
		CacheKey("", "/bin/sh -c make"),
		CacheKey("sha256:1/bin/sh -c", " make"),
	} {
		if other == k {
			t.Errorf("keys collide: %s", k)
		}
	}
	if CacheKey("sha256:1", "/bin/sh -c make") != k || len(k) != 64 {
		t.Errorf("key %q not stable hex", k)
	}
}

func TestStoreCache(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := NewStoreCache(st)
	if err != nil {
		t.Fatal(err)
	}
	key := CacheKey("p", "c")
	if _, ok, err := c.Get(key); ok || err != nil {
		t.Fatalf("empty cache: ok=%v err=%v", ok, err)
	}
	if err := c.Put(key, "sha256:abc"); err != nil {
		t.Fatal(err)
	}
	// A second handle on the same state directory sees the record.
	c2, _ := NewStoreCache(st)
	if id, ok, err := c2.Get(key); !ok || err != nil || id != "sha256:abc" {
		t.Errorf("Get = %q %v %v", id, ok, err)
	}
	for _, bad := range []string{"../../etc/passwd", "", strings.Repeat("g", 64)} {
		if _, _, err := c.Get(bad); err == nil {
			t.Errorf("Get(%q) accepted", bad)
		}
		if err := c.Put(bad, "x"); err == nil {
			t.Errorf("Put(%q) accepted", bad)
		}
	}
}
