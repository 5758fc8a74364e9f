package volume

import (
	"errors"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"vscript/engine/errdefs"
)

// FuzzParseSpec checks that no `-v` value makes ParseSpec panic, that a
// refusal is ErrInvalid, and that what it accepts is a well-formed mount:
// a clean absolute destination other than /, and a clean absolute bind
// source or a valid (or no) volume name.
func FuzzParseSpec(f *testing.F) {
	for _, seed := range []string{
		"/data", "data:/data", "data:/data:ro", "/host/dir:/ctr", "/host:/ctr:ro,z", "./site:/site",
		"../up:/up:rw", "/h:/c:rshared", "v:/c:nocopy", "/h:/c:nocopy", "/h:/", "", "a:b:c:d", "bad name!:/x",
		"/h:rel", ":/x", "/h::", "v:/c:ro,rw", "v:/c:rshared", "/h:/c/../..", "~/x:/x", "/x/../../..:/y",
	} {
		f.Add(seed)
	}
	const scriptDir = "/lab/scripts"
	f.Fuzz(func(t *testing.T, s string) {
		spec, err := ParseSpec(s, scriptDir)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("%q: error %v is not ErrInvalid", s, err)
			}
			return
		}
		d := spec.Destination
		if !path.IsAbs(d) || path.Clean(d) != d || d == "/" {
			t.Fatalf("%q: destination %q", s, d)
		}
		switch spec.Type {
		case TypeBind:
			if !filepath.IsAbs(spec.Source) || filepath.Clean(spec.Source) != spec.Source || spec.Name != "" {
				t.Fatalf("%q: bind mount %+v", s, spec)
			}
			if spec.Propagation == "" {
				t.Fatalf("%q: bind mount without a propagation", s)
			}
		case TypeVolume:
			if (spec.Name != "" && !ValidName(spec.Name)) || spec.Source != "" {
				t.Fatalf("%q: volume %+v", s, spec)
			}
		default:
			t.Fatalf("%q: type %q", s, spec.Type)
		}
		if !strings.HasSuffix(s, spec.Mode) {
			t.Fatalf("%q: mode %q is not what was written", s, spec.Mode)
		}
	})
}
