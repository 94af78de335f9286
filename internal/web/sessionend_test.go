package web

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"example.com/signin/internal/emulator"
	"example.com/signin/internal/store/file"
)

// TestCopiedCookieRefusedAfterEachEnd: whichever way a user's session is
// ended, a copy of its cookie taken before (a stolen one) is refused after,
// and another user's session, and what the way leaves alone, keep working.
// The server and the store are real (file store); "admin" is what
// signin-admin sessions end does: another process, on the same directory.
func TestCopiedCookieRefusedAfterEachEnd(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(t *testing.T, re *realEnv, b *browser, sub string)
		// otherSurvives: the user's session on another device is kept
		// (a plain sign-out ends only this one).
		otherSurvives bool
	}{
		{"signout", func(t *testing.T, re *realEnv, b *browser, sub string) {
			mustStatus(t, b.xhr("/signout", nil), http.StatusOK)
		}, true},
		{"signout everywhere", func(t *testing.T, re *realEnv, b *browser, sub string) {
			mustStatus(t, b.xhr("/signout", url.Values{"everywhere": {"1"}}), http.StatusOK)
		}, false},
		{"disconnect", func(t *testing.T, re *realEnv, b *browser, sub string) {
			mustStatus(t, b.xhr("/disconnect", nil), http.StatusOK)
		}, false},
		{"risc sessions-revoked", func(t *testing.T, re *realEnv, b *browser, sub string) {
			re.send(t, emulator.RISCEvent{Type: "sessions-revoked", Sub: sub})
		}, false},
		{"admin sessions end", func(t *testing.T, re *realEnv, b *browser, sub string) {
			admin, err := file.Open(file.Config{Dir: re.dir})
			if err != nil {
				t.Fatal(err)
			}
			defer admin.Close()
			at := time.UnixMicro(time.Now().UnixMicro())
			if err := admin.EndUserSessions(t.Context(), sub, at, at.Add(400*24*time.Hour)); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			re := riscEnv(t)
			b, sub := connected(t, re, "victim@example.com")
			r := b.xhr("/tokensignin", url.Values{"credential": {re.idToken(sub)}})
			mustStatus(t, r, http.StatusOK)
			copied := http.Header{"Cookie": {sessionCookie + "=" + r.cookie(sessionCookie).Value}}
			other := re.browser() // the same user, another device
			mustStatus(t, other.xhr("/tokensignin", url.Values{"credential": {re.idToken(sub)}}), http.StatusOK)
			bystander, _ := connected(t, re, "bystander@example.com")
			me := func(h http.Header) int { return re.browser().do(http.MethodGet, "/api/me", nil, h.Clone()).status }
			if me(copied) != http.StatusOK || !signedIn(t, other) || !signedIn(t, bystander) {
				t.Fatal("a session does not work before the end")
			}

			tc.end(t, re, b, sub)

			// This server refuses at once what it ended; what another
			// process ended, within liveCheckTTL: poll for it, with a
			// generous bound.
			if tc.name == "admin sessions end" {
				deadline := time.Now().Add(30 * time.Second)
				for me(copied) != http.StatusUnauthorized {
					if time.Now().After(deadline) {
						t.Fatal("the copied cookie still works")
					}
					time.Sleep(20 * time.Millisecond)
				}
			} else if got := me(copied); got != http.StatusUnauthorized {
				t.Fatalf("the copied cookie after the end: %d, want 401", got)
			}
			if got := signedIn(t, other); got != tc.otherSurvives {
				t.Errorf("the user's other device signed in: %v, want %v", got, tc.otherSurvives)
			}
			if !signedIn(t, bystander) {
				t.Error("the bystander was signed out")
			}
			// The user can sign in again afterwards.
			again := re.browser()
			mustStatus(t, again.xhr("/tokensignin", url.Values{"credential": {re.idToken(sub)}}), http.StatusOK)
			if !signedIn(t, again) {
				t.Error("a new sign-in after the end does not work")
			}
		})
	}
}
