package builtins

import (
	"fmt"
	"path/filepath"
	"strings"

	"go.starlark.net/starlark"
)

func init() {
	Register(Builtin{Name: "cp", Params: `src, dst`, Fn: cpBuiltin,
		Doc: "Copies files or directories between a container and the host, in `docker cp` syntax: one side is " +
			"`\"CONTAINER:/path\"`, the other a host path (relative ones start at the script's directory). As with " +
			"`docker cp`, a source ending in `/.` copies the directory's content rather than the directory, and " +
			"the container need not be running."})
}

func cpBuiltin(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var src, dst string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "src", &src, "dst", &dst); err != nil {
		return nil, err
	}
	srcCtr, srcPath := splitCpArg(src)
	dstCtr, dstPath := splitCpArg(dst)
	switch {
	case src == "" || dst == "":
		return nil, fmt.Errorf("want a source and a destination path")
	case src == "-" || dst == "-":
		return nil, fmt.Errorf(`"-" (a tar stream) is not supported: copy to or from a host path`)
	case srcCtr == "" && dstCtr == "":
		return nil, fmt.Errorf("one of %q and %q must be a container path, such as \"web1:/etc/hosts\"", src, dst)
	case srcCtr != "" && dstCtr != "":
		return nil, fmt.Errorf("copying between containers is not supported: copy to the host and back")
	case srcPath == "":
		return nil, fmt.Errorf("want CONTAINER:PATH, got %q", src)
	case dstPath == "":
		return nil, fmt.Errorf("want CONTAINER:PATH, got %q", dst)
	}
	e := env(thread)
	if srcCtr == "" {
		src = hostPath(srcPath, e.ScriptDir)
	} else {
		dst = hostPath(dstPath, e.ScriptDir)
	}
	return starlark.None, e.Engine.Copy(e.Ctx, src, dst)
}

// splitCpArg is docker cp's reading of an argument: "NAME:PATH" is in a
// container, unless it is an absolute path or an explicit relative one
// ("./a:b").
func splitCpArg(arg string) (container, path string) {
	if filepath.IsAbs(arg) {
		return "", arg
	}
	container, path, ok := strings.Cut(arg, ":")
	if !ok || strings.HasPrefix(container, ".") {
		return "", arg
	}
	return container, path
}

// hostPath makes p absolute from dir, keeping the trailing "/" or "/." that
// docker cp gives meaning to.
func hostPath(p, dir string) string {
	if filepath.IsAbs(p) {
		return p
	}
	abs := filepath.Join(dir, p)
	switch {
	case p == "." || strings.HasSuffix(p, "/."):
		abs += "/."
	case strings.HasSuffix(p, "/"):
		abs += "/"
	}
	return abs
}
