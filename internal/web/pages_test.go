package web

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
	"google.golang.org/api/people/v1"

	"example.com/signin"
	"example.com/signin/internal/grant"
)

// checkPageHygiene asserts what the CSP relies on and what tests rely on:
// no inline script or style, scripts only from 'self' or the GIS URL, and
// unique ids.
func checkPageHygiene(t *testing.T, doc *html.Node, gisURL string) {
	t.Helper()
	for _, s := range findAll(doc, byTag("script")) {
		src, hasSrc := attr(s, "src")
		typ, _ := attr(s, "type")
		switch {
		case typ == "application/json":
			if hasSrc {
				t.Errorf("JSON script with src %q", src)
			}
		case !hasSrc:
			t.Errorf("inline script: %q", textOf(s))
		case src != gisURL && !strings.HasPrefix(src, "/static/"):
			t.Errorf("script from %q", src)
		}
	}
	if styles := findAll(doc, byTag("style")); len(styles) > 0 {
		t.Errorf("%d <style> elements", len(styles))
	}
	ids := map[string]bool{}
	for _, n := range findAll(doc, func(n *html.Node) bool { _, ok := attr(n, "id"); return ok }) {
		id, _ := attr(n, "id")
		if ids[id] {
			t.Errorf("duplicate id %q", id)
		}
		ids[id] = true
		for _, a := range n.Attr {
			if a.Key == "style" || strings.HasPrefix(a.Key, "on") {
				t.Errorf("#%s has inline %s attribute", id, a.Key)
			}
		}
	}
	for _, n := range findAll(doc, func(*html.Node) bool { return true }) {
		for _, a := range n.Attr {
			if a.Key == "style" || strings.HasPrefix(a.Key, "on") {
				t.Errorf("<%s> has inline %s attribute", n.Data, a.Key)
			}
		}
	}
}

func TestIndexSignedOut(t *testing.T) {
	e := newTestEnv(t)
	b := e.browser()
	r := b.get("/")
	if r.status != http.StatusOK {
		t.Fatalf("status %d", r.status)
	}
	if ct := r.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	doc := parseHTML(t, r.body)
	gis := testNet(t, "").GISScriptURL()
	checkPageHygiene(t, doc, gis)

	mustID(t, doc, "gsi-button")
	if btn := mustID(t, doc, "signin-offline"); btn.Data != "button" {
		t.Errorf("#signin-offline is <%s>", btn.Data)
	}
	for _, id := range []string{"user-name", "signout", "disconnect", "enable-offline", "demo-banner"} {
		if byID(doc, id) != nil {
			t.Errorf("signed-out page has #%s", id)
		}
	}
	script := mustID(t, doc, "gis-script")
	if src, _ := attr(script, "src"); src != gis {
		t.Errorf("GIS script src %q, want %q", src, gis)
	}
	for _, a := range []string{"async", "defer"} {
		if _, ok := attr(script, a); !ok {
			t.Errorf("GIS script is not %s", a)
		}
	}
	c := pageConfigOf(t, doc)
	want := pageConfig{ClientID: testClientID, Scope: "openid email profile", UXMode: "popup", View: "signed-out"}
	if c != want {
		t.Errorf("config = %+v, want %+v", c, want)
	}
	// Nothing has happened yet: no "What this flow did".
	if byID(doc, "flow-panel") != nil {
		t.Error("the signed-out page shows what the flow did before anything happened")
	}
	if f := footerText(t, doc); !strings.Contains(f, "on the server") {
		t.Errorf("footer of the server-side page: %q", f)
	}

	// GIS redirect mode is chosen by ?ux=redirect, and only that value.
	for _, tc := range []struct{ query, mode string }{
		{"?ux=redirect", "redirect"},
		{"?ux=popup", "popup"},
		{"?ux=https://evil.example", "popup"},
	} {
		doc := parseHTML(t, b.get("/"+tc.query).body)
		if got := pageConfigOf(t, doc).UXMode; got != tc.mode {
			t.Errorf("%s: ux_mode %q, want %q", tc.query, got, tc.mode)
		}
	}
}

