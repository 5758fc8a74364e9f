package image

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"vscript/engine/errdefs"
	"vscript/engine/event"
	"vscript/engine/store"
)

// RefAnnotation holds an image's name in index.json, as OCI layouts do.
const RefAnnotation = "org.opencontainers.image.ref.name"

// PruneGrace is how old unreferenced content must be before Prune deletes
// it: younger content may belong to an image another run is creating.
const PruneGrace = 10 * time.Minute

// Image is an image in the store. Values returned by the store are copies:
// changing one changes nothing stored.
type Image struct {
	ID      string  // "sha256:<hex>", the digest of the config
	Digest  v1.Hash // the manifest's digest
	Ref     string  // "name:tag" it was found or listed by; the first of its names when found by id; "" if it has none
	Created time.Time
	Config  v1.Config
	Layers  []Layer // bottom first
	History []v1.History
}

// Layer is one layer of an image.
type Layer struct {
	Digest    v1.Hash // the blob as stored: plain or gzip'd tar
	DiffID    v1.Hash // the uncompressed tar
	ChainID   v1.Hash // this layer and all below it; names its directory under ROOT/layers
	Size      int64   // of the blob
	MediaType types.MediaType
}

// Chain returns the chain IDs of img's layers, bottom first.
func (img *Image) Chain() []v1.Hash {
	chain := make([]v1.Hash, len(img.Layers))
	for i, l := range img.Layers {
		chain[i] = l.ChainID
	}
	return chain
}

func (img *Image) clone() *Image {
	c := *img
	c.Config = *img.Config.DeepCopy()
	c.Layers = slices.Clone(img.Layers)
	c.History = slices.Clone(img.History)
	return &c
}

// Store is the image store: an OCI image layout in ROOT/content (blobs by
// digest, index.json naming the images) over the layer store in
// ROOT/layers. It is safe for concurrent use, also by several runs sharing
// a state directory.
type Store struct {
	// Events receives what the store does on its own initiative: making a
	// built-in image. Nil drops them.
	Events event.Sink
	// Busybox is the static busybox the built-in images are made from;
	// "" means DefaultBusybox.
	Busybox string

	st     *store.Store
	layers *Layers

	// wmu serializes this process's writers of index.json: store.Lock is
	// a flock, which keeps other processes out but not other goroutines.
	wmu sync.Mutex

	mu        sync.Mutex
	idx       *snapshot
	idxKey    indexKey
	manifests map[v1.Hash]*Image // parsed manifests; content never changes

	builtinMu sync.Mutex
}

// snapshot is index.json, parsed. It is rebuilt whenever the file changes,
// which a stat tells cheaply: writers always replace it by rename.
type snapshot struct {
	byRef  map[string]*Image
	images []*Image // each image once, Ref its first name
	rows   []*Image // List's answer
}

type indexKey struct {
	ino, size uint64
	mtime     unix.Timespec
}

// New opens the image store in st, creating the OCI layout if needed.
func New(st *store.Store) (*Store, error) {
	layers, err := NewLayers(st)
	if err != nil {
		return nil, err
	}
	s := &Store{st: st, layers: layers, manifests: map[v1.Hash]*Image{}}
	if err := os.MkdirAll(st.Path("content", "blobs", "sha256"), 0o700); err != nil {
		return nil, fmt.Errorf("image store %s: %w", st.Root, err)
	}
	if _, err := os.Stat(s.indexPath()); err == nil {
		return s, nil
	}
	err = s.locked(func() error {
		layout := s.st.Path("content", "oci-layout")
		if _, err := os.Stat(layout); err != nil {
			if err := s.st.WriteFile(layout, []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
				return err
			}
		}
		if _, err := os.Stat(s.indexPath()); err == nil {
			return nil
		}
		return s.writeIndex(&v1.IndexManifest{})
	})
	if err != nil {
		return nil, fmt.Errorf("image store %s: %w", st.Root, err)
	}
	return s, nil
}

// Layers returns the layer store under the image store.
func (s *Store) Layers() *Layers { return s.layers }

func (s *Store) indexPath() string { return s.st.Path("content", "index.json") }

// BlobPath is where the blob with digest d is stored.
func (s *Store) BlobPath(d v1.Hash) string {
	return s.st.Path("content", "blobs", d.Algorithm, d.Hex)
}

