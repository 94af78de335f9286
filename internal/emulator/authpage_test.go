package emulator_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"example.com/signin/internal/emulator"
)

// page is a fetched HTML page.
type page struct {
	status int
	header http.Header
	doc    *html.Node
	loc    *url.URL // Location of a redirect
}

// browser fetches without following redirects, as a test needs to see them.
var browser = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func fetch(t *testing.T, method, target string, form url.Values) page {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, target, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := browser.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	p := page{status: resp.StatusCode, header: resp.Header}
	if loc := resp.Header.Get("Location"); loc != "" {
		p.loc, _ = url.Parse(loc)
		return p
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("%s %s: %d %s, want HTML", method, target, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if p.doc, err = html.Parse(resp.Body); err != nil {
		t.Fatal(err)
	}
	return p
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasClass(n *html.Node, class string) bool {
	for _, c := range strings.Fields(attr(n, "class")) {
		if c == class {
			return true
		}
	}
	return false
}

func findAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

func (p page) byID(t *testing.T, id string) *html.Node {
	t.Helper()
	nodes := findAll(p.doc, func(n *html.Node) bool { return attr(n, "id") == id })
	if len(nodes) != 1 {
		t.Fatalf("want one #%s, found %d", id, len(nodes))
	}
	return nodes[0]
}

func (p page) kind() string {
	if b := findAll(p.doc, func(n *html.Node) bool { return n.Data == "body" }); len(b) == 1 {
		return attr(b[0], "data-page")
	}
	return ""
}

// formValues collects a form's inputs, plus the given submit button's
// name=value, as a browser submits them.
func formValues(form, submit *html.Node) url.Values {
	v := url.Values{}
	for _, in := range findAll(form, func(n *html.Node) bool { return n.Data == "input" }) {
		if name := attr(in, "name"); name != "" {
			v.Add(name, attr(in, "value"))
		}
	}
	if submit != nil && attr(submit, "name") != "" {
		v.Set(attr(submit, "name"), attr(submit, "value"))
	}
	return v
}

func (e *env) authURL(params url.Values) string {
	return e.url("/o/oauth2/v2/auth?" + params.Encode())
}

// chooseAccount clicks the chooser's button for email.
func (e *env) chooseAccount(t *testing.T, p page, email string) page {
	t.Helper()
	if p.kind() != "chooser" {
		t.Fatalf("want the chooser, got page %q (status %d)", p.kind(), p.status)
	}
	buttons := findAll(p.doc, func(n *html.Node) bool {
		return n.Data == "button" && hasClass(n, "account") && attr(n, "data-email") == email
	})
	if len(buttons) != 1 {
		t.Fatalf("want one button.account[data-email=%q], found %d", email, len(buttons))
	}
	form := p.byID(t, "choose-account")
	return fetch(t, http.MethodPost, e.url(attr(form, "action")), formValues(form, buttons[0]))
}

// consent clicks #approve or #deny.
func (e *env) consent(t *testing.T, p page, button string) page {
	t.Helper()
	if p.kind() != "consent" {
		t.Fatalf("want the consent page, got %q (status %d)", p.kind(), p.status)
	}
	form := p.byID(t, "consent")
	return fetch(t, http.MethodPost, e.url(attr(form, "action")), formValues(form, p.byID(t, button)))
}

func TestAuthRedirectFlow(t *testing.T) {
	const callback = "http://localhost:9021/callback"
	client := emulator.Client{ID: "3-web.apps.googleusercontent.com", Secret: "GOCSPX-web", RedirectURIs: []string{callback}}
	e := newEnv(t, emulator.Config{Clients: []emulator.Client{client}})
	params := url.Values{
		"client_id": {client.ID}, "redirect_uri": {callback}, "response_type": {"code"},
		"scope": {"openid email profile"}, "state": {"st8"}, "access_type": {"offline"},
	}

	chooser := fetch(t, http.MethodGet, e.authURL(params), nil)
	csp := chooser.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "form-action 'self' http://localhost:9021") {
		t.Errorf("chooser CSP = %q", csp)
	}
	consent := e.chooseAccount(t, chooser, "ada@example.com")
	var scopes []string
	for _, li := range findAll(consent.doc, func(n *html.Node) bool { return n.Data == "li" && attr(n, "data-scope") != "" }) {
		scopes = append(scopes, attr(li, "data-scope"))
	}
	if got := strings.Join(scopes, " "); got != "openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile offline_access" {
		t.Errorf("consent lists %q", got)
	}
	if attr(consent.byID(t, "consent-account"), "data-email") != "ada@example.com" {
		t.Error("consent page is not for the chosen account")
	}
	// Like Google, the consent page names the application asking, not its
	// client id (which means nothing to the person consenting).
	if got := nodeText(consent.byID(t, "consent-app")); got != "http://localhost:9021" {
		t.Errorf("consent page names the application %q, want its origin http://localhost:9021", got)
	}

	done := e.consent(t, consent, "approve")
	if done.status != http.StatusFound || done.loc == nil {
		t.Fatalf("approve: status %d, want a redirect", done.status)
	}
	q := done.loc.Query()
	if got := done.loc.Scheme + "://" + done.loc.Host + done.loc.Path; got != callback {
		t.Errorf("redirected to %s", got)
	}
	if q.Get("state") != "st8" || q.Get("prompt") != "consent" || q.Get("authuser") != "0" || !strings.Contains(q.Get("scope"), "openid") {
		t.Errorf("redirect query %v", q)
	}
	r := e.postForm(t, "/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {callback},
		"client_id": {client.ID}, "client_secret": {client.Secret},
	})
	if r.status != 200 || r.str("refresh_token") == "" {
		t.Fatalf("exchange: %d %s", r.status, r.raw)
	}

	// A returning user with a login_hint and everything granted is not asked again.
	params.Set("login_hint", "ada@example.com")
	again := fetch(t, http.MethodGet, e.authURL(params), nil)
	if again.status != http.StatusFound || again.loc.Query().Get("code") == "" || again.loc.Query().Get("prompt") != "none" {
		t.Errorf("returning user: status %d location %v", again.status, again.loc)
	}
	// prompt=consent asks again.
	params.Set("prompt", "consent")
	if p := fetch(t, http.MethodGet, e.authURL(params), nil); p.kind() != "consent" {
		t.Errorf("prompt=consent showed %q", p.kind())
	}
	// prompt=select_account shows the chooser despite the hint.
	params.Set("prompt", "select_account")
	if p := fetch(t, http.MethodGet, e.authURL(params), nil); p.kind() != "chooser" {
		t.Errorf("prompt=select_account showed %q", p.kind())
	}

	// Cancel redirects with access_denied.
	params.Del("prompt")
	params.Set("login_hint", "grace@example.com")
	denied := e.consent(t, fetch(t, http.MethodGet, e.authURL(params), nil), "deny")
	if denied.status != http.StatusFound || denied.loc.Query().Get("error") != "access_denied" || denied.loc.Query().Get("state") != "st8" {
		t.Errorf("deny: %d %v", denied.status, denied.loc)
	}
}

// popupResult reads the message a result page posts to its opener.
func popupResult(t *testing.T, p page) (target string, response map[string]any) {
	t.Helper()
	if p.kind() != "result" {
		t.Fatalf("want the popup result page, got %q (status %d)", p.kind(), p.status)
	}
	el := p.byID(t, "emu-result")
	var msg struct {
		Emulator, Channel, Kind string
		Response                map[string]any
	}
	if err := json.Unmarshal([]byte(attr(el, "data-message")), &msg); err != nil {
		t.Fatalf("data-message: %v", err)
	}
	if msg.Emulator != "google-emulator" || msg.Channel != "chan1" {
		t.Errorf("message envelope %+v", msg)
	}
	return attr(el, "data-target-origin"), msg.Response
}

func TestAuthPopupCodeFlow(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	params := url.Values{
		"client_id": {demoID}, "redirect_uri": {"postmessage"}, "origin": {"http://localhost:9021"},
		"response_type": {"code"}, "scope": {"openid email profile"}, "access_type": {"offline"},
		"login_hint": {"ada@example.com"}, "state": {"s1"}, "channel_id": {"chan1"}, "include_granted_scopes": {"true"},
	}
	consent := fetch(t, http.MethodGet, e.authURL(params), nil)
	if !strings.Contains(consent.header.Get("Content-Security-Policy"), "form-action 'self';") {
		t.Errorf("popup pages should only post to themselves: %q", consent.header.Get("Content-Security-Policy"))
	}
	target, resp := popupResult(t, e.consent(t, consent, "approve"))
	if target != "http://localhost:9021" {
		t.Errorf("postMessage target origin %q, want the opener's origin exactly", target)
	}
	if resp["state"] != "s1" || resp["prompt"] != "consent" || resp["authuser"] != "0" {
		t.Errorf("code response %v", resp)
	}
	scope, _ := resp["scope"].(string)
	for _, s := range []string{"email", "profile", "openid", "https://www.googleapis.com/auth/userinfo.email"} {
		if !strings.Contains(" "+scope+" ", " "+s+" ") {
			t.Errorf("scope %q lacks %s", scope, s)
		}
	}
	code, _ := resp["code"].(string)
	tok := e.exchange(t, code, "postmessage")
	if tok.status != 200 || tok.str("refresh_token") == "" {
		t.Fatalf("exchange: %d %s", tok.status, tok.raw)
	}
	wantOAuthError(t, e.exchange(t, code, "http://localhost:9021"), 400, "invalid_grant", "Code was already redeemed.")
}

func TestAuthPopupTokenFlow(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	params := url.Values{
		"client_id": {demoID}, "redirect_uri": {"postmessage"}, "origin": {"http://127.0.0.1:8080"},
		"response_type": {"token"}, "scope": {"openid email profile"}, "channel_id": {"chan1"},
	}
	consent := e.chooseAccount(t, fetch(t, http.MethodGet, e.authURL(params), nil), "grace@example.com")
	_, resp := popupResult(t, e.consent(t, consent, "approve"))
	if resp["token_type"] != "Bearer" || resp["expires_in"] != float64(3599) {
		t.Errorf("token response %v", resp)
	}
	at, _ := resp["access_token"].(string)
	if r := e.people(t, at); r.status != 200 || r.str("resourceName") != "people/"+graceSub {
		t.Errorf("people with the implicit token: %d %s", r.status, r.raw)
	}
	if _, ok := resp["refresh_token"]; ok {
		t.Error("the token flow gave a refresh token")
	}
}

func TestAuthAddAccount(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	params := url.Values{
		"client_id": {demoID}, "redirect_uri": {"postmessage"}, "origin": {"http://localhost:9021"},
		"response_type": {"code"}, "scope": {"openid email profile"}, "channel_id": {"chan1"},
	}
	chooser := fetch(t, http.MethodGet, e.authURL(params), nil)
	form := chooser.byID(t, "add-account")
	for _, name := range []string{"email", "name"} {
		if len(findAll(form, func(n *html.Node) bool { return n.Data == "input" && attr(n, "name") == name })) != 1 {
			t.Errorf("#add-account lacks input[name=%s]", name)
		}
	}
	v := formValues(form, nil)
	v.Set("email", "dorothy@example.com")
	v.Set("name", "Dorothy Vaughan")
	consent := fetch(t, http.MethodPost, e.url(attr(form, "action")), v)
	if attr(consent.byID(t, "consent-account"), "data-email") != "dorothy@example.com" {
		t.Fatal("consent is not for the added account")
	}
	_, resp := popupResult(t, e.consent(t, consent, "approve"))
	tok := e.exchange(t, resp["code"].(string), "postmessage")
	if c := claims(t, tok.str("id_token")); c["email"] != "dorothy@example.com" || c["name"] != "Dorothy Vaughan" {
		t.Errorf("claims of the added account: %v", c)
	}

	v.Set("email", "not an address")
	if p := fetch(t, http.MethodPost, e.url(attr(form, "action")), v); p.status != 400 || p.kind() != "chooser" {
		t.Errorf("bad email: %d %q", p.status, p.kind())
	}
}

func TestAuthRequestValidation(t *testing.T) {
	web := emulator.Client{ID: "4-web.apps.googleusercontent.com", Secret: "s", JavaScriptOrigins: []string{"https://app.example"}, RedirectURIs: []string{"https://app.example/cb"}}
	e := newEnv(t, emulator.Config{Clients: []emulator.Client{emulator.DemoClient(), web}})
	base := func() url.Values {
		return url.Values{"client_id": {web.ID}, "redirect_uri": {"https://app.example/cb"}, "response_type": {"code"}, "scope": {"openid email"}}
	}
	tests := []struct {
		name   string
		edit   func(url.Values)
		status int
		code   string
	}{
		{"no client_id", func(v url.Values) { v.Del("client_id") }, 400, "invalid_request"},
		{"unknown client", func(v url.Values) { v.Set("client_id", "9-x.apps.googleusercontent.com") }, 401, "invalid_client"},
		{"no redirect_uri", func(v url.Values) { v.Del("redirect_uri") }, 400, "invalid_request"},
		{"unregistered redirect_uri", func(v url.Values) { v.Set("redirect_uri", "https://app.example/other") }, 400, "redirect_uri_mismatch"},
		{"popup from a foreign origin", func(v url.Values) { v.Set("redirect_uri", "postmessage"); v.Set("origin", "https://evil.example") }, 400, "origin_mismatch"},
		{"popup without origin", func(v url.Values) { v.Set("redirect_uri", "postmessage") }, 400, "invalid_request"},
		{"demo client from a non-loopback origin", func(v url.Values) {
			v.Set("client_id", demoID)
			v.Set("redirect_uri", "postmessage")
			v.Set("origin", "http://example.com")
		}, 400, "origin_mismatch"},
		{"no response_type", func(v url.Values) { v.Del("response_type") }, 400, "invalid_request"},
		{"bad response_type", func(v url.Values) { v.Set("response_type", "password") }, 400, "unsupported_response_type"},
		{"no scope", func(v url.Values) { v.Del("scope") }, 400, "invalid_request"},
		{"bad scope", func(v url.Values) { v.Set("scope", "openid calendar") }, 400, "invalid_scope"},
		{"bad access_type", func(v url.Values) { v.Set("access_type", "always") }, 400, "invalid_request"},
		{"bad prompt", func(v url.Values) { v.Set("prompt", "login") }, 400, "invalid_request"},
		{"id_token without nonce", func(v url.Values) { v.Set("response_type", "id_token") }, 400, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := base()
			tt.edit(v)
			p := fetch(t, http.MethodGet, e.authURL(v), nil)
			if p.status != tt.status || p.kind() != "error" {
				t.Fatalf("status %d page %q, want %d error page", p.status, p.kind(), tt.status)
			}
			mains := findAll(p.doc, func(n *html.Node) bool { return n.Data == "main" })
			if got := attr(mains[0], "data-error"); got != tt.code {
				t.Errorf("error %q, want %q", got, tt.code)
			}
		})
	}

	t.Run("storagerelay origin", func(t *testing.T) {
		v := base()
		v.Set("redirect_uri", "storagerelay://https/app.example?id=auth123")
		if p := fetch(t, http.MethodGet, e.authURL(v), nil); p.kind() != "chooser" {
			t.Errorf("GIS storagerelay redirect_uri: page %q", p.kind())
		}
	})
	t.Run("prompt=none without a known user", func(t *testing.T) {
		v := base()
		v.Set("prompt", "none")
		v.Set("state", "s")
		p := fetch(t, http.MethodGet, e.authURL(v), nil)
		if p.status != http.StatusFound || p.loc.Query().Get("error") != "interaction_required" || p.loc.Query().Get("state") != "s" {
			t.Errorf("prompt=none: %d %v", p.status, p.loc)
		}
	})
}

