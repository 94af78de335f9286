package grant

import (
	"slices"
	"strings"

	"example.com/signin"
)

// The scopes a grant is made of, in the form Google grants them (the token
// response's "scope" lists these long forms).
const (
	ScopeOpenID   = "openid"
	ScopeEmail    = "https://www.googleapis.com/auth/userinfo.email"
	ScopeProfile  = "https://www.googleapis.com/auth/userinfo.profile"
	scopeURLStart = "https://www.googleapis.com/auth/"
	// ScopeContactsReadOnly lets the offline work list the user's contacts
	// (People API people/me/connections).
	ScopeContactsReadOnly = scopeURLStart + "contacts.readonly"
)

// SignInScopes are the scopes every sign-in asks for: Google grants them as
// a block (granular consent gives a checkbox to each other scope only).
func SignInScopes() []string { return []string{ScopeOpenID, ScopeEmail, ScopeProfile} }

// IsSignInScope reports whether s (normalised) is one of SignInScopes.
func IsSignInScope(s string) bool {
	return s == ScopeOpenID || s == ScopeEmail || s == ScopeProfile
}

// NormalizeScope returns the form Google grants a scope in: "email" and
// "profile" are Google's userinfo scopes, "openid" is itself, a full URL
// stays as it is, and any other name (contacts.readonly) is one of
// https://www.googleapis.com/auth/. It refuses what cannot be a scope.
func NormalizeScope(s string) (string, error) {
	switch s {
	case "openid":
		return ScopeOpenID, nil
	case "email":
		return ScopeEmail, nil
	case "profile":
		return ScopeProfile, nil
	}
	if !strings.HasPrefix(s, "https://") {
		s = scopeURLStart + s
	}
	name := strings.TrimPrefix(strings.TrimPrefix(s, scopeURLStart), "https://")
	if name == "" || len(s) > 200 || strings.ContainsFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-/", r))
	}) {
		return "", signin.Errorf(signin.EINVALID, "invalid_scope", "%q is not a Google OAuth scope.", s)
	}
	return s, nil
}

// ParseScopes reads a list of the scopes the offline work needs beyond
// sign-in (the -scopes setting): names separated by commas or spaces, each
// normalised (NormalizeScope) and listed once, in the order given. A
// sign-in scope is refused: those are always asked for.
func ParseScopes(list string) ([]string, error) {
	var out []string
	for _, f := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		s, err := NormalizeScope(f)
		if err != nil {
			return nil, err
		}
		if IsSignInScope(s) {
			return nil, signin.Errorf(signin.EINVALID, "invalid_scope", "%q is a sign-in scope, always asked for: list only the scopes beyond sign-in.", f)
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// GrantedScopes is what rec's grant holds, by Google's word (the scope of
// the token answer that gave or refreshed its refresh token), normalised;
// nil for a nil record.
func (rec *Record) GrantedScopes() []string {
	if rec == nil {
		return nil
	}
	out := make([]string, 0, len(rec.Scopes))
	for _, s := range rec.Scopes {
		if n, err := NormalizeScope(s); err == nil && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// MissingScopes is which of needed (normalised, as ParseScopes returns
// them) rec's grant does not hold, in needed's order: what the user must
// still grant for the offline work to do everything it is configured to.
// A record without offline access misses them all.
func (rec *Record) MissingScopes(needed []string) []string {
	granted := rec.GrantedScopes()
	var out []string
	for _, s := range needed {
		if !slices.Contains(granted, s) {
			out = append(out, s)
		}
	}
	return out
}

// CodeScopeMissing is the error code, and the offline status, of a user
// whose grant lacks a scope the offline work needs: not a failure of the
// grant (it still works for the rest), but a consent the user must give.
const CodeScopeMissing = "scope_missing"
