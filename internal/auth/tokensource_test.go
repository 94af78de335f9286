package auth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"example.com/signin"
	"example.com/signin/internal/auth"
	"example.com/signin/internal/store"
	"example.com/signin/internal/store/file"
	"example.com/signin/internal/store/storetest"
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

func (e *savingTokenEndpoint) config() *oauth2.Config {
	return &oauth2.Config{
		ClientID:     "cid",
		ClientSecret: "secret",
		Endpoint:     oauth2.Endpoint{TokenURL: e.srv.URL + "/token", AuthStyle: oauth2.AuthStyleInParams},
	}
}

func (e *savingTokenEndpoint) ctx(t *testing.T) context.Context {
	return context.WithValue(t.Context(), oauth2.HTTPClient, e.srv.Client())
}

func (e *savingTokenEndpoint) wantRefreshes(t *testing.T, want int64) {
	t.Helper()
	if got := e.refreshes.Load(); got != want {
		t.Errorf("%d refresh grants sent to Google, want %d", got, want)
	}
}

const savingSub = "109876543210987654321"

func savingSource(t *testing.T, e *savingTokenEndpoint, st store.Store, opts ...auth.SavingOption) *auth.SavingTokenSource {
	return auth.NewSavingTokenSource(e.ctx(t), e.config(), store.NewUserTokens(st, savingSub, nil), opts...)
}

func savedToken(t *testing.T, st store.Store) store.Token {
	t.Helper()
	rec, err := st.Get(context.Background(), savingSub)
	if err != nil {
		t.Fatal(err)
	}
	return rec.Token
}

func TestSavingTokenSourceFreshTokenNotRefreshed(t *testing.T) {
	e := newSavingTokenEndpoint(t)
	st := &storetest.Memory{}
	storetest.Put(t, st, storetest.NewRecord(savingSub, time.Now().Add(30*time.Minute)))
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
			st := &storetest.Memory{}
			storetest.Put(t, st, storetest.NewRecord(savingSub, time.Now().Add(tt.expiry)))
			ts := savingSource(t, e, st)
			tok, err := ts.Token()
			if err != nil {
				t.Fatal(err)
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
			if tok, err := savingSource(t, e, st).Token(); err != nil || tok.AccessToken != "refreshed-1" {
				t.Errorf("new source: Token = %v, %v", tok, err)
			}
			e.wantRefreshes(t, 1)
		})
	}
}

func TestSavingTokenSourceMargin(t *testing.T) {
	e := newSavingTokenEndpoint(t)
	st := &storetest.Memory{}
	storetest.Put(t, st, storetest.NewRecord(savingSub, time.Now().Add(30*time.Second)))
	if _, err := savingSource(t, e, st, auth.WithRefreshMargin(10*time.Second)).Token(); err != nil {
		t.Fatal(err)
	}
	e.wantRefreshes(t, 0)
	// The same token, seen from a clock 25 s later, is within the margin.
	later := func() time.Time { return time.Now().Add(25 * time.Second) }
	if _, err := savingSource(t, e, st, auth.WithRefreshMargin(10*time.Second), auth.WithRefreshClock(later)).Token(); err != nil {
		t.Fatal(err)
	}
	e.wantRefreshes(t, 1)
}

func TestSavingTokenSourceNewRefreshTokenReplaces(t *testing.T) {
	e := newSavingTokenEndpoint(t)
	e.set(func(e *savingTokenEndpoint) { e.newRefresh = "rt-rotated" })
	st := &storetest.Memory{}
	storetest.Put(t, st, storetest.NewRecord(savingSub, time.Now().Add(-time.Hour)))
	if _, err := savingSource(t, e, st).Token(); err != nil {
		t.Fatal(err)
	}
	if got := savedToken(t, st).RefreshToken; got != "rt-rotated" {
		t.Errorf("saved refresh token %q, want the new one", got)
	}
}

