package engine

import (
	"fmt"
	"os"
	"strings"

	"vscript/engine/errdefs"
)

// This file joins containers to networks: the hooks container.go calls at
// create, start, exit and rm. Bridge networks are not wired in yet; a
// container has no network ("none"), the lab host's ("host"), or another
// container's ("container:NAME").

// ctrNet is a container's network state.
type ctrNet struct {
	mode string // "none", "host", "container:NAME"
}

// netCreate validates run(network=...) and records it. Call with e.mu held.
func (e *Engine) netCreate(c *container) error {
	network := c.spec.Network
	switch {
	case network == "none" || network == "host":
		c.net.mode = network
	case strings.HasPrefix(network, "container:"):
		target, err := e.lookup(strings.TrimPrefix(network, "container:"))
		if err != nil {
			return err
		}
		c.net.mode = "container:" + target.name
	case network == "" || network == "bridge":
		return errdefs.WithHint(
			fmt.Errorf("network bridge: %w: bridge networking is not built yet", errdefs.ErrUnavailable),
			`pass network="none" or network="host" for now`)
	default:
		return fmt.Errorf("network %s: %w", network, errdefs.ErrNotFound)
	}
	return nil
}

// netNS is the runtime's NetNS for c: a new namespace, the lab host's, or
// the joined container's, looked up at each start since its owner may have
// restarted.
func (e *Engine) netNS(c *container) (string, error) {
	switch mode := c.net.mode; {
	case mode == "none":
		return "", nil
	case mode == "host":
		return "host", nil
	case strings.HasPrefix(mode, "container:"):
		e.mu.Lock()
		defer e.mu.Unlock()
		target, err := e.lookup(strings.TrimPrefix(mode, "container:"))
		if err != nil {
			return "", err
		}
		if target.rt == nil {
			return "", fmt.Errorf("network %s: %w: container %s is not running", mode, errdefs.ErrConflict, target.name)
		}
		return fmt.Sprintf("/proc/%d/ns/net", target.rt.Pid()), nil
	}
	return "", fmt.Errorf("network %s: %w", c.net.mode, errdefs.ErrNotFound)
}

// netStart wires c's network namespace (pid's) before its command runs, and
// returns the commands that amounts to.
func (e *Engine) netStart(c *container, pid int) ([]string, error) { return nil, nil }

// netStop undoes netStart when c's command has ended.
func (e *Engine) netStop(c *container) {}

// netRemove releases what netCreate reserved.
func (e *Engine) netRemove(c *container) {}

// netEtc returns c's /etc/hosts and /etc/resolv.conf.
func (e *Engine) netEtc(c *container) (hosts, resolv []byte) {
	var b strings.Builder
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
	resolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		resolv = nil
	}
	return []byte(b.String()), resolv
}

// netInspect is inspect()'s NetworkSettings.
func (e *Engine) netInspect(c *container) map[string]any {
	return map[string]any{"Networks": map[string]any{}, "Ports": map[string]any{}}
}
