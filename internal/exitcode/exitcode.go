// Package exitcode is the one rule for how the commands (signin,
// offline-fetch, signin-admin, google-emulator) end, and the one place
// that prints why:
//
//	0  done; also -h, -version, and a stop by SIGINT or SIGTERM
//	1  a run-time failure: something that may work next time without
//	   changing the command line (a database that does not answer, Google
//	   down, an address in use, a user whose grant failed)
//	2  a usage or configuration error: a flag, a file it names or an
//	   environment variable the user must change, named in the message
//	   (never echoing a value that may hold a secret, such as a database
//	   URL's password)
//
// A usage or configuration error is a *UsageError, or any error in whose
// chain an error has a method UsageError() bool answering true (for
// packages that do not import this one). Everything else is a run-time
// failure: nothing is "internal" that the user can fix.
package exitcode

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// The exit statuses.
const (
	OK      = 0
	Failure = 1
	Usage   = 2
)

// UsageError is a usage or configuration error. Its message names the flag
// or variable to change.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// UsageError marks it as one, for the interface Of looks for.
func (e UsageError) UsageError() bool { return true }

// Usagef returns a usage error with a formatted message (%w wraps).
func Usagef(format string, args ...any) error {
	return UsageError{fmt.Errorf(format, args...)}
}

// AsUsage marks err as a usage or configuration error; nil stays nil.
func AsUsage(err error) error {
	if err == nil {
		return nil
	}
	return UsageError{err}
}

// printed is an error the flag package has already printed, with the
// usage: Report does not print it again.
type printed struct{ error }

func (e printed) Unwrap() error    { return e.error }
func (e printed) UsageError() bool { return true }

// Printed marks a flag-parsing error (already printed by the flag package,
// with the usage) as a usage error that Report does not print again.
func Printed(err error) error {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return printed{err}
}

// Of is the exit status err calls for.
func Of(err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return OK
	}
	var u interface{ UsageError() bool }
	if errors.As(err, &u) && u.UsageError() {
		return Usage
	}
	return Failure
}

// Report prints "command: err" on stderr, unless err is nil, help, or
// already printed, and returns Of(err).
func Report(stderr io.Writer, command string, err error) int {
	var p printed
	if err != nil && !errors.Is(err, flag.ErrHelp) && !errors.As(err, &p) {
		fmt.Fprintf(stderr, "%s: %v\n", command, err)
	}
	return Of(err)
}
