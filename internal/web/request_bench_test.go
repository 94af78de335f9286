package web

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/oauth2"
	"google.golang.org/api/people/v1"

	"example.com/signin/internal/auth"
	"example.com/signin/internal/auth/authtest"
	"example.com/signin/internal/googlenet"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/grant/granttest"
	"example.com/signin/internal/metrics"
	"example.com/signin/internal/pgtest"
	"example.com/signin/internal/store/file"
	"example.com/signin/internal/store/postgres"
)

// The request benchmarks measure the server's own CPU per request: the
// whole handler chain (security headers, request id and log line, panic
// recovery, body limit, cross-origin check, router, session, store, JSON or
// template) called in-process, with the production logger (text, level
// info) writing to io.Discard and dependencies that answer at once. The
// network is left out on purpose: it costs the same with or without us.

const benchSub = "110169484474386276334"

// benchWriter is a ResponseWriter that keeps the headers and status and
// throws the body away, reused across iterations so that the harness costs
// next to nothing.
type benchWriter struct {
	h      http.Header
	status int
	n      int
}

func newBenchWriter() *benchWriter { return &benchWriter{h: make(http.Header)} }

func (w *benchWriter) Header() http.Header { return w.h }

func (w *benchWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *benchWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.n += len(p)
	return len(p), nil
}

func (w *benchWriter) reset() {
	clear(w.h)
	w.status, w.n = 0, 0
}

// benchConfig is a server Config as cmd/signin builds it (text logs at
// level info), with st as the store and fakes that answer at once for
// Google and the People API. Its Verifier refuses everything; benchmarks
// that verify tokens set a real one.
func benchConfig(b *testing.B, st grant.Store) Config {
	b.Helper()
	refuse := func(context.Context, string) (*auth.Claims, error) { return nil, errSignedOut() }
	google := &fakeGoogle{
		ExchangeFn: func(context.Context, string) (*oauth2.Token, error) { return nil, errSignedOut() },
		RevokeFn:   func(context.Context, string) error { return nil },
	}
	return Config{
		ClientID: testClientID,
		Grants:   grant.New(grant.Config{Store: st, Google: google}),
		Verifier: &fakeVerifier{
			VerifyFn:       func(ctx context.Context, raw, _ string) (*auth.Claims, error) { return refuse(ctx, raw) },
			VerifyCachedFn: refuse,
		},
		Google: google,
		Profiles: &fakeProfiles{FetchProfileFn: func(_ context.Context, rec *grant.Record) (*people.Person, error) {
			return &people.Person{
				ResourceName:   "people/" + rec.Sub,
				Names:          []*people.Name{{DisplayName: "Ada Lovelace", Metadata: &people.FieldMetadata{Primary: true}}},
				EmailAddresses: []*people.EmailAddress{{Value: "ada.lovelace@example.com", Metadata: &people.FieldMetadata{Primary: true}}},
				Photos:         []*people.Photo{{Url: "https://lh3.googleusercontent.com/a/ACg8ocJ-some-long-picture-id=s100", Metadata: &people.FieldMetadata{Primary: true}}},
			}, nil
		}},
		Net:         testNet(b, ""),
		SessionKeys: newTestKeys(b),
		Sessions:    newMemSessions(),
		Logger:      slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
}

func benchNewServer(b *testing.B, cfg Config) *Server {
	b.Helper()
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// serveLoop serves r with h b.N times and fails unless each answer is 200.
func serveLoop(b *testing.B, h http.Handler, r *http.Request) {
	b.Helper()
	w := newBenchWriter()
	b.ReportAllocs()
	for b.Loop() {
		w.reset()
		h.ServeHTTP(w, r)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}

// BenchmarkRequest measures two signed-in requests through the server's
// full chain (server) and, as the baseline, a bare handler that writes the
// same status, Content-Type and body (bare), each called in-process and
// over loopback HTTP (-loopback); server-metrics is server with Prometheus
// metrics on, so its difference from server is what the instrumentation
// costs a request:
//   - api-me: GET /api/me with a session cookie (session decode, a store
//     read, JSON);
//   - index: GET / signed in with offline access (session decode, a store
//     read, the profile from a fake People API, the page template);
//   - api-me-postgres: api-me with the grants and sessions in PostgreSQL
//     (skipped without a database; see internal/pgtest).
func BenchmarkRequest(b *testing.B) {
	benchRequests(b, "", &granttest.Memory{}, newMemSessions(), []string{"api-me", "index"})
	// Grants in PostgreSQL, sessions in memory (what a cookie session
	// costs: no store read) or in PostgreSQL: the ratio of the two is what
	// server-side sessions cost.
	for _, name := range []string{"postgres-grants", "postgres"} {
		b.Run(name, func(b *testing.B) {
			pg, err := postgres.Open(b.Context(), postgres.Config{URL: pgtest.URL(b)})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(pg.Close)
			var sessions SessionStore = pg
			if name == "postgres-grants" {
				sessions = newMemSessions()
			}
			benchRequests(b, "", pg, sessions, []string{"api-me"})
		})
	}
}

func benchRequests(b *testing.B, suffix string, st grant.Store, sessions SessionStore, which []string) {
	if _, err := st.Update(context.Background(), benchSub, func(*grant.Record) (*grant.Record, error) {
		return &grant.Record{Email: "ada.lovelace@example.com", Name: "Ada Lovelace", Status: grant.StatusActive,
			Scopes: []string{"openid", "https://www.googleapis.com/auth/userinfo.email", "https://www.googleapis.com/auth/userinfo.profile"},
			Token:  grant.Token{AccessToken: "ya29.bench", TokenType: "Bearer", RefreshToken: "1//bench", Expiry: time.Now().Add(time.Hour)}}, nil
	}); err != nil {
		b.Fatal(err)
	}
	cfg := benchConfig(b, st)
	cfg.Sessions = sessions
	s := benchNewServer(b, cfg)
	cfg.Metrics = metrics.New(prometheus.NewRegistry())
	sm := benchNewServer(b, cfg) // the same keys and sessions: the same cookie works

	// The session cookie a sign-in would have set.
	_, u := benchSession(b)
	rec := httptest.NewRecorder()
	if err := s.sessions.start(rec, httptest.NewRequest(http.MethodPost, "/tokensignin", nil), u); err != nil {
		b.Fatal(err)
	}
	cookie := rec.Result().Cookies()[0].String()

	for _, tc := range []struct{ name, path, want string }{
		{"api-me", "/api/me", `"offline_status":"active"`},
		{"index", "/", "ada.lovelace@example.com"},
	} {
		if !slices.Contains(which, tc.name) {
			continue
		}
		tc.name += suffix
		r := httptest.NewRequest(http.MethodGet, tc.path, nil)
		r.Header.Set("Cookie", cookie)
		r.Header.Set("Accept", "text/html,application/json;q=0.9,*/*;q=0.8")
		r.Header.Set("Sec-Fetch-Site", "same-origin")

		// What the server answers is what the bare handler writes.
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, r)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), tc.want) {
			b.Fatalf("GET %s: %d %q", tc.path, rec.Code, rec.Body.String())
		}
		body, ctype := bytes.Clone(rec.Body.Bytes()), rec.Header().Get("Content-Type")
		bare := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", ctype)
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(body)
		})

		b.Run(tc.name+"/server", func(b *testing.B) {
			serveLoop(b, s.Handler(), r)
			b.ReportMetric(float64(len(body)), "body-bytes")
		})
		b.Run(tc.name+"/server-metrics", func(b *testing.B) { serveLoop(b, sm.Handler(), r) })
		b.Run(tc.name+"/bare", func(b *testing.B) { serveLoop(b, bare, r) })
		b.Run(tc.name+"/server-loopback", func(b *testing.B) { loopbackLoop(b, s.Handler(), r) })
		b.Run(tc.name+"/bare-loopback", func(b *testing.B) { loopbackLoop(b, bare, r) })
	}
}

