package build

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"vscript/engine/errdefs"
)

// Errors of source resolution. The executor prefixes them with the
// instruction and the source as written: "COPY ../x: forbidden path outside
// the build context".
var (
	ErrOutsideContext = fmt.Errorf("forbidden path outside the build context: %w", errdefs.ErrInvalid)
	ErrNotInContext   = fmt.Errorf("file not found in build context: %w", errdefs.ErrNotFound)
	errExcluded       = fmt.Errorf("file not found in build context (excluded by .dockerignore): %w", errdefs.ErrNotFound)
	errNotInImage     = fmt.Errorf("file not found: %w", errdefs.ErrNotFound)
)

// Context is a build context: a directory and the .dockerignore at its top.
// Docker sends the context to its daemon as a tar of everything not
// excluded; vscript reads the directory in place, so paths that .dockerignore
// excludes are simply not there for COPY and ADD. The Dockerfile and the
// .dockerignore themselves are read even when excluded, as Docker does.
type Context struct {
	dir string // absolute, symlinks resolved

	mu     sync.Mutex // patternmatcher is not safe for concurrent use
	ignore *patternmatcher.PatternMatcher
}

// OpenContext opens dir as a build context and reads its .dockerignore.
func OpenContext(dir string) (*Context, error) {
	abs, err := filepath.Abs(dir)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("build context %s: %w", dir, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("build context %s: %w", dir, err)
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("build context %s: not a directory: %w", dir, errdefs.ErrInvalid)
	}
	c := &Context{dir: abs}
	f, err := os.Open(filepath.Join(abs, ".dockerignore"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return c, nil
	case err != nil:
		return nil, fmt.Errorf("build context %s: %w", dir, err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err == nil {
		c.ignore, err = patternmatcher.New(patterns)
	}
	if err != nil {
		return nil, fmt.Errorf("build context %s: .dockerignore: %w: %w", dir, err, errdefs.ErrInvalid)
	}
	return c, nil
}

// Dir is the context's absolute directory.
func (c *Context) Dir() string { return c.dir }

// Excluded reports whether .dockerignore leaves out rel, a slash-separated
// path relative to the context. A path inside an excluded directory is
// excluded too unless a later "!" pattern brings it back.
func (c *Context) Excluded(rel string) (bool, error) {
	rel = path.Clean(rel)
	if c.ignore == nil || rel == "." {
		return false, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ignore.MatchesOrParentMatches(rel)
}

// descendExcluded reports whether a walk must still look inside excluded
// directories, because some "!" pattern may bring back a path below them.
func (c *Context) descendExcluded() bool {
	return c.ignore != nil && c.ignore.Exclusions()
}

// Resolve finds the sources a COPY or ADD source names in the context:
// one file or directory, or every match of a wildcard pattern (`*`, `?`,
// `[...]` as filepath.Match, each matching within one path element).
// A leading "/" means the context's top. Symlinks on the way are followed
// but must stay inside the context; ".." may not leave it.
func (c *Context) Resolve(src string) ([]Source, error) {
	rel, err := contextRel(src)
	if err != nil {
		return nil, err
	}
	if !hasWildcards(rel) {
		s, err := c.resolveOne(rel)
		if err != nil {
			return nil, err
		}
		return []Source{s}, nil
	}
	matches, err := glob(c.dir, rel, func(rel string, isDir bool) (bool, error) {
		ex, err := c.Excluded(rel)
		return ex && !(isDir && c.descendExcluded()), err
	})
	if err != nil {
		return nil, err
	}
	var out []Source
	for _, m := range matches {
		s, err := c.resolveOne(m)
		if errors.Is(err, errExcluded) {
			continue // not part of the context, as far as Docker is concerned
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, ErrNotInContext
	}
	return out, nil
}

// contextRel turns a source as written into a clean path relative to the
// context, refusing one that climbs out of it.
func contextRel(src string) (string, error) {
	rel := path.Clean(strings.TrimLeft(src, "/"))
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return "", ErrOutsideContext
	}
	return rel, nil
}

func (c *Context) resolveOne(rel string) (Source, error) {
	full := filepath.Join(c.dir, filepath.FromSlash(rel))
	real, err := filepath.EvalSymlinks(full)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Source{}, ErrNotInContext
		}
		return Source{}, err
	}
	realRel, err := filepath.Rel(c.dir, real)
	if err != nil || realRel == ".." || strings.HasPrefix(realRel, ".."+string(filepath.Separator)) {
		return Source{}, ErrOutsideContext
	}
	realRel = filepath.ToSlash(realRel)
	fi, err := os.Stat(real)
	if err != nil {
		return Source{}, err
	}
	// Both the name asked for and the file it leads to must be in the
	// context Docker would have sent.
	for _, p := range []string{rel, realRel} {
		ex, err := c.Excluded(p)
		if err != nil {
			return Source{}, fmt.Errorf(".dockerignore: %w: %w", err, errdefs.ErrInvalid)
		}
		if ex && !(fi.IsDir() && c.descendExcluded()) {
			return Source{}, errExcluded
		}
	}
	return Source{Root: c.dir, Path: realRel, Name: path.Base(rel), ctx: c}, nil
}

// ResolveInImage finds a COPY --from source in an image's root filesystem
// at root. As in Docker, the path and its symlinks are resolved as if root
// were "/", so nothing can lead outside it.
func ResolveInImage(root, src string) ([]Source, error) {
	root = filepath.Clean(root)
	rel := strings.TrimPrefix(path.Clean("/"+src), "/")
	if rel == "" {
		rel = "."
	}
	if !hasWildcards(rel) {
		s, err := resolveInImage(root, rel)
		if err != nil {
			return nil, err
		}
		return []Source{s}, nil
	}
	matches, err := glob(root, rel, nil)
	if err != nil {
		return nil, err
	}
	if len(matches) == 0 {
		return nil, errNotInImage
	}
	out := make([]Source, 0, len(matches))
	for _, m := range matches {
		s, err := resolveInImage(root, m)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func resolveInImage(root, rel string) (Source, error) {
	p, err := securejoin.SecureJoin(root, rel)
	if err != nil {
		return Source{}, err
	}
	if _, err := os.Lstat(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Source{}, errNotInImage
		}
		return Source{}, err
	}
	realRel, err := filepath.Rel(root, p)
	if err != nil {
		return Source{}, err
	}
	return Source{Root: root, Path: filepath.ToSlash(realRel), Name: path.Base(rel)}, nil
}

// hasWildcards reports whether a source is a pattern, as Docker decides:
// an unescaped *, ? or [.
func hasWildcards(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '*', '?', '[':
			return true
		}
	}
	return false
}

// glob lists the paths below root that match pattern, in lexical order.
// A wildcard never matches a "/", so only entries as deep as the pattern
// can match and the walk stops there. skip, if set, leaves entries out (a
// skipped directory is not entered).
func glob(root, pattern string, skip func(rel string, isDir bool) (bool, error)) ([]string, error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, fmt.Errorf("bad pattern %q: %w", pattern, errdefs.ErrInvalid)
	}
	depth := strings.Count(pattern, "/") + 1
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if skip != nil {
			s, err := skip(rel, d.IsDir())
			if err != nil {
				return err
			}
			if s {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		n := strings.Count(rel, "/") + 1
		if n == depth {
			if ok, _ := path.Match(pattern, rel); ok {
				out = append(out, rel)
			}
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	return out, err
}
