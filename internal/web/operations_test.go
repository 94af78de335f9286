package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/oauth2"

	"example.com/signin"
	"example.com/signin/internal/auth"
	"example.com/signin/internal/emulator"
	"example.com/signin/internal/metrics"
	"example.com/signin/internal/metrics/metricstest"
)

// withMetrics gives the server Metrics in a fresh registry, returned.
func withMetrics(reg **prometheus.Registry) func(*Config) {
	return func(c *Config) {
		*reg = prometheus.NewRegistry()
		c.Metrics = metrics.New(*reg)
	}
}

// logLines returns the JSON log lines whose msg is msg.
func logLines(t *testing.T, logs *syncBuffer, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// Each flow moves its counters, requests are labelled by route template
// (never the path), and ended sessions are counted by cause.
func TestMetricsCountTheFlows(t *testing.T) {
	var reg *prometheus.Registry
	e := newTestEnv(t, withMetrics(&reg))
	b := e.browser()

	b.signIn("s1", "a@example.com", "A")                                                     // button
	b.xhr("/tokensignin", url.Values{"credential": {"idtoken:nobody"}})                      // button, refused
	e.addCode("code-1", "s1", "access-1", "refresh-1")                                       //
	b.xhr("/connect", url.Values{"code": {"code-1"}})                                        // signed in: not a sign-in
	b.xhr("/signout", nil)                                                                   // signout
	e.addCode("code-2", "s1", "access-2", "")                                                //
	b.xhr("/connect", url.Values{"code": {"code-2"}})                                        // connect sign-in, refresh token kept
	b.xhr("/disconnect", nil)                                                                // disconnect
	tok := e.addUser("s2", "b@example.com", "B")                                             //
	b.do(http.MethodGet, "/api/me", nil, http.Header{"Authorization": {"Bearer " + tok}})    // bearer
	b.do(http.MethodGet, "/api/me", nil, http.Header{"Authorization": {"Bearer idtoken:x"}}) // bearer, refused
	form := url.Values{"credential": {tok}, "g_csrf_token": {"c1"}}                          //
	b.do(http.MethodPost, "/tokensignin", strings.NewReader(form.Encode()), http.Header{     // redirect
		"Content-Type": {"application/x-www-form-urlencoded"}, "Cookie": {"g_csrf_token=c1"},
		"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://accounts.google.com"},
	})
	b.xhr("/signout", url.Values{"everywhere": {"1"}}) // signout_everywhere
	b.get("/static/style.css")
	b.get("/no/such/page")
	b.do(http.MethodPost, "/connect", nil, http.Header{"Sec-Fetch-Site": {"cross-site"}}) // refused before routing

	fams := metricstest.Gather(t, reg)
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"signin_signins_total", []string{"method", "button", "outcome", "ok"}, 1},
		{"signin_signins_total", []string{"method", "button", "outcome", "invalid_token"}, 1},
		{"signin_signins_total", []string{"method", "connect", "outcome", "ok"}, 1},
		{"signin_signins_total", []string{"method", "bearer", "outcome", "ok"}, 1},
		{"signin_signins_total", []string{"method", "bearer", "outcome", "invalid_token"}, 1},
		{"signin_signins_total", []string{"method", "redirect", "outcome", "ok"}, 1},
		{"signin_sessions_ended_total", []string{"cause", "signout"}, 1},
		{"signin_sessions_ended_total", []string{"cause", "disconnect"}, 1},
		{"signin_sessions_ended_total", []string{"cause", "signout_everywhere"}, 1},
		{"signin_http_requests_total", []string{"route", "/tokensignin", "method", "POST", "code", "200"}, 1},
		{"signin_http_requests_total", []string{"route", "/tokensignin", "method", "POST", "code", "303"}, 1},
		{"signin_http_requests_total", []string{"route", "/tokensignin", "method", "POST", "code", "401"}, 1},
		{"signin_http_requests_total", []string{"route", "/connect", "method", "POST", "code", "200"}, 2},
		{"signin_http_requests_total", []string{"route", "/connect", "method", "POST", "code", "403"}, 1},
		{"signin_http_requests_total", []string{"route", "/api/me"}, 2},
		{"signin_http_requests_total", []string{"route", "/static/", "code", "200"}, 1},
		{"signin_http_requests_total", []string{"route", "unmatched", "code", "404"}, 1},
		{"signin_http_request_duration_seconds", []string{"route", "/disconnect", "method", "POST"}, 1},
		{"signin_http_requests_in_flight", nil, 0},
	} {
		if got := fams.Value(tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v, want %v; series: %v", tc.name, tc.labels, got, tc.want, fams.Series(tc.name))
		}
	}
	for _, s := range fams.Series("signin_http_requests_total") {
		if strings.Contains(s, "/no/such") || strings.Contains(s, "style.css") {
			t.Errorf("a raw path became a label: %s", s)
		}
	}

	// The audit trail: one line per event, with the sub.
	var events []string
	for _, rec := range logLines(t, e.logs, "audit") {
		if rec["level"] != "INFO" || rec["sub"] == "" {
			t.Errorf("audit line %v", rec)
		}
		ev := rec["event"].(string)
		for _, k := range []string{"method", "cause", "refresh_token"} {
			if v, ok := rec[k]; ok {
				ev += ":" + v.(string)
			}
		}
		events = append(events, ev)
	}
	want := []string{
		"sign_in:button", "offline_access_granted:new", "sessions_ended:signout",
		"offline_access_granted:kept", "sign_in:connect", "disconnect", "sessions_ended:disconnect",
		"sign_in:redirect", "sessions_ended:signout_everywhere",
	}
	if strings.Join(events, " ") != strings.Join(want, " ") {
		t.Errorf("audit events\n got %v\nwant %v", events, want)
	}
}

