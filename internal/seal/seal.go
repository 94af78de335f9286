// Package seal seals OAuth tokens at rest: each value is encrypted with
// AES-256-GCM under one of a ring of keys and bound to the user it belongs
// to, so a stolen credentials directory does not hand out usable tokens, and
// a sealed token copied into another user's record does not open.
//
// A sealed value is a self-describing string:
//
//	sealed:v1:<kid>:<base64url, no padding, of nonce || ciphertext || tag>
//
// where kid is the id of the key that sealed it (see KeyID) and the 12-byte
// nonce is random. The additional data of the AEAD is "sealed:v1:<kid>:" and
// the user's sub, so neither the key id nor the user can be swapped. A value
// without the "sealed:" prefix is a legacy plain token, written before
// sealing existed: Open returns it as it is, and IsSealed tells callers to
// seal it on their next write. (Google's tokens start with "ya29." and
// "1//", never with "sealed:".)
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// strictBase64 is unpadded base64url that refuses a value with bits set
// past its last byte, so that no value has two spellings. Made once:
// Strict returns a copy of the 330-byte Encoding, which on a hot path
// costs a copy per call and that much stack in the caller's frame.
var strictBase64 = base64.RawURLEncoding.Strict()

// KeySize is the size of a sealing key: AES-256.
const KeySize = 32

const (
	prefix    = "sealed:"
	prefixV1  = prefix + "v1:"
	kidLen    = 8 // hex characters
	nonceSize = 12
	tagSize   = 16
)

// kidLabel is the HMAC message that derives a key's id from the key. The id
// is public (it is written in every sealed value), so it is an HMAC of a
// fixed label under the key, not a hash of the key itself.
const kidLabel = "signin seal key id v1"

// Errors returned by Open, to be matched with errors.Is.
var (
	// ErrUnknownKey: the value was sealed with a key that is not in the
	// ring (dropped too early, or another deployment's key).
	ErrUnknownKey = errors.New("seal: unknown key")
	// ErrOpen: the value does not open: tampered with, truncated, or
	// sealed for another user.
	ErrOpen = errors.New("seal: value does not open")
)

// Keyring seals with its newest key and opens with any of its keys. It is
// immutable and safe for concurrent use.
type Keyring struct {
	ids   []string // newest first
	aeads map[string]cipher.AEAD
}

// NewKeyring returns a Keyring of keys, newest first. Each key must be
// KeySize bytes; two keys with the same id (the same key twice) are an
// error.
func NewKeyring(keys [][]byte) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("seal: no keys")
	}
	r := &Keyring{aeads: make(map[string]cipher.AEAD, len(keys))}
	for i, k := range keys {
		if len(k) != KeySize {
			return nil, fmt.Errorf("seal: key %d: %d bytes, want %d", i+1, len(k), KeySize)
		}
		kid := keyID(k)
		if _, dup := r.aeads[kid]; dup {
			return nil, fmt.Errorf("seal: key %d: same key id %s as an earlier key (a key given twice?)", i+1, kid)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("seal: key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("seal: key %d: %w", i+1, err)
		}
		r.ids = append(r.ids, kid)
		r.aeads[kid] = aead
	}
	return r, nil
}

// keyID is the first 8 hex characters of HMAC-SHA256(key, kidLabel): short
// enough to read in a log or a report, stable across restarts, and telling
// nothing about the key.
func keyID(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(kidLabel))
	return hex.EncodeToString(m.Sum(nil))[:kidLen]
}

// Newest returns the id of the key that seals.
func (r *Keyring) Newest() string { return r.ids[0] }

// IDs returns the ids of every key, newest first.
func (r *Keyring) IDs() []string { return append([]string(nil), r.ids...) }

// IsSealed reports whether s is a sealed value (as opposed to a legacy
// plain token, or the empty string).
func IsSealed(s string) bool { return strings.HasPrefix(s, prefix) }

// KeyID returns the id of the key that sealed s, or "" when s is not a
// sealed value. It does not check that the value opens.
func KeyID(s string) string {
	if !strings.HasPrefix(s, prefixV1) {
		return ""
	}
	kid, _, ok := strings.Cut(s[len(prefixV1):], ":")
	if !ok {
		return ""
	}
	return kid
}

// Seal encrypts plaintext for the user sub with the newest key. The empty
// string seals to the empty string (a record without that token).
func (r *Keyring) Seal(sub, plaintext string) (string, error) {
	if plaintext == "" {
		return "", nil
	}
	kid := r.ids[0]
	aead := r.aeads[kid]
	head := prefixV1 + kid + ":"
	buf := make([]byte, nonceSize, nonceSize+len(plaintext)+tagSize)
	rand.Read(buf) // never fails (crypto/rand, Go 1.24+)
	buf = aead.Seal(buf, buf[:nonceSize], []byte(plaintext), additionalData(head, sub))
	return head + base64.RawURLEncoding.EncodeToString(buf), nil
}

