package emulator

import (
	"testing"
	"time"
)

// TestQuotaBucket: a quota of 6,000 a minute lets a second's worth (100)
// through at once, refuses the next, and refills at 100 a second; a client
// spreading its calls at the quota's rate is never refused.
func TestQuotaBucket(t *testing.T) {
	now := time.Unix(1000, 0)
	b := newQuotaBox()
	b.now = func() time.Time { return now }
	b.set(Quota{Endpoint: EndpointPeople, PerMinute: 6000})
	for i := range 100 {
		if ok, _ := b.take(EndpointPeople); !ok {
			t.Fatalf("request %d of the first second's worth refused", i)
		}
	}
	ok, wait := b.take(EndpointPeople)
	if ok || wait <= 0 || wait > 10*time.Millisecond {
		t.Fatalf("the 101st at once: ok=%v wait=%v, want refused for 10ms at most", ok, wait)
	}
	for i := range 6000 { // a minute at the quota's rate
		now = now.Add(10 * time.Millisecond)
		if ok, _ := b.take(EndpointPeople); !ok {
			t.Fatalf("paced request %d refused", i)
		}
	}
	if s := b.snapshot()[EndpointPeople]; s.Refused != 1 || s.PerMinute != 6000 {
		t.Errorf("stats %+v", s)
	}
	if ok, _ := b.take(EndpointToken); !ok {
		t.Error("no quota on the token endpoint, but refused")
	}
}
