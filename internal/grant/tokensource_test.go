package grant_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"example.com/signin"
	"example.com/signin/internal/auth"
	"example.com/signin/internal/googlenet"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/grant/granttest"
	"example.com/signin/internal/store/file"
)

// savingTokenEndpoint is a fake of Google's token endpoint for refresh
// grants. It counts them, can refuse refresh tokens with invalid_grant, can
// answer with a new refresh token, and can hold answers until released.
type savingTokenEndpoint struct {
	t         *testing.T
	srv       *httptest.Server
	refreshes atomic.Int64

	mu         sync.Mutex
	revoked    map[string]bool // refresh tokens answered with invalid_grant
	newRefresh string          // refresh_token to send, if any
	status     int             // answer this status instead, if not 0
	hold       chan struct{}   // if not nil, answers wait for it to close
	arrived    chan struct{}   // if not nil, told of each request
}

// set changes the endpoint's behaviour under its lock.
func (e *savingTokenEndpoint) set(f func(e *savingTokenEndpoint)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f(e)
}

func newSavingTokenEndpoint(t *testing.T) *savingTokenEndpoint {
	e := &savingTokenEndpoint{t: t, revoked: map[string]bool{}}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *savingTokenEndpoint) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/token" || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	r.ParseForm()
	if r.PostForm.Get("client_id") != "cid" || r.PostForm.Get("client_secret") != "secret" {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"invalid_client"}`)
		return
	}
	if r.PostForm.Get("grant_type") != "refresh_token" {
		e.t.Errorf("token endpoint got grant_type %q", r.PostForm.Get("grant_type"))
	}
	n := e.refreshes.Add(1)
	e.mu.Lock()
	hold, status, revoked, newRefresh := e.hold, e.status, e.revoked[r.PostForm.Get("refresh_token")], e.newRefresh
	arrived := e.arrived
	e.mu.Unlock()
	if arrived != nil {
		arrived <- struct{}{}
	}
	if hold != nil {
		<-hold
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case status != 0:
		w.WriteHeader(status)
		fmt.Fprint(w, `{"error":"internal_failure"}`)
	case revoked:
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`)
	default:
		answer := map[string]any{"access_token": fmt.Sprintf("refreshed-%d", n), "expires_in": 3599,
			"token_type": "Bearer", "scope": "openid email profile"}
		if newRefresh != "" {
			answer["refresh_token"] = newRefresh
		}
		json.NewEncoder(w).Encode(answer)
	}
}

