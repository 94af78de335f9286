package auth

import (
	"cmp"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"example.com/signin"
	"example.com/signin/internal/googlenet"
	"example.com/signin/internal/metrics"
)

// strictBase64 is unpadded base64url that refuses a value with bits set
// past its last byte, so that no value has two spellings. Made once:
// Strict returns a copy of the 330-byte Encoding, which on a hot path
// costs a copy per call and that much stack in the caller's frame.
var strictBase64 = base64.RawURLEncoding.Strict()

// maxTokenLen bounds an ID token. Google's are about 1 KiB; the front door
// refuses anything longer than this before decoding a byte of it.
const maxTokenLen = 16 << 10

// Defaults of VerifierConfig.
const (
	DefaultClockSkew          = 60 * time.Second
	DefaultMinRefetchInterval = time.Minute
	DefaultMinKeyTTL          = 5 * time.Minute
	DefaultCacheSize          = 10000
)

// Google's two spellings of its issuer.
const (
	issuerHTTPS = "https://accounts.google.com"
	issuerBare  = "accounts.google.com"
)

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Audiences are the accepted "aud" (and "azp") values: the web client
	// id first, then the app's other platform client ids. Required.
	Audiences []string
	// HostedDomain, if set, requires the token's "hd" to be this Google
	// Workspace domain and its email to be verified.
	HostedDomain string
	// ClockSkew is the leeway for "iat" (and "nbf"): a token issued up to
	// this far in the future is accepted. Zero means DefaultClockSkew;
	// negative is an error. "exp" has no leeway: it is enforced exactly,
	// with Now and with the system clock.
	ClockSkew time.Duration
	// HTTPClient fetches Google's signing keys (googlenet's client). Nil
	// means a plain client with a 15 s timeout.
	HTTPClient *http.Client
	// CertsURL is where the keys are fetched; empty means
	// googlenet.CertsURL (which HTTPClient may route to an emulator).
	CertsURL string
	// MinRefetchInterval is the least time between two key fetches after
	// the first: a token with an unknown kid triggers a refetch at most
	// this often, and so does a failing certs endpoint (the previous keys
	// are used meanwhile). While no keys were ever fetched, a failed fetch
	// is retried after at most a second instead. Zero means
	// DefaultMinRefetchInterval.
	MinRefetchInterval time.Duration
	// MinKeyTTL is the least time a fetched key set is used before it is
	// fetched again, when Cache-Control is missing or says less. Zero
	// means DefaultMinKeyTTL.
	MinKeyTTL time.Duration
	// CacheSize bounds VerifyCached's cache of verified tokens. Zero
	// means DefaultCacheSize; negative disables the cache.
	CacheSize int
	// Now is the clock for our checks and caches; nil means time.Now.
	// ("exp" is also checked against the system clock, as idtoken did.)
	Now func() time.Time
	// Logger receives key fetch failures; nil discards. Tokens are never
	// logged.
	Logger *slog.Logger
	// Metrics counts key fetches and the verified-token cache's hits and
	// misses. Nil counts nothing.
	Metrics *metrics.Metrics
}

// Verifier verifies Google ID tokens completely: what idtoken checks (the
// RS256 signature by a key in Google's JWKS, audience, expiry), done
// directly with crypto/rsa on cached keys (see verifySigned), plus
// everything idtoken leaves out (algorithm, issuer, issue time, authorized
// party, subject, hosted domain, nonce). It keeps Google's keys
// (one fetch shared by concurrent callers, cached per Cache-Control with a
// floor, refetched for a new kid at a limited rate) and a bounded cache of
// verified tokens for VerifyCached. It is safe for concurrent use.
type Verifier struct {
	audiences    []string
	hostedDomain string
	skew         int64 // seconds
	now          func() time.Time
	keys         *keySet
	cache        *verifiedCache // nil when disabled
	bufs         sync.Pool      // *[]byte, for hashing tokens without an allocation
	metrics      *metrics.Metrics

	headers headerCache // header segments that passed the front door
}

