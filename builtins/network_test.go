package builtins

import (
	"strings"
	"testing"
)

func TestNetworkBuiltins(t *testing.T) {
	out, fake, err := run(t, `
n = network("my_net", subnet = "172.86.86.0/24", gateway = "172.86.86.1")
print(n, n.name, n.driver, n.subnet, n.gateway, n.bridge, n.internal, n.id[:4])
print(network("my_net") == n, network("my_net") != n, network("bridge").subnet, network("host").subnet, network("none").driver)
v = network("vault", internal = True)
print(v.subnet, v.internal)
auto = network("auto")           # just a name, and none exists: made with defaults
print(auto.subnet)
print([x.name for x in networks()])
c = run("busybox", "sleep 60", name = "web", network = n, detach = True)
d = run("busybox", "sleep 60", name = "db", detach = True)
n.connect(d, aliases = ["database"], ip = "172.86.86.50")
n.connect("web")
print([x.name for x in n.containers()], n.containers()[0] == c)
n.disconnect(d)
print(http_get("http://web/", via = c).body)
v.rm()
print([x.name for x in networks()])
print(sorted(dir(n)))
`)
	if err != nil {
		t.Fatal(FormatError(err))
	}
	want := `<network my_net> my_net bridge 172.86.86.0/24 172.86.86.1 br-a10000000000 False a100
True False 172.17.0.0/16 None null
172.19.0.0/16 True
172.20.0.0/16
["bridge", "host", "none", "my_net", "vault", "auto"]
["web", "db"] True
web http://web/ 5s
["bridge", "host", "none", "my_net", "auto"]
["bridge", "connect", "containers", "disconnect", "driver", "gateway", "id", "internal", "name", "rm", "subnet"]
`
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	calls := strings.Join(fake.nets().calls, "\n")
	wantCalls := `create my_net driver=bridge subnet=172.86.86.0/24 gateway=172.86.86.1 internal=false
create vault driver=bridge subnet= gateway= internal=true
create auto driver=bridge subnet= gateway= internal=false
connect my_net db aliases=["database"] ip=172.86.86.50
connect my_net web aliases=[] ip=
disconnect my_net db
rm vault`
	if calls != wantCalls {
		t.Errorf("calls:\n%s\nwant:\n%s", calls, wantCalls)
	}
	if got := fake.specs[0].Network; got != "my_net" {
		t.Errorf("run(network=n) gave RunSpec.Network %q, want my_net", got)
	}
}

func TestNetworkErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`network()`, `network: missing argument for name`},
		{`network("a", subnet = 1)`, `subnet: want a string, got int`},
		{`network("a", gateway = [])`, `gateway: want a string, got list`},
		{`network("a", driver = "overlay")`, `network create a: invalid argument: driver "overlay"`},
		{`network("a"); network("a", internal = True)`, `network create a: conflict`},
		{`network("bridge", subnet = "10.0.0.0/8")`, `network create bridge: conflict`},
		{`network("a").connect(1)`, `container: want a name or an object, got int`},
		{`network("a").connect("nosuch")`, `container nosuch: not found`},
		{`network("a").connect(run("busybox", name = "c1", detach = True), aliases = "x")`, `aliases: want a list, got string`},
		{`network("a").connect(run("busybox", name = "c1", detach = True), ip = 5)`, `ip: want a string, got int`},
		{`network("bridge").rm()`, `network rm bridge: invalid argument`},
		{`network("a").rm(1)`, `network.rm: got 1 arguments, want at most 0`},
		{`network("a").nosuch`, `network has no .nosuch field or method`},
		{`n = network("a"); run("busybox", name = "c1", network = n, detach = True); n.rm()`, `network rm a: conflict`},
		{`networks(1)`, `networks: got 1 arguments, want at most 0`},
	} {
		_, _, err := run(t, tc.src)
		if err == nil {
			t.Errorf("%s: no error, want %q", tc.src, tc.want)
			continue
		}
		if got := FormatError(err); !strings.Contains(got, tc.want) {
			t.Errorf("%s: error\n%s\nwant it to contain %q", tc.src, got, tc.want)
		}
	}
}

func TestHTTPGetViaContainer(t *testing.T) {
	out, _, err := run(t, `
c = run("busybox", "sleep 60", name = "web", detach = True)
print(http_get("http://x/", via = c).body, http_get("http://x/", via = "web").body)
`)
	if err != nil {
		t.Fatal(FormatError(err))
	}
	if want := "web http://x/ 5s web http://x/ 5s\n"; out != want {
		t.Errorf("output %q, want %q", out, want)
	}
}
