//go:build unix

package file

import (
	"context"
	"errors"
	"os"
	"syscall"
	"time"
)

// Polling bounds for a lock held by another process. flock(2) cannot wait
// with a timeout or be interrupted by a context, so lockFile polls with
// LOCK_NB and a growing pause; records are held for milliseconds (a write)
// or, at most, one token refresh.
const (
	pollMin = time.Millisecond
	pollMax = 25 * time.Millisecond
)

func checkLocking() error { return nil }

// lockFile opens (creating, 0600) the lock file at path, which must be a
// regular file (never a link, which could make it create a file elsewhere),
// and takes an exclusive flock on it, waiting until it is free or ctx ends. Closing the
// returned file releases the lock.
func lockFile(ctx context.Context, path string) (*os.File, error) {
	for {
		f, err := openRegular(path, os.O_RDWR|os.O_CREATE)
		if err != nil {
			return nil, err
		}
		if err := flock(ctx, f); err != nil {
			f.Close()
			return nil, err
		}
		// Delete removes the lock file while holding it. If that happened
		// between our open and our flock, we now hold a lock on a file that
		// no longer has a name, which excludes nobody: start again with
		// whatever the path names now.
		held, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		now, err := os.Stat(path)
		if err == nil && os.SameFile(held, now) {
			return f, nil
		}
		f.Close()
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
}

// lockDir takes an exclusive flock on the directory itself, waiting until
// it is free or ctx ends: for the rare change that must exclude every
// process of the store at once (setting a damaged lock path aside).
// Closing the returned file releases it.
func lockDir(ctx context.Context, dir string) (*os.File, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := flock(ctx, d); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func flock(ctx context.Context, f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	pause := pollMin
	for {
		var ferr error
		if err := rc.Control(func(fd uintptr) {
			ferr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB)
		}); err != nil {
			return err
		}
		switch {
		case ferr == nil:
			return nil
		case errors.Is(ferr, syscall.EINTR):
			continue
		case !errors.Is(ferr, syscall.EWOULDBLOCK):
			return &os.PathError{Op: "flock", Path: f.Name(), Err: ferr}
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		pause = min(2*pause, pollMax)
	}
}
