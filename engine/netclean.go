package engine

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"vscript/engine/lab"
	"vscript/engine/runtime"

	"github.com/vishvananda/netlink"

	"vscript/engine/errdefs"
	"vscript/engine/network"
)

// This file removes vscript's networking from a real host: at the end of a
// --host lab (netClose) and, with `vscript clean`, what a killed one left.
// Sandboxed labs never need it: their namespace takes everything along.
//
// What is vscript's is recognisable without any state file: bridges made on
// a real host carry the alias "vscript pid=PID [ip_forward=0
// forward_policy=P]" (the owning process, and what the firewall's setup
// changed), and the iptables chains are named VSCRIPT*. A rule outside those
// chains is vscript's if it jumps into one of them, names one of vscript's
// bridges, or (the hairpin MASQUERADE of a published port) matches addresses
// of a vscript bridge's subnet.

// hostLabel starts the alias of every bridge a --host lab makes.
const hostLabel = "vscript"

// labelled is one vscript bridge found on the host.
type labelled struct {
	link    netlink.Link
	pid     int
	restore string // "ip_forward=0 forward_policy=ACCEPT" or ""
	subnets []netip.Prefix
}

func (l labelled) name() string { return l.link.Attrs().Name }

// vscriptBridges lists the bridges with vscript's label.
func vscriptBridges() ([]labelled, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var out []labelled
	for _, link := range links {
		alias := link.Attrs().Alias
		if link.Type() != "bridge" || (alias != hostLabel && !strings.HasPrefix(alias, hostLabel+" ")) {
			continue
		}
		l := labelled{link: link}
		var restore []string
		for _, f := range strings.Fields(alias)[1:] {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "pid":
				l.pid, _ = strconv.Atoi(v)
			case "ip_forward", "forward_policy":
				restore = append(restore, f)
			}
		}
		l.restore = strings.Join(restore, " ")
		if addrs, err := netlink.AddrList(link, netlink.FAMILY_V4); err == nil {
			for _, a := range addrs {
				ones, _ := a.Mask.Size()
				if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok {
					l.subnets = append(l.subnets, netip.PrefixFrom(ip, ones).Masked())
				}
			}
		}
		out = append(out, l)
	}
	return out, nil
}

// alive reports whether the process that labelled a bridge still runs. A
// reused pid keeps the bridge: cleaning too little is the safe mistake.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// CleanHost removes what killed --host labs left in the current network
// namespace: their bridges (and veths still enslaved to them), their
// iptables rules, and — once no running lab needs them — the VSCRIPT chains
// and the forwarding settings the firewall changed. Bridges of running labs
// are kept. It returns the commands it amounts to.
func CleanHost() ([]string, error) {
	// The containers of a killed --host lab: their overlays and scratch
	// files, and their cgroups.
	scratch, scratchErr := lab.CleanHostScratch()
	runtime.CleanupCgroups()
	done, err := cleanDeadBridges()
	return append(scratch, done...), errors.Join(scratchErr, err)
}

// cleanDeadBridges is CleanHost's networking part.
func cleanDeadBridges() ([]string, error) {
	bridges, err := vscriptBridges()
	if err != nil {
		return nil, err
	}
	var dead []labelled
	live := false
	for _, b := range bridges {
		if alive(b.pid) && b.pid != os.Getpid() {
			live = true
		} else {
			dead = append(dead, b)
		}
	}
	var done []string
	var errs []error
	restore := ""
	for _, b := range dead {
		if b.restore != "" {
			restore = b.restore
		}
		links, _ := netlink.LinkList()
		for _, l := range links {
			if l.Attrs().MasterIndex == b.link.Attrs().Index {
				if err := netlink.LinkDel(l); err == nil {
					done = append(done, "ip link del "+l.Attrs().Name)
				}
			}
		}
		if err := netlink.LinkDel(b.link); err != nil {
			errs = append(errs, fmt.Errorf("ip link del %s: %w", b.name(), err))
			continue
		}
		done = append(done, "ip link del "+b.name())
	}
	lines, err := cleanRules(dead, !live)
	done = append(done, lines...)
	if err != nil {
		errs = append(errs, err)
	}
	if !live && restore != "" {
		lines, err := restoreForwarding(restore)
		done = append(done, lines...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return done, errors.Join(errs...)
}

// cleanHostNetwork is netClose's last step: with this lab's bridges gone,
// the VSCRIPT chains go too unless another running lab still has bridges,
// and forwarding is put back as it was.
func cleanHostNetwork(restore string) {
	bridges, err := vscriptBridges()
	if err != nil {
		return
	}
	for _, b := range bridges {
		if alive(b.pid) && b.pid != os.Getpid() {
			return
		}
	}
	cleanRules(nil, true)
	if restore != "" {
		restoreForwarding(restore)
	}
}

// cleanRules deletes the iptables rules of the given bridges and, with
// chains, every jump into the VSCRIPT chains and the chains themselves, in
// one iptables-restore run per table.
func cleanRules(bridges []labelled, chains bool) ([]string, error) {
	save, err := hostProgram("iptables-save")
	if err != nil {
		return nil, err
	}
	restore, err := hostProgram("iptables-restore")
	if err != nil {
		return nil, err
	}
	var done []string
	var errs []error
	for _, table := range []string{network.TableFilter, network.TableNAT} {
		out, err := exec.Command(save, "-t", table).Output()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s -t %s: %w", save, table, err))
			continue
		}
		script, lines := cleanScript(table, string(out), bridges, chains)
		if len(lines) == 0 {
			continue
		}
		cmd := exec.Command(restore, "-w", "--noflush")
		cmd.Stdin = strings.NewReader(script)
		if msg, err := cmd.CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("iptables-restore: %s", strings.TrimSpace(string(msg))))
			continue
		}
		done = append(done, lines...)
	}
	return done, errors.Join(errs...)
}

