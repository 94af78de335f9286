package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"example.com/signin/internal/auth"
	"example.com/signin/internal/grant"
)

// Every state-changing route refuses cross-site requests, and refusing
// changes nothing.
func TestCSRF(t *testing.T) {
	routes := []string{"/tokensignin", "/connect", "/disconnect", "/signout"}
	attacks := []struct {
		name   string
		header func(h http.Header)
	}{
		{"Sec-Fetch-Site cross-site", func(h http.Header) { h.Set("Sec-Fetch-Site", "cross-site") }},
		{"Sec-Fetch-Site same-site", func(h http.Header) { h.Set("Sec-Fetch-Site", "same-site") }},
		{"foreign Origin", func(h http.Header) { h.Del("Sec-Fetch-Site"); h.Set("Origin", "https://evil.example") }},
		{"no X-Requested-With", func(h http.Header) { h.Del("X-Requested-With") }},
	}
	for _, route := range routes {
		for _, a := range attacks {
			t.Run(route+"/"+a.name, func(t *testing.T) {
				e := newTestEnv(t)
				e.store.put(grant.Record{Sub: "s1", Status: grant.StatusActive, Token: grant.Token{RefreshToken: "rt"}})
				b := e.browser()
				b.signIn("s1", "a@example.com", "A")
				e.addCode("c", "s1", "at", "rt2")
				tok := e.addUser("s2", "b@example.com", "B")
				form := url.Values{"code": {"c"}, "credential": {tok}}
				h := b.sameOriginHeaders()
				a.header(h)
				r := b.do(http.MethodPost, route, strings.NewReader(form.Encode()), h)
				if r.status != http.StatusForbidden {
					t.Fatalf("status %d %s", r.status, r.body)
				}
				if route == "/tokensignin" && h.Get("X-Requested-With") == "" {
					// GIS redirect mode: refused by the double-submit
					// check, with an HTML page for the browser.
					code, _ := attr(mustID(t, parseHTML(t, r.body), "error"), "data-code")
					if code != "csrf" {
						t.Errorf("error code %q", code)
					}
				} else if r.errorCode(t) != "csrf" {
					t.Errorf("error %s", r.body)
				}
				if b.signedInAs() != "s1" {
					t.Error("the session changed")
				}
				if _, ok := e.store.record("s1"); !ok {
					t.Error("the record was deleted")
				}
				if e.exchangeCount() != 0 || len(e.revokedTokens()) != 0 {
					t.Error("Google was called")
				}
			})
		}
	}
}

// Only our own pages' requests and GIS redirect-mode posts get through; a
// same-origin request passes.
func TestCrossOriginAllowsSameOrigin(t *testing.T) {
	e := newTestEnv(t)
	b := e.browser()
	tok := e.addUser("s1", "a@example.com", "A")
	for _, h := range []http.Header{
		{"Sec-Fetch-Site": {"same-origin"}},
		{"Origin": {e.srv.URL}},
		{}, // not a browser: no Sec-Fetch-Site, no Origin
	} {
		h.Set("X-Requested-With", "XmlHttpRequest")
		h.Set("Content-Type", "application/x-www-form-urlencoded")
		r := b.do(http.MethodPost, "/tokensignin", strings.NewReader(url.Values{"credential": {tok}}.Encode()), h)
		if r.status != http.StatusOK {
			t.Errorf("headers %v: %d %s", h, r.status, r.body)
		}
	}
}

func TestBodyLimit(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.MaxBodyBytes = 1024 })
	b := e.browser()
	big := url.Values{"credential": {strings.Repeat("x", 2048)}, "code": {strings.Repeat("y", 2048)}}.Encode()
	for _, route := range []string{"/tokensignin", "/connect"} {
		for _, chunked := range []bool{false, true} {
			var body io.Reader = strings.NewReader(big)
			if chunked {
				// No Content-Length: the limit must hold while reading.
				body = io.MultiReader(strings.NewReader(big))
			}
			r := b.do(http.MethodPost, route, body, b.sameOriginHeaders())
			if r.status != http.StatusRequestEntityTooLarge || r.errorCode(t) != "too_large" {
				t.Errorf("%s chunked=%v: %d %s", route, chunked, r.status, r.body)
			}
		}
	}
	if e.exchangeCount() != 0 {
		t.Error("an oversized request reached Google")
	}
}

// parseCSP splits a Content-Security-Policy into directives.
func parseCSP(s string) map[string][]string {
	m := map[string][]string{}
	for _, d := range strings.Split(s, ";") {
		f := strings.Fields(d)
		if len(f) > 0 {
			m[f[0]] = f[1:]
		}
	}
	return m
}

