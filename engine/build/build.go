package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"vscript/engine/errdefs"
	"vscript/engine/event"
)

// Image is what the builder needs to know of an image.
type Image struct {
	// ID is the image id (its config digest), as Backend.Image returns it
	// and Backend.Commit makes it.
	ID     string
	Config v1.Config
}

// Mount is a writable root filesystem holding an image's content. What is
// written below Root becomes the next layer when the mount is passed to
// Backend.Commit. With overlayfs it is the merged directory of a mount
// whose upper directory is the new layer.
type Mount interface {
	Root() string
	// Release unmounts and discards the mount. Build calls it once, after
	// the Commit that used it (or on failure).
	Release() error
}

// RunSpec is the process of a RUN step.
type RunSpec struct {
	// Args is the argv; a shell-form RUN is already wrapped in the shell
	// (["/bin/sh", "-c", "make all"]).
	Args []string
	// Env is the image's environment plus the build args the stage
	// declared, as Docker passes them to RUN.
	Env []string
	// User is USER as written (name, uid, user:group), "" for root; names
	// resolve in the container's /etc/passwd.
	User string
	// WorkingDir is the current WORKDIR, "" for "/".
	WorkingDir string
}

// CommitRequest asks for the image that one step makes.
type CommitRequest struct {
	// Parent is the image the step started from, "" for scratch. The new
	// image has Parent's layers and history, plus what this step adds.
	Parent string
	// Mount holds the step's filesystem changes: they become exactly one
	// new layer (a backend should mark the history entry EmptyLayer, as
	// Docker does, when the changes are empty). nil for a config-only
	// step: no layer, and History.EmptyLayer is already true.
	Mount Mount
	// Discard lists absolute paths in the image (the VOLUMEs declared so
	// far, sorted) whose contents a RUN may have changed but that must not
	// reach the layer, as Docker discards a RUN's writes to a volume: the
	// backend leaves every change below each path out of the diff, so the
	// path keeps the content it had in Parent. Empty for other steps.
	Discard []string
	// Config is the new image's config.
	Config v1.Config
	// History is the entry to append to Parent's history; Created is left
	// for the backend to set.
	History v1.History
}

// Backend is what Build needs from the image store and the container
// runtime. Methods are called from one goroutine at a time.
type Backend interface {
	// Image finds a local image by name[:tag] or id; an error wrapping
	// errdefs.ErrNotFound if there is none.
	Image(ctx context.Context, ref string) (Image, error)
	// Mount returns a writable root filesystem with imageID's content;
	// "" gives an empty one (scratch).
	Mount(ctx context.Context, imageID string) (Mount, error)
	// Run runs spec in a build container whose root filesystem is m, with
	// the stdout and stderr of the process going to out, waits, and
	// returns its exit code. err is for failures to run at all.
	Run(ctx context.Context, m Mount, spec RunSpec, out io.Writer) (exitCode int, err error)
	// Commit creates the image for one step and returns its id.
	Commit(ctx context.Context, req CommitRequest) (imageID string, err error)
}

// Deps are the parts Build is wired to.
type Deps struct {
	Backend Backend
	Cache   Cache
	// Unpack extracts the uncompressed tar stream of an ADD'ed archive
	// into dir, refusing entries that would land outside it (image.Unpack).
	Unpack func(r io.Reader, dir string) error
}

// Options are the knobs of image_build.
type Options struct {
	// ContextDir is the build context directory (already resolved against
	// the script's directory). Needed only when a COPY or ADD uses it.
	ContextDir string
	// BuildArgs override ARG defaults (docker build --build-arg).
	BuildArgs map[string]string
	// NoCache builds every step afresh; results are still recorded.
	NoCache bool
	// Tag is the subject of the events, usually the tag being built.
	Tag string
	// Events receives one "build step" event per step, when it is done,
	// whose Docker field is what `docker build` prints for it:
	//
	//	Step 2/3 : ADD htdocs/ /usr/local/apache2/htdocs
	//	 ---> Using cache
	//	 ---> 5f8d1a2b3c4d
	//
	// and "build warning" events. nil discards them.
	Events event.Sink
	// Output receives the output of RUN steps as they run. nil discards
	// it; a failing RUN's error carries the tail anyway.
	Output io.Writer
}

