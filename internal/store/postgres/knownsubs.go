package postgres

import (
	"context"
	"errors"
	"hash/maphash"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
)

// The known subs: a set of hashes of the subs (as stored) that may have a
// credentials row, kept with the record cache, so that a Get of a user the
// cache does not hold, and who has no row (most users signing in), is
// answered without a query.
//
// The set is complete, and Get trusts its "not in the set", only when
//   - it was loaded completely since the listener's current LISTEN: the
//     load's snapshot is taken after LISTEN, so every row committed before
//     the snapshot is in it and every one committed after is announced to
//     the listener, which adds its sub (during the load too); and
//   - the cache is trusted (trustWindow): every announcement of a change
//     committed before the start of the last successful poll has been heard.
//
// So a row another process inserts is known here once the listener hears
// of it, the same lag as the row cache's (about 100 ms, at most the trust
// window). A replica's own Update adds its sub when it starts and again
// when it ends (wrote), so the replica reads its own new row at once.
//
// Hashes are only added, never removed (two subs may share one): a deleted
// row costs its user a query, as today, until the next load. An
// announcement of everything (TRUNCATE) discards the set and loads it
// again; a lost listener discards it, and the next LISTEN loads it again.
// Memory is bounded by knownSubsMax: a table with more rows is not kept,
// and every miss of the record cache reads the database, as without a set.

// knownSubsMax is how many subs the set holds at most: 1,000,000 hashes
// take 16 MB (hashSet), next to the record cache's 10 MB.
const knownSubsMax = 1_000_000

const (
	// knownSubsBatch is how many hashes the load adds under one lock.
	knownSubsBatch = 1024
	// knownSubsPerRow is the time the load may take per row beyond
	// Config.Timeout: it reads at least 50,000 rows a second, or fails
	// (a local server streams millions).
	knownSubsPerRow = 20 * time.Microsecond
)

// errStale is a load whose set was discarded meanwhile.
var errStale = errors.New("the set of known subs was discarded during its load")

// subHash is key's hash in the set.
func (c *recordCache) subHash(key string) uint64 { return maphash.String(c.seed, key) }

// mayHaveLocked is whether the set says key may have a row: true unless
// the set is complete (loaded, and the cache trusted: the caller checks)
// and lacks key's hash h.
func (c *recordCache) mayHaveLocked(h uint64) bool {
	if !c.subsReady {
		return true
	}
	return c.subs.has(h)
}

// addSubLocked notes that key may have a row, in the set being kept or
// loaded (none: nothing to note, the next load reads the row).
func (c *recordCache) addSubLocked(key string) {
	if c.subs != nil {
		c.subs.add(c.subHash(key))
	}
}

// mayHave notes that key may have a row: a write of this replica is about
// to create one.
func (c *recordCache) mayHave(key string) {
	if c.subsLimit <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addSubLocked(key)
}

// wrote is drop, and mayHave, in one step: a write of this replica is
// over. The hash is added again here, not only when the write started:
// the set may have been discarded and loaded again in between, by a load
// whose snapshot did not have the row.
func (c *recordCache) wrote(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(key)
	if c.subsLimit > 0 {
		c.addSubLocked(key)
	}
}

// newSubsLocked starts a new, empty, incomplete set, to be loaded (after
// LISTEN, or an announcement of everything), and says so to the loader.
func (c *recordCache) newSubsLocked() {
	if c.subsLimit <= 0 {
		return
	}
	c.subsEpoch++
	c.subs, c.subsReady = new(hashSet), false
	select {
	case c.reload <- struct{}{}:
	default:
	}
}

// listening starts a new set, to be loaded, if there is none: the
// listener's LISTEN has just succeeded. lost discarded the previous one
// when the previous connection ended (it lacks the subs announced while
// nobody listened); the set of this connection is started here, and only
// here, so that a Get never finds a complete set older than the LISTEN.
func (c *recordCache) listening() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subs == nil {
		c.newSubsLocked()
	}
}

// discardSubsLocked keeps no set: the listener is lost (announcements
// with it), or the table is too big.
func (c *recordCache) discardSubsLocked() {
	c.subsEpoch++
	c.subs, c.subsReady = nil, false
}

// toLoad is the set the loader should load (its epoch), if any.
func (c *recordCache) toLoad() (epoch uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.subsEpoch, c.subs != nil && !c.subsReady
}

// addLoaded adds hashes read by the load of epoch; false if that set was
// discarded meanwhile.
func (c *recordCache) addLoaded(epoch uint64, hashes []uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subsEpoch != epoch {
		return false
	}
	for _, h := range hashes {
		c.subs.add(h)
	}
	return true
}

// loaded marks the set of epoch complete; false if it was discarded.
func (c *recordCache) loaded(epoch uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subsEpoch != epoch {
		return false
	}
	c.subsReady = true
	return true
}

