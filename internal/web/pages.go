package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/api/people/v1"

	"example.com/signin"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/offline"
)

// pageNames are the page templates; each is parsed together with base.html.
var pageNames = [...]string{"index.html", "staticjs.html", "error.html"}

// assets are the parsed templates and the static files with their hashes.
type assets struct {
	pages  map[string]*template.Template
	static map[string]staticFile
}

// staticFile is one static asset, held in memory (they are small).
type staticFile struct {
	data        []byte
	hash        string // hex SHA-256 prefix, for cache busting and ETag
	contentType string
}

// loadAssets reads every static file and parses every page. Templates link
// static files through the "static" function, which adds the content hash,
// so a page never references an asset that does not exist.
func loadAssets(templates, static fs.FS) (*assets, error) {
	a := &assets{pages: make(map[string]*template.Template), static: make(map[string]staticFile)}
	err := fs.WalkDir(static, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(static, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		ctype := mime.TypeByExtension(path.Ext(name))
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		a.static[name] = staticFile{data: data, hash: hex.EncodeToString(sum[:6]), contentType: ctype}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading static files: %w", err)
	}
	funcs := template.FuncMap{
		"static": func(name string) (string, error) {
			f, ok := a.static[name]
			if !ok {
				return "", fmt.Errorf("no static file %q", name)
			}
			return "/static/" + name + "?v=" + f.hash, nil
		},
		"scopeName": scopeName,
		"googleButton": func(id, label string) googleButton {
			return googleButton{ID: id, Label: label}
		},
	}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templates, "base.html", name)
		if err != nil {
			return nil, fmt.Errorf("parsing templates: %w", err)
		}
		if t.Lookup("base") == nil {
			return nil, fmt.Errorf("parsing templates: %s: no \"base\" template", name)
		}
		a.pages[name] = t
	}
	return a, nil
}

// googleButton is the argument of the "google-button" template.
type googleButton struct{ ID, Label string }

// renderPage executes a page into a buffer and only then writes it, so a
// template error is a clean error page rather than half a page.
func (s *Server) renderPage(w http.ResponseWriter, r *http.Request, status int, name string, data any) error {
	a, err := s.currentAssets()
	if err != nil {
		s.logRenderError(r, name, err)
		return err
	}
	t, ok := a.pages[name]
	if !ok {
		err := fmt.Errorf("no page %q", name)
		s.logRenderError(r, name, err)
		return err
	}
	var key pageKey
	c, cache := data.(cacheable)
	if cache && s.assets != nil {
		key = pageKey{name, c.cacheKey()}
		if html := s.pages.get(key); html != nil {
			return writePage(w, r, status, html)
		}
	}
	var buf bytes.Buffer
	buf.Grow(8 << 10)
	if err := t.ExecuteTemplate(&buf, "base", data); err != nil {
		s.logRenderError(r, name, err)
		return err
	}
	if cache && s.assets != nil {
		s.pages.put(key, buf.Bytes())
	}
	return writePage(w, r, status, buf.Bytes())
}

func writePage(w http.ResponseWriter, r *http.Request, status int, html []byte) error {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(html)
	}
	return nil
}

func (s *Server) logRenderError(r *http.Request, name string, err error) {
	s.log.LogAttrs(r.Context(), slog.LevelError, "rendering page",
		slog.String("request_id", requestID(r.Context())),
		slog.String("page", name),
		slog.String("error", err.Error()),
	)
}

// pageConfig is what the pages' JavaScript reads from the
// <script type="application/json" id="config"> element.
type pageConfig struct {
	ClientID      string `json:"client_id"`
	Scope         string `json:"scope"`
	UXMode        string `json:"ux_mode"`              // "popup" or "redirect" (GIS button)
	View          string `json:"view"`                 // what the server rendered
	Offline       string `json:"offline,omitempty"`    // none, active, revoked, unreadable
	LoginHint     string `json:"login_hint,omitempty"` // the signed-in user's email
	PeopleAPIBase string `json:"people_api_base,omitempty"`
	// Scope above is the sign-in and offline scopes: what the buttons ask
	// for. OfflineScopes are the offline scopes alone (-scopes),
	// MissingScope those the user's grant lacks: what "grant the rest"
	// asks for. Both space-separated.
	OfflineScopes string `json:"offline_scopes,omitempty"`
	MissingScope  string `json:"missing_scope,omitempty"`
}

