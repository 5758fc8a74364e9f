package engine

import "net"

// worldDNS serves the world's zone, *.world.test, on the sockets the lab
// opened in the world's namespace.
var worldDNS func(udp net.PacketConn, tcp net.Listener) func()
