package web

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"example.com/signin/internal/auth"
	"example.com/signin/internal/auth/authtest"
	"example.com/signin/internal/grant"
)

// staticCerts answers every request with a fixed JWKS, so that the fuzzed
// server verifies tokens for real without a network.
type staticCerts []byte

func (c staticCerts) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: http.StatusOK,
		Header:     http.Header{"Cache-Control": {"public, max-age=3600"}, "Content-Type": {"application/json"}},
		Body:       io.NopCloser(bytes.NewReader(c)),
		Request:    r,
	}, nil
}

// FuzzTokenSignin feeds the server's ID token front doors arbitrary
// credentials: /tokensignin from our page's XHR and in GIS redirect mode,
// and a bearer token on /api/me. The whole handler chain runs with auth's
// real Verifier against a fixed key: nothing panics (a 500), only the
// tokens the key really signed sign anyone in, every refusal is a 4xx
// without a session cookie, and nothing is ever stored.
func FuzzTokenSignin(f *testing.F) {
	key := authtest.NewKey(f, "key-1")
	v, err := auth.NewVerifier(auth.VerifierConfig{
		Audiences:  []string{testClientID},
		HTTPClient: &http.Client{Transport: staticCerts(authtest.JWKS(key))},
	})
	if err != nil {
		f.Fatal(err)
	}
	st := newMemStore()
	s, err := New(Config{
		ClientID: testClientID, Grants: grant.New(grant.Config{Store: st, Google: &fakeGoogle{}}), Verifier: v,
		Google: &fakeGoogle{}, Profiles: &fakeProfiles{},
		Net: testNet(f, ""), SessionKeys: newTestKeys(f), Sessions: newMemSessions(),
		MaxBodyBytes: 16 << 10,
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		f.Fatal(err)
	}
	h := s.Handler()

	sign := func(hdr, claims any) string { return authtest.SignRS256(key.Private, hdr, claims) }
	valid := sign(authtest.Header("key-1"), authtest.Claims(testClientID, "1234567890"))
	accepted := map[string]bool{valid: true}
	parts := strings.Split(valid, ".")
	for _, seed := range []string{
		valid,
		authtest.Segment(map[string]any{"alg": "ES256", "kid": "key-1"}) + "." + parts[1] + ".c2hvcnQ",
		authtest.Segment(map[string]any{"alg": "none"}) + "." + parts[1] + ".",
		authtest.Segment(map[string]any{"alg": "HS256", "kid": "key-1"}) + "." + parts[1] + "." + parts[2],
		authtest.Segment(map[string]any{"alg": "RSA-OAEP", "enc": "A256GCM"}) + ".a.b.c.d",
		sign(authtest.Header("key-1"), authtest.Claims("other.apps.googleusercontent.com", "1")),
		sign(authtest.Header("key-1"), map[string]any{"iss": "accounts.google.com", "aud": testClientID, "sub": "../x", "exp": 1 << 40, "iat": 1}),
		" " + valid,
		valid + "\n",
		"", "..", "a.b.c", "eyJ.eyJ.AA",
		strings.Repeat("A", 20<<10),
	} {
		for door := range uint8(3) {
			f.Add(seed, door)
		}
	}
	f.Fuzz(func(t *testing.T, credential string, door uint8) {
		var req *http.Request
		switch door % 3 {
		case 0: // our page's XHR
			req = httptest.NewRequest(http.MethodPost, "/tokensignin", strings.NewReader(url.Values{"credential": {credential}}.Encode()))
			req.Header.Set("X-Requested-With", "XmlHttpRequest")
			req.Header.Set("Sec-Fetch-Site", "same-origin")
		case 1: // GIS redirect mode, with its double-submit cookie
			req = httptest.NewRequest(http.MethodPost, "/tokensignin", strings.NewReader(url.Values{"credential": {credential}, gcsrfName: {"x"}}.Encode()))
			req.Header.Set("Sec-Fetch-Site", "cross-site")
			req.AddCookie(&http.Cookie{Name: gcsrfName, Value: "x"})
		default: // a mobile backend's bearer token
			req = httptest.NewRequest(http.MethodGet, "/api/me", nil)
			req.Header.Set("Authorization", "Bearer "+credential)
		}
		if req.Method == http.MethodPost {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		session := false
		for _, c := range rec.Result().Cookies() {
			session = session || c.Name == sessionCookie && c.MaxAge >= 0
		}
		ok := rec.Code == http.StatusOK || rec.Code == http.StatusSeeOther
		if ok || session {
			// Only the signed token, as it is (a bearer token is trimmed,
			// as HTTP does with header values).
			tok := credential
			if door%3 == 2 {
				tok = strings.TrimSpace(tok)
			}
			if !accepted[tok] || !ok || (!session && door%3 != 2) {
				t.Fatalf("door %d: %d, session %v for %q", door%3, rec.Code, session, credential)
			}
		} else if rec.Code < 400 || rec.Code >= 500 {
			t.Fatalf("door %d: %d for %q: %s", door%3, rec.Code, credential, rec.Body)
		}
		if st.writes() != 0 {
			t.Fatal("something was stored")
		}
	})
}