func TestIndexSignedIn(t *testing.T) {
	const sub = "111111111111111111111"
	tests := []struct {
		name        string
		record      *grant.Record
		fetch       func(ctx context.Context, rec *grant.Record) (*people.Person, error)
		wantState   string
		wantIDs     []string
		wantMissing []string
	}{
		{
			name:        "no offline access",
			wantState:   "none",
			wantIDs:     []string{"enable-offline"},
			wantMissing: []string{"reconnect", "profile-name", "profile-error", "offline-next"},
		},
		{
			name:        "offline access",
			record:      &grant.Record{Sub: sub, Email: "ada@example.com", Name: "Ada", Status: grant.StatusActive, Token: grant.Token{AccessToken: "at", RefreshToken: "rt"}},
			wantState:   "active",
			wantIDs:     []string{"profile-name", "profile-email", "profile-photo", "offline-next"},
			wantMissing: []string{"enable-offline", "reconnect", "profile-error"},
		},
		{
			name:        "revoked",
			record:      &grant.Record{Sub: sub, Status: grant.StatusRevoked, Token: grant.Token{AccessToken: "at", RefreshToken: "rt"}},
			wantState:   "revoked",
			wantIDs:     []string{"reconnect"},
			wantMissing: []string{"enable-offline", "profile-name", "offline-next"},
		},
		{
			name:   "revoked when fetched",
			record: &grant.Record{Sub: sub, Status: grant.StatusActive, Token: grant.Token{AccessToken: "at", RefreshToken: "rt"}},
			fetch: func(context.Context, *grant.Record) (*people.Person, error) {
				return nil, signin.Errorf(signin.ECONFLICT, grant.CodeOfflineAccessRevoked, "revoked")
			},
			wantState:   "revoked",
			wantIDs:     []string{"reconnect"},
			wantMissing: []string{"profile-name"},
		},
		{
			name:   "profile fetch fails",
			record: &grant.Record{Sub: sub, Status: grant.StatusActive, Token: grant.Token{AccessToken: "at", RefreshToken: "rt"}},
			fetch: func(context.Context, *grant.Record) (*people.Person, error) {
				return nil, signin.Errorf(signin.EUPSTREAM, "google_unavailable", "down")
			},
			wantState:   "active",
			wantIDs:     []string{"profile-error"},
			wantMissing: []string{"profile-name", "enable-offline"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			if tc.fetch != nil {
				e.profiles.FetchProfileFn = tc.fetch
			}
			if tc.record != nil {
				e.store.put(*tc.record)
			}
			b := e.browser()
			b.signIn(sub, "ada@example.com", "Ada Lovelace")
			r := b.get("/")
			if r.status != http.StatusOK {
				t.Fatalf("status %d", r.status)
			}
			doc := parseHTML(t, r.body)
			checkPageHygiene(t, doc, testNet(t, "").GISScriptURL())
			if got := textOf(mustID(t, doc, "user-name")); got != "Ada Lovelace" {
				t.Errorf("#user-name %q", got)
			}
			if got := textOf(mustID(t, doc, "user-email")); got != "ada@example.com" {
				t.Errorf("#user-email %q", got)
			}
			if src, _ := attr(mustID(t, doc, "user-picture"), "src"); src != "https://lh3.example/"+sub {
				t.Errorf("#user-picture src %q", src)
			}
			mustID(t, doc, "signout")
			mustID(t, doc, "disconnect")
			for _, id := range []string{"gsi-button", "signin-offline"} {
				if byID(doc, id) != nil {
					t.Errorf("signed-in page has #%s", id)
				}
			}
			if st, _ := attr(mustID(t, doc, "offline-status"), "data-state"); st != tc.wantState {
				t.Errorf("#offline-status data-state %q, want %q", st, tc.wantState)
			}
			for _, id := range tc.wantIDs {
				mustID(t, doc, id)
			}
			for _, id := range tc.wantMissing {
				if byID(doc, id) != nil {
					t.Errorf("has #%s", id)
				}
			}
			c := pageConfigOf(t, doc)
			if c.View != "signed-in" || c.Offline != tc.wantState || c.LoginHint != "ada@example.com" {
				t.Errorf("config %+v", c)
			}
			// Something happened (a sign-in): the page says what.
			mustID(t, doc, "flow-panel")
			// With offline access on, the next step is offline-fetch's.
			if n := byID(doc, "offline-next"); n != nil && !strings.Contains(textOf(n), "go run ./cmd/offline-fetch") {
				t.Errorf("#offline-next %q does not give the command", textOf(n))
			}
			if tc.wantState == "active" && byID(doc, "profile-name") != nil {
				if got := textOf(byID(doc, "profile-name")); got != "Profile Ada" {
					t.Errorf("#profile-name %q", got)
				}
				if got := textOf(byID(doc, "profile-email")); got != "ada@example.com" {
					t.Errorf("#profile-email %q", got)
				}
			}
		})
	}
}

