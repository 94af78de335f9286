package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

const contactsScope = "https://www.googleapis.com/auth/contacts.readonly"

// offlineLine is one -json line of offline-fetch.
type offlineLine struct {
	Sub           string   `json:"sub"`
	Status        string   `json:"status"`
	Contacts      *int     `json:"contacts"`
	MissingScopes []string `json:"missing_scopes"`
}

// offlineFetchJSON runs offline-fetch -json with args and returns its exit
// code and the line about sub.
func (s *stack) offlineFetchJSON(ctx context.Context, t *testing.T, sub string, args ...string) (int, offlineLine, string) {
	t.Helper()
	code, stdout, stderr := s.offlineFetch(ctx, t, append([]string{"-json"}, args...)...)
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var x offlineLine
		if json.Unmarshal([]byte(l), &x) == nil && x.Sub == sub {
			return code, x, stderr
		}
	}
	t.Fatalf("offline-fetch printed no line for %s (exit %d)\nstdout:\n%s\nstderr:\n%s", sub, code, stdout, stderr)
	return 0, offlineLine{}, ""
}

// meScopes is what /api/me says of the user's scopes.
type meScopes struct {
	Offline       bool     `json:"offline"`
	GrantedScopes []string `json:"granted_scopes"`
	MissingScopes []string `json:"missing_scopes"`
}

