package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"vscript/engine/errdefs"
	"vscript/engine/event"
	"vscript/engine/image"
)

// The container's files are reached through its merged overlay in the lab
// (mounted from create to rm). Every container path is resolved with
// securejoin inside that root, so no symlink in the container can lead a
// read or a write outside it.

func (e *Engine) rootOf(ref string) (*container, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lookup(ref)
}

// inRoot resolves a container path to a lab path inside c's root, or inside
// the volume or bind mount that covers it (volPath).
func (e *Engine) inRoot(c *container, p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("path %q: %w: container paths are absolute", p, errdefs.ErrInvalid)
	}
	switch p {
	case "/etc/hostname", "/etc/hosts", "/etc/resolv.conf":
		// The runtime binds these over the container's own; once it has
		// run, what the container sees is the bound file.
		if lp := filepath.Join(c.dir, "config", filepath.Base(p)); exists(lp) {
			return lp, nil
		}
	}
	if lp, ok, err := e.volPath(c, p); ok || err != nil {
		return lp, err
	}
	return securejoin.SecureJoin(c.merged, p)
}

// ReadFile returns a file of the container.
func (e *Engine) ReadFile(ref, path string) ([]byte, error) {
	c, err := e.rootOf(ref)
	if err != nil {
		return nil, err
	}
	p, err := e.inRoot(c, path)
	if err != nil {
		return nil, fmt.Errorf("read %s:%s: %w", c.name, path, err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read %s:%s: %w", c.name, path, pathErr(err))
	}
	return b, nil
}

// WriteFile writes a file in the container (0644, parents created), as a
// student would with `docker exec ... sh -c 'cat > path'`.
func (e *Engine) WriteFile(ref, path string, data []byte) error {
	start := time.Now()
	c, err := e.rootOf(ref)
	if err != nil {
		return err
	}
	p, err := e.inRoot(c, path)
	if err != nil {
		return fmt.Errorf("write %s:%s: %w", c.name, path, err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("write %s:%s: %w", c.name, path, pathErr(err))
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return fmt.Errorf("write %s:%s: %w", c.name, path, pathErr(err))
	}
	e.emit(event.Event{Op: "container write", Subject: c.name + ":" + path,
		Docker: fmt.Sprintf("docker exec -i %s sh -c 'cat > %s'", c.name, path),
		Linux:  []string{"cat > " + p}}, start)
	return nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		if errors.Is(pe.Err, fs.ErrNotExist) {
			return fmt.Errorf("no such file or directory: %w", errdefs.ErrNotFound)
		}
		return pe.Err
	}
	return err
}

// Copy is docker cp: "CTR:/path" on one side, a lab path on the other.
// Directories are copied whole; a destination directory that exists gets
// the source inside it, as cp -a does.
func (e *Engine) Copy(ctx context.Context, src, dst string) error {
	start := time.Now()
	sp, err := e.cpPath(src)
	if err != nil {
		return err
	}
	dp, err := e.cpPath(dst)
	if err != nil {
		return err
	}
	if sp.ctr == nil && dp.ctr == nil {
		return fmt.Errorf("cp %s %s: %w: one side must be a container path (NAME:/path)", src, dst, errdefs.ErrInvalid)
	}
	if sp.ctr != nil && dp.ctr != nil {
		return fmt.Errorf("cp %s %s: %w: copying between containers is not supported (docker cp neither)", src, dst, errdefs.ErrInvalid)
	}
	if _, err := os.Lstat(sp.path); err != nil {
		return fmt.Errorf("cp %s: %w", src, pathErr(err))
	}
	if di, err := os.Stat(dp.path); err == nil && di.IsDir() {
		// Named after the source as given: a container path's lab path may
		// be a volume's _data or a read-only view (volPath).
		name := filepath.Base(sp.path)
		if sp.ctr != nil {
			name = path.Base(sp.ctrPath)
		}
		if dp, err = e.cpJoin(dp, name); err != nil {
			return fmt.Errorf("cp %s: %w", dst, err)
		}
	}
	if err := e.copyTree(sp.path, dp); err != nil {
		return fmt.Errorf("cp %s %s: %w", src, dst, err)
	}
	e.emit(event.Event{Op: "cp", Subject: src + " " + dst, Docker: "docker cp " + src + " " + dst,
		Linux: []string{"cp -a " + sp.path + " " + dp.path}}, start)
	return nil
}

// cpEnd is one side of a copy: a lab path, or a path in a container and
// where it lies in the lab.
type cpEnd struct {
	ctr     *container // nil: a lab path
	ctrPath string     // the path in the container
	path    string     // the lab path
}

func (e *Engine) cpPath(s string) (cpEnd, error) {
	if name, p, ok := strings.Cut(s, ":"); ok && !strings.HasPrefix(s, "/") && !strings.HasPrefix(s, ".") {
		c, err := e.rootOf(name)
		if err != nil {
			return cpEnd{}, err
		}
		return e.cpJoin(cpEnd{ctr: c, ctrPath: p}, "")
	}
	return cpEnd{path: s}, nil
}

// cpJoin descends from end into rel. In a container each step is resolved
// again from the container's root, so a symlink planted in the tree cannot
// redirect a copy outside it.
func (e *Engine) cpJoin(end cpEnd, rel string) (cpEnd, error) {
	if end.ctr == nil {
		end.path = filepath.Join(end.path, rel)
		return end, nil
	}
	end.ctrPath = path.Join(end.ctrPath, rel)
	lp, err := e.inRoot(end.ctr, end.ctrPath)
	end.path = lp
	return end, err
}

// copyTree copies the lab path src to dst, as cp -a would.
func (e *Engine) copyTree(src string, dst cpEnd) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to, err := e.cpJoin(dst, rel)
		if err != nil {
			return err
		}
		out := to.path
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.MkdirAll(out, info.Mode().Perm()); err != nil {
				return err
			}
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			os.Remove(out)
			if err := os.Symlink(link, out); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			if err := copyFile(p, out, info.Mode().Perm()); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: %w: not a regular file, directory or symlink", p, errdefs.ErrInvalid)
		}
		return nil
	})
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Diff lists the container's changes to its image, as docker diff.
func (e *Engine) Diff(ref string) ([]Change, error) {
	c, err := e.rootOf(ref)
	if err != nil {
		return nil, err
	}
	changes, err := image.Diff(filepath.Join(c.dir, "upper"), c.lowers)
	if err != nil {
		return nil, fmt.Errorf("container diff %s: %w", c.name, err)
	}
	out := make([]Change, len(changes))
	for i, ch := range changes {
		out[i] = Change{Kind: string(ch.Kind), Path: ch.Path}
	}
	return out, nil
}

