package offline

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"example.com/signin/internal/emulator"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/store/file"
)

// connectScopes is connect with the user granting only granted of scope
// on the consent screen (and, with incremental, asking for scope with
// include_granted_scopes=true).
func (em *emulated) connectScopes(t testing.TB, st grant.Store, u emulator.User, scope, granted string, incremental bool) {
	t.Helper()
	code, err := em.e.MintCode(emulator.CodeRequest{ClientID: emulator.DemoClientID, Sub: u.Sub,
		Scope: scope, GrantedScope: granted, AccessType: "offline", IncludeGrantedScopes: incremental})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := em.google.Exchange(context.Background(), code)
	if err != nil {
		t.Fatalf("exchange for %s: %v", u.Email, err)
	}
	if _, _, err := em.grants(st).SaveExchange(context.Background(), u.Sub, grant.Identity{Email: u.Email, Name: u.Name}, tok); err != nil {
		t.Fatal(err)
	}
}

// runJSON runs offline-fetch with -scopes contacts.readonly and -json,
// and returns its lines by sub.
func runJSON(t *testing.T, em *emulated, st grant.Store, scopes ...string) (map[string]line, Summary, string) {
	t.Helper()
	var stdout, stderr strings.Builder
	sum, err := Run(t.Context(), Config{
		FetcherConfig: FetcherConfig{Grants: em.grants(st), HTTPClient: em.net.HTTPClient(), Scopes: scopes, ContactsPageSize: 2},
		JSON:          true, Stdout: &stdout, Stderr: &stderr,
	})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, stderr.String())
	}
	lines := map[string]line{}
	for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var x line
		if err := json.Unmarshal([]byte(l), &x); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		lines[x.Sub] = x
	}
	return lines, sum, stderr.String()
}

// A user who did not tick contacts.readonly is scope_missing (its own
// status and count; the run does not fail); one who granted it gets their
// contacts counted over every page. After an incremental grant of just
// the missing scope, the stored refresh token holds the union, and the
// next run counts that user's contacts too.
func TestScopeMissingAndContacts(t *testing.T) {
	em := newEmulated(t)
	st, err := file.Open(file.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	users := em.e.Users()
	ada, grace := users[0], users[1]
	all := "openid email profile " + grant.ScopeContactsReadOnly
	em.connectScopes(t, st, ada, all, "openid", false) // unticked contacts
	em.connectScopes(t, st, grace, all, "", false)     // granted everything

	lines, sum, stderr := runJSON(t, em, st, grant.ScopeContactsReadOnly)
	if sum.OK != 1 || sum.ScopeMissing != 1 || sum.Failed != 0 || ExitCode(sum, nil) != 0 {
		t.Errorf("summary %+v (exit %d), want ok=1 scope_missing=1 and success", sum, ExitCode(sum, nil))
	}
	if l := lines[ada.Sub]; l.Status != "scope_missing" || l.Error != "scope_missing" || len(l.MissingScopes) != 1 || l.MissingScopes[0] != grant.ScopeContactsReadOnly {
		t.Errorf("ada's line %+v", l)
	}
	if l := lines[grace.Sub]; l.Status != "ok" || l.Contacts == nil || *l.Contacts != em.e.Contacts(grace.Sub) {
		t.Errorf("grace's line %+v, want %d contacts", l, em.e.Contacts(grace.Sub))
	}
	if !strings.Contains(stderr, "ok=1 revoked=0 failed=0 skipped=0 scope_missing=1") {
		t.Errorf("summary line missing scope_missing:\n%s", stderr)
	}

	// Ada grants just the missing scope, incrementally.
	before, _ := st.Get(t.Context(), ada.Sub)
	em.connectScopes(t, st, ada, grant.ScopeContactsReadOnly, "", true)
	after, _ := st.Get(t.Context(), ada.Sub)
	if after.Token.RefreshToken == before.Token.RefreshToken || len(after.MissingScopes([]string{grant.ScopeContactsReadOnly})) != 0 {
		t.Fatalf("after the incremental grant: new refresh token %v, scopes %v", after.Token.RefreshToken != before.Token.RefreshToken, after.Scopes)
	}
	expire(t, st, ada.Sub) // the run refreshes with the stored refresh token, which must hold the union
	lines, sum, stderr = runJSON(t, em, st, grant.ScopeContactsReadOnly)
	if sum.OK != 2 || sum.ScopeMissing != 0 || sum.Refreshed != 1 {
		t.Errorf("summary %+v, want ok=2 refreshed=1\n%s", sum, stderr)
	}
	if l := lines[ada.Sub]; l.Contacts == nil || *l.Contacts != em.e.Contacts(ada.Sub) {
		t.Errorf("ada's line %+v, want %d contacts", l, em.e.Contacts(ada.Sub))
	}

	// The text output: a fourth column with the count.
	var stdout strings.Builder
	if _, err := Run(t.Context(), Config{
		FetcherConfig: FetcherConfig{Grants: em.grants(st), HTTPClient: em.net.HTTPClient(), Scopes: []string{grant.ScopeContactsReadOnly}},
		User:          ada.Sub, Stdout: &stdout,
	}); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%s\t%s\t%s\tcontacts=%d\n", ada.Sub, ada.Name, ada.Email, em.e.Contacts(ada.Sub)); stdout.String() != want {
		t.Errorf("text line %q, want %q", stdout.String(), want)
	}

	// Without -scopes nothing is counted and nobody misses anything.
	lines, sum, _ = runJSON(t, em, st)
	if sum.OK != 2 || lines[ada.Sub].Contacts != nil {
		t.Errorf("without -scopes: %+v %+v", sum, lines[ada.Sub])
	}
}

// An operator adds a scope after users granted: they are scope_missing
// on the next run (not revoked, not failed), and their record is kept
// as it was.
func TestScopeAddedAfterGrant(t *testing.T) {
	em := newEmulated(t)
	st, err := file.Open(file.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range em.e.Users() {
		em.connect(t, st, u)
	}
	n := len(em.e.Users())
	var stdout, stderr strings.Builder
	sum, err := Run(t.Context(), Config{
		FetcherConfig: FetcherConfig{Grants: em.grants(st), HTTPClient: em.net.HTTPClient(), Scopes: []string{grant.ScopeContactsReadOnly}},
		Stdout:        &stdout, Stderr: &stderr,
	})
	if err != nil || sum.ScopeMissing != n || sum.Revoked+sum.Failed+sum.OK != 0 || ExitCode(sum, err) != 0 {
		t.Fatalf("summary %+v, err %v, exit %d; want all %d scope_missing and success\n%s", sum, err, ExitCode(sum, err), n, stderr.String())
	}
	if !strings.Contains(stderr.String(), ": scope_missing: scope_missing: the user has not granted contacts.readonly") {
		t.Errorf("text output:\n%s", stderr.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout %q: scope_missing users are not results", stdout.String())
	}
	for _, u := range em.e.Users() {
		rec, err := st.Get(t.Context(), u.Sub)
		if err != nil || rec.Status != grant.StatusActive {
			t.Errorf("%s after the run: %v %v", u.Email, rec, err)
		}
	}
	if got := fmt.Sprint(em.e.Stats().Endpoints[emulator.EndpointPeople].Requests); got != "0" {
		t.Errorf("%s People API calls for users who miss a scope", got)
	}
}