// pageData is what every page template gets.
type pageData struct {
	Title        string
	Page         string // "server" or "client": which flow page this is
	Demo         bool
	GISScriptURL string
	Config       pageConfig
}

// Views of the pages: the server-rendered starting state.
const (
	viewSignedOut = "signed-out"
	viewSignedIn  = "signed-in"
	viewError     = "error"
)

func (s *Server) basePage(title, page string) pageData {
	return pageData{
		Title:        title,
		Page:         page,
		Demo:         s.cfg.Demo,
		GISScriptURL: s.cfg.Net.GISScriptURL(),
		Config: pageConfig{
			ClientID:      s.cfg.ClientID,
			Scope:         strings.Join(append(slices.Clone(s.cfg.Scopes), s.cfg.OfflineScopes...), " "),
			OfflineScopes: strings.Join(s.cfg.OfflineScopes, " "),
			UXMode:        "popup",
		},
	}
}

// userView is the signed-in user as the page shows them.
type userView struct {
	Name          string
	Email         string
	EmailVerified bool
	Picture       string
	HostedDomain  string
	Initial       string // for the avatar when there is no picture
}

func newUserView(u sessionUser) *userView {
	name := u.Name
	if name == "" {
		name = u.Email
	}
	return &userView{
		Name:          name,
		Email:         u.Email,
		EmailVerified: u.EmailVerified,
		Picture:       u.Picture,
		HostedDomain:  u.HostedDomain,
		Initial:       initial(name),
	}
}

// initial returns the first letter of s, upper-cased, or "?".
func initial(s string) string {
	r, _ := utf8.DecodeRuneInString(strings.TrimSpace(s))
	if r == utf8.RuneError || !unicode.IsLetter(r) && !unicode.IsDigit(r) {
		return "?"
	}
	return string(unicode.ToUpper(r))
}

// profileView is a People API person as the page shows them.
type profileView struct {
	Name  string
	Email string
	Photo string
}

// newProfileView picks the primary name, email and photo (or the first).
func newProfileView(p *people.Person) *profileView {
	v := offline.ProfileOf(p)
	return &profileView{Name: v.Name, Email: v.Email, Photo: v.Photo}
}

// indexData is the data of the server-side flow page.
type indexData struct {
	pageData
	User         *userView     // nil when signed out
	Offline      grant.Offline // none, active, revoked, unreadable
	Profile      *profileView  // the server's People API fetch, when active
	ProfileError string        // why the profile could not be fetched
	// GrantedScopes are the scopes the active grant holds; MissingScopes
	// the configured offline scopes it lacks.
	GrantedScopes, MissingScopes []string
}

// indexKey is everything the index page shows, by value.
type indexKey struct {
	page                pageData
	user                userView
	offline             grant.Offline
	profile             profileView
	hasUser, hasProfile bool
	profileError        string
	granted, missing    string
}

func (d indexData) cacheKey() any {
	k := indexKey{page: d.pageData, offline: d.Offline, profileError: d.ProfileError,
		granted: strings.Join(d.GrantedScopes, " "), missing: strings.Join(d.MissingScopes, " ")}
	if d.User != nil {
		k.user, k.hasUser = *d.User, true
	}
	if d.Profile != nil {
		k.profile, k.hasProfile = *d.Profile, true
	}
	return k
}

// handleIndex serves the server-side flow page. Signed out, it offers the
// two sign-in buttons (?ux=redirect switches the GIS button to redirect
// mode). Signed in, it shows the user and their offline state; with offline
// access it shows the profile the server fetched with the stored
// credentials.
func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) error {
	d := indexData{pageData: s.basePage("Server-side flow", "server")}
	u, ok, err := s.sessions.load(r)
	if err != nil {
		return err
	}
	if !ok {
		if r.URL.Query().Get("ux") == "redirect" {
			d.Config.UXMode = "redirect"
		}
		d.Config.View = viewSignedOut
		return s.renderPage(w, r, http.StatusOK, "index.html", d)
	}
	d.User = newUserView(u)
	d.Config.View = viewSignedIn
	d.Config.LoginHint = u.Email
	rec, status, err := s.cfg.Grants.Lookup(r.Context(), u.Sub)
	if err != nil {
		return err
	}
	if status == grant.OfflineActive {
		status, d.Profile, d.ProfileError = s.pageProfile(r.Context(), rec)
	}
	d.Offline = status
	d.Config.Offline = string(status)
	if status == grant.OfflineActive {
		d.GrantedScopes, d.MissingScopes = s.scopesOf(rec, status)
		d.Config.MissingScope = strings.Join(d.MissingScopes, " ")
	}
	return s.renderPage(w, r, http.StatusOK, "index.html", d)
}

