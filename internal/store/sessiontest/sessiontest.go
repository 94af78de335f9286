// Package sessiontest is the contract of a server-side session store (the
// web server's SessionStore): every backend runs Run, so that the file and
// database stores cannot drift apart.
package sessiontest

import (
	"context"
	"testing"
	"time"

	"example.com/signin"
)

// Store is the web server's SessionStore, restated here so that backends
// need not import the web package.
type Store interface {
	CreateSession(ctx context.Context, id, sub string, data []byte, expires time.Time) error
	LoadSession(ctx context.Context, id string) (sub string, data []byte, expires time.Time, err error)
	DeleteSession(ctx context.Context, id string) error
	DeleteUserSessions(ctx context.Context, sub string) (int, error)
}

// Run checks the Store that open returns (empty, each time it is called).
func Run(t *testing.T, open func(t *testing.T) Store) {
	ctx := context.Background()
	later := time.Now().Add(time.Hour)
	t.Run("RoundTrip", func(t *testing.T) {
		st := open(t)
		if err := st.CreateSession(ctx, "id-1", "sub-1", []byte("data"), later); err != nil {
			t.Fatal(err)
		}
		sub, data, exp, err := st.LoadSession(ctx, "id-1")
		if err != nil || sub != "sub-1" || string(data) != "data" || !exp.Equal(later.Truncate(time.Microsecond)) && !exp.Equal(later) {
			t.Errorf("LoadSession = %q, %q, %v, %v", sub, data, exp, err)
		}
	})
	t.Run("Unknown", func(t *testing.T) {
		st := open(t)
		if _, _, _, err := st.LoadSession(ctx, "nope"); signin.ErrorKind(err) != signin.ENOTFOUND {
			t.Errorf("LoadSession(unknown) = %v, want ENOTFOUND", err)
		}
		if err := st.DeleteSession(ctx, "nope"); err != nil {
			t.Errorf("DeleteSession(unknown) = %v", err)
		}
	})
	t.Run("Expired", func(t *testing.T) {
		st := open(t)
		if err := st.CreateSession(ctx, "old", "sub-1", nil, time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := st.LoadSession(ctx, "old"); signin.ErrorKind(err) != signin.ENOTFOUND {
			t.Errorf("LoadSession(expired) = %v, want ENOTFOUND", err)
		}
	})
	t.Run("DeleteOne", func(t *testing.T) {
		st := open(t)
		for _, id := range []string{"a", "b"} {
			if err := st.CreateSession(ctx, id, "sub-1", nil, later); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.DeleteSession(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := st.LoadSession(ctx, "a"); signin.ErrorKind(err) != signin.ENOTFOUND {
			t.Errorf("ended session still loads: %v", err)
		}
		if _, _, _, err := st.LoadSession(ctx, "b"); err != nil {
			t.Errorf("the other session was ended too: %v", err)
		}
	})
	t.Run("DeleteUser", func(t *testing.T) {
		st := open(t)
		for _, s := range []struct{ id, sub string }{{"a1", "A"}, {"a2", "A"}, {"b1", "B"}} {
			if err := st.CreateSession(ctx, s.id, s.sub, nil, later); err != nil {
				t.Fatal(err)
			}
		}
		n, err := st.DeleteUserSessions(ctx, "A")
		if err != nil || n != 2 {
			t.Errorf("DeleteUserSessions(A) = %d, %v; want 2", n, err)
		}
		for _, id := range []string{"a1", "a2"} {
			if _, _, _, err := st.LoadSession(ctx, id); signin.ErrorKind(err) != signin.ENOTFOUND {
				t.Errorf("session %s of A still loads: %v", id, err)
			}
		}
		if sub, _, _, err := st.LoadSession(ctx, "b1"); err != nil || sub != "B" {
			t.Errorf("B's session: %q, %v", sub, err)
		}
		if n, err := st.DeleteUserSessions(ctx, "nobody"); err != nil || n != 0 {
			t.Errorf("DeleteUserSessions(nobody) = %d, %v", n, err)
		}
	})
}
