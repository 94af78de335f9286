package emulator_test

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"example.com/signin/internal/emulator"
)

func TestPeopleMe(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	tok := e.offlineTokens(t).str("access_token")

	r := e.people(t, tok)
	if r.status != 200 {
		t.Fatalf("people/me: %d %s", r.status, r.raw)
	}
	if r.str("resourceName") != "people/"+adaSub || !strings.HasPrefix(r.str("etag"), "%") {
		t.Errorf("resourceName/etag: %s", r.raw)
	}
	names := r.body["names"].([]any)[0].(map[string]any)
	meta := names["metadata"].(map[string]any)
	src := meta["source"].(map[string]any)
	if names["displayName"] != "Ada Lovelace" || names["givenName"] != "Ada" || names["familyName"] != "Lovelace" ||
		meta["primary"] != true || src["type"] != "PROFILE" || src["id"] != adaSub {
		t.Errorf("names: %v", names)
	}
	email := r.body["emailAddresses"].([]any)[0].(map[string]any)
	if email["value"] != "ada@example.com" {
		t.Errorf("emailAddresses: %v", email)
	}
	photo := r.body["photos"].([]any)[0].(map[string]any)
	photoURL, _ := photo["url"].(string)
	if !strings.HasPrefix(photoURL, e.srv.URL+"/emulator/avatars/") {
		t.Errorf("photo url %q", photoURL)
	}
	if resp := e.get(t, strings.TrimPrefix(photoURL, e.srv.URL), ""); resp.status != 200 || resp.header.Get("Content-Type") != "image/svg+xml" {
		t.Errorf("avatar: %d %s", resp.status, resp.header.Get("Content-Type"))
	}

	// Only the requested fields.
	r = e.get(t, "/v1/people/me?personFields=names", tok)
	if _, ok := r.body["emailAddresses"]; ok || r.body["names"] == nil {
		t.Errorf("personFields=names answered %s", r.raw)
	}
}

func wantAPIError(t *testing.T, r response, code int, status, message string) {
	t.Helper()
	e, _ := r.body["error"].(map[string]any)
	if r.status != code || e == nil || e["code"] != float64(code) || e["status"] != status || (message != "" && e["message"] != message) {
		t.Errorf("got %d %s\nwant %d %s %q", r.status, r.raw, code, status, message)
	}
}

