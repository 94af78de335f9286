package e2e

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestConnectRetryAsksConsent: "Sign in with offline access" fails on the
// server after Google redeemed the code (here Google's keys cannot be
// fetched to verify the ID token that came with the tokens), so Google's
// one refresh token is gone. The same button, pressed again, must ask with
// consent, so that Google sends a refresh token again: the user ends up
// with offline access, not signed in without it.
func TestConnectRetryAsksConsent(t *testing.T) {
	s := startStack(t)
	b := newBrowser(t, s)
	ctx := b.scenario()
	ada := account{Email: adaEmail}
	user := s.Emu.user(t, ada.Email)

	// The next fetch of Google's keys fails: the server's first.
	if err := s.Emu.do(ctx, http.MethodPost, "/emulator/v1/faults", map[string]any{"endpoint": "certs", "count": 1, "status": 503}, nil); err != nil {
		t.Fatal(err)
	}
	b.navigate(ctx, s.AppURL+"/", "signed-out")
	first := b.popup(ctx, selSigninOffline, ada)
	if !first.Consented {
		t.Error("the first offline sign-in showed no consent page")
	}
	b.waitState(ctx, "error")
	if got := b.text(ctx, "#error"); !strings.Contains(got, "try again") {
		t.Errorf("#error = %q, want it to say to try again", got)
	}
	if st := s.Emu.stats(t); st.grants("authorization_code") != 1 {
		t.Fatalf("codes exchanged at Google: %d, want 1 (the refresh token Google gave is lost)", st.grants("authorization_code"))
	}

	// Google's keys are back once the server can verify a sign-in with
	// them (from Go, leaving the browser's page as it is).
	waitKeys(ctx, t, s, user.Sub)

	again := b.popup(ctx, selSigninOffline, ada)
	if !again.Consented {
		t.Error("the retry showed no consent page: Google sends no refresh token without one")
	}
	b.waitOffline(ctx, "active")
	if rec := record(t, s.CredDir, user.Sub); rec.Token.RefreshToken == "" {
		t.Error("no refresh token stored after the retry")
	}
}

// waitKeys waits until signin verifies an ID token for sub, that is, until
// it holds Google's keys.
func waitKeys(ctx context.Context, t *testing.T, s *stack, sub string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		form := url.Values{"credential": {s.Emu.mintIDToken(ctx, t, sub)}}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.AppURL+"/tokensignin", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Requested-With", "XmlHttpRequest")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("signin did not verify a sign-in within 30s after Google's keys came back (last: %v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
