package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"vscript/engine/errdefs"
	"vscript/engine/event"
	"vscript/engine/store"
	"vscript/engine/volume"
)

// Managed volumes live in the state directory and outlive labs; what ties
// them to labs is two kinds of flock(2), both released by the kernel when a
// lab dies, however it dies:
//
//   - ROOT/labs/RUN, held exclusively by the lab for its whole life. RUN is
//     random per run and recorded in the volumes the lab creates. Anonymous
//     volumes belong to their lab: it removes them when it closes, and a
//     later run removes those of a lab whose lock is free (killed -9).
//   - ROOT/volumes/NAME itself, held shared by a lab while any of its
//     containers mounts the volume. Removal claims it exclusively first (and
//     keeps the claim until the volume is renamed away), so no lab can
//     remove a volume another lab's containers use, and a lab that starts
//     using a volume re-checks afterwards that it was not removed meanwhile.

// VolumeInfo is a managed volume as builtins show it.
type VolumeInfo struct {
	Name       string
	Mountpoint string // host path of the data: ROOT/volumes/NAME/_data
	Anonymous  bool
	CreatedAt  time.Time
}

func volumeInfo(v *volume.Volume) *VolumeInfo {
	return &VolumeInfo{Name: v.Name, Mountpoint: v.Mountpoint, Anonymous: v.Anonymous, CreatedAt: v.CreatedAt}
}

// volState is a lab's hold on the state directory's volumes.
type volState struct {
	st    *store.Store
	store *volume.Store
	lab   string   // this run's id, recorded in the volumes it creates
	lock  *os.File // ROOT/labs/<lab>, flocked for the life of the lab

	mu   sync.Mutex
	held map[string]*heldVolume // volumes this lab's containers mount, by name
}

// heldVolume is a volume in use by containers of the lab: dir holds the
// shared flock; users names a container once per mount.
type heldVolume struct {
	dir   *os.File
	users []string
}

// errVolumeGone: the volume was removed between its lookup and its flock.
var errVolumeGone = errors.New("volume removed meanwhile")

func (s *volState) dir(name string) string { return s.st.Path("volumes", name) }

// volOpen registers the lab in the state directory and clears away the
// anonymous volumes of labs that died without closing.
func (e *Engine) volOpen() error {
	s := &e.vol
	s.st, s.store, s.held = e.store, volume.NewStore(e.store), map[string]*heldVolume{}
	lab, lock, err := registerLab(e.store)
	if err != nil {
		return fmt.Errorf("lab register: %w", err)
	}
	s.lab, s.lock = lab, lock
	reapVolumes(e.store, s.store)
	return nil
}

// volClose removes the lab's anonymous volumes, as the lab ends. One that a
// container of another lab still uses stays, with the lab's (now free) lock
// file, for a later run to reap.
func (e *Engine) volClose() {
	s := &e.vol
	if s.lock == nil {
		return
	}
	s.mu.Lock()
	for _, h := range s.held {
		h.dir.Close()
	}
	s.held = map[string]*heldVolume{}
	s.mu.Unlock()
	keptOwn := false
	removed, _ := s.prune(func(v *volume.Volume) bool { return v.Lab != s.lab }, func(v *volume.Volume) { keptOwn = true })
	for _, name := range removed {
		e.emit(volumeRmEvent(name, s.dir(name), false), time.Now())
	}
	if !keptOwn {
		os.Remove(s.st.Path("labs", s.lab))
	}
	s.lock.Close()
	s.lock = nil
}

// registerLab makes and locks ROOT/labs/<random id>. The file is locked
// before it gets its name, so no reaper ever sees it unlocked while the lab
// lives.
func registerLab(st *store.Store) (string, *os.File, error) {
	if err := os.MkdirAll(st.Path("labs"), 0o700); err != nil {
		return "", nil, err
	}
	id := randomHex(16)
	f, err := os.CreateTemp(st.Path("tmp"), "lab-")
	if err != nil {
		return "", nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", nil, fmt.Errorf("flock %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), st.Path("labs", id)); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", nil, err
	}
	return id, f, nil
}

// lockIfDead takes the lock of lab and returns it if the lab is gone; nil
// while the lab lives (or its lock is missing: nothing to reap then).
func lockIfDead(st *store.Store, lab string) *os.File {
	f, err := os.Open(st.Path("labs", lab))
	if err != nil {
		return nil
	}
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		f.Close()
		return nil
	}
	return f
}

// labAlive tells whether the lab called lab still runs.
func labAlive(st *store.Store, lab string) bool {
	f, err := os.Open(st.Path("labs", lab))
	if err != nil {
		return false
	}
	defer f.Close()
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil
}

