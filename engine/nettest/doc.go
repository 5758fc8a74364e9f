// Package nettest drives the engine's networking end to end from Go, inside
// a lab of its own: tests of what the script-level suite cannot easily
// provoke (concurrent starts and exits on one network) and the benchmarks
// behind the networking performance goals (container run on a user
// network, network create, DNS lookup, proxy against direct TCP, a hundred
// containers on one network). It has no code of its own besides its tests.
package nettest
