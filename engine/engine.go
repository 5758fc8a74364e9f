package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"vscript/engine/errdefs"
	"vscript/engine/event"
	"vscript/engine/image"
	"vscript/engine/lab"
	"vscript/engine/runtime"
	"vscript/engine/store"
)

// Re-exported error classes, so callers need one import.
var (
	ErrNotFound    = errdefs.ErrNotFound
	ErrConflict    = errdefs.ErrConflict
	ErrInvalid     = errdefs.ErrInvalid
	ErrUnavailable = errdefs.ErrUnavailable
)

// DefaultSeed seeds ids when --seed is not given, so runs are reproducible.
const DefaultSeed = "vscript"

// Options configure an Engine.
type Options struct {
	Root string     // state directory
	Host bool       // --host: run on the real host, no sandbox
	Seed string     // seed for deterministic ids
	Sink event.Sink // where events go
	// LiveLogs, if set, receives containers' output as it is written,
	// each line prefixed with the container's name (-v).
	LiveLogs io.Writer
	// Progress, if set, is a terminal on which long operations (loading
	// an image archive) draw a progress bar.
	Progress io.Writer
}

// Engine is one lab's engine. Create it inside the lab (after lab.Spawn) or,
// with Options.Host, on the real host.
type Engine struct {
	opts   Options
	sink   event.Sink
	lab    *lab.Lab
	store  *store.Store
	images *image.Store

	initOnce sync.Once // the init layer (initLayer)
	initDir  string
	initErr  error

	runID string // random, unique to this run; never printed in a transcript

	mu    sync.Mutex
	count map[string]int // ids handed out per kind
	ctrs  map[string]*container
	names map[string]string // container name → id
	order []string          // container ids in creation order

	vol  volState // managed volumes held by this lab (volglue.go)
	nets netState // networks, made on first use (networks.go)
}

// New sets the lab up and opens the state directory.
func New(opts Options) (*Engine, error) {
	if opts.Seed == "" {
		opts.Seed = DefaultSeed
	}
	if opts.Root == "" {
		opts.Root = store.DefaultRoot
	}
	if opts.Sink == nil {
		opts.Sink = event.Discard
	}
	e := &Engine{opts: opts, sink: opts.Sink, count: map[string]int{},
		ctrs: map[string]*container{}, names: map[string]string{}, runID: randomHex(4)}
	// A killed lab cannot remove its containers' cgroups; the next run does.
	runtime.CleanupCgroups()
	st, err := store.Open(opts.Root)
	if err != nil {
		return nil, err
	}
	e.store = st
	if e.images, err = image.New(st); err != nil {
		st.Close()
		return nil, err
	}
	e.images.Events = opts.Sink
	l, err := lab.Setup(lab.Config{
		Host:     opts.Host,
		ID:       e.runID, // host-mode leftovers are named after it: unique per run
		Sink:     opts.Sink,
		WorldDNS: worldDNS,
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	e.lab = l
	if err := e.volOpen(); err != nil {
		l.Close()
		st.Close()
		return nil, err
	}
	return e, nil
}

// randomHex returns n random bytes in hex. They name things, they guard
// nothing: math/rand's generator, seeded by the runtime from the kernel,
// costs nothing to start, where crypto/rand's first read costs ~0.2 ms.
func randomHex(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return hex.EncodeToString(b)
}

// Close tears the lab down as far as this process has to: servers stopped,
// host-mode leftovers removed. A sandbox's namespaces go when the process ends.
func (e *Engine) Close() error {
	if !e.lab.Sandboxed() {
		// On the real host nothing goes away by itself.
		e.mu.Lock()
		ids := append([]string(nil), e.order...)
		e.mu.Unlock()
		for _, id := range ids {
			e.Remove(context.Background(), id, true, true)
		}
	}
	e.volClose()
	e.netClose()
	runtime.ReleaseCgroups()
	err := e.lab.Close()
	e.store.Close()
	return err
}

// Sandboxed reports whether the lab has namespaces of its own.
func (e *Engine) Sandboxed() bool { return e.lab.Sandboxed() }

// NewID returns the next id of a kind ("container", "network", ...): 64 hex
// digits derived from the seed, the kind and how many came before, so the
// same script gets the same ids on every run and machine.
func (e *Engine) NewID(kind string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.newIDLocked(kind)
}

// newIDLocked is NewID for callers that hold e.mu.
func (e *Engine) newIDLocked(kind string) string {
	n := e.count[kind]
	e.count[kind]++
	sum := sha256.Sum256([]byte(e.opts.Seed + "\x00" + kind + "\x00" + strconv.Itoa(n)))
	return hex.EncodeToString(sum[:])
}

// emit reports an operation that started at start.
func (e *Engine) emit(ev event.Event, start time.Time) {
	ev.Duration = time.Since(start)
	e.sink.Emit(ev)
}

// node returns the lab node called name: "host" or "world".
func (e *Engine) node(name string) (*lab.Node, error) {
	switch name {
	case "host":
		// A program on the lab host may reach the world.
		if err := e.lab.Ready(); err != nil {
			return nil, err
		}
		return e.lab.Host, nil
	case "world":
		w, err := e.lab.World()
		if err == nil && w == nil {
			err = errdefs.WithHint(
				fmt.Errorf("world: %w in --host mode", errdefs.ErrUnavailable),
				"the simulated world exists only in a sandboxed lab; run without --host")
		}
		return w, err
	}
	return nil, fmt.Errorf("node %s: %w", name, errdefs.ErrNotFound)
}

// Address returns the IPv4 address of the lab node called name.
func (e *Engine) Address(name string) (string, error) {
	n, err := e.node(name)
	if err != nil {
		return "", err
	}
	return n.IP.String(), nil
}
