package runtime

import (
	"fmt"
	"io"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"vscript/engine/errdefs"
)

// Rootfs is the container's root filesystem: an overlay the caller has
// already mounted, visible in the caller's mount namespace (the engine mounts
// a container's overlay in the lab, where it stays from create to rm). The
// container's mount namespace starts as a copy of the caller's, so it finds
// the overlay there; the runtime never mounts or unmounts it.
type Rootfs struct {
	// Merged is where the overlay is mounted: the container's root. It must
	// be a mount point (pivot_root needs one).
	Merged string
	// Upper is the overlay's upper directory; EtcDir is next to it.
	Upper string
	// Work is the overlay's work directory. The runtime does not use it; it
	// completes the description of the overlay for the caller's bookkeeping.
	Work string
}

// Mount is a volume or bind mount into the container.
type Mount struct {
	// Source is a host path (bind) or ignored (tmpfs).
	Source string
	// Destination is the path inside the container; it is resolved inside
	// the root filesystem (symlinks cannot escape it) and created if missing,
	// as a file or a directory like the source.
	Destination string
	ReadOnly    bool
	// Type is "bind" (the default) or "tmpfs".
	Type string
}

// Resources are cgroup limits; zero means unset.
type Resources struct {
	// Memory is the memory limit in bytes (docker run --memory); at least 6 MiB.
	Memory int64
	// PidsLimit caps the number of processes; negative means unlimited.
	PidsLimit int64
	// CPUs is the number of CPUs' worth of time (docker run --cpus).
	CPUs float64
}

// Spec describes a container to create.
type Spec struct {
	// ID names the container; its cgroups are vscript/<ID>. Letters, digits,
	// '_', '.' and '-' only. It must be unique among running containers of
	// the machine if resource limits are set.
	ID string
	// Hostname defaults to the first 12 characters of ID, as Docker's.
	Hostname string

	Rootfs         Rootfs
	ReadOnlyRootfs bool

	// Args is the final argv: entrypoint and cmd already merged (MergeArgs).
	Args []string
	// Env is the environment; PATH, HOSTNAME, HOME (and TERM with TTY) are
	// added as Docker does when missing.
	Env []string
	// Cwd is created if missing; default "/".
	Cwd string
	// User is "", "name", "uid", "uid:gid", "name:group", resolved in the
	// container's /etc/passwd and /etc/group.
	User string

	// Mounts are mounted in order of depth of their destination.
	Mounts []Mount
	// Etc holds files bind-mounted over their path in the container, keyed
	// by that path, which must be directly under /etc (/etc/hostname,
	// /etc/hosts, /etc/resolv.conf). They are written into the directory
	// EtcDir(); a caller may rewrite one in place while the container runs,
	// as Docker does with /etc/hosts.
	Etc map[string][]byte

	// NetNS is "" for a new network namespace (with lo up), "host" to keep
	// the caller's, or a path such as /proc/PID/ns/net to join.
	NetNS string

	// TTY gives the command a pseudo-terminal as its controlling terminal;
	// Stdout then receives the terminal's output (Stderr is unused).
	TTY    bool
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer

	Resources Resources
}