// A client that hangs up while its request waits for Google is no server
// error: the request is logged 499 at debug, and never at error level.
func TestClientGoneIs499AtDebug(t *testing.T) {
	var reg *prometheus.Registry
	e := newTestEnv(t, withMetrics(&reg))
	arrived := make(chan struct{})
	e.google.ExchangeFn = func(ctx context.Context, code string) (*oauth2.Token, error) {
		close(arrived)
		<-ctx.Done()
		return nil, signin.Wrap(ctx.Err(), signin.EUPSTREAM, "google_unavailable", "Google could not be reached.")
	}
	b := e.browser()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+"/connect", strings.NewReader("code=c"))
	for k, v := range b.sameOriginHeaders() {
		req.Header[k] = v
	}
	go func() { <-arrived; cancel() }()
	if _, err := b.client.Do(req); !errors.Is(err, context.Canceled) {
		t.Fatalf("request: %v, want it cancelled", err)
	}
	var lines []map[string]any
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if lines = logLines(t, e.logs, "request"); len(lines) > 0 {
			break
		}
	}
	if len(lines) != 1 || lines[0]["status"] != float64(499) {
		t.Fatalf("request lines %v, want one with status 499", lines)
	}
	gone := logLines(t, e.logs, "client went away")
	if len(gone) != 1 || gone[0]["level"] != "DEBUG" || gone[0]["status"] != float64(499) {
		t.Errorf("client went away lines %v, want one at DEBUG", gone)
	}
	if strings.Contains(e.logs.String(), `"level":"ERROR"`) || strings.Contains(e.logs.String(), `"level":"WARN"`) {
		t.Errorf("a client hanging up was logged as a failure:\n%s", e.logs)
	}
	if got := metricstest.Gather(t, reg).Value("signin_http_requests_total", "route", "/connect", "code", "499"); got != 1 {
		t.Errorf("499s counted: %v", got)
	}
}

// /readyz is 200 while the templates load and the store answers, 503 with
// what failed otherwise; /healthz stays 200 throughout.
func TestReadyz(t *testing.T) {
	var storeErr error
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "templates"), os.DirFS("../../templates")); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(dir, "static"), os.DirFS("../../static")); err != nil {
		t.Fatal(err)
	}
	e := newTestEnv(t, func(c *Config) {
		c.Ready = func(context.Context) error { return storeErr }
		c.DevDir = dir
	})
	b := e.browser()
	check := func(wantReady int, wantBody string) {
		t.Helper()
		if r := b.get("/readyz"); r.status != wantReady || !strings.Contains(string(r.body), wantBody) {
			t.Errorf("/readyz: %d %q, want %d %q", r.status, r.body, wantReady, wantBody)
		}
		if r := b.get("/healthz"); r.status != http.StatusOK {
			t.Errorf("/healthz: %d", r.status)
		}
	}
	check(http.StatusOK, "ok")
	storeErr = errors.New("stat /var/lib/signin: input/output error")
	check(http.StatusServiceUnavailable, "store: not ready")
	if strings.Contains(string(b.get("/readyz").body), "input/output") {
		t.Error("/readyz tells why, which is the log's to say")
	}
	storeErr = nil
	if err := os.WriteFile(filepath.Join(dir, "templates", "index.html"), []byte("{{ .Broken"), 0o644); err != nil {
		t.Fatal(err)
	}
	check(http.StatusServiceUnavailable, "templates: not ready")
}

