// Package lab owns the sandbox every run lives in: the lab host and the
// simulated world.
//
// Before the Go runtime starts, a C constructor (enter.c) unshares new
// network, mount, PID, UTS and IPC namespaces and forks; the child is PID 1 of
// the lab and sets the lab host up (Setup): loopback, a hostname, private
// mount propagation, a tmpfs scratch area, its own /proc and /sys, and a
// resolv.conf pointing at the world. Meanwhile the parent wires the world
// (world.c): a network namespace joined to the lab host by a veth pair, and
// the sockets of the world's servers opened in it. The lab receives them when
// something first needs the world (Ready) and serves on them an HTTP server
// that answers with the client's address and a DNS server for *.world.test,
// both goroutines of the lab process — no extra process. Spawn makes a lab of a program
// the constructor does not recognise by its name, such as a test binary.
//
// Teardown is the kernel's: when PID 1 of the lab dies, every process of the
// lab dies; with them go the mount namespace (and the scratch tmpfs and every
// overlay in it) and the network namespaces (and every bridge, veth and
// iptables rule in them). PID 1 arms Pdeathsig against its parent, so even a
// kill -9 of vscript takes the lab down.
//
// In --host mode there is no sandbox: the lab host is the real host, the
// scratch area a directory removed on exit, and there is no world.
package lab
