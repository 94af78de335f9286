package emulator

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"time"
)

// Fault makes the next requests to one endpoint fail. After Delay (if
// any), the request is answered by the first that applies: Drop closes the
// connection without an answer; Malformed answers truncated JSON with
// Status (200 if zero); Status answers that status with Body (a Google-like
// error body if empty). A fault with only a Delay slows the request down
// and then lets it through.
type Fault struct {
	Endpoint   string        // one of the Endpoint* names
	Count      int           // requests affected; 0 means 1, negative means until Reset
	Status     int           // HTTP status to answer
	Body       string        // response body for Status
	Delay      time.Duration // wait before answering
	Drop       bool          // close the connection instead of answering
	Malformed  bool          // answer JSON cut in the middle
	RetryAfter string        // Retry-After header value
}

func (f Fault) validate() error {
	if !knownEndpoint(f.Endpoint) {
		return fmt.Errorf("unknown endpoint %q (want one of %v)", f.Endpoint, endpointNames)
	}
	if f.Status != 0 && (f.Status < 100 || f.Status > 599) {
		return fmt.Errorf("status %d is not an HTTP status", f.Status)
	}
	if f.Delay < 0 {
		return fmt.Errorf("negative delay")
	}
	if f.Status == 0 && f.Delay == 0 && !f.Drop && !f.Malformed {
		return fmt.Errorf("the fault does nothing: set status, delay, drop or malformed")
	}
	if len(f.Body) > 1<<20 {
		return fmt.Errorf("body over 1 MiB")
	}
	return nil
}

type pendingFault struct {
	Fault
	left int // < 0: forever
}

// faultBox holds queued faults and fixed latencies per endpoint. It has
// its own lock, held only to pop a fault, never while sleeping.
type faultBox struct {
	mu      sync.Mutex
	queue   map[string][]*pendingFault
	latency map[string]time.Duration
}

func newFaultBox() *faultBox {
	return &faultBox{queue: map[string][]*pendingFault{}, latency: map[string]time.Duration{}}
}

func (b *faultBox) add(f Fault) {
	left := f.Count
	if left == 0 {
		left = 1
	}
	b.mu.Lock()
	b.queue[f.Endpoint] = append(b.queue[f.Endpoint], &pendingFault{Fault: f, left: left})
	b.mu.Unlock()
}

// next returns the latency to add and the fault (if any) for one request.
func (b *faultBox) next(endpoint string) (time.Duration, *Fault) {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.latency[endpoint]
	q := b.queue[endpoint]
	if len(q) == 0 {
		return d, nil
	}
	p := q[0]
	f := p.Fault
	if p.left > 0 {
		p.left--
		if p.left == 0 {
			b.queue[endpoint] = q[1:]
			if len(q) == 1 {
				delete(b.queue, endpoint)
			}
		}
	}
	return d, &f
}

func (b *faultBox) setLatency(endpoint string, d time.Duration) {
	b.mu.Lock()
	if d <= 0 {
		delete(b.latency, endpoint)
	} else {
		b.latency[endpoint] = d
	}
	b.mu.Unlock()
}

func (b *faultBox) reset() {
	b.mu.Lock()
	clear(b.queue)
	clear(b.latency)
	b.mu.Unlock()
}

// Stats counts what the emulator answered since it started (or Reset).
type Stats struct {
	Endpoints   map[string]EndpointStats `json:"endpoints"`   // by endpoint name
	Grants      map[string]int           `json:"grants"`      // successful token grants by grant_type
	Revocations int                      `json:"revocations"` // successful revocations at /revoke and GIS revoke
	RISC        RISCStats                `json:"risc"`        // security event deliveries
	Quota       map[string]QuotaStats    `json:"quota"`       // by endpoint: its quota, requests refused for it, per second
}

// EndpointStats counts one endpoint's requests and their statuses. Status 0
// counts dropped connections (Fault.Drop) and requests whose client went
// away during a delay.
type EndpointStats struct {
	Requests int         `json:"requests"`
	Status   map[int]int `json:"status"`
}

type statsBox struct {
	mu          sync.Mutex
	endpoints   map[string]*EndpointStats
	grants      map[string]int
	revocations int
}

func newStatsBox() *statsBox {
	return &statsBox{endpoints: map[string]*EndpointStats{}, grants: map[string]int{}}
}

