package builtins

import (
	"fmt"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"vscript/engine"
)

// VolumeEngine is the managed-volume part of Engine.
type VolumeEngine interface {
	// VolumeCreate makes a volume; a named one that exists is returned as
	// it is; "" makes an anonymous one (it lasts until the lab ends).
	VolumeCreate(name string) (*engine.VolumeInfo, error)
	Volume(name string) (*engine.VolumeInfo, error)
	// Volumes lists named volumes and the lab's anonymous ones.
	Volumes() ([]*engine.VolumeInfo, error)
	// VolumeRemove refuses a volume in use; force makes a missing one no error.
	VolumeRemove(name string, force bool) error
	// VolumePrune removes unused anonymous volumes and names them.
	VolumePrune() ([]string, error)
}

func init() {
	Register(Builtin{Name: "volume", Params: `name=None`, Fn: volumeBuiltin,
		Doc: "A managed volume (`docker volume create`): the volume called `name`, made if it does not exist yet, " +
			"or with `name=None` a new anonymous one (named by 64 hex digits). Named volumes stay in the state " +
			"directory across runs until removed; anonymous ones go when the lab ends. Attributes: `.name`, " +
			"`.mountpoint` (the host path of its data, like Docker's /var/lib/docker/volumes/NAME/_data), " +
			"`.anonymous`. Mount it with `run(..., volumes=[(v, \"/path\")])` or `\"NAME:/path\"`."})
	Register(Builtin{Name: "volumes", Params: ``, Fn: volumesBuiltin,
		Doc: "The managed volumes (`docker volume ls`): every named volume of the state directory and this lab's " +
			"anonymous ones, sorted by name."})
	Register(Builtin{Name: "volume_rm", Params: `name, force=False`, Fn: volumeRmBuiltin,
		Doc: "Removes a volume and its data (`docker volume rm`); `name` is a name or a volume. A volume that a " +
			"container mounts is refused (remove the container first). With `force=True` a missing volume is no error."})
	Register(Builtin{Name: "volume_prune", Params: ``, Fn: volumePruneBuiltin,
		Doc: "Removes every anonymous volume no container uses (`docker volume prune`) and returns their names. " +
			"Named volumes are never pruned."})
	Register(Builtin{Name: "volume.rm", Params: `force=False`, Fn: volumeRm,
		Doc: "Removes the volume, as `volume_rm(volume, force)`."})
}

// volumeValue is a managed volume. Name and place never change, so it keeps
// what the engine said.
type volumeValue struct {
	info *engine.VolumeInfo
}

var (
	_ starlark.HasAttrs   = (*volumeValue)(nil)
	_ starlark.Comparable = (*volumeValue)(nil)
)

func (v *volumeValue) String() string        { return "<volume " + v.info.Name + ">" }
func (v *volumeValue) Type() string          { return "volume" }
func (v *volumeValue) Freeze()               {}
func (v *volumeValue) Truth() starlark.Bool  { return true }
func (v *volumeValue) Hash() (uint32, error) { return starlark.String(v.info.Name).Hash() }

func (v *volumeValue) CompareSameType(op syntax.Token, y starlark.Value, _ int) (bool, error) {
	same := v.info.Name == y.(*volumeValue).info.Name
	switch op {
	case syntax.EQL:
		return same, nil
	case syntax.NEQ:
		return !same, nil
	}
	return false, fmt.Errorf("%s %s %s not implemented", v.Type(), op, y.Type())
}

func (v *volumeValue) AttrNames() []string {
	return append([]string{"anonymous", "mountpoint", "name"}, methodNames("volume")...)
}

func (v *volumeValue) Attr(name string) (starlark.Value, error) {
	switch name {
	case "name":
		return starlark.String(v.info.Name), nil
	case "mountpoint":
		return starlark.String(v.info.Mountpoint), nil
	case "anonymous":
		return starlark.Bool(v.info.Anonymous), nil
	}
	if m := method("volume", name, v); m != nil {
		return m, nil
	}
	return nil, nil
}

func volumeBuiltin(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var nv starlark.Value = starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "name?", &nv); err != nil {
		return nil, err
	}
	name, err := optString(nv)
	if err != nil {
		return nil, fmt.Errorf("name: %v", err)
	}
	if nv != starlark.None && name == "" {
		return nil, fmt.Errorf("name: empty (use None for an anonymous volume)")
	}
	info, err := env(thread).Engine.VolumeCreate(name)
	if err != nil {
		return nil, err
	}
	return &volumeValue{info: info}, nil
}

func volumesBuiltin(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackArgs(b.Name(), args, kwargs); err != nil {
		return nil, err
	}
	infos, err := env(thread).Engine.Volumes()
	if err != nil {
		return nil, err
	}
	list := make([]starlark.Value, len(infos))
	for i, info := range infos {
		list[i] = &volumeValue{info: info}
	}
	return starlark.NewList(list), nil
}

func volumeRmBuiltin(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var nv starlark.Value
	var force bool
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "name", &nv, "force?", &force); err != nil {
		return nil, err
	}
	name, err := volumeRef(nv)
	if err != nil {
		return nil, fmt.Errorf("name: %v", err)
	}
	return starlark.None, env(thread).Engine.VolumeRemove(name, force)
}

// volumeRef names a volume given by name or as the object; a container or
// network is not one.
func volumeRef(v starlark.Value) (string, error) {
	switch v := v.(type) {
	case starlark.String:
		return string(v), nil
	case *volumeValue:
		return v.info.Name, nil
	}
	return "", fmt.Errorf("want a volume or its name, got %s", v.Type())
}

func volumeRm(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var force bool
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "force?", &force); err != nil {
		return nil, err
	}
	return starlark.None, env(thread).Engine.VolumeRemove(b.Receiver().(*volumeValue).info.Name, force)
}

func volumePruneBuiltin(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackArgs(b.Name(), args, kwargs); err != nil {
		return nil, err
	}
	removed, err := env(thread).Engine.VolumePrune()
	if err != nil {
		return nil, err
	}
	return strList(removed), nil
}
