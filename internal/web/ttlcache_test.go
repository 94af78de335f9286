package web

import (
	"fmt"
	"testing"
	"time"
)

func TestTTLCache(t *testing.T) {
	now := time.Unix(1700000000, 0)
	c := newTTLCache[string](time.Second, 4, func() time.Time { return now }, nil)
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
	c := newTTLCache[string](time.Minute, 4, func() time.Time { return now }, nil)
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

// forgetGroup drops one group's entries and no other.
func TestTTLCacheForgetGroup(t *testing.T) {
	now := time.Unix(1700000000, 0)
	c := newTTLCache(time.Minute, 100, func() time.Time { return now }, func(sub string) string { return sub })
	c.put("s1", "ada")
	c.put("s2", "ada")
	c.put("s3", "grace")
	c.put("s2", "grace") // s2 moved to another group
	c.forgetGroup("ada")
	if _, ok := c.get("s1"); ok {
		t.Error("forgetGroup kept a member")
	}
	for _, k := range []string{"s2", "s3"} {
		if v, ok := c.get(k); !ok || v != "grace" {
			t.Errorf("%s = %q, %v; want grace's, kept", k, v, ok)
		}
	}
	c.forgetGroup("grace")
	if len(c.m) != 0 || len(c.groups) != 0 || c.order.Len() != 0 {
		t.Errorf("after forgetting every group: %d entries, %d groups, %d in order", len(c.m), len(c.groups), c.order.Len())
	}
}
