package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"example.com/signin/internal/grant"
	"example.com/signin/internal/seal"
)

// Selectors of the pages under test: the contract between the templates,
// the pages' JavaScript, the emulator's GIS stand-in and these tests.
const (
	selGISButton         = "#gsi-button button.gsi-emu-button" // the emulator's rendering of GIS renderButton
	selSigninOffline     = "#signin-offline"
	selEnableOffline     = "#enable-offline"
	selSignout           = "#signout"
	selSignoutEverywhere = "#signout-everywhere"
	selDisconnect        = "#disconnect"
	selTokenSignin       = "#token-signin"
	selTokenSignout      = "#token-signout"
	selTokenRevoke       = "#token-revoke"
)

// adaEmail is a test account the emulator has by default.
const adaEmail = "ada@example.com"

// TestServerFlow is scenario 1: on /, sign in with the GIS button (ID
// token), enable offline access (popup consent), reload, let offline-fetch
// act for the user, sign out and in again without a new consent, and
// disconnect.
func TestServerFlow(t *testing.T) {
	s := startStack(t)
	b := newBrowser(t, s)
	ctx := b.scenario()
	ada := account{Email: adaEmail}
	user := s.Emu.user(t, ada.Email)

	// Sign in with Google: an ID token, no offline access.
	b.navigate(ctx, s.AppURL+"/", "signed-out")
	b.popup(ctx, selGISButton, ada)
	b.waitState(ctx, "signed-in")
	b.assertUser(ctx, user)
	if n := b.popupCount(); n != 1 {
		t.Errorf("the sign-in opened %d popups, want 1", n) // also proves the popup count used below
	}
	if got := b.attr(ctx, "#offline-status", "data-state"); got != "none" {
		t.Fatalf("after an ID-token sign-in, #offline-status data-state = %q, want none", got)
	}
	if recs := records(t, s.CredDir); len(recs) != 0 {
		t.Fatalf("an ID-token sign-in stored %d credential records, want none", len(recs))
	}

	// Enable offline access: the code client's popup asks for consent.
	consent := b.popup(ctx, selEnableOffline, ada)
	if !consent.Consented {
		t.Error("enabling offline access did not show a consent page; Google asks for consent before it issues a refresh token")
	}
	b.waitOffline(ctx, "active")
	b.assertUser(ctx, user)
	b.assertProfile(ctx, user)
	rec := record(t, s.CredDir, user.Sub)
	if rec.Email != user.Email || rec.Status != grant.StatusActive || rec.Token.RefreshToken == "" {
		t.Fatalf("stored record: email %q, status %q, refresh token present %v; want %q, active, true",
			rec.Email, rec.Status, rec.Token.RefreshToken != "", user.Email)
	}
	b.saveScreenshot(ctx, "home-offline.png")

	// Reload: the session brings the user back, no popup.
	popups := b.popupCount()
	b.run(ctx, "reload", chromedp.Reload())
	b.waitOffline(ctx, "active")
	b.assertUser(ctx, user)
	if n := b.popupCount() - popups; n != 0 {
		t.Errorf("reloading the signed-in page opened %d popups, want none", n)
	}

	// offline-fetch acts for the user with the stored credentials.
	code, stdout, stderr := s.offlineFetch(ctx, t, "-user", user.Sub, "-json")
	if code != 0 {
		t.Fatalf("offline-fetch -user %s -json: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", user.Sub, code, stdout, stderr)
	}
	if !fetchedEmail(t, stdout, user.Sub, user.Email) {
		t.Fatalf("offline-fetch -json printed no line with sub %s and email %s:\n%s", user.Sub, user.Email, stdout)
	}

	// Sign out, then in again: the stored offline access is still there,
	// and getting it back needs neither consent nor a code exchange.
	b.click(ctx, selSignout)
	b.waitState(ctx, "signed-out")
	b.wantNotice(ctx, "You are signed out.")
	if status := b.appGet(ctx, "/api/me", nil); status != http.StatusUnauthorized {
		t.Errorf("after sign-out, GET /api/me = %d, want 401", status)
	}
	before := s.Emu.stats(t)
	again := b.popup(ctx, selGISButton, ada)
	if again.Consented {
		t.Error("signing in again showed a consent page; the user already granted access")
	}
	b.waitOffline(ctx, "active")
	b.assertUser(ctx, user)
	after := s.Emu.stats(t)
	if n := after.grants("authorization_code") - before.grants("authorization_code"); n != 0 {
		t.Errorf("signing in again exchanged %d codes at Google, want none", n)
	}
	if rec2 := record(t, s.CredDir, user.Sub); rec2.Token.RefreshToken != rec.Token.RefreshToken {
		t.Error("signing in again replaced the stored refresh token")
	}

	// Sign out everywhere, and say so; then back in for the disconnect.
	b.click(ctx, selSignoutEverywhere)
	b.waitState(ctx, "signed-out")
	b.wantNotice(ctx, "You are signed out everywhere")
	b.popup(ctx, selGISButton, ada)
	b.waitOffline(ctx, "active")

	// Disconnect: revoked at Google, record deleted, signed out.
	before = s.Emu.stats(t)
	b.click(ctx, selDisconnect)
	b.waitState(ctx, "signed-out")
	b.wantNotice(ctx, "Disconnected: this app's access was revoked at Google")
	if recs := records(t, s.CredDir); len(recs) != 0 {
		t.Errorf("after disconnect %d credential records remain, want none", len(recs))
	}
	after = s.Emu.stats(t)
	if n := after.revocations() - before.revocations(); n < 1 {
		t.Errorf("disconnect made %d revocations at the emulator, want at least 1", n)
	}
	if err := s.Emu.refresh(ctx, rec.Token.RefreshToken); err == nil {
		t.Error("after disconnect Google still accepts the refresh token the server had stored")
	}
	if status := b.appGet(ctx, "/api/me", nil); status != http.StatusUnauthorized {
		t.Errorf("after disconnect, GET /api/me = %d, want 401", status)
	}

	b.assertNoConsoleErrors()
}

