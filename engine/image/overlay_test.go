package image

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"vscript/engine/reexec"
)

const overlayHelper = "image-test-overlay"

func init() { reexec.Register(overlayHelper, overlayChild) }

// overlayChild runs in a mount namespace of its own (args: base, options,
// merged). It mounts the overlay as the runtime would, reports what the
// container sees, and changes two files as a container might.
func overlayChild() {
	base, opts, merged := os.Args[1], os.Args[2], os.Args[3]
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Mounts made in a copy of a shared mount tree would propagate back.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		fail(fmt.Errorf("make / private: %w", err))
	}
	if err := os.Chdir(base); err != nil {
		fail(err)
	}
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		fail(fmt.Errorf("mount overlay (%d bytes of options): %w", len(opts), err))
	}
	f, _ := os.ReadFile(filepath.Join(merged, "f"))
	_, goneErr := os.Lstat(filepath.Join(merged, "gone"))
	_, oldErr := os.Lstat(filepath.Join(merged, "d/old"))
	newData, _ := os.ReadFile(filepath.Join(merged, "d/new"))
	fmt.Printf("f=%s gone=%v old=%v new=%s\n", f, errors.Is(goneErr, os.ErrNotExist), errors.Is(oldErr, os.ErrNotExist), newData)
	if err := os.WriteFile(filepath.Join(merged, "added"), []byte("added"), 0o644); err != nil {
		fail(err)
	}
	if err := os.Remove(filepath.Join(merged, "keep")); err != nil {
		fail(err)
	}
}

func requireOverlay(t *testing.T) {
	t.Helper()
	requireRoot(t)
	data, _ := os.ReadFile("/proc/filesystems")
	if strings.Contains(string(data), "\toverlay\n") {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("overlayfs not available")
	}
	t.Skip("overlayfs not available")
}

// TestOverlayLongChain mounts an image of 150 layers the way Lowers says to,
// in a private mount namespace: the short relative lowerdirs fit in a page
// where full paths would not, the layer order is right, and Unpack's
// whiteouts and opaque directories hide what they should. Then the
// container's changes go through Diff and CommitDir.
func TestOverlayLongChain(t *testing.T) {
	requireOverlay(t)
	s := newStore(t)
	const n = 150
	layers := []Layer{writeLayer(t, s, file("f", "0"), file("gone", "x"), file("keep", "k"), dir("d/"), file("d/old", "o"))}
	// One blob serves all the middle layers: each still gets a directory of
	// its own, since a chain id covers the layers below.
	middle := writeLayer(t, s, file("f", "middle"))
	for i := 1; i < n-1; i++ {
		layers = append(layers, middle)
	}
	layers = append(layers, writeLayer(t, s, file("f", strconv.Itoa(n-1)), file(".wh.gone", ""),
		dir("d/"), file("d/.wh..wh..opq", ""), file("d/new", "n")))
	img := create(t, s, v1.Config{Cmd: []string{"sh"}}, layers...)

	snap := t.TempDir()
	m, err := s.Prepare(img, snap)
	if err != nil {
		t.Fatal(err)
	}
	merged := filepath.Join(snap, "merged")
	if err := os.Mkdir(merged, 0o755); err != nil {
		t.Fatal(err)
	}
	fullPaths := 0
	for _, l := range img.Layers {
		fullPaths += len(s.layers.Path(l.ChainID)) + 1
	}
	if len(m.Options()) >= os.Getpagesize() || fullPaths < os.Getpagesize() {
		t.Errorf("options are %d bytes (full paths: %d), page %d", len(m.Options()), fullPaths, os.Getpagesize())
	}

	release, err := s.Hold(img)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	cmd := reexec.Command(overlayHelper, m.Base, m.Options(), merged)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("overlay child: %v: %s", err, out)
	}
	if want := fmt.Sprintf("f=%d gone=true old=true new=n\n", n-1); string(out) != want {
		t.Errorf("container sees %q, want %q", out, want)
	}

	changes, err := Diff(m.Upper, s.LowerDirs(img))
	if err != nil {
		t.Fatal(err)
	}
	if want := []Change{{Added, "/added"}, {Deleted, "/keep"}}; !reflect.DeepEqual(changes, want) {
		t.Errorf("Diff = %v, want %v", changes, want)
	}
	committed, err := s.CommitDir(img, m.Upper, img.Config, v1.History{CreatedBy: "docker commit"})
	if err != nil {
		t.Fatal(err)
	}
	if len(committed.Layers) != n+1 {
		t.Fatalf("committed image has %d layers", len(committed.Layers))
	}
	top := s.layers.Path(committed.Layers[n].ChainID)
	if fi, err := os.Lstat(filepath.Join(top, "keep")); err != nil || !isWhiteout(fi) {
		t.Errorf("keep is not a whiteout in the new layer: %v", err)
	}
	if got := mustRead(t, filepath.Join(top, "added")); got != "added" {
		t.Errorf("added = %q", got)
	}
}
