package web

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/gorilla/sessions"

	"example.com/signin"
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
	ID            string // the session's random id, live in the SessionStore
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

// SessionStore is the server's record of live sessions, so that a session
// can be ended before its cookie expires: by signing out, signing out
// everywhere, disconnecting, or one of Google's security events. The file
// store (internal/store/file) and the PostgreSQL store implement it. Errors
// are *signin.Error values; a session that was ended, has expired or never
// existed is ENOTFOUND.
type SessionStore interface {
	// CreateSession records session id of sub, live until expires. data
	// is kept with it, opaque (this server stores none: the cookie
	// carries the display claims, sealed).
	CreateSession(ctx context.Context, id, sub string, data []byte, expires time.Time) error
	// LoadSession returns a live session.
	LoadSession(ctx context.Context, id string) (sub string, data []byte, expires time.Time, err error)
	// DeleteSession ends one session. Ending one that is gone is not an
	// error.
	DeleteSession(ctx context.Context, id string) error
	// DeleteUserSessions ends every session of sub and says how many.
	DeleteUserSessions(ctx context.Context, sub string) (int, error)
}

// liveCheckTTL is how long a replica trusts that a session it saw live is
// still live without asking the SessionStore again: an ended session is
// refused by every replica within this time (at once by the replica that
// ended it), and a busy session costs the store one read per period rather
// than one per request.
const liveCheckTTL = time.Second

// sessionStore is a gorilla sessions.Store of our own. The cookie holds the
// session, sealed by cookieCodec (AES-256-GCM, timestamped, keys rotated
// newest first): its random id and the display claims. The SessionStore
// holds which ids are live. Handlers reach sessions through gorilla's
// registry (Get), so a request decodes its cookie once however many times
// it asks.
type sessionStore struct {
	codec   *cookieCodec
	backend SessionStore
	live    *liveCache
	options sessions.Options
	maxAge  time.Duration
	now     func() time.Time
}

var _ sessions.Store = (*sessionStore)(nil)

func newSessionStore(keys [][]byte, backend SessionStore, maxAge time.Duration, secure bool, now func() time.Time) (*sessionStore, error) {
	if backend == nil {
		return nil, errors.New("a session store is required (Config.Sessions)")
	}
	codec, err := newCookieCodec(keys, maxAge, now)
	if err != nil {
		return nil, err
	}
	return &sessionStore{
		codec:   codec,
		backend: backend,
		live:    newLiveCache(now),
		options: sessions.Options{
			Path:     "/",
			HttpOnly: true,
			Secure:   secure,
			SameSite: http.SameSiteLaxMode,
			// Sessions are written only at sign-in, so this is an
			// absolute lifetime; the codec and the SessionStore check
			// the same one.
			MaxAge: int(maxAge / time.Second),
		},
		maxAge: maxAge,
		now:    now,
	}, nil
}

// Get implements sessions.Store through gorilla's per-request registry.
func (s *sessionStore) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(s, name)
}

// New implements sessions.Store: the request's session, or a new empty one
// when its cookie is missing, tampered, expired, sealed by a dropped key,
// or names a session that has been ended. Only the SessionStore failing is
// an error.
func (s *sessionStore) New(r *http.Request, name string) (*sessions.Session, error) {
	sess := sessions.NewSession(s, name)
	opts := s.options
	sess.Options = &opts
	sess.IsNew = true
	c, err := r.Cookie(name)
	if err != nil {
		return sess, nil
	}
	var u sessionUser
	if err := s.codec.Decode(name, c.Value, &u); err != nil || u.Sub == "" || u.ID == "" {
		return sess, nil
	}
	live, err := s.isLive(r.Context(), u)
	if err != nil || !live {
		return sess, err
	}
	sess.ID = u.ID
	sess.Values[sessionKey] = u
	sess.IsNew = false
	return sess, nil
}

// Save implements sessions.Store. A session whose MaxAge is negative is
// ended on the server and its cookie deleted; any other is recorded live
// (with a fresh id when it has none) and its cookie written.
func (s *sessionStore) Save(r *http.Request, w http.ResponseWriter, sess *sessions.Session) error {
	ctx := r.Context()
	if sess.Options != nil && sess.Options.MaxAge < 0 {
		if sess.ID != "" {
			if err := s.backend.DeleteSession(ctx, sess.ID); err != nil {
				return err
			}
			s.live.forget(sess.ID)
		}
		http.SetCookie(w, sessions.NewCookie(sess.Name(), "", sess.Options))
		return nil
	}
	u, ok := sess.Values[sessionKey].(sessionUser)
	if !ok || u.Sub == "" {
		return errors.New("session: no user to save")
	}
	if sess.ID == "" {
		sess.ID = newSessionID()
	}
	u.ID = sess.ID
	sess.Values[sessionKey] = u
	if err := s.backend.CreateSession(ctx, sess.ID, u.Sub, nil, s.now().Add(s.maxAge)); err != nil {
		return err
	}
	v, err := s.codec.Encode(sess.Name(), sess.Values)
	if err != nil {
		return err
	}
	http.SetCookie(w, sessions.NewCookie(sess.Name(), v, sess.Options))
	s.live.put(sess.ID, u.Sub)
	return nil
}

