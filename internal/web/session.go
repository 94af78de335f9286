package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
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
	ID            string // the session's random id (sessionIDSize bytes)
	Sub           string
	Email         string
	EmailVerified bool
	Name          string
	Picture       string
	HostedDomain  string
	SignedInAt    time.Time // the session's issue time, to the microsecond
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

// SessionStore is the server's record of ended sessions, so that a session
// can be ended before its cookie expires: by signing out, signing out
// everywhere, disconnecting, or one of Google's security events. Signing in
// writes nothing to it: the cookie is the session (sealed, with its own id,
// user and issue time). The file store (internal/store/file) and the
// PostgreSQL store implement it; both pass internal/store/sessiontest.
// Errors are *signin.Error values.
type SessionStore interface {
	// SessionEnds returns what ended sessions of sub: every session of
	// sub issued at or before validAfter is ended (zero: none was ended
	// so), and so is each single session whose key is in ended (only
	// those not yet expired need be listed).
	SessionEnds(ctx context.Context, sub string) (validAfter time.Time, ended []string, err error)
	// EndSession ends the one session of sub that key names (a hash of
	// its id: the store never sees a cookie's id), until expires, when
	// its cookie is refused anyway. Ending it twice is not an error.
	EndSession(ctx context.Context, sub, key string, expires time.Time) error
	// EndUserSessions ends every session of sub issued at or before at,
	// in one write however many there are. validAfter only moves
	// forward. The store may forget it after keepUntil, when every
	// session it ends has expired.
	EndUserSessions(ctx context.Context, sub string, at, keepUntil time.Time) error
}

// liveCheckTTL is how long a replica trusts what the SessionStore said of a
// user's ended sessions without asking it again: an ended session is
// refused by every replica within this time (at once by the replica that
// ended it), and a busy user costs the store one read per period rather
// than one per request, however many sessions they hold.
const liveCheckTTL = time.Second

