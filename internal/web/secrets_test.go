package web

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"example.com/signin/internal/emulator"
)

// TestSecretsNeverLogged is issue 6's secrets test. It walks the main
// flows and the logged failures against the real server, with every
// component (web, auth's Verifier and Google, the file store, offline's
// Fetcher and offline-fetch, the emulator) logging at debug level into one
// buffer, and collects every secret of the run: each access, refresh and ID
// token the emulator issued, each code and ID token minted for the
// "browser", each session cookie the server set, the client secret and the
// session keys. None may appear in any log line, nor in offline-fetch's
// output.
func TestSecretsNeverLogged(t *testing.T) {
	re := newRealEnv(t, &realConfig{
		GoogleTimeout: time.Second,
		// Access tokens outlive the refresh margin by nothing: every use
		// refreshes, so refreshes (and their logs) happen throughout.
		Emulator: emulator.Config{AccessTokenTTL: 30 * time.Second},
	})
	var fetchOutput strings.Builder

	// Sign-in with an ID token: our page's XHR, GIS redirect mode, a
	// mobile backend's bearer token.
	ada := re.user("ada.secrets@example.com", "Ada")
	b := re.browser()
	mustStatus(t, b.xhr("/tokensignin", url.Values{"credential": {re.idToken(ada.Sub)}}), http.StatusOK)
	mustStatus(t, re.browser().do(http.MethodPost, "/tokensignin",
		strings.NewReader(url.Values{"credential": {re.idToken(ada.Sub)}, gcsrfName: {"gcsrf-1"}}.Encode()),
		gisRedirectHeaders("gcsrf-1")), http.StatusSeeOther)
	bearer := re.idToken(ada.Sub)
	for range 2 { // the second from the verified-token cache
		mustStatus(t, re.browser().do(http.MethodGet, "/api/me", nil, http.Header{"Authorization": {"Bearer " + bearer}}), http.StatusOK)
	}

	// Offline access: optional (signed in), then again without a new
	// refresh token, then forced; one step for another user.
	mustStatus(t, b.xhr("/connect", url.Values{"code": {re.code(ada.Sub, false)}}), http.StatusOK)
	mustStatus(t, b.xhr("/connect", url.Values{"code": {re.code(ada.Sub, false)}}), http.StatusOK)
	mustStatus(t, b.xhr("/connect", url.Values{"code": {re.code(ada.Sub, true)}}), http.StatusOK)
	grace, graceSub := connected(t, re, "grace.secrets@example.com")

	// Acting offline: the profile (refreshing), the page, a token Google
	// rejects early (a forced refresh), offline-fetch.
	mustStatus(t, b.do(http.MethodGet, "/api/profile", nil, nil), http.StatusOK)
	mustStatus(t, b.get("/"), http.StatusOK)
	re.emu.InjectFault(emulator.Fault{Endpoint: emulator.EndpointPeople, Status: 401})
	mustStatus(t, grace.do(http.MethodGet, "/api/profile", nil, nil), http.StatusOK)
	if _, err := re.runOffline(t.Context(), &fetchOutput); err != nil {
		t.Fatal(err)
	}

	// Failures that get logged.
	code := re.code(ada.Sub, false)
	re.emu.InjectFault(emulator.Fault{Endpoint: emulator.EndpointToken, Status: 500})
	mustStatus(t, b.xhr("/connect", url.Values{"code": {code}}), http.StatusBadGateway)
	re.emu.InjectFault(emulator.Fault{Endpoint: emulator.EndpointToken, Status: 401})
	mustStatus(t, b.xhr("/connect", url.Values{"code": {re.code(ada.Sub, false)}}), http.StatusInternalServerError)
	re.emu.InjectFault(emulator.Fault{Endpoint: emulator.EndpointToken, Status: 400, Body: `{"error":"invalid_request","error_description":"Bad Request"}`})
	mustStatus(t, b.xhr("/connect", url.Values{"code": {re.code(ada.Sub, false)}}), http.StatusInternalServerError)
	used := re.code(ada.Sub, false)
	mustStatus(t, b.xhr("/connect", url.Values{"code": {used}}), http.StatusOK)
	mustStatus(t, b.xhr("/connect", url.Values{"code": {used}}), http.StatusBadRequest)
	re.emu.InjectFault(emulator.Fault{Endpoint: emulator.EndpointPeople, Status: 500, Count: 2})
	mustStatus(t, b.get("/"), http.StatusOK) // logs the profile failure
	re.emu.InjectFault(emulator.Fault{Endpoint: emulator.EndpointToken, Malformed: true})
	expireAccessToken(t, re, ada.Sub)
	mustStatus(t, b.do(http.MethodGet, "/api/profile", nil, nil), http.StatusBadGateway)
	re.emu.InjectFault(emulator.Fault{Endpoint: emulator.EndpointPeople, Status: 503, Count: 2})
	re.emu.InjectFault(emulator.Fault{Endpoint: emulator.EndpointToken, Drop: true})
	if _, err := re.runOffline(t.Context(), &fetchOutput); err != nil {
		t.Fatal(err)
	}
	// Keys: a rotation while the certs endpoint is down.
	if _, err := re.emu.RotateKeyNow(); err != nil {
		t.Fatal(err)
	}
	re.clock.Advance(2 * time.Minute)
	re.emu.InjectFault(emulator.Fault{Endpoint: emulator.EndpointCerts, Status: 503})
	mustStatus(t, re.browser().xhr("/tokensignin", url.Values{"credential": {re.idToken(ada.Sub)}}), http.StatusBadGateway)
	re.clock.Advance(2 * time.Minute)
	mustStatus(t, re.browser().xhr("/tokensignin", url.Values{"credential": {re.idToken(ada.Sub)}}), http.StatusOK)
	// A forged token and a tampered session cookie.
	mustStatus(t, re.browser().xhr("/tokensignin", url.Values{"credential": {tamper(re.idToken(ada.Sub))}}), http.StatusUnauthorized)
	// A user who removed the app's access at Google: found by the page's
	// profile fetch and by offline-fetch.
	re.emu.RevokeUser(graceSub)
	mustStatus(t, grace.do(http.MethodGet, "/api/profile", nil, nil), http.StatusConflict)
	if _, err := re.runOffline(t.Context(), &fetchOutput); err != nil {
		t.Fatal(err)
	}

	// Disconnect: Google failing first, then for real.
	re.emu.InjectFault(emulator.Fault{Endpoint: emulator.EndpointRevoke, Status: 503})
	mustStatus(t, b.xhr("/disconnect", nil), http.StatusBadGateway)
	mustStatus(t, b.xhr("/disconnect", nil), http.StatusOK)
	mustStatus(t, grace.xhr("/disconnect", nil), http.StatusOK)

	// What was collected: enough of each kind that the search means
	// something, and logs from every component that logs.
	secrets := re.issued.all()
	for kind, least := range map[string]int{
		"access token": 8, "refresh token": 3, "ID token": 15, "code": 8,
		"session cookie": 4, "client secret": 1, "session key": 2,
	} {
		if got := len(secrets[kind]); got < least {
			t.Errorf("%d secrets of kind %q collected, want at least %d", got, kind, least)
		}
	}
	logs := re.logs.String()
	for _, component := range []string{"web", "auth", "verifier", "offline", "offline-fetch"} {
		if !strings.Contains(logs, `"component":"`+component+`"`) {
			t.Errorf("no log line from %s", component)
		}
	}

	searched := logs + "\n" + fetchOutput.String()
	total, found := 0, 0
	kinds := make([]string, 0, len(secrets))
	for kind := range secrets {
		kinds = append(kinds, kind)
	}
	sort.Strings(kinds)
	for _, kind := range kinds {
		for _, secret := range secrets[kind] {
			total++
			if where := leak(searched, kind, secret); where != "" {
				found++
				t.Errorf("a %s is in the logs (%s): ...%s...", kind, where, excerpt(searched, where))
			}
		}
	}
	t.Logf("%d secrets searched for in %d log lines: %d found", total, strings.Count(logs, "\n"), found)
	if found > 0 {
		t.Log(logs)
	}
}

