package web

import (
	"container/list"
	"sync"
	"time"
)

// ttlCache is a bounded map whose entries are good for ttl after they were
// put. It is a cache of what the store or Google said, never the truth:
// past ttl an entry is dropped when met. Every entry has the same ttl, so
// the order of puts is the order of expiry: a put drops a few expired
// entries from the old end, and a full cache makes room by dropping the
// oldest entry, expired or not (the one closest to expiring). Every
// operation takes bounded time, whatever the cache holds.
type ttlCache[V any] struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu    sync.Mutex
	m     map[string]*list.Element // of *ttlEntry[V]
	order list.List                // oldest put first
}

type ttlEntry[V any] struct {
	k  string
	v  V
	at time.Time
}

// sweepPerPut bounds the expired entries one put drops besides making
// room: enough to keep ahead of puts, few enough to keep a put cheap.
const sweepPerPut = 4

// newTTLCache returns a cache of at most max entries.
func newTTLCache[V any](ttl time.Duration, max int, now func() time.Time) *ttlCache[V] {
	return &ttlCache[V]{ttl: ttl, max: max, now: now, m: make(map[string]*list.Element)}
}

// get returns k's value if it was put within ttl.
func (c *ttlCache[V]) get(k string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[k]; ok {
		e := el.Value.(*ttlEntry[V])
		if c.now().Sub(e.at) < c.ttl {
			return e.v, true
		}
		c.remove(el)
	}
	var zero V
	return zero, false
}

func (c *ttlCache[V]) put(k string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if el, ok := c.m[k]; ok {
		c.remove(el)
	}
	for range sweepPerPut {
		el := c.order.Front()
		if el == nil || now.Sub(el.Value.(*ttlEntry[V]).at) < c.ttl {
			break
		}
		c.remove(el)
	}
	for len(c.m) >= c.max && c.order.Len() > 0 {
		c.remove(c.order.Front())
	}
	c.m[k] = c.order.PushBack(&ttlEntry[V]{k: k, v: v, at: now})
}

func (c *ttlCache[V]) forget(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[k]; ok {
		c.remove(el)
	}
}

// remove drops el's entry. The caller holds c.mu.
func (c *ttlCache[V]) remove(el *list.Element) {
	delete(c.m, c.order.Remove(el).(*ttlEntry[V]).k)
}
