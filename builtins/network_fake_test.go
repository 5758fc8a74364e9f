package builtins

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"vscript/engine"
)

// The network half of fakeEngine. Its state lives beside the fake (keyed by
// it) rather than in it, so that this file is all the fake needs to know of
// networks.

type fakeNetworks struct {
	nets  []*fakeNetwork // bridge first, then user networks
	calls []string       // "create my_net subnet=... gateway=...", "connect my_net web aliases=[] ip=", ...
}

type fakeNetwork struct {
	info    engine.NetworkInfo
	members []string // container names connected after create
}

var (
	fakeNetsMu sync.Mutex
	fakeNets   = map[*fakeEngine]*fakeNetworks{}
)

// nets returns f's network state, with the default bridge in it.
func (f *fakeEngine) nets() *fakeNetworks {
	fakeNetsMu.Lock()
	defer fakeNetsMu.Unlock()
	n, ok := fakeNets[f]
	if !ok {
		n = &fakeNetworks{nets: []*fakeNetwork{{info: engine.NetworkInfo{ID: fakeNetID(0), Name: "bridge", Driver: "bridge",
			Subnet: "172.17.0.0/16", Gateway: "172.17.0.1", Bridge: "vscript0"}}}}
		fakeNets[f] = n
	}
	return n
}

func fakeNetID(n int) string { return fmt.Sprintf("%02x%062d", 0xa0+n, 0) }

var fakePredefined = map[string]string{"host": "host", "none": "null"}

func (f *fakeEngine) findNet(ref string) (*fakeNetwork, error) {
	for _, n := range f.nets().nets {
		if n.info.Name == ref || n.info.ID == ref || (len(ref) >= 4 && strings.HasPrefix(n.info.ID, ref)) {
			return n, nil
		}
	}
	return nil, fmt.Errorf("network %s: %w", ref, engine.ErrNotFound)
}

// withMembers fills in the containers attached to n: those created on it
// and those connected to it.
func (f *fakeEngine) withMembers(n *fakeNetwork) *engine.NetworkInfo {
	info := n.info
	info.Containers = nil
	for _, c := range f.ctrs {
		onIt := c.spec.Network == n.info.Name || (c.spec.Network == "" && n.info.Name == "bridge")
		for _, m := range n.members {
			onIt = onIt || m == c.info.Name
		}
		if onIt {
			info.Containers = append(info.Containers, engine.NetworkMember{ID: c.info.ID, Name: c.info.Name})
		}
	}
	return &info
}

func (f *fakeEngine) NetworkCreate(_ context.Context, spec engine.NetworkSpec) (*engine.NetworkInfo, error) {
	s := f.nets()
	s.calls = append(s.calls, fmt.Sprintf("create %s driver=%s subnet=%s gateway=%s internal=%t",
		spec.Name, spec.Driver, spec.Subnet, spec.Gateway, spec.Internal))
	if _, taken := fakePredefined[spec.Name]; taken {
		return nil, fmt.Errorf("network create %s: %w: exists", spec.Name, engine.ErrConflict)
	}
	if _, err := f.findNet(spec.Name); err == nil {
		return nil, fmt.Errorf("network create %s: %w: exists", spec.Name, engine.ErrConflict)
	}
	if spec.Driver != "bridge" {
		return nil, fmt.Errorf("network create %s: %w: driver %q", spec.Name, engine.ErrInvalid, spec.Driver)
	}
	i := len(s.nets)
	subnet, gateway := spec.Subnet, spec.Gateway
	if subnet == "" {
		subnet, gateway = fmt.Sprintf("172.%d.0.0/16", 17+i), fmt.Sprintf("172.%d.0.1", 17+i)
	}
	id := fakeNetID(i)
	s.nets = append(s.nets, &fakeNetwork{info: engine.NetworkInfo{ID: id, Name: spec.Name, Driver: "bridge",
		Subnet: subnet, Gateway: gateway, Bridge: "br-" + id[:12], Internal: spec.Internal, DNS: true}})
	return f.withMembers(s.nets[i]), nil
}

func (f *fakeEngine) Network(ref string) (*engine.NetworkInfo, error) {
	if driver, ok := fakePredefined[ref]; ok {
		return &engine.NetworkInfo{ID: "id-" + ref, Name: ref, Driver: driver}, nil
	}
	for name, driver := range fakePredefined {
		if ref == "id-"+name {
			return &engine.NetworkInfo{ID: ref, Name: name, Driver: driver}, nil
		}
	}
	n, err := f.findNet(ref)
	if err != nil {
		return nil, err
	}
	return f.withMembers(n), nil
}

func (f *fakeEngine) Networks() ([]*engine.NetworkInfo, error) {
	s := f.nets()
	list := []*engine.NetworkInfo{f.withMembers(s.nets[0])}
	for _, name := range []string{"host", "none"} {
		info, _ := f.Network(name)
		list = append(list, info)
	}
	for _, n := range s.nets[1:] {
		list = append(list, f.withMembers(n))
	}
	return list, nil
}

func (f *fakeEngine) NetworkRemove(_ context.Context, ref string) error {
	s := f.nets()
	info, err := f.Network(ref)
	if err != nil {
		return err
	}
	s.calls = append(s.calls, "rm "+info.Name)
	if info.Name == "bridge" || info.Driver != "bridge" {
		return fmt.Errorf("network rm %s: %w: pre-defined", info.Name, engine.ErrInvalid)
	}
	for _, m := range info.Containers {
		if c, _ := f.find(m.ID); c != nil && c.info.Status == "running" {
			return fmt.Errorf("network rm %s: %w: containers %s are attached and running", info.Name, engine.ErrConflict, m.Name)
		}
	}
	for i, n := range s.nets {
		if n.info.ID == info.ID {
			s.nets = append(s.nets[:i], s.nets[i+1:]...)
			break
		}
	}
	return nil
}

func (f *fakeEngine) NetworkConnect(_ context.Context, ref, ctr string, spec engine.EndpointSpec) error {
	s := f.nets()
	n, err := f.findNet(ref)
	if err != nil {
		return err
	}
	c, err := f.find(ctr)
	if err != nil {
		return err
	}
	s.calls = append(s.calls, fmt.Sprintf("connect %s %s aliases=%q ip=%s", n.info.Name, c.info.Name, spec.Aliases, spec.IP))
	n.members = append(n.members, c.info.Name)
	return nil
}

func (f *fakeEngine) NetworkDisconnect(_ context.Context, ref, ctr string) error {
	s := f.nets()
	n, err := f.findNet(ref)
	if err != nil {
		return err
	}
	c, err := f.find(ctr)
	if err != nil {
		return err
	}
	s.calls = append(s.calls, fmt.Sprintf("disconnect %s %s", n.info.Name, c.info.Name))
	for i, m := range n.members {
		if m == c.info.Name {
			n.members = append(n.members[:i], n.members[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("network disconnect %s %s: %w", n.info.Name, c.info.Name, engine.ErrNotFound)
}
