package web

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"example.com/signin/internal/emulator"
	"example.com/signin/internal/grant"
)

// riscEnv is a real environment whose emulator pushes Cross-Account
// Protection events to the server's /risc, as Google would.
func riscEnv(t *testing.T) *realEnv {
	t.Helper()
	re := newRealEnv(t, nil)
	if _, err := re.emu.RegisterRISCReceiver(emulator.RISCReceiver{ClientID: emulator.DemoClientID, URL: re.srv.URL + "/risc"}); err != nil {
		t.Fatal(err)
	}
	return re
}

// send has the emulator deliver ev and fails unless the server took it.
func (re *realEnv) send(t *testing.T, ev emulator.RISCEvent) emulator.RISCDelivery {
	t.Helper()
	ev.ClientID = emulator.DemoClientID
	ds, err := re.emu.SendRISCEvent(t.Context(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || !ds[0].Delivered {
		t.Fatalf("%s not delivered: %+v", ev.Type, ds)
	}
	return ds[0]
}

// postSET posts a SET to /risc as Google does, and returns the status.
func (re *realEnv) postSET(t *testing.T, set string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, re.srv.URL+"/risc", strings.NewReader(set))
	req.Header.Set("Content-Type", "application/secevent+jwt")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func signedIn(t *testing.T, b *browser) bool {
	t.Helper()
	return b.do(http.MethodGet, "/api/me", nil, nil).status == http.StatusOK
}

func TestRISCSessionsRevoked(t *testing.T) {
	re := riscEnv(t)
	b, sub := connected(t, re, "ada.risc@example.com")
	other := re.browser()
	mustStatus(t, other.xhr("/tokensignin", url.Values{"credential": {re.idToken(sub)}}), http.StatusOK)
	re.send(t, emulator.RISCEvent{Type: "sessions-revoked", Sub: sub})
	if signedIn(t, b) || signedIn(t, other) {
		t.Error("a session survived sessions-revoked")
	}
	if rec := re.record(sub); rec == nil || rec.Status != grant.StatusActive {
		t.Errorf("sessions-revoked touched the grant: %+v", rec)
	}
	if !strings.Contains(re.logs.String(), `"event":"risc"`) {
		t.Error("no audit line for the event")
	}
}

func TestRISCTokensRevoked(t *testing.T) {
	re := riscEnv(t)
	b, sub := connected(t, re, "grace.risc@example.com")
	re.send(t, emulator.RISCEvent{Type: "tokens-revoked", Sub: sub})
	if signedIn(t, b) {
		t.Error("session survived tokens-revoked")
	}
	if rec := re.record(sub); rec == nil || rec.Status != grant.StatusRevoked {
		t.Fatalf("grant after tokens-revoked: %+v", rec)
	}
	// Signing in again, the page offers to reconnect.
	nb := re.browser()
	r := nb.xhr("/tokensignin", url.Values{"credential": {re.idToken(sub)}})
	if mustStatus(t, r, http.StatusOK); r.json(t)["offline_status"] != "revoked" {
		t.Errorf("offline status after tokens-revoked: %v", r.json(t)["offline_status"])
	}
}

func TestRISCTokenRevokedByPrefixAndHash(t *testing.T) {
	for _, alg := range []string{"prefix", "hash_base64_sha512_sha512"} {
		t.Run(alg, func(t *testing.T) {
			re := riscEnv(t)
			_, sub := connected(t, re, "alan.risc."+alg[:4]+"@example.com")
			_, other := connected(t, re, "other.risc."+alg[:4]+"@example.com")
			rt := re.record(sub).Token.RefreshToken
			re.send(t, emulator.RISCEvent{Type: "token-revoked", Token: rt, TokenAlg: alg})
			if rec := re.record(sub); rec.Status != grant.StatusRevoked {
				t.Errorf("the matching grant is %q", rec.Status)
			}
			if rec := re.record(other); rec.Status != grant.StatusActive {
				t.Errorf("another user's grant is %q", rec.Status)
			}
		})
	}
}

func TestRISCAccountDisabledAndEnabled(t *testing.T) {
	re := riscEnv(t)
	b, sub := connected(t, re, "hijacked.risc@example.com")
	disabled := re.send(t, emulator.RISCEvent{Type: "account-disabled", Sub: sub, Reason: "hijacking"})
	if signedIn(t, b) {
		t.Error("session survived account-disabled (hijacking)")
	}
	r := re.browser().xhr("/tokensignin", url.Values{"credential": {re.idToken(sub)}})
	if r.status != http.StatusForbidden || r.errorCode(t) != grant.CodeAccountDisabled {
		t.Errorf("sign-in of a disabled account: %d %s", r.status, r.body)
	}
	r = re.browser().xhr("/connect", url.Values{"code": {re.code(sub, true)}})
	if r.status != http.StatusForbidden {
		t.Errorf("connect of a disabled account: %d %s", r.status, r.body)
	}
	re.send(t, emulator.RISCEvent{Type: "account-enabled", Sub: sub})
	mustStatus(t, re.browser().xhr("/tokensignin", url.Values{"credential": {re.idToken(sub)}}), http.StatusOK)

	// The account-disabled SET, replayed: acknowledged, and ignored.
	before := re.snapshot()
	if st := re.postSET(t, disabled.SET); st != http.StatusAccepted {
		t.Errorf("replayed SET: %d, want 202", st)
	}
	re.sameFiles(t, before)
	mustStatus(t, re.browser().xhr("/tokensignin", url.Values{"credential": {re.idToken(sub)}}), http.StatusOK)
}

// TestRISCUnknownUser: events about someone the app never saw are
// acknowledged and change nothing.
func TestRISCUnknownUser(t *testing.T) {
	re := riscEnv(t)
	_, _ = connected(t, re, "known.risc@example.com")
	u := re.user("stranger.risc@example.com", "Stranger")
	before := re.snapshot()
	for _, typ := range []string{"sessions-revoked", "tokens-revoked", "account-disabled", "account-enabled", "account-credential-change-required"} {
		ev := emulator.RISCEvent{Type: typ, Sub: u.Sub}
		if typ == "account-disabled" {
			ev.Reason = "bulk-account"
		}
		re.send(t, ev)
	}
	re.sameFiles(t, before)
}

// TestRISCAutomaticOnRevoke: a user removing the app's access in their
// Google Account makes Google push tokens-revoked on its own.
func TestRISCAutomaticOnRevoke(t *testing.T) {
	re := riscEnv(t)
	_, sub := connected(t, re, "leaver.risc@example.com")
	re.emu.RevokeUser(sub)
	if err := re.emu.WaitRISC(t.Context()); err != nil {
		t.Fatal(err)
	}
	if rec := re.record(sub); rec.Status != grant.StatusRevoked {
		t.Errorf("grant after the user removed access: %q", rec.Status)
	}
}

// TestRISCForgedTokens: SETs Google did not make, or not for us, are 400
// and change nothing.
func TestRISCForgedTokens(t *testing.T) {
	re := riscEnv(t)
	_, sub := connected(t, re, "target.risc@example.com")
	genuine := re.send(t, emulator.RISCEvent{Type: "account-credential-change-required", Sub: sub}).SET
	header, claims := decodeJWT(t, genuine)
	priv, kid := re.emu.SigningKey()
	stranger, _ := rsa.GenerateKey(rand.Reader, 2048)
	with := func(k string, v any) map[string]any {
		c := map[string]any{}
		for kk, vv := range claims {
			c[kk] = vv
		}
		c[k] = v
		c["jti"] = "forged-" + k // never a replay of the genuine one
		// A revocation, so that acting on it would show.
		c["events"] = map[string]any{"https://schemas.openid.net/secevent/risc/event-type/sessions-revoked": map[string]any{
			"subject": map[string]any{"subject_type": "iss-sub", "iss": claims["iss"], "sub": sub}}}
		return c
	}
	forged := map[string]string{
		"another key":  signRS256(t, stranger, header, with("x", 1)),
		"wrong aud":    signRS256(t, priv, header, with("aud", "someone-else.apps.googleusercontent.com")),
		"wrong iss":    signRS256(t, priv, header, with("iss", "https://accounts.google.com")), // no trailing slash
		"alg none":     unsigned(t, map[string]any{"alg": "none", "kid": kid, "typ": "secevent+jwt"}, with("n", 1)),
		"HS256":        signHS256(t, []byte("secret"), map[string]any{"alg": "HS256", "kid": kid}, with("h", 1)),
		"garbage":      "not.a.jwt",
		"empty":        "",
		"tampered sig": genuine[:len(genuine)-4] + "AAAA",
	}
	b := re.browser()
	mustStatus(t, b.xhr("/tokensignin", url.Values{"credential": {re.idToken(sub)}}), http.StatusOK)
	before := re.snapshot()
	for name, set := range forged {
		if st := re.postSET(t, set); st != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", name, st)
		}
	}
	re.sameFiles(t, before)
	if !signedIn(t, b) {
		t.Error("a forged SET ended the user's session")
	}
	// Control: the same claims signed with Google's key are taken.
	if st := re.postSET(t, signRS256(t, priv, header, with("ok", 1))); st != http.StatusAccepted {
		t.Fatalf("control SET: %d", st)
	}
	if signedIn(t, b) {
		t.Error("the control SET did not end the session")
	}
}

func decodeJWT(t *testing.T, jwt string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(jwt, ".")
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil || json.Unmarshal(b, dst) != nil {
			t.Fatalf("part %d of %q", i, jwt)
		}
	}
	return header, claims
}

func encodeParts(t *testing.T, header, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
}

func signRS256(t *testing.T, key *rsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	in := encodeParts(t, header, claims)
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func signHS256(t *testing.T, secret []byte, header, claims map[string]any) string {
	in := encodeParts(t, header, claims)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func unsigned(t *testing.T, header, claims map[string]any) string {
	return encodeParts(t, header, claims) + "."
}
