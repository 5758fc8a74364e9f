package engine

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	const mib = 1 << 20
	p := &progress{label: "image load big.tar", total: 100 * mib}
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "image load big.tar [>                             ]    0.0/100.0 MiB"},
		{45 * mib, "image load big.tar [=============>                ]   45.0/100.0 MiB"},
		{100 * mib, "image load big.tar [==============================]  100.0/100.0 MiB"},
		{120 * mib, "image load big.tar [==============================]  100.0/100.0 MiB"},
	} {
		p.n = tc.n
		if got := p.line(); got != tc.want {
			t.Errorf("%d bytes:\n%q\nwant\n%q", tc.n, got, tc.want)
		}
	}
}

// A progress bar draws only once the operation has taken a while, and
// erases itself; without a terminal there is none.
func TestProgressDraws(t *testing.T) {
	var out bytes.Buffer
	e := &Engine{opts: Options{Progress: &out}}
	p := e.newProgress("x", 10)
	p.start = time.Now().Add(-time.Second) // as if it had been running
	if _, err := io.Copy(io.Discard, p.reader(strings.NewReader("0123456789"))); err != nil {
		t.Fatal(err)
	}
	p.done()
	if got := out.String(); !strings.HasPrefix(got, "\rx [") || !strings.HasSuffix(got, "\r\033[K") {
		t.Errorf("drew %q", got)
	}
	quick := e.newProgress("y", 10)
	out.Reset()
	io.Copy(io.Discard, quick.reader(strings.NewReader("0123456789")))
	quick.done()
	if out.Len() != 0 {
		t.Errorf("a quick operation drew %q", out.String())
	}
	if (&Engine{}).newProgress("z", 10) != nil {
		t.Error("a progress bar without a terminal")
	}
}

func TestProgressThen(t *testing.T) {
	var out bytes.Buffer
	e := &Engine{opts: Options{Progress: &out}}
	p := e.newProgress("image load x.tar", 10)
	p.then("unpacking")
	if out.Len() != 0 {
		t.Errorf("a quick operation drew %q", out.String())
	}
	p.start = time.Now().Add(-time.Second)
	p.then("unpacking")
	p.done()
	if want := "\r\033[Kimage load x.tar: unpacking...\r\033[K"; out.String() != want {
		t.Errorf("drew %q, want %q", out.String(), want)
	}
	var none *progress
	none.then("x") // no terminal: nothing to do, no panic
}
