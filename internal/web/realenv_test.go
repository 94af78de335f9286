package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"example.com/signin"
	"example.com/signin/internal/auth"
	"example.com/signin/internal/auth/authtest"
	"example.com/signin/internal/emulator"
	"example.com/signin/internal/googlenet"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/metrics"
	"example.com/signin/internal/offline"
	"example.com/signin/internal/store/file"
)

// The adversarial tests (hostile_test.go, faults_test.go,
// concurrency_test.go, secrets_test.go) run against realEnv: the server's
// whole handler chain over HTTP, wired as cmd/signin wires it (auth's
// Verifier and Google, the file store in a temporary directory, offline's
// Fetcher for profiles) to the emulator standing for Google. Only the
// browser is played by the tests. Every component logs into one buffer, so
// that a test can search everything that was logged.

// realConfig changes a realEnv from its defaults.
type realConfig struct {
	// Emulator configures the emulator; its Logger is always the env's.
	Emulator emulator.Config
	// GoogleTimeout bounds each call to Google (googlenet's client, and
	// the Fetcher's per-attempt timeout). Zero means 3 s: short, so that a
	// "slow Google" test does not wait for the production 15 s.
	GoogleTimeout time.Duration
	// HostedDomain, when set, makes the Verifier require it.
	HostedDomain string
	// MaxBodyBytes is the server's body limit; zero is its default.
	MaxBodyBytes int64
	// Metrics, when set, counts for the server and its Google calls.
	Metrics *metrics.Metrics
	// StoreFaults, when set, sits between the server and the file store
	// and fails the writes it is told to.
	StoreFaults *storeFaults
}

// realEnv is the server wired to the emulator.
type realEnv struct {
	*testEnv // browser() and logs; its fakes are not used
	emu      *emulator.Emulator
	emuURL   string
	net      *googlenet.Net
	google   *auth.Google
	fetcher  *offline.Fetcher
	files    *file.Store
	dir      string
	clock    *authtest.Clock // the Verifier's clock: key refetch intervals
	verifier *auth.Verifier
	keys     [][]byte // the session keys
	logger   *slog.Logger
	timeout  time.Duration // per call to Google
	// issued holds every secret of the run: the tokens the emulator
	// issued, the codes and ID tokens minted, the session cookies set,
	// the client secret and the session keys (see secrets_test.go).
	issued *secretSet
}

