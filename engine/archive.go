package engine

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"vscript/engine/store"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"vscript/engine/errdefs"
	"vscript/engine/image"
)

// Image archives: what ImageSave writes and ImageLoad reads.
//
//   - a docker archive (`docker save`): manifest.json listing each image's
//     config file, tags and layer files, plus the legacy repositories file;
//     written with go-containerregistry's tarball package.
//   - an OCI image layout directory: oci-layout, index.json, blobs/sha256/;
//     written with its layout package.
//   - an OCI archive: a tar of such a directory.
//
// An archive is untrusted input. Its outer tar is never extracted: entries
// are read in place. Every blob an OCI index names is checked against its
// digest and size, every layer against the config's diff ids, and layers are
// unpacked by image.Unpack, which refuses paths out of the layer.

// containerdNameAnnotation names an image in an OCI index as containerd and
// `docker save` (25+) write it: the full reference, where RefAnnotation holds
// only the tag.
const containerdNameAnnotation = "io.containerd.image.name"

// maxJSON bounds the JSON files of an archive read into memory.
const maxJSON = 16 << 20

// archiveSource is an archive opened for reading: the entries of a tar file
// or the files of a directory, by slash-separated relative name.
type archiveSource interface {
	// open returns a regular file's content and size, following links.
	open(name string) (io.ReadCloser, int64, error)
	has(name string) bool
	close() error
}

// openArchive opens path and tells its kind: FormatDocker, FormatOCI or
// FormatOCILayout.
func (e *Engine) openArchive(p string) (archiveSource, string, error) {
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("%w: no such file or directory", errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, "", err
	}
	if fi.IsDir() {
		d := &dirSource{root: p}
		if !d.has("index.json") {
			return nil, "", fmt.Errorf("not an OCI image layout: no index.json: %w", errdefs.ErrInvalid)
		}
		return d, FormatOCILayout, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, "", err
	}
	cleanup := func() {}
	magic := make([]byte, 6)
	n, _ := io.ReadFull(f, magic)
	magic = magic[:n]
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		// The outer tar is read in place, which needs a seekable file.
		plain, err := e.gunzipToTemp(f)
		f.Close()
		if err != nil {
			return nil, "", err
		}
		f = plain
		cleanup = func() { os.Remove(plain.Name()) }
	case bytes.HasPrefix(magic, []byte("BZh")), bytes.HasPrefix(magic, []byte("\xfd7zXZ\x00")),
		bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		f.Close()
		return nil, "", fmt.Errorf("compressed with bzip2, xz or zstd: decompress it first (gzip is read as is): %w", errdefs.ErrInvalid)
	}
	t, err := indexTar(f)
	if err != nil {
		f.Close()
		cleanup()
		return nil, "", err
	}
	t.cleanup = cleanup
	switch {
	case t.has("manifest.json"):
		return t, FormatDocker, nil
	case t.has("index.json"):
		return t, FormatOCI, nil
	}
	t.close()
	return nil, "", fmt.Errorf("not an image archive: neither a docker archive (manifest.json) nor an OCI archive (index.json): %w", errdefs.ErrInvalid)
}

func (e *Engine) gunzipToTemp(f *os.File) (*os.File, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("gzip: %v: %w", err, errdefs.ErrInvalid)
	}
	tmp, err := os.CreateTemp(e.store.Path("tmp"), "load-*.tar")
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(tmp, zr); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("gzip: %v: %w", err, errdefs.ErrInvalid)
	}
	return tmp, nil
}

// tarSource reads the entries of a tar file in place.
type tarSource struct {
	f       *os.File
	entries map[string]tarEntry
	cleanup func()
}

type tarEntry struct {
	offset, size int64
	link         string // target of a symlink or hard link, as an entry name
}

// posReader tracks the offset in the file the tar reader has reached, so
// that each entry's data can later be read in place. tar.Reader reads
// headers block by block and skips data by seeking, so after Next the
// position is the start of the entry's data.
type posReader struct {
	f   *os.File
	pos int64
}

func (r *posReader) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	r.pos += int64(n)
	return n, err
}

