package emulator

import (
	"crypto/sha256"
	"net/http"
	"strconv"
	"strings"
)

// People API (people.googleapis.com): GET /v1/people/me and GET
// /v1/people/me/connections, the calls the app makes, with Google's field
// mask rules, scope checks and error bodies.

// personFieldPaths are the paths Google accepts in personFields.
var personFieldPaths = map[string]bool{
	"addresses": true, "ageRanges": true, "biographies": true, "birthdays": true,
	"calendarUrls": true, "clientData": true, "coverPhotos": true, "emailAddresses": true,
	"events": true, "externalIds": true, "genders": true, "imClients": true,
	"interests": true, "locales": true, "locations": true, "memberships": true,
	"metadata": true, "miscKeywords": true, "names": true, "nicknames": true,
	"occupations": true, "organizations": true, "phoneNumbers": true, "photos": true,
	"relations": true, "sipAddresses": true, "skills": true, "urls": true, "userDefined": true,
}

const (
	peopleDocsURL       = "https://developers.google.com/people/api/rest/v1/people/get"
	msgMaskRequired     = "personFields mask is required. Please specify one or more valid paths. Valid paths are documented at " + peopleDocsURL + "."
	msgCredsMissing     = "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
	msgCredsInvalid     = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
	msgScopesNotEnough  = "Request had insufficient authentication scopes."
	peopleGetPeopleRPC  = "google.internal.people.v2.minimal.InternalPeopleMinimalService.GetPeople"
	peopleListRPC       = "google.people.v1.PeopleService.ListConnections"
	peopleServiceDomain = "people.googleapis.com"
)

// apiError is the error body of Google's APIs (google.rpc.Status as JSON).
type apiError struct {
	Error apiErrorBody `json:"error"`
}

type apiErrorBody struct {
	Code    int            `json:"code"`
	Message string         `json:"message"`
	Status  string         `json:"status"`
	Details []apiErrorInfo `json:"details,omitempty"`
}

type apiErrorInfo struct {
	Type     string            `json:"@type"`
	Reason   string            `json:"reason"`
	Domain   string            `json:"domain"`
	Metadata map[string]string `json:"metadata"`
}

func writeAPIError(w http.ResponseWriter, code int, status, message, reason string) {
	writeAPIErrorFor(w, peopleGetPeopleRPC, code, status, message, reason)
}

// writeAPIErrorFor is writeAPIError for an error of the given RPC method
// (ErrorInfo's metadata names it).
func writeAPIErrorFor(w http.ResponseWriter, method string, code int, status, message, reason string) {
	body := apiError{Error: apiErrorBody{Code: code, Message: message, Status: status}}
	if reason != "" {
		body.Error.Details = []apiErrorInfo{{
			Type: "type.googleapis.com/google.rpc.ErrorInfo", Reason: reason, Domain: "googleapis.com",
			Metadata: map[string]string{"service": peopleServiceDomain, "method": method},
		}}
	}
	w.Header().Set("Vary", "Origin, X-Origin, Referer")
	writeJSON(w, code, body)
}

type source struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

type fieldMetadata struct {
	Primary       bool   `json:"primary,omitempty"`
	Verified      bool   `json:"verified,omitempty"`
	Source        source `json:"source"`
	SourcePrimary bool   `json:"sourcePrimary,omitempty"`
}

type personName struct {
	Metadata             fieldMetadata `json:"metadata"`
	DisplayName          string        `json:"displayName,omitempty"`
	FamilyName           string        `json:"familyName,omitempty"`
	GivenName            string        `json:"givenName,omitempty"`
	DisplayNameLastFirst string        `json:"displayNameLastFirst,omitempty"`
	UnstructuredName     string        `json:"unstructuredName,omitempty"`
}

type personEmail struct {
	Metadata fieldMetadata `json:"metadata"`
	Value    string        `json:"value"`
}

type personPhoto struct {
	Metadata fieldMetadata `json:"metadata"`
	URL      string        `json:"url"`
	Default  bool          `json:"default,omitempty"`
}

type person struct {
	ResourceName   string        `json:"resourceName"`
	Etag           string        `json:"etag"`
	Names          []personName  `json:"names,omitempty"`
	Photos         []personPhoto `json:"photos,omitempty"`
	EmailAddresses []personEmail `json:"emailAddresses,omitempty"`
}

