package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"vscript/engine/build"
	"vscript/engine/errdefs"
	"vscript/engine/event"
	"vscript/engine/image"
	"vscript/engine/runtime"
)

// buildBackend is what a Dockerfile build (engine/build) runs on: the image
// store for images and commits, and the runtime for RUN steps. Each step
// works on a mount of its own in the lab's scratch directory: an overlay of
// the parent image's layers under a fresh upper directory, which becomes the
// step's layer.
//
// A RUN step's container has no network (only lo), as `docker build
// --network none`: Docker's default gives RUN the default bridge, but here a
// step's result is cached across runs and labs, so it must not depend on
// what one lab's network holds. Its hostname is the build container's id,
// its /etc/hosts names localhost only, as Docker's build containers.
type buildBackend struct {
	e *Engine
}

var _ build.Backend = (*buildBackend)(nil)

func (b *buildBackend) Image(_ context.Context, ref string) (build.Image, error) {
	img, err := b.e.images.Get(ref)
	if err != nil {
		return build.Image{}, err
	}
	return build.Image{ID: img.ID, Config: img.Config}, nil
}

// buildMount is a writable root for one step: dir/merged is the overlay of
// the image's layers under dir/upper.
type buildMount struct {
	dir, merged, upper, work string
	lowers                   []string // the parent's layer directories, topmost first
	volumes                  []string // the parent's VOLUMEs
	// made lists what a RUN's container needed that the image lacks
	// (mountpoints, volume directories): no change of the step's, so
	// Commit takes them out again where they are still empty.
	made    []string
	release func() // lets the image's layers go
	once    sync.Once
}

func (m *buildMount) Root() string { return m.merged }

func (m *buildMount) Release() error {
	var err error
	m.once.Do(func() {
		if uerr := unix.Unmount(m.merged, unix.MNT_DETACH); uerr != nil && !errors.Is(uerr, unix.EINVAL) {
			err = fmt.Errorf("umount %s: %w", m.merged, uerr)
		}
		if m.release != nil {
			m.release()
		}
		if rerr := os.RemoveAll(m.dir); err == nil {
			err = rerr
		}
	})
	return err
}

func (b *buildBackend) Mount(_ context.Context, imageID string) (_ build.Mount, err error) {
	start := time.Now()
	builds := filepath.Join(b.e.lab.Scratch, "builds")
	if err := os.MkdirAll(builds, 0o700); err != nil {
		return nil, fmt.Errorf("build mount: %w", err)
	}
	dir, err := os.MkdirTemp(builds, "step-")
	if err != nil {
		return nil, fmt.Errorf("build mount: %w", err)
	}
	m := &buildMount{dir: dir, merged: filepath.Join(dir, "merged")}
	defer func() {
		if err != nil {
			m.Release()
		}
	}()
	var chain []v1.Hash
	if imageID != "" { // "" is scratch
		img, err := b.e.images.Get(imageID)
		if err != nil {
			return nil, err
		}
		if m.release, err = b.e.images.Hold(img); err != nil {
			return nil, err
		}
		chain, m.lowers = img.Chain(), b.e.images.LowerDirs(img)
		for v := range img.Config.Volumes {
			m.volumes = append(m.volumes, v)
		}
		slices.Sort(m.volumes)
	}
	snap, err := b.e.images.Layers().Prepare(dir, chain)
	if err != nil {
		return nil, err
	}
	m.upper, m.work = snap.Upper, snap.Work
	lowers := m.lowers
	if len(lowers) == 0 {
		// overlayfs needs a lower directory even for an empty root.
		empty := filepath.Join(dir, "empty")
		if err := os.Mkdir(empty, 0o755); err != nil {
			return nil, fmt.Errorf("build mount: %w", err)
		}
		lowers = []string{empty}
	}
	if err := os.Mkdir(m.merged, 0o755); err != nil {
		return nil, fmt.Errorf("build mount: %w", err)
	}
	if err := mountOverlay(lowers, m.upper, m.work, m.merged); err != nil {
		return nil, fmt.Errorf("build mount: %w", err)
	}
	b.e.emit(event.Event{Op: "build mount", Subject: filepath.Base(dir), Linux: []string{
		"mkdir -p " + m.upper + " " + m.work + " " + m.merged,
		"mount -t overlay overlay -o " + overlayData(lowers, m.upper, m.work) + " " + m.merged,
	}}, start)
	return m, nil
}

// buildHosts is the build container's /etc/hosts.
const buildHosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"

