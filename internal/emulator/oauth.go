package emulator

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const maxFormBytes = 64 << 10

// readForm parses a bounded request body as a form (or, as Google's token
// endpoint also allows, a flat JSON object) and, for GET, the query.
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/json" && r.Method == http.MethodPost {
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			return nil, err
		}
		v := url.Values{}
		for k, x := range m {
			switch x := x.(type) {
			case string:
				v.Set(k, x)
			case float64, bool:
				v.Set(k, fmt.Sprint(x))
			}
		}
		return v, nil
	}
	if err := r.ParseForm(); err != nil {
		return nil, err
	}
	if r.Method == http.MethodGet {
		return r.Form, nil
	}
	return r.PostForm, nil
}

// writeFormError answers a body that could not be read.
// formOf is readForm that answers a bad form itself (writeFormError): on
// false the response is written.
func formOf(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	form, err := readForm(w, r)
	if err != nil {
		writeFormError(w, err)
		return nil, false
	}
	return form, true
}

// corsForm begins a form endpoint that browsers may call from any origin
// (revoke, tokeninfo): CORS, cacheControl, then formOf.
func corsForm(w http.ResponseWriter, r *http.Request, cacheControl string) (url.Values, bool) {
	allowCORS(w, r)
	w.Header().Set("Cache-Control", cacheControl)
	return formOf(w, r)
}

func writeFormError(w http.ResponseWriter, err error) {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeOAuthError(w, http.StatusRequestEntityTooLarge, "invalid_request", "Request body too large.")
		return
	}
	writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Bad Request")
}

// handleDiscovery serves the OpenID Connect discovery document with the
// emulator's own URLs (and Google's issuer).
func (e *Emulator) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	base := e.baseURL(r)
	doc := map[string]any{
		"issuer":                                Issuer,
		"authorization_endpoint":                base + "/o/oauth2/v2/auth",
		"token_endpoint":                        base + "/token",
		"userinfo_endpoint":                     base + "/v1/userinfo",
		"revocation_endpoint":                   base + "/revoke",
		"jwks_uri":                              base + "/oauth2/v3/certs",
		"response_types_supported":              []string{"code", "token", "id_token", "code token", "code id_token", "token id_token", "code token id_token", "none"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid", "email", "profile"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "client_secret_basic"},
		"claims_supported":                      []string{"aud", "email", "email_verified", "exp", "family_name", "given_name", "iat", "iss", "name", "picture", "sub"},
		"code_challenge_methods_supported":      []string{"plain", "S256"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	allowCORS(w, r)
	writeJSON(w, http.StatusOK, doc)
}

// tokenResponse is the token endpoint's answer, fields in Google's order.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
	TokenType    string `json:"token_type"`
	IDToken      string `json:"id_token,omitempty"`
}

// handleToken is POST /token: the authorization_code and refresh_token
// grants, with Google's errors.
func (e *Emulator) handleToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	form, ok := formOf(w, r)
	if !ok {
		return
	}
	client, ok := e.authenticateClient(w, r, form)
	if !ok {
		return
	}
	switch gt := form.Get("grant_type"); gt {
	case "authorization_code":
		e.exchangeCode(w, r, client, form)
	case "refresh_token":
		e.refreshGrant(w, r, client, form)
	default:
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: "+truncate(gt, 64))
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// authenticateClient checks the client's credentials, from HTTP Basic
// (form-encoded, RFC 6749 section 2.3.1) or from the body, and answers the
// error itself when they fail.
func (e *Emulator) authenticateClient(w http.ResponseWriter, r *http.Request, form url.Values) (Client, bool) {
	id, secret := form.Get("client_id"), form.Get("client_secret")
	if bid, bsecret, ok := r.BasicAuth(); ok {
		bid, err1 := url.QueryUnescape(bid)
		bsecret, err2 := url.QueryUnescape(bsecret)
		if err1 != nil || err2 != nil || (id != "" && id != bid) || (secret != "" && secret != bsecret) {
			writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "Unauthorized")
			return Client{}, false
		}
		id, secret = bid, bsecret
	}
	if id == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Could not determine client ID from request.")
		return Client{}, false
	}
	c, ok := e.clients[id]
	if !ok {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "The OAuth client was not found.")
		return Client{}, false
	}
	if secret == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "client_secret is missing.")
		return Client{}, false
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1 {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "Unauthorized")
		return Client{}, false
	}
	return c, true
}

