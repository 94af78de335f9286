package auth_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"example.com/signin"
	"example.com/signin/internal/auth"
	"example.com/signin/internal/googlenet"
)

const (
	testClientSecret = "GOCSPX-s3cr3t-never-in-logs"
	testCode         = "4/0AVG7fiQ-one-time-code-never-in-logs"
)

// fakeGoogle is Google's token and revoke endpoints, as far as these tests
// need: it records each request and answers with respond.
type fakeGoogle struct {
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []recordedRequest
	respond func(w http.ResponseWriter, r *http.Request)
}

type recordedRequest struct {
	method, path, contentType, authorization string
	form                                     url.Values
}

func newFakeGoogle(t *testing.T, respond func(w http.ResponseWriter, r *http.Request)) *fakeGoogle {
	t.Helper()
	f := &fakeGoogle{respond: respond}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		f.mu.Lock()
		f.reqs = append(f.reqs, recordedRequest{r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("Authorization"), form})
		f.mu.Unlock()
		f.respond(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeGoogle) requests() []recordedRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

// newGoogle returns an auth.Google whose calls googlenet routes to f, and
// the buffer its logs go to, changed by each of opts.
func newGoogle(t *testing.T, f *fakeGoogle, opts ...func(*auth.GoogleConfig)) (*auth.Google, *bytes.Buffer) {
	t.Helper()
	u, _ := url.Parse(f.srv.URL)
	n, err := googlenet.New(u.Host, googlenet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cfg := auth.GoogleConfig{
		Client:     &auth.Client{ID: webID, Secret: testClientSecret},
		HTTPClient: n.HTTPClient(),
		Logger:     slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(&cfg)
	}
	return auth.NewGoogle(cfg), &logs
}

func answer(status int, contentType, body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func dropConnection(w http.ResponseWriter, r *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	conn.Close()
}

func hang(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

const tokenAnswer = `{"access_token":"ya29.access","expires_in":3599,"token_type":"Bearer",` +
	`"scope":"openid https://www.googleapis.com/auth/userinfo.email","id_token":"eyJ.id.token","refresh_token":"1//refresh"}`

func TestRefresh(t *testing.T) {
	f := newFakeGoogle(t, answer(http.StatusOK, "application/json", `{"access_token":"ya29.new","expires_in":3599,"token_type":"Bearer"}`))
	g, _ := newGoogle(t, f)
	tok, err := g.Refresh(context.Background(), "1//refresh")
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "ya29.new" || tok.Expiry.IsZero() {
		t.Errorf("token %+v", tok)
	}
	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want exactly one refresh grant", len(reqs))
	}
	r := reqs[0]
	if r.form.Get("grant_type") != "refresh_token" || r.form.Get("refresh_token") != "1//refresh" ||
		r.form.Get("client_id") != webID || r.form.Get("client_secret") != testClientSecret || r.authorization != "" {
		t.Errorf("refresh request: form %v, Authorization %q", r.form, r.authorization)
	}
}

func TestRefreshWithoutRefreshToken(t *testing.T) {
	f := newFakeGoogle(t, answer(200, "application/json", "{}"))
	g, _ := newGoogle(t, f)
	if _, err := g.Refresh(context.Background(), ""); signin.ErrorCode(err) != "offline_access_required" {
		t.Errorf("Refresh(\"\") = %v", err)
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("Google was called %d times", n)
	}
}

// TestRefreshInvalidGrant: a dead grant is an *auth.GoogleError that
// InvalidGrant recognises, with Google's description made safe to store.
func TestRefreshInvalidGrant(t *testing.T) {
	f := newFakeGoogle(t, answer(400, "application/json", `{"error":"invalid_grant","error_description":"Token has been\nexpired or revoked."}`))
	g, _ := newGoogle(t, f)
	_, err := g.Refresh(context.Background(), "1//refresh")
	wantKind(t, err, signin.EINVALID, "invalid_grant")
	ge, ok := auth.InvalidGrant(err)
	if !ok {
		t.Fatalf("InvalidGrant(%v) = false", err)
	}
	if ge.Op != "refresh" || ge.Status != 400 || ge.Description != "Token has been expired or revoked." {
		t.Errorf("GoogleError %+v", ge)
	}
	if strings.Contains(err.Error(), "1//refresh") {
		t.Errorf("the refresh token is in the error: %v", err)
	}
}

// TestRefreshUsesTheContextsClient: a batch job hands its retrying client
// to refreshes through the context, as x/oauth2 does.
func TestRefreshUsesTheContextsClient(t *testing.T) {
	f := newFakeGoogle(t, answer(http.StatusOK, "application/json", `{"access_token":"ya29.new","expires_in":3599}`))
	g, _ := newGoogle(t, f)
	u, _ := url.Parse(f.srv.URL)
	n, err := googlenet.New(u.Host, googlenet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var used bool
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		used = true
		return n.HTTPClient().Transport.RoundTrip(r)
	})}
	if _, err := g.Refresh(context.WithValue(context.Background(), oauth2.HTTPClient, hc), "1//refresh"); err != nil {
		t.Fatal(err)
	}
	if !used {
		t.Error("the context's HTTP client was not used")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestExchange(t *testing.T) {
	f := newFakeGoogle(t, answer(http.StatusOK, "application/json; charset=utf-8", tokenAnswer))
	g, _ := newGoogle(t, f)
	tok, err := g.Exchange(context.Background(), testCode)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if tok.AccessToken != "ya29.access" || tok.RefreshToken != "1//refresh" || tok.Expiry.IsZero() {
		t.Errorf("token %+v", tok)
	}
	if got := auth.IDToken(tok); got != "eyJ.id.token" {
		t.Errorf("IDToken = %q", got)
	}
	if got := auth.GrantedScopes(tok); !slices.Equal(got, []string{"openid", "https://www.googleapis.com/auth/userinfo.email"}) {
		t.Errorf("GrantedScopes = %q", got)
	}
	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	wantExchangeRequest(t, reqs[0])
}

func wantExchangeRequest(t *testing.T, r recordedRequest) {
	t.Helper()
	want := url.Values{
		"code":          {testCode},
		"client_id":     {webID},
		"client_secret": {testClientSecret},
		"redirect_uri":  {"postmessage"},
		"grant_type":    {"authorization_code"},
	}
	if r.method != http.MethodPost || r.path != "/token" || r.contentType != "application/x-www-form-urlencoded" || r.authorization != "" {
		t.Errorf("request %s %s, Content-Type %q, Authorization set %v", r.method, r.path, r.contentType, r.authorization != "")
	}
	if r.form.Encode() != want.Encode() {
		t.Errorf("form\n%s\nwant\n%s", r.form.Encode(), want.Encode())
	}
}

func TestExchangeErrors(t *testing.T) {
	for _, tc := range []struct {
		name       string
		respond    func(http.ResponseWriter, *http.Request)
		timeout    time.Duration
		kind, code string
		logged     bool
	}{
		{name: "invalid_grant", respond: answer(400, "application/json", `{"error":"invalid_grant","error_description":"Bad Request"}`),
			kind: signin.EINVALID, code: "invalid_grant"},
		{name: "code already redeemed", respond: answer(400, "application/json", `{"error":"invalid_grant","error_description":"Code was already redeemed."}`),
			kind: signin.EINVALID, code: "invalid_grant"},
		{name: "invalid_client", respond: answer(401, "application/json", `{"error":"invalid_client","error_description":"Unauthorized"}`),
			kind: signin.EINTERNAL, code: "google_client_misconfigured", logged: true},
		{name: "redirect_uri_mismatch", respond: answer(400, "application/json", `{"error":"redirect_uri_mismatch","error_description":"Bad Request"}`),
			kind: signin.EINTERNAL, code: "google_client_misconfigured", logged: true},
		{name: "unauthorized_client", respond: answer(400, "application/json", `{"error":"unauthorized_client"}`),
			kind: signin.EINTERNAL, code: "google_client_misconfigured", logged: true},
		{name: "invalid_request", respond: answer(400, "application/json", `{"error":"invalid_request","error_description":"Missing required parameter: code"}`),
			kind: signin.EINTERNAL, code: "google_request_rejected", logged: true},
		{name: "500 with an HTML page", respond: answer(500, "text/html", "<html>Error 500 (Server Error)!!1</html>"),
			kind: signin.EUPSTREAM, code: "google_unavailable"},
		{name: "503 JSON", respond: answer(503, "application/json", `{"error":"temporarily_unavailable"}`),
			kind: signin.EUPSTREAM, code: "google_unavailable"},
		{name: "429", respond: answer(429, "application/json", `{"error":"rate_limit_exceeded"}`),
			kind: signin.EUPSTREAM, code: "google_unavailable"},
		{name: "malformed JSON", respond: answer(200, "application/json", `{"access_token":`),
			kind: signin.EUPSTREAM, code: "google_unavailable"},
		{name: "no access token", respond: answer(200, "application/json", `{"token_type":"Bearer"}`),
			kind: signin.EUPSTREAM, code: "google_unavailable"},
		{name: "connection dropped", respond: dropConnection,
			kind: signin.EUPSTREAM, code: "google_unavailable"},
		{name: "timeout", respond: hang, timeout: 500 * time.Millisecond,
			kind: signin.EUPSTREAM, code: "google_unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeGoogle(t, tc.respond)
			g, logs := newGoogle(t, f)
			ctx := context.Background()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			tok, err := g.Exchange(ctx, testCode)
			if err == nil {
				t.Fatalf("Exchange succeeded: %+v", tok)
			}
			wantKind(t, err, tc.kind, tc.code)
			if _, got := auth.InvalidGrant(err); got != (tc.code == "invalid_grant") {
				t.Errorf("InvalidGrant = %v", got)
			}
			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("the code was sent %d times, want once", len(reqs))
			}
			wantExchangeRequest(t, reqs[0])
			for _, secret := range []string{testCode, testClientSecret} {
				if strings.Contains(err.Error(), secret) || strings.Contains(logs.String(), secret) {
					t.Errorf("a secret leaked:\nerror: %v\nlogs: %s", err, logs)
				}
			}
			if got := logs.Len() > 0; got != tc.logged {
				t.Errorf("logged = %v, want %v: %s", got, tc.logged, logs)
			}
		})
	}
}

func TestExchangeRefusesBadCodesWithoutCallingGoogle(t *testing.T) {
	f := newFakeGoogle(t, answer(http.StatusOK, "application/json", tokenAnswer))
	g, _ := newGoogle(t, f)
	for _, code := range []string{"", strings.Repeat("a", 513), "4/abc def", "4/abc\n", "4/\x00", "4/é"} {
		_, err := g.Exchange(context.Background(), code)
		wantKind(t, err, signin.EINVALID, "invalid_code")
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("Google was called %d times", n)
	}
	if _, err := g.Exchange(context.Background(), strings.Repeat("a", 512)); err != nil {
		t.Errorf("a 512-byte code was refused: %v", err)
	}
}

func TestRevoke(t *testing.T) {
	const token = "1//refresh-token-never-in-errors"
	for _, tc := range []struct {
		name       string
		respond    func(http.ResponseWriter, *http.Request)
		kind, code string // empty: success
	}{
		{name: "revoked", respond: answer(200, "application/json", "{}")},
		{name: "already revoked", respond: answer(400, "application/json", `{"error":"invalid_token","error_description":"Token expired or revoked"}`)},
		{name: "other 400", respond: answer(400, "application/json", `{"error":"invalid_request"}`), kind: signin.EUPSTREAM, code: "google_unavailable"},
		{name: "400 not JSON", respond: answer(400, "text/html", `<html>invalid_token</html>`), kind: signin.EUPSTREAM, code: "google_unavailable"},
		{name: "500", respond: answer(500, "text/html", "oops"), kind: signin.EUPSTREAM, code: "google_unavailable"},
		{name: "429", respond: answer(429, "application/json", "{}"), kind: signin.EUPSTREAM, code: "google_unavailable"},
		{name: "connection dropped", respond: dropConnection, kind: signin.EUPSTREAM, code: "google_unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeGoogle(t, tc.respond)
			g, logs := newGoogle(t, f)
			err := g.Revoke(context.Background(), token)
			if tc.kind == "" {
				if err != nil {
					t.Fatalf("Revoke: %v", err)
				}
			} else {
				wantKind(t, err, tc.kind, tc.code)
				if strings.Contains(err.Error(), token) {
					t.Errorf("the token is in the error: %v", err)
				}
			}
			if strings.Contains(logs.String(), token) {
				t.Errorf("the token is in the logs: %s", logs)
			}
			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.method != http.MethodPost || r.path != "/revoke" || r.contentType != "application/x-www-form-urlencoded" {
				t.Errorf("request %s %s %q", r.method, r.path, r.contentType)
			}
			if r.form.Encode() != (url.Values{"token": {token}}).Encode() {
				t.Errorf("form %q", r.form.Encode())
			}
		})
	}
}

