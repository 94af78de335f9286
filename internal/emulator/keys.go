package emulator

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// JWTs are written by hand here: the standard library has RSA and SHA-256,
// and RS256 JWS is a few lines on top. Pulling in a JOSE library would also
// risk sharing code with the app's verifier, which the emulator must not.

type signingKey struct {
	kid     string
	priv    *rsa.PrivateKey
	created time.Time
}

// keyring holds the signing key and the previous one, which stays in the
// JWKS until the next rotation (Google publishes keys before and after
// using them, so cached key sets keep verifying).
type keyring struct {
	mu        sync.RWMutex
	keys      []*signingKey // current first; at most two
	jwks      []byte        // the JWKS document, rebuilt on change
	published time.Time     // when the key set last changed (for Age)
}

func newKeyring(now time.Time) (*keyring, error) {
	k, err := generateKey(now)
	if err != nil {
		return nil, err
	}
	kr := &keyring{}
	kr.set([]*signingKey{k}, now)
	return kr, nil
}

func generateKey(now time.Time) (*signingKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("emulator: generating signing key: %w", err)
	}
	return &signingKey{kid: newKid(), priv: priv, created: now}, nil
}

func (kr *keyring) set(keys []*signingKey, now time.Time) {
	type jwk struct {
		Kty string `json:"kty"`
		Alg string `json:"alg"`
		Use string `json:"use"`
		Kid string `json:"kid"`
		N   string `json:"n"`
		E   string `json:"e"`
	}
	doc := struct {
		Keys []jwk `json:"keys"`
	}{}
	for _, k := range keys {
		pub := k.priv.PublicKey
		doc.Keys = append(doc.Keys, jwk{
			Kty: "RSA", Alg: "RS256", Use: "sig", Kid: k.kid,
			N: b64(pub.N.Bytes()),
			E: b64(big.NewInt(int64(pub.E)).Bytes()),
		})
	}
	b, _ := json.MarshalIndent(doc, "", "  ") // cannot fail: strings only
	kr.mu.Lock()
	kr.keys, kr.jwks, kr.published = keys, append(b, '\n'), now
	kr.mu.Unlock()
}

func (kr *keyring) current() *signingKey {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	return kr.keys[0]
}

func (kr *keyring) lookup(kid string) *signingKey {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	for _, k := range kr.keys {
		if k.kid == kid {
			return k
		}
	}
	return nil
}

func (kr *keyring) document() ([]byte, time.Time) {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	return kr.jwks, kr.published
}

// rotate makes a new key current and keeps the previous one published.
func (kr *keyring) rotate(now time.Time) (string, error) {
	k, err := generateKey(now)
	if err != nil {
		return "", err
	}
	kr.mu.RLock()
	keys := []*signingKey{k, kr.keys[0]}
	kr.mu.RUnlock()
	kr.set(keys, now)
	return k.kid, nil
}

func (kr *keyring) snapshot() []savedKey {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	out := make([]savedKey, 0, len(kr.keys))
	for _, k := range kr.keys {
		der, err := x509.MarshalPKCS8PrivateKey(k.priv)
		if err != nil {
			continue // cannot happen for an RSA key
		}
		out = append(out, savedKey{Kid: k.kid, PKCS8: der, Created: k.created})
	}
	return out
}

func restoreKeyring(saved []savedKey, now time.Time) (*keyring, error) {
	var keys []*signingKey
	for _, s := range saved {
		p, err := x509.ParsePKCS8PrivateKey(s.PKCS8)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", s.Kid, err)
		}
		priv, ok := p.(*rsa.PrivateKey)
		if !ok || s.Kid == "" {
			return nil, fmt.Errorf("key %q: not an RSA key with a kid", s.Kid)
		}
		keys = append(keys, &signingKey{kid: s.Kid, priv: priv, created: s.Created})
	}
	if len(keys) > 2 {
		keys = keys[:2]
	}
	kr := &keyring{}
	kr.set(keys, now)
	return kr, nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// signJWT signs claims with the current key (RS256).
func (kr *keyring) signJWT(claims any) (string, error) {
	k := kr.current()
	header, _ := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{"RS256", k.kid, "JWT"})
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signed := b64(header) + "." + b64(payload)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(nil, k.priv, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return signed + "." + b64(sig), nil
}