func TestSavingTokenSourceConcurrentCallers(t *testing.T) {
	e := newSavingTokenEndpoint(t)
	st := &storetest.Memory{}
	storetest.Put(t, st, storetest.NewRecord(savingSub, time.Now().Add(-time.Hour)))
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

// loadSignal is a TokenUpdater that says when LoadToken has returned.
type loadSignal struct {
	auth.TokenUpdater
	loaded chan struct{}
}

func (l *loadSignal) LoadToken(ctx context.Context) (*oauth2.Token, error) {
	tok, err := l.TokenUpdater.LoadToken(ctx)
	l.loaded <- struct{}{}
	return tok, err
}

// TestSavingTokenSourceTwoProcesses: two sources on two Stores over one
// directory share only the file lock, as two processes (the web server and
// offline-fetch) would. B reads the expired token while A is refreshing, then
// waits for the lock; once A has saved, B must use A's token, not refresh
// again (a second refresh would also race A's save).
func TestSavingTokenSourceTwoProcesses(t *testing.T) {
	e := newSavingTokenEndpoint(t)
	dir := t.TempDir()
	stA, err := file.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	stB, err := file.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	storetest.Put(t, stA, storetest.NewRecord(savingSub, time.Now().Add(-time.Hour)))

	hold, arrived := make(chan struct{}), make(chan struct{}, 10)
	e.set(func(e *savingTokenEndpoint) { e.hold, e.arrived = hold, arrived })
	a := savingSource(t, e, stA)
	bu := &loadSignal{TokenUpdater: store.NewUserTokens(stB, savingSub, nil), loaded: make(chan struct{}, 1)}
	b := auth.NewSavingTokenSource(e.ctx(t), e.config(), bu)

	type result struct {
		tok *oauth2.Token
		err error
	}
	ra, rb := make(chan result), make(chan result)
	go func() { tok, err := a.Token(); ra <- result{tok, err} }()
	<-arrived // A is at Google, holding the lock
	go func() { tok, err := b.Token(); rb <- result{tok, err} }()
	<-bu.loaded // B has seen the expired token
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
	var sources []*auth.SavingTokenSource
	for i := range 4 {
		st, err := file.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			storetest.Put(t, st, storetest.NewRecord(savingSub, time.Now().Add(-time.Hour)))
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
	st := &storetest.Memory{}
	storetest.Put(t, st, storetest.NewRecord(savingSub, time.Now().Add(-time.Hour)))
	ts := savingSource(t, e, st)
	_, err := ts.Token()
	if signin.ErrorKind(err) != signin.ECONFLICT || signin.ErrorCode(err) != store.CodeOfflineAccessRevoked {
		t.Fatalf("Token = %v, want ECONFLICT %s", err, store.CodeOfflineAccessRevoked)
	}
	if !auth.IsInvalidGrant(err) {
		t.Errorf("error %v does not carry Google's invalid_grant", err)
	}
	rec, _ := st.Get(t.Context(), savingSub)
	if rec.Status != store.StatusRevoked || rec.RevokedReason != "Token has been expired or revoked." || rec.RevokedAt == nil {
		t.Errorf("record: status %q reason %q at %v; want revoked with Google's reason", rec.Status, rec.RevokedReason, rec.RevokedAt)
	}
	// Revoked: later calls do not go to Google again.
	if _, err := ts.Token(); signin.ErrorCode(err) != store.CodeOfflineAccessRevoked {
		t.Errorf("second Token = %v", err)
	}
	e.wantRefreshes(t, 1)
}

func TestSavingTokenSourceGoogleFailingWritesNothing(t *testing.T) {
	e := newSavingTokenEndpoint(t)
	e.set(func(e *savingTokenEndpoint) { e.status = http.StatusServiceUnavailable })
	st := &storetest.Memory{}
	before := storetest.Put(t, st, storetest.NewRecord(savingSub, time.Now().Add(-time.Hour)))
	_, err := savingSource(t, e, st).Token()
	if signin.ErrorKind(err) != signin.EUPSTREAM {
		t.Errorf("Token = %v, want EUPSTREAM", err)
	}
	if rec, _ := st.Get(t.Context(), savingSub); !storetest.Equal(rec, before) {
		t.Errorf("record changed after a failed refresh: %+v", rec)
	}
}

func TestSavingTokenSourceNoRefreshToken(t *testing.T) {
	e := newSavingTokenEndpoint(t)
	st := &storetest.Memory{}
	rec := storetest.NewRecord(savingSub, time.Now().Add(-time.Hour))
	rec.Token.RefreshToken = ""
	storetest.Put(t, st, rec)
	if _, err := savingSource(t, e, st).Token(); signin.ErrorCode(err) != "offline_access_required" {
		t.Errorf("Token = %v, want offline_access_required", err)
	}
	if _, err := auth.NewSavingTokenSource(e.ctx(t), e.config(), store.NewUserTokens(st, "404", nil)).Token(); signin.ErrorKind(err) != signin.ENOTFOUND {
		t.Errorf("Token for a user without a record = %v, want ENOTFOUND", err)
	}
	e.wantRefreshes(t, 0)
}

// TestSavingTokenSourceRefreshRejected: an API refusing a token that has
// not expired forces one refresh; refusing a token that someone has since
// replaced does not.
func TestSavingTokenSourceRefreshRejected(t *testing.T) {
	e := newSavingTokenEndpoint(t)
	st := &storetest.Memory{}
	storetest.Put(t, st, storetest.NewRecord(savingSub, time.Now().Add(time.Hour)))
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

// ExampleNewSavingTokenSource shows a client for one user's API calls whose
// refreshed tokens are written back to the store.
func ExampleNewSavingTokenSource() {
	var (
		st   store.Store    = &storetest.Memory{}
		conf *oauth2.Config = &oauth2.Config{ /* from auth.Google.OAuth2Config() */ }
		ctx                 = context.Background() // with oauth2.HTTPClient, from auth.Google.Context
	)
	ts := auth.NewSavingTokenSource(ctx, conf, store.NewUserTokens(st, "109876543210987654321", nil))
	client := &http.Client{Transport: &oauth2.Transport{Source: ts}}
	_ = client // people.NewService(ctx, option.WithHTTPClient(client)), ...
}
