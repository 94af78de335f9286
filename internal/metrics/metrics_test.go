package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"example.com/signin"
	"example.com/signin/internal/metrics"
	"example.com/signin/internal/metrics/metricstest"
)

func TestNilMetricsCountNothing(t *testing.T) {
	var m *metrics.Metrics
	m.RequestStarted()
	m.RequestDone("/", http.MethodGet, 200, time.Millisecond)
	m.SignIn(metrics.SignInButton, nil)
	m.Exchange(nil)
	m.Refresh(nil)
	m.Revocation(nil)
	m.KeyFetch(nil)
	m.VerifiedCache(true)
	m.SessionsEnded(metrics.CauseSignOut, 1)
	m.RISCEvent("sessions-revoked", "ok")
}

func TestOutcome(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, "ok"},
		{signin.Errorf(signin.EINVALID, "invalid_grant", "no"), "invalid_grant"},
		{signin.Errorf(signin.EUPSTREAM, "", "no"), "upstream"},
		{signin.Wrap(context.Canceled, signin.EUPSTREAM, "google_unavailable", "no"), "canceled"},
		{signin.Errorf(signin.EINVALID, "sub_109876543210987654321", "a code that is not ours"), "other"},
		{errors.New("a plain error"), "internal"},
	} {
		if got := metrics.Outcome(tc.err); got != tc.want {
			t.Errorf("Outcome(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// Label values that are not in the closed sets are counted as "other":
// what a client sends cannot make new series.
func TestLabelsAreBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	metrics.RegisterRuntime(reg)
	for i := range 50 {
		m.RequestStarted()
		m.RequestDone("unmatched", fmt.Sprintf("M%d", i), 405, time.Millisecond)
		m.SignIn(fmt.Sprintf("method%d", i), signin.Errorf(signin.EINVALID, fmt.Sprintf("code%d", i), "x"))
		m.RISCEvent(fmt.Sprintf("type%d", i), fmt.Sprintf("outcome%d", i))
		m.SessionsEnded(fmt.Sprintf("cause%d", i), 1)
	}
	fams := metricstest.Gather(t, reg)
	for name, want := range map[string]int{
		"signin_http_requests_total":  1,
		"signin_signins_total":        1,
		"signin_risc_events_total":    1,
		"signin_sessions_ended_total": 1,
	} {
		if got := len(fams[name].GetMetric()); got != want {
			t.Errorf("%s has %d series, want %d", name, got, want)
		}
	}
	if v := fams.Value("signin_http_requests_total", "route", "unmatched", "method", "other", "code", "405"); v != 50 {
		t.Errorf("requests with other methods = %v, want 50", v)
	}
	if v := fams.Value("signin_signins_total", "method", "other", "outcome", "other"); v != 50 {
		t.Errorf("sign-ins = %v, want 50", v)
	}
	if v := fams.Value("signin_http_requests_in_flight"); v != 0 {
		t.Errorf("in flight = %v, want 0", v)
	}
	if fams["go_goroutines"] == nil || fams["process_cpu_seconds_total"] == nil {
		t.Error("the runtime and process collectors are missing")
	}
}

// BenchmarkRequestDone is what the instrumentation adds to each request:
// the in-flight gauge up and down, the counter and the histogram, for a
// route already seen (the steady state).
func BenchmarkRequestDone(b *testing.B) {
	m := metrics.New(prometheus.NewRegistry())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.RequestStarted()
			m.RequestDone("/api/me", http.MethodGet, http.StatusOK, 150*time.Microsecond)
		}
	})
}
