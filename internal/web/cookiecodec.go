package web

// The session cookie's codec is written by hand, on the standard library,
// and plugged into gorilla/sessions' CookieStore in place of
// gorilla/securecookie's. securecookie builds a new HMAC-SHA-256 and a new
// AES-CTR cipher, key schedules included, for every cookie it reads, and
// base64-encodes the value twice: 75% of the time of reading a session went
// there (BENCHMARKS.md). AES-GCM with one cipher.AEAD built at start per key
// does the same job, authenticated encryption, in a fraction of the time,
// with one base64 layer, in a few dozen lines and no new dependency. What
// securecookie gave besides, and this keeps, is key rotation (newest key
// seals, every listed key opens), the cookie name bound to the value, an
// issue time checked against the session's max age, and a bound on the
// input before any work.
//
// Cookies written by securecookie before this codec, or by its first
// version (whose key was derived twice, and which named no server-side
// session), do not open or name no live session: their holders read as
// signed out and sign in again.

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// cookieAEADInfo is the HKDF info string that derives a pair's AES-256-GCM
// key. It names the construction, so the key differs from the raw AES key
// that securecookie used with AES-CTR, and from any later use of the pair.
const cookieAEADInfo = "signin session cookie AES-256-GCM v1"

const (
	// maxCookieValue bounds the encoded value, as securecookie did:
	// browsers keep at most about 4 KiB per cookie, so anything longer was
	// not made by us and is refused before it is decoded.
	maxCookieValue = 4096
	nonceSize      = 12 // GCM's standard nonce
	issuedAtSize   = 8  // Unix seconds, big-endian, first in the plaintext
)

var (
	errCookieTooLong   = errors.New("session cookie: value too long")
	errCookieMalformed = errors.New("session cookie: malformed value")
	errCookieInvalid   = errors.New("session cookie: not sealed by any session key, or sealed for another cookie")
	errCookieExpired   = errors.New("session cookie: expired")
)

// cookieCodec is a securecookie.Codec that seals the session's compact
// value (compactSerializer) with AES-256-GCM. A cookie value is
//
//	base64url(nonce[12] || Seal(issuedAt[8] || compact value))
//
// with the cookie's name as additional data, so a value cut from one cookie
// does not open as another. Nonces are random: 2^32 cookies per key stay
// well inside GCM's bounds, and cookies are written only at sign-in.
type cookieCodec struct {
	aeads  []cipher.AEAD // one per session secret, newest first: [0] seals
	maxAge int64         // seconds; 0 means no expiry check
	now    func() time.Time
}

// minSessionSecret is the least entropy accepted for a session secret.
const minSessionSecret = 32

// newCookieCodec builds one AEAD per session secret (newest first). Each
// AES-256 key is derived once, with HKDF-SHA-256, from its secret: the
// secret itself is never a key, and the info string keeps this key apart
// from any other use of the same secret.
func newCookieCodec(secrets [][]byte, maxAge time.Duration, now func() time.Time) (*cookieCodec, error) {
	if len(secrets) == 0 {
		return nil, errors.New("session keys are required")
	}
	c := &cookieCodec{maxAge: int64(maxAge / time.Second), now: now}
	for i, secret := range secrets {
		if len(secret) < minSessionSecret {
			return nil, fmt.Errorf("session key %d: want at least %d bytes, got %d", i+1, minSessionSecret, len(secret))
		}
		key, err := hkdf.Key(sha256.New, secret, nil, cookieAEADInfo, 32)
		if err != nil {
			return nil, fmt.Errorf("session key %d: %w", i+1, err)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("session key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("session key %d: %w", i+1, err)
		}
		c.aeads = append(c.aeads, aead)
	}
	return c, nil
}

// Encode implements securecookie.Codec. value is the session's
// map[interface{}]interface{}, as gorilla's CookieStore passes it.
func (c *cookieCodec) Encode(name string, value interface{}) (string, error) {
	compact, err := compactSerializer{}.Serialize(value)
	if err != nil {
		return "", err
	}
	aead := c.aeads[0]
	buf := make([]byte, nonceSize, nonceSize+issuedAtSize+len(compact)+aead.Overhead())
	// crypto/rand.Read never fails (Go 1.24 and later).
	_, _ = rand.Read(buf)
	plain := binary.BigEndian.AppendUint64(buf[nonceSize:], uint64(c.now().Unix()))
	plain = append(plain, compact...)
	sealed := aead.Seal(plain[:0], buf[:nonceSize], plain, []byte(name))
	out := base64.RawURLEncoding.EncodeToString(buf[:nonceSize+len(sealed)])
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
	// One allocation for the decoded value, the plaintext (kept apart
	// from the ciphertext: a failed Open clears its output, and the next
	// key needs the ciphertext intact) and the additional data.
	dl := base64.RawURLEncoding.DecodedLen(len(value))
	buf := make([]byte, 2*dl+len(name))
	n, err := base64.RawURLEncoding.Decode(buf[:dl], []byte(value))
	if err != nil {
		return errCookieMalformed
	}
	if n < nonceSize+c.aeads[0].Overhead()+issuedAtSize {
		return errCookieMalformed
	}
	nonce, sealed := buf[:nonceSize], buf[nonceSize:n]
	plainBuf := buf[dl : dl : 2*dl]
	aad := append(buf[2*dl:2*dl], name...)
	var plain []byte
	for _, aead := range c.aeads {
		if plain, err = aead.Open(plainBuf, nonce, sealed, aad); err == nil {
			break
		}
	}
	if err != nil {
		return errCookieInvalid
	}
	// As securecookie: older than maxAge is expired. (Written this way
	// round, now minus maxAge cannot overflow.)
	issued := int64(binary.BigEndian.Uint64(plain))
	if c.maxAge > 0 && issued < c.now().Unix()-c.maxAge {
		return errCookieExpired
	}
	return compactSerializer{}.Deserialize(plain[issuedAtSize:], dst)
}