// runMountpoints are the paths the runtime mounts over in every container.
// Where the image lacks one, the runtime creates it in the upper directory;
// Docker keeps such mountpoints in an "init layer" that is never committed;
// Commit takes them out of the step's layer again.
var runMountpoints = []string{"/proc", "/dev", "/sys", "/etc/hosts", "/etc/hostname"}

func (b *buildBackend) Run(ctx context.Context, m build.Mount, spec build.RunSpec, out io.Writer) (int, error) {
	start := time.Now()
	bm, ok := m.(*buildMount)
	if !ok {
		return 0, fmt.Errorf("build run: foreign mount %T: %w", m, errdefs.ErrInvalid)
	}
	// A VOLUME is a mountpoint in Docker's build container too: a RUN can
	// write there (and what it writes is discarded, see Commit).
	for _, p := range missingPaths(bm.merged, append(slices.Clone(runMountpoints), bm.volumes...)) {
		if !slices.Contains(bm.made, p) {
			bm.made = append(bm.made, p)
		}
	}
	sortDeepestFirst(bm.made)
	for _, v := range bm.volumes {
		if err := mkdirInRoot(bm.merged, v); err != nil {
			return 0, fmt.Errorf("build run: volume %s: %w", v, err)
		}
	}

	host := b.e.NewID("build")[:12]
	w := &lockedWriter{w: out}
	rs := &runtime.Spec{
		// Named like a container's (cgroups are the machine's, not the
		// lab's): unique to this run.
		ID:       b.e.runID + "-build-" + host,
		Hostname: host,
		Rootfs:   runtime.Rootfs{Merged: bm.merged, Upper: bm.upper, Work: bm.work},
		Args:     spec.Args,
		Env:      spec.Env,
		Cwd:      firstNonEmpty(spec.WorkingDir, "/"),
		User:     spec.User,
		Etc: map[string][]byte{
			"/etc/hosts":    []byte(buildHosts),
			"/etc/hostname": []byte(host + "\n"),
		},
		Stdout: w,
		Stderr: w,
	}
	rc, err := runtime.Create(rs)
	if err != nil {
		return commandFailed(w, err)
	}
	defer rc.Destroy()
	if err := rc.Start(); err != nil {
		return commandFailed(w, err)
	}
	done := make(chan runtime.ExitStatus, 1)
	go func() {
		st, _ := rc.Wait()
		done <- st
	}()
	select {
	case st := <-done:
		// Set up as a container's root is (see container start), but
		// with no network: the step's result must not depend on the lab's.
		b.e.emit(event.Event{Op: "build run", Subject: "build-" + host, Linux: []string{
			"unshare --pid --mount --uts --ipc --net --fork chroot " + bm.merged + " " + shellQuote(spec.Args) +
				"  # as user " + firstNonEmpty(spec.User, "root") + ", in " + rs.Cwd,
		}}, start)
		return st.Code, nil
	case <-ctx.Done():
		rc.Signal(unix.SIGKILL)
		<-done
		return 0, ctx.Err()
	}
}

// commandFailed turns a command that could not be started (not found, not
// executable) into its exit code and message, as a shell would report it;
// other errors stay errors.
func commandFailed(w io.Writer, err error) (int, error) {
	var ce *runtime.CommandError
	if errors.As(err, &ce) {
		fmt.Fprintln(w, ce.Msg)
		return ce.Code, nil
	}
	return 0, err
}

// lockedWriter serializes writes: stdout and stderr of a RUN share it.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// missingPaths lists, deepest first, the components of paths that root
// lacks: for "/etc/hosts" in a root without /etc, both "/etc/hosts" and
// "/etc".
func missingPaths(root string, paths []string) []string {
	var out []string
	for _, p := range paths {
		var chain []string
		for q := p; q != "/"; q = filepath.Dir(q) {
			if _, err := os.Lstat(filepath.Join(root, q)); err == nil {
				break
			}
			chain = append(chain, q)
		}
		for _, q := range chain {
			if !slices.Contains(out, q) {
				out = append(out, q)
			}
		}
	}
	sortDeepestFirst(out)
	return out
}