// Get finds an image by name[:tag] (tag latest by default), by full id, or
// by a unique prefix of at least 4 hex digits of its id, with or without
// "sha256:". The built-in images are made on first use. An unknown image is
// `image REF: not found`, wrapping errdefs.ErrNotFound.
func (s *Store) Get(ref string) (*Image, error) {
	img, _, err := s.lookup(ref)
	if errors.Is(err, errdefs.ErrNotFound) {
		if name, ok := builtinName(ref); ok {
			return s.EnsureBuiltin(name)
		}
	}
	return img, err
}

// lookup is Get without the built-in images. It also returns the name ref
// matched, or "" when ref matched an id.
func (s *Store) lookup(ref string) (*Image, string, error) {
	snap, err := s.current()
	if err != nil {
		return nil, "", err
	}
	prefix, isID := strings.CutPrefix(ref, "sha256:")
	if !isID {
		name, err := ParseRef(ref)
		if err == nil {
			if img := snap.byRef[name]; img != nil {
				return img.clone(), name, nil
			}
		} else if !isHex(ref) {
			return nil, "", err
		}
	}
	if len(prefix) >= 4 && isHex(prefix) {
		var found *Image
		for _, img := range snap.images {
			if strings.HasPrefix(img.ID, "sha256:"+prefix) {
				if found != nil && found.ID != img.ID {
					return nil, "", fmt.Errorf("image %s: id prefix matches several images: %w", ref, errdefs.ErrInvalid)
				}
				found = img
			}
		}
		if found != nil {
			return found.clone(), "", nil
		}
	}
	return nil, "", fmt.Errorf("image %s: %w", ref, errdefs.ErrNotFound)
}

func isHex(s string) bool {
	return s != "" && strings.Trim(s, "0123456789abcdef") == ""
}

// List returns one entry per name, like `docker images`, then untagged
// images (Ref ""), in a stable order.
func (s *Store) List() ([]*Image, error) {
	snap, err := s.current()
	if err != nil {
		return nil, err
	}
	out := make([]*Image, len(snap.rows))
	for i, img := range snap.rows {
		out[i] = img.clone()
	}
	return out, nil
}

// current returns the parsed index.json, re-reading it only if it changed.
func (s *Store) current() (*snapshot, error) {
	var st unix.Stat_t
	if err := unix.Stat(s.indexPath(), &st); err != nil {
		return nil, fmt.Errorf("image store: %w", &os.PathError{Op: "stat", Path: s.indexPath(), Err: err})
	}
	key := indexKey{st.Ino, uint64(st.Size), st.Mtim}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idx != nil && key == s.idxKey {
		return s.idx, nil
	}
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	// If index.json was replaced after the stat, this caches newer content
	// under the older key; the next stat sees the newer key and re-reads.
	s.idx, s.idxKey = s.build(idx), key
	return s.idx, nil
}

func (s *Store) build(idx *v1.IndexManifest) *snapshot {
	snap := &snapshot{byRef: map[string]*Image{}}
	names := map[v1.Hash][]string{}
	var order []v1.Hash
	for _, d := range idx.Manifests {
		// An image someone else's tool left half there hides only itself.
		if _, err := s.manifestLocked(d); err != nil {
			continue
		}
		if _, seen := names[d.Digest]; !seen {
			order = append(order, d.Digest)
			names[d.Digest] = nil
		}
		if ref := descRef(d); ref != "" {
			names[d.Digest] = append(names[d.Digest], ref)
		}
	}
	for _, dg := range order {
		img := s.manifests[dg]
		ns := names[dg]
		slices.Sort(ns)
		ns = slices.Compact(ns)
		first := *img
		if len(ns) > 0 {
			first.Ref = ns[0]
		}
		snap.images = append(snap.images, &first)
		if len(ns) == 0 {
			snap.rows = append(snap.rows, &first)
		}
		for _, n := range ns {
			row := *img
			row.Ref = n
			snap.byRef[n] = &row
			snap.rows = append(snap.rows, &row)
		}
	}
	sort.SliceStable(snap.rows, func(i, j int) bool {
		a, b := snap.rows[i], snap.rows[j]
		if (a.Ref == "") != (b.Ref == "") {
			return b.Ref == ""
		}
		if a.Ref != b.Ref {
			return a.Ref < b.Ref
		}
		return a.ID < b.ID
	})
	return snap
}

// descRef returns the normalized name in an index entry, or "".
func descRef(d v1.Descriptor) string {
	ref := d.Annotations[RefAnnotation]
	if n, err := ParseRef(ref); err == nil {
		return n
	}
	return ref
}

