package image

import (
	"archive/tar"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"vscript/engine/errdefs"
	"vscript/engine/event"
)

// DefaultBusybox is the host binary the built-in images are made from:
// Debian's busybox-static.
const DefaultBusybox = "/bin/busybox"

const busyboxHint = "apt-get install -y busybox-static"

// builtinTime stamps every file of the built-in images, so that the same
// busybox binary always gives the same layers and image ids.
var builtinTime = time.Unix(0, 0)

const builtinPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Users and groups as in Docker's busybox image.
const (
	busyboxPasswd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
`
	busyboxGroup = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nogroup:x:65534:
`
	// A static glibc looks names up by this file; without it, it asks DNS
	// before /etc/hosts.
	busyboxNsswitch = "hosts: files dns\n"

	httpdIndex = "<html><body><h1>It works!</h1></body></html>\n"
	httpdRoot  = "/usr/local/apache2"
)

// builtinName tells whether ref names a built-in image, and which.
func builtinName(ref string) (string, bool) {
	switch n, _ := ParseRef(ref); n {
	case "busybox:latest":
		return "busybox", true
	case "httpd:latest":
		return "httpd", true
	}
	return "", false
}

// EnsureBuiltin returns the built-in image name ("busybox" or "httpd",
// optionally with ":latest"), first making it from the host's static busybox
// if the store has no image of that name. Concurrent calls, in this process
// or in other runs, all succeed: the content is the same byte for byte, so
// whoever comes second finds it there or writes it again harmlessly.
func (s *Store) EnsureBuiltin(name string) (*Image, error) {
	which, ok := builtinName(name)
	if !ok {
		return nil, fmt.Errorf("image %s: not a built-in image (busybox, httpd): %w", name, errdefs.ErrNotFound)
	}
	ref := which + ":latest"
	s.builtinMu.Lock()
	defer s.builtinMu.Unlock()
	if img, _, err := s.lookup(ref); err == nil {
		return img, nil
	}
	start := time.Now()
	bin := s.Busybox
	if bin == "" {
		bin = DefaultBusybox
	}
	applets, err := busyboxApplets(bin)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	img, err := s.createBuiltin(which, bin, applets)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	if err := s.Tag(img, ref); err != nil {
		return nil, err
	}
	img.Ref = ref
	s.emit(builtinEvent(which, ref, bin, time.Since(start)))
	return img, nil
}

func (s *Store) createBuiltin(which, bin string, applets []string) (*Image, error) {
	base, err := s.writeTarLayer(func(tw *tar.Writer) error { return busyboxLayer(tw, bin, applets) })
	if err != nil {
		return nil, err
	}
	history := []v1.History{
		{CreatedBy: "ADD " + bin + " with its applets linked in /bin, /etc/passwd, /etc/group in / (vscript built-in)"},
		{CreatedBy: `CMD ["sh"]`, EmptyLayer: true},
	}
	config := v1.Config{Cmd: []string{"sh"}, Env: []string{builtinPath}}
	if which == "busybox" {
		return s.Create(config, history, base)
	}

	htdocs, err := s.writeTarLayer(httpdLayer)
	if err != nil {
		return nil, err
	}
	config = v1.Config{
		Env:          []string{"PATH=" + httpdRoot + "/bin:" + strings.TrimPrefix(builtinPath, "PATH="), "HTTPD_PREFIX=" + httpdRoot},
		WorkingDir:   httpdRoot,
		ExposedPorts: map[string]struct{}{"80/tcp": {}},
		StopSignal:   "SIGTERM",
		Cmd:          []string{"httpd", "-f", "-v", "-p", "80", "-h", httpdRoot + "/htdocs"},
	}
	history = []v1.History{
		history[0],
		{CreatedBy: "ENV HTTPD_PREFIX=" + httpdRoot, EmptyLayer: true},
		{CreatedBy: "WORKDIR " + httpdRoot, EmptyLayer: true},
		{CreatedBy: "ADD index.html " + httpdRoot + "/htdocs/"},
		{CreatedBy: "STOPSIGNAL SIGTERM", EmptyLayer: true},
		{CreatedBy: "EXPOSE 80/tcp", EmptyLayer: true},
		{CreatedBy: `CMD ["httpd","-f","-v","-p","80","-h","` + httpdRoot + `/htdocs"]`, EmptyLayer: true},
	}
	return s.Create(config, history, base, htdocs)
}

