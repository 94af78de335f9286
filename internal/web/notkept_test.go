package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestConnectStoreFailureKeepsNothing: the credential store fails after
// Google redeemed the code ("Sign in with offline access" with a read-only
// credentials directory). The page is told in words that nothing was kept
// and to try again, never the store's own words; the new grant is revoked
// at Google, so that once the store is back the same button (no
// prompt=consent) gets a refresh token again instead of a sign-in without
// offline access.
func TestConnectStoreFailureKeepsNothing(t *testing.T) {
	t.Parallel()
	faults := &storeFaults{}
	re := newRealEnv(t, &realConfig{StoreFaults: faults})
	grace := re.user("grace.readonly@example.com", "Grace")
	b := re.browser()

	faults.failUpdates.Store(true)
	r := b.xhr("/connect", url.Values{"code": {re.code(grace.Sub, false)}})
	if r.status != http.StatusInternalServerError || r.errorCode(t) != "grant_not_kept" {
		t.Fatalf("/connect with the store failing: %d %s; want 500 grant_not_kept", r.status, r.body)
	}
	msg, _ := r.json(t)["message"].(string)
	if strings.Contains(msg, "cannot lock") || !strings.Contains(msg, "kept nothing") || !strings.Contains(msg, "try again") {
		t.Errorf("message %q: want words saying nothing was kept and to try again", msg)
	}
	if got := re.emu.Stats().Revocations; got != 1 {
		t.Errorf("revocations at Google: %d, want 1 (the grant that could not be kept)", got)
	}
	if b.signedInAs() != "" {
		t.Error("signed in after a /connect that kept nothing")
	}

	faults.failUpdates.Store(false)
	r = b.xhr("/connect", url.Values{"code": {re.code(grace.Sub, false)}})
	if r.status != http.StatusOK || r.json(t)["offline"] != true {
		t.Fatalf("the same button once the store is back: %d %s; want offline access", r.status, r.body)
	}
	if rec := re.record(grace.Sub); rec == nil || rec.Token.RefreshToken == "" {
		t.Errorf("stored after the retry: %+v, want a refresh token", rec)
	}
}