// RunError is a RUN step that exited non-zero.
type RunError struct {
	// Command is the RUN's arguments as written.
	Command  string
	ExitCode int
	// Output is the tail of what the command printed.
	Output string
}

func (e *RunError) Error() string {
	msg := fmt.Sprintf("RUN %s: exit code %d", e.Command, e.ExitCode)
	if e.Output != "" {
		msg += "\n" + e.Output
	}
	return msg
}

// Build runs plan and returns the id of the last stage's image. Every step
// becomes an image (config-only steps with an empty layer) and a cache
// record, as with Docker's legacy builder; tagging the result is the
// caller's business. On error nothing is left half-made: the images and
// cache records written so far are complete ones.
func Build(ctx context.Context, plan *Plan, opts Options, deps Deps) (string, error) {
	if deps.Backend == nil || deps.Cache == nil || deps.Unpack == nil {
		return "", fmt.Errorf("image build: backend, cache and unpacker are required: %w", errdefs.ErrInvalid)
	}
	b := &builder{
		ctx:    ctx,
		plan:   plan,
		opts:   opts,
		deps:   deps,
		events: opts.Events,
		lex:    shell.NewLex(plan.escape),
		total:  plan.TotalSteps(),
	}
	if b.events == nil {
		b.events = event.Discard
	}
	if b.opts.BuildArgs == nil {
		b.opts.BuildArgs = map[string]string{}
	}
	for _, w := range plan.Warnings {
		b.events.Emit(event.Event{Op: "build warning", Subject: opts.Tag, Docker: "[WARNING]: " + w})
	}
	var err error
	b.meta, err = evalMetaArgs(plan.MetaArgs, b.opts.BuildArgs, b.lex)
	if err != nil {
		return "", err
	}
	for _, step := range plan.MetaArgs {
		b.stepNo++
		b.emit(step.Text, time.Time{}, nil)
	}
	var id string
	for i, st := range plan.Stages {
		res, err := b.buildStage(st)
		if err != nil {
			return "", err
		}
		if i == len(plan.Stages)-1 && res.id == "" {
			return "", fmt.Errorf("dockerfile line %d: %s: no image was generated: a stage FROM scratch needs at least one more instruction: %w", st.Line, st.Text, errdefs.ErrInvalid)
		}
		b.done = append(b.done, res)
		id = res.id
	}
	if unused := b.unusedArgs(); len(unused) > 0 {
		b.events.Emit(event.Event{Op: "build warning", Subject: opts.Tag,
			Docker: fmt.Sprintf("[Warning] One or more build-args %v were not consumed", unused)})
	}
	return id, nil
}

type builder struct {
	ctx    context.Context
	plan   *Plan
	opts   Options
	deps   Deps
	events event.Sink
	lex    *shell.Lex

	meta    map[string]string // values of the ARGs before the first FROM
	context *Context          // opened on first use
	done    []stageResult     // stages built so far, in order

	stepNo, total int
}

type stageResult struct {
	name   string
	id     string // "" for a FROM scratch stage without steps
	config v1.Config
}

func (b *builder) buildStage(st *Stage) (stageResult, error) {
	b.stepNo++
	start := time.Now()
	res := stageResult{name: st.Name}
	name, _, err := b.lex.ProcessWord(st.From, shell.EnvsFromSlice(envList(b.meta)))
	if err != nil {
		return res, fmt.Errorf("dockerfile line %d: FROM %s: %w: %w", st.Line, st.From, err, errdefs.ErrInvalid)
	}
	if name == "" {
		return res, fmt.Errorf("dockerfile line %d: FROM %s: the base name is empty: %w", st.Line, st.From, errdefs.ErrInvalid)
	}
	if prev, ok := b.stage(name); ok {
		res.id, res.config = prev.id, prev.config
	} else if !strings.EqualFold(name, "scratch") {
		img, err := b.deps.Backend.Image(b.ctx, name)
		if err != nil {
			return res, fmt.Errorf("dockerfile line %d: FROM %s: %w", st.Line, name, err)
		}
		res.id, res.config = img.ID, img.Config
	}
	var ids []string
	if res.id != "" {
		ids = []string{" ---> " + shortID(res.id)}
	}
	b.emit(st.Text, start, ids)

	state := newStageState(b.lex, b.opts.BuildArgs, b.meta, res.config)
	for _, step := range st.Steps {
		if err := b.ctx.Err(); err != nil {
			return res, err
		}
		id, err := b.step(state, res.id, step)
		if err != nil {
			return res, atLine(step, err)
		}
		res.id, res.config = id, cloneConfig(state.config)
	}
	return res, nil
}

