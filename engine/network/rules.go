package network

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"vscript/engine/errdefs"
)

// The chains of Docker 20.10's classic layout, renamed so a lab's rules
// never mix with a real Docker's on the same host.
const (
	ChainVScript    = "VSCRIPT"
	ChainUser       = "VSCRIPT-USER"
	ChainIsolation1 = "VSCRIPT-ISOLATION-STAGE-1"
	ChainIsolation2 = "VSCRIPT-ISOLATION-STAGE-2"
)

const (
	TableFilter = "filter"
	TableNAT    = "nat"
)

// forwardFirstFree is the FORWARD position right after the jumps to
// VSCRIPT-USER and STAGE-1, which Docker keeps first.
const forwardFirstFree = 3

// BridgeNet is what the firewall knows of a bridge network.
type BridgeNet struct {
	Name     string
	Bridge   string
	Subnet   netip.Prefix
	Internal bool // no outbound NAT, no traffic in or out of the subnet
	ICC      bool // containers of the network may talk to each other (Docker's default)
}

// PublishedPort is one `-p` mapping of a container on a bridge network.
type PublishedPort struct {
	Bridge        string
	ContainerIP   netip.Addr
	Proto         string     // "tcp" or "udp"
	HostIP        netip.Addr // 0.0.0.0 (or the zero Addr) means every address
	HostPort      uint16
	ContainerPort uint16
}

// Rule is one iptables rule and where it goes.
type Rule struct {
	Table string
	Chain string
	// Pos 0 appends; n > 0 inserts as the chain's n-th rule (`-I CHAIN n`).
	Pos int
	// Spec holds matches and target in the order iptables-save prints them,
	// so a rule read back from the kernel compares equal as text.
	Spec []string
}

func (r Rule) key() string { return r.Table + " " + r.Chain + " " + strings.Join(r.Spec, " ") }

func (r Rule) spec() string { return strings.Join(r.Spec, " ") }

func args(s string) []string { return strings.Fields(s) }

func filterRule(chain string, pos int, spec string) Rule {
	return Rule{Table: TableFilter, Chain: chain, Pos: pos, Spec: args(spec)}
}

func natRule(chain string, pos int, spec string) Rule {
	return Rule{Table: TableNAT, Chain: chain, Pos: pos, Spec: args(spec)}
}

// baseChains are created once per lab, before any network.
var baseChains = []Rule{
	{Table: TableFilter, Chain: ChainVScript},
	{Table: TableFilter, Chain: ChainIsolation1},
	{Table: TableFilter, Chain: ChainIsolation2},
	{Table: TableFilter, Chain: ChainUser},
	{Table: TableNAT, Chain: ChainVScript},
}

// BaseRules are the jumps into the VSCRIPT chains and the chains' RETURNs.
// FORWARD starts with VSCRIPT-USER and STAGE-1, as Docker keeps DOCKER-USER
// and DOCKER-ISOLATION-STAGE-1 first; OUTPUT leaves loopback to the
// userland proxy.
func BaseRules() []Rule {
	return []Rule{
		filterRule("FORWARD", 1, "-j "+ChainUser),
		filterRule("FORWARD", 2, "-j "+ChainIsolation1),
		filterRule(ChainIsolation1, 0, "-j RETURN"),
		filterRule(ChainIsolation2, 0, "-j RETURN"),
		filterRule(ChainUser, 0, "-j RETURN"),
		natRule("PREROUTING", 0, "-m addrtype --dst-type LOCAL -j "+ChainVScript),
		natRule("OUTPUT", 0, "! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j "+ChainVScript),
	}
}

