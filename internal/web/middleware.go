package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"example.com/signin"
	"example.com/signin/internal/googlenet"
)

// middleware wraps the router in what every request goes through, in this
// order: the security headers (securityHeaders), an id, a log line and the
// metrics (startRequest, endRequest), a 500 for a panic (recovered), the
// body's bound and the cross-origin check (admit), and a URL in origin
// form (originForm), just before the router.
//
// One handler runs them all rather than a chain of six: each layer of a
// chain is a frame under every handler, and a sign-in's stack, whose
// deepest point is the RSA check, must stay under 8 KiB (see signIn).
func (s *Server) middleware(next http.Handler) http.Handler {
	security := s.securityHeaders()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		security.set(w.Header())
		rec, r := s.startRequest(w, r)
		// Also when the handler panicked with http.ErrAbortHandler: the
		// request is over either way.
		defer s.endRequest(rec, r)
		defer func() {
			if p := recover(); p != nil {
				s.recovered(rec, r, p) // panics again to abort a response begun
			}
			s.logRequest(rec, r)
		}()
		if !s.admit(rec, r) {
			return
		}
		next.ServeHTTP(rec, originForm(r))
	})
}

// originForm gives the router a request URL that is a path and a query,
// never a scheme and host. A request line may carry an absolute URL ("GET
// http://evil.example/a/../b HTTP/1.1": meant for proxies, but any client
// can send it to us), and gorilla/mux's redirect to the cleaned path copies
// the request URL: it answered that request 301 to http://evil.example/b,
// an open redirect. Go's own ServeMux builds such redirects from the path
// alone; this makes gorilla/mux do the same. (Found by issue 6's
// TestHostileNoOpenRedirect.)
func originForm(r *http.Request) *http.Request {
	if r.URL.Scheme != "" || r.URL.Host != "" || r.URL.User != nil {
		u := *r.URL
		u.Scheme, u.Host, u.User = "", "", nil
		r = r.WithContext(r.Context()) // a shallow copy, to own its URL
		r.URL = &u
	}
	return r
}

// policies are the Content-Security-Policy values, built once from where
// GIS is.
type policies struct {
	page     string // every response
	staticJS string // /staticjs, whose JavaScript also calls the People API
}

// newPolicies allows exactly the GIS origins in use (Google's or the
// emulator's), and for /staticjs the People API too. Everything else is
// 'self' or nothing: no inline script or style anywhere.
func newPolicies(n *googlenet.Net) policies {
	o := n.BrowserOrigins()
	img := []string{"'self'", "data:", "https:"}
	if n.Emulated() {
		// Test accounts' pictures are served by the emulator over http.
		img = append(img, "http://"+n.EmulatorHost())
	}
	build := func(connect []string) string {
		directives := [][]string{
			{"default-src", "'self'"},
			append([]string{"script-src", "'self'"}, o.Script...),
			append([]string{"style-src", "'self'"}, o.Style...),
			append([]string{"frame-src"}, o.Frame...),
			append([]string{"connect-src", "'self'"}, connect...),
			append([]string{"img-src"}, img...),
			{"frame-ancestors", "'none'"},
			{"base-uri", "'none'"},
			{"object-src", "'none'"},
			{"form-action", "'self'"},
		}
		parts := make([]string, 0, len(directives))
		for _, d := range directives {
			if len(d) == 1 {
				d = append(d, "'none'")
			}
			parts = append(parts, strings.Join(d, " "))
		}
		return strings.Join(parts, "; ")
	}
	connect := append([]string(nil), o.Connect...)
	staticConnect := connect
	if people := originOf(n.PeopleAPIBase()); people != "" && !contains(connect, people) {
		staticConnect = append(append([]string(nil), connect...), people)
	}
	return policies{page: build(connect), staticJS: build(staticConnect)}
}

