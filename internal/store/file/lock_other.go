//go:build !unix

package file

import (
	"context"
	"errors"
	"os"
)

// errNoFlock: the store's cross-process lock is flock(2), which only Unix
// systems have. Rather than run unlocked (and lose refresh tokens to races),
// Open refuses.
var errNoFlock = errors.New("file store: flock(2) is not available on this system")

func checkLocking() error { return errNoFlock }

func lockFile(context.Context, string) (*os.File, error) { return nil, errNoFlock }

func lockDir(context.Context, string) (*os.File, error) { return nil, errNoFlock }