// NewVerifier returns a Verifier for cfg. It fetches nothing until the
// first verification.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if len(cfg.Audiences) == 0 {
		return nil, errors.New("auth: VerifierConfig.Audiences is empty: at least the web client id is required")
	}
	var auds []string
	for _, a := range cfg.Audiences {
		if a == "" || !printable(a) {
			return nil, errors.New("auth: VerifierConfig.Audiences has an empty or malformed client id")
		}
		if !slices.Contains(auds, a) {
			auds = append(auds, a)
		}
	}
	if cfg.ClockSkew < 0 || cfg.MinRefetchInterval < 0 || cfg.MinKeyTTL < 0 {
		return nil, errors.New("auth: VerifierConfig durations must not be negative")
	}
	skew := cmp.Or(cfg.ClockSkew, DefaultClockSkew)
	certsURL := cmp.Or(cfg.CertsURL, googlenet.CertsURL)
	if u, err := url.Parse(certsURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("auth: VerifierConfig.CertsURL %q is not an http(s) URL", certsURL)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 15 * time.Second}
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	v := &Verifier{
		audiences:    auds,
		hostedDomain: strings.TrimSpace(cfg.HostedDomain),
		skew:         int64(skew / time.Second),
		now:          now,
		metrics:      cfg.Metrics,
		keys: &keySet{
			docSource: docSource{
				client:     hc,
				url:        certsURL,
				minTTL:     cmp.Or(cfg.MinKeyTTL, DefaultMinKeyTTL),
				minRefetch: cmp.Or(cfg.MinRefetchInterval, DefaultMinRefetchInterval),
				now:        now,
				logger:     logger,
			},
			metrics: cfg.Metrics,
		},
	}
	if size := cmp.Or(cfg.CacheSize, DefaultCacheSize); size > 0 {
		v.cache = newVerifiedCache(size)
	}
	v.bufs.New = func() any { b := make([]byte, 0, 2048); return &b }
	return v, nil
}

// Verify checks rawToken completely, every time; use it at sign-in and
// /connect. If nonce is not empty, the token's "nonce" must equal it.
//
// Errors: EUNAUTHORIZED "invalid_token" for any token that is not a valid
// Google ID token for this app (the cause says why, without the token);
// EUPSTREAM "google_unavailable" when Google's keys cannot be fetched, so
// the token cannot be judged.
func (v *Verifier) Verify(ctx context.Context, rawToken, nonce string) (*Claims, error) {
	c, err := v.verify(ctx, rawToken)
	if err != nil {
		return nil, err
	}
	if nonce != "" && subtle.ConstantTimeCompare([]byte(c.Nonce), []byte(nonce)) != 1 {
		return nil, invalidToken(errors.New("nonce does not match the one sent"))
	}
	return c, nil
}

// VerifyCached is Verify (without a nonce) for bearer tokens on API calls:
// a token verified before and not yet expired is answered from a bounded
// cache keyed by the token's SHA-256, which costs a hash and a lookup. Entries
// never outlive the token's "exp". Failures are not cached.
func (v *Verifier) VerifyCached(ctx context.Context, rawToken string) (*Claims, error) {
	if v.cache == nil || rawToken == "" || len(rawToken) > maxTokenLen {
		return v.Verify(ctx, rawToken, "")
	}
	key := v.tokenKey(rawToken)
	if c, ok := v.cache.get(&key, v.now()); ok {
		v.metrics.VerifiedCache(true)
		return c, nil
	}
	v.metrics.VerifiedCache(false)
	c, err := v.Verify(ctx, rawToken, "")
	if err != nil {
		return nil, err
	}
	cached := *c // the caller may change c; the cache keeps its own copy
	v.cache.put(&key, &cached, v.now())
	return c, nil
}

// tokenKey returns the SHA-256 of token, the verified-token cache's key.
// It hashes a pooled copy: sha256.Sum256([]byte(token)) would allocate a
// copy of the token on every call, which costs more than the hash.
func (v *Verifier) tokenKey(token string) [sha256.Size]byte {
	bp := v.bufs.Get().(*[]byte)
	b := append((*bp)[:0], token...)
	sum := sha256.Sum256(b)
	*bp = b
	v.bufs.Put(bp)
	return sum
}

// KeyFetches returns the number of requests made for Google's key set,
// successful or not (for tests, benchmarks and metrics).
func (v *Verifier) KeyFetches() int64 { return v.keys.fetches.Load() }