func TestGSISelect(t *testing.T) {
	e := newEnv(t, emulator.Config{})

	t.Run("popup", func(t *testing.T) {
		q := url.Values{"client_id": {demoID}, "ux_mode": {"popup"}, "origin": {"http://localhost:9021"}, "nonce": {"gsi-nonce"}, "channel_id": {"chan1"}}
		consent := e.chooseAccount(t, fetch(t, http.MethodGet, e.url("/gsi/select?"+q.Encode()), nil), "ada@example.com")
		target, resp := popupResult(t, e.consent(t, consent, "approve"))
		if target != "http://localhost:9021" || resp["select_by"] != "btn" {
			t.Errorf("gsi popup answer: %s %v", target, resp)
		}
		c := claims(t, resp["credential"].(string))
		if c["aud"] != demoID || c["sub"] != adaSub || c["nonce"] != "gsi-nonce" || c["email_verified"] != true {
			t.Errorf("credential claims %v", c)
		}
		// Second sign-in: no consent page.
		q.Set("login_hint", adaSub)
		if _, resp := popupResult(t, fetch(t, http.MethodGet, e.url("/gsi/select?"+q.Encode()), nil)); resp["credential"] == nil {
			t.Error("returning user got no credential")
		}
	})

	t.Run("redirect", func(t *testing.T) {
		q := url.Values{"client_id": {demoID}, "ux_mode": {"redirect"}, "login_uri": {"http://localhost:9021/tokensignin"}, "g_csrf_token": {"csrf123"}, "login_hint": {"ada@example.com"}}
		p := fetch(t, http.MethodGet, e.url("/gsi/select?"+q.Encode()), nil)
		if p.kind() != "form-post" {
			t.Fatalf("page %q", p.kind())
		}
		form := p.byID(t, "emu-form-post")
		v := formValues(form, nil)
		if attr(form, "action") != "http://localhost:9021/tokensignin" || attr(form, "method") != "post" || v.Get("g_csrf_token") != "csrf123" || v.Get("credential") == "" {
			t.Errorf("form post: action %q values %v", attr(form, "action"), v)
		}
		if !strings.Contains(p.header.Get("Content-Security-Policy"), "form-action 'self' http://localhost:9021") {
			t.Errorf("CSP does not allow the post: %q", p.header.Get("Content-Security-Policy"))
		}
	})

	t.Run("refusals", func(t *testing.T) {
		for name, q := range map[string]url.Values{
			"unknown client":   {"client_id": {"x"}, "origin": {"http://localhost:9021"}},
			"foreign origin":   {"client_id": {demoID}, "origin": {"https://evil.example"}},
			"no csrf token":    {"client_id": {demoID}, "ux_mode": {"redirect"}, "login_uri": {"http://localhost:9021/tokensignin"}},
			"foreign loginuri": {"client_id": {demoID}, "ux_mode": {"redirect"}, "login_uri": {"https://evil.example/x"}, "g_csrf_token": {"c"}},
		} {
			if p := fetch(t, http.MethodGet, e.url("/gsi/select?"+q.Encode()), nil); p.kind() != "error" || p.status < 400 {
				t.Errorf("%s: %d %q", name, p.status, p.kind())
			}
		}
	})
}

