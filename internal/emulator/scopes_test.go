package emulator_test

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"example.com/signin/internal/emulator"
)

const contactsScope = "https://www.googleapis.com/auth/contacts.readonly"

// consentTicking approves the consent page with only the optional scopes
// in ticked left checked, as a person unticking boxes would.
func (e *env) consentTicking(t *testing.T, p page, ticked ...string) page {
	t.Helper()
	if p.kind() != "consent" {
		t.Fatalf("want the consent page, got %q (status %d)", p.kind(), p.status)
	}
	form := p.byID(t, "consent")
	v := formValues(form, p.byID(t, "approve"))
	for _, box := range optionalBoxes(p) {
		if slices.Contains(ticked, attr(box, "value")) {
			v.Add(attr(box, "name"), attr(box, "value"))
		}
	}
	return fetch(t, http.MethodPost, e.url(attr(form, "action")), v)
}

// optionalBoxes are the consent page's scope checkboxes (they belong to
// the #consent form by its form attribute).
func optionalBoxes(p page) []*html.Node {
	return findAll(p.doc, func(n *html.Node) bool {
		return n.Data == "input" && attr(n, "type") == "checkbox" && attr(n, "form") == "consent"
	})
}

func scopeSet(s string) []string { return strings.Fields(s) }

// allConnections lists people/me/connections page by page, pageSize at a
// time, and returns how many people it saw and how many pages.
func (e *env) allConnections(t *testing.T, at string, pageSize int) (people, pages int) {
	t.Helper()
	token := ""
	for {
		q := url.Values{"personFields": {"names,emailAddresses"}, "pageSize": {strconv.Itoa(pageSize)}}
		if token != "" {
			q.Set("pageToken", token)
		}
		r := e.get(t, "/v1/people/me/connections?"+q.Encode(), at)
		if r.status != http.StatusOK {
			t.Fatalf("connections page %d: %d %s", pages+1, r.status, r.raw)
		}
		conns, _ := r.body["connections"].([]any)
		people += len(conns)
		pages++
		if pages > 100 {
			t.Fatal("connections never end")
		}
		token = r.str("nextPageToken")
		if token == "" {
			return people, pages
		}
	}
}

// wantInsufficientScope checks Google's 403 for a token without the
// scope a call needs.
func wantInsufficientScope(t *testing.T, r response) {
	t.Helper()
	errObj, _ := r.body["error"].(map[string]any)
	details, _ := errObj["details"].([]any)
	var reason string
	if len(details) == 1 {
		d, _ := details[0].(map[string]any)
		reason, _ = d["reason"].(string)
	}
	if r.status != http.StatusForbidden || errObj["status"] != "PERMISSION_DENIED" || errObj["code"] != float64(403) ||
		errObj["message"] != "Request had insufficient authentication scopes." || reason != "ACCESS_TOKEN_SCOPE_INSUFFICIENT" {
		t.Errorf("want Google's 403 insufficient scopes, got %d %s", r.status, r.raw)
	}
	if !strings.Contains(r.header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
		t.Errorf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
	}
}

