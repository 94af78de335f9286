package file

import (
	"context"
	"os"

	"example.com/signin"
)

// Ping reports whether the store's directory is there and is a directory:
// a readiness check (a stat, no lock, no read of any record). The error is
// EUNAVAILABLE.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return signin.Wrap(err, signin.EUNAVAILABLE, "", "The credentials directory was not checked in time.")
	}
	fi, err := os.Stat(s.dir)
	if err != nil {
		return signin.Wrap(err, signin.EUNAVAILABLE, "", "The credentials directory cannot be reached.")
	}
	if !fi.IsDir() {
		return signin.Errorf(signin.EUNAVAILABLE, "", "The credentials path %q is no longer a directory.", s.dir)
	}
	return nil
}
