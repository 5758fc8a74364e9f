package engine

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"vscript/engine/errdefs"
	"vscript/engine/event"
	"vscript/engine/runtime"
	"vscript/engine/volume"
)

// This file gives containers their volumes: the hooks container.go calls at
// create (volCreate), start (volMounts), rm (volRemove), inspect
// (volInspect) and in file access (volPath). Resolution follows Docker's
// registerMountPoints: the mounts of volumes_from containers first, then the
// -v specs (which replace a volumes_from mount at the same destination and
// may not repeat a destination among themselves), then an anonymous volume
// for each VOLUME of the image that nothing else covers. Copy-up happens at
// create, while the image content is still what the rootfs shows at each
// destination.

// mountPoint is one mount of a container, as inspect shows it.
type mountPoint struct {
	Type        string // volume.TypeBind or volume.TypeVolume
	Name        string // the volume's name
	Source      string // host path: the bind source or the volume's _data
	Destination string // as asked
	RW          bool
	Mode        string // the -v mode field; "z" for a volume given without one, as Docker
	Propagation string // bind mounts: "rprivate" unless given

	// target is Destination resolved inside the rootfs at create, where the
	// runtime will mount it (an image symlink on the way is followed).
	target string
	// root is Source with symlinks resolved, as mount(2) follows them: the
	// lab path of what the container sees at target.
	root string
	// anonymous: a volume with no name of its own; rm(volumes=True) takes it.
	anonymous bool
	// roView is a detached read-only clone of Source, made on the first
	// file access through a read-only mount so that writes fail as inside.
	roView *os.File
}

// ctrVols is a container's mounts, sorted by destination. Set at create,
// read-only afterwards.
type ctrVols struct {
	mounts []*mountPoint
}

// volBuild is the work of one volCreate, kept so that a failure can undo it.
type volBuild struct {
	e       *Engine
	c       *container
	created []string     // volumes made for this container
	held    []string     // volumes this container holds a reference on
	dirs    []string     // bind source directories made, outermost first
	events  []timedEvent // shown only if the create succeeds
}

type timedEvent struct {
	event.Event
	start time.Time
}

// volCreate resolves run(volumes=..., volumes_from=...) and the image's
// VOLUMEs into mounts, creating and seeding managed volumes as needed.
// Called with e.mu held, after c's rootfs is mounted at c.merged.
func (e *Engine) volCreate(c *container) (err error) {
	if len(c.spec.Volumes) == 0 && len(c.spec.VolumesFrom) == 0 && len(c.img.Config.Volumes) == 0 {
		return nil
	}
	b := &volBuild{e: e, c: c}
	defer func() {
		if err != nil {
			b.undo()
			err = fmt.Errorf("container create %s: %w", c.name, err)
		}
	}()
	byDest := map[string]*mountPoint{}
	inherited := map[*mountPoint]string{} // from volumes_from, and which entry

	for _, ref := range c.spec.VolumesFrom {
		from, err := volume.VolumesFrom(ref)
		if err != nil {
			return err
		}
		src, err := e.lookup(from.Container)
		if err != nil {
			return fmt.Errorf("volumes-from %s: %w", ref, err)
		}
		for _, m := range src.vols.mounts {
			// Docker's copy of a mount point: no mode, no copy-up.
			cp := &mountPoint{Type: m.Type, Name: m.Name, Source: m.Source, Destination: m.Destination,
				RW: from.RW(m.RW), Propagation: m.Propagation, anonymous: m.anonymous}
			inherited[cp] = ref
			byDest[cp.Destination] = cp
		}
	}

	var seed []*mountPoint // volumes to copy up into
	fromSpecs := map[string]bool{}
	for _, s := range c.spec.Volumes {
		spec, err := volume.ParseSpec(s, "")
		if err != nil {
			return err
		}
		if fromSpecs[spec.Destination] {
			return fmt.Errorf("volume spec %s: %w: duplicate mount point: %s", s, errdefs.ErrInvalid, spec.Destination)
		}
		fromSpecs[spec.Destination] = true
		m := &mountPoint{Type: spec.Type, Destination: spec.Destination, RW: !spec.ReadOnly,
			Mode: spec.Mode, Propagation: spec.Propagation}
		if spec.Type == volume.TypeBind {
			m.Source = spec.Source
		} else {
			v, err := b.volume(spec.Name)
			if err != nil {
				return err
			}
			m.Name, m.Source, m.anonymous = v.Name, v.Mountpoint, v.Anonymous
			if m.Mode == "" {
				m.Mode = "z"
			}
			if !spec.NoCopy {
				seed = append(seed, m)
			}
		}
		byDest[m.Destination] = m
	}

	for _, dst := range sortedSet(c.img.Config.Volumes) {
		if !path.IsAbs(dst) {
			continue // Docker's builder refuses these; an imported image might not
		}
		dst = path.Clean(dst)
		if byDest[dst] != nil || dst == "/" {
			continue
		}
		v, err := b.volume("")
		if err != nil {
			return err
		}
		m := &mountPoint{Type: volume.TypeVolume, Name: v.Name, Source: v.Mountpoint, Destination: dst, RW: true, anonymous: true}
		byDest[dst] = m
		seed = append(seed, m)
	}

	mounts := make([]*mountPoint, 0, len(byDest))
	for _, m := range byDest {
		mounts = append(mounts, m)
	}
	sort.Slice(mounts, func(i, j int) bool { return mounts[i].Destination < mounts[j].Destination })
	for _, m := range mounts {
		if ref, ok := inherited[m]; ok && m.Type == volume.TypeVolume {
			if err := e.vol.hold(m.Name, c.name); err != nil {
				return fmt.Errorf("volumes-from %s: %w", ref, err)
			}
			b.held = append(b.held, m.Name)
		}
		if err := b.prepare(m); err != nil {
			return err
		}
	}
	for _, m := range seed {
		if err := b.copyUp(m); err != nil {
			return err
		}
	}
	c.vols.mounts = mounts
	for _, ev := range b.events {
		e.emit(ev.Event, ev.start)
	}
	return nil
}

