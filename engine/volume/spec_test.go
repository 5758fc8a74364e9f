package volume

import (
	"errors"
	"testing"

	"vscript/engine/errdefs"
)

func TestParseSpec(t *testing.T) {
	const dir = "/labs/day6"
	good := []struct {
		in   string
		want Spec
	}{
		{"/ctr/data", Spec{Type: "volume", Destination: "/ctr/data"}},
		{"/ctr/data/", Spec{Type: "volume", Destination: "/ctr/data"}},
		{"vol1:/data", Spec{Type: "volume", Name: "vol1", Destination: "/data"}},
		{"my_vol.2-x:/data:ro", Spec{Type: "volume", Name: "my_vol.2-x", Destination: "/data", ReadOnly: true, Mode: "ro"}},
		{"vol1:/data:nocopy", Spec{Type: "volume", Name: "vol1", Destination: "/data", NoCopy: true, Mode: "nocopy"}},
		{"vol1:/data:ro,nocopy,z", Spec{Type: "volume", Name: "vol1", Destination: "/data", ReadOnly: true, NoCopy: true, Mode: "ro,nocopy,z"}},
		{"/srv/www:/usr/local/apache2/htdocs", Spec{Type: "bind", Source: "/srv/www", Destination: "/usr/local/apache2/htdocs", Propagation: "rprivate"}},
		{"/srv//www/:/a/../b:rw", Spec{Type: "bind", Source: "/srv/www", Destination: "/b", Mode: "rw", Propagation: "rprivate"}},
		{"/srv:/b:ro,Z,rshared", Spec{Type: "bind", Source: "/srv", Destination: "/b", ReadOnly: true, Mode: "ro,Z,rshared", Propagation: "rshared"}},
		{"/srv:/b:cached", Spec{Type: "bind", Source: "/srv", Destination: "/b", Mode: "cached", Propagation: "rprivate"}},
		{"./site:/www", Spec{Type: "bind", Source: "/labs/day6/site", Destination: "/www", Propagation: "rprivate"}},
		{"../shared:/www:ro", Spec{Type: "bind", Source: "/labs/shared", Destination: "/www", ReadOnly: true, Mode: "ro", Propagation: "rprivate"}},
		{".:/www", Spec{Type: "bind", Source: "/labs/day6", Destination: "/www", Propagation: "rprivate"}},
	}
	for _, tt := range good {
		got, err := ParseSpec(tt.in, dir)
		if err != nil {
			t.Errorf("ParseSpec(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseSpec(%q) =\n %+v, want\n %+v", tt.in, got, tt.want)
		}
	}

	bad := []struct{ in, err string }{
		{"", "volume spec: empty"},
		{"/a:/b:rw:zz", "volume spec /a:/b:rw:zz: too many colons"},
		{"/a:/b:zz", "volume spec /a:/b:zz: invalid mode: zz"},
		{"/a:/b:ro,rw", "volume spec /a:/b:ro,rw: invalid mode: ro,rw"},
		{"/a:/b:z,Z", "volume spec /a:/b:z,Z: invalid mode: z,Z"},
		{"/a:/b:ro,", "volume spec /a:/b:ro,: invalid mode: ro,"},
		{"/a:/b:", "volume spec /a:/b:: empty mode"},
		{"/a:b", "volume spec /a:b: invalid mount path: 'b' mount path must be absolute"},
		{"data", "volume spec data: invalid mount path: 'data' mount path must be absolute"},
		{"vol:b:ro", "volume spec vol:b:ro: invalid mount path: 'b' mount path must be absolute"},
		{":/b", "volume spec :/b: empty source"},
		{"/a:", "volume spec /a:: empty destination"},
		{"/a::ro", "volume spec /a::ro: empty destination"},
		{"/a:/", "volume spec /a:/: invalid specification: destination can't be '/'"},
		{"/data:ro", "volume spec /data:ro: mode ro needs a source, as in SOURCE:/data:ro"},
		{"~/site:/www", `volume spec ~/site:/www: "~/site" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`},
		{"v:/www", `volume spec v:/www: "v" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`},
		{"/a:/b:nocopy", "volume spec /a:/b:nocopy: nocopy is only valid for volumes, not bind mounts"},
		{"vol:/b:shared", "volume spec vol:/b:shared: propagation shared is only valid for bind mounts"},
	}
	for _, tt := range bad {
		_, err := ParseSpec(tt.in, dir)
		if err == nil {
			t.Errorf("ParseSpec(%q) succeeded, want %q", tt.in, tt.err)
			continue
		}
		if err.Error() != tt.err {
			t.Errorf("ParseSpec(%q):\n got %q\nwant %q", tt.in, err, tt.err)
		}
		if !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("ParseSpec(%q): %v is not ErrInvalid", tt.in, err)
		}
	}
}

func TestVolumesFrom(t *testing.T) {
	good := []struct {
		in   string
		want From
	}{
		{"dbdata", From{Container: "dbdata"}},
		{"dbdata:rw", From{Container: "dbdata"}},
		{"dbdata:ro", From{Container: "dbdata", ReadOnly: true}},
	}
	for _, tt := range good {
		got, err := VolumesFrom(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("VolumesFrom(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	bad := []struct{ in, err string }{
		{"", "volumes-from : empty container name"},
		{":ro", "volumes-from :ro: empty container name"},
		{"db:z", "volumes-from db:z: invalid mode: z (want ro or rw)"},
		{"db:", "volumes-from db:: invalid mode:  (want ro or rw)"},
		{"db:ro:rw", "volumes-from db:ro:rw: invalid mode: ro:rw (want ro or rw)"},
	}
	for _, tt := range bad {
		_, err := VolumesFrom(tt.in)
		if err == nil || err.Error() != tt.err || !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("VolumesFrom(%q) = %v, want %q (ErrInvalid)", tt.in, err, tt.err)
		}
	}
}

func TestFromRW(t *testing.T) {
	rw, ro := From{Container: "c"}, From{Container: "c", ReadOnly: true}
	cases := []struct {
		from     From
		sourceRW bool
		want     bool
	}{
		{rw, true, true},
		{rw, false, false}, // rw never upgrades a read-only source
		{ro, true, false},  // ro downgrades
		{ro, false, false},
	}
	for _, c := range cases {
		if got := c.from.RW(c.sourceRW); got != c.want {
			t.Errorf("%+v.RW(%v) = %v, want %v", c.from, c.sourceRW, got, c.want)
		}
	}
}
