// Package web is the sign-in server's HTTP layer: the routes (all in
// routes.go), the handlers for the three Google Sign-In flows and
// disconnect, cookie sessions, CSRF defences, security headers, template
// rendering, and the one place where error kinds become HTTP statuses.
//
// It knows nothing about Google's wire formats: verification, code exchange,
// revocation and profile fetches come in through the small interfaces below,
// and the users' grants through grant.Grants, which decides every grant
// rule (what a record allows, what an error shows of it); web turns the
// answers into pages, JSON and statuses.
package web

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/gorilla/mux"
	"golang.org/x/oauth2"
	"google.golang.org/api/people/v1"

	"example.com/signin"
	"example.com/signin/internal/auth"
	"example.com/signin/internal/googlenet"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/metrics"
)

// Verifier verifies Google ID tokens. Both methods return an *signin.Error
// of kind EUNAUTHORIZED (code "invalid_token") for a token that must be
// refused, and EUPSTREAM when Google's keys cannot be fetched.
type Verifier interface {
	// Verify fully verifies rawToken; a non-empty nonce must match the
	// token's nonce claim.
	Verify(ctx context.Context, rawToken, nonce string) (*auth.Claims, error)
	// VerifyCached is Verify without a nonce, answering repeated tokens from
	// a bounded cache of verified tokens (the mobile-backend pattern, where
	// every API call carries the same ID token).
	VerifyCached(ctx context.Context, rawToken string) (*auth.Claims, error)
}

// Exchanger redeems one-time codes from the GIS code client (popup,
// redirect_uri=postmessage). Errors are *signin.Error: EINVALID with code
// "invalid_grant" for a used, expired or malformed code, EUPSTREAM when
// Google is unreachable or failing.
type Exchanger interface {
	Exchange(ctx context.Context, code string) (*oauth2.Token, error)
}

// ProfileFetcher fetches a user's People API profile (people/me) with the
// offline grant of their record, refreshing and saving it as needed.
type ProfileFetcher interface {
	// FetchProfile returns the profile of rec's user. Errors are
	// *signin.Error: ENOTFOUND when the record is gone, ECONFLICT with
	// code "offline_access_revoked" when Google refused the stored grant
	// (the record is then marked revoked), EUPSTREAM when Google failed.
	FetchProfile(ctx context.Context, rec *grant.Record) (*people.Person, error)
}

// Config is everything the server depends on. The zero values of the
// optional fields are replaced by the defaults documented on each field.
type Config struct {
	// ClientID is the web client id, given to the pages for GIS. Required.
	ClientID string
	// Scopes are requested by the pages' code and token clients. Default:
	// openid email profile.
	Scopes []string
	// OfflineScopes are the scopes the offline work needs beyond sign-in
	// (-scopes), normalised (grant.ParseScopes). The buttons that grant
	// offline access ask for them too, incrementally
	// (include_granted_scopes); the page and /api/me say which of them a
	// user's grant lacks, and the page offers to ask for just those.
	OfflineScopes []string
	// Grants keeps the users' offline grants. Required.
	Grants *grant.Grants
	// Verifier verifies ID tokens. Required.
	Verifier Verifier
	// Google exchanges one-time codes. Required.
	Google Exchanger
	// Profiles fetches profiles with stored credentials. Required.
	Profiles ProfileFetcher
	// Net says where Google is for the browser: the GIS script URL, the
	// People API base for /staticjs, the CSP origins. Required.
	Net *googlenet.Net
	// SessionKeys are the session secrets (at least 32 bytes each), newest
	// first, as config.SessionKeys returns them. The session cookie's
	// AES-256-GCM key is derived from each; the newest seals, older ones
	// only open, so keys can be rotated without signing everyone out.
	// Required.
	SessionKeys [][]byte
	// Sessions records which sessions are live, so that they can be ended
	// (sign out, sign out everywhere, disconnect). Required.
	Sessions SessionStore
	// SessionMaxAge is how long a sign-in lasts. Default: 7 days.
	SessionMaxAge time.Duration
	// SecureCookies sets the Secure flag on cookies; set it when the server
	// is reached over HTTPS.
	SecureCookies bool
	// RISC verifies Google's Cross-Account Protection events for POST
	// /risc; nil leaves the route out.
	RISC RISCVerifier
	// Demo shows a banner saying that Google is emulated and the accounts
	// are test accounts.
	Demo bool
	// MaxBodyBytes bounds request bodies. Default: 64 KiB.
	MaxBodyBytes int64
	// DevDir, when set, is a directory holding templates/ and static/ (the
	// module root); they are read from disk and re-parsed on every request,
	// so edits show on reload. Empty means the embedded copies.
	DevDir string
	// Logger receives request and error logs. Default: slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Metrics counts requests, sign-ins and ended sessions. Nil counts
	// nothing.
	Metrics *metrics.Metrics
	// Ready reports whether the server's storage answers, for /readyz; it
	// must not depend on Google. Nil: the storage is not checked.
	Ready func(ctx context.Context) error
}

