package engine

import (
	"fmt"

	"vscript/engine/errdefs"
	"vscript/engine/runtime"
)

// This file gives containers their volumes: the hooks container.go calls at
// create, start and rm. Volumes are not wired in yet.

// ctrVols is a container's mounts.
type ctrVols struct{}

// volCreate resolves run(volumes=..., volumes_from=...) into mounts,
// creating managed volumes as needed. Call with e.mu held.
func (e *Engine) volCreate(c *container) error {
	if len(c.spec.Volumes) > 0 || len(c.spec.VolumesFrom) > 0 || len(c.img.Config.Volumes) > 0 {
		if len(c.spec.Volumes) > 0 || len(c.spec.VolumesFrom) > 0 {
			return fmt.Errorf("container create %s: volumes: %w: not built yet", c.name, errdefs.ErrUnavailable)
		}
	}
	return nil
}

// volMounts returns the mounts for the runtime at start.
func (e *Engine) volMounts(c *container) ([]runtime.Mount, error) { return nil, nil }

// volRemove drops c's mounts; with anonymous, also its anonymous volumes.
func (e *Engine) volRemove(c *container, anonymous bool) {}

// volInspect is inspect()'s Mounts.
func (e *Engine) volInspect(c *container) []any { return []any{} }

// volPath maps a container path that lies in one of c's mounts to the lab
// path of the data (securely joined inside the mount's source); ok is false
// for paths in the container's own root filesystem.
func (e *Engine) volPath(c *container, p string) (lp string, ok bool, err error) {
	return "", false, nil
}
