package image

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzUnpack feeds Unpack layers made of fuzzed entries — names with ".."
// or a leading "/", symlinks and hard links anywhere, whiteouts, devices,
// entries repeated over one another — and checks that, accepted or
// refused, nothing was written outside the layer directory: beside it lies
// "outside", holding a secret that must stay as it is (same content, no
// second link to it, no opaque mark, nothing added).
//
// An input is lines "T NAME" or "T NAME|ARG": T is the tar type flag
// (0 file, 1 hard link, 2 symlink, 3 char device, 4 block device, 5 dir,
// 6 fifo); ARG is a file's content or a link's target.
//
// Each case runs on a thread chrooted into its own directory, so that a
// bug in Unpack writes there rather than anywhere on the machine.
func FuzzUnpack(f *testing.F) {
	requireRoot(f)
	for _, seed := range []string{
		"5 a/\n0 a/f|hello\n2 a/l|f\n1 h|a/f\n0 ./x|y\n",
		"0 ../outside/secret|pwned\n",
		"0 a/../../outside/evil|x\n",
		"0 /outside/evil|x\n",
		"5 a/\n2 a/link|../../outside\n0 a/link/evil|x\n",
		"1 h|../outside/secret\n",
		"1 h|/outside/secret\n",
		"2 d|/outside\n0 d/evil|x\n",
		"2 d|../outside\n5 d/sub/\n",
		"2 d|..\n1 d/h|outside/secret\n",
		"0 f|x\n0 f/evil|x\n",
		"2 d|../outside\n0 d/.wh.secret|\n",
		"2 d|../outside\n0 d/.wh..wh..opq|\n",
		"3 dev/null|\n6 run/fifo|\n4 dev/blk|\n",
		"2 l|target\n0 l|replaced\n5 l/\n",
		"5 ./\n5 a/\n5 a/\n0 a/.wh..wh.plnk|\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		if len(spec) > 1<<12 {
			return
		}
		layer := fuzzTar(spec)
		base := t.TempDir()
		if err := os.Mkdir(filepath.Join(base, "layer"), 0o755); err != nil {
			t.Fatal(err)
		}
		outside := filepath.Join(base, "outside")
		if err := os.Mkdir(outside, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600); err != nil {
			t.Fatal(err)
		}
		// Accepted or refused: both are fine, as long as nothing leaks.
		if err := inChroot(base, func() error {
			Unpack(bytes.NewReader(layer), "/layer")
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if names := dirNames(t, base); !slices.Equal(names, []string{"layer", "outside"}) {
			t.Fatalf("%q: the layer's directory now holds %v", spec, names)
		}
		if names := dirNames(t, outside); !slices.Equal(names, []string{"secret"}) {
			t.Fatalf("%q: outside now holds %v", spec, names)
		}
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(outside, "secret"), &st); err != nil {
			t.Fatal(err)
		}
		if st.Nlink != 1 || st.Mode&unix.S_IFMT != unix.S_IFREG {
			t.Fatalf("%q: the secret has %d links, mode %o", spec, st.Nlink, st.Mode)
		}
		if got := mustRead(t, filepath.Join(outside, "secret")); got != "secret" {
			t.Fatalf("%q: the secret now reads %q", spec, got)
		}
		if isOpaque(outside) {
			t.Fatalf("%q: outside was marked opaque", spec)
		}
	})
}

// fuzzTar makes a layer tar of the entries spec describes (see FuzzUnpack).
// Devices are all 1:3 (null): a device node made by the fuzzer must not be
// the machine's disk.
func fuzzTar(spec string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, line := range strings.Split(spec, "\n") {
		if len(line) < 3 || line[1] != ' ' {
			continue
		}
		name, arg, _ := strings.Cut(line[2:], "|")
		hdr := &tar.Header{Typeflag: line[0], Name: name, Mode: 0o644, ModTime: testTime}
		var body []byte
		switch hdr.Typeflag {
		case tar.TypeReg:
			body = []byte(arg)
			hdr.Size = int64(len(body))
		case tar.TypeLink, tar.TypeSymlink:
			hdr.Linkname = arg
		case tar.TypeChar, tar.TypeBlock:
			hdr.Devmajor, hdr.Devminor = 1, 3
		case tar.TypeDir:
			hdr.Mode = 0o755
		case tar.TypeFifo:
		default:
			continue
		}
		// Entries the tar writer refuses (say, a name too long for its
		// format) are left out.
		if tw.WriteHeader(hdr) != nil {
			return buf.Bytes()
		}
		tw.Write(body)
	}
	tw.Close()
	return buf.Bytes()
}

// inChroot runs fn on a thread of its own whose root directory is dir
// (unshare(CLONE_FS) makes the root per thread). The thread is never given
// back: it ends with the goroutine.
func inChroot(dir string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- err
			return
		}
		if err := unix.Chroot(dir); err != nil {
			errc <- err
			return
		}
		if err := unix.Chdir("/"); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
