package auth

import (
	"cmp"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
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
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"example.com/signin"
	"example.com/signin/internal/googlenet"
	"example.com/signin/internal/metrics"
)

// Cross-Account Protection (RISC): Google POSTs a Security Event Token (SET,
// RFC 8417), a signed JWT, to the app when something happens to the Google
// account of one of its users. Google's page "Protect user accounts with
// Cross-Account Protection" says how to validate one: take the issuer and
// the jwks_uri from https://accounts.google.com/.well-known/risc-configuration,
// find the key by the token's kid (no such key: answer 400), check the RS256
// signature, that "aud" is one of the app's client ids and that "iss" is the
// configuration's issuer, and do NOT check "exp": SETs describe past events
// and do not expire. Google may deliver an event more than once; "jti"
// identifies it (see JTICache).

// Short names of the event types Google sends (Event.Type).
const (
	EventSessionsRevoked                 = "sessions-revoked"
	EventTokensRevoked                   = "tokens-revoked"
	EventTokenRevoked                    = "token-revoked"
	EventAccountDisabled                 = "account-disabled"
	EventAccountEnabled                  = "account-enabled"
	EventAccountCredentialChangeRequired = "account-credential-change-required"
	EventVerification                    = "verification"
)

// riscEventTypes maps Google's event type URIs to their short names.
var riscEventTypes = map[string]string{
	"https://schemas.openid.net/secevent/risc/event-type/sessions-revoked":                   EventSessionsRevoked,
	"https://schemas.openid.net/secevent/oauth/event-type/tokens-revoked":                    EventTokensRevoked,
	"https://schemas.openid.net/secevent/oauth/event-type/token-revoked":                     EventTokenRevoked,
	"https://schemas.openid.net/secevent/risc/event-type/account-disabled":                   EventAccountDisabled,
	"https://schemas.openid.net/secevent/risc/event-type/account-enabled":                    EventAccountEnabled,
	"https://schemas.openid.net/secevent/risc/event-type/account-credential-change-required": EventAccountCredentialChangeRequired,
	"https://schemas.openid.net/secevent/risc/event-type/verification":                       EventVerification,
}

// Values of Subject.TokenIdentifierAlg for token-revoked events.
const (
	TokenIDPrefix = "prefix"                    // the token's first 16 characters
	TokenIDHash   = "hash_base64_sha512_sha512" // see TokenMatches
)

// riscTokenPrefixLen is how much of a token TokenIDPrefix gives.
const riscTokenPrefixLen = 16

// Limits on what the RISC configuration endpoint and a SET may hold.
const (
	maxRISCConfigBytes = 64 << 10
	maxJTILen          = 256
	maxRISCEvents      = 16
)

// SecurityEvent is a verified Security Event Token.
type SecurityEvent struct {
	// JTI identifies the event, for de-duplication (see JTICache).
	JTI string
	// IssuedAt is when Google issued the token ("iat").
	IssuedAt time.Time
	// Audience is the client id of this app that the token names.
	Audience string
	// Events are the token's events, in the order of their type URIs.
	// Google sends one per token.
	Events []Event
}

// Event is one event of a SecurityEvent.
type Event struct {
	// Type is the short name of the event type (EventSessionsRevoked and
	// so on), or "" for a type this package does not know: such events
	// are kept, so the caller can log and acknowledge them.
	Type string
	// URI is the event type as sent.
	URI string
	// Subject is whom (or which token) the event is about. It is zero
	// when the event has none (verification events need none).
	Subject Subject
	// Reason is account-disabled's reason: "hijacking", "bulk-account",
	// or "" when Google gave none.
	Reason string
	// State is the state a verification event echoes back (the one sent
	// with the stream:verify request).
	State string
}

// Subject identifies an event's user or token.
type Subject struct {
	// Type is the subject_type: "iss-sub" or "id_token_claims" (a user:
	// Issuer and Sub, and Email for the latter), or "oauth_token" (a
	// refresh token: TokenType, TokenIdentifierAlg and Token).
	Type string
	// Issuer and Sub name a Google account; Sub is the same "sub" as in
	// the user's ID tokens. A Sub that is present is a valid user id.
	Issuer string
	Sub    string
	Email  string
	// TokenType is "refresh_token" (the only one Google sends).
	TokenType string
	// TokenIdentifierAlg is TokenIDPrefix or TokenIDHash; Token is the
	// identifier. Use TokenMatches to compare them with a stored token.
	TokenIdentifierAlg string
	Token              string
}