// newRealEnv starts the emulator and the server. cfg may be nil.
func newRealEnv(t *testing.T, cfg *realConfig) *realEnv {
	t.Helper()
	if cfg == nil {
		cfg = &realConfig{}
	}
	timeout := cfg.GoogleTimeout
	if timeout == 0 {
		timeout = 3 * time.Second
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	ecfg := cfg.Emulator
	ecfg.Logger = logger.With("component", "emulator")
	emu, err := emulator.New(ecfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	issued := &secretSet{}
	emuSrv := httptest.NewServer(readBodyFirst(recordTokens(issued, emu.Handler())))
	t.Cleanup(emuSrv.Close)
	gnet, err := googlenet.New(strings.TrimPrefix(emuSrv.URL, "http://"), googlenet.Options{Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}

	client := &auth.Client{ID: emulator.DemoClientID, Secret: emulator.DemoClientSecret}
	g := auth.NewGoogle(auth.GoogleConfig{Client: client, HTTPClient: gnet.HTTPClient(), Logger: logger.With("component", "auth"), Metrics: cfg.Metrics})
	clock := authtest.NewClock(time.Now())
	v, err := auth.NewVerifier(auth.VerifierConfig{
		Audiences:    []string{client.ID},
		HostedDomain: cfg.HostedDomain,
		HTTPClient:   gnet.HTTPClient(),
		Now:          clock.Now,
		Logger:       logger.With("component", "verifier"),
		Metrics:      cfg.Metrics,
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "credentials")
	files, err := file.Open(file.Config{Dir: dir, Logger: logger.With("component", "store")})
	if err != nil {
		t.Fatal(err)
	}
	var st interface {
		grant.Store
		SessionStore
	} = files
	if f := cfg.StoreFaults; f != nil {
		f.Store = files
		st = f
	}
	grants := grant.New(grant.Config{Store: st, Google: g, Logger: logger.With("component", "grant")})
	fetcher := offline.NewFetcher(offline.FetcherConfig{
		Grants: grants, HTTPClient: gnet.HTTPClient(),
		// As cmd/signin: a person is waiting, so one retry.
		MaxRetries: 1, RequestTimeout: timeout,
		Sleep:  noWait,
		Logger: logger.With("component", "offline"),
	})
	keys := newTestKeys(t)
	risc, err := auth.NewRISCVerifier(auth.RISCVerifierConfig{
		ClientIDs: []string{client.ID}, HTTPClient: gnet.HTTPClient(), Logger: logger.With("component", "risc"),
		Metrics: cfg.Metrics,
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{
		RISC:         risc,
		ClientID:     client.ID,
		Grants:       grants,
		Verifier:     v,
		Google:       g,
		Profiles:     fetcher,
		Net:          gnet,
		SessionKeys:  keys,
		Sessions:     st,
		MaxBodyBytes: cfg.MaxBodyBytes,
		Demo:         true,
		Logger:       logger.With("component", "web"),
		Metrics:      cfg.Metrics,
	})
	if err != nil {
		t.Fatal(err)
	}
	issued.add("client secret", client.Secret)
	for _, k := range keys {
		issued.add("session key", string(k))
	}
	app := httptest.NewServer(recordCookies(issued, s.Handler()))
	t.Cleanup(app.Close)
	return &realEnv{
		testEnv:  &testEnv{t: t, srv: app, server: s, logs: logs},
		emu:      emu,
		emuURL:   emuSrv.URL,
		net:      gnet,
		google:   g,
		fetcher:  fetcher,
		files:    files,
		dir:      dir,
		clock:    clock,
		verifier: v,
		keys:     keys,
		logger:   logger,
		timeout:  timeout,
		issued:   issued,
	}
}

// readBodyFirst reads a request's body before the emulator sees it. Go's
// server notices that a client went away only once the request body is
// read; the emulator's fault delays come before its handlers read the
// form, so without this a "slow Google" POST would hold the emulator (and
// its httptest.Server's Close) for the whole delay after the client gave
// up, instead of ending with it.
func readBodyFirst(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			if err != nil {
				http.Error(w, "reading the body", http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		h.ServeHTTP(w, r)
	})
}

// noWait stands for the retry waits: the tests count retries, they do not
// need to sit through the backoff.
func noWait(ctx context.Context, _ time.Duration) error { return ctx.Err() }

func (re *realEnv) user(email, name string) emulator.User {
	re.t.Helper()
	u, err := re.emu.AddUser(emulator.User{Email: email, Name: name})
	if err != nil {
		re.t.Fatal(err)
	}
	return u
}

// idToken mints the ID token the GIS button would give the page.
func (re *realEnv) idToken(sub string) string {
	re.t.Helper()
	tok, err := re.emu.MintIDToken(emulator.DemoClientID, sub, "")
	if err != nil {
		re.t.Fatal(err)
	}
	re.issued.add("ID token", tok)
	return tok
}

// code mints a popup code asking for offline access, as the GIS code
// client would; consent adds prompt=consent.
func (re *realEnv) code(sub string, consent bool) string {
	re.t.Helper()
	req := emulator.CodeRequest{ClientID: emulator.DemoClientID, Sub: sub, AccessType: "offline"}
	if consent {
		req.Prompt = "consent"
	}
	c, err := re.emu.MintCode(req)
	if err != nil {
		re.t.Fatal(err)
	}
	re.issued.add("code", c)
	return c
}

// record returns sub's stored record, or nil when there is none. A record
// that does not decode fails the test.
func (re *realEnv) record(sub string) *grant.Record {
	re.t.Helper()
	rec, err := re.files.Get(context.Background(), sub)
	if signin.ErrorKind(err) == signin.ENOTFOUND {
		return nil
	}
	if err != nil {
		re.t.Fatalf("record %s: %v", sub, err)
	}
	return rec
}

// snapshot returns the credentials directory's regular files and their
// contents: what "nothing was written" and "the record is unchanged" are
// checked against, byte for byte.
func (re *realEnv) snapshot() map[string]string {
	re.t.Helper()
	ents, err := os.ReadDir(re.dir)
	if err != nil {
		re.t.Fatal(err)
	}
	m := make(map[string]string, len(ents))
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(re.dir, e.Name()))
		if err != nil {
			re.t.Fatal(err)
		}
		m[e.Name()] = string(b)
	}
	return m
}

// sameFiles fails t unless the credentials directory holds exactly what
// before says, ignoring lock files (empty, and left by design).
func (re *realEnv) sameFiles(t *testing.T, before map[string]string) {
	t.Helper()
	after := re.snapshot()
	names := func(m map[string]string) []string {
		var out []string
		for n := range m {
			if !strings.HasSuffix(n, ".lock") {
				out = append(out, n)
			}
		}
		sort.Strings(out)
		return out
	}
	if a, b := names(before), names(after); strings.Join(a, ",") != strings.Join(b, ",") {
		t.Fatalf("credentials directory changed: %v -> %v", a, b)
	}
	for n, body := range before {
		if !strings.HasSuffix(n, ".lock") && after[n] != body {
			t.Errorf("%s changed:\n%s\n->\n%s", n, body, after[n])
		}
	}
}

// runOffline runs offline-fetch over the server's store, as cmd/offline-fetch
// would, with JSON output to stdout, the env's logger, a per-request
// timeout of the env's Google timeout and no waits between retries; opts
// may change the Config.
func (re *realEnv) runOffline(ctx context.Context, stdout io.Writer, opts ...func(*offline.Config)) (offline.Summary, error) {
	cfg := offline.Config{
		FetcherConfig: offline.FetcherConfig{
			Grants:     grant.New(grant.Config{Store: re.files, Google: re.google}),
			HTTPClient: re.net.HTTPClient(), RequestTimeout: re.timeout, Sleep: noWait,
			Logger: re.logger.With("component", "offline-fetch"),
		},
		Concurrency: 4, JSON: true, Stdout: stdout,
	}
	for _, o := range opts {
		o(&cfg)
	}
	return offline.Run(ctx, cfg)
}

// secretSet collects secrets by kind. It is safe for concurrent use.
type secretSet struct {
	mu     sync.Mutex
	byKind map[string]map[string]bool
}

func (s *secretSet) add(kind, secret string) {
	if secret == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byKind == nil {
		s.byKind = map[string]map[string]bool{}
	}
	if s.byKind[kind] == nil {
		s.byKind[kind] = map[string]bool{}
	}
	s.byKind[kind][secret] = true
}

// all returns a copy of the secrets by kind.
func (s *secretSet) all() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]string, len(s.byKind))
	for kind, set := range s.byKind {
		for secret := range set {
			out[kind] = append(out[kind], secret)
		}
	}
	return out
}

