package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/term"

	"vscript/engine/errdefs"
	"vscript/engine/runtime"
)

// Inspect returns docker inspect's shape for the fields DESIGN §2 lists.
func (e *Engine) Inspect(ref string) (map[string]any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.lookup(ref)
	if err != nil {
		return nil, err
	}
	pid := 0
	if c.rt != nil {
		pid = c.rt.Pid()
	}
	var cmd, entrypoint any
	if c.spec.Cmd != nil {
		cmd = strs(c.spec.Cmd)
	} else if c.img.Config.Cmd != nil {
		cmd = strs(c.img.Config.Cmd)
	}
	if c.spec.Entrypoint != nil {
		entrypoint = strs(c.spec.Entrypoint)
	} else if c.img.Config.Entrypoint != nil {
		entrypoint = strs(c.img.Config.Entrypoint)
	}
	volumes := map[string]any{}
	for v := range c.img.Config.Volumes {
		volumes[v] = map[string]any{}
	}
	exposed := map[string]any{}
	for p := range c.img.Config.ExposedPorts {
		exposed[p] = map[string]any{}
	}
	lowers := ""
	for i, l := range c.lowers {
		if i > 0 {
			lowers += ":"
		}
		lowers += l
	}
	return map[string]any{
		"Id":      c.id,
		"Name":    "/" + c.name,
		"Created": c.created.UTC().Format(time.RFC3339Nano),
		"Image":   c.img.ID,
		"State": map[string]any{
			"Status":   c.status,
			"Running":  c.status == "running",
			"Pid":      pid,
			"ExitCode": c.exitCode,
		},
		"Config": map[string]any{
			"Hostname":     c.hostname,
			"Image":        c.spec.Image,
			"Cmd":          cmd,
			"Entrypoint":   entrypoint,
			"Env":          strs(c.env),
			"WorkingDir":   c.workdir,
			"User":         c.user,
			"Volumes":      volumes,
			"ExposedPorts": exposed,
			"Labels":       labels(c.spec.Labels),
		},
		"HostConfig": map[string]any{
			"NetworkMode":    c.net.mode,
			"ReadonlyRootfs": c.spec.ReadOnly,
			"Memory":         c.spec.Memory,
			"PidsLimit":      c.spec.PidsLimit,
			"NanoCpus":       int64(c.spec.CPUs * 1e9),
			"AutoRemove":     c.spec.AutoRemove,
		},
		"Mounts":          e.volInspect(c),
		"NetworkSettings": e.netInspect(c),
		"GraphDriver": map[string]any{
			"Name": "overlay2",
			"Data": map[string]any{
				"LowerDir":  lowers,
				"UpperDir":  filepath.Join(c.dir, "upper"),
				"MergedDir": c.merged,
				"WorkDir":   filepath.Join(c.dir, "work"),
			},
		},
	}, nil
}

func strs(s []string) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}

func labels(m map[string]string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Shell runs an interactive shell in a running container on vscript's own
// terminal, as `docker exec -it CTR sh`; it returns when the shell exits.
func (e *Engine) Shell(ctx context.Context, ref string) error {
	c, err := e.rootOf(ref)
	if err != nil {
		return err
	}
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return errdefs.WithHint(fmt.Errorf("container shell %s: %w: stdin is not a terminal", c.name, errdefs.ErrUnavailable),
			"run vscript from a terminal to get a shell, or use .exec()")
	}
	e.mu.Lock()
	rc := c.rt
	e.mu.Unlock()
	if rc == nil {
		return fmt.Errorf("container shell %s: %w: the container is not running", c.name, errdefs.ErrConflict)
	}
	old, err := term.MakeRaw(int(os.Stdin.Fd()))
	if err != nil {
		return fmt.Errorf("container shell %s: %w", c.name, err)
	}
	defer term.Restore(int(os.Stdin.Fd()), old)
	p, err := runtime.Exec(rc.Pid(), &runtime.ExecSpec{
		Args: []string{"/bin/sh"}, Env: c.env, Cwd: c.workdir, User: c.user, TTY: true,
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
	})
	if err != nil {
		return fmt.Errorf("container shell %s: %w", c.name, err)
	}
	_, err = p.Wait()
	return err
}