// originOf returns scheme://host of u, or "" when u is not absolute.
func originOf(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Scheme == "" || p.Host == "" {
		return ""
	}
	return p.Scheme + "://" + p.Host
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// securityHeaders sets the headers every response carries. Handlers may
// override Cache-Control (static files) and the CSP (/staticjs).
func (s *Server) securityHeaders() fixedHeaders {
	return fixedHeaders{
		{"Content-Security-Policy", []string{s.csp.page}},
		// GIS opens popups that must be able to talk back to this page;
		// plain same-origin would sever the opener and break them.
		{"Cross-Origin-Opener-Policy", []string{"same-origin-allow-popups"}},
		{"X-Content-Type-Options", []string{"nosniff"}},
		// GIS checks the page's origin, which it learns from the Referer:
		// no-referrer breaks it, this sends only the origin cross-site.
		{"Referrer-Policy", []string{"strict-origin-when-cross-origin"}},
		{"X-Frame-Options", []string{"DENY"}},
		{"Cache-Control", []string{"no-store"}},
	}
}

// fixedHeaders are headers every response carries, with one value each.
type fixedHeaders []struct {
	name  string // canonical, as http.Header keys are
	value []string
}

// set gives h the fixed headers. Every response shares their values rather
// than allocating six slices a request (what Header.Set does). Nothing
// changes a value in place: Set and Del replace or drop a key's slice, and
// Add appends to a slice with no room left, which copies it.
func (f fixedHeaders) set(h http.Header) {
	for _, x := range f {
		h[x.name] = x.value[:1:1]
	}
}

type ctxKey int

const requestIDKey ctxKey = iota

// requestID returns the request's id, or "" outside the middleware.
func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// recorder remembers the status and size of a response for the log, and
// the route that answered it for the metrics (set by labelRoute, which
// finds the recorder because every middleware between them passes the
// ResponseWriter on as it is).
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	route  string
	id     string    // the request's
	start  time.Time // when the request came
}

func (rec *recorder) WriteHeader(code int) {
	if rec.status == 0 {
		rec.status = code
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	n, err := rec.ResponseWriter.Write(b)
	rec.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// startRequest gives a request an id (in the context and the X-Request-Id
// header), counts it in the metrics and returns the recorder its answer
// goes through, for endRequest's metrics and logRequest's line. The log
// has the path only: query strings can carry tokens. The metrics have the
// route's template instead, never the path.
func (s *Server) startRequest(w http.ResponseWriter, r *http.Request) (*recorder, *http.Request) {
	s.cfg.Metrics.RequestStarted()
	id := newRequestID()
	w.Header().Set("X-Request-Id", id)
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey, id))
	return &recorder{ResponseWriter: w, id: id, start: time.Now()}, r
}

// endRequest counts an answered request in the metrics.
func (s *Server) endRequest(rec *recorder, r *http.Request) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	s.cfg.Metrics.RequestDone(s.routeLabel(rec, r), r.Method, rec.status, time.Since(rec.start))
}

// logRequest logs an answered request.
func (s *Server) logRequest(rec *recorder, r *http.Request) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if !s.log.Enabled(r.Context(), slog.LevelInfo) {
		return
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
		slog.String("request_id", rec.id),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", rec.status),
		slog.Int64("bytes", rec.bytes),
		slog.Duration("duration", time.Since(rec.start)),
	)
}

// routeUnmatched is the route label of requests no route matches (404,
// 405): their paths are the client's to choose, so they never become
// labels.
const routeUnmatched = "unmatched"

// labelRoute tells endRequest which route answers the request: the mux
// template ("/api/me", "/static/"), never the path. It runs only for
// requests a route matched.
func labelRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rec, ok := w.(*recorder); ok {
			if rt := mux.CurrentRoute(r); rt != nil {
				rec.route, _ = rt.GetPathTemplate()
			}
		}
		next.ServeHTTP(w, r)
	})
}

