package web

import "time"

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
type profileCache struct{ c *ttlCache[*profileView] }

func newProfileCache(now func() time.Time) *profileCache {
	return &profileCache{newTTLCache[*profileView](profileCacheTTL, profileCacheMax, now)}
}

// get returns sub's profile if it was fetched within profileCacheTTL.
func (p *profileCache) get(sub string) *profileView {
	v, _ := p.c.get(sub)
	return v
}

func (p *profileCache) put(sub string, v *profileView) { p.c.put(sub, v) }

// forget drops sub's profile (their grant changed).
func (p *profileCache) forget(sub string) { p.c.forget(sub) }
