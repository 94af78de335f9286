package web

import (
	"sync"
	"time"
)

// ttlCache is a bounded map whose entries are good for ttl after they were
// put. It is a cache of what the store or Google said, never the truth:
// past ttl an entry is dropped when met, and a full cache drops expired
// entries first, then arbitrary ones, down to half its bound.
type ttlCache[V any] struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu sync.Mutex
	m  map[string]ttlEntry[V]
}

type ttlEntry[V any] struct {
	v  V
	at time.Time
}

func newTTLCache[V any](ttl time.Duration, max int, now func() time.Time) *ttlCache[V] {
	return &ttlCache[V]{ttl: ttl, max: max, now: now, m: make(map[string]ttlEntry[V])}
}

// get returns k's value if it was put within ttl.
func (c *ttlCache[V]) get(k string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if ok && c.now().Sub(e.at) < c.ttl {
		return e.v, true
	}
	if ok {
		delete(c.m, k)
	}
	var zero V
	return zero, false
}

func (c *ttlCache[V]) put(k string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.m) >= c.max {
		for old, e := range c.m {
			if now.Sub(e.at) >= c.ttl || len(c.m) >= c.max {
				delete(c.m, old)
			}
			if len(c.m) < c.max/2 {
				break
			}
		}
	}
	c.m[k] = ttlEntry[V]{v: v, at: now}
}

func (c *ttlCache[V]) forget(k string) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}

// forgetIf drops every entry whose value matches.
func (c *ttlCache[V]) forgetIf(match func(V) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		if match(e.v) {
			delete(c.m, k)
		}
	}
}
