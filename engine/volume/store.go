package volume

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"vscript/engine/errdefs"
	"vscript/engine/store"
)

// Volume is a managed volume, as recorded in its volume.json.
type Volume struct {
	Name      string            `json:"name"`
	Anonymous bool              `json:"anonymous"`
	Lab       string            `json:"lab,omitempty"` // id of the lab that created it
	Labels    map[string]string `json:"labels,omitempty"`
	CreatedAt time.Time         `json:"created_at"`

	// Mountpoint is the host path of the data directory (ROOT/volumes/NAME/_data).
	Mountpoint string `json:"-"`
}

// CreateOptions are the details of a new volume.
type CreateOptions struct {
	// ID names an anonymous volume: 64 lowercase hex digits. It comes from
	// the caller so that names follow the lab's seed like container ids do.
	ID     string
	Lab    string
	Labels map[string]string
}

// InUse returns the ids of the containers using v; none means v may be
// removed. The facade supplies it: only it knows the containers.
type InUse func(v *Volume) []string

// Store is the set of managed volumes in a state directory.
type Store struct {
	st *store.Store
}

// NewStore returns the volumes of st.
func NewStore(st *store.Store) *Store { return &Store{st: st} }

var hex64 = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-f]{64}$`) })

func (s *Store) dir(name string) string { return s.st.Path("volumes", name) }

// Create makes a volume. A named volume that exists already is returned as
// it is, as `docker run -v NAME:/p` creates NAME on first use only. An empty
// name makes an anonymous volume named opt.ID; that id being taken is a
// conflict, so a caller whose ids repeat across runs can pick the next one.
func (s *Store) Create(name string, opt CreateOptions) (*Volume, error) {
	anonymous := name == ""
	if anonymous {
		name = opt.ID
		if !hex64().MatchString(name) {
			return nil, errorf(errdefs.ErrInvalid, "volume create: anonymous volume id %q is not 64 hex digits", name)
		}
	} else if !ValidName(name) {
		return nil, errorf(errdefs.ErrInvalid, "volume create %s: %s", name, invalidName(name))
	}
	var vol *Volume
	err := s.st.WithLock(func() error {
		existing, err := s.read(name)
		switch {
		case err == nil && anonymous:
			return errorf(errdefs.ErrConflict, "volume create %s: already exists", name)
		case err == nil:
			vol = existing
			return nil
		case !errors.Is(err, errdefs.ErrNotFound):
			return err
		}
		v := &Volume{
			Name:      name,
			Anonymous: anonymous,
			Lab:       opt.Lab,
			Labels:    opt.Labels,
			CreatedAt: time.Now().UTC().Truncate(time.Second),
		}
		if err := s.build(v); err != nil {
			return fmt.Errorf("volume create %s: %w", name, err)
		}
		v.Mountpoint = filepath.Join(s.dir(name), "_data")
		vol = v
		return nil
	})
	return vol, err
}

// build makes v's directory under tmp/ and renames it into place, so a
// crash leaves no half-made volume.
func (s *Store) build(v *Volume) error {
	tmp, err := s.st.TempDir("volume-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	// Docker's local driver makes _data root-owned 0755; copy-up may change
	// both to the image directory's.
	if err := os.Mkdir(filepath.Join(tmp, "_data"), 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	// The directory rename below publishes volume.json atomically, so it is
	// written in place: store.WriteFile's fsync would cost more than the
	// whole create is allowed (1 ms; an fsync is ~1.5 ms on a virtual disk).
	if err := os.WriteFile(filepath.Join(tmp, "volume.json"), append(data, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, s.dir(v.Name))
}

// read loads a volume's record; ErrNotFound when there is none.
func (s *Store) read(name string) (*Volume, error) {
	if !ValidName(name) {
		return nil, errorf(errdefs.ErrNotFound, "volume %s: no such volume", name)
	}
	data, err := os.ReadFile(filepath.Join(s.dir(name), "volume.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errorf(errdefs.ErrNotFound, "volume %s: no such volume", name)
	}
	if err != nil {
		return nil, fmt.Errorf("volume %s: %w", name, err)
	}
	var v Volume
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("volume %s: volume.json: %w", name, err)
	}
	if v.Name != name {
		return nil, fmt.Errorf("volume %s: volume.json names %q", name, v.Name)
	}
	v.Mountpoint = filepath.Join(s.dir(name), "_data")
	return &v, nil
}

// Get returns the volume called name.
func (s *Store) Get(name string) (*Volume, error) { return s.read(name) }

// List returns every volume, sorted by name. Directories without a
// volume.json are not volumes and are left out.
func (s *Store) List() ([]*Volume, error) {
	entries, err := os.ReadDir(s.st.Path("volumes"))
	if err != nil {
		return nil, fmt.Errorf("volume ls: %w", err)
	}
	var vols []*Volume
	for _, e := range entries {
		v, err := s.read(e.Name())
		if errors.Is(err, errdefs.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("volume ls: %w", err)
		}
		vols = append(vols, v)
	}
	return vols, nil
}

// Remove deletes a volume and its data, unless inUse (which may be nil)
// reports it in use.
func (s *Store) Remove(name string, inUse InUse) error {
	var trash string
	err := s.st.WithLock(func() error {
		v, err := s.read(name)
		if err != nil {
			return fmt.Errorf("volume rm %s: %w", name, err)
		}
		if inUse != nil {
			if users := inUse(v); len(users) > 0 {
				return errorf(errdefs.ErrConflict, "volume rm %s: volume is in use - %v", name, users)
			}
		}
		trash, err = s.unlink(name)
		if err != nil {
			return fmt.Errorf("volume rm %s: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("volume rm %s: %w", name, err)
	}
	return nil
}

// unlink moves a volume out of volumes/ into a fresh directory under tmp/,
// which it returns; deleting the data can then happen outside the lock, and
// a crash midway leaves only tmp/ entries, which store.Open clears.
func (s *Store) unlink(name string) (string, error) {
	trash, err := s.st.TempDir("volume-rm-")
	if err != nil {
		return "", err
	}
	if err := os.Rename(s.dir(name), filepath.Join(trash, name)); err != nil {
		os.Remove(trash)
		return "", err
	}
	return trash, nil
}

// Prune removes every volume that inUse (which may be nil) does not report in
// use, only anonymous ones if anonymousOnly (Docker's `volume prune`), and
// returns the names removed, in name order.
func (s *Store) Prune(anonymousOnly bool, inUse InUse) ([]string, error) {
	var removed, trash []string
	err := s.st.WithLock(func() error {
		vols, err := s.List()
		if err != nil {
			return err
		}
		for _, v := range vols {
			if anonymousOnly && !v.Anonymous || inUse != nil && len(inUse(v)) > 0 {
				continue
			}
			t, err := s.unlink(v.Name)
			if err != nil {
				return fmt.Errorf("volume prune: %s: %w", v.Name, err)
			}
			removed = append(removed, v.Name)
			trash = append(trash, t)
		}
		return nil
	})
	var errs []error
	for _, t := range trash {
		if rerr := os.RemoveAll(t); rerr != nil {
			errs = append(errs, fmt.Errorf("volume prune: %w", rerr))
		}
	}
	return removed, errors.Join(append([]error{err}, errs...)...)
}