func TestProfileViewPicksPrimary(t *testing.T) {
	p := &people.Person{
		Names: []*people.Name{
			{DisplayName: "Other"},
			{DisplayName: "Primary", Metadata: &people.FieldMetadata{Primary: true}},
			{DisplayName: "Last"},
		},
		EmailAddresses: []*people.EmailAddress{{Value: "first@example.com"}, nil},
		Photos:         []*people.Photo{{Url: "https://p/1", Metadata: &people.FieldMetadata{Primary: true}}, {Url: "https://p/2"}},
	}
	got := newProfileView(p)
	want := profileView{Name: "Primary", Email: "first@example.com", Photo: "https://p/1"}
	if *got != want {
		t.Errorf("got %+v, want %+v", *got, want)
	}
}

// User strings are escaped everywhere: a name that is markup shows as text,
// and a picture URL with a script scheme is neutralised.
func TestUserStringsEscaped(t *testing.T) {
	const evilName = `<script>alert("x")</script><img src=x onerror=alert(1)>`
	e := newTestEnv(t)
	e.store.put(grant.Record{Sub: "s1", Email: "e@example.com", Name: evilName, Status: grant.StatusActive, Token: grant.Token{RefreshToken: "rt"}})
	e.profiles.FetchProfileFn = func(context.Context, *grant.Record) (*people.Person, error) {
		return &people.Person{
			Names:          []*people.Name{{DisplayName: evilName}},
			EmailAddresses: []*people.EmailAddress{{Value: `"><script>alert(2)</script>`}},
			Photos:         []*people.Photo{{Url: "javascript:alert(3)"}},
		}, nil
	}
	b := e.browser()
	tok := e.addUser("s1", `x"@example.com`, evilName)
	e.mu.Lock()
	e.users["s1"].Picture = "javascript:alert(4)"
	e.mu.Unlock()
	if r := b.xhr("/tokensignin", map[string][]string{"credential": {tok}}); r.status != http.StatusOK {
		t.Fatalf("sign-in %d", r.status)
	}
	r := b.get("/")
	doc := parseHTML(t, r.body)
	checkPageHygiene(t, doc, testNet(t, "").GISScriptURL())
	if got := rawText(mustID(t, doc, "user-name")); got != evilName {
		t.Errorf("#user-name text %q, want the name as text", got)
	}
	if got := rawText(mustID(t, doc, "profile-name")); got != evilName {
		t.Errorf("#profile-name text %q", got)
	}
	if imgs := findAll(doc, func(n *html.Node) bool { v, _ := attr(n, "src"); return v == "x" }); len(imgs) != 0 {
		t.Error("the name's <img> became an element")
	}
	for _, id := range []string{"user-picture", "profile-photo"} {
		if src, _ := attr(mustID(t, doc, id), "src"); strings.HasPrefix(strings.ToLower(src), "javascript:") {
			t.Errorf("#%s src %q", id, src)
		}
	}
	// The config JSON carries the email; it must not close its <script>.
	if c := pageConfigOf(t, doc); c.LoginHint != `x"@example.com` {
		t.Errorf("login_hint %q", c.LoginHint)
	}
}

func TestStaticJSPage(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.Net = testNet(t, "127.0.0.1:9022"); c.Demo = true })
	b := e.browser()
	r := b.get("/staticjs")
	if r.status != http.StatusOK {
		t.Fatalf("status %d", r.status)
	}
	doc := parseHTML(t, r.body)
	checkPageHygiene(t, doc, "http://127.0.0.1:9022/gsi/client")
	for _, id := range []string{"token-signin", "token-signout", "token-revoke", "notice", "profile-name", "profile-email", "profile-photo", "flow-panel", "error", "demo-banner"} {
		mustID(t, doc, id)
	}
	// The panel says what the flow did: hidden until it did something
	// (staticjs.js shows it once the page holds a token).
	if _, hidden := attr(mustID(t, doc, "flow-panel"), "hidden"); !hidden {
		t.Error("/staticjs shows what the flow did before anything happened")
	}
	// The footer agrees with the page: nothing on the server.
	if f := footerText(t, doc); strings.Contains(f, "on the server") || strings.Contains(f, "stored per user") || !strings.Contains(f, "browser") {
		t.Errorf("footer of the client-side page contradicts it: %q", f)
	}
	c := pageConfigOf(t, doc)
	if c.PeopleAPIBase != "http://127.0.0.1:9022/" || c.ClientID != testClientID || c.Scope != "openid email profile" {
		t.Errorf("config %+v", c)
	}
	csp := parseCSP(r.header.Get("Content-Security-Policy"))
	if !contains(csp["connect-src"], "http://127.0.0.1:9022") {
		t.Errorf("connect-src %v lacks the People API", csp["connect-src"])
	}
	if e.store.writes() != 0 {
		t.Error("the client-side page wrote to the store")
	}
}

