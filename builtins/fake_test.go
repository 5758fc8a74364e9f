package builtins

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"vscript/engine"
)

// fakeContainers is the container and image half of fakeEngine: containers
// live in memory and move through Docker's states, so tests can see what the
// builtins asked for and in which order.
type fakeContainers struct {
	ctrs   []*fakeContainer // creation order; removing drops one
	specs  []engine.RunSpec // every spec Create received
	calls  []string         // "create web", "start web", ... by container name
	images []*fakeImage     // seeded on first use
	count  int
}

type fakeContainer struct {
	info  engine.ContainerInfo
	spec  engine.RunSpec
	files map[string][]byte
}

type fakeImage struct {
	info    engine.ImageInfo
	history []engine.HistoryEntry
}

func (f *fakeContainers) call(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeContainers) find(ref string) (*fakeContainer, error) {
	var found []*fakeContainer
	for _, c := range f.ctrs {
		if c.info.Name == ref || c.info.ID == ref {
			return c, nil
		}
		if strings.HasPrefix(c.info.ID, ref) {
			found = append(found, c)
		}
	}
	if len(found) == 1 && ref != "" {
		return found[0], nil
	}
	return nil, fmt.Errorf("container %s: %w", ref, engine.ErrNotFound)
}

func (f *fakeContainers) running(ref string) (*fakeContainer, error) {
	c, err := f.find(ref)
	if err != nil {
		return nil, err
	}
	if c.info.Status != "running" {
		return nil, fmt.Errorf("container %s: %w: not running", c.info.Name, engine.ErrConflict)
	}
	return c, nil
}

var exitRE = regexp.MustCompile(`^exit (\d+)$`)

