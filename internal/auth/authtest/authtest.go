// Package authtest is a fake Google ID token issuer for tests: RSA signing
// keys, a JWKS endpoint whose caching headers, failures and timing tests
// control, and signers for tokens with any header and claims, so that tests
// can forge every token a verifier must refuse. It stands for Google in unit
// tests of internal/auth and of code that uses it; it does not replace the
// emulator for end-to-end tests.
package authtest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// GoogleCacheControl is the Cache-Control Google sends with its keys.
const GoogleCacheControl = "public, max-age=21600, must-revalidate, no-transform"

// Issuer is a fake Google: it signs ID tokens and serves its public keys as
// a JWKS at CertsURL. Its methods are safe for concurrent use.
type Issuer struct {
	srv     *httptest.Server
	fetches atomic.Int64

	mu           sync.Mutex
	keys         []*Key // published, in order
	signer       *Key
	cacheControl string
	age          string
	status       int    // 0: serve the keys
	body         []byte // when non-nil, served instead of the keys
	gate         chan struct{}
	arrived      chan struct{}
}

// Key is a signing key and its key id.
type Key struct {
	ID      string
	Private *rsa.PrivateKey
}

// NewIssuer starts an Issuer with one published signing key, "key-1",
// serving Google's Cache-Control header and "Age: 0". It stops when tb ends.
func NewIssuer(tb testing.TB) *Issuer {
	tb.Helper()
	i := &Issuer{cacheControl: GoogleCacheControl, age: "0", arrived: make(chan struct{}, 1)}
	i.signer = i.AddKey(tb, "key-1")
	i.srv = httptest.NewServer(http.HandlerFunc(i.serveCerts))
	tb.Cleanup(i.srv.Close)
	return i
}

// NewKey generates a 2048-bit RSA key with the given id, unpublished.
func NewKey(tb testing.TB, kid string) *Key {
	tb.Helper()
	pk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatalf("generating an RSA key: %v", err)
	}
	return &Key{ID: kid, Private: pk}
}

// AddKey generates a key with id kid and publishes it (without signing with
// it: see UseKey).
func (i *Issuer) AddKey(tb testing.TB, kid string) *Key {
	tb.Helper()
	k := NewKey(tb, kid)
	i.mu.Lock()
	i.keys = append(i.keys, k)
	i.mu.Unlock()
	return k
}

// UseKey makes the published key kid the one Token and Sign use.
func (i *Issuer) UseKey(kid string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	for _, k := range i.keys {
		if k.ID == kid {
			i.signer = k
			return
		}
	}
	panic("authtest: UseKey of an unpublished key " + kid)
}

// Unpublish removes key kid from the JWKS (it can still sign).
func (i *Issuer) Unpublish(kid string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	for j, k := range i.keys {
		if k.ID == kid {
			i.keys = append(i.keys[:j:j], i.keys[j+1:]...)
			return
		}
	}
}

// Signer returns the key Token and Sign use.
func (i *Issuer) Signer() *Key {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.signer
}

// URL is the base URL of the issuer's server.
func (i *Issuer) URL() string { return i.srv.URL }

// CertsURL is the URL of the JWKS, at Google's path.
func (i *Issuer) CertsURL() string { return i.srv.URL + "/oauth2/v3/certs" }

// Fetches returns how many times the JWKS was requested.
func (i *Issuer) Fetches() int64 { return i.fetches.Load() }

// SetHeaders sets the Cache-Control and Age headers of the JWKS answer;
// empty strings omit them.
func (i *Issuer) SetHeaders(cacheControl, age string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.cacheControl, i.age = cacheControl, age
}

// SetStatus makes the JWKS endpoint answer status with an error body; 0 or
// 200 restores normal answers.
func (i *Issuer) SetStatus(status int) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.status = status
}

// SetBody makes the JWKS endpoint answer 200 with body instead of the keys;
// nil restores the keys.
func (i *Issuer) SetBody(body []byte) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.body = body
}

