// Package errdefs holds the error classes every engine error wraps, so that
// callers can tell "not found" from "conflict" from "invalid" with errors.Is.
//
// Errors read `op subject: cause`, as containerd's do:
//
//	fmt.Errorf("network create %s: %w", name, errdefs.ErrConflict)
package errdefs