// NetworkRules are the rules a network brings, in the order Docker 20.10
// programs them. Docker inserts most of them at the top of their chain, so a
// newer network's rules come before an older one's.
func NetworkRules(n BridgeNet) []Rule {
	br, sub := n.Bridge, n.Subnet.String()
	icc := filterRule("FORWARD", forwardFirstFree, "-i "+br+" -o "+br+" -j ACCEPT")
	if !n.ICC {
		icc = filterRule("FORWARD", 0, "-i "+br+" -o "+br+" -j DROP")
	}
	if n.Internal {
		// Nothing leaves or enters the subnet; only the ICC rule lets
		// containers of the network talk among themselves.
		return []Rule{
			filterRule(ChainIsolation1, 1, "! -d "+sub+" -i "+br+" -j DROP"),
			filterRule(ChainIsolation1, 1, "! -s "+sub+" -o "+br+" -j DROP"),
			icc,
		}
	}
	return []Rule{
		natRule("POSTROUTING", 1, "-s "+sub+" ! -o "+br+" -j MASQUERADE"),
		natRule(ChainVScript, 1, "-i "+br+" -j RETURN"),
		icc,
		filterRule("FORWARD", forwardFirstFree, "-i "+br+" ! -o "+br+" -j ACCEPT"),
		filterRule("FORWARD", forwardFirstFree, "-o "+br+" -j "+ChainVScript),
		filterRule("FORWARD", forwardFirstFree, "-o "+br+" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"),
		filterRule(ChainIsolation1, 1, "-i "+br+" ! -o "+br+" -j "+ChainIsolation2),
		filterRule(ChainIsolation2, 1, "-o "+br+" -j DROP"),
	}
}

// PortRules are the rules of one published port: the DNAT for traffic that
// arrives from outside the bridge, the ACCEPT that lets it through FORWARD,
// and the MASQUERADE for a container reaching its own published port.
func PortRules(p PublishedPort) []Rule {
	br, cip := p.Bridge, p.ContainerIP.String()
	proto := "-p " + p.Proto + " -m " + p.Proto
	dst := ""
	if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
		dst = "-d " + p.HostIP.String() + "/32 "
	}
	hp, cp := strconv.Itoa(int(p.HostPort)), strconv.Itoa(int(p.ContainerPort))
	return []Rule{
		natRule(ChainVScript, 0, dst+"! -i "+br+" "+proto+" --dport "+hp+" -j DNAT --to-destination "+cip+":"+cp),
		filterRule(ChainVScript, 0, "-d "+cip+"/32 ! -i "+br+" -o "+br+" "+proto+" --dport "+cp+" -j ACCEPT"),
		natRule("POSTROUTING", 0, "-s "+cip+"/32 -d "+cip+"/32 "+proto+" --dport "+cp+" -j MASQUERADE"),
	}
}

func (n BridgeNet) validate() error {
	switch {
	case n.Name == "":
		return errorf(errdefs.ErrInvalid, "network: no name")
	case n.Bridge == "" || len(n.Bridge) > 15 || strings.ContainsAny(n.Bridge, " /"):
		return errorf(errdefs.ErrInvalid, "network %s: bad bridge name %q", n.Name, n.Bridge)
	case !n.Subnet.IsValid() || !n.Subnet.Addr().Is4() || n.Subnet.Masked() != n.Subnet:
		return errorf(errdefs.ErrInvalid, "network %s: bad subnet %s", n.Name, n.Subnet)
	}
	return nil
}

func (p PublishedPort) String() string {
	host := netip.IPv4Unspecified()
	if p.HostIP.IsValid() {
		host = p.HostIP
	}
	return fmt.Sprintf("%s:%d->%s:%d/%s", host, p.HostPort, p.ContainerIP, p.ContainerPort, p.Proto)
}

func (p PublishedPort) validate() error {
	switch {
	case p.Proto != "tcp" && p.Proto != "udp":
		return errorf(errdefs.ErrInvalid, "port %s: protocol must be tcp or udp", p)
	case !p.ContainerIP.Is4():
		return errorf(errdefs.ErrInvalid, "port %s: container address must be IPv4", p)
	case p.HostIP.IsValid() && !p.HostIP.Is4():
		return errorf(errdefs.ErrInvalid, "port %s: host address must be IPv4", p)
	case p.HostPort == 0 || p.ContainerPort == 0:
		return errorf(errdefs.ErrInvalid, "port %s: ports must be 1-65535", p)
	case p.Bridge == "":
		return errorf(errdefs.ErrInvalid, "port %s: no bridge", p)
	}
	return nil
}

// An op is one change to the tables: a new chain, a chain policy, or a rule
// added or deleted. The firewall turns ops into one iptables-restore input;
// Ruleset.Save replays them on a model of the tables.
type op struct {
	kind   opKind
	rule   Rule
	policy string
}

type opKind int

const (
	opNewChain opKind = iota
	opPolicy
	opAdd
	opDelete
)