// exitCode is what the fake's programs exit with: 1 for "false", N for
// "exit N", else 0.
func exitCode(argv []string) int {
	if len(argv) == 0 {
		return 0
	}
	last := argv[len(argv)-1]
	if last == "false" {
		return 1
	}
	if m := exitRE.FindStringSubmatch(last); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

func (f *fakeContainers) Create(_ context.Context, spec engine.RunSpec) (*engine.ContainerInfo, error) {
	f.specs = append(f.specs, spec)
	img, err := f.image(spec.Image)
	if err != nil {
		return nil, err
	}
	f.count++
	name := spec.Name
	if name == "" {
		name = fmt.Sprintf("ctr%d", f.count)
	}
	if _, err := f.find(name); err == nil {
		return nil, fmt.Errorf("container create %s: %w: the name is in use", name, engine.ErrConflict)
	}
	id := fmt.Sprintf("%02x%062d", f.count, 0)
	c := &fakeContainer{spec: spec, files: map[string][]byte{}, info: engine.ContainerInfo{
		ID: id, Name: name, Image: spec.Image, ImageID: img.info.ID, Status: "created", Hostname: spec.Hostname,
	}}
	if c.info.Hostname == "" {
		c.info.Hostname = id[:12]
	}
	switch {
	case spec.Network == "bridge":
		c.info.Networks = []engine.NetworkAddr{{Network: "bridge", IP: fmt.Sprintf("172.17.0.%d", f.count+1)}}
	case spec.Network == "none":
		c.info.Networks = []engine.NetworkAddr{{Network: "none"}}
	case spec.Network == "host" || strings.HasPrefix(spec.Network, "container:"):
	default:
		c.info.Networks = []engine.NetworkAddr{{Network: spec.Network, IP: fmt.Sprintf("172.18.0.%d", f.count+1)},
			{Network: "bridge", IP: fmt.Sprintf("172.17.0.%d", f.count+1)}}
	}
	f.ctrs = append(f.ctrs, c)
	f.call("create %s", name)
	return &c.info, nil
}

func (f *fakeContainers) Start(_ context.Context, ref string) error {
	c, err := f.find(ref)
	if err != nil {
		return err
	}
	f.call("start %s", c.info.Name)
	argv := append(append([]string{}, c.spec.Entrypoint...), c.spec.Cmd...)
	if len(argv) > 0 && argv[0] == "missing" {
		c.info.ExitCode = 127
		return fmt.Errorf("container start %s: exec missing: %w", c.info.Name, engine.ErrNotFound)
	}
	c.info.Status, c.info.Pid = "running", 1000+len(f.calls)
	return nil
}

func (f *fakeContainers) Wait(_ context.Context, ref string) (int, error) {
	c, err := f.find(ref)
	if err != nil {
		return 0, err
	}
	f.call("wait %s", c.info.Name)
	switch c.info.Status {
	case "created":
		return 0, fmt.Errorf("container wait %s: %w: never started (the fake cannot block)", c.info.Name, engine.ErrConflict)
	case "running":
		c.info.Status, c.info.Pid = "exited", 0
		c.info.ExitCode = exitCode(append(append([]string{}, c.spec.Entrypoint...), c.spec.Cmd...))
	}
	return c.info.ExitCode, nil
}

func (f *fakeContainers) Stop(_ context.Context, ref string, timeout time.Duration) error {
	c, err := f.find(ref)
	if err != nil {
		return err
	}
	f.call("stop %s %s", c.info.Name, timeout)
	if c.info.Status == "running" {
		c.info.Status, c.info.Pid, c.info.ExitCode = "exited", 0, 143
	}
	return nil
}

var fakeSignals = map[string]int{"KILL": 9, "SIGKILL": 9, "9": 9, "TERM": 15, "SIGTERM": 15, "15": 15, "HUP": 1, "1": 1}

func (f *fakeContainers) Kill(_ context.Context, ref string, signal string) error {
	c, err := f.running(ref)
	if err != nil {
		return err
	}
	n, ok := fakeSignals[signal]
	if !ok {
		return fmt.Errorf("container kill %s: %w: unknown signal %q", c.info.Name, engine.ErrInvalid, signal)
	}
	f.call("kill %s %s", c.info.Name, signal)
	c.info.Status, c.info.Pid, c.info.ExitCode = "exited", 0, 128+n
	return nil
}

func (f *fakeContainers) Restart(ctx context.Context, ref string, timeout time.Duration) error {
	if err := f.Stop(ctx, ref, timeout); err != nil {
		return err
	}
	return f.Start(ctx, ref)
}

func (f *fakeContainers) Remove(_ context.Context, ref string, force, volumes bool) error {
	c, err := f.find(ref)
	if err != nil {
		return err
	}
	if c.info.Status == "running" && !force {
		return fmt.Errorf("container rm %s: %w: it is running (stop it, or force=True)", c.info.Name, engine.ErrConflict)
	}
	f.call("rm %s force=%t volumes=%t", c.info.Name, force, volumes)
	for i, x := range f.ctrs {
		if x == c {
			f.ctrs = append(f.ctrs[:i], f.ctrs[i+1:]...)
			break
		}
	}
	return nil
}

func (f *fakeContainers) Container(ref string) (*engine.ContainerInfo, error) {
	c, err := f.find(ref)
	if err != nil {
		return nil, err
	}
	info := c.info // a copy, as the real engine hands out
	return &info, nil
}

func (f *fakeContainers) Containers(all bool) ([]*engine.ContainerInfo, error) {
	var out []*engine.ContainerInfo
	for _, c := range f.ctrs {
		if all || c.info.Status == "running" {
			info := c.info
			out = append(out, &info)
		}
	}
	return out, nil
}

func (f *fakeContainers) Logs(ref string) (string, error) {
	c, err := f.find(ref)
	if err != nil {
		return "", err
	}
	return "logs of " + c.info.Name + "\n", nil
}

func (f *fakeContainers) ContainerExec(_ context.Context, ref string, spec engine.ContainerExecSpec) (*engine.ExecResult, error) {
	c, err := f.running(ref)
	if err != nil {
		return nil, err
	}
	f.call("exec %s %q env=%q dir=%q user=%q tty=%t stdin=%q", c.info.Name, spec.Args, spec.Env, spec.Dir, spec.User,
		spec.TTY, spec.Stdin)
	if code := exitCode(spec.Args); code != 0 {
		return &engine.ExecResult{ExitCode: code, Stderr: "nope\n", Output: "nope\n"}, nil
	}
	return &engine.ExecResult{Stdout: "out\n", Output: "out\n"}, nil
}

// Inspect answers with the value types an engine's JSON-like map holds,
// typed slices and maps included.
func (f *fakeContainers) Inspect(ref string) (map[string]any, error) {
	c, err := f.find(ref)
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"Name": "/" + c.info.Name,
		"Id":   c.info.ID,
		"State": map[string]any{
			"Status": c.info.Status, "Running": c.info.Status == "running", "Pid": c.info.Pid, "ExitCode": c.info.ExitCode,
		},
		"Config": map[string]any{
			"Cmd": c.spec.Cmd, "Entrypoint": []string(nil), "Env": c.spec.Env, "Volumes": map[string]struct{}(nil),
			"ExposedPorts": map[string]struct{}{"80/tcp": {}},
		},
		"Mounts": []any{map[string]any{"Type": "volume", "RW": true, "Propagation": ""}},
		"NetworkSettings": map[string]any{
			"Ports": map[string][]map[string]string{"80/tcp": {{"HostIp": "0.0.0.0", "HostPort": "8000"}}},
		},
		"HostConfig": map[string]any{"Memory": c.spec.Memory, "NanoCpus": int64(c.spec.CPUs * 1e9), "CPUs": c.spec.CPUs},
	}, nil
}

