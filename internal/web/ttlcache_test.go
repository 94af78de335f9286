package web

import (
	"fmt"
	"testing"
	"time"
)

func TestTTLCache(t *testing.T) {
	now := time.Unix(1700000000, 0)
	c := newTTLCache[string](time.Second, 4, func() time.Time { return now })
	c.put("a", "A")
	if v, ok := c.get("a"); !ok || v != "A" {
		t.Fatalf("get = %q, %v", v, ok)
	}
	now = now.Add(time.Second)
	if _, ok := c.get("a"); ok {
		t.Error("an entry outlived its ttl")
	}
	for i := range 10 {
		c.put(fmt.Sprint(i), "x")
	}
	if n := len(c.m); n > 4 {
		t.Errorf("%d entries, bound 4", n)
	}
	// The newest puts are kept: a full cache drops the oldest.
	for i := 6; i < 10; i++ {
		if _, ok := c.get(fmt.Sprint(i)); !ok {
			t.Errorf("entry %d, among the four newest, was dropped", i)
		}
	}
	c.forget("9")
	if _, ok := c.get("9"); ok {
		t.Error("forget kept the entry")
	}
}

// A full cache drops expired entries before fresh ones: a fresh entry put
// before a burst of expired ones stays.
func TestTTLCacheDropsExpiredFirst(t *testing.T) {
	now := time.Unix(1700000000, 0)
	c := newTTLCache[string](time.Minute, 4, func() time.Time { return now })
	for i := range 3 {
		c.put(fmt.Sprint("old", i), "x")
	}
	now = now.Add(2 * time.Minute) // the three expire
	c.put("fresh", "F")
	c.put("new", "N")
	c.put("newer", "N")
	if _, ok := c.get("fresh"); !ok {
		t.Error("a fresh entry was dropped while expired ones were there")
	}
	if n := len(c.m); n != 3 {
		t.Errorf("%d entries, want the three fresh ones", n)
	}
}