func TestRevokeEmptyToken(t *testing.T) {
	f := newFakeGoogle(t, answer(200, "application/json", "{}"))
	g, _ := newGoogle(t, f)
	if err := g.Revoke(context.Background(), ""); signin.ErrorKind(err) != signin.EINVALID {
		t.Errorf("Revoke(\"\") = %v", err)
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("Google was called %d times", n)
	}
}

func TestInvalidGrantOfOtherErrors(t *testing.T) {
	for _, err := range []error{
		nil,
		errors.New("invalid_grant"),
		&signin.Error{Kind: signin.EINVALID, Code: "invalid_grant"},
		&auth.GoogleError{Code: "invalid_client"},
	} {
		if _, ok := auth.InvalidGrant(err); ok {
			t.Errorf("InvalidGrant(%#v) = true", err)
		}
	}
	if _, ok := auth.InvalidGrant(fmt.Errorf("refresh: %w", &auth.GoogleError{Code: "invalid_grant"})); !ok {
		t.Error("InvalidGrant of a wrapped GoogleError = false")
	}
}

func TestTokenExtrasOfNil(t *testing.T) {
	if auth.IDToken(nil) != "" || auth.GrantedScopes(nil) != nil || auth.IDToken(&oauth2.Token{}) != "" {
		t.Error("extras of an empty token are not empty")
	}
}
