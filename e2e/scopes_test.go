package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"example.com/signin/internal/grant"
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

// httpUser is a user of the app without a browser: a cookie jar, and the
// header the app's XHRs carry.
type httpUser struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newHTTPUser(t *testing.T, base string) *httpUser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &httpUser{t: t, base: base, hc: &http.Client{Jar: jar}}
}

func (u *httpUser) do(ctx context.Context, method, path string, form url.Values) (int, []byte) {
	u.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequestWithContext(ctx, method, u.base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("X-Requested-With", "XmlHttpRequest")
	resp, err := u.hc.Do(req)
	if err != nil {
		u.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		u.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// TestScopeAddedAfterUsersGranted: an operator adds a scope to -scopes
// after a user granted offline access. The next offline run reports the
// user scope_missing (exit 0: not revoked, not failed, the record kept
// active), and the user's page, from a signin restarted with the new
// -scopes, asks for just that scope.
func TestScopeAddedAfterUsersGranted(t *testing.T) {
	s := startStack(t)
	ctx := t.Context()
	user := s.Emu.user(t, "grace@example.com")

	// Grace enables offline access (what the popup would hand the page).
	var code struct {
		Code string `json:"code"`
	}
	if err := s.Emu.do(ctx, http.MethodPost, "/emulator/v1/codes", map[string]any{
		"client_id": demoClientID, "sub": user.Sub, "scope": "openid email profile", "access_type": "offline",
		"include_granted_scopes": true,
	}, &code); err != nil {
		t.Fatal(err)
	}
	u := newHTTPUser(t, s.AppURL)
	if status, body := u.do(ctx, http.MethodPost, "/connect", url.Values{"code": {code.Code}}); status != http.StatusOK {
		t.Fatalf("/connect: %d %s", status, body)
	}
	if code, _, stderr := s.offlineFetch(ctx, t); code != 0 {
		t.Fatalf("offline-fetch before the new scope: exit %d\n%s", code, stderr)
	}

	// The operator adds contacts.readonly.
	exit, line, stderr := s.offlineFetchJSON(ctx, t, user.Sub, "-scopes", "contacts.readonly")
	if exit != 0 || line.Status != "scope_missing" || !slices.Equal(line.MissingScopes, []string{contactsScope}) {
		t.Errorf("offline-fetch -scopes contacts.readonly: exit %d, line %+v; want 0 and scope_missing\n%s", exit, line, stderr)
	}
	if rec := record(t, s.CredDir, user.Sub); rec.Status != grant.StatusActive || rec.Token.RefreshToken == "" {
		t.Errorf("after the run the record is %q (refresh token %v), want it active as it was", rec.Status, rec.Token.RefreshToken != "")
	}

	// signin restarted with the new -scopes, on the same credentials.
	app := startProcess(t, "signin -scopes", binaries.signin, s.WorkDir, s.env(),
		"-addr", "127.0.0.1:0", "-credentials", s.CredDir, "-scopes", "contacts.readonly")
	served := app.waitOutput(t, signinServing)
	waitHTTP(t, app, served+"/healthz")
	u2 := newHTTPUser(t, served)
	cred := s.Emu.mintIDToken(ctx, t, user.Sub)
	if status, body := u2.do(ctx, http.MethodPost, "/tokensignin", url.Values{"credential": {cred}}); status != http.StatusOK {
		t.Fatalf("/tokensignin: %d %s", status, body)
	}
	status, body := u2.do(ctx, http.MethodGet, "/api/me", nil)
	var me meScopes
	if err := json.Unmarshal(body, &me); err != nil || status != http.StatusOK || !me.Offline ||
		!slices.Equal(me.MissingScopes, []string{contactsScope}) {
		t.Errorf("/api/me: %d %s, want offline with contacts.readonly missing", status, body)
	}
	status, page := u2.do(ctx, http.MethodGet, "/", nil)
	cfg := regexp.MustCompile(`"missing_scope":"([^"]*)"`).FindSubmatch(page)
	if status != http.StatusOK || !strings.Contains(string(page), `id="grant-missing"`) || cfg == nil || string(cfg[1]) != contactsScope {
		t.Errorf("the page (%d) does not ask for just contacts.readonly: grant-missing button %v, missing_scope %q",
			status, strings.Contains(string(page), `id="grant-missing"`), cfg)
	}
}
