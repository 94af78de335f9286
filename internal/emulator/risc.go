package emulator

import (
	"context"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Cross-Account Protection (RISC): Google pushes Security Event Tokens
// (RFC 8417) to a receiver registered for the client's project when
// something happens to a user's Google Account. The emulator keeps one
// receiver per client, signs SETs with its published ID token keys, and
// delivers them as Google does (RFC 8935 push: POST of the bare JWT,
// application/secevent+jwt, 202 means accepted), retrying a bounded number
// of times with exponential backoff.

// RISCIssuer is the iss of Google's security event tokens and of its RISC
// configuration. Unlike ID tokens' it ends with a slash.
const RISCIssuer = "https://accounts.google.com/"

// The event types Cross-Account Protection sends.
const (
	RISCSessionsRevoked                 = "https://schemas.openid.net/secevent/risc/event-type/sessions-revoked"
	RISCTokensRevoked                   = "https://schemas.openid.net/secevent/oauth/event-type/tokens-revoked"
	RISCTokenRevoked                    = "https://schemas.openid.net/secevent/oauth/event-type/token-revoked"
	RISCAccountDisabled                 = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
	RISCAccountEnabled                  = "https://schemas.openid.net/secevent/risc/event-type/account-enabled"
	RISCAccountCredentialChangeRequired = "https://schemas.openid.net/secevent/risc/event-type/account-credential-change-required"
	RISCVerification                    = "https://schemas.openid.net/secevent/risc/event-type/verification"
)

const riscPushDelivery = "https://schemas.openid.net/secevent/risc/delivery-method/push"

// riscEventTypes maps the short names the control API takes to the URIs.
var riscEventTypes = map[string]string{
	"sessions-revoked":                   RISCSessionsRevoked,
	"tokens-revoked":                     RISCTokensRevoked,
	"token-revoked":                      RISCTokenRevoked,
	"account-disabled":                   RISCAccountDisabled,
	"account-enabled":                    RISCAccountEnabled,
	"account-credential-change-required": RISCAccountCredentialChangeRequired,
	"verification":                       RISCVerification,
}

// riscEventURI accepts a short name ("tokens-revoked") or the URI.
func riscEventURI(name string) (string, bool) {
	if uri, ok := riscEventTypes[name]; ok {
		return uri, true
	}
	for _, uri := range riscEventTypes {
		if uri == name {
			return uri, true
		}
	}
	return "", false
}

const (
	defaultRISCMaxAttempts  = 5
	defaultRISCRetryBackoff = 500 * time.Millisecond
	riscDeliveryTimeout     = 10 * time.Second
	riscLogSize             = 200
)

// RISCReceiver is a client's registered event receiver, as Google's
// stream:update sets it. EventsRequested empty means every event type.
type RISCReceiver struct {
	ClientID        string   `json:"client_id"`
	URL             string   `json:"url"`
	EventsRequested []string `json:"events_requested,omitempty"`
}

// RISCEvent asks for one security event. Type is a short name
// ("sessions-revoked", "tokens-revoked", "token-revoked",
// "account-disabled", "account-enabled",
// "account-credential-change-required", "verification") or its URI.
type RISCEvent struct {
	// ClientID is the receiving client. Empty: every client with a
	// receiver whose grant from the user includes email or profile (the
	// users Google sends events about), or, for token-revoked, the
	// token's client, or, for verification, every receiver.
	ClientID string `json:"client_id,omitempty"`
	Type     string `json:"type"`
	Sub      string `json:"sub,omitempty"`   // the user, by sub...
	Email    string `json:"email,omitempty"` // ...or by email
	Reason   string `json:"reason,omitempty"`
	// Token is the refresh token a token-revoked event names, and TokenAlg
	// how: "prefix" (its first 16 characters; the default) or
	// "hash_base64_sha512_sha512" (base64 of SHA-512 of SHA-512 of it).
	Token    string `json:"token,omitempty"`
	TokenAlg string `json:"token_alg,omitempty"`
	State    string `json:"state,omitempty"` // verification only
}

// RISCDelivery is what became of one security event token sent to one
// receiver.
type RISCDelivery struct {
	JTI       string        `json:"jti"`
	ClientID  string        `json:"client_id"`
	URL       string        `json:"url"`
	Event     string        `json:"event"` // the event type URI
	SET       string        `json:"set"`   // the signed token, as posted
	Delivered bool          `json:"delivered"`
	Attempts  []RISCAttempt `json:"attempts"`
}

// RISCAttempt is one POST of a SET. Status 0 means no answer.
type RISCAttempt struct {
	At     time.Time `json:"at"`
	Status int       `json:"status"`
	Error  string    `json:"error,omitempty"`
}

// RISCStats counts deliveries since start or Reset.
type RISCStats struct {
	Delivered int         `json:"delivered"` // SETs a receiver accepted (202)
	Failed    int         `json:"failed"`    // SETs given up on
	Attempts  int         `json:"attempts"`  // POSTs, retries included
	Pending   int         `json:"pending"`   // SETs still being delivered
	Status    map[int]int `json:"status"`    // receivers' answers; 0: none
}

// Errors of the RISC calls.
var (
	ErrNoRISCReceiver = errors.New("emulator: no RISC receiver registered for the client")
	ErrUnknownToken   = errors.New("emulator: unknown refresh token")
)

// riscBox holds the receivers, the delivery log and counters. Its lock is
// never held during a delivery.
type riscBox struct {
	maxAttempts int
	backoff     time.Duration
	client      *http.Client

	mu        sync.Mutex
	receivers map[string]RISCReceiver
	log       []RISCDelivery // newest last, at most riscLogSize
	stats     RISCStats
	ctx       context.Context // ends on Reset and Close
	cancel    context.CancelFunc
}

func newRISCBox(maxAttempts int, backoff time.Duration) *riscBox {
	b := &riscBox{
		maxAttempts: maxAttempts,
		backoff:     backoff,
		client: &http.Client{
			Timeout: riscDeliveryTimeout,
			// A redirect is not an acceptance: Google posts to the URL
			// registered, nowhere else.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		receivers: map[string]RISCReceiver{},
		stats:     RISCStats{Status: map[int]int{}},
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return b
}

// RegisterRISCReceiver registers (or replaces) the client's receiver, as
// Google's stream:update does. The URL must be absolute http or https
// (Google requires https; the emulator also takes http for local
// receivers).
func (e *Emulator) RegisterRISCReceiver(r RISCReceiver) (RISCReceiver, error) {
	if _, ok := e.clients[r.ClientID]; !ok {
		return RISCReceiver{}, ErrUnknownClient
	}
	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return RISCReceiver{}, fmt.Errorf("emulator: receiver url %q: want an absolute http(s) URL", r.URL)
	}
	var events []string
	for _, name := range r.EventsRequested {
		uri, ok := riscEventURI(name)
		if !ok {
			return RISCReceiver{}, fmt.Errorf("emulator: unknown event type %q", name)
		}
		if !slices.Contains(events, uri) {
			events = append(events, uri)
		}
	}
	r.EventsRequested = events
	e.risc.mu.Lock()
	e.risc.receivers[r.ClientID] = r
	e.risc.mu.Unlock()
	return r, nil
}

// RemoveRISCReceiver forgets the client's receiver; it reports whether
// there was one.
func (e *Emulator) RemoveRISCReceiver(clientID string) bool {
	e.risc.mu.Lock()
	defer e.risc.mu.Unlock()
	_, ok := e.risc.receivers[clientID]
	delete(e.risc.receivers, clientID)
	return ok
}

// RISCReceivers lists the registered receivers by client id.
func (e *Emulator) RISCReceivers() []RISCReceiver {
	e.risc.mu.Lock()
	defer e.risc.mu.Unlock()
	out := make([]RISCReceiver, 0, len(e.risc.receivers))
	out = slices.AppendSeq(out, maps.Values(e.risc.receivers))
	slices.SortFunc(out, func(a, b RISCReceiver) int { return strings.Compare(a.ClientID, b.ClientID) })
	return out
}

// RISCDeliveries returns the latest deliveries that ended (at most 200),
// oldest first.
func (e *Emulator) RISCDeliveries() []RISCDelivery {
	e.risc.mu.Lock()
	defer e.risc.mu.Unlock()
	return slices.Clone(e.risc.log)
}

// WaitRISC waits until no delivery is under way (the automatic ones run
// in the background), or ctx ends.
func (e *Emulator) WaitRISC(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		e.risc.mu.Lock()
		n := e.risc.stats.Pending
		e.risc.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// SendRISCEvent signs the event as a SET for each receiving client and
// delivers it, retrying as Google does; it returns when every delivery
// has succeeded or been given up on (or ctx ended). It errs when the
// event is malformed or names an unknown user, client or token, or when
// no receiver is registered for the client.
func (e *Emulator) SendRISCEvent(ctx context.Context, ev RISCEvent) ([]RISCDelivery, error) {
	sets, err := e.riscSETs(ev)
	if err != nil {
		return nil, err
	}
	out := make([]RISCDelivery, len(sets))
	e.risc.started(len(sets))
	if len(sets) == 0 {
		return out, nil
	}
	var wg sync.WaitGroup
	for i, d := range sets {
		wg.Go(func() { out[i] = e.deliverRISC(ctx, d) })
	}
	wg.Wait()
	return out, nil
}

// riscSETs validates the event, picks its receivers and signs one SET for
// each.
func (e *Emulator) riscSETs(ev RISCEvent) ([]RISCDelivery, error) {
	uri, ok := riscEventURI(ev.Type)
	if !ok {
		return nil, fmt.Errorf("emulator: unknown event type %q (want one of sessions-revoked, tokens-revoked, token-revoked, account-disabled, account-enabled, account-credential-change-required, verification)", ev.Type)
	}
	if ev.ClientID != "" {
		if _, ok := e.clients[ev.ClientID]; !ok {
			return nil, ErrUnknownClient
		}
	}
	body := map[string]any{}
	var clients []string // candidate receivers when ev.ClientID is empty
	switch uri {
	case RISCVerification:
		if ev.Sub != "" || ev.Email != "" || ev.Reason != "" || ev.Token != "" {
			return nil, errors.New("emulator: a verification event takes only state")
		}
		body["state"] = ev.State
		clients = slices.Collect(maps.Keys(e.clients))
	case RISCTokenRevoked:
		if ev.Token == "" || ev.Sub != "" || ev.Email != "" || ev.Reason != "" || ev.State != "" {
			return nil, errors.New("emulator: a token-revoked event takes token (and token_alg) only")
		}
		id, err := riscTokenIdentifier(ev.Token, ev.TokenAlg)
		if err != nil {
			return nil, err
		}
		e.mu.RLock()
		rt := e.id.refresh[ev.Token]
		e.mu.RUnlock()
		switch {
		case rt != nil:
			clients = []string{rt.key.client}
		case ev.ClientID == "":
			return nil, ErrUnknownToken
		}
		body["subject"] = map[string]string{
			"subject_type": "oauth_token", "token_type": "refresh_token",
			"token_identifier_alg": id.alg, "token": id.value,
		}
	default:
		if ev.Token != "" || ev.TokenAlg != "" || ev.State != "" {
			return nil, errors.New("emulator: token and state belong to token-revoked and verification events")
		}
		if ev.Reason != "" && (uri != RISCAccountDisabled || (ev.Reason != "hijacking" && ev.Reason != "bulk-account")) {
			return nil, errors.New("emulator: reason is for account-disabled only: hijacking or bulk-account")
		}
		hint := ev.Sub
		if hint == "" {
			hint = ev.Email
		}
		e.mu.RLock()
		u := e.id.userByHint(hint)
		var sub string
		if u != nil {
			sub = u.Sub
			clients = e.id.riscAudience(sub)
		}
		e.mu.RUnlock()
		if u == nil {
			return nil, ErrUnknownUser
		}
		body["subject"] = riscSubject(sub)
		if ev.Reason != "" {
			body["reason"] = ev.Reason
		}
	}
	if ev.ClientID != "" {
		clients = []string{ev.ClientID}
	}

	now := e.now()
	out := []RISCDelivery{}
	e.risc.mu.Lock()
	_, registered := e.risc.receivers[ev.ClientID]
	for _, c := range clients {
		rcv, ok := e.risc.receivers[c]
		if !ok || (len(rcv.EventsRequested) > 0 && !slices.Contains(rcv.EventsRequested, uri)) {
			continue // no receiver, or a stream that did not ask for this type
		}
		out = append(out, RISCDelivery{ClientID: c, URL: rcv.URL, Event: uri})
	}
	e.risc.mu.Unlock()
	if ev.ClientID != "" && !registered {
		return nil, ErrNoRISCReceiver
	}
	slices.SortFunc(out, func(a, b RISCDelivery) int { return strings.Compare(a.ClientID, b.ClientID) })
	for i := range out {
		jti := newJTI()
		set, err := signJWTWith(e.keys.current(now), "secevent+jwt", riscClaims{
			Iss: RISCIssuer, Aud: out[i].ClientID, Iat: now.Unix(), Jti: jti,
			Events: map[string]any{uri: body},
		})
		if err != nil {
			return nil, err
		}
		out[i].JTI, out[i].SET = jti, set
	}
	return out, nil
}

// riscClaims are a SET's claims, in the order of Google's example.
type riscClaims struct {
	Iss    string         `json:"iss"`
	Aud    string         `json:"aud"`
	Iat    int64          `json:"iat"`
	Jti    string         `json:"jti"`
	Events map[string]any `json:"events"`
}

func riscSubject(sub string) map[string]string {
	return map[string]string{"subject_type": "iss-sub", "iss": RISCIssuer, "sub": sub}
}

func newJTI() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

type tokenIdentifier struct{ alg, value string }

// riscTokenIdentifier names a refresh token as Google's token-revoked
// events do.
func riscTokenIdentifier(token, alg string) (tokenIdentifier, error) {
	switch alg {
	case "", "prefix":
		return tokenIdentifier{"prefix", token[:min(16, len(token))]}, nil
	case "hash_base64_sha512_sha512":
		return tokenIdentifier{alg, RISCTokenHash(token)}, nil
	}
	return tokenIdentifier{}, fmt.Errorf("emulator: token_alg %q: want prefix or hash_base64_sha512_sha512", alg)
}

// RISCTokenHash is the hash_base64_sha512_sha512 identifier of a token:
// SHA-512 of SHA-512 of it, in standard base64.
func RISCTokenHash(token string) string {
	first := sha512.Sum512([]byte(token))
	second := sha512.Sum512(first[:])
	return base64.StdEncoding.EncodeToString(second[:])
}

// riscAudience lists the clients that receive events about a user: those
// the user granted email or profile, as Google says. Caller holds e.mu.
func (id *identity) riscAudience(sub string) []string {
	var out []string
	for k, g := range id.grants {
		if k.sub == sub && (g.scopes[scopeEmail] || g.scopes[scopeProfile]) {
			out = append(out, k.client)
		}
	}
	slices.Sort(out)
	return out
}

// deliverRISC posts one SET until the receiver accepts it (202), answers
// something final, or the attempts run out; it backs off exponentially
// between attempts and records the outcome.
// The caller counted it as pending (riscBox.started).
func (e *Emulator) deliverRISC(ctx context.Context, d RISCDelivery) RISCDelivery {
	b := e.risc
	b.mu.Lock()
	life := b.ctx
	b.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(life, cancel) // Reset and Close end deliveries
	defer stop()

	wait := b.backoff
	for attempt := 1; ; attempt++ {
		status, retry, err := b.post(ctx, d.URL, d.SET)
		a := RISCAttempt{At: time.Now().UTC(), Status: status}
		if err != nil {
			a.Error = err.Error()
		}
		d.Attempts = append(d.Attempts, a)
		b.mu.Lock()
		b.stats.Attempts++
		b.stats.Status[status]++
		b.mu.Unlock()
		if status == http.StatusAccepted {
			d.Delivered = true
			break
		}
		if !retry || attempt >= b.maxAttempts || !sleep(ctx, wait) {
			break
		}
		wait *= 2
	}
	e.log.Info("emulator: RISC delivery", "client_id", d.ClientID, "event", d.Event, "delivered", d.Delivered, "attempts", len(d.Attempts))

	b.mu.Lock()
	b.stats.Pending--
	if d.Delivered {
		b.stats.Delivered++
	} else {
		b.stats.Failed++
	}
	if life == b.ctx { // not from before a Reset
		b.log = append(b.log, d)
		if len(b.log) > riscLogSize {
			b.log = slices.Delete(b.log, 0, len(b.log)-riscLogSize)
		}
	}
	b.mu.Unlock()
	return d
}

// post sends a SET once. retry says whether another attempt may succeed:
// after no answer, 408, 429 or a 5xx. Any other answer but 202 is final
// (RFC 8935: a 400 means the receiver rejected the SET).
func (b *riscBox) post(ctx context.Context, target, set string) (status int, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(set))
	if err != nil {
		return 0, false, err
	}
	req.Header.Set("Content-Type", "application/secevent+jwt")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "Google-RISC-emulator")
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, ctx.Err() == nil, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusAccepted:
		return resp.StatusCode, false, nil
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		return resp.StatusCode, true, fmt.Errorf("receiver answered %d", resp.StatusCode)
	}
	return resp.StatusCode, false, fmt.Errorf("receiver answered %d, want 202", resp.StatusCode)
}