// A user who unticks a scope on the granular consent screen grants the
// rest: the code response, the token response, tokeninfo and refreshed
// tokens list only what was granted, and the People API refuses what
// needs the missing scope. Asking again for just that scope with
// include_granted_scopes=true gives a grant, and a new refresh token, for
// the union.
func TestGranularConsentThenIncremental(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	params := url.Values{
		"client_id": {demoID}, "redirect_uri": {"postmessage"}, "origin": {"http://localhost:9021"},
		"response_type": {"code"}, "scope": {"openid email profile " + contactsScope}, "access_type": {"offline"},
		"login_hint": {"ada@example.com"}, "channel_id": {"chan1"}, "include_granted_scopes": {"true"},
	}
	consent := fetch(t, http.MethodGet, e.authURL(params), nil)
	boxes := optionalBoxes(consent)
	if len(boxes) != 1 || attr(boxes[0], "value") != contactsScope {
		t.Fatalf("want one checkbox, for contacts.readonly (sign-in scopes are a block); got %d", len(boxes))
	}
	if !slices.ContainsFunc(boxes[0].Attr, func(a html.Attribute) bool { return a.Key == "checked" }) {
		t.Error("the contacts box is not checked to start with")
	}
	_, resp := popupResult(t, e.consentTicking(t, consent))
	if s, _ := resp["scope"].(string); strings.Contains(s, "contacts") || !slices.Contains(scopeSet(s), "email") {
		t.Errorf("code response scope %q: want the sign-in scopes only", s)
	}
	code, _ := resp["code"].(string)
	tok := e.exchange(t, code, "postmessage")
	if tok.status != 200 || tok.str("refresh_token") == "" || tok.str("id_token") == "" {
		t.Fatalf("exchange: %d %s", tok.status, tok.raw)
	}
	firstRT := tok.str("refresh_token")
	if s := tok.str("scope"); strings.Contains(s, "contacts") || !strings.Contains(s, "userinfo.email") {
		t.Errorf("token response scope %q: want the sign-in scopes only", s)
	}
	if r := e.get(t, "/tokeninfo?access_token="+tok.str("access_token"), ""); strings.Contains(r.str("scope"), "contacts") {
		t.Errorf("tokeninfo scope %q lists a scope not granted", r.str("scope"))
	}
	if r := e.refresh(t, firstRT); r.status != 200 || strings.Contains(r.str("scope"), "contacts") {
		t.Errorf("refresh: %d scope %q", r.status, r.str("scope"))
	}
	wantInsufficientScope(t, e.get(t, "/v1/people/me/connections?personFields=names", tok.str("access_token")))
	if r := e.people(t, tok.str("access_token")); r.status != 200 {
		t.Errorf("people/me with the sign-in scopes: %d %s", r.status, r.raw)
	}

	// Incremental: just the missing scope, include_granted_scopes=true.
	params.Set("scope", contactsScope)
	consent = fetch(t, http.MethodGet, e.authURL(params), nil)
	_, resp = popupResult(t, e.consentTicking(t, consent, contactsScope))
	s, _ := resp["scope"].(string)
	for _, want := range []string{contactsScope, "openid", "https://www.googleapis.com/auth/userinfo.email", "https://www.googleapis.com/auth/userinfo.profile"} {
		if !slices.Contains(scopeSet(s), want) {
			t.Errorf("incremental code response scope %q lacks %s", s, want)
		}
	}
	code, _ = resp["code"].(string)
	tok = e.exchange(t, code, "postmessage")
	rt := tok.str("refresh_token")
	if tok.status != 200 || rt == "" || rt == firstRT || !strings.Contains(tok.str("scope"), contactsScope) || tok.str("id_token") == "" {
		t.Fatalf("incremental exchange: want a new refresh token for the union, got %d %s", tok.status, tok.raw)
	}
	r := e.refresh(t, rt)
	if r.status != 200 || !slices.Contains(scopeSet(r.str("scope")), contactsScope) || !strings.Contains(r.str("scope"), "userinfo.email") {
		t.Fatalf("refreshing the union's token: %d %s", r.status, r.raw)
	}
	if r := e.get(t, "/tokeninfo?access_token="+r.str("access_token"), ""); !strings.Contains(r.str("scope"), contactsScope) {
		t.Errorf("tokeninfo of the union: scope %q", r.str("scope"))
	}
	n, pages := e.allConnections(t, r.str("access_token"), 2)
	if want := e.emu.Contacts(adaSub); n != want || want < 3 || pages != (want+1)/2 {
		t.Errorf("connections: %d people in %d pages, want %d in pages of 2", n, pages, want)
	}
	// The old refresh token still holds only what it was given.
	if r := e.refresh(t, firstRT); r.status != 200 || strings.Contains(r.str("scope"), "contacts") {
		t.Errorf("the first refresh token after the incremental grant: %d scope %q", r.status, r.str("scope"))
	}
}

// A consent that adds nothing new does not ask again, and gives no new
// refresh token (Google's rule: one per consent).
func TestIncrementalCoveredNeedsNoConsent(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	tok := e.exchange(t, e.mint(t, emulator.CodeRequest{Scope: "openid email profile " + contactsScope, AccessType: "offline"}), "postmessage")
	if tok.str("refresh_token") == "" {
		t.Fatalf("first consent: %s", tok.raw)
	}
	params := url.Values{
		"client_id": {demoID}, "redirect_uri": {"postmessage"}, "origin": {"http://localhost:9021"},
		"response_type": {"code"}, "scope": {"openid email profile"}, "access_type": {"offline"},
		"login_hint": {adaSub}, "channel_id": {"chan1"}, "include_granted_scopes": {"true"},
	}
	_, resp := popupResult(t, fetch(t, http.MethodGet, e.authURL(params), nil))
	if s, _ := resp["scope"].(string); !strings.Contains(s, contactsScope) || resp["prompt"] != "none" {
		t.Errorf("covered request: %v", resp)
	}
	code, _ := resp["code"].(string)
	if r := e.exchange(t, code, "postmessage"); r.str("refresh_token") != "" || !strings.Contains(r.str("scope"), contactsScope) {
		t.Errorf("covered exchange: %s", r.raw)
	}
}

