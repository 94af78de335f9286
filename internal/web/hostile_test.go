package web

import (
	"bufio"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"example.com/signin/internal/auth/authtest"
	"example.com/signin/internal/emulator"
)

// Issue 6's hostile input, against the real server (see realenv_test.go):
// forged ID tokens, cross-site requests, doctored session cookies, codes
// posted twice, oversized bodies and open redirect attempts. Each test
// checks what a user relies on: nobody is signed in who should not be,
// nothing is written or changed in the credentials directory, Google is not
// called on an attacker's behalf, and nothing panics.

// otherClientID is a second OAuth client registered at the emulator: a
// real Google client of someone else, whose genuine ID tokens must not
// sign anyone in here.
const otherClientID = "999999999999-someone-else.apps.googleusercontent.com"

// forgedToken is one hostile credential.
type forgedToken struct {
	name  string
	token string
	hd    bool // needs a server that requires a hosted domain
	huge  bool // over the body limit: refused 413 before any check
}

// forgedTokens builds the hostile credentials for user sub of the env's
// emulator. valid is the unforged token built the same way, which must be
// accepted (the control).
func forgedTokens(t *testing.T, re *realEnv, sub, email string) (valid string, cases []forgedToken) {
	t.Helper()
	key, kid := re.emu.SigningKey()
	stranger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	claims := func(kv ...any) map[string]any {
		c := authtest.Claims(emulator.DemoClientID, sub)
		c["iss"] = emulator.Issuer
		c["email"] = email
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return c
	}
	hdClaims := func(kv ...any) map[string]any {
		return claims(append([]any{"hd", "example.com"}, kv...)...)
	}
	hdr := func(kv ...any) map[string]any {
		h := authtest.Header(kid)
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(h, kv[i].(string))
			} else {
				h[kv[i].(string)] = kv[i+1]
			}
		}
		return h
	}
	sign := func(h, c any) string { return authtest.SignRS256(key, h, c) }
	unsigned := func(h, c any, sig []byte) string {
		return authtest.Segment(h) + "." + authtest.Segment(c) + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	hmacWith := func(secret []byte) string {
		in := authtest.Segment(hdr("alg", "HS256")) + "." + authtest.Segment(claims())
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(in))
		return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	pkix, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ps256 := func() string {
		in := authtest.Segment(hdr("alg", "PS256")) + "." + authtest.Segment(claims())
		h := sha256.Sum256([]byte(in))
		sig, err := rsa.SignPSS(rand.Reader, key, crypto.SHA256, h[:], nil)
		if err != nil {
			t.Fatal(err)
		}
		return in + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	valid = sign(hdr(), claims())
	parts := strings.Split(valid, ".")
	flipped := func() string {
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		sig[len(sig)/2] ^= 1
		return parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	otherClient, err := re.emu.MintIDToken(otherClientID, sub, "")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	// Just under the 64 KiB default body limit once form-encoded: it
	// reaches the verifier.
	bigPayload := strings.Repeat("A", 60<<10)

	return valid, []forgedToken{
		{name: "alg none, no signature", token: authtest.Segment(hdr("alg", "none")) + "." + parts[1] + "."},
		{name: "alg none, with a signature", token: unsigned(hdr("alg", "none"), claims(), []byte("sig"))},
		{name: "alg None", token: unsigned(hdr("alg", "None"), claims(), []byte("sig"))},
		{name: "alg missing", token: sign(hdr("alg", nil), claims())},
		{name: "HS256 keyed with the public key (PEM)", token: hmacWith(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix}))},
		{name: "HS256 keyed with the public key (DER)", token: hmacWith(x509.MarshalPKCS1PublicKey(&key.PublicKey))},
		{name: "ES256 with a short signature", token: unsigned(hdr("alg", "ES256"), claims(), []byte("short"))},
		{name: "ES256 with an empty signature", token: authtest.Segment(hdr("alg", "ES256")) + "." + parts[1] + "."},
		{name: "PS256", token: ps256()},
		{name: "RS512 header on an RS256 signature", token: sign(hdr("alg", "RS512"), claims())},
		{name: "wrong signature", token: flipped()},
		{name: "signature of another token", token: parts[0] + "." + parts[1] + "." + strings.Split(sign(hdr(), claims("sub", "1")), ".")[2]},
		{name: "tampered payload", token: tamper(valid)},
		{name: "stranger's key with Google's kid", token: authtest.SignRS256(stranger, hdr(), claims())},
		{name: "unknown kid", token: authtest.SignRS256(stranger, hdr("kid", "no-such-key"), claims())},
		{name: "kid missing", token: sign(hdr("kid", nil), claims())},
		{name: "JWE header, five segments", token: authtest.Segment(map[string]any{"alg": "RSA-OAEP", "enc": "A256GCM", "kid": kid}) + ".a.b.c.d"},
		{name: "JWE enc in a JWS header", token: sign(hdr("enc", "A256GCM"), claims())},
		{name: "iss foreign", token: sign(hdr(), claims("iss", "https://evil.example"))},
		{name: "iss empty", token: sign(hdr(), claims("iss", ""))},
		{name: "iss http://accounts.google.com", token: sign(hdr(), claims("iss", "http://accounts.google.com"))},
		{name: "aud foreign", token: sign(hdr(), claims("aud", otherClientID, "azp", otherClientID))},
		{name: "aud empty", token: sign(hdr(), claims("aud", ""))},
		{name: "aud ours plus another", token: sign(hdr(), claims("aud", []string{emulator.DemoClientID, otherClientID}))},
		{name: "azp foreign", token: sign(hdr(), claims("azp", otherClientID))},
		{name: "expired beyond the skew", token: sign(hdr(), claims("iat", now-7200, "exp", now-3600))},
		{name: "exp missing", token: sign(hdr(), claims("exp", nil))},
		{name: "iat far in the future", token: sign(hdr(), claims("iat", now+3600))},
		{name: "sub missing", token: sign(hdr(), claims("sub", nil))},
		{name: "sub with a slash", token: sign(hdr(), claims("sub", "../../etc/passwd"))},
		{name: "sub ..", token: sign(hdr(), claims("sub", ".."))},
		{name: "sub of 300 characters", token: sign(hdr(), claims("sub", strings.Repeat("1", 300)))},
		{name: "sub a number", token: sign(hdr(), claims("sub", 12345))},
		{name: "email_verified false with a hosted domain required", token: sign(hdr(), hdClaims("email_verified", false)), hd: true},
		{name: "hd wrong with a hosted domain required", token: sign(hdr(), hdClaims("hd", "evil.example")), hd: true},
		{name: "hd missing with a hosted domain required", token: sign(hdr(), claims()), hd: true},
		{name: "two dots", token: ".."},
		{name: "four segments", token: valid + ".AAAA"},
		{name: "bad base64", token: parts[0] + "." + parts[1][:10] + "!" + parts[1][11:] + "." + parts[2]},
		{name: "header not JSON", token: authtest.Segment("hello") + "." + parts[1] + "." + parts[2]},
		{name: "payload not JSON", token: sign(hdr(), "not json")},
		{name: "newline inside", token: parts[0] + ".\n" + parts[1] + "." + parts[2]},
		{name: "60 KB token", token: parts[0] + "." + bigPayload + "." + parts[2]},
		{name: "1 MB token", token: parts[0] + "." + strings.Repeat("A", 1<<20) + "." + parts[2], huge: true},
		{name: "valid token for another Google client", token: otherClient},
	}
}

