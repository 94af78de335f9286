package emulator

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// The account chooser and consent pages: /o/oauth2/v2/auth (OAuth 2.0 and
// OpenID Connect, used by GIS's code and token clients) and /gsi/select
// (GIS's "Sign in with Google" ID token flow). Each step is a form that
// posts the original parameters back (hidden fields) plus the emu_* fields
// of the step, and every post is validated again from scratch, so the pages
// keep no server-side state.

type flowKind int

const (
	flowOAuth flowKind = iota // /o/oauth2/v2/auth
	flowGSI                   // /gsi/select
)

// authRequest is a validated authorization request.
type authRequest struct {
	kind   flowKind
	path   string
	params url.Values // the request's own parameters, posted back by each step
	client Client

	code, token, idToken bool   // response types
	redirectURI          string // as sent; "postmessage" for popups
	popup                bool   // answer the opener with postMessage
	targetOrigin         string // the opener's origin (popup)
	formPost             bool   // answer with an auto-submitted POST form
	channel              string // the GIS stand-in's id for this popup

	requested      []string // scopes as spelled by the client
	scopes         []string // scopes normalised
	offline        bool     // access_type=offline
	prompts        map[string]bool
	includeGranted bool
	// granted is what the user ticked on the consent screen: the sign-in
	// scopes asked for (granted as a block) and the other scopes whose
	// box stayed checked. Nil: every scope asked for (no consent screen,
	// or a form that showed no boxes).
	granted []string

	state, nonce, loginHint, hd string
	challenge, challengeMethod  string
	csrf                        string // GIS redirect mode's g_csrf_token
}

// authError is an error shown on Google's error page rather than sent back
// to the client (before the redirect URI is known to be safe, or for
// malformed requests).
type authError struct {
	status      int
	code        string
	description string
}

var gsiScopes = []string{scopeOpenID, scopeEmail, scopeProfile}

const policyError = "You can't sign in to this app because it doesn't comply with Google's OAuth 2.0 policy."

// requestClient is the client an authorization request names; notFound is
// what Google says of an unknown one, which differs between its flows.
func (e *Emulator) requestClient(p url.Values, notFound string) (Client, *authError) {
	id := p.Get("client_id")
	if id == "" {
		return Client{}, &authError{400, "invalid_request", "Missing required parameter: client_id"}
	}
	c, ok := e.clients[id]
	if !ok {
		return Client{}, &authError{401, "invalid_client", notFound}
	}
	return c, nil
}

