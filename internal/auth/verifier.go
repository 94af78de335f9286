package auth

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"example.com/signin"
	"example.com/signin/internal/googlenet"
)

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
	// negative is an error. "exp" has no leeway: idtoken enforces it
	// exactly, with the system clock, and so do we with Now.
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
	// (idtoken's own expiry check always uses the system clock.)
	Now func() time.Time
	// Logger receives key fetch failures; nil discards. Tokens are never
	// logged.
	Logger *slog.Logger
}

// Verifier verifies Google ID tokens completely: idtoken's signature,
// audience and expiry checks, plus everything idtoken leaves out (algorithm,
// issuer, issue time, authorized party, subject, hosted domain, nonce). It
// keeps Google's keys (one fetch shared by concurrent callers, cached per
// Cache-Control with a floor, refetched for a new kid at a limited rate) and
// a bounded cache of verified tokens for VerifyCached. It is safe for
// concurrent use.
type Verifier struct {
	audiences    []string
	hostedDomain string
	skew         int64 // seconds
	now          func() time.Time
	keys         *keySet
	cache        *verifiedCache // nil when disabled
	bufs         sync.Pool      // *[]byte, for hashing tokens without an allocation
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
		keys: &keySet{
			client:     hc,
			url:        certsURL,
			minTTL:     cmp.Or(cfg.MinKeyTTL, DefaultMinKeyTTL),
			minRefetch: cmp.Or(cfg.MinRefetchInterval, DefaultMinRefetchInterval),
			now:        now,
			logger:     logger,
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
		return c, nil
	}
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
	kid, p, err := parseToken(raw)
	if err != nil {
		return nil, invalidToken(err)
	}
	// The claims are checked before the signature: they are all required
	// anyway, and a token that fails them costs neither an RSA operation
	// nor a chance to make us fetch keys.
	if err := v.checkClaims(&p, v.now()); err != nil {
		return nil, invalidToken(err)
	}
	keys, err := v.keys.forKid(ctx, kid)
	if errors.Is(err, errUnknownKid) {
		return nil, invalidToken(err)
	}
	if err != nil {
		return nil, &signin.Error{Kind: signin.EUPSTREAM, Code: "google_unavailable", Message: "Google's sign-in keys could not be fetched; please try again", Err: err}
	}
	// The audience passed is the token's own aud, already known to be one
	// of ours: idtoken compares a single audience, and skips the check
	// entirely when given "".
	if _, err := keys.validator.Validate(ctx, raw, p.Aud.value); err != nil {
		return nil, invalidToken(err)
	}
	return p.claims(), nil
}

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

// missing marks a numeric claim that is absent (or null) after decoding.
const missing = math.MinInt64

// jwtPayload is a Google ID token's payload. It is decoded once, by the
// front door, and every check and the Claims use it. idtoken decodes the
// same bytes with the same encoding/json rules for its own checks.
type jwtPayload struct {
	Iss           string   `json:"iss"`
	Aud           audience `json:"aud"`
	Azp           string   `json:"azp"`
	Sub           string   `json:"sub"`
	Exp           int64    `json:"exp"`
	Iat           int64    `json:"iat"`
	Nbf           int64    `json:"nbf"`
	Email         string   `json:"email"`
	EmailVerified flexBool `json:"email_verified"`
	Name          string   `json:"name"`
	GivenName     string   `json:"given_name"`
	FamilyName    string   `json:"family_name"`
	Picture       string   `json:"picture"`
	Hd            string   `json:"hd"`
	Nonce         string   `json:"nonce"`
}

// parseToken is the front door: everything that can be refused without a
// key is refused here, before idtoken sees the token (idtoken panics on
// some inputs, such as an ES256 header with a short signature). It returns
// the header's kid and the decoded payload.
func parseToken(raw string) (kid string, p jwtPayload, err error) {
	switch {
	case raw == "":
		return "", p, errors.New("empty token")
	case len(raw) > maxTokenLen:
		return "", p, fmt.Errorf("token longer than %d bytes", maxTokenLen)
	}
	// One pass: only base64url characters and exactly two dots. (Go's
	// base64 decoder skips \r and \n; nothing of the kind gets through.)
	dot1, dot2 := -1, -1
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '.':
			switch {
			case dot1 < 0:
				dot1 = i
			case dot2 < 0:
				dot2 = i
			default:
				return "", p, errors.New("more than three segments")
			}
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return "", p, fmt.Errorf("character %#02x at %d is not base64url", c, i)
		}
	}
	if dot2 < 0 {
		return "", p, errors.New("fewer than three segments")
	}
	if dot1 == 0 || dot2 == dot1+1 || dot2 == len(raw)-1 {
		return "", p, errors.New("empty segment")
	}
	if !canonicalBase64(raw[dot2+1:]) {
		// Base64 decoders ignore the unused bits of the last character, so
		// without this one signature would have several spellings.
		return "", p, errors.New("signature is not canonical base64url")
	}

	var h jwtHeader
	if err := decodeSegment(raw[:dot1], &h); err != nil {
		return "", p, fmt.Errorf("header: %w", err)
	}
	switch {
	case h.Alg != "RS256":
		return "", p, fmt.Errorf("alg %q: only RS256 is accepted", truncate(h.Alg))
	case h.Enc != "" || h.Zip != "":
		return "", p, errors.New("encrypted (JWE) or compressed token")
	case h.Crit != nil:
		return "", p, errors.New(`"crit" header: no extensions are understood`)
	case h.Kid == "" || len(h.Kid) > 256 || !printable(h.Kid):
		return "", p, errors.New("kid missing or malformed")
	}

	p.Exp, p.Iat, p.Nbf = missing, missing, missing
	if err := decodeSegment(raw[dot1+1:dot2], &p); err != nil {
		return "", jwtPayload{}, fmt.Errorf("payload: %w", err)
	}
	return h.Kid, p, nil
}

