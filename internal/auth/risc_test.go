package auth_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"example.com/signin"
	"example.com/signin/internal/auth"
	"example.com/signin/internal/auth/authtest"
	"example.com/signin/internal/googlenet"
)

const (
	riscIssuer  = "https://accounts.google.com/" // as Google's configuration says, with the slash
	riscWeb     = "1234-web.apps.googleusercontent.com"
	riscAndroid = "1234-android.apps.googleusercontent.com"
	riscSub     = "110169484474386276334"
	riscJTI     = "756E69717565206964656E746966696572"

	uriSessionsRevoked = "https://schemas.openid.net/secevent/risc/event-type/sessions-revoked"
	uriTokensRevoked   = "https://schemas.openid.net/secevent/oauth/event-type/tokens-revoked"
	uriTokenRevoked    = "https://schemas.openid.net/secevent/oauth/event-type/token-revoked"
	uriDisabled        = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
	uriEnabled         = "https://schemas.openid.net/secevent/risc/event-type/account-enabled"
	uriCredChange      = "https://schemas.openid.net/secevent/risc/event-type/account-credential-change-required"
	uriVerification    = "https://schemas.openid.net/secevent/risc/event-type/verification"
)

// riscGoogle is a fake Google for RISC: the risc-configuration document on
// a server that googlenet's client reaches in place of accounts.google.com,
// naming the keys of an authtest.Issuer.
type riscGoogle struct {
	keys    *authtest.Issuer
	clock   *authtest.Clock
	fetches atomic.Int64
	status  atomic.Int32 // 0: serve the document
	v       *auth.RISCVerifier
	logs    *syncBuffer
}

