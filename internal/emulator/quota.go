package emulator

import (
	"fmt"
	"maps"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Quotas, as Google enforces them on a project: a limit of requests per
// minute on an endpoint (the People API's "Read requests per minute", the
// token endpoint's), past which Google answers 429 RESOURCE_EXHAUSTED.
// Google counts a per-minute quota over short windows, so a burst is
// refused even when the minute's total would fit: the emulator keeps a
// token bucket per endpoint, refilled at PerMinute/60 a second and holding
// at most one second's worth (PerMinute/60, at least 1). A client that
// spreads its calls evenly at the quota's rate is never refused; one that
// sends a minute's quota at once is refused all but a second's worth.
//
// Quotas run on the real clock (not the emulator's shifted one).

// Quota is a per-minute limit on one endpoint. PerMinute 0 lifts it.
type Quota struct {
	Endpoint  string `json:"endpoint"`
	PerMinute int    `json:"per_minute"`
}

func (q Quota) validate() error {
	if q.Endpoint != EndpointPeople && q.Endpoint != EndpointToken {
		return fmt.Errorf("quota on endpoint %q: quotas are on %q and %q", q.Endpoint, EndpointPeople, EndpointToken)
	}
	if q.PerMinute < 0 {
		return fmt.Errorf("quota on %q: negative per_minute", q.Endpoint)
	}
	return nil
}

// QuotaStats counts one endpoint's requests refused for quota, and the
// requests it let through in each second (Unix seconds), for the last
// quotaSeconds seconds: how flat a client's rate is.
type QuotaStats struct {
	PerMinute int           `json:"per_minute"`
	Refused   int           `json:"refused"`
	PerSecond map[int64]int `json:"per_second,omitempty"`
}

// quotaSeconds is how many seconds of per-second counts are kept.
const quotaSeconds = 600

type bucket struct {
	perMinute int
	tokens    float64
	at        time.Time
}

type quotaBox struct {
	mu        sync.Mutex
	now       func() time.Time
	buckets   map[string]*bucket
	refused   map[string]int
	perSecond map[string]map[int64]int
}

func newQuotaBox() *quotaBox {
	b := &quotaBox{now: time.Now}
	b.reset()
	return b
}

func (b *quotaBox) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buckets = map[string]*bucket{}
	b.refused = map[string]int{}
	b.perSecond = map[string]map[int64]int{}
}

// set sets (or, with PerMinute 0, lifts) a quota. A new limit starts with a
// full bucket.
func (b *quotaBox) set(q Quota) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if q.PerMinute == 0 {
		delete(b.buckets, q.Endpoint)
		return
	}
	b.buckets[q.Endpoint] = &bucket{perMinute: q.PerMinute, tokens: burst(q.PerMinute), at: b.now()}
}

// burst is a bucket's size: one second's worth of the quota, at least 1.
func burst(perMinute int) float64 { return max(1, float64(perMinute)/60) }

// take takes one request from endpoint's quota. When there is none left it
// returns false and how long until there is.
func (b *quotaBox) take(endpoint string) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	bk := b.buckets[endpoint]
	if bk == nil {
		return true, 0
	}
	now := b.now()
	rate := float64(bk.perMinute) / 60 // a second
	bk.tokens = min(burst(bk.perMinute), bk.tokens+now.Sub(bk.at).Seconds()*rate)
	bk.at = now
	if bk.tokens < 1 {
		b.refused[endpoint]++
		return false, time.Duration((1 - bk.tokens) / rate * float64(time.Second))
	}
	bk.tokens--
	sec := now.Unix()
	ps := b.perSecond[endpoint]
	if ps == nil {
		ps = map[int64]int{}
		b.perSecond[endpoint] = ps
	}
	ps[sec]++
	delete(ps, sec-quotaSeconds)
	return true, 0
}

func (b *quotaBox) snapshot() map[string]QuotaStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]QuotaStats{}
	for _, ep := range []string{EndpointPeople, EndpointToken} {
		s := QuotaStats{Refused: b.refused[ep]}
		if bk := b.buckets[ep]; bk != nil {
			s.PerMinute = bk.perMinute
		}
		if ps := b.perSecond[ep]; len(ps) > 0 {
			s.PerSecond = maps.Clone(ps)
		}
		if s.PerMinute != 0 || s.Refused != 0 || s.PerSecond != nil {
			out[ep] = s
		}
	}
	return out
}

// SetQuota sets a per-minute quota on the People API or the token endpoint
// (PerMinute 0 lifts it).
func (e *Emulator) SetQuota(q Quota) error {
	if err := q.validate(); err != nil {
		return err
	}
	e.quotas.set(q)
	return nil
}

// refuseForQuota answers a request past its endpoint's quota as Google
// does, and reports whether it did: a 429 with Retry-After; for the People
// API Google's JSON error (status RESOURCE_EXHAUSTED, an ErrorInfo detail
// with reason RATE_LIMIT_EXCEEDED), for the token endpoint OAuth's
// (rate_limit_exceeded).
func (e *Emulator) refuseForQuota(w http.ResponseWriter, endpoint string) bool {
	ok, wait := e.quotas.take(endpoint)
	if ok {
		return false
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(max(wait, time.Second).Seconds()))))
	if endpoint == EndpointPeople {
		writeAPIError(w, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED",
			"Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute' of service 'people.googleapis.com' for consumer 'project_number:000000000000'.",
			"RATE_LIMIT_EXCEEDED")
		return true
	}
	writeOAuthError(w, http.StatusTooManyRequests, "rate_limit_exceeded", "Rate Limit Exceeded")
	return true
}

// ctlQuota is POST /emulator/v1/quota {"endpoint":"people","per_minute":6000}.
func (e *Emulator) ctlQuota(w http.ResponseWriter, r *http.Request) {
	var q Quota
	if !decode(w, r, &q) {
		return
	}
	if err := e.SetQuota(q); err != nil {
		writeControlError(w, http.StatusBadRequest, "invalid_argument", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, q)
}