// Defaults.
const (
	defaultSessionMaxAge = 7 * 24 * time.Hour
	defaultMaxBodyBytes  = 64 << 10
	// profileTimeout bounds the server-side People API call that the signed-in
	// page makes, so a slow Google shows an error state instead of a hang.
	profileTimeout = 5 * time.Second
)

// Server is the sign-in web server. Create it with New; it is safe for
// concurrent use.
type Server struct {
	cfg      Config
	log      *slog.Logger
	sessions *sessionStore
	profiles *profileCache  // the page's recent People API fetches
	pages    *pageCache     // rendered pages, by content
	jtis     *auth.JTICache // RISC events already acted on, by jti
	cop      *http.CrossOriginProtection
	csp      policies
	// assets are the parsed templates and static files; nil in dev mode,
	// where loadAssets runs per request.
	assets  *assets
	routes  *mux.Router // for the route label of requests refused before routing
	handler http.Handler
}

// New checks cfg, parses the templates and returns the server. It fails when
// a required dependency is missing, a session key has the wrong length, or a
// template does not parse.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.ClientID == "":
		return nil, errors.New("web: Config.ClientID is required")
	case cfg.Grants == nil:
		return nil, errors.New("web: Config.Grants is required")
	case cfg.Verifier == nil:
		return nil, errors.New("web: Config.Verifier is required")
	case cfg.Google == nil:
		return nil, errors.New("web: Config.Google is required")
	case cfg.Profiles == nil:
		return nil, errors.New("web: Config.Profiles is required")
	case cfg.Net == nil:
		return nil, errors.New("web: Config.Net is required")
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{"openid", "email", "profile"}
	}
	if cfg.SessionMaxAge <= 0 {
		cfg.SessionMaxAge = defaultSessionMaxAge
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = defaultMaxBodyBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}

	sm, err := newSessionStore(cfg.SessionKeys, cfg.Sessions, cfg.SessionMaxAge, cfg.SecureCookies, cfg.Now)
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		sessions: sm,
		profiles: newProfileCache(cfg.Now),
		pages:    newPageCache(),
		jtis:     auth.NewJTICache(0, 0, cfg.Now),
		cop:      http.NewCrossOriginProtection(),
		csp:      newPolicies(cfg.Net),
	}
	// Parse once even in dev mode, so that a broken template fails at start.
	a, err := s.loadAssets()
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	if cfg.DevDir == "" {
		s.assets = a
	}
	s.handler = s.middleware(s.router())
	return s, nil
}

// Handler returns the whole server: middleware and routes.
func (s *Server) Handler() http.Handler { return s.handler }

// assetFS returns the template and static file systems: embedded, or from
// DevDir.
func (s *Server) assetFS() (templates, static fs.FS) {
	if s.cfg.DevDir != "" {
		return os.DirFS(filepath.Join(s.cfg.DevDir, "templates")), os.DirFS(filepath.Join(s.cfg.DevDir, "static"))
	}
	return signin.Templates(), signin.Static()
}

// currentAssets returns the parsed assets: the ones parsed at start, or in
// dev mode a fresh parse from disk.
func (s *Server) currentAssets() (*assets, error) {
	if s.assets != nil {
		return s.assets, nil
	}
	return s.loadAssets()
}

func (s *Server) loadAssets() (*assets, error) {
	t, st := s.assetFS()
	return loadAssets(t, st)
}