func (s *statsBox) record(endpoint string, status int) {
	s.mu.Lock()
	es := s.endpoints[endpoint]
	if es == nil {
		es = &EndpointStats{Status: map[int]int{}}
		s.endpoints[endpoint] = es
	}
	es.Requests++
	es.Status[status]++
	s.mu.Unlock()
}

func (s *statsBox) grant(grantType string) {
	s.mu.Lock()
	s.grants[grantType]++
	s.mu.Unlock()
}

func (s *statsBox) revocation() {
	s.mu.Lock()
	s.revocations++
	s.mu.Unlock()
}

func (s *statsBox) snapshot() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Stats{Endpoints: make(map[string]EndpointStats, len(s.endpoints)), Grants: maps.Clone(s.grants), Revocations: s.revocations}
	for k, v := range s.endpoints {
		out.Endpoints[k] = EndpointStats{Requests: v.Requests, Status: maps.Clone(v.Status)}
	}
	return out
}

func (s *statsBox) reset() {
	s.mu.Lock()
	clear(s.endpoints)
	clear(s.grants)
	s.revocations = 0
	s.mu.Unlock()
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// endpoint wraps one of Google's endpoints with latency, faults and
// statistics.
func (e *Emulator) endpoint(name string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		defer func() { e.stats.record(name, sw.status) }() // runs on a Drop's panic too
		if e.refuseForQuota(sw, name) {
			return
		}
		latency, f := e.faults.next(name)
		if f != nil {
			latency += f.Delay
		}
		if !sleep(r.Context(), latency) {
			return
		}
		if f != nil && e.applyFault(sw, name, f) {
			return
		}
		h(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
	})
}

// sleep waits for d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// applyFault answers a request as the fault says; false means the fault was
// only a delay and the request goes on.
func (e *Emulator) applyFault(w http.ResponseWriter, endpoint string, f *Fault) bool {
	if f.Drop {
		// Aborts the response and closes the connection, over HTTP/1 and /2.
		panic(http.ErrAbortHandler)
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.Malformed {
		status := f.Status
		if status == 0 {
			status = http.StatusOK
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"access_token": "ya29.a0AfB_byC`))
		return true
	}
	if f.Status == 0 {
		return false
	}
	if f.Body != "" {
		ct := "text/plain; charset=utf-8"
		if f.Body[0] == '{' || f.Body[0] == '[' {
			ct = "application/json; charset=utf-8"
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(f.Status)
		_, _ = w.Write([]byte(f.Body))
		return true
	}
	if endpoint == EndpointPeople {
		writeAPIError(w, f.Status, rpcStatus(f.Status), defaultAPIMessage(f.Status), "")
		return true
	}
	code, desc := oauthFaultError(f.Status)
	writeOAuthError(w, f.Status, code, desc)
	return true
}

// rpcStatus maps an HTTP status to the google.rpc code name Google's APIs
// put in "status".
func rpcStatus(status int) string {
	switch status {
	case 400:
		return "INVALID_ARGUMENT"
	case 401:
		return "UNAUTHENTICATED"
	case 403:
		return "PERMISSION_DENIED"
	case 404:
		return "NOT_FOUND"
	case 409:
		return "ABORTED"
	case 429:
		return "RESOURCE_EXHAUSTED"
	case 499:
		return "CANCELLED"
	case 501:
		return "UNIMPLEMENTED"
	case 503:
		return "UNAVAILABLE"
	case 504:
		return "DEADLINE_EXCEEDED"
	}
	if status >= 500 {
		return "INTERNAL"
	}
	return "UNKNOWN"
}

func defaultAPIMessage(status int) string {
	switch status {
	case 429:
		return "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute per user' of service 'people.googleapis.com'."
	case 503:
		return "The service is currently unavailable."
	case 500:
		return "Internal error encountered."
	}
	return http.StatusText(status)
}

func oauthFaultError(status int) (code, description string) {
	switch {
	case status == 429:
		return "rate_limit_exceeded", "Rate Limit Exceeded"
	case status == 503:
		return "temporarily_unavailable", "Service Unavailable"
	case status >= 500:
		return "internal_failure", "Backend Error"
	case status == 401:
		return "invalid_client", "Unauthorized"
	}
	return "invalid_request", http.StatusText(status)
}
