package web

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"example.com/signin/internal/grant"
)

// anyStrings turns a JSON array into strings; a null or missing array is
// nil, which the API must never send.
func anyStrings(t *testing.T, v any) []string {
	t.Helper()
	a, ok := v.([]any)
	if !ok {
		t.Fatalf("%v (%T) is not a JSON array", v, v)
	}
	out := []string{}
	for _, x := range a {
		out = append(out, x.(string))
	}
	return out
}

// An operator adds a scope to -scopes after a user granted offline
// access: the user is not revoked, their page says which scope is
// missing and offers to ask for just that one, and /api/me lists it.
func TestMissingScopesAfterTheOperatorAddsOne(t *testing.T) {
	const sub = "s1"
	e := newTestEnv(t, func(c *Config) { c.OfflineScopes = []string{grant.ScopeContactsReadOnly} })
	e.store.put(grant.Record{Sub: sub, Email: "ada@example.com", Status: grant.StatusActive,
		Scopes: []string{"openid", grant.ScopeEmail, grant.ScopeProfile},
		Token:  grant.Token{AccessToken: "at", RefreshToken: "rt"}})
	b := e.browser()
	b.signIn(sub, "ada@example.com", "Ada")

	doc := parseHTML(t, b.get("/").body)
	if st, _ := attr(mustID(t, doc, "offline-status"), "data-state"); st != "active" {
		t.Errorf("offline state %q, want active: a missing scope is not a revoked grant", st)
	}
	if got := textOf(mustID(t, doc, "missing-scopes")); got != "contacts.readonly" {
		t.Errorf("missing scopes shown %q", got)
	}
	if got := textOf(mustID(t, doc, "granted-scopes")); got != "openid, email, profile" {
		t.Errorf("granted scopes shown %q", got)
	}
	mustID(t, doc, "grant-missing")
	cfg := pageConfigOf(t, doc)
	if cfg.MissingScope != grant.ScopeContactsReadOnly {
		t.Errorf("the grant-the-rest button would ask for %q, want just contacts.readonly", cfg.MissingScope)
	}
	if want := "openid email profile " + grant.ScopeContactsReadOnly; cfg.Scope != want {
		t.Errorf("the offline buttons ask for %q, want %q", cfg.Scope, want)
	}

	r := b.get("/api/me")
	if r.status != http.StatusOK {
		t.Fatalf("/api/me: %d %s", r.status, r.body)
	}
	me := r.json(t)
	if got := anyStrings(t, me["missing_scopes"]); !slices.Equal(got, []string{grant.ScopeContactsReadOnly}) {
		t.Errorf("missing_scopes %v", got)
	}
	if got := anyStrings(t, me["granted_scopes"]); !slices.Equal(got, []string{"openid", grant.ScopeEmail, grant.ScopeProfile}) {
		t.Errorf("granted_scopes %v", got)
	}
	if me["offline"] != true {
		t.Errorf("offline %v", me["offline"])
	}

	// The user grants it: the page stops asking.
	e.store.put(grant.Record{Sub: sub, Email: "ada@example.com", Status: grant.StatusActive,
		Scopes: []string{"openid", grant.ScopeEmail, grant.ScopeProfile, grant.ScopeContactsReadOnly},
		Token:  grant.Token{AccessToken: "at", RefreshToken: "rt2"}})
	doc = parseHTML(t, b.get("/").body)
	if byID(doc, "grant-missing") != nil || byID(doc, "missing-scopes") != nil {
		t.Error("the page still asks for a scope granted")
	}
	if !strings.Contains(textOf(mustID(t, doc, "granted-scopes")), "contacts.readonly") {
		t.Errorf("granted scopes shown %q", textOf(mustID(t, doc, "granted-scopes")))
	}
	me = b.get("/api/me").json(t)
	if got := anyStrings(t, me["missing_scopes"]); len(got) != 0 {
		t.Errorf("missing_scopes %v, want []", got)
	}
}

// Without offline access every configured scope is missing, and the
// arrays are arrays, never null.
func TestMeScopesWithoutOfflineAccess(t *testing.T) {
	e := newTestEnv(t)
	b := e.browser()
	b.signIn("s2", "grace@example.com", "Grace")
	me := b.get("/api/me").json(t)
	if got := anyStrings(t, me["granted_scopes"]); len(got) != 0 {
		t.Errorf("granted_scopes %v", got)
	}
	if got := anyStrings(t, me["missing_scopes"]); len(got) != 0 {
		t.Errorf("missing_scopes %v with no scope configured", got)
	}
	doc := parseHTML(t, b.get("/").body)
	if byID(doc, "grant-missing") != nil {
		t.Error("a grant-the-rest button without offline access")
	}
}