// Hold makes JWKS requests wait until the returned release is called.
// Arrived receives once when a held request has arrived.
func (i *Issuer) Hold() (release func()) {
	gate := make(chan struct{})
	i.mu.Lock()
	i.gate = gate
	i.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			i.mu.Lock()
			i.gate = nil
			i.mu.Unlock()
			close(gate)
		})
	}
}

// Arrived is signalled (capacity one, never blocking the server) each time a
// JWKS request arrives.
func (i *Issuer) Arrived() <-chan struct{} { return i.arrived }

func (i *Issuer) serveCerts(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/oauth2/v3/certs" || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	i.fetches.Add(1)
	select {
	case i.arrived <- struct{}{}:
	default:
	}
	i.mu.Lock()
	gate, status, body, cc, age := i.gate, i.status, i.body, i.cacheControl, i.age
	jwks := i.jwksLocked()
	i.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	if status != 0 && status != http.StatusOK {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":{"code":%d,"message":"fault injected by authtest"}}`, status)
		return
	}
	if body == nil {
		body = jwks
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	if cc != "" {
		w.Header().Set("Cache-Control", cc)
	}
	if age != "" {
		w.Header().Set("Age", age)
	}
	w.Write(body)
}

// JWK is a public key as Google publishes it.
type JWK struct {
	Kid string `json:"kid"`
	Kty string `json:"kty"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// PublicJWK returns k's public key as a JWK.
func (k *Key) PublicJWK() JWK {
	pub := k.Private.PublicKey
	return JWK{
		Kid: k.ID, Kty: "RSA", Alg: "RS256", Use: "sig",
		N: base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		E: base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}
}

// JWKS returns a JWKS document holding keys.
func JWKS(keys ...*Key) []byte {
	set := struct {
		Keys []JWK `json:"keys"`
	}{Keys: []JWK{}}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.PublicJWK())
	}
	b, err := json.Marshal(set)
	if err != nil {
		panic(err)
	}
	return b
}

func (i *Issuer) jwksLocked() []byte { return JWKS(i.keys...) }

// Claims returns the claims of a valid Google ID token for aud and sub,
// issued now and expiring in an hour, as a map tests can change.
func Claims(aud, sub string) map[string]any {
	now := time.Now().Unix()
	return map[string]any{
		"iss":            "https://accounts.google.com",
		"azp":            aud,
		"aud":            aud,
		"sub":            sub,
		"email":          "user" + sub[max(0, len(sub)-4):] + "@example.com",
		"email_verified": true,
		"name":           "Test User",
		"given_name":     "Test",
		"family_name":    "User",
		"picture":        "https://example.com/photo.png",
		"iat":            now,
		"exp":            now + 3600,
	}
}

// Header returns the JWS header Google uses, for kid.
func Header(kid string) map[string]any {
	return map[string]any{"alg": "RS256", "kid": kid, "typ": "JWT"}
}

// Token returns a valid ID token for aud and sub, signed with the current key.
func (i *Issuer) Token(aud, sub string) string {
	return i.Sign(nil, Claims(aud, sub))
}

// Sign signs claims with RS256. A nil header is Header(the current key);
// the token is signed with the key its header's kid names when the issuer
// has it, else with the current key, whatever the header's alg says.
func (i *Issuer) Sign(header, claims map[string]any) string {
	i.mu.Lock()
	k := i.signer
	if header == nil {
		header = Header(k.ID)
	}
	for _, pk := range i.keys {
		if kid, _ := header["kid"].(string); pk.ID == kid {
			k = pk
		}
	}
	i.mu.Unlock()
	return SignRS256(k.Private, header, claims)
}

// SignRS256 returns the JWT with header and claims (JSON-encoded; []byte
// and string values are used as they are) signed by key with RS256.
func SignRS256(key *rsa.PrivateKey, header, claims any) string {
	signing := Segment(header) + "." + Segment(claims)
	h := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, h[:])
	if err != nil {
		panic(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// Segment returns v as a base64url JWT segment: []byte and string as they
// are, anything else JSON-encoded.
func Segment(v any) string {
	var b []byte
	switch v := v.(type) {
	case []byte:
		b = v
	case string:
		b = []byte(v)
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			panic(err)
		}
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Clock is a settable clock for VerifierConfig.Now and the like.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock showing t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