func (s *Store) readIndex() (*v1.IndexManifest, error) {
	data, err := os.ReadFile(s.indexPath())
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("image store: %s: %w", s.indexPath(), err)
	}
	return &idx, nil
}

// writeIndex replaces index.json; the caller holds the lock.
func (s *Store) writeIndex(idx *v1.IndexManifest) error {
	idx.SchemaVersion = 2
	idx.MediaType = types.OCIImageIndex
	if idx.Manifests == nil {
		idx.Manifests = []v1.Descriptor{}
	}
	data, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	return s.st.WriteFile(s.indexPath(), append(data, '\n'), 0o644)
}

// locked runs fn holding both this process's writer mutex and the state
// directory's lock.
func (s *Store) locked(fn func() error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.st.WithLock(fn)
}

// manifestLocked parses the image an index entry names, once per digest.
// The caller holds s.mu.
func (s *Store) manifestLocked(d v1.Descriptor) (*Image, error) {
	if img, ok := s.manifests[d.Digest]; ok {
		return img, nil
	}
	if d.MediaType != "" && !d.MediaType.IsImage() {
		return nil, fmt.Errorf("image %s: not an image manifest (%s): %w", d.Digest, d.MediaType, errdefs.ErrInvalid)
	}
	data, err := os.ReadFile(s.BlobPath(d.Digest))
	if err != nil {
		return nil, fmt.Errorf("image %s: manifest: %w", d.Digest, err)
	}
	var man v1.Manifest
	if err := json.Unmarshal(data, &man); err != nil {
		return nil, fmt.Errorf("image %s: manifest: %w", d.Digest, err)
	}
	data, err = os.ReadFile(s.BlobPath(man.Config.Digest))
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", d.Digest, err)
	}
	var cf v1.ConfigFile
	if err := json.Unmarshal(data, &cf); err != nil {
		return nil, fmt.Errorf("image %s: config: %w", d.Digest, err)
	}
	img, err := newImage(d.Digest, &man, &cf)
	if err != nil {
		return nil, err
	}
	s.manifests[d.Digest] = img
	return img, nil
}

func newImage(digest v1.Hash, man *v1.Manifest, cf *v1.ConfigFile) (*Image, error) {
	if len(man.Layers) != len(cf.RootFS.DiffIDs) {
		return nil, fmt.Errorf("image %s: manifest has %d layers, config %d diff ids: %w",
			digest, len(man.Layers), len(cf.RootFS.DiffIDs), errdefs.ErrInvalid)
	}
	img := &Image{
		ID:      man.Config.Digest.String(),
		Digest:  digest,
		Created: cf.Created.Time,
		Config:  cf.Config,
		History: cf.History,
	}
	var chain v1.Hash
	for i, d := range man.Layers {
		chain = ChainID(chain, cf.RootFS.DiffIDs[i])
		img.Layers = append(img.Layers, Layer{
			Digest:    d.Digest,
			DiffID:    cf.RootFS.DiffIDs[i],
			ChainID:   chain,
			Size:      d.Size,
			MediaType: d.MediaType,
		})
	}
	return img, nil
}

// Tag names img ref, moving the name if another image had it. An image left
// without names stays, untagged, as Docker's "<none>" images do.
func (s *Store) Tag(img *Image, ref string) error {
	name, err := ParseRef(ref)
	if err != nil {
		return err
	}
	err = s.locked(func() error {
		idx, err := s.readIndex()
		if err != nil {
			return err
		}
		var mine *v1.Descriptor
		var kept []v1.Descriptor
		var displaced []v1.Descriptor
		for _, d := range idx.Manifests {
			switch {
			case d.Digest == img.Digest && descRef(d) == name:
				return nil // already so
			case d.Digest == img.Digest && descRef(d) == "":
				mine = &d // becomes the named entry
			case descRef(d) == name:
				displaced = append(displaced, d)
			default:
				if d.Digest == img.Digest && mine == nil {
					mine = &d
				}
				kept = append(kept, d)
			}
		}
		if mine == nil {
			return fmt.Errorf("image %s: %w", img.ID, errdefs.ErrNotFound)
		}
		named := *mine
		named.Annotations = map[string]string{RefAnnotation: name}
		kept = append(kept, named)
		for _, d := range displaced {
			if !slices.ContainsFunc(kept, func(k v1.Descriptor) bool { return k.Digest == d.Digest }) {
				d.Annotations = nil
				kept = append(kept, d)
			}
		}
		idx.Manifests = kept
		return s.writeIndex(idx)
	})
	if err != nil {
		return fmt.Errorf("image tag %s: %w", name, err)
	}
	return nil
}