func (v *Verifier) verify(ctx context.Context, raw string) (*Claims, error) {
	kid, err := parseToken(raw, &v.headers)
	if err != nil {
		return nil, invalidToken(err)
	}
	keys, err := v.keys.forKid(ctx, kid)
	if errors.Is(err, errUnknownKid) {
		return nil, invalidToken(refused(RefusedSignature, err))
	}
	if err != nil {
		return nil, &signin.Error{Kind: signin.EUPSTREAM, Code: "google_unavailable", Message: "Google's sign-in keys could not be fetched; please try again", Err: atEndpoint(EndpointCerts, err)}
	}
	t, err := v.verifySigned(raw, keys.pub[kid])
	if err != nil {
		return nil, invalidToken(err)
	}
	c, err := v.checkClaims(t, v.now())
	if err != nil {
		return nil, invalidToken(err)
	}
	// idtoken checked exp against the system clock whatever our Now says;
	// so do we, so that a test clock (or a wrong one) cannot extend a token.
	if time.Now().Unix() > c.ExpiresAt.Unix() {
		return nil, invalidToken(refused(RefusedExpired, errors.New("token expired")))
	}
	return c, nil
}

// verifySigned checks the RS256 signature of raw, a token that passed
// parseToken, with pub (the cached key of the token's kid, from Google's
// JWKS), and returns its claims, decoded once.
//
// This is the part idtoken.Validator did, done directly: idtoken parsed the
// token again (a split, three base64 decodes, the header's JSON and the
// payload's JSON twice, once into a struct and once into a map) and rebuilt
// the RSA key from the JWK's base64 on every call, which together cost more
// than the RSA operation itself (issue 19). Its role is kept whole: the
// signature is checked with crypto/rsa (PKCS #1 v1.5, SHA-256) against a key
// of the JWKS fetched from Google's certs URL (keySet, as before: idtoken
// only ever read that set from memory); the algorithm is RS256 only
// (parseToken); "aud" and "exp" are checked by checkClaims, exactly, and
// "exp" also with the system clock (verify), as idtoken did. The payload is
// decoded only after the signature is good, so no JSON from an unsigned
// token is parsed.
func (v *Verifier) verifySigned(raw string, pub *rsa.PublicKey) (*tokenClaims, error) {
	if pub == nil {
		// Every key in a fetched set has one (parseJWKS kept only usable
		// RSA keys); this is a guard, not a path.
		return nil, refused(RefusedSignature, errUnknownKid)
	}
	dot1 := strings.IndexByte(raw, '.')
	dot2 := strings.LastIndexByte(raw, '.')
	if base64.RawURLEncoding.DecodedLen(len(raw)-dot2-1) != pub.Size() {
		return nil, refused(RefusedSignature, errors.New("signature has the wrong length for the key"))
	}
	// One pooled buffer holds the token's bytes, then the decoded
	// signature, then the decoded payload: no allocation for any of them.
	bp := v.bufs.Get().(*[]byte)
	defer v.bufs.Put(bp)
	b := append((*bp)[:0], raw...)
	digest := sha256.Sum256(b[:dot2])
	b, err := strictBase64.AppendDecode(b, b[dot2+1:])
	if err != nil {
		return nil, refused(RefusedSignature, fmt.Errorf("signature: not base64url: %w", err))
	}
	sig := b[len(raw):]
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		*bp = b
		return nil, refused(RefusedSignature, err)
	}
	n := len(b)
	b, err = strictBase64.AppendDecode(b, b[dot1+1:dot2])
	*bp = b
	if err != nil {
		return nil, fmt.Errorf("payload: not base64url: %w", err)
	}
	payload := b[n:]
	if len(payload) == 0 || payload[0] != '{' {
		return nil, errors.New("payload: not a JSON object")
	}
	// Claims are read under their exact names (decodeClaims).
	t := new(tokenClaims)
	if err := decodeClaims(payload, t); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	return t, nil
}

// Why a token was refused, as Refusal names it: a closed set, for logs
// and metrics.
const (
	RefusedExpired   = "expired"    // exp has passed
	RefusedAudience  = "audience"   // aud or azp is not one of the app's client ids
	RefusedClockSkew = "clock_skew" // iat or nbf is further ahead than the allowed skew: a clock is wrong
	RefusedIssuer    = "issuer"     // iss is not Google
	RefusedSignature = "signature"  // not signed by a key Google publishes
	RefusedOther     = "other"      // malformed, hosted domain, nonce, missing claims
)

// Refusal says why Verify (or VerifyCached) refused a token: one of the
// Refused* reasons, or "" when err is not a refusal (nil, or Google's keys
// could not be fetched).
func Refusal(err error) string {
	if signin.ErrorCode(err) != "invalid_token" {
		return ""
	}
	var r *refusal
	if errors.As(err, &r) {
		return r.reason
	}
	return RefusedOther
}

