// Package lab owns the sandbox every run lives in: the lab host and the
// simulated world.
//
// vscript re-execs itself (Spawn) into new network, mount, PID, UTS and IPC
// namespaces; the re-exec'd process is PID 1 of the lab and sets the lab host up
// (Setup): loopback, a hostname, private mount propagation, a tmpfs scratch
// area, its own /proc and /sys, and a resolv.conf pointing at the world. Beside
// it, the world is a network namespace joined to the lab host by a veth pair,
// with an HTTP server that answers with the client's address and a DNS server
// for *.world.test, both served from goroutines of the lab process on sockets
// opened inside the world's namespace — no extra process.
//
// Teardown is the kernel's: when PID 1 of the lab dies, every process of the
// lab dies; with them go the mount namespace (and the scratch tmpfs and every
// overlay in it) and the network namespaces (and every bridge, veth and
// iptables rule in them). The parent starts the lab with Pdeathsig from a
// goroutine locked to its thread, so even a kill -9 of vscript takes the lab
// down.
//
// In --host mode there is no sandbox: the lab host is the real host, the
// scratch area a directory removed on exit, and there is no world.
package lab