// RISCVerifierConfig configures a RISCVerifier.
type RISCVerifierConfig struct {
	// ClientIDs are the accepted "aud" values: every client id of the
	// app (web, Android, iOS). Required.
	ClientIDs []string
	// HTTPClient fetches the RISC configuration and the keys (googlenet's
	// client, which may route them to an emulator). Nil means a plain
	// client with a 15 s timeout.
	HTTPClient *http.Client
	// ConfigURL is the RISC configuration document; empty means
	// googlenet.RISCConfigURL.
	ConfigURL string
	// MinRefetchInterval is the least time between two fetches of the
	// keys, or of the configuration, after the first: a token with an
	// unknown kid triggers a key refetch at most this often. Zero means
	// DefaultMinRefetchInterval (a minute).
	MinRefetchInterval time.Duration
	// MinTTL is the least time the configuration and the keys are used
	// before they are fetched again, when Cache-Control says less. Zero
	// means DefaultMinKeyTTL.
	MinTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives why tokens were refused (debug for tokens that are
	// not Google's, warn for Google-signed tokens we refuse, which point to
	// a configuration mistake) and fetch failures; nil discards. Tokens
	// are never logged.
	Logger *slog.Logger
	// Metrics counts the key fetches. Nil counts nothing.
	Metrics *metrics.Metrics
}

// RISCVerifier verifies the Security Event Tokens Google sends to the
// app's RISC receiver. The configuration document and the keys are fetched
// on first use and cached like the ID token keys (Cache-Control with a
// floor, single-flight fetches, an unknown kid refetches at a limited rate,
// stale copies kept when a refresh fails). It is safe for concurrent use.
type RISCVerifier struct {
	clientIDs []string
	logger    *slog.Logger
	metrics   *metrics.Metrics
	discovery *riscDiscovery // its docSource, for another URL, is the keys'
	headers   headerCache

	mu   sync.Mutex
	keys *keySet // for the configuration's jwks_uri; replaced if it changes
}

// NewRISCVerifier returns a RISCVerifier for cfg. It fetches nothing until
// the first verification.
func NewRISCVerifier(cfg RISCVerifierConfig) (*RISCVerifier, error) {
	var ids []string
	for _, id := range cfg.ClientIDs {
		if id = strings.TrimSpace(id); id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, errors.New("auth: RISCVerifierConfig.ClientIDs is empty")
	}
	configURL := cmp.Or(cfg.ConfigURL, googlenet.RISCConfigURL)
	if u, err := url.Parse(configURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("auth: RISC ConfigURL %q is not an http(s) URL", configURL)
	}
	if cfg.MinRefetchInterval < 0 || cfg.MinTTL < 0 {
		return nil, errors.New("auth: RISCVerifierConfig: negative interval")
	}
	v := &RISCVerifier{clientIDs: ids, logger: cfg.Logger, metrics: cfg.Metrics}
	if v.logger == nil {
		v.logger = slog.New(slog.DiscardHandler)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	v.discovery = &riscDiscovery{docSource: docSource{
		client:     cmp.Or(cfg.HTTPClient, &http.Client{Timeout: 15 * time.Second}),
		url:        configURL,
		minTTL:     cmp.Or(cfg.MinTTL, DefaultMinKeyTTL),
		minRefetch: cmp.Or(cfg.MinRefetchInterval, DefaultMinRefetchInterval),
		now:        now,
		logger:     v.logger,
	}}
	return v, nil
}

// Verify checks a Security Event Token (the body Google POSTs, the JWT's
// compact serialization) and returns its events.
//
// Errors: EINVALID "invalid_set" for anything that is not a valid SET from
// Google for this app (answer 400; the reason is logged here, never given
// to the caller's client); EUPSTREAM "google_unavailable" when the RISC
// configuration or the keys cannot be fetched, so the token cannot be judged
// (answer 5xx: Google retries).
//
// Verify does not de-duplicate: a replayed token verifies again. See
// JTICache.
func (v *RISCVerifier) Verify(ctx context.Context, raw []byte) (*SecurityEvent, error) {
	tok := strings.TrimSpace(string(raw))
	// The front door shared with ID tokens: segments, base64url, RS256
	// only (so "none" and HS256 never get further), a kid, no "crit".
	kid, err := parseToken(tok, &v.headers)
	if err != nil {
		return nil, v.invalid(slog.LevelDebug, err)
	}
	conf, err := v.discovery.get(ctx)
	if err != nil {
		return nil, riscUnavailable(err)
	}
	kv, err := v.keysFor(conf.jwksURI).forKid(ctx, kid)
	if errors.Is(err, errUnknownKid) {
		return nil, v.invalid(slog.LevelDebug, fmt.Errorf("kid %q: %w", truncate(kid), err))
	}
	if err != nil {
		return nil, riscUnavailable(err)
	}
	pub := kv.pub[kid]
	if pub == nil {
		return nil, v.invalid(slog.LevelWarn, fmt.Errorf("kid %q: no RSA key", truncate(kid)))
	}
	dot1 := strings.IndexByte(tok, '.')
	dot2 := strings.LastIndexByte(tok, '.')
	sig, err := strictBase64.DecodeString(tok[dot2+1:])
	if err != nil {
		return nil, v.invalid(slog.LevelDebug, fmt.Errorf("signature: %w", err))
	}
	h := sha256.Sum256([]byte(tok[:dot2]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig); err != nil {
		return nil, v.invalid(slog.LevelDebug, fmt.Errorf("signature does not verify with key %q", truncate(kid)))
	}
	// Signed by Google: from here on, a refusal means Google sent us what
	// we do not expect (another app's token, a changed format), so it is
	// worth a warning.
	ev, err := v.checkSETClaims(tok[dot1+1:dot2], conf.issuer)
	if err != nil {
		return nil, v.invalid(slog.LevelWarn, err)
	}
	return ev, nil
}

// ConfigFetches returns how many requests were made for the RISC
// configuration (for tests and metrics).
func (v *RISCVerifier) ConfigFetches() int64 { return v.discovery.fetches.Load() }

// KeyFetches returns how many requests were made for the current jwks_uri's
// key set (for tests and metrics).
func (v *RISCVerifier) KeyFetches() int64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.keys == nil {
		return 0
	}
	return v.keys.fetches.Load()
}

// keysFor returns the key set of jwksURI, the same one on every call while
// the configuration names the same URI.
func (v *RISCVerifier) keysFor(jwksURI string) *keySet {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.keys == nil || v.keys.url != jwksURI {
		if v.keys != nil {
			v.logger.Info("the RISC configuration names new signing keys", "jwks_uri", jwksURI)
		}
		src := v.discovery.docSource
		src.url = jwksURI
		v.keys = &keySet{docSource: src, metrics: v.metrics}
	}
	return v.keys
}

func (v *RISCVerifier) invalid(level slog.Level, cause error) error {
	v.logger.Log(context.Background(), level, "refused a security event token", "reason", cause)
	return &signin.Error{Kind: signin.EINVALID, Code: "invalid_set", Message: "the security event token is not valid", Err: cause}
}

func riscUnavailable(cause error) error {
	return &signin.Error{Kind: signin.EUPSTREAM, Code: "google_unavailable", Message: "Google's security event configuration or keys could not be fetched", Err: cause}
}

// checkSETClaims decodes and checks the payload of a SET whose signature
// was verified. Claims are read under their exact names (encoding/json
// matches struct fields case-insensitively).
func (v *RISCVerifier) checkSETClaims(payload, issuer string) (*SecurityEvent, error) {
	b, err := strictBase64.DecodeString(payload)
	if err != nil {
		return nil, fmt.Errorf("payload: not base64url: %w", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("payload: not a JSON object: %w", err)
	}
	var iss, jti string
	var iat int64
	var hasIat bool
	if err := errors.Join(
		rawString(m, "iss", &iss),
		rawString(m, "jti", &jti),
		rawInt(m, "iat", &iat, &hasIat),
	); err != nil {
		return nil, err
	}
	switch {
	case iss != issuer:
		return nil, fmt.Errorf("iss %q is not the RISC issuer %q", truncate(iss), issuer)
	case jti == "" || len(jti) > maxJTILen || !printable(jti):
		return nil, errors.New("jti missing or malformed")
	case !hasIat:
		return nil, errors.New("iat is missing")
	}
	aud, err := v.audience(m["aud"])
	if err != nil {
		return nil, err
	}
	events, err := parseEvents(m["events"])
	if err != nil {
		return nil, err
	}
	// No "exp" check, as Google says: a SET is a record of a past event.
	return &SecurityEvent{JTI: jti, IssuedAt: time.Unix(iat, 0), Audience: aud, Events: events}, nil
}

// audience returns the client id of ours that "aud" names. A SET's "aud"
// may be a string (what Google sends) or an array of strings.
func (v *RISCVerifier) audience(raw json.RawMessage) (string, error) {
	var auds []string
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		auds = []string{one}
	} else if err := json.Unmarshal(raw, &auds); err != nil {
		return "", errors.New("aud missing, or not a string or an array of strings")
	}
	for _, a := range auds {
		if slices.Contains(v.clientIDs, a) {
			return a, nil
		}
	}
	if len(auds) == 0 {
		return "", errors.New("aud is empty")
	}
	return "", fmt.Errorf("aud %q is not one of this app's client ids", truncate(strings.Join(auds, ",")))
}

func parseEvents(raw json.RawMessage) ([]Event, error) {
	var m map[string]json.RawMessage
	if raw == nil || json.Unmarshal(raw, &m) != nil || m == nil {
		return nil, errors.New("events missing or not an object")
	}
	if len(m) == 0 {
		return nil, errors.New("events is empty")
	}
	if len(m) > maxRISCEvents {
		return nil, fmt.Errorf("more than %d events", maxRISCEvents)
	}
	events := make([]Event, 0, len(m))
	for uri, body := range m {
		e, err := parseEvent(uri, body)
		if err != nil {
			return nil, fmt.Errorf("event %q: %w", truncate(uri), err)
		}
		events = append(events, e)
	}
	slices.SortFunc(events, func(a, b Event) int { return strings.Compare(a.URI, b.URI) })
	return events, nil
}

func parseEvent(uri string, raw json.RawMessage) (Event, error) {
	e := Event{Type: riscEventTypes[uri], URI: uri}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return e, errors.New("not an object")
	}
	if err := errors.Join(rawString(m, "reason", &e.Reason), rawString(m, "state", &e.State)); err != nil {
		return e, err
	}
	if s, ok := m["subject"]; ok && string(s) != "null" {
		var err error
		if e.Subject, err = parseSubject(s); err != nil {
			return e, fmt.Errorf("subject: %w", err)
		}
	}
	return e, nil
}

func parseSubject(raw json.RawMessage) (Subject, error) {
	var s Subject
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return s, errors.New("not an object")
	}
	if err := errors.Join(
		rawString(m, "subject_type", &s.Type),
		rawString(m, "iss", &s.Issuer),
		rawString(m, "sub", &s.Sub),
		rawString(m, "email", &s.Email),
		rawString(m, "token_type", &s.TokenType),
		rawString(m, "token_identifier_alg", &s.TokenIdentifierAlg),
		rawString(m, "token", &s.Token),
	); err != nil {
		return s, err
	}
	// The caller looks users up by sub (it names their credentials), so a
	// sub that is not a Google user id never leaves this package.
	if s.Sub != "" && !validSub(s.Sub) {
		return s, errors.New("sub is not a Google user id")
	}
	switch s.Type {
	case "iss-sub", "id_token_claims":
		if s.Sub == "" {
			return s, fmt.Errorf("%s subject without sub", s.Type)
		}
	case "oauth_token":
		if s.Token == "" {
			return s, errors.New("oauth_token subject without token")
		}
	}
	return s, nil
}

