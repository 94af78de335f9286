// Package metrics owns the app's Prometheus collectors: what the web
// server, Google calls and the verifier count, with a small method for each
// thing counted. Every label value comes from a closed, documented set
// (route templates, methods, the error vocabulary's codes), never from a
// user id or a message, so the number of series stays bounded whatever
// clients send.
//
// A nil *Metrics is valid and counts nothing: packages take one in their
// Config and need no check. The collectors live in a prometheus.Registry
// the caller creates (there is no global registry); Handler serves it.
package metrics

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"example.com/signin"
)

// Namespace prefixes every metric of the app.
const Namespace = "signin"

// Metrics is the app's collectors. Its methods are safe for concurrent use,
// and do nothing on a nil *Metrics.
type Metrics struct {
	httpRequests  *prometheus.CounterVec
	httpDuration  *prometheus.HistogramVec
	httpInFlight  prometheus.Gauge
	signIns       *prometheus.CounterVec
	exchanges     *prometheus.CounterVec
	refreshes     *prometheus.CounterVec
	revocations   *prometheus.CounterVec
	keyFetches    *prometheus.CounterVec
	verifiedCache *prometheus.CounterVec
	sessionsEnded *prometheus.CounterVec
	riscEvents    *prometheus.CounterVec

	// series caches each request label set's counter and histogram
	// (requestKey to *requestSeries), so that a request costs one map
	// lookup instead of hashing its labels into two vectors. Its size is
	// bounded by the label sets, which are closed.
	series sync.Map
}

type requestKey struct {
	route, method string
	code          int
}

type requestSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// New creates the app's collectors and registers them with reg. It panics
// if reg already holds collectors of the same names, which is a
// programming error (one Metrics per registry).
func New(reg prometheus.Registerer) *Metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	}
	m := &Metrics{
		httpRequests: counter("http_requests_total",
			"HTTP requests answered, by route template, method and status code.", "route", "method", "code"),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route template and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		httpInFlight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "http_requests_in_flight",
			Help: "HTTP requests being answered."}),
		signIns: counter("signins_total",
			"Sign-in attempts, by method (button, redirect, connect, bearer) and outcome.", "method", "outcome"),
		exchanges: counter("code_exchanges_total",
			"One-time code exchanges at Google's token endpoint, by outcome.", "outcome"),
		refreshes: counter("token_refreshes_total",
			"Refresh token grants at Google's token endpoint, by outcome.", "outcome"),
		revocations: counter("revocations_total",
			"Grant revocations at Google's revoke endpoint, by outcome.", "outcome"),
		keyFetches: counter("key_fetches_total",
			"Fetches of Google's signing keys (ID tokens and RISC), by outcome.", "outcome"),
		verifiedCache: counter("verified_token_cache_requests_total",
			"Lookups in the cache of verified bearer ID tokens, by result (hit, miss).", "result"),
		sessionsEnded: counter("sessions_ended_total",
			"Sessions ended on the server, by cause (signout, signout_everywhere, disconnect, risc).", "cause"),
		riscEvents: counter("risc_events_total",
			"Cross-Account Protection (RISC) events received, by type and outcome.", "type", "outcome"),
	}
	reg.MustRegister(m.httpRequests, m.httpDuration, m.httpInFlight, m.signIns, m.exchanges, m.refreshes,
		m.revocations, m.keyFetches, m.verifiedCache, m.sessionsEnded, m.riscEvents)
	return m
}

// RegisterRuntime registers Go's runtime collector and the process
// collector (CPU, memory, file descriptors) with reg: the go_* and
// process_* metrics every Go service exports.
func RegisterRuntime(reg prometheus.Registerer) {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// Handler serves reg's metrics in the Prometheus exposition formats. Mount
// it on its own listener, never on the public one.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, MaxRequestsInFlight: 4, Timeout: 10 * time.Second})
}

// Mux serves Handler(reg) at GET /metrics and nothing else.
func Mux(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", Handler(reg))
	return mux
}

// Sign-in methods (the method label of signin_signins_total).
const (
	SignInButton   = "button"   // the page's GIS button, POST /tokensignin by XHR
	SignInRedirect = "redirect" // GIS redirect mode, POST /tokensignin by form
	SignInConnect  = "connect"  // POST /connect signed out: sign-in and offline access in one
	SignInBearer   = "bearer"   // Authorization: Bearer <ID token> on an API call
)

// Causes of ended sessions (the cause label of signin_sessions_ended_total).
const (
	CauseSignOut           = "signout"
	CauseSignOutEverywhere = "signout_everywhere"
	CauseDisconnect        = "disconnect"
	CauseRISC              = "risc"
)

// Outcomes that are not error codes.
const (
	OutcomeOK       = "ok"
	OutcomeCanceled = "canceled" // the caller went away, or its deadline passed, first
	OutcomeOther    = "other"    // an error code outside the closed set
)

