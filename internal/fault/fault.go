// Package fault is Muon's one error model: every layer returns a *Error (or
// wraps one with %w) and only the API layer turns it into Neutron's
// {"NeutronError": {...}} body.
package fault

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is a fault a client may see: an HTTP status, Neutron's exception
// type name and a lower-case message.
type Error struct {
	Status  int    // 404
	Type    string // "NetworkNotFound"
	Message string
	Err     error // cause, for logs only
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.Err }

// New builds a fault with a formatted message.
func New(status int, typ, format string, args ...any) *Error {
	return &Error{Status: status, Type: typ, Message: fmt.Sprintf(format, args...)}
}

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var f *Error
	if errors.As(err, &f) {
		return f, true
	}
	return nil, false
}

// BadRequest is Neutron's generic 400 (type "HTTPBadRequest").
func BadRequest(format string, args ...any) *Error {
	return New(http.StatusBadRequest, "HTTPBadRequest", format, args...)
}

// InvalidInput is Neutron's InvalidInput (400).
func InvalidInput(format string, args ...any) *Error {
	return New(http.StatusBadRequest, "InvalidInput", "Invalid input for operation: "+format+".", args...)
}

// NotFound answers 404 with a type such as "NetworkNotFound".
func NotFound(typ, format string, args ...any) *Error {
	return New(http.StatusNotFound, typ, format, args...)
}

// Conflict answers 409.
func Conflict(typ, format string, args ...any) *Error {
	return New(http.StatusConflict, typ, format, args...)
}

// Forbidden answers 403 ("PolicyNotAuthorized" and kin).
func Forbidden(typ, format string, args ...any) *Error {
	return New(http.StatusForbidden, typ, format, args...)
}
