//go:build cgo

package runtime

// The constructor in nsenter.c joins a container's namespaces before the Go
// runtime starts; importing "C" is what links it into every binary.

import "C"

// nsenterBuiltin reports whether Exec can join a container's namespaces.
const nsenterBuiltin = true
