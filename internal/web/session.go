package web

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"example.com/signin/internal/auth"
)

// sessionCookie is the name of the session cookie.
const sessionCookie = "signin"

// sessionKey is the one key the session's Values map holds.
const sessionKey = "u"

// sessionUser is everything a session holds: who signed in, a few claims for
// the page, and when. Never tokens: the cookie is only signed and encrypted,
// and a token in it would outlive a revocation.
type sessionUser struct {
	Sub           string
	Email         string
	EmailVerified bool
	Name          string
	Picture       string
	HostedDomain  string
	SignedInAt    time.Time
}

// Bounds on the display claims kept in the session, so that the cookie
// stays well under browsers' 4 KiB limit (and securecookie's) whatever an
// account's name or picture URL is. Sub and email are bounded by Google.
const (
	maxSessionName    = 256
	maxSessionPicture = 1024
)

func userFromClaims(c *auth.Claims, now time.Time) sessionUser {
	picture := c.Picture
	if len(picture) > maxSessionPicture {
		picture = "" // a cut URL is useless: show the initial instead
	}
	return sessionUser{
		Sub:           c.Sub,
		Email:         c.Email,
		EmailVerified: c.EmailVerified,
		Name:          truncateUTF8(c.Name, maxSessionName),
		Picture:       picture,
		HostedDomain:  c.HostedDomain,
		SignedInAt:    now,
	}
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// sessionManager reads and writes the session cookie with a gorilla
// CookieStore whose one codec is ours (cookieCodec: AES-256-GCM,
// timestamped, keys rotated newest first).
type sessionManager struct {
	store *sessions.CookieStore
	codec *cookieCodec // the store's only codec
}

func newSessionManager(keys [][]byte, maxAge time.Duration, secure bool, now func() time.Time) (*sessionManager, error) {
	if len(keys) == 0 {
		return nil, errors.New("session keys are required (Config.SessionKeys)")
	}
	for i, k := range keys {
		if i%2 == 0 && len(k) != 32 && len(k) != 64 {
			return nil, fmt.Errorf("session key %d: authentication key must be 32 or 64 bytes, got %d", i, len(k))
		}
		if i%2 == 1 && k != nil && len(k) != 16 && len(k) != 24 && len(k) != 32 {
			return nil, fmt.Errorf("session key %d: encryption key must be 16, 24 or 32 bytes, got %d", i, len(k))
		}
	}
	codec, err := newCookieCodec(keys, maxAge, now)
	if err != nil {
		return nil, err
	}
	cs := &sessions.CookieStore{
		Codecs: []securecookie.Codec{codec},
		Options: &sessions.Options{
			Path:     "/",
			HttpOnly: true,
			Secure:   secure,
			SameSite: http.SameSiteLaxMode,
		},
	}
	// MaxAge sets the cookie's Max-Age; the codec checks the same lifetime
	// against the issue time sealed in the value, so a cookie replayed
	// after it expired is refused too. Sessions are written only at
	// sign-in, so this is an absolute lifetime.
	cs.MaxAge(int(maxAge / time.Second))
	return &sessionManager{store: cs, codec: codec}, nil
}

// load returns the signed-in user, or ok false when the request has no
// valid session. A tampered, truncated, expired or old-key cookie is
// simply no session: it is not an error the user can do anything about.
//
// It decodes with the CookieStore's codec straight into a sessionUser
// rather than through CookieStore.New, which would build a Session and its
// map on every request only for us to take the one value out.
func (m *sessionManager) load(r *http.Request) (u sessionUser, ok bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return sessionUser{}, false
	}
	if err := m.codec.Decode(sessionCookie, c.Value, &u); err != nil || u.Sub == "" {
		return sessionUser{}, false
	}
	return u, true
}

// start writes a fresh session for u: nothing of an earlier session (another
// user's, or an attacker-planted one) survives a sign-in.
func (m *sessionManager) start(w http.ResponseWriter, r *http.Request, u sessionUser) error {
	sess := sessions.NewSession(m.store, sessionCookie)
	opts := *m.store.Options
	sess.Options = &opts
	sess.Values[sessionKey] = u
	return m.store.Save(r, w, sess)
}

