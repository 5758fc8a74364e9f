package builtins

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestCp(t *testing.T) {
	_, fake, dir, err := runIn(t, `
cp("web1:/etc/hosts", "out/")
cp("web1:/srv/.", ".")
cp("./site/.", "web1:/usr/share")
cp("/abs/file", "web1:relative")
cp("conf", "web1:/etc/")
cp("../up", "web1:/up")
cp("./a:b", "web1:/x")
`)
	if err != nil {
		t.Fatal(FormatError(err))
	}
	want := []string{
		"cp web1:/etc/hosts $DIR/out/",
		"cp web1:/srv/. $DIR/.",
		"cp $DIR/site/. web1:/usr/share",
		"cp /abs/file web1:relative",
		"cp $DIR/conf web1:/etc/",
		"cp $PARENT/up web1:/up",
		"cp $DIR/a:b web1:/x",
	}
	paths := strings.NewReplacer("$DIR", dir, "$PARENT", filepath.Dir(dir))
	for i := range want {
		want[i] = paths.Replace(want[i])
	}
	if !reflect.DeepEqual(fake.calls, want) {
		t.Errorf("calls:\n%q\nwant:\n%q", fake.calls, want)
	}
}

func TestCpErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`cp("a", "b")`, `Error in cp: one of "a" and "b" must be a container path, such as "web1:/etc/hosts"`},
		{`cp("/a:b", "./c:d")`, `one of "/a:b" and "./c:d" must be a container path`},
		{`cp("a:/x", "b:/y")`, `Error in cp: copying between containers is not supported`},
		{`cp("-", "a:/x")`, `Error in cp: "-" (a tar stream) is not supported`},
		{`cp("", "a:/x")`, `Error in cp: want a source and a destination path`},
		{`cp("web:", "/tmp")`, `Error in cp: want CONTAINER:PATH, got "web:"`},
		{`cp("/tmp/x", "web:")`, `Error in cp: want CONTAINER:PATH, got "web:"`},
		{`cp(1, "web:/x")`, `cp: for parameter src: got int, want string`},
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
