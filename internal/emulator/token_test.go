package emulator_test

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"example.com/signin/internal/emulator"
)

func TestTokenEndpointRefusesWhatGoogleRefuses(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	good := func() url.Values {
		return url.Values{
			"grant_type": {"authorization_code"}, "code": {e.mint(t, emulator.CodeRequest{})},
			"redirect_uri": {"postmessage"}, "client_id": {demoID}, "client_secret": {demoSecret},
		}
	}
	tests := []struct {
		name       string
		edit       func(url.Values)
		status     int
		code, desc string
	}{
		{name: "wrong secret", edit: func(v url.Values) { v.Set("client_secret", "GOCSPX-wrong") }, status: 401, code: "invalid_client", desc: "Unauthorized"},
		{name: "unknown client", edit: func(v url.Values) { v.Set("client_id", "1-other.apps.googleusercontent.com") }, status: 401, code: "invalid_client", desc: "The OAuth client was not found."},
		{name: "no client id", edit: func(v url.Values) { v.Del("client_id") }, status: 400, code: "invalid_request", desc: "Could not determine client ID from request."},
		{name: "no secret", edit: func(v url.Values) { v.Del("client_secret") }, status: 400, code: "invalid_request", desc: "client_secret is missing."},
		{name: "malformed code", edit: func(v url.Values) { v.Set("code", "not-a-code") }, status: 400, code: "invalid_grant", desc: "Malformed auth code."},
		{name: "unknown code", edit: func(v url.Values) { v.Set("code", "4/0A"+strings.Repeat("x", 68)) }, status: 400, code: "invalid_grant", desc: "Bad Request"},
		{name: "missing code", edit: func(v url.Values) { v.Del("code") }, status: 400, code: "invalid_request"},
		{name: "wrong redirect uri", edit: func(v url.Values) { v.Set("redirect_uri", "http://localhost:9021/callback") }, status: 400, code: "redirect_uri_mismatch"},
		{name: "missing redirect uri", edit: func(v url.Values) { v.Del("redirect_uri") }, status: 400, code: "invalid_request"},
		{name: "unsupported grant", edit: func(v url.Values) { v.Set("grant_type", "password") }, status: 400, code: "unsupported_grant_type", desc: "Invalid grant_type: password"},
		{name: "no grant type", edit: func(v url.Values) { v.Del("grant_type") }, status: 400, code: "unsupported_grant_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := good()
			tt.edit(form)
			r := e.postForm(t, "/token", form)
			wantOAuthError(t, r, tt.status, tt.code, tt.desc)
			if got := r.header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			if got := r.header.Get("Content-Type"); got != "application/json; charset=utf-8" {
				t.Errorf("Content-Type = %q", got)
			}
		})
	}
}

