package auth

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"example.com/signin"
	"example.com/signin/internal/metrics"
)

// Limits on what the certs endpoint may send.
const (
	maxJWKSBytes   = 1 << 20
	maxJWKSKeys    = 64
	maxKeyTTL      = 24 * time.Hour   // never trust keys longer than this without asking again
	fetchTimeout   = 30 * time.Second // one fetch, shared by every waiter
	coldRetryFloor = time.Second      // with no keys at all, retry a failed fetch this often at most
)

// keySet holds Google's ID token signing keys (the JWKS at the certs URL)
// and their parsed RSA public keys.
//
// It is written by hand because idtoken's cache (v0.300.0 cache.go) does
// none of what a server needs: without Cache-Control it fetches on every
// call, N concurrent cold validations fetch N times, and an unknown kid is an
// error until the cached set expires (so a key rotation fails for hours).
// Here:
//   - a fetched set is kept for max(max-age - Age, minTTL), at most maxKeyTTL;
//   - fetches are single-flight: every caller that needs keys while a fetch
//     is running waits for that fetch;
//   - a kid not in the set triggers a refetch, but fetches (other than the
//     first) start at most once per minRefetch, so tokens with made-up kids
//     cannot make us fetch per request;
//   - when a refresh fails, the previous keys keep being served.
//
// Each key set version parses its RSA keys once; Verifier.verifySigned checks
// signatures against them with crypto/rsa (it did through an
// idtoken.Validator fed this same set from memory, which re-parsed the token
// and the key on every call: see verifySigned for what replaced its checks).
type keySet struct {
	docSource
	metrics *metrics.Metrics // counts fetches by outcome; nil counts nothing

	cur     atomic.Pointer[keyVersion] // nil until the first successful fetch
	flight  singleflight.Group
	fetches atomic.Int64

	mu      sync.Mutex // guards the fields below
	gate    refetchGate
	version int64
}

// keyVersion is one fetched key set. It is immutable.
type keyVersion struct {
	version int64
	kids    map[string]struct{}
	expires time.Time
	pub     map[string]*rsa.PublicKey // by kid, parsed once per fetch: ID tokens and RISC events are checked against these
}

func (k *keyVersion) has(kid string) bool {
	if k == nil {
		return false
	}
	_, ok := k.kids[kid]
	return ok
}

// errKeysUnavailable is the cause when Google's keys cannot be had.
var errKeysUnavailable = errors.New("the signing keys from Google are unavailable")

// errUnknownKid is the cause when a token names a key Google does not publish.
var errUnknownKid = errors.New("the token's kid is not one of Google's keys")

// forKid returns the key set to check a token signed with kid.
//
// Errors: errUnknownKid (wrapped) when the set is known and has no such key;
// errKeysUnavailable (wrapped) when there are no keys, or when the kid is
// unknown and the last attempt to refresh the set failed (the token may be
// good; we cannot tell).
func (s *keySet) forKid(ctx context.Context, kid string) (*keyVersion, error) {
	k := s.cur.Load()
	if k.has(kid) && s.now().Before(k.expires) {
		return k, nil // the steady state: no lock, no fetch
	}
	k2, err := s.refresh(ctx, k)
	switch {
	case k2.has(kid):
		return k2, nil // possibly stale keys, when the refresh failed
	case k2 == nil || err != nil:
		if err == nil {
			err = errors.New("no keys fetched yet")
		}
		return nil, fmt.Errorf("%w: %w", errKeysUnavailable, err)
	default:
		return nil, errUnknownKid
	}
}

// refresh fetches the key set unless another caller already replaced seen
// or fetches are rate limited. Concurrent callers share one fetch. It returns
// the newest key set (nil if none) and the error of the most recent fetch
// attempt when that attempt failed.
func (s *keySet) refresh(ctx context.Context, seen *keyVersion) (*keyVersion, error) {
	ch := s.flight.DoChan("jwks", func() (any, error) {
		k, err := s.maybeFetch(ctx, seen)
		return k, err
	})
	select {
	case r := <-ch:
		k, _ := r.Val.(*keyVersion)
		return k, r.Err
	case <-ctx.Done():
		return s.cur.Load(), ctx.Err()
	}
}