func (e *Emulator) parseOAuthRequest(p url.Values) (*authRequest, *authError) {
	req := &authRequest{kind: flowOAuth, params: p, prompts: map[string]bool{}}
	c, aerr := e.requestClient(p, "The OAuth client was not found.")
	if aerr != nil {
		return nil, aerr
	}
	req.client = c

	req.redirectURI = p.Get("redirect_uri")
	switch {
	case req.redirectURI == "":
		return nil, &authError{400, "invalid_request", "Missing required parameter: redirect_uri"}
	case req.redirectURI == "postmessage" || strings.HasPrefix(req.redirectURI, "storagerelay://"):
		// Popup: the code goes to the opener, whose origin must be one of the
		// client's JavaScript origins. GIS sends it as storagerelay://
		// scheme/host:port?id=..., older libraries as origin=.
		origin := p.Get("origin")
		if req.redirectURI != "postmessage" {
			origin = storageRelayOrigin(req.redirectURI)
		}
		if origin == "" {
			return nil, &authError{400, "invalid_request", "Missing required parameter: origin"}
		}
		if !c.originAllowed(origin) {
			return nil, &authError{400, "origin_mismatch", policyError + " Request details: origin=" + origin}
		}
		req.popup, req.targetOrigin = true, mustOrigin(origin)
	case c.redirectAllowed(req.redirectURI):
	default:
		return nil, &authError{400, "redirect_uri_mismatch", policyError + " If you're the app developer, register the redirect URI in the Google Cloud Console. Request details: redirect_uri=" + req.redirectURI}
	}

	rt := p.Get("response_type")
	if rt == "" {
		return nil, &authError{400, "invalid_request", "Required parameter is missing: response_type"}
	}
	for _, t := range strings.Fields(rt) {
		switch {
		case t == "code" && !req.code:
			req.code = true
		case t == "token" && !req.token:
			req.token = true
		case t == "id_token" && !req.idToken:
			req.idToken = true
		default:
			return nil, &authError{400, "unsupported_response_type", "Invalid response_type: " + truncate(rt, 100)}
		}
	}

	raw := p.Get("scope")
	if strings.TrimSpace(raw) == "" {
		return nil, &authError{400, "invalid_request", "Missing required parameter: scope"}
	}
	var invalid []string
	req.requested, req.scopes, invalid = parseScopes(raw)
	if len(invalid) > 0 {
		return nil, &authError{400, "invalid_scope", "Some requested scopes were invalid. {valid=[" + strings.Join(req.scopes, ", ") + "], invalid=[" + strings.Join(invalid, ", ") + "]}"}
	}
	if req.idToken && !hasScope(req.scopes, scopeOpenID) {
		return nil, &authError{400, "invalid_request", "Missing required parameter: scope openid (response_type id_token)"}
	}

	switch at := p.Get("access_type"); at {
	case "", "online":
	case "offline":
		req.offline = true
	default:
		return nil, &authError{400, "invalid_request", "Invalid access_type: " + truncate(at, 64)}
	}
	for _, pr := range strings.Fields(p.Get("prompt")) {
		if pr != "none" && pr != "consent" && pr != "select_account" {
			return nil, &authError{400, "invalid_request", "Invalid prompt: " + truncate(p.Get("prompt"), 64)}
		}
		req.prompts[pr] = true
	}
	if req.prompts["none"] && len(req.prompts) > 1 {
		return nil, &authError{400, "invalid_request", "Invalid prompt: none cannot be combined with other values"}
	}
	switch rm := p.Get("response_mode"); rm {
	case "", "query", "fragment":
	case "form_post":
		req.formPost = !req.popup
	default:
		return nil, &authError{400, "invalid_request", "Invalid response_mode: " + truncate(rm, 64)}
	}
	req.includeGranted = p.Get("include_granted_scopes") == "true"
	req.state, req.nonce, req.loginHint, req.hd = p.Get("state"), p.Get("nonce"), p.Get("login_hint"), p.Get("hd")
	if req.idToken && !req.code && req.nonce == "" {
		return nil, &authError{400, "invalid_request", "Missing required parameter: nonce"}
	}
	req.challenge, req.challengeMethod = p.Get("code_challenge"), p.Get("code_challenge_method")
	switch {
	case req.challenge == "" && req.challengeMethod != "":
		return nil, &authError{400, "invalid_request", "Missing required parameter: code_challenge"}
	case req.challengeMethod == "":
		req.challengeMethod = "plain"
	case req.challengeMethod != "plain" && req.challengeMethod != "S256":
		return nil, &authError{400, "invalid_request", "Invalid code_challenge_method: " + truncate(req.challengeMethod, 64)}
	}
	req.channel = p.Get("channel_id")
	if len(req.state) > 4096 || len(req.nonce) > 1024 || len(req.loginHint) > 512 || len(req.channel) > 128 {
		return nil, &authError{400, "invalid_request", "Parameter too long."}
	}
	return req, nil
}

