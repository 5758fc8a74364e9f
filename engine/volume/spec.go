package volume

import (
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"vscript/engine/errdefs"
)

// Mount types, as Docker names them in inspect's Mounts[].Type.
const (
	TypeBind   = "bind"
	TypeVolume = "volume"
)

// namePattern is the local driver's rule for volume names.
var namePattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`) })

// ValidName reports whether name may name a managed volume.
func ValidName(name string) bool { return namePattern().MatchString(name) }

func invalidName(name string) string {
	return fmt.Sprintf("%q includes invalid characters for a local volume name, "+
		"only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. "+
		"If you intended to pass a host directory, use absolute path", name)
}

// Spec is one parsed `-v` mount.
type Spec struct {
	Type        string // TypeBind or TypeVolume
	Source      string // bind: absolute, cleaned host path
	Name        string // volume: its name; "" asks for a new anonymous volume
	Destination string // absolute, cleaned path in the container
	ReadOnly    bool
	NoCopy      bool   // volume: skip copy-up
	Mode        string // the mode field as written ("ro,z"), for inspect's Mode
	Propagation string // bind: mount propagation, "rprivate" unless given
}

// ParseSpec parses Docker's `-v` syntax: "/host:/ctr[:mode]" (a bind mount;
// a host path starting with "." is relative to scriptDir, as the Docker CLI
// resolves it against the working directory; "~" is not expanded),
// "NAME:/ctr[:mode]" (a named managed volume) or "/ctr" (an anonymous one).
// The mode is a comma-separated list of at most one each of ro|rw, z|Z,
// nocopy, a propagation (shared, slave, private and their r- forms) and a
// consistency (consistent, cached, delegated), as Docker accepts.
func ParseSpec(s, scriptDir string) (Spec, error) {
	bad := func(format string, args ...any) error {
		return errorf(errdefs.ErrInvalid, "volume spec %s: %s", s, fmt.Sprintf(format, args...))
	}
	if s == "" {
		return Spec{}, errorf(errdefs.ErrInvalid, "volume spec: empty")
	}
	parts := strings.Split(s, ":")
	var src, dst, mode string
	switch len(parts) {
	case 1:
		dst = parts[0]
	case 2:
		if _, err := parseMode(parts[1]); err == nil && parts[1] != "" {
			return Spec{}, bad("mode %s needs a source, as in SOURCE:%s:%s", parts[1], parts[0], parts[1])
		}
		src, dst = parts[0], parts[1]
	case 3:
		src, dst, mode = parts[0], parts[1], parts[2]
		if mode == "" {
			return Spec{}, bad("empty mode")
		}
	default:
		return Spec{}, bad("too many colons")
	}
	if len(parts) > 1 && src == "" {
		return Spec{}, bad("empty source")
	}
	if dst == "" {
		return Spec{}, bad("empty destination")
	}
	if !path.IsAbs(dst) {
		return Spec{}, bad("invalid mount path: '%s' mount path must be absolute", dst)
	}
	dst = path.Clean(dst)
	if dst == "/" {
		return Spec{}, bad("invalid specification: destination can't be '/'")
	}
	m, err := parseMode(mode)
	if err != nil {
		return Spec{}, bad("%v", err)
	}

	spec := Spec{Type: TypeVolume, Destination: dst, ReadOnly: m.readOnly, NoCopy: m.noCopy, Mode: mode}
	switch {
	case src == "":
	case strings.HasPrefix(src, "/"):
		spec.Type, spec.Source = TypeBind, filepath.Clean(src)
	case strings.HasPrefix(src, "."):
		abs, err := filepath.Abs(filepath.Join(scriptDir, src))
		if err != nil {
			return Spec{}, bad("%v", err)
		}
		spec.Type, spec.Source = TypeBind, abs
	case !ValidName(src):
		return Spec{}, bad("%s", invalidName(src))
	default:
		spec.Name = src
	}
	if spec.Type == TypeBind {
		if m.noCopy {
			return Spec{}, bad("nocopy is only valid for volumes, not bind mounts")
		}
		spec.Propagation = m.propagation
		if spec.Propagation == "" {
			spec.Propagation = "rprivate"
		}
	} else if m.propagation != "" {
		return Spec{}, bad("propagation %s is only valid for bind mounts", m.propagation)
	}
	return spec, nil
}

type mode struct {
	readOnly    bool
	noCopy      bool
	propagation string
}

var modeKinds = map[string]string{
	"ro": "rw", "rw": "rw",
	"z": "label", "Z": "label",
	"nocopy": "copy",
	"shared": "propagation", "rshared": "propagation",
	"slave": "propagation", "rslave": "propagation",
	"private": "propagation", "rprivate": "propagation",
	"consistent": "consistency", "cached": "consistency", "delegated": "consistency",
}

// parseMode checks a mode field as Docker's linux parser does: known
// options, at most one of each kind. An empty field is the default mode.
func parseMode(s string) (mode, error) {
	var m mode
	if s == "" {
		return m, nil
	}
	seen := map[string]bool{}
	for _, o := range strings.Split(s, ",") {
		kind, ok := modeKinds[o]
		if !ok || seen[kind] {
			return m, fmt.Errorf("invalid mode: %s", s)
		}
		seen[kind] = true
		switch kind {
		case "rw":
			m.readOnly = o == "ro"
		case "copy":
			m.noCopy = true
		case "propagation":
			m.propagation = o
		}
	}
	return m, nil
}

// From is one parsed `--volumes-from` entry.
type From struct {
	Container string
	ReadOnly  bool // ":ro" asked
}

// VolumesFrom parses "NAME", "NAME:ro" or "NAME:rw".
func VolumesFrom(spec string) (From, error) {
	name, mode, hasMode := strings.Cut(spec, ":")
	if name == "" {
		return From{}, errorf(errdefs.ErrInvalid, "volumes-from %s: empty container name", spec)
	}
	if hasMode && mode != "ro" && mode != "rw" {
		return From{}, errorf(errdefs.ErrInvalid, "volumes-from %s: invalid mode: %s (want ro or rw)", spec, mode)
	}
	return From{Container: name, ReadOnly: mode == "ro"}, nil
}

// RW tells whether a mount that is read-write (sourceRW) or read-only in the
// source container is read-write here: ":ro" can downgrade, never upgrade.
func (f From) RW(sourceRW bool) bool { return sourceRW && !f.ReadOnly }

// classedError carries an errdefs class without printing it, so messages
// read exactly `op subject: cause` while errors.Is still finds the class.
type classedError struct {
	err   error
	class error
}

func (e *classedError) Error() string   { return e.err.Error() }
func (e *classedError) Unwrap() []error { return []error{e.err, e.class} }

func errorf(class error, format string, args ...any) error {
	return &classedError{err: fmt.Errorf(format, args...), class: class}
}