// reapVolumes removes the anonymous volumes of dead labs, then their lock
// files. Best effort: what cannot go now is left for a later run.
func reapVolumes(st *store.Store, vs *volume.Store) {
	entries, err := os.ReadDir(st.Path("labs"))
	if err != nil {
		return
	}
	dead := map[string]*os.File{}
	for _, ent := range entries {
		if f := lockIfDead(st, ent.Name()); f != nil {
			dead[ent.Name()] = f
		}
	}
	if len(dead) == 0 {
		return
	}
	kept := map[string]bool{}
	s := &volState{st: st, store: vs}
	_, err = s.prune(func(v *volume.Volume) bool { return dead[v.Lab] == nil }, func(v *volume.Volume) { kept[v.Lab] = true })
	for lab, f := range dead {
		if err == nil && !kept[lab] {
			os.Remove(st.Path("labs", lab))
		}
		f.Close()
	}
}

// claim takes a volume's flock exclusively, which fails while any lab's
// containers use it. The returned file keeps the claim until closed.
func (s *volState) claim(name string) (*os.File, bool) {
	f, err := os.Open(s.dir(name))
	if err != nil {
		return nil, false
	}
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		f.Close()
		return nil, false
	}
	return f, true
}

// remove deletes a volume nobody uses; users names this lab's containers
// that use it, for the error.
func (s *volState) remove(name string, users []string) error {
	var claims []*os.File
	defer func() {
		for _, f := range claims {
			f.Close()
		}
	}()
	return s.store.Remove(name, func(v *volume.Volume) []string {
		if f, ok := s.claim(v.Name); ok {
			claims = append(claims, f)
			return nil
		}
		if len(users) > 0 {
			return users
		}
		return []string{"a container of a running lab"}
	})
}

// prune removes the anonymous volumes that skip does not spare and nobody
// uses; busy is told of those spared only for being in use.
func (s *volState) prune(skip func(*volume.Volume) bool, busy func(*volume.Volume)) ([]string, error) {
	var claims []*os.File
	defer func() {
		for _, f := range claims {
			f.Close()
		}
	}()
	return s.store.Prune(true, func(v *volume.Volume) []string {
		if skip(v) {
			return []string{"spared"}
		}
		f, ok := s.claim(v.Name)
		if !ok {
			busy(v)
			return []string{"in use"}
		}
		claims = append(claims, f)
		return nil
	})
}

// use returns the volume called name, created if missing ("" makes an
// anonymous one named by newID), with a reference held for user. made
// tells whether this call created it.
func (s *volState) use(name, user string, newID func(kind string) string) (v *volume.Volume, made bool, err error) {
	for range 3 {
		if name == "" {
			v, err = s.createAnonymous(newID)
			made = err == nil
		} else {
			v, err = s.store.Get(name)
			if errors.Is(err, errdefs.ErrNotFound) {
				v, err = s.store.Create(name, volume.CreateOptions{Lab: s.lab})
				// Another run may have made it in between: then it is theirs.
				made = err == nil && v.Lab == s.lab
			}
		}
		if err != nil {
			return nil, false, err
		}
		err = s.hold(v.Name, user)
		if !errors.Is(err, errVolumeGone) {
			return v, made, err
		}
	}
	return nil, false, fmt.Errorf("volume %s: %w", name, err)
}

// createAnonymous makes an anonymous volume named by the lab's next volume
// id; an id taken by a leftover or a parallel lab with the same seed is
// skipped.
func (s *volState) createAnonymous(newID func(kind string) string) (*volume.Volume, error) {
	for range 1000 {
		v, err := s.store.Create("", volume.CreateOptions{ID: newID("volume"), Lab: s.lab})
		if !errors.Is(err, errdefs.ErrConflict) {
			return v, err
		}
	}
	return nil, fmt.Errorf("volume create: %w: no free anonymous volume id", errdefs.ErrConflict)
}

