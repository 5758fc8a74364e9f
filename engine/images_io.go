package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"vscript/engine/build"
	"vscript/engine/errdefs"
	"vscript/engine/event"
	"vscript/engine/image"
	"vscript/engine/store"
)

// BuildSpec is an image_build: `docker build -t Tag -f Dockerfile Context`.
type BuildSpec struct {
	Tag string
	// Context is the build context directory, absolute.
	Context string
	// Dockerfile is the Dockerfile's path, absolute; unused when
	// DockerfileText is set.
	Dockerfile string
	// DockerfileText is the Dockerfile itself, given inline.
	DockerfileText string
	BuildArgs      map[string]string
	NoCache        bool
}

// ImageBuild builds a Dockerfile as Docker's legacy builder does (see
// engine/build) and tags the result. Every step's image stays in the store,
// untagged, as the build cache; `vscript prune` removes them.
func (e *Engine) ImageBuild(ctx context.Context, spec BuildSpec) (*ImageInfo, error) {
	start := time.Now()
	tag, err := image.ParseRef(spec.Tag)
	if err != nil {
		return nil, fmt.Errorf("image build: %w", err)
	}
	fail := func(err error) (*ImageInfo, error) {
		return nil, fmt.Errorf("image build %s: %w", tag, err)
	}
	text := spec.DockerfileText
	if text == "" {
		data, err := os.ReadFile(spec.Dockerfile)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fail(errdefs.WithHint(fmt.Errorf("dockerfile %s: %w", spec.Dockerfile, errdefs.ErrNotFound),
					"the Dockerfile is looked up in the context directory; give dockerfile= or dockerfile_text="))
			}
			return fail(err)
		}
		text = string(data)
	}
	if fi, err := os.Stat(spec.Context); err != nil || !fi.IsDir() {
		return fail(fmt.Errorf("context %s: not a directory: %w", spec.Context, errdefs.ErrNotFound))
	}
	plan, err := build.Parse(strings.NewReader(text))
	if err != nil {
		return fail(err)
	}
	cache, err := build.NewStoreCache(e.store)
	if err != nil {
		return fail(err)
	}
	e.sink.Emit(event.Event{Op: "image build", Subject: tag, Docker: dockerBuild(tag, spec)})
	id, err := build.Build(ctx, plan, build.Options{
		ContextDir: spec.Context,
		BuildArgs:  spec.BuildArgs,
		NoCache:    spec.NoCache,
		Tag:        tag,
		Events:     e.sink,
		Output:     e.opts.LiveLogs,
	}, build.Deps{Backend: &buildBackend{e: e}, Cache: cache, Unpack: image.Unpack})
	if err != nil {
		return fail(err)
	}
	img, err := e.images.Get(id)
	if err != nil {
		return fail(err)
	}
	if err := e.images.Tag(img, tag); err != nil {
		return fail(err)
	}
	e.emit(event.Event{Op: "build result", Subject: tag,
		Docker: "Successfully built " + shortImageID(id) + "\nSuccessfully tagged " + tag}, start)
	return e.Image(tag)
}

// dockerBuild is the docker command an image_build mirrors.
func dockerBuild(tag string, spec BuildSpec) string {
	parts := []string{"docker", "build", "-t", tag}
	if spec.DockerfileText != "" {
		parts = append(parts, "-f", "-")
	} else if spec.Dockerfile != filepath.Join(spec.Context, "Dockerfile") {
		parts = append(parts, "-f", spec.Dockerfile)
	}
	keys := make([]string, 0, len(spec.BuildArgs))
	for k := range spec.BuildArgs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, "--build-arg", shellQuote([]string{k + "=" + spec.BuildArgs[k]}))
	}
	if spec.NoCache {
		parts = append(parts, "--no-cache")
	}
	return strings.Join(append(parts, spec.Context), " ")
}

func shortImageID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// Archive formats of ImageSave; ImageLoad tells them apart by content.
const (
	FormatOCI       = "oci"        // an OCI image layout in a tar file
	FormatOCILayout = "oci-layout" // an OCI image layout directory
	FormatDocker    = "docker"     // a `docker save` archive
)

