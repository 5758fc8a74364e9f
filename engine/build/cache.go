package build

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"vscript/engine/errdefs"
	"vscript/engine/store"
)

// The build cache works as Docker's legacy builder's: a step's result is
// reused when it ran on the same parent image with the same history line.
// The history line holds everything else that decides the result: the
// instruction after variable expansion, the build args a RUN sees ("|1 V=2
// /bin/sh -c make") and, for COPY and ADD, a hash of the sources' content
// ("COPY file:<hash> in /dest "). Everything else a step depends on (env,
// user, workdir, the files a RUN sees) is part of the parent image. Every
// step, config-only ones included, is committed as an image and cached, so
// a rebuild gets the same image ids all the way down.

// Cache maps cache keys to the image a step produced.
type Cache interface {
	// Get returns the image recorded for key; ok is false if there is none.
	Get(key string) (imageID string, ok bool, err error)
	// Put records that key produced imageID.
	Put(key, imageID string) error
}

// CacheKey is the key of a step that ran on parent ("" for scratch) and is
// recorded in history as createdBy.
func CacheKey(parent, createdBy string) string {
	h := sha256.New()
	io.WriteString(h, "vscript build cache v1\x00")
	io.WriteString(h, parent)
	io.WriteString(h, "\x00")
	io.WriteString(h, createdBy)
	return hex.EncodeToString(h.Sum(nil))
}

// StoreCache keeps cache records in the state directory, one file per key
// under cache/build/ holding the image id. Records are written atomically;
// one whose image was removed since is a miss (Build checks the image).
type StoreCache struct {
	st  *store.Store
	dir string
}

// NewStoreCache opens the build cache of a state directory.
func NewStoreCache(st *store.Store) (*StoreCache, error) {
	dir := st.Path("cache", "build")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("build cache %s: %w", dir, err)
	}
	return &StoreCache{st: st, dir: dir}, nil
}

func (c *StoreCache) Get(key string) (string, bool, error) {
	if !validKey(key) {
		return "", false, fmt.Errorf("build cache: bad key %q: %w", key, errdefs.ErrInvalid)
	}
	data, err := os.ReadFile(c.dir + "/" + key)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("build cache: %w", err)
	}
	return strings.TrimSpace(string(data)), true, nil
}

func (c *StoreCache) Put(key, imageID string) error {
	if !validKey(key) {
		return fmt.Errorf("build cache: bad key %q: %w", key, errdefs.ErrInvalid)
	}
	return c.st.WriteFile(c.dir+"/"+key, []byte(imageID+"\n"), 0o600)
}

// validKey keeps keys to the hex names CacheKey makes, so that a key can
// never name a path elsewhere.
func validKey(key string) bool {
	if len(key) != 64 {
		return false
	}
	_, err := hex.DecodeString(key)
	return err == nil
}

// hashSources is the source part of a COPY or ADD history line, in
// Docker's notation: "file:<sha256>" for one file, "dir:<sha256>" for one
// directory, "multi:<sha256>" over those of several sources. It covers
// names, types, permission bits, symlink targets and content, and owners
// only when the copy keeps them (COPY --from); never times, so a fresh
// checkout of the same files hits the cache.
func hashSources(srcs []Source, withOwner bool) (string, error) {
	var hs []string
	for _, s := range srcs {
		h, err := s.hash(withOwner)
		if err != nil {
			return "", err
		}
		hs = append(hs, h)
	}
	if len(hs) == 1 {
		return hs[0], nil
	}
	sum := sha256.Sum256([]byte(strings.Join(hs, ",")))
	return "multi:" + hex.EncodeToString(sum[:]), nil
}

func (s Source) hash(withOwner bool) (string, error) {
	h := sha256.New()
	kind := "file:"
	err := s.walk(func(rel, full string, fi fs.FileInfo) error {
		if rel == "." {
			if fi.IsDir() {
				// The directory's own metadata is not copied.
				kind = "dir:"
				return nil
			}
			// A file lands under the name it was asked by.
			rel = s.Name
		}
		st := fi.Sys().(*syscall.Stat_t)
		fmt.Fprintf(h, "%q %o %o", rel, st.Mode&syscall.S_IFMT, st.Mode&0o7777)
		if withOwner {
			fmt.Fprintf(h, " %d:%d", st.Uid, st.Gid)
		}
		switch m := fi.Mode(); {
		case m.IsRegular():
			sum, err := fileSum(full)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, " %d %x", fi.Size(), sum)
		case m&fs.ModeSymlink != 0:
			target, err := os.Readlink(full)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, " -> %q", target)
		case m&fs.ModeDevice != 0:
			fmt.Fprintf(h, " dev %d", st.Rdev)
		}
		io.WriteString(h, "\n")
		return nil
	})
	if err != nil {
		return "", err
	}
	return kind + hex.EncodeToString(h.Sum(nil)), nil
}

func fileSum(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}