// refusal marks a cause with the reason Refusal gives. It adds nothing to
// the message.
type refusal struct {
	reason string
	err    error
}

func refused(reason string, err error) error { return &refusal{reason: reason, err: err} }

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

func invalidToken(cause error) error {
	return &signin.Error{Kind: signin.EUNAUTHORIZED, Code: "invalid_token", Message: "the ID token is not valid", Err: cause}
}

// jwtHeader is the part of a JWS header the front door looks at.
type jwtHeader struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Enc  string          `json:"enc"`
	Zip  string          `json:"zip"`
	Crit json.RawMessage `json:"crit"`
}

// parseToken is the front door: everything that can be refused without a
// key or the payload is refused here, before any key is looked up or any
// RSA work is done. It returns the header's kid. The payload is decoded by
// verifySigned, once its signature is good.
func parseToken(raw string, headers *headerCache) (kid string, err error) {
	switch {
	case raw == "":
		return "", errors.New("empty token")
	case len(raw) > maxTokenLen:
		return "", fmt.Errorf("token longer than %d bytes", maxTokenLen)
	}
	// One pass: only base64url characters and exactly two dots. (Go's
	// base64 decoder skips \r and \n; nothing of the kind gets through.)
	dot1, dot2 := -1, -1
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case isBase64URL[c]:
		case c == '.' && dot1 < 0:
			dot1 = i
		case c == '.' && dot2 < 0:
			dot2 = i
		case c == '.':
			return "", errors.New("more than three segments")
		default:
			return "", fmt.Errorf("character %#02x at %d is not base64url", c, i)
		}
	}
	if dot2 < 0 {
		return "", errors.New("fewer than three segments")
	}
	if dot1 == 0 || dot2 == dot1+1 || dot2 == len(raw)-1 {
		return "", errors.New("empty segment")
	}
	// Base64 decoders ignore the unused bits of the last character, so
	// without these checks one token would have several spellings.
	// (Our decoders are strict too; this refuses before any decode.)
	if !canonicalBase64(raw[dot1+1 : dot2]) {
		return "", errors.New("payload is not canonical base64url")
	}
	if !canonicalBase64(raw[dot2+1:]) {
		return "", errors.New("signature is not canonical base64url")
	}

	if kid, ok := headers.get(raw[:dot1]); ok {
		return kid, nil
	}
	var h jwtHeader
	if err := decodeSegment(raw[:dot1], &h); err != nil {
		return "", fmt.Errorf("header: %w", err)
	}
	switch {
	case h.Alg != "RS256":
		return "", fmt.Errorf("alg %q: only RS256 is accepted", truncate(h.Alg))
	case h.Enc != "" || h.Zip != "":
		return "", errors.New("encrypted (JWE) or compressed token")
	case h.Crit != nil:
		return "", errors.New(`"crit" header: no extensions are understood`)
	case h.Kid == "" || len(h.Kid) > 256 || !printable(h.Kid):
		return "", errors.New("kid missing or malformed")
	}
	headers.put(raw[:dot1], h.Kid)
	return h.Kid, nil
}

// headerCache remembers header segments that passed every header check,
// with their kid. Google signs all tokens of one key with the same header,
// so in the steady state a token's header costs a map lookup instead of a
// base64 and a JSON decode (issue 7: first-seen verification within 1.1x of
// bare idtoken). Only headers that passed enter, and it is bounded: when
// full it starts again, so made-up headers cannot grow it, and a good
// header only costs its decode again.
type headerCache struct {
	mu sync.RWMutex
	m  map[string]string // header segment -> kid
}

const maxCachedHeaders = 64

func (c *headerCache) get(seg string) (string, bool) {
	c.mu.RLock()
	kid, ok := c.m[seg]
	c.mu.RUnlock()
	return kid, ok
}

func (c *headerCache) put(seg, kid string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedHeaders {
		c.m = make(map[string]string, maxCachedHeaders)
	}
	c.m[seg] = kid
}

