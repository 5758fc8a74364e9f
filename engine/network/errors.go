package network

import "fmt"

// classedError carries an errdefs class without printing it, so messages
// read exactly `op subject: cause` while errors.Is still finds the class.
type classedError struct {
	err   error
	class error
}

func (e *classedError) Error() string   { return e.err.Error() }
func (e *classedError) Unwrap() []error { return []error{e.err, e.class} }

// errorf formats like fmt.Errorf (%w included) and tags the result with class.
func errorf(class error, format string, args ...any) error {
	return &classedError{err: fmt.Errorf(format, args...), class: class}
}
