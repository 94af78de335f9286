// Command signin-admin is the operator's tool for signin's store: who
// granted offline access, one user's record (never a token), deleting a
// user (revoking at Google first if asked), ending a user's sessions,
// copying a file store into PostgreSQL, and resealing tokens with the
// newest key. The commands live in internal/admin.
//
// Exit status: 0 done, 1 failed (including "no such user"), 2 usage or
// configuration error.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"example.com/signin/internal/admin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(admin.Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}