func (f *fakeContainers) Diff(ref string) ([]engine.Change, error) {
	c, err := f.find(ref)
	if err != nil {
		return nil, err
	}
	changes := []engine.Change{{Kind: "D", Path: "/etc/motd"}}
	paths := make([]string, 0, len(c.files))
	for p := range c.files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		changes = append(changes, engine.Change{Kind: "A", Path: p})
	}
	return changes, nil
}

func (f *fakeContainers) Commit(_ context.Context, ref, tag string) (*engine.ImageInfo, error) {
	c, err := f.find(ref)
	if err != nil {
		return nil, err
	}
	base, err := f.image(c.spec.Image)
	if err != nil {
		return nil, err
	}
	f.call("commit %s %s", c.info.Name, tag)
	img := &fakeImage{info: base.info, history: append([]engine.HistoryEntry{{CreatedBy: "commit " + c.info.Name}}, base.history...)}
	img.info.ID = fmt.Sprintf("sha256:c%063d", len(f.images))
	img.info.Ref, img.info.Tags = normalRef(tag), []string{normalRef(tag)}
	img.info.Layers = append(append([]string{}, base.info.Layers...), fmt.Sprintf("sha256:l%063d", len(f.images)))
	f.images = append(f.images, img)
	info := img.info
	return &info, nil
}

func (f *fakeContainers) ReadFile(ref, path string) ([]byte, error) {
	c, err := f.find(ref)
	if err != nil {
		return nil, err
	}
	data, ok := c.files[path]
	if !ok {
		return nil, fmt.Errorf("read %s:%s: %w", c.info.Name, path, engine.ErrNotFound)
	}
	return data, nil
}

func (f *fakeContainers) WriteFile(ref, path string, data []byte) error {
	c, err := f.find(ref)
	if err != nil {
		return err
	}
	c.files[path] = data
	return nil
}

func (f *fakeContainers) Copy(_ context.Context, src, dst string) error {
	f.call("cp %s %s", src, dst)
	return nil
}

