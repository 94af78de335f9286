package emulator

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// JWTs are written by hand here: the standard library has RSA and SHA-256,
// and RS256 JWS is a few lines on top. Pulling in a JOSE library would also
// risk sharing code with the app's verifier, which the emulator must not.

type signingKey struct {
	kid       string
	priv      *rsa.PrivateKey
	created   time.Time // published from then on
	signsFrom time.Time // signs new tokens from then on (until a later key does)
	cert      string    // self-signed X.509 certificate (PEM), for /oauth2/v1/certs
}

// keyring holds the signing keys and follows Google's rotation: a new key
// is published well before it signs anything, so that every cached key set
// already holds it when the first token it signed arrives; the key it
// replaces stays published well after, so that tokens it signed keep
// verifying. Which key signs and which are published follow the emulator's
// clock, so ShiftClock drives a rotation forward.
type keyring struct {
	retireAfter time.Duration // how long a replaced key stays published

	mu   sync.Mutex
	keys []*signingKey // by signsFrom, oldest first; never empty

	// The published documents, rebuilt when the set of published keys
	// changes.
	docKids string
	jwks    []byte
	pemDoc  []byte
}

func newKeyring(now time.Time, retireAfter time.Duration) (*keyring, error) {
	k, err := generateKey(now, now)
	if err != nil {
		return nil, err
	}
	return &keyring{retireAfter: retireAfter, keys: []*signingKey{k}}, nil
}

func generateKey(created, signsFrom time.Time) (*signingKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("emulator: generating signing key: %w", err)
	}
	return newSigningKey(newKid(), priv, created, signsFrom)
}

func newSigningKey(kid string, priv *rsa.PrivateKey, created, signsFrom time.Time) (*signingKey, error) {
	cert, err := selfSignedCert(priv, created)
	if err != nil {
		return nil, err
	}
	return &signingKey{kid: kid, priv: priv, created: created, signsFrom: signsFrom, cert: cert}, nil
}

// selfSignedCert wraps the public key in an X.509 certificate, as Google
// serves its keys at /oauth2/v1/certs. Libraries only take the key out of
// it; the long validity keeps strict readers happy under a shifted clock.
func selfSignedCert(priv *rsa.PrivateKey, created time.Time) (string, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "federated-signon.system.gserviceaccount.com"},
		NotBefore:             created.Add(-24 * time.Hour),
		NotAfter:              created.Add(2 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return "", fmt.Errorf("emulator: self-signing the key's certificate: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), nil
}

// signerAt is the key that signs at now: the latest whose signsFrom has
// come (the oldest, should the clock have been moved back before all of
// them). Caller holds kr.mu.
func (kr *keyring) signerAt(now time.Time) int {
	i := 0
	for j, k := range kr.keys {
		if !k.signsFrom.After(now) {
			i = j
		}
	}
	return i
}

// publishedAt lists the keys in the key set at now, newest first: every
// key created by then and not yet retired (a key retires retireAfter after
// its successor starts signing), and always the signing key. Caller holds
// kr.mu.
func (kr *keyring) publishedAt(now time.Time) []*signingKey {
	signer := kr.signerAt(now)
	var out []*signingKey
	for i := len(kr.keys) - 1; i >= 0; i-- {
		k := kr.keys[i]
		if i != signer {
			if k.created.After(now) {
				continue
			}
			if i+1 < len(kr.keys) && !now.Before(kr.keys[i+1].signsFrom.Add(kr.retireAfter)) {
				continue
			}
		}
		out = append(out, k)
	}
	return out
}

// current returns the key that signs at now.
func (kr *keyring) current(now time.Time) *signingKey {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	return kr.keys[kr.signerAt(now)]
}

// lookup returns the published key with that kid at now.
func (kr *keyring) lookup(kid string, now time.Time) *signingKey {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	for _, k := range kr.publishedAt(now) {
		if k.kid == kid {
			return k
		}
	}
	return nil
}

// documents returns the key set at now as a JWKS and as Google's map from
// kid to PEM certificate, and when the set last changed (for Age).
func (kr *keyring) documents(now time.Time) (jwks, pemDoc []byte, changed time.Time) {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	keys := kr.publishedAt(now)
	var kids []string
	for _, k := range keys {
		kids = append(kids, k.kid)
		changed = latest(changed, k.created, now)
	}
	for i := 0; i+1 < len(kr.keys); i++ { // retirements also change the set
		changed = latest(changed, kr.keys[i+1].signsFrom.Add(kr.retireAfter), now)
	}
	if id := strings.Join(kids, ","); id != kr.docKids || kr.jwks == nil {
		kr.docKids, kr.jwks, kr.pemDoc = id, buildJWKS(keys), buildPEMDoc(keys)
	}
	return kr.jwks, kr.pemDoc, changed
}

// latest returns the latest of ts that is not after now.
func latest(cur time.Time, ts ...time.Time) time.Time {
	now := ts[len(ts)-1]
	for _, t := range ts[:len(ts)-1] {
		if !t.After(now) && t.After(cur) {
			cur = t
		}
	}
	return cur
}

func buildJWKS(keys []*signingKey) []byte {
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
	}{Keys: []jwk{}}
	for _, k := range keys {
		pub := k.priv.PublicKey
		doc.Keys = append(doc.Keys, jwk{
			Kty: "RSA", Alg: "RS256", Use: "sig", Kid: k.kid,
			N: b64(pub.N.Bytes()),
			E: b64(big.NewInt(int64(pub.E)).Bytes()),
		})
	}
	b, _ := json.MarshalIndent(doc, "", "  ") // cannot fail: strings only
	return append(b, '\n')
}

