// Package proxy owns the userland port proxy, vscript's docker-proxy: for a
// published port it listens on the lab host and relays each connection (TCP)
// or each client's datagrams (UDP) to the container's address.
//
// The DNAT rules in the network package carry most published-port traffic;
// the proxy is what answers where NAT cannot: connections to the host's
// loopback address and hairpin traffic, exactly as Docker's. The caller makes
// the listening socket (so it can be created in the right network namespace
// and report "port is already allocated" itself) and hands it over; Close
// stops the proxy and every connection it relays.
package proxy
