package engine

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"vscript/engine/errdefs"
)

// Iptables returns the lab host's rules of table in iptables-save form,
// without the comment lines (they carry the time, which would make
// transcripts differ from run to run).
func (e *Engine) Iptables(ctx context.Context, table string) (string, error) {
	switch table {
	case "nat", "filter", "mangle", "raw":
	default:
		return "", fmt.Errorf("iptables %s: %w: unknown table (nat, filter, mangle, raw)", table, errdefs.ErrInvalid)
	}
	e.netDrain() // rules still queued would be missing from the listing
	out, err := exec.CommandContext(ctx, "iptables-save", "-t", table).Output()
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return "", errdefs.WithHint(fmt.Errorf("iptables %s: iptables-save: %w", table, errdefs.ErrUnavailable),
				"install it: apt-get install -y iptables")
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("iptables %s: %s", table, strings.TrimSpace(string(ee.Stderr)))
		}
		return "", fmt.Errorf("iptables %s: %w", table, err)
	}
	var b strings.Builder
	for _, line := range strings.SplitAfter(string(out), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// Packet counters change with traffic; keep the listing stable.
		if strings.HasPrefix(line, ":") {
			if i := strings.LastIndex(line, " ["); i > 0 {
				line = line[:i] + "\n"
			}
		}
		b.WriteString(line)
	}
	return b.String(), nil
}
