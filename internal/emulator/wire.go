package emulator

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Random values in the shapes Google uses, so length limits and prefixes in
// the app meet what they will meet in production: codes "4/0A…" (<= 256
// bytes), access tokens "ya29.…" (<= 2048), refresh tokens "1//0…" (<= 512).
const (
	codePrefix    = "4/0A"
	codeRandBytes = 51 // 68 base64url characters
	codeLen       = len(codePrefix) + 68
)

func randomB64(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it crashes the program instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

func newCode() string         { return codePrefix + randomB64(codeRandBytes) }
func newAccessToken() string  { return "ya29.a0" + randomB64(120) }
func newRefreshToken() string { return "1//0" + randomB64(75) }

func newKid() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newSub returns a 21-digit subject like Google's.
func newSub() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	d := make([]byte, 21)
	d[0] = '1'
	for i, x := range b {
		d[i+1] = '0' + x%10
	}
	return string(d)
}

// codeShaped reports whether s looks like one of our codes. Anything else
// gets Google's "Malformed auth code." rather than "Bad Request".
func codeShaped(s string) bool {
	if len(s) != codeLen || !strings.HasPrefix(s, codePrefix) {
		return false
	}
	for _, c := range []byte(s[len(codePrefix):]) {
		if !isB64URL(c) {
			return false
		}
	}
	return true
}

func isB64URL(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// Scopes. Google accepts the short OpenID names and answers with the long
// ones ("email" -> userinfo.email), so the app must accept either.
const (
	scopeOpenID  = "openid"
	scopeEmail   = "https://www.googleapis.com/auth/userinfo.email"
	scopeProfile = "https://www.googleapis.com/auth/userinfo.profile"
	scopePrefix  = "https://www.googleapis.com/auth/"
)

// normalizeScope maps a requested scope to the form Google grants it in.
// Any other https://www.googleapis.com/auth/... scope is accepted as an
// opaque name (the emulator serves no API for it).
func normalizeScope(s string) (string, bool) {
	switch s {
	case "openid":
		return scopeOpenID, true
	case "email", scopeEmail:
		return scopeEmail, true
	case "profile", scopeProfile:
		return scopeProfile, true
	}
	if strings.HasPrefix(s, scopePrefix) && len(s) > len(scopePrefix) && len(s) < 200 {
		for _, c := range []byte(s[len(scopePrefix):]) {
			if !isB64URL(c) && c != '.' && c != '/' {
				return "", false
			}
		}
		return s, true
	}
	return "", false
}

func scopeRank(s string) int {
	switch s {
	case scopeOpenID:
		return 0
	case scopeEmail:
		return 1
	case scopeProfile:
		return 2
	}
	return 3
}

func compareScopes(a, b string) int {
	if ra, rb := scopeRank(a), scopeRank(b); ra != rb {
		return ra - rb
	}
	return strings.Compare(a, b)
}

// parseScopes splits a space-separated scope parameter. requested keeps the
// caller's spelling (deduplicated), granted is normalised and sorted, and
// invalid lists what Google would refuse.
func parseScopes(raw string) (requested, granted, invalid []string) {
	for _, s := range strings.Fields(raw) {
		if slices.Contains(requested, s) {
			continue
		}
		requested = append(requested, s)
		n, ok := normalizeScope(s)
		if !ok {
			invalid = append(invalid, s)
			continue
		}
		if !slices.Contains(granted, n) {
			granted = append(granted, n)
		}
	}
	slices.SortFunc(granted, compareScopes)
	return requested, granted, invalid
}

// unionScopes merges granted scope lists, normalised and sorted.
func unionScopes(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, compareScopes)
	return out
}

// gisScopeString is the scope string GIS hands the page: the scopes as the
// page asked for them followed by the long forms Google granted, so that
// hasGrantedAllScopes(resp, "email") and (resp, ".../userinfo.email") both
// hold, as they do with Google.
func gisScopeString(requested, granted []string) string {
	var out []string
	for _, s := range requested {
		if n, ok := normalizeScope(s); ok && slices.Contains(granted, n) {
			out = append(out, s) // a scope the user did not grant is not listed
		}
	}
	for _, s := range granted {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return strings.Join(out, " ")
}

func hasScope(scopes []string, s string) bool { return slices.Contains(scopes, s) }

// Origins and redirect URIs.

// parseOrigin canonicalises a web origin ("scheme://host[:port]").
func parseOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", errors.New("origin must be http or https")
	}
	if u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("origin must be scheme://host[:port] only")
	}
	host := strings.ToLower(u.Host)
	if u.Scheme == "http" {
		host = strings.TrimSuffix(host, ":80")
	} else {
		host = strings.TrimSuffix(host, ":443")
	}
	return u.Scheme + "://" + host, nil
}

func isLoopbackHost(hostport string) bool {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	h = strings.Trim(h, "[]")
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// originAllowed reports whether a page at origin may use the client's
// popup flows.
func (c Client) originAllowed(origin string) bool {
	o, err := parseOrigin(origin)
	if err != nil {
		return false
	}
	if len(c.JavaScriptOrigins) == 0 {
		u, _ := url.Parse(o)
		return u.Scheme == "http" && isLoopbackHost(u.Host)
	}
	for _, allowed := range c.JavaScriptOrigins {
		if a, err := parseOrigin(allowed); err == nil && a == o {
			return true
		}
	}
	return false
}

// redirectAllowed reports whether uri is a registered redirect URI of the
// client. Google compares exactly.
func (c Client) redirectAllowed(uri string) bool {
	if len(c.RedirectURIs) == 0 {
		u, err := url.Parse(uri)
		return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
			u.User == nil && u.Fragment == "" && isLoopbackHost(u.Host)
	}
	return slices.Contains(c.RedirectURIs, uri)
}

// JSON answers.

// writeJSON answers v as JSON, the way Google's OAuth endpoints do.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// oauthError is the error body of Google's OAuth endpoints.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, status, oauthError{Error: code, Description: description})
}

// CORS. Google's token-using endpoints answer browsers from any origin;
// what protects them is the token, not the origin.

func allowCORS(w http.ResponseWriter, r *http.Request) {
	if o := r.Header.Get("Origin"); o != "" {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", o)
		h.Add("Vary", "Origin")
	}
}

func (e *Emulator) handlePreflight(w http.ResponseWriter, r *http.Request) {
	allowCORS(w, r)
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" && validHeaderList(req) {
		h.Set("Access-Control-Allow-Headers", req)
	}
	h.Set("Access-Control-Max-Age", "3600")
	w.WriteHeader(http.StatusNoContent)
}

func validHeaderList(s string) bool {
	if len(s) > 1024 {
		return false
	}
	for _, c := range []byte(s) {
		if !(isB64URL(c) || c == ',' || c == ' ') {
			return false
		}
	}
	return true
}