// TestHostileForgedIDTokens: every forged or malformed ID token, at each
// of the server's three front doors for ID tokens (our page's XHR to
// /tokensignin, GIS redirect mode's form post to it, and a mobile backend's
// Authorization: Bearer), is refused: 401 (413 for a body over the limit),
// no session cookie, nothing in the credentials directory, no call to
// Google's token endpoint, no panic.
func TestHostileForgedIDTokens(t *testing.T) {
	re := newRealEnv(t, &realConfig{Emulator: emulator.Config{
		Clients: []emulator.Client{emulator.DemoClient(), {ID: otherClientID, Secret: "other-secret"}},
	}})
	hd := newRealEnv(t, &realConfig{HostedDomain: "example.com", Emulator: emulator.Config{
		Clients: []emulator.Client{emulator.DemoClient(), {ID: otherClientID, Secret: "other-secret"}},
	}})
	u := re.user("forged@example.com", "Forged")
	if _, err := hd.emu.AddUser(emulator.User{Sub: u.Sub, Email: u.Email, HostedDomain: "example.com"}); err != nil {
		t.Fatal(err)
	}
	// The hosted-domain server trusts its own emulator's keys; its cases
	// are forged with them.
	_, hdCases := forgedTokens(t, hd, u.Sub, u.Email)
	valid, cases := forgedTokens(t, re, u.Sub, u.Email)
	for i, c := range hdCases {
		if c.hd {
			cases[i] = c
		}
	}

	doors := []struct {
		name string
		send func(b *browser, token string) *response
		code func(t *testing.T, r *response) string
	}{
		{"xhr", func(b *browser, tok string) *response {
			return b.xhr("/tokensignin", url.Values{"credential": {tok}})
		}, func(t *testing.T, r *response) string { return r.errorCode(t) }},
		{"redirect mode", func(b *browser, tok string) *response {
			return b.do(http.MethodPost, "/tokensignin",
				strings.NewReader(url.Values{"credential": {tok}, gcsrfName: {"nonce-1"}}.Encode()),
				gisRedirectHeaders("nonce-1"))
		}, func(t *testing.T, r *response) string {
			code, _ := attr(mustID(t, parseHTML(t, r.body), "error"), "data-code")
			return code
		}},
		{"bearer", func(b *browser, tok string) *response {
			return b.do(http.MethodGet, "/api/me", nil, http.Header{"Authorization": {"Bearer " + tok}})
		}, func(t *testing.T, r *response) string { return r.errorCode(t) }},
	}

	tried := 0
	for _, tc := range cases {
		env := re
		if tc.hd {
			env = hd
		}
		for _, door := range doors {
			if door.name == "bearer" && strings.ContainsAny(tc.token, "\r\n") {
				continue // not a header value any HTTP client sends
			}
			t.Run(tc.name+"/"+door.name, func(t *testing.T) {
				tried++
				b := env.browser()
				r := door.send(b, tc.token)
				wantStatus, wantCode := http.StatusUnauthorized, "invalid_token"
				switch {
				case tc.huge && door.name == "bearer":
					// A 1 MB header: refused by the HTTP server's header
					// limit or by the verifier, either way unread.
					if r.status != http.StatusRequestHeaderFieldsTooLarge && r.status != http.StatusUnauthorized {
						t.Fatalf("status %d: %.200s", r.status, r.body)
					}
					wantStatus = r.status
					wantCode = ""
				case tc.huge:
					wantStatus, wantCode = http.StatusRequestEntityTooLarge, "too_large"
				}
				if r.status != wantStatus {
					t.Fatalf("status %d, want %d: %.300s", r.status, wantStatus, r.body)
				}
				if wantCode != "" {
					if got := door.code(t, r); got != wantCode {
						t.Errorf("error code %q, want %q", got, wantCode)
					}
				}
				if c := r.cookie(sessionCookie); c != nil {
					t.Errorf("a session cookie was set: %v", c)
				}
				if got := b.signedInAs(); got != "" {
					t.Errorf("signed in as %q", got)
				}
			})
		}
	}
	for _, env := range []*realEnv{re, hd} {
		if files := env.snapshot(); len(files) != 0 {
			t.Errorf("files in the credentials directory: %v", slices.Sorted(maps.Keys(files)))
		}
		if n := env.emu.Stats().Endpoints[emulator.EndpointToken].Requests; n != 0 {
			t.Errorf("%d requests to Google's token endpoint", n)
		}
		if strings.Contains(env.logs.String(), `"msg":"panic"`) {
			t.Errorf("a handler panicked:\n%s", env.logs)
		}
	}
	if len(cases) < 30 {
		t.Errorf("only %d forged tokens", len(cases))
	}
	t.Logf("%d forged or malformed tokens x %d front doors = %d refusals", len(cases), len(doors), tried)

	// The controls: the same constructions, unforged, are accepted, so the
	// refusals above are the forgeries' doing.
	if r := re.browser().xhr("/tokensignin", url.Values{"credential": {valid}}); r.status != http.StatusOK {
		t.Fatalf("control token refused: %d %s", r.status, r.body)
	}
	hdKey, hdKid := hd.emu.SigningKey()
	hdClaims := authtest.Claims(emulator.DemoClientID, u.Sub)
	hdClaims["hd"] = "example.com"
	hdValid := authtest.SignRS256(hdKey, authtest.Header(hdKid), hdClaims)
	if r := hd.browser().xhr("/tokensignin", url.Values{"credential": {hdValid}}); r.status != http.StatusOK {
		t.Fatalf("hosted-domain control token refused: %d %s", r.status, r.body)
	}
}