// ImageSave writes images to path, as `docker save -o`: an image named by
// name keeps that name in the archive, one named by id has none. The file or
// directory appears complete or not at all; an existing archive file, or an
// existing OCI layout directory, is replaced.
func (e *Engine) ImageSave(_ context.Context, refs []string, path, format string) error {
	start := time.Now()
	fail := func(err error) error { return fmt.Errorf("image save %s: %w", path, err) }
	if len(refs) == 0 {
		return fail(fmt.Errorf("no images given: %w", errdefs.ErrInvalid))
	}
	var set saveSet
	for _, ref := range refs {
		img, err := e.images.Get(ref)
		if err != nil {
			return fail(err)
		}
		tag := ""
		if name, err := image.ParseRef(ref); err == nil && name == img.Ref {
			tag = name
		}
		set.add(img, tag)
	}
	// As `-v` does for a bind mount's source, a missing directory is made.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fail(err)
	}
	var err error
	switch format {
	case FormatDocker:
		err = e.saveDocker(&set, path)
	case FormatOCI:
		err = e.saveOCIArchive(&set, path)
	case FormatOCILayout:
		err = e.saveOCILayout(&set, path)
	default:
		err = fmt.Errorf("format %q: want %q, %q or %q: %w", format, FormatOCI, FormatOCILayout, FormatDocker, errdefs.ErrInvalid)
	}
	if err != nil {
		return fail(err)
	}
	docker := "docker save -o " + shellQuote([]string{path}) + " " + shellQuote(refs)
	e.emit(event.Event{Op: "image save", Subject: path, Docker: docker, Linux: e.saveLinux(&set, path, format)}, start)
	return nil
}

// saveLinux is what a save amounts to: the images' blobs copied from the
// store into an image layout, which is tarred up unless the layout is what
// was asked for.
func (e *Engine) saveLinux(set *saveSet, path, format string) []string {
	dir := path
	if format != FormatOCILayout {
		dir = "<layout>"
	}
	var lines []string
	if format == FormatDocker {
		lines = append(lines, "mkdir "+dir)
		for _, img := range set.imgs {
			for _, l := range img.Layers {
				lines = append(lines, "cp "+e.images.BlobPath(l.Digest)+" "+dir+"/"+l.Digest.Hex+".tar")
			}
			lines = append(lines, "cp "+e.images.BlobPath(mustHash(img.ID))+" "+dir+"/"+mustHash(img.ID).Hex+".json")
		}
		lines = append(lines, "<write "+dir+"/manifest.json and "+dir+"/repositories: each image's name, config and layers>")
	} else {
		lines = append(lines, "mkdir -p "+dir+"/blobs/sha256")
		seen := map[v1.Hash]bool{}
		for _, img := range set.imgs {
			for _, d := range append([]v1.Hash{img.Digest, mustHash(img.ID)}, blobDigests(img.Layers)...) {
				if !seen[d] {
					seen[d] = true
					lines = append(lines, "cp "+e.images.BlobPath(d)+" "+dir+"/blobs/sha256/")
				}
			}
		}
		lines = append(lines, `echo '{"imageLayoutVersion": "1.0.0"}' > `+dir+"/oci-layout",
			"<write "+dir+"/index.json: one manifest per image and name>")
	}
	if format != FormatOCILayout {
		lines = append(lines, "tar -cf "+shellQuote([]string{path})+" -C "+dir+" .")
	}
	return lines
}

// mustHash is a stored image's id as a digest; the store made it, so it parses.
func mustHash(id string) v1.Hash {
	h, _ := v1.NewHash(id)
	return h
}

func blobDigests(layers []image.Layer) []v1.Hash {
	out := make([]v1.Hash, len(layers))
	for i, l := range layers {
		out[i] = l.Digest
	}
	return out
}

// ImageLoad loads the images of a `docker save` archive, an OCI archive or
// an OCI layout directory (the kind is found from the content; a gzip'd
// archive is fine) and returns them, named as the archive names them.
// Layers are checked against their digests and unpacked safely; on any
// error nothing of the archive is left in the store but unreferenced blobs,
// which prune collects.
func (e *Engine) ImageLoad(ctx context.Context, path string) ([]*ImageInfo, error) {
	start := time.Now()
	fail := func(err error) ([]*ImageInfo, error) { return nil, fmt.Errorf("image load %s: %w", path, err) }
	src, kind, err := e.openArchive(path)
	if err != nil {
		return fail(err)
	}
	defer src.close()
	var imgs []*loadImage
	if kind == FormatDocker {
		imgs, err = readDockerArchive(src)
	} else {
		imgs, err = readOCILayout(src)
	}
	if err != nil {
		return fail(err)
	}
	if len(imgs) == 0 {
		return fail(fmt.Errorf("the %s archive holds no image: %w", kind, errdefs.ErrInvalid))
	}
	// Layers the store has already are no work of this load's.
	had := map[v1.Hash]bool{}
	for _, li := range imgs {
		for _, l := range li.layers {
			if _, err := os.Stat(e.images.BlobPath(l.digest)); err == nil {
				had[l.digest] = true
			}
		}
	}
	loaded, err := e.loadImages(ctx, src, imgs, path)
	if err != nil {
		return fail(err)
	}
	var out []*ImageInfo
	var names []string
	for i, img := range loaded {
		for _, t := range imgs[i].tags {
			if err := e.images.Tag(img, t); err != nil {
				return fail(err)
			}
		}
		if img.ID != imgs[i].id {
			// The store writes configs its own way (see image.Store.Create);
			// one made by another tool comes out with a different digest.
			names = append(names, fmt.Sprintf("(image %s has the new id %s: its config was rewritten)", imgs[i].id, img.ID))
		}
		if len(imgs[i].tags) == 0 {
			out = append(out, imageInfo(img))
			names = append(names, "Loaded image ID: "+img.ID)
			continue
		}
		for _, t := range imgs[i].tags {
			info, err := e.Image(t)
			if err != nil {
				return fail(err)
			}
			out = append(out, info)
			names = append(names, "Loaded image: "+t)
		}
	}
	e.emit(event.Event{Op: "image load", Subject: path,
		Docker: "docker load -i " + shellQuote([]string{path}) + "\n" + strings.Join(names, "\n"),
		Linux:  e.loadLinux(path, kind, imgs, loaded, had)}, start)
	return out, nil
}