// decodeSegment decodes one base64url JWT segment as a JSON object into v.
func decodeSegment(seg string, v any) error {
	b, err := strictBase64.DecodeString(seg)
	if err != nil {
		return fmt.Errorf("not base64url: %w", err)
	}
	if len(b) == 0 || b[0] != '{' {
		return errors.New("not a JSON object")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return nil
}

// checkClaims checks every claim of a token whose signature verifySigned
// found good (audience, expiry with our clock, and everything idtoken never
// checked), and returns the Claims. Every claim was read under its exact
// name (decodeClaims); a claim of the wrong JSON type, such as an "aud"
// array, was refused there.
func (v *Verifier) checkClaims(tc *tokenClaims, now time.Time) (*Claims, error) {
	if err := errors.Join(
		tc.EmailVerified.check("email_verified"),
		tc.Exp.check("exp"), tc.Iat.check("iat"), tc.Nbf.check("nbf"),
	); err != nil {
		return nil, err
	}
	c := Claims{
		Issuer:          tc.Iss,
		Audience:        tc.Aud,
		AuthorizedParty: tc.Azp,
		Sub:             tc.Sub,
		Email:           tc.Email,
		EmailVerified:   tc.EmailVerified.v,
		Name:            tc.Name,
		GivenName:       tc.GivenName,
		FamilyName:      tc.FamilyName,
		Picture:         tc.Picture,
		HostedDomain:    tc.HD,
		Nonce:           tc.Nonce,
	}
	exp, iat, nbf := tc.Exp.v, tc.Iat.v, tc.Nbf.v
	t := now.Unix()
	switch {
	case c.Issuer != issuerHTTPS && c.Issuer != issuerBare:
		return nil, refused(RefusedIssuer, fmt.Errorf("iss %q is not Google", truncate(c.Issuer)))
	case !slices.Contains(v.audiences, c.Audience):
		return nil, refused(RefusedAudience, fmt.Errorf("aud %q is not one of this app's client ids", truncate(c.Audience)))
	case c.AuthorizedParty != "" && !slices.Contains(v.audiences, c.AuthorizedParty):
		return nil, refused(RefusedAudience, fmt.Errorf("azp %q is not one of this app's client ids", truncate(c.AuthorizedParty)))
	case !validSub(c.Sub):
		// sub names the user's credentials file, among other things.
		return nil, errors.New("sub is missing or not a Google user id")
	case !tc.Exp.ok:
		return nil, errors.New("exp is missing")
	case t >= exp: // RFC 7519: valid only before exp (idtoken allows exp itself)
		return nil, refused(RefusedExpired, errors.New("token expired"))
	case !tc.Iat.ok:
		return nil, errors.New("iat is missing")
	case iat > t+v.skew:
		return nil, refused(RefusedClockSkew, errors.New("iat is in the future"))
	case iat > exp:
		return nil, errors.New("iat is after exp")
	case tc.Nbf.ok && nbf > t+v.skew:
		return nil, refused(RefusedClockSkew, errors.New("token not valid yet (nbf)"))
	}
	if v.hostedDomain != "" {
		if !strings.EqualFold(c.HostedDomain, v.hostedDomain) {
			return nil, fmt.Errorf("hd %q is not the required hosted domain", truncate(c.HostedDomain))
		}
		if !c.EmailVerified {
			return nil, errors.New("email not verified, and a hosted domain is required")
		}
	}
	c.IssuedAt, c.ExpiresAt = time.Unix(iat, 0), time.Unix(exp, 0)
	return &c, nil
}

// isBase64URL is whether a byte is of the base64url alphabet (RFC 4648
// section 5): a table, because parseToken asks it of every byte of every
// token, and a table lookup is a fraction of the five comparisons.
var isBase64URL = func() (t [256]bool) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
		t[c] = true
	}
	return t
}()

// canonicalBase64 reports whether seg, a string of base64url characters,
// has a valid length and no bits set in the unused part of its last
// character (what a strict decoder checks), without decoding it.
func canonicalBase64(seg string) bool {
	var v byte
	switch c := seg[len(seg)-1]; {
	case 'A' <= c && c <= 'Z':
		v = c - 'A'
	case 'a' <= c && c <= 'z':
		v = c - 'a' + 26
	case '0' <= c && c <= '9':
		v = c - '0' + 52
	case c == '-':
		v = 62
	default: // '_'
		v = 63
	}
	switch len(seg) % 4 {
	case 1:
		return false
	case 2:
		return v&0x0f == 0
	case 3:
		return v&0x03 == 0
	}
	return true
}

// validSub reports whether sub looks like a Google user id: 1 to 255
// characters of [A-Za-z0-9_-] (Google's are digits). Anything else, such as
// "/" or "..", is refused.
func validSub(sub string) bool {
	if sub == "" || len(sub) > 255 {
		return false
	}
	for i := 0; i < len(sub); i++ {
		switch c := sub[i]; {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// truncate shortens an untrusted string for an error message.
func truncate(s string) string {
	const n = 64
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