// contactsAtGoogle counts sub's contacts at the emulator's People API,
// every page, with a token the control API mints for just that scope.
func (s *stack) contactsAtGoogle(ctx context.Context, t *testing.T, sub string) int {
	t.Helper()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := s.Emu.do(ctx, http.MethodPost, "/emulator/v1/tokens",
		map[string]string{"client_id": demoClientID, "sub": sub, "scope": contactsScope}, &tok); err != nil {
		t.Fatal(err)
	}
	n, pageToken := 0, ""
	for page := 0; ; page++ {
		if page > 50 {
			t.Fatal("people/me/connections never ends")
		}
		q := url.Values{"personFields": {"names"}, "pageSize": {"2"}}
		if pageToken != "" {
			q.Set("pageToken", pageToken)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.EmuURL+"/v1/people/me/connections?"+q.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Connections   []json.RawMessage `json:"connections"`
			NextPageToken string            `json:"nextPageToken"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("connections: %d %v", resp.StatusCode, err)
		}
		n += len(body.Connections)
		if pageToken = body.NextPageToken; pageToken == "" {
			return n
		}
	}
}

// TestGranularConsentAndGrantTheRest is the scopes scenario: signin runs
// with -scopes contacts.readonly; the user signs in with offline access
// and unticks the contacts box. They are signed in with offline access on,
// the page shows contacts missing, and offline-fetch says scope_missing for
// them (and succeeds). "Grant the rest" asks, in one popup, for just that
// scope: afterwards both are granted, the refresh token stored is a new
// one that holds the union (a refresh with it lists contacts), and
// offline-fetch lists the user's contacts count.
func TestGranularConsentAndGrantTheRest(t *testing.T) {
	s := startStackWith(t, "-scopes", "contacts.readonly")
	b := newBrowser(t, s)
	ctx := b.scenario()
	user := s.Emu.user(t, adaEmail)

	b.navigate(ctx, s.AppURL+"/", "signed-out")
	res := b.popup(ctx, selSigninOffline, account{Email: adaEmail, Untick: []string{contactsScope}})
	if !res.Consented {
		t.Fatal("the one-step sign-in showed no consent page")
	}
	b.waitOffline(ctx, "active")
	b.assertUser(ctx, user)
	if got := b.text(ctx, "#missing-scopes"); got != "contacts.readonly" {
		t.Errorf("#missing-scopes = %q, want contacts.readonly%s", got, b.pageSummary())
	}
	var me meScopes
	if status := b.appGet(ctx, "/api/me", &me); status != http.StatusOK || !me.Offline ||
		!slices.Equal(me.MissingScopes, []string{contactsScope}) || slices.Contains(me.GrantedScopes, contactsScope) {
		t.Errorf("/api/me = %d %+v, want offline, contacts missing", status, me)
	}
	first := record(t, s.CredDir, user.Sub)
	if first.Token.RefreshToken == "" || slices.Contains(first.Scopes, contactsScope) {
		t.Fatalf("stored after the partial grant: refresh token %v, scopes %v", first.Token.RefreshToken != "", first.Scopes)
	}

	code, line, stderr := s.offlineFetchJSON(ctx, t, user.Sub, "-scopes", "contacts.readonly")
	if code != 0 || line.Status != "scope_missing" || !slices.Equal(line.MissingScopes, []string{contactsScope}) {
		t.Errorf("offline-fetch: exit %d, line %+v; want exit 0 and scope_missing\n%s", code, line, stderr)
	}
	if !strings.Contains(stderr, "scope_missing=1") {
		t.Errorf("offline-fetch's summary does not count scope_missing:\n%s", stderr)
	}

	// /staticjs's token client, unticked the same way, shows the same
	// granted and missing scopes, read from Google's answer as GIS does.
	b.navigate(ctx, s.AppURL+"/staticjs", "signed-out")
	b.popup(ctx, selTokenSignin, account{Email: adaEmail, Untick: []string{contactsScope}})
	b.waitState(ctx, "signed-in")
	if got := b.text(ctx, "#token-missing-scopes"); got != "contacts.readonly" {
		t.Errorf("/staticjs #token-missing-scopes = %q, want contacts.readonly%s", got, b.pageSummary())
	}
	if got := b.text(ctx, "#token-granted-scopes"); got != "openid, email, profile" {
		t.Errorf("/staticjs #token-granted-scopes = %q, want openid, email, profile", got)
	}
	b.navigate(ctx, s.AppURL+"/", "signed-in")
	b.waitOffline(ctx, "active")

	popups := b.popupCount()
	res = b.popup(ctx, "#grant-missing", account{Email: adaEmail})
	if !res.Consented {
		t.Error("granting the rest showed no consent page")
	}
	b.waitJS(ctx, b.tab, "the page no longer asks for contacts", `(() => {
		if (document.body.dataset.state === "error") return "the page is in its error state: " + document.querySelector("#error").textContent;
		const granted = document.querySelector("#granted-scopes");
		return document.body.dataset.state === "signed-in" && !document.querySelector("#grant-missing") &&
			granted && granted.textContent.includes("contacts.readonly") ? "ok" : "";
	})()`)
	if n := b.popupCount() - popups; n != 1 {
		t.Errorf("granting the rest opened %d popups, want 1", n)
	}
	me = meScopes{}
	if status := b.appGet(ctx, "/api/me", &me); status != http.StatusOK || len(me.MissingScopes) != 0 ||
		!slices.Contains(me.GrantedScopes, contactsScope) || !slices.Contains(me.GrantedScopes, "https://www.googleapis.com/auth/userinfo.email") {
		t.Errorf("/api/me after granting the rest = %d %+v", status, me)
	}
	union := record(t, s.CredDir, user.Sub)
	if union.Token.RefreshToken == first.Token.RefreshToken {
		t.Error("the refresh token stored is still the partial grant's")
	}
	if !slices.Contains(union.Scopes, contactsScope) || !slices.Contains(union.Scopes, "openid") {
		t.Errorf("stored scopes %v, want the union", union.Scopes)
	}
	// The stored refresh token is the one that holds the union: Google's
	// refresh with it lists contacts.readonly.
	if scope := s.Emu.refreshScope(ctx, t, union.Token.RefreshToken); !strings.Contains(" "+scope+" ", " "+contactsScope+" ") || !strings.Contains(scope, "openid") {
		t.Errorf("refreshing the stored refresh token grants %q, want the union", scope)
	}

	code, line, stderr = s.offlineFetchJSON(ctx, t, user.Sub, "-scopes", "contacts.readonly")
	want := s.contactsAtGoogle(ctx, t, user.Sub)
	if code != 0 || line.Status != "ok" || line.Contacts == nil || *line.Contacts != want || want < 3 {
		t.Errorf("offline-fetch after granting the rest: exit %d, line %+v; want ok with %d contacts\n%s", code, line, want, stderr)
	}
	b.assertNoConsoleErrors()
}

// refreshScope refreshes refreshToken at the token endpoint and returns
// the scope Google says the new access token has.
func (c *emulatorClient) refreshScope(ctx context.Context, t *testing.T, refreshToken string) string {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken},
		"client_id": {demoClientID}, "client_secret": {demoClientSecret}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Scope string `json:"scope"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("refresh: %s %s %v", resp.Status, body.Error, err)
	}
	return body.Scope
}