// TestServerFlowOneStepNewUser is scenario 2: on /, "Sign in with offline
// access" in one step, as an account the chooser does not list yet (added
// with its add-account form).
func TestServerFlowOneStepNewUser(t *testing.T) {
	s := startStack(t)
	b := newBrowser(t, s)
	ctx := b.scenario()
	nova := account{Email: "nova.newcomer@example.net", Name: "Nova Newcomer"}
	if s.Emu.hasUser(t, nova.Email) {
		t.Fatalf("the emulator already knows %s; the test needs a new user", nova.Email)
	}

	b.navigate(ctx, s.AppURL+"/", "signed-out")
	res := b.popup(ctx, selSigninOffline, nova)
	if !res.Consented {
		t.Error("one-step offline sign-in showed no consent page")
	}
	b.waitOffline(ctx, "active")
	user := s.Emu.user(t, nova.Email)
	if user.Name != nova.Name {
		t.Errorf("the emulator added %s with name %q, want %q", nova.Email, user.Name, nova.Name)
	}
	b.assertUser(ctx, user)
	b.assertProfile(ctx, user)

	var me struct {
		User struct {
			Sub   string `json:"sub"`
			Email string `json:"email"`
		} `json:"user"`
		Offline bool `json:"offline"`
	}
	if status := b.appGet(ctx, "/api/me", &me); status != http.StatusOK {
		t.Fatalf("GET /api/me after one-step sign-in: %d, want 200", status)
	}
	if me.User.Sub != user.Sub || me.User.Email != user.Email || !me.Offline {
		t.Errorf("GET /api/me = %+v, want sub %s, email %s, offline true", me, user.Sub, user.Email)
	}
	rec := record(t, s.CredDir, user.Sub)
	if rec.Token.RefreshToken == "" || rec.Status != grant.StatusActive {
		t.Errorf("stored record for the new user: refresh token present %v, status %q; want true, active", rec.Token.RefreshToken != "", rec.Status)
	}

	b.assertNoConsoleErrors()
}

