package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"vscript/engine/errdefs"
	"vscript/engine/event"
	"vscript/engine/image"
	"vscript/engine/runtime"
)

// container is the engine's record of one container of the lab.
type container struct {
	id, name string
	spec     RunSpec
	img      *image.Image
	created  time.Time
	hostname string
	args     []string // entrypoint + cmd, merged
	env      []string
	workdir  string
	user     string
	net      ctrNet  // its networks (netglue.go)
	vols     ctrVols // its mounts (volglue.go)

	dir     string // scratch: upper, work, merged, etc
	merged  string
	lowers  []string // absolute, topmost first
	release func()   // lets the image's layers go

	logs Capture // stdout and stderr, for .logs()

	// Guarded by Engine.mu.
	status   string // created, running, exited
	exitCode int
	rt       *runtime.Container
	done     chan struct{} // closed when the current run has ended
	removed  bool
}

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// lookup finds a container by name, id or unique id prefix. Call with e.mu held.
func (e *Engine) lookup(ref string) (*container, error) {
	ref = strings.TrimPrefix(ref, "/")
	if id, ok := e.names[ref]; ok {
		return e.ctrs[id], nil
	}
	if c, ok := e.ctrs[ref]; ok {
		return c, nil
	}
	var found *container
	if len(ref) >= 1 && isHex(ref) {
		for id, c := range e.ctrs {
			if strings.HasPrefix(id, ref) {
				if found != nil {
					return nil, fmt.Errorf("container %s: ambiguous id prefix: %w", ref, errdefs.ErrInvalid)
				}
				found = c
			}
		}
	}
	if found == nil {
		return nil, errdefs.WithHint(fmt.Errorf("container %s: %w", ref, errdefs.ErrNotFound),
			"containers() lists the containers of this lab")
	}
	return found, nil
}

func isHex(s string) bool {
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// Create makes a container as `docker create` does: its writable layer is
// prepared and mounted, nothing runs yet.
func (e *Engine) Create(ctx context.Context, spec RunSpec) (*ContainerInfo, error) {
	start := time.Now()
	c, err := e.create(spec)
	if err != nil {
		return nil, err
	}
	e.emit(event.Event{Op: "container create", Subject: c.name, Docker: dockerRun("create", spec),
		Linux: []string{
			"mkdir -p " + c.dir + "/upper " + c.dir + "/work " + c.merged,
			"mount -t overlay overlay -o " + overlayData(c.lowers, c.dir+"/upper", c.dir+"/work") + " " + c.merged,
		}}, start)
	return e.info(c), nil
}

func (e *Engine) create(spec RunSpec) (*container, error) {
	if spec.Image == "" {
		return nil, fmt.Errorf("container create: %w: no image", errdefs.ErrInvalid)
	}
	img, err := e.images.Get(spec.Image)
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) && errdefs.Hint(err) == "" {
			err = errdefs.WithHint(err, "busybox and httpd are built in; other images come from image_build() or image_load()")
		}
		return nil, err
	}
	args := runtime.MergeArgs(img.Config.Entrypoint, img.Config.Cmd, spec.Entrypoint, spec.Cmd)
	if len(args) == 0 {
		return nil, fmt.Errorf("container create: %w: no command specified (the image has no CMD or ENTRYPOINT)", errdefs.ErrInvalid)
	}
	if err := validateResources(spec); err != nil {
		return nil, err
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if spec.Name != "" {
		if !validName.MatchString(spec.Name) {
			return nil, fmt.Errorf("container create %s: %w: invalid name (want [a-zA-Z0-9][a-zA-Z0-9_.-]+)", spec.Name, errdefs.ErrInvalid)
		}
		if id, taken := e.names[spec.Name]; taken {
			return nil, errdefs.WithHint(
				fmt.Errorf("container create %s: %w: the name is already in use by container %s", spec.Name, errdefs.ErrConflict, id[:12]),
				"remove it first (.rm(force=True)) or pick another name")
		}
	}
	id := e.newIDLocked("container")
	name := spec.Name
	if name == "" {
		name = randomName(id)
		for n := 2; e.names[name] != ""; n++ {
			name = fmt.Sprintf("%s%d", randomName(id), n)
		}
	}
	c := &container{
		id: id, name: name, spec: spec, img: img, created: time.Now(),
		hostname: spec.Hostname, args: args,
		env:     mergeEnv(img.Config.Env, spec.Env),
		workdir: firstNonEmpty(spec.Workdir, img.Config.WorkingDir, "/"),
		user:    firstNonEmpty(spec.User, img.Config.User),
		dir:     filepath.Join(e.lab.Scratch, "containers", id),
		status:  "created",
	}
	if err := e.netCreate(c); err != nil {
		return nil, err
	}
	if c.hostname == "" {
		c.hostname = id[:12]
		if c.net.mode == "host" {
			c.hostname, _ = os.Hostname()
		}
	}
	if err := e.prepareRootfs(c); err != nil {
		e.netRemove(c)
		return nil, fmt.Errorf("container create %s: %w", name, err)
	}
	if err := e.volCreate(c); err != nil {
		e.removeRootfs(c)
		e.netRemove(c)
		return nil, err
	}
	e.ctrs[id] = c
	e.names[name] = id
	e.order = append(e.order, id)
	return c, nil
}

