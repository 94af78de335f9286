package auth

import (
	"sync"
	"time"
)

// verifiedCache remembers verified tokens for VerifyCached, keyed by the
// token's SHA-256 (so the cache holds no bearer tokens). It is bounded, each
// entry dies at its token's exp, and a full shard evicts a random entry
// (preferring an expired one): simple, O(1), and good enough for a cache
// whose entries live an hour at most. Shards keep concurrent lookups from
// queueing on one mutex.
type verifiedCache struct {
	shards   []cacheShard
	mask     byte
	perShard int
}

type cacheShard struct {
	mu sync.Mutex
	m  map[[32]byte]*Claims // an entry expires at its ExpiresAt; never modified
	_  [48]byte             // pad to 64 bytes, a cache line on common CPUs, so neighbouring shards' locks do not share one
}

func newVerifiedCache(size int) *verifiedCache {
	n := 16
	if size < 16*16 {
		n = 1 // small caches: one shard, so the bound is exact
	}
	c := &verifiedCache{shards: make([]cacheShard, n), mask: byte(n - 1), perShard: size / n}
	for i := range c.shards {
		c.shards[i].m = make(map[[32]byte]*Claims)
	}
	return c
}

// get returns a copy of the claims cached for key, if they have not expired
// at now.
func (c *verifiedCache) get(key *[32]byte, now time.Time) (*Claims, bool) {
	s := &c.shards[key[0]&c.mask]
	s.mu.Lock()
	e, ok := s.m[*key]
	if ok && !now.Before(e.ExpiresAt) {
		delete(s.m, *key)
		ok = false
	}
	s.mu.Unlock()
	if !ok {
		return nil, false
	}
	cp := *e
	return &cp, true
}

// put caches claims, which the caller must not modify afterwards, under key.
func (c *verifiedCache) put(key *[32]byte, claims *Claims, now time.Time) {
	if !now.Before(claims.ExpiresAt) {
		return
	}
	s := &c.shards[key[0]&c.mask]
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[*key]; !ok && len(s.m) >= c.perShard {
		s.evictOne(now)
	}
	s.m[*key] = claims
}

// evictOne deletes one entry. Go randomises map iteration order, so the
// first few entries seen are a random sample: an expired one among them
// goes, else the first.
func (s *cacheShard) evictOne(now time.Time) {
	var victim [32]byte
	seen := 0
	for k, e := range s.m {
		if seen == 0 || !now.Before(e.ExpiresAt) {
			victim = k
			if seen > 0 {
				break
			}
		}
		if seen++; seen == 8 {
			break
		}
	}
	delete(s.m, victim)
}

// len returns the number of entries, expired or not.
func (c *verifiedCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