// Against the emulator: Google failing is a warning naming the endpoint
// and Google's error code, and a /connect whose ID token is refused after
// Google redeemed the code says why.
func TestGoogleFailuresAreWarnings(t *testing.T) {
	re := newRealEnv(t, nil)
	u := re.user("warn@example.com", "Warn")
	b := re.browser()

	re.emu.InjectFault(emulator.Fault{Endpoint: "token", Status: http.StatusServiceUnavailable,
		Body: `{"error":"backend_error","error_description":"try later"}`})
	if r := b.xhr("/connect", url.Values{"code": {re.code(u.Sub, false)}}); r.status != http.StatusBadGateway {
		t.Fatalf("/connect with the token endpoint down: %d %s", r.status, r.body)
	}
	failed := logLines(t, re.logs, "Google failed")
	if len(failed) != 1 || failed[0]["level"] != "WARN" || failed[0]["endpoint"] != "token" || failed[0]["google_error"] != "backend_error" {
		t.Errorf("Google failed lines %v, want one WARN with endpoint=token google_error=backend_error", failed)
	}

	// Google's clock (and so the ID token's iat) is 10 minutes ahead of
	// ours, beyond the 1 minute of skew allowed.
	re.emu.ShiftClock(10 * time.Minute)
	if r := b.xhr("/connect", url.Values{"code": {re.code(u.Sub, false)}}); r.status != http.StatusUnauthorized {
		t.Fatalf("/connect with Google's clock ahead: %d %s", r.status, r.body)
	}
	refused := logLines(t, re.logs, "connect: the ID token Google returned with the tokens was refused")
	if len(refused) != 1 || refused[0]["level"] != "WARN" || refused[0]["reason"] != auth.RefusedClockSkew {
		t.Errorf("refused lines %v, want one WARN with reason=clock_skew", refused)
	}
	if strings.Contains(re.logs.String(), `"level":"ERROR"`) {
		t.Errorf("logged at ERROR:\n%s", re.logs)
	}
}

// RISC events are counted by type and what the server did, and the
// sessions they end by cause.
func TestRISCMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	re := newRealEnv(t, &realConfig{Metrics: metrics.New(reg)})
	if _, err := re.emu.RegisterRISCReceiver(emulator.RISCReceiver{ClientID: emulator.DemoClientID, URL: re.srv.URL + "/risc"}); err != nil {
		t.Fatal(err)
	}
	_, sub := connected(t, re, "risc.metrics@example.com")
	re.send(t, emulator.RISCEvent{Type: "sessions-revoked", Sub: sub})
	// Again: the server cannot tell that no session is left (signing in
	// writes nothing), and ends them again, in one write.
	re.send(t, emulator.RISCEvent{Type: "sessions-revoked", Sub: sub})
	if status := re.postSET(t, "not.a.set"); status != http.StatusBadRequest {
		t.Fatalf("forged SET: %d", status)
	}
	fams := metricstest.Gather(t, reg)
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"signin_risc_events_total", []string{"type", "sessions-revoked", "outcome", "sessions_ended"}, 2},
		{"signin_risc_events_total", []string{"type", "other", "outcome", "invalid_set"}, 1},
		{"signin_sessions_ended_total", []string{"cause", "risc"}, 2},
		{"signin_http_requests_total", []string{"route", "/risc", "code", "202"}, 2},
	} {
		if got := fams.Value(tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v, want %v; series %v", tc.name, tc.labels, got, tc.want, fams.Series(tc.name))
		}
	}
	ended := 0
	for _, rec := range logLines(t, re.logs, "audit") {
		if rec["event"] == "sessions_ended" && rec["cause"] == "risc" && rec["sub"] == sub {
			ended++
		}
	}
	if ended != 2 {
		t.Errorf("%d sessions_ended audit lines for risc, want 2", ended)
	}
}
