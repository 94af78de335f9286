package emulator_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"example.com/signin/internal/emulator"
)

// receiver is a RISC event receiver: it records every POST and answers
// with the statuses queued (202 once they run out).
type receiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	statuses []int
	got      []receivedSET
}

type receivedSET struct {
	contentType string
	body        string
	at          time.Time
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	t.Helper()
	rc := &receiver{statuses: statuses}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		status := http.StatusAccepted
		if len(rc.statuses) > 0 {
			status, rc.statuses = rc.statuses[0], rc.statuses[1:]
		}
		if r.Method == http.MethodPost {
			rc.got = append(rc.got, receivedSET{contentType: r.Header.Get("Content-Type"), body: string(b), at: time.Now()})
		}
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) received() []receivedSET {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]receivedSET(nil), rc.got...)
}

// verifySET validates a security event token the way Google tells
// receivers to: issuer and jwks_uri from the RISC configuration, the key
// by kid, RS256, aud one of the client ids, iss exactly the configuration's
// issuer, no exp. It returns the header and claims.
func verifySET(t *testing.T, e *env, set string, clientIDs ...string) (map[string]any, map[string]any) {
	t.Helper()
	cfg := e.get(t, "/.well-known/risc-configuration", "")
	jwks := do(t, mustRequest(t, http.MethodGet, cfg.str("jwks_uri")))
	parts := strings.Split(set, ".")
	if len(parts) != 3 {
		t.Fatalf("SET is not a JWS: %q", set)
	}
	h, c := jwtHeader(t, set), claims(t, set)
	if h["alg"] != "RS256" {
		t.Fatalf("SET alg %v", h["alg"])
	}
	var pub *rsa.PublicKey
	for _, k := range jwks.body["keys"].([]any) {
		k := k.(map[string]any)
		if k["kid"] == h["kid"] {
			n, _ := base64.RawURLEncoding.DecodeString(k["n"].(string))
			pub = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}
		}
	}
	if pub == nil {
		t.Fatalf("SET signed by kid %v, which the jwks_uri does not publish", h["kid"])
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		t.Fatalf("SET signature: %v", err)
	}
	if c["iss"] != cfg.str("issuer") {
		t.Errorf("SET iss %v, configuration issuer %q", c["iss"], cfg.str("issuer"))
	}
	aud, _ := c["aud"].(string)
	if !contains(clientIDs, aud) {
		t.Errorf("SET aud %v, want one of %v", c["aud"], clientIDs)
	}
	if _, ok := c["exp"]; ok {
		t.Errorf("SET has exp: %v", c)
	}
	if jti, _ := c["jti"].(string); len(jti) < 16 {
		t.Errorf("SET jti %v", c["jti"])
	}
	return h, c
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// event returns the SET's only event: its type and body.
func event(t *testing.T, c map[string]any) (string, map[string]any) {
	t.Helper()
	events, _ := c["events"].(map[string]any)
	if len(events) != 1 {
		t.Fatalf("SET events %v, want exactly one", c["events"])
	}
	for uri, body := range events {
		return uri, body.(map[string]any)
	}
	panic("unreachable")
}

func TestRISCConfiguration(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	r := e.get(t, "/.well-known/risc-configuration", "")
	methods, _ := r.body["delivery_methods_supported"].([]any)
	if r.status != 200 || r.str("issuer") != "https://accounts.google.com/" || r.str("jwks_uri") != e.srv.URL+"/oauth2/v3/certs" ||
		len(methods) != 1 || methods[0] != "https://schemas.openid.net/secevent/risc/delivery-method/push" {
		t.Errorf("risc-configuration: %d %s", r.status, r.raw)
	}
	if e.emu.Stats().Endpoints[emulator.EndpointRISC].Requests != 1 {
		t.Error("risc-configuration is not counted as the risc endpoint")
	}
}