// gisRedirectHeaders are what a browser sends with GIS redirect mode's
// top-level form post from Google's page, carrying GIS's double-submit
// cookie.
func gisRedirectHeaders(csrf string) http.Header {
	h := http.Header{
		"Content-Type":   {"application/x-www-form-urlencoded"},
		"Accept":         {"text/html"},
		"Sec-Fetch-Site": {"cross-site"},
		"Origin":         {"https://accounts.google.com"},
	}
	if csrf != "" {
		h.Set("Cookie", gcsrfName+"="+csrf)
	}
	return h
}

// victim is a signed-in user with offline access stored, whose browser an
// attacker's page tries to use.
type victim struct {
	re  *realEnv
	b   *browser
	sub string
}

func newVictim(t *testing.T, re *realEnv, email string) victim {
	t.Helper()
	u := re.user(email, "Victim")
	b := re.browser()
	mustStatus(t, b.xhr("/connect", url.Values{"code": {re.code(u.Sub, true)}}), http.StatusOK)
	if re.record(u.Sub) == nil {
		t.Fatal("no record after /connect")
	}
	return victim{re: re, b: b, sub: u.Sub}
}

// browser returns another browser of the victim's, signed in (with an ID
// token: the stored record is not touched), so that each attack starts
// from a live session whatever the previous one did.
func (v victim) browser(t *testing.T) *browser {
	t.Helper()
	b := v.re.browser()
	mustStatus(t, b.xhr("/tokensignin", url.Values{"credential": {v.re.idToken(v.sub)}}), http.StatusOK)
	return b
}

