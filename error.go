package callrec

import (
	"errors"
	"fmt"
)

// Error codes shared by every component. HTTP handlers map them to status
// codes in one place (internal/httpio).
const (
	EINVALID         = "invalid"         // malformed input from a caller
	ENOTFOUND        = "not_found"       // no such recording, stream, node…
	ECONFLICT        = "conflict"        // the request clashes with current state
	EUNAVAILABLE     = "unavailable"     // a dependency is down or the node is draining
	EINTERNAL        = "internal"        // a bug or an I/O failure of our own
	EFORBIDDEN       = "forbidden"       // authenticated but not allowed (bad signature…)
	EUNAUTHENTICATED = "unauthenticated" // no valid session or token: sign in
	ETOOMANY         = "rate_limited"    // too many attempts: retry later
)

// Error is an application error with a machine-readable code and a message
// safe to show to API clients.
type Error struct {
	Code    string
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for
// any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return EINTERNAL
	}
}

// ErrorMessage returns the message of the first *Error in err's chain, or a
// generic text for other errors (whose details stay in the log).
func ErrorMessage(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Message
	default:
		return "internal error"
	}
}