// leak returns what of secret appears in text ("" when nothing does): the
// secret itself, its distinctive tail (a token cut short in a log is still
// a leak), or for binary keys their hex and base64 spellings.
func leak(text, kind, secret string) string {
	forms := []string{secret}
	switch kind {
	case "session key":
		b := []byte(secret)
		forms = []string{hex.EncodeToString(b), base64.StdEncoding.EncodeToString(b),
			base64.RawStdEncoding.EncodeToString(b), base64.URLEncoding.EncodeToString(b),
			base64.RawURLEncoding.EncodeToString(b), fmt.Sprintf("%q", secret)}
	case "client secret":
	default:
		// Tokens and cookies end in random characters (a signature, a
		// MAC, or the token's random part); 16 of them are the token.
		if len(secret) > 32 {
			forms = append(forms, secret[len(secret)-16:])
		}
	}
	for _, f := range forms {
		if strings.Contains(text, f) {
			return f
		}
	}
	return ""
}

func excerpt(text, s string) string {
	i := strings.Index(text, s)
	from, to := max(0, i-80), min(len(text), i+len(s)+40)
	return text[from:to]
}

// TestLeakFindsSecrets checks the search itself: a token logged whole or
// cut, or a key logged in hex, is found.
func TestLeakFindsSecrets(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	token := "ya29.a0AfB_byC" + strings.Repeat("x", 20) + "0123456789abcdef"
	key := string([]byte{0, 1, 2, 250, 251, 252})
	log.Info("oops", "token", token[10:])
	log.Info("oops", "key", hex.EncodeToString([]byte(key)))
	if leak(buf.String(), "access token", token) == "" {
		t.Error("a cut token was not found")
	}
	if leak(buf.String(), "session key", key) == "" {
		t.Error("a hex key was not found")
	}
	if leak(buf.String(), "access token", "ya29.other"+strings.Repeat("y", 40)) != "" {
		t.Error("found a token that is not there")
	}
}