func (e *Emulator) parseGSIRequest(p url.Values) (*authRequest, *authError) {
	req := &authRequest{kind: flowGSI, params: p, prompts: map[string]bool{}, idToken: true}
	c, aerr := e.requestClient(p, "The given client ID is not found.")
	if aerr != nil {
		return nil, aerr
	}
	req.client = c
	req.requested, req.scopes = []string{"openid", "email", "profile"}, gsiScopes
	switch mode := p.Get("ux_mode"); mode {
	case "", "popup":
		origin := p.Get("origin")
		if origin == "" {
			return nil, &authError{400, "invalid_request", "Missing required parameter: origin"}
		}
		if !c.originAllowed(origin) {
			return nil, &authError{400, "origin_mismatch", "The given origin is not allowed for the given client ID. Request details: origin=" + origin}
		}
		req.popup, req.targetOrigin = true, mustOrigin(origin)
	case "redirect":
		req.redirectURI = p.Get("login_uri")
		if req.redirectURI == "" {
			return nil, &authError{400, "invalid_request", "Missing required parameter: login_uri"}
		}
		if !c.redirectAllowed(req.redirectURI) {
			return nil, &authError{400, "redirect_uri_mismatch", policyError + " If you're the app developer, register the login_uri as a redirect URI in the Google Cloud Console. Request details: login_uri=" + req.redirectURI}
		}
		req.csrf = p.Get("g_csrf_token")
		if req.csrf == "" {
			return nil, &authError{400, "invalid_request", "Missing required parameter: g_csrf_token"}
		}
		req.formPost = true
	default:
		return nil, &authError{400, "invalid_request", "Invalid ux_mode: " + truncate(mode, 64)}
	}
	req.nonce, req.loginHint, req.hd, req.channel = p.Get("nonce"), p.Get("login_hint"), p.Get("hd"), p.Get("channel_id")
	if len(req.nonce) > 1024 || len(req.loginHint) > 512 || len(req.channel) > 128 || len(req.csrf) > 256 {
		return nil, &authError{400, "invalid_request", "Parameter too long."}
	}
	return req, nil
}

// storageRelayOrigin turns GIS's storagerelay://http/localhost:9021?id=x
// into http://localhost:9021.
func storageRelayOrigin(uri string) string {
	rest := strings.TrimPrefix(uri, "storagerelay://")
	scheme, hostAndQuery, ok := strings.Cut(rest, "/")
	if !ok {
		return ""
	}
	host, _, _ := strings.Cut(hostAndQuery, "?")
	return scheme + "://" + host
}

func mustOrigin(s string) string {
	o, _ := parseOrigin(s) // already validated by originAllowed
	return o
}

func (e *Emulator) handleAuth(w http.ResponseWriter, r *http.Request) {
	e.serveFlow(w, r, flowOAuth)
}

func (e *Emulator) handleGSISelect(w http.ResponseWriter, r *http.Request) {
	e.serveFlow(w, r, flowGSI)
}

// serveFlow runs one step of the chooser -> consent -> answer sequence.
func (e *Emulator) serveFlow(w http.ResponseWriter, r *http.Request, kind flowKind) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		e.renderError(w, r, &authError{400, "invalid_request", "Bad Request"})
		return
	}
	params := url.Values{}
	for k, v := range r.Form {
		if !isStepField(k) {
			params[k] = v
		}
	}
	var req *authRequest
	var aerr *authError
	if kind == flowGSI {
		req, aerr = e.parseGSIRequest(params)
	} else {
		req, aerr = e.parseOAuthRequest(params)
	}
	if aerr != nil {
		e.renderError(w, r, aerr)
		return
	}
	req.path = r.URL.Path

	var action string
	if r.Method == http.MethodPost {
		action = r.PostForm.Get("emu_action")
	}
	var user *User
	switch action {
	case "add_account":
		u, err := e.userFromForm(r.PostForm.Get("email"), r.PostForm.Get("name"))
		if err != nil {
			e.renderChooser(w, r, req, http.StatusBadRequest, err.Error())
			return
		}
		user = &u
	case "choose", "approve", "deny":
		if user = e.userBySub(r.PostForm.Get("emu_account")); user == nil {
			e.renderChooser(w, r, req, http.StatusBadRequest, "That account is not known here any more. Choose another.")
			return
		}
	case "":
		if !req.prompts["select_account"] {
			user = e.userByHint(req.loginHint)
		}
	default:
		e.renderError(w, r, &authError{400, "invalid_request", "Unknown step."})
		return
	}

	if req.prompts["none"] {
		switch {
		case user == nil:
			e.answerError(w, r, req, "interaction_required", "")
		case e.needsConsent(req, *user):
			e.answerError(w, r, req, "consent_required", "")
		default:
			e.answer(w, r, req, *user, false)
		}
		return
	}
	switch {
	case user == nil:
		e.renderChooser(w, r, req, http.StatusOK, "")
	case action == "deny":
		e.answerError(w, r, req, "access_denied", "")
	case action == "approve":
		req.granted = consentedScopes(req, r.PostForm)
		e.answer(w, r, req, *user, true)
	case e.needsConsent(req, *user):
		e.renderConsent(w, r, req, *user)
	default:
		e.answer(w, r, req, *user, false)
	}
}

