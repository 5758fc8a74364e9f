package store

import (
	"os"
	"sync"
	"testing"
)

func TestOpenClearsTmpOnlyWhenAlone(t *testing.T) {
	root := t.TempDir()
	a, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	work, err := a.TempDir("build-")
	if err != nil {
		t.Fatal(err)
	}
	// A second run opening the store must not touch a's work in progress.
	b, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(work); err != nil {
		t.Fatalf("work in progress of a live run was removed: %v", err)
	}
	a.Close()
	b.Close()
	// Once nobody has the store open, leftovers are a crashed run's.
	c, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := os.Stat(work); !os.IsNotExist(err) {
		t.Fatalf("stray temp entry survived: %v", err)
	}
}

func TestLockExcludesGoroutines(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	inside := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				s.WithLock(func() error {
					inside++
					if inside != 1 {
						t.Errorf("%d goroutines inside the lock", inside)
					}
					inside--
					return nil
				})
			}
		}()
	}
	wg.Wait()
}

func TestWriteFileAtomic(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := s.Path("content", "index.json")
	if err := s.WriteFile(p, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteFile(p, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Fatalf("got %q", b)
	}
	if entries, _ := os.ReadDir(s.Path("tmp")); len(entries) != 0 {
		t.Fatalf("temp files left: %v", entries)
	}
}