func (r *posReader) Seek(off int64, whence int) (int64, error) {
	n, err := r.f.Seek(off, whence)
	if err == nil {
		r.pos = n
	}
	return n, err
}

func indexTar(f *os.File) (*tarSource, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	pr := &posReader{f: f}
	tr := tar.NewReader(pr)
	t := &tarSource{f: f, entries: map[string]tarEntry{}}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("not a tar archive: %v: %w", err, errdefs.ErrInvalid)
		}
		name := entryName(hdr.Name)
		if name == "" || sparse(hdr) {
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			t.entries[name] = tarEntry{offset: pr.pos, size: hdr.Size}
		case tar.TypeSymlink:
			target := hdr.Linkname
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(name), target)
			}
			t.entries[name] = tarEntry{link: entryName(target)}
		case tar.TypeLink:
			t.entries[name] = tarEntry{link: entryName(hdr.Linkname)}
		}
	}
	return t, nil
}

// entryName is an archive path as a clean relative name, "" for one that
// leads out of the archive's top.
func entryName(n string) string {
	n = path.Clean("/" + n)[1:]
	if n == "" || n == "." {
		return ""
	}
	return n
}

func sparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

func (t *tarSource) lookup(name string) (tarEntry, bool) {
	for range 16 {
		e, ok := t.entries[name]
		if !ok || e.link == "" {
			return e, ok
		}
		name = e.link
	}
	return tarEntry{}, false
}

func (t *tarSource) has(name string) bool {
	_, ok := t.lookup(entryName(name))
	return ok
}

func (t *tarSource) open(name string) (io.ReadCloser, int64, error) {
	e, ok := t.lookup(entryName(name))
	if !ok {
		return nil, 0, fmt.Errorf("%s: no such file in the archive: %w", name, errdefs.ErrInvalid)
	}
	return io.NopCloser(io.NewSectionReader(t.f, e.offset, e.size)), e.size, nil
}

func (t *tarSource) close() error {
	err := t.f.Close()
	if t.cleanup != nil {
		t.cleanup()
	}
	return err
}

// dirSource reads the files of a directory; symlinks resolve inside it.
type dirSource struct {
	root string
}

func (d *dirSource) path(name string) (string, error) {
	return securejoin.SecureJoin(d.root, name)
}

func (d *dirSource) has(name string) bool {
	p, err := d.path(name)
	if err != nil {
		return false
	}
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func (d *dirSource) open(name string) (io.ReadCloser, int64, error) {
	p, err := d.path(name)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", name, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s: not a regular file: %w", name, errdefs.ErrInvalid)
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

func (d *dirSource) close() error { return nil }

// readSmall reads a JSON file of the archive.
func readSmall(src archiveSource, name string) ([]byte, error) {
	rc, size, err := src.open(name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if size > maxJSON {
		return nil, fmt.Errorf("%s: %d bytes, too large for a JSON file: %w", name, size, errdefs.ErrInvalid)
	}
	return io.ReadAll(rc)
}

// loadImage is an image as an archive describes it.
type loadImage struct {
	id     string // the config's digest
	config *v1.ConfigFile
	tags   []string // normalized names
	layers []loadLayer
}

type loadLayer struct {
	name   string  // its file in the archive
	digest v1.Hash // what the manifest says; zero in a docker archive, which says nothing
	size   int64   // -1 if unknown
}

// loadSize is how many layer bytes a load reads, for the progress bar.
func loadSize(imgs []*loadImage) int64 {
	var n int64
	seen := map[string]bool{}
	for _, img := range imgs {
		for _, l := range img.layers {
			if !seen[l.name] && l.size > 0 {
				n += l.size
			}
			seen[l.name] = true
		}
	}
	return n
}

// parseConfig reads an image config and checks it against its layers.
func parseConfig(name string, raw []byte, layers int) (*v1.ConfigFile, error) {
	cf, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("config %s: %v: %w", name, err, errdefs.ErrInvalid)
	}
	if n := len(cf.RootFS.DiffIDs); n != layers {
		return nil, fmt.Errorf("config %s: %d diff ids for %d layers: %w", name, n, layers, errdefs.ErrInvalid)
	}
	return cf, nil
}

func readDockerArchive(src archiveSource) ([]*loadImage, error) {
	data, err := readSmall(src, "manifest.json")
	if err != nil {
		return nil, err
	}
	var m tarball.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("manifest.json: %v: %w", err, errdefs.ErrInvalid)
	}
	var imgs []*loadImage
	for _, d := range m {
		raw, err := readSmall(src, d.Config)
		if err != nil {
			return nil, err
		}
		cf, err := parseConfig(d.Config, raw, len(d.Layers))
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(raw)
		li := &loadImage{id: "sha256:" + hex.EncodeToString(sum[:]), config: cf}
		for _, t := range d.RepoTags {
			n, err := image.ParseRef(t)
			if err != nil {
				return nil, fmt.Errorf("manifest.json: %w", err)
			}
			li.tags = append(li.tags, n)
		}
		for _, l := range d.Layers {
			rc, size, err := src.open(l)
			if err != nil {
				return nil, fmt.Errorf("layer %w", err)
			}
			rc.Close()
			li.layers = append(li.layers, loadLayer{name: l, size: size})
		}
		imgs = append(imgs, li)
	}
	return mergeImages(imgs), nil
}

