package offline

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"example.com/signin/internal/auth"
	"example.com/signin/internal/emulator"
	"example.com/signin/internal/googlenet"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/store/file"
)

// emulated is the project's Google emulator served over HTTP, with the
// app's Google client pointed at it as GOOGLE_EMULATOR_HOST would.
type emulated struct {
	e      *emulator.Emulator
	net    *googlenet.Net
	google *auth.Google
}

// grants returns the grant rules over st, with the emulator as Google.
func (em *emulated) grants(st grant.Store) *grant.Grants {
	return grant.New(grant.Config{Store: st, Google: em.google})
}

func newEmulated(t testing.TB) *emulated {
	t.Helper()
	e, err := emulator.New(emulator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	srv := httptest.NewServer(e.Handler())
	t.Cleanup(srv.Close)
	n, err := googlenet.New(srv.Listener.Addr().String(), googlenet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &emulated{e: e, net: n, google: auth.NewGoogle(auth.GoogleConfig{
		Client: &auth.Client{ID: emulator.DemoClientID, Secret: emulator.DemoClientSecret}, HTTPClient: n.HTTPClient(),
	})}
}

// connect does what /connect does for u: a consent with offline access in
// the popup, the code exchanged with redirect_uri=postmessage, the record
// stored by the store's rules.
func (em *emulated) connect(t testing.TB, st grant.Store, u emulator.User) {
	t.Helper()
	code, err := em.e.MintCode(emulator.CodeRequest{ClientID: emulator.DemoClientID, Sub: u.Sub,
		Scope: "openid email profile", AccessType: "offline", RedirectURI: "postmessage"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tok, err := em.google.Exchange(ctx, code)
	if err != nil {
		t.Fatalf("exchange for %s: %v", u.Email, err)
	}
	if tok.RefreshToken == "" {
		t.Fatalf("first offline consent for %s gave no refresh token", u.Email)
	}
	if _, _, err := em.grants(st).SaveExchange(ctx, u.Sub, grant.Identity{Email: u.Email, Name: u.Name}, tok); err != nil {
		t.Fatal(err)
	}
}

// expire makes sub's stored access token look expired to us (the emulator
// still accepts it: only our refresh decision changes).
func expire(t testing.TB, st grant.Store, sub string) {
	t.Helper()
	if _, err := st.Update(context.Background(), sub, func(cur *grant.Record) (*grant.Record, error) {
		cur.Token.Expiry = time.Now().Add(-time.Minute)
		return cur, nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestRunAgainstEmulator: records made by real code exchanges at the
// emulator are read by the engine; expired tokens are refreshed once each
// (the emulator's grant counter says so) and fresh ones not at all; a user
// who removed the app's access is marked revoked while the others succeed;
// injected 503 and 429 answers are retried.
func TestRunAgainstEmulator(t *testing.T) {
	em := newEmulated(t)
	st, err := file.Open(file.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 9 {
		if _, err := em.e.AddUser(emulator.User{Email: fmt.Sprintf("user%d@example.com", i)}); err != nil {
			t.Fatal(err)
		}
	}
	users := em.e.Users()
	for _, u := range users {
		em.connect(t, st, u)
	}
	expired := map[string]bool{}
	for i, u := range users {
		if i%2 == 0 {
			expire(t, st, u.Sub)
			expired[u.Sub] = true
		}
	}
	gone := users[1] // fresh token: people/me's 401 finds the revocation
	em.e.RevokeUser(gone.Sub)
	refreshesBefore := em.e.Stats().Grants["refresh_token"]
	em.e.InjectFault(emulator.Fault{Endpoint: emulator.EndpointPeople, Count: 2, Status: 503})
	em.e.InjectFault(emulator.Fault{Endpoint: emulator.EndpointToken, Count: 1, Status: 429, RetryAfter: "2"})

	var sl sleeps
	var stdout, stderr strings.Builder
	sum, err := Run(t.Context(), Config{
		FetcherConfig: FetcherConfig{Grants: em.grants(st), HTTPClient: em.net.HTTPClient(), Sleep: sl.sleep},
		JSON:          true, Stdout: &stdout, Stderr: &stderr,
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Summary{OK: len(users) - 1, Revoked: 1, Refreshed: len(expired)}); sum != want {
		t.Errorf("summary %+v, want %+v\n%s", sum, want, stderr.String())
	}
	lines := jsonLines(t, stdout.String())
	for _, u := range users {
		l := lines[u.Sub]
		switch {
		case u.Sub == gone.Sub:
			if l.Status != "revoked" {
				t.Errorf("revoked user: %+v", l)
			}
			rec, _ := st.Get(t.Context(), u.Sub)
			if rec.Status != grant.StatusRevoked || rec.RevokedReason == "" {
				t.Errorf("revoked user's record: status %q reason %q", rec.Status, rec.RevokedReason)
			}
		case l.Status != "ok" || l.Name != u.Name || l.Email != u.Email || l.Refreshed != expired[u.Sub]:
			t.Errorf("user %s: %+v, want ok %q %q, refreshed %v", u.Sub, l, u.Name, u.Email, expired[u.Sub])
		}
	}
	// One refresh per expired user; the revoked user's attempt is refused
	// and not counted as a grant.
	wantRefreshes := len(expired)
	if expired[gone.Sub] {
		wantRefreshes--
	}
	if got := em.e.Stats().Grants["refresh_token"] - refreshesBefore; got != wantRefreshes {
		t.Errorf("%d refresh grants at the emulator, want %d", got, wantRefreshes)
	}
	for sub := range expired {
		if sub == gone.Sub {
			continue
		}
		rec, _ := st.Get(t.Context(), sub)
		if !rec.Token.Expiry.After(time.Now().Add(30*time.Minute)) || rec.Token.RefreshToken == "" {
			t.Errorf("user %s: refreshed token not saved: expiry %v", sub, rec.Token.Expiry)
		}
	}
	var sawRetryAfter bool
	for _, d := range sl.all() {
		sawRetryAfter = sawRetryAfter || d == 2*time.Second
	}
	if n := len(sl.all()); n != 3 || !sawRetryAfter {
		t.Errorf("waits %v: want 3 retries, one of them the 2 s Retry-After", sl.all())
	}

	// Run again: nothing to refresh, the revoked user skipped.
	stdout.Reset()
	stderr.Reset()
	before := em.e.Stats().Grants["refresh_token"]
	sum, err = Run(t.Context(), Config{FetcherConfig: FetcherConfig{Grants: em.grants(st), HTTPClient: em.net.HTTPClient()}, Stdout: &stdout, Stderr: &stderr})
	if want := (Summary{OK: len(users) - 1, Skipped: 1}); err != nil || sum != want {
		t.Errorf("second run: %+v, %v; want %+v", sum, err, want)
	}
	if got := em.e.Stats().Grants["refresh_token"] - before; got != 0 {
		t.Errorf("second run made %d refresh grants, want 0", got)
	}
}