// prepareRootfs makes the container's writable layer and mounts the merged
// view in the lab, where it stays until the container is removed: a student
// can look at it (inspect()'s GraphDriver.MergedDir), and cp, read_file and
// diff work whether the container runs or not. The container's own mount
// namespace gets the same mount when it is cloned from the lab's.
func (e *Engine) prepareRootfs(c *container) (err error) {
	release, err := e.images.Hold(c.img)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			release()
			os.RemoveAll(c.dir)
		}
	}()
	mnt, err := e.images.Prepare(c.img, c.dir)
	if err != nil {
		return err
	}
	c.merged = filepath.Join(c.dir, "merged")
	if err := os.MkdirAll(c.merged, 0o755); err != nil {
		return err
	}
	initLayer, err := e.initLayer()
	if err != nil {
		return err
	}
	c.lowers = append([]string{initLayer}, e.images.LowerDirs(c.img)...)
	if err := mountOverlay(c.lowers, mnt.Upper, mnt.Work, c.merged); err != nil {
		return err
	}
	c.release = release
	return nil
}

// validateResources checks limits as docker create does, before anything
// is made.
func validateResources(spec RunSpec) error {
	bad := func(what string) error {
		return fmt.Errorf("container create %s: %w: %s", firstNonEmpty(spec.Name, spec.Image), errdefs.ErrInvalid, what)
	}
	switch {
	case spec.Memory < 0:
		return bad("memory: must be positive")
	case spec.Memory > 0 && spec.Memory < 6<<20:
		return bad("memory: minimum memory limit allowed is 6MB")
	case spec.CPUs < 0:
		return bad("cpus: must be positive")
	case spec.CPUs > float64(goruntime.NumCPU()):
		return bad(fmt.Sprintf("cpus: range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", goruntime.NumCPU(), goruntime.NumCPU()))
	}
	return nil
}

// initLayer returns the lab's init layer, made on first use: the mount
// points every container needs (/proc, /sys, /dev, the /etc files the
// runtime binds over), as Docker's "-init" layer. Lying under the writable
// layer, they never show in diff() or commit().
func (e *Engine) initLayer() (string, error) {
	e.initOnce.Do(func() {
		dir := filepath.Join(e.lab.Scratch, "init")
		for _, d := range []string{"proc", "sys", "dev/pts", "dev/shm", "etc"} {
			if e.initErr = os.MkdirAll(filepath.Join(dir, d), 0o755); e.initErr != nil {
				return
			}
		}
		for _, f := range []string{"etc/hostname", "etc/hosts", "etc/resolv.conf"} {
			if e.initErr = os.WriteFile(filepath.Join(dir, f), nil, 0o644); e.initErr != nil {
				return
			}
		}
		e.initDir = dir
	})
	return e.initDir, e.initErr
}