// rawString sets *dst to the string member name of m; absent or null
// leaves it empty.
func rawString(m map[string]json.RawMessage, name string, dst *string) error {
	raw, ok := m[name]
	if !ok || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("%s is not a string", name)
	}
	return nil
}

// rawInt sets *dst to the integer member name of m and *ok to whether it
// is present.
func rawInt(m map[string]json.RawMessage, name string, dst *int64, ok *bool) error {
	raw, present := m[name]
	if !present || string(raw) == "null" {
		return nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return fmt.Errorf("%s is not an integer", name)
	}
	*dst, *ok = int64(f), true
	return nil
}

// TokenMatches reports whether the token subject s of a token-revoked
// event names refreshToken, as Google's page describes the identifiers:
//
//   - TokenIDPrefix: "the first 16 characters of the token";
//   - TokenIDHash ("hash_base64_sha512_sha512"): "the double hash of the
//     token using SHA-512". The page says no more. We read it, as the
//     name suggests, as base64(SHA-512(SHA-512(token))), the inner hash
//     taken as its 64 raw bytes (not hex). Which base64 alphabet and
//     whether it is padded are not said either, so the identifier is
//     decoded with any of the four (standard or URL-safe, padded or not)
//     and the 64 bytes compared. If Google hashes the hex of the inner
//     hash instead, no token will match: tokens are then never deleted
//     by mistake, but not deleted at all, and the event should be logged.
//
// Comparisons are in constant time. A subject whose token_type is set to
// anything but "refresh_token" matches nothing.
func TokenMatches(s Subject, refreshToken string) bool {
	if refreshToken == "" || s.Token == "" || (s.TokenType != "" && s.TokenType != "refresh_token") {
		return false
	}
	switch s.TokenIdentifierAlg {
	case TokenIDPrefix:
		want := refreshToken[:min(len(refreshToken), riscTokenPrefixLen)]
		return subtle.ConstantTimeCompare([]byte(s.Token), []byte(want)) == 1
	case TokenIDHash:
		inner := sha512.Sum512([]byte(refreshToken))
		outer := sha512.Sum512(inner[:])
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if got, err := enc.DecodeString(s.Token); err == nil {
				return subtle.ConstantTimeCompare(got, outer[:]) == 1
			}
		}
	}
	return false
}

