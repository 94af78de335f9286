// Package sessiontest is the contract of a store of ended sessions (the web
// server's SessionStore): every backend runs Run, so that the file and
// database stores cannot drift apart.
package sessiontest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// Store is the web server's SessionStore, restated here so that backends
// need not import the web package.
type Store interface {
	SessionEnds(ctx context.Context, sub string) (validAfter time.Time, ended []string, err error)
	EndSession(ctx context.Context, sub, key string, expires time.Time) error
	EndUserSessions(ctx context.Context, sub string, at, keepUntil time.Time) error
}

// Run checks the Store that open returns (empty, each time it is called).
// Times are in microseconds, as the web server gives them.
func Run(t *testing.T, open func(t *testing.T) Store) {
	ctx := context.Background()
	now := time.UnixMicro(time.Now().UnixMicro())
	later := now.Add(time.Hour)
	ends := func(t *testing.T, st Store, sub string) (time.Time, []string) {
		t.Helper()
		va, keys, err := st.SessionEnds(ctx, sub)
		if err != nil {
			t.Fatalf("SessionEnds(%s): %v", sub, err)
		}
		slices.Sort(keys)
		return va, keys
	}
	t.Run("Nothing", func(t *testing.T) {
		st := open(t)
		if va, keys := ends(t, st, "1"); !va.IsZero() || len(keys) != 0 {
			t.Errorf("a user nothing was ended of: %v %q", va, keys)
		}
	})
	t.Run("EndOne", func(t *testing.T) {
		st := open(t)
		for _, k := range []string{"key-a", "key-b", "key-a"} { // twice: not an error
			if err := st.EndSession(ctx, "1", k, later); err != nil {
				t.Fatal(err)
			}
		}
		if va, keys := ends(t, st, "1"); !va.IsZero() || !slices.Equal(keys, []string{"key-a", "key-b"}) {
			t.Errorf("after two sign-outs: %v %q", va, keys)
		}
		if va, keys := ends(t, st, "2"); !va.IsZero() || len(keys) != 0 {
			t.Errorf("a bystander: %v %q", va, keys)
		}
	})
	t.Run("EndOneExpired", func(t *testing.T) {
		st := open(t)
		if err := st.EndSession(ctx, "1", "old", now.Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := st.EndSession(ctx, "1", "new", later); err != nil {
			t.Fatal(err)
		}
		if _, keys := ends(t, st, "1"); !slices.Equal(keys, []string{"new"}) {
			t.Errorf("ended keys %q, want only the unexpired one", keys)
		}
	})
	t.Run("EndAll", func(t *testing.T) {
		st := open(t)
		if err := st.EndUserSessions(ctx, "1", now, later); err != nil {
			t.Fatal(err)
		}
		if va, _ := ends(t, st, "1"); !va.Equal(now) {
			t.Errorf("valid after %v, want %v", va, now)
		}
		// It only moves forward.
		if err := st.EndUserSessions(ctx, "1", now.Add(-time.Minute), later); err != nil {
			t.Fatal(err)
		}
		if va, _ := ends(t, st, "1"); !va.Equal(now) {
			t.Errorf("an earlier end moved it back: %v, want %v", va, now)
		}
		next := now.Add(time.Second)
		if err := st.EndUserSessions(ctx, "1", next, later); err != nil {
			t.Fatal(err)
		}
		if va, _ := ends(t, st, "1"); !va.Equal(next) {
			t.Errorf("valid after %v, want %v", va, next)
		}
		if va, _ := ends(t, st, "2"); !va.IsZero() {
			t.Errorf("a bystander's sessions end at %v", va)
		}
	})
	t.Run("SubsAreExact", func(t *testing.T) {
		st := open(t)
		// Subs that differ by case, a prefix, a byte: none ends another.
		subs := []string{"abc", "ABC", "ab", "abc\\0", "abc\x00"}
		if err := st.EndUserSessions(ctx, subs[0], now, later); err != nil {
			t.Fatal(err)
		}
		if err := st.EndSession(ctx, subs[0], "k", later); err != nil {
			t.Fatal(err)
		}
		for _, sub := range subs[1:] {
			va, keys, err := st.SessionEnds(ctx, sub)
			if err != nil {
				continue // a sub the backend refuses is not a bystander's
			}
			if !va.IsZero() || len(keys) != 0 {
				t.Errorf("sub %q: %v %q", sub, va, keys)
			}
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		// Sign-outs of one user from many places at once: none is lost.
		st := open(t)
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for i := range 20 {
			wg.Go(func() {
				if i%5 == 0 {
					errs <- st.EndUserSessions(ctx, "1", now.Add(time.Duration(i)*time.Microsecond), later)
					return
				}
				errs <- st.EndSession(ctx, "1", fmt.Sprint("key-", i), later)
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		va, keys := ends(t, st, "1")
		if want := now.Add(15 * time.Microsecond); !va.Equal(want) {
			t.Errorf("valid after %v, want the latest, %v", va, want)
		}
		if len(keys) != 16 {
			t.Errorf("%d ended keys, want 16: %q", len(keys), keys)
		}
	})
}