// peopleAccess checks a People API call's bearer token, as Google does
// first, and answers the error itself when it fails.
func (e *Emulator) peopleAccess(w http.ResponseWriter, r *http.Request, method string) (accessToken, User, bool) {
	a, u, st := e.checkAccess(bearer(r))
	switch st {
	case accessMissing:
		w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/"`)
		writeAPIErrorFor(w, method, http.StatusUnauthorized, "UNAUTHENTICATED", msgCredsMissing, "CREDENTIALS_MISSING")
		return a, u, false
	case accessExpired:
		w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="invalid_token"`)
		writeAPIErrorFor(w, method, http.StatusUnauthorized, "UNAUTHENTICATED", msgCredsInvalid, "ACCESS_TOKEN_EXPIRED")
		return a, u, false
	case accessInvalid:
		w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="invalid_token"`)
		writeAPIErrorFor(w, method, http.StatusUnauthorized, "UNAUTHENTICATED", msgCredsInvalid, "ACCESS_TOKEN_TYPE_UNSUPPORTED")
		return a, u, false
	}
	return a, u, true
}

// personMask parses personFields, answering Google's 400 itself when it is
// missing or names an unknown path.
func personMask(w http.ResponseWriter, r *http.Request, method string) (map[string]bool, bool) {
	mask := r.URL.Query().Get("personFields")
	if strings.TrimSpace(mask) == "" {
		writeAPIErrorFor(w, method, http.StatusBadRequest, "INVALID_ARGUMENT", msgMaskRequired, "")
		return nil, false
	}
	want := map[string]bool{}
	for _, p := range strings.Split(mask, ",") {
		p = strings.TrimPrefix(strings.TrimSpace(p), "person.")
		if !personFieldPaths[p] {
			writeAPIErrorFor(w, method, http.StatusBadRequest, "INVALID_ARGUMENT",
				"Invalid personFields mask path: \""+truncate(p, 100)+"\". Valid paths are documented at "+peopleDocsURL+".", "")
			return nil, false
		}
		want[p] = true
	}
	return want, true
}

// peopleRequest begins every People API call (method is its RPC name):
// CORS, no shared caching, the access token, then the personFields mask.
// On false the response is written.
func (e *Emulator) peopleRequest(w http.ResponseWriter, r *http.Request, method string) (accessToken, User, map[string]bool, bool) {
	allowCORS(w, r)
	w.Header().Set("Cache-Control", "private")
	a, u, ok := e.peopleAccess(w, r, method)
	if !ok {
		return a, u, nil, false
	}
	want, ok := personMask(w, r, method)
	return a, u, want, ok
}

