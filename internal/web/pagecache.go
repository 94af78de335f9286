package web

import "sync"

// pageCacheMax bounds the rendered pages kept (a signed-in page is about
// 4 KiB).
const pageCacheMax = 4096

// pageCache keeps rendered pages by the value of everything they show, so
// that a page is executed once per distinct content rather than once per
// view: executing html/template (reflection, escaping) is most of a page
// view's cost. A key is the page's name and a comparable value holding all
// of its data, so an entry is never stale; the bound only limits memory.
// Dev mode, where templates change on disk, does not use it.
type pageCache struct {
	mu sync.Mutex
	m  map[pageKey][]byte
}

type pageKey struct {
	name string
	data any // comparable: all the page's data, by value
}

// cacheable is page data that can say what it shows as a comparable value.
type cacheable interface {
	cacheKey() any
}

func newPageCache() *pageCache { return &pageCache{m: make(map[pageKey][]byte)} }

func (c *pageCache) get(k pageKey) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

func (c *pageCache) put(k pageKey, html []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= pageCacheMax {
		for old := range c.m { // evict about half, arbitrarily
			delete(c.m, old)
			if len(c.m) < pageCacheMax/2 {
				break
			}
		}
	}
	c.m[k] = html
}