// TestClientSideFlow is scenario 3: /staticjs signs in with the token
// client, draws the same profile as / did, and the server stores nothing
// and exchanges nothing for it.
func TestClientSideFlow(t *testing.T) {
	s := startStack(t)
	b := newBrowser(t, s)
	ctx := b.scenario()
	grace := account{Email: "grace@example.com"}
	user := s.Emu.user(t, grace.Email)

	// The server-side flow first, for the profile it shows.
	b.navigate(ctx, s.AppURL+"/", "signed-out")
	b.popup(ctx, selSigninOffline, grace)
	b.waitOffline(ctx, "active")
	serverName, serverEmail := b.text(ctx, "#profile-name"), b.text(ctx, "#profile-email")

	files := snapshotDir(t, s.CredDir)
	before := s.Emu.stats(t)

	b.navigate(ctx, s.AppURL+"/staticjs", "signed-out")
	b.popup(ctx, selTokenSignin, grace)
	b.waitState(ctx, "signed-in")
	if name, email := b.text(ctx, "#profile-name"), b.text(ctx, "#profile-email"); name != serverName || email != serverEmail {
		t.Errorf("/staticjs shows %q <%s>, / showed %q <%s>; want the same profile", name, email, serverName, serverEmail)
	}
	b.assertProfile(ctx, user)
	b.saveScreenshot(ctx, "staticjs.png")

	after := s.Emu.stats(t)
	if n := after.tokenRequests() - before.tokenRequests(); n != 0 {
		t.Errorf("the client-side sign-in made %d requests to the token endpoint, want none (the token client gets its token in the browser)", n)
	}
	if after.peopleRequests()-before.peopleRequests() < 1 {
		t.Error("the emulator saw no People API call for /staticjs's profile")
	}
	if diff := diffDir(files, snapshotDir(t, s.CredDir)); diff != "" {
		t.Errorf("the client-side sign-in changed the server's credentials directory: %s", diff)
	}

	// Sign-out forgets the token in the page, and only there: the
	// server's offline access for the same user goes on working.
	before = after
	b.click(ctx, selTokenSignout)
	b.waitState(ctx, "signed-out")
	b.wantNotice(ctx, "You are signed out: this page forgot its access token.")
	if n := s.Emu.stats(t).revocations() - before.revocations(); n != 0 {
		t.Errorf("signing out of /staticjs made %d revocations at Google, want none", n)
	}
	if diff := diffDir(files, snapshotDir(t, s.CredDir)); diff != "" {
		t.Errorf("signing out of /staticjs changed the server's credentials directory: %s", diff)
	}
	if code, stdout, stderr := s.offlineFetch(ctx, t, "-user", grace.Email, "-json"); code != 0 || !fetchedEmail(t, stdout, user.Sub, user.Email) {
		t.Errorf("offline-fetch -user %s after a /staticjs sign-out: exit %d\n%s%s; want the server's offline access intact", grace.Email, code, stdout, stderr)
	}

	// "Revoke access at Google" is the separate, explained action: the
	// page's buttons are disabled while it runs, and it ends the app's
	// whole grant, the server's offline access included.
	b.popup(ctx, selTokenSignin, grace)
	b.waitState(ctx, "signed-in")
	var watching bool
	b.run(ctx, "watch the buttons while working", chromedp.Evaluate(`(() => {
		window.__buttonsWhileWorking = null;
		new MutationObserver(() => {
			if (document.body.dataset.state === "working" && window.__buttonsWhileWorking === null) {
				window.__buttonsWhileWorking = ["token-signin", "token-signout", "token-revoke"].map((id) => document.getElementById(id).disabled);
			}
		}).observe(document.body, {attributes: true, attributeFilter: ["data-state"]});
		return true;
	})()`, &watching))
	before = s.Emu.stats(t)
	b.click(ctx, selTokenRevoke)
	b.waitState(ctx, "signed-out")
	b.wantNotice(ctx, "Revoked at Google: this app's access to your account has ended, including the server's offline access")
	var disabled []bool
	b.run(ctx, "read the buttons while working", chromedp.Evaluate(`window.__buttonsWhileWorking`, &disabled))
	if len(disabled) != 3 || !disabled[0] || !disabled[1] || !disabled[2] {
		t.Errorf("buttons (sign in, sign out, revoke) disabled while working: %v, want all", disabled)
	}
	if n := s.Emu.stats(t).revocations() - before.revocations(); n < 1 {
		t.Errorf("revoking on /staticjs made %d revocations at Google, want at least 1", n)
	}
	if code, stdout, _ := s.offlineFetch(ctx, t, "-user", grace.Email, "-json"); code != 1 || !strings.Contains(stdout, `"revoked"`) {
		t.Errorf("offline-fetch -user %s after revoking on /staticjs: exit %d\n%s; want revoked, as the page says", grace.Email, code, stdout)
	}

	b.assertNoConsoleErrors()
}

