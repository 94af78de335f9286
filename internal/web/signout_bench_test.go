package web

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"example.com/signin/internal/grant/granttest"
	"example.com/signin/internal/pgtest"
	"example.com/signin/internal/store/file"
	"example.com/signin/internal/store/postgres"
)

// BenchmarkSignOutEverywhere measures POST /signout with everywhere=1 through
// the server's whole chain, in-process, for a user of whom n sessions were
// issued (n = 10k and 1M, each a sign-in's cookie, sealed by the server as
// /tokensignin does), on the file store and on PostgreSQL (skipped without
// a database). Issuing a session writes nothing to the store, so the
// number of sessions cannot show in the time: ending them all is one write
// per user. (Before issue 19 it read the whole sessions directory: 1.4 to
// 1.8 s at 159,000 sessions.) Each iteration signs out everywhere with one
// of the user's cookies; the store's file count (file store) is checked to
// be unchanged by the sign-ins.
func BenchmarkSignOutEverywhere(b *testing.B) {
	for _, backend := range []string{"file", "postgres"} {
		for _, n := range []int{10_000, 1_000_000} {
			b.Run(fmt.Sprintf("%s/sessions=%d", backend, n), func(b *testing.B) {
				var sessions SessionStore
				dir := b.TempDir()
				if backend == "file" {
					st, err := file.Open(file.Config{Dir: dir})
					if err != nil {
						b.Fatal(err)
					}
					sessions = st
				} else {
					pg, err := postgres.Open(b.Context(), postgres.Config{URL: pgtest.URL(b)})
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(pg.Close)
					sessions = pg
				}
				cfg := benchConfig(b, &granttest.Memory{})
				cfg.Sessions = sessions
				s := benchNewServer(b, cfg)
				_, u := benchSession(b)
				before := countFiles(b, dir)
				// n sign-ins, as /tokensignin makes them; the last
				// cookie is the one that signs out.
				var cookie string
				for range n {
					cookie = s.sessions.benchStart(b, u)
				}
				if after := countFiles(b, dir); after != before {
					b.Fatalf("%d sign-ins made %d files in the store", n, after-before)
				}
				h := s.Handler()
				form := url.Values{"everywhere": {"1"}}.Encode()
				w := newBenchWriter()
				b.ReportAllocs()
				for b.Loop() {
					r := httptest.NewRequest(http.MethodPost, "/signout", strings.NewReader(form))
					r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					r.Header.Set(headerRequestedWith, "XMLHttpRequest")
					r.Header.Set("Sec-Fetch-Site", "same-origin")
					r.Header.Set("Cookie", cookie)
					w.reset()
					h.ServeHTTP(w, r)
					if w.status != http.StatusOK {
						b.Fatalf("POST /signout everywhere: %d", w.status)
					}
					// The cookie is ended now: sign in again, untimed.
					b.StopTimer()
					cookie = s.sessions.benchStart(b, u)
					b.StartTimer()
				}
			})
		}
	}
}

func countFiles(b *testing.B, dir string) int {
	b.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// benchStart signs u in as /tokensignin does and returns the cookie.
func (s *sessionStore) benchStart(b *testing.B, u sessionUser) string {
	rec := httptest.NewRecorder()
	if err := s.start(rec, httptest.NewRequest(http.MethodPost, "/tokensignin", nil), u); err != nil {
		b.Fatal(err)
	}
	return rec.Result().Cookies()[0].String()
}