// Remove removes an image by name or id, as `docker rmi`: by name it drops
// that name, and the image too once it has no other; by id it removes the
// image unless several names refer to it (errdefs.ErrConflict). Blobs and
// layers of a removed image that no other image uses are deleted, except
// layers that a running container holds (see Layers.Hold): Prune collects
// those later. Callers check that no container of theirs uses the image.
func (s *Store) Remove(ref string) error {
	img, name, err := s.lookup(ref)
	if err != nil {
		return err
	}
	return s.locked(func() error {
		idx, err := s.readIndex()
		if err != nil {
			return err
		}
		var names []string
		for _, d := range idx.Manifests {
			if d.Digest == img.Digest && descRef(d) != "" {
				names = append(names, descRef(d))
			}
		}
		if name != "" && !slices.Contains(names, name) {
			return fmt.Errorf("image %s: %w", ref, errdefs.ErrNotFound) // moved meanwhile
		}
		if name == "" && len(names) > 1 {
			return fmt.Errorf("image %s: referenced by several names (%s); remove them by name: %w",
				ref, strings.Join(names, ", "), errdefs.ErrConflict)
		}
		deleteImage := name == "" || len(names) <= 1
		idx.Manifests = slices.DeleteFunc(idx.Manifests, func(d v1.Descriptor) bool {
			return d.Digest == img.Digest && (deleteImage || descRef(d) == name)
		})
		if err := s.writeIndex(idx); err != nil {
			return fmt.Errorf("image %s: %w", ref, err)
		}
		if !deleteImage {
			return nil
		}
		return s.collect(idx, []*Image{img}, 0)
	})
}

// Prune deletes blobs and layers that no image in the index uses and that
// are at least minAge old (PruneGrace unless a test knows better), skipping
// held layers.
func (s *Store) Prune(minAge time.Duration) error {
	return s.locked(func() error {
		idx, err := s.readIndex()
		if err != nil {
			return err
		}
		return s.collect(idx, nil, minAge)
	})
}

// collect deletes content unused by idx: that of the given removed images,
// or, with none given, everything unused older than minAge. The caller holds
// the lock, so no image can be added meanwhile; Create checks, under the same
// lock, that what it references still exists.
func (s *Store) collect(idx *v1.IndexManifest, removed []*Image, minAge time.Duration) error {
	usedBlobs := map[v1.Hash]bool{}
	usedChains := map[v1.Hash]bool{}
	s.mu.Lock()
	for _, d := range idx.Manifests {
		img, err := s.manifestLocked(d)
		if err != nil {
			// What an unreadable image uses is unknown: delete nothing.
			s.mu.Unlock()
			return nil
		}
		usedBlobs[img.Digest] = true
		usedBlobs[configDigest(img)] = true
		for _, l := range img.Layers {
			usedBlobs[l.Digest] = true
			usedChains[l.ChainID] = true
		}
	}
	s.mu.Unlock()

	var blobs, chains []v1.Hash
	if removed != nil {
		for _, img := range removed {
			blobs = append(blobs, img.Digest, configDigest(img))
			for _, l := range img.Layers {
				blobs = append(blobs, l.Digest)
				chains = append(chains, l.ChainID)
			}
		}
	} else {
		entries, err := os.ReadDir(s.st.Path("content", "blobs", "sha256"))
		if err != nil {
			return fmt.Errorf("image prune: %w", err)
		}
		for _, e := range entries {
			if h, err := v1.NewHash("sha256:" + e.Name()); err == nil && oldEnough(s.BlobPath(h), minAge) {
				blobs = append(blobs, h)
			}
		}
		all, err := s.layers.List()
		if err != nil {
			return err
		}
		for _, c := range all {
			if oldEnough(s.layers.Path(c), minAge) {
				chains = append(chains, c)
			}
		}
	}
	for _, b := range blobs {
		if !usedBlobs[b] {
			if err := os.Remove(s.BlobPath(b)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("image gc: %w", err)
			}
		}
	}
	for _, c := range chains {
		if usedChains[c] {
			continue
		}
		err := s.layers.Remove(c)
		if err != nil && !errors.Is(err, errdefs.ErrConflict) && !errors.Is(err, errdefs.ErrNotFound) {
			return fmt.Errorf("image gc: %w", err)
		}
	}
	return nil
}

func configDigest(img *Image) v1.Hash {
	h, _ := v1.NewHash(img.ID)
	return h
}

