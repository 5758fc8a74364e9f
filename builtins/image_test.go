package builtins

import (
	"reflect"
	"strings"
	"testing"
)

func TestImageValue(t *testing.T) {
	out, fake, err := run(t, `
b = image("busybox")
h = image("httpd:latest")
print(b, b.ref, b.id[:8], b.layers)
print(b.config)
print(h.config)
print(h.history() == [], b.history())
print(image(b.id).ref, image(b) == b, b != h, {b: 1}[image("busybox:latest")])
print([str(i) for i in images()])
print(type(b), dir(b))
c = create(b, name = "c")
print(c.image)
assert.fails(lambda: b.rm(), "conflict: container c uses it")
c.rm()
b.rm()
print([i.ref for i in images()])
h.rm(force = True)
print(images())
`)
	if err != nil {
		t.Fatal(FormatError(err))
	}
	want := `<image busybox:latest> busybox:latest sha256:b ["sha256:1111111111111111111111111111111111111111111111111111111111111111"]
{"cmd": ["sh"], "entrypoint": None, "env": ["PATH=/bin"], "workdir": "", "user": "", "volumes": [], "exposed_ports": [], "labels": {}}
{"cmd": ["-f"], "entrypoint": ["httpd"], "env": [], "workdir": "/usr/local/apache2", "user": "", "volumes": ["/data"], "exposed_ports": ["80/tcp"], "labels": {"a": "1", "b": "2"}}
True [{"created_by": "CMD [\"sh\"]", "empty_layer": True, "comment": ""}, {"created_by": "ADD busybox /", "empty_layer": False, "comment": "built in"}]
busybox:latest True True 1
["<image busybox:latest>", "<image httpd:latest>"]
image ["config", "history", "id", "layers", "ref", "rm"]
busybox:latest
["httpd:latest"]
[]
`
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	wantCalls := []string{"create c", "rm c force=false volumes=false", "rmi busybox:latest force=false", "rmi httpd:latest force=true"}
	if !reflect.DeepEqual(fake.calls, wantCalls) {
		t.Errorf("calls:\n%q\nwant:\n%q", fake.calls, wantCalls)
	}
}

func TestImageErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`image("nosuch")`, `Error in image: image nosuch: not found`},
		{`image(1)`, `Error in image: ref: want a name or an object, got int`},
		{`image()`, `image: missing argument for ref`},
		{`images(1)`, `images: got 1 arguments, want at most 0`},
		{`image("busybox").history(1)`, `image.history: got 1 arguments, want at most 0`},
		{`image("busybox").rm(force = 1)`, `image.rm: for parameter "force": got int, want bool`},
		{`image("busybox").tags`, `image has no .tags field or method`},
		{`image("busybox") < image("httpd")`, `image < image not implemented`},
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
