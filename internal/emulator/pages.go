package emulator

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"path"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

//go:embed assets
var assets embed.FS

// pageData is everything the page templates use.
type pageData struct {
	Title     string
	ClientID  string
	AppOrigin string
	GSI       bool // the "Sign in with Google" flow rather than OAuth
	Action    string
	Hidden    []hiddenField
	Problem   string // shown above the chooser

	Users   []userView
	HintSub string
	User    userView
	Scopes  []scopeView
	Offline bool

	TargetOrigin string // result: where postMessage goes
	Message      string // result: the message, JSON

	PostURL string // form post: where
	Fields  []hiddenField

	ErrStatus int
	ErrCode   string
	ErrDesc   string
}

type hiddenField struct{ Name, Value string }

type userView struct {
	Sub, Email, Name, Picture, Initial, HostedDomain string
}

// scopeView is a scope on the consent screen; Optional ones (not sign-in
// scopes) get a checkbox.
type scopeView struct {
	Scope, Description string
	Optional           bool
}

func viewUser(u User, base string) userView {
	r, _ := utf8.DecodeRuneInString(u.Name)
	return userView{
		Sub: u.Sub, Email: u.Email, Name: u.Name, Picture: pictureURL(u, base),
		Initial: string(unicode.ToUpper(r)), HostedDomain: u.HostedDomain,
	}
}

func parsePages() (*template.Template, error) {
	t, err := template.ParseFS(assets, "assets/pages.html")
	if err != nil {
		return nil, fmt.Errorf("emulator: parsing page templates: %w", err)
	}
	return t, nil
}

