package image

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"vscript/engine/errdefs"
	"vscript/engine/store"
)

// LinkLen is the length of a layer's short link name under ROOT/layers/l/:
// the first LinkLen hex digits of its chain ID. Sixteen digits keep a lowerdir
// entry at 17 bytes, so about 200 layers fit in a one-page mount option
// string, against about 50 for full-path lowers; a collision of the first
// 64 bits of two chain IDs is detected at commit, never silently shared.
const LinkLen = 16

// Layers is the store of committed layers, each unpacked once under
// ROOT/layers/<chain ID hex>/ and shared by every image whose layer chain
// starts the same. It is a snapshotter in containerd's sense, adapted to
// overlayfs and to layers that never change once committed:
//
//   - Commit unpacks a layer tar on top of a parent chain (containerd's
//     Prepare + apply + Commit, in one atomic step);
//   - Prepare makes an active snapshot (upper and work directories wherever
//     the caller keeps container state) and returns its overlay Mount;
//   - View returns a read-only Mount of a chain;
//   - Remove deletes a committed layer that nobody holds.
//
// Layers that a mount is using must be held (Hold) for as long as the mount
// lives, so that a concurrent Remove in another run cannot delete them.
type Layers struct {
	st  *store.Store
	dir string
}

// NewLayers opens the layer store of st.
func NewLayers(st *store.Store) (*Layers, error) {
	l := &Layers{st: st, dir: st.Path("layers")}
	if err := os.MkdirAll(l.linkDir(), 0o700); err != nil {
		return nil, fmt.Errorf("layer store %s: %w", l.dir, err)
	}
	return l, nil
}

// ChainID is the OCI chain ID of a layer with the given diff ID on top of the
// chain parent (the zero Hash for a base layer): the identity of the stack of
// layers up to and including it.
func ChainID(parent, diffID v1.Hash) v1.Hash {
	if parent.Hex == "" {
		return diffID
	}
	sum := sha256.Sum256([]byte(parent.String() + " " + diffID.String()))
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// Path is the directory a committed layer is unpacked in.
func (l *Layers) Path(chain v1.Hash) string { return filepath.Join(l.dir, chain.Hex) }

func (l *Layers) linkDir() string { return filepath.Join(l.dir, "l") }

func linkName(chain v1.Hash) string { return chain.Hex[:LinkLen] }

// Exists reports whether the layer chain is committed.
func (l *Layers) Exists(chain v1.Hash) bool {
	fi, err := os.Stat(l.Path(chain))
	return err == nil && fi.IsDir()
}

// Commit makes the layer with diff ID diffID, on top of the committed chain
// parent, available unpacked, and returns its chain ID. open is called only
// when the layer is not there yet, and must give the layer tar (plain or
// gzip'd); content whose digest is not diffID is refused.
//
// The layer is unpacked in the store's tmp/ and renamed into place, so it is
// either absent or complete. When two runs commit the same layer at once,
// both succeed and one copy is discarded.
func (l *Layers) Commit(parent, diffID v1.Hash, open func() (io.ReadCloser, error)) (v1.Hash, error) {
	chain := ChainID(parent, diffID)
	if l.Exists(chain) {
		return chain, l.link(chain)
	}
	if err := l.unpackNew(chain, diffID, open); err != nil {
		return v1.Hash{}, fmt.Errorf("layer commit %s: %w", diffID, err)
	}
	return chain, l.link(chain)
}

func (l *Layers) unpackNew(chain, diffID v1.Hash, open func() (io.ReadCloser, error)) error {
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	tmp, err := l.st.TempDir("layer-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed into place
	// MkdirTemp's 0700 would hide the layer from a container's non-root
	// users; a "./" entry in the tar may still set other bits.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	got, err := unpack(rc, tmp)
	if err != nil {
		return err
	}
	if got != diffID {
		return fmt.Errorf("content has diff id %s: %w", got, errdefs.ErrInvalid)
	}
	err = os.Rename(tmp, l.Path(chain))
	if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
		return nil // committed meanwhile by another run
	}
	return err
}

// link makes the layer's short name. Both runs of a race create the same
// symlink, so an existing one pointing at our layer is fine.
func (l *Layers) link(chain v1.Hash) error {
	name := filepath.Join(l.linkDir(), linkName(chain))
	want := "../" + chain.Hex
	err := os.Symlink(want, name)
	if errors.Is(err, os.ErrExist) {
		got, rerr := os.Readlink(name)
		if rerr != nil {
			return fmt.Errorf("layer link %s: %w", chain, rerr)
		}
		if got != want {
			return fmt.Errorf("layer link %s: short name %s already names %s: %w",
				chain, linkName(chain), got, errdefs.ErrConflict)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("layer link %s: %w", chain, err)
	}
	return nil
}

// List returns the chain IDs of every committed layer.
func (l *Layers) List() ([]v1.Hash, error) {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("layer list: %w", err)
	}
	var chains []v1.Hash
	for _, e := range entries {
		if h, err := v1.NewHash("sha256:" + e.Name()); err == nil && e.IsDir() {
			chains = append(chains, h)
		}
	}
	return chains, nil
}

// Remove deletes a committed layer. A layer someone holds is refused with
// errdefs.ErrConflict. The directory is renamed into tmp/ before it is
// emptied, so a half-deleted layer is never visible under its name.
func (l *Layers) Remove(chain v1.Hash) error {
	p := l.Path(chain)
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("layer remove %s: %w", chain, errdefs.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("layer remove %s: %w", chain, err)
	}
	defer f.Close()
	// Keep the exclusive lock until the directory is gone, so that a Hold
	// waiting for it finds the layer missing rather than half deleted.
	if err := flock(f, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return fmt.Errorf("layer remove %s: in use: %w", chain, errdefs.ErrConflict)
	}
	link := filepath.Join(l.linkDir(), linkName(chain))
	if target, err := os.Readlink(link); err == nil && target == "../"+chain.Hex {
		if err := os.Remove(link); err != nil {
			return fmt.Errorf("layer remove %s: %w", chain, err)
		}
	}
	tmp, err := l.st.TempDir("rm-layer-")
	if err != nil {
		return fmt.Errorf("layer remove %s: %w", chain, err)
	}
	if err := os.Rename(p, filepath.Join(tmp, "layer")); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("layer remove %s: %w", chain, err)
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("layer remove %s: %w", chain, err)
	}
	return nil
}

