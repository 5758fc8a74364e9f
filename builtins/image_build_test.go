package builtins

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"vscript/engine"
)

// The build and exchange half of the fake engine: builds and loads make
// images in the fake's image list, and every call is recorded with the
// paths as the engine receives them.

func (f *fakeContainers) ImageBuild(_ context.Context, spec engine.BuildSpec) (*engine.ImageInfo, error) {
	var args []string
	for k, v := range spec.BuildArgs {
		args = append(args, k+"="+v)
	}
	sort.Strings(args)
	f.call("build %s context=%s dockerfile=%s text=%q args=%v no_cache=%t",
		spec.Tag, spec.Context, spec.Dockerfile, spec.DockerfileText, args, spec.NoCache)
	if strings.Contains(spec.DockerfileText, "COPPY") {
		return nil, fmt.Errorf("image build %s: dockerfile line 2: unknown instruction: COPPY: %w", spec.Tag, engine.ErrInvalid)
	}
	return f.addImage(spec.Tag)
}

func (f *fakeContainers) ImageSave(_ context.Context, refs []string, path, format string) error {
	for _, r := range refs {
		if _, err := f.image(r); err != nil {
			return err
		}
	}
	f.call("save %v %s %s", refs, path, format)
	return nil
}

func (f *fakeContainers) ImageLoad(_ context.Context, path string) ([]*engine.ImageInfo, error) {
	f.call("load %s", path)
	if strings.HasSuffix(path, "bad.tar") {
		return nil, fmt.Errorf("image load %s: layer sha256:00: content does not match its digest: %w", path, engine.ErrInvalid)
	}
	a, err := f.addImage("loaded:1")
	if err != nil {
		return nil, err
	}
	b, err := f.addImage("loaded:2")
	if err != nil {
		return nil, err
	}
	return []*engine.ImageInfo{a, b}, nil
}

func (f *fakeContainers) addImage(tag string) (*engine.ImageInfo, error) {
	f.image("") // seed the built-in ones
	ref := normalRef(tag)
	img := &fakeImage{info: engine.ImageInfo{
		ID: fmt.Sprintf("sha256:%064x", len(f.images)+1), Ref: ref, Tags: []string{ref},
		Config: engine.ImageConfig{Cmd: []string{"sh"}},
	}}
	f.images = append(f.images, img)
	info := img.info
	return &info, nil
}

func TestImageBuildSaveLoad(t *testing.T) {
	out, fake, err := run(t, `
img = image_build("web")
print(img, img.ref, img.config["cmd"])
image_build("app:v1", context = "app", dockerfile = "Dockerfile.dev", build_args = {"B": "2", "A": "1"}, no_cache = True)
image_build("inline", context = "/abs/ctx", dockerfile_text = "FROM busybox\n")
image_build("other", context = "app", dockerfile = "/elsewhere/Dockerfile")
image_save(img, "out/web.tar")
image_save(["busybox", image("httpd")], "out/layout", format = "oci-layout")
image_save(("busybox",), "/tmp/x.tar", format = "docker")
print([i.ref for i in image_load("out/web.tar")])
print(image("loaded:2") != None)
`)
	if err != nil {
		t.Fatal(FormatError(err))
	}
	want := "<image web:latest> web:latest [\"sh\"]\n[\"loaded:1\", \"loaded:2\"]\nTrue\n"
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	dir := scriptDirOf(t, fake)
	wantCalls := []string{
		"build web context=" + dir + " dockerfile=" + dir + "/Dockerfile text=\"\" args=[] no_cache=false",
		"build app:v1 context=" + dir + "/app dockerfile=" + dir + "/app/Dockerfile.dev text=\"\" args=[A=1 B=2] no_cache=true",
		"build inline context=/abs/ctx dockerfile=/abs/ctx/Dockerfile text=\"FROM busybox\\n\" args=[] no_cache=false",
		"build other context=" + dir + "/app dockerfile=/elsewhere/Dockerfile text=\"\" args=[] no_cache=false",
		"save [web:latest] " + dir + "/out/web.tar oci",
		"save [busybox httpd:latest] " + dir + "/out/layout oci-layout",
		"save [busybox] /tmp/x.tar docker",
		"load " + dir + "/out/web.tar",
	}
	if !reflect.DeepEqual(fake.calls, wantCalls) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(fake.calls, "\n"), strings.Join(wantCalls, "\n"))
	}
}

// scriptDirOf recovers the script's directory from the first build's
// context, which is the default ".".
func scriptDirOf(t *testing.T, fake *fakeEngine) string {
	t.Helper()
	first := fake.calls[0]
	i := strings.Index(first, "context=")
	j := strings.Index(first, " dockerfile=")
	if i < 0 || j < i {
		t.Fatalf("unexpected first call %q", first)
	}
	dir := first[i+len("context=") : j]
	if !filepath.IsAbs(dir) {
		t.Fatalf("context %q is not absolute", dir)
	}
	return dir
}

func TestImageBuildErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`image_build()`, `image_build: missing argument for tag`},
		{`image_build("x", build_args = {"A": 1})`, `image_build: build_args: want a dict of strings, got string: int`},
		{`image_build("x", build_args = [])`, `image_build: for parameter "build_args": got list, want dict`},
		{`image_build("x", dockerfile_text = 3)`, `image_build: dockerfile_text: want a string or None, got int`},
		{`image_build("x", dockerfile_text = "")`, `image_build: dockerfile_text: empty`},
		{`image_build("x", no_cache = "yes")`, `image_build: for parameter "no_cache": got string, want bool`},
		{`image_build("x", dockerfile_text = "FROM busybox\nCOPPY a b\n")`,
			`Error in image_build: image build x: dockerfile line 2: unknown instruction: COPPY`},
		{`image_save([], "x.tar")`, `image_save: images: empty list`},
		{`image_save(1, "x.tar")`, `image_save: images: want a name or an object, got int`},
		{`image_save(["busybox", 2], "x.tar")`, `image_save: images: want a name or an object, got int`},
		{`image_save("busybox", "x.tar", format = "zip")`, `image_save: format: want "oci", "oci-layout" or "docker", got "zip"`},
		{`image_save("nosuch", "x.tar")`, `Error in image_save: image nosuch: not found`},
		{`image_save("busybox")`, `image_save: missing argument for path`},
		{`image_load()`, `image_load: missing argument for path`},
		{`image_load("bad.tar")`, `Error in image_load: image load `},
	} {
		_, _, err := run(t, tc.src)
		if err == nil {
			t.Errorf("%s: no error, want %q", tc.src, tc.want)
			continue
		}
		if got := FormatError(err); !strings.Contains(got, tc.want) {
			t.Errorf("%s:\n%s\nwant it to contain %q", tc.src, got, tc.want)
		}
	}
}
