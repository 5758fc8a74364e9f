package builtins

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	"vscript/engine"
)

// The fake engine's volumes. They live beside fakeEngine rather than in it
// because fakeEngine's definition is shared with the container tests; the
// map is keyed by the fake they belong to.
var (
	fakeVolsMu sync.Mutex
	fakeVols   = map[*fakeEngine]*fakeVolumes{}
)

type fakeVolumes struct {
	byName map[string]*engine.VolumeInfo
	anon   int
}

func (f *fakeEngine) vols() *fakeVolumes {
	fakeVolsMu.Lock()
	defer fakeVolsMu.Unlock()
	v := fakeVols[f]
	if v == nil {
		v = &fakeVolumes{byName: map[string]*engine.VolumeInfo{}}
		fakeVols[f] = v
	}
	return v
}

var fakeVolumeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

func (f *fakeEngine) VolumeCreate(name string) (*engine.VolumeInfo, error) {
	vs := f.vols()
	anonymous := name == ""
	if anonymous {
		vs.anon++
		name = fmt.Sprintf("%064x", vs.anon)
	} else if !fakeVolumeName.MatchString(name) {
		return nil, fmt.Errorf("volume create %s: %w: invalid name", name, engine.ErrInvalid)
	}
	f.call("volume create %s", name)
	if v, ok := vs.byName[name]; ok {
		info := *v
		return &info, nil
	}
	v := &engine.VolumeInfo{Name: name, Anonymous: anonymous, Mountpoint: "/var/lib/vscript/volumes/" + name + "/_data"}
	vs.byName[name] = v
	info := *v
	return &info, nil
}

func (f *fakeEngine) Volume(name string) (*engine.VolumeInfo, error) {
	v, ok := f.vols().byName[name]
	if !ok {
		return nil, fmt.Errorf("volume %s: %w", name, engine.ErrNotFound)
	}
	info := *v
	return &info, nil
}

func (f *fakeEngine) Volumes() ([]*engine.VolumeInfo, error) {
	vs := f.vols()
	names := make([]string, 0, len(vs.byName))
	for n := range vs.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]*engine.VolumeInfo, len(names))
	for i, n := range names {
		info := *vs.byName[n]
		out[i] = &info
	}
	return out, nil
}

// users names the fake containers whose -v specs mount the volume.
func (f *fakeEngine) users(name string) []string {
	var out []string
	for _, c := range f.ctrs {
		for _, v := range c.spec.Volumes {
			if strings.HasPrefix(v, name+":") {
				out = append(out, c.info.Name)
				break
			}
		}
	}
	return out
}

func (f *fakeEngine) VolumeRemove(name string, force bool) error {
	vs := f.vols()
	if _, ok := vs.byName[name]; !ok {
		if force {
			return nil
		}
		return fmt.Errorf("volume %s: %w", name, engine.ErrNotFound)
	}
	if users := f.users(name); len(users) > 0 {
		return fmt.Errorf("volume rm %s: %w: volume is in use - %v", name, engine.ErrConflict, users)
	}
	f.call("volume rm %s force=%t", name, force)
	delete(vs.byName, name)
	return nil
}

func (f *fakeEngine) VolumePrune() ([]string, error) {
	vols, _ := f.Volumes()
	var removed []string
	for _, v := range vols {
		if v.Anonymous && len(f.users(v.Name)) == 0 {
			delete(f.vols().byName, v.Name)
			removed = append(removed, v.Name)
		}
	}
	f.call("volume prune")
	return removed, nil
}
