package engine

import (
	"net"

	"vscript/engine/lab"
	"vscript/engine/network/dns"
)

// worldDNS serves the world's zone, *.world.test, on the sockets the lab
// opened in the world's namespace. It is authoritative: other names are
// NXDOMAIN, never forwarded — a sandboxed lab has no other upstream.
func worldDNS(udp net.PacketConn, tcp net.Listener) (func(), error) {
	s := dns.NewServer(dns.Config{
		Resolver:      dns.Zone(lab.WorldDomain, net.ParseIP(lab.WorldIP)),
		Authoritative: true,
	})
	if err := s.Serve(udp, tcp); err != nil {
		return nil, err
	}
	return func() { s.Close() }, nil
}
