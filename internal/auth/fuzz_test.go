package auth_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"

	"example.com/signin"
	"example.com/signin/internal/auth"
	"example.com/signin/internal/auth/authtest"
)

// memoryCerts answers every request with a fixed JWKS: a key set that needs
// no server, for fuzzing.
type memoryCerts []byte

func (m memoryCerts) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: http.StatusOK,
		Header:     http.Header{"Cache-Control": {"public, max-age=3600"}, "Content-Type": {"application/json"}},
		Body:       io.NopCloser(bytes.NewReader(m)),
		Request:    r,
	}, nil
}

// FuzzVerify feeds the front door and the whole verification arbitrary
// strings against a fixed key set: nothing may panic, nothing but the
// tokens the key really signed may pass, and every refusal is a 401.
func FuzzVerify(f *testing.F) {
	key := authtest.NewKey(f, "key-1")
	v, err := auth.NewVerifier(auth.VerifierConfig{
		Audiences:  []string{webID, androidID},
		HTTPClient: &http.Client{Transport: memoryCerts(authtest.JWKS(key))},
	})
	if err != nil {
		f.Fatal(err)
	}
	// With one audience idtoken checks aud too; validAndroid is refused.
	vOne, err := auth.NewVerifier(auth.VerifierConfig{
		Audiences:  []string{webID},
		HTTPClient: &http.Client{Transport: memoryCerts(authtest.JWKS(key))},
	})
	if err != nil {
		f.Fatal(err)
	}
	sign := func(h, c any) string { return authtest.SignRS256(key.Private, h, c) }
	valid := sign(authtest.Header("key-1"), authtest.Claims(webID, testSub))
	android := authtest.Claims(androidID, "42")
	validAndroid := sign(authtest.Header("key-1"), android)
	accept := map[string]bool{valid: true, validAndroid: true}

	parts := strings.Split(valid, ".")
	short := base64.RawURLEncoding.EncodeToString([]byte("short"))
	for _, seed := range []string{
		valid,
		validAndroid,
		authtest.Segment(map[string]any{"alg": "ES256", "kid": "key-1"}) + "." + parts[1] + "." + short,
		authtest.Segment(map[string]any{"alg": "none"}) + "." + parts[1] + ".",
		authtest.Segment(map[string]any{"alg": "HS256", "kid": "key-1"}) + "." + parts[1] + "." + parts[2],
		authtest.Segment(map[string]any{"alg": "RS256", "kid": "key-1", "enc": "A256GCM"}) + "." + parts[1] + "." + parts[2],
		authtest.Segment(map[string]any{"alg": "RS256", "kid": "other"}) + "." + parts[1] + "." + parts[2],
		sign(authtest.Header("key-1"), map[string]any{"iss": "accounts.google.com", "aud": []string{webID}, "sub": "1", "exp": 1 << 40, "iat": 1}),
		sign(authtest.Header("key-1"), `{"aud":"`+webID+`","aud":"x"}`),
		sign(authtest.Header("key-1"), `{"iss":"accounts.google.com","aud":"`+webID+`","sub":"..","exp":9999999999,"iat":0}`),
		parts[0] + "." + parts[1],
		valid + ".x",
		"..",
		"",
		"a.b.c",
		"eyJ.eyJ.AA",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		for _, tc := range []struct {
			v      *auth.Verifier
			accept map[string]bool
		}{
			{v, accept},
			{vOne, map[string]bool{valid: true}},
		} {
			c, err := tc.v.Verify(context.Background(), token, "")
			if err == nil {
				if !tc.accept[token] {
					t.Fatalf("accepted a token it must not: %q -> %+v", token, c)
				}
				continue
			}
			if k := signin.ErrorKind(err); k != signin.EUNAUTHORIZED || signin.ErrorCode(err) != "invalid_token" {
				t.Fatalf("refusal %s/%s (%v), want unauthorized/invalid_token", k, signin.ErrorCode(err), err)
			}
			if _, err := tc.v.VerifyCached(context.Background(), token); err == nil {
				t.Fatal("VerifyCached accepted what Verify refused")
			}
		}
	})
}
