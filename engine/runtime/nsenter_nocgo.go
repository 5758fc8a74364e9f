//go:build !cgo

package runtime

// Without cgo there is no constructor to join a mount namespace before the Go
// runtime starts, so Exec is unavailable.
const nsenterBuiltin = false
