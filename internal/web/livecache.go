package web

import "time"

// liveCacheMax bounds the sessions a replica remembers having seen live.
const liveCacheMax = 100000

// liveCache remembers, per session id, that this replica saw the session
// live, as whose, for liveCheckTTL.
type liveCache struct{ c *ttlCache[string] }

func newLiveCache(now func() time.Time) *liveCache {
	return &liveCache{newTTLCache(liveCheckTTL, liveCacheMax, now, func(sub string) string { return sub })}
}

// fresh reports whether id was seen live, as sub's, within liveCheckTTL.
func (l *liveCache) fresh(id, sub string) bool {
	got, ok := l.c.get(id)
	return ok && got == sub
}

func (l *liveCache) put(id, sub string) { l.c.put(id, sub) }
func (l *liveCache) forget(id string)   { l.c.forget(id) }

// forgetSub drops every session of sub (the cache groups sessions by
// user, so this costs sub's sessions, not everyone's).
func (l *liveCache) forgetSub(sub string) { l.c.forgetGroup(sub) }
