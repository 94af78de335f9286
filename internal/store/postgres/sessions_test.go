package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"example.com/signin"
	"example.com/signin/internal/pgtest"
)

func TestSessions(t *testing.T) {
	url := pgtest.URL(t)
	s := mustOpen(t, url)
	ctx := t.Context()
	exp := time.Now().Add(time.Hour).Truncate(time.Microsecond).UTC()

	if err := s.CreateSession(ctx, "id-1", "109876543210987654321", []byte("state"), exp); err != nil {
		t.Fatal(err)
	}
	sub, data, expires, err := s.LoadSession(ctx, "id-1")
	if err != nil || sub != "109876543210987654321" || string(data) != "state" || !expires.Equal(exp) {
		t.Fatalf("LoadSession = %q %q %v %v", sub, data, expires, err)
	}
	if err := s.CreateSession(ctx, "id-1", "2", nil, exp); signin.ErrorKind(err) != signin.ECONFLICT {
		t.Errorf("CreateSession with an id in use: %v, want ECONFLICT", err)
	}
	if _, _, _, err := s.LoadSession(ctx, "id-2"); signin.ErrorKind(err) != signin.ENOTFOUND {
		t.Errorf("LoadSession of an unknown id: %v, want ENOTFOUND", err)
	}
	if err := s.DeleteSession(ctx, "id-1"); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.LoadSession(ctx, "id-1"); signin.ErrorKind(err) != signin.ENOTFOUND {
		t.Errorf("LoadSession after DeleteSession: %v, want ENOTFOUND", err)
	}
	if err := s.DeleteSession(ctx, "id-1"); err != nil {
		t.Errorf("DeleteSession twice: %v, want nil", err)
	}
	for _, bad := range []struct{ id, sub string }{{"", "1"}, {"x", ""}, {"x", "bad\xff"}} {
		if err := s.CreateSession(ctx, bad.id, bad.sub, nil, exp); signin.ErrorKind(err) != signin.EINVALID {
			t.Errorf("CreateSession(%q, %q): %v, want EINVALID", bad.id, bad.sub, err)
		}
	}
	if err := s.CreateSession(ctx, "big", "1", make([]byte, MaxSessionData+1), exp); signin.ErrorKind(err) != signin.ETOOLARGE {
		t.Errorf("CreateSession too large: %v", err)
	}
}

func TestSessionExpiry(t *testing.T) {
	url := pgtest.URL(t)
	var now atomic.Pointer[time.Time]
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now.Store(&start)
	s, err := Open(t.Context(), Config{URL: url, Now: func() time.Time { return *now.Load() }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	for i := range 5 {
		if err := s.CreateSession(ctx, fmt.Sprint("old-", i), "1", nil, start.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateSession(ctx, "new", "1", nil, start.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	later := start.Add(2 * time.Hour)
	now.Store(&later)
	if _, _, _, err := s.LoadSession(ctx, "old-0"); signin.ErrorKind(err) != signin.ENOTFOUND {
		t.Errorf("LoadSession of an expired session: %v, want ENOTFOUND", err)
	}
	if _, _, _, err := s.LoadSession(ctx, "new"); err != nil {
		t.Errorf("LoadSession of a live session: %v", err)
	}
	// The next CreateSession (a minute after the last cleanup) removes
	// the expired rows, in a bounded batch.
	if err := s.CreateSession(ctx, "newer", "1", nil, start.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := countSessions(t, url); n != 2 {
		t.Errorf("%d sessions after cleanup, want 2", n)
	}
	if n, err := s.DeleteExpiredSessions(ctx, 10); n != 0 || err != nil {
		t.Errorf("DeleteExpiredSessions = %d, %v; want 0, nil", n, err)
	}
}

func TestDeleteUserSessions(t *testing.T) {
	s := mustOpen(t, pgtest.URL(t))
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	for i, sub := range []string{"a", "a", "a", "b"} {
		if err := s.CreateSession(ctx, fmt.Sprint("id-", i), sub, nil, exp); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.DeleteUserSessions(ctx, "a")
	if n != 3 || err != nil {
		t.Fatalf("DeleteUserSessions(a) = %d, %v; want 3", n, err)
	}
	if _, _, _, err := s.LoadSession(ctx, "id-0"); signin.ErrorKind(err) != signin.ENOTFOUND {
		t.Errorf("a's session survived: %v", err)
	}
	if _, _, _, err := s.LoadSession(ctx, "id-3"); err != nil {
		t.Errorf("b's session: %v", err)
	}
}

// The table keeps the SHA-256 of the id, never the id: a copy of it gives
// no cookie.
func TestSessionIDNotStored(t *testing.T) {
	url := pgtest.URL(t)
	s := mustOpen(t, url)
	id := "Zr3c0oK1e-secret-session-id"
	if err := s.CreateSession(t.Context(), id, "1", []byte("d"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var dump []byte
	if err := conn.QueryRow(t.Context(), `SELECT convert_to(string_agg(s::text, ','), 'UTF8') FROM sessions s`).Scan(&dump); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(dump, []byte(id)) {
		t.Errorf("the sessions table holds the session id: %s", dump)
	}
	var hash []byte
	if err := conn.QueryRow(t.Context(), `SELECT id_hash FROM sessions`).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if want := sha256.Sum256([]byte(id)); !bytes.Equal(hash, want[:]) {
		t.Errorf("id_hash = %x, want SHA-256 of the id", hash)
	}
}

func countSessions(t *testing.T, url string) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM sessions`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