// stage finds an earlier stage by name (case-insensitively, as Docker).
func (b *builder) stage(name string) (stageResult, bool) {
	name = strings.ToLower(name)
	for _, s := range b.done {
		if s.name != "" && s.name == name {
			return s, true
		}
	}
	return stageResult{}, false
}

// step applies one instruction on top of image parent and returns the
// resulting image.
func (b *builder) step(state *stageState, parent string, step *Step) (string, error) {
	b.stepNo++
	start := time.Now()
	act, err := state.apply(step)
	if err != nil {
		return "", err
	}
	var id string
	var hit bool
	switch {
	case act.copy != nil:
		id, hit, err = b.copyStep(state, parent, step, act.copy)
	case act.run != nil:
		id, hit, err = b.cached(parent, act.createdBy, func() (string, error) {
			return b.runStep(state, parent, step, act)
		})
	case act.workdir != "":
		id, hit, err = b.cached(parent, act.createdBy, func() (string, error) {
			return b.workdirStep(state, parent, act)
		})
	default:
		id, hit, err = b.cached(parent, act.createdBy, func() (string, error) {
			return b.commitConfig(state, parent, act.createdBy)
		})
	}
	if err != nil {
		return "", err
	}
	lines := []string{" ---> " + shortID(id)}
	if hit {
		lines = slices.Insert(lines, 0, " ---> Using cache")
	}
	b.emit(step.Text, start, lines)
	return id, nil
}

// cached returns the image the cache holds for the step, or makes it with
// do and records it. A record whose image is gone is a miss.
func (b *builder) cached(parent, createdBy string, do func() (string, error)) (id string, hit bool, err error) {
	key := CacheKey(parent, createdBy)
	if !b.opts.NoCache {
		id, ok, err := b.deps.Cache.Get(key)
		if err != nil {
			return "", false, err
		}
		if ok {
			_, err := b.deps.Backend.Image(b.ctx, id)
			if err == nil {
				return id, true, nil
			}
			if !errors.Is(err, errdefs.ErrNotFound) {
				return "", false, err
			}
		}
	}
	id, err = do()
	if err != nil {
		return "", false, err
	}
	if err := b.deps.Cache.Put(key, id); err != nil {
		return "", false, err
	}
	return id, false, nil
}

func (b *builder) commitConfig(state *stageState, parent, createdBy string) (string, error) {
	return b.deps.Backend.Commit(b.ctx, CommitRequest{
		Parent:  parent,
		Config:  cloneConfig(state.config),
		History: v1.History{CreatedBy: createdBy, EmptyLayer: true},
	})
}

// withMount runs fn on a fresh mount of image id and releases it.
func (b *builder) withMount(id string, fn func(Mount) error) error {
	m, err := b.deps.Backend.Mount(b.ctx, id)
	if err != nil {
		return err
	}
	err = fn(m)
	if rerr := m.Release(); err == nil {
		err = rerr
	}
	return err
}

func (b *builder) runStep(state *stageState, parent string, step *Step, act *action) (string, error) {
	var id string
	err := b.withMount(parent, func(m Mount) error {
		tail := &tailBuffer{}
		var out io.Writer = tail
		if b.opts.Output != nil {
			out = io.MultiWriter(b.opts.Output, tail)
		}
		code, err := b.deps.Backend.Run(b.ctx, m, *act.run, out)
		if err != nil {
			return fmt.Errorf("RUN %s: %w", step.Args, err)
		}
		if code != 0 {
			return &RunError{Command: step.Args, ExitCode: code, Output: tail.String()}
		}
		id, err = b.deps.Backend.Commit(b.ctx, CommitRequest{
			Parent:  parent,
			Mount:   m,
			Discard: volumePaths(&state.config),
			Config:  cloneConfig(state.config),
			History: v1.History{CreatedBy: act.createdBy},
		})
		return err
	})
	return id, err
}