// Commit makes the container's writable layer a new image (docker commit).
func (e *Engine) Commit(ctx context.Context, ref, tag string) (*ImageInfo, error) {
	start := time.Now()
	c, err := e.rootOf(ref)
	if err != nil {
		return nil, err
	}
	if tag != "" {
		// A bad tag must not leave the new image behind, untagged.
		if _, err := image.ParseRef(tag); err != nil {
			return nil, fmt.Errorf("container commit %s: %w", c.name, err)
		}
	}
	cfg := *c.img.Config.DeepCopy()
	cfg.Env = c.env
	cfg.WorkingDir = c.workdir
	cfg.User = c.user
	if c.spec.Cmd != nil {
		cfg.Cmd = c.spec.Cmd
	}
	if c.spec.Entrypoint != nil {
		cfg.Entrypoint = c.spec.Entrypoint
	}
	entry := v1.History{CreatedBy: shellQuote(c.args), Comment: "vscript commit " + c.name}
	img, err := e.images.CommitDir(c.img, filepath.Join(c.dir, "upper"), cfg, entry)
	if err != nil {
		return nil, fmt.Errorf("container commit %s: %w", c.name, err)
	}
	if tag != "" {
		if err := e.images.Tag(img, tag); err != nil {
			return nil, fmt.Errorf("container commit %s: %w", c.name, err)
		}
		img.Ref = tag
	}
	e.emit(event.Event{Op: "container commit", Subject: c.name, Docker: "docker commit " + c.name + " " + tag,
		Linux: []string{"tar -C " + filepath.Join(c.dir, "upper") + " -c . | sha256sum  # the new layer"}}, start)
	return imageInfo(img), nil
}