// jwtHeader is the part of a JOSE header tokeninfo reports.
type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

var errBadToken = errors.New("invalid token")

// verifyJWT checks an ID token's signature against the published keys and
// returns its header and raw claims. Expiry is the caller's business.
func (kr *keyring) verifyJWT(tok string) (jwtHeader, map[string]any, error) {
	var h jwtHeader
	if len(tok) > 16<<10 {
		return h, nil, errBadToken
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return h, nil, errBadToken
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	pb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return h, nil, errBadToken
	}
	if json.Unmarshal(hb, &h) != nil || h.Alg != "RS256" {
		return h, nil, errBadToken
	}
	k := kr.lookup(h.Kid)
	if k == nil {
		return h, nil, errBadToken
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(&k.priv.PublicKey, crypto.SHA256, sum[:], sig) != nil {
		return h, nil, errBadToken
	}
	var claims map[string]any
	d := json.NewDecoder(strings.NewReader(string(pb)))
	d.UseNumber()
	if d.Decode(&claims) != nil {
		return h, nil, errBadToken
	}
	return h, claims, nil
}

// atHash is the at_hash claim for an access token (OpenID Connect Core
// 3.1.3.6): the left half of its SHA-256, base64url.
func atHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return b64(sum[:len(sum)/2])
}

// idClaims are an ID token's claims, in the order Google writes them.
type idClaims struct {
	Iss           string `json:"iss"`
	Azp           string `json:"azp"`
	Aud           string `json:"aud"`
	Sub           string `json:"sub"`
	Hd            string `json:"hd,omitempty"`
	Email         string `json:"email,omitempty"`
	EmailVerified *bool  `json:"email_verified,omitempty"`
	AtHash        string `json:"at_hash,omitempty"`
	Nonce         string `json:"nonce,omitempty"`
	Name          string `json:"name,omitempty"`
	Picture       string `json:"picture,omitempty"`
	GivenName     string `json:"given_name,omitempty"`
	FamilyName    string `json:"family_name,omitempty"`
	Iat           int64  `json:"iat"`
	Exp           int64  `json:"exp"`
}

// idToken mints an ID token for u. Like Google, it includes email only with
// the email scope and the profile claims only with the profile scope.
func (e *Emulator) idToken(u User, clientID string, scopes []string, nonce, accessToken, base string) (string, error) {
	now := e.now()
	c := idClaims{
		Iss: Issuer, Azp: clientID, Aud: clientID, Sub: u.Sub, Hd: u.HostedDomain,
		Nonce: nonce, Iat: now.Unix(), Exp: now.Add(idTokenLifetime).Unix(),
	}
	if accessToken != "" {
		c.AtHash = atHash(accessToken)
	}
	if hasScope(scopes, scopeEmail) {
		verified := true
		c.Email, c.EmailVerified = u.Email, &verified
	}
	if hasScope(scopes, scopeProfile) {
		c.Name, c.GivenName, c.FamilyName = u.Name, u.GivenName, u.FamilyName
		c.Picture = pictureURL(u, base)
	}
	return e.keys.signJWT(c)
}

// pictureURL is the user's picture, or the avatar the emulator draws for
// them. It must be an http(s) URL: html/template refuses data: URLs in src.
func pictureURL(u User, base string) string {
	if u.Picture != "" {
		return u.Picture
	}
	return base + "/emulator/avatars/" + avatarFile(u.Sub)
}

// handleCerts serves the JWKS with Google's caching headers. Age counts from
// the last key change, modulo max-age, like a shared cache in front of a
// key set that is republished every max-age.
func (e *Emulator) handleCerts(w http.ResponseWriter, r *http.Request) {
	doc, published := e.keys.document()
	maxAge := e.keyAge
	age := e.now().Sub(published)
	if age < 0 {
		age = 0
	}
	age %= maxAge
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=UTF-8")
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(maxAge/time.Second))+", must-revalidate, no-transform")
	h.Set("Age", strconv.Itoa(int(age/time.Second)))
	h.Set("Expires", e.now().Add(maxAge-age).UTC().Format(http.TimeFormat))
	h.Set("Vary", "Origin, X-Origin, Referer")
	allowCORS(w, r)
	_, _ = w.Write(doc)
}
