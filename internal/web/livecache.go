package web

import "time"

// liveCacheMax bounds the sessions a replica remembers having seen live.
const liveCacheMax = 100000

// liveCache remembers, per session id, that this replica saw the session
// live, as whose, for liveCheckTTL.
type liveCache struct{ c *ttlCache[string] }

func newLiveCache(now func() time.Time) *liveCache {
	return &liveCache{newTTLCache[string](liveCheckTTL, liveCacheMax, now)}
}

// fresh reports whether id was seen live, as sub's, within liveCheckTTL.
func (l *liveCache) fresh(id, sub string) bool {
	got, ok := l.c.get(id)
	return ok && got == sub
}

func (l *liveCache) put(id, sub string) { l.c.put(id, sub) }
func (l *liveCache) forget(id string)   { l.c.forget(id) }

// forgetSub drops every session of sub.
func (l *liveCache) forgetSub(sub string) { l.c.forgetIf(func(s string) bool { return s == sub }) }
