// Command signin-admin is the operator's tool for signin's store: who
// granted offline access, one user's record (never a token), deleting a
// user (revoking at Google first if asked), ending a user's sessions,
// copying a file store into PostgreSQL, and resealing tokens with the
// newest key.
//
// Exit status: 0 done, 1 failed (including "no such user"), 2 usage or
// configuration error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

const usage = `Usage: signin-admin <command> [flags]

Commands:
  users list                      every user with a stored record
  users show SUB|EMAIL            one user's record (no token values)
  users delete SUB|EMAIL [-revoke]
                                  forget the user's credentials; -revoke
                                  revokes the grant at Google first and
                                  keeps the record if Google cannot be reached
  sessions end SUB|EMAIL          end every session of the user
  import -from DIR                copy the file store in DIR into -database
                                  (idempotent; the newer record wins)
  reencrypt [-drop KID]           reseal every record with the newest key;
                                  -drop KID refuses while a record still
                                  uses that key

Every command takes -credentials, -database (or DATABASE_URL) and
-client-secrets like signin and offline-fetch; "list" and "show" take
-json. Run "signin-admin <command> -h" for its flags. Nothing printed
contains a token.

Exit status: 0 done, 1 failed, 2 usage or configuration error.
`

// Main runs the command line args and returns the exit status.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd, err := parse(args, getenv, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "signin-admin:", err)
		return 2
	}
	if err := cmd.Run(ctx); err != nil {
		fmt.Fprintln(stderr, "signin-admin:", err)
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

// usageError is a problem with the command line or the configuration.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }
