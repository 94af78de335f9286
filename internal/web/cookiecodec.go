package web

// The session cookie's codec is written by hand, on the standard library and
// internal/seal's keyring: the cookie is the session. It carries the
// session's random id, its user and its issue time, sealed (AES-256-GCM),
// so that signing in writes nothing on the server; the SessionStore keeps
// only what ended sessions (session.go). gorilla/securecookie, which
// gorilla's CookieStore would use, builds a new HMAC-SHA-256 and a new
// AES-CTR cipher, key schedules included, for every cookie it reads, and
// base64-encodes the value twice: 75% of the time of reading a session went
// there (BENCHMARKS.md). What securecookie gave besides, and this keeps, is
// key rotation (newest key seals, every listed key opens), the cookie name
// bound to the value, an issue time checked against the session's max age,
// and a bound on the input before any work.
//
// Cookies of earlier formats (securecookie's, and versions 1 and 2 of this
// codec, which named a session row on the server) do not open: their
// holders read as signed out, once, and sign in again.

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"example.com/signin/internal/seal"
)

// strictBase64 is unpadded base64url that refuses a value with bits set
// past its last byte, so that no value has two spellings. Made once:
// Strict returns a copy of the 330-byte Encoding, which on a hot path
// costs a copy per call and that much stack in the caller's frame.
var strictBase64 = base64.RawURLEncoding.Strict()

// cookieAEADInfo is the HKDF info string that derives a session secret's
// AES-256-GCM key. It names the construction, so the key differs from any
// other use of the secret. (Version 3 of the cookie kept the key of
// version 2: a cookie of version 2 still does not open, since the
// additional data names the format.)
const cookieAEADInfo = "signin session cookie AES-256-GCM v1"

// cookieFormat is bound to every cookie as additional data with its name:
// a value of another format never opens as this one.
const cookieFormat = "signin-session-v3"

const (
	// maxCookieValue bounds the encoded value, as securecookie did:
	// browsers keep at most about 4 KiB per cookie, so anything longer was
	// not made by us and is refused before it is decoded.
	maxCookieValue = 4096
)

var (
	errCookieTooLong   = errors.New("session cookie: value too long")
	errCookieMalformed = errors.New("session cookie: malformed value")
	errCookieInvalid   = errors.New("session cookie: not sealed by any session key, or sealed for another cookie")
	errCookieExpired   = errors.New("session cookie: expired")
)

// cookieCodec is a securecookie.Codec that seals the session's compact
// value (compactSerializer) with internal/seal's keyring. A cookie value is
//
//	base64url(seal.SealBinary(compact value))   (strict, no padding)
//
// with the cookie's name and cookieFormat as additional data, so a value
// cut from one cookie does not open as another. Nonces are random: 2^32
// cookies per key stay well inside GCM's bounds.
type cookieCodec struct {
	keys   *seal.Keyring // one key per session secret, newest first: it seals
	maxAge time.Duration // 0 means no expiry check
	now    func() time.Time
}

// minSessionSecret is the least entropy accepted for a session secret.
const minSessionSecret = 32

// newCookieCodec derives one AES-256 key per session secret (newest first),
// once, with HKDF-SHA-256 (the secret itself is never a key), and keeps them
// in a seal.Keyring.
func newCookieCodec(secrets [][]byte, maxAge time.Duration, now func() time.Time) (*cookieCodec, error) {
	if len(secrets) == 0 {
		return nil, errors.New("session keys are required")
	}
	keys := make([][]byte, 0, len(secrets))
	for i, secret := range secrets {
		if len(secret) < minSessionSecret {
			return nil, fmt.Errorf("session key %d: want at least %d bytes, got %d", i+1, minSessionSecret, len(secret))
		}
		key, err := hkdf.Key(sha256.New, secret, nil, cookieAEADInfo, seal.KeySize)
		if err != nil {
			return nil, fmt.Errorf("session key %d: %w", i+1, err)
		}
		keys = append(keys, key)
	}
	ring, err := seal.NewKeyring(keys)
	if err != nil {
		return nil, fmt.Errorf("session keys: %w", err)
	}
	return &cookieCodec{keys: ring, maxAge: maxAge, now: now}, nil
}

// additionalData is what a cookie is bound to besides its key: its name and
// the format.
func additionalData(buf []byte, name string) []byte {
	buf = append(buf, cookieFormat...)
	buf = append(buf, 0)
	return append(buf, name...)
}

// Encode implements securecookie.Codec. value is the session's
// map[interface{}]interface{}.
func (c *cookieCodec) Encode(name string, value interface{}) (string, error) {
	compact, err := compactSerializer{}.Serialize(value)
	if err != nil {
		return "", err
	}
	var adBuf [64]byte
	sealed := c.keys.SealBinary(make([]byte, 0, len(compact)+seal.BinaryOverhead), compact, additionalData(adBuf[:0], name))
	out := base64.RawURLEncoding.EncodeToString(sealed)
	if len(out) > maxCookieValue {
		return "", errCookieTooLong
	}
	return out, nil
}

// Decode implements securecookie.Codec. dst is a *sessionUser or the
// session's *map[interface{}]interface{}. Any error means no session.
func (c *cookieCodec) Decode(name, value string, dst interface{}) error {
	if len(value) > maxCookieValue {
		return errCookieTooLong
	}
	// One allocation for the decoded value, the plaintext and the
	// additional data. Strict: a value with non-zero padding bits is
	// not one we wrote (and must not decode as the one we did).
	dl := base64.RawURLEncoding.DecodedLen(len(value))
	buf := make([]byte, 2*dl+len(cookieFormat)+1+len(name))
	n, err := strictBase64.Decode(buf[:dl], []byte(value))
	if err != nil || n < seal.BinaryOverhead {
		return errCookieMalformed
	}
	ad := additionalData(buf[2*dl:2*dl], name)
	plain, err := c.keys.OpenBinary(buf[dl:dl], buf[:n], ad)
	if err != nil {
		return errCookieInvalid
	}
	u, err := decodeSessionUser(plain)
	if err != nil {
		return err
	}
	// As securecookie: older than maxAge is expired.
	if c.maxAge > 0 && u.SignedInAt.Before(c.now().Add(-c.maxAge)) {
		return errCookieExpired
	}
	return compactSerializer{}.store(u, dst)
}
