package errdefs

import "errors"

var (
	// ErrNotFound: the named thing does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the name or resource is taken, or the thing is in use.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the request is malformed.
	ErrInvalid = errors.New("invalid argument")
	// ErrUnavailable: the thing exists in general but not in this mode or on
	// this machine (the world in --host mode, a missing host binary).
	ErrUnavailable = errors.New("unavailable")
)

// Hinted is an error with advice for the user, printed as a `hint:` line.
type Hinted struct {
	Err  error
	Hint string
}

func (h *Hinted) Error() string { return h.Err.Error() }
func (h *Hinted) Unwrap() error { return h.Err }

// WithHint attaches advice to err.
func WithHint(err error, hint string) error { return &Hinted{Err: err, Hint: hint} }

// Hint returns the advice attached anywhere in err's chain, or "".
func Hint(err error) string {
	var h *Hinted
	if errors.As(err, &h) {
		return h.Hint
	}
	return ""
}