// loopbackLoop is serveLoop over real HTTP: h behind a local net/http
// server, called by a keep-alive client in the same process, so ns/op is
// the CPU (and wake-ups) of a whole request on both ends.
func loopbackLoop(b *testing.B, h http.Handler, r *http.Request) {
	b.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := srv.Client()
	req := r.Clone(context.Background())
	req.RequestURI = ""
	req.URL.Scheme, req.URL.Host, req.Host = "http", srv.Listener.Addr().String(), ""
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// instantTokenEndpoint is Google's token endpoint answering at once with a
// pre-minted token response: the HTTP transport of auth.Google in the
// "own" /connect benchmark, so that no network and no Google time is
// counted.
type instantTokenEndpoint []byte

func (t instantTokenEndpoint) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	if r.Method != http.MethodPost || r.URL.String() != googlenet.TokenURL {
		return &http.Response{StatusCode: http.StatusNotFound, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	}
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json; charset=utf-8"}},
		Body:          io.NopCloser(bytes.NewReader(t)),
		ContentLength: int64(len(t)),
		Request:       r,
	}, nil
}

// BenchmarkConnect measures POST /connect (a signed-out user enabling
// offline access, so a session is started too) with the real code exchange
// client (x/oauth2 through auth.Google), the real ID token verification
// (auth.Verifier, keys cached: a first-seen token is fully verified every
// time) and a real store, against a token endpoint that answers at once
// with a pre-minted response. Google's own time is thus zero:
//   - own: the endpoint is an in-memory transport and the store in memory,
//     so ns/op is the server's own time per exchange (the goal: < 1 ms);
//   - loopback-file: the endpoint is a local HTTP server and the store the
//     file store with its fsyncs, which adds what a deployment pays besides
//     Google: one loopback round trip and two fsyncs.
func BenchmarkConnect(b *testing.B) {
	iss := authtest.NewIssuer(b)
	claims := authtest.Claims(testClientID, benchSub)
	claims["email"], claims["name"] = "ada.lovelace@example.com", "Ada Lovelace"
	claims["at_hash"] = "HK6E_P6Dh8Y93mRNtsDB1Q"
	resp := []byte(`{"access_token":"ya29.a0AfB_byBench","expires_in":3599,"refresh_token":"1//0gBenchRefresh",` +
		`"scope":"openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile",` +
		`"token_type":"Bearer","id_token":"` + iss.Sign(nil, claims) + `"}`)

	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write(resp)
	}))
	b.Cleanup(endpoint.Close)
	loopback := testNet(b, strings.TrimPrefix(endpoint.URL, "http://")).HTTPClient()

	for _, tc := range []struct {
		name  string
		hc    *http.Client
		store func(b *testing.B) grant.Store
	}{
		{"own", &http.Client{Transport: instantTokenEndpoint(resp)}, func(*testing.B) grant.Store { return &granttest.Memory{} }},
		{"loopback-file", loopback, func(b *testing.B) grant.Store {
			st, err := file.Open(file.Config{Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			return st
		}},
		{"own-postgres", &http.Client{Transport: instantTokenEndpoint(resp)}, func(b *testing.B) grant.Store {
			pg, err := postgres.Open(b.Context(), postgres.Config{URL: pgtest.URL(b)})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(pg.Close)
			return pg
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			v, err := auth.NewVerifier(auth.VerifierConfig{Audiences: []string{testClientID}, HTTPClient: http.DefaultClient, CertsURL: iss.CertsURL()})
			if err != nil {
				b.Fatal(err)
			}
			st := tc.store(b)
			cfg := benchConfig(b, st)
			if ss, ok := st.(SessionStore); ok {
				cfg.Sessions = ss // the database's sessions with its grants
			}
			cfg.Verifier = v
			cfg.Google = auth.NewGoogle(auth.GoogleConfig{Client: &auth.Client{ID: testClientID, Secret: "bench-secret"}, HTTPClient: tc.hc})
			h := benchNewServer(b, cfg).Handler()
			form := url.Values{"code": {"4/0AbenchCodeFromTheGISCodeClient"}}.Encode()
			w := newBenchWriter()
			connect := func() { benchSignInPost(b, h, w, "/connect", form) }
			connect() // fetch the keys, create the record
			b.ReportAllocs()
			for b.Loop() {
				connect()
			}
			if n := v.KeyFetches(); n != 1 {
				b.Errorf("%d key fetches, want 1", n)
			}
		})
	}
}

// benchSignInPost posts form to path as the page's script does and fails
// the benchmark unless the answer is 200 with a session cookie.
func benchSignInPost(b *testing.B, h http.Handler, w *benchWriter, path, form string) {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set(headerRequestedWith, "XMLHttpRequest")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	w.reset()
	h.ServeHTTP(w, r)
	if w.status != http.StatusOK || len(w.h.Values("Set-Cookie")) == 0 {
		b.Fatalf("POST %s: status %d, cookies %q", path, w.status, w.h.Values("Set-Cookie"))
	}
}

// TestMain stops the throwaway PostgreSQL server the database benchmarks
// may have started.
func TestMain(m *testing.M) { pgtest.Main(m) }

// BenchmarkTokenSignIn is POST /tokensignin in process: the whole handler
// chain with the real verifier (keys cached; the token is verified
// completely every time, as at every sign-in) and the grants in memory, so
// ns/op and allocs/op are the server's own work per sign-in, the part
// bench/signinload's load test compares with a hand-written server. Profile
// it with -cpuprofile.
func BenchmarkTokenSignIn(b *testing.B) {
	iss := authtest.NewIssuer(b)
	claims := authtest.Claims(testClientID, benchSub)
	claims["email"], claims["name"] = "ada.lovelace@example.com", "Ada Lovelace"
	token := iss.Sign(nil, claims)
	v, err := auth.NewVerifier(auth.VerifierConfig{Audiences: []string{testClientID}, HTTPClient: http.DefaultClient, CertsURL: iss.CertsURL()})
	if err != nil {
		b.Fatal(err)
	}
	cfg := benchConfig(b, &granttest.Memory{})
	cfg.Verifier = v
	h := benchNewServer(b, cfg).Handler()
	form := url.Values{"credential": {token}}.Encode()
	w := newBenchWriter()
	signIn := func() { benchSignInPost(b, h, w, "/tokensignin", form) }
	signIn() // fetch the keys
	b.ReportAllocs()
	cpu0 := processCPU(b)
	for b.Loop() {
		signIn()
	}
	// CPU time (every thread, the GC's too) per sign-in: on a shared
	// machine ns/op counts the waits for a core as well.
	b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	if n := v.KeyFetches(); n != 1 {
		b.Errorf("%d key fetches, want 1", n)
	}
}

// processCPU is the user and system CPU time this process has used.
func processCPU(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