// pageProfile returns the profile for the page: the one fetched for this
// user within profileCacheTTL, else one fetched now within profileTimeout,
// so that the page does not wait on Google at every view. A fetch that
// finds the grant revoked or gone changes the offline state shown; any
// other failure is an error state on the page, not an error page.
func (s *Server) pageProfile(ctx context.Context, rec *grant.Record) (status grant.Offline, p *profileView, errMsg string) {
	if v := s.profiles.get(rec.Sub); v != nil {
		return grant.OfflineActive, v, ""
	}
	ctx, cancel := context.WithTimeout(ctx, profileTimeout)
	defer cancel()
	person, err := s.cfg.Profiles.FetchProfile(ctx, rec)
	if err == nil && person != nil {
		v := newProfileView(person)
		s.profiles.put(rec.Sub, v)
		return grant.OfflineActive, v, ""
	}
	if shown := grant.OfflineOf(err); shown != "" {
		return shown, nil, ""
	}
	if err == nil {
		err = fmt.Errorf("no profile and no error")
	}
	endpoint, googleCode := googleFailure(err)
	s.log.LogAttrs(ctx, slog.LevelWarn, "fetching the profile for the page",
		slog.String("request_id", requestID(ctx)),
		slog.String("code", signin.ErrorCode(err)),
		slog.String("endpoint", endpoint),
		slog.String("google_error", googleCode),
		slog.String("error", err.Error()),
	)
	return grant.OfflineActive, nil, "The server could not fetch your profile from Google just now. Reload to try again."
}

// handleStaticJS serves the client-side flow page: the browser gets an
// access token from GIS and calls the People API itself. The server keeps
// nothing for it.
func (s *Server) handleStaticJS(w http.ResponseWriter, r *http.Request) error {
	d := s.basePage("Client-side flow", "client")
	d.Config.View = viewSignedOut
	d.Config.PeopleAPIBase = s.cfg.Net.PeopleAPIBase()
	w.Header().Set("Content-Security-Policy", s.csp.staticJS)
	return s.renderPage(w, r, http.StatusOK, "staticjs.html", d)
}

// errorData is the data of the error page.
type errorData struct {
	pageData
	Status  int
	Code    string
	Message string
}

func (s *Server) errorPageData(status int, code, message string) errorData {
	d := errorData{pageData: s.basePage(http.StatusText(status), "error"), Status: status, Code: code, Message: message}
	// The error page loads no GIS and runs only the common script.
	d.GISScriptURL = ""
	d.Config.View = viewError
	return d
}

// handleStatic serves the embedded static files. A request carrying the
// current content hash (?v=, as the pages link them) may be cached forever;
// others briefly.
func (s *Server) handleStatic(w http.ResponseWriter, r *http.Request) error {
	name := strings.TrimPrefix(r.URL.Path, "/static/")
	a, err := s.currentAssets()
	if err != nil {
		return signin.Wrap(err, signin.EINTERNAL, "", "internal error")
	}
	f, ok := a.static[name]
	if !ok || !fs.ValidPath(name) {
		return signin.Errorf(signin.ENOTFOUND, "not_found", "There is nothing here.")
	}
	h := w.Header()
	switch {
	case s.cfg.DevDir != "":
		h.Set("Cache-Control", "no-cache")
	case r.URL.Query().Get("v") == f.hash:
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	default:
		h.Set("Cache-Control", "public, max-age=300")
	}
	h.Set("Content-Type", f.contentType)
	h.Set("ETag", `"`+f.hash+`"`)
	// No modification time: embedded files have none, and the ETag does
	// the revalidation.
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.data))
	return nil
}

// scopeName is how the page names a scope: Google's short name
// (contacts.readonly, email) rather than its URL.
func scopeName(scope string) string {
	switch scope {
	case grant.ScopeEmail:
		return "email"
	case grant.ScopeProfile:
		return "profile"
	}
	return strings.TrimPrefix(scope, "https://www.googleapis.com/auth/")
}
