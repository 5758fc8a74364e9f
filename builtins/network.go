package builtins

import (
	"context"
	"errors"
	"fmt"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"vscript/engine"
)

// NetworkEngine is the network part of Engine. Networks are named by name,
// id or unique id prefix wherever a ref is taken.
type NetworkEngine interface {
	// NetworkCreate makes a user-defined bridge network (docker network create).
	NetworkCreate(ctx context.Context, spec engine.NetworkSpec) (*engine.NetworkInfo, error)
	// Network looks a network up: a user network, "bridge", "host" or "none".
	Network(ref string) (*engine.NetworkInfo, error)
	// Networks lists them as docker network ls: bridge, host, none, then user networks.
	Networks() ([]*engine.NetworkInfo, error)
	// NetworkRemove deletes a user network; one with running containers is refused.
	NetworkRemove(ctx context.Context, ref string) error
	// NetworkConnect attaches a container (at once if it runs, else at its next start).
	NetworkConnect(ctx context.Context, network, container string, spec engine.EndpointSpec) error
	// NetworkDisconnect detaches a container.
	NetworkDisconnect(ctx context.Context, network, container string) error
}

func init() {
	Register(Builtin{Name: "network", Params: `name, driver="bridge", subnet=None, gateway=None, internal=False`, Fn: networkBuiltin,
		Doc: "A user-defined bridge network, as `docker network create --driver bridge --subnet S --gateway G [--internal] NAME`. " +
			"Without `subnet`, the next free one of Docker's default pools (172.18.0.0/16, 172.19.0.0/16, …); without " +
			"`gateway`, the subnet's first address. Containers get addresses from .2 up, resolve each other's names and " +
			"aliases through the embedded DNS server (127.0.0.11), and are isolated from other networks; an `internal` " +
			"network has no way out. Called with just a name, `network` returns the network of that name if there is " +
			"one (`network(\"bridge\")` is the default network: 172.17.0.0/16, no DNS between containers; `\"host\"` and " +
			"`\"none\"` exist too) and creates it otherwise; with more arguments an existing name is an error. " +
			"Attributes: `.name .id .driver .subnet .gateway .bridge` (the Linux bridge: `br-` and 12 characters of the " +
			"id; `vscript0` for the default network) `.internal`."})
	Register(Builtin{Name: "networks", Params: ``, Fn: networksBuiltin,
		Doc: "The lab's networks, as `docker network ls`: bridge, host, none, then user networks in creation order."})
	Register(Builtin{Name: "network.containers", Params: ``, Fn: networkContainers,
		Doc: "The containers attached to the network, in attachment order, running or not (`docker network inspect`'s Containers)."})
	Register(Builtin{Name: "network.connect", Params: `container, aliases=[], ip=None`, Fn: networkConnect,
		Doc: "Attaches a container (object or name) to the network, as `docker network connect [--alias A] [--ip IP]`: a running " +
			"container gets its next interface (eth1, eth2, …) at once, a stopped one at its next start. `aliases` are extra " +
			"DNS names on this network; `ip` a fixed address in its subnet."})
	Register(Builtin{Name: "network.disconnect", Params: `container`, Fn: networkDisconnect,
		Doc: "Detaches a container from the network (`docker network disconnect`): its interface and address there go."})
	Register(Builtin{Name: "network.rm", Params: ``, Fn: networkRm,
		Doc: "Removes the network (`docker network rm`): its bridge and iptables rules go. Refused while running " +
			"containers are attached; the predefined bridge, host and none cannot be removed."})
}

// networkValue is a network. Like a container, it holds only its identity
// and looks everything else up on use.
type networkValue struct {
	id, name string
	env      *Env
}

var (
	_ starlark.HasAttrs   = (*networkValue)(nil)
	_ starlark.Comparable = (*networkValue)(nil)
)

var networkAttrs = []string{"bridge", "driver", "gateway", "id", "internal", "name", "subnet"}

func newNetwork(e *Env, info *engine.NetworkInfo) *networkValue {
	return &networkValue{id: info.ID, name: info.Name, env: e}
}

func (n *networkValue) String() string        { return "<network " + n.name + ">" }
func (n *networkValue) Type() string          { return "network" }
func (n *networkValue) Freeze()               {}
func (n *networkValue) Truth() starlark.Bool  { return true }
func (n *networkValue) Hash() (uint32, error) { return starlark.String(n.id).Hash() }

func (n *networkValue) CompareSameType(op syntax.Token, y starlark.Value, _ int) (bool, error) {
	same := n.id == y.(*networkValue).id
	switch op {
	case syntax.EQL:
		return same, nil
	case syntax.NEQ:
		return !same, nil
	}
	return false, fmt.Errorf("%s %s %s not implemented", n.Type(), op, y.Type())
}

func (n *networkValue) AttrNames() []string {
	return append(append([]string{}, networkAttrs...), methodNames("network")...)
}