func sortedSet[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// volume returns the managed volume called name, made if missing ("" makes
// an anonymous one), with a reference held on it for the container.
func (b *volBuild) volume(name string) (*volume.Volume, error) {
	start := time.Now()
	v, made, err := b.e.vol.use(name, b.c.name, b.e.newIDLocked)
	if err != nil {
		return nil, err
	}
	if made {
		b.created = append(b.created, v.Name)
		ev := volumeCreateEvent(v)
		if v.Anonymous {
			ev.Docker = "" // `docker run -v /path` makes it; the docker create line says so
		}
		b.events = append(b.events, timedEvent{ev, start})
	}
	b.held = append(b.held, v.Name)
	return v, nil
}

// prepare checks a mount against the rootfs and resolves where it goes; a
// missing bind source directory is made, as `docker run -v` does.
func (b *volBuild) prepare(m *mountPoint) error {
	c := b.c
	inRoot, err := securejoin.SecureJoin(c.merged, m.Destination)
	if err != nil {
		return fmt.Errorf("mount %s: %w", m.Destination, err)
	}
	rel, err := filepath.Rel(c.merged, inRoot)
	if err != nil {
		return fmt.Errorf("mount %s: %w", m.Destination, err)
	}
	m.target = path.Join("/", filepath.ToSlash(rel))
	if m.target == "/" {
		return fmt.Errorf("mount %s: %w: it resolves to the container's root", m.Destination, errdefs.ErrInvalid)
	}
	if m.Type == volume.TypeVolume {
		m.root = m.Source
		if fi, err := os.Stat(inRoot); err == nil && !fi.IsDir() {
			return fmt.Errorf("volume %s on %s: %w: %s is a file in the image; a volume mounts only on a directory",
				shortName(m.Name), m.Destination, errdefs.ErrInvalid, m.Destination)
		}
		return nil
	}
	src, err := os.Stat(m.Source)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
		if err := b.mkdirAll(m.Source); err != nil {
			return fmt.Errorf("bind %s: %w: cannot create the host directory: %v", m.Source, errdefs.ErrInvalid, pathErr(err))
		}
		src, err = os.Stat(m.Source)
	}
	if err != nil {
		return fmt.Errorf("bind %s: %w", m.Source, err)
	}
	if m.root, err = filepath.EvalSymlinks(m.Source); err != nil {
		return fmt.Errorf("bind %s: %w", m.Source, err)
	}
	if dst, err := os.Stat(inRoot); err == nil && dst.IsDir() != src.IsDir() {
		what := map[bool]string{true: "a directory", false: "a file"}
		return errdefs.WithHint(
			fmt.Errorf("bind %s:%s: %w: %s is %s on the host but %s in the image", m.Source, m.Destination,
				errdefs.ErrInvalid, m.Source, what[src.IsDir()], what[dst.IsDir()]),
			"a directory mounts only on a directory, a file only on a file")
	}
	return nil
}