// Start runs a created or exited container's command.
func (e *Engine) Start(ctx context.Context, ref string) error {
	start := time.Now()
	e.mu.Lock()
	c, err := e.lookup(ref)
	if err == nil && c.status == "running" {
		err = fmt.Errorf("container start %s: %w: already running", c.name, errdefs.ErrConflict)
	}
	if err != nil {
		e.mu.Unlock()
		return err
	}
	e.mu.Unlock()

	// With a network, its command may reach the world.
	if c.net.mode != "none" {
		if err := e.lab.Ready(); err != nil {
			return fmt.Errorf("container start %s: %w", c.name, err)
		}
	}
	spec, err := e.runtimeSpec(c)
	if err != nil {
		return fmt.Errorf("container start %s: %w", c.name, err)
	}
	if err := keepEtc(c, spec.Etc); err != nil {
		return fmt.Errorf("container start %s: %w", c.name, err)
	}
	rc, err := runtime.Create(spec)
	if err != nil {
		return e.startError(c, err)
	}
	netLinux, err := e.netStart(c, rc.Pid())
	if err != nil {
		rc.Destroy()
		e.netStop(c)
		return fmt.Errorf("container start %s: %w", c.name, err)
	}
	if err := rc.Start(); err != nil {
		rc.Destroy()
		e.netStop(c)
		return e.startError(c, err)
	}
	done := make(chan struct{})
	e.mu.Lock()
	c.rt, c.status, c.done = rc, "running", done
	e.mu.Unlock()
	go e.reap(c, rc, done)
	// The network is wired before the command runs: its lines go before
	// the runtime's last one, the exec.
	linux := spec.Explain()
	if filepath.IsAbs(spec.NetNS) && len(linux) > 0 {
		// network="container:NAME": no network namespace of its own, that one's.
		linux[0] = "nsenter --net=" + spec.NetNS + " " + linux[0]
	}
	if n := len(linux); n > 0 {
		linux = append(append(linux[:n-1:n-1], netLinux...), linux[n-1])
	}
	e.emit(event.Event{Op: "container start", Subject: c.name, Docker: "docker start " + c.name, Linux: linux}, start)
	return nil
}