// loadLinux is what a load amounts to: each layer the store did not have
// copied from the archive into the store (and checked against its digest)
// and unpacked, and the images' names added to the index.
func (e *Engine) loadLinux(path, kind string, imgs []*loadImage, loaded []*image.Image, had map[v1.Hash]bool) []string {
	var lines []string
	seen := had
	for i, img := range loaded {
		for j, l := range img.Layers {
			if seen[l.Digest] || j >= len(imgs[i].layers) {
				continue
			}
			seen[l.Digest] = true
			blob := e.images.BlobPath(l.Digest)
			from := "tar -xOf " + shellQuote([]string{path}) + " " + imgs[i].layers[j].name
			if kind == FormatOCILayout {
				from = "cat " + shellQuote([]string{filepath.Join(path, imgs[i].layers[j].name)})
			}
			dir := e.images.Layers().Path(l.ChainID)
			lines = append(lines, from+" > "+blob+"  # sha256sum must give "+l.Digest.Hex,
				"mkdir -p "+dir+" && tar -xf "+blob+" -C "+dir)
		}
		names := imgs[i].tags
		if len(names) == 0 {
			names = []string{img.ID}
		}
		for _, n := range names {
			lines = append(lines, "<add "+n+" to "+e.store.Path("content", "index.json")+">")
		}
	}
	return lines
}

// loadImages puts every image of an archive in the store, or none.
func (e *Engine) loadImages(ctx context.Context, src archiveSource, imgs []*loadImage, path string) (_ []*image.Image, err error) {
	prog := e.newProgress("image load "+filepath.Base(path), loadSize(imgs))
	defer prog.done()
	// Every layer first: their digests are checked as they are stored, so
	// a bad archive fails before any image exists.
	stored := map[string]image.Layer{}
	layers := make([][]image.Layer, len(imgs))
	for i, li := range imgs {
		for j, l := range li.layers {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			sl, ok := stored[l.name]
			if !ok {
				if sl, err = e.storeLayer(src, l, prog); err != nil {
					return nil, err
				}
				stored[l.name] = sl
			}
			if sl.DiffID != li.config.RootFS.DiffIDs[j] {
				return nil, fmt.Errorf("layer %s has diff id %s, the config says %s: %w",
					l.name, sl.DiffID, li.config.RootFS.DiffIDs[j], errdefs.ErrInvalid)
			}
			layers[i] = append(layers[i], sl)
		}
	}
	prog.then("unpacking")
	before := map[string]bool{}
	list, err := e.images.List()
	if err != nil {
		return nil, err
	}
	for _, img := range list {
		before[img.ID] = true
	}
	var created []string
	defer func() {
		if err != nil {
			for _, id := range created {
				e.images.Remove(id)
			}
		}
	}()
	out := make([]*image.Image, len(imgs))
	for i, li := range imgs {
		img, err := e.images.Create(li.config.Config, li.config.History, layers[i]...)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", li.id, err)
		}
		if !before[img.ID] && !slices.Contains(created, img.ID) {
			created = append(created, img.ID)
		}
		out[i] = img
	}
	return out, nil
}

// intermediate reports which images of list are a build's intermediate
// images: untagged, and the start of another image (its history and layers
// begin with theirs). Docker's `docker images` hides these, as they are
// the build cache; an untagged image that is no other's start ("dangling",
// e.g. the old image after a rebuild moved its tag) is shown.
func intermediate(list []*image.Image) map[string]bool {
	hidden := map[string]bool{}
	for _, x := range list {
		if x.Ref != "" {
			continue
		}
		for _, y := range list {
			if y.ID != x.ID && startsWith(y, x) {
				hidden[x.ID] = true
				break
			}
		}
	}
	return hidden
}

