package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"time"

	"vscript/engine/errdefs"
	"vscript/engine/event"
	"vscript/engine/image"
)

// Image finds an image by name[:tag], id or id prefix; busybox and httpd are
// made on first use.
func (e *Engine) Image(ref string) (*ImageInfo, error) {
	img, err := e.images.Get(ref)
	if err != nil {
		return nil, err
	}
	return imageInfo(img), nil
}

// Images lists the store's images as `docker images` does: a build's
// intermediate images are left out (see intermediate).
func (e *Engine) Images() ([]*ImageInfo, error) {
	list, err := e.images.List()
	if err != nil {
		return nil, err
	}
	hidden := intermediate(list)
	var out []*ImageInfo
	for _, img := range list {
		if !hidden[img.ID] {
			out = append(out, imageInfo(img))
		}
	}
	return out, nil
}

// ImageHistory is docker history: newest first.
func (e *Engine) ImageHistory(ref string) ([]HistoryEntry, error) {
	img, err := e.images.Get(ref)
	if err != nil {
		return nil, err
	}
	out := make([]HistoryEntry, len(img.History))
	for i, h := range img.History {
		out[len(out)-1-i] = HistoryEntry{CreatedBy: h.CreatedBy, EmptyLayer: h.EmptyLayer, Comment: h.Comment}
	}
	return out, nil
}

// ImageRemove untags and deletes an image; an image a container of this lab
// uses is refused unless forced.
func (e *Engine) ImageRemove(ref string, force bool) error {
	start := time.Now()
	img, err := e.images.Get(ref)
	if err != nil {
		return err
	}
	if !force {
		e.mu.Lock()
		var users []string
		for _, id := range e.order {
			if c := e.ctrs[id]; c.img.ID == img.ID {
				users = append(users, c.name)
			}
		}
		e.mu.Unlock()
		if len(users) > 0 {
			return errdefs.WithHint(fmt.Errorf("image rm %s: %w: in use by container %v", ref, errdefs.ErrConflict, users),
				"remove the containers first, or rm(force=True)")
		}
	}
	files := e.storeFiles(img)
	if err := e.images.Remove(ref); err != nil {
		return err
	}
	if _, err := e.images.Get(img.ID); errors.Is(err, errdefs.ErrNotFound) {
		e.removeParents(img)
	}
	linux := []string{"<drop " + ref + " from " + e.store.Path("content", "index.json") + ">"}
	for _, f := range files {
		if _, err := os.Lstat(f); errors.Is(err, fs.ErrNotExist) {
			linux = append(linux, "rm -rf "+f)
		}
	}
	e.emit(event.Event{Op: "image rm", Subject: ref, Docker: "docker rmi " + ref, Linux: linux}, start)
	return nil
}

// storeFiles lists img's files in the store: its manifest, config and layer
// blobs and its layers' directories. Those gone after a removal are what the
// removal deleted (the layers no other image shares).
func (e *Engine) storeFiles(img *image.Image) []string {
	files := []string{e.images.BlobPath(img.Digest), e.images.BlobPath(mustHash(img.ID))}
	for _, l := range img.Layers {
		files = append(files, e.images.BlobPath(l.Digest), e.images.Layers().Path(l.ChainID))
	}
	return files
}

func imageInfo(img *image.Image) *ImageInfo {
	info := &ImageInfo{ID: img.ID, Ref: img.Ref}
	if img.Ref != "" {
		info.Tags = []string{img.Ref}
	}
	for _, l := range img.Layers {
		info.Layers = append(info.Layers, l.Digest.String())
		info.Size += l.Size
	}
	c := img.Config
	info.Config = ImageConfig{
		Cmd: c.Cmd, Entrypoint: c.Entrypoint, Env: c.Env, WorkingDir: c.WorkingDir, User: c.User,
		Labels: c.Labels,
	}
	for v := range c.Volumes {
		info.Config.Volumes = append(info.Config.Volumes, v)
	}
	sort.Strings(info.Config.Volumes)
	for p := range c.ExposedPorts {
		info.Config.ExposedPorts = append(info.Config.ExposedPorts, p)
	}
	sort.Strings(info.Config.ExposedPorts)
	return info
}