// workdirStep creates the WORKDIR directory if the image lacks it. Docker
// commits a WORKDIR through a container either way; when the directory
// exists the diff is empty, hence an empty layer.
func (b *builder) workdirStep(state *stageState, parent string, act *action) (string, error) {
	var id string
	err := b.withMount(parent, func(m Mount) error {
		root := filepath.Clean(m.Root())
		p, err := securejoin.SecureJoin(root, act.workdir)
		if err != nil {
			return err
		}
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			id, err = b.commitConfig(state, parent, act.createdBy)
			return err
		}
		if _, err := mkdirIn(root, act.workdir, nil); err != nil {
			return fmt.Errorf("WORKDIR %s: %w", act.workdir, err)
		}
		id, err = b.deps.Backend.Commit(b.ctx, CommitRequest{
			Parent:  parent,
			Mount:   m,
			Config:  cloneConfig(state.config),
			History: v1.History{CreatedBy: act.createdBy},
		})
		return err
	})
	return id, err
}

func (b *builder) copyStep(state *stageState, parent string, step *Step, c *copySpec) (id string, hit bool, err error) {
	instr := step.Instruction
	var srcs []Source
	if c.from != "" {
		fromID, err := b.fromImage(c.from)
		if err != nil {
			return "", false, fmt.Errorf("COPY --from=%s: %w", c.from, err)
		}
		from, err := b.deps.Backend.Mount(b.ctx, fromID)
		if err != nil {
			return "", false, fmt.Errorf("COPY --from=%s: %w", c.from, err)
		}
		defer func() {
			if rerr := from.Release(); err == nil && rerr != nil {
				err = rerr
			}
		}()
		for _, src := range c.srcs {
			ss, err := ResolveInImage(from.Root(), src)
			if err != nil {
				return "", false, fmt.Errorf("COPY --from=%s %s: %w", c.from, src, err)
			}
			srcs = append(srcs, ss...)
		}
	} else {
		for _, src := range c.srcs {
			if isURL(src) {
				if c.add {
					return "", false, fmt.Errorf("ADD %s: remote URLs are not available offline: %w", src, errdefs.ErrUnavailable)
				}
				return "", false, fmt.Errorf("COPY %s: COPY takes no URLs (ADD does): %w", src, errdefs.ErrInvalid)
			}
			bctx, err := b.buildContext()
			if err != nil {
				return "", false, fmt.Errorf("%s %s: %w", instr, src, err)
			}
			ss, err := bctx.Resolve(src)
			if err != nil {
				return "", false, fmt.Errorf("%s %s: %w", instr, src, err)
			}
			srcs = append(srcs, ss...)
		}
	}
	if len(srcs) > 1 && !strings.HasSuffix(c.dest, "/") {
		return "", false, fmt.Errorf("%s %s: with more than one source the destination must be a directory and end with a /: %w", instr, step.Args, errdefs.ErrInvalid)
	}
	// Files from the context become root's (or --chown's); COPY --from
	// keeps the owners it finds, so only then do owners enter the hash.
	keepOwner := c.from != "" && c.chown == ""
	hash, err := hashSources(srcs, keepOwner)
	if err != nil {
		return "", false, fmt.Errorf("%s %s: %w", instr, step.Args, err)
	}
	createdBy := copyCreatedBy(shellOf(&state.config), instr, c.chown, hash, c.dest)
	return b.cached(parent, createdBy, func() (string, error) {
		var id string
		err := b.withMount(parent, func(m Mount) error {
			var opt CopyOptions
			switch {
			case c.chown != "":
				o, err := ResolveOwner(m.Root(), c.chown)
				if err != nil {
					return fmt.Errorf("%s %s: %w", instr, step.Args, err)
				}
				opt.Owner = &o
			case !keepOwner:
				opt.Owner = &Owner{}
			}
			if c.add {
				opt.Unpack = b.deps.Unpack
			}
			dest := normalizeDest(state.config.WorkingDir, c.dest)
			if err := CopyInto(m.Root(), srcs, dest, opt); err != nil {
				return fmt.Errorf("%s %s: %w", instr, step.Args, err)
			}
			var err error
			id, err = b.deps.Backend.Commit(b.ctx, CommitRequest{
				Parent:  parent,
				Mount:   m,
				Config:  cloneConfig(state.config),
				History: v1.History{CreatedBy: createdBy},
			})
			return err
		})
		return id, err
	})
}