// Open returns the plaintext of s, sealed for the user sub. A value that is
// not sealed (see IsSealed) is returned as it is.
//
// Errors: ErrUnknownKey (wrapped, naming the kid) when no key in the ring
// has the value's id; ErrOpen (wrapped) when the value is malformed,
// tampered with, or sealed for another user.
func (r *Keyring) Open(sub, s string) (string, error) {
	if !IsSealed(s) {
		return s, nil
	}
	if !strings.HasPrefix(s, prefixV1) {
		return "", fmt.Errorf("%w: unknown format %q", ErrOpen, truncate(s, len(prefix)+4))
	}
	kid, body, ok := strings.Cut(s[len(prefixV1):], ":")
	if !ok || len(kid) != kidLen {
		return "", fmt.Errorf("%w: malformed sealed value", ErrOpen)
	}
	aead := r.aeads[kid]
	if aead == nil {
		return "", fmt.Errorf("%w: the value was sealed with key %s, which is not among the keys given (%s)", ErrUnknownKey, kid, strings.Join(r.ids, ", "))
	}
	buf, err := strictBase64.DecodeString(body)
	if err != nil || len(buf) < nonceSize+tagSize {
		return "", fmt.Errorf("%w: malformed sealed value (key %s)", ErrOpen, kid)
	}
	head := s[:len(prefixV1)+len(kid)+1]
	plain, err := aead.Open(buf[nonceSize:nonceSize], buf[:nonceSize], buf[nonceSize:], additionalData(head, sub))
	if err != nil {
		return "", fmt.Errorf("%w: key %s: tampered with, or sealed for another user", ErrOpen, kid)
	}
	return string(plain), nil
}

// additionalData binds a sealed value to its header (format and key id) and
// to its user. The header ends with ':' and has a fixed shape, so the
// concatenation is unambiguous.
func additionalData(head, sub string) []byte {
	ad := make([]byte, 0, len(head)+len(sub))
	return append(append(ad, head...), sub...)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// With returns a Keyring that seals with r's newest key and opens with the
// keys of both r and other (r's first). An import from another store uses
// it to open what that store's keys sealed.
func (r *Keyring) With(other *Keyring) *Keyring {
	out := &Keyring{ids: append([]string(nil), r.ids...), aeads: make(map[string]cipher.AEAD, len(r.ids)+len(other.ids))}
	for id, a := range r.aeads {
		out.aeads[id] = a
	}
	for _, id := range other.ids {
		if _, ok := out.aeads[id]; !ok {
			out.ids = append(out.ids, id)
			out.aeads[id] = other.aeads[id]
		}
	}
	return out
}

// Binary sealing, for a caller with a format of its own (the session
// cookie). A binary sealed value is
//
//	kid[4] || nonce[12] || ciphertext || tag[16]
//
// where kid is the raw form of the sealing key's id (KeyID's hex, decoded),
// so that Open picks its key at once instead of trying each. The caller's
// additional data binds the value to its use (a cookie's name and format);
// the kid is not in it, since a changed kid names another key, under which
// the tag does not verify.
const binaryKidSize = kidLen / 2

// BinaryOverhead is how many bytes SealBinary adds to a plaintext.
const BinaryOverhead = binaryKidSize + nonceSize + tagSize

// SealBinary appends to dst the binary sealed form of plaintext, bound to
// ad, under the newest key, and returns the extended slice.
func (r *Keyring) SealBinary(dst, plaintext, ad []byte) []byte {
	kid := r.ids[0]
	dst, _ = hex.AppendDecode(dst, []byte(kid)) // a kid is always 8 hex characters
	nonce := len(dst)
	dst = append(dst, make([]byte, nonceSize)...)
	rand.Read(dst[nonce:]) // never fails (crypto/rand, Go 1.24+)
	return r.aeads[kid].Seal(dst, dst[nonce:nonce+nonceSize], plaintext, ad)
}

// OpenBinary appends to dst the plaintext of a binary sealed value bound to
// ad and returns the extended slice. Errors: ErrUnknownKey when no key in
// the ring has the value's kid, ErrOpen when it is malformed, tampered with
// or bound to other additional data. sealed is not modified.
func (r *Keyring) OpenBinary(dst, sealed, ad []byte) ([]byte, error) {
	if len(sealed) < BinaryOverhead {
		return nil, fmt.Errorf("%w: malformed sealed value", ErrOpen)
	}
	var kid [kidLen]byte
	hex.Encode(kid[:], sealed[:binaryKidSize])
	aead := r.aeads[string(kid[:])]
	if aead == nil {
		return nil, fmt.Errorf("%w: the value was sealed with key %s, which is not among the keys given", ErrUnknownKey, kid[:])
	}
	body := sealed[binaryKidSize:]
	out, err := aead.Open(dst, body[:nonceSize], body[nonceSize:], ad)
	if err != nil {
		return nil, fmt.Errorf("%w: key %s: tampered with, or sealed for another use", ErrOpen, kid[:])
	}
	return out, nil
}