func (n *networkValue) Attr(name string) (starlark.Value, error) {
	switch name {
	case "id":
		return starlark.String(n.id), nil
	case "name":
		return starlark.String(n.name), nil
	}
	if m := method("network", name, n); m != nil {
		return m, nil
	}
	info, err := n.info(name)
	if err != nil || info == nil {
		return nil, err
	}
	opt := func(s string) starlark.Value {
		if s == "" {
			return starlark.None
		}
		return starlark.String(s)
	}
	switch name {
	case "driver":
		return starlark.String(info.Driver), nil
	case "subnet":
		return opt(info.Subnet), nil
	case "gateway":
		return opt(info.Gateway), nil
	case "bridge":
		return opt(info.Bridge), nil
	case "internal":
		return starlark.Bool(info.Internal), nil
	}
	return nil, nil
}

// info looks the network up for attribute attr; nil for an unknown
// attribute, so Starlark reports it with "did you mean".
func (n *networkValue) info(attr string) (*engine.NetworkInfo, error) {
	known := false
	for _, a := range networkAttrs {
		known = known || a == attr
	}
	if !known {
		return nil, nil
	}
	return n.env.Engine.Network(n.id)
}

func networkBuiltin(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name string
	driver := "bridge"
	var subnet, gateway starlark.Value = starlark.None, starlark.None
	var internal bool
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "name", &name, "driver?", &driver, "subnet?", &subnet,
		"gateway?", &gateway, "internal?", &internal); err != nil {
		return nil, err
	}
	spec := engine.NetworkSpec{Name: name, Driver: driver, Internal: internal}
	var err error
	if spec.Subnet, err = optString(subnet); err != nil {
		return nil, fmt.Errorf("subnet: %v", err)
	}
	if spec.Gateway, err = optString(gateway); err != nil {
		return nil, fmt.Errorf("gateway: %v", err)
	}
	e := env(thread)
	justName := len(args) <= 1
	for _, kv := range kwargs {
		justName = justName && string(kv[0].(starlark.String)) == "name"
	}
	if justName {
		// By name only: "a" must not find a network whose id starts with a.
		info, err := e.Engine.Network(name)
		if err == nil && info.Name == name {
			return newNetwork(e, info), nil
		}
		if err != nil && !errors.Is(err, engine.ErrNotFound) {
			return nil, err
		}
	}
	info, err := e.Engine.NetworkCreate(e.Ctx, spec)
	if err != nil {
		return nil, err
	}
	return newNetwork(e, info), nil
}

func networksBuiltin(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackArgs(b.Name(), args, kwargs); err != nil {
		return nil, err
	}
	e := env(thread)
	infos, err := e.Engine.Networks()
	if err != nil {
		return nil, err
	}
	list := make([]starlark.Value, len(infos))
	for i, info := range infos {
		list[i] = newNetwork(e, info)
	}
	return starlark.NewList(list), nil
}

func networkContainers(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackArgs(b.Name(), args, kwargs); err != nil {
		return nil, err
	}
	n := b.Receiver().(*networkValue)
	info, err := n.env.Engine.Network(n.id)
	if err != nil {
		return nil, err
	}
	list := make([]starlark.Value, len(info.Containers))
	for i, m := range info.Containers {
		list[i] = &containerValue{id: m.ID, name: m.Name, env: n.env}
	}
	return starlark.NewList(list), nil
}

func networkConnect(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var ctr starlark.Value
	var aliases starlark.Value = starlark.Tuple{}
	var ip starlark.Value = starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "container", &ctr, "aliases?", &aliases, "ip?", &ip); err != nil {
		return nil, err
	}
	ref, err := refOf(ctr)
	if err != nil {
		return nil, fmt.Errorf("container: %v", err)
	}
	var spec engine.EndpointSpec
	if spec.Aliases, err = stringList(aliases, nil); err != nil {
		return nil, fmt.Errorf("aliases: %v", err)
	}
	if spec.IP, err = optString(ip); err != nil {
		return nil, fmt.Errorf("ip: %v", err)
	}
	n := b.Receiver().(*networkValue)
	if err := n.env.Engine.NetworkConnect(env(thread).Ctx, n.id, ref, spec); err != nil {
		return nil, err
	}
	return starlark.None, nil
}

func networkDisconnect(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var ctr starlark.Value
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "container", &ctr); err != nil {
		return nil, err
	}
	ref, err := refOf(ctr)
	if err != nil {
		return nil, fmt.Errorf("container: %v", err)
	}
	n := b.Receiver().(*networkValue)
	if err := n.env.Engine.NetworkDisconnect(env(thread).Ctx, n.id, ref); err != nil {
		return nil, err
	}
	return starlark.None, nil
}

func networkRm(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackArgs(b.Name(), args, kwargs); err != nil {
		return nil, err
	}
	n := b.Receiver().(*networkValue)
	if err := n.env.Engine.NetworkRemove(env(thread).Ctx, n.id); err != nil {
		return nil, err
	}
	return starlark.None, nil
}
