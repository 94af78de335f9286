// Package signin holds what every part of the app shares: the error
// vocabulary (this file) and the embedded pages and assets (assets.go).
//
// The working code lives in internal/, one package per concern; README.md's
// Architecture section draws them and says which owns what, and
// imports_test.go keeps the arrows between them.
package signin

import (
	"errors"
	"fmt"
	"strings"
)

// Error kinds. Each maps to exactly one HTTP status, in one place
// (internal/web). Packages return *Error with one of these kinds; any other
// error is treated as EINTERNAL and never shown to users.
const (
	EINVALID      = "invalid"      // the request is malformed (400)
	EUNAUTHORIZED = "unauthorized" // no valid credentials (401)
	EFORBIDDEN    = "forbidden"    // authenticated, but not allowed (403)
	ENOTFOUND     = "not_found"    // no such thing (404)
	ECONFLICT     = "conflict"     // state does not allow it (409)
	ETIMEOUT      = "timeout"      // the client sent its request too slowly (408)
	ETOOLARGE     = "too_large"    // request body over the limit (413)
	EUPSTREAM     = "upstream"     // Google unreachable or failing (502)
	EUNAVAILABLE  = "unavailable"  // our own storage unreachable or busy; retry later (503)
	EINTERNAL     = "internal"     // a bug or an unexpected failure (500)
)

// Error is the app's error. Code is the machine-readable code sent to
// clients (such as "invalid_token" or "account_mismatch"; it defaults to
// Kind), Message is safe to show to users, and Err is the cause, which is
// logged but never shown.
type Error struct {
	Kind    string
	Code    string
	Message string
	Err     error
}

func (e *Error) Error() string {
	code := e.Code
	if code == "" {
		code = e.Kind
	}
	if e.Err != nil {
		// The message is a sentence for the user; before the cause, its
		// final period would read "...password).: invalid keyword".
		return fmt.Sprintf("%s: %s: %v", code, strings.TrimSuffix(e.Message, "."), e.Err)
	}
	return fmt.Sprintf("%s: %s", code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of the given kind and code with a formatted
// message.
func Errorf(kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error of the given kind and code whose cause is err.
func Wrap(err error, kind, code, message string) *Error {
	return &Error{Kind: kind, Code: code, Message: message, Err: err}
}

// ErrorKind returns the kind of the first *Error in err's chain, or
// EINTERNAL when there is none.
func ErrorKind(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return EINTERNAL
}

// ErrorCode returns the client-facing code of err: its Code, else its Kind;
// "internal" for errors that are not *Error.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		if e.Code != "" {
			return e.Code
		}
		return e.Kind
	}
	return EINTERNAL
}

// ErrorMessage returns the user-facing message of err; for errors that are
// not *Error it is "internal error", so causes never leak to users.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
