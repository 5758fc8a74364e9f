package builtins

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestVolumeBuiltins(t *testing.T) {
	out, fake, err := run(t, `
v = volume("web-data")
print(v, v.name, v.mountpoint, v.anonymous)
assert.eq(volume("web-data"), v)
a = volume()
print(len(a.name), a.anonymous, a != v)
print([x.name for x in volumes()] == sorted([a.name, "web-data"]))
print(volume_prune() == [a.name])
print([x.name for x in volumes()])
volume_rm("gone", force = True)
v.rm()
print(volumes())
b = volume("b1")
volume_rm(b)
print(volumes())
`)
	if err != nil {
		t.Fatal(FormatError(err))
	}
	want := "<volume web-data> web-data /var/lib/vscript/volumes/web-data/_data False\n" +
		"64 True True\nTrue\nTrue\n[\"web-data\"]\n[]\n[]\n"
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	wantCalls := []string{"volume create web-data", "volume create web-data", "volume create " + fmt.Sprintf("%064x", 1),
		"volume prune", "volume rm web-data force=false", "volume create b1", "volume rm b1 force=false"}
	if fmt.Sprint(fake.calls) != fmt.Sprint(wantCalls) {
		t.Errorf("calls:\n%q\nwant:\n%q", fake.calls, wantCalls)
	}
}

// run's volumes take -v strings and (volume, path[, mode]) tuples; a host
// path relative to the script becomes absolute before the engine sees it.
func TestRunVolumeSpecs(t *testing.T) {
	_, fake, err := run(t, `
v = volume("data")
run("busybox", "true", volumes = [(v, "/data"), ("logs", "/logs", "ro"), "/anon", "./site:/srv:ro", "/abs:/abs"],
    volumes_from = [create("busybox", name = "vc"), "vc:ro"])
`)
	if err != nil {
		t.Fatal(FormatError(err))
	}
	spec := fake.specs[len(fake.specs)-1]
	if len(spec.Volumes) != 5 {
		t.Fatalf("volumes = %q", spec.Volumes)
	}
	site := spec.Volumes[3]
	if !filepath.IsAbs(site) || !strings.HasSuffix(site, string(filepath.Separator)+"site:/srv:ro") {
		t.Errorf("relative bind source: %q, want an absolute path in the script's directory", site)
	}
	want := []string{"data:/data", "logs:/logs:ro", "/anon", site, "/abs:/abs"}
	if fmt.Sprint(spec.Volumes) != fmt.Sprint(want) {
		t.Errorf("volumes = %q, want %q", spec.Volumes, want)
	}
	if fmt.Sprint(spec.VolumesFrom) != "[vc vc:ro]" {
		t.Errorf("volumes_from = %q", spec.VolumesFrom)
	}
}

func TestVolumeErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`volume("../etc")`, `volume create ../etc: invalid argument`},
		{`volume("")`, `name: empty (use None for an anonymous volume)`},
		{`volume(3)`, `name: want a string, got int`},
		{`volume_rm("nosuch")`, `volume nosuch: not found`},
		{`volume_rm(run("busybox", "true"))`, `name: want a volume or its name, got container`},
		{`volume("vv").rm(force = 1)`, `for parameter "force": got int, want bool`},
		{"v = volume(\"busy\")\nrun(\"busybox\", \"true\", volumes = [(v, \"/d\")])\nv.rm()",
			`volume rm busy: conflict: volume is in use - [ctr1]`},
		{`volume("vv").nosuch`, `volume has no .nosuch field or method`},
		{`volumes(1)`, `volumes: got 1 arguments, want at most 0`},
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