// isLive asks the SessionStore whether u's session is live, unless this
// replica saw it live within liveCheckTTL.
func (s *sessionStore) isLive(ctx context.Context, u sessionUser) (bool, error) {
	if s.live.fresh(u.ID, u.Sub) {
		return true, nil
	}
	sub, _, _, err := s.backend.LoadSession(ctx, u.ID)
	switch {
	case signin.ErrorKind(err) == signin.ENOTFOUND:
		s.live.forget(u.ID)
		return false, nil
	case err != nil:
		return false, err
	case sub != u.Sub: // not ours: never trust a cookie over the store
		return false, nil
	}
	s.live.put(u.ID, u.Sub)
	return true, nil
}

// endUser ends every session of sub, on every replica (within
// liveCheckTTL on the others).
func (s *sessionStore) endUser(ctx context.Context, sub string) (int, error) {
	n, err := s.backend.DeleteUserSessions(ctx, sub)
	s.live.forgetSub(sub)
	return n, err
}

// newSessionID returns a random session id: 256 bits, base64url.
func newSessionID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (Go 1.24 and later)
	return base64.RawURLEncoding.EncodeToString(b)
}

// load returns the signed-in user of the request, ok false when it has no
// live session; an error only when the SessionStore fails.
func (s *sessionStore) load(r *http.Request) (u sessionUser, ok bool, err error) {
	sess, err := s.Get(r, sessionCookie)
	if err != nil {
		return sessionUser{}, false, sessionStoreError(err)
	}
	u, ok = sess.Values[sessionKey].(sessionUser)
	return u, ok, nil
}

// start writes a fresh session for u: nothing of an earlier session (another
// user's, or an attacker-planted one) survives a sign-in.
func (s *sessionStore) start(w http.ResponseWriter, r *http.Request, u sessionUser) error {
	sess := sessions.NewSession(s, sessionCookie)
	opts := s.options
	sess.Options = &opts
	sess.Values[sessionKey] = u
	if err := s.Save(r, w, sess); err != nil {
		return sessionStoreError(err)
	}
	return nil
}

// end ends the request's session, on the server and in the browser.
func (s *sessionStore) end(w http.ResponseWriter, r *http.Request) error {
	sess, err := s.Get(r, sessionCookie)
	if err != nil {
		return sessionStoreError(err)
	}
	sess.Options.MaxAge = -1
	if err := s.Save(r, w, sess); err != nil {
		return sessionStoreError(err)
	}
	return nil
}

// sessionStoreError keeps the SessionStore's own *signin.Error (a database
// outage is EUNAVAILABLE, say) and makes anything else internal.
func sessionStoreError(err error) error {
	var se *signin.Error
	if errors.As(err, &se) {
		return err
	}
	return signin.Wrap(err, signin.EINTERNAL, "", "internal error")
}

// compactSerializer encodes the session's one value, a sessionUser, in a
// small binary form: a version byte, then each string (session id first) as
// a uvarint length and its bytes, a flags byte and the sign-in time in Unix
// seconds.
//
// It is hand-written because gorilla's serializers do not fit: the default
// gob encoder sends type descriptions with every cookie (large, and slow to
// decode on every request), and securecookie.JSONEncoder cannot encode the
// map[interface{}]interface{} that sessions.Session keeps its values in.
// cookieCodec uses it (its methods keep securecookie.Serializer's shape).
// The input is authenticated by the codec's AEAD before it reaches
// Deserialize; it is still parsed defensively.
type compactSerializer struct{}

// sessionFormat is the version byte of the compact form. Version 1 had no
// session id; its cookies name no live session and are refused.
const sessionFormat = 2

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
	strs := [...]string{u.ID, u.Sub, u.Email, u.Name, u.Picture, u.HostedDomain}
	n := 1 + 1 + binary.MaxVarintLen64
	for _, s := range strs {
		n += binary.MaxVarintLen64 + len(s)
	}
	b := make([]byte, 0, n)
	b = append(b, sessionFormat)
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
// (sessionStore.New) or a session's *map[interface{}]interface{}.
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
	if len(src) == 0 || src[0] != sessionFormat {
		return sessionUser{}, errSessionFormat
	}
	// One string for all fields: the fields are substrings of it, so
	// decoding costs one allocation however many fields there are.
	all := string(src[1:])
	b := src[1:]
	off := 0
	var strs [6]string
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
		ID:            strs[0],
		Sub:           strs[1],
		Email:         strs[2],
		Name:          strs[3],
		Picture:       strs[4],
		HostedDomain:  strs[5],
		EmailVerified: flags&1 != 0,
		SignedInAt:    time.Unix(secs, 0),
	}, nil
}
