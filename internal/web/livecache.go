package web

import (
	"sync"
	"time"
)

// liveCacheMax bounds the sessions a replica remembers having seen live.
const liveCacheMax = 100000

// liveCache remembers, per session id, that this replica saw the session
// live and when, for liveCheckTTL. Entries past their time are dropped when
// met or when the cache is full.
type liveCache struct {
	now func() time.Time

	mu sync.Mutex
	m  map[string]liveEntry
}

type liveEntry struct {
	sub string
	at  time.Time
}

func newLiveCache(now func() time.Time) *liveCache {
	return &liveCache{now: now, m: make(map[string]liveEntry)}
}

// fresh reports whether id was seen live, as sub's, within liveCheckTTL.
func (c *liveCache) fresh(id, sub string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok {
		return false
	}
	if e.sub != sub || c.now().Sub(e.at) >= liveCheckTTL {
		delete(c.m, id)
		return false
	}
	return true
}

func (c *liveCache) put(id, sub string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.m) >= liveCacheMax {
		for k, e := range c.m {
			if now.Sub(e.at) >= liveCheckTTL || len(c.m) >= liveCacheMax {
				delete(c.m, k)
			}
			if len(c.m) < liveCacheMax/2 {
				break
			}
		}
	}
	c.m[id] = liveEntry{sub: sub, at: now}
}

func (c *liveCache) forget(id string) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}

// forgetSub drops every session of sub.
func (c *liveCache) forgetSub(sub string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, e := range c.m {
		if e.sub == sub {
			delete(c.m, id)
		}
	}
}