// TestHostileCrossSiteRequests: another site making the victim's browser
// post to each state-changing route (signing them in as the attacker,
// connecting the attacker's grant, disconnecting or signing them out) is
// refused with 403, and changes nothing: the session, the stored record
// byte for byte, and no call to Google. A GET to those routes changes
// nothing either (405).
func TestHostileCrossSiteRequests(t *testing.T) {
	re := newRealEnv(t, nil)
	v := newVictim(t, re, "victim@example.com")
	attacker := re.user("attacker@example.com", "Attacker")
	origin := re.srv.URL
	host := strings.TrimPrefix(origin, "http://")
	hostname, port, _ := net.SplitHostPort(host)

	attacks := []struct {
		name   string
		header func(h http.Header)
	}{
		{"Sec-Fetch-Site cross-site", func(h http.Header) {
			h.Set("Sec-Fetch-Site", "cross-site")
			h.Set("Origin", "https://evil.example")
		}},
		{"Sec-Fetch-Site same-site", func(h http.Header) {
			h.Set("Sec-Fetch-Site", "same-site")
			h.Set("Origin", "http://evil."+hostname+":"+port)
		}},
		{"foreign Origin", func(h http.Header) {
			h.Del("Sec-Fetch-Site")
			h.Set("Origin", "https://evil.example")
		}},
		{"Origin null", func(h http.Header) {
			h.Del("Sec-Fetch-Site")
			h.Set("Origin", "null")
		}},
		{"Origin on another port", func(h http.Header) {
			h.Del("Sec-Fetch-Site")
			h.Set("Origin", "http://"+net.JoinHostPort(hostname, "1"))
		}},
		{"Origin of another host on the same port", func(h http.Header) {
			h.Del("Sec-Fetch-Site")
			h.Set("Origin", "http://"+net.JoinHostPort("evil.example", port))
		}},
		{"no X-Requested-With", func(h http.Header) { h.Del("X-Requested-With") }},
		{"plain cross-site form post", func(h http.Header) {
			h.Del("X-Requested-With")
			h.Set("Sec-Fetch-Site", "cross-site")
			h.Set("Origin", "https://evil.example")
		}},
		{"cross-site form with a g_csrf_token field only", func(h http.Header) {
			h.Del("X-Requested-With")
			h.Del("Sec-Fetch-Site")
			h.Set("Origin", "https://evil.example")
			h.Set("Accept", "text/html")
		}},
	}
	routes := []string{"/tokensignin", "/connect", "/disconnect", "/signout"}
	before := re.snapshot()
	stats := re.emu.Stats()
	n := 0
	for _, route := range routes {
		for _, a := range attacks {
			t.Run(route+"/"+a.name, func(t *testing.T) {
				n++
				form := url.Values{
					"credential": {re.idToken(attacker.Sub)},
					"code":       {re.code(attacker.Sub, true)},
					gcsrfName:    {"planted"},
				}
				b := v.browser(t)
				h := b.sameOriginHeaders()
				a.header(h)
				r := b.do(http.MethodPost, route, strings.NewReader(form.Encode()), h)
				if r.status != http.StatusForbidden {
					t.Fatalf("status %d: %s", r.status, r.body)
				}
				if r.cookie(sessionCookie) != nil {
					t.Error("the answer set a session cookie")
				}
				if got := b.signedInAs(); got != v.sub {
					t.Errorf("the victim's session is now %q", got)
				}
			})
		}
		t.Run(route+"/GET", func(t *testing.T) {
			n++
			b := v.browser(t)
			r := b.do(http.MethodGet, route+"?"+url.Values{"code": {re.code(attacker.Sub, true)}, "credential": {re.idToken(attacker.Sub)}}.Encode(), nil,
				http.Header{"Sec-Fetch-Site": {"cross-site"}, "Accept": {"text/html"}})
			if r.status != http.StatusMethodNotAllowed {
				t.Fatalf("status %d", r.status)
			}
			if got := b.signedInAs(); got != v.sub {
				t.Errorf("the victim's session is now %q", got)
			}
		})
	}
	re.sameFiles(t, before)
	after := re.emu.Stats()
	for _, ep := range []string{emulator.EndpointToken, emulator.EndpointRevoke} {
		if after.Endpoints[ep].Requests != stats.Endpoints[ep].Requests {
			t.Errorf("Google's %s endpoint was called", ep)
		}
	}
	if re.record(attacker.Sub) != nil {
		t.Error("the attacker's grant was stored")
	}
	t.Logf("%d cross-site requests refused", n)

	// The control: the same request from our own page goes through.
	r := v.b.xhr("/signout", nil)
	mustStatus(t, r, http.StatusOK)
	if v.b.signedInAs() != "" {
		t.Error("our own page could not sign out")
	}
}