func TestCodeExchange(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	code := e.mint(t, emulator.CodeRequest{AccessType: "offline", Nonce: "n-0S6_WzA2Mj"})
	r := e.exchange(t, code, "postmessage")
	if r.status != 200 {
		t.Fatalf("exchange: %d %s", r.status, r.raw)
	}
	if !strings.HasPrefix(r.str("access_token"), "ya29.") || !strings.HasPrefix(r.str("refresh_token"), "1//0") {
		t.Errorf("token shapes: access %q refresh %q", r.str("access_token"), r.str("refresh_token"))
	}
	if r.body["expires_in"] != float64(3599) || r.str("token_type") != "Bearer" {
		t.Errorf("expires_in %v token_type %v", r.body["expires_in"], r.body["token_type"])
	}
	if got := r.str("scope"); got != "openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile" {
		t.Errorf("scope = %q", got)
	}
	if !strings.HasPrefix(code, "4/0A") || len(code) > 256 {
		t.Errorf("code shape %q", code)
	}

	c := claims(t, r.str("id_token"))
	want := map[string]any{
		"iss": "https://accounts.google.com", "aud": demoID, "azp": demoID, "sub": adaSub,
		"email": "ada@example.com", "email_verified": true, "name": "Ada Lovelace",
		"given_name": "Ada", "family_name": "Lovelace", "nonce": "n-0S6_WzA2Mj",
	}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("claim %s = %v, want %v", k, c[k], v)
		}
	}
	sum := sha256.Sum256([]byte(r.str("access_token")))
	if c["at_hash"] != base64.RawURLEncoding.EncodeToString(sum[:16]) {
		t.Errorf("at_hash %v does not match the access token", c["at_hash"])
	}
	if exp, iat := c["exp"].(float64), c["iat"].(float64); exp-iat != 3600 {
		t.Errorf("exp - iat = %v, want 3600", exp-iat)
	}
	if !regexp.MustCompile(`^\d{21}$`).MatchString(adaSub) {
		t.Fatal("demo sub is not 21 digits")
	}
	if _, ok := c["hd"]; ok {
		t.Error("hd claim for a consumer account")
	}
	h := jwtHeader(t, r.str("id_token"))
	_, kid := e.emu.SigningKey()
	if h["alg"] != "RS256" || h["kid"] != kid || h["typ"] != "JWT" {
		t.Errorf("JWT header %v, want RS256 with kid %s", h, kid)
	}
	if strings.Contains(r.str("id_token"), "=") {
		t.Error("ID token uses base64 padding")
	}
}

func TestHostedDomainClaim(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	r := e.exchange(t, e.mint(t, emulator.CodeRequest{Email: "alan@example.org"}), "postmessage")
	if c := claims(t, r.str("id_token")); c["hd"] != "example.org" {
		t.Errorf("hd = %v, want example.org", c["hd"])
	}
}

func TestBasicAuth(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	form := url.Values{"grant_type": {"authorization_code"}, "code": {e.mint(t, emulator.CodeRequest{})}, "redirect_uri": {"postmessage"}}
	req, _ := http.NewRequest(http.MethodPost, e.url("/token"), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(demoID), url.QueryEscape(demoSecret))
	if r := do(t, req); r.status != 200 || r.str("access_token") == "" {
		t.Errorf("Basic auth exchange: %d %s", r.status, r.raw)
	}

	req, _ = http.NewRequest(http.MethodPost, e.url("/token"), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(demoID, "wrong")
	wantOAuthError(t, do(t, req), 401, "invalid_client", "Unauthorized")
}

func TestReusedCode(t *testing.T) {
	for _, tc := range []struct {
		name          string
		revokeOnReuse bool
	}{
		{"google keeps the grant", false},
		{"RFC 6749 revokes the grant", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, emulator.Config{RevokeOnCodeReuse: tc.revokeOnReuse})
			code := e.mint(t, emulator.CodeRequest{AccessType: "offline"})
			first := e.exchange(t, code, "postmessage")
			if first.status != 200 {
				t.Fatalf("first exchange: %d %s", first.status, first.raw)
			}

			wantOAuthError(t, e.exchange(t, code, "postmessage"), 400, "invalid_grant", "Code was already redeemed.")

			people := e.people(t, first.str("access_token"))
			refresh := e.refresh(t, first.str("refresh_token"))
			if tc.revokeOnReuse {
				if people.status != 401 {
					t.Errorf("access token from a replayed code still works: %d", people.status)
				}
				wantOAuthError(t, refresh, 400, "invalid_grant", "Token has been expired or revoked.")
				return
			}
			if people.status != 200 || refresh.status != 200 {
				t.Errorf("the replay killed the first exchange's tokens: people %d, refresh %d %s", people.status, refresh.status, refresh.raw)
			}
		})
	}
}

func TestExpiredCode(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	code := e.mint(t, emulator.CodeRequest{})
	e.emu.ShiftClock(10*time.Minute + time.Second)
	wantOAuthError(t, e.exchange(t, code, "postmessage"), 400, "invalid_grant", "")
}