func TestPeopleErrors(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	tok := e.offlineTokens(t).str("access_token")
	profileOnly := e.exchange(t, e.mint(t, emulator.CodeRequest{Scope: "openid profile"}), "postmessage").str("access_token")
	emailOnly := e.exchange(t, e.mint(t, emulator.CodeRequest{Scope: "openid email"}), "postmessage").str("access_token")

	tests := []struct {
		name, path, token string
		code              int
		status, message   string
	}{
		{"personFields missing", "/v1/people/me", tok, 400, "INVALID_ARGUMENT",
			"personFields mask is required. Please specify one or more valid paths. Valid paths are documented at https://developers.google.com/people/api/rest/v1/people/get."},
		{"personFields bogus", "/v1/people/me?personFields=names,shoeSize", tok, 400, "INVALID_ARGUMENT", ""},
		{"no token", "/v1/people/me?personFields=names", "", 401, "UNAUTHENTICATED", ""},
		{"unknown token", "/v1/people/me?personFields=names", "ya29.forged", 401, "UNAUTHENTICATED", ""},
		{"no profile scope", "/v1/people/me?personFields=names", emailOnly, 403, "PERMISSION_DENIED", "Request had insufficient authentication scopes."},
		{"no email scope", "/v1/people/me?personFields=emailAddresses", profileOnly, 403, "PERMISSION_DENIED", "Request had insufficient authentication scopes."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.get(t, tt.path, tt.token)
			wantAPIError(t, r, tt.code, tt.status, tt.message)
			if tt.code == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), `Bearer realm="https://accounts.google.com/"`) {
				t.Errorf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
			}
		})
	}

	if r := e.get(t, "/v1/people/me?personFields=names", profileOnly); r.status != 200 {
		t.Errorf("profile scope, names: %d", r.status)
	}

	t.Run("expired access token", func(t *testing.T) {
		e.emu.ShiftClock(3600 * time.Second)
		r := e.people(t, tok)
		wantAPIError(t, r, 401, "UNAUTHENTICATED", "")
		if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="https://accounts.google.com/", error="invalid_token"` {
			t.Errorf("WWW-Authenticate = %q", got)
		}
	})
}

func TestPeopleCORS(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	req, _ := http.NewRequest(http.MethodOptions, e.url("/v1/people/me?personFields=names"), nil)
	req.Header.Set("Origin", "http://localhost:9021")
	req.Header.Set("Access-Control-Request-Method", "GET")
	req.Header.Set("Access-Control-Request-Headers", "authorization")
	r := do(t, req)
	if r.status/100 != 2 || r.header.Get("Access-Control-Allow-Origin") != "http://localhost:9021" ||
		!strings.Contains(strings.ToLower(r.header.Get("Access-Control-Allow-Headers")), "authorization") {
		t.Errorf("preflight: %d %v", r.status, r.header)
	}
}

func TestCertsAndKeyRotation(t *testing.T) {
	// The clock stands still but for ShiftClock: "one second before its
	// time" must not depend on how long the steps between take.
	start := time.Now()
	e := newEnv(t, emulator.Config{KeyMaxAge: 6 * time.Hour, Now: func() time.Time { return start }})
	r := e.get(t, "/oauth2/v3/certs", "")
	if got := r.header.Get("Cache-Control"); got != "public, max-age=21600, must-revalidate, no-transform" {
		t.Errorf("Cache-Control = %q", got)
	}
	if age, err := strconv.Atoi(r.header.Get("Age")); err != nil || age < 0 || age >= 21600 {
		t.Errorf("Age = %q", r.header.Get("Age"))
	}
	_, oldKid := e.emu.SigningKey()
	keys := r.body["keys"].([]any)
	k := keys[0].(map[string]any)
	if len(keys) != 1 || k["kid"] != oldKid || k["kty"] != "RSA" || k["alg"] != "RS256" || k["use"] != "sig" || k["e"] != "AQAB" || k["n"] == "" {
		t.Errorf("JWKS: %s", r.raw)
	}
	oldToken := e.offlineTokens(t).str("id_token")

	// A rotation publishes the new key first and signs with it later.
	rot, err := e.emu.RotateKey()
	if err != nil || rot.Kid == oldKid || rot.Signing || !rot.InKeySet || rot.SignsFrom.Sub(rot.Published) != 6*time.Hour {
		t.Fatalf("RotateKey: %+v, %v", rot, err)
	}
	newKid := rot.Kid
	if got := certKids(t, e); got != newKid+","+oldKid {
		t.Errorf("kids after rotation = %v, want [%s %s]", got, newKid, oldKid)
	}
	if h := jwtHeader(t, e.offlineTokensFor(t, graceSub).str("id_token")); h["kid"] != oldKid {
		t.Errorf("token signed by %v right after the rotation, want the old key %s", h["kid"], oldKid)
	}
	e.emu.ShiftClock(6*time.Hour - time.Second)
	if _, kid := e.emu.SigningKey(); kid != oldKid {
		t.Errorf("new key signs before its time")
	}
	e.emu.ShiftClock(time.Second)
	if h := jwtHeader(t, e.offlineTokensFor(t, graceSub).str("id_token")); h["kid"] != newKid {
		t.Errorf("new token signed by %v, want %s", h["kid"], newKid)
	}
	// The replaced key stays published for the ID token lifetime plus
	// max-age, then retires.
	e.emu.ShiftClock(7*time.Hour - time.Second)
	if got := certKids(t, e); got != newKid+","+oldKid {
		t.Errorf("kids before the old key retires = %v", got)
	}
	e.emu.ShiftClock(time.Second)
	if got := certKids(t, e); got != newKid {
		t.Errorf("kids after the old key retired = %v, want %s", got, newKid)
	}
	if r := e.get(t, "/tokeninfo?id_token="+oldToken, ""); r.status != 400 {
		t.Errorf("tokeninfo of a token signed by a retired key: %s", r.raw)
	}
	if age, _ := strconv.Atoi(e.get(t, "/oauth2/v3/certs", "").header.Get("Age")); age != 0 {
		t.Errorf("Age %d right after the key set changed", age)
	}
	e.emu.ShiftClock(7 * time.Hour)
	if age, _ := strconv.Atoi(e.get(t, "/oauth2/v3/certs", "").header.Get("Age")); age >= 21600 || age < 3600 {
		t.Errorf("Age %d, want 1h (7h modulo max-age)", age)
	}

	// An immediate rotation signs at once; the replaced key stays.
	now, err := e.emu.RotateKeyNow()
	if err != nil || !now.Signing {
		t.Fatalf("RotateKeyNow: %+v, %v", now, err)
	}
	if h := jwtHeader(t, e.offlineTokensFor(t, graceSub).str("id_token")); h["kid"] != now.Kid {
		t.Errorf("token signed by %v right after an immediate rotation, want %s", h["kid"], now.Kid)
	}
	if got := certKids(t, e); got != now.Kid+","+newKid {
		t.Errorf("kids after an immediate rotation = %v", got)
	}
}

func certKids(t *testing.T, e *env) string {
	t.Helper()
	r := e.get(t, "/oauth2/v3/certs", "")
	var kids []string
	for _, k := range r.body["keys"].([]any) {
		kids = append(kids, k.(map[string]any)["kid"].(string))
	}
	return strings.Join(kids, ",")
}

func (e *env) offlineTokensFor(t *testing.T, sub string) response {
	t.Helper()
	return e.exchange(t, e.mint(t, emulator.CodeRequest{Sub: sub, AccessType: "offline"}), "postmessage")
}

func TestFaults(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	code := e.mint(t, emulator.CodeRequest{})

	e.emu.InjectFault(emulator.Fault{Endpoint: "token", Status: 503, RetryAfter: "7"})
	r := e.exchange(t, code, "postmessage")
	if r.status != 503 || r.header.Get("Retry-After") != "7" {
		t.Errorf("fault: %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	// The fault answered before the code was looked at: it is still good.
	if r := e.exchange(t, code, "postmessage"); r.status != 200 {
		t.Errorf("after the fault: %d %s", r.status, r.raw)
	}

	e.emu.InjectFault(emulator.Fault{Endpoint: "people", Count: 2, Status: 429})
	tok := e.offlineTokens(t).str("access_token")
	for range 2 {
		wantAPIError(t, e.people(t, tok), 429, "RESOURCE_EXHAUSTED", "")
	}
	if r := e.people(t, tok); r.status != 200 {
		t.Errorf("third people call: %d", r.status)
	}

	e.emu.InjectFault(emulator.Fault{Endpoint: "token", Malformed: true})
	req, _ := http.NewRequest(http.MethodPost, e.url("/token"), strings.NewReader("grant_type=refresh_token"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("malformed fault status %d", resp.StatusCode)
	}

	e.emu.InjectFault(emulator.Fault{Endpoint: "certs", Drop: true})
	if resp, err := http.Get(e.url("/oauth2/v3/certs")); err == nil {
		resp.Body.Close()
		t.Error("dropped connection answered")
	}

	e.emu.InjectFault(emulator.Fault{Endpoint: "revoke", Status: 500, Body: `{"error":"custom"}`})
	if r := e.postForm(t, "/revoke", url.Values{"token": {"x"}}); r.status != 500 || r.str("error") != "custom" {
		t.Errorf("custom body fault: %d %s", r.status, r.raw)
	}

	st := e.emu.Stats()
	if got := st.Endpoints["token"].Status; got[503] != 1 || got[200] < 2 {
		t.Errorf("token status counts %v", got)
	}
	if got := st.Endpoints["certs"].Status[0]; got != 1 {
		t.Errorf("dropped certs requests counted %d, want 1", got)
	}
	if got := st.Endpoints["people"]; got.Requests != 3 || got.Status[429] != 2 {
		t.Errorf("people stats %+v", got)
	}
}

func TestInjectFaultPanicsOnUnknownEndpoint(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	defer func() {
		if recover() == nil {
			t.Error("InjectFault accepted an unknown endpoint")
		}
	}()
	e.emu.InjectFault(emulator.Fault{Endpoint: "tokens", Status: 500})
}

func TestLatency(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	e.emu.SetLatency("certs", time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url("/oauth2/v3/certs"), nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("a request to a slowed endpoint answered before the client's deadline")
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slowed request: %v", err)
	}
	// Other endpoints are not slowed, and the latency can be removed.
	if r := e.get(t, "/.well-known/openid-configuration", ""); r.status != 200 {
		t.Errorf("discovery: %d", r.status)
	}
	e.emu.SetLatency("certs", 0)
	if r := e.get(t, "/oauth2/v3/certs", ""); r.status != 200 {
		t.Errorf("certs after latency removed: %d", r.status)
	}
}

func TestReset(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	tok := e.offlineTokens(t)
	added, err := e.emu.AddUser(emulator.User{Email: "new@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	e.emu.InjectFault(emulator.Fault{Endpoint: "people", Status: 500})
	e.emu.SetLatency("token", time.Hour)
	e.emu.ShiftClock(time.Hour)

	e.emu.Reset()

	if st := e.emu.Stats(); len(st.Endpoints) != 0 || len(st.Grants) != 0 || st.Revocations != 0 {
		t.Errorf("stats after reset: %+v", st)
	}
	wantOAuthError(t, e.refresh(t, tok.str("refresh_token")), 400, "invalid_grant", "")
	if r := e.people(t, tok.str("access_token")); r.status != 401 {
		t.Errorf("access token after reset: %d (the fault should be gone too)", r.status)
	}
	for _, u := range e.emu.Users() {
		if u.Sub == added.Sub {
			t.Error("added user survived reset")
		}
	}
	if len(e.emu.Users()) != 3 {
		t.Errorf("users after reset: %d, want the 3 demo users", len(e.emu.Users()))
	}
	// A fresh consent gives a refresh token again, without delay.
	e.offlineTokens(t)
}

func TestAddUser(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	u, err := e.emu.AddUser(emulator.User{Email: "katherine.johnson@example.net", HostedDomain: "example.net"})
	if err != nil {
		t.Fatal(err)
	}
	if len(u.Sub) != 21 || u.Name != "Katherine Johnson" || u.GivenName != "Katherine" || u.FamilyName != "Johnson" {
		t.Errorf("added user %+v", u)
	}
	if _, err := e.emu.AddUser(emulator.User{Email: "KATHERINE.johnson@example.net"}); !errors.Is(err, emulator.ErrUserExists) {
		t.Errorf("duplicate email: %v", err)
	}
	for _, bad := range []emulator.User{{}, {Email: "not an email"}, {Email: "x@example.com", Sub: "has space"}, {Email: "y@example.com", Picture: "javascript:alert(1)"}} {
		if _, err := e.emu.AddUser(bad); err == nil {
			t.Errorf("AddUser(%+v) accepted", bad)
		}
	}
	// Hostile subs are allowed (Google promises only ASCII), for tests of
	// what the app does with them.
	odd, err := e.emu.AddUser(emulator.User{Email: "odd@example.com", Sub: "../../x"})
	if err != nil {
		t.Fatal(err)
	}
	idt, err := e.emu.MintIDToken(demoID, odd.Sub, "")
	c := claims(t, idt)
	if err != nil || c["sub"] != "../../x" {
		t.Errorf("MintIDToken for a hostile sub: %v", err)
	}
	pic, _ := c["picture"].(string)
	if r := e.get(t, "/emulator/avatars/"+pic[strings.LastIndex(pic, "/")+1:], ""); r.status != 200 {
		t.Errorf("avatar of a hostile sub (%s): %d", pic, r.status)
	}
}

func TestStateFileSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "emulator.json")
	emu, err := emulator.New(emulator.Config{StateFile: path})
	if err != nil {
		t.Fatal(err)
	}
	srv := newEnvFrom(t, emu)
	tok := srv.offlineTokens(t)
	added, err := emu.AddUser(emulator.User{Email: "kept@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	_, kid := emu.SigningKey()
	srv.srv.Close()
	if err := emu.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}

	again := newEnv(t, emulator.Config{StateFile: path})
	if _, k := again.emu.SigningKey(); k != kid {
		t.Errorf("signing key not kept: %s, want %s", k, kid)
	}
	if r := again.refresh(t, tok.str("refresh_token")); r.status != 200 {
		t.Errorf("refresh after restart: %d %s", r.status, r.raw)
	}
	if r := again.people(t, tok.str("access_token")); r.status != 200 {
		t.Errorf("access token after restart: %d", r.status)
	}
	found := false
	for _, u := range again.emu.Users() {
		found = found || u.Sub == added.Sub
	}
	if !found {
		t.Error("added user lost across restart")
	}
	if r := again.exchange(t, again.mint(t, emulator.CodeRequest{AccessType: "offline"}), "postmessage"); r.str("refresh_token") != "" {
		t.Error("the kept grant was forgotten: a second consent gave a refresh token")
	}
}

func newEnvFrom(t *testing.T, emu *emulator.Emulator) *env {
	t.Helper()
	e := &env{emu: emu}
	e.srv = newServer(emu)
	t.Cleanup(e.srv.Close)
	return e
}

// TestConcurrentUse runs every kind of request at once; under -race it
// proves the state is guarded, and each flow must still succeed.
func TestConcurrentUse(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	var users []string
	for i := range 8 {
		u, err := e.emu.AddUser(emulator.User{Email: "user" + strconv.Itoa(i) + "@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, u.Sub)
	}
	errc := make(chan string, 64)
	var wg sync.WaitGroup
	for _, sub := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, err := e.emu.MintCode(emulator.CodeRequest{ClientID: demoID, Sub: sub, AccessType: "offline"})
			if err != nil {
				errc <- err.Error()
				return
			}
			tok := e.exchange(t, code, "postmessage")
			for range 5 {
				if r := e.people(t, tok.str("access_token")); r.status != 200 {
					errc <- "people: " + r.raw
				}
				if r := e.refresh(t, tok.str("refresh_token")); r.status != 200 {
					errc <- "refresh: " + r.raw
				}
			}
			if r := e.postForm(t, "/revoke", url.Values{"token": {tok.str("refresh_token")}}); r.status != 200 {
				errc <- "revoke: " + r.raw
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 3 {
			if _, err := e.emu.RotateKey(); err != nil {
				errc <- err.Error()
			}
			e.get(t, "/oauth2/v3/certs", "")
			e.emu.Stats()
			e.emu.SetLatency("discovery", time.Millisecond)
			e.emu.InjectFault(emulator.Fault{Endpoint: "discovery", Status: 500})
		}
	}()
	wg.Wait()
	close(errc)
	for msg := range errc {
		t.Error(msg)
	}
	st := e.emu.Stats()
	if st.Grants["refresh_token"] != 5*len(users) || st.Revocations != len(users) {
		t.Errorf("stats %+v", st)
	}
}

// TestPEMCerts: /oauth2/v1/certs serves the JWKS's keys as X.509
// certificates, as Google does for its Node and Python libraries, with the
// same caching headers.
func TestPEMCerts(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	if _, err := e.emu.RotateKey(); err != nil {
		t.Fatal(err)
	}
	jwks := e.get(t, "/oauth2/v3/certs", "")
	r := e.get(t, "/oauth2/v1/certs", "")
	if r.status != 200 || r.header.Get("Cache-Control") != jwks.header.Get("Cache-Control") || r.header.Get("Age") == "" {
		t.Fatalf("PEM certs: %d %v %s", r.status, r.header, r.raw)
	}
	keys := jwks.body["keys"].([]any)
	if len(r.body) != len(keys) || len(keys) != 2 {
		t.Fatalf("PEM certs hold %d keys, JWKS %d", len(r.body), len(keys))
	}
	for _, k := range keys {
		k := k.(map[string]any)
		p, _ := r.body[k["kid"].(string)].(string)
		block, rest := pem.Decode([]byte(p))
		if block == nil || block.Type != "CERTIFICATE" || len(strings.TrimSpace(string(rest))) != 0 {
			t.Fatalf("kid %s: not one PEM certificate: %q", k["kid"], p)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("kid %s: %v", k["kid"], err)
		}
		pub, ok := cert.PublicKey.(*rsa.PublicKey)
		if !ok || base64.RawURLEncoding.EncodeToString(pub.N.Bytes()) != k["n"] {
			t.Errorf("kid %s: the certificate's key is not the JWK's", k["kid"])
		}
		if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
			t.Errorf("kid %s: not self-signed: %v", k["kid"], err)
		}
	}
}