func TestPagesAreCSPClean(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	params := url.Values{"client_id": {demoID}, "redirect_uri": {"postmessage"}, "origin": {"http://localhost:9021"}, "response_type": {"code"}, "scope": {"openid"}, "channel_id": {"chan1"}}
	chooser := fetch(t, http.MethodGet, e.authURL(params), nil)
	consent := e.chooseAccount(t, chooser, "ada@example.com")
	result := e.consent(t, consent, "approve")
	errPage := fetch(t, http.MethodGet, e.url("/o/oauth2/v2/auth"), nil)
	index := fetch(t, http.MethodGet, e.url("/"), nil)
	for _, p := range []page{chooser, consent, result, errPage, index} {
		for _, n := range findAll(p.doc, func(n *html.Node) bool { return n.Data == "script" }) {
			if attr(n, "src") == "" {
				t.Errorf("%s page has an inline script", p.kind())
			}
		}
		if n := findAll(p.doc, func(n *html.Node) bool { return attr(n, "style") != "" || n.Data == "style" }); len(n) > 0 {
			t.Errorf("%s page has inline styles", p.kind())
		}
		if p.header.Get("Cross-Origin-Opener-Policy") != "" {
			t.Errorf("%s page sets COOP, which would cut the popup from its opener", p.kind())
		}
	}
	for _, asset := range []string{"/emulator/static/page.js", "/emulator/static/page.css"} {
		if r := e.get(t, asset, ""); r.status != 200 {
			t.Errorf("%s: %d", asset, r.status)
		}
	}
}

