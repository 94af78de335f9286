package emulator

import (
	"crypto/sha256"
	"net/http"
	"strings"
)

// People API (people.googleapis.com): only GET /v1/people/me, the call
// the app makes, with Google's field mask rules and error bodies.

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
	body := apiError{Error: apiErrorBody{Code: code, Message: message, Status: status}}
	if reason != "" {
		body.Error.Details = []apiErrorInfo{{
			Type: "type.googleapis.com/google.rpc.ErrorInfo", Reason: reason, Domain: "googleapis.com",
			Metadata: map[string]string{"service": peopleServiceDomain, "method": peopleGetPeopleRPC},
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

// handlePeopleMe is GET /v1/people/me. Authentication is checked first, as
// at Google, then the mask, then the scopes the mask needs.
func (e *Emulator) handlePeopleMe(w http.ResponseWriter, r *http.Request) {
	allowCORS(w, r)
	w.Header().Set("Cache-Control", "private")
	a, u, st := e.checkAccess(bearer(r))
	switch st {
	case accessMissing:
		w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/"`)
		writeAPIError(w, http.StatusUnauthorized, "UNAUTHENTICATED", msgCredsMissing, "CREDENTIALS_MISSING")
		return
	case accessExpired:
		w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="invalid_token"`)
		writeAPIError(w, http.StatusUnauthorized, "UNAUTHENTICATED", msgCredsInvalid, "ACCESS_TOKEN_EXPIRED")
		return
	case accessInvalid:
		w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="invalid_token"`)
		writeAPIError(w, http.StatusUnauthorized, "UNAUTHENTICATED", msgCredsInvalid, "ACCESS_TOKEN_TYPE_UNSUPPORTED")
		return
	}

	mask := r.URL.Query().Get("personFields")
	if strings.TrimSpace(mask) == "" {
		writeAPIError(w, http.StatusBadRequest, "INVALID_ARGUMENT", msgMaskRequired, "")
		return
	}
	want := map[string]bool{}
	for _, p := range strings.Split(mask, ",") {
		p = strings.TrimPrefix(strings.TrimSpace(p), "person.")
		if !personFieldPaths[p] {
			writeAPIError(w, http.StatusBadRequest, "INVALID_ARGUMENT",
				"Invalid personFields mask path: \""+truncate(p, 100)+"\". Valid paths are documented at "+peopleDocsURL+".", "")
			return
		}
		want[p] = true
	}
	hasProfile, hasEmail := hasScope(a.scopes, scopeProfile), hasScope(a.scopes, scopeEmail)
	if (!hasProfile && !hasEmail) ||
		((want["names"] || want["photos"]) && !hasProfile) ||
		(want["emailAddresses"] && !hasEmail) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="insufficient_scope", scope="https://www.googleapis.com/auth/userinfo.profile"`)
		writeAPIError(w, http.StatusForbidden, "PERMISSION_DENIED", msgScopesNotEnough, "ACCESS_TOKEN_SCOPE_INSUFFICIENT")
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