func TestErrorPages(t *testing.T) {
	e := newTestEnv(t)
	b := e.browser()

	r := b.get("/no/such/page")
	if r.status != http.StatusNotFound {
		t.Fatalf("status %d", r.status)
	}
	doc := parseHTML(t, r.body)
	if code, _ := attr(mustID(t, doc, "error"), "data-code"); code != "not_found" {
		t.Errorf("#error data-code %q", code)
	}
	if c := pageConfigOf(t, doc); c.View != "error" {
		t.Errorf("view %q", c.View)
	}
	if byID(doc, "gis-script") != nil {
		t.Error("error page loads GIS")
	}

	r = b.do(http.MethodGet, "/api/nothing", nil, nil)
	if r.status != http.StatusNotFound || r.errorCode(t) != "not_found" {
		t.Errorf("/api/nothing: %d %s", r.status, r.body)
	}
	r = b.do(http.MethodGet, "/connect", nil, nil)
	if r.status != http.StatusMethodNotAllowed || r.errorCode(t) != "method_not_allowed" {
		t.Errorf("GET /connect: %d %s", r.status, r.body)
	}
	r = b.do(http.MethodDelete, "/", nil, http.Header{"Accept": {"text/html"}})
	if r.status != http.StatusMethodNotAllowed {
		t.Errorf("DELETE /: %d", r.status)
	}
}

func TestStatic(t *testing.T) {
	e := newTestEnv(t)
	b := e.browser()
	doc := parseHTML(t, b.get("/").body)
	var css string
	for _, l := range findAll(doc, byTag("link")) {
		if rel, _ := attr(l, "rel"); rel == "stylesheet" {
			css, _ = attr(l, "href")
		}
	}
	if !strings.HasPrefix(css, "/static/style.css?v=") {
		t.Fatalf("stylesheet href %q", css)
	}
	tests := []struct {
		name, path, ctype, cache string
		status                   int
	}{
		{"hashed", css, "text/css; charset=utf-8", "public, max-age=31536000, immutable", 200},
		{"unhashed", "/static/style.css", "text/css; charset=utf-8", "public, max-age=300", 200},
		{"stale hash", "/static/app.js?v=0000", "text/javascript; charset=utf-8", "public, max-age=300", 200},
		{"svg", "/static/g-logo.svg", "image/svg+xml", "public, max-age=300", 200},
		{"missing", "/static/nope.js", "", "no-store", 404},
		{"directory", "/static/", "", "no-store", 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := b.get(tc.path)
			if r.status != tc.status {
				t.Fatalf("status %d", r.status)
			}
			if tc.ctype != "" && r.header.Get("Content-Type") != tc.ctype {
				t.Errorf("Content-Type %q", r.header.Get("Content-Type"))
			}
			if got := r.header.Get("Cache-Control"); got != tc.cache {
				t.Errorf("Cache-Control %q, want %q", got, tc.cache)
			}
			if r.header.Get("X-Content-Type-Options") != "nosniff" {
				t.Error("no nosniff")
			}
		})
	}
	// Conditional requests are answered from the ETag.
	r := b.get("/static/style.css")
	etag := r.header.Get("ETag")
	r = b.do(http.MethodGet, "/static/style.css", nil, http.Header{"If-None-Match": {etag}})
	if etag == "" || r.status != http.StatusNotModified {
		t.Errorf("ETag %q, conditional GET %d", etag, r.status)
	}
}

func TestHealthz(t *testing.T) {
	e := newTestEnv(t)
	r := e.browser().do(http.MethodGet, "/healthz", nil, nil)
	if r.status != http.StatusOK || string(r.body) != "ok\n" {
		t.Errorf("%d %q", r.status, r.body)
	}
}