// exchangeCode is the authorization_code grant. A code is spent by the
// first exchange that names it with the right client, whatever the outcome;
// a second exchange also revokes what the first one issued.
func (e *Emulator) exchangeCode(w http.ResponseWriter, r *http.Request, client Client, form url.Values) {
	code := form.Get("code")
	if code == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: code")
		return
	}
	if !codeShaped(code) {
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "Malformed auth code.")
		return
	}
	redirectURI, verifier := form.Get("redirect_uri"), form.Get("code_verifier")
	now := e.now()
	ttl := e.accessTTL()

	e.mu.Lock()
	ac := e.id.codes[code]
	var fail func()
	replayed := false
	switch {
	case ac == nil || ac.key.client != client.ID:
		fail = func() { writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "Bad Request") }
	case ac.used:
		if e.cfg.RevokeOnCodeReuse {
			e.id.revokeFamily(ac.fam)
			replayed = true
		}
		fail = func() { writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "Code was already redeemed.") }
	case now.After(ac.issued.Add(codeLifetime)):
		delete(e.id.codes, code)
		fail = func() { writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "Bad Request") }
	}
	if fail != nil {
		e.mu.Unlock()
		if replayed {
			e.changed()
		}
		fail()
		return
	}
	ac.used = true
	switch {
	case redirectURI == "":
		fail = func() {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Missing parameter: redirect_uri")
		}
	case redirectURI != ac.redirectURI:
		fail = func() { writeOAuthError(w, http.StatusBadRequest, "redirect_uri_mismatch", "Bad Request") }
	case ac.challenge != "" && verifier == "":
		fail = func() { writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "Missing code verifier.") }
	case ac.challenge != "" && !pkceMatches(ac.challenge, ac.challengeMethod, verifier):
		fail = func() { writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "Invalid code verifier.") }
	}
	g := e.id.liveGrant(ac.key, ac.gen)
	u := e.id.users[ac.key.sub]
	if fail == nil && (g == nil || u == nil) {
		fail = func() {
			writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "Token has been expired or revoked.")
		}
	}
	if fail != nil {
		e.mu.Unlock()
		fail()
		return
	}
	user := *u
	at := e.id.issueAccess(ac.key, g, ac.scopes, ac.offline, now, now.Add(ttl), ac.fam)
	var rt string
	if ac.giveRefresh {
		rt = e.id.issueRefresh(ac.key, g, ac.scopes, now, ac.fam)
	}
	e.mu.Unlock()
	e.changed()

	e.writeTokens(w, r, "authorization_code", tokenResponse{AccessToken: at, ExpiresIn: int(ttl / time.Second), RefreshToken: rt},
		user, client.ID, ac.scopes, ac.nonce)
}

// writeTokens answers a granted token request (grantType, for the stats):
// resp with its scope, type and, for openid, an ID token for user.
func (e *Emulator) writeTokens(w http.ResponseWriter, r *http.Request, grantType string, resp tokenResponse, user User, clientID string, scopes []string, nonce string) {
	resp.Scope, resp.TokenType = strings.Join(scopes, " "), "Bearer"
	if hasScope(scopes, scopeOpenID) {
		idt, err := e.idToken(user, clientID, scopes, nonce, resp.AccessToken, e.baseURL(r))
		if err != nil {
			writeOAuthError(w, http.StatusInternalServerError, "internal_failure", "Backend Error")
			return
		}
		resp.IDToken = idt
	}
	e.stats.grant(grantType)
	writeJSON(w, http.StatusOK, resp)
}

