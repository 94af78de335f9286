package auth_test

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"example.com/signin"
	"example.com/signin/internal/auth"
	"example.com/signin/internal/auth/authtest"
	"example.com/signin/internal/googlenet"
)

const (
	webID     = "1234-web.apps.googleusercontent.com"
	androidID = "1234-android.apps.googleusercontent.com"
	otherID   = "9999-someone-else.apps.googleusercontent.com"
	testSub   = "110169484474386276334"
)

// newVerifier returns a Verifier for webID and androidID that fetches keys
// from iss, changed by each of opts.
func newVerifier(t testing.TB, iss *authtest.Issuer, opts ...func(*auth.VerifierConfig)) *auth.Verifier {
	t.Helper()
	cfg := auth.VerifierConfig{
		Audiences:  []string{webID, androidID},
		HTTPClient: http.DefaultClient,
		CertsURL:   iss.CertsURL(),
	}
	for _, o := range opts {
		o(&cfg)
	}
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

func withClock(c *authtest.Clock) func(*auth.VerifierConfig) {
	return func(cfg *auth.VerifierConfig) { cfg.Now = c.Now }
}

// claimsAt returns valid claims issued at the clock's time.
func claimsAt(c *authtest.Clock, aud string) map[string]any {
	cl := authtest.Claims(aud, testSub)
	cl["iat"] = c.Now().Unix()
	cl["exp"] = c.Now().Add(time.Hour).Unix()
	return cl
}

// wantKind fails t unless err is a *signin.Error of kind and code.
func wantKind(t testing.TB, err error, kind, code string) {
	t.Helper()
	var se *signin.Error
	if !errors.As(err, &se) {
		t.Fatalf("error = %v (%T), want *signin.Error %s/%s", err, err, kind, code)
	}
	if se.Kind != kind || se.Code != code {
		t.Fatalf("error = %s/%s (%v), want %s/%s", se.Kind, se.Code, err, kind, code)
	}
}

func mustVerify(t testing.TB, v *auth.Verifier, token string) *auth.Claims {
	t.Helper()
	c, err := v.Verify(context.Background(), token, "")
	if err != nil {
		t.Fatalf("Verify of a valid token: %v", err)
	}
	return c
}

func TestVerifyValidToken(t *testing.T) {
	iss := authtest.NewIssuer(t)
	v := newVerifier(t, iss)
	claims := authtest.Claims(webID, testSub)
	claims["hd"] = "example.com"
	claims["nonce"] = "n-0S6_WzA2Mj"
	c, err := v.Verify(context.Background(), iss.Sign(nil, claims), "n-0S6_WzA2Mj")
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := auth.Claims{
		Sub: testSub, Email: claims["email"].(string), EmailVerified: true,
		Name: "Test User", GivenName: "Test", FamilyName: "User",
		Picture: "https://example.com/photo.png", HostedDomain: "example.com",
		Nonce: "n-0S6_WzA2Mj", AuthorizedParty: webID, Audience: webID,
		Issuer:    "https://accounts.google.com",
		IssuedAt:  time.Unix(claims["iat"].(int64), 0),
		ExpiresAt: time.Unix(claims["exp"].(int64), 0),
	}
	if *c != want {
		t.Errorf("claims =\n%+v\nwant\n%+v", *c, want)
	}
}

func TestVerifyAcceptsEveryConfiguredClientAndBothIssuers(t *testing.T) {
	iss := authtest.NewIssuer(t)
	v := newVerifier(t, iss)
	for _, tc := range []struct {
		name     string
		aud, azp string
		iss      string
	}{
		{"web", webID, webID, "https://accounts.google.com"},
		{"bare issuer", webID, webID, "accounts.google.com"},
		{"android app asking for the web audience", webID, androidID, "https://accounts.google.com"},
		{"android audience", androidID, androidID, "https://accounts.google.com"},
		{"no azp", webID, "", "https://accounts.google.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := authtest.Claims(tc.aud, testSub)
			cl["iss"] = tc.iss
			if tc.azp == "" {
				delete(cl, "azp")
			} else {
				cl["azp"] = tc.azp
			}
			c := mustVerify(t, v, iss.Sign(nil, cl))
			if c.Audience != tc.aud || c.AuthorizedParty != tc.azp || c.Issuer != tc.iss {
				t.Errorf("aud %q azp %q iss %q", c.Audience, c.AuthorizedParty, c.Issuer)
			}
		})
	}
}