// cleanScript turns one table's iptables-save listing into the
// iptables-restore input that removes vscript's part of it, and the
// equivalent iptables commands.
func cleanScript(table, saved string, bridges []labelled, chains bool) (string, []string) {
	ours := func(chain string, f []string) bool {
		if strings.HasPrefix(chain, network.ChainVScript) {
			return false // flushed whole, or kept whole
		}
		for i := 0; i+1 < len(f); i++ {
			switch f[i] {
			case "-j", "-g":
				if chains && strings.HasPrefix(f[i+1], network.ChainVScript) {
					return true
				}
			case "-i", "-o":
				for _, b := range bridges {
					if f[i+1] == b.name() {
						return true
					}
				}
			case "-s", "-d":
				p, err := netip.ParsePrefix(f[i+1])
				if err != nil {
					continue
				}
				for _, b := range bridges {
					for _, sub := range b.subnets {
						if p.Bits() == 32 && sub.Contains(p.Addr()) {
							return true
						}
					}
				}
			}
		}
		return false
	}
	var del, vchains []string
	for line := range strings.Lines(saved) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, ":"):
			name, _, _ := strings.Cut(line[1:], " ")
			if strings.HasPrefix(name, network.ChainVScript) {
				vchains = append(vchains, name)
			}
		case strings.HasPrefix(line, "-A "):
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			chain := f[1]
			if ours(chain, f[2:]) || (!chains && strings.HasPrefix(chain, network.ChainVScript) && mentionsBridge(f[2:], bridges)) {
				del = append(del, "-D "+strings.TrimPrefix(line, "-A "))
			}
		}
	}
	var b strings.Builder
	var cmds []string
	prefix := "iptables "
	if table != network.TableFilter {
		prefix += "-t " + table + " "
	}
	b.WriteString("*" + table + "\n")
	for _, d := range del {
		b.WriteString(d + "\n")
		cmds = append(cmds, prefix+d)
	}
	if chains {
		for _, c := range vchains {
			b.WriteString("-F " + c + "\n")
			cmds = append(cmds, prefix+"-F "+c)
		}
		for _, c := range vchains {
			b.WriteString("-X " + c + "\n")
			cmds = append(cmds, prefix+"-X "+c)
		}
	}
	b.WriteString("COMMIT\n")
	return b.String(), cmds
}

func mentionsBridge(f []string, bridges []labelled) bool {
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "-i" || f[i] == "-o" {
			for _, b := range bridges {
				if f[i+1] == b.name() {
					return true
				}
			}
		}
	}
	return false
}

// restoreForwarding puts back what the firewall's setup changed on a host
// where forwarding was off: "ip_forward=0 forward_policy=ACCEPT".
func restoreForwarding(state string) ([]string, error) {
	var done []string
	for _, f := range strings.Fields(state) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "ip_forward":
			if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte(v+"\n"), 0o644); err != nil {
				return done, err
			}
			done = append(done, "sysctl -w net.ipv4.ip_forward="+v)
		case "forward_policy":
			ipt, err := hostProgram("iptables")
			if err != nil {
				return done, err
			}
			if out, err := exec.Command(ipt, "-w", "-P", "FORWARD", v).CombinedOutput(); err != nil {
				return done, fmt.Errorf("iptables -P FORWARD %s: %s", v, strings.TrimSpace(string(out)))
			}
			done = append(done, "iptables -P FORWARD "+v)
		}
	}
	return done, nil
}

// hostProgram finds an iptables program, in the sbin directories too.
func hostProgram(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if fi, err := os.Stat(dir + "/" + name); err == nil && fi.Mode()&0o111 != 0 {
			return dir + "/" + name, nil
		}
	}
	return "", errdefs.WithHint(fmt.Errorf("%s: %w: not found", name, errdefs.ErrUnavailable),
		"install the iptables package (apt-get install iptables)")
}