// TestHostileSessionCookies: a session cookie that was tampered with,
// truncated, made with a key the server no longer has, or made for another
// cookie name is no session: the state-changing routes and the pages treat
// the browser as signed out (never a 500), and nothing is revoked, deleted
// or fetched for the user the cookie names.
func TestHostileSessionCookies(t *testing.T) {
	re := newRealEnv(t, nil)
	v := newVictim(t, re, "cookies@example.com")
	good := ""
	for _, c := range v.b.client.Jar.Cookies(mustParseURL(t, re.srv.URL)) {
		if c.Name == sessionCookie {
			good = c.Value
		}
	}
	if good == "" {
		t.Fatal("no session cookie")
	}
	// The victim's live session, sealed again: with another key, for
	// another cookie name, or issued longer ago than a session lasts.
	// (Sealed with the server's keys, a cookie is a session: that is the
	// design, the keys are the server's alone.)
	var u sessionUser
	if err := re.server.sessions.codec.Decode(sessionCookie, good, &u); err != nil {
		t.Fatal(err)
	}
	encode := func(name string, keys [][]byte, change ...func(*sessionUser)) string {
		t.Helper()
		c, err := newCookieCodec(keys, time.Hour, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		su := u
		for _, f := range change {
			f(&su)
		}
		s, err := c.Encode(name, map[interface{}]interface{}{sessionKey: su})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	flip := func(i int) string {
		b := []byte(good)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	cookies := []struct{ name, value string }{
		{"tampered first byte", flip(0)},
		{"tampered middle byte", flip(len(good) / 2)},
		{"tampered last byte", flip(len(good) - 1)},
		{"truncated by one", good[:len(good)-1]},
		{"truncated by half", good[:len(good)/2]},
		{"old key", encode(sessionCookie, newTestKeys(t))},
		{"right keys, other cookie name", encode("other", re.keys)},
		{"right keys, expired", encode(sessionCookie, re.keys, func(su *sessionUser) { su.SignedInAt = su.SignedInAt.Add(-8 * 24 * time.Hour) })},
		{"garbage", "not-a-session"},
		{"empty", ""},
	}
	before := re.snapshot()
	revocations := re.emu.Stats().Revocations
	for _, c := range cookies {
		t.Run(c.name, func(t *testing.T) {
			h := func() http.Header {
				return http.Header{
					"Cookie":           {sessionCookie + "=" + c.value},
					"X-Requested-With": {"XmlHttpRequest"},
					"Sec-Fetch-Site":   {"same-origin"},
				}
			}
			b := re.browser() // no jar cookie of its own
			for _, path := range []string{"/api/me", "/api/profile"} {
				if r := b.do(http.MethodGet, path, nil, h()); r.status != http.StatusUnauthorized || r.errorCode(t) != "signed_out" {
					t.Errorf("%s: %d %s", path, r.status, r.body)
				}
			}
			if r := b.do(http.MethodPost, "/disconnect", nil, h()); r.status != http.StatusUnauthorized || r.errorCode(t) != "signed_out" {
				t.Errorf("/disconnect: %d %s", r.status, r.body)
			}
			hh := h()
			hh.Set("Accept", "text/html")
			r := b.do(http.MethodGet, "/", nil, hh)
			if r.status != http.StatusOK {
				t.Fatalf("/: %d", r.status)
			}
			mustID(t, parseHTML(t, r.body), "gsi-button") // the signed-out page
		})
	}
	re.sameFiles(t, before)
	if got := re.emu.Stats().Revocations; got != revocations {
		t.Errorf("%d revocations at Google", got-revocations)
	}
	// The control: the genuine cookie is a session.
	if v.b.signedInAs() != v.sub {
		t.Error("the genuine cookie no longer works")
	}
}

func mustParseURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestHostileCodePostedTwice: a one-time code replayed (by the same
// browser, by another one, or by two at once) is refused the second time,
// and the stored record stays byte for byte what the first exchange wrote;
// a browser whose replay was refused gets no session.
func TestHostileCodePostedTwice(t *testing.T) {
	t.Run("sequential", func(t *testing.T) {
		re := newRealEnv(t, nil)
		u := re.user("twice@example.com", "Twice")
		code := re.code(u.Sub, true)
		b := re.browser()
		mustStatus(t, b.xhr("/connect", url.Values{"code": {code}}), http.StatusOK)
		before := re.snapshot()
		for _, replay := range []*browser{b, re.browser()} {
			r := replay.xhr("/connect", url.Values{"code": {code}})
			mustStatus(t, r, http.StatusBadRequest)
			if r.errorCode(t) != "invalid_grant" {
				t.Errorf("error %s", r.body)
			}
			if r.cookie(sessionCookie) != nil {
				t.Error("the replay set a session cookie")
			}
		}
		re.sameFiles(t, before)
	})

	t.Run("concurrent", func(t *testing.T) {
		re := newRealEnv(t, nil)
		u := re.user("race@example.com", "Race")
		code := re.code(u.Sub, true)
		const n = 8
		browsers := make([]*browser, n)
		results := make([]*response, n)
		for i := range browsers {
			browsers[i] = re.browser()
		}
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				results[i] = postForm(browsers[i], "/connect", url.Values{"code": {code}})
			})
		}
		wg.Wait()
		ok := 0
		for i, r := range results {
			switch r.status {
			case http.StatusOK:
				ok++
				if browsers[i].signedInAs() != u.Sub {
					t.Error("the winner is not signed in")
				}
			case http.StatusBadRequest:
				if browsers[i].signedInAs() != "" {
					t.Error("a refused replay is signed in")
				}
			default:
				t.Errorf("status %d: %s", r.status, r.body)
			}
		}
		if ok != 1 {
			t.Fatalf("%d exchanges succeeded, want exactly 1", ok)
		}
		if got := re.emu.Stats().Grants["authorization_code"]; got != 1 {
			t.Errorf("%d codes redeemed at Google", got)
		}
		if rec := re.record(u.Sub); rec == nil || rec.Token.RefreshToken == "" {
			t.Errorf("record %+v", rec)
		}
	})

	// RFC 6749's stricter servers revoke what the first exchange issued
	// when a code is replayed: the replay is still refused and the record
	// still what it was (the next use of the grant finds it revoked).
	t.Run("server revokes on reuse", func(t *testing.T) {
		re := newRealEnv(t, &realConfig{Emulator: emulator.Config{RevokeOnCodeReuse: true}})
		u := re.user("strict@example.com", "Strict")
		code := re.code(u.Sub, true)
		b := re.browser()
		mustStatus(t, b.xhr("/connect", url.Values{"code": {code}}), http.StatusOK)
		before := re.snapshot()
		mustStatus(t, re.browser().xhr("/connect", url.Values{"code": {code}}), http.StatusBadRequest)
		re.sameFiles(t, before)
		r := b.do(http.MethodGet, "/api/profile", nil, nil)
		mustStatus(t, r, http.StatusConflict)
		if r.errorCode(t) != "reconnect_required" {
			t.Errorf("after the replay: %s", r.body)
		}
	})
}

// postForm is browser.xhr without t.Fatal, for use from goroutines.
func postForm(b *browser, path string, form url.Values) *response {
	req, err := http.NewRequest(http.MethodPost, b.e.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		return &response{status: -1, body: []byte(err.Error())}
	}
	for k, vs := range b.sameOriginHeaders() {
		req.Header[k] = vs
	}
	res, err := b.client.Do(req)
	if err != nil {
		return &response{status: -1, body: []byte(err.Error())}
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return &response{status: -1, body: []byte(err.Error())}
	}
	return &response{status: res.StatusCode, header: res.Header, body: body, resp: res}
}

// TestHostileBodyLimits: a body over the limit, announced or streamed, on
// every POST route is refused 413 before anything reads it: no session, no
// call to Google, nothing stored. At the default limit (64 KiB) a 1 MB
// credential is refused the same way.
func TestHostileBodyLimits(t *testing.T) {
	re := newRealEnv(t, &realConfig{MaxBodyBytes: 4 << 10})
	def := newRealEnv(t, nil)
	over := url.Values{"credential": {strings.Repeat("x", 5<<10)}, "code": {strings.Repeat("y", 5<<10)}}.Encode()
	huge := url.Values{"credential": {strings.Repeat("x", 1<<20)}}.Encode()
	n := 0
	for _, env := range []*realEnv{re, def} {
		body := over
		if env == def {
			body = huge
		}
		for _, route := range []string{"/tokensignin", "/connect", "/disconnect", "/signout"} {
			for _, chunked := range []bool{false, true} {
				n++
				b := env.browser()
				var rd io.Reader = strings.NewReader(body)
				if chunked {
					rd = io.MultiReader(rd) // no Content-Length: the limit holds while reading
				}
				r := b.do(http.MethodPost, route, rd, b.sameOriginHeaders())
				// An announced length over the limit is refused before any
				// route; a streamed body is cut where a route reads it.
				// /disconnect reads no body: a signed-out browser is
				// refused (401) without it.
				reads := route != "/disconnect"
				if !chunked || reads {
					if r.status != http.StatusRequestEntityTooLarge || r.errorCode(t) != "too_large" {
						t.Errorf("%s chunked=%v: %d %s", route, chunked, r.status, r.body)
					}
				} else if r.status != http.StatusUnauthorized && r.status != http.StatusOK {
					t.Errorf("%s chunked=%v: %d %s", route, chunked, r.status, r.body)
				}
				if r.cookie(sessionCookie) != nil && route != "/signout" {
					t.Errorf("%s chunked=%v: a session cookie was set", route, chunked)
				}
			}
		}
		if n := env.emu.Stats().Endpoints[emulator.EndpointToken].Requests; n != 0 {
			t.Errorf("%d token requests reached Google", n)
		}
		if files := env.snapshot(); len(files) != 0 {
			t.Errorf("files stored: %v", slices.Sorted(maps.Keys(files)))
		}
	}
	t.Logf("%d oversized requests", n)
}

// TestHostileNoOpenRedirect: no request makes the server redirect to
// another site. Paths that a router cleans (double slashes, dot segments,
// backslashes, absolute-form request targets) redirect to this server
// only, and sign-in's redirect goes to "/" whatever the request carries.
func TestHostileNoOpenRedirect(t *testing.T) {
	re := newRealEnv(t, nil)
	u := re.user("redirect@example.com", "Redirect")
	host := strings.TrimPrefix(re.srv.URL, "http://")
	targets := []string{
		"//evil.example/",
		"//evil.example/..",
		"///evil.example/a/..",
		"/\\evil.example/a/..",
		"/\\/evil.example/a/..",
		"/%5Cevil.example/a/..",
		"/%2F%2Fevil.example/..",
		"/./evil.example",
		"/..//evil.example",
		"/a/..//evil.example",
		"/static/../..//evil.example",
		"/static//evil.example",
		"//evil.example/%2e%2e",
		"/?next=https://evil.example&redirect_uri=https://evil.example&continue=//evil.example",
		"/staticjs?return_to=//evil.example",
		"http://evil.example/a/../b",
		"http://evil.example//",
		"https://evil.example/./",
	}
	check := func(t *testing.T, what string, status int, loc string) {
		t.Helper()
		if status < 300 || status > 399 {
			return
		}
		if strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, "/\\") || strings.HasPrefix(loc, "\\") {
			t.Errorf("%s: %d to %q, which a browser reads as another host", what, status, loc)
		}
		to, err := url.Parse(loc)
		if err != nil {
			t.Errorf("%s: Location %q: %v", what, loc, err)
			return
		}
		if abs := mustParseURL(t, re.srv.URL).ResolveReference(to); abs.Host != host {
			t.Errorf("%s: %d to %q, another site", what, status, loc)
		}
	}
	for _, target := range targets {
		t.Run(target, func(t *testing.T) {
			status, loc := rawGet(t, host, target)
			check(t, target, status, loc)
		})
	}

	// Sign-in in redirect mode, with every redirect parameter an attacker
	// might plant, goes to "/".
	form := url.Values{
		"credential": {re.idToken(u.Sub)}, gcsrfName: {"n1"},
		"next": {"https://evil.example"}, "redirect_uri": {"https://evil.example"},
		"return_to": {"//evil.example"}, "continue": {"https://evil.example"},
		"login_uri": {"https://evil.example"}, "state": {"https://evil.example"},
	}
	h := gisRedirectHeaders("n1")
	h.Set("Referer", "https://evil.example/")
	r := re.browser().do(http.MethodPost, "/tokensignin?next=https://evil.example", strings.NewReader(form.Encode()), h)
	mustStatus(t, r, http.StatusSeeOther)
	if loc := r.header.Get("Location"); loc != "/" {
		t.Errorf("sign-in redirect to %q", loc)
	}
	t.Logf("%d redirect attempts", len(targets)+1)
}

