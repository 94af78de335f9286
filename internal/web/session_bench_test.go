package web

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func benchSession(b *testing.B) (*sessionManager, sessionUser) {
	b.Helper()
	m, err := newSessionManager(newTestKeys(b), 7*24*time.Hour, true)
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
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		if err := m.start(w, r, u); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSessionDecode measures reading the session on every request:
// cookie parsing, HMAC check, decryption and deserialisation.
func BenchmarkSessionDecode(b *testing.B) {
	m, u := benchSession(b)
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if err := m.start(w, r, u); err != nil {
		b.Fatal(err)
	}
	r.Header.Set("Cookie", w.Result().Cookies()[0].String())
	b.ReportAllocs()
	for b.Loop() {
		got, ok := m.load(r)
		if !ok || got.Sub != u.Sub {
			b.Fatal("session did not decode")
		}
	}
}