func TestCodeForOtherClient(t *testing.T) {
	other := emulator.Client{ID: "2-other.apps.googleusercontent.com", Secret: "GOCSPX-other"}
	e := newEnv(t, emulator.Config{Clients: []emulator.Client{emulator.DemoClient(), other}})
	code := e.mint(t, emulator.CodeRequest{ClientID: other.ID})
	wantOAuthError(t, e.exchange(t, code, "postmessage"), 400, "invalid_grant", "")
	// The failed attempt by the wrong client does not spend the code.
	r := e.postForm(t, "/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"postmessage"}, "client_id": {other.ID}, "client_secret": {other.Secret}})
	if r.status != 200 {
		t.Errorf("exchange by the right client: %d %s", r.status, r.raw)
	}
}

func TestRefreshTokenOnlyOnFirstOfflineConsentOrPromptConsent(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	first := e.offlineTokens(t)

	second := e.exchange(t, e.mint(t, emulator.CodeRequest{AccessType: "offline"}), "postmessage")
	if second.status != 200 || second.str("refresh_token") != "" {
		t.Errorf("second consent without prompt=consent: %d, refresh_token %q (want none)", second.status, second.str("refresh_token"))
	}

	online := e.exchange(t, e.mint(t, emulator.CodeRequest{Prompt: "consent"}), "postmessage")
	if online.str("refresh_token") != "" {
		t.Error("online access gave a refresh token")
	}

	forced := e.exchange(t, e.mint(t, emulator.CodeRequest{AccessType: "offline", Prompt: "consent"}), "postmessage")
	rt := forced.str("refresh_token")
	if rt == "" || rt == first.str("refresh_token") {
		t.Fatalf("prompt=consent: refresh_token %q, want a new one", rt)
	}
	// Both refresh tokens of the grant work.
	for _, tok := range []string{first.str("refresh_token"), rt} {
		if r := e.refresh(t, tok); r.status != 200 {
			t.Errorf("refresh: %d %s", r.status, r.raw)
		}
	}

	// Another user starts fresh.
	other := e.exchange(t, e.mint(t, emulator.CodeRequest{Sub: graceSub, AccessType: "offline"}), "postmessage")
	if other.str("refresh_token") == "" {
		t.Error("first offline consent of another user gave no refresh token")
	}
}

func TestRefreshGrant(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	first := e.offlineTokens(t)
	r := e.refresh(t, first.str("refresh_token"))
	if r.status != 200 {
		t.Fatalf("refresh: %d %s", r.status, r.raw)
	}
	if r.str("access_token") == "" || r.str("access_token") == first.str("access_token") || r.str("refresh_token") != "" {
		t.Errorf("refresh answer: %s", r.raw)
	}
	c := claims(t, r.str("id_token"))
	if c["sub"] != adaSub || c["nonce"] != nil {
		t.Errorf("refresh id_token claims %v", c)
	}
	if got := e.emu.Stats().Grants; got["authorization_code"] != 1 || got["refresh_token"] != 1 {
		t.Errorf("grant stats %v", got)
	}

	wantOAuthError(t, e.refresh(t, "1//0unknown"), 400, "invalid_grant", "Token has been expired or revoked.")
	r = e.postForm(t, "/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {demoID}, "client_secret": {demoSecret}})
	wantOAuthError(t, r, 400, "invalid_request", "")
}

func TestRefreshWithoutOpenIDHasNoIDToken(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	first := e.exchange(t, e.mint(t, emulator.CodeRequest{Scope: "profile", AccessType: "offline"}), "postmessage")
	if first.str("id_token") != "" {
		t.Error("exchange without openid gave an id_token")
	}
	if r := e.refresh(t, first.str("refresh_token")); r.status != 200 || r.str("id_token") != "" {
		t.Errorf("refresh without openid: %d %s", r.status, r.raw)
	}
}

func TestRevokeKillsTheGrant(t *testing.T) {
	for _, which := range []string{"access_token", "refresh_token"} {
		t.Run(which, func(t *testing.T) {
			e := newEnv(t, emulator.Config{})
			tok := e.offlineTokens(t)
			r := e.postForm(t, "/revoke", url.Values{"token": {tok.str(which)}})
			if r.status != 200 || r.raw != "{}\n" {
				t.Fatalf("revoke: %d %q", r.status, r.raw)
			}
			wantOAuthError(t, e.refresh(t, tok.str("refresh_token")), 400, "invalid_grant", "Token has been expired or revoked.")
			if r := e.people(t, tok.str("access_token")); r.status != 401 {
				t.Errorf("people after revoke: %d", r.status)
			}
			wantOAuthError(t, e.postForm(t, "/revoke", url.Values{"token": {tok.str(which)}}), 400, "invalid_token", "Token expired or revoked")
			if n := e.emu.Stats().Revocations; n != 1 {
				t.Errorf("revocations = %d, want 1", n)
			}
			// The grant is gone, so the next offline consent is a first one.
			if again := e.exchange(t, e.mint(t, emulator.CodeRequest{AccessType: "offline"}), "postmessage"); again.str("refresh_token") == "" {
				t.Error("no refresh token on consent after revocation")
			}
		})
	}
}

func TestRevokeUser(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	ada := e.offlineTokens(t)
	grace := e.exchange(t, e.mint(t, emulator.CodeRequest{Sub: graceSub, AccessType: "offline"}), "postmessage")
	pending := e.mint(t, emulator.CodeRequest{})

	e.emu.RevokeUser(adaSub)

	wantOAuthError(t, e.refresh(t, ada.str("refresh_token")), 400, "invalid_grant", "Token has been expired or revoked.")
	wantOAuthError(t, e.exchange(t, pending, "postmessage"), 400, "invalid_grant", "")
	if r := e.refresh(t, grace.str("refresh_token")); r.status != 200 {
		t.Errorf("another user's grant died: %d %s", r.status, r.raw)
	}
}

func TestRefreshTokenLimitPerGrant(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	first := e.offlineTokens(t)
	for range 100 {
		e.exchange(t, e.mint(t, emulator.CodeRequest{AccessType: "offline", Prompt: "consent"}), "postmessage")
	}
	wantOAuthError(t, e.refresh(t, first.str("refresh_token")), 400, "invalid_grant", "Token has been expired or revoked.")
}

func TestPKCE(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	verifier := strings.Repeat("v", 50)
	sum := sha256.Sum256([]byte(verifier))
	req := emulator.CodeRequest{CodeChallenge: base64.RawURLEncoding.EncodeToString(sum[:]), CodeChallengeMethod: "S256"}
	form := func(code, v string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"postmessage"}, "client_id": {demoID}, "client_secret": {demoSecret}, "code_verifier": {v}}
	}
	wantOAuthError(t, e.postForm(t, "/token", form(e.mint(t, req), "wrong")), 400, "invalid_grant", "Invalid code verifier.")
	if r := e.postForm(t, "/token", form(e.mint(t, req), verifier)); r.status != 200 {
		t.Errorf("PKCE exchange: %d %s", r.status, r.raw)
	}
}