// hold records that user (a container) mounts the volume called name; the
// first holder of the lab takes the volume's shared flock.
func (s *volState) hold(name, user string) error {
	s.mu.Lock()
	if h := s.held[name]; h != nil {
		h.users = append(h.users, user)
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	// Not under s.mu: the flock may wait for a remover, which may need s.mu.
	dir := s.dir(name)
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return errVolumeGone
	}
	if err != nil {
		return fmt.Errorf("volume %s: %w", name, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_SH)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("volume %s: flock: %w", name, err)
	}
	// A remover renames the volume away while it holds its claim; once the
	// flock is ours, the name still leading to this directory means it stays.
	var held, now unix.Stat_t
	if unix.Fstat(int(f.Fd()), &held) != nil || unix.Stat(dir, &now) != nil || held.Ino != now.Ino || held.Dev != now.Dev {
		f.Close()
		return errVolumeGone
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.held[name]; h != nil {
		f.Close()
		h.users = append(h.users, user)
		return nil
	}
	s.held[name] = &heldVolume{dir: f, users: []string{user}}
	return nil
}

// release drops one reference of user on the volume; the last one lets the
// flock go.
func (s *volState) release(name, user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.held[name]
	if h == nil {
		return
	}
	if i := slices.Index(h.users, user); i >= 0 {
		h.users = slices.Delete(h.users, i, i+1)
	}
	if len(h.users) == 0 {
		h.dir.Close()
		delete(s.held, name)
	}
}

// users lists the lab's containers that mount the volume, sorted, once each.
func (s *volState) users(name string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.held[name]
	if h == nil {
		return nil
	}
	out := slices.Clone(h.users)
	slices.Sort(out)
	return slices.Compact(out)
}

// VolumeCreate makes a managed volume (docker volume create): a named one is
// returned as it is if it exists; name "" makes an anonymous one, which
// lasts until the lab ends.
func (e *Engine) VolumeCreate(name string) (*VolumeInfo, error) {
	start := time.Now()
	var v *volume.Volume
	var err error
	if name == "" {
		v, err = e.vol.createAnonymous(e.NewID)
	} else {
		v, err = e.vol.store.Create(name, volume.CreateOptions{Lab: e.vol.lab})
	}
	if err != nil {
		return nil, err
	}
	e.emit(volumeCreateEvent(v), start)
	return volumeInfo(v), nil
}

// Volume returns the volume called name.
func (e *Engine) Volume(name string) (*VolumeInfo, error) {
	v, err := e.vol.store.Get(name)
	if err != nil {
		return nil, volumeNotFound(name, err)
	}
	return volumeInfo(v), nil
}

func volumeNotFound(name string, err error) error {
	if errors.Is(err, errdefs.ErrNotFound) {
		return errdefs.WithHint(fmt.Errorf("volume %s: %w", name, errdefs.ErrNotFound), "volumes() lists the volumes")
	}
	return err
}

// Volumes lists the named volumes and this lab's anonymous ones, by name.
// Other labs' anonymous volumes are theirs, and go with them.
func (e *Engine) Volumes() ([]*VolumeInfo, error) {
	vols, err := e.vol.store.List()
	if err != nil {
		return nil, err
	}
	var out []*VolumeInfo
	for _, v := range vols {
		if !v.Anonymous || v.Lab == e.vol.lab {
			out = append(out, volumeInfo(v))
		}
	}
	return out, nil
}

// VolumeRemove deletes a volume and its data (docker volume rm). A volume a
// container uses — of this lab or of another running one — is refused;
// force only makes a missing volume no error, as with Docker.
func (e *Engine) VolumeRemove(name string, force bool) error {
	start := time.Now()
	if _, err := e.vol.store.Get(name); err != nil {
		if force && errors.Is(err, errdefs.ErrNotFound) {
			return nil
		}
		return volumeNotFound(name, err)
	}
	if err := e.vol.remove(name, e.vol.users(name)); err != nil {
		if force && errors.Is(err, errdefs.ErrNotFound) {
			return nil
		}
		if errors.Is(err, errdefs.ErrConflict) {
			err = errdefs.WithHint(err, "remove the containers that use it first; .rm(volumes=True) also removes a container's anonymous volumes")
		}
		return err
	}
	e.emit(volumeRmEvent(name, e.vol.dir(name), force), start)
	return nil
}

// VolumePrune removes the anonymous volumes no container uses (docker
// volume prune) and returns their names. Those of other running labs stay:
// they go with their lab.
func (e *Engine) VolumePrune() ([]string, error) {
	start := time.Now()
	s := &e.vol
	removed, err := s.prune(func(v *volume.Volume) bool {
		return v.Lab != s.lab && labAlive(s.st, v.Lab)
	}, func(*volume.Volume) {})
	if err != nil {
		return removed, fmt.Errorf("volume prune: %w", err)
	}
	var linux []string
	for _, name := range removed {
		linux = append(linux, "rm -rf "+s.dir(name))
	}
	e.emit(event.Event{Op: "volume prune", Docker: "docker volume prune -f", Linux: linux}, start)
	return removed, nil
}

// ListVolumes is `vscript volumes`: every volume of the state directory at
// root, once the anonymous volumes of dead labs are cleared away. It needs
// no lab.
func ListVolumes(root string) ([]*VolumeInfo, error) {
	st, err := store.Open(root)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	vs := volume.NewStore(st)
	reapVolumes(st, vs)
	vols, err := vs.List()
	if err != nil {
		return nil, err
	}
	out := make([]*VolumeInfo, len(vols))
	for i, v := range vols {
		out[i] = volumeInfo(v)
	}
	return out, nil
}

// RemoveVolume is `vscript volume rm`: refused while a container of a
// running lab uses the volume; force only makes a missing volume no error.
func RemoveVolume(root, name string, force bool) error {
	st, err := store.Open(root)
	if err != nil {
		return err
	}
	defer st.Close()
	s := &volState{st: st, store: volume.NewStore(st)}
	if _, err := s.store.Get(name); err != nil {
		if force && errors.Is(err, errdefs.ErrNotFound) {
			return nil
		}
		return volumeNotFound(name, err)
	}
	err = s.remove(name, nil)
	if force && errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	return err
}