// busyboxApplets checks that bin is a static busybox and lists its applets.
func busyboxApplets(bin string) ([]string, error) {
	f, err := elf.Open(bin)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errdefs.WithHint(fmt.Errorf("%s not found: %w", bin, errdefs.ErrUnavailable), busyboxHint)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", bin, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return nil, errdefs.WithHint(fmt.Errorf("%s is dynamically linked; the images need a static busybox: %w",
				bin, errdefs.ErrUnavailable), busyboxHint)
		}
	}
	out, err := exec.Command(bin, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", bin, err)
	}
	var applets []string
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" && !strings.Contains(a, "/") {
			applets = append(applets, a)
		}
	}
	slices.Sort(applets)
	return slices.Compact(applets), nil
}

// writeTarLayer stores the layer tar that fill writes.
func (s *Store) writeTarLayer(fill func(*tar.Writer) error) (Layer, error) {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		tw := tar.NewWriter(pw)
		err := fill(tw)
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	l, err := s.WriteLayer(pr)
	pr.CloseWithError(io.ErrClosedPipe)
	<-done
	return l, err
}

type tarEntry struct {
	name     string
	mode     int64
	uid, gid int
}

func writeDir(tw *tar.Writer, e tarEntry) error {
	return tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeDir, Name: e.name + "/", Mode: e.mode, Uid: e.uid, Gid: e.gid, ModTime: builtinTime,
	})
}

func writeFile(tw *tar.Writer, name string, mode int64, content string) error {
	err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(content)), ModTime: builtinTime,
	})
	if err == nil {
		_, err = io.WriteString(tw, content)
	}
	return err
}

func busyboxLayer(tw *tar.Writer, bin string, applets []string) error {
	dirs := []tarEntry{
		{"bin", 0o755, 0, 0}, {"dev", 0o755, 0, 0}, {"etc", 0o755, 0, 0},
		{"home", 0o755, 65534, 65534}, {"proc", 0o555, 0, 0}, {"root", 0o700, 0, 0},
		{"sys", 0o555, 0, 0}, {"tmp", 0o1777, 0, 0}, {"usr", 0o755, 0, 0},
		{"usr/sbin", 0o755, 0, 0}, {"var", 0o755, 0, 0}, {"var/spool", 0o755, 0, 0},
		{"var/spool/mail", 0o755, 8, 8}, {"var/www", 0o755, 0, 0},
	}
	for _, d := range dirs {
		if err := writeDir(tw, d); err != nil {
			return err
		}
	}
	f, err := os.Open(bin)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	err = tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: fi.Size(), ModTime: builtinTime,
	})
	if err != nil {
		return err
	}
	if _, err := io.CopyN(tw, f, fi.Size()); err != nil {
		return err
	}
	for _, a := range applets {
		err := tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeLink, Name: "bin/" + a, Linkname: "bin/busybox", Mode: 0o755, ModTime: builtinTime,
		})
		if err != nil {
			return err
		}
	}
	for _, file := range []struct{ name, content string }{
		{"etc/group", busyboxGroup}, {"etc/nsswitch.conf", busyboxNsswitch}, {"etc/passwd", busyboxPasswd},
	} {
		if err := writeFile(tw, file.name, 0o644, file.content); err != nil {
			return err
		}
	}
	return nil
}

func httpdLayer(tw *tar.Writer) error {
	for _, d := range []string{"usr", "usr/local", "usr/local/apache2", "usr/local/apache2/htdocs"} {
		if err := writeDir(tw, tarEntry{d, 0o755, 0, 0}); err != nil {
			return err
		}
	}
	return writeFile(tw, "usr/local/apache2/htdocs/index.html", 0o644, httpdIndex)
}

func (s *Store) emit(e event.Event) {
	if s.Events != nil {
		s.Events.Emit(e)
	}
}

func builtinEvent(which, ref, bin string, d time.Duration) event.Event {
	e := event.Event{
		Op:      "image create",
		Subject: ref,
		Docker:  `tar -C rootfs -c . | docker import -c 'CMD ["sh"]' - ` + ref,
		Linux: []string{
			"mkdir -p rootfs/bin rootfs/etc rootfs/home rootfs/root rootfs/tmp rootfs/var/www rootfs/dev rootfs/proc rootfs/sys && chmod 1777 rootfs/tmp",
			"cp " + bin + " rootfs/bin/ && for a in $(" + bin + " --list); do ln rootfs/bin/busybox rootfs/bin/$a; done",
			"echo 'root:x:0:0:root:/root:/bin/sh' > rootfs/etc/passwd  # and daemon, www-data, nobody; likewise /etc/group",
		},
		Duration: d,
	}
	if which == "httpd" {
		e.Docker = "docker build -t " + ref + " .  # FROM busybox, COPY index.html " + httpdRoot + "/htdocs/, CMD httpd -f -p 80"
		e.Linux = append(e.Linux,
			"mkdir -p rootfs"+httpdRoot+"/htdocs && echo '<html><body><h1>It works!</h1></body></html>' > rootfs"+httpdRoot+"/htdocs/index.html")
	}
	return e
}