// fromImage resolves COPY --from: an earlier stage by name or index, else
// an image reference.
func (b *builder) fromImage(from string) (string, error) {
	if s, ok := b.stage(from); ok {
		return s.id, nil
	}
	if n, err := strconv.Atoi(from); err == nil {
		if n < 0 || n >= len(b.done) {
			return "", fmt.Errorf("no stage %d before this one (stages count from 0): %w", n, errdefs.ErrInvalid)
		}
		return b.done[n].id, nil
	}
	for _, st := range b.plan.Stages[len(b.done):] {
		if st.Name == strings.ToLower(from) {
			return "", fmt.Errorf("stage %q is not built yet: COPY --from can only use an earlier stage: %w", st.Name, errdefs.ErrInvalid)
		}
	}
	img, err := b.deps.Backend.Image(b.ctx, from)
	if err != nil {
		return "", err
	}
	return img.ID, nil
}

func (b *builder) buildContext() (*Context, error) {
	if b.context != nil {
		return b.context, nil
	}
	if b.opts.ContextDir == "" {
		return nil, fmt.Errorf("no build context: %w", errdefs.ErrInvalid)
	}
	c, err := OpenContext(b.opts.ContextDir)
	if err != nil {
		return nil, err
	}
	b.context = c
	return c, nil
}

// unusedArgs lists the build args that no ARG declares, which Docker warns
// about after a build.
func (b *builder) unusedArgs() []string {
	declared := map[string]bool{}
	steps := slices.Clone(b.plan.MetaArgs)
	for _, st := range b.plan.Stages {
		steps = append(steps, st.Steps...)
	}
	for _, step := range steps {
		if step.Instruction != "ARG" {
			continue
		}
		if cmd, err := step.command(); err == nil {
			for _, kv := range cmd.(*instructions.ArgCommand).Args {
				declared[kv.Key] = true
			}
		}
	}
	var out []string
	for k := range b.opts.BuildArgs {
		if !declared[k] {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func (b *builder) emit(text string, start time.Time, lines []string) {
	e := event.Event{
		Op:      "build step",
		Subject: b.opts.Tag,
		Docker:  strings.Join(append([]string{fmt.Sprintf("Step %d/%d : %s", b.stepNo, b.total, text)}, lines...), "\n"),
	}
	if !start.IsZero() {
		e.Duration = time.Since(start)
	}
	b.events.Emit(e)
}

// normalizeDest makes a COPY destination absolute against WORKDIR, keeping
// the trailing slash that says "a directory".
func normalizeDest(workdir, dest string) string {
	if path.IsAbs(dest) {
		return dest
	}
	d := path.Join("/", workdir, dest)
	if strings.HasSuffix(dest, "/") && d != "/" {
		d += "/"
	}
	return d
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// shortID is an id as Docker prints it: 12 hex digits.
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// tailBuffer keeps the end of a RUN's output for its error message.
type tailBuffer struct {
	buf []byte
}

const (
	tailBytes = 4096
	tailLines = 20
)

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*tailBytes {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailBytes:]...)
	}
	return len(p), nil
}

// String is the last lines of the output, at most tailLines of them.
func (t *tailBuffer) String() string {
	s := string(t.buf)
	if len(s) > tailBytes {
		s = s[len(s)-tailBytes:]
	}
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
	}
	return strings.Join(lines, "\n")
}
