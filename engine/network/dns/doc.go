// Package dns owns vscript's DNS servers: the embedded resolver that
// containers on user-defined networks query at 127.0.0.11 (as Docker's), and
// the small authoritative zone the simulated world serves for *.world.test.
//
// Both are one Server over a Resolver. The Server speaks the protocol (UDP and
// TCP, truncation, forwarding); the Resolver, supplied by the engine facade,
// knows which names exist. Names a resolver does not know are forwarded to the
// configured upstream servers and their answer is passed back, NXDOMAIN
// included; with no upstream, or none answering, the reply is SERVFAIL, as
// Docker's embedded DNS replies. An authoritative server (the world's zone)
// never forwards: a name it does not know is NXDOMAIN.
//
// A query to 127.0.0.11 inside a container's network namespace comes from
// that namespace's loopback, so its source address does not say which
// container asked. The facade therefore runs one Server per container (its
// Resolver bound to that container's networks) on sockets it created inside
// the container's namespace, and hands them to Serve. The client address is
// still passed to the Resolver for servers shared by several clients.
package dns
