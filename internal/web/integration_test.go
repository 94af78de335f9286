package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.com/signin"
	"example.com/signin/internal/auth"
	"example.com/signin/internal/auth/authtest"
	"example.com/signin/internal/emulator"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/offline"
	"example.com/signin/internal/store/file"
)

// These tests walk issue 3's flows with everything real but the browser:
// the emulator standing for Google over HTTP, auth's Verifier and Google,
// the file store in a temporary directory, and the server's whole handler
// chain. The browser's part (GIS popups) is played by the emulator's
// in-process MintIDToken and MintCode, which issue exactly what the popup
// would.

// itEnv is the server wired to the emulator.
type itEnv struct {
	*testEnv // for browser(); its fakes are not used
	emu      *emulator.Emulator
	files    *file.Store
	dir      string
}

func newIntegration(t *testing.T) *itEnv {
	t.Helper()
	emu, err := emulator.New(emulator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	google := httptest.NewServer(emu.Handler())
	t.Cleanup(google.Close)
	gnet := testNet(t, strings.TrimPrefix(google.URL, "http://"))

	client := &auth.Client{ID: emulator.DemoClientID, Secret: emulator.DemoClientSecret}
	g := auth.NewGoogle(auth.GoogleConfig{Client: client, HTTPClient: gnet.HTTPClient()})
	v, err := auth.NewVerifier(auth.VerifierConfig{Audiences: []string{client.ID}, HTTPClient: gnet.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files, err := file.Open(file.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	grants := grant.New(grant.Config{Store: files, Google: g, Logger: logger})
	s, err := New(Config{
		ClientID:    client.ID,
		Grants:      grants,
		Verifier:    v,
		Google:      g,
		Profiles:    offline.NewFetcher(offline.FetcherConfig{Grants: grants, HTTPClient: gnet.HTTPClient()}),
		Net:         gnet,
		SessionKeys: newTestKeys(t),
		Sessions:    files,
		Demo:        true,
		Logger:      logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	app := httptest.NewServer(s.Handler())
	t.Cleanup(app.Close)
	return &itEnv{
		testEnv: &testEnv{t: t, srv: app, server: s, logs: logs},
		emu:     emu,
		files:   files,
		dir:     dir,
	}
}

func (it *itEnv) user(email, name string) emulator.User {
	it.t.Helper()
	u, err := it.emu.AddUser(emulator.User{Email: email, Name: name})
	if err != nil {
		it.t.Fatal(err)
	}
	return u
}

func (it *itEnv) idToken(sub string) string {
	it.t.Helper()
	tok, err := it.emu.MintIDToken(emulator.DemoClientID, sub, "")
	if err != nil {
		it.t.Fatal(err)
	}
	return tok
}

// code mints a popup code for offline access, as the GIS code client would.
func (it *itEnv) code(sub string, consent bool) string {
	it.t.Helper()
	req := emulator.CodeRequest{ClientID: emulator.DemoClientID, Sub: sub, AccessType: "offline"}
	if consent {
		req.Prompt = "consent"
	}
	c, err := it.emu.MintCode(req)
	if err != nil {
		it.t.Fatal(err)
	}
	return c
}

// record returns the stored record, or nil.
func (it *itEnv) record(sub string) *grant.Record {
	it.t.Helper()
	rec, err := it.files.Get(context.Background(), sub)
	if signin.ErrorKind(err) == signin.ENOTFOUND {
		return nil
	}
	if err != nil {
		it.t.Fatal(err)
	}
	return rec
}

func mustStatus(t *testing.T, r *response, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d: %s", r.status, want, r.body)
	}
}

func TestIntegrationIDTokenSignIn(t *testing.T) {
	it := newIntegration(t)
	u := it.user("grace.h@example.org", "Grace Hopper")
	b := it.browser()

	mustStatus(t, b.xhr("/tokensignin", url.Values{"credential": {it.idToken(u.Sub)}}), http.StatusOK)
	doc := parseHTML(t, b.get("/").body)
	if got := textOf(mustID(t, doc, "user-name")); got != "Grace Hopper" {
		t.Errorf("#user-name %q", got)
	}
	if st, _ := attr(mustID(t, doc, "offline-status"), "data-state"); st != "none" {
		t.Errorf("offline %q", st)
	}
	mustID(t, doc, "enable-offline")
	if it.record(u.Sub) != nil {
		t.Error("an ID-token sign-in stored credentials")
	}

	// A mobile backend's call with the same ID token, no session.
	r := it.browser().do(http.MethodGet, "/api/me", nil, http.Header{"Authorization": {"Bearer " + it.idToken(u.Sub)}})
	mustStatus(t, r, http.StatusOK)
	if r.json(t)["user"].(map[string]any)["email"] != "grace.h@example.org" {
		t.Errorf("/api/me %s", r.body)
	}
}

// Optional offline access: sign in, then enable it; a second consent
// without prompt=consent brings no refresh token and keeps the stored one.
func TestIntegrationOptionalOfflineAccess(t *testing.T) {
	it := newIntegration(t)
	u := it.user("ada.l@example.org", "Ada Lovelace")
	b := it.browser()
	mustStatus(t, b.xhr("/tokensignin", url.Values{"credential": {it.idToken(u.Sub)}}), http.StatusOK)

	r := b.xhr("/connect", url.Values{"code": {it.code(u.Sub, true)}})
	mustStatus(t, r, http.StatusOK)
	if r.json(t)["offline"] != true {
		t.Fatalf("first consent: %s", r.body)
	}
	first := it.record(u.Sub)
	if first == nil || first.Token.RefreshToken == "" || first.Status != grant.StatusActive {
		t.Fatalf("record after first consent: %+v", first)
	}

	r = b.xhr("/connect", url.Values{"code": {it.code(u.Sub, false)}})
	mustStatus(t, r, http.StatusOK)
	if r.json(t)["offline"] != true {
		t.Errorf("second consent: %s", r.body)
	}
	second := it.record(u.Sub)
	if second.Token.RefreshToken != first.Token.RefreshToken {
		t.Error("the second consent replaced the stored refresh token")
	}
	if second.Token.AccessToken == first.Token.AccessToken {
		t.Error("the access token was not updated")
	}
	if got := it.emu.Stats().Grants["authorization_code"]; got != 2 {
		t.Errorf("%d code exchanges, want 2", got)
	}

	// The page shows the profile the server fetched with the stored grant.
	doc := parseHTML(t, b.get("/").body)
	if st, _ := attr(mustID(t, doc, "offline-status"), "data-state"); st != "active" {
		t.Errorf("offline %q", st)
	}
	if got := textOf(mustID(t, doc, "profile-name")); got != "Ada Lovelace" {
		t.Errorf("#profile-name %q", got)
	}
	if got := textOf(mustID(t, doc, "profile-email")); got != "ada.l@example.org" {
		t.Errorf("#profile-email %q", got)
	}
	r = b.do(http.MethodGet, "/api/profile", nil, nil)
	mustStatus(t, r, http.StatusOK)
	if !strings.Contains(string(r.body), `"ada.l@example.org"`) {
		t.Errorf("/api/profile %s", r.body)
	}
}

// Necessary offline access: one step, as a new user; then the returning
// user (new session from a plain ID-token sign-in) finds it still there.
func TestIntegrationOneStepAndReturningUser(t *testing.T) {
	it := newIntegration(t)
	u := it.user("linus@example.com", "Linus")
	b := it.browser()

	r := b.xhr("/connect", url.Values{"code": {it.code(u.Sub, false)}}) // first consent: no prompt needed
	mustStatus(t, r, http.StatusOK)
	if got := r.json(t); got["offline"] != true || got["user"].(map[string]any)["sub"] != u.Sub {
		t.Fatalf("one step: %s", r.body)
	}
	if rec := it.record(u.Sub); rec == nil || rec.Token.RefreshToken == "" {
		t.Fatalf("record %+v", rec)
	}
	if b.signedInAs() != u.Sub {
		t.Fatal("one step did not sign in")
	}
	// A live session sees the page directly: no Google call at all.
	before := it.emu.Stats()
	doc := parseHTML(t, b.get("/").body)
	mustID(t, doc, "profile-name")
	after := it.emu.Stats()
	if after.Endpoints["token"].Requests != before.Endpoints["token"].Requests {
		t.Error("the returning page made a token request")
	}

	mustStatus(t, b.xhr("/signout", nil), http.StatusOK)
	if b.signedInAs() != "" {
		t.Fatal("still signed in")
	}
	// Signing in again with just an ID token: offline access is still there.
	r = b.xhr("/tokensignin", url.Values{"credential": {it.idToken(u.Sub)}})
	mustStatus(t, r, http.StatusOK)
	if r.json(t)["offline"] != true {
		t.Errorf("returning user: %s", r.body)
	}

	// A second one-step sign-in without prompt=consent gets no refresh
	// token from Google, and keeps the stored one.
	rt := it.record(u.Sub).Token.RefreshToken
	b2 := it.browser()
	r = b2.xhr("/connect", url.Values{"code": {it.code(u.Sub, false)}})
	mustStatus(t, r, http.StatusOK)
	if r.json(t)["offline"] != true || it.record(u.Sub).Token.RefreshToken != rt {
		t.Errorf("second one-step sign-in: %s", r.body)
	}
}

// A code for another account than the session's is refused and stores
// nothing.
func TestIntegrationAccountMismatch(t *testing.T) {
	it := newIntegration(t)
	a := it.user("a@example.com", "A")
	other := it.user("b@example.com", "B")
	b := it.browser()
	mustStatus(t, b.xhr("/connect", url.Values{"code": {it.code(a.Sub, true)}}), http.StatusOK)
	stored := it.record(a.Sub)

	r := b.xhr("/connect", url.Values{"code": {it.code(other.Sub, true)}})
	mustStatus(t, r, http.StatusForbidden)
	if r.errorCode(t) != "account_mismatch" {
		t.Errorf("error %s", r.body)
	}
	if it.record(other.Sub) != nil {
		t.Error("the other account's grant was stored")
	}
	if rec := it.record(a.Sub); rec.Token != stored.Token {
		t.Error("the session user's record changed")
	}
	if b.signedInAs() != a.Sub {
		t.Error("the session changed")
	}
}

// A code posted twice: Google refuses the second, and nothing changes.
func TestIntegrationReusedCode(t *testing.T) {
	it := newIntegration(t)
	u := it.user("r@example.com", "R")
	b := it.browser()
	code := it.code(u.Sub, true)
	mustStatus(t, b.xhr("/connect", url.Values{"code": {code}}), http.StatusOK)
	stored := it.record(u.Sub)

	r := b.xhr("/connect", url.Values{"code": {code}})
	mustStatus(t, r, http.StatusBadRequest)
	if r.errorCode(t) != "invalid_grant" {
		t.Errorf("error %s", r.body)
	}
	if rec := it.record(u.Sub); rec.Token != stored.Token || !rec.UpdatedAt.Equal(stored.UpdatedAt) {
		t.Errorf("record changed: %+v", rec)
	}

	// And a signed-out browser gets no session from it.
	b2 := it.browser()
	r = b2.xhr("/connect", url.Values{"code": {code}})
	mustStatus(t, r, http.StatusBadRequest)
	if r.cookie(sessionCookie) != nil || b2.signedInAs() != "" {
		t.Error("a failed exchange created a session")
	}
}

// Disconnect revokes at Google (the emulator counts it), deletes the file
// and ends the session; Google then treats the next consent as a first one.
func TestIntegrationDisconnect(t *testing.T) {
	it := newIntegration(t)
	u := it.user("d@example.com", "D")
	b := it.browser()
	mustStatus(t, b.xhr("/connect", url.Values{"code": {it.code(u.Sub, true)}}), http.StatusOK)

	// Google unreachable: everything stays, for a retry.
	it.emu.InjectFault(emulator.Fault{Endpoint: emulator.EndpointRevoke, Status: http.StatusServiceUnavailable})
	mustStatus(t, b.xhr("/disconnect", nil), http.StatusBadGateway)
	if it.record(u.Sub) == nil || b.signedInAs() != u.Sub {
		t.Fatal("a failed disconnect changed something")
	}

	revocations := it.emu.Stats().Revocations
	mustStatus(t, b.xhr("/disconnect", nil), http.StatusOK)
	if got := it.emu.Stats().Revocations; got != revocations+1 {
		t.Errorf("emulator revocations %d, want %d", got, revocations+1)
	}
	if it.record(u.Sub) != nil {
		t.Error("the record is still stored")
	}
	if b.signedInAs() != "" {
		t.Error("still signed in")
	}
	// The grant is gone at Google: a consent without prompt=consent yields
	// a refresh token again.
	r := b.xhr("/connect", url.Values{"code": {it.code(u.Sub, false)}})
	mustStatus(t, r, http.StatusOK)
	if r.json(t)["offline"] != true {
		t.Errorf("after disconnect, a new consent: %s", r.body)
	}
}

// A grant the user revoked in their Google account shows as "reconnect
// needed" on the page, and reconnecting (prompt=consent) restores it.
func TestIntegrationRevokedGrantAndReconnect(t *testing.T) {
	it := newIntegration(t)
	u := it.user("v@example.com", "V")
	b := it.browser()
	mustStatus(t, b.xhr("/connect", url.Values{"code": {it.code(u.Sub, true)}}), http.StatusOK)

	it.emu.RevokeUser(u.Sub)
	r := b.do(http.MethodGet, "/api/profile", nil, nil)
	mustStatus(t, r, http.StatusConflict)
	if r.errorCode(t) != "reconnect_required" {
		t.Errorf("error %s", r.body)
	}
	if rec := it.record(u.Sub); rec == nil || rec.Status != grant.StatusRevoked {
		t.Fatalf("record %+v", rec)
	}
	doc := parseHTML(t, b.get("/").body)
	mustID(t, doc, "reconnect")
	if st, _ := attr(mustID(t, doc, "offline-status"), "data-state"); st != "revoked" {
		t.Errorf("offline %q", st)
	}

	r = b.xhr("/connect", url.Values{"code": {it.code(u.Sub, true)}})
	mustStatus(t, r, http.StatusOK)
	if r.json(t)["offline_status"] != "active" || it.record(u.Sub).Status != grant.StatusActive {
		t.Errorf("reconnect: %s", r.body)
	}
	mustID(t, parseHTML(t, b.get("/").body), "profile-name")
}

// Forged and malformed ID tokens are refused with 401 and no session.
func TestIntegrationForgedTokens(t *testing.T) {
	it := newIntegration(t)
	u := it.user("f@example.com", "F")
	key, kid := it.emu.SigningKey()
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	claims := func(change func(map[string]any)) map[string]any {
		c := authtest.Claims(emulator.DemoClientID, u.Sub)
		c["iss"] = emulator.Issuer
		c["email"] = u.Email
		change(c)
		return c
	}
	header := authtest.Header(kid)
	tests := []struct {
		name  string
		token string
	}{
		{"other key", authtest.SignRS256(other, header, claims(func(map[string]any) {}))},
		{"expired", authtest.SignRS256(key, header, claims(func(c map[string]any) {
			c["iat"] = time.Now().Add(-3 * time.Hour).Unix()
			c["exp"] = time.Now().Add(-2 * time.Hour).Unix()
		}))},
		{"wrong audience", authtest.SignRS256(key, header, claims(func(c map[string]any) {
			c["aud"] = "1234-other.apps.googleusercontent.com"
			c["azp"] = "1234-other.apps.googleusercontent.com"
		}))},
		{"wrong issuer", authtest.SignRS256(key, header, claims(func(c map[string]any) { c["iss"] = "https://evil.example" }))},
		{"alg none", authtest.Segment(map[string]any{"alg": "none", "kid": kid, "typ": "JWT"}) + "." + authtest.Segment(claims(func(map[string]any) {})) + "."},
		{"HS256 keyed with the public key", hs256Token(&key.PublicKey, kid, claims(func(map[string]any) {}))},
		{"tampered payload", tamper(authtest.SignRS256(key, header, claims(func(map[string]any) {})))},
		{"not a JWT", "hello"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := it.browser()
			r := b.xhr("/tokensignin", url.Values{"credential": {tc.token}})
			mustStatus(t, r, http.StatusUnauthorized)
			if r.errorCode(t) != "invalid_token" || r.cookie(sessionCookie) != nil {
				t.Errorf("%s, cookie %v", r.body, r.cookie(sessionCookie))
			}
			r = b.do(http.MethodGet, "/api/me", nil, http.Header{"Authorization": {"Bearer " + tc.token}})
			mustStatus(t, r, http.StatusUnauthorized)
		})
	}
	// The control: the same construction, unforged, is accepted.
	r := it.browser().xhr("/tokensignin", url.Values{"credential": {authtest.SignRS256(key, header, claims(func(map[string]any) {}))}})
	mustStatus(t, r, http.StatusOK)
}

// hs256Token signs claims with HMAC-SHA256 keyed with the public key:
// the classic attack on a verifier that trusts the header's alg.
func hs256Token(pub *rsa.PublicKey, kid string, claims map[string]any) string {
	input := authtest.Segment(map[string]any{"alg": "HS256", "kid": kid, "typ": "JWT"}) + "." + authtest.Segment(claims)
	mac := hmac.New(sha256.New, x509.MarshalPKCS1PublicKey(pub))
	mac.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// tamper changes one character of a JWT's payload, keeping it valid base64.
func tamper(jwt string) string {
	parts := strings.Split(jwt, ".")
	p := []byte(parts[1])
	i := len(p) / 2
	if p[i] == 'A' {
		p[i] = 'B'
	} else {
		p[i] = 'A'
	}
	parts[1] = string(p)
	return strings.Join(parts, ".")
}

// damage cuts sub's record file short, as a full disk or a bad copy would.
func (it *itEnv) damage(sub string) string {
	it.t.Helper()
	path := filepath.Join(it.dir, sub+".json")
	if _, err := os.Stat(path); err != nil {
		it.t.Fatalf("no record file to damage: %v", err)
	}
	if err := os.WriteFile(path, []byte(`{"version":1,"sub":"`+sub+`","status":"act`), 0o600); err != nil {
		it.t.Fatal(err)
	}
	return path
}

// A damaged record never locks its user out: they sign in, the API and the
// page say offline access needs reconnecting, connecting again replaces the
// record (the damaged file is kept aside), and disconnect works.
func TestIntegrationDamagedRecord(t *testing.T) {
	it := newIntegration(t)
	u := it.user("dmg@example.com", "Damaged")
	mustStatus(t, it.browser().xhr("/connect", url.Values{"code": {it.code(u.Sub, true)}}), http.StatusOK)
	it.damage(u.Sub)

	b := it.browser()
	r := b.xhr("/tokensignin", url.Values{"credential": {it.idToken(u.Sub)}})
	mustStatus(t, r, http.StatusOK)
	if got := r.json(t)["offline_status"]; got != "unreadable" {
		t.Errorf("/tokensignin offline_status %v, want unreadable", got)
	}
	r = b.do(http.MethodGet, "/api/me", nil, nil)
	mustStatus(t, r, http.StatusOK)
	if got := r.json(t)["offline_status"]; got != "unreadable" {
		t.Errorf("/api/me offline_status %v, want unreadable", got)
	}
	r = b.do(http.MethodGet, "/api/profile", nil, nil)
	mustStatus(t, r, http.StatusConflict)
	if r.errorCode(t) != "reconnect_required" {
		t.Errorf("/api/profile %s", r.body)
	}
	doc := parseHTML(t, b.get("/").body)
	if st, _ := attr(mustID(t, doc, "offline-status"), "data-state"); st != "unreadable" {
		t.Errorf("page offline state %q, want unreadable", st)
	}
	mustID(t, doc, "reconnect")

	// Connecting again replaces the damaged record; the old file is kept
	// aside, under a name no reader takes for a record.
	r = b.xhr("/connect", url.Values{"code": {it.code(u.Sub, true)}})
	mustStatus(t, r, http.StatusOK)
	if got := r.json(t)["offline_status"]; got != "active" {
		t.Errorf("/connect after damage: %s", r.body)
	}
	if rec := it.record(u.Sub); rec == nil || rec.Token.RefreshToken == "" {
		t.Fatalf("record after reconnecting: %+v", rec)
	}
	aside, _ := filepath.Glob(filepath.Join(it.dir, "*"+u.Sub+"*damaged*"))
	if len(aside) != 1 {
		ents, _ := os.ReadDir(it.dir)
		t.Errorf("damaged file kept aside: %v; directory: %v", aside, ents)
	} else if b, _ := os.ReadFile(aside[0]); !strings.HasSuffix(string(b), `"act`) {
		t.Errorf("file kept aside holds %q, want the damaged record", b)
	}
	if !strings.Contains(it.logs.String(), "damaged") {
		t.Errorf("replacing a damaged record was not logged:\n%s", it.logs)
	}

	// Disconnect works with a damaged record too.
	it.damage(u.Sub)
	mustStatus(t, b.xhr("/disconnect", nil), http.StatusOK)
	if it.record(u.Sub) != nil {
		t.Error("the damaged record is still stored after disconnect")
	}
	if b.signedInAs() != "" {
		t.Error("still signed in after disconnect")
	}
}
