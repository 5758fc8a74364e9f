package engine

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress draws a progress bar for a long operation on Options.Progress
// (a terminal), redrawn at most ten times a second and only once the
// operation has taken a moment, so that quick ones print nothing. A nil
// *progress does nothing.
type progress struct {
	w     io.Writer
	label string
	total int64

	mu    sync.Mutex
	n     int64
	start time.Time
	last  time.Time
	drawn bool
}

const (
	progressDelay = 300 * time.Millisecond
	progressEvery = 100 * time.Millisecond
	progressWidth = 30
)

func (e *Engine) newProgress(label string, total int64) *progress {
	if e.opts.Progress == nil || total <= 0 {
		return nil
	}
	return &progress{w: e.opts.Progress, label: label, total: total, start: time.Now()}
}

// reader counts what is read through it.
func (p *progress) reader(r io.Reader) io.Reader {
	if p == nil {
		return r
	}
	return &progressReader{r: r, p: p}
}

type progressReader struct {
	r io.Reader
	p *progress
}

func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	pr.p.add(int64(n))
	return n, err
}

func (p *progress) add(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n += n
	now := time.Now()
	if now.Sub(p.start) < progressDelay || now.Sub(p.last) < progressEvery {
		return
	}
	p.last, p.drawn = now, true
	fmt.Fprint(p.w, "\r"+p.line())
}

// line is "image load x.tar [=========>          ]  45.2/100.0 MiB".
func (p *progress) line() string {
	done := min(p.n, p.total)
	filled := int(done * progressWidth / p.total)
	bar := strings.Repeat("=", filled)
	if filled < progressWidth {
		bar += ">" + strings.Repeat(" ", progressWidth-filled-1)
	}
	const mib = 1 << 20
	return fmt.Sprintf("%s [%s] %6.1f/%.1f MiB", p.label, bar, float64(done)/mib, float64(p.total)/mib)
}

// then says what comes after the part the bar measures ("unpacking"), for
// as long as it takes, when the bar is showing.
func (p *progress) then(what string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.start) >= progressDelay {
		p.drawn = true
		fmt.Fprintf(p.w, "\r\033[K%s: %s...", p.label, what)
	}
}

// done erases the bar.
func (p *progress) done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