// mkdirAll makes dir and its missing parents (0755, as Docker), recording
// each so that a failed create can take them back.
func (b *volBuild) mkdirAll(dir string) error {
	start := time.Now()
	var missing []string
	for p := dir; ; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); err == nil || p == "/" {
			break
		}
		missing = append(missing, p)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		b.dirs = append(b.dirs, missing[i])
	}
	b.events = append(b.events, timedEvent{event.Event{Op: "volume bind", Subject: dir,
		Linux: []string{"mkdir -p " + dir}}, start})
	return nil
}

// copyUp seeds an empty volume with the image's content at its mount path.
func (b *volBuild) copyUp(m *mountPoint) error {
	start := time.Now()
	src := filepath.Join(b.c.merged, m.target)
	empty, err := isEmptyDir(m.Source)
	if err != nil {
		return fmt.Errorf("volume %s: %w", shortName(m.Name), err)
	}
	if err := volume.CopyUp(src, m.Source); err != nil {
		return err
	}
	if empty {
		if _, err := os.Stat(src); err == nil {
			b.events = append(b.events, timedEvent{event.Event{Op: "volume copy-up", Subject: m.Name, Linux: []string{
				"cp -a " + src + "/. " + m.Source + "/",
				"chown --reference=" + src + " " + m.Source + " && chmod --reference=" + src + " " + m.Source,
			}}, start})
		}
	}
	return nil
}

func isEmptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if len(names) > 0 {
		return false, nil
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	return true, nil
}

// undo takes back what a failed volCreate made: references, the volumes
// made for this container, bind source directories (if still empty).
func (b *volBuild) undo() {
	for _, name := range b.held {
		b.e.vol.release(name, b.c.name)
	}
	for _, name := range b.created {
		b.e.vol.remove(name, nil)
	}
	for i := len(b.dirs) - 1; i >= 0; i-- {
		os.Remove(b.dirs[i])
	}
}

// volMounts returns the mounts for the runtime at start (which mounts them
// in order of depth, so a mount inside another one's path comes after it).
func (e *Engine) volMounts(c *container) ([]runtime.Mount, error) {
	out := make([]runtime.Mount, len(c.vols.mounts))
	for i, m := range c.vols.mounts {
		out[i] = runtime.Mount{Source: m.Source, Destination: m.Destination, ReadOnly: !m.RW, Type: "bind"}
	}
	return out, nil
}

// volRemove drops c's references on its volumes; with anonymous, it also
// removes its anonymous volumes that nothing else uses (docker rm -v).
func (e *Engine) volRemove(c *container, anonymous bool) {
	for _, m := range c.vols.mounts {
		e.vol.mu.Lock()
		if m.roView != nil {
			m.roView.Close()
			m.roView = nil
		}
		e.vol.mu.Unlock()
		if m.Type == volume.TypeVolume {
			e.vol.release(m.Name, c.name)
		}
	}
	if !anonymous {
		return
	}
	for _, m := range c.vols.mounts {
		if m.Type != volume.TypeVolume || !m.anonymous {
			continue
		}
		start := time.Now()
		// In use elsewhere (volumes_from, another lab): kept, as Docker does.
		if err := e.vol.remove(m.Name, nil); err == nil {
			e.emit(volumeRmEvent(m.Name, e.vol.dir(m.Name), false), start)
		}
	}
}