func sortDeepestFirst(paths []string) {
	slices.SortStableFunc(paths, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
}

// mkdirInRoot makes the directory p (and its parents) inside root,
// resolving symlinks on the way inside root.
func mkdirInRoot(root, p string) error {
	full, err := securejoin.SecureJoin(root, p)
	if err != nil {
		return err
	}
	return os.MkdirAll(full, 0o755)
}

// removeIfEmpty removes each path (deepest first) from upper if it is an
// empty file or directory there: what the runtime made as a mountpoint.
func removeIfEmpty(upper string, paths []string) {
	for _, p := range paths {
		full := filepath.Join(upper, p)
		fi, err := os.Lstat(full)
		if err != nil {
			continue
		}
		switch {
		case fi.Mode().IsRegular() && fi.Size() == 0:
			os.Remove(full)
		case fi.IsDir():
			os.Remove(full) // fails, as it should, when not empty
		}
	}
}

func (b *buildBackend) Commit(_ context.Context, req build.CommitRequest) (string, error) {
	var parent *image.Image
	if req.Parent != "" {
		var err error
		if parent, err = b.e.images.Get(req.Parent); err != nil {
			return "", err
		}
	}
	entry := req.History
	entry.Created = v1.Time{Time: time.Now().UTC()}
	if req.Mount == nil {
		return b.commitConfig(parent, req.Config, entry)
	}
	bm, ok := req.Mount.(*buildMount)
	if !ok {
		return "", fmt.Errorf("build commit: foreign mount %T: %w", req.Mount, errdefs.ErrInvalid)
	}
	for _, p := range req.Discard {
		if err := discard(bm, p); err != nil {
			return "", fmt.Errorf("build commit: volume %s: %w", p, err)
		}
	}
	removeIfEmpty(bm.upper, bm.made)
	empty, err := dirEmpty(bm.upper)
	if err != nil {
		return "", fmt.Errorf("build commit: %w", err)
	}
	if empty {
		// Docker marks a step that changed nothing an empty layer.
		entry.EmptyLayer = true
		return b.commitConfig(parent, req.Config, entry)
	}
	start := time.Now()
	img, err := b.e.images.CommitDir(parent, bm.upper, req.Config, entry)
	if err != nil {
		return "", err
	}
	b.e.emit(event.Event{Op: "build commit", Subject: shortImageID(img.ID), Linux: []string{
		"tar -C " + bm.upper + " -c . | sha256sum  # the step's layer",
	}}, start)
	return img.ID, nil
}

// commitConfig makes an image with parent's layers and a new config.
func (b *buildBackend) commitConfig(parent *image.Image, config v1.Config, entry v1.History) (string, error) {
	var layers []image.Layer
	var history []v1.History
	if parent != nil {
		layers, history = parent.Layers, slices.Clone(parent.History)
	}
	img, err := b.e.images.Create(config, append(history, entry), layers...)
	if err != nil {
		return "", err
	}
	return img.ID, nil
}

// discard takes out of the step's upper directory every change at or below
// the image path p, so that p keeps its parent's content: the whole subtree,
// whiteouts and opaque markers included. Symlinks on the way resolve inside
// the mounted root, where the RUN's writes went.
func discard(m *buildMount, p string) error {
	full, err := securejoin.SecureJoin(m.merged, p)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(m.merged, full)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("not a path below the root: %w", errdefs.ErrInvalid)
	}
	// Writing below p copied its parent directories up. Those that are
	// still untouched copies of the parent's are no change either, and go
	// too; whether they are is seen before removing anything below them
	// changes their mtime.
	var parents []string
	for dir := filepath.Dir(rel); dir != "."; dir = filepath.Dir(dir) {
		if !m.unchangedCopy(dir) {
			break
		}
		parents = append(parents, dir)
	}
	if err := os.RemoveAll(filepath.Join(m.upper, rel)); err != nil {
		return err
	}
	for _, dir := range parents {
		if os.Remove(filepath.Join(m.upper, dir)) != nil {
			break // not empty: something else changed below it
		}
	}
	return nil
}

// unchangedCopy reports whether upper/rel is a directory that overlayfs
// copied up from the parent without change: not opaque, and with the mode,
// owner and mtime of the topmost lower directory of that name.
func (m *buildMount) unchangedCopy(rel string) bool {
	up := filepath.Join(m.upper, rel)
	var us unix.Stat_t
	if unix.Lstat(up, &us) != nil || us.Mode&unix.S_IFMT != unix.S_IFDIR {
		return false
	}
	if v, err := lgetxattr(up, "trusted.overlay.opaque"); err == nil && v == "y" {
		return false
	}
	for _, l := range m.lowers {
		var ls unix.Stat_t
		if unix.Lstat(filepath.Join(l, rel), &ls) != nil {
			continue
		}
		return ls.Mode == us.Mode && ls.Uid == us.Uid && ls.Gid == us.Gid && ls.Mtim == us.Mtim
	}
	return false
}

func lgetxattr(p, name string) (string, error) {
	buf := make([]byte, 16)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func dirEmpty(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return false, err
}