// startsWith reports whether img was built on top of base.
func startsWith(img, base *image.Image) bool {
	if len(img.History) <= len(base.History) || len(img.Layers) < len(base.Layers) {
		return false
	}
	for i, h := range base.History {
		g := img.History[i]
		if g.CreatedBy != h.CreatedBy || !g.Created.Equal(h.Created.Time) || g.EmptyLayer != h.EmptyLayer {
			return false
		}
	}
	for i, l := range base.Layers {
		if img.Layers[i].DiffID != l.DiffID {
			return false
		}
	}
	return true
}

// removeParents removes the untagged images that img was built on,
// nearest first, as `docker rmi` does (unless --no-prune): a build's
// intermediate images go with the image they made. It stops at a parent
// that is tagged, starts another image too, or is used by a container of
// the lab. Failures leave the parent for `vscript prune`.
func (e *Engine) removeParents(img *image.Image) {
	list, err := e.images.List()
	if err != nil {
		return
	}
	var parents []*image.Image
	for _, p := range list {
		if startsWith(img, p) {
			parents = append(parents, p)
		}
	}
	slices.SortFunc(parents, func(a, b *image.Image) int { return len(b.History) - len(a.History) })
	for _, p := range parents {
		if p.Ref != "" || e.usedByContainer(p.ID) {
			return
		}
		list = slices.DeleteFunc(list, func(x *image.Image) bool { return x.ID == img.ID })
		for _, other := range list {
			if other.ID != p.ID && startsWith(other, p) {
				return
			}
		}
		if e.images.Remove(p.ID) != nil {
			return
		}
		img = p
	}
}

func (e *Engine) usedByContainer(imageID string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.ctrs {
		if c.img.ID == imageID {
			return true
		}
	}
	return false
}

// ImageRow is one line of `vscript images`.
type ImageRow struct {
	Ref     string // "name:tag", "" for an untagged image
	ID      string
	Created time.Time
	Size    int64 // of its layers as stored
}

// ListImages lists the images of the state directory at root, outside any
// lab, as `docker images`: one row per name, then untagged images that are
// not a build's intermediate ones.
func ListImages(root string) ([]ImageRow, error) {
	st, err := store.Open(root)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	s, err := image.New(st)
	if err != nil {
		return nil, err
	}
	list, err := s.List()
	if err != nil {
		return nil, err
	}
	hidden := intermediate(list)
	var out []ImageRow
	for _, img := range list {
		if hidden[img.ID] {
			continue
		}
		row := ImageRow{Ref: img.Ref, ID: img.ID, Created: img.Created}
		for _, l := range img.Layers {
			row.Size += l.Size
		}
		out = append(out, row)
	}
	return out, nil
}

// PruneReport is what PruneImages removed.
type PruneReport struct {
	Images       []string // ids of the untagged images removed
	CacheRecords int      // build cache records removed
	Reclaimed    int64    // bytes freed in the state directory
}

// PruneImages is `vscript prune`, outside any lab: it removes the build
// cache and every untagged image (a build's intermediate images and
// dangling ones, as `docker builder prune` and `docker image prune` do),
// then the blobs and layers no image uses. Layers that a running container
// holds stay, and so does unreferenced content younger than
// image.PruneGrace, which may belong to an image another run is making.
// A build running meanwhile in another lab may fail, as it would with
// Docker.
func PruneImages(root string) (*PruneReport, error) {
	st, err := store.Open(root)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	s, err := image.New(st)
	if err != nil {
		return nil, err
	}
	before := diskUsage(st.Path("content"), st.Path("layers"))
	rep := &PruneReport{}
	cacheDir := st.Path("cache", "build")
	records, err := os.ReadDir(cacheDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("prune: %w", err)
	}
	for _, r := range records {
		if err := os.Remove(filepath.Join(cacheDir, r.Name())); err == nil {
			rep.CacheRecords++
		}
	}
	list, err := s.List()
	if err != nil {
		return nil, err
	}
	for _, img := range list {
		if img.Ref != "" {
			continue
		}
		err := s.Remove(img.ID)
		if errors.Is(err, errdefs.ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return rep, fmt.Errorf("prune: %w", err)
		}
		rep.Images = append(rep.Images, img.ID)
	}
	if err := s.Prune(image.PruneGrace); err != nil {
		return rep, fmt.Errorf("prune: %w", err)
	}
	rep.Reclaimed = max(0, before-diskUsage(st.Path("content"), st.Path("layers")))
	return rep, nil
}

// diskUsage is the space the files under dirs take, as du counts it.
func diskUsage(dirs ...string) int64 {
	var n int64
	for _, d := range dirs {
		filepath.WalkDir(d, func(_ string, de fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if fi, err := de.Info(); err == nil {
				if st, ok := fi.Sys().(*syscall.Stat_t); ok {
					n += st.Blocks * 512
				}
			}
			return nil
		})
	}
	return n
}