func pkceMatches(challenge, method, verifier string) bool {
	if method == "S256" {
		sum := sha256.Sum256([]byte(verifier))
		return subtle.ConstantTimeCompare([]byte(b64(sum[:])), []byte(challenge)) == 1
	}
	return subtle.ConstantTimeCompare([]byte(verifier), []byte(challenge)) == 1
}

// refreshGrant is the refresh_token grant: a new access token (and ID token
// with openid), never a new refresh token.
func (e *Emulator) refreshGrant(w http.ResponseWriter, r *http.Request, client Client, form url.Values) {
	tok := form.Get("refresh_token")
	if tok == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: refresh_token")
		return
	}
	var narrowed []string
	if s := form.Get("scope"); s != "" {
		_, granted, invalid := parseScopes(s)
		if len(invalid) > 0 {
			writeOAuthError(w, http.StatusBadRequest, "invalid_scope", "Some requested scopes were invalid. {invalid=["+strings.Join(invalid, ", ")+"]}")
			return
		}
		narrowed = granted
	}
	now := e.now()
	ttl := e.accessTTL()

	e.mu.Lock()
	rt := e.id.refresh[tok]
	if rt == nil {
		e.mu.Unlock()
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "Token has been expired or revoked.")
		return
	}
	if rt.key.client != client.ID {
		e.mu.Unlock()
		writeOAuthError(w, http.StatusBadRequest, "unauthorized_client", "Unauthorized")
		return
	}
	scopes := rt.scopes
	if narrowed != nil {
		for _, s := range narrowed {
			if !slices.Contains(rt.scopes, s) {
				e.mu.Unlock()
				writeOAuthError(w, http.StatusBadRequest, "invalid_scope", "Some requested scopes were not originally granted.")
				return
			}
		}
		scopes = narrowed
	}
	g := e.id.grants[rt.key]
	u := e.id.users[rt.key.sub]
	if g == nil || u == nil {
		e.mu.Unlock()
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "Token has been expired or revoked.")
		return
	}
	user := *u
	at := e.id.issueAccess(rt.key, g, scopes, true, now, now.Add(ttl), rt.fam)
	e.mu.Unlock()
	e.changed()

	e.writeTokens(w, r, "refresh_token", tokenResponse{AccessToken: at, ExpiresIn: int(ttl / time.Second)}, user, client.ID, scopes, "")
}

// handleRevoke is POST /revoke: revoking an access or a refresh token ends
// the whole grant it belongs to, as at Google.
func (e *Emulator) handleRevoke(w http.ResponseWriter, r *http.Request) {
	form, ok := corsForm(w, r, "no-store")
	if !ok {
		return
	}
	tok := form.Get("token")
	if tok == "" && r.Method == http.MethodPost {
		tok = r.URL.Query().Get("token") // Google also takes it in the query
	}
	if tok == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: token")
		return
	}
	if !e.revokeToken(tok) {
		writeOAuthError(w, http.StatusBadRequest, "invalid_token", "Token expired or revoked")
		return
	}
	e.stats.revocation()
	writeJSON(w, http.StatusOK, struct{}{})
}

func (e *Emulator) revokeToken(tok string) bool {
	now := e.now()
	e.mu.Lock()
	var key grantKey
	found := false
	if a := e.id.access[tok]; a != nil && now.Before(a.expiry) {
		key, found = a.key, true
	} else if rt := e.id.refresh[tok]; rt != nil {
		key, found = rt.key, true
	}
	if found {
		found = e.id.revokeGrant(key)
	}
	e.mu.Unlock()
	if found {
		e.changed()
	}
	return found
}

// accessStatus says why an access token does or does not work.
type accessStatus int

const (
	accessOK accessStatus = iota
	accessMissing
	accessExpired
	accessInvalid
)