// renderPage renders one of the pages into a buffer (so a template error
// never sends half a page) and serves it with a strict CSP. formTargets are
// extra origins the page's forms may post or be redirected to.
func (e *Emulator) renderPage(w http.ResponseWriter, status int, name string, d pageData, formTargets []string) {
	var buf bytes.Buffer
	if err := e.pages.ExecuteTemplate(&buf, name, d); err != nil {
		e.log.Error("rendering emulator page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	formAction := "'self'"
	for _, t := range formTargets {
		if t != "" {
			formAction += " " + t
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: http:; form-action "+formAction+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	// No Cross-Origin-Opener-Policy: the popup must keep window.opener, as
	// Google's does. An app page with COOP same-origin still severs it,
	// which is exactly the failure the app must avoid.
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (e *Emulator) renderError(w http.ResponseWriter, r *http.Request, ae *authError) {
	title := "Access blocked: authorization error"
	if ae.status >= 500 {
		title = "Something went wrong"
	}
	e.renderPage(w, ae.status, "error", pageData{Title: title, ErrStatus: ae.status, ErrCode: ae.code, ErrDesc: ae.description}, nil)
}

// handleStatic serves the pages' scripts and stylesheet.
func (e *Emulator) handleStatic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	var ct string
	switch path.Ext(name) {
	case ".js":
		ct = "text/javascript; charset=utf-8"
	case ".css":
		ct = "text/css; charset=utf-8"
	}
	if ct == "" || name == "gsi-client.js" { // the GIS script is served at /gsi/client, with its origin
		http.NotFound(w, r)
		return
	}
	b, err := assets.ReadFile("assets/" + name) // a path segment: no "/" in name
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(b)
}

const gisOriginPlaceholder = `"__EMULATOR_ORIGIN__"`

func loadGISScript() ([2][]byte, error) {
	b, err := assets.ReadFile("assets/gsi-client.js")
	if err != nil {
		return [2][]byte{}, fmt.Errorf("emulator: %w", err)
	}
	before, after, ok := bytes.Cut(b, []byte(gisOriginPlaceholder))
	if !ok {
		return [2][]byte{}, errors.New("emulator: gsi-client.js lacks the origin placeholder")
	}
	return [2][]byte{before, after}, nil
}

// handleGISClient serves the GIS stand-in with the emulator's origin (as the
// browser reached it) built in: the script trusts messages from that origin
// only.
func (e *Emulator) handleGISClient(w http.ResponseWriter, r *http.Request) {
	origin, _ := json.Marshal(e.baseURL(r)) // escapes <, > and &
	gisAssetHeaders(w, r, "text/javascript; charset=utf-8")
	_, _ = w.Write(e.gisParts[0])
	_, _ = w.Write(origin)
	_, _ = w.Write(e.gisParts[1])
}

// handleGISStyle serves the stylesheet the GIS button uses, as Google serves
// https://accounts.google.com/gsi/style.
func (e *Emulator) handleGISStyle(w http.ResponseWriter, r *http.Request) {
	b, err := assets.ReadFile("assets/gsi.css")
	if err != nil {
		http.NotFound(w, r)
		return
	}
	gisAssetHeaders(w, r, "text/css; charset=utf-8")
	_, _ = w.Write(b)
}

// gisAssetHeaders are the headers Google serves its GIS script and style
// with: public for an hour, loadable from any origin.
func gisAssetHeaders(w http.ResponseWriter, r *http.Request, contentType string) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "public, max-age=3600")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	allowCORS(w, r)
}

func avatarFile(sub string) string { return urlPathEscape(sub) + ".svg" }

// urlPathEscape escapes a sub for one path segment (subs may hold "/").
func urlPathEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if isB64URL(c) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

var avatarColors = []string{"#1a73e8", "#d93025", "#188038", "#e37400", "#9334e6", "#007b83", "#c5221f", "#3c4043"}

// handleAvatar draws a user's default picture: their initial on a colour.
func (e *Emulator) handleAvatar(w http.ResponseWriter, r *http.Request) {
	sub, ok := strings.CutSuffix(r.PathValue("file"), ".svg")
	if !ok {
		http.NotFound(w, r)
		return
	}
	u := e.userBySub(sub)
	if u == nil {
		http.NotFound(w, r)
		return
	}
	first, _ := utf8.DecodeRuneInString(u.Name)
	sum := 0
	for _, c := range []byte(u.Sub) {
		sum += int(c)
	}
	var buf bytes.Buffer
	buf.WriteString(`<svg xmlns="http://www.w3.org/2000/svg" width="96" height="96" viewBox="0 0 96 96"><circle cx="48" cy="48" r="48" fill="`)
	buf.WriteString(avatarColors[sum%len(avatarColors)])
	buf.WriteString(`"/><text x="48" y="63" font-family="Arial, Helvetica, sans-serif" font-size="44" fill="#fff" text-anchor="middle">`)
	template.HTMLEscape(&buf, []byte(string(unicode.ToUpper(first))))
	buf.WriteString(`</text></svg>`)
	h := w.Header()
	h.Set("Content-Type", "image/svg+xml")
	h.Set("Cache-Control", "public, max-age=86400")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	_, _ = w.Write(buf.Bytes())
}

// handleFavicon serves the "G" mark, so browsers log no failed load.
func (e *Emulator) handleFavicon(w http.ResponseWriter, r *http.Request) {
	b, err := assets.ReadFile("assets/favicon.svg")
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	_, _ = w.Write(b)
}

// handleIndex says what this server is, for a person who opens it.
func (e *Emulator) handleIndex(w http.ResponseWriter, r *http.Request) {
	e.mu.RLock()
	users := e.id.listUsers()
	e.mu.RUnlock()
	base := e.baseURL(r)
	d := pageData{Title: "Google emulator", AppOrigin: strings.TrimPrefix(strings.TrimPrefix(base, "http://"), "https://")}
	for _, u := range users {
		d.Users = append(d.Users, viewUser(u, base))
	}
	for _, id := range slices.Sorted(maps.Keys(e.clients)) {
		d.Fields = append(d.Fields, hiddenField{Name: id})
	}
	e.renderPage(w, http.StatusOK, "index", d, nil)
}
