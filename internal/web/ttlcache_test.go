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
	c.put("b", "B")
	c.put("c", "C")
	c.forgetIf(func(v string) bool { return v == "B" })
	if _, ok := c.get("b"); ok {
		t.Error("forgetIf kept a match")
	}
	if _, ok := c.get("c"); !ok {
		t.Error("forgetIf dropped another entry")
	}
}
