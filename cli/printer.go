package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"

	"vscript/engine/event"
)

// printer shows engine events on a terminal according to the flags.
type printer struct {
	mu      sync.Mutex
	w       io.Writer
	verbose bool // -v: the docker command each operation mirrors
	explain bool // --explain: the Linux commands it amounts to
	json    bool // --json: every event as a JSON line
}

func (p *printer) Emit(e event.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		b, _ := json.Marshal(e)
		fmt.Fprintf(p.w, "%s\n", b)
		return
	}
	if p.verbose && e.Docker != "" {
		if strings.HasPrefix(e.Op, "build ") {
			// What `docker build` prints for a step, not a command.
			fmt.Fprintf(p.w, "%s\n", e.Docker)
		} else {
			fmt.Fprintf(p.w, "$ %s\n", e.Docker)
		}
	}
	if p.explain && len(e.Linux) > 0 {
		title := e.Op
		if e.Subject != "" {
			title += " " + e.Subject
		}
		fmt.Fprintf(p.w, "# %s\n", title)
		for _, l := range e.Linux {
			fmt.Fprintf(p.w, "  %s\n", l)
		}
	}
}

func (p *printer) active() bool { return p.verbose || p.explain || p.json }
