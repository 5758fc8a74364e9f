package build

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestDockerignore(t *testing.T) {
	tests := []struct {
		name     string
		ignore   string
		excluded []string
		included []string
	}{
		{"none", "", nil, []string{"a.txt", "dir/b.txt", "Dockerfile"}},
		{"file and dir", "a.txt\ndir\n", []string{"a.txt", "dir", "dir/b.txt", "dir/sub/c.txt"}, []string{"b.txt", "directory"}},
		{"leading slash and ./ trimmed", "/a.txt\n./dir/b.txt\n", []string{"a.txt", "dir/b.txt"}, []string{"dir/c.txt"}},
		{"star is one level", "*.log\n", []string{"x.log"}, []string{"dir/x.log"}},
		{"double star", "**/*.log\n", []string{"x.log", "dir/x.log", "a/b/c/x.log"}, []string{"x.txt"}},
		{"exception", "*.md\n!README.md\n", []string{"CHANGES.md"}, []string{"README.md"}},
		{"exception inside excluded dir", "docs\n!docs/keep.txt\n", []string{"docs/other.txt"}, []string{"docs/keep.txt"}},
		{"later pattern wins", "!a.txt\na.txt\n", []string{"a.txt"}, nil},
		{"comments and blanks", "# a.txt\n\n   \nb.txt  \n", []string{"b.txt"}, []string{"a.txt", "# a.txt"}},
		{"Dockerfile can be excluded", "Dockerfile\n.dockerignore\n", []string{"Dockerfile", ".dockerignore"}, nil},
		{"question mark and class", "file?.txt\n[ab].c\n", []string{"file1.txt", "a.c"}, []string{"file10.txt", "c.c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.ignore != "" {
				writeFiles(t, dir, map[string]string{".dockerignore": tt.ignore})
			}
			c, err := OpenContext(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range tt.excluded {
				if ex, err := c.Excluded(p); err != nil || !ex {
					t.Errorf("%s: excluded = %v (%v), want true", p, ex, err)
				}
			}
			for _, p := range tt.included {
				if ex, err := c.Excluded(p); err != nil || ex {
					t.Errorf("%s: excluded = %v (%v), want false", p, ex, err)
				}
			}
		})
	}
}

func TestDockerignoreBadPattern(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{".dockerignore": "!\n"})
	if _, err := OpenContext(dir); err == nil {
		t.Error("a lone ! was accepted")
	}
	if _, err := OpenContext(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing context was accepted")
	}
}

func TestResolveSources(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a.txt": "a", "b.txt": "b", "c.md": "c", "dir/x.txt": "x", "dir/y.log": "y",
		"dir/sub/z.txt": "z", "secret/key": "k", "docs/keep.txt": "k", "docs/drop.txt": "d",
		".dockerignore": "secret\n*.log\n**/*.log\ndocs\n!docs/keep.txt\n",
	})
	outside := t.TempDir()
	writeFiles(t, outside, map[string]string{"passwd": "p"})
	symlinks := map[string]string{
		"link-in":     "a.txt",
		"link-dir":    "dir",
		"link-out":    outside + "/passwd",
		"link-up":     "../" + filepath.Base(outside),
		"dir/link-up": "../../",
		"link-secret": "secret/key",
	}
	for name, target := range symlinks {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	c, err := OpenContext(dir)
	if err != nil {
		t.Fatal(err)
	}
	type src struct{ path, name string }
	tests := []struct {
		src  string
		want []src
		err  error
	}{
		{"a.txt", []src{{"a.txt", "a.txt"}}, nil},
		{"/a.txt", []src{{"a.txt", "a.txt"}}, nil},
		{"./dir/../a.txt", []src{{"a.txt", "a.txt"}}, nil},
		{"dir", []src{{"dir", "dir"}}, nil},
		{"dir/", []src{{"dir", "dir"}}, nil},
		{".", []src{{".", "."}}, nil},
		{"*.txt", []src{{"a.txt", "a.txt"}, {"b.txt", "b.txt"}}, nil},
		{"dir/[sxy]*", []src{{"dir/sub", "sub"}, {"dir/x.txt", "x.txt"}}, nil}, // y.log is excluded
		{"*/*.txt", []src{{"dir/x.txt", "x.txt"}, {"docs/keep.txt", "keep.txt"}}, nil},
		{"[ab].txt", []src{{"a.txt", "a.txt"}, {"b.txt", "b.txt"}}, nil},
		{"link-in", []src{{"a.txt", "link-in"}}, nil},
		{"link-dir/x.txt", []src{{"dir/x.txt", "x.txt"}}, nil},
		{"docs/keep.txt", []src{{"docs/keep.txt", "keep.txt"}}, nil},
		{"../x", nil, ErrOutsideContext},
		{"dir/../../x", nil, ErrOutsideContext},
		{"link-out", nil, ErrOutsideContext},
		{"link-up/passwd", nil, ErrOutsideContext},
		{"dir/link-up", nil, ErrOutsideContext},
		{"dir/*", nil, ErrOutsideContext}, // a match is dir/link-up
		{"nope.txt", nil, ErrNotInContext},
		{"*.nope", nil, ErrNotInContext},
		{"secret/key", nil, errExcluded},
		{"link-secret", nil, errExcluded},
		{"dir/y.log", nil, errExcluded},
		{"docs/drop.txt", nil, errExcluded},
	}
	for _, tt := range tests {
		got, err := c.Resolve(tt.src)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("%s: error %v, want %v", tt.src, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.src, err)
			continue
		}
		var paths []src
		for _, s := range got {
			paths = append(paths, src{s.Path, s.Name})
			if s.Root != c.Dir() {
				t.Errorf("%s: root %s", tt.src, s.Root)
			}
		}
		if !reflect.DeepEqual(paths, tt.want) {
			t.Errorf("%s: sources %v, want %v", tt.src, paths, tt.want)
		}
	}
}

func TestResolveInImage(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"etc/passwd": "p", "srv/a.txt": "a", "srv/b.txt": "b"})
	// Absolute and climbing links resolve inside the image, as in a chroot.
	os.Symlink("/etc", filepath.Join(root, "conf"))
	os.Symlink("../../../../etc/passwd", filepath.Join(root, "srv/up"))
	type src struct{ path, name string }
	for _, tt := range []struct {
		src  string
		want []src
	}{
		{"/etc/passwd", []src{{"etc/passwd", "passwd"}}},
		{"../../etc/passwd", []src{{"etc/passwd", "passwd"}}},
		{"/conf/passwd", []src{{"etc/passwd", "passwd"}}},
		{"/srv/up", []src{{"etc/passwd", "up"}}},
		{"/srv/*.txt", []src{{"srv/a.txt", "a.txt"}, {"srv/b.txt", "b.txt"}}},
		{"/", []src{{".", "."}}},
	} {
		got, err := ResolveInImage(root, tt.src)
		if err != nil {
			t.Errorf("%s: %v", tt.src, err)
			continue
		}
		var paths []src
		for _, s := range got {
			paths = append(paths, src{s.Path, s.Name})
		}
		if !reflect.DeepEqual(paths, tt.want) {
			t.Errorf("%s: %v, want %v", tt.src, paths, tt.want)
		}
	}
	for _, missing := range []string{"/nope", "/srv/*.md"} {
		if _, err := ResolveInImage(root, missing); !errors.Is(err, errNotInImage) {
			t.Errorf("%s: error %v", missing, err)
		}
	}
}
