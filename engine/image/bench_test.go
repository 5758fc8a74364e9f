package image

import (
	"testing"

	"vscript/engine/store"
)

// BenchmarkGetLowers is the work every container start does: find an
// existing image by name and get its overlay lower dirs.
func BenchmarkGetLowers(b *testing.B) {
	requireRoot(b)
	requireBusybox(b)
	s := newStore(b)
	if _, err := s.EnsureBuiltin("httpd"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		img, err := s.Get("httpd")
		if err != nil {
			b.Fatal(err)
		}
		if _, rel := s.Lowers(img); len(rel) != 2 {
			b.Fatal(rel)
		}
	}
}

// BenchmarkEnsureBuiltinCold makes busybox in a fresh state directory: the
// first `image("busybox")` on a machine.
func BenchmarkEnsureBuiltinCold(b *testing.B) {
	requireRoot(b)
	requireBusybox(b)
	for b.Loop() {
		b.StopTimer()
		st, err := store.Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		s, err := New(st)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := s.EnsureBuiltin("busybox"); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		st.Close()
		b.StartTimer()
	}
}