// TestRISCEvents sends every event type through the control API and checks
// each SET as a receiver following Google's instructions would.
func TestRISCEvents(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	rc := newReceiver(t)
	if r := e.postJSON(t, "/emulator/v1/risc/receivers", map[string]any{"client_id": demoID, "url": rc.srv.URL + "/risc"}); r.status != 200 || r.str("url") != rc.srv.URL+"/risc" {
		t.Fatalf("register: %d %s", r.status, r.raw)
	}
	refresh := e.offlineTokens(t).str("refresh_token") // Ada granted the demo client email and profile
	subject := map[string]any{"subject_type": "iss-sub", "iss": "https://accounts.google.com/", "sub": adaSub}
	firstHash := sha512.Sum512([]byte(refresh))
	hash := sha512.Sum512(firstHash[:])

	tests := []struct {
		name string
		req  map[string]any
		uri  string
		body map[string]any
	}{
		{"sessions-revoked", map[string]any{"type": "sessions-revoked", "sub": adaSub},
			"https://schemas.openid.net/secevent/risc/event-type/sessions-revoked", map[string]any{"subject": subject}},
		{"tokens-revoked by email", map[string]any{"type": "tokens-revoked", "email": "ada@example.com"},
			"https://schemas.openid.net/secevent/oauth/event-type/tokens-revoked", map[string]any{"subject": subject}},
		{"token-revoked, prefix", map[string]any{"type": "token-revoked", "token": refresh},
			"https://schemas.openid.net/secevent/oauth/event-type/token-revoked", map[string]any{"subject": map[string]any{
				"subject_type": "oauth_token", "token_type": "refresh_token", "token_identifier_alg": "prefix", "token": refresh[:16]}}},
		{"token-revoked, hash", map[string]any{"type": "token-revoked", "token": refresh, "token_alg": "hash_base64_sha512_sha512"},
			"https://schemas.openid.net/secevent/oauth/event-type/token-revoked", map[string]any{"subject": map[string]any{
				"subject_type": "oauth_token", "token_type": "refresh_token", "token_identifier_alg": "hash_base64_sha512_sha512",
				"token": base64.StdEncoding.EncodeToString(hash[:])}}},
		{"account-disabled, hijacking", map[string]any{"type": "account-disabled", "sub": adaSub, "reason": "hijacking"},
			"https://schemas.openid.net/secevent/risc/event-type/account-disabled", map[string]any{"subject": subject, "reason": "hijacking"}},
		{"account-disabled, bulk-account", map[string]any{"type": "account-disabled", "sub": adaSub, "reason": "bulk-account"},
			"https://schemas.openid.net/secevent/risc/event-type/account-disabled", map[string]any{"subject": subject, "reason": "bulk-account"}},
		{"account-disabled, no reason", map[string]any{"type": "account-disabled", "sub": adaSub},
			"https://schemas.openid.net/secevent/risc/event-type/account-disabled", map[string]any{"subject": subject}},
		{"account-enabled", map[string]any{"type": "account-enabled", "sub": adaSub},
			"https://schemas.openid.net/secevent/risc/event-type/account-enabled", map[string]any{"subject": subject}},
		{"account-credential-change-required", map[string]any{"type": "https://schemas.openid.net/secevent/risc/event-type/account-credential-change-required", "sub": adaSub},
			"https://schemas.openid.net/secevent/risc/event-type/account-credential-change-required", map[string]any{"subject": subject}},
		{"verification", map[string]any{"type": "verification", "client_id": demoID, "state": "test 42"},
			"https://schemas.openid.net/secevent/risc/event-type/verification", map[string]any{"state": "test 42"}},
	}
	jtis := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(rc.received())
			r := e.postJSON(t, "/emulator/v1/risc/events", tt.req)
			ds, _ := r.body["deliveries"].([]any)
			if r.status != 200 || len(ds) != 1 {
				t.Fatalf("send: %d %s", r.status, r.raw)
			}
			d := ds[0].(map[string]any)
			got := rc.received()
			if d["delivered"] != true || len(d["attempts"].([]any)) != 1 || len(got) != before+1 {
				t.Fatalf("delivery %v; receiver got %d", d, len(got)-before)
			}
			sent := got[len(got)-1]
			if sent.contentType != "application/secevent+jwt" || sent.body != d["set"] {
				t.Errorf("posted %q with Content-Type %q, want the SET as application/secevent+jwt", sent.body, sent.contentType)
			}
			h, c := verifySET(t, e, sent.body, demoID)
			if h["typ"] != "secevent+jwt" {
				t.Errorf("typ %v", h["typ"])
			}
			if c["jti"] != d["jti"] || jtis[c["jti"].(string)] {
				t.Errorf("jti %v: not the delivery's, or seen before", c["jti"])
			}
			jtis[c["jti"].(string)] = true
			if iat, _ := c["iat"].(float64); time.Since(time.Unix(int64(iat), 0)).Abs() > time.Minute {
				t.Errorf("iat %v", c["iat"])
			}
			uri, body := event(t, c)
			if uri != tt.uri || !jsonEqual(body, tt.body) {
				t.Errorf("event %s %v\nwant  %s %v", uri, body, tt.uri, tt.body)
			}
		})
	}
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// TestRISCRetries: delivery is a POST retried with exponential backoff
// after no answer, 408, 429 or 5xx, a bounded number of times; 202 is
// success; any other answer (400: the receiver rejected it) is final.
func TestRISCRetries(t *testing.T) {
	const backoff = 20 * time.Millisecond
	send := func(t *testing.T, e *env, url string) emulator.RISCDelivery {
		t.Helper()
		if _, err := e.emu.RegisterRISCReceiver(emulator.RISCReceiver{ClientID: demoID, URL: url}); err != nil {
			t.Fatal(err)
		}
		ds, err := e.emu.SendRISCEvent(t.Context(), emulator.RISCEvent{ClientID: demoID, Type: "sessions-revoked", Sub: adaSub})
		if err != nil || len(ds) != 1 {
			t.Fatalf("SendRISCEvent: %v, %v", ds, err)
		}
		return ds[0]
	}
	statuses := func(d emulator.RISCDelivery) []int {
		var out []int
		for _, a := range d.Attempts {
			out = append(out, a.Status)
		}
		return out
	}

	t.Run("recovers after failures, backing off", func(t *testing.T) {
		e := newEnv(t, emulator.Config{RISCRetryBackoff: backoff})
		rc := newReceiver(t, 503, 429, 500)
		d := send(t, e, rc.srv.URL)
		if !d.Delivered || !jsonEqual(statuses(d), []int{503, 429, 500, 202}) {
			t.Fatalf("delivery %+v", d)
		}
		got := rc.received()
		for i := 1; i < len(got); i++ {
			if gap, want := got[i].at.Sub(got[i-1].at), backoff<<(i-1); gap < want {
				t.Errorf("retry %d after %v, want at least %v", i, gap, want)
			}
			if got[i].body != got[0].body {
				t.Errorf("retry %d posted another SET", i)
			}
		}
		st := e.emu.Stats().RISC
		if st.Delivered != 1 || st.Failed != 0 || st.Attempts != 4 || st.Status[503] != 1 || st.Status[202] != 1 || st.Pending != 0 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("gives up after the last attempt", func(t *testing.T) {
		e := newEnv(t, emulator.Config{RISCRetryBackoff: time.Millisecond, RISCMaxAttempts: 3})
		rc := newReceiver(t, 500, 500, 500, 500)
		d := send(t, e, rc.srv.URL)
		if d.Delivered || len(d.Attempts) != 3 || len(rc.received()) != 3 || d.Attempts[2].Error == "" {
			t.Fatalf("delivery %+v", d)
		}
		if st := e.emu.Stats().RISC; st.Failed != 1 || st.Delivered != 0 || st.Attempts != 3 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("a rejection is final", func(t *testing.T) {
		e := newEnv(t, emulator.Config{RISCRetryBackoff: time.Millisecond})
		for _, status := range []int{400, 200, 404} {
			rc := newReceiver(t, status)
			if d := send(t, e, rc.srv.URL); d.Delivered || !jsonEqual(statuses(d), []int{status}) {
				t.Errorf("answer %d: delivery %+v", status, d)
			}
		}
	})
	t.Run("no answer", func(t *testing.T) {
		e := newEnv(t, emulator.Config{RISCRetryBackoff: time.Millisecond, RISCMaxAttempts: 2})
		rc := newReceiver(t)
		rc.srv.Close()
		d := send(t, e, rc.srv.URL)
		if d.Delivered || !jsonEqual(statuses(d), []int{0, 0}) || d.Attempts[0].Error == "" {
			t.Fatalf("delivery %+v", d)
		}
		if st := e.emu.Stats().RISC; st.Status[0] != 2 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("a redirect is not followed", func(t *testing.T) {
		e := newEnv(t, emulator.Config{RISCRetryBackoff: time.Millisecond})
		rc := newReceiver(t)
		redirect := httptest.NewServer(http.RedirectHandler(rc.srv.URL, http.StatusTemporaryRedirect))
		defer redirect.Close()
		if d := send(t, e, redirect.URL); d.Delivered || len(rc.received()) != 0 {
			t.Errorf("delivery %+v; receiver got %d", d, len(rc.received()))
		}
	})
}

// TestRISCOnUserRevoke: when a user removes apps' access (users/{sub}/
// revoke), each app whose grant included email or profile and that has a
// receiver gets tokens-revoked, in the background.
func TestRISCOnUserRevoke(t *testing.T) {
	other := emulator.Client{ID: "2-other.apps.googleusercontent.com", Secret: "GOCSPX-other"}
	third := emulator.Client{ID: "3-third.apps.googleusercontent.com", Secret: "GOCSPX-third"}
	e := newEnv(t, emulator.Config{Clients: []emulator.Client{emulator.DemoClient(), other, third}})
	demoRcv, otherRcv, thirdRcv := newReceiver(t), newReceiver(t), newReceiver(t)
	for c, rc := range map[string]*receiver{demoID: demoRcv, other.ID: otherRcv, third.ID: thirdRcv} {
		if _, err := e.emu.RegisterRISCReceiver(emulator.RISCReceiver{ClientID: c, URL: rc.srv.URL}); err != nil {
			t.Fatal(err)
		}
	}
	e.mint(t, emulator.CodeRequest{Scope: "openid email"})                // demo: gets the event
	e.mint(t, emulator.CodeRequest{ClientID: other.ID, Scope: "openid"})  // no email or profile: no event
	e.mint(t, emulator.CodeRequest{ClientID: third.ID, Sub: graceSub})    // another user's grant
	e.mint(t, emulator.CodeRequest{ClientID: third.ID, Scope: "profile"}) // gets the event

	r := e.postJSON(t, "/emulator/v1/users/"+adaSub+"/revoke", nil)
	if r.status != 200 || r.body["revoked_grants"] != float64(3) {
		t.Fatalf("revoke: %d %s", r.status, r.raw)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := e.emu.WaitRISC(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(otherRcv.received()); n != 0 {
		t.Errorf("a client granted neither email nor profile got %d events", n)
	}
	for c, rc := range map[string]*receiver{demoID: demoRcv, third.ID: thirdRcv} {
		got := rc.received()
		if len(got) != 1 {
			t.Fatalf("%s got %d events, want 1", c, len(got))
		}
		_, claims := verifySET(t, e, got[0].body, c)
		uri, body := event(t, claims)
		if claims["aud"] != c || uri != "https://schemas.openid.net/secevent/oauth/event-type/tokens-revoked" ||
			!jsonEqual(body, map[string]any{"subject": map[string]any{"subject_type": "iss-sub", "iss": "https://accounts.google.com/", "sub": adaSub}}) {
			t.Errorf("%s got %v", c, claims)
		}
	}
	ds := e.get(t, "/emulator/v1/risc/deliveries", "")
	if list, _ := ds.body["deliveries"].([]any); len(list) != 2 || ds.body["pending"] != float64(0) {
		t.Errorf("deliveries: %s", ds.raw)
	}
	if st := e.get(t, "/emulator/v1/stats", "").body["risc"].(map[string]any); st["delivered"] != float64(2) || st["attempts"] != float64(2) {
		t.Errorf("stats risc %v", st)
	}

	// The Go method does the same; a second revoke finds no grant and
	// tells nobody.
	e.mint(t, emulator.CodeRequest{Scope: "openid email"})
	e.emu.RevokeUser(adaSub)
	e.emu.RevokeUser(adaSub)
	if err := e.emu.WaitRISC(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(demoRcv.received()); n != 2 {
		t.Errorf("demo client got %d events in all, want 2", n)
	}
}

func TestRISCReceiversAndBadEvents(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	rc := newReceiver(t)

	bad := []struct {
		name, path string
		body       any
		status     int
	}{
		{"receiver for unknown client", "/emulator/v1/risc/receivers", map[string]any{"client_id": "nope", "url": rc.srv.URL}, 404},
		{"receiver without url", "/emulator/v1/risc/receivers", map[string]any{"client_id": demoID}, 400},
		{"receiver with relative url", "/emulator/v1/risc/receivers", map[string]any{"client_id": demoID, "url": "/risc"}, 400},
		{"receiver with ftp url", "/emulator/v1/risc/receivers", map[string]any{"client_id": demoID, "url": "ftp://x.example/"}, 400},
		{"receiver asking for unknown events", "/emulator/v1/risc/receivers", map[string]any{"client_id": demoID, "url": rc.srv.URL, "events_requested": []string{"account-purged"}}, 400},
		{"event before any receiver", "/emulator/v1/risc/events", map[string]any{"client_id": demoID, "type": "verification"}, 404},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if r := e.postJSON(t, tt.path, tt.body); r.status != tt.status || r.str("error") == "" {
				t.Errorf("got %d %s, want %d", r.status, r.raw, tt.status)
			}
		})
	}

	r := e.postJSON(t, "/emulator/v1/risc/receivers", map[string]any{"client_id": demoID, "url": rc.srv.URL,
		"events_requested": []string{"sessions-revoked", "https://schemas.openid.net/secevent/risc/event-type/verification"}})
	if r.status != 200 || len(r.body["events_requested"].([]any)) != 2 {
		t.Fatalf("register: %d %s", r.status, r.raw)
	}
	if r := e.get(t, "/emulator/v1/risc/receivers", ""); len(r.body["receivers"].([]any)) != 1 {
		t.Errorf("receivers: %s", r.raw)
	}
	e.offlineTokens(t)

	bad = []struct {
		name, path string
		body       any
		status     int
	}{
		{"unknown type", "/emulator/v1/risc/events", map[string]any{"type": "account-purged", "sub": adaSub}, 400},
		{"unknown user", "/emulator/v1/risc/events", map[string]any{"type": "sessions-revoked", "sub": "1"}, 404},
		{"no user", "/emulator/v1/risc/events", map[string]any{"type": "sessions-revoked"}, 404},
		{"unknown client", "/emulator/v1/risc/events", map[string]any{"type": "sessions-revoked", "sub": adaSub, "client_id": "nope"}, 404},
		{"reason on another type", "/emulator/v1/risc/events", map[string]any{"type": "sessions-revoked", "sub": adaSub, "reason": "hijacking"}, 400},
		{"unknown reason", "/emulator/v1/risc/events", map[string]any{"type": "account-disabled", "sub": adaSub, "reason": "bored"}, 400},
		{"unknown token without client", "/emulator/v1/risc/events", map[string]any{"type": "token-revoked", "token": "1//0nope"}, 404},
		{"token-revoked without token", "/emulator/v1/risc/events", map[string]any{"type": "token-revoked", "sub": adaSub}, 400},
		{"unknown token_alg", "/emulator/v1/risc/events", map[string]any{"type": "token-revoked", "token": "1//0x", "client_id": demoID, "token_alg": "md5"}, 400},
		{"verification with a user", "/emulator/v1/risc/events", map[string]any{"type": "verification", "sub": adaSub}, 400},
		{"unknown field", "/emulator/v1/risc/events", map[string]any{"type": "verification", "stat": "x"}, 400},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if r := e.postJSON(t, tt.path, tt.body); r.status != tt.status || r.str("error") == "" {
				t.Errorf("got %d %s, want %d", r.status, r.raw, tt.status)
			}
		})
	}
	if n := len(rc.received()); n != 0 {
		t.Fatalf("refused events reached the receiver: %d", n)
	}

	// The stream asked for two types only: others are not sent.
	if r := e.postJSON(t, "/emulator/v1/risc/events", map[string]any{"type": "account-enabled", "sub": adaSub}); r.status != 200 || len(r.body["deliveries"].([]any)) != 0 {
		t.Errorf("an event type the stream did not request: %d %s", r.status, r.raw)
	}
	if r := e.postJSON(t, "/emulator/v1/risc/events", map[string]any{"type": "sessions-revoked", "sub": adaSub}); r.status != 200 || len(r.body["deliveries"].([]any)) != 1 {
		t.Errorf("a requested event type: %d %s", r.status, r.raw)
	}
	// Verification without a client goes to every receiver.
	if r := e.postJSON(t, "/emulator/v1/risc/events", map[string]any{"type": "verification", "state": "s"}); r.status != 200 || len(r.body["deliveries"].([]any)) != 1 {
		t.Errorf("verification to every receiver: %d %s", r.status, r.raw)
	}

	if r := e.postJSON(t, "/emulator/v1/reset", nil); r.status != 200 {
		t.Fatal(r.raw)
	}
	if r := e.get(t, "/emulator/v1/risc/receivers", ""); len(r.body["receivers"].([]any)) != 0 {
		t.Errorf("receivers after reset: %s", r.raw)
	}
	e.emu.RegisterRISCReceiver(emulator.RISCReceiver{ClientID: demoID, URL: rc.srv.URL})
	req, _ := http.NewRequest(http.MethodDelete, e.url("/emulator/v1/risc/receivers/"+demoID), nil)
	if r := do(t, req); r.status != 200 || len(e.emu.RISCReceivers()) != 0 {
		t.Errorf("delete receiver: %d %s", r.status, r.raw)
	}
	if r := do(t, req); r.status != 404 {
		t.Errorf("delete it again: %d %s", r.status, r.raw)
	}
}

// TestRISCSignedWithPublishedKey: a SET is signed by the key that signs ID
// tokens, so a receiver's cached key set verifies it across rotations.
func TestRISCSignedWithPublishedKey(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	rc := newReceiver(t)
	e.emu.RegisterRISCReceiver(emulator.RISCReceiver{ClientID: demoID, URL: rc.srv.URL})
	_, kid := e.emu.SigningKey()
	if _, err := e.emu.RotateKey(); err != nil {
		t.Fatal(err)
	}
	ds, err := e.emu.SendRISCEvent(t.Context(), emulator.RISCEvent{ClientID: demoID, Type: "verification"})
	if err != nil || len(ds) != 1 || !ds[0].Delivered {
		t.Fatalf("%+v %v", ds, err)
	}
	if h, _ := verifySET(t, e, ds[0].SET, demoID); h["kid"] != kid {
		t.Errorf("SET signed by %v, want the signing key %s (the new one is only published)", h["kid"], kid)
	}
}

// TestCloseEndsRISCDeliveries: Close does not wait out a receiver that
// keeps failing.
func TestCloseEndsRISCDeliveries(t *testing.T) {
	emu, err := emulator.New(emulator.Config{RISCRetryBackoff: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	rc := newReceiver(t, 503)
	emu.RegisterRISCReceiver(emulator.RISCReceiver{ClientID: demoID, URL: rc.srv.URL})
	if _, err := emu.MintCode(emulator.CodeRequest{ClientID: demoID, Sub: adaSub}); err != nil {
		t.Fatal(err)
	}
	emu.RevokeUser(adaSub)
	deadline := time.Now().Add(5 * time.Second)
	for len(rc.received()) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	if err := emu.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	if st := emu.Stats().RISC; st.Pending != 0 || st.Failed != 1 {
		t.Errorf("stats after Close %+v", st)
	}
}
