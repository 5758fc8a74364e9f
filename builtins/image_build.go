package builtins

import (
	"context"
	"fmt"
	"path/filepath"

	"go.starlark.net/starlark"

	"vscript/engine"
)

// BuildEngine is the image build and exchange part of Engine.
type BuildEngine interface {
	// ImageBuild builds a Dockerfile and tags the result (docker build -t).
	ImageBuild(ctx context.Context, spec engine.BuildSpec) (*engine.ImageInfo, error)
	// ImageSave writes images to path as format: "oci", "oci-layout" or "docker".
	ImageSave(ctx context.Context, refs []string, path, format string) error
	// ImageLoad loads every image of an archive or OCI layout, whatever its kind.
	ImageLoad(ctx context.Context, path string) ([]*engine.ImageInfo, error)
}

func init() {
	Register(Builtin{Name: "image_build",
		Params: `tag, context=".", dockerfile="Dockerfile", dockerfile_text=None, build_args={}, no_cache=False`,
		Fn:     imageBuild,
		Doc: "Builds an image from a Dockerfile and tags it `tag`, as `docker build -t tag context`; returns the image. " +
			"`context` is a directory, relative to the script's directory; `dockerfile` is relative to the context " +
			"(as in Compose), unless `dockerfile_text` gives the Dockerfile itself. `build_args` (a dict of strings) " +
			"set ARGs, as `--build-arg`. Each step is cached as in Docker's legacy builder, so an unchanged build gives " +
			"the same image id without running anything; `no_cache=True` runs every step again. RUN steps have no " +
			"network. `-v` prints the steps as `docker build` does. See docs/images.md for the instructions supported."})
	Register(Builtin{Name: "image_save", Params: `images, path, format="oci"`, Fn: imageSave,
		Doc: "Writes images (an image, a name or id, or a list of them) to `path`, relative to the script's directory, " +
			"as `docker save -o`: `format=\"oci\"` makes an OCI archive (a tar), `\"oci-layout\"` an OCI layout directory, " +
			"`\"docker\"` an archive that `docker load` takes. An image given by name keeps the name; one given by id " +
			"has none. An existing archive, or an earlier OCI layout directory, is replaced."})
	Register(Builtin{Name: "image_load", Params: `path`, Fn: imageLoad,
		Doc: "Loads the images of a `docker save` archive, an OCI archive or an OCI layout directory (`path` relative " +
			"to the script's directory; the kind is recognised, gzip'd archives too), as `docker load -i`, and returns " +
			"them as a list, one per name (an unnamed image once). Images keep their ids and names; every blob is " +
			"checked against its digest, and a bad or hostile archive is an error that loads nothing."})
}

func imageBuild(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var tag, contextDir, dockerfile string = "", ".", "Dockerfile"
	var text starlark.Value = starlark.None
	var buildArgs *starlark.Dict
	var noCache bool
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "tag", &tag, "context?", &contextDir,
		"dockerfile?", &dockerfile, "dockerfile_text?", &text, "build_args?", &buildArgs, "no_cache?", &noCache); err != nil {
		return nil, err
	}
	e := env(thread)
	spec := engine.BuildSpec{Tag: tag, Context: absFrom(e.ScriptDir, contextDir), NoCache: noCache}
	spec.Dockerfile = absFrom(spec.Context, dockerfile)
	switch t := text.(type) {
	case starlark.NoneType:
	case starlark.String:
		if t == "" {
			return nil, fmt.Errorf("dockerfile_text: empty")
		}
		spec.DockerfileText = string(t)
	default:
		return nil, fmt.Errorf("dockerfile_text: want a string or None, got %s", text.Type())
	}
	if buildArgs != nil {
		items, err := stringItems(buildArgs)
		if err != nil {
			return nil, fmt.Errorf("build_args: %v", err)
		}
		spec.BuildArgs = map[string]string{}
		for _, kv := range items {
			spec.BuildArgs[kv[0]] = kv[1]
		}
	}
	info, err := e.Engine.ImageBuild(e.Ctx, spec)
	if err != nil {
		return nil, err
	}
	return &imageValue{info: info}, nil
}

func imageSave(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var images starlark.Value
	var path string
	format := "oci"
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "images", &images, "path", &path, "format?", &format); err != nil {
		return nil, err
	}
	var refs []string
	switch images.(type) {
	case *starlark.List, starlark.Tuple:
		var err error
		if refs, err = stringList(images, refOf); err != nil {
			return nil, fmt.Errorf("images: %v", err)
		}
		if len(refs) == 0 {
			return nil, fmt.Errorf("images: empty list")
		}
	default:
		ref, err := refOf(images)
		if err != nil {
			return nil, fmt.Errorf("images: %v", err)
		}
		refs = []string{ref}
	}
	switch format {
	case "oci", "oci-layout", "docker":
	default:
		return nil, fmt.Errorf(`format: want "oci", "oci-layout" or "docker", got %q`, format)
	}
	e := env(thread)
	return starlark.None, e.Engine.ImageSave(e.Ctx, refs, absFrom(e.ScriptDir, path), format)
}

func imageLoad(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var path string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path", &path); err != nil {
		return nil, err
	}
	e := env(thread)
	infos, err := e.Engine.ImageLoad(e.Ctx, absFrom(e.ScriptDir, path))
	if err != nil {
		return nil, err
	}
	list := make([]starlark.Value, len(infos))
	for i, info := range infos {
		list[i] = &imageValue{info: info}
	}
	return starlark.NewList(list), nil
}

// absFrom makes p absolute from dir.
func absFrom(dir, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, p)
}