// command is the op as a single iptables command, for --explain.
func (o op) command() string {
	t := ""
	if o.rule.Table != TableFilter {
		t = "-t " + o.rule.Table + " "
	}
	switch o.kind {
	case opNewChain:
		return "iptables " + t + "-N " + o.rule.Chain
	case opPolicy:
		return "iptables " + t + "-P " + o.rule.Chain + " " + o.policy
	case opDelete:
		return "iptables " + t + "-D " + o.rule.Chain + " " + o.rule.spec()
	}
	if o.rule.Pos > 0 {
		return "iptables " + t + "-I " + o.rule.Chain + " " + strconv.Itoa(o.rule.Pos) + " " + o.rule.spec()
	}
	return "iptables " + t + "-A " + o.rule.Chain + " " + o.rule.spec()
}

// restoreLine is the op in iptables-restore syntax.
func (o op) restoreLine() string {
	switch o.kind {
	case opNewChain:
		return ":" + o.rule.Chain + " - [0:0]"
	case opPolicy:
		return ":" + o.rule.Chain + " " + o.policy + " [0:0]"
	case opDelete:
		return "-D " + o.rule.Chain + " " + o.rule.spec()
	}
	if o.rule.Pos > 0 {
		return "-I " + o.rule.Chain + " " + strconv.Itoa(o.rule.Pos) + " " + o.rule.spec()
	}
	return "-A " + o.rule.Chain + " " + o.rule.spec()
}

// restoreScript renders ops as iptables-restore input, one block per table,
// keeping the ops' order within each table. With --noflush it changes only
// what the ops name. It also returns, per input line, the op it came from
// (nil for the table and COMMIT lines), to point at a failing rule.
func restoreScript(ops []op) (string, []*op) {
	var b strings.Builder
	var lines []*op
	for _, table := range []string{TableFilter, TableNAT} {
		started := false
		for i := range ops {
			if ops[i].rule.Table != table {
				continue
			}
			if !started {
				b.WriteString("*" + table + "\n")
				lines = append(lines, nil)
				started = true
			}
			b.WriteString(ops[i].restoreLine() + "\n")
			lines = append(lines, &ops[i])
		}
		if started {
			b.WriteString("COMMIT\n")
			lines = append(lines, nil)
		}
	}
	return b.String(), lines
}

func commands(ops []op) []string {
	out := make([]string, len(ops))
	for i, o := range ops {
		out[i] = o.command()
	}
	return out
}

// ledger counts the owners of each installed rule. Two ports of one
// container port share their ACCEPT and hairpin rules (Docker adds such a
// rule once); the rule goes when its last owner does.
type ledger map[string]int

// add takes a reference on each rule and returns the ops for rules that were
// not installed yet.
func (l ledger) add(rules []Rule) []op {
	var ops []op
	for _, r := range rules {
		if l[r.key()]++; l[r.key()] == 1 {
			ops = append(ops, op{kind: opAdd, rule: r})
		}
	}
	return ops
}

// remove drops a reference on each rule and returns the deletes for rules
// nobody owns any more, last added first.
func (l ledger) remove(rules []Rule) []op {
	var ops []op
	for _, r := range slices.Backward(rules) {
		k := r.key()
		if l[k]--; l[k] <= 0 {
			delete(l, k)
			ops = append(ops, op{kind: opDelete, rule: r})
		}
	}
	return ops
}

// Ruleset is the whole of vscript's rules as data: the networks and ports
// in the order they were added. Save shows the tables they make.
type Ruleset struct {
	// ForwardPolicy is FORWARD's policy; the firewall sets DROP when it
	// turns forwarding on itself, as Docker does. Empty reads ACCEPT.
	// Save only prints it; the rules are the same either way.
	ForwardPolicy string
	Networks      []BridgeNet
	Ports         []PublishedPort
}

// ops lists every change that builds the ruleset from empty tables, as the
// firewall makes them.
func (rs Ruleset) ops() ([]op, error) {
	ops := baseOps(nil, rs.ForwardPolicy)
	l := ledger{}
	bridges := map[string]BridgeNet{}
	for _, n := range rs.Networks {
		if err := n.validate(); err != nil {
			return nil, err
		}
		bridges[n.Bridge] = n
		ops = append(ops, l.add(NetworkRules(n))...)
	}
	for _, p := range rs.Ports {
		if err := checkPort(p, bridges); err != nil {
			return nil, err
		}
		ops = append(ops, l.add(PortRules(p))...)
	}
	return ops, nil
}