// TestGISRedirectMode is scenario 4: GIS redirect mode (login_uri), where
// the emulator's chooser posts the credential and g_csrf_token to
// /tokensignin, in the browser; then the double-submit check, by replaying
// that post with the cookie missing or different.
func TestGISRedirectMode(t *testing.T) {
	s := startStack(t)
	ada := account{Email: adaEmail}
	user := s.Emu.user(t, ada.Email)

	t.Run("browser", func(t *testing.T) {
		b := newBrowser(t, s)
		ctx := b.scenario()
		b.navigate(ctx, s.AppURL+"/?ux=redirect", "signed-out")
		if mode := b.attr(ctx, "#gsi-button", "data-ux-mode"); mode != "redirect" {
			t.Fatalf("#gsi-button data-ux-mode = %q, want redirect", mode)
		}
		popups := b.popupCount()
		b.click(ctx, selGISButton)
		if _, err := driveEmulator(ctx, b.tab, nil, s.AppURL, ada); err != nil {
			t.Fatalf("redirect-mode chooser: %v%s", err, b.pageSummary())
		}
		b.waitState(ctx, "signed-in")
		b.assertUser(ctx, user)
		var path string
		b.run(ctx, "read location", chromedp.Evaluate(`location.pathname`, &path))
		if path != "/" {
			t.Errorf("after redirect-mode sign-in the page is %s, want /", path)
		}
		if n := b.popupCount() - popups; n != 0 {
			t.Errorf("redirect mode opened %d popups, want none", n)
		}
		b.assertNoConsoleErrors()
	})

	t.Run("double-submit cookie", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
		defer cancel()
		tests := []struct {
			name         string
			cookie, body string // g_csrf_token cookie and form field; "" = absent
			want         int
		}{
			{name: "cookie missing", body: "tok-1", want: http.StatusForbidden},
			{name: "cookie mismatched", cookie: "tok-2", body: "tok-1", want: http.StatusForbidden},
			{name: "field missing", cookie: "tok-1", want: http.StatusForbidden},
			{name: "both missing", want: http.StatusForbidden},
			// The control: the same post with matching values signs in,
			// so the refusals above are the double-submit check's.
			{name: "matching", cookie: "tok-1", body: "tok-1", want: http.StatusSeeOther},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				credential := s.Emu.mintIDToken(ctx, t, user.Sub)
				status, loc, signedIn := s.redirectModePost(ctx, t, credential, tt.cookie, tt.body)
				if status != tt.want {
					t.Fatalf("POST /tokensignin: %d, want %d", status, tt.want)
				}
				if want := tt.want == http.StatusSeeOther; signedIn != want {
					t.Errorf("signed in afterwards: %v, want %v", signedIn, want)
				}
				if tt.want == http.StatusSeeOther && loc != "/" {
					t.Errorf("redirected to %q, want /", loc)
				}
			})
		}
	})
}

// TestPagesHaveNoConsoleErrors is scenario 5 for the pages as first loaded
// (the flows above check their own console): /, / in redirect mode and
// /staticjs load with a Content-Security-Policy in force and raise no
// console error, exception or CSP violation.
func TestPagesHaveNoConsoleErrors(t *testing.T) {
	s := startStack(t)
	b := newBrowser(t, s)
	ctx := b.scenario()
	for _, path := range []string{"/", "/?ux=redirect", "/staticjs"} {
		resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(s.AppURL+path))
		if err != nil {
			t.Fatalf("load %s: %v", path, err)
		}
		// Without a CSP, "no CSP violations" would prove nothing.
		headers := http.Header{}
		for k, v := range resp.Headers {
			headers.Set(k, fmt.Sprint(v))
		}
		if csp := headers.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src") {
			t.Errorf("%s: Content-Security-Policy %q has no script-src", path, csp)
		}
		if coop := headers.Get("Cross-Origin-Opener-Policy"); coop != "same-origin-allow-popups" {
			t.Errorf("%s: Cross-Origin-Opener-Policy %q, want same-origin-allow-popups (GIS popups need it)", path, coop)
		}
		b.waitState(ctx, "signed-out")
		b.waitImages(ctx)
	}
	b.assertNoConsoleErrors()
}

// assertUser checks the signed-in view of / names the user.
func (b *browser) assertUser(ctx context.Context, u emuUser) {
	b.t.Helper()
	if got := b.text(ctx, "#user-email"); got != u.Email {
		b.t.Errorf("#user-email = %q, want %q", got, u.Email)
	}
	if got := b.text(ctx, "#user-name"); got != u.Name {
		b.t.Errorf("#user-name = %q, want %q", got, u.Name)
	}
}

