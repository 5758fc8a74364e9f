// Package network owns a lab's bridge networking below the engine facade:
//
//   - IPAM: subnets from Docker's default pools (the default bridge fixed at
//     172.17.0.0/16), addresses from .2 up, MACs derived from addresses;
//   - `-p` port specs and the lab host's port allocator;
//   - the iptables rules, as data (NetworkRules, PortRules, Ruleset) in
//     Docker 20.10's classic layout with the chains renamed VSCRIPT,
//     VSCRIPT-USER and VSCRIPT-ISOLATION-STAGE-1/2, and a Firewall that
//     installs and removes them with iptables-restore;
//   - bridges and veth pairs through netlink (Links).
//
// Everything acts on the current network namespace, which in a lab is the
// lab host's own, never the machine's. The embedded DNS server and the
// userland proxy live in the dns and proxy subpackages.
//
// Packet paths, as in Docker:
//
//   - out: a container sends to its gateway (the bridge's address); the lab
//     host forwards (FORWARD: -i BR ! -o BR -j ACCEPT) and nat POSTROUTING
//     `-s SUBNET ! -o BR -j MASQUERADE` rewrites the source to the lab
//     host's outgoing address, so the world sees the lab host. Replies are
//     let back by the RELATED,ESTABLISHED rule and un-NATed by conntrack.
//     Internal networks get no MASQUERADE and DROP rules instead.
//   - in: a packet for a published port on one of the lab host's addresses
//     goes nat PREROUTING (or OUTPUT, for the lab host's own connections)
//     -> VSCRIPT, where DNAT rewrites the destination to the container; the
//     filter VSCRIPT chain accepts it on its way out to the bridge. Traffic
//     to 127.0.0.1, and a container reaching its own network's published
//     port (hairpin), is not DNATed (`! -d 127.0.0.0/8`, `-i BR -j RETURN`):
//     the userland proxy listening on the host port carries it instead.
//   - between networks: VSCRIPT-ISOLATION-STAGE-1 sends anything leaving one
//     bridge for another to STAGE-2, which drops it.
package network
