package web

import (
	"sync"
	"time"
)

// Bounds of the page's profile cache.
const (
	// profileCacheTTL is how long a profile fetched for the page is shown
	// without asking Google again. The page still reads the user's record
	// on every view, so a disconnected or revoked grant shows at once;
	// only a name or photo changed at Google shows this late.
	profileCacheTTL = time.Minute
	// profileCacheMax bounds the entries (a few hundred bytes each).
	profileCacheMax = 10000
)

// profileCache keeps the profile views the page fetched, per user, briefly.
// It is per process: replicas each keep their own, which only costs a
// People API call each.
type profileCache struct {
	now func() time.Time

	mu sync.Mutex
	m  map[string]profileEntry
}

type profileEntry struct {
	v  *profileView
	at time.Time
}

func newProfileCache(now func() time.Time) *profileCache {
	return &profileCache{now: now, m: make(map[string]profileEntry)}
}

// get returns sub's profile if it was fetched within profileCacheTTL.
func (c *profileCache) get(sub string) *profileView {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[sub]
	if !ok {
		return nil
	}
	if c.now().Sub(e.at) >= profileCacheTTL {
		delete(c.m, sub)
		return nil
	}
	return e.v
}

// put keeps v for sub. When full, expired entries go first, then arbitrary
// ones: the cache only saves People API calls, it is never the truth.
func (c *profileCache) put(sub string, v *profileView) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.m) >= profileCacheMax {
		for k, e := range c.m {
			if now.Sub(e.at) >= profileCacheTTL || len(c.m) >= profileCacheMax {
				delete(c.m, k)
			}
			if len(c.m) < profileCacheMax/2 {
				break
			}
		}
	}
	c.m[sub] = profileEntry{v: v, at: now}
}

// forget drops sub's profile (their grant changed).
func (c *profileCache) forget(sub string) {
	c.mu.Lock()
	delete(c.m, sub)
	c.mu.Unlock()
}