// assertProfile checks the profile view (People API data) shows the user
// with a photo that loaded.
func (b *browser) assertProfile(ctx context.Context, u emuUser) {
	b.t.Helper()
	if got := b.text(ctx, "#profile-email"); got != u.Email {
		b.t.Errorf("#profile-email = %q, want %q", got, u.Email)
	}
	if got := b.text(ctx, "#profile-name"); got != u.Name {
		b.t.Errorf("#profile-name = %q, want %q", got, u.Name)
	}
	b.waitJS(ctx, b.tab, "#profile-photo to load", `(() => {
		const img = document.querySelector("#profile-photo");
		if (!img) return "there is no #profile-photo";
		if (img.hidden) return "";
		if (!img.complete) return "";
		return img.naturalWidth > 0 ? "ok" : "#profile-photo did not load: " + img.src;
	})()`)
}

// waitOffline waits until / shows the signed-in view with offline access in
// the given state (none, active, revoked).
// wantNotice checks that the page's notice is shown and starts with want:
// the page says what just happened.
func (b *browser) wantNotice(ctx context.Context, want string) {
	b.t.Helper()
	var shown bool
	b.run(ctx, "read #notice", chromedp.Evaluate(`!document.getElementById('notice').hidden`, &shown))
	if got := b.text(ctx, "#notice"); !shown || !strings.HasPrefix(got, want) {
		b.t.Errorf("#notice (shown %v) = %q, want it to start with %q%s", shown, got, want, b.pageSummary())
	}
}

func (b *browser) waitOffline(ctx context.Context, state string) {
	b.t.Helper()
	b.waitState(ctx, "signed-in")
	b.waitJS(ctx, b.tab, "#offline-status[data-state="+state+"]", fmt.Sprintf(`(() => {
		const s = document.body.dataset.state;
		if (s === "error") return "the page is in its error state: " + ((document.querySelector("#error") || {}).textContent || "").trim();
		const el = document.querySelector("#offline-status");
		return s === "signed-in" && el && el.dataset.state === %q ? "ok" : "";
	})()`, state))
}

// waitImages waits until every image of the page has loaded or failed.
func (b *browser) waitImages(ctx context.Context) {
	b.t.Helper()
	b.waitJS(ctx, b.tab, "images to load", `[...document.images].every(i => i.complete) ? "ok" : ""`)
}

// appGet does a GET on the app from Go with the browser's cookies for it:
// probing the API this way leaves no trace in the page (a fetch answered
// 401 would log a console error that scenario 5 rightly counts).
func (b *browser) appGet(ctx context.Context, path string, out any) int {
	b.t.Helper()
	var cookies []*network.Cookie
	b.run(ctx, "read the browser's cookies", chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		cookies, err = network.GetCookies().WithURLs([]string{b.appURL + path}).Do(ctx)
		return err
	}))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.appURL+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	// Copied as they are: net/http's Cookie would drop GIS's g_state
	// cookie, whose value is JSON.
	var pairs []string
	for _, c := range cookies {
		pairs = append(pairs, c.Name+"="+c.Value)
	}
	req.Header.Set("Cookie", strings.Join(pairs, "; "))
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
			b.t.Fatalf("GET %s: %v", path, err)
		}
	}
	return resp.StatusCode
}

