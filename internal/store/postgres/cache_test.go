package postgres

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"example.com/signin"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/grant/granttest"
	"example.com/signin/internal/pgtest"
)

// openCached opens a store with a record cache on url. Its trust window
// is an hour unless cfg says otherwise, so that a poll delayed on a busy
// machine does not send a Get the test expects from the cache to the
// database: what these tests check is that changes are heard of, not how
// fast.
func openCached(tb testing.TB, url string, cfg Config) *Store {
	tb.Helper()
	cfg.URL = url
	if cfg.Logger == nil {
		cfg.Logger = testLogger(tb)
	}
	if cfg.RecordCache == 0 {
		cfg.RecordCache = 100
	}
	if cfg.cacheWindow == 0 {
		cfg.cacheWindow = time.Hour
	}
	s, err := Open(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// rowsOnly is Config.knownSubsLimit for tests of the record cache alone:
// with the known subs, a Get of a user without a row would not read the
// database, whether the cache kept the absence or not.
const rowsOnly = -1

// syncCache waits until s's listener has polled successfully since now:
// every change committed before the call has then reached s's cache.
func syncCache(tb testing.TB, s *Store) {
	tb.Helper()
	since := s.cache.now()
	deadline := time.Now().Add(10 * time.Second)
	for !s.cache.confirmedAt().After(since) {
		if time.Now().After(deadline) {
			tb.Fatalf("the record cache's listener has not polled for 10 s (last poll started %v)", s.cache.confirmedAt())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// reads is how many of s's Gets went to the database.
func reads(s *Store) int64 { return s.cache.reads.Load() }

// get is s.Get(sub), which must succeed (want non-nil) or find no row
// (want nil), from the database (fromDB) or the cache.
func get(t *testing.T, s *Store, sub string, want *grant.Record, fromDB bool, what string) {
	t.Helper()
	before := reads(s)
	got, err := s.Get(t.Context(), sub)
	switch {
	case want == nil && signin.ErrorKind(err) != signin.ENOTFOUND:
		t.Errorf("%s: Get = %+v, %v; want not found", what, got, err)
	case want != nil && err != nil:
		t.Errorf("%s: Get: %v", what, err)
	case want != nil && !granttest.Equal(got, want):
		t.Errorf("%s: Get = %+v\nwant %+v", what, got, want)
	}
	if n := reads(s) - before; (n == 1) != fromDB {
		where := "the cache"
		if fromDB {
			where = "the database"
		}
		t.Errorf("%s: %d database reads, want the answer from %s", what, n, where)
	}
}

// pollGate holds a store's listener before its next poll, so that a test
// can make changes it does not hear of until released.
type pollGate struct {
	mu      sync.Mutex
	held    bool
	arrived chan struct{}
	release chan struct{}
}

func (g *pollGate) hook() {
	g.mu.Lock()
	if !g.held {
		g.mu.Unlock()
		return
	}
	arrived, release := g.arrived, g.release
	g.mu.Unlock()
	select {
	case arrived <- struct{}{}:
	default:
	}
	<-release
}

// hold returns once the listener waits before a poll (none in flight).
func (g *pollGate) hold(t *testing.T) {
	t.Helper()
	g.mu.Lock()
	g.held, g.arrived, g.release = true, make(chan struct{}, 1), make(chan struct{})
	arrived := g.arrived
	g.mu.Unlock()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the listener did not come to its next poll within 10 s")
	}
}

func (g *pollGate) let() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held {
		g.held = false
		close(g.release)
	}
}

// Two replicas on one database: what one writes, the other reads once the
// notification comes, and in between it answers from memory.
func TestCacheTwoReplicas(t *testing.T) {
	url := pgtest.URL(t)
	a, b := openCached(t, url, Config{knownSubsLimit: rowsOnly}), openCached(t, url, Config{})
	const sub = "109876543210987654321"
	syncCache(t, a)
	get(t, a, sub, nil, true, "A's first Get")
	get(t, a, sub, nil, false, "A's second Get (the absence kept)")

	rec := granttest.Put(t, b, granttest.NewRecord(sub, time.Now().Add(time.Hour)))
	syncCache(t, a)
	get(t, a, sub, rec, true, "A after B wrote")
	get(t, a, sub, rec, false, "A again")

	if err := b.Delete(t.Context(), sub); err != nil {
		t.Fatal(err)
	}
	syncCache(t, a)
	get(t, a, sub, nil, true, "A after B deleted")
}

// A change made by hand (psql, another program) is heard of too: the
// trigger notifies, whoever writes. TRUNCATE drops everything.
func TestCacheSeesSQLWrites(t *testing.T) {
	url := pgtest.URL(t)
	a, b := openCached(t, url, Config{knownSubsLimit: rowsOnly}), mustOpen(t, url)
	rec := granttest.Put(t, b, granttest.NewRecord("1", time.Now().Add(time.Hour)))
	other := granttest.Put(t, b, granttest.NewRecord("2", time.Now().Add(time.Hour)))
	syncCache(t, a)
	get(t, a, "1", rec, true, "first Get")
	get(t, a, "2", other, true, "first Get of the other")
	get(t, a, "1", rec, false, "second Get")

	execSQL(t, url, `UPDATE credentials SET email = 'new@example.com' WHERE sub = '1'`)
	syncCache(t, a)
	changed := *rec
	changed.Email = "new@example.com"
	get(t, a, "1", &changed, true, "after an UPDATE by hand")
	get(t, a, "2", other, false, "the other user, unchanged")
	get(t, a, "1", &changed, false, "again")

	execSQL(t, url, `TRUNCATE credentials`)
	syncCache(t, a)
	get(t, a, "1", nil, true, "after TRUNCATE")
	get(t, a, "2", nil, true, "the other after TRUNCATE")
	get(t, a, "2", nil, false, "the absence kept")
}

// A replica reads its own writes at once, without waiting for the
// notification: the listener is held so that it cannot hear of them.
func TestCacheOwnWrites(t *testing.T) {
	var gate pollGate
	a := openCached(t, pgtest.URL(t), Config{cacheBeforePoll: gate.hook, knownSubsLimit: rowsOnly})
	defer gate.let()
	const sub = "109876543210987654321"
	syncCache(t, a)
	get(t, a, sub, nil, true, "first Get")
	get(t, a, sub, nil, false, "second Get")

	gate.hold(t)
	rec := granttest.Put(t, a, granttest.NewRecord(sub, time.Now().Add(time.Hour)))
	get(t, a, sub, rec, true, "after its own Update")
	get(t, a, sub, rec, false, "again")
	if err := a.Delete(t.Context(), sub); err != nil {
		t.Fatal(err)
	}
	get(t, a, sub, nil, true, "after its own Delete")
	if _, err := a.SetAside(t.Context(), sub); err != nil {
		t.Fatal(err)
	}
	get(t, a, sub, nil, true, "after SetAside (nothing to set aside)")
}

// A change heard of between a miss's SELECT and its fill may be one the
// SELECT did not see: the result is returned but not kept.
func TestCacheFillRace(t *testing.T) {
	url := pgtest.URL(t)
	const sub = "109876543210987654321"
	var a *Store
	b := mustOpen(t, url)
	var rec *grant.Record
	var once atomic.Bool
	a = openCached(t, url, Config{knownSubsLimit: rowsOnly, cacheAfterRead: func(string) {
		if once.Swap(true) {
			return
		}
		// A's SELECT saw no row; B writes one and A's listener hears of
		// it before A fills.
		rec = granttest.Put(t, b, granttest.NewRecord(sub, time.Now().Add(time.Hour)))
		syncCache(t, a)
	}})
	syncCache(t, a)
	get(t, a, sub, nil, true, "the Get racing B's write")
	get(t, a, sub, rec, true, "the next Get")
	get(t, a, sub, rec, false, "the one after")
}

// When the listener's connection is lost, so are the notifications sent
// meanwhile: the cache is emptied, and trusted again only once listening
// on a new connection.
func TestCacheListenerLost(t *testing.T) {
	url := pgtest.URL(t)
	var gate pollGate
	a, b := openCached(t, url, Config{cacheBeforePoll: gate.hook}), mustOpen(t, url)
	defer gate.let()
	const sub = "109876543210987654321"
	old := granttest.Put(t, b, granttest.NewRecord(sub, time.Now().Add(time.Hour)))
	syncCache(t, a)
	get(t, a, sub, old, true, "first Get")
	get(t, a, sub, old, false, "second Get")

	gate.hold(t)
	pid := a.cache.pid.Load()
	execSQL(t, url, `SELECT pg_terminate_backend($1)`, int32(pid))
	// Wait for the backend to be gone, so that B's notification cannot
	// reach it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := b.pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, int32(pid)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the listener's backend still there 10 s after pg_terminate_backend")
		}
		time.Sleep(10 * time.Millisecond)
	}
	next := *old
	next.Email = "new@example.com"
	rec := granttest.Put(t, b, &next)
	gate.let()
	syncCache(t, a)
	if a.cache.pid.Load() == pid {
		t.Fatal("the listener polled on its terminated connection")
	}
	get(t, a, sub, rec, true, "after the listener came back")
	get(t, a, sub, rec, false, "again")
}

// A listener whose session does not listen (a pooler in transaction mode
// hands each statement to another session) never trusts the cache, and
// says so once.
func TestCacheDeafListener(t *testing.T) {
	var logs syncBuffer
	s := openCached(t, pgtest.URL(t), Config{cacheListen: "LISTEN another_channel", Logger: slogTo(&logs)})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "LISTEN does not hold") {
		if time.Now().After(deadline) {
			t.Fatalf("no log line says the cache is off after 10 s; log:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if at := s.cache.confirmedAt(); !at.IsZero() {
		t.Errorf("the cache was trusted (at %v) without listening", at)
	}
	get(t, s, "1", nil, true, "first Get")
	get(t, s, "1", nil, true, "second Get")
}

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// The cache answers only within the trust window after the start of the
// listener's last successful poll; past it Gets read the database.
func TestCacheTrustWindow(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	var gate pollGate
	a := openCached(t, pgtest.URL(t), Config{cacheWindow: trustWindow, cacheNow: clk.Now, cacheBeforePoll: gate.hook,
		knownSubsLimit: rowsOnly})
	defer gate.let()
	waitConfirmed := func(at time.Time) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !a.cache.confirmedAt().Equal(at) {
			if time.Now().After(deadline) {
				t.Fatalf("no poll confirmed %v within 10 s", at)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitConfirmed(clk.Now())
	const sub = "1"
	get(t, a, sub, nil, true, "first Get")
	get(t, a, sub, nil, false, "second Get")

	gate.hold(t)
	clk.Advance(trustWindow - time.Microsecond)
	get(t, a, sub, nil, false, "just within the window")
	clk.Advance(time.Microsecond)
	get(t, a, sub, nil, true, "at the window's end")
	get(t, a, sub, nil, true, "again past the window (nothing kept meanwhile)")

	gate.let()
	waitConfirmed(clk.Now())
	get(t, a, sub, nil, false, "after a poll")
}

// What Get returns is the caller's: changing it changes nothing cached.
func TestCacheReturnsCopies(t *testing.T) {
	a := openCached(t, pgtest.URL(t), Config{})
	const sub = "109876543210987654321"
	in := granttest.NewRecord(sub, time.Now().Add(time.Hour))
	at := time.Now().Add(-time.Hour).Truncate(time.Microsecond).UTC()
	in.RevokedAt, in.DisabledAt, in.RefreshedAt = &at, &at, &at
	rec := granttest.Put(t, a, in)
	syncCache(t, a)
	get(t, a, sub, rec, true, "first Get")
	for range 2 {
		got, err := a.Get(t.Context(), sub)
		if err != nil {
			t.Fatal(err)
		}
		got.Email = "changed"
		got.Scopes[0] = "changed"
		*got.RevokedAt = time.Time{}
		*got.DisabledAt = time.Time{}
		*got.RefreshedAt = time.Time{}
		got.Token.AccessToken = "changed"
	}
	get(t, a, sub, rec, false, "after changing what Get returned")
}

// The cache holds at most RecordCache entries, the least recently used
// going first.
func TestCacheBound(t *testing.T) {
	c := newRecordCache(2, time.Hour, nil, 0)
	c.confirm(time.Now())
	for _, key := range []string{"a", "b", "a", "c"} {
		if _, hit, ticket, ok := c.lookup(key); !hit && ok {
			c.fill(key, nil, ticket)
		}
	}
	if n := c.len(); n != 2 {
		t.Errorf("%d entries, want 2", n)
	}
	for key, want := range map[string]bool{"a": true, "b": false, "c": true} {
		if _, hit, _, _ := c.lookup(key); hit != want {
			t.Errorf("%s cached: %v, want %v", key, hit, want)
		}
	}
}

// RecordCache 0 (offline-fetch, signin-admin): no cache, no listener;
// every Get reads the database, and sees a change made by hand at once.
func TestCacheOff(t *testing.T) {
	url := pgtest.URL(t)
	s := mustOpen(t, url)
	if s.cache != nil {
		t.Fatal("a cache without RecordCache")
	}
	granttest.Put(t, s, granttest.NewRecord("1", time.Now().Add(time.Hour)))
	for _, email := range []string{"a@example.com", "b@example.com"} {
		execSQL(t, url, `UPDATE credentials SET email = $1 WHERE sub = '1'`, email)
		got, err := s.Get(t.Context(), "1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Email != email {
			t.Errorf("Get after an UPDATE by hand: email %q, want %q", got.Email, email)
		}
	}
	var n int
	if err := s.pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d sessions listening without a cache", n)
	}
}

// The grant store contract holds with the cache on; a row damaged by hand
// is read once the notification has come.
func TestConformanceCached(t *testing.T) {
	granttest.Run(t, func(t *testing.T) grant.Store { return openCached(t, pgtest.URL(t), Config{cacheWindow: trustWindow}) },
		func(t *testing.T, st grant.Store, sub string) {
			s := st.(*Store)
			_, err := s.pool.Exec(t.Context(), `UPDATE credentials SET status = 'bogus' WHERE sub = $1`, escapeText(sub))
			if err != nil {
				t.Fatal(err)
			}
			syncCache(t, s)
		})
}

// A hung database with the cache on: the cache stops answering within the
// trust window (its polls get no answer), Gets then fail as the database's
// do, and the listener stops at once when asked, frozen database or not.
// After the thaw the listener comes back.
func TestCacheHungDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("freezes a PostgreSQL server")
	}
	srv := pgtest.NewServer(t)
	s := openCached(t, srv.NewDatabase(t), Config{cacheWindow: trustWindow,
		Timeout: 300 * time.Millisecond, LockTimeout: 300 * time.Millisecond})
	const sub = "109876543210987654321"
	rec := granttest.Put(t, s, granttest.NewRecord(sub, time.Now().Add(time.Hour)))
	syncCache(t, s)
	get(t, s, sub, rec, true, "before the freeze")

	thaw := freeze(t, srv)
	defer thaw()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := s.Get(context.Background(), sub)
		if err != nil {
			wantUnavailable(t, "Get on a frozen database", err)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Get still answered from the cache 10 s into the freeze")
		}
		time.Sleep(20 * time.Millisecond)
	}
	thaw()
	syncCache(t, s)
	deadline = time.Now().Add(60 * time.Second)
	for {
		_, err := s.Get(t.Context(), sub)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Get still failing 60 s after the thaw: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	syncCache(t, s)
	get(t, s, sub, rec, false, "after the thaw, from the cache again")
}

// The listener stops when the store closes, even on a frozen database.
func TestCacheStopsOnFrozenDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("freezes a PostgreSQL server")
	}
	srv := pgtest.NewServer(t)
	s := openCached(t, srv.NewDatabase(t), Config{Timeout: 300 * time.Millisecond})
	syncCache(t, s)
	thaw := freeze(t, srv)
	defer thaw()
	s.stopWatch()
	select {
	case <-s.watchDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the listener did not stop within 10 s on a frozen database")
	}
}