// checkAccess looks up a bearer token: O(1) under the read lock.
func (e *Emulator) checkAccess(tok string) (accessToken, User, accessStatus) {
	if tok == "" {
		return accessToken{}, User{}, accessMissing
	}
	now := e.now()
	e.mu.RLock()
	defer e.mu.RUnlock()
	a := e.id.access[tok]
	if a == nil {
		return accessToken{}, User{}, accessInvalid
	}
	u := e.id.users[a.key.sub]
	if u == nil {
		return accessToken{}, User{}, accessInvalid
	}
	if !now.Before(a.expiry) {
		return *a, *u, accessExpired
	}
	return *a, *u, accessOK
}

// bearer returns the access token of a request: Authorization: Bearer, or
// the access_token query parameter, which Google's APIs also accept.
func bearer(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	return r.URL.Query().Get("access_token")
}

// handleTokenInfo is Google's debugging endpoint: every value is a string.
// The token comes in the query, a form body, or an Authorization: Bearer
// header (access tokens).
func (e *Emulator) handleTokenInfo(w http.ResponseWriter, r *http.Request) {
	form, ok := corsForm(w, r, "no-cache, no-store, max-age=0, must-revalidate")
	if !ok {
		return
	}
	if r.Method == http.MethodPost {
		for k, v := range r.URL.Query() {
			if form.Get(k) == "" {
				form[k] = v
			}
		}
	}
	if form.Get("id_token") == "" && form.Get("access_token") == "" {
		// Google also takes the access token as a bearer credential, which
		// is how Node's getTokenInfo sends it (POST, empty body).
		if tok := bearer(r); tok != "" {
			form.Set("access_token", tok)
		}
	}
	invalid := func() { writeOAuthError(w, http.StatusBadRequest, "invalid_token", "Invalid Value") }
	switch {
	case form.Get("id_token") != "":
		h, claims, err := e.keys.verifyJWT(form.Get("id_token"), e.now())
		if err != nil {
			invalid()
			return
		}
		exp, err := strconv.ParseInt(fmt.Sprint(claims["exp"]), 10, 64)
		if err != nil || !e.now().Before(time.Unix(exp, 0)) {
			invalid()
			return
		}
		out := make(map[string]string, len(claims)+3)
		for k, v := range claims {
			out[k] = fmt.Sprint(v)
		}
		out["alg"], out["kid"], out["typ"] = h.Alg, h.Kid, h.Typ
		writeJSON(w, http.StatusOK, out)
	case form.Get("access_token") != "":
		a, u, st := e.checkAccess(form.Get("access_token"))
		if st != accessOK {
			invalid()
			return
		}
		out := map[string]string{
			"azp":         a.key.client,
			"aud":         a.key.client,
			"sub":         u.Sub,
			"scope":       strings.Join(a.scopes, " "),
			"exp":         strconv.FormatInt(a.expiry.Unix(), 10),
			"expires_in":  strconv.Itoa(int(a.expiry.Sub(e.now()) / time.Second)),
			"access_type": "online",
		}
		if a.offline {
			out["access_type"] = "offline"
		}
		if hasScope(a.scopes, scopeEmail) {
			out["email"], out["email_verified"] = u.Email, "true"
		}
		writeJSON(w, http.StatusOK, out)
	default:
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Either access_token, id_token, or token_handle required")
	}
}

// handleUserInfo is the OpenID Connect userinfo endpoint.
func (e *Emulator) handleUserInfo(w http.ResponseWriter, r *http.Request) {
	allowCORS(w, r)
	w.Header().Set("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate")
	a, u, st := e.checkAccess(bearer(r))
	if st != accessOK {
		w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="invalid_token"`)
		writeOAuthError(w, http.StatusUnauthorized, "invalid_request", "Invalid Credentials")
		return
	}
	out := map[string]any{"sub": u.Sub}
	if hasScope(a.scopes, scopeProfile) {
		out["name"], out["given_name"], out["family_name"] = u.Name, u.GivenName, u.FamilyName
		out["picture"] = pictureURL(u, e.baseURL(r))
	}
	if hasScope(a.scopes, scopeEmail) {
		out["email"], out["email_verified"] = u.Email, true
	}
	if u.HostedDomain != "" {
		out["hd"] = u.HostedDomain
	}
	writeJSON(w, http.StatusOK, out)
}
