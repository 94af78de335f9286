package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"example.com/signin/internal/emulator"
	"example.com/signin/internal/metrics/metricstest"
)

// TestMetricsFollowEveryFlow runs signin as main does, with -metrics-addr,
// in demo mode, and goes through every flow over HTTP: sign-in by button,
// by redirect and by bearer token, connect (signed in and signed out), the
// profile with a refresh, disconnect, sign-out and sign-out everywhere.
// After each step it scrapes /metrics, parses it with Prometheus's own
// parser, and checks that exactly the counters of that step moved, by as
// much as the step should have moved them.
func TestMetricsFollowEveryFlow(t *testing.T) {
	metricsURL := make(chan string, 1)
	base := startWith(t, func(c *Config) {
		c.MetricsAddr = "127.0.0.1:0"
		c.MetricsReady = func(u string) { metricsURL <- u }
	})
	scrapeURL := <-metricsURL
	emu := strings.TrimSuffix(gisScript(t, base), "/gsi/client")
	plain := &http.Client{}

	var users struct{ Users []struct{ Sub string } }
	getJSON(t, plain, http.MethodGet, emu+"/emulator/v1/users", "", &users)
	if len(users.Users) < 3 {
		t.Fatalf("the demo emulator has %d users, want 3", len(users.Users))
	}
	ada, grace, alan := users.Users[0].Sub, users.Users[1].Sub, users.Users[2].Sub
	// Access tokens live 30 s, under the minute before expiry at which a
	// stored token is refreshed: the profile below refreshes.
	var ttl struct{ TTL string }
	getJSON(t, plain, http.MethodPost, emu+"/emulator/v1/access-token-ttl", `{"ttl":"30s"}`, &ttl)

	idToken := func(sub string) string {
		var out struct{ Credential string }
		getJSON(t, plain, http.MethodPost, emu+"/emulator/v1/id-tokens", `{"client_id":"`+emulator.DemoClientID+`","sub":"`+sub+`"}`, &out)
		return out.Credential
	}
	code := func(sub string) string {
		var out struct{ Code string }
		getJSON(t, plain, http.MethodPost, emu+"/emulator/v1/codes", `{"client_id":"`+emulator.DemoClientID+`","sub":"`+sub+`","access_type":"offline"}`, &out)
		return out.Code
	}
	browser := func() *http.Client {
		jar, err := cookiejar.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	do := func(c *http.Client, req *http.Request, want int) {
		t.Helper()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s, want %d", req.Method, req.URL.Path, resp.StatusCode, body, want)
		}
	}
	get := func(c *http.Client, path, bearer string, want int) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		do(c, req, want)
	}
	adaBrowser, graceBrowser, alanBrowser := browser(), browser(), browser()
	var me struct{ Offline bool }

	type delta struct {
		name   string
		labels []string
		by     float64
	}
	// watched are the counters every step checks: those not in its
	// deltas must not move.
	watched := []delta{
		{"signin_signins_total", []string{"method", "button", "outcome", "ok"}, 0},
		{"signin_signins_total", []string{"method", "redirect", "outcome", "ok"}, 0},
		{"signin_signins_total", []string{"method", "bearer", "outcome", "ok"}, 0},
		{"signin_signins_total", []string{"method", "connect", "outcome", "ok"}, 0},
		{"signin_signins_total", []string{"outcome", "invalid_token"}, 0},
		{"signin_code_exchanges_total", []string{"outcome", "ok"}, 0},
		{"signin_token_refreshes_total", []string{"outcome", "ok"}, 0},
		{"signin_revocations_total", []string{"outcome", "ok"}, 0},
		{"signin_key_fetches_total", []string{"outcome", "ok"}, 0},
		{"signin_verified_token_cache_requests_total", []string{"result", "hit"}, 0},
		{"signin_verified_token_cache_requests_total", []string{"result", "miss"}, 0},
		{"signin_sessions_ended_total", []string{"cause", "signout"}, 0},
		{"signin_sessions_ended_total", []string{"cause", "signout_everywhere"}, 0},
		{"signin_sessions_ended_total", []string{"cause", "disconnect"}, 0},
	}
	adaToken := idToken(ada)
	steps := []struct {
		name  string
		do    func()
		moved []delta
	}{
		{"sign-in with the button", func() {
			postXHR(t, adaBrowser, base+"/tokensignin", url.Values{"credential": {adaToken}}, &me)
		}, []delta{
			{"signin_signins_total", []string{"method", "button", "outcome", "ok"}, 1},
			{"signin_key_fetches_total", []string{"outcome", "ok"}, 1},
			{"signin_http_requests_total", []string{"route", "/tokensignin", "method", "POST", "code", "200"}, 1},
		}},
		{"sign-in refused", func() {
			req, _ := http.NewRequest(http.MethodPost, base+"/tokensignin", strings.NewReader("credential="+adaToken[:len(adaToken)-4]+"AAAA"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Requested-With", "XmlHttpRequest")
			do(browser(), req, http.StatusUnauthorized)
		}, []delta{
			{"signin_signins_total", []string{"method", "button", "outcome", "invalid_token"}, 1},
			{"signin_signins_total", []string{"outcome", "invalid_token"}, 1},
			{"signin_http_requests_total", []string{"route", "/tokensignin", "code", "401"}, 1},
		}},
		{"sign-in in GIS redirect mode", func() {
			form := url.Values{"credential": {idToken(grace)}, "g_csrf_token": {"double-submit"}}
			req, _ := http.NewRequest(http.MethodPost, base+"/tokensignin", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Cookie", "g_csrf_token=double-submit")
			do(graceBrowser, req, http.StatusSeeOther)
		}, []delta{
			{"signin_signins_total", []string{"method", "redirect", "outcome", "ok"}, 1},
			{"signin_http_requests_total", []string{"route", "/tokensignin", "code", "303"}, 1},
		}},
		{"API calls with a bearer token", func() {
			get(plain, "/api/me", adaToken, http.StatusOK)
			get(plain, "/api/me", adaToken, http.StatusOK)
		}, []delta{
			{"signin_signins_total", []string{"method", "bearer", "outcome", "ok"}, 2},
			{"signin_verified_token_cache_requests_total", []string{"result", "miss"}, 1},
			{"signin_verified_token_cache_requests_total", []string{"result", "hit"}, 1},
			{"signin_http_requests_total", []string{"route", "/api/me", "code", "200"}, 2},
		}},
		{"connect, signed in", func() {
			postXHR(t, adaBrowser, base+"/connect", url.Values{"code": {code(ada)}}, &me)
			if !me.Offline {
				t.Fatal("no offline access after connect")
			}
		}, []delta{
			{"signin_code_exchanges_total", []string{"outcome", "ok"}, 1},
			{"signin_http_requests_total", []string{"route", "/connect", "code", "200"}, 1},
		}},
		{"connect, signed out", func() {
			postXHR(t, alanBrowser, base+"/connect", url.Values{"code": {code(alan)}}, &me)
		}, []delta{
			{"signin_code_exchanges_total", []string{"outcome", "ok"}, 1},
			{"signin_signins_total", []string{"method", "connect", "outcome", "ok"}, 1},
			{"signin_http_requests_total", []string{"route", "/connect", "code", "200"}, 1},
		}},
		{"profile, with a refresh", func() {
			get(adaBrowser, "/api/profile", "", http.StatusOK)
		}, []delta{
			{"signin_token_refreshes_total", []string{"outcome", "ok"}, 1},
			{"signin_http_requests_total", []string{"route", "/api/profile", "code", "200"}, 1},
		}},
		{"disconnect", func() {
			var out struct{ Disconnected, Revoked bool }
			postXHR(t, adaBrowser, base+"/disconnect", nil, &out)
			if !out.Revoked {
				t.Fatal("disconnect revoked nothing")
			}
		}, []delta{
			{"signin_revocations_total", []string{"outcome", "ok"}, 1},
			{"signin_sessions_ended_total", []string{"cause", "disconnect"}, 1},
		}},
		{"sign-out", func() {
			var out struct{ SignedOut bool }
			postXHR(t, graceBrowser, base+"/signout", nil, &out)
		}, []delta{
			{"signin_sessions_ended_total", []string{"cause", "signout"}, 1},
		}},
		{"sign-out everywhere", func() {
			var out struct{ SignedOut bool }
			postXHR(t, alanBrowser, base+"/signout", url.Values{"everywhere": {"1"}}, &out)
		}, []delta{
			{"signin_sessions_ended_total", []string{"cause", "signout_everywhere"}, 1},
		}},
		{"readiness", func() {
			get(plain, "/readyz", "", http.StatusOK)
			get(plain, "/metrics", "", http.StatusNotFound) // never on the public port
		}, []delta{
			{"signin_http_requests_total", []string{"route", "/readyz", "code", "200"}, 1},
			{"signin_http_requests_total", []string{"route", "unmatched", "code", "404"}, 1},
		}},
	}

	before := metricstest.Scrape(t, scrapeURL)
	for _, step := range steps {
		step.do()
		after := metricstest.Scrape(t, scrapeURL)
		check := append([]delta(nil), step.moved...)
	next:
		for _, w := range watched {
			for _, m := range step.moved {
				if m.name == w.name && strings.Join(m.labels, ",") == strings.Join(w.labels, ",") {
					continue next
				}
			}
			check = append(check, w)
		}
		for _, d := range check {
			if got := after.Value(d.name, d.labels...) - before.Value(d.name, d.labels...); got != d.by {
				t.Errorf("%s: %s%v moved by %v, want %v", step.name, d.name, d.labels, got, d.by)
			}
		}
		before = after
	}

	// The rest of a scrape: the request histogram and gauge, Go's runtime
	// and the process.
	if got := before.Value("signin_http_request_duration_seconds", "route", "/api/profile", "method", "GET"); got != 1 {
		t.Errorf("duration observations of /api/profile = %v, want 1", got)
	}
	if got := before.Value("signin_http_requests_in_flight"); got != 0 {
		t.Errorf("requests in flight = %v after the flows", got)
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_open_fds"} {
		if before[name] == nil {
			t.Errorf("no %s in the scrape", name)
		}
	}
	for _, s := range before.Series("signin_http_requests_total") {
		if strings.Contains(s, "route=/static/app") || strings.Contains(s, ada) {
			t.Errorf("a raw path or a user id became a label: %s", s)
		}
	}
}

// -version stops there (main prints and exits 0, whatever else the command
// line says); -metrics-addr never shares the public address.
func TestParseFlagsOperations(t *testing.T) {
	env := func(string) string { return "" }
	c, err := ParseFlags([]string{"-version", "-clock-skew", "1h"}, env, io.Discard)
	if err != nil || !c.Version {
		t.Errorf("-version: %+v, %v", c.Version, err)
	}
	c, err = ParseFlags([]string{"-metrics-addr", "127.0.0.1:9100"}, env, io.Discard)
	if err != nil || c.MetricsAddr != "127.0.0.1:9100" || c.Version {
		t.Errorf("-metrics-addr: %q, %v", c.MetricsAddr, err)
	}
	if _, err := ParseFlags([]string{"-addr", ":9021", "-metrics-addr", ":9021"}, env, io.Discard); err == nil {
		t.Error("metrics on the public address were accepted")
	}
	if c, _ := ParseFlags(nil, env, io.Discard); c.MetricsAddr != "" {
		t.Errorf("metrics on by default, at %q", c.MetricsAddr)
	}
}