// mergeImages makes one entry per image id, with all its names.
func mergeImages(imgs []*loadImage) []*loadImage {
	var out []*loadImage
	byID := map[string]*loadImage{}
	for _, li := range imgs {
		if prev, ok := byID[li.id]; ok {
			for _, t := range li.tags {
				if !slices.Contains(prev.tags, t) {
					prev.tags = append(prev.tags, t)
				}
			}
			continue
		}
		byID[li.id] = li
		out = append(out, li)
	}
	return out
}

func blobName(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

// readBlob reads a small blob and checks it against its descriptor.
func readBlob(src archiveSource, d v1.Descriptor) ([]byte, error) {
	if d.Digest.Algorithm != "sha256" {
		return nil, fmt.Errorf("blob %s: unsupported digest algorithm: %w", d.Digest, errdefs.ErrInvalid)
	}
	if d.Size > maxJSON {
		return nil, fmt.Errorf("blob %s: %d bytes, too large for a manifest or config: %w", d.Digest, d.Size, errdefs.ErrInvalid)
	}
	data, err := readSmall(src, blobName(d.Digest))
	if err != nil {
		return nil, fmt.Errorf("blob %w", err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != d.Digest.Hex || int64(len(data)) != d.Size {
		return nil, fmt.Errorf("blob %s: content does not match its digest (sha256:%s, %d bytes): %w",
			d.Digest, got, len(data), errdefs.ErrInvalid)
	}
	return data, nil
}

func readOCILayout(src archiveSource) ([]*loadImage, error) {
	if src.has("oci-layout") {
		data, err := readSmall(src, "oci-layout")
		if err != nil {
			return nil, err
		}
		var l struct {
			Version string `json:"imageLayoutVersion"`
		}
		if err := json.Unmarshal(data, &l); err != nil || !strings.HasPrefix(l.Version, "1.") {
			return nil, fmt.Errorf("oci-layout: not a version 1 image layout: %w", errdefs.ErrInvalid)
		}
	}
	data, err := readSmall(src, "index.json")
	if err != nil {
		return nil, err
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("index.json: %v: %w", err, errdefs.ErrInvalid)
	}
	var imgs []*loadImage
	if err := ociImages(src, idx.Manifests, "", 0, &imgs); err != nil {
		return nil, err
	}
	return mergeImages(imgs), nil
}

// ociImages collects the images that descs name, descending into nested
// indexes (multi-platform images) for the host's platform. name is the name
// an enclosing index entry gave.
func ociImages(src archiveSource, descs []v1.Descriptor, name string, depth int, out *[]*loadImage) error {
	if depth > 4 {
		return fmt.Errorf("index nesting too deep: %w", errdefs.ErrInvalid)
	}
	for _, d := range descs {
		n, err := annotatedName(d.Annotations)
		if err != nil {
			return err
		}
		if n == "" {
			n = name
		}
		switch {
		case d.MediaType.IsIndex():
			data, err := readBlob(src, d)
			if err != nil {
				return err
			}
			idx, err := v1.ParseIndexManifest(bytes.NewReader(data))
			if err != nil {
				return fmt.Errorf("index %s: %v: %w", d.Digest, err, errdefs.ErrInvalid)
			}
			var mine []v1.Descriptor
			for _, m := range idx.Manifests {
				if m.Platform == nil || m.Platform.OS == "linux" && m.Platform.Architecture == runtime.GOARCH {
					mine = append(mine, m)
				}
			}
			if len(mine) == 0 {
				return fmt.Errorf("index %s: no image for linux/%s: %w", d.Digest, runtime.GOARCH, errdefs.ErrInvalid)
			}
			if err := ociImages(src, mine, n, depth+1, out); err != nil {
				return err
			}
		case d.MediaType.IsImage() || d.MediaType == "":
			li, err := ociImage(src, d)
			if err != nil {
				return err
			}
			if n != "" {
				li.tags = []string{n}
			}
			*out = append(*out, li)
		}
		// Anything else (artifacts, signatures) is not an image: skipped.
	}
	return nil
}

// annotatedName is the image name an index entry gives: containerd's full
// name, else the OCI ref name when it is a full name rather than a bare tag.
func annotatedName(ann map[string]string) (string, error) {
	n := ann[containerdNameAnnotation]
	if n == "" {
		if r := ann[image.RefAnnotation]; strings.ContainsAny(r, ":/") {
			n = r
		}
	}
	if n == "" {
		return "", nil
	}
	return image.ParseRef(n)
}

var loadableLayers = []types.MediaType{
	types.OCILayer, types.OCIUncompressedLayer, types.DockerLayer, types.DockerUncompressedLayer,
}

func ociImage(src archiveSource, d v1.Descriptor) (*loadImage, error) {
	data, err := readBlob(src, d)
	if err != nil {
		return nil, err
	}
	man, err := v1.ParseManifest(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %v: %w", d.Digest, err, errdefs.ErrInvalid)
	}
	raw, err := readBlob(src, man.Config)
	if err != nil {
		return nil, err
	}
	cf, err := parseConfig(man.Config.Digest.String(), raw, len(man.Layers))
	if err != nil {
		return nil, err
	}
	li := &loadImage{id: man.Config.Digest.String(), config: cf}
	for _, l := range man.Layers {
		if !slices.Contains(loadableLayers, l.MediaType) {
			return nil, fmt.Errorf("layer %s: media type %q is not supported (gzip'd or plain tar only): %w",
				l.Digest, l.MediaType, errdefs.ErrInvalid)
		}
		if l.Digest.Algorithm != "sha256" {
			return nil, fmt.Errorf("layer %s: unsupported digest algorithm: %w", l.Digest, errdefs.ErrInvalid)
		}
		li.layers = append(li.layers, loadLayer{name: blobName(l.Digest), digest: l.Digest, size: l.Size})
	}
	return li, nil
}

// storeLayer copies one layer from the archive into the store and checks
// it against what the archive says of it.
func (e *Engine) storeLayer(src archiveSource, l loadLayer, prog *progress) (image.Layer, error) {
	rc, _, err := src.open(l.name)
	if err != nil {
		return image.Layer{}, fmt.Errorf("layer %w", err)
	}
	defer rc.Close()
	sl, err := e.images.WriteLayer(bigChunks{prog.reader(rc)})
	if err != nil {
		return image.Layer{}, fmt.Errorf("layer %s: %w", l.name, err)
	}
	if l.digest.Hex != "" && sl.Digest != l.digest {
		return image.Layer{}, fmt.Errorf("layer %s: content does not match its digest (%s): %w", l.digest, sl.Digest, errdefs.ErrInvalid)
	}
	if l.digest.Hex != "" && l.size >= 0 && sl.Size != l.size {
		return image.Layer{}, fmt.Errorf("layer %s: %d bytes, the manifest says %d: %w", l.digest, sl.Size, l.size, errdefs.ErrInvalid)
	}
	return sl, nil
}

// bigChunks hands its content on in large writes: copied through a small
// buffer, a 100 MiB layer costs tens of thousands of write calls.
type bigChunks struct{ r io.Reader }

func (b bigChunks) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b bigChunks) WriteTo(w io.Writer) (int64, error) {
	return io.CopyBuffer(w, struct{ io.Reader }{b.r}, make([]byte, 1<<20))
}

// saveSet is what ImageSave writes: each image once, with the names it is
// saved under (none when it was named by id).
type saveSet struct {
	imgs []*image.Image
	tags [][]string
}

func (s *saveSet) add(img *image.Image, tag string) {
	i := slices.IndexFunc(s.imgs, func(x *image.Image) bool { return x.ID == img.ID })
	if i < 0 {
		s.imgs = append(s.imgs, img)
		s.tags = append(s.tags, nil)
		i = len(s.imgs) - 1
	}
	if tag != "" && !slices.Contains(s.tags[i], tag) {
		s.tags[i] = append(s.tags[i], tag)
	}
}

// v1Images returns the set's images as go-containerregistry images that
// read the store's blobs in place.
func (s *saveSet) v1Images(st *image.Store) ([]v1.Image, error) {
	out := make([]v1.Image, len(s.imgs))
	for i, img := range s.imgs {
		vi, err := partial.CompressedToImage(&storeImage{st: st, img: img})
		if err != nil {
			return nil, err
		}
		out[i] = vi
	}
	return out, nil
}

// storeImage is an image of the store as go-containerregistry's partial
// package wants one: its manifest and config as stored, its layers as
// stored (plain or gzip'd tar).
type storeImage struct {
	st  *image.Store
	img *image.Image
}

func (si *storeImage) RawConfigFile() ([]byte, error) {
	h, err := v1.NewHash(si.img.ID)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(si.st.BlobPath(h))
}

func (si *storeImage) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

func (si *storeImage) RawManifest() ([]byte, error) {
	return os.ReadFile(si.st.BlobPath(si.img.Digest))
}

func (si *storeImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, l := range si.img.Layers {
		if l.Digest == h {
			return &storeBlob{path: si.st.BlobPath(h), layer: l}, nil
		}
	}
	return nil, fmt.Errorf("image %s: no layer %s: %w", si.img.ID, h, errdefs.ErrNotFound)
}

type storeBlob struct {
	path  string
	layer image.Layer
}

func (b *storeBlob) Digest() (v1.Hash, error)            { return b.layer.Digest, nil }
func (b *storeBlob) Compressed() (io.ReadCloser, error)  { return os.Open(b.path) }
func (b *storeBlob) Size() (int64, error)                { return b.layer.Size, nil }
func (b *storeBlob) MediaType() (types.MediaType, error) { return b.layer.MediaType, nil }
func (b *storeBlob) DiffID() (v1.Hash, error)            { return b.layer.DiffID, nil }
func (b *storeBlob) Descriptor() (*v1.Descriptor, error) {
	return &v1.Descriptor{MediaType: b.layer.MediaType, Size: b.layer.Size, Digest: b.layer.Digest}, nil
}

func (e *Engine) saveDocker(s *saveSet, p string) error {
	vis, err := s.v1Images(e.images)
	if err != nil {
		return err
	}
	refs := map[name.Reference]v1.Image{}
	repos := map[string]map[string]string{}
	for i, img := range s.imgs {
		if len(s.tags[i]) == 0 {
			// Not a tag: the image goes in without a name, as `docker
			// save ID` does.
			d, err := name.NewDigest("untagged@" + img.Digest.String())
			if err != nil {
				return err
			}
			refs[d] = vis[i]
		}
		for _, t := range s.tags[i] {
			tag, err := name.NewTag(t)
			if err != nil {
				return err
			}
			refs[tag] = vis[i]
			if len(img.Layers) > 0 {
				repo, tg := splitTag(t)
				if repos[repo] == nil {
					repos[repo] = map[string]string{}
				}
				repos[repo][tg] = img.Layers[len(img.Layers)-1].DiffID.Hex
			}
		}
	}
	return writeFileAtomic(p, func(f *os.File) error {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(tarball.MultiRefWrite(refs, pw)) }()
		err := copyDockerTar(f, pr, repos)
		pr.CloseWithError(io.ErrClosedPipe) // stops the writer if we gave up early
		return err
	})
}

// copyDockerTar copies what the tarball package writes and adds the legacy
// repositories file that `docker save` also writes ({"busybox": {"latest":
// top layer id}}). Docker's loader reads manifest.json when there is one.
func copyDockerTar(w io.Writer, r io.Reader, repos map[string]map[string]string) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	if len(repos) > 0 {
		data, err := json.Marshal(repos)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: "repositories", Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// splitTag splits "name:tag".
func splitTag(ref string) (repo, tag string) {
	i := strings.LastIndexByte(ref, ':')
	return ref[:i], ref[i+1:]
}

// fullName is a normalized name as containerd writes it: with Docker Hub's
// implicit domain and library/ ("busybox:latest" is
// "docker.io/library/busybox:latest").
func fullName(ref string) string {
	first, _, hasSlash := strings.Cut(ref, "/")
	switch {
	case !hasSlash:
		return "docker.io/library/" + ref
	case strings.ContainsAny(first, ".:") || first == "localhost":
		return ref
	}
	return "docker.io/" + ref
}

// writeLayout writes the set as an OCI image layout in dir, one index entry
// per name (containerd's and docker's annotations), one without a name for
// an image saved by id.
func (e *Engine) writeLayout(s *saveSet, dir string) error {
	vis, err := s.v1Images(e.images)
	if err != nil {
		return err
	}
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	for i := range s.imgs {
		if len(s.tags[i]) == 0 {
			if err := lp.AppendImage(vis[i]); err != nil {
				return err
			}
		}
		for _, t := range s.tags[i] {
			_, tag := splitTag(t)
			err := lp.AppendImage(vis[i], layout.WithAnnotations(map[string]string{
				containerdNameAnnotation: fullName(t),
				image.RefAnnotation:      tag,
			}))
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func (e *Engine) saveOCILayout(s *saveSet, p string) error {
	if fi, err := os.Lstat(p); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%w: exists and is not a directory", errdefs.ErrConflict)
		}
		if _, err := os.Stat(filepath.Join(p, "oci-layout")); err != nil {
			if empty, err := dirEmpty(p); err != nil || !empty {
				return errdefs.WithHint(fmt.Errorf("%w: a directory that is neither empty nor an OCI layout", errdefs.ErrConflict),
					"an OCI layout is saved into a new or empty directory, or replaces an earlier one")
			}
		}
	}
	tmp, err := os.MkdirTemp(filepath.Dir(p), "."+filepath.Base(p)+".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := e.writeLayout(s, tmp); err != nil {
		return err
	}
	// Replace an earlier layout: move it aside, move ours in, drop it.
	old := tmp + ".old"
	if err := os.Rename(p, old); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Rename(old, p)
		return err
	}
	return os.RemoveAll(old)
}

func (e *Engine) saveOCIArchive(s *saveSet, p string) error {
	tmp, err := e.store.TempDir("save-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := e.writeLayout(s, tmp); err != nil {
		return err
	}
	return writeFileAtomic(p, func(f *os.File) error { return tarDir(f, tmp) })
}

// tarDir writes the tree under dir as a tar, in lexical order, with
// root-owned entries and no times, as OCI archives are made.
func tarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, p := range names {
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		hdr := &tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, Typeflag: tar.TypeReg, Size: fi.Size()}
		if fi.IsDir() {
			hdr.Name += "/"
			hdr.Mode, hdr.Typeflag, hdr.Size = 0o755, tar.TypeDir, 0
		} else if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s: not a regular file", p)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// writeFileAtomic writes a file by fill, under a temporary name in the same
// directory, then renames it over p: p is complete or untouched.
func writeFileAtomic(p string, fill func(*os.File) error) error {
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		return fmt.Errorf("%w: is a directory (an archive format writes a file; format=\"oci-layout\" writes a directory)", errdefs.ErrConflict)
	}
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // fails harmlessly once renamed
	err = store.Finish(f, 0o644, fill(f))
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), p)
}