// notifyTokensRevoked sends tokens-revoked about sub to the receivers of
// clients, in the background, as Google does when a user removes an app's
// access.
func (e *Emulator) notifyTokensRevoked(sub string, clients []string) {
	for _, c := range clients {
		sets, err := e.riscSETs(RISCEvent{ClientID: c, Type: "tokens-revoked", Sub: sub})
		if errors.Is(err, ErrNoRISCReceiver) {
			continue
		}
		if err != nil {
			e.log.Error("emulator: RISC tokens-revoked", "client_id", c, "err", err)
			continue
		}
		e.risc.started(len(sets)) // before the goroutines run, for WaitRISC
		for _, d := range sets {
			go e.deliverRISC(context.Background(), d)
		}
	}
}

// started counts n deliveries as under way.
func (b *riscBox) started(n int) {
	b.mu.Lock()
	b.stats.Pending += n
	b.mu.Unlock()
}

func (b *riscBox) snapshot() RISCStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.stats
	s.Status = maps.Clone(b.stats.Status)
	return s
}

// reset forgets receivers, log and counters and ends deliveries under way.
func (b *riscBox) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cancel()
	b.ctx, b.cancel = context.WithCancel(context.Background())
	clear(b.receivers)
	b.log = nil
	b.stats = RISCStats{Status: map[int]int{}, Pending: b.stats.Pending}
}