// Hold takes a shared lock on each committed layer of chains, for as long as
// a mount uses them; Remove refuses a held layer. The locks are flock(2)s, so
// they go away with the process however it ends. release drops them.
// A layer that is not committed is errdefs.ErrNotFound.
func (l *Layers) Hold(chains []v1.Hash) (release func(), err error) {
	var held []*os.File
	release = func() {
		for _, f := range held {
			f.Close()
		}
	}
	for _, chain := range chains {
		f, err := l.hold(chain)
		if err != nil {
			release()
			return nil, err
		}
		held = append(held, f)
	}
	return release, nil
}

func (l *Layers) hold(chain v1.Hash) (*os.File, error) {
	p := l.Path(chain)
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("layer hold %s: %w", chain, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("layer hold %s: %w", chain, err)
	}
	if err := flock(f, unix.LOCK_SH); err != nil {
		f.Close()
		return nil, fmt.Errorf("layer hold %s: %w", chain, err)
	}
	// A Remove may have moved the directory away while we waited.
	var fst, pst unix.Stat_t
	if unix.Fstat(int(f.Fd()), &fst) != nil || unix.Stat(p, &pst) != nil || fst.Ino != pst.Ino || fst.Dev != pst.Dev {
		f.Close()
		return nil, fmt.Errorf("layer hold %s: %w", chain, errdefs.ErrNotFound)
	}
	if err := l.link(chain); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}

// Lowers returns what an overlay mount of chains (bottom layer first, as in
// an image) needs as lowerdir: a base directory and each layer's short name
// relative to it, topmost first as lowerdir lists them. See Mount.
func (l *Layers) Lowers(chains []v1.Hash) (base string, rel []string) {
	rel = make([]string, len(chains))
	for i, chain := range chains {
		rel[len(chains)-1-i] = linkName(chain)
	}
	return l.linkDir(), rel
}

// Mount is an overlay mount of committed layers.
//
// Lower holds short names relative to Base, not absolute paths: the kernel
// refuses mount options longer than a page, and a long layer chain of full
// paths passes that. The process that mounts must chdir(Base) first and
// pass Options() as the data of mount(2), as Docker's overlay2 driver does
// with its l/ directory; Upper and Work are absolute and unaffected.
type Mount struct {
	Base  string
	Lower []string // topmost first
	Upper string   // "" for a read-only view
	Work  string
}

// Options is the overlay mount data for m. A writable mount also turns off
// the features that would make the upper directory depend on the lower ones
// (redirect_dir, metacopy, index), so that Pack and Diff can read it alone.
// An overlay without an upper directory needs at least two lower ones; a
// read-only view of one layer is a bind mount of Base/Lower[0] instead.
func (m Mount) Options() string {
	opts := "lowerdir=" + strings.Join(m.Lower, ":")
	if m.Upper != "" {
		opts += ",upperdir=" + m.Upper + ",workdir=" + m.Work + ",index=off,redirect_dir=off,metacopy=off"
	}
	return opts
}

// Prepare makes an active snapshot of chains in dir: dir/upper for the
// writable layer and dir/work for overlayfs's work directory, both on dir's
// filesystem (the lab's tmpfs for a container). Commit a prepared snapshot
// by packing its upper directory (Store.CommitDir).
func (l *Layers) Prepare(dir string, chains []v1.Hash) (Mount, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return Mount{}, fmt.Errorf("snapshot prepare %s: %w", dir, err)
	}
	m := l.View(chains)
	m.Upper, m.Work = filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	for _, d := range []string{m.Upper, m.Work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return Mount{}, fmt.Errorf("snapshot prepare %s: %w", dir, err)
		}
	}
	return m, nil
}

// View is a read-only mount of chains.
func (l *Layers) View(chains []v1.Hash) Mount {
	base, rel := l.Lowers(chains)
	return Mount{Base: base, Lower: rel}
}
