package postgres

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"example.com/signin"
	"example.com/signin/internal/pgtest"
)

func TestSessionEndsRefusesBadInput(t *testing.T) {
	s := mustOpen(t, pgtest.URL(t))
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	for _, bad := range []struct{ sub, key string }{{"1", ""}, {"", "k"}, {"bad\xff", "k"}, {"1", string(make([]byte, maxSessionKey+1))}} {
		if err := s.EndSession(ctx, bad.sub, bad.key, exp); signin.ErrorKind(err) != signin.EINVALID {
			t.Errorf("EndSession(%q, %q): %v, want EINVALID", bad.sub, bad.key, err)
		}
	}
	if err := s.EndUserSessions(ctx, "", time.Now(), exp); signin.ErrorKind(err) != signin.EINVALID {
		t.Errorf("EndUserSessions of no one: %v, want EINVALID", err)
	}
}

// Rows that end nothing any more (their sessions expired) are removed in
// bounded batches after a write, at most once a minute.
func TestSessionEndsCleanup(t *testing.T) {
	url := pgtest.URL(t)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, now := openAt(t, url, start)
	ctx := t.Context()
	for i := range 5 {
		if err := s.EndSession(ctx, "1", fmt.Sprint("old-", i), start.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.EndUserSessions(ctx, fmt.Sprint(100+i), start, start.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.EndSession(ctx, "1", "new", start.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	later := start.Add(2 * time.Hour)
	now.Store(&later)
	if _, keys, err := s.SessionEnds(ctx, "1"); err != nil || len(keys) != 1 || keys[0] != "new" {
		t.Errorf("SessionEnds = %q, %v; want only the unexpired key", keys, err)
	}
	// The next write (a minute after the last cleanup) removes the
	// expired rows, in a bounded batch.
	if err := s.EndUserSessions(ctx, "2", later, later.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, url, "ended_sessions"); n != 1 {
		t.Errorf("%d ended sessions after cleanup, want 1", n)
	}
	if n := countRows(t, url, "session_ends"); n != 1 {
		t.Errorf("%d users' ends after cleanup, want 1", n)
	}
	if n, err := s.DeleteExpiredSessionEnds(ctx, 10); n != 0 || err != nil {
		t.Errorf("DeleteExpiredSessionEnds = %d, %v; want 0, nil", n, err)
	}
}

// Migration 00005 removed the table of a row per sign-in, data column and
// all.
func TestNoSessionsTable(t *testing.T) {
	url := pgtest.URL(t)
	mustOpen(t, url)
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM information_schema.tables WHERE table_name = 'sessions'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("a sessions table: %d, %v", n, err)
	}
}

func countRows(t *testing.T, url, table string) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM `+pgx.Identifier{table}.Sanitize()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A user's list of sessions ended one by one is bounded, as the file
// store's is: past the bound EndSession refuses and asks for sign-out
// everywhere (one row, however many sessions); ending a session already
// ended still succeeds, and expired entries make room again.
func TestEndSessionBound(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, now := openAt(t, pgtest.URL(t), start)
	s.maxEnded = 3
	ctx := t.Context()
	var err error
	for i := range 3 {
		if err := s.EndSession(ctx, "1", fmt.Sprint("k", i), start.Add(time.Duration(i+1)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	err = s.EndSession(ctx, "1", "k3", start.Add(time.Hour))
	if signin.ErrorKind(err) != signin.ETOOLARGE || signin.ErrorCode(err) != "too_many_ended_sessions" {
		t.Fatalf("a fourth ended session: %v, want too_many_ended_sessions", err)
	}
	if err := s.EndSession(ctx, "1", "k0", start.Add(time.Hour)); err != nil {
		t.Errorf("ending an ended session again: %v", err)
	}
	if err := s.EndSession(ctx, "2", "k0", start.Add(time.Hour)); err != nil {
		t.Errorf("another user's session: %v", err)
	}
	if err := s.EndUserSessions(ctx, "1", start, start.Add(time.Hour)); err != nil {
		t.Errorf("sign-out everywhere past the bound: %v", err)
	}
	_, keys, err := s.SessionEnds(ctx, "1")
	if err != nil || len(keys) != 3 {
		t.Errorf("SessionEnds = %q, %v; want the three keys", keys, err)
	}
	// k0 expires: room for one more.
	later := start.Add(time.Hour + time.Minute)
	now.Store(&later)
	if err := s.EndSession(ctx, "1", "k3", later.Add(time.Hour)); err != nil {
		t.Errorf("after one expired: %v", err)
	}
}

// openAt opens a store on the database url whose clock reads start until
// the test moves it (now.Store), and closes it at the end of the test.
func openAt(t *testing.T, url string, start time.Time) (*Store, *atomic.Pointer[time.Time]) {
	t.Helper()
	var now atomic.Pointer[time.Time]
	now.Store(&start)
	s, err := Open(t.Context(), Config{URL: url, Now: func() time.Time { return *now.Load() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, &now
}