// Port reads the container's -p specs as the real engine publishes them.
func (f *fakeContainers) Port(ref, port string) (string, error) {
	c, err := f.find(ref)
	if err != nil {
		return "", err
	}
	if !strings.Contains(port, "/") {
		port += "/tcp"
	}
	for _, p := range c.spec.Ports {
		p, proto, ok := strings.Cut(p, "/")
		if !ok {
			proto = "tcp"
		}
		parts := strings.Split(p, ":")
		if parts[len(parts)-1]+"/"+proto != port {
			continue
		}
		switch len(parts) {
		case 1:
			return "0.0.0.0:32768", nil
		case 2:
			return "0.0.0.0:" + parts[0], nil
		default:
			return parts[0] + ":" + parts[1], nil
		}
	}
	return "", fmt.Errorf("port %s %s: %w: not published", c.info.Name, port, engine.ErrNotFound)
}

func (f *fakeContainers) Shell(_ context.Context, ref string) error {
	c, err := f.running(ref)
	if err != nil {
		return err
	}
	f.call("shell %s", c.info.Name)
	return nil
}

func normalRef(ref string) string {
	if strings.HasPrefix(ref, "sha256:") || strings.Contains(ref[strings.LastIndex(ref, "/")+1:], ":") {
		return ref
	}
	return ref + ":latest"
}

func (f *fakeContainers) image(ref string) (*fakeImage, error) {
	if f.images == nil {
		f.images = []*fakeImage{
			{info: engine.ImageInfo{ID: "sha256:b" + strings.Repeat("0", 63), Tags: []string{"busybox:latest"},
				Layers: []string{"sha256:" + strings.Repeat("1", 64)},
				Config: engine.ImageConfig{Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}}},
				history: []engine.HistoryEntry{{CreatedBy: `CMD ["sh"]`, EmptyLayer: true}, {CreatedBy: "ADD busybox /", Comment: "built in"}}},
			{info: engine.ImageInfo{ID: "sha256:a" + strings.Repeat("0", 63), Tags: []string{"httpd:latest"},
				Layers: []string{"sha256:" + strings.Repeat("1", 64), "sha256:" + strings.Repeat("2", 64)},
				Config: engine.ImageConfig{Entrypoint: []string{"httpd"}, Cmd: []string{"-f"}, WorkingDir: "/usr/local/apache2",
					ExposedPorts: []string{"80/tcp"}, Volumes: []string{"/data"}, Labels: map[string]string{"b": "2", "a": "1"}}}},
		}
	}
	want := normalRef(ref)
	for _, img := range f.images {
		if img.info.ID == ref || (len(img.info.Tags) > 0 && img.info.Tags[0] == want) {
			return img, nil
		}
	}
	return nil, fmt.Errorf("image %s: %w", ref, engine.ErrNotFound)
}

func (f *fakeContainers) Image(ref string) (*engine.ImageInfo, error) {
	img, err := f.image(ref)
	if err != nil {
		return nil, err
	}
	info := img.info
	info.Ref = normalRef(ref)
	if ref == img.info.ID {
		info.Ref = img.info.Tags[0]
	}
	return &info, nil
}

func (f *fakeContainers) Images() ([]*engine.ImageInfo, error) {
	f.image("") // seed
	var out []*engine.ImageInfo
	for _, img := range f.images {
		info := img.info
		info.Ref = info.Tags[0]
		out = append(out, &info)
	}
	return out, nil
}

func (f *fakeContainers) ImageHistory(ref string) ([]engine.HistoryEntry, error) {
	img, err := f.image(ref)
	if err != nil {
		return nil, err
	}
	return img.history, nil
}

func (f *fakeContainers) ImageRemove(ref string, force bool) error {
	img, err := f.image(ref)
	if err != nil {
		return err
	}
	for _, c := range f.ctrs {
		if c.info.ImageID == img.info.ID && !force {
			return fmt.Errorf("image rm %s: %w: container %s uses it", ref, engine.ErrConflict, c.info.Name)
		}
	}
	f.call("rmi %s force=%t", ref, force)
	for i, x := range f.images {
		if x == img {
			f.images = append(f.images[:i], f.images[i+1:]...)
			break
		}
	}
	return nil
}