func (s *keySet) maybeFetch(ctx context.Context, seen *keyVersion) (*keyVersion, error) {
	cur := s.cur.Load()
	if cur != seen {
		// Replaced while this caller waited its turn.
		s.mu.Lock()
		defer s.mu.Unlock()
		return cur, s.gate.lastErr
	}
	now := s.now()
	s.mu.Lock()
	if now.Before(s.gate.next) {
		err := s.gate.lastErr
		s.mu.Unlock()
		return cur, err
	}
	s.mu.Unlock()

	k, ttl, err := s.fetch(ctx)
	if err != nil {
		s.metrics.KeyFetch(signin.Wrap(err, signin.EUPSTREAM, "google_unavailable", "Google's signing keys could not be fetched"))
	} else {
		s.metrics.KeyFetch(nil)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate.fetched(now, err, cur != nil, s.minRefetch)
	if err != nil {
		if cur != nil {
			s.logger.Warn("refreshing Google's signing keys failed; keeping the previous ones", "endpoint", EndpointCerts, "url", s.url, "error", err)
		} else {
			// Google failing is a warning; the requests it fails say so too.
			s.logger.Warn("fetching Google's signing keys failed", "endpoint", EndpointCerts, "url", s.url, "error", err)
		}
		return cur, err
	}
	s.version++
	k.version = s.version
	k.expires = now.Add(ttl)
	s.cur.Store(k)
	s.logger.Debug("fetched Google's signing keys", "keys", len(k.kids), "ttl", ttl, "version", k.version)
	return k, nil
}

// docSource is where a cached document (keySet, riscDiscovery) comes
// from, and how long a fetched copy is kept and how often it may be fetched.
type docSource struct {
	client     *http.Client
	url        string
	minTTL     time.Duration // floor of a fetched copy's lifetime
	minRefetch time.Duration // see refetchGate
	now        func() time.Time
	logger     *slog.Logger
}

// refetchGate spaces out the fetches of one cached document (keySet,
// riscDiscovery): after a fetch, the next starts minRefetch later at the
// earliest, or coldRetryFloor later while there is nothing to serve
// (nothing works without it: retry sooner, but not per request). Its
// owner's mutex guards it.
type refetchGate struct {
	next    time.Time // no fetch starts before this (except the first)
	lastErr error     // the most recent fetch's error; nil after a success
}

// fetched records the outcome of a fetch started at now; have says whether
// an earlier document is still there to serve.
func (g *refetchGate) fetched(now time.Time, err error, have bool, minRefetch time.Duration) {
	wait := minRefetch
	if err != nil && !have {
		wait = min(wait, coldRetryFloor)
	}
	g.next = now.Add(wait)
	g.lastErr = err
}

// fetch gets the JWKS and builds a key version with its parsed keys.
func (s *keySet) fetch(ctx context.Context) (*keyVersion, time.Duration, error) {
	s.fetches.Add(1)
	body, header, err := fetchDocument(ctx, s.client, s.url, maxJWKSBytes, "the key set")
	if err != nil {
		return nil, 0, err
	}
	kids, clean, err := parseJWKS(body)
	if err != nil {
		return nil, 0, err
	}
	ttl := cacheTTL(header, s.minTTL)
	return &keyVersion{kids: kids, pub: rsaPublicKeys(clean)}, ttl, nil
}

// fetchDocument GETs a JSON document of Google's (a key set, a
// configuration) of at most max bytes, and returns it with the answer's
// headers (for Cache-Control). The fetch is shared by every waiter, so one
// caller's cancellation must not fail it for the others: it runs on its own
// timeout.
func fetchDocument(ctx context.Context, c *http.Client, url string, max int, what string) ([]byte, http.Header, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(max)+1))
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", what, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("fetching %s: HTTP %d", what, resp.StatusCode)
	}
	if len(body) > max {
		return nil, nil, fmt.Errorf("%s is larger than %d bytes", what, max)
	}
	return body, resp.Header, nil
}

// jwk is the part of a JSON Web Key that RS256 verification uses.
type jwk struct {
	Kid string `json:"kid"`
	Kty string `json:"kty"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// parseJWKS keeps the usable RS256 signing keys of a JWKS and returns their
// kids and a JWKS holding only them (the keys are then parsed from it by
// kid alone, so it must not hold keys we would not accept).
func parseJWKS(body []byte) (map[string]struct{}, []byte, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, nil, fmt.Errorf("key set is not JSON: %w", err)
	}
	kids := make(map[string]struct{}, len(set.Keys))
	var keep []jwk
	for _, raw := range set.Keys {
		var k jwk
		if json.Unmarshal(raw, &k) != nil || !usableRSAKey(k) {
			continue
		}
		if _, dup := kids[k.Kid]; dup || len(keep) == maxJWKSKeys {
			continue
		}
		kids[k.Kid] = struct{}{}
		keep = append(keep, jwk{Kid: k.Kid, Kty: "RSA", Alg: "RS256", Use: "sig", N: k.N, E: k.E})
	}
	if len(keep) == 0 {
		return nil, nil, errors.New("key set has no usable RS256 keys")
	}
	clean, err := json.Marshal(struct {
		Keys []jwk `json:"keys"`
	}{keep})
	if err != nil {
		return nil, nil, err
	}
	return kids, clean, nil
}

func usableRSAKey(k jwk) bool {
	if k.Kid == "" || k.Kty != "RSA" || (k.Alg != "" && k.Alg != "RS256") || (k.Use != "" && k.Use != "sig") {
		return false
	}
	n, err := base64.RawURLEncoding.DecodeString(k.N)
	if err != nil || len(n) == 0 || n[0] == 0 {
		return false
	}
	if bits := new(big.Int).SetBytes(n).BitLen(); bits < 2048 || bits > 8192 {
		return false
	}
	e, err := base64.RawURLEncoding.DecodeString(k.E)
	if err != nil || len(e) == 0 || len(e) > 4 {
		return false
	}
	ev := new(big.Int).SetBytes(e).Int64()
	return ev >= 3 && ev <= 1<<31-1 && ev%2 == 1
}

// cacheTTL is how long a fetched key set is used: Cache-Control max-age
// minus Age, as Google intends, but at least floor (Google's answer always
// has a max-age; a proxy or emulator that drops it must not make us fetch
// per request) and at most maxKeyTTL.
func cacheTTL(h http.Header, floor time.Duration) time.Duration {
	maxAge := -1
	for _, v := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(v, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				return floor
			case "max-age":
				n, err := strconv.Atoi(strings.Trim(val, `"`))
				if err != nil || n < 0 {
					return floor
				}
				maxAge = n
			}
		}
	}
	if maxAge < 0 {
		return floor
	}
	if age, err := strconv.Atoi(h.Get("Age")); err == nil && age > 0 {
		maxAge -= age
	}
	ttl := time.Duration(min(maxAge, int(maxKeyTTL/time.Second))) * time.Second
	return min(max(ttl, floor), maxKeyTTL)
}