func buildPEMDoc(keys []*signingKey) []byte {
	doc := make(map[string]string, len(keys))
	for _, k := range keys {
		doc[k.kid] = k.cert
	}
	b, _ := json.MarshalIndent(doc, "", "  ") // cannot fail: strings only
	return append(b, '\n')
}

// rotate adds a key that is published at now and signs from signsFrom.
func (kr *keyring) rotate(now, signsFrom time.Time) (*signingKey, error) {
	k, err := generateKey(now, signsFrom)
	if err != nil {
		return nil, err
	}
	kr.mu.Lock()
	defer kr.mu.Unlock()
	kr.keys = append(kr.keys, k)
	slices.SortStableFunc(kr.keys, func(a, b *signingKey) int { return a.signsFrom.Compare(b.signsFrom) })
	// Forget keys retired long ago (they can never come back, unless the
	// clock is moved back by more than a day).
	for len(kr.keys) > 1 && now.After(kr.keys[1].signsFrom.Add(kr.retireAfter+24*time.Hour)) {
		kr.keys = kr.keys[1:]
	}
	return k, nil
}

// KeyInfo describes one signing key and its place in the rotation.
type KeyInfo struct {
	Kid       string    `json:"kid"`
	Published time.Time `json:"published"`        // in the key set from then on
	SignsFrom time.Time `json:"signs_from"`       // signs new tokens from then on
	Retires   time.Time `json:"retires,omitzero"` // leaves the key set then (zero: not scheduled)
	Signing   bool      `json:"signing"`          // signs new tokens now
	InKeySet  bool      `json:"in_key_set"`       // published now
}

func (kr *keyring) info(now time.Time) []KeyInfo {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	signer := kr.signerAt(now)
	published := map[string]bool{}
	for _, k := range kr.publishedAt(now) {
		published[k.kid] = true
	}
	out := make([]KeyInfo, 0, len(kr.keys))
	for i, k := range kr.keys {
		ki := KeyInfo{Kid: k.kid, Published: k.created.UTC(), SignsFrom: k.signsFrom.UTC(), Signing: i == signer, InKeySet: published[k.kid]}
		if i+1 < len(kr.keys) {
			ki.Retires = kr.keys[i+1].signsFrom.Add(kr.retireAfter).UTC()
		}
		out = append(out, ki)
	}
	return out
}