func newRISCGoogle(t *testing.T) *riscGoogle {
	t.Helper()
	g := &riscGoogle{keys: authtest.NewIssuer(t), clock: authtest.NewClock(time.Now()), logs: new(syncBuffer)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/risc-configuration", func(w http.ResponseWriter, r *http.Request) {
		g.fetches.Add(1)
		if s := g.status.Load(); s != 0 {
			http.Error(w, "fault injected", int(s))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		json.NewEncoder(w).Encode(map[string]any{
			"issuer":   riscIssuer,
			"jwks_uri": g.keys.CertsURL(),
			"delivery_methods_supported": []string{
				"https://schemas.openid.net/secevent/risc/delivery-method/push",
			},
		})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	n, err := googlenet.New(strings.TrimPrefix(srv.URL, "http://"), googlenet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g.v, err = auth.NewRISCVerifier(auth.RISCVerifierConfig{
		ClientIDs:  []string{riscWeb, riscAndroid},
		HTTPClient: n.HTTPClient(),
		Now:        g.clock.Now,
		Logger:     slog.New(slog.NewTextHandler(g.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// setClaims returns the claims of a valid SET with one event.
func setClaims(uri string, event map[string]any) map[string]any {
	return map[string]any{
		"iss":    riscIssuer,
		"aud":    riscWeb,
		"iat":    time.Now().Unix(),
		"jti":    riscJTI,
		"events": map[string]any{uri: event},
	}
}

func userSubject(sub string) map[string]any {
	return map[string]any{"subject_type": "iss-sub", "iss": riscIssuer, "sub": sub}
}

func (g *riscGoogle) verify(t *testing.T, token string) (*auth.SecurityEvent, error) {
	t.Helper()
	return g.v.Verify(context.Background(), []byte(token))
}

func (g *riscGoogle) mustVerify(t *testing.T, token string) *auth.SecurityEvent {
	t.Helper()
	ev, err := g.verify(t, token)
	if err != nil {
		t.Fatalf("Verify of a valid SET: %v", err)
	}
	return ev
}

func TestRISCVerifyEveryEventType(t *testing.T) {
	g := newRISCGoogle(t)
	tokenSubject := map[string]any{
		"subject_type": "oauth_token", "token_type": "refresh_token",
		"token_identifier_alg": "prefix", "token": "1//0gAbCdEfGhIjK",
	}
	tests := []struct {
		uri   string
		event map[string]any
		want  auth.Event
	}{
		{uriSessionsRevoked, map[string]any{"subject": userSubject(riscSub)},
			auth.Event{Type: auth.EventSessionsRevoked, Subject: auth.Subject{Type: "iss-sub", Issuer: riscIssuer, Sub: riscSub}}},
		{uriTokensRevoked, map[string]any{"subject": userSubject(riscSub)},
			auth.Event{Type: auth.EventTokensRevoked, Subject: auth.Subject{Type: "iss-sub", Issuer: riscIssuer, Sub: riscSub}}},
		{uriTokenRevoked, map[string]any{"subject": tokenSubject},
			auth.Event{Type: auth.EventTokenRevoked, Subject: auth.Subject{Type: "oauth_token", TokenType: "refresh_token", TokenIdentifierAlg: auth.TokenIDPrefix, Token: "1//0gAbCdEfGhIjK"}}},
		{uriDisabled, map[string]any{"subject": userSubject(riscSub), "reason": "hijacking"},
			auth.Event{Type: auth.EventAccountDisabled, Reason: "hijacking", Subject: auth.Subject{Type: "iss-sub", Issuer: riscIssuer, Sub: riscSub}}},
		{uriDisabled, map[string]any{"subject": userSubject(riscSub), "reason": "bulk-account"},
			auth.Event{Type: auth.EventAccountDisabled, Reason: "bulk-account", Subject: auth.Subject{Type: "iss-sub", Issuer: riscIssuer, Sub: riscSub}}},
		{uriEnabled, map[string]any{"subject": userSubject(riscSub)},
			auth.Event{Type: auth.EventAccountEnabled, Subject: auth.Subject{Type: "iss-sub", Issuer: riscIssuer, Sub: riscSub}}},
		{uriCredChange, map[string]any{"subject": map[string]any{"subject_type": "id_token_claims", "iss": riscIssuer, "sub": riscSub, "email": "ada@example.com"}},
			auth.Event{Type: auth.EventAccountCredentialChangeRequired, Subject: auth.Subject{Type: "id_token_claims", Issuer: riscIssuer, Sub: riscSub, Email: "ada@example.com"}}},
		{uriVerification, map[string]any{"state": "opaque-state-42"},
			auth.Event{Type: auth.EventVerification, State: "opaque-state-42"}},
		{"https://schemas.openid.net/secevent/risc/event-type/some-future-event", map[string]any{"subject": userSubject(riscSub)},
			auth.Event{Type: "", Subject: auth.Subject{Type: "iss-sub", Issuer: riscIssuer, Sub: riscSub}}},
	}
	for _, tt := range tests {
		t.Run(tt.uri[strings.LastIndexByte(tt.uri, '/')+1:], func(t *testing.T) {
			claims := setClaims(tt.uri, tt.event)
			claims["aud"] = riscAndroid
			ev := g.mustVerify(t, g.keys.Sign(nil, claims))
			if ev.JTI != riscJTI || ev.Audience != riscAndroid || ev.IssuedAt.Unix() != claims["iat"].(int64) {
				t.Errorf("SecurityEvent = %+v", ev)
			}
			tt.want.URI = tt.uri
			if len(ev.Events) != 1 || ev.Events[0] != tt.want {
				t.Errorf("Events = %+v, want [%+v]", ev.Events, tt.want)
			}
		})
	}
}

func TestRISCVerifyAcceptsHistoricalEvents(t *testing.T) {
	g := newRISCGoogle(t)
	claims := setClaims(uriSessionsRevoked, map[string]any{"subject": userSubject(riscSub)})
	claims["iat"] = time.Now().Add(-72 * time.Hour).Unix()
	claims["exp"] = time.Now().Add(-71 * time.Hour).Unix()
	g.mustVerify(t, g.keys.Sign(nil, claims))
}

func TestRISCVerifyAudienceArray(t *testing.T) {
	g := newRISCGoogle(t)
	claims := setClaims(uriSessionsRevoked, map[string]any{"subject": userSubject(riscSub)})
	claims["aud"] = []string{"9999-other.apps.googleusercontent.com", riscWeb}
	if ev := g.mustVerify(t, g.keys.Sign(nil, claims)); ev.Audience != riscWeb {
		t.Errorf("Audience = %q, want %q", ev.Audience, riscWeb)
	}
}

func TestRISCVerifyRefusesInvalidSETs(t *testing.T) {
	g := newRISCGoogle(t)
	valid := func() map[string]any {
		return setClaims(uriDisabled, map[string]any{"subject": userSubject(riscSub), "reason": "hijacking"})
	}
	with := func(name string, v any) map[string]any {
		c := valid()
		if v == nil {
			delete(c, name)
		} else {
			c[name] = v
		}
		return c
	}
	stranger := authtest.NewKey(t, "key-1") // Google's kid, not Google's key
	unknown := authtest.NewKey(t, "key-404")
	good := g.keys.Sign(nil, valid())
	goodParts := strings.Split(good, ".")
	pub := g.keys.Signer().Private.PublicKey
	hs256 := func() string {
		signing := authtest.Segment(map[string]any{"alg": "HS256", "kid": "key-1", "typ": "JWT"}) + "." + authtest.Segment(valid())
		m := hmac.New(sha256.New, pub.N.Bytes()) // the key confusion attack
		m.Write([]byte(signing))
		return signing + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}

	tests := map[string]string{
		"empty":               "",
		"garbage":             "this is not a token",
		"three dots of junk":  "a.b.c",
		"JSON body":           `{"iss":"https://accounts.google.com/"}`,
		"wrong key":           authtest.SignRS256(stranger.Private, authtest.Header("key-1"), valid()),
		"unknown kid":         authtest.SignRS256(unknown.Private, authtest.Header("key-404"), valid()),
		"alg none, unsigned":  authtest.Segment(map[string]any{"alg": "none", "kid": "key-1"}) + "." + authtest.Segment(valid()) + ".",
		"alg none, signed":    g.keys.Sign(map[string]any{"alg": "none", "kid": "key-1"}, valid()),
		"HS256":               hs256(),
		"payload swapped":     goodParts[0] + "." + authtest.Segment(with("aud", riscAndroid)) + "." + goodParts[2],
		"signature dropped":   goodParts[0] + "." + goodParts[1] + ".",
		"wrong aud":           g.keys.Sign(nil, with("aud", "9999-other.apps.googleusercontent.com")),
		"aud array, not ours": g.keys.Sign(nil, with("aud", []string{"9999-other.apps.googleusercontent.com"})),
		"no aud":              g.keys.Sign(nil, with("aud", nil)),
		"iss without slash":   g.keys.Sign(nil, with("iss", "https://accounts.google.com")),
		"iss bare":            g.keys.Sign(nil, with("iss", "accounts.google.com")),
		"iss elsewhere":       g.keys.Sign(nil, with("iss", "https://evil.example/")),
		"no jti":              g.keys.Sign(nil, with("jti", nil)),
		"jti a number":        g.keys.Sign(nil, with("jti", 42)),
		"no iat":              g.keys.Sign(nil, with("iat", nil)),
		"missing events":      g.keys.Sign(nil, with("events", nil)),
		"empty events":        g.keys.Sign(nil, with("events", map[string]any{})),
		"events a string":     g.keys.Sign(nil, with("events", "sessions-revoked")),
		"event a string":      g.keys.Sign(nil, with("events", map[string]any{uriSessionsRevoked: "x"})),
		"sub a path":          g.keys.Sign(nil, setClaims(uriSessionsRevoked, map[string]any{"subject": userSubject("../../etc/passwd")})),
		"iss-sub without sub": g.keys.Sign(nil, setClaims(uriSessionsRevoked, map[string]any{"subject": map[string]any{"subject_type": "iss-sub", "iss": riscIssuer}})),
		"reason a number":     g.keys.Sign(nil, setClaims(uriDisabled, map[string]any{"subject": userSubject(riscSub), "reason": 1})),
		"too long":            strings.Repeat("a", 20000) + ".b.c",
	}
	for name, token := range tests {
		t.Run(name, func(t *testing.T) {
			ev, err := g.verify(t, token)
			if ev != nil {
				t.Errorf("returned an event: %+v", ev)
			}
			wantKind(t, err, signin.EINVALID, "invalid_set")
			if msg := signin.ErrorMessage(err); strings.Contains(msg, "aud") || strings.Contains(msg, "kid") || strings.Contains(msg, "iss") {
				t.Errorf("the message tells the caller why: %q", msg)
			}
		})
	}
	if len(good) > 20 && strings.Contains(g.logs.String(), good[len(good)-20:]) {
		t.Error("a token (its signature) was logged")
	}
	if !strings.Contains(g.logs.String(), "refused a security event token") {
		t.Error("refusals are not logged")
	}
	// The valid token was valid all along.
	g.mustVerify(t, good)
}

func TestRISCConfigFetchedOnceAndCached(t *testing.T) {
	g := newRISCGoogle(t)
	claims := setClaims(uriSessionsRevoked, map[string]any{"subject": userSubject(riscSub)})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := g.v.Verify(context.Background(), []byte(g.keys.Sign(nil, claims))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for range 3 {
		g.mustVerify(t, g.keys.Sign(nil, claims))
	}
	if n := g.fetches.Load(); n != 1 || g.v.ConfigFetches() != 1 {
		t.Fatalf("configuration fetched %d times (verifier counted %d), want 1", n, g.v.ConfigFetches())
	}
	if n := g.keys.Fetches(); n != 1 {
		t.Fatalf("keys fetched %d times, want 1", n)
	}

	// Cache-Control: max-age=3600. Within it, nothing; after it, once.
	g.clock.Advance(59 * time.Minute)
	g.mustVerify(t, g.keys.Sign(nil, claims))
	if n := g.fetches.Load(); n != 1 {
		t.Fatalf("configuration fetched %d times within its max-age, want 1", n)
	}
	g.clock.Advance(2 * time.Minute)
	g.mustVerify(t, g.keys.Sign(nil, claims))
	if n := g.fetches.Load(); n != 2 {
		t.Fatalf("configuration fetched %d times after its max-age, want 2", n)
	}

	// A failing refresh keeps the previous document, and is not retried
	// per request.
	g.status.Store(http.StatusInternalServerError)
	g.clock.Advance(61 * time.Minute)
	for range 3 {
		g.mustVerify(t, g.keys.Sign(nil, claims))
	}
	if n := g.fetches.Load(); n != 3 {
		t.Fatalf("configuration fetched %d times with a failing endpoint, want 3 (one failed refresh)", n)
	}
}

func TestRISCUnknownKidRefetchesAtMostOncePerMinute(t *testing.T) {
	g := newRISCGoogle(t)
	claims := setClaims(uriSessionsRevoked, map[string]any{"subject": userSubject(riscSub)})
	g.mustVerify(t, g.keys.Sign(nil, claims))
	if n := g.keys.Fetches(); n != 1 {
		t.Fatalf("keys fetched %d times, want 1", n)
	}

	// As for ID tokens, no fetch starts within a minute of the previous
	// one, the first included.
	g.clock.Advance(61 * time.Second)
	stranger := authtest.NewKey(t, "key-404")
	forgedSET := authtest.SignRS256(stranger.Private, authtest.Header("key-404"), claims)
	for range 5 {
		_, err := g.verify(t, forgedSET)
		wantKind(t, err, signin.EINVALID, "invalid_set")
	}
	if n := g.keys.Fetches(); n != 2 {
		t.Fatalf("keys fetched %d times after unknown kids, want 2 (one refetch)", n)
	}

	// Google rotates: the new key is refused until a refetch is allowed...
	g.keys.AddKey(t, "key-2")
	g.keys.UseKey("key-2")
	g.clock.Advance(30 * time.Second)
	_, err := g.verify(t, g.keys.Sign(nil, claims))
	wantKind(t, err, signin.EINVALID, "invalid_set")
	if n := g.keys.Fetches(); n != 2 {
		t.Fatalf("keys fetched %d times within the minute, want 2", n)
	}
	// ...and accepted after it.
	g.clock.Advance(31 * time.Second)
	g.mustVerify(t, g.keys.Sign(nil, claims))
	if n := g.keys.Fetches(); n != 3 {
		t.Fatalf("keys fetched %d times, want 3", n)
	}
}

func TestRISCUpstreamFailures(t *testing.T) {
	claims := setClaims(uriSessionsRevoked, map[string]any{"subject": userSubject(riscSub)})

	t.Run("configuration unavailable", func(t *testing.T) {
		g := newRISCGoogle(t)
		g.status.Store(http.StatusServiceUnavailable)
		_, err := g.verify(t, g.keys.Sign(nil, claims))
		wantKind(t, err, signin.EUPSTREAM, "google_unavailable")
		if g.keys.Fetches() != 0 {
			t.Error("keys fetched without a configuration")
		}
	})
	t.Run("keys unavailable", func(t *testing.T) {
		g := newRISCGoogle(t)
		g.keys.SetStatus(http.StatusInternalServerError)
		_, err := g.verify(t, g.keys.Sign(nil, claims))
		wantKind(t, err, signin.EUPSTREAM, "google_unavailable")
	})
	t.Run("garbage is refused without fetching", func(t *testing.T) {
		g := newRISCGoogle(t)
		g.status.Store(http.StatusServiceUnavailable)
		_, err := g.verify(t, "not.a.token!")
		wantKind(t, err, signin.EINVALID, "invalid_set")
		if g.fetches.Load() != 0 {
			t.Error("a malformed token made us fetch the configuration")
		}
	})
}

func TestNewRISCVerifierNeedsClientIDs(t *testing.T) {
	if _, err := auth.NewRISCVerifier(auth.RISCVerifierConfig{ClientIDs: []string{" ", ""}}); err == nil {
		t.Error("no client ids accepted")
	}
}

func TestTokenMatches(t *testing.T) {
	const refresh = "1//0gAbCdEfGhIjKlMnOpQrStUvWxYz-0123456789_abcdefghijklmnopqrstuvwxyz"
	inner := sha512.Sum512([]byte(refresh))
	outer := sha512.Sum512(inner[:])
	hashStd := base64.StdEncoding.EncodeToString(outer[:])
	hashURL := base64.RawURLEncoding.EncodeToString(outer[:])
	single := sha512.Sum512([]byte(refresh))
	subject := func(alg, token string) auth.Subject {
		return auth.Subject{Type: "oauth_token", TokenType: "refresh_token", TokenIdentifierAlg: alg, Token: token}
	}
	tests := []struct {
		name string
		s    auth.Subject
		tok  string
		want bool
	}{
		{"prefix", subject(auth.TokenIDPrefix, refresh[:16]), refresh, true},
		{"prefix of another token", subject(auth.TokenIDPrefix, "1//0gZZZZZZZZZZZ"), refresh, false},
		{"prefix too short", subject(auth.TokenIDPrefix, refresh[:15]), refresh, false},
		{"prefix too long", subject(auth.TokenIDPrefix, refresh[:17]), refresh, false},
		{"hash, standard base64", subject(auth.TokenIDHash, hashStd), refresh, true},
		{"hash, base64url unpadded", subject(auth.TokenIDHash, hashURL), refresh, true},
		{"hash of another token", subject(auth.TokenIDHash, hashStd), refresh + "x", false},
		{"single hash", subject(auth.TokenIDHash, base64.StdEncoding.EncodeToString(single[:])), refresh, false},
		{"hash not base64", subject(auth.TokenIDHash, "!!"), refresh, false},
		{"unknown alg", subject("plain", refresh), refresh, false},
		{"access token", auth.Subject{TokenType: "access_token", TokenIdentifierAlg: auth.TokenIDPrefix, Token: refresh[:16]}, refresh, false},
		{"no token_type", auth.Subject{TokenIdentifierAlg: auth.TokenIDPrefix, Token: refresh[:16]}, refresh, true},
		{"empty stored token", subject(auth.TokenIDPrefix, ""), "", false},
		{"empty identifier", subject(auth.TokenIDPrefix, ""), refresh, false},
	}
	for _, tt := range tests {
		if got := auth.TokenMatches(tt.s, tt.tok); got != tt.want {
			t.Errorf("%s: TokenMatches = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestJTICacheSeenOnce(t *testing.T) {
	c := auth.NewJTICache(0, 0, nil)
	if c.Seen("a") {
		t.Fatal("a first delivery reported as seen")
	}
	for range 2 {
		if !c.Seen("a") {
			t.Fatal("a replay not reported as seen")
		}
	}
	if c.Seen("b") {
		t.Fatal("another jti reported as seen")
	}
	c.Forget("a")
	if c.Seen("a") {
		t.Fatal("a forgotten jti reported as seen")
	}
}

func TestJTICacheExpires(t *testing.T) {
	clock := authtest.NewClock(time.Now())
	c := auth.NewJTICache(10, 48*time.Hour, clock.Now)
	c.Seen("a")
	clock.Advance(47 * time.Hour)
	c.Seen("b")
	if !c.Seen("a") {
		t.Fatal("forgotten before its TTL")
	}
	clock.Advance(time.Hour)
	if c.Seen("a") {
		t.Fatal("remembered after its TTL")
	}
	if !c.Seen("b") {
		t.Fatal("b forgotten before its TTL")
	}
}

func TestJTICacheIsBounded(t *testing.T) {
	c := auth.NewJTICache(3, time.Hour, nil)
	for _, j := range []string{"1", "2", "3", "4"} {
		c.Seen(j)
	}
	if n := c.Len(); n != 3 {
		t.Fatalf("Len = %d, want 3", n)
	}
	// A replay of a remembered jti evicts nothing.
	if !c.Seen("2") || !c.Seen("3") || !c.Seen("4") {
		t.Fatal("a recent jti was forgotten")
	}
	if c.Seen("1") {
		t.Fatal("the oldest jti was not the one forgotten")
	}
	if c.Seen("2") {
		t.Fatal("after another insertion, the next oldest should have gone")
	}
}

func TestJTICacheConcurrent(t *testing.T) {
	c := auth.NewJTICache(100, time.Hour, nil)
	var firsts atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if !c.Seen("same") {
				firsts.Add(1)
			}
		})
	}
	wg.Wait()
	if firsts.Load() != 1 {
		t.Errorf("%d callers saw the same jti first, want 1", firsts.Load())
	}
}

// The receiver's shape: verify, drop redeliveries, act, and let Google
// retry (by forgetting the jti and answering 5xx) when acting failed.
func ExampleRISCVerifier() {
	v, err := auth.NewRISCVerifier(auth.RISCVerifierConfig{ClientIDs: []string{riscWeb}})
	if err != nil {
		panic(err)
	}
	seen := auth.NewJTICache(0, 0, nil)
	act := func(e auth.Event) error { return nil } // end sessions, delete tokens...

	mux := http.NewServeMux()
	mux.HandleFunc("POST /risc", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
		if err != nil {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		set, err := v.Verify(r.Context(), body)
		if err != nil {
			status := http.StatusServiceUnavailable // Google's keys unreachable: let it retry
			if signin.ErrorKind(err) == signin.EINVALID {
				status = http.StatusBadRequest
			}
			http.Error(w, signin.ErrorCode(err), status)
			return
		}
		if seen.Seen(set.JTI) {
			w.WriteHeader(http.StatusAccepted) // a redelivery: acknowledged, ignored
			return
		}
		for _, e := range set.Events {
			if err := act(e); err != nil {
				seen.Forget(set.JTI)
				http.Error(w, "try again", http.StatusInternalServerError)
				return
			}
		}
		w.WriteHeader(http.StatusAccepted)
	})
}
