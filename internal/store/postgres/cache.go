package postgres

import (
	"container/list"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"example.com/signin/internal/grant"
)

// trustWindow is how long after the start of the listener's last
// successful poll the cache may answer Get: every change committed before
// that start has been heard of (the poll's answer comes after the
// notifications queued for it), so an entry served within the window is at
// most this much older than the database. Issue 19 allows a replica's
// memory to lag a second behind the fleet's writes; half of it leaves room
// for clocks and scheduling.
const trustWindow = 500 * time.Millisecond

// recordCache keeps Get's results (a record as stored, tokens sealed, or
// the absence of one) for up to max subs, least recently used first out.
// It is coherent with the database through LISTEN/NOTIFY (watch.go): the
// trigger of migration 00011 announces every change of a row, whoever
// makes it, and the listener drops the sub's entry. Entries are keyed by
// the sub as stored (escapeText), which is what notifications carry.
//
// A miss fills the cache only if nothing was dropped between its ticket
// (taken before its SELECT) and its fill: a notification heard while the
// SELECT ran may be about a change the SELECT did not see, so the result
// is returned but not kept. One counter for every sub keeps this simple;
// writes are rare next to reads, and a refused fill only costs a later
// miss.
type recordCache struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu        sync.Mutex
	entries   map[string]*list.Element // of *cacheEntry
	order     list.List                // front: most recently used
	gen       uint64                   // moved on by every drop
	confirmed time.Time                // start of the last successful poll; zero: not listening

	// The known subs (knownsubs.go): hashes of the subs that may have a
	// row, nil when none is kept; complete (subsReady) once loaded since
	// the current LISTEN. subsEpoch moves on whenever the set is
	// discarded or started again, so that a load of an older one cannot
	// fill this one. subsLimit is the bound (0: no set at all).
	seed      maphash.Seed
	subs      *hashSet
	subsReady bool
	subsEpoch uint64
	subsLimit int
	reload    chan struct{} // a new set wants loading

	reads  atomic.Int64  // Gets that went to the database (tests, benchmarks)
	absent atomic.Int64  // Gets answered "no row" by the known subs (tests)
	pid    atomic.Uint32 // the listener's backend, for tests

	// Test hooks (Config), nil but in tests. afterRead runs between a
	// miss's SELECT and its fill; beforePoll before each poll of the
	// listener.
	afterRead  func(key string)
	beforePoll func()
	listenSQL  string // LISTEN signin_credentials, but in a test
}

type cacheEntry struct {
	key string
	rec *grant.Record // nil: no row
}

// newRecordCache is a cache of max entries, with a set of at most
// subsLimit known subs (0: no set).
func newRecordCache(max int, window time.Duration, now func() time.Time, subsLimit int) *recordCache {
	if window <= 0 {
		window = trustWindow
	}
	if now == nil {
		now = time.Now
	}
	if subsLimit < 0 {
		subsLimit = 0
	}
	return &recordCache{max: max, window: window, now: now, entries: make(map[string]*list.Element),
		seed: maphash.MakeSeed(), subsLimit: subsLimit, reload: make(chan struct{}, 1)}
}

// lookup returns key's entry if the cache is trusted now and holds it: a
// copy of the record, or nil for no row (hit true); also nil, hit, when
// the known subs are complete and key is not among them. On a miss it
// returns the ticket for fill, and whether a fill may be tried at all (not
// while untrusted: nothing says the listener will hear of changes the
// SELECT misses).
func (c *recordCache) lookup(key string) (rec *grant.Record, hit bool, ticket uint64, fill bool) {
	now := c.now()
	var h uint64
	if c.subsLimit > 0 {
		h = c.subHash(key) // outside the lock
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.confirmed.IsZero() || now.Sub(c.confirmed) >= c.window {
		return nil, false, 0, false
	}
	if el, ok := c.entries[key]; ok {
		c.order.MoveToFront(el)
		return cloneRecord(el.Value.(*cacheEntry).rec), true, 0, false
	}
	if !c.mayHaveLocked(h) {
		// Not kept as an entry: the set answers as fast, and the
		// entries stay for the rows.
		c.absent.Add(1)
		return nil, true, 0, false
	}
	return nil, false, c.gen, true
}

// fill keeps rec (nil: no row) as key's entry unless something was dropped
// since ticket. rec becomes the cache's: the caller passes a copy.
func (c *recordCache) fill(key string, rec *grant.Record, ticket uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != ticket {
		return
	}
	if el, ok := c.entries[key]; ok {
		el.Value.(*cacheEntry).rec = rec
		c.order.MoveToFront(el)
		return
	}
	c.entries[key] = c.order.PushFront(&cacheEntry{key: key, rec: rec})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.entries, last.Value.(*cacheEntry).key)
	}
}

// drop forgets key: a write of this replica (Delete, SetAside).
func (c *recordCache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(key)
}

// heard handles a notification about key: its entry is dropped, and key
// may now have a row (always added, never removed: the notification may be
// of a delete, but two subs may share a hash).
func (c *recordCache) heard(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(key)
	c.addSubLocked(key)
}

func (c *recordCache) dropLocked(key string) {
	c.gen++
	if el, ok := c.entries[key]; ok {
		c.order.Remove(el)
		delete(c.entries, key)
	}
}

// dropAll forgets everything: a TRUNCATE, a row too long to name. The
// known subs are started again, to be loaded.
func (c *recordCache) dropAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clearLocked()
	c.newSubsLocked()
}

// lost forgets everything, known subs included, and stops trusting the
// cache: the listener's connection is gone, and notifications with it.
// Only a poll on a new connection, after LISTEN, trusts it again, and
// only a load after that LISTEN completes the known subs.
func (c *recordCache) lost() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clearLocked()
	c.discardSubsLocked()
	c.confirmed = time.Time{}
}

func (c *recordCache) clearLocked() {
	c.gen++
	clear(c.entries)
	c.order.Init()
}

// confirm notes a successful poll started at t0.
func (c *recordCache) confirm(t0 time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t0.After(c.confirmed) {
		c.confirmed = t0
	}
}

// confirmedAt is the start of the last successful poll (zero: not
// listening).
func (c *recordCache) confirmedAt() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.confirmed
}

// len is how many entries the cache holds.
func (c *recordCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// cloneRecord is a deep copy of r: callers may change what Get returns.
func cloneRecord(r *grant.Record) *grant.Record {
	if r == nil {
		return nil
	}
	c := *r
	if r.Scopes != nil {
		c.Scopes = append([]string(nil), r.Scopes...)
	}
	c.RevokedAt = cloneTime(r.RevokedAt)
	c.DisabledAt = cloneTime(r.DisabledAt)
	c.RefreshedAt = cloneTime(r.RefreshedAt)
	return &c
}

func cloneTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}