func TestSecurityHeaders(t *testing.T) {
	tests := []struct {
		name      string
		emulator  string
		wantGIS   []string
		wantFrame []string
		wantImg   []string
	}{
		{
			name:      "google",
			wantGIS:   []string{"'self'", "https://accounts.google.com/gsi/client"},
			wantFrame: []string{"https://accounts.google.com/gsi/"},
			wantImg:   []string{"'self'", "data:", "https:"},
		},
		{
			name:      "emulator",
			emulator:  "127.0.0.1:9022",
			wantGIS:   []string{"'self'", "http://127.0.0.1:9022"},
			wantFrame: []string{"http://127.0.0.1:9022"},
			wantImg:   []string{"'self'", "data:", "https:", "http://127.0.0.1:9022"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, func(c *Config) { c.Net = testNet(t, tc.emulator) })
			b := e.browser()
			for _, path := range []string{"/", "/api/me", "/static/style.css", "/missing", "/healthz"} {
				r := b.get(path)
				h := r.header
				for k, want := range map[string]string{
					"Cross-Origin-Opener-Policy": "same-origin-allow-popups",
					"X-Content-Type-Options":     "nosniff",
					"Referrer-Policy":            "strict-origin-when-cross-origin",
				} {
					if got := h.Get(k); got != want {
						t.Errorf("%s: %s = %q, want %q", path, k, got, want)
					}
				}
				if path != "/static/style.css" && h.Get("Cache-Control") != "no-store" {
					t.Errorf("%s: Cache-Control %q", path, h.Get("Cache-Control"))
				}
				csp := parseCSP(h.Get("Content-Security-Policy"))
				for d, want := range map[string][]string{
					"script-src":      tc.wantGIS,
					"frame-src":       tc.wantFrame,
					"img-src":         tc.wantImg,
					"frame-ancestors": {"'none'"},
					"base-uri":        {"'none'"},
					"object-src":      {"'none'"},
					"form-action":     {"'self'"},
				} {
					if strings.Join(csp[d], " ") != strings.Join(want, " ") {
						t.Errorf("%s: %s %v, want %v", path, d, csp[d], want)
					}
				}
				for _, d := range []string{"script-src", "style-src"} {
					for _, v := range csp[d] {
						if strings.Contains(v, "unsafe") {
							t.Errorf("%s: %s allows %s", path, d, v)
						}
					}
				}
			}
		})
	}
}

func TestPanicIsA500(t *testing.T) {
	e := newTestEnv(t)
	e.verifier.VerifyFn = func(context.Context, string, string) (*auth.Claims, error) { panic("boom") }
	b := e.browser()
	r := b.xhr("/tokensignin", url.Values{"credential": {"x"}})
	if r.status != http.StatusInternalServerError || r.errorCode(t) != "internal" {
		t.Errorf("%d %s", r.status, r.body)
	}
	if !strings.Contains(e.logs.String(), `"msg":"panic"`) {
		t.Error("panic not logged")
	}
	// The server goes on.
	if r := b.get("/healthz"); r.status != 200 {
		t.Errorf("after panic: %d", r.status)
	}
}

// Logs carry request ids, methods and paths, only 5xx errors, and never a
// token, code or query string.
func TestLogs(t *testing.T) {
	e := newTestEnv(t)
	b := e.browser()
	tok := e.addUser("s1", "a@example.com", "A")
	b.xhr("/tokensignin", url.Values{"credential": {tok}})
	e.addCode("secret-code-1", "s1", "secret-access-1", "secret-refresh-1")
	b.xhr("/connect", url.Values{"code": {"secret-code-1"}})
	b.xhr("/connect", url.Values{"code": {"secret-code-1"}}) // reused: 400
	b.do(http.MethodGet, "/?credential=secret-query-1", nil, nil)
	b.do(http.MethodGet, "/api/me", nil, http.Header{"Authorization": {"Bearer " + tok}})
	e.revokeErr = errorUpstream()
	b.xhr("/disconnect", nil) // 502: logged, as a warning

	logs := e.logs.String()
	for _, secret := range []string{tok, "secret-code-1", "secret-access-1", "secret-refresh-1", "secret-query-1", sessionCookie + "="} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
	var requests, errs int
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		switch rec["msg"] {
		case "request":
			requests++
			if rec["request_id"] == "" || rec["method"] == nil || rec["path"] == nil || rec["status"] == nil {
				t.Errorf("request line %s", line)
			}
		case "request failed", "Google failed":
			errs++
			if rec["status"].(float64) < 500 {
				t.Errorf("logged a %v as an error", rec["status"])
			}
			if rec["msg"] == "Google failed" && rec["level"] != "WARN" {
				t.Errorf("Google failing logged at %v, want WARN: %s", rec["level"], line)
			}
		}
	}
	if requests != 6 || errs != 1 {
		t.Errorf("%d request lines, %d error lines; want 6 and 1", requests, errs)
	}
}

func errorUpstream() error {
	return &signinErr{}
}

// signinErr stands for an unexpected revoke failure (not an *signin.Error),
// which /disconnect must treat as Google being unreachable.
type signinErr struct{}

func (*signinErr) Error() string { return "connection reset by peer" }

// TestSecurityHeadersShared: every response shares the security headers'
// values; what one handler adds to its own headers never reaches another
// response.
func TestSecurityHeadersShared(t *testing.T) {
	s := &Server{csp: policies{page: "default-src 'self'"}}
	security := s.securityHeaders() // made once, as middleware does
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		security.set(w.Header())
		if r.URL.Path == "/add" {
			w.Header().Add("Cache-Control", "public")
			w.Header().Add("X-Frame-Options", "SAMEORIGIN")
			w.Header().Set("Content-Security-Policy", "default-src *")
		}
	})
	for _, path := range []string{"/add", "/plain", "/add", "/plain"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		want := map[string][]string{"Cache-Control": {"no-store"}, "X-Frame-Options": {"DENY"}, "Content-Security-Policy": {"default-src 'self'"}}
		if path == "/add" {
			want = map[string][]string{"Cache-Control": {"no-store", "public"}, "X-Frame-Options": {"DENY", "SAMEORIGIN"}, "Content-Security-Policy": {"default-src *"}}
		}
		for k, v := range want {
			if got := w.Header()[k]; !slices.Equal(got, v) {
				t.Errorf("%s: %s = %q, want %q", path, k, got, v)
			}
		}
	}
}
