package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Errors of the in-process control API.
var (
	ErrUnknownClient = errors.New("emulator: unknown client_id")
	ErrUnknownUser   = errors.New("emulator: unknown user")
	ErrUserExists    = errUserExists
)

// CodeRequest asks for an authorization code exactly as the consent popup
// would issue it. Scope is space-separated (default "openid email
// profile"); RedirectURI defaults to "postmessage" (a popup code). Sub may
// be left empty when Email names the user. GrantedScope, when set, is what
// the user ticked on the granular consent screen: of Scope, the sign-in
// scopes (always granted as a block) and these; by default every scope
// asked for is granted.
type CodeRequest struct {
	ClientID             string `json:"client_id"`
	Sub                  string `json:"sub,omitempty"`
	Email                string `json:"email,omitempty"`
	Scope                string `json:"scope,omitempty"`
	AccessType           string `json:"access_type,omitempty"` // "online" (default) or "offline"
	Prompt               string `json:"prompt,omitempty"`      // "consent" forces a new refresh token
	RedirectURI          string `json:"redirect_uri,omitempty"`
	Nonce                string `json:"nonce,omitempty"`
	CodeChallenge        string `json:"code_challenge,omitempty"`
	CodeChallengeMethod  string `json:"code_challenge_method,omitempty"`
	IncludeGrantedScopes bool   `json:"include_granted_scopes,omitempty"`
	GrantedScope         string `json:"granted_scope,omitempty"`
}