// DevDir serves templates and static files from disk, re-read per request.
func TestDevDir(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, filepath.Join("..", "..", "templates"), filepath.Join(dir, "templates"))
	copyTree(t, filepath.Join("..", "..", "static"), filepath.Join(dir, "static"))
	e := newTestEnv(t, func(c *Config) { c.DevDir = dir })
	b := e.browser()
	if r := b.get("/"); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	errPage := filepath.Join(dir, "templates", "error.html")
	if err := os.WriteFile(errPage, []byte(`{{define "main"}}<p id="error">edited {{.Code}}</p>{{end}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := parseHTML(t, b.get("/missing").body)
	if got := textOf(mustID(t, doc, "error")); got != "edited not_found" {
		t.Errorf("#error %q: the edit was not picked up", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "static", "style.css"), []byte("body{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := b.get("/static/style.css"); string(r.body) != "body{}" || r.header.Get("Cache-Control") != "no-cache" {
		t.Errorf("style.css %q, Cache-Control %q", r.body, r.header.Get("Cache-Control"))
	}
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestNewFailsFast(t *testing.T) {
	base := func() Config {
		return Config{
			ClientID: testClientID, Grants: grant.New(grant.Config{Store: newMemStore(), Google: &fakeGoogle{}}), Verifier: &fakeVerifier{}, Google: &fakeGoogle{},
			Profiles: &fakeProfiles{}, Net: testNet(t, ""), SessionKeys: newTestKeys(t), Sessions: newMemSessions(),
		}
	}
	broken := t.TempDir()
	copyTree(t, filepath.Join("..", "..", "templates"), filepath.Join(broken, "templates"))
	copyTree(t, filepath.Join("..", "..", "static"), filepath.Join(broken, "static"))
	if err := os.WriteFile(filepath.Join(broken, "templates", "index.html"), []byte(`{{define "main"}}{{.Nope`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(*Config)
	}{
		{"no client id", func(c *Config) { c.ClientID = "" }},
		{"no grants", func(c *Config) { c.Grants = nil }},
		{"no verifier", func(c *Config) { c.Verifier = nil }},
		{"no google", func(c *Config) { c.Google = nil }},
		{"no profiles", func(c *Config) { c.Profiles = nil }},
		{"no net", func(c *Config) { c.Net = nil }},
		{"no session keys", func(c *Config) { c.SessionKeys = nil }},
		{"short auth key", func(c *Config) { c.SessionKeys = [][]byte{randBytes(16), randBytes(32)} }},
		{"bad encryption key", func(c *Config) { c.SessionKeys = [][]byte{randBytes(32), randBytes(20)} }},
		{"broken template", func(c *Config) { c.DevDir = broken }},
		{"missing templates", func(c *Config) { c.DevDir = t.TempDir() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.change(&c)
			if _, err := New(c); err == nil {
				t.Error("New succeeded")
			}
		})
	}
	if _, err := New(base()); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

// The page's profile fetch is bounded: a hanging Google yields the error
// state, not a hung page.
func TestIndexProfileFetchHasDeadline(t *testing.T) {
	e := newTestEnv(t)
	e.store.put(grant.Record{Sub: "s1", Status: grant.StatusActive, Token: grant.Token{RefreshToken: "rt"}})
	e.profiles.FetchProfileFn = func(ctx context.Context, _ *grant.Record) (*people.Person, error) {
		dl, ok := ctx.Deadline()
		if !ok || time.Until(dl) > profileTimeout {
			t.Errorf("profile fetch without the page's deadline")
		}
		return nil, signin.Errorf(signin.EUPSTREAM, "google_unavailable", "slow")
	}
	b := e.browser()
	b.signIn("s1", "a@example.com", "A")
	mustID(t, parseHTML(t, b.get("/").body), "profile-error")
}

// TestPageCacheServesEachContentItsOwnPage: two users, and one user before
// and after enabling offline access, each see their own page, though pages
// are rendered once per content.
func TestPageCacheServesEachContentItsOwnPage(t *testing.T) {
	e := newTestEnv(t)
	ada, bob := e.browser(), e.browser()
	mustStatus(t, ada.xhr("/tokensignin", url.Values{"credential": {e.addUser("s1", "ada@example.com", "Ada")}}), http.StatusOK)
	mustStatus(t, bob.xhr("/tokensignin", url.Values{"credential": {e.addUser("s2", "bob@example.com", "Bob")}}), http.StatusOK)
	for range 2 {
		for b, want := range map[*browser]string{ada: "Ada", bob: "Bob"} {
			if got := textOf(mustID(t, parseHTML(t, b.get("/").body), "user-name")); got != want {
				t.Errorf("page shows %q, want %q", got, want)
			}
		}
	}
	if n := len(e.server.pages.m); n != 2 {
		t.Errorf("%d pages cached for two users' identical views, want 2", n)
	}
	e.addCode("code-1", "s1", "at-1", "rt-1")
	mustStatus(t, ada.xhr("/connect", url.Values{"code": {"code-1"}}), http.StatusOK)
	doc := parseHTML(t, ada.get("/").body)
	if st, _ := attr(mustID(t, doc, "offline-status"), "data-state"); st != "active" {
		t.Errorf("after connect the page shows offline state %q", st)
	}
}

// footerText is the text of the page's <footer>.
func footerText(t *testing.T, doc *html.Node) string {
	t.Helper()
	footers := findAll(doc, byTag("footer"))
	if len(footers) != 1 {
		t.Fatalf("%d <footer> elements, want 1", len(footers))
	}
	return textOf(footers[0])
}
