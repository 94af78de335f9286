package web

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/sessions"
)

// The session benchmarks measure the cookie codec both ways, ours (the
// compact value sealed with AES-256-GCM by cookieCodec, inside gorilla's
// CookieStore) and, as the baseline a Go developer would otherwise get,
// gorilla/sessions' CookieStore as its README sets it up: securecookie
// (HMAC-SHA-256, then AES-256-CTR) with its default gob serializer, from
// the same key pairs. The gob session holds the five strings of the session
// (sub, email, name, picture, hd) as five values; ours carries
// email_verified and the sign-in time on top, so the comparison, if
// anything, favours gob. Each encode benchmark reports the cookie's size as
// cookie-bytes.

func benchSession(b *testing.B) (*sessionStore, sessionUser) {
	b.Helper()
	m, err := newSessionStore(newTestKeys(b), newMemSessions(), 7*24*time.Hour, true, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	u := sessionUser{
		Sub: "110169484474386276334", Email: "ada.lovelace@example.com", EmailVerified: true,
		Name: "Ada Lovelace", Picture: "https://lh3.googleusercontent.com/a/ACg8ocJ-some-long-picture-id=s96-c",
		HostedDomain: "example.com", SignedInAt: time.Now(),
	}
	return m, u
}

// BenchmarkSessionEncode measures writing a session cookie at sign-in.
func BenchmarkSessionEncode(b *testing.B) {
	m, u := benchSession(b)
	r := httptest.NewRequest(http.MethodPost, "/tokensignin", nil)
	var w *httptest.ResponseRecorder
	b.ReportAllocs()
	for b.Loop() {
		w = httptest.NewRecorder()
		if err := m.start(w, r, u); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(w.Result().Cookies()[0].Value)), "cookie-bytes")
}

// BenchmarkSessionDecode measures reading the session on every request:
// cookie parsing, base64, GCM open (authentication and decryption), the
// max-age check, deserialisation and the live check (answered by the
// replica's cache within liveCheckTTL), through gorilla's registry as a
// handler does, on a fresh request each time.
func BenchmarkSessionDecode(b *testing.B) {
	m, u := benchSession(b)
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if err := m.start(w, r, u); err != nil {
		b.Fatal(err)
	}
	r.Header.Set("Cookie", w.Result().Cookies()[0].String())
	ctx := r.Context()
	b.ReportAllocs()
	for b.Loop() {
		got, ok, err := m.load(r.WithContext(ctx))
		if err != nil || !ok || got.Sub != u.Sub {
			b.Fatal("session did not decode")
		}
	}
}

// benchGobStore is gorilla/sessions as its README sets it up, with the
// same keys, options and lifetime as ours: securecookie and gob.
func benchGobStore(b *testing.B) (*sessions.CookieStore, sessionUser) {
	b.Helper()
	_, u := benchSession(b)
	cs := sessions.NewCookieStore(newTestKeys(b)...)
	cs.Options = &sessions.Options{Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode}
	cs.MaxAge(int((7 * 24 * time.Hour) / time.Second))
	return cs, u
}

func saveGob(cs *sessions.CookieStore, w http.ResponseWriter, r *http.Request, u sessionUser) error {
	s := sessions.NewSession(cs, sessionCookie)
	opts := *cs.Options
	s.Options = &opts
	s.Values["sub"] = u.Sub
	s.Values["email"] = u.Email
	s.Values["name"] = u.Name
	s.Values["picture"] = u.Picture
	s.Values["hd"] = u.HostedDomain
	return cs.Save(r, w, s)
}

// BenchmarkSessionEncodeGob is BenchmarkSessionEncode with gorilla's
// default codec (securecookie) and serializer (gob).
func BenchmarkSessionEncodeGob(b *testing.B) {
	cs, u := benchGobStore(b)
	r := httptest.NewRequest(http.MethodPost, "/tokensignin", nil)
	var w *httptest.ResponseRecorder
	b.ReportAllocs()
	for b.Loop() {
		w = httptest.NewRecorder()
		if err := saveGob(cs, w, r, u); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(w.Result().Cookies()[0].Value)), "cookie-bytes")
}

// BenchmarkSessionDecodeGob is BenchmarkSessionDecode with gorilla's
// default codec and serializer, read the way its README shows (store.New, which
// Get calls once per request).
func BenchmarkSessionDecodeGob(b *testing.B) {
	cs, u := benchGobStore(b)
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if err := saveGob(cs, w, r, u); err != nil {
		b.Fatal(err)
	}
	r.Header.Set("Cookie", w.Result().Cookies()[0].String())
	b.ReportAllocs()
	for b.Loop() {
		s, err := cs.New(r, sessionCookie)
		if err != nil || s.IsNew || s.Values["sub"] != u.Sub {
			b.Fatalf("session did not decode: %v", err)
		}
	}
}