// outcomes is the closed set of outcome label values: "ok", the error
// vocabulary's kinds and the codes the app's packages return, and a few of
// RISC's. Anything else is counted as "other".
var outcomes = set(
	OutcomeOK, OutcomeCanceled, OutcomeOther,
	// Kinds, for errors without a code.
	signin.EINVALID, signin.EUNAUTHORIZED, signin.EFORBIDDEN, signin.ENOTFOUND, signin.ECONFLICT,
	signin.ETOOLARGE, signin.ETIMEOUT, signin.EUPSTREAM, signin.EUNAVAILABLE, signin.EINTERNAL,
	// Codes.
	"invalid_token", "invalid_grant", "invalid_code", "invalid_request", "invalid_client", "invalid_sub",
	"google_unavailable", "google_client_misconfigured", "google_request_rejected", "no_id_token",
	"rate_limited", "timeout", "people_unauthorized", "insufficient_scope",
	"offline_access_required", "offline_access_revoked", "reconnect_required", "corrupt_record",
	"account_mismatch", "account_disabled", "csrf", "signed_out", "too_large",
	"store_unavailable", "database_unavailable", "record_busy", "request_timeout",
	// RISC: what the server did about an event.
	"invalid_set", "duplicate", "sessions_ended", "no_sessions", "grant_revoked", "no_match",
	"disabled", "enabled", "unknown_user", "no_subject", "logged",
)

// riscTypes is the closed set of RISC event types: Google's short names.
var riscTypes = set(
	"sessions-revoked", "tokens-revoked", "token-revoked", "account-disabled", "account-enabled",
	"account-credential-change-required", "verification",
)

func set(vs ...string) map[string]bool {
	m := make(map[string]bool, len(vs))
	for _, v := range vs {
		m[v] = true
	}
	return m
}

// Outcome is the outcome label for err: "ok" for nil, "canceled" when the
// context ended first, else err's code (signin.ErrorCode) when it is in the
// closed set, else "other".
func Outcome(err error) string {
	if err == nil {
		return OutcomeOK
	}
	if errors.Is(err, context.Canceled) {
		return OutcomeCanceled
	}
	return outcomeLabel(signin.ErrorCode(err))
}

func outcomeLabel(code string) string {
	if outcomes[code] {
		return code
	}
	return OutcomeOther
}

// methodLabel bounds the method label: a client may send any token as a
// method.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return OutcomeOther
}

// RequestStarted counts a request in flight; call RequestDone when it is
// answered.
func (m *Metrics) RequestStarted() {
	if m == nil {
		return
	}
	m.httpInFlight.Inc()
}

// RequestDone records an answered request: route is the router's template
// for it (such as "/api/me"), never the raw path.
func (m *Metrics) RequestDone(route, method string, code int, d time.Duration) {
	if m == nil {
		return
	}
	m.httpInFlight.Dec()
	key := requestKey{route, methodLabel(method), code}
	s, ok := m.series.Load(key)
	if !ok {
		s, _ = m.series.LoadOrStore(key, &requestSeries{
			count:    m.httpRequests.WithLabelValues(key.route, key.method, strconv.Itoa(code)),
			duration: m.httpDuration.WithLabelValues(key.route, key.method),
		})
	}
	rs := s.(*requestSeries)
	rs.count.Inc()
	rs.duration.Observe(d.Seconds())
}

// SignIn records a sign-in attempt by method (SignInButton...) and its
// result: nil for a sign-in, else the error refusing it.
func (m *Metrics) SignIn(method string, err error) {
	if m == nil {
		return
	}
	switch method {
	case SignInButton, SignInRedirect, SignInConnect, SignInBearer:
	default:
		method = OutcomeOther
	}
	m.signIns.WithLabelValues(method, Outcome(err)).Inc()
}

// Exchange records a code exchange at Google and its result.
func (m *Metrics) Exchange(err error) {
	if m == nil {
		return
	}
	m.exchanges.WithLabelValues(Outcome(err)).Inc()
}

// Refresh records a refresh token grant at Google and its result.
func (m *Metrics) Refresh(err error) {
	if m == nil {
		return
	}
	m.refreshes.WithLabelValues(Outcome(err)).Inc()
}

// Revocation records a revocation at Google and its result.
func (m *Metrics) Revocation(err error) {
	if m == nil {
		return
	}
	m.revocations.WithLabelValues(Outcome(err)).Inc()
}

// KeyFetch records a fetch of Google's signing keys and its result.
func (m *Metrics) KeyFetch(err error) {
	if m == nil {
		return
	}
	m.keyFetches.WithLabelValues(Outcome(err)).Inc()
}

// VerifiedCache records a lookup in the verified-token cache.
func (m *Metrics) VerifiedCache(hit bool) {
	if m == nil {
		return
	}
	result := "miss"
	if hit {
		result = "hit"
	}
	m.verifiedCache.WithLabelValues(result).Inc()
}

// SessionsEnded records n sessions ended for cause (CauseSignOut...).
func (m *Metrics) SessionsEnded(cause string, n int) {
	if m == nil || n <= 0 {
		return
	}
	switch cause {
	case CauseSignOut, CauseSignOutEverywhere, CauseDisconnect, CauseRISC:
	default:
		cause = OutcomeOther
	}
	m.sessionsEnded.WithLabelValues(cause).Add(float64(n))
}

// RISCEvent records a RISC event: typ is Google's short name of its type
// (auth.EventSessionsRevoked...; anything else, and a token that did not
// verify, counts as "other"), outcome what the server did ("duplicate" for
// a jti seen before, "sessions_ended", "grant_revoked", "disabled",
// "logged", ...) or the error code that stopped it ("invalid_set",
// "google_unavailable", ...).
func (m *Metrics) RISCEvent(typ, outcome string) {
	if m == nil {
		return
	}
	if !riscTypes[typ] {
		typ = OutcomeOther
	}
	m.riscEvents.WithLabelValues(typ, outcomeLabel(outcome)).Inc()
}