// decodeSegment decodes one base64url JWT segment as a JSON object into v.
func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
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

// checkClaims makes the checks idtoken does not (and repeats its expiry
// check with our clock).
func (v *Verifier) checkClaims(p *jwtPayload, now time.Time) error {
	t := now.Unix()
	switch {
	case p.Iss != issuerHTTPS && p.Iss != issuerBare:
		return fmt.Errorf("iss %q is not Google", truncate(p.Iss))
	case p.Aud.array:
		return errors.New("aud is an array; Google sends one audience")
	case !slices.Contains(v.audiences, p.Aud.value):
		return fmt.Errorf("aud %q is not one of this app's client ids", truncate(p.Aud.value))
	case p.Azp != "" && !slices.Contains(v.audiences, p.Azp):
		return fmt.Errorf("azp %q is not one of this app's client ids", truncate(p.Azp))
	case !validSub(p.Sub):
		// sub names the user's credentials file, among other things.
		return errors.New("sub is missing or not a Google user id")
	case p.Exp == missing:
		return errors.New("exp is missing")
	case t >= p.Exp: // RFC 7519: valid only before exp (idtoken allows exp itself)
		return errors.New("token expired")
	case p.Iat == missing:
		return errors.New("iat is missing")
	case p.Iat > t+v.skew:
		return errors.New("iat is in the future")
	case p.Iat > p.Exp:
		return errors.New("iat is after exp")
	case p.Nbf != missing && p.Nbf > t+v.skew:
		return errors.New("token not valid yet (nbf)")
	}
	if v.hostedDomain != "" {
		if !strings.EqualFold(p.Hd, v.hostedDomain) {
			return fmt.Errorf("hd %q is not the required hosted domain", truncate(p.Hd))
		}
		if !p.EmailVerified {
			return errors.New("email not verified, and a hosted domain is required")
		}
	}
	return nil
}

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

func (p *jwtPayload) claims() *Claims {
	return &Claims{
		Sub:             p.Sub,
		Email:           p.Email,
		EmailVerified:   bool(p.EmailVerified),
		Name:            p.Name,
		GivenName:       p.GivenName,
		FamilyName:      p.FamilyName,
		Picture:         p.Picture,
		HostedDomain:    p.Hd,
		Nonce:           p.Nonce,
		AuthorizedParty: p.Azp,
		Audience:        p.Aud.value,
		Issuer:          p.Iss,
		IssuedAt:        time.Unix(p.Iat, 0),
		ExpiresAt:       time.Unix(p.Exp, 0),
	}
}

// audience is the "aud" claim: one string, as Google sends it. An array is
// remembered as such, and refused.
type audience struct {
	value string
	array bool
}

func (a *audience) UnmarshalJSON(b []byte) error {
	// encoding/json has validated b before calling us.
	switch {
	case len(b) > 0 && b[0] == '[':
		a.array = true
		return nil
	case string(b) == "null":
		return nil
	}
	if len(b) >= 2 && b[0] == '"' && plainASCII(b[1:len(b)-1]) {
		a.value = string(b[1 : len(b)-1]) // the common case, without a second decode
		return nil
	}
	return json.Unmarshal(b, &a.value)
}

// plainASCII reports whether b needs no JSON unescaping or UTF-8 repair.
func plainASCII(b []byte) bool {
	for _, c := range b {
		if c == '\\' || c == '"' || c < ' ' || c >= 0x80 {
			return false
		}
	}
	return true
}

// flexBool is a JSON boolean that also accepts "true" and "false" strings,
// as some Google answers spell email_verified.
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true", `"true"`:
		*f = true
	case "false", `"false"`, "null":
		*f = false
	default:
		return errors.New("email_verified is not a boolean")
	}
	return nil
}