// recordTokens notes every token the emulator's token endpoint issues.
func recordTokens(set *secretSet, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/token" {
			h.ServeHTTP(w, r)
			return
		}
		tee := &teeWriter{ResponseWriter: w}
		defer func() {
			var answer struct {
				AccessToken  string `json:"access_token"`
				RefreshToken string `json:"refresh_token"`
				IDToken      string `json:"id_token"`
			}
			if json.Unmarshal(tee.body.Bytes(), &answer) == nil {
				set.add("access token", answer.AccessToken)
				set.add("refresh token", answer.RefreshToken)
				set.add("ID token", answer.IDToken)
			}
		}()
		h.ServeHTTP(tee, r)
	})
}

// teeWriter keeps a copy of what is written.
type teeWriter struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (w *teeWriter) Write(b []byte) (int, error) {
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
}

func (w *teeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// recordCookies notes every session cookie the server sets.
func recordCookies(set *secretSet, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		for _, line := range w.Header().Values("Set-Cookie") {
			if c, err := http.ParseSetCookie(line); err == nil && c.Name == sessionCookie {
				set.add("session cookie", c.Value)
			}
		}
	})
}

// storeFaults is the file store with writes that fail on demand, as they
// do on a read-only credentials directory (the store's own errors and
// words).
type storeFaults struct {
	*file.Store
	failUpdates atomic.Bool
}

func (f *storeFaults) Update(ctx context.Context, sub string, fn func(cur *grant.Record) (*grant.Record, error)) (*grant.Record, error) {
	if f.failUpdates.Load() {
		return nil, signin.Wrap(errors.New("open "+sub+".lock: read-only file system"), signin.EINTERNAL, "", "cannot lock the credential record")
	}
	return f.Store.Update(ctx, sub, fn)
}