// rawGet sends target as the request line's target, unnormalised (Go's
// client would clean it), and returns the status and Location.
func rawGet(t *testing.T, host, target string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/html\r\nConnection: close\r\n\r\n", target, host); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}

// A client sending its body so slowly that the server's read timeout cuts
// it is still connected, waiting: it gets 408 request_timeout, not "499
// status code 499", which is for a client that left (issue 23, item 5).
func TestSlowBodyGets408(t *testing.T) {
	e := newTestEnv(t)
	hs := httptest.NewUnstartedServer(e.server.Handler())
	hs.Config.ReadTimeout = 200 * time.Millisecond
	hs.Start()
	defer hs.Close()
	host := hs.Listener.Addr().String()
	for _, path := range []string{"/tokensignin", "/connect"} {
		t.Run(path, func(t *testing.T) {
			c, err := net.Dial("tcp", host)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// 100 bytes announced, 11 sent: the rest never comes.
			if _, err := fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nX-Requested-With: XMLHttpRequest\r\n"+
				"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ncredential=", path, host); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			defer resp.Body.Close()
			var body errorBody
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != http.StatusRequestTimeout || body.Error != "request_timeout" {
				t.Errorf("%s, %+v; want 408 request_timeout", resp.Status, body)
			}
		})
	}
}