// handleRISCConfiguration serves Google's RISC configuration: its issuer
// (with the trailing slash) and the key set SETs are signed with.
func (e *Emulator) handleRISCConfiguration(w http.ResponseWriter, r *http.Request) {
	base := e.baseURL(r)
	w.Header().Set("Cache-Control", "public, max-age=3600")
	allowCORS(w, r)
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                     RISCIssuer,
		"jwks_uri":                   base + "/oauth2/v3/certs",
		"delivery_methods_supported": []string{riscPushDelivery},
	})
}

// ---- control API ------------------------------------------------------

func (e *Emulator) ctlRISCRegister(w http.ResponseWriter, r *http.Request) {
	serveControl(w, r, e.RegisterRISCReceiver)
}

func (e *Emulator) ctlRISCReceivers(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"receivers": e.RISCReceivers()})
}

func (e *Emulator) ctlRISCRemove(w http.ResponseWriter, r *http.Request) {
	if !e.RemoveRISCReceiver(r.PathValue("client_id")) {
		writeControlError(w, http.StatusNotFound, "not_found", ErrNoRISCReceiver.Error())
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

func (e *Emulator) ctlRISCEvent(w http.ResponseWriter, r *http.Request) {
	var req RISCEvent
	if !decode(w, r, &req) {
		return
	}
	ds, err := e.SendRISCEvent(r.Context(), req)
	switch {
	case errors.Is(err, ErrUnknownClient), errors.Is(err, ErrUnknownUser), errors.Is(err, ErrUnknownToken), errors.Is(err, ErrNoRISCReceiver):
		writeControlError(w, http.StatusNotFound, "not_found", err.Error())
	case err != nil:
		writeControlError(w, http.StatusBadRequest, "invalid_argument", err.Error())
	default:
		writeJSON(w, http.StatusOK, map[string]any{"deliveries": ds})
	}
}

func (e *Emulator) ctlRISCDeliveries(w http.ResponseWriter, r *http.Request) {
	ds := e.RISCDeliveries()
	if ds == nil {
		ds = []RISCDelivery{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": ds, "pending": e.risc.snapshot().Pending})
}
