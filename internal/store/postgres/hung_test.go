package postgres

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"example.com/signin/internal/grant"
	"example.com/signin/internal/grant/granttest"
	"example.com/signin/internal/pgtest"
)

// A hung database (every PostgreSQL process stopped with SIGSTOP: a frozen
// host, a network dropping packets) makes each operation fail as
// database_unavailable once Config.Timeout passes, rather than holding its
// caller until the database wakes (issue 23, item 1). When it wakes, the
// store works again with no restart. The outage is logged once when it
// starts and once when it ends, with the count of refused operations, not
// once per operation (item 4).
func TestHungDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("freezes a PostgreSQL server")
	}
	eachCache(t, testHungDatabase)
}

func testHungDatabase(t *testing.T, recordCache int) {
	srv := pgtest.NewServer(t)
	var logs syncBuffer
	s, err := Open(t.Context(), Config{URL: srv.NewDatabase(t), Logger: slogTo(&logs),
		Timeout: 300 * time.Millisecond, LockTimeout: 300 * time.Millisecond, RecordCache: recordCache})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const sub = "109876543210987654321"
	saved := granttest.Put(t, s, granttest.NewRecord(sub, time.Now()))
	if err := s.EndSession(t.Context(), sub, strings.Repeat("a", 32), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	thaw := freeze(t, srv)
	defer thaw()

	ops := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Get", func(ctx context.Context) error { _, err := s.Get(ctx, sub); return err }},
		{"Update", func(ctx context.Context) error {
			_, err := s.Update(ctx, sub, func(cur *grant.Record) (*grant.Record, error) { return cur, nil })
			return err
		}},
		{"Delete", func(ctx context.Context) error { return s.Delete(ctx, sub) }},
		{"List", func(ctx context.Context) error {
			return s.List(ctx, func(*grant.Record, error) error { return nil })
		}},
		{"SessionEnds", func(ctx context.Context) error {
			_, _, err := s.SessionEnds(ctx, sub)
			return err
		}},
		{"EndSession", func(ctx context.Context) error {
			return s.EndSession(ctx, sub, strings.Repeat("b", 32), time.Now().Add(time.Hour))
		}},
		{"EndUserSessions", func(ctx context.Context) error {
			return s.EndUserSessions(ctx, sub, time.Now(), time.Now().Add(time.Hour))
		}},
		{"Ping", s.Ping},
	}
	for _, op := range ops {
		// The caller's context never ends by itself: only the store's own
		// deadline can end the call. The test's bound is a safety net, far
		// above the store's (and reported as a hang, not a failure mode).
		done := make(chan error, 1)
		go func() { done <- op.call(context.Background()) }()
		select {
		case err := <-done:
			wantUnavailable(t, op.name+" on a frozen database", err)
		case <-time.After(60 * time.Second):
			t.Fatalf("%s on a frozen database still waiting after 60 s", op.name)
		}
	}

	thaw()
	// Back: the pool replaces the connections the deadlines closed.
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := s.Get(t.Context(), sub)
		if err == nil {
			if !granttest.Equal(got, saved) {
				t.Errorf("after the freeze: %+v\nwant %+v", got, saved)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Get still failing 60 s after the thaw: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := granttest.Increment(t.Context(), s, sub); err != nil {
		t.Errorf("Update after the thaw: %v", err)
	}

	out := logs.String()
	t.Logf("log:\n%s", out)
	if n := strings.Count(out, "database unavailable"); n != 1 {
		t.Errorf("%d log lines say the database is unavailable, want 1 for the whole outage", n)
	}
	if n := strings.Count(out, "level=ERROR"); n != 1 {
		t.Errorf("%d ERROR lines, want 1 for the whole outage", n)
	}
	if n := strings.Count(out, "database answers again"); n != 1 {
		t.Errorf("%d log lines say the database is back, want 1", n)
	}
	if !strings.Contains(out, "refused=8") {
		t.Errorf("the line saying it is back does not count the 8 refused operations")
	}
}

// Start returns at once while the database is down; until it answers and
// is migrated every operation fails at once as database_unavailable (a
// replica listening meanwhile answers 503), then the store works.
func TestStartBeforeTheDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("stops a PostgreSQL server")
	}
	srv := pgtest.NewServer(t)
	dbURL := srv.NewDatabase(t)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	s, err := Start(t.Context(), Config{URL: dbURL, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const sub = "109876543210987654321"
	_, err = s.Get(t.Context(), sub)
	wantUnavailable(t, "Get before the database answered", err)
	wantUnavailable(t, "Ping before the database answered", s.Ping(t.Context()))
	select {
	case <-s.Started():
		t.Fatalf("started with the database down: %v", s.StartErr())
	default:
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Started():
	case <-time.After(60 * time.Second):
		t.Fatal("not started 60 s after the database came back")
	}
	if err := s.StartErr(); err != nil {
		t.Fatal(err)
	}
	granttest.Put(t, s, granttest.NewRecord(sub, time.Now()))
	if err := s.Ping(t.Context()); err != nil {
		t.Error(err)
	}
}

// freeze stops srv's processes (pgtest.Server.Freeze) and returns thaw,
// which resumes them, once however often it is called: the test calls it
// when done with the frozen server, and defers it for the paths that end
// the test early (before the store's Close, deferred earlier).
func freeze(t *testing.T, srv *pgtest.Server) (thaw func()) {
	t.Helper()
	if err := srv.Freeze(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			if err := srv.Thaw(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