// keepEtc keeps a copy of the files the runtime binds over /etc, so that cp
// and read_file see what the container sees, running or not.
func keepEtc(c *container, etc map[string][]byte) error {
	dir := filepath.Join(c.dir, "config")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for p, b := range etc {
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(p)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// startError reports why c's command could not run. A command that is not
// there or not executable is Docker's exit code 127 or 126, kept on the
// container as Docker does.
func (e *Engine) startError(c *container, err error) error {
	// The runtime names the container by its internal id; ours names it.
	if inner := errors.Unwrap(err); inner != nil && strings.HasPrefix(err.Error(), "container create ") {
		err = inner
	}
	var ce *runtime.CommandError
	if errors.As(err, &ce) {
		e.mu.Lock()
		c.exitCode = ce.Code
		e.mu.Unlock()
		return fmt.Errorf("container start %s: %s (exit code %d): %w", c.name, ce.Msg, ce.Code, errdefs.ErrInvalid)
	}
	return fmt.Errorf("container start %s: %w", c.name, err)
}

// reap records a container's exit and releases its run-time resources.
func (e *Engine) reap(c *container, rc *runtime.Container, done chan struct{}) {
	st, _ := rc.Wait()
	rc.Destroy()
	e.netStop(c)
	e.mu.Lock()
	c.status, c.exitCode, c.rt = "exited", st.Code, nil
	auto := c.spec.AutoRemove && !c.removed
	e.mu.Unlock()
	close(done)
	if auto {
		e.Remove(context.Background(), c.id, true, true)
	}
}

// runtimeSpec is what the runtime needs to run c.
func (e *Engine) runtimeSpec(c *container) (*runtime.Spec, error) {
	out := e.logWriter(c, c.logs.Stdout())
	errw := e.logWriter(c, c.logs.Stderr())
	netns, err := e.netNS(c)
	if err != nil {
		return nil, err
	}
	mounts, err := e.volMounts(c)
	if err != nil {
		return nil, err
	}
	hosts, resolv := e.netEtc(c)
	return &runtime.Spec{
		// The runtime names the container's cgroups after this, and cgroups
		// are the machine's, not the lab's: labs with the same seed (hence
		// the same container ids) must not meet there.
		ID:             e.runID + "-" + c.id[:12],
		Hostname:       c.hostname,
		Rootfs:         runtime.Rootfs{Merged: c.merged, Upper: filepath.Join(c.dir, "upper"), Work: filepath.Join(c.dir, "work")},
		ReadOnlyRootfs: c.spec.ReadOnly,
		Args:           c.args,
		Env:            c.env,
		Cwd:            c.workdir,
		User:           c.user,
		Mounts:         mounts,
		Etc: map[string][]byte{
			"/etc/hostname":    []byte(c.hostname + "\n"),
			"/etc/hosts":       hosts,
			"/etc/resolv.conf": resolv,
		},
		NetNS:  netns,
		TTY:    c.spec.TTY,
		Stdout: out,
		Stderr: errw,
		Resources: runtime.Resources{
			Memory:    c.spec.Memory,
			PidsLimit: c.spec.PidsLimit,
			CPUs:      c.spec.CPUs,
		},
	}, nil
}

// Wait blocks until the container is not running and returns its exit code.
func (e *Engine) Wait(ctx context.Context, ref string) (int, error) {
	e.mu.Lock()
	c, err := e.lookup(ref)
	if err != nil {
		e.mu.Unlock()
		return 0, err
	}
	done := c.done
	e.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return c.exitCode, nil
}

// Stop sends the image's stop signal (SIGTERM by default), then SIGKILL
// after timeout, as `docker stop -t`.
func (e *Engine) Stop(ctx context.Context, ref string, timeout time.Duration) error {
	start := time.Now()
	e.mu.Lock()
	c, err := e.lookup(ref)
	if err != nil {
		e.mu.Unlock()
		return err
	}
	rc, done := c.rt, c.done
	e.mu.Unlock()
	if rc == nil {
		return nil // docker stop of a stopped container succeeds
	}
	sig := syscall.SIGTERM
	if s := c.img.Config.StopSignal; s != "" {
		if n, err := parseSignal(s); err == nil {
			sig = n
		}
	}
	rc.Signal(sig)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		rc.Signal(syscall.SIGKILL)
		<-done
	case <-ctx.Done():
		return ctx.Err()
	}
	e.emit(event.Event{Op: "container stop", Subject: c.name,
		Docker: fmt.Sprintf("docker stop -t %d %s", int(timeout.Seconds()), c.name),
		Linux:  []string{fmt.Sprintf("kill -%s %d; sleep %d; kill -KILL %d", unix.SignalName(sig)[3:], rc.Pid(), int(timeout.Seconds()), rc.Pid())}}, start)
	return nil
}

// Kill sends a signal to the container's PID 1.
func (e *Engine) Kill(ctx context.Context, ref, signal string) error {
	start := time.Now()
	sig, err := parseSignal(signal)
	if err != nil {
		return fmt.Errorf("container kill %s: %w", ref, err)
	}
	e.mu.Lock()
	c, err := e.lookup(ref)
	if err != nil {
		e.mu.Unlock()
		return err
	}
	rc := c.rt
	e.mu.Unlock()
	if rc == nil {
		return fmt.Errorf("container kill %s: %w: not running", c.name, errdefs.ErrConflict)
	}
	if err := rc.Signal(sig); err != nil {
		return err
	}
	e.emit(event.Event{Op: "container kill", Subject: c.name, Docker: "docker kill -s " + unix.SignalName(sig)[3:] + " " + c.name,
		Linux: []string{fmt.Sprintf("kill -%s %d", unix.SignalName(sig)[3:], rc.Pid())}}, start)
	return nil
}

// parseSignal takes "KILL", "SIGKILL", "kill" or "9".
func parseSignal(s string) (syscall.Signal, error) {
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err == nil && fmt.Sprint(n) == s {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("%w: signal %s out of range", errdefs.ErrInvalid, s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("%w: unknown signal %q", errdefs.ErrInvalid, s)
}

// Restart stops the container if it runs, then starts it again.
func (e *Engine) Restart(ctx context.Context, ref string, timeout time.Duration) error {
	if err := e.Stop(ctx, ref, timeout); err != nil {
		return err
	}
	return e.Start(ctx, ref)
}

// Remove deletes a container: its process (with force), its writable layer
// and its name.
func (e *Engine) Remove(ctx context.Context, ref string, force, volumes bool) error {
	start := time.Now()
	e.mu.Lock()
	c, err := e.lookup(ref)
	if err != nil {
		e.mu.Unlock()
		return err
	}
	if c.removed {
		e.mu.Unlock()
		return nil
	}
	if c.status == "running" && !force {
		e.mu.Unlock()
		return errdefs.WithHint(fmt.Errorf("container rm %s: %w: the container is running", c.name, errdefs.ErrConflict),
			"stop it first, or rm(force=True)")
	}
	c.removed = true
	rc, done := c.rt, c.done
	e.mu.Unlock()
	if rc != nil {
		rc.Signal(syscall.SIGKILL)
		<-done
	}
	err = e.removeRootfs(c)
	e.netRemove(c)
	e.volRemove(c, volumes)
	e.mu.Lock()
	delete(e.ctrs, c.id)
	delete(e.names, c.name)
	for i, id := range e.order {
		if id == c.id {
			e.order = append(e.order[:i], e.order[i+1:]...)
			break
		}
	}
	e.mu.Unlock()
	if err != nil {
		return fmt.Errorf("container rm %s: %w", c.name, err)
	}
	docker := "docker rm " + c.name
	if force {
		docker = "docker rm -f " + c.name
	}
	e.emit(event.Event{Op: "container rm", Subject: c.name, Docker: docker,
		Linux: []string{"umount " + c.merged, "rm -rf " + c.dir}}, start)
	return nil
}

func (e *Engine) removeRootfs(c *container) error {
	var errs []error
	if err := unix.Unmount(c.merged, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		errs = append(errs, fmt.Errorf("umount %s: %w", c.merged, err))
	}
	if c.release != nil {
		c.release()
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Container returns one container's state.
func (e *Engine) Container(ref string) (*ContainerInfo, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.lookup(ref)
	if err != nil {
		return nil, err
	}
	return e.infoLocked(c), nil
}

// Containers lists the lab's containers in creation order: running ones, or
// all with all.
func (e *Engine) Containers(all bool) ([]*ContainerInfo, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var list []*ContainerInfo
	for _, id := range e.order {
		c := e.ctrs[id]
		if all || c.status == "running" {
			list = append(list, e.infoLocked(c))
		}
	}
	return list, nil
}

func (e *Engine) info(c *container) *ContainerInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.infoLocked(c)
}

func (e *Engine) infoLocked(c *container) *ContainerInfo {
	info := &ContainerInfo{
		ID: c.id, Name: c.name, Image: c.spec.Image, ImageID: c.img.ID,
		Status: c.status, ExitCode: c.exitCode, Hostname: c.hostname, Created: c.created,
	}
	if c.rt != nil {
		info.Pid = c.rt.Pid()
	}
	info.Networks = e.netAddrs(c)
	return info
}

// Logs returns what the container has written so far.
func (e *Engine) Logs(ref string) (string, error) {
	e.mu.Lock()
	c, err := e.lookup(ref)
	e.mu.Unlock()
	if err != nil {
		return "", err
	}
	return c.logs.Result(nil).Output, nil
}

// logWriter shows a container's output live when the user asked for it (-v).
func (e *Engine) logWriter(c *container, w interface{ Write([]byte) (int, error) }) interface{ Write([]byte) (int, error) } {
	if e.opts.LiveLogs == nil {
		return w
	}
	return &prefixWriter{w: w, live: e.opts.LiveLogs, prefix: c.name + " | "}
}

// ContainerExec runs a program inside a running container, joining all its
// namespaces (docker exec). A program that cannot be started is a result
// with Docker's exit code (126, 127) and the reason on stderr.
func (e *Engine) ContainerExec(ctx context.Context, ref string, spec ContainerExecSpec) (*ExecResult, error) {
	start := time.Now()
	e.mu.Lock()
	c, err := e.lookup(ref)
	if err != nil {
		e.mu.Unlock()
		return nil, err
	}
	rc := c.rt
	e.mu.Unlock()
	if rc == nil {
		return nil, fmt.Errorf("container exec %s: %w: the container is not running", c.name, errdefs.ErrConflict)
	}
	if len(spec.Args) == 0 {
		return nil, fmt.Errorf("container exec %s: %w: empty command", c.name, errdefs.ErrInvalid)
	}
	var cap Capture
	rs := &runtime.ExecSpec{
		Args:   spec.Args,
		Env:    mergeEnv(c.env, spec.Env),
		Cwd:    firstNonEmpty(spec.Dir, c.workdir),
		User:   firstNonEmpty(spec.User, c.user),
		TTY:    spec.TTY,
		Stdout: cap.Stdout(),
		Stderr: cap.Stderr(),
	}
	if spec.Stdin != nil {
		rs.Stdin = strings.NewReader(string(spec.Stdin))
	}
	p, err := runtime.Exec(rc.Pid(), rs)
	var res *ExecResult
	var ce *runtime.CommandError
	switch {
	case errors.As(err, &ce):
		cap.Stderr().Write([]byte(ce.Msg + "\n"))
		res = cap.Result(nil)
		res.ExitCode = ce.Code
	case err != nil:
		return nil, fmt.Errorf("container exec %s: %w", c.name, err)
	default:
		st, werr := p.Wait()
		var wce *runtime.CommandError
		if errors.As(werr, &wce) {
			cap.Stderr().Write([]byte(wce.Msg + "\n"))
			st.Code = wce.Code
		} else if werr != nil {
			return nil, fmt.Errorf("container exec %s: %w", c.name, werr)
		}
		res = cap.Result(nil)
		res.ExitCode = st.Code
	}
	e.emit(event.Event{Op: "container exec", Subject: c.name, Docker: "docker exec " + c.name + " " + shellQuote(spec.Args),
		Linux: []string{fmt.Sprintf("nsenter --target %d --mount --uts --ipc --net --pid -- %s", rc.Pid(), shellQuote(spec.Args))}}, start)
	return res, nil
}

func mergeEnv(base, over []string) []string {
	out := append([]string(nil), base...)
	for _, kv := range over {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, old := range out {
			if ok, _, _ := strings.Cut(old, "="); ok == k {
				out[i], replaced = kv, true
				break
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// dockerRun renders the docker command a RunSpec mirrors.
func dockerRun(verb string, s RunSpec) string {
	parts := []string{"docker", verb}
	if s.AutoRemove {
		parts = append(parts, "--rm")
	}
	if s.Name != "" {
		parts = append(parts, "--name", s.Name)
	}
	if s.Network != "" && s.Network != "bridge" {
		parts = append(parts, "--network", s.Network)
	}
	for _, p := range s.Ports {
		parts = append(parts, "-p", p)
	}
	for _, v := range s.Volumes {
		parts = append(parts, "-v", v)
	}
	for _, v := range s.VolumesFrom {
		parts = append(parts, "--volumes-from", v)
	}
	for _, kv := range s.Env {
		parts = append(parts, "-e", kv)
	}
	if s.Workdir != "" {
		parts = append(parts, "-w", s.Workdir)
	}
	if s.User != "" {
		parts = append(parts, "-u", s.User)
	}
	if s.Hostname != "" {
		parts = append(parts, "--hostname", s.Hostname)
	}
	if s.ReadOnly {
		parts = append(parts, "--read-only")
	}
	if s.TTY {
		parts = append(parts, "-t")
	}
	if s.Memory > 0 {
		parts = append(parts, "--memory", fmt.Sprint(s.Memory))
	}
	if s.PidsLimit != 0 {
		parts = append(parts, "--pids-limit", fmt.Sprint(s.PidsLimit))
	}
	if s.CPUs > 0 {
		parts = append(parts, "--cpus", fmt.Sprint(s.CPUs))
	}
	keys := make([]string, 0, len(s.Labels))
	for k := range s.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, "--label", k+"="+s.Labels[k])
	}
	if s.Entrypoint != nil {
		parts = append(parts, "--entrypoint", shellQuote([]string{strings.Join(s.Entrypoint, " ")}))
	}
	parts = append(parts, s.Image)
	return strings.Join(parts, " ") + argsSuffix(s.Cmd)
}

func argsSuffix(cmd []string) string {
	if len(cmd) == 0 {
		return ""
	}
	return " " + shellQuote(cmd)
}