func (kr *keyring) snapshot() []savedKey {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	out := make([]savedKey, 0, len(kr.keys))
	for _, k := range kr.keys {
		der, err := x509.MarshalPKCS8PrivateKey(k.priv)
		if err != nil {
			continue // cannot happen for an RSA key
		}
		out = append(out, savedKey{Kid: k.kid, PKCS8: der, Created: k.created, SignsFrom: k.signsFrom})
	}
	return out
}

// restoreKeyring brings back saved keys. Files written before keys had a
// signing time list the current key first and sign from their creation.
func restoreKeyring(saved []savedKey, retireAfter time.Duration) (*keyring, error) {
	kr := &keyring{retireAfter: retireAfter}
	for _, s := range saved {
		p, err := x509.ParsePKCS8PrivateKey(s.PKCS8)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", s.Kid, err)
		}
		priv, ok := p.(*rsa.PrivateKey)
		if !ok || s.Kid == "" {
			return nil, fmt.Errorf("key %q: not an RSA key with a kid", s.Kid)
		}
		signsFrom := s.SignsFrom
		if signsFrom.IsZero() {
			signsFrom = s.Created
		}
		k, err := newSigningKey(s.Kid, priv, s.Created, signsFrom)
		if err != nil {
			return nil, err
		}
		kr.keys = append(kr.keys, k)
	}
	slices.SortStableFunc(kr.keys, func(a, b *signingKey) int { return a.signsFrom.Compare(b.signsFrom) })
	return kr, nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// signJWT signs claims with the key that signs at now (RS256).
func (kr *keyring) signJWT(claims any, now time.Time) (string, error) {
	return signJWTWith(kr.current(now), "JWT", claims)
}

func signJWTWith(k *signingKey, typ string, claims any) (string, error) {
	header, _ := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{"RS256", k.kid, typ})
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
func (kr *keyring) verifyJWT(tok string, now time.Time) (jwtHeader, map[string]any, error) {
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
	k := kr.lookup(h.Kid, now)
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
	return e.keys.signJWT(c, now)
}

// pictureURL is the user's picture, or the avatar the emulator draws for
// them. It must be an http(s) URL: html/template refuses data: URLs in src.
func pictureURL(u User, base string) string {
	if u.Picture != "" {
		return u.Picture
	}
	return base + "/emulator/avatars/" + avatarFile(u.Sub)
}

// handleCerts serves the JWKS (/oauth2/v3/certs) with Google's caching
// headers.
func (e *Emulator) handleCerts(w http.ResponseWriter, r *http.Request) {
	jwks, _, changed := e.keys.documents(e.now())
	e.writeKeySet(w, r, jwks, changed)
}

// handlePEMCerts serves the same keys as X.509 certificates
// (/oauth2/v1/certs): a JSON object from kid to PEM, what Google's Node and
// Python libraries verify ID tokens with by default.
func (e *Emulator) handlePEMCerts(w http.ResponseWriter, r *http.Request) {
	_, pemDoc, changed := e.keys.documents(e.now())
	e.writeKeySet(w, r, pemDoc, changed)
}

// writeKeySet answers a key set with Google's caching headers. Age counts
// from the last change of the set, modulo max-age, like a shared cache in
// front of a key set that is republished every max-age.
func (e *Emulator) writeKeySet(w http.ResponseWriter, r *http.Request, doc []byte, changed time.Time) {
	now := e.now()
	maxAge := e.keyAge
	age := now.Sub(changed)
	if age < 0 {
		age = 0
	}
	age %= maxAge
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=UTF-8")
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(maxAge/time.Second))+", must-revalidate, no-transform")
	h.Set("Age", strconv.Itoa(int(age/time.Second)))
	h.Set("Expires", now.Add(maxAge-age).UTC().Format(http.TimeFormat))
	h.Set("Vary", "Origin, X-Origin, Referer")
	allowCORS(w, r)
	_, _ = w.Write(doc)
}
