package event

import (
	"sync"
	"time"
)

// Event is one engine operation.
type Event struct {
	// Op names the operation, area first: "lab create", "container run".
	Op string `json:"op"`
	// Subject is what it acted on: a name or id. Empty for the lab itself.
	Subject string `json:"subject,omitempty"`
	// Docker is the docker command this operation mirrors, if there is one.
	Docker string `json:"docker,omitempty"`
	// Linux lists commands a student could type to do the same by hand
	// (ip, iptables, mount, unshare, ...), in order.
	Linux []string `json:"linux,omitempty"`
	// Duration is how long the operation took; printers show it only when asked.
	Duration time.Duration `json:"duration_ns,omitempty"`
}

// Sink receives events. Implementations must be safe for concurrent use.
type Sink interface {
	Emit(Event)
}

// Discard drops every event.
var Discard Sink = discard{}

type discard struct{}

func (discard) Emit(Event) {}

// Recorder keeps events in memory; tests use it to check what was emitted.
type Recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *Recorder) Emit(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// Events returns a copy of what was recorded so far.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}