// oldEnough compares ctime, which no tar entry can set: it is when the file
// or layer arrived here.
func oldEnough(p string, minAge time.Duration) bool {
	var st unix.Stat_t
	if unix.Lstat(p, &st) != nil {
		return false
	}
	return time.Since(time.Unix(st.Ctim.Unix())) >= minAge
}

// writeBlob stores r's content under its digest. The file appears complete
// or not at all.
func (s *Store) writeBlob(r io.Reader) (v1.Hash, int64, error) {
	f, err := os.CreateTemp(s.st.Path("tmp"), "blob-")
	if err != nil {
		return v1.Hash{}, 0, err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // fails harmlessly once renamed
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	err = store.Finish(f, 0o644, err)
	if err != nil {
		return v1.Hash{}, 0, err
	}
	d := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	if _, err := os.Stat(s.BlobPath(d)); err == nil {
		return d, n, nil
	}
	return d, n, os.Rename(tmp, s.BlobPath(d))
}

// WriteLayer stores a layer tar, plain or gzip'd, as a blob kept byte for
// byte, and returns it for Create. Importers use it; CommitDir packs and
// writes in one go.
func (s *Store) WriteLayer(r io.Reader) (Layer, error) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(2)
	gz := len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b
	d, n, err := s.writeBlob(br)
	if err != nil {
		return Layer{}, fmt.Errorf("layer write: %w", err)
	}
	l := Layer{Digest: d, DiffID: d, Size: n, MediaType: types.OCIUncompressedLayer}
	if gz {
		l.MediaType = types.OCILayer
		if l.DiffID, err = s.gunzipDigest(d); err != nil {
			return Layer{}, fmt.Errorf("layer write %s: %w", d, err)
		}
	}
	return l, nil
}

func (s *Store) gunzipDigest(d v1.Hash) (v1.Hash, error) {
	f, err := os.Open(s.BlobPath(d))
	if err != nil {
		return v1.Hash{}, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("%w: %v", errdefs.ErrInvalid, err)
	}
	h, _, err := v1.SHA256(zr)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("%w: %v", errdefs.ErrInvalid, err)
	}
	return h, nil
}

// Create makes an untagged image of layers (bottom first, each already
// stored: from WriteLayer or another image) with the given runtime config
// and history; Tag names it. Its layers are unpacked if they are not yet.
//
// The config records no time but the history's: Created is the latest
// history entry's, or the Unix epoch, so the same content always gives the
// same image id.
func (s *Store) Create(config v1.Config, history []v1.History, layers ...Layer) (*Image, error) {
	layers = slices.Clone(layers)
	var parent v1.Hash
	for i := range layers {
		l := &layers[i]
		chain, err := s.layers.Commit(parent, l.DiffID, func() (io.ReadCloser, error) {
			return os.Open(s.BlobPath(l.Digest))
		})
		if err != nil {
			return nil, fmt.Errorf("image create: %w", err)
		}
		l.ChainID, parent = chain, chain
	}

	epoch := v1.Time{Time: time.Unix(0, 0).UTC()}
	cf := v1.ConfigFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Created:      epoch,
		Config:       *config.DeepCopy(), // the parsed image is cached: keep no caller's slices
		RootFS:       v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{}},
	}
	for _, h := range history {
		if h.Created.IsZero() {
			h.Created = epoch
		} else if h.Created.After(cf.Created.Time) {
			cf.Created = h.Created
		}
		cf.History = append(cf.History, h)
	}
	man := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Layers: []v1.Descriptor{}}
	for _, l := range layers {
		cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, l.DiffID)
		man.Layers = append(man.Layers, v1.Descriptor{MediaType: l.MediaType, Size: l.Size, Digest: l.Digest})
	}
	cfData, err := json.Marshal(cf)
	if err != nil {
		return nil, fmt.Errorf("image create: %w", err)
	}
	cfDigest, cfSize, err := s.writeBlob(bytes.NewReader(cfData))
	if err != nil {
		return nil, fmt.Errorf("image create: %w", err)
	}
	man.Config = v1.Descriptor{MediaType: types.OCIConfigJSON, Size: cfSize, Digest: cfDigest}
	manData, err := json.Marshal(man)
	if err != nil {
		return nil, fmt.Errorf("image create %s: %w", cfDigest, err)
	}
	manDigest, manSize, err := s.writeBlob(bytes.NewReader(manData))
	if err != nil {
		return nil, fmt.Errorf("image create %s: %w", cfDigest, err)
	}
	img, err := newImage(manDigest, &man, &cf)
	if err != nil {
		return nil, err
	}

	err = s.locked(func() error {
		idx, err := s.readIndex()
		if err != nil {
			return err
		}
		if slices.ContainsFunc(idx.Manifests, func(d v1.Descriptor) bool { return d.Digest == manDigest }) {
			return nil
		}
		// A Remove in another run may have deleted shared content between
		// our writing it and now; it cannot any more while we hold the lock.
		for _, b := range append([]v1.Hash{manDigest, cfDigest}, digests(layers)...) {
			if _, err := os.Stat(s.BlobPath(b)); err != nil {
				return fmt.Errorf("blob %s was removed meanwhile: %w", b, errdefs.ErrConflict)
			}
		}
		for _, l := range layers {
			if !s.layers.Exists(l.ChainID) {
				return fmt.Errorf("layer %s was removed meanwhile: %w", l.ChainID, errdefs.ErrConflict)
			}
		}
		idx.Manifests = append(idx.Manifests, v1.Descriptor{
			MediaType: types.OCIManifestSchema1, Size: manSize, Digest: manDigest,
		})
		return s.writeIndex(idx)
	})
	if err != nil {
		return nil, fmt.Errorf("image create %s: %w", img.ID, err)
	}
	s.mu.Lock()
	s.manifests[manDigest] = img
	s.mu.Unlock()
	return img.clone(), nil
}