func TestGISScript(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	r := e.get(t, "/gsi/client", "")
	if r.status != 200 || r.header.Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Fatalf("/gsi/client: %d %q", r.status, r.header.Get("Content-Type"))
	}
	if !strings.Contains(r.raw, `var EMULATOR = "`+e.srv.URL+`";`) {
		t.Error("the script does not carry the emulator's origin")
	}
	for _, api := range []string{"initialize", "renderButton", "prompt", "disableAutoSelect", "initCodeClient", "initTokenClient", "requestCode", "requestAccessToken", "hasGrantedAllScopes", "hasGrantedAnyScope", "revoke"} {
		if !strings.Contains(r.raw, api) {
			t.Errorf("the script lacks %s", api)
		}
	}
	for _, banned := range []string{"eval(", "new Function", "setAttribute('style'", `postMessage(message, "*")`, "innerHTML"} {
		if strings.Contains(r.raw, banned) {
			t.Errorf("the script uses %s", banned)
		}
	}
	if r := e.get(t, "/gsi/style", ""); r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/css") {
		t.Errorf("/gsi/style: %d %q", r.status, r.header.Get("Content-Type"))
	}
}

func TestGSIRevoke(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	tok := e.offlineTokens(t)
	req, _ := http.NewRequest(http.MethodPost, e.url("/gsi/revoke"), strings.NewReader(url.Values{"client_id": {demoID}, "hint": {"ada@example.com"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://localhost:9021")
	r := do(t, req)
	if r.status != 200 || r.body["successful"] != true || r.header.Get("Access-Control-Allow-Origin") != "http://localhost:9021" {
		t.Errorf("gsi revoke: %d %s", r.status, r.raw)
	}
	wantOAuthError(t, e.refresh(t, tok.str("refresh_token")), 400, "invalid_grant", "")
}

// nodeText is the text n holds.
func nodeText(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.TrimSpace(b.String())
}
