package web

import (
	"sync"
	"time"
)

// endsCacheMax bounds the users whose ended sessions a replica remembers.
const endsCacheMax = 100000

// userEnds is what the SessionStore said ended a user's sessions.
type userEnds struct {
	validAfter time.Time
	ended      map[string]struct{} // keys (sessionKeyOf) of single sessions
}

func newUserEnds(validAfter time.Time, ended []string) *userEnds {
	e := &userEnds{validAfter: validAfter}
	if len(ended) > 0 {
		e.ended = make(map[string]struct{}, len(ended))
		for _, k := range ended {
			e.ended[k] = struct{}{}
		}
	}
	return e
}

// ends reports whether u's session is ended.
func (e *userEnds) ends(u sessionUser) bool {
	if !e.validAfter.IsZero() && !u.SignedInAt.After(e.validAfter) {
		return true
	}
	if e.ended == nil {
		return false
	}
	_, ok := e.ended[sessionKeyOf(u.ID)]
	return ok
}

// endsCache remembers, per user, what the SessionStore said of their ended
// sessions, for liveCheckTTL. A change made on this replica takes effect
// here at once: changed drops the user's entry, and an answer read from the
// store while a change was being made is not kept (generation), since it
// may predate the change.
type endsCache struct {
	c *ttlCache[*userEnds]

	mu  sync.Mutex
	gen uint64
}

func newEndsCache(now func() time.Time) *endsCache {
	return &endsCache{c: newTTLCache[*userEnds](liveCheckTTL, endsCacheMax, now)}
}

func (l *endsCache) get(sub string) (*userEnds, bool) { return l.c.get(sub) }

// generation is to be read before asking the store, and given to put.
func (l *endsCache) generation() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gen
}

// put keeps what the store said of sub, unless a change was made on this
// replica since gen was read.
func (l *endsCache) put(sub string, e *userEnds, gen uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if gen == l.gen {
		l.c.put(sub, e)
	}
}

// changed is called after this replica ended sessions of sub.
func (l *endsCache) changed(sub string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gen++
	l.c.forget(sub)
}
