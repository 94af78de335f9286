package postgres

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"example.com/signin/internal/grant"
	"example.com/signin/internal/grant/granttest"
	"example.com/signin/internal/pgtest"
)

// waitKnown waits until s's known subs are complete, loaded after the
// set current at the call or a later one (epoch: its subsEpoch then, or 0
// for any).
func waitKnown(tb testing.TB, s *Store, after uint64) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := s.cache
		c.mu.Lock()
		done := c.subsReady && c.subsEpoch > after
		c.mu.Unlock()
		if done {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatal("the known subs were not loaded within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// epoch is s's current set of known subs.
func epoch(s *Store) uint64 {
	s.cache.mu.Lock()
	defer s.cache.mu.Unlock()
	return s.cache.subsEpoch
}

// absent is how many of s's Gets the known subs answered "no row".
func absent(s *Store) int64 { return s.cache.absent.Load() }

// A user without a row, not in the record cache: once the known subs are
// loaded, Get answers "no row" without a query, every time (the absence
// is not kept as an entry). Rows that were there before the store opened
// are found: the load read them, whatever their subs look like stored.
func TestKnownSubsColdMiss(t *testing.T) {
	url := pgtest.URL(t)
	b := mustOpen(t, url)
	const escaped = `a\b` // stored `a\\b`: the set holds subs as stored
	var recs []*grant.Record
	for _, sub := range []string{"1", "2", escaped} {
		recs = append(recs, granttest.Put(t, b, granttest.NewRecord(sub, time.Now().Add(time.Hour))))
	}
	a := openCached(t, url, Config{})
	waitKnown(t, a, 0)
	syncCache(t, a)
	if n, _, _ := a.cache.subsState(); n != 3 {
		t.Errorf("%d known subs, want 3", n)
	}
	for _, sub := range []string{"109876543210987654321", "3", "a"} {
		get(t, a, sub, nil, false, "a user without a row: "+sub)
		get(t, a, sub, nil, false, "again: "+sub)
	}
	if n := absent(a); n != 6 {
		t.Errorf("%d Gets answered by the known subs, want 6", n)
	}
	if n := a.cache.len(); n != 0 {
		t.Errorf("%d entries kept for absences the known subs answer, want 0", n)
	}
	for _, rec := range recs {
		get(t, a, rec.Sub, rec, true, "a row there before the store opened: "+rec.Sub)
		get(t, a, rec.Sub, rec, false, "again, from the record cache: "+rec.Sub)
	}
}

// A row another replica creates, or one inserted by hand (psql), is found
// once the notification has come: it adds the sub to the known subs.
func TestKnownSubsOtherWriters(t *testing.T) {
	url := pgtest.URL(t)
	a, b := openCached(t, url, Config{}), openCached(t, url, Config{})
	waitKnown(t, a, 0)
	syncCache(t, a)
	const sub = "109876543210987654321"
	get(t, a, sub, nil, false, "before B writes")

	rec := granttest.Put(t, b, granttest.NewRecord(sub, time.Now().Add(time.Hour)))
	syncCache(t, a)
	get(t, a, sub, rec, true, "after B wrote")

	// A row copied by hand under another sub.
	const other = "209876543210987654321"
	get(t, a, other, nil, false, "before the INSERT by hand")
	execSQL(t, url, `INSERT INTO credentials (`+recordColumns+`) SELECT $1, version, email, name, scopes, status, revoked_reason, revoked_at,
		access_token, token_type, refresh_token, expiry, created_at, updated_at, disabled_at, disabled_reason, refreshed_at
		FROM credentials WHERE sub = $2`, other, sub)
	syncCache(t, a)
	got, err := a.Get(t.Context(), other)
	if err != nil {
		t.Fatalf("Get after an INSERT by hand: %v", err)
	}
	if got.Sub != other || got.Email != rec.Email {
		t.Errorf("Get after an INSERT by hand = %+v", got)
	}

	// A sub changed by hand: the notification names both.
	const moved = "309876543210987654321"
	execSQL(t, url, `UPDATE credentials SET sub = $1 WHERE sub = $2`, moved, other)
	syncCache(t, a)
	if got, err := a.Get(t.Context(), moved); err != nil || got.Sub != moved {
		t.Errorf("Get after a sub changed by hand = %+v, %v", got, err)
	}
	get(t, a, other, nil, true, "the old sub (its hash stays: a query)")
}

// A replica reads its own new row at once, without the notification: the
// listener is held so that it cannot hear of it.
func TestKnownSubsOwnWrites(t *testing.T) {
	var gate pollGate
	a := openCached(t, pgtest.URL(t), Config{cacheBeforePoll: gate.hook})
	defer gate.let()
	waitKnown(t, a, 0)
	syncCache(t, a)
	const sub = "109876543210987654321"
	get(t, a, sub, nil, false, "before the Update")

	gate.hold(t)
	rec := granttest.Put(t, a, granttest.NewRecord(sub, time.Now().Add(time.Hour)))
	get(t, a, sub, rec, true, "after its own Update")
	get(t, a, sub, rec, false, "again")
}

// The set may be loaded again while a write of this replica runs, by a
// load whose snapshot lacks the row: the write adds the sub again when it
// is over, so the replica still reads its own row at once.
func TestKnownSubsOwnWriteAcrossReload(t *testing.T) {
	url := pgtest.URL(t)
	var gate pollGate
	a := openCached(t, url, Config{cacheBeforePoll: gate.hook})
	defer gate.let()
	waitKnown(t, a, 0)
	syncCache(t, a)
	const sub = "109876543210987654321"
	rec := granttest.NewRecord(sub, time.Now().Add(time.Hour))
	saved, err := a.Update(t.Context(), sub, func(*grant.Record) (*grant.Record, error) {
		// An announcement of everything, heard while the write runs: the
		// set is started again and loaded without the row, not yet
		// committed. Then the listener is held, so that it cannot hear
		// of the commit.
		before := epoch(a)
		execSQL(t, url, `SELECT pg_notify('signin_credentials', '')`)
		syncCache(t, a)
		waitKnown(t, a, before)
		gate.hold(t)
		r := *rec
		return &r, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	get(t, a, sub, saved, true, "after its own Update, the set loaded again meanwhile")
}

// When the listener's connection is lost, so are the notifications sent
// meanwhile: the known subs are discarded and answer again only once
// loaded after listening on a new connection, so a row inserted meanwhile
// is found.
func TestKnownSubsListenerLost(t *testing.T) {
	url := pgtest.URL(t)
	var gate pollGate
	a, b := openCached(t, url, Config{cacheBeforePoll: gate.hook}), mustOpen(t, url)
	defer gate.let()
	waitKnown(t, a, 0)
	syncCache(t, a)
	const sub = "109876543210987654321"
	get(t, a, sub, nil, false, "before the loss")

	gate.hold(t)
	pid := a.cache.pid.Load()
	execSQL(t, url, `SELECT pg_terminate_backend($1)`, int32(pid))
	waitGone(t, b, pid)
	rec := granttest.Put(t, b, granttest.NewRecord(sub, time.Now().Add(time.Hour)))
	gate.let()
	syncCache(t, a)
	if a.cache.pid.Load() == pid {
		t.Fatal("the listener polled on its terminated connection")
	}
	// Whether the new set is loaded yet or not, the row is found: from
	// the database either way.
	get(t, a, sub, rec, true, "after the listener came back")
	waitKnown(t, a, 0)
	get(t, a, sub, rec, false, "again, from the record cache")
	const other = "209876543210987654321"
	before := absent(a)
	get(t, a, other, nil, false, "a user without a row, the set loaded again")
	if absent(a) != before+1 {
		t.Error("the set loaded again did not answer for a user without a row")
	}
}

// waitGone waits until the backend pid is gone, so that no notification
// can reach it.
func waitGone(t *testing.T, s *Store, pid uint32) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := s.pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, int32(pid)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the listener's backend still there 10 s after pg_terminate_backend")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// More rows than the bound: no set is kept (said once), and every miss of
// the record cache reads the database. As many as the bound: kept.
func TestKnownSubsBound(t *testing.T) {
	url := pgtest.URL(t)
	b := mustOpen(t, url)
	for _, sub := range []string{"1", "2", "3"} {
		granttest.Put(t, b, granttest.NewRecord(sub, time.Now().Add(time.Hour)))
	}

	var logs syncBuffer
	a := openCached(t, url, Config{knownSubsLimit: 2, Logger: slogTo(&logs)})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "not keeping the set of known users") {
		if time.Now().After(deadline) {
			t.Fatalf("no log line says the set is not kept after 10 s; log:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "level=INFO") || !strings.Contains(logs.String(), "rows_more_than=2") {
		t.Errorf("the log line does not say INFO and the bound:\n%s", logs.String())
	}
	if _, kept, _ := a.cache.subsState(); kept {
		t.Error("a set kept past its bound")
	}
	syncCache(t, a)
	for _, sub := range []string{"4", "5", "6"} {
		get(t, a, sub, nil, true, "a user without a row, no set: "+sub)
	}
	if n := absent(a); n != 0 {
		t.Errorf("%d Gets answered by a set not kept", n)
	}

	c := openCached(t, url, Config{knownSubsLimit: 3})
	waitKnown(t, c, 0)
	syncCache(t, c)
	get(t, c, "4", nil, false, "a user without a row, the set at its bound")
}

// TRUNCATE (an empty payload: everything) discards the set and loads it
// again, without the subs that are gone; what is written afterwards is
// found.
func TestKnownSubsTruncate(t *testing.T) {
	url := pgtest.URL(t)
	a, b := openCached(t, url, Config{}), mustOpen(t, url)
	waitKnown(t, a, 0)
	for _, sub := range []string{"1", "2"} {
		granttest.Put(t, b, granttest.NewRecord(sub, time.Now().Add(time.Hour)))
	}
	syncCache(t, a)
	if n, _, _ := a.cache.subsState(); n != 2 {
		t.Fatalf("%d known subs after two rows were written, want 2", n)
	}

	before := epoch(a)
	execSQL(t, url, `TRUNCATE credentials`)
	waitKnown(t, a, before)
	if n, _, _ := a.cache.subsState(); n != 0 {
		t.Errorf("%d known subs after TRUNCATE and a new load, want 0", n)
	}
	syncCache(t, a)
	get(t, a, "1", nil, false, "after TRUNCATE")
	rec := granttest.Put(t, b, granttest.NewRecord("3", time.Now().Add(time.Hour)))
	syncCache(t, a)
	get(t, a, "3", rec, true, "written after TRUNCATE")
}

// The known subs answer only while the cache is trusted: past the trust
// window a Get reads the database.
func TestKnownSubsTrustWindow(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	var gate pollGate
	a := openCached(t, pgtest.URL(t), Config{cacheWindow: trustWindow, cacheNow: clk.Now, cacheBeforePoll: gate.hook})
	defer gate.let()
	waitKnown(t, a, 0)
	deadline := time.Now().Add(10 * time.Second)
	for !a.cache.confirmedAt().Equal(clk.Now()) {
		if time.Now().After(deadline) {
			t.Fatal("no poll confirmed the cache within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	gate.hold(t)
	get(t, a, "1", nil, false, "within the window")
	clk.Advance(trustWindow)
	get(t, a, "1", nil, true, "at the window's end")
}

// hashSet holds what was added, and says no to the rest (a random 64-bit
// value colliding with one of 100,000 others: about 1 in 2^47).
func TestHashSet(t *testing.T) {
	var s hashSet
	if s.has(1) {
		t.Error("the empty set has 1")
	}
	r := rand.New(rand.NewPCG(1, 2))
	added := make(map[uint64]bool)
	for _, h := range []uint64{0, 1, ^uint64(0)} {
		added[h] = true
		s.add(h)
	}
	for range 100_000 {
		h := r.Uint64()
		added[h] = true
		s.add(h)
		s.add(h) // again: no second slot
	}
	if s.n != len(added)-1 { // 0 and 1 share a slot
		t.Errorf("%d hashes kept, want %d", s.n, len(added)-1)
	}
	if 2*s.n > len(s.slots) {
		t.Errorf("%d hashes in %d slots: more than half full", s.n, len(s.slots))
	}
	for h := range added {
		if !s.has(h) {
			t.Fatalf("%#x added, not found", h)
		}
	}
	for range 100_000 {
		if h := r.Uint64(); !added[h] && s.has(h) {
			t.Fatalf("%#x found, never added", h)
		}
	}
}