// routeLabel is the route label of an answered request: the one
// labelRoute saw, else (a request refused before the router: cross-site,
// too large) the route the router would have chosen, else routeUnmatched.
func (s *Server) routeLabel(rec *recorder, r *http.Request) string {
	if rec.route != "" {
		return rec.route
	}
	if s.routes == nil {
		return routeUnmatched
	}
	var m mux.RouteMatch
	if s.routes.Match(r, &m) && m.MatchErr == nil && m.Route != nil {
		if t, err := m.Route.GetPathTemplate(); err == nil {
			return t
		}
	}
	return routeUnmatched
}

// recovered turns a handler's panic p into a logged 500; a panic with
// http.ErrAbortHandler, the server's own way to abort a response, goes on.
func (s *Server) recovered(rec *recorder, r *http.Request, p any) {
	if p == http.ErrAbortHandler {
		panic(p)
	}
	s.log.LogAttrs(r.Context(), slog.LevelError, "panic",
		slog.String("request_id", requestID(r.Context())),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Any("panic", p),
		slog.String("stack", string(debug.Stack())),
	)
	if rec.status != 0 {
		// Part of the response is out; all we can do is cut it.
		panic(http.ErrAbortHandler)
	}
	s.writeError(rec, r, http.StatusInternalServerError, signin.EINTERNAL, "internal error", guessFormat(r))
}

// guessFormat picks the error format for middleware errors, which come
// before any route: an HTML page for browsers navigating, JSON otherwise.
func guessFormat(r *http.Request) errorFormat {
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		return formatHTML
	}
	return formatJSON
}

// admit answers what no route may see, and says whether the request may
// go on: an announced body length over Config.MaxBodyBytes (413), and a
// cross-origin state-changing request (403, crossOrigin). Any other body
// is cut at the limit (handlers see the error as ETOOLARGE through
// parseForm).
func (s *Server) admit(w http.ResponseWriter, r *http.Request) bool {
	if r.ContentLength > s.cfg.MaxBodyBytes {
		s.renderError(w, r, errTooLarge(), guessFormat(r))
		return false
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	}
	if err := s.crossOrigin(r); err != nil {
		s.renderError(w, r, err, formatJSON)
		return false
	}
	return true
}

// errCSRF is the answer to a request that may have been forged by another
// site.
func errCSRF(cause error) error {
	return signin.Wrap(cause, signin.EFORBIDDEN, "csrf", "Cross-site request refused.")
}

// headerRequestedWith is the custom header the pages' XHRs send. A
// cross-origin page cannot send it without a CORS preflight, which this
// server never approves.
const headerRequestedWith = "X-Requested-With"

// crossOrigin refuses cross-origin state-changing requests using Go's
// http.CrossOriginProtection (Sec-Fetch-Site, else Origin against Host;
// GET, HEAD and OPTIONS pass).
//
// Exactly one kind of request is exempt: a POST to /tokensignin without
// X-Requested-With, which is GIS redirect mode. There Google's page posts
// the ID token to our login_uri as a top-level cross-site form submission,
// so it can never pass an origin check; it is protected instead by GIS's
// double-submit cookie, which handleTokenSignin requires (checkGCSRF) for
// every request the exemption lets through. Everything else, including
// /tokensignin XHRs from our own page, gets the origin check.
func (s *Server) crossOrigin(r *http.Request) error {
	if isGISRedirectPost(r) {
		return nil
	}
	if err := s.cop.Check(r); err != nil {
		return errCSRF(err)
	}
	return nil
}

// isGISRedirectPost reports whether r is a GIS redirect-mode sign-in: a
// POST to /tokensignin that does not come from our page's XHR.
func isGISRedirectPost(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Path == "/tokensignin" && r.Header.Get(headerRequestedWith) == ""
}

// requireXHR refuses requests without the X-Requested-With header: the
// second CSRF defence of the routes the pages call with fetch.
func requireXHR(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if r.Header.Get(headerRequestedWith) == "" {
			return signin.Errorf(signin.EFORBIDDEN, "csrf", "Cross-site request refused: the %s header is missing.", headerRequestedWith)
		}
		return h(w, r)
	}
}