// volInspect is inspect()'s Mounts, in Docker's shape: bind mounts have no
// Name and no Driver.
func (e *Engine) volInspect(c *container) []any {
	out := make([]any, 0, len(c.vols.mounts))
	for _, m := range c.vols.mounts {
		mp := map[string]any{
			"Type":        m.Type,
			"Source":      m.Source,
			"Destination": m.Destination,
			"Mode":        m.Mode,
			"RW":          m.RW,
			"Propagation": m.Propagation,
		}
		if m.Type == volume.TypeVolume {
			mp["Name"] = m.Name
			mp["Driver"] = "local"
		}
		out = append(out, mp)
	}
	return out
}

// volPath maps a container path to the lab path of what the container sees
// there, following symlinks as the container would, across its mounts: a
// path under a volume or bind mount lands in the mount's source, one under a
// read-only mount in a read-only view of it (writes fail with EROFS, as
// inside). ok is false when c has no mounts (the rootfs alone applies).
func (e *Engine) volPath(c *container, p string) (lp string, ok bool, err error) {
	if len(c.vols.mounts) == 0 {
		return "", false, nil
	}
	vfs := &mountVFS{e: e, c: c}
	virt, err := securejoin.SecureJoinVFS("/", p, vfs)
	if err != nil {
		return "", true, err
	}
	lp, err = vfs.real(virt)
	return lp, true, err
}

// mountVFS shows securejoin c's filesystem as its processes see it: the
// rootfs with the mounts over it.
type mountVFS struct {
	e *Engine
	c *container
}

func (v *mountVFS) Lstat(name string) (fs.FileInfo, error) {
	p, err := v.real(name)
	if err != nil {
		return nil, err
	}
	return os.Lstat(p)
}

func (v *mountVFS) Readlink(name string) (string, error) {
	p, err := v.real(name)
	if err != nil {
		return "", err
	}
	return os.Readlink(p)
}

// real maps a symlink-free container path to the lab path holding it.
func (v *mountVFS) real(virt string) (string, error) {
	virt = path.Clean("/" + virt)
	var best *mountPoint
	for _, m := range v.c.vols.mounts {
		if (virt == m.target || strings.HasPrefix(virt, m.target+"/")) && (best == nil || len(m.target) > len(best.target)) {
			best = m
		}
	}
	if best == nil {
		return filepath.Join(v.c.merged, virt), nil
	}
	root := best.root
	if !best.RW {
		view, err := v.e.vol.readOnlyView(best)
		if err != nil {
			return "", fmt.Errorf("mount %s: %w", best.Destination, err)
		}
		root = view
	}
	return root + strings.TrimPrefix(virt, best.target), nil
}

// shortName shortens an anonymous volume's 64-hex name for messages.
func shortName(name string) string {
	if len(name) == 64 {
		return name[:12]
	}
	return name
}

func volumeCreateEvent(v *volume.Volume) event.Event {
	docker := "docker volume create " + v.Name
	if v.Anonymous {
		docker = "docker volume create  # anonymous: " + v.Name
	}
	return event.Event{Op: "volume create", Subject: v.Name, Docker: docker, Linux: []string{"mkdir -p " + v.Mountpoint}}
}

func volumeRmEvent(name, dir string, force bool) event.Event {
	docker := "docker volume rm " + name
	if force {
		docker = "docker volume rm -f " + name
	}
	return event.Event{Op: "volume rm", Subject: name, Docker: docker, Linux: []string{"rm -rf " + dir}}
}

// readOnlyView returns the lab path of a read-only view of m's root: a
// detached clone of the mount tree holding it (open_tree), marked read-only
// (mount_setattr) and reached through its descriptor. It is in no mount
// table, so nothing is left behind if the lab dies. A file is viewed through
// its directory, so that the path names the file itself rather than a /proc
// magic link.
func (s *volState) readOnlyView(m *mountPoint) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dir, name := m.root, "."
	if fi, err := os.Stat(m.root); err != nil {
		return "", err
	} else if !fi.IsDir() {
		dir, name = filepath.Dir(m.root), filepath.Base(m.root)
	}
	if m.roView == nil {
		fd, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
		if err != nil {
			return "", fmt.Errorf("open_tree %s: %w", dir, err)
		}
		attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
			unix.Close(fd)
			return "", fmt.Errorf("mount_setattr %s: %w", dir, err)
		}
		m.roView = os.NewFile(uintptr(fd), dir)
	}
	return fmt.Sprintf("/proc/self/fd/%d/%s", m.roView.Fd(), name), nil
}