// TokenGrant is what MintToken issues: the token endpoint's answer to the
// exchange of a code, without the ID token.
type TokenGrant struct {
	AccessToken  string `json:"access_token"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
	TokenType    string `json:"token_type"`
}

// AddUser adds a test account. Sub is generated (21 digits) when empty;
// Name, GivenName and FamilyName are derived when empty. It returns the
// stored user, ErrUserExists if the sub or email is taken.
func (e *Emulator) AddUser(u User) (User, error) {
	e.mu.Lock()
	u, err := e.id.addUser(u)
	e.mu.Unlock()
	if err != nil {
		return User{}, err
	}
	e.changed()
	return u, nil
}

// Users lists the test accounts in the order they were added.
func (e *Emulator) Users() []User {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.id.listUsers()
}

// MintCode issues an authorization code as if the user had just consented
// in the popup: the consent is recorded, and the code yields a refresh token
// on exchange when access_type is offline and this is the pair's first
// offline consent or prompt=consent.
func (e *Emulator) MintCode(r CodeRequest) (string, error) {
	if r.RedirectURI == "" {
		r.RedirectURI = "postmessage"
	}
	if r.CodeChallengeMethod == "" {
		r.CodeChallengeMethod = "plain"
	}
	var code string
	err := e.mint(r, func(k grantKey, g *grant, scopes []string, offline, give bool, now time.Time) {
		code = newCode()
		e.id.codes[code] = &authCode{
			key: k, gen: g.gen, scopes: scopes, redirectURI: r.RedirectURI, nonce: r.Nonce,
			offline: offline, giveRefresh: give, challenge: r.CodeChallenge, challengeMethod: r.CodeChallengeMethod,
			issued: now, fam: &family{},
		}
	})
	return code, err
}

// MintToken is MintCode followed by the code's exchange: the consent is
// recorded, and the grant's tokens are issued at once (a refresh token when
// MintCode's code would yield one). The code-only fields (RedirectURI,
// Nonce, the PKCE challenge) are ignored.
func (e *Emulator) MintToken(r CodeRequest) (TokenGrant, error) {
	r.RedirectURI, r.CodeChallenge, r.CodeChallengeMethod = "", "", ""
	ttl := e.accessTTL()
	var t TokenGrant
	err := e.mint(r, func(k grantKey, g *grant, scopes []string, offline, give bool, now time.Time) {
		t = TokenGrant{ExpiresIn: int(ttl / time.Second), Scope: strings.Join(scopes, " "), TokenType: "Bearer"}
		t.AccessToken = e.id.issueAccess(k, g, scopes, offline, now, now.Add(ttl), nil)
		if give {
			t.RefreshToken = e.id.issueRefresh(k, g, scopes, now, nil)
		}
	})
	return t, err
}

// mint validates r, records the user's consent and calls issue under the
// lock with what the consent gave.
func (e *Emulator) mint(r CodeRequest, issue func(k grantKey, g *grant, scopes []string, offline, give bool, now time.Time)) error {
	c, ok := e.clients[r.ClientID]
	if !ok {
		return ErrUnknownClient
	}
	if r.Scope == "" {
		r.Scope = "openid email profile"
	}
	_, scopes, invalid := parseScopes(r.Scope)
	if len(invalid) > 0 || len(scopes) == 0 {
		return fmt.Errorf("emulator: invalid scopes %q", invalid)
	}
	if r.GrantedScope != "" {
		_, ticked, invalid := parseScopes(r.GrantedScope)
		if len(invalid) > 0 {
			return fmt.Errorf("emulator: invalid granted scopes %q", invalid)
		}
		var granted []string
		for _, s := range scopes {
			if isSignInScope(s) || slices.Contains(ticked, s) {
				granted = append(granted, s)
			}
		}
		for _, s := range ticked {
			if !slices.Contains(scopes, s) {
				return fmt.Errorf("emulator: granted scope %q was not asked for in scope", s)
			}
		}
		scopes = granted
	}
	var offline bool
	switch r.AccessType {
	case "", "online":
	case "offline":
		offline = true
	default:
		return fmt.Errorf("emulator: access_type %q: want online or offline", r.AccessType)
	}
	forced := false
	for _, p := range strings.Fields(r.Prompt) {
		switch p {
		case "consent":
			forced = true
		case "none", "select_account":
		default:
			return fmt.Errorf("emulator: prompt %q: want none, consent or select_account", p)
		}
	}
	if r.RedirectURI != "" && r.RedirectURI != "postmessage" && !c.redirectAllowed(r.RedirectURI) {
		return fmt.Errorf("emulator: redirect_uri %q is not registered for the client", r.RedirectURI)
	}
	if method := r.CodeChallengeMethod; method != "" && method != "plain" && method != "S256" {
		return fmt.Errorf("emulator: code_challenge_method %q", method)
	}
	hint := r.Sub
	if hint == "" {
		hint = r.Email
	}

	now := e.now()
	e.mu.Lock()
	u := e.id.userByHint(hint)
	if u == nil {
		e.mu.Unlock()
		return ErrUnknownUser
	}
	k := grantKey{c.ID, u.Sub}
	g, give := e.id.consent(k, scopes, offline, forced)
	if r.IncludeGrantedScopes {
		scopes = unionScopes(scopes, g.grantedScopes())
	}
	issue(k, g, scopes, offline, give, now)
	e.mu.Unlock()
	e.changed()
	return nil
}

// MintIDToken issues an ID token (the "credential") for the user as the
// GIS button would: scopes openid email profile, aud and azp clientID, the
// nonce when not empty. sub may also be the user's email.
func (e *Emulator) MintIDToken(clientID, sub, nonce string) (string, error) {
	return e.mintIDToken(clientID, sub, nonce, e.defaultBase())
}

func (e *Emulator) mintIDToken(clientID, sub, nonce, base string) (string, error) {
	if _, ok := e.clients[clientID]; !ok {
		return "", ErrUnknownClient
	}
	e.mu.Lock()
	u := e.id.userByHint(sub)
	if u == nil {
		e.mu.Unlock()
		return "", ErrUnknownUser
	}
	user := *u
	e.id.consent(grantKey{clientID, user.Sub}, gsiScopes, false, false)
	e.mu.Unlock()
	e.changed()
	return e.idToken(user, clientID, gsiScopes, nonce, "", base)
}

// RevokeUser ends every grant of the user, for all clients, as if they had
// removed the apps' access in their Google Account. Their refresh and
// access tokens stop working and the next consent yields a refresh token
// again. Each client with a RISC receiver that the user had granted email
// or profile gets a tokens-revoked event, delivered in the background
// (WaitRISC waits for it).
func (e *Emulator) RevokeUser(sub string) {
	e.revokeUser(sub)
}

func (e *Emulator) revokeUser(sub string) int {
	e.mu.Lock()
	audience := e.id.riscAudience(sub)
	n := e.id.revokeUser(sub)
	e.mu.Unlock()
	if n > 0 {
		e.changed()
	}
	// Google tells each app that loses access, by Cross-Account Protection.
	e.notifyTokensRevoked(sub, audience)
	return n
}

// RotateKey rotates the signing key as Google does: the new key is
// published now and signs from KeySigningDelay later (by the emulator's
// clock, so ShiftClock brings that moment forward); the key it replaces
// keeps signing until then and stays published KeyRetireAfter longer. It
// returns the new key. An app that honours the key set's max-age never
// meets a kid it has not fetched.
func (e *Emulator) RotateKey() (KeyInfo, error) {
	now := e.now()
	return e.rotateKey(now, now.Add(e.cfg.KeySigningDelay))
}

// RotateKeyNow makes a new key sign immediately, which Google never does:
// the first token it signs carries a kid no cached key set holds. It is
// for testing that path on purpose. The replaced key stays published
// KeyRetireAfter longer.
func (e *Emulator) RotateKeyNow() (KeyInfo, error) {
	now := e.now()
	return e.rotateKey(now, now)
}

func (e *Emulator) rotateKey(now, signsFrom time.Time) (KeyInfo, error) {
	k, err := e.keys.rotate(now, signsFrom)
	if err != nil {
		return KeyInfo{}, err
	}
	e.changed()
	for _, ki := range e.keys.info(now) {
		if ki.Kid == k.kid {
			return ki, nil
		}
	}
	return KeyInfo{Kid: k.kid, Published: now.UTC(), SignsFrom: signsFrom.UTC()}, nil
}

// Keys lists the signing keys the emulator holds, oldest first, with
// their schedule at the emulator's clock.
func (e *Emulator) Keys() []KeyInfo { return e.keys.info(e.now()) }

// InjectFault queues a fault for the next Count requests to f.Endpoint. It
// panics if the fault names an unknown endpoint or does nothing: that is a
// bug in the calling test.
func (e *Emulator) InjectFault(f Fault) {
	if err := f.validate(); err != nil {
		panic("emulator.InjectFault: " + err.Error())
	}
	e.faults.add(f)
}

// SetLatency delays every request to the endpoint by d (0 removes it). It
// panics on an unknown endpoint name.
func (e *Emulator) SetLatency(endpoint string, d time.Duration) {
	if !knownEndpoint(endpoint) {
		panic("emulator.SetLatency: unknown endpoint " + strconv.Quote(endpoint))
	}
	e.faults.setLatency(endpoint, d)
}

// ShiftClock moves the emulator's clock by d (cumulative): codes and tokens
// expire, and new tokens are dated, by the shifted clock.
func (e *Emulator) ShiftClock(d time.Duration) {
	e.clockShift.Add(int64(d))
}

// SetAccessTokenTTL sets the lifetime of access tokens issued from now on;
// d <= 0 restores the configured one.
func (e *Emulator) SetAccessTokenTTL(d time.Duration) {
	if d <= 0 {
		d = e.cfg.AccessTokenTTL
	}
	e.ttl.Store(int64(d))
}

// Reset forgets every grant, token, code, added user, fault, latency, clock
// shift, counter and RISC receiver (ending deliveries under way), and restores the configured users, token lifetime and quotas.
// Signing keys are kept, so key sets cached by apps stay valid.
func (e *Emulator) Reset() {
	id := newIdentity()
	for _, u := range e.cfg.Users {
		_, _ = id.addUser(u) // validated by New
	}
	e.mu.Lock()
	e.id = id
	e.mu.Unlock()
	e.faults.reset()
	e.quotas.reset()
	for _, q := range e.cfg.Quotas {
		e.quotas.set(q)
	}
	e.stats.reset()
	e.risc.reset()
	e.clockShift.Store(0)
	e.ttl.Store(int64(e.cfg.AccessTokenTTL))
	e.changed()
}

// Stats returns the counters since start or the last Reset.
func (e *Emulator) Stats() Stats {
	s := e.stats.snapshot()
	s.RISC = e.risc.snapshot()
	s.Quota = e.quotas.snapshot()
	return s
}

// ---- HTTP control API ------------------------------------------------------

const maxControlBody = 1 << 20

type controlError struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

func writeControlError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, controlError{Error: code, Message: msg})
}

// jsonDuration accepts a Go duration string ("1.5s", "10m") or a number of
// seconds.
type jsonDuration time.Duration

func (d *jsonDuration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = jsonDuration(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return errors.New("want a duration string like \"1.5s\" or a number of seconds")
	}
	*d = jsonDuration(time.Duration(secs * float64(time.Second)))
	return nil
}

func (e *Emulator) installControl(mux *http.ServeMux) {
	h := func(pattern string, f http.HandlerFunc) { mux.Handle(pattern, e.controlGuard(f)) }
	h("POST /emulator/v1/users", e.ctlAddUser)
	h("GET /emulator/v1/users", e.ctlListUsers)
	h("POST /emulator/v1/users/{sub}/revoke", e.ctlRevokeUser)
	h("POST /emulator/v1/codes", e.ctlMintCode)
	h("POST /emulator/v1/tokens", e.ctlMintToken)
	h("POST /emulator/v1/id-tokens", e.ctlMintIDToken)
	h("POST /emulator/v1/keys/rotate", e.ctlRotateKey)
	h("GET /emulator/v1/keys", e.ctlKeys)
	h("POST /emulator/v1/faults", e.ctlFault)
	h("POST /emulator/v1/latency", e.ctlLatency)
	h("POST /emulator/v1/quota", e.ctlQuota)
	h("GET /emulator/v1/clock", e.ctlClock)
	h("POST /emulator/v1/clock", e.ctlClock)
	h("POST /emulator/v1/access-token-ttl", e.ctlTTL)
	h("POST /emulator/v1/reset", e.ctlReset)
	h("GET /emulator/v1/stats", e.ctlStats)
	h("POST /emulator/v1/risc/receivers", e.ctlRISCRegister)
	h("GET /emulator/v1/risc/receivers", e.ctlRISCReceivers)
	h("DELETE /emulator/v1/risc/receivers/{client_id}", e.ctlRISCRemove)
	h("POST /emulator/v1/risc/events", e.ctlRISCEvent)
	h("GET /emulator/v1/risc/deliveries", e.ctlRISCDeliveries)
	h("/emulator/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeControlError(w, http.StatusNotFound, "not_found", "no such control API call: "+r.Method+" "+r.URL.Path)
	})
}

// controlGuard lets only local tools use the control API: a web page must
// not be able to mint tokens by posting to a developer's emulator. The Host
// must be a loopback name or address (or one of Config.ControlHosts), which
// defeats DNS rebinding (a page at rebind.example whose name now points at
// 127.0.0.1 still sends Host: rebind.example); and a browser request must
// come from the emulator's own origin. Tools (curl, Go tests) send no
// Origin and pass.
func (e *Emulator) controlGuard(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if !e.controlHostAllowed(r.Host) {
			writeControlError(w, http.StatusForbidden, "forbidden", "the control API answers only on a loopback host name or address (see Config.ControlHosts)")
			return
		}
		if o := r.Header.Get("Origin"); o != "" && o != e.baseURL(r) {
			writeControlError(w, http.StatusForbidden, "forbidden", "the control API does not answer cross-origin browser requests")
			return
		}
		if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
			writeControlError(w, http.StatusForbidden, "forbidden", "the control API does not answer cross-site browser requests")
			return
		}
		next(w, r)
	})
}

// controlHostAllowed reports whether a Host header names this machine:
// localhost (or a name under .localhost), a loopback or unspecified IP
// literal, or one of Config.ControlHosts (with or without the port).
func (e *Emulator) controlHostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	if ip := net.ParseIP(host); ip != nil && (ip.IsLoopback() || ip.IsUnspecified()) {
		return true
	}
	for _, allowed := range e.cfg.ControlHosts {
		allowed = strings.ToLower(allowed)
		if allowed == strings.ToLower(hostport) || strings.Trim(allowed, "[]") == host {
			return true
		}
	}
	return false
}

// decode reads a JSON body strictly (unknown fields are refused, so a typo
// does not silently do nothing). An empty body decodes to the zero value.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	d := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxControlBody))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		writeControlError(w, http.StatusBadRequest, "invalid_argument", "bad JSON body: "+err.Error())
		return false
	}
	return true
}

func (e *Emulator) withPicture(u User, r *http.Request) User {
	u.Picture = pictureURL(u, e.baseURL(r))
	return u
}

func (e *Emulator) ctlAddUser(w http.ResponseWriter, r *http.Request) {
	var u User
	if !decode(w, r, &u) {
		return
	}
	u, err := e.AddUser(u)
	switch {
	case errors.Is(err, ErrUserExists):
		writeControlError(w, http.StatusConflict, "already_exists", err.Error())
	case err != nil:
		writeControlError(w, http.StatusBadRequest, "invalid_argument", err.Error())
	default:
		writeJSON(w, http.StatusCreated, e.withPicture(u, r))
	}
}

func (e *Emulator) ctlListUsers(w http.ResponseWriter, r *http.Request) {
	users := e.Users()
	for i := range users {
		users[i] = e.withPicture(users[i], r)
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": users})
}

func (e *Emulator) ctlRevokeUser(w http.ResponseWriter, r *http.Request) {
	sub := r.PathValue("sub")
	if e.userBySub(sub) == nil {
		writeControlError(w, http.StatusNotFound, "not_found", "no user with sub "+strconv.Quote(sub))
		return
	}
	n := e.revokeUser(sub)
	writeJSON(w, http.StatusOK, map[string]any{"sub": sub, "revoked_grants": n})
}

func (e *Emulator) ctlMintCode(w http.ResponseWriter, r *http.Request) {
	serveControl(w, r, func(req CodeRequest) (map[string]string, error) {
		code, err := e.MintCode(req)
		return map[string]string{"code": code}, err
	})
}

func (e *Emulator) ctlMintToken(w http.ResponseWriter, r *http.Request) {
	serveControl(w, r, e.MintToken)
}

// serveControl answers a control call that decodes its JSON request, runs
// fn and answers fn's result as JSON, or its error as writeMintError does.
func serveControl[Req, Resp any](w http.ResponseWriter, r *http.Request, fn func(Req) (Resp, error)) {
	var req Req
	if !decode(w, r, &req) {
		return
	}
	resp, err := fn(req)
	if err != nil {
		writeMintError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func writeMintError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrUnknownClient), errors.Is(err, ErrUnknownUser):
		writeControlError(w, http.StatusNotFound, "not_found", err.Error())
	default:
		writeControlError(w, http.StatusBadRequest, "invalid_argument", err.Error())
	}
}

func (e *Emulator) ctlMintIDToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ClientID string `json:"client_id"`
		Sub      string `json:"sub"`
		Email    string `json:"email"`
		Nonce    string `json:"nonce"`
	}
	if !decode(w, r, &req) {
		return
	}
	hint := req.Sub
	if hint == "" {
		hint = req.Email
	}
	cred, err := e.mintIDToken(req.ClientID, hint, req.Nonce, e.baseURL(r))
	if err != nil {
		writeMintError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"credential": cred})
}

func (e *Emulator) ctlRotateKey(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Immediate bool `json:"immediate"`
	}
	if !decode(w, r, &req) {
		return
	}
	rotate := e.RotateKey
	if req.Immediate {
		rotate = e.RotateKeyNow
	}
	ki, err := rotate()
	if err != nil {
		writeControlError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, ki)
}

func (e *Emulator) ctlKeys(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"keys": e.Keys()})
}

func (e *Emulator) ctlFault(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Endpoint   string       `json:"endpoint"`
		Count      int          `json:"count"`
		Status     int          `json:"status"`
		Body       string       `json:"body"`
		Delay      jsonDuration `json:"delay"`
		Drop       bool         `json:"drop"`
		Malformed  bool         `json:"malformed"`
		RetryAfter string       `json:"retry_after"`
	}
	if !decode(w, r, &req) {
		return
	}
	f := Fault{Endpoint: req.Endpoint, Count: req.Count, Status: req.Status, Body: req.Body, Delay: time.Duration(req.Delay),
		Drop: req.Drop, Malformed: req.Malformed, RetryAfter: req.RetryAfter}
	if err := f.validate(); err != nil {
		writeControlError(w, http.StatusBadRequest, "invalid_argument", err.Error())
		return
	}
	e.faults.add(f)
	writeJSON(w, http.StatusOK, struct{}{})
}

func (e *Emulator) ctlLatency(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Endpoint string       `json:"endpoint"`
		Delay    jsonDuration `json:"delay"`
	}
	if !decode(w, r, &req) {
		return
	}
	if !knownEndpoint(req.Endpoint) {
		writeControlError(w, http.StatusBadRequest, "invalid_argument", fmt.Sprintf("unknown endpoint %q (want one of %v)", req.Endpoint, endpointNames))
		return
	}
	if req.Delay < 0 {
		writeControlError(w, http.StatusBadRequest, "invalid_argument", "negative delay")
		return
	}
	e.faults.setLatency(req.Endpoint, time.Duration(req.Delay))
	writeJSON(w, http.StatusOK, struct{}{})
}

func (e *Emulator) ctlClock(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		var req struct {
			Shift *jsonDuration `json:"shift"`
		}
		if !decode(w, r, &req) {
			return
		}
		if req.Shift == nil {
			writeControlError(w, http.StatusBadRequest, "invalid_argument", `"shift" is required`)
			return
		}
		e.ShiftClock(time.Duration(*req.Shift))
	}
	shift := time.Duration(e.clockShift.Load())
	writeJSON(w, http.StatusOK, map[string]string{"shift": shift.String(), "now": e.now().UTC().Format(time.RFC3339)})
}

func (e *Emulator) ctlTTL(w http.ResponseWriter, r *http.Request) {
	var req struct {
		TTL *jsonDuration `json:"ttl"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.TTL == nil || *req.TTL <= 0 {
		writeControlError(w, http.StatusBadRequest, "invalid_argument", `"ttl" must be a positive duration`)
		return
	}
	e.SetAccessTokenTTL(time.Duration(*req.TTL))
	writeJSON(w, http.StatusOK, map[string]string{"ttl": e.accessTTL().String()})
}

func (e *Emulator) ctlReset(w http.ResponseWriter, r *http.Request) {
	e.Reset()
	writeJSON(w, http.StatusOK, struct{}{})
}

func (e *Emulator) ctlStats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, e.Stats())
}
