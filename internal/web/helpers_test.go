package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/html"
	"golang.org/x/oauth2"
	"google.golang.org/api/people/v1"

	"example.com/signin"
	"example.com/signin/internal/auth"
	"example.com/signin/internal/googlenet"
	"example.com/signin/internal/grant"
)

const testClientID = "test-client.apps.googleusercontent.com"

// syncBuffer is a bytes.Buffer safe for the server's concurrent logging.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testEnv is a server over real HTTP with fakes behind it that behave like
// Google by default: ID tokens "idtoken:<sub>" verify for known users,
// codes registered with addCode exchange once (then invalid_grant), and
// revocations are recorded.
type testEnv struct {
	t        *testing.T
	srv      *httptest.Server
	server   *Server
	store    *memStore
	sessions *memSessions
	verifier *fakeVerifier
	google   *fakeGoogle
	profiles *fakeProfiles
	logs     *syncBuffer

	mu        sync.Mutex
	users     map[string]*auth.Claims // by sub
	codes     map[string]*oauth2.Token
	used      map[string]bool
	exchanges int
	revoked   []string
	revokeErr error
}

func newTestKeys(t testing.TB) [][]byte {
	t.Helper()
	return [][]byte{randBytes(32), randBytes(32)}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func testNet(t testing.TB, emulatorHost string) *googlenet.Net {
	t.Helper()
	n, err := googlenet.New(emulatorHost, googlenet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// newTestEnv starts a server; opts may change the Config before New.
func newTestEnv(t *testing.T, opts ...func(*Config)) *testEnv {
	t.Helper()
	e := &testEnv{
		t:        t,
		store:    newMemStore(),
		sessions: newMemSessions(),
		logs:     &syncBuffer{},
		users:    make(map[string]*auth.Claims),
		codes:    make(map[string]*oauth2.Token),
		used:     make(map[string]bool),
	}
	e.verifier = &fakeVerifier{
		VerifyFn: func(_ context.Context, raw, _ string) (*auth.Claims, error) {
			return e.lookupToken(raw)
		},
		VerifyCachedFn: func(_ context.Context, raw string) (*auth.Claims, error) {
			return e.lookupToken(raw)
		},
	}
	e.google = &fakeGoogle{
		ExchangeFn: func(_ context.Context, code string) (*oauth2.Token, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.exchanges++
			tok, ok := e.codes[code]
			if !ok || e.used[code] {
				return nil, signin.Errorf(signin.EINVALID, "invalid_grant", "The sign-in code was already used or has expired.")
			}
			e.used[code] = true
			return tok, nil
		},
		RevokeFn: func(_ context.Context, token string) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			if e.revokeErr != nil {
				return e.revokeErr
			}
			e.revoked = append(e.revoked, token)
			return nil
		},
	}
	e.profiles = &fakeProfiles{
		FetchProfileFn: func(ctx context.Context, rec *grant.Record) (*people.Person, error) {
			sub := rec.Sub
			if rec.Status == grant.StatusRevoked {
				return nil, signin.Errorf(signin.ECONFLICT, grant.CodeOfflineAccessRevoked, "revoked")
			}
			return &people.Person{
				ResourceName:   "people/" + sub,
				Names:          []*people.Name{{DisplayName: "Profile " + rec.Name}},
				EmailAddresses: []*people.EmailAddress{{Value: rec.Email}},
				Photos:         []*people.Photo{{Url: "https://lh3.example/photo/" + sub}},
			}, nil
		},
	}
	cfg := Config{
		ClientID:    testClientID,
		Grants:      grant.New(grant.Config{Store: e.store, Google: e.google}),
		Verifier:    e.verifier,
		Google:      e.google,
		Profiles:    e.profiles,
		Net:         testNet(t, ""),
		SessionKeys: newTestKeys(t),
		Sessions:    e.sessions,
		Logger:      slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(&cfg)
	}
	e.sessions.now = cfg.Now // the server's clock, for expiry
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.server = s
	e.srv = httptest.NewServer(s.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

func (e *testEnv) lookupToken(raw string) (*auth.Claims, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	sub, ok := strings.CutPrefix(raw, "idtoken:")
	if c, known := e.users[sub]; ok && known {
		cc := *c
		return &cc, nil
	}
	return nil, signin.Errorf(signin.EUNAUTHORIZED, "invalid_token", "The ID token is not valid.")
}

// addUser registers a Google account and returns its ID token.
func (e *testEnv) addUser(sub, email, name string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.users[sub] = &auth.Claims{
		Sub: sub, Email: email, EmailVerified: true, Name: name,
		Picture: "https://lh3.example/" + sub, Audience: testClientID, Issuer: googlenet.Issuer,
	}
	return "idtoken:" + sub
}

// addCode registers a one-time code that exchanges for an access token, the
// refresh token (when not empty) and sub's ID token.
func (e *testEnv) addCode(code, sub, access, refresh string) {
	tok := (&oauth2.Token{AccessToken: access, TokenType: "Bearer", RefreshToken: refresh}).
		WithExtra(map[string]any{"id_token": "idtoken:" + sub, "scope": "openid email profile"})
	e.mu.Lock()
	defer e.mu.Unlock()
	e.codes[code] = tok
}

func (e *testEnv) revokedTokens() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.revoked...)
}

func (e *testEnv) exchangeCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.exchanges
}

// browser is a client with its own cookie jar that does not follow
// redirects (tests assert them).
type browser struct {
	e      *testEnv
	client *http.Client
}

func (e *testEnv) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return &browser{e: e, client: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// response is a read response.
type response struct {
	status int
	header http.Header
	body   []byte
	resp   *http.Response
}

func (r *response) cookie(name string) *http.Cookie {
	for _, c := range r.resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// json decodes the body into a map.
func (r *response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, r.body)
	}
	return m
}

// errorCode returns the "error" field of a JSON error answer.
func (r *response) errorCode(t testing.TB) string {
	t.Helper()
	code, _ := r.json(t)["error"].(string)
	return code
}

func (b *browser) do(method, path string, body io.Reader, header http.Header) *response {
	b.e.t.Helper()
	req, err := http.NewRequest(method, b.e.srv.URL+path, body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	res, err := b.client.Do(req)
	if err != nil {
		b.e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	return &response{status: res.StatusCode, header: res.Header, body: data, resp: res}
}

func (b *browser) get(path string) *response {
	b.e.t.Helper()
	return b.do(http.MethodGet, path, nil, http.Header{"Accept": {"text/html"}})
}

// sameOriginHeaders are what a browser sends with our page's fetch.
func (b *browser) sameOriginHeaders() http.Header {
	return http.Header{
		"Content-Type":     {"application/x-www-form-urlencoded"},
		"X-Requested-With": {"XmlHttpRequest"},
		"Sec-Fetch-Site":   {"same-origin"},
		"Origin":           {b.e.srv.URL},
	}
}

// xhr posts form as our page's JavaScript does.
func (b *browser) xhr(path string, form url.Values) *response {
	b.e.t.Helper()
	return b.do(http.MethodPost, path, strings.NewReader(form.Encode()), b.sameOriginHeaders())
}

// signIn signs the browser in as sub through /tokensignin.
func (b *browser) signIn(sub, email, name string) {
	b.e.t.Helper()
	tok := b.e.addUser(sub, email, name)
	if r := b.xhr("/tokensignin", url.Values{"credential": {tok}}); r.status != http.StatusOK {
		b.e.t.Fatalf("sign-in: %d %s", r.status, r.body)
	}
}

// signedInAs returns the sub /api/me reports, or "" when signed out.
func (b *browser) signedInAs() string {
	b.e.t.Helper()
	r := b.do(http.MethodGet, "/api/me", nil, nil)
	if r.status == http.StatusUnauthorized {
		return ""
	}
	if r.status != http.StatusOK {
		b.e.t.Fatalf("/api/me: %d %s", r.status, r.body)
	}
	u, _ := r.json(b.e.t)["user"].(map[string]any)
	sub, _ := u["sub"].(string)
	return sub
}

// --- Parsed-HTML assertions: a tiny selector helper. ---

func parseHTML(t testing.TB, body []byte) *html.Node {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing HTML: %v", err)
	}
	return doc
}

// findAll returns the element nodes under n that match, in document order.
func findAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

func byID(n *html.Node, id string) *html.Node {
	found := findAll(n, func(n *html.Node) bool { v, ok := attr(n, "id"); return ok && v == id })
	if len(found) == 0 {
		return nil
	}
	return found[0]
}

func byTag(tag string) func(*html.Node) bool {
	return func(n *html.Node) bool { return n.Data == tag }
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// textOf returns n's text with runs of whitespace collapsed.
func textOf(n *html.Node) string {
	return strings.Join(strings.Fields(rawText(n)), " ")
}

// rawText returns n's text as it is.
func rawText(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

// mustID returns the element with id, failing the test when there is none.
func mustID(t testing.TB, doc *html.Node, id string) *html.Node {
	t.Helper()
	n := byID(doc, id)
	if n == nil {
		t.Fatalf("no element #%s", id)
	}
	return n
}

// pageConfigOf decodes the page's #config JSON.
func pageConfigOf(t testing.TB, doc *html.Node) pageConfig {
	t.Helper()
	n := mustID(t, doc, "config")
	if typ, _ := attr(n, "type"); typ != "application/json" {
		t.Fatalf("#config type = %q", typ)
	}
	var c pageConfig
	if err := json.Unmarshal([]byte(rawText(n)), &c); err != nil {
		t.Fatalf("#config: %v: %q", err, rawText(n))
	}
	return c
}
