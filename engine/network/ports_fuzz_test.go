package network

import (
	"errors"
	"reflect"
	"testing"

	"vscript/engine/errdefs"
)

// FuzzParsePortSpec checks that no `-p` value makes ParsePortSpec panic,
// that a refusal is ErrInvalid, and that what it accepts is a well-formed
// binding that reads back the same from its own String.
func FuzzParsePortSpec(f *testing.F) {
	for _, seed := range []string{
		"80", "8000:80", "127.0.0.1:8081:80/tcp", "127.0.0.1::80", "53:53/udp", "8000-8001:80-81",
		"8000-8010:80", "0:80", "80/UDP", "1.2.3.4:80:80/sctp", "[::1]:80:80", ":80", "80:", "a:b:c:d",
		"65536:80", "8000-7000:80", "0-5:80", "8000-8002:80-81", "80/", "/tcp", "1.2.3:80:80",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		bindings, err := ParsePortSpec(spec)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("%q: error %v is not ErrInvalid", spec, err)
			}
			return
		}
		if len(bindings) == 0 {
			t.Fatalf("%q: accepted with no binding", spec)
		}
		for _, b := range bindings {
			if b.ContainerPort == 0 || (b.Proto != "tcp" && b.Proto != "udp") || !b.HostIP.Is4() {
				t.Fatalf("%q: malformed binding %+v", spec, b)
			}
			if b.HostPortEnd != 0 && (b.HostPort == 0 || b.HostPortEnd <= b.HostPort) {
				t.Fatalf("%q: malformed host range %+v", spec, b)
			}
			again, err := ParsePortSpec(b.String())
			if err != nil || !reflect.DeepEqual(again, []PortBinding{b}) {
				t.Fatalf("%q: binding %+v prints as %q, which reads back as %+v, %v", spec, b, b.String(), again, err)
			}
		}
	})
}