func TestVerifyEmailVerifiedAsString(t *testing.T) {
	iss := authtest.NewIssuer(t)
	v := newVerifier(t, iss, func(c *auth.VerifierConfig) { c.HostedDomain = "example.com" })
	cl := authtest.Claims(webID, testSub)
	cl["hd"], cl["email_verified"] = "example.com", "true"
	if c := mustVerify(t, v, iss.Sign(nil, cl)); !c.EmailVerified {
		t.Error(`email_verified "true" read as false`)
	}
}

// forged builds a token with raw segments: header and payload JSON-encoded
// (or used as they are when []byte or string), sig base64url-encoded.
func forged(header, payload any, sig []byte) string {
	return authtest.Segment(header) + "." + authtest.Segment(payload) + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestVerifyRefusesForgedAndMalformedTokens(t *testing.T) {
	iss := authtest.NewIssuer(t)
	key := iss.Signer()
	stranger := authtest.NewKey(t, "key-1") // same kid, not Google's key
	unpublished := iss.AddKey(t, "key-2")
	iss.Unpublish("key-2")
	pubDER, err := x509.MarshalPKIXPublicKey(&key.Private.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	valid := func() map[string]any { return authtest.Claims(webID, testSub) }
	with := func(k string, v any) map[string]any {
		c := valid()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	hdr := func(kv ...any) map[string]any {
		h := authtest.Header(key.ID)
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(h, kv[i].(string))
			} else {
				h[kv[i].(string)] = kv[i+1]
			}
		}
		return h
	}
	sign := func(h map[string]any, c map[string]any) string { return authtest.SignRS256(key.Private, h, c) }
	good := sign(hdr(), valid())
	parts := strings.Split(good, ".")
	now := time.Now().Unix()

	hs256 := func() string {
		in := authtest.Segment(hdr("alg", "HS256")) + "." + authtest.Segment(valid())
		m := hmac.New(sha256.New, pubPEM)
		m.Write([]byte(in))
		return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	ps256 := func() string {
		in := authtest.Segment(hdr("alg", "PS256")) + "." + authtest.Segment(valid())
		h := sha256.Sum256([]byte(in))
		sig, err := rsa.SignPSS(rand.Reader, key.Private, crypto.SHA256, h[:], nil)
		if err != nil {
			t.Fatal(err)
		}
		return in + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	flipSig := func() string {
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		sig[len(sig)/2] ^= 0x01
		return parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	// nonCanonicalPayload is a token Google's key really signed whose
	// payload is spelled with unused bits set (idtoken's base64 decoder
	// ignores them).
	nonCanonicalPayload := func() string {
		c := valid()
		for len(authtest.Segment(c))%4 == 0 {
			c["pad"] = fmt.Sprint(c["pad"], "x")
		}
		seg := authtest.Segment(c)
		in := authtest.Segment(hdr()) + "." + seg[:len(seg)-1] + string(nonCanonical(seg[len(seg)-1]))
		h := sha256.Sum256([]byte(in))
		sig, err := rsa.SignPKCS1v15(nil, key.Private, crypto.SHA256, h[:])
		if err != nil {
			t.Fatal(err)
		}
		return in + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	hd := func(c *auth.VerifierConfig) { c.HostedDomain = "example.com" }
	hdClaims := func(kv ...any) map[string]any {
		c := valid()
		c["hd"] = "example.com"
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return c
	}

	tests := []struct {
		name  string
		token string
		nonce string
		cfg   func(*auth.VerifierConfig)
	}{
		{name: "alg none, no signature", token: forged(hdr("alg", "none"), valid(), nil)},
		{name: "alg none, with a signature", token: forged(hdr("alg", "none"), valid(), []byte("x"))},
		{name: "alg None", token: forged(hdr("alg", "None"), valid(), []byte("x"))},
		{name: "alg missing", token: sign(hdr("alg", nil), valid())},
		{name: "alg rs256 lower case", token: sign(hdr("alg", "rs256"), valid())},
		{name: "HS256 signed with the public key", token: hs256()},
		{name: "ES256 with a short signature", token: forged(hdr("alg", "ES256"), valid(), []byte("short"))},
		{name: "ES256 with an empty signature", token: parts[0][:0] + authtest.Segment(hdr("alg", "ES256")) + "." + parts[1] + ".AA"},
		{name: "PS256", token: ps256()},
		{name: "RS512", token: sign(hdr("alg", "RS512"), valid())},
		{name: "wrong signature", token: flipSig()},
		{name: "signature spelled with unused bits set", token: good[:len(good)-1] + string(nonCanonical(good[len(good)-1]))},
		{name: "signature too long", token: good + "A"},
		{name: "signature of another token", token: parts[0] + "." + parts[1] + "." + strings.Split(sign(hdr(), with("sub", "1")), ".")[2]},
		{name: "signed by a stranger's key with Google's kid", token: authtest.SignRS256(stranger.Private, hdr(), valid())},
		{name: "unknown kid", token: authtest.SignRS256(stranger.Private, hdr("kid", "no-such-key"), valid())},
		{name: "key not in the JWKS", token: authtest.SignRS256(unpublished.Private, hdr("kid", "key-2"), valid())},
		{name: "kid missing", token: sign(hdr("kid", nil), valid())},
		{name: "kid empty", token: sign(hdr("kid", ""), valid())},
		{name: "JWE header, five segments", token: authtest.Segment(map[string]any{"alg": "RSA-OAEP", "enc": "A256GCM", "kid": "key-1"}) + ".a.b.c.d"},
		{name: "JWE enc in an RS256 header", token: sign(hdr("enc", "A256GCM"), valid())},
		{name: "zip header", token: sign(hdr("zip", "DEF"), valid())},
		{name: "crit header", token: sign(hdr("crit", []string{"exp"}), valid())},
		{name: "iss foreign", token: sign(hdr(), with("iss", "https://evil.example.com"))},
		{name: "iss empty", token: sign(hdr(), with("iss", ""))},
		{name: "iss missing", token: sign(hdr(), with("iss", nil))},
		{name: "iss http://accounts.google.com", token: sign(hdr(), with("iss", "http://accounts.google.com"))},
		{name: "iss with a trailing slash", token: sign(hdr(), with("iss", "https://accounts.google.com/"))},
		{name: "aud foreign", token: sign(hdr(), with("aud", otherID))},
		{name: "aud empty", token: sign(hdr(), with("aud", ""))},
		{name: "aud missing", token: sign(hdr(), with("aud", nil))},
		{name: "aud array with ours and another", token: sign(hdr(), with("aud", []string{webID, otherID}))},
		{name: "aud array with only ours", token: sign(hdr(), with("aud", []string{webID}))},
		{name: "aud a number", token: sign(hdr(), with("aud", 42))},
		{name: "azp foreign", token: sign(hdr(), with("azp", otherID))},
		{name: "valid token for another client id", token: sign(hdr(), authtest.Claims(otherID, testSub))},
		{name: "expired", token: sign(hdr(), with("exp", now-1))},
		{name: "expired within the skew", token: sign(hdr(), with("exp", now-30))},
		{name: "expired beyond the skew", token: sign(hdr(), with("exp", now-3600))},
		{name: "exp missing", token: sign(hdr(), with("exp", nil))},
		{name: "exp a string", token: sign(hdr(), with("exp", fmt.Sprint(now+3600)))},
		{name: "exp a fraction", token: sign(hdr(), with("exp", float64(now)+3600.5))},
		{name: "iat far in the future", token: sign(hdr(), with("iat", now+3600))},
		{name: "iat beyond the skew", token: sign(hdr(), with("iat", now+120))},
		{name: "iat missing", token: sign(hdr(), with("iat", nil))},
		{name: "iat after exp", token: func() string { c := valid(); c["iat"], c["exp"] = now+30, now+20; return sign(hdr(), c) }()},
		{name: "nbf in the future", token: sign(hdr(), with("nbf", now+3600))},
		{name: "sub missing", token: sign(hdr(), with("sub", nil))},
		{name: "sub empty", token: sign(hdr(), with("sub", ""))},
		{name: "sub with a slash", token: sign(hdr(), with("sub", "../../etc/passwd"))},
		{name: "sub ..", token: sign(hdr(), with("sub", ".."))},
		{name: "sub with a space", token: sign(hdr(), with("sub", "1 2"))},
		{name: "sub with NUL", token: sign(hdr(), with("sub", "12\x00"))},
		{name: "sub of 300 characters", token: sign(hdr(), with("sub", strings.Repeat("1", 300)))},
		{name: "sub a number", token: sign(hdr(), with("sub", 1234))},
		{name: "email_verified false with a hosted domain", token: sign(hdr(), hdClaims("email_verified", false)), cfg: hd},
		{name: "email_verified missing with a hosted domain", token: sign(hdr(), hdClaims("email_verified", nil)), cfg: hd},
		{name: "email_verified not a boolean", token: sign(hdr(), with("email_verified", "yes"))},
		{name: "hd wrong", token: sign(hdr(), hdClaims("hd", "evil.example.com")), cfg: hd},
		{name: "hd missing", token: sign(hdr(), hdClaims("hd", nil)), cfg: hd},
		{name: "nonce mismatch", token: sign(hdr(), with("nonce", "abc")), nonce: "xyz"},
		{name: "nonce missing when one was sent", token: good, nonce: "xyz"},
		{name: "empty token", token: ""},
		{name: "two dots", token: ".."},
		{name: "one dot", token: parts[0] + "." + parts[1]},
		{name: "no signature", token: parts[0] + "." + parts[1] + "."},
		{name: "four segments", token: good + ".AAAA"},
		{name: "bad base64", token: parts[0] + "." + parts[1][:10] + "!" + parts[1][11:] + "." + parts[2]},
		{name: "base64 with padding", token: parts[0] + "." + parts[1] + "==." + parts[2]},
		{name: "standard base64 alphabet", token: parts[0] + "." + parts[1] + "." + strings.NewReplacer("-", "+", "_", "/").Replace(parts[2]) + "+/"},
		{name: "newline inside", token: parts[0] + ".\n" + parts[1] + "." + parts[2]},
		{name: "leading space", token: " " + good},
		{name: "header not JSON", token: authtest.Segment("hello") + "." + parts[1] + "." + parts[2]},
		{name: "header a JSON array", token: authtest.Segment(`["RS256"]`) + "." + parts[1] + "." + parts[2]},
		{name: "payload not JSON", token: authtest.SignRS256(key.Private, hdr(), "not json")},
		{name: "payload a JSON string", token: authtest.SignRS256(key.Private, hdr(), `"sub"`)},
		{name: "payload empty", token: parts[0] + ".." + parts[2]},
		{name: "1 MB token", token: parts[0] + "." + strings.Repeat("A", 1<<20) + "." + parts[2]},
		// Claims are read under their exact names, with their JSON types.
		{name: "payload spelled with unused bits set", token: nonCanonicalPayload()},
		{name: "exp only as EXP", token: func() string { c := with("exp", nil); c["EXP"] = now + 3600; return sign(hdr(), c) }()},
		{name: "iat null", token: func() string { c := valid(); c["iat"] = nil; return sign(hdr(), c) }()},
		{name: "nbf a fraction", token: sign(hdr(), with("nbf", float64(now)+0.5))},
		{name: "nbf a string", token: sign(hdr(), with("nbf", "0"))},
		{name: "nbf beyond int64", token: sign(hdr(), with("nbf", 1e19))},
		{name: "name a number", token: sign(hdr(), with("name", 5))},
		{name: `email_verified "false" with a hosted domain`, token: sign(hdr(), hdClaims("email_verified", "false")), cfg: hd},
	}
	// Each forgery is refused with one audience configured (idtoken is told
	// it) and with several (idtoken is told none; we check aud ourselves).
	for _, auds := range [][]string{{webID, androidID}, {webID}} {
		withAuds := func(c *auth.VerifierConfig) { c.Audiences = auds }
		t.Run(fmt.Sprintf("%d audiences", len(auds)), func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					opts := []func(*auth.VerifierConfig){withAuds}
					if tc.cfg != nil {
						opts = append(opts, tc.cfg)
					}
					v := newVerifier(t, iss, opts...)
					c, err := v.Verify(context.Background(), tc.token, tc.nonce)
					if err == nil {
						t.Fatalf("Verify accepted it: %+v", c)
					}
					wantKind(t, err, signin.EUNAUTHORIZED, "invalid_token")
					t.Logf("refused: %v", errors.Unwrap(err))
					if signin.ErrorMessage(err) != "the ID token is not valid" {
						t.Errorf("message %q", signin.ErrorMessage(err))
					}
					if len(tc.token) > 40 && strings.Contains(err.Error(), tc.token[:40]) {
						t.Errorf("the error quotes the token: %v", err)
					}
					if tc.nonce == "" {
						if _, err := v.VerifyCached(context.Background(), tc.token); err == nil {
							t.Fatal("VerifyCached accepted it")
						}
					}
				})
			}
			// The same verifier configuration accepts the untouched token,
			// so the refusals above are the forgeries' doing.
			mustVerify(t, newVerifier(t, iss, withAuds), good)
		})
	}
	if len(tests) < 30 {
		t.Errorf("only %d cases", len(tests))
	}
}

func TestVerifyWithOneAudience(t *testing.T) {
	iss := authtest.NewIssuer(t)
	v := newVerifier(t, iss, func(c *auth.VerifierConfig) { c.Audiences = []string{webID} })
	if c := mustVerify(t, v, iss.Token(webID, testSub)); c.Audience != webID {
		t.Errorf("aud %q", c.Audience)
	}
	for _, tc := range []struct {
		name string
		aud  any
	}{
		// Accepted by a Verifier that also has androidID.
		{"another of the app's client ids", androidID},
		// idtoken decodes "aud" into a string field: an array fails there,
		// before any check of ours, and must still be refused.
		{"aud array with only ours", []string{webID}},
		{"aud array with ours and another", []string{webID, otherID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := authtest.Claims(webID, testSub)
			cl["aud"] = tc.aud
			_, err := v.Verify(context.Background(), iss.Sign(nil, cl), "")
			wantKind(t, err, signin.EUNAUTHORIZED, "invalid_token")
			t.Logf("refused: %v", errors.Unwrap(err))
		})
	}
}

func TestVerifyFetchesKeysThroughGooglenet(t *testing.T) {
	iss := authtest.NewIssuer(t)
	u, _ := url.Parse(iss.URL())
	n, err := googlenet.New(u.Host, googlenet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{Audiences: []string{webID}, HTTPClient: n.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	mustVerify(t, v, iss.Token(webID, testSub))
	if iss.Fetches() != 1 {
		t.Errorf("issuer saw %d fetches, want 1", iss.Fetches())
	}
}

func TestSteadyStateMakesNoFetches(t *testing.T) {
	iss := authtest.NewIssuer(t)
	v := newVerifier(t, iss)
	for i := range 50 {
		mustVerify(t, v, iss.Token(webID, fmt.Sprint(1000+i)))
	}
	if got := iss.Fetches(); got != 1 {
		t.Errorf("50 verifications made %d fetches, want 1", got)
	}
	if got := v.KeyFetches(); got != 1 {
		t.Errorf("KeyFetches = %d, want 1", got)
	}
}

func TestConcurrentColdVerificationsShareOneFetch(t *testing.T) {
	iss := authtest.NewIssuer(t)
	v := newVerifier(t, iss)
	token := iss.Token(webID, testSub)
	release := iss.Hold()
	defer release()

	const n = 200
	var started, done sync.WaitGroup
	errs := make(chan error, n)
	started.Add(n)
	done.Add(n)
	for range n {
		go func() {
			defer done.Done()
			started.Done()
			_, err := v.Verify(context.Background(), token, "")
			errs <- err
		}()
	}
	started.Wait()
	<-iss.Arrived() // the one fetch is in flight; everyone else must wait for it
	release()
	done.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
	}
	if got := iss.Fetches(); got != 1 {
		t.Errorf("%d concurrent cold verifications made %d fetches, want 1", n, got)
	}
}

func TestKeysWithoutCacheControlAreKeptForTheFloor(t *testing.T) {
	iss := authtest.NewIssuer(t)
	iss.SetHeaders("", "")
	clock := authtest.NewClock(time.Now())
	v := newVerifier(t, iss, withClock(clock), func(c *auth.VerifierConfig) { c.MinKeyTTL = 5 * time.Minute })

	mustVerify(t, v, iss.Sign(nil, claimsAt(clock, webID)))
	clock.Advance(5*time.Minute - time.Second)
	mustVerify(t, v, iss.Sign(nil, claimsAt(clock, webID)))
	if got := iss.Fetches(); got != 1 {
		t.Fatalf("within the floor: %d fetches, want 1", got)
	}
	clock.Advance(2 * time.Second)
	mustVerify(t, v, iss.Sign(nil, claimsAt(clock, webID)))
	if got := iss.Fetches(); got != 2 {
		t.Errorf("after the floor: %d fetches, want 2", got)
	}
}

func TestKeysAreKeptForMaxAgeMinusAge(t *testing.T) {
	for _, tc := range []struct {
		name         string
		cacheControl string
		age          string
		ttl          time.Duration
	}{
		{"Google's header", authtest.GoogleCacheControl, "0", 6 * time.Hour},
		{"with Age", authtest.GoogleCacheControl, "20000", 1600 * time.Second},
		{"Age beyond max-age: the floor", "max-age=100", "500", time.Minute},
		{"max-age below the floor", "public, max-age=5", "", time.Minute},
		{"no-store: the floor", "no-store", "", time.Minute},
		{"malformed max-age: the floor", "max-age=soon", "", time.Minute},
		{"a year: capped at a day", "max-age=31536000", "", 24 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iss := authtest.NewIssuer(t)
			iss.SetHeaders(tc.cacheControl, tc.age)
			clock := authtest.NewClock(time.Now())
			v := newVerifier(t, iss, withClock(clock), func(c *auth.VerifierConfig) {
				c.MinKeyTTL = time.Minute
				c.MinRefetchInterval = time.Second
			})
			mustVerify(t, v, iss.Sign(nil, claimsAt(clock, webID)))
			clock.Advance(tc.ttl - time.Second)
			mustVerify(t, v, iss.Sign(nil, claimsAt(clock, webID)))
			if got := iss.Fetches(); got != 1 {
				t.Fatalf("1 s before the TTL: %d fetches, want 1", got)
			}
			clock.Advance(2 * time.Second)
			mustVerify(t, v, iss.Sign(nil, claimsAt(clock, webID)))
			if got := iss.Fetches(); got != 2 {
				t.Errorf("1 s after the TTL: %d fetches, want 2", got)
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	iss := authtest.NewIssuer(t)
	clock := authtest.NewClock(time.Now())
	v := newVerifier(t, iss, withClock(clock))
	old := iss.Sign(nil, claimsAt(clock, webID))
	mustVerify(t, v, old)

	iss.AddKey(t, "key-2")
	iss.UseKey("key-2")
	clock.Advance(auth.DefaultMinRefetchInterval)
	mustVerify(t, v, iss.Sign(nil, claimsAt(clock, webID)))
	if got := iss.Fetches(); got != 2 {
		t.Errorf("a new kid made %d fetches in all, want 2", got)
	}
	mustVerify(t, v, old) // the old key is still published
	mustVerify(t, v, iss.Sign(nil, claimsAt(clock, webID)))
	if got := iss.Fetches(); got != 2 {
		t.Errorf("after the rotation: %d fetches, want 2", got)
	}
}

func TestNewKidWithinTheRefetchIntervalWaitsForIt(t *testing.T) {
	iss := authtest.NewIssuer(t)
	clock := authtest.NewClock(time.Now())
	v := newVerifier(t, iss, withClock(clock))
	mustVerify(t, v, iss.Sign(nil, claimsAt(clock, webID)))

	iss.AddKey(t, "key-2")
	iss.UseKey("key-2")
	clock.Advance(auth.DefaultMinRefetchInterval / 2)
	_, err := v.Verify(context.Background(), iss.Sign(nil, claimsAt(clock, webID)), "")
	wantKind(t, err, signin.EUNAUTHORIZED, "invalid_token")
	if got := iss.Fetches(); got != 1 {
		t.Fatalf("a new kid within the interval made %d fetches in all, want 1", got)
	}
	clock.Advance(auth.DefaultMinRefetchInterval / 2)
	mustVerify(t, v, iss.Sign(nil, claimsAt(clock, webID)))
}

func TestRandomKidsCauseAtMostOneRefetchPerInterval(t *testing.T) {
	iss := authtest.NewIssuer(t)
	clock := authtest.NewClock(time.Now())
	v := newVerifier(t, iss, withClock(clock))
	good := iss.Sign(nil, claimsAt(clock, webID))
	mustVerify(t, v, good)
	clock.Advance(auth.DefaultMinRefetchInterval)

	// The kid is looked up before the signature is checked, so a borrowed
	// signature is enough to ask for a key.
	sig := good[strings.LastIndexByte(good, '.')+1:]
	payload := authtest.Segment(claimsAt(clock, webID))
	const n = 1000
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			token := authtest.Segment(authtest.Header(fmt.Sprintf("random-%d-%x", i, i*7919))) + "." + payload + "." + sig
			_, err := v.Verify(context.Background(), token, "")
			wantKind(t, err, signin.EUNAUTHORIZED, "invalid_token")
		})
		if i == n/2 {
			clock.Advance(auth.DefaultMinRefetchInterval / 2) // still within the interval
		}
	}
	wg.Wait()
	if got := iss.Fetches(); got != 2 {
		t.Errorf("%d random kids: %d fetches in all, want 2 (the first and one refetch)", n, got)
	}
	mustVerify(t, v, good)
}

func TestCertsEndpointDownWithNoKeys(t *testing.T) {
	iss := authtest.NewIssuer(t)
	iss.SetStatus(http.StatusInternalServerError)
	clock := authtest.NewClock(time.Now())
	v := newVerifier(t, iss, withClock(clock))
	token := iss.Sign(nil, claimsAt(clock, webID))

	for range 20 {
		_, err := v.Verify(context.Background(), token, "")
		wantKind(t, err, signin.EUPSTREAM, "google_unavailable")
	}
	if got := iss.Fetches(); got != 1 {
		t.Errorf("20 verifications while down made %d fetches, want 1", got)
	}
	iss.SetStatus(0)
	clock.Advance(time.Second)
	mustVerify(t, v, token)
}

func TestUnusableKeySetIsUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
	}{
		{"not JSON", "<html>"},
		{"no keys", `{"keys":[]}`},
		{"only EC keys", `{"keys":[{"kid":"key-1","kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`},
		{"RSA key too small", `{"keys":[{"kid":"key-1","kty":"RSA","n":"AQAB","e":"AQAB"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iss := authtest.NewIssuer(t)
			iss.SetBody([]byte(tc.body))
			v := newVerifier(t, iss)
			_, err := v.Verify(context.Background(), iss.Token(webID, testSub), "")
			wantKind(t, err, signin.EUPSTREAM, "google_unavailable")
		})
	}
}

func TestFailedRefreshKeepsThePreviousKeys(t *testing.T) {
	iss := authtest.NewIssuer(t)
	clock := authtest.NewClock(time.Now())
	v := newVerifier(t, iss, withClock(clock))
	mustVerify(t, v, iss.Sign(nil, claimsAt(clock, webID)))

	iss.SetStatus(http.StatusServiceUnavailable)
	clock.Advance(6*time.Hour + time.Second) // past Google's max-age
	for range 10 {
		mustVerify(t, v, iss.Sign(nil, claimsAt(clock, webID)))
	}
	if got := iss.Fetches(); got != 2 {
		t.Errorf("fetches = %d, want 2 (one failed refresh, then none within the interval)", got)
	}

	// A kid we do not know while Google is failing: we cannot tell whether
	// the token is good, so the answer is "try again", not "invalid".
	iss.AddKey(t, "key-2")
	iss.UseKey("key-2")
	clock.Advance(auth.DefaultMinRefetchInterval)
	_, err := v.Verify(context.Background(), iss.Sign(nil, claimsAt(clock, webID)), "")
	wantKind(t, err, signin.EUPSTREAM, "google_unavailable")

	iss.SetStatus(0)
	clock.Advance(auth.DefaultMinRefetchInterval)
	mustVerify(t, v, iss.Sign(nil, claimsAt(clock, webID)))
}

func TestVerifyCached(t *testing.T) {
	iss := authtest.NewIssuer(t)
	clock := authtest.NewClock(time.Now())
	v := newVerifier(t, iss, withClock(clock))
	claims := claimsAt(clock, webID)
	claims["exp"] = clock.Now().Add(10 * time.Minute).Unix()
	token := iss.Sign(nil, claims)

	first, err := v.VerifyCached(context.Background(), token)
	if err != nil {
		t.Fatal(err)
	}
	first.Sub = "changed by the caller"
	second, err := v.VerifyCached(context.Background(), token)
	if err != nil {
		t.Fatal(err)
	}
	if second.Sub != testSub {
		t.Errorf("cached sub = %q: a caller's change reached the cache", second.Sub)
	}

	clock.Advance(10*time.Minute - time.Second)
	if _, err := v.VerifyCached(context.Background(), token); err != nil {
		t.Fatalf("a second before exp: %v", err)
	}
	clock.Advance(time.Second)
	_, err = v.VerifyCached(context.Background(), token)
	wantKind(t, err, signin.EUNAUTHORIZED, "invalid_token")
}

func TestVerifyCachedDisabled(t *testing.T) {
	iss := authtest.NewIssuer(t)
	v := newVerifier(t, iss, func(c *auth.VerifierConfig) { c.CacheSize = -1 })
	token := iss.Token(webID, testSub)
	for range 3 {
		if _, err := v.VerifyCached(context.Background(), token); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNewVerifierRefusesBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  auth.VerifierConfig
	}{
		{"no audiences", auth.VerifierConfig{}},
		{"empty audience", auth.VerifierConfig{Audiences: []string{webID, ""}}},
		{"audience with a space", auth.VerifierConfig{Audiences: []string{"a b"}}},
		{"negative skew", auth.VerifierConfig{Audiences: []string{webID}, ClockSkew: -time.Second}},
		{"certs URL not http", auth.VerifierConfig{Audiences: []string{webID}, CertsURL: "file:///etc/passwd"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := auth.NewVerifier(tc.cfg); err == nil {
				t.Error("NewVerifier accepted it")
			}
		})
	}
}

func TestVerifyHonoursClockSkewForIat(t *testing.T) {
	iss := authtest.NewIssuer(t)
	clock := authtest.NewClock(time.Now())
	v := newVerifier(t, iss, withClock(clock), func(c *auth.VerifierConfig) { c.ClockSkew = 30 * time.Second })
	cl := claimsAt(clock, webID)
	cl["iat"] = clock.Now().Add(30 * time.Second).Unix()
	mustVerify(t, v, iss.Sign(nil, cl))
	cl["iat"] = clock.Now().Add(31 * time.Second).Unix()
	_, err := v.Verify(context.Background(), iss.Sign(nil, cl), "")
	wantKind(t, err, signin.EUNAUTHORIZED, "invalid_token")
}

// nonCanonical returns the base64url character that decodes like c in the
// last position of a 342-character segment (the low 4 bits are unused) but
// has one of those bits set.
func nonCanonical(c byte) byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	return alphabet[strings.IndexByte(alphabet, c)|1]
}

func TestCancelledWaiterDoesNotFailTheSharedFetch(t *testing.T) {
	iss := authtest.NewIssuer(t)
	v := newVerifier(t, iss)
	token := iss.Token(webID, testSub)
	release := iss.Hold()
	defer release()

	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error)
	go func() { _, err := v.Verify(ctx, token, ""); first <- err }()
	<-iss.Arrived() // the fetch runs on behalf of the first caller
	cancel()
	err := <-first
	wantKind(t, err, signin.EUPSTREAM, "google_unavailable")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cause %v, want context.Canceled", err)
	}

	second := make(chan error)
	go func() { _, err := v.Verify(context.Background(), token, ""); second <- err }()
	release()
	if err := <-second; err != nil {
		t.Fatalf("the second caller: %v", err)
	}
	if got := iss.Fetches(); got != 1 {
		t.Errorf("%d fetches, want 1: the first caller's cancellation ended the shared fetch", got)
	}
}