// sessionStore is a gorilla sessions.Store of our own. The cookie is the
// session, sealed by cookieCodec: its random id, its user, the display
// claims and its issue time. The SessionStore holds only what was ended.
// Handlers reach sessions through gorilla's registry (Get), so a request
// decodes its cookie once however many times it asks.
type sessionStore struct {
	codec   *cookieCodec
	backend SessionStore
	ends    *endsCache
	options sessions.Options
	maxAge  time.Duration
	now     func() time.Time
	// floor is the latest time (Unix microseconds) at which this replica
	// ended every session of a user: a session it issues afterwards is
	// issued after it, even on a clock that did not move (a test's), or
	// it would be ended at birth.
	floor atomic.Int64
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
		ends:    newEndsCache(now),
		options: sessions.Options{
			Path:     "/",
			HttpOnly: true,
			Secure:   secure,
			SameSite: http.SameSiteLaxMode,
			// Sessions are written only at sign-in, so this is an
			// absolute lifetime; the codec checks the same one.
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
// or was ended. Only the SessionStore failing is an error.
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
	ended, err := s.isEnded(r.Context(), u)
	if err != nil || ended {
		return sess, err
	}
	sess.ID = u.ID
	sess.Values[sessionKey] = u
	sess.IsNew = false
	return sess, nil
}

// Save implements sessions.Store. A session whose MaxAge is negative is
// ended on the server and its cookie deleted; any other gets a fresh id and
// issue time when it has none, and its cookie is written. Nothing else is
// written on the server.
func (s *sessionStore) Save(r *http.Request, w http.ResponseWriter, sess *sessions.Session) error {
	if sess.Options != nil && sess.Options.MaxAge < 0 {
		if u, ok := sess.Values[sessionKey].(sessionUser); ok && sess.ID != "" && !sess.IsNew {
			if err := s.backend.EndSession(r.Context(), u.Sub, sessionKeyOf(u.ID), u.SignedInAt.Add(s.maxAge)); err != nil {
				return err
			}
			s.ends.changed(u.Sub)
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
		u.SignedInAt = s.issueTime()
	}
	u.ID = sess.ID
	sess.Values[sessionKey] = u
	v, err := s.codec.Encode(sess.Name(), sess.Values)
	if err != nil {
		return err
	}
	http.SetCookie(w, sessions.NewCookie(sess.Name(), v, sess.Options))
	return nil
}

// issueTime is a new session's issue time: now, in microseconds (what the
// cookie and the stores keep), after any time this replica ended sessions
// at.
func (s *sessionStore) issueTime() time.Time {
	t := s.now().UnixMicro()
	if f := s.floor.Load(); t <= f {
		t = f + 1
	}
	return time.UnixMicro(t)
}

// isEnded reports whether u's session was ended, asking the SessionStore
// unless this replica asked about u's user within liveCheckTTL.
func (s *sessionStore) isEnded(ctx context.Context, u sessionUser) (bool, error) {
	e, ok := s.ends.get(u.Sub)
	if !ok {
		gen := s.ends.generation()
		validAfter, ended, err := s.backend.SessionEnds(ctx, u.Sub)
		if err != nil {
			return false, err
		}
		e = newUserEnds(validAfter, ended)
		s.ends.put(u.Sub, e, gen)
	}
	return e.ends(u), nil
}

// endUser ends every session of sub, on every replica (within
// liveCheckTTL on the others), in one write.
func (s *sessionStore) endUser(ctx context.Context, sub string) error {
	at := s.now().UnixMicro()
	for {
		f := s.floor.Load()
		if at <= f || s.floor.CompareAndSwap(f, at) {
			break
		}
	}
	err := s.backend.EndUserSessions(ctx, sub, time.UnixMicro(at), time.UnixMicro(at).Add(s.maxAge))
	s.ends.changed(sub)
	return err
}

// newSessionID returns a random session id: 128 bits.
func newSessionID() string {
	b := make([]byte, sessionIDSize)
	_, _ = rand.Read(b) // never fails (Go 1.24 and later)
	return string(b)
}

// sessionIDSize is the size of a session id, in bytes.
const sessionIDSize = 16

// sessionKeyOf is what the SessionStore keeps of an ended session's id: its
// SHA-256, so that a copy of the store holds no cookie's id.
func sessionKeyOf(id string) string {
	h := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(h[:])
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

// clearCookie deletes the session cookie in the browser, and nothing on
// the server: for a session that endUser just ended with all of its user's.
func (s *sessionStore) clearCookie(w http.ResponseWriter) {
	opts := s.options
	opts.MaxAge = -1
	http.SetCookie(w, sessions.NewCookie(sessionCookie, "", &opts))
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
// small binary form:
//
//	version[1] || id[16] || issued (varint, Unix microseconds) ||
//	sub, email, name, picture, hd (each a uvarint length and its bytes) ||
//	flags[1]
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
// session id, version 2 a 256-bit id that named a session kept on the
// server; neither opens any more (the codec binds the format too).
const sessionFormat = 3

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
	if len(u.ID) != sessionIDSize {
		return nil, fmt.Errorf("session: id of %d bytes, want %d", len(u.ID), sessionIDSize)
	}
	strs := [...]string{u.Sub, u.Email, u.Name, u.Picture, u.HostedDomain}
	n := 1 + sessionIDSize + binary.MaxVarintLen64 + 1
	for _, s := range strs {
		n += binary.MaxVarintLen64 + len(s)
	}
	b := make([]byte, 0, n)
	b = append(b, sessionFormat)
	b = append(b, u.ID...)
	b = binary.AppendVarint(b, u.SignedInAt.UnixMicro())
	for _, s := range strs {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	var flags byte
	if u.EmailVerified {
		flags |= 1
	}
	b = append(b, flags)
	return b, nil
}

// Deserialize implements securecookie.Serializer. dst is a *sessionUser
// (sessionStore.New) or a session's *map[interface{}]interface{}.
func (c compactSerializer) Deserialize(src []byte, dst interface{}) error {
	u, err := decodeSessionUser(src)
	if err != nil {
		return err
	}
	return c.store(u, dst)
}

func (compactSerializer) store(u sessionUser, dst interface{}) error {
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
	if len(src) < 1+sessionIDSize || src[0] != sessionFormat {
		return sessionUser{}, errSessionFormat
	}
	// One string for the id and all fields: they are substrings of it,
	// so decoding costs one allocation however many fields there are.
	all := string(src[1:])
	id := all[:sessionIDSize]
	b := src[1:]
	off := sessionIDSize
	micros, n := binary.Varint(b[off:])
	if n <= 0 {
		return sessionUser{}, errSessionFormat
	}
	off += n
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
	if len(b)-off != 1 {
		return sessionUser{}, errSessionFormat
	}
	flags := b[off]
	return sessionUser{
		ID:            id,
		Sub:           strs[0],
		Email:         strs[1],
		Name:          strs[2],
		Picture:       strs[3],
		HostedDomain:  strs[4],
		EmailVerified: flags&1 != 0,
		SignedInAt:    time.UnixMicro(micros),
	}, nil
}