// end deletes the session cookie.
func (m *sessionManager) end(w http.ResponseWriter, r *http.Request) error {
	sess := sessions.NewSession(m.store, sessionCookie)
	opts := *m.store.Options
	opts.MaxAge = -1
	sess.Options = &opts
	return m.store.Save(r, w, sess)
}

// compactSerializer encodes the session's one value, a sessionUser, in a
// small binary form: a version byte, then each string as a uvarint length
// and its bytes, a flags byte and the sign-in time in Unix seconds.
//
// It is hand-written because gorilla's serializers do not fit: the default
// gob encoder sends type descriptions with every cookie (large, and slow to
// decode on every request), and securecookie.JSONEncoder cannot encode the
// map[interface{}]interface{} that sessions.Session keeps its values in.
// cookieCodec uses it (its methods keep securecookie.Serializer's shape).
// The input is authenticated by the codec's AEAD before it reaches
// Deserialize; it is still parsed defensively.
type compactSerializer struct{}

const sessionFormatV1 = 1

var errSessionFormat = errors.New("session: malformed value")

// Serialize implements securecookie.Serializer.
func (compactSerializer) Serialize(src interface{}) ([]byte, error) {
	values, ok := src.(map[interface{}]interface{})
	if !ok {
		return nil, fmt.Errorf("session: cannot serialize %T", src)
	}
	var u sessionUser
	if v, found := values[sessionKey]; found {
		if u, ok = v.(sessionUser); !ok {
			return nil, fmt.Errorf("session: cannot serialize value of type %T", v)
		}
	}
	strs := [...]string{u.Sub, u.Email, u.Name, u.Picture, u.HostedDomain}
	n := 1 + 1 + binary.MaxVarintLen64
	for _, s := range strs {
		n += binary.MaxVarintLen64 + len(s)
	}
	b := make([]byte, 0, n)
	b = append(b, sessionFormatV1)
	for _, s := range strs {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	var flags byte
	if u.EmailVerified {
		flags |= 1
	}
	b = append(b, flags)
	b = binary.AppendVarint(b, u.SignedInAt.Unix())
	return b, nil
}

// Deserialize implements securecookie.Serializer. dst is a *sessionUser
// (sessionManager.load) or the session's *map[interface{}]interface{}
// (gorilla's CookieStore.New).
func (compactSerializer) Deserialize(src []byte, dst interface{}) error {
	u, err := decodeSessionUser(src)
	if err != nil {
		return err
	}
	switch d := dst.(type) {
	case *sessionUser:
		*d = u
	case *map[interface{}]interface{}:
		if *d == nil {
			*d = make(map[interface{}]interface{}, 1)
		}
		(*d)[sessionKey] = u
	default:
		return fmt.Errorf("session: cannot deserialize into %T", dst)
	}
	return nil
}

func decodeSessionUser(src []byte) (sessionUser, error) {
	if len(src) == 0 || src[0] != sessionFormatV1 {
		return sessionUser{}, errSessionFormat
	}
	// One string for all fields: the fields are substrings of it, so
	// decoding costs one allocation however many fields there are.
	all := string(src[1:])
	b := src[1:]
	off := 0
	var strs [5]string
	for i := range strs {
		l, n := binary.Uvarint(b[off:])
		if n <= 0 || l > uint64(len(b)-off-n) {
			return sessionUser{}, errSessionFormat
		}
		start := off + n
		strs[i] = all[start : start+int(l)]
		off = start + int(l)
	}
	rest := b[off:]
	if len(rest) < 2 {
		return sessionUser{}, errSessionFormat
	}
	flags := rest[0]
	secs, n := binary.Varint(rest[1:])
	if n <= 0 || 1+n != len(rest) {
		return sessionUser{}, errSessionFormat
	}
	return sessionUser{
		Sub:           strs[0],
		Email:         strs[1],
		Name:          strs[2],
		Picture:       strs[3],
		HostedDomain:  strs[4],
		EmailVerified: flags&1 != 0,
		SignedInAt:    time.Unix(secs, 0),
	}, nil
}
