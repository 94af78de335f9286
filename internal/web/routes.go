package web

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"example.com/signin"
)

// router registers every route of the server, in this one place.
//
// State-changing routes are POST only. All of them pass the cross-origin
// check in the middleware; those the pages call with fetch also require
// X-Requested-With (requireXHR); /tokensignin accepts either our page's XHR
// or a GIS redirect-mode form post with its double-submit cookie.
func (s *Server) router() http.Handler {
	r := mux.NewRouter()
	s.routes = r
	r.Use(labelRoute)

	// Pages.
	r.Handle("/", s.page(s.handleIndex)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/staticjs", s.page(s.handleStaticJS)).Methods(http.MethodGet, http.MethodHead)

	// Sign-in, offline access, sign-out, disconnect.
	r.Handle("/tokensignin", s.adapt(s.handleTokenSignin, tokenSigninFormat)).Methods(http.MethodPost)
	r.Handle("/connect", s.api(requireXHR(s.handleConnect))).Methods(http.MethodPost)
	r.Handle("/disconnect", s.api(requireXHR(s.handleDisconnect))).Methods(http.MethodPost)
	r.Handle("/signout", s.api(requireXHR(s.handleSignOut))).Methods(http.MethodPost)

	// JSON API: session or Authorization: Bearer <ID token>.
	r.Handle("/api/me", s.api(s.handleMe)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/api/profile", s.api(s.handleProfile)).Methods(http.MethodGet)

	// Google's Cross-Account Protection events: server to server, the
	// body a signed JWT (no cookies, nothing a browser could forge).
	if s.cfg.RISC != nil {
		r.Handle("/risc", s.api(s.handleRISC)).Methods(http.MethodPost)
	}

	r.Handle("/healthz", http.HandlerFunc(handleHealthz)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/readyz", http.HandlerFunc(s.handleReadyz)).Methods(http.MethodGet, http.MethodHead)
	r.PathPrefix("/static/").Handler(s.page(s.handleStatic)).Methods(http.MethodGet, http.MethodHead)

	r.NotFoundHandler = s.adapt(func(http.ResponseWriter, *http.Request) error {
		return signin.Errorf(signin.ENOTFOUND, "not_found", "There is nothing here.")
	}, pathFormat)
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "This method is not allowed here.", pathFormat(r))
	})
	return r
}

// tokenSigninFormat renders /tokensignin errors as JSON for our page's XHR
// and as an HTML page in GIS redirect mode, where the browser shows the
// answer to the user.
func tokenSigninFormat(r *http.Request) errorFormat {
	if isGISRedirectPost(r) {
		return formatHTML
	}
	return formatJSON
}

// pathFormat renders errors as JSON under the API paths and as HTML
// elsewhere.
func pathFormat(r *http.Request) errorFormat {
	switch {
	case strings.HasPrefix(r.URL.Path, "/api/"),
		r.URL.Path == "/tokensignin" && !isGISRedirectPost(r),
		r.URL.Path == "/connect", r.URL.Path == "/disconnect", r.URL.Path == "/signout", r.URL.Path == "/risc":
		return formatJSON
	}
	return formatHTML
}

// handleHealthz is the liveness check: the process serves requests.
func handleHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// readyTimeout bounds /readyz's storage check: a load balancer asking
// must get an answer, and a store this slow is not ready.
const readyTimeout = 2 * time.Second

// handleReadyz is the readiness check: 200 when the templates are loaded
// and the storage answers (Config.Ready), 503 otherwise. Google is not
// asked: an outage there must not take every replica out of service.
// The answer names what failed, never why (that is logged).
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	notReady := func(what string, err error) {
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "not ready", slog.String("check", what), slog.String("error", err.Error()))
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(what + ": not ready\n"))
	}
	if _, err := s.currentAssets(); err != nil {
		notReady("templates", err)
		return
	}
	if s.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := s.cfg.Ready(ctx); err != nil {
			notReady("store", err)
			return
		}
	}
	_, _ = w.Write([]byte("ok\n"))
}
