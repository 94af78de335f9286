// Package signinload compares signin's POST /tokensignin, under load over
// loopback HTTP, with the server a Go developer writes by hand from
// Google's "Authenticate with a backend server" guide (Handwritten): the
// baseline of issue 19. Both get the same fresh ID tokens, minted by the
// emulator, each token seen once by each server.
package signinload

import (
	"net/http"

	"github.com/gorilla/sessions"
	"google.golang.org/api/idtoken"
)

// Handwritten is the baseline server: net/http, an idtoken.Validator (its
// certs client pointed at the emulator by the caller), a gorilla/sessions
// CookieStore, the same X-Requested-With check as signin, and 200 with the
// user's sub. Its session is a stateless cookie: it cannot be revoked.
func Handwritten(v *idtoken.Validator, clientID string, keyPairs ...[]byte) http.Handler {
	store := sessions.NewCookieStore(keyPairs...)
	store.Options = &sessions.Options{Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: 7 * 24 * 3600}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /tokensignin", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Requested-With") == "" {
			http.Error(w, "missing X-Requested-With", http.StatusForbidden)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		payload, err := v.Validate(r.Context(), r.PostFormValue("credential"), clientID)
		if err != nil {
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		sess, _ := store.New(r, "session")
		sess.Values["sub"] = payload.Subject
		if email, ok := payload.Claims["email"].(string); ok {
			sess.Values["email"] = email
		}
		if err := sess.Save(r, w); err != nil {
			http.Error(w, "session", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(payload.Subject))
	})
	return mux
}