// tooMany discards the set of epoch: the table has more rows than the
// bound.
func (c *recordCache) tooMany(epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subsEpoch == epoch {
		c.discardSubsLocked()
	}
}

// subsState is the set's size and whether it is complete (tests).
func (c *recordCache) subsState() (n int, kept, ready bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subs == nil {
		return 0, false, false
	}
	return c.subs.n, true, c.subsReady
}

// hashSet is a set of 64-bit hashes: open addressing with linear probing
// in one slice whose length is a power of two, at most half full. A
// million hashes take 16 MB, less than half of a map[uint64]struct{}'s
// (38 MB measured with Go 1.26), and a lookup probes about two slots.
// Slot 0 means empty, so the hash 0 is kept as 1 (one more collision,
// which a set of "may have a row" allows).
type hashSet struct {
	slots []uint64
	n     int
}

func (s *hashSet) add(h uint64) {
	h = max(h, 1)
	if 2*(s.n+1) > len(s.slots) {
		s.grow()
	}
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return
		case 0:
			s.slots[i] = h
			s.n++
			return
		}
	}
}

func (s *hashSet) has(h uint64) bool {
	if len(s.slots) == 0 {
		return false
	}
	h = max(h, 1)
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return true
		case 0:
			return false
		}
	}
}

func (s *hashSet) grow() {
	old := s.slots
	s.slots, s.n = make([]uint64, max(2*len(old), 1024)), 0
	for _, h := range old {
		if h != 0 {
			s.add(h)
		}
	}
}

// loadSubs loads the sets the listener asks for (after its LISTEN, after
// an announcement of everything) until ctx ends, which is when the
// listener's connection is given up. A failed load is tried again with
// backoff; meanwhile Gets read as without a set.
func (s *Store) loadSubs(ctx context.Context, base *pgconn.Config) {
	c := s.cache
	wait := time.Second
	for {
		epoch, ok := c.toLoad()
		if ok {
			err := s.loadSubsOnce(ctx, base, epoch)
			if ctx.Err() != nil {
				return
			}
			switch {
			case errors.Is(err, errStale):
				continue // a new set is wanted: load it
			case err != nil:
				s.log.Warn("record cache: cannot read the known users; sign-ins of users this replica has not seen read the database",
					"database", s.target, "retry_in", wait, "error", redactErr(err, s.redact).Error())
				select {
				case <-ctx.Done():
					return
				case <-c.reload:
				case <-time.After(wait):
				}
				wait = min(wait*2, time.Minute)
				continue
			}
			wait = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-c.reload:
		}
	}
}

// loadSubsOnce reads every sub into the set of epoch, on a connection of
// its own (the pool's serve requests meanwhile, and one can be dropped
// mid-stream), streamed, with a deadline that grows with the rows read.
// More than subsLimit rows: the set is discarded, and that logged once.
func (s *Store) loadSubsOnce(ctx context.Context, base *pgconn.Config, epoch uint64) error {
	c := s.cache
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	deadline := time.AfterFunc(s.timeout, cancel)
	defer deadline.Stop()

	cfg := base.Copy()
	cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: pc.Conn()}
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		cancel() // a read given up mid-stream: the socket's deadline ends it
		cctx, ccancel := context.WithTimeout(context.Background(), time.Second)
		defer ccancel()
		_ = conn.Close(cctx)
	}()
	// The LIMIT ends the read past the bound by itself.
	rr := conn.ExecParams(ctx, `SELECT sub FROM credentials LIMIT $1`,
		[][]byte{[]byte(strconv.Itoa(c.subsLimit + 1))}, nil, nil, nil)
	batch := make([]uint64, 0, knownSubsBatch)
	n := 0
	for rr.NextRow() {
		n++
		if n > c.subsLimit {
			_, _ = rr.Close()
			c.tooMany(epoch)
			if !s.subsTooMany.Swap(true) {
				s.log.Info("record cache: not keeping the set of known users, the credentials table has more rows than its bound; sign-ins of users this replica has not seen read the database",
					"database", s.target, "rows_more_than", c.subsLimit)
			}
			return nil
		}
		batch = append(batch, maphash.Bytes(c.seed, rr.Values()[0]))
		if len(batch) == knownSubsBatch {
			if !c.addLoaded(epoch, batch) {
				return errStale
			}
			batch = batch[:0]
			deadline.Reset(time.Until(start.Add(s.timeout + time.Duration(n)*knownSubsPerRow)))
		}
	}
	if _, err := rr.Close(); err != nil {
		return err
	}
	if !c.addLoaded(epoch, batch) || !c.loaded(epoch) {
		return errStale
	}
	s.log.Debug("record cache: known users loaded", "database", s.target, "rows", n, "took", time.Since(start))
	return nil
}