// google returns the app's Google client, its token calls routed to e.
func (e *savingTokenEndpoint) google() *auth.Google {
	u, _ := url.Parse(e.srv.URL)
	n, err := googlenet.New(u.Host, googlenet.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	return auth.NewGoogle(auth.GoogleConfig{Client: &auth.Client{ID: "cid", Secret: "secret"}, HTTPClient: n.HTTPClient()})
}

func (e *savingTokenEndpoint) wantRefreshes(t *testing.T, want int64) {
	t.Helper()
	if got := e.refreshes.Load(); got != want {
		t.Errorf("%d refresh grants sent to Google, want %d", got, want)
	}
}

const savingSub = "109876543210987654321"

// savingSource is the token source of savingSub's grant, built from the
// record as st holds it now, with the Grants that cfg configures (its Store
// and Google filled in).
func savingSource(t *testing.T, e *savingTokenEndpoint, st grant.Store, cfg ...grant.Config) *grant.TokenSource {
	t.Helper()
	var c grant.Config
	if len(cfg) > 0 {
		c = cfg[0]
	}
	c.Store, c.Google = st, e.google()
	rec, err := st.Get(t.Context(), savingSub)
	if err != nil {
		t.Fatal(err)
	}
	return grant.New(c).TokenSource(t.Context(), rec)
}

func savedToken(t *testing.T, st grant.Store) grant.Token {
	t.Helper()
	rec, err := st.Get(context.Background(), savingSub)
	if err != nil {
		t.Fatal(err)
	}
	return rec.Token
}

func TestSavingTokenSourceFreshTokenNotRefreshed(t *testing.T) {
	e := newSavingTokenEndpoint(t)
	st := &granttest.Memory{}
	granttest.Put(t, st, granttest.NewRecord(savingSub, time.Now().Add(30*time.Minute)))
	ts := savingSource(t, e, st)
	for range 3 {
		tok, err := ts.Token()
		if err != nil {
			t.Fatal(err)
		}
		if tok.AccessToken != "at-"+savingSub {
			t.Errorf("Token = %q, want the stored access token", tok.AccessToken)
		}
	}
	e.wantRefreshes(t, 0)
	if ts.Refreshed() {
		t.Error("Refreshed() = true with no refresh")
	}
}

func TestSavingTokenSourceExpiredRefreshedOnceAndSaved(t *testing.T) {
	for _, tt := range []struct {
		name   string
		expiry time.Duration // of the stored token, from now
	}{
		{"expired", -time.Hour},
		{"expires within the margin", 30 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newSavingTokenEndpoint(t)
			st := &granttest.Memory{}
			granttest.Put(t, st, granttest.NewRecord(savingSub, time.Now().Add(tt.expiry)))
			ts := savingSource(t, e, st)
			tok, err := ts.Token()
			if err != nil {
				t.Fatal(err)
			}
			if !ts.Refreshed() {
				t.Error("Refreshed() = false after a refresh")
			}
			if tok.AccessToken != "refreshed-1" || tok.RefreshToken != "rt-"+savingSub {
				t.Errorf("Token = access %q refresh %q, want refreshed-1 and the stored refresh token", tok.AccessToken, tok.RefreshToken)
			}
			saved := savedToken(t, st)
			if saved.AccessToken != "refreshed-1" || saved.RefreshToken != "rt-"+savingSub || !saved.Expiry.After(time.Now().Add(time.Hour-time.Minute)) {
				t.Errorf("saved token %+v: want the refreshed one, with the stored refresh token", saved)
			}
			for range 3 {
				if _, err := ts.Token(); err != nil {
					t.Fatal(err)
				}
			}
			// A new source (another request, later) uses the saved token.
			later := savingSource(t, e, st)
			if tok, err := later.Token(); err != nil || tok.AccessToken != "refreshed-1" {
				t.Errorf("new source: Token = %v, %v", tok, err)
			}
			if later.Refreshed() {
				t.Error("Refreshed() = true for a source that used the saved token")
			}
			e.wantRefreshes(t, 1)
		})
	}
}

func TestSavingTokenSourceMargin(t *testing.T) {
	e := newSavingTokenEndpoint(t)
	st := &granttest.Memory{}
	granttest.Put(t, st, granttest.NewRecord(savingSub, time.Now().Add(30*time.Second)))
	if _, err := savingSource(t, e, st, grant.Config{RefreshMargin: 10 * time.Second}).Token(); err != nil {
		t.Fatal(err)
	}
	e.wantRefreshes(t, 0)
	// The same token, seen from a clock 25 s later, is within the margin.
	later := func() time.Time { return time.Now().Add(25 * time.Second) }
	if _, err := savingSource(t, e, st, grant.Config{RefreshMargin: 10 * time.Second, Now: later}).Token(); err != nil {
		t.Fatal(err)
	}
	e.wantRefreshes(t, 1)
}

func TestSavingTokenSourceNewRefreshTokenReplaces(t *testing.T) {
	e := newSavingTokenEndpoint(t)
	e.set(func(e *savingTokenEndpoint) { e.newRefresh = "rt-rotated" })
	st := &granttest.Memory{}
	granttest.Put(t, st, granttest.NewRecord(savingSub, time.Now().Add(-time.Hour)))
	if _, err := savingSource(t, e, st).Token(); err != nil {
		t.Fatal(err)
	}
	if got := savedToken(t, st).RefreshToken; got != "rt-rotated" {
		t.Errorf("saved refresh token %q, want the new one", got)
	}
}

func TestSavingTokenSourceConcurrentCallers(t *testing.T) {
	e := newSavingTokenEndpoint(t)
	st := &granttest.Memory{}
	granttest.Put(t, st, granttest.NewRecord(savingSub, time.Now().Add(-time.Hour)))
	ts := savingSource(t, e, st)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			tok, err := ts.Token()
			if err != nil {
				t.Error(err)
				return
			}
			if tok.AccessToken != "refreshed-1" {
				t.Errorf("Token = %q, want refreshed-1", tok.AccessToken)
			}
		})
	}
	wg.Wait()
	e.wantRefreshes(t, 1)
}