// redirectModePost replays what a browser sends to login_uri in GIS
// redirect mode: a cross-site form post from Google's origin, with the
// g_csrf_token cookie (set on the app's site) and field as given. It
// reports the status, the redirect target, and whether the client is then
// signed in.
func (s *stack) redirectModePost(ctx context.Context, t *testing.T, credential, cookie, field string) (status int, location string, signedIn bool) {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	app, err := url.Parse(s.AppURL)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != "" {
		jar.SetCookies(app, []*http.Cookie{{Name: "g_csrf_token", Value: cookie, Path: "/"}})
	}
	client := &http.Client{
		Jar:     jar,
		Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	form := url.Values{"credential": {credential}, "select_by": {"btn"}}
	if field != "" {
		form.Set("g_csrf_token", field)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.AppURL+"/tokensignin", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", s.EmuURL)
	req.Header.Set("Referer", s.EmuURL+"/")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	req.Header.Set("Sec-Fetch-Dest", "document")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	me, err := http.NewRequestWithContext(ctx, http.MethodGet, s.AppURL+"/api/me", nil)
	if err != nil {
		t.Fatal(err)
	}
	meResp, err := client.Do(me)
	if err != nil {
		t.Fatal(err)
	}
	meResp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location"), meResp.StatusCode == http.StatusOK
}

// records reads every credential record in dir (the file backend's
// one-JSON-file-per-user format), checking each file's mode and that its
// tokens are sealed, and opens them with the key file the server made.
func records(t *testing.T, dir string) map[string]*grant.Record {
	t.Helper()
	keys, err := seal.LoadKeys(func(string) string { return "" }, filepath.Join(dir, seal.DefaultKeyFileName), nil)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	recs := make(map[string]*grant.Record)
	for _, e := range entries {
		// Dot files are the server's own (.session-key, locks), not records.
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var rec grant.Record
		if err := json.Unmarshal(data, &rec); err != nil || rec.Sub == "" {
			continue // not a record (a temporary file, say)
		}
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if mode := info.Mode().Perm(); mode != 0o600 {
			t.Errorf("credential file %s has mode %#o, want 0600", path, mode)
		}
		for _, tok := range []*string{&rec.Token.AccessToken, &rec.Token.RefreshToken} {
			if *tok != "" && !seal.IsSealed(*tok) {
				t.Errorf("credential file %s holds a token in the clear", path)
			}
			if *tok, err = keys.Open(rec.Sub, *tok); err != nil {
				t.Errorf("credential file %s: %v", path, err)
			}
		}
		recs[rec.Sub] = &rec
	}
	return recs
}

// record returns sub's stored record, failing the test if there is none.
func record(t *testing.T, dir, sub string) *grant.Record {
	t.Helper()
	rec, ok := records(t, dir)[sub]
	if !ok {
		t.Fatalf("no credential record for sub %s in %s", sub, dir)
	}
	if info, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	} else if mode := info.Mode().Perm(); mode != 0o700 {
		t.Errorf("credentials directory %s has mode %#o, want 0700", dir, mode)
	}
	return rec
}

// snapshotDir maps each file name in dir to its contents.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := make(map[string]string)
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = string(data)
	}
	return files
}

// diffDir describes how two snapshots differ, by file name only (the
// contents are secrets).
func diffDir(before, after map[string]string) string {
	var diffs []string
	for name, data := range after {
		old, ok := before[name]
		switch {
		case !ok:
			diffs = append(diffs, "added "+name)
		case old != data:
			diffs = append(diffs, "changed "+name)
		}
	}
	for name := range before {
		if _, ok := after[name]; !ok {
			diffs = append(diffs, "removed "+name)
		}
	}
	return strings.Join(diffs, ", ")
}

// fetchedEmail reports whether offline-fetch's JSON lines include one for
// sub with email.
func fetchedEmail(t *testing.T, out, sub, email string) bool {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var line struct {
			Sub    string `json:"sub"`
			Email  string `json:"email"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Errorf("offline-fetch -json printed a line that is not JSON: %q", sc.Text())
			continue
		}
		if line.Sub == sub && line.Email == email && line.Status == "ok" {
			return true
		}
	}
	return false
}

// TestSignOutEverywhere: the page's "Sign out everywhere" button ends the
// user's other sessions too (here, one made from another client), not only
// the browser's.
func TestSignOutEverywhere(t *testing.T) {
	s := startStack(t)
	b := newBrowser(t, s)
	ctx := b.scenario()
	ada := account{Email: adaEmail}
	user := s.Emu.user(t, ada.Email)
	b.navigate(ctx, s.AppURL+"/", "signed-out")
	b.popup(ctx, selGISButton, ada)
	b.waitState(ctx, "signed-in")

	// Another device: a session of its own.
	other := newClient()
	if st, _, err := other.post(ctx, s.AppURL, "/tokensignin", url.Values{"credential": {s.Emu.mintIDToken(ctx, t, user.Sub)}}); err != nil || st != http.StatusOK {
		t.Fatalf("second sign-in: %d %v", st, err)
	}
	if st, _, _ := other.get(ctx, s.AppURL, "/api/me"); st != http.StatusOK {
		t.Fatalf("second session: %d", st)
	}

	b.click(ctx, selSignoutEverywhere)
	b.waitState(ctx, "signed-out")
	if st, _, _ := other.get(ctx, s.AppURL, "/api/me"); st != http.StatusUnauthorized {
		t.Errorf("the other device after sign-out everywhere: %d, want 401", st)
	}
	b.assertNoConsoleErrors()
}
