package store

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// DefaultRoot is used when neither --root nor VSCRIPT_ROOT is given.
const DefaultRoot = "/var/lib/vscript"

// Dirs lists the top-level directories Open creates.
var Dirs = []string{"content", "layers", "volumes", "cache", "tmp"}

// Store is an open state directory.
type Store struct {
	Root   string
	lock   *os.File
	active *os.File
	// mu makes Lock exclude this process's goroutines too: a flock is held
	// per open file, so the kernel alone would let them all in at once.
	mu sync.Mutex
}

// Open creates the state directory's skeleton if needed and returns it.
func Open(root string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("state dir %s: %w", root, err)
	}
	for _, d := range Dirs {
		if err := os.MkdirAll(filepath.Join(abs, d), 0o700); err != nil {
			return nil, fmt.Errorf("state dir %s: %w", abs, err)
		}
	}
	f, err := os.OpenFile(filepath.Join(abs, "lock"), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state dir %s: %w", abs, err)
	}
	active, err := os.OpenFile(filepath.Join(abs, "active"), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("state dir %s: %w", abs, err)
	}
	s := &Store{Root: abs, lock: f, active: active}
	// Stray temp entries belong to a crashed run. Work in progress belongs
	// to a live one, which holds "active" shared: clear tmp/ only when this
	// run is alone, then join the others.
	if unix.Flock(int(active.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
		entries, _ := os.ReadDir(s.Path("tmp"))
		for _, e := range entries {
			os.RemoveAll(s.Path("tmp", e.Name()))
		}
	}
	if err := flock(active, unix.LOCK_SH); err != nil {
		s.Close()
		return nil, fmt.Errorf("state dir %s: %w", abs, err)
	}
	return s, nil
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}

// Close releases the store's lock files.
func (s *Store) Close() error {
	s.active.Close()
	return s.lock.Close()
}

// Path joins elem onto the state directory.
func (s *Store) Path(elem ...string) string {
	return filepath.Join(append([]string{s.Root}, elem...)...)
}

// Lock takes the store's exclusive lock, waiting for other runs to release it.
// Hold it while reading-then-writing shared metadata (index.json, volume
// records); never across a long operation such as running a container.
func (s *Store) Lock() error {
	s.mu.Lock()
	if err := flock(s.lock, unix.LOCK_EX); err != nil {
		s.mu.Unlock()
		return err
	}
	return nil
}

// Unlock releases Lock.
func (s *Store) Unlock() {
	unix.Flock(int(s.lock.Fd()), unix.LOCK_UN)
	s.mu.Unlock()
}

// WithLock runs fn holding the store's lock.
func (s *Store) WithLock(fn func() error) error {
	if err := s.Lock(); err != nil {
		return fmt.Errorf("state dir %s: lock: %w", s.Root, err)
	}
	defer s.Unlock()
	return fn()
}

// TempDir makes a fresh directory under tmp/ to build something in before
// renaming it into place.
func (s *Store) TempDir(pattern string) (string, error) {
	return os.MkdirTemp(s.Path("tmp"), pattern)
}

// WriteFile writes data to path atomically: readers see the old content or
// the new, never a part.
func (s *Store) WriteFile(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(s.Path("tmp"), filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	err = Finish(f, perm, err)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Finish makes a temporary file written so far (with writeErr, the error of
// writing it) ready to be renamed into place: its mode set, its data on disk,
// the file closed. It returns the first error; the file is closed either way.
func Finish(f *os.File, perm os.FileMode, writeErr error) error {
	err := writeErr
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