// isStepField names the fields the pages add; they are not part of the
// request and are never posted back.
func isStepField(k string) bool {
	return strings.HasPrefix(k, "emu_") || k == "email" || k == "name"
}

func (e *Emulator) userBySub(sub string) *User {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if u := e.id.users[sub]; u != nil {
		c := *u
		return &c
	}
	return nil
}

func (e *Emulator) userByHint(hint string) *User {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if u := e.id.userByHint(hint); u != nil {
		c := *u
		return &c
	}
	return nil
}

// userFromForm is "Use another account": the account is created on the spot
// (or found, if the email is known).
func (e *Emulator) userFromForm(email, name string) (User, error) {
	email = strings.TrimSpace(email)
	e.mu.Lock()
	if u := e.id.userByHint(email); u != nil && email != "" {
		c := *u
		e.mu.Unlock()
		return c, nil
	}
	u, err := e.id.addUser(User{Email: email, Name: name})
	e.mu.Unlock()
	if err == nil {
		e.changed()
	}
	return u, err
}

// needsConsent: Google asks again when prompt=consent says so, or when the
// request wants a scope (or offline access) the user has not granted yet.
func (e *Emulator) needsConsent(req *authRequest, u User) bool {
	if req.prompts["consent"] {
		return true
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	return !e.id.covers(grantKey{req.client.ID, u.Sub}, req.scopes, req.offline && req.code)
}

// answer issues what the request asked for and hands it to the client.
func (e *Emulator) answer(w http.ResponseWriter, r *http.Request, req *authRequest, u User, consentShown bool) {
	base := e.baseURL(r)
	prompt := "none"
	if consentShown {
		prompt = "consent"
	}
	k := grantKey{req.client.ID, u.Sub}

	if req.kind == flowGSI {
		e.mu.Lock()
		e.id.consent(k, gsiScopes, false, false)
		e.mu.Unlock()
		e.changed()
		cred, err := e.idToken(u, req.client.ID, gsiScopes, req.nonce, "", base)
		if err != nil {
			e.renderError(w, r, &authError{500, "internal_failure", "Could not sign the ID token."})
			return
		}
		if req.popup {
			e.renderResult(w, r, req, map[string]any{"credential": cred, "select_by": "btn", "client_id": req.client.ID, "clientId": req.client.ID})
			return
		}
		e.renderFormPost(w, r, req, [][2]string{{"credential", cred}, {"g_csrf_token", req.csrf}, {"select_by", "btn"}})
		return
	}

	now := e.now()
	ttl := e.accessTTL()
	e.mu.Lock()
	scopes := req.scopes
	if req.granted != nil {
		scopes = req.granted
	}
	g, giveRefresh := e.id.consent(k, scopes, req.offline && req.code, req.prompts["consent"])
	if req.includeGranted {
		scopes = unionScopes(scopes, g.grantedScopes())
	}
	var code, at string
	if req.code {
		code = newCode()
		e.id.codes[code] = &authCode{
			key: k, gen: g.gen, scopes: scopes, redirectURI: req.redirectURI, nonce: req.nonce,
			offline: req.offline, giveRefresh: giveRefresh, challenge: req.challenge,
			challengeMethod: req.challengeMethod, issued: now, fam: &family{},
		}
	}
	if req.token {
		at = e.id.issueAccess(k, g, scopes, false, now, now.Add(ttl), nil)
	}
	e.mu.Unlock()
	e.changed()

	var fields [][2]string
	add := func(k, v string) {
		if v != "" {
			fields = append(fields, [2]string{k, v})
		}
	}
	add("code", code)
	if at != "" {
		add("access_token", at)
		add("token_type", "Bearer")
		add("expires_in", strconv.Itoa(int(ttl.Seconds())))
	}
	if req.idToken {
		idt, err := e.idToken(u, req.client.ID, scopes, req.nonce, at, base)
		if err != nil {
			e.renderError(w, r, &authError{500, "internal_failure", "Could not sign the ID token."})
			return
		}
		add("id_token", idt)
	}
	add("state", req.state)
	add("scope", gisScopeString(req.requested, scopes))
	add("authuser", "0")
	add("hd", u.HostedDomain)
	add("prompt", prompt)
	e.deliver(w, r, req, fields)
}

// answerError hands an OAuth error (access_denied, consent_required...) to
// the client the way a success would go.
func (e *Emulator) answerError(w http.ResponseWriter, r *http.Request, req *authRequest, code, description string) {
	fields := [][2]string{{"error", code}}
	if description != "" {
		fields = append(fields, [2]string{"error_description", description})
	}
	if req.state != "" {
		fields = append(fields, [2]string{"state", req.state})
	}
	if req.kind == flowGSI && !req.popup {
		// GIS redirect mode has no error channel to the site: show a page.
		e.renderError(w, r, &authError{400, code, "Sign-in was cancelled. You can close this page and go back to the site."})
		return
	}
	e.deliver(w, r, req, fields)
}

// deliver sends the answer's fields: to the opener (popup), as a POST form
// (form_post), in the fragment (implicit) or in the query (code).
func (e *Emulator) deliver(w http.ResponseWriter, r *http.Request, req *authRequest, fields [][2]string) {
	switch {
	case req.popup:
		m := make(map[string]any, len(fields))
		for _, f := range fields {
			if f[0] == "expires_in" {
				n, _ := strconv.Atoi(f[1])
				m[f[0]] = n // GIS hands expires_in to the page as a number
				continue
			}
			m[f[0]] = f[1]
		}
		e.renderResult(w, r, req, m)
	case req.formPost:
		e.renderFormPost(w, r, req, fields)
	default:
		v := url.Values{}
		for _, f := range fields {
			v.Set(f[0], f[1])
		}
		target := req.redirectURI
		if req.token || req.idToken {
			target, _, _ = strings.Cut(target, "#")
			target += "#" + v.Encode()
		} else {
			u, _ := url.Parse(target) // validated: registered or a parsed loopback URI
			q := u.Query()
			for k, vs := range v {
				q[k] = vs
			}
			u.RawQuery = q.Encode()
			u.Fragment = ""
			target = u.String()
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		http.Redirect(w, r, target, http.StatusFound)
	}
}

// popupMessage is what the popup posts to its opener. Only the emulator's
// GIS stand-in reads it; its shape is the emulator's own.
type popupMessage struct {
	Emulator string         `json:"emulator"` // always "google-emulator"
	Channel  string         `json:"channel"`  // the channel_id the opener sent
	Kind     string         `json:"kind"`     // "oauth" or "gsi"
	Response map[string]any `json:"response"` // what GIS hands the page's callback
}

func (e *Emulator) renderResult(w http.ResponseWriter, r *http.Request, req *authRequest, response map[string]any) {
	kind := "oauth"
	if req.kind == flowGSI {
		kind = "gsi"
	}
	msg, err := json.Marshal(popupMessage{Emulator: "google-emulator", Channel: req.channel, Kind: kind, Response: response})
	if err != nil {
		e.renderError(w, r, &authError{500, "internal_failure", "Backend Error"})
		return
	}
	e.renderPage(w, http.StatusOK, "result", pageData{
		Title: "Signing in…", ClientID: req.client.ID, TargetOrigin: req.targetOrigin, Message: string(msg),
	}, nil)
}

func (e *Emulator) renderFormPost(w http.ResponseWriter, r *http.Request, req *authRequest, fields [][2]string) {
	d := pageData{Title: "Signing in…", ClientID: req.client.ID, PostURL: req.redirectURI}
	for _, f := range fields {
		d.Fields = append(d.Fields, hiddenField{Name: f[0], Value: f[1]})
	}
	e.renderPage(w, http.StatusOK, "form-post", d, []string{originOf(req.redirectURI)})
}

func (e *Emulator) renderChooser(w http.ResponseWriter, r *http.Request, req *authRequest, status int, problem string) {
	base := e.baseURL(r)
	e.mu.RLock()
	users := e.id.listUsers()
	e.mu.RUnlock()
	d := e.stepData(req, base)
	d.Title = "Choose an account"
	d.Problem = problem
	for _, u := range users {
		d.Users = append(d.Users, viewUser(u, base))
	}
	if hint := e.userByHint(req.loginHint); hint != nil {
		d.HintSub = hint.Sub
	}
	e.renderPage(w, status, "chooser", d, e.formTargets(req))
}

func (e *Emulator) renderConsent(w http.ResponseWriter, r *http.Request, req *authRequest, u User) {
	base := e.baseURL(r)
	d := e.stepData(req, base)
	d.Title = "Sign in with Google"
	d.User = viewUser(u, base)
	for _, s := range req.scopes {
		d.Scopes = append(d.Scopes, scopeView{Scope: s, Description: describeScope(s), Optional: !isSignInScope(s)})
	}
	d.Offline = req.offline && req.code
	e.renderPage(w, http.StatusOK, "consent", d, e.formTargets(req))
}

func (e *Emulator) stepData(req *authRequest, base string) pageData {
	d := pageData{ClientID: req.client.ID, Action: req.path, GSI: req.kind == flowGSI}
	keys := make([]string, 0, len(req.params))
	for k := range req.params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range req.params[k] {
			d.Hidden = append(d.Hidden, hiddenField{Name: k, Value: v})
		}
	}
	if req.targetOrigin != "" {
		d.AppOrigin = req.targetOrigin
	} else {
		d.AppOrigin = originOf(req.redirectURI)
	}
	return d
}

// formTargets are the origins the page's forms may end up at: after the
// last step the emulator redirects (or posts) to the client, and CSP
// form-action also governs redirects that follow a form submission.
func (e *Emulator) formTargets(req *authRequest) []string {
	if req.popup {
		return nil
	}
	return []string{originOf(req.redirectURI)}
}

func originOf(uri string) string {
	u, err := url.Parse(uri)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// isSignInScope: Google's granular consent grants the sign-in scopes as a
// block; every other scope gets its own checkbox.
func isSignInScope(s string) bool {
	return s == scopeOpenID || s == scopeEmail || s == scopeProfile
}

// consentedScopes is what the consent form granted: the sign-in scopes
// asked for, and each other scope asked for whose box was left checked
// (emu_scope). A form that showed no boxes (emu_scopes_shown absent, as in
// a test posting "approve" by hand) grants everything asked.
func consentedScopes(req *authRequest, form url.Values) []string {
	if form.Get("emu_scopes_shown") != "1" {
		return nil
	}
	ticked := form["emu_scope"]
	out := []string{}
	for _, s := range req.scopes {
		if isSignInScope(s) || slices.Contains(ticked, s) {
			out = append(out, s)
		}
	}
	return out
}

func describeScope(s string) string {
	switch s {
	case scopeOpenID:
		return "Associate you with your personal info on Google"
	case scopeEmail:
		return "See your primary Google Account email address"
	case scopeProfile:
		return "See your personal info, including any personal info you've made publicly available"
	case scopeContactsReadOnly:
		return "See and download your contacts"
	case scopeContacts:
		return "See, edit, download and permanently delete your contacts"
	}
	return "Use " + s
}

// handleGSIRevoke is google.accounts.id.revoke: it ends the user's grant to
// the client. The hint is the user's sub or email.
func (e *Emulator) handleGSIRevoke(w http.ResponseWriter, r *http.Request) {
	form, ok := corsForm(w, r, "no-store")
	if !ok {
		return
	}
	c, ok := e.clients[form.Get("client_id")]
	if !ok {
		writeJSON(w, http.StatusBadRequest, map[string]any{"successful": false, "error": "invalid_client"})
		return
	}
	if o := r.Header.Get("Origin"); o != "" && !c.originAllowed(o) {
		writeJSON(w, http.StatusForbidden, map[string]any{"successful": false, "error": "origin_mismatch"})
		return
	}
	e.mu.Lock()
	u := e.id.userByHint(form.Get("hint"))
	revoked := u != nil && e.id.revokeGrant(grantKey{c.ID, u.Sub})
	e.mu.Unlock()
	if !revoked {
		writeJSON(w, http.StatusOK, map[string]any{"successful": false, "error": "invalid_request"})
		return
	}
	e.changed()
	e.stats.revocation()
	writeJSON(w, http.StatusOK, map[string]any{"successful": true})
}
