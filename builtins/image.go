package builtins

import (
	"fmt"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"vscript/engine"
)

func init() {
	Register(Builtin{Name: "image", Params: `ref`, Fn: imageBuiltin,
		Doc: "The image `ref`: a name[:tag] (`:latest` if none) or an id. `busybox` and `httpd` are built in, made " +
			"on first use from the host's static busybox. Attributes: `.ref .id .layers` (layer digests, bottom first) " +
			"`.config` (a dict: `cmd` and `entrypoint` (None when unset), `env`, `workdir`, `user`, `volumes`, " +
			"`exposed_ports`, `labels`)."})
	Register(Builtin{Name: "images", Params: ``, Fn: imagesBuiltin,
		Doc: "Every image in the state directory (`docker images`), as a list of images."})
	Register(Builtin{Name: "image.history", Params: ``, Fn: imageHistory,
		Doc: "How the image was made (`docker history`), newest step first: a list of dicts with `created_by` " +
			"(the Dockerfile step), `empty_layer` (True if the step changed no files) and `comment`."})
	Register(Builtin{Name: "image.rm", Params: `force=False`, Fn: imageRm,
		Doc: "Removes the image's reference (`docker rmi`); the image goes when its last tag does. An image that " +
			"a container uses is an error unless `force=True`."})
}

// imageValue is an image. Unlike a container it does not change, so it
// keeps what the engine said.
type imageValue struct {
	info *engine.ImageInfo
}

var (
	_ starlark.HasAttrs   = (*imageValue)(nil)
	_ starlark.Comparable = (*imageValue)(nil)
)

// ref is how the image is named to the engine: the reference it was asked
// by, or its id when it has none.
func (im *imageValue) ref() string {
	if im.info.Ref != "" {
		return im.info.Ref
	}
	return im.info.ID
}

func (im *imageValue) String() string        { return "<image " + im.ref() + ">" }
func (im *imageValue) Type() string          { return "image" }
func (im *imageValue) Freeze()               {}
func (im *imageValue) Truth() starlark.Bool  { return true }
func (im *imageValue) Hash() (uint32, error) { return starlark.String(im.info.ID).Hash() }

func (im *imageValue) CompareSameType(op syntax.Token, y starlark.Value, _ int) (bool, error) {
	same := im.info.ID == y.(*imageValue).info.ID
	switch op {
	case syntax.EQL:
		return same, nil
	case syntax.NEQ:
		return !same, nil
	}
	return false, fmt.Errorf("%s %s %s not implemented", im.Type(), op, y.Type())
}

func (im *imageValue) AttrNames() []string {
	return append([]string{"config", "id", "layers", "ref"}, methodNames("image")...)
}

func (im *imageValue) Attr(name string) (starlark.Value, error) {
	switch name {
	case "ref":
		return starlark.String(im.info.Ref), nil
	case "id":
		return starlark.String(im.info.ID), nil
	case "layers":
		return strList(im.info.Layers), nil
	case "config":
		return imageConfig(&im.info.Config), nil
	}
	if m := method("image", name, im); m != nil {
		return m, nil
	}
	return nil, nil
}

// imageConfig is .config: keys in the order of a Dockerfile's instructions,
// so that printing it reads naturally.
func imageConfig(c *engine.ImageConfig) *starlark.Dict {
	argv := func(a []string) starlark.Value {
		if a == nil {
			return starlark.None
		}
		return strList(a)
	}
	d := starlark.NewDict(8)
	d.SetKey(starlark.String("cmd"), argv(c.Cmd))
	d.SetKey(starlark.String("entrypoint"), argv(c.Entrypoint))
	d.SetKey(starlark.String("env"), strList(c.Env))
	d.SetKey(starlark.String("workdir"), starlark.String(c.WorkingDir))
	d.SetKey(starlark.String("user"), starlark.String(c.User))
	d.SetKey(starlark.String("volumes"), strList(c.Volumes))
	d.SetKey(starlark.String("exposed_ports"), strList(c.ExposedPorts))
	d.SetKey(starlark.String("labels"), strDict(c.Labels))
	return d
}

func strList(ss []string) *starlark.List {
	list := make([]starlark.Value, len(ss))
	for i, s := range ss {
		list[i] = starlark.String(s)
	}
	return starlark.NewList(list)
}

func imageBuiltin(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var rv starlark.Value
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "ref", &rv); err != nil {
		return nil, err
	}
	ref, err := refOf(rv)
	if err != nil {
		return nil, fmt.Errorf("ref: %v", err)
	}
	info, err := env(thread).Engine.Image(ref)
	if err != nil {
		return nil, err
	}
	return &imageValue{info: info}, nil
}

func imagesBuiltin(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackArgs(b.Name(), args, kwargs); err != nil {
		return nil, err
	}
	infos, err := env(thread).Engine.Images()
	if err != nil {
		return nil, err
	}
	list := make([]starlark.Value, len(infos))
	for i, info := range infos {
		list[i] = &imageValue{info: info}
	}
	return starlark.NewList(list), nil
}

func imageHistory(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackArgs(b.Name(), args, kwargs); err != nil {
		return nil, err
	}
	entries, err := env(thread).Engine.ImageHistory(b.Receiver().(*imageValue).info.ID)
	if err != nil {
		return nil, err
	}
	list := make([]starlark.Value, len(entries))
	for i, h := range entries {
		d := starlark.NewDict(3)
		d.SetKey(starlark.String("created_by"), starlark.String(h.CreatedBy))
		d.SetKey(starlark.String("empty_layer"), starlark.Bool(h.EmptyLayer))
		d.SetKey(starlark.String("comment"), starlark.String(h.Comment))
		list[i] = d
	}
	return starlark.NewList(list), nil
}

func imageRm(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var force bool
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "force?", &force); err != nil {
		return nil, err
	}
	return starlark.None, env(thread).Engine.ImageRemove(b.Receiver().(*imageValue).ref(), force)
}