// insufficientScope is Google's 403 for a token that lacks the scope a
// call needs.
func insufficientScope(w http.ResponseWriter, method, scope string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="insufficient_scope", scope="`+scope+`"`)
	writeAPIErrorFor(w, method, http.StatusForbidden, "PERMISSION_DENIED", msgScopesNotEnough, "ACCESS_TOKEN_SCOPE_INSUFFICIENT")
}

// handlePeopleMe is GET /v1/people/me. Authentication is checked first, as
// at Google, then the mask, then the scopes the mask needs.
func (e *Emulator) handlePeopleMe(w http.ResponseWriter, r *http.Request) {
	a, u, want, ok := e.peopleRequest(w, r, peopleGetPeopleRPC)
	if !ok {
		return
	}
	hasProfile, hasEmail := hasScope(a.scopes, scopeProfile), hasScope(a.scopes, scopeEmail)
	if (!hasProfile && !hasEmail) ||
		((want["names"] || want["photos"]) && !hasProfile) ||
		(want["emailAddresses"] && !hasEmail) {
		insufficientScope(w, peopleGetPeopleRPC, scopeProfile)
		return
	}

	profile := fieldMetadata{Primary: true, Source: source{Type: "PROFILE", ID: u.Sub}, SourcePrimary: true}
	p := person{ResourceName: "people/" + u.Sub, Etag: personEtag(u, want)}
	if want["names"] {
		n := personName{Metadata: profile, DisplayName: u.Name, FamilyName: u.FamilyName, GivenName: u.GivenName, UnstructuredName: u.Name}
		if u.FamilyName != "" && u.GivenName != "" {
			n.DisplayNameLastFirst = u.FamilyName + ", " + u.GivenName
		} else {
			n.DisplayNameLastFirst = u.Name
		}
		p.Names = []personName{n}
	}
	if want["photos"] {
		p.Photos = []personPhoto{{Metadata: fieldMetadata{Primary: true, Source: profile.Source}, URL: pictureURL(u, e.baseURL(r)), Default: u.Picture == ""}}
	}
	if want["emailAddresses"] {
		p.EmailAddresses = []personEmail{{
			Metadata: fieldMetadata{Primary: true, Verified: true, Source: source{Type: "ACCOUNT", ID: u.Sub}, SourcePrimary: true},
			Value:    u.Email,
		}}
	}
	w.Header().Set("Vary", "Origin, X-Origin, Referer")
	writeJSON(w, http.StatusOK, p)
}

// personEtag changes when the returned data does.
func personEtag(u User, want map[string]bool) string {
	h := sha256.New()
	for _, s := range []string{u.Sub, u.Name, u.GivenName, u.FamilyName, u.Email, u.Picture} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	for _, f := range []string{"names", "photos", "emailAddresses"} {
		if want[f] {
			h.Write([]byte(f))
		}
	}
	return "%" + b64(h.Sum(nil)[:18])
}

// The contacts scopes: people/me/connections needs one of them.
const (
	scopeContactsReadOnly = scopePrefix + "contacts.readonly"
	scopeContacts         = scopePrefix + "contacts"
)

// Connections paging, as Google's: pageSize 1 to 1000, default 100.
const (
	defaultConnectionsPageSize = 100
	maxConnectionsPageSize     = 1000
	connectionsPageTokenPrefix = "emu-connections."
)

// contactNames are the emulator's stock contacts. Each test user has
// contactCount(sub) of them: a few, the same on every run.
var contactNames = []string{
	"Charles Babbage", "Edsger Dijkstra", "Barbara Liskov", "Donald Knuth", "Margaret Hamilton",
	"Ken Thompson", "Frances Allen", "John McCarthy", "Radia Perlman", "Dennis Ritchie",
}

// contactCount is how many contacts the user with this sub has: 3 to 7,
// derived from the sub so that it is stable across runs and restarts.
func contactCount(sub string) int {
	sum := sha256.Sum256([]byte("contacts\x00" + sub))
	return 3 + int(sum[0]%5)
}

// Contacts is how many contacts the emulator's People API lists for the
// user with this sub (people/me/connections, every page).
func (e *Emulator) Contacts(sub string) int { return contactCount(sub) }

type connectionsResponse struct {
	Connections   []person `json:"connections,omitempty"`
	NextPageToken string   `json:"nextPageToken,omitempty"`
	TotalPeople   int      `json:"totalPeople"`
	TotalItems    int      `json:"totalItems"`
}

// handleConnections is GET /v1/people/me/connections: the user's
// contacts, paged with pageSize and pageToken/nextPageToken. It needs
// contacts.readonly (or contacts): a token without it gets Google's 403.
func (e *Emulator) handleConnections(w http.ResponseWriter, r *http.Request) {
	a, u, want, ok := e.peopleRequest(w, r, peopleListRPC)
	if !ok {
		return
	}
	if !hasScope(a.scopes, scopeContactsReadOnly) && !hasScope(a.scopes, scopeContacts) {
		insufficientScope(w, peopleListRPC, scopeContactsReadOnly)
		return
	}
	q := r.URL.Query()
	size := defaultConnectionsPageSize
	if v := q.Get("pageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxConnectionsPageSize {
			writeAPIErrorFor(w, peopleListRPC, http.StatusBadRequest, "INVALID_ARGUMENT",
				"Invalid value at 'page_size' ("+truncate(v, 32)+"): must be between 1 and 1000.", "")
			return
		}
		if n > 0 {
			size = n
		}
	}
	start := 0
	if t := q.Get("pageToken"); t != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(t, connectionsPageTokenPrefix+u.Sub+"."))
		if !strings.HasPrefix(t, connectionsPageTokenPrefix+u.Sub+".") || err != nil || n <= 0 {
			writeAPIErrorFor(w, peopleListRPC, http.StatusBadRequest, "INVALID_ARGUMENT", "Page token is not valid.", "")
			return
		}
		start = n
	}
	total := contactCount(u.Sub)
	resp := connectionsResponse{TotalPeople: total, TotalItems: total}
	end := min(start+size, total)
	for i := start; i < end; i++ {
		resp.Connections = append(resp.Connections, contactPerson(u.Sub, i, want))
	}
	if end < total {
		resp.NextPageToken = connectionsPageTokenPrefix + u.Sub + "." + strconv.Itoa(end)
	}
	w.Header().Set("Vary", "Origin, X-Origin, Referer")
	writeJSON(w, http.StatusOK, resp)
}

// contactPerson is the user's i-th contact, with the fields of want.
func contactPerson(sub string, i int, want map[string]bool) person {
	sum := sha256.Sum256([]byte(sub + "\x00" + strconv.Itoa(i)))
	id := "c" + strconv.FormatUint(uint64(sum[0])<<24|uint64(sum[1])<<16|uint64(sum[2])<<8|uint64(sum[3]), 10)
	name := contactNames[(int(sum[4])+i)%len(contactNames)]
	given, family := splitName(name)
	src := fieldMetadata{Primary: true, Source: source{Type: "CONTACT", ID: id}}
	p := person{ResourceName: "people/" + id, Etag: "%" + b64(sum[5:23])}
	if want["names"] {
		p.Names = []personName{{Metadata: src, DisplayName: name, GivenName: given, FamilyName: family,
			DisplayNameLastFirst: family + ", " + given, UnstructuredName: name}}
	}
	if want["emailAddresses"] {
		p.EmailAddresses = []personEmail{{Metadata: src,
			Value: strings.ToLower(strings.ReplaceAll(name, " ", ".")) + "@example.com"}}
	}
	return p
}