func digests(layers []Layer) []v1.Hash {
	out := make([]v1.Hash, len(layers))
	for i, l := range layers {
		out[i] = l.Digest
	}
	return out
}

// CommitDir packs upperDir, a container's or a build step's overlay upper
// directory, as a new layer on top of parent (nil for scratch) and creates
// the resulting untagged image with config and parent's history plus entry.
// The same changes give the same layer digest (see Pack).
func (s *Store) CommitDir(parent *Image, upperDir string, config v1.Config, entry v1.History) (*Image, error) {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		pw.CloseWithError(Pack(pw, upperDir))
		close(done)
	}()
	layer, err := s.WriteLayer(pr)
	pr.CloseWithError(io.ErrClosedPipe) // stops Pack if WriteLayer gave up early
	<-done
	if err != nil {
		return nil, fmt.Errorf("image commit: %w", err)
	}
	var layers []Layer
	var history []v1.History
	if parent != nil {
		layers = slices.Clone(parent.Layers)
		history = slices.Clone(parent.History)
	}
	entry.EmptyLayer = false
	return s.Create(config, append(history, entry), append(layers, layer)...)
}

// Lowers returns img's layers as an overlay mount wants them: a base
// directory and short names relative to it, topmost first. The mounting
// process must chdir(base) and pass the names as lowerdir (see Mount); this
// keeps the option string short for long layer chains. It costs no system
// call. An image without layers has no lower dirs, and overlayfs needs at
// least one: mount an empty directory in their place.
func (s *Store) Lowers(img *Image) (base string, rel []string) {
	rel = make([]string, len(img.Layers))
	for i, l := range img.Layers {
		rel[len(img.Layers)-1-i] = linkName(l.ChainID)
	}
	return s.layers.linkDir(), rel
}

// Hold holds img's layers for a mount (Layers.Hold), first unpacking again
// any layer that is missing while its blob is there.
func (s *Store) Hold(img *Image) (release func(), err error) {
	release, err = s.layers.Hold(img.Chain())
	if !errors.Is(err, errdefs.ErrNotFound) {
		return release, err
	}
	var parent v1.Hash
	for _, l := range img.Layers {
		if parent, err = s.layers.Commit(parent, l.DiffID, func() (io.ReadCloser, error) {
			return os.Open(s.BlobPath(l.Digest))
		}); err != nil {
			return nil, fmt.Errorf("image %s: %w", img.ID, err)
		}
	}
	return s.layers.Hold(img.Chain())
}

// Prepare makes an active snapshot of img in dir (Layers.Prepare).
func (s *Store) Prepare(img *Image, dir string) (Mount, error) {
	return s.layers.Prepare(dir, img.Chain())
}

// View is a read-only mount of img.
func (s *Store) View(img *Image) Mount { return s.layers.View(img.Chain()) }

// LowerDirs returns img's layer directories as full paths, topmost first:
// what Diff takes.
func (s *Store) LowerDirs(img *Image) []string {
	base, rel := s.Lowers(img)
	for i := range rel {
		rel[i] = filepath.Join(base, rel[i])
	}
	return rel
}