func checkPort(p PublishedPort, bridges map[string]BridgeNet) error {
	if err := p.validate(); err != nil {
		return err
	}
	n, ok := bridges[p.Bridge]
	if !ok {
		return errorf(errdefs.ErrNotFound, "port %s: no network on bridge %s", p, p.Bridge)
	}
	if n.Internal {
		return errorf(errdefs.ErrInvalid, "port %s: network %s is internal, its ports cannot be published", p, n.Name)
	}
	return nil
}

// baseOps are the ops that bring tables holding the chains and rules in
// have (keys as Rule.key, with Spec empty for a chain) up to the base layout.
func baseOps(have map[string]bool, policy string) []op {
	var ops []op
	for _, c := range baseChains {
		if !have[c.key()] {
			ops = append(ops, op{kind: opNewChain, rule: c})
		}
	}
	if policy != "" {
		ops = append(ops, op{kind: opPolicy, rule: Rule{Table: TableFilter, Chain: "FORWARD"}, policy: policy})
	}
	for _, r := range BaseRules() {
		if !have[r.key()] {
			ops = append(ops, op{kind: opAdd, rule: r})
		}
	}
	return ops
}

// Save renders the ruleset as iptables-save prints it (without comments and
// with zero counters): table filter, then nat.
func (rs Ruleset) Save() (string, error) {
	ops, err := rs.ops()
	if err != nil {
		return "", err
	}
	m := newModel()
	for _, o := range ops {
		if err := m.apply(o); err != nil {
			return "", err
		}
	}
	return m.save(TableFilter) + m.save(TableNAT), nil
}

// model is an in-memory copy of the filter and nat tables, enough to replay
// ops the way the kernel would and print the result.
type model struct {
	tables map[string]*modelTable
}

type modelTable struct {
	builtins []string
	policy   map[string]string
	rules    map[string][]string // chain -> specs, in order
}

func newModel() *model {
	return &model{tables: map[string]*modelTable{
		TableFilter: {builtins: []string{"INPUT", "FORWARD", "OUTPUT"}},
		TableNAT:    {builtins: []string{"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"}},
	}}
}

func (m *model) apply(o op) error {
	t := m.tables[o.rule.Table]
	if t.rules == nil {
		t.rules, t.policy = map[string][]string{}, map[string]string{}
		for _, c := range t.builtins {
			t.rules[c] = []string{}
			t.policy[c] = "ACCEPT"
		}
	}
	chain, ok := t.rules[o.rule.Chain]
	if !ok && o.kind != opNewChain {
		return fmt.Errorf("iptables %s: no chain %s", o.rule.Table, o.rule.Chain)
	}
	spec := o.rule.spec()
	switch o.kind {
	case opNewChain:
		if !ok {
			t.rules[o.rule.Chain] = []string{}
		}
	case opPolicy:
		t.policy[o.rule.Chain] = o.policy
	case opAdd:
		pos := o.rule.Pos
		if pos == 0 {
			pos = len(chain) + 1
		}
		if pos > len(chain)+1 {
			return fmt.Errorf("iptables %s: cannot insert %q as rule %d of %s", o.rule.Table, spec, pos, o.rule.Chain)
		}
		t.rules[o.rule.Chain] = slices.Insert(chain, pos-1, spec)
	case opDelete:
		i := slices.Index(chain, spec)
		if i < 0 {
			return fmt.Errorf("iptables %s: no rule %q in %s", o.rule.Table, spec, o.rule.Chain)
		}
		t.rules[o.rule.Chain] = slices.Delete(chain, i, i+1)
	}
	return nil
}

// save prints one table in iptables-save's order: built-in chains, then the
// others sorted by name.
func (m *model) save(table string) string {
	t := m.tables[table]
	var b strings.Builder
	b.WriteString("*" + table + "\n")
	var users []string
	for c := range t.rules {
		if !slices.Contains(t.builtins, c) {
			users = append(users, c)
		}
	}
	slices.Sort(users)
	for _, c := range t.builtins {
		policy := "ACCEPT"
		if p := t.policy[c]; p != "" {
			policy = p
		}
		b.WriteString(":" + c + " " + policy + " [0:0]\n")
	}
	for _, c := range users {
		b.WriteString(":" + c + " - [0:0]\n")
	}
	for _, c := range append(slices.Clone(t.builtins), users...) {
		for _, spec := range t.rules[c] {
			b.WriteString("-A " + c + " " + spec + "\n")
		}
	}
	b.WriteString("COMMIT\n")
	return b.String()
}