// The control API grants exactly "scope", or the sign-in scopes plus
// "granted_scope" of it, for a code or for tokens at once.
func TestMintChosenScopes(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	// A code with a chosen subset: contacts asked for, not granted.
	r := e.postJSON(t, "/emulator/v1/codes", map[string]any{
		"client_id": demoID, "sub": adaSub, "scope": "openid email profile " + contactsScope + " https://www.googleapis.com/auth/calendar.readonly",
		"granted_scope": "https://www.googleapis.com/auth/calendar.readonly", "access_type": "offline",
	})
	if r.status != 200 {
		t.Fatalf("codes: %d %s", r.status, r.raw)
	}
	tok := e.exchange(t, r.str("code"), "postmessage")
	if s := tok.str("scope"); strings.Contains(s, "contacts") || !strings.Contains(s, "calendar.readonly") || !strings.Contains(s, "userinfo.profile") {
		t.Errorf("partial code's token scope %q", s)
	}
	wantInsufficientScope(t, e.get(t, "/v1/people/me/connections?personFields=names", tok.str("access_token")))

	// Tokens at once, exactly the scopes asked.
	r = e.postJSON(t, "/emulator/v1/tokens", map[string]any{"client_id": demoID, "email": "grace@example.com", "scope": "openid email " + contactsScope, "access_type": "offline", "prompt": "consent"})
	if r.status != 200 || r.str("access_token") == "" || r.str("refresh_token") == "" || r.str("token_type") != "Bearer" {
		t.Fatalf("tokens: %d %s", r.status, r.raw)
	}
	if got := scopeSet(r.str("scope")); len(got) != 3 || !slices.Contains(got, contactsScope) {
		t.Errorf("minted token scope %v, want exactly the three asked", got)
	}
	if n, _ := e.allConnections(t, r.str("access_token"), 0); n != e.emu.Contacts(graceSub) {
		t.Errorf("connections with the minted token: %d, want %d", n, e.emu.Contacts(graceSub))
	}
	if p := e.people(t, r.str("access_token")); p.status != http.StatusForbidden {
		t.Errorf("people/me names without profile: %d, want 403", p.status)
	}

	r = e.postJSON(t, "/emulator/v1/codes", map[string]any{"client_id": demoID, "sub": adaSub, "scope": "openid", "granted_scope": contactsScope})
	if r.status != 400 || r.str("error") != "invalid_argument" {
		t.Errorf("granted_scope beyond scope: %d %s", r.status, r.raw)
	}
}

func TestConnectionsRefusals(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	tok, err := e.emu.MintToken(emulator.CodeRequest{ClientID: demoID, Sub: adaSub, Scope: "openid " + contactsScope})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, query, token string
		status             int
	}{
		{"no token", "?personFields=names", "", 401},
		{"no mask", "", tok.AccessToken, 400},
		{"bad page token", "?personFields=names&pageToken=x", tok.AccessToken, 400},
		{"another user's page token", "?personFields=names&pageToken=emu-connections." + graceSub + ".2", tok.AccessToken, 400},
		{"page too large", "?personFields=names&pageSize=1001", tok.AccessToken, 400},
		{"ok", "?personFields=names&pageSize=1", tok.AccessToken, 200},
	} {
		r := e.get(t, "/v1/people/me/connections"+c.query, c.token)
		if r.status != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, r.status, r.raw, c.status)
		}
	}
	r := e.get(t, "/v1/people/me/connections?personFields=names,emailAddresses&pageSize=1", tok.AccessToken)
	conns, _ := r.body["connections"].([]any)
	if len(conns) != 1 || r.str("nextPageToken") == "" || r.body["totalPeople"] != float64(e.emu.Contacts(adaSub)) {
		t.Errorf("first page of 1: %s", r.raw)
	}
}
