package web

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"example.com/signin"
	"example.com/signin/internal/auth"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/metrics"
)

// userJSON is the user object of the API.
type userJSON struct {
	Sub           string `json:"sub"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	Name          string `json:"name"`
	Picture       string `json:"picture"`
	HostedDomain  string `json:"hd"`
}

// meJSON is the answer of /api/me, /tokensignin and /connect.
// GrantedScopes are the scopes the stored grant holds (Google's word);
// MissingScopes the configured offline scopes (-scopes) it does not hold.
// Both are arrays, empty rather than null.
type meJSON struct {
	User          userJSON `json:"user"`
	Offline       bool     `json:"offline"`
	OfflineStatus string   `json:"offline_status"`
	GrantedScopes []string `json:"granted_scopes"`
	MissingScopes []string `json:"missing_scopes"`
}

// writeMe answers what /api/me says of u, reading u's grant now.
func (s *Server) writeMe(w http.ResponseWriter, r *http.Request, u sessionUser) error {
	rec, status, err := s.cfg.Grants.Lookup(r.Context(), u.Sub)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.me(u, rec, status))
	return nil
}

// me is the API's answer about u, whose stored grant is rec (nil for none)
// with status.
func (s *Server) me(u sessionUser, rec *grant.Record, status grant.Offline) meJSON {
	m := newMeJSON(u, status)
	m.GrantedScopes, m.MissingScopes = s.scopesOf(rec, status)
	return m
}

// scopesOf says which scopes rec's grant holds and which of the configured
// offline scopes it lacks. A grant that is not active holds none.
func (s *Server) scopesOf(rec *grant.Record, status grant.Offline) (granted, missing []string) {
	if status != grant.OfflineActive {
		rec = nil
	}
	granted = rec.GrantedScopes()
	if granted == nil {
		granted = []string{}
	}
	missing = rec.MissingScopes(s.cfg.OfflineScopes)
	if missing == nil {
		missing = []string{}
	}
	return granted, missing
}

func newMeJSON(u sessionUser, status grant.Offline) meJSON {
	return meJSON{
		User: userJSON{
			Sub:           u.Sub,
			Email:         u.Email,
			EmailVerified: u.EmailVerified,
			Name:          u.Name,
			Picture:       u.Picture,
			HostedDomain:  u.HostedDomain,
		},
		Offline:       status == grant.OfflineActive,
		OfflineStatus: string(status),
	}
}

// verify verifies an ID token from a client. Anything that is not an
// *signin.Error from the verifier is still a refusal, never a sign-in.
func (s *Server) verify(ctx context.Context, raw string) (*auth.Claims, error) {
	c, err := s.cfg.Verifier.Verify(ctx, raw, "")
	if err != nil {
		var se *signin.Error
		if errors.As(err, &se) {
			return nil, err
		}
		return nil, signin.Wrap(err, signin.EUNAUTHORIZED, "invalid_token", "The ID token is not valid.")
	}
	if c == nil || c.Sub == "" {
		return nil, signin.Errorf(signin.EUNAUTHORIZED, "invalid_token", "The ID token is not valid.")
	}
	return c, nil
}

// identify returns the caller of a JSON API route: from an
// "Authorization: Bearer <Google ID token>" header when there is one (a
// mobile app's backend calls carry the ID token on every request, so it is
// verified through the verified-token cache), else from the session. A
// request with an Authorization header never falls back to the session.
func (s *Server) identify(r *http.Request) (u sessionUser, err error) {
	if h := r.Header.Get("Authorization"); h != "" {
		defer func() { s.cfg.Metrics.SignIn(metrics.SignInBearer, err) }()
		scheme, tok, ok := strings.Cut(h, " ")
		tok = strings.TrimSpace(tok)
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return sessionUser{}, signin.Errorf(signin.EUNAUTHORIZED, "invalid_token", "The Authorization header must be \"Bearer\" and a Google ID token.")
		}
		c, err := s.cfg.Verifier.VerifyCached(r.Context(), tok)
		if err != nil || c == nil || c.Sub == "" {
			if signin.ErrorKind(err) == signin.EUPSTREAM {
				return sessionUser{}, err
			}
			return sessionUser{}, signin.Wrap(err, signin.EUNAUTHORIZED, "invalid_token", "The ID token is not valid.")
		}
		return userFromClaims(c, s.cfg.Now()), nil
	}
	u, ok, err := s.sessions.load(r)
	if err != nil {
		return sessionUser{}, err
	}
	if !ok {
		return sessionUser{}, errSignedOut()
	}
	return u, nil
}

// Audit events: one info line each, message "audit", with the event, the
// user's sub and what else tells what happened; never a token.
const (
	auditSignIn        = "sign_in"                // method: button, redirect or connect
	auditOfflineAccess = "offline_access_granted" // refresh_token: new or kept
	auditDisconnect    = "disconnect"             // revoked: whether Google was asked to revoke
	auditSessionsEnded = "sessions_ended"         // cause
)

// audit logs an audit event about sub.
func (s *Server) audit(ctx context.Context, event, sub string, attrs ...slog.Attr) {
	s.log.LogAttrs(ctx, slog.LevelInfo, "audit", append([]slog.Attr{
		slog.String("event", event), slog.String("sub", sub), slog.String("request_id", requestID(ctx)),
	}, attrs...)...)
}

func errSignedOut() error {
	return signin.Errorf(signin.EUNAUTHORIZED, "signed_out", "You are not signed in.")
}

// handleTokenSignin signs a user in with a Google ID token (form field
// "credential"): the basic "user verification" flow.
//
// From our page's GIS callback (an XHR with X-Requested-With) it answers 200
// with the user. From GIS redirect mode (Google posts the form to our
// login_uri) it requires GIS's double-submit cookie and answers 303 to /.
func (s *Server) handleTokenSignin(w http.ResponseWriter, r *http.Request) (err error) {
	redirect := isGISRedirectPost(r)
	method := metrics.SignInButton
	if redirect {
		method = metrics.SignInRedirect
	}
	defer func() { s.cfg.Metrics.SignIn(method, err) }()
	if err := parseForm(r); err != nil {
		return err
	}
	if redirect {
		// The cross-origin check let this request through on the promise
		// that this check is made (see Server.crossOrigin).
		if err := checkGCSRF(r); err != nil {
			return err
		}
	}
	cred := r.PostForm.Get("credential")
	if cred == "" {
		return signin.Errorf(signin.EINVALID, "invalid_request", "The credential field is missing.")
	}
	c, err := s.verify(r.Context(), cred)
	if err != nil {
		return err
	}
	return s.signIn(w, r, c, method, redirect)
}

// signIn is handleTokenSignin once the token is verified: the user's
// grant, the session, the answer. A function of its own so that its frame
// (the session user, the answer) is not on the stack while the token's
// signature is checked, the deepest point of a sign-in: a goroutine whose
// stack outgrows 8 KiB on every request has it copied on every request
// after each garbage collection shrinks it back (issue 19).
func (s *Server) signIn(w http.ResponseWriter, r *http.Request, c *auth.Claims, method string, redirect bool) error {
	rec, status, err := s.cfg.Grants.Lookup(r.Context(), c.Sub)
	if err != nil {
		return err
	}
	if err := grant.CheckEnabled(rec); err != nil {
		return err
	}
	u := userFromClaims(c, s.cfg.Now())
	if err := s.sessions.start(w, r, u); err != nil {
		return err
	}
	s.audit(r.Context(), auditSignIn, u.Sub, slog.String("method", method))
	if redirect {
		// A constant target: nothing the request says is ever followed.
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	}
	writeJSON(w, http.StatusOK, s.me(u, rec, status))
	return nil
}

// gcsrfName is the name of both GIS's double-submit cookie and the form
// field it posts along.
const gcsrfName = "g_csrf_token"

// checkGCSRF is GIS redirect mode's CSRF defence: the g_csrf_token form
// field must equal the g_csrf_token cookie, and both must be present. A
// cross-site attacker can make a browser post a form, but cannot set a
// cookie for our origin to match it.
func checkGCSRF(r *http.Request) error {
	field := r.PostForm.Get(gcsrfName)
	cookie, err := r.Cookie(gcsrfName)
	if err != nil || field == "" || cookie.Value == "" ||
		subtle.ConstantTimeCompare([]byte(field), []byte(cookie.Value)) != 1 {
		return signin.Errorf(signin.EFORBIDDEN, "csrf", "Sign-in refused: the g_csrf_token cookie and form field are missing or do not match.")
	}
	return nil
}

// handleConnect exchanges a one-time code from the GIS code client for
// tokens, verifies the ID token that comes with them, stores the grant and
// signs the user in: both "optional offline access" (a signed-in user
// enables it) and "necessary offline access" (one step, signed out).
//
// Nothing is stored and no session is made unless the exchange and the
// verification succeed and the account is the session's own.
func (s *Server) handleConnect(w http.ResponseWriter, r *http.Request) (err error) {
	if err := parseForm(r); err != nil {
		return err
	}
	code := r.PostForm.Get("code")
	if code == "" {
		return signin.Errorf(signin.EINVALID, "invalid_request", "The code field is missing.")
	}
	current, signedIn, err := s.sessions.load(r)
	if err != nil {
		return err
	}
	if !signedIn {
		// Signed out, this is a sign-in too (necessary offline access).
		defer func() { s.cfg.Metrics.SignIn(metrics.SignInConnect, err) }()
	}

	tok, err := s.cfg.Google.Exchange(r.Context(), code)
	if err != nil {
		var se *signin.Error
		if !errors.As(err, &se) {
			err = signin.Wrap(err, signin.EUPSTREAM, "google_unavailable", "Google could not be reached. Please try again.")
		}
		return err
	}
	raw := auth.IDToken(tok)
	if raw == "" {
		return signin.Errorf(signin.EUPSTREAM, "no_id_token", "Google's answer had no ID token (was the openid scope granted?).")
	}
	c, err := s.verify(r.Context(), raw)
	if err != nil {
		// Google redeemed the code: the user consented for nothing, and
		// will again. Say why, so a wrong clock or client id is found.
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "connect: the ID token Google returned with the tokens was refused",
			slog.String("request_id", requestID(r.Context())),
			slog.String("reason", auth.Refusal(err)),
			slog.String("error", err.Error()))
		return err
	}
	if signedIn && current.Sub != c.Sub {
		// The new tokens are dropped, not revoked: revoking either token
		// of a grant ends the whole grant, which would also kill offline
		// access this server may already hold for that other account.
		return signin.Errorf(signin.EFORBIDDEN, "account_mismatch", "You chose a different Google account from the one you are signed in with. Sign out first to switch accounts.")
	}

	rec, status, err := s.cfg.Grants.SaveExchange(r.Context(), c.Sub, grant.Identity{Email: c.Email, Name: c.Name}, tok)
	if err != nil {
		return err
	}
	s.profiles.forget(c.Sub)
	if status == grant.OfflineActive {
		s.audit(r.Context(), auditOfflineAccess, c.Sub, slog.String("refresh_token", grant.SavedRefreshToken(tok)))
	}
	u := current
	if !signedIn {
		u = userFromClaims(c, s.cfg.Now())
		if err := s.sessions.start(w, r, u); err != nil {
			// The grant is kept; only the sign-in failed. Say so in
			// words, not in the session store's.
			kind := signin.ErrorKind(err)
			if kind != signin.EUNAVAILABLE {
				kind = signin.EINTERNAL
			}
			msg := "The server could not sign you in. Please try again."
			if status == grant.OfflineActive {
				msg = "The server saved your offline access but could not sign you in. Please try again."
			}
			return signin.Wrap(err, kind, "session_not_kept", msg)
		}
		s.audit(r.Context(), auditSignIn, u.Sub, slog.String("method", metrics.SignInConnect))
	}
	// The record just saved answers: no second read of the store.
	writeJSON(w, http.StatusOK, s.me(u, rec, status))
	return nil
}

// handleDisconnect revokes the stored grant at Google, deletes the stored
// credentials and ends every session of the user. If Google cannot be reached, nothing is
// changed and the answer is 502, so the user can try again: deleting first
// would leave a live grant at Google that no one can revoke any more.
func (s *Server) handleDisconnect(w http.ResponseWriter, r *http.Request) error {
	u, ok, err := s.sessions.load(r)
	if err != nil {
		return err
	}
	if !ok {
		return errSignedOut()
	}
	revoked, err := s.cfg.Grants.Disconnect(r.Context(), u.Sub)
	if err != nil {
		var se *signin.Error
		if !errors.As(err, &se) {
			err = signin.Wrap(err, signin.EUPSTREAM, "google_unavailable", "Google could not be reached; nothing was changed. Please try again.")
		}
		return err
	}
	s.profiles.forget(u.Sub)
	s.audit(r.Context(), auditDisconnect, u.Sub, slog.Bool("revoked", revoked))
	if err := s.endEverywhere(w, r, u.Sub, metrics.CauseDisconnect); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		Disconnected bool `json:"disconnected"`
		Revoked      bool `json:"revoked"`
	}{true, revoked})
	return nil
}

// handleSignOut ends the request's session on the server, so that a copy
// of its cookie is signed out too; with the form field everywhere=1 it ends
// every session of the user, on every replica. Stored credentials stay.
func (s *Server) handleSignOut(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(r); err != nil {
		return err
	}
	everywhere := r.PostForm.Get("everywhere") == "1"
	// The session is read once per request (gorilla's registry), so end
	// below finds this same one.
	u, signedIn, err := s.sessions.load(r)
	if err != nil {
		return err
	}
	if everywhere {
		if !signedIn {
			return errSignedOut()
		}
		if err := s.endUserSessions(r.Context(), u.Sub, metrics.CauseSignOutEverywhere); err != nil {
			return err
		}
		// This session is among those just ended: its cookie goes,
		// with no second write.
		s.sessions.clearCookie(w)
	} else if err := s.sessions.end(w, r); err != nil {
		return err
	}
	if signedIn && !everywhere {
		s.sessionsEnded(r.Context(), u.Sub, metrics.CauseSignOut)
	}
	writeJSON(w, http.StatusOK, struct {
		SignedOut  bool `json:"signed_out"`
		Everywhere bool `json:"everywhere,omitempty"`
	}{true, everywhere})
	return nil
}

// endEverywhere ends every session of sub and the request's cookie.
func (s *Server) endEverywhere(w http.ResponseWriter, r *http.Request, sub, cause string) error {
	if err := s.endUserSessions(r.Context(), sub, cause); err != nil {
		return err
	}
	s.sessions.clearCookie(w)
	return nil
}

// endUserSessions ends every session of sub, on every replica, for cause
// (metrics.CauseRISC when Google says the account was compromised, say),
// with its audit line and metric. It needs no request: it is also for
// events that come from Google rather than from the user. It is one write
// to the SessionStore, however many sessions sub holds (the server does not
// know how many: signing in writes nothing).
func (s *Server) endUserSessions(ctx context.Context, sub, cause string) error {
	if err := s.sessions.endUser(ctx, sub); err != nil {
		return err
	}
	s.sessionsEnded(ctx, sub, cause)
	return nil
}

// sessionsEnded records that sessions of sub were ended for cause
// (metrics.CauseSignOut...): one session, or all of the user's at once.
// An audit line and the metric.
func (s *Server) sessionsEnded(ctx context.Context, sub, cause string) {
	s.audit(ctx, auditSessionsEnded, sub, slog.String("cause", cause))
	s.cfg.Metrics.SessionsEnded(cause, 1)
}

// handleMe answers who the caller is and whether the server can act for
// them offline.
func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) error {
	u, err := s.identify(r)
	if err != nil {
		return err
	}
	return s.writeMe(w, r, u)
}

// handleProfile answers the People API people/me result that the server
// fetched with the caller's stored credentials.
func (s *Server) handleProfile(w http.ResponseWriter, r *http.Request) error {
	u, err := s.identify(r)
	if err != nil {
		return err
	}
	rec, status, err := s.cfg.Grants.Lookup(r.Context(), u.Sub)
	if err != nil {
		return err
	}
	switch {
	case status == grant.OfflineUnreadable:
		return signin.Errorf(signin.ECONFLICT, "reconnect_required", "The server's copy of your offline access cannot be read: reconnect.")
	case rec == nil:
		return profileError(signin.Errorf(signin.ENOTFOUND, "", "no offline access stored"))
	}
	p, err := s.cfg.Profiles.FetchProfile(r.Context(), rec)
	if err != nil {
		return profileError(err)
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

// profileError turns what the ProfileFetcher's error shows of the grant
// (grant.OfflineOf: none to act on, or revoked) into the API's two 409
// answers.
func profileError(err error) error {
	switch grant.OfflineOf(err) {
	case grant.OfflineNone:
		return signin.Wrap(err, signin.ECONFLICT, "offline_access_required", "The server holds no offline access for you: enable it first.")
	case grant.OfflineRevoked:
		return signin.Wrap(err, signin.ECONFLICT, "reconnect_required", "Google no longer accepts the server's offline access for you: reconnect.")
	}
	var se *signin.Error
	if !errors.As(err, &se) {
		return signin.Wrap(err, signin.EUPSTREAM, "google_unavailable", "Google could not be reached. Please try again.")
	}
	return err
}