func TestAccessTokenTTL(t *testing.T) {
	e := newEnv(t, emulator.Config{AccessTokenTTL: time.Minute})
	if r := e.exchange(t, e.mint(t, emulator.CodeRequest{}), "postmessage"); r.body["expires_in"] != float64(60) {
		t.Errorf("expires_in = %v, want 60", r.body["expires_in"])
	}
	e.emu.SetAccessTokenTTL(10 * time.Second)
	if r := e.exchange(t, e.mint(t, emulator.CodeRequest{}), "postmessage"); r.body["expires_in"] != float64(10) {
		t.Errorf("expires_in = %v, want 10", r.body["expires_in"])
	}
}

func TestTokenInfo(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	tok := e.offlineTokens(t)

	r := e.get(t, "/tokeninfo?id_token="+tok.str("id_token"), "")
	if r.status != 200 || r.str("sub") != adaSub || r.str("email_verified") != "true" || r.str("alg") != "RS256" || r.str("aud") != demoID {
		t.Errorf("id_token info: %d %s", r.status, r.raw)
	}
	for k, v := range r.body {
		if _, ok := v.(string); !ok {
			t.Errorf("tokeninfo %s = %v (%T), want a string", k, v, v)
		}
	}

	r = e.get(t, "/tokeninfo?access_token="+tok.str("access_token"), "")
	if r.status != 200 || r.str("sub") != adaSub || r.str("access_type") != "offline" || r.str("email") != "ada@example.com" || r.str("expires_in") == "" {
		t.Errorf("access_token info: %d %s", r.status, r.raw)
	}

	// The three ways Google takes the token: query (above), form body and
	// Authorization: Bearer (Node's getTokenInfo: POST, empty body).
	r = e.postForm(t, "/tokeninfo", url.Values{"access_token": {tok.str("access_token")}})
	if r.status != 200 || r.str("sub") != adaSub {
		t.Errorf("access_token info from a form body: %d %s", r.status, r.raw)
	}
	req, _ := http.NewRequest(http.MethodPost, e.url("/tokeninfo"), http.NoBody)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=UTF-8")
	req.Header.Set("Authorization", "Bearer "+tok.str("access_token"))
	if r := do(t, req); r.status != 200 || r.str("sub") != adaSub || r.str("scope") == "" {
		t.Errorf("access_token info from a Bearer header: %d %s", r.status, r.raw)
	}
	req, _ = http.NewRequest(http.MethodGet, e.url("/oauth2/v3/tokeninfo"), nil)
	req.Header.Set("Authorization", "Bearer ya29.nope")
	wantOAuthError(t, do(t, req), 400, "invalid_token", "Invalid Value")
	wantOAuthError(t, e.postForm(t, "/tokeninfo", nil), 400, "invalid_request", "")

	for _, bad := range []string{"id_token=abc.def.ghi", "access_token=ya29.nope", "id_token=" + tok.str("id_token") + "x"} {
		wantOAuthError(t, e.get(t, "/tokeninfo?"+bad, ""), 400, "invalid_token", "Invalid Value")
	}
	e.emu.ShiftClock(2 * time.Hour)
	wantOAuthError(t, e.get(t, "/tokeninfo?id_token="+tok.str("id_token"), ""), 400, "invalid_token", "Invalid Value")
}

func TestDiscovery(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	r := e.get(t, "/.well-known/openid-configuration", "")
	if r.status != 200 || r.str("issuer") != "https://accounts.google.com" {
		t.Fatalf("discovery: %d %s", r.status, r.raw)
	}
	for key, path := range map[string]string{"authorization_endpoint": "/o/oauth2/v2/auth", "token_endpoint": "/token", "jwks_uri": "/oauth2/v3/certs", "revocation_endpoint": "/revoke"} {
		if got := r.str(key); got != e.srv.URL+path {
			t.Errorf("%s = %q, want %q", key, got, e.srv.URL+path)
		}
	}
}

func TestUserInfo(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	tok := e.offlineTokens(t)
	r := e.get(t, "/v1/userinfo", tok.str("access_token"))
	if r.status != 200 || r.str("sub") != adaSub || r.str("email") != "ada@example.com" || r.str("name") != "Ada Lovelace" {
		t.Errorf("userinfo: %d %s", r.status, r.raw)
	}
	if r := e.get(t, "/v1/userinfo", "ya29.bad"); r.status != 401 {
		t.Errorf("userinfo with a bad token: %d", r.status)
	}
}