// riscConfig is what the RISC configuration document gives. Immutable.
type riscConfig struct {
	issuer  string
	jwksURI string
	expires time.Time
}

// riscDiscovery fetches and caches the RISC configuration document with the
// keySet's discipline: kept for max(max-age - Age, minTTL) (at most
// maxKeyTTL), concurrent callers share one fetch, fetches after the first
// start at most once per minRefetch (a second while none ever succeeded),
// and a failed refresh keeps the previous document.
type riscDiscovery struct {
	docSource

	flight  singleflight.Group
	fetches atomic.Int64

	mu   sync.Mutex
	cur  *riscConfig
	gate refetchGate
}

func (d *riscDiscovery) get(ctx context.Context) (*riscConfig, error) {
	d.mu.Lock()
	cur := d.cur
	d.mu.Unlock()
	if cur != nil && d.now().Before(cur.expires) {
		return cur, nil
	}
	ch := d.flight.DoChan("risc-configuration", func() (any, error) {
		return d.maybeFetch(ctx)
	})
	select {
	case r := <-ch:
		c, _ := r.Val.(*riscConfig)
		return c, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (d *riscDiscovery) maybeFetch(ctx context.Context) (*riscConfig, error) {
	now := d.now()
	d.mu.Lock()
	cur := d.cur
	if cur != nil && now.Before(cur.expires) {
		d.mu.Unlock()
		return cur, nil // refreshed while this caller waited its turn
	}
	if now.Before(d.gate.next) {
		err := d.gate.lastErr
		d.mu.Unlock()
		if cur != nil {
			return cur, nil // stale, but the best we have
		}
		return nil, err
	}
	d.mu.Unlock()

	c, ttl, err := d.fetch(ctx)

	d.mu.Lock()
	defer d.mu.Unlock()
	d.gate.fetched(now, err, cur != nil, d.minRefetch)
	if err != nil {
		if cur != nil {
			d.logger.Warn("refreshing Google's RISC configuration failed; keeping the previous one", "url", d.url, "error", err)
			return cur, nil
		}
		d.logger.Warn("fetching Google's RISC configuration failed", "url", d.url, "error", err)
		return nil, err
	}
	c.expires = now.Add(ttl)
	d.cur = c
	d.logger.Debug("fetched Google's RISC configuration", "issuer", c.issuer, "jwks_uri", c.jwksURI, "ttl", ttl)
	return c, nil
}

func (d *riscDiscovery) fetch(ctx context.Context) (*riscConfig, time.Duration, error) {
	d.fetches.Add(1)
	body, header, err := fetchDocument(ctx, d.client, d.url, maxRISCConfigBytes, "the RISC configuration")
	if err != nil {
		return nil, 0, err
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, 0, fmt.Errorf("RISC configuration is not JSON: %w", err)
	}
	if doc.Issuer == "" {
		return nil, 0, errors.New("RISC configuration has no issuer")
	}
	// An emulator's configuration may name its keys over plain http (the
	// one client routes Google's own https URLs to it anyway).
	if u, err := url.Parse(doc.JWKSURI); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, 0, fmt.Errorf("RISC configuration's jwks_uri %q is not an http(s) URL", truncate(doc.JWKSURI))
	}
	return &riscConfig{issuer: doc.Issuer, jwksURI: doc.JWKSURI}, cacheTTL(header, d.minTTL), nil
}

// Defaults of NewJTICache.
const (
	// DefaultJTICacheSize bounds the remembered events: at about 100
	// bytes each, 10 000 cost about a megabyte, far more events than an
	// app this size receives in DefaultJTITTL.
	DefaultJTICacheSize = 10000
	// DefaultJTITTL is how long an event is remembered. Google redelivers
	// an event it believes undelivered "with limited retries"; two days
	// is well beyond any retry schedule it is likely to run.
	DefaultJTITTL = 48 * time.Hour
)

// JTICache remembers the jti of recent security events, so that an event
// Google delivers twice is acknowledged and ignored the second time. It is
// in-process: with several replicas, each remembers what it saw, and the
// web layer decides whether that is enough (every action taken on an event
// should be harmless to repeat anyway) or whether to share the record.
//
// It is bounded: entries expire after the TTL, and when full, the oldest
// entry is forgotten first, so a flood of made-up jtis (which must first
// pass Verify, so come from Google) costs bounded memory and, at worst,
// makes a very late duplicate be handled again. It is safe for concurrent
// use.
type JTICache struct {
	size int
	ttl  time.Duration
	now  func() time.Time

	mu    sync.Mutex
	seen  map[string]*jtiEntry
	first *jtiEntry // oldest; entries form a list in the order they were added
	last  *jtiEntry
}

type jtiEntry struct {
	jti        string
	at         time.Time
	prev, next *jtiEntry
}

// NewJTICache returns a JTICache of at most size entries kept for ttl.
// Zero (or negative) size and ttl mean the defaults; nil now means
// time.Now.
func NewJTICache(size int, ttl time.Duration, now func() time.Time) *JTICache {
	if size <= 0 {
		size = DefaultJTICacheSize
	}
	if ttl <= 0 {
		ttl = DefaultJTITTL
	}
	if now == nil {
		now = time.Now
	}
	return &JTICache{size: size, ttl: ttl, now: now, seen: make(map[string]*jtiEntry)}
}

// Seen reports whether jti was seen in the last TTL, and records it if not:
// the first call for a jti returns false, the next ones true. A caller that
// fails to handle the event should call Forget, so that Google's retry is
// handled rather than ignored.
func (c *JTICache) Seen(jti string) bool {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.first != nil && !now.Before(c.first.at.Add(c.ttl)) {
		c.remove(c.first) // expired
	}
	if _, ok := c.seen[jti]; ok {
		return true
	}
	for len(c.seen) >= c.size {
		c.remove(c.first) // full: the oldest goes
	}
	e := &jtiEntry{jti: jti, at: now, prev: c.last}
	if c.last != nil {
		c.last.next = e
	} else {
		c.first = e
	}
	c.last = e
	c.seen[jti] = e
	return false
}

// Forget removes jti, so that its next delivery is handled.
func (c *JTICache) Forget(jti string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.seen[jti]; ok {
		c.remove(e)
	}
}

// Len returns the number of remembered events.
func (c *JTICache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

func (c *JTICache) remove(e *jtiEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		c.first = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		c.last = e.prev
	}
	e.prev, e.next = nil, nil
	delete(c.seen, e.jti)
}