// TestSavingTokenSourceTwoProcesses: two sources on two Stores over one
// directory share only the file lock, as two processes (the web server and
// offline-fetch) would. Both start from the expired record; B asks while A
// is refreshing and waits for the lock (or comes after A's save): either
// way it must use A's token, not refresh again (a second refresh would also
// race A's save).
func TestSavingTokenSourceTwoProcesses(t *testing.T) {
	e := newSavingTokenEndpoint(t)
	dir := t.TempDir()
	stA, err := file.Open(file.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	stB, err := file.Open(file.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	granttest.Put(t, stA, granttest.NewRecord(savingSub, time.Now().Add(-time.Hour)))

	hold, arrived := make(chan struct{}), make(chan struct{}, 10)
	e.set(func(e *savingTokenEndpoint) { e.hold, e.arrived = hold, arrived })
	a, b := savingSource(t, e, stA), savingSource(t, e, stB)

	type result struct {
		tok *oauth2.Token
		err error
	}
	ra, rb := make(chan result), make(chan result)
	go func() { tok, err := a.Token(); ra <- result{tok, err} }()
	<-arrived // A is at Google, holding the lock
	go func() { tok, err := b.Token(); rb <- result{tok, err} }()
	time.Sleep(50 * time.Millisecond) // B is most likely waiting for the lock now
	close(hold)
	resA, resB := <-ra, <-rb
	if resA.err != nil || resB.err != nil {
		t.Fatalf("Token: %v, %v", resA.err, resB.err)
	}
	if resA.tok.AccessToken != "refreshed-1" || resB.tok.AccessToken != "refreshed-1" {
		t.Errorf("tokens %q and %q, want both refreshed-1", resA.tok.AccessToken, resB.tok.AccessToken)
	}
	e.wantRefreshes(t, 1)
}

// TestSavingTokenSourceManyProcesses: the same with many goroutines per
// "process" and no choreography.
func TestSavingTokenSourceManyProcesses(t *testing.T) {
	e := newSavingTokenEndpoint(t)
	dir := t.TempDir()
	var sources []*grant.TokenSource
	for i := range 4 {
		st, err := file.Open(file.Config{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			granttest.Put(t, st, granttest.NewRecord(savingSub, time.Now().Add(-time.Hour)))
		}
		sources = append(sources, savingSource(t, e, st))
	}
	var wg sync.WaitGroup
	for _, ts := range sources {
		for range 5 {
			wg.Go(func() {
				if _, err := ts.Token(); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	e.wantRefreshes(t, 1)
}

func TestSavingTokenSourceInvalidGrantRevokes(t *testing.T) {
	e := newSavingTokenEndpoint(t)
	e.set(func(e *savingTokenEndpoint) { e.revoked["rt-"+savingSub] = true })
	st := &granttest.Memory{}
	granttest.Put(t, st, granttest.NewRecord(savingSub, time.Now().Add(-time.Hour)))
	ts := savingSource(t, e, st)
	_, err := ts.Token()
	if signin.ErrorKind(err) != signin.ECONFLICT || signin.ErrorCode(err) != grant.CodeOfflineAccessRevoked {
		t.Fatalf("Token = %v, want ECONFLICT %s", err, grant.CodeOfflineAccessRevoked)
	}
	if _, ok := auth.InvalidGrant(err); !ok {
		t.Errorf("error %v does not carry Google's invalid_grant", err)
	}
	rec, _ := st.Get(t.Context(), savingSub)
	if rec.Status != grant.StatusRevoked || rec.RevokedReason != "Token has been expired or revoked." || rec.RevokedAt == nil {
		t.Errorf("record: status %q reason %q at %v; want revoked with Google's reason", rec.Status, rec.RevokedReason, rec.RevokedAt)
	}
	// Revoked: later calls do not go to Google again.
	if _, err := ts.Token(); signin.ErrorCode(err) != grant.CodeOfflineAccessRevoked {
		t.Errorf("second Token = %v", err)
	}
	e.wantRefreshes(t, 1)
}

func TestSavingTokenSourceGoogleFailingWritesNothing(t *testing.T) {
	e := newSavingTokenEndpoint(t)
	e.set(func(e *savingTokenEndpoint) { e.status = http.StatusServiceUnavailable })
	st := &granttest.Memory{}
	before := granttest.Put(t, st, granttest.NewRecord(savingSub, time.Now().Add(-time.Hour)))
	_, err := savingSource(t, e, st).Token()
	if signin.ErrorKind(err) != signin.EUPSTREAM {
		t.Errorf("Token = %v, want EUPSTREAM", err)
	}
	if rec, _ := st.Get(t.Context(), savingSub); !granttest.Equal(rec, before) {
		t.Errorf("record changed after a failed refresh: %+v", rec)
	}
}

func TestSavingTokenSourceNoRefreshToken(t *testing.T) {
	e := newSavingTokenEndpoint(t)
	st := &granttest.Memory{}
	rec := granttest.NewRecord(savingSub, time.Now().Add(-time.Hour))
	rec.Token.RefreshToken = ""
	granttest.Put(t, st, rec)
	if _, err := savingSource(t, e, st).Token(); signin.ErrorCode(err) != "offline_access_required" {
		t.Errorf("Token = %v, want offline_access_required", err)
	}
	// The record was deleted after the source was made from it.
	granttest.Put(t, st, granttest.NewRecord("404", time.Now().Add(-time.Hour)))
	rec404, _ := st.Get(t.Context(), "404")
	if err := st.Delete(t.Context(), "404"); err != nil {
		t.Fatal(err)
	}
	if _, err := grant.New(grant.Config{Store: st, Google: e.google()}).TokenSource(t.Context(), rec404).Token(); signin.ErrorKind(err) != signin.ENOTFOUND {
		t.Errorf("Token for a user whose record is gone = %v, want ENOTFOUND", err)
	}
	e.wantRefreshes(t, 0)
}

// TestSavingTokenSourceRefreshRejected: an API refusing a token that has
// not expired forces one refresh; refusing a token that someone has since
// replaced does not.
func TestSavingTokenSourceRefreshRejected(t *testing.T) {
	e := newSavingTokenEndpoint(t)
	st := &granttest.Memory{}
	granttest.Put(t, st, granttest.NewRecord(savingSub, time.Now().Add(time.Hour)))
	ts := savingSource(t, e, st)
	old, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ts.Refresh(old)
	if err != nil || tok.AccessToken != "refreshed-1" {
		t.Fatalf("Refresh = %v, %v", tok, err)
	}
	if got := savedToken(t, st).AccessToken; got != "refreshed-1" {
		t.Errorf("saved %q after Refresh", got)
	}
	// Another request that was using the old token is refused too: the
	// token saved meanwhile is already new, so no second refresh.
	other := savingSource(t, e, st)
	if tok, err := other.Refresh(old); err != nil || tok.AccessToken != "refreshed-1" {
		t.Errorf("second Refresh(old) = %v, %v; want the saved token", tok, err)
	}
	if tok, err := ts.Token(); err != nil || tok.AccessToken != "refreshed-1" {
		t.Errorf("Token after Refresh = %v, %v", tok, err)
	}
	e.wantRefreshes(t, 1)
}

// ExampleGrants_TokenSource shows a client for one user's API calls whose
// refreshed tokens are written back to the store.
func ExampleGrants_TokenSource() {
	var (
		st     grant.Store = &granttest.Memory{}
		google             = auth.NewGoogle(auth.GoogleConfig{Client: &auth.Client{ID: "cid", Secret: "secret"}})
		ctx                = context.Background()
	)
	grants := grant.New(grant.Config{Store: st, Google: google})
	rec, err := st.Get(ctx, "109876543210987654321")
	if err != nil {
		return // ENOTFOUND: no offline access stored
	}
	client := &http.Client{Transport: &oauth2.Transport{Source: grants.TokenSource(ctx, rec)}}
	_ = client // people.NewService(ctx, option.WithHTTPClient(client)), ...
}