// ExecSpec describes a process to run in a running container.
type ExecSpec struct {
	Args []string
	// Env is the complete environment (the container's plus the exec's);
	// PATH, HOSTNAME, HOME and TERM are added when missing, as for Spec.
	Env []string
	// Cwd must exist; default: the container's root.
	Cwd  string
	User string
	TTY  bool

	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// validID reports whether id is safe as a path component: letters, digits,
// '_', '.', '-', and not "." or "..".
func validID(id string) bool {
	if id == "" || id == "." || id == ".." {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}

func (s *Spec) validate() error {
	if !validID(s.ID) {
		return fmt.Errorf("container create %q: bad id: %w", s.ID, errdefs.ErrInvalid)
	}
	fail := func(format string, a ...any) error {
		return fmt.Errorf("container create %s: %s: %w", s.ID, fmt.Sprintf(format, a...), errdefs.ErrInvalid)
	}
	if len(s.Args) == 0 {
		return fail("no command specified")
	}
	r := s.Rootfs
	if !filepath.IsAbs(r.Merged) || !filepath.IsAbs(r.Upper) {
		return fail("rootfs needs absolute merged and upper directories")
	}
	for _, m := range s.Mounts {
		if !path.IsAbs(m.Destination) {
			return fail("mount destination %q is not absolute", m.Destination)
		}
		switch m.Type {
		case "", "bind":
			if !filepath.IsAbs(m.Source) {
				return fail("bind source %q is not absolute", m.Source)
			}
		case "tmpfs":
		default:
			return fail("mount type %q: want bind or tmpfs", m.Type)
		}
	}
	for p := range s.Etc {
		if path.Dir(p) != "/etc" {
			return fail("etc file %q is not directly under /etc", p)
		}
	}
	if err := s.Resources.validate(s.ID); err != nil {
		return err
	}
	if s.Cwd != "" && !path.IsAbs(s.Cwd) {
		return fail("working directory %q is not absolute", s.Cwd)
	}
	switch {
	case s.NetNS == "", s.NetNS == "host", filepath.IsAbs(s.NetNS):
	default:
		return fail("network namespace %q: want \"\", \"host\" or a path", s.NetNS)
	}
	return nil
}

// EtcDir is where the Etc files are written: next to the upper directory.
func (s *Spec) EtcDir() string {
	return filepath.Join(filepath.Dir(s.Rootfs.Upper), "etc")
}

func (s *Spec) hostname() string {
	if s.Hostname != "" {
		return s.Hostname
	}
	if len(s.ID) > 12 {
		return s.ID[:12]
	}
	return s.ID
}

// sortedMounts orders mounts by the depth of their destination, as Docker
// does, so that a mount under another one's destination comes after it.
func sortedMounts(ms []Mount) []Mount {
	out := append([]Mount(nil), ms...)
	depth := func(p string) int { return strings.Count(path.Clean(p), "/") }
	sort.SliceStable(out, func(i, j int) bool { return depth(out[i].Destination) < depth(out[j].Destination) })
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Explain returns the commands a student could type to build this container
// by hand, in the order the runtime does the work.
func (s *Spec) Explain() []string {
	m := s.Rootfs.Merged
	ns := "unshare --pid --mount --uts --ipc"
	if s.NetNS == "" {
		ns += " --net"
	}
	lines := []string{ns + " --fork sh", "mount --make-rslave /"}
	lines = append(lines,
		"mount -t proc -o nosuid,nodev,noexec proc "+m+"/proc",
		"mount -t tmpfs -o nosuid,strictatime,mode=755,size=65536k tmpfs "+m+"/dev",
		"mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "+m+"/dev/pts",
		"mount -t tmpfs -o nosuid,nodev,noexec,mode=1777,size=65536k shm "+m+"/dev/shm",
		"mount -t mqueue -o nosuid,nodev,noexec mqueue "+m+"/dev/mqueue",
		"mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "+m+"/sys")
	for _, mt := range sortedMounts(s.Mounts) {
		dst := m + path.Clean(mt.Destination)
		if mt.Type == "tmpfs" {
			opt := "nosuid,nodev,noexec"
			if mt.ReadOnly {
				opt = "ro," + opt
			}
			lines = append(lines, "mount -t tmpfs -o "+opt+" tmpfs "+dst)
			continue
		}
		lines = append(lines, "mount --rbind "+mt.Source+" "+dst)
		if mt.ReadOnly {
			lines = append(lines, "mount -o remount,bind,ro "+dst)
		}
	}
	for _, p := range sortedKeys(s.Etc) {
		lines = append(lines, "mount --bind "+filepath.Join(s.EtcDir(), path.Base(p))+" "+m+p)
	}
	lines = append(lines,
		"mknod -m 666 "+m+"/dev/null c 1 3  # and zero, full, random, urandom, tty",
		"cd "+m+" && pivot_root . . && umount -l .",
		"mount --bind /dev/null /proc/kcore  # masked: "+strings.Join(maskedPaths, " "),
		"mount -o remount,bind,ro /proc/sys  # read-only: "+strings.Join(readonlyPaths, " "))
	if s.ReadOnlyRootfs {
		lines = append(lines, "mount -o remount,bind,ro /")
	}
	lines = append(lines, "hostname "+s.hostname())
	if s.NetNS == "" {
		lines = append(lines, "ip link set lo up")
	}
	lines = append(lines, cgroupExplain(s.ID, s.Resources)...)
	user := s.User
	if user == "" {
		user = "root"
	}
	lines = append(lines, fmt.Sprintf("exec %s  # as user %s, with Docker's default capabilities", shellJoin(s.Args), user))
	return lines
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`;&|<>()*?[]{}!#~") {
			q[i] = a
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
