package offline

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"example.com/signin/internal/auth"
	"example.com/signin/internal/googlenet"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/grant/granttest"
)

// fakeGoogle stands for Google's token endpoint (refresh grants) and the
// People API's people/me, with just enough of their behaviour for the
// engine: tokens issued and revoked, Google's error shapes, injected faults
// and counters. Records made by granttest.NewRecord ("at-<sub>",
// "rt-<sub>") are valid here until revoked.
type fakeGoogle struct {
	t   testing.TB
	srv *httptest.Server
	net *googlenet.Net

	mu        sync.Mutex
	revoked   map[string]bool   // subs whose grant is dead
	access    map[string]string // access token -> sub, beyond "at-<sub>"
	names     map[string]string // sub -> display name, if not the default
	faults    map[string][]fault
	requests  map[string]int // by path
	refreshes int
	issued    int
	hold      func(path string, n int) <-chan struct{} // if set and non-nil, the request waits for it
	latency   time.Duration
}

// fault is an answer injected for the next request to a path.
type fault struct {
	status     int
	retryAfter string
}

const (
	fakeClientID     = "client-1.apps.googleusercontent.com"
	fakeClientSecret = "secret-1"
)

func newFakeGoogle(t testing.TB) *fakeGoogle {
	f := &fakeGoogle{
		t: t, revoked: map[string]bool{}, access: map[string]string{}, names: map[string]string{},
		faults: map[string][]fault{}, requests: map[string]int{},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	n, err := googlenet.New(f.srv.Listener.Addr().String(), googlenet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.net = n
	return f
}

// grants returns the grant rules over st, with the app's client, its token
// calls going to f.
func (f *fakeGoogle) grants(st grant.Store) *grant.Grants {
	g := auth.NewGoogle(auth.GoogleConfig{Client: &auth.Client{ID: fakeClientID, Secret: fakeClientSecret}, HTTPClient: f.net.HTTPClient()})
	return grant.New(grant.Config{Store: st, Google: g})
}

func (f *fakeGoogle) do(fn func(f *fakeGoogle)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeGoogle) inject(path string, faults ...fault) {
	f.do(func(f *fakeGoogle) { f.faults[path] = append(f.faults[path], faults...) })
}

func (f *fakeGoogle) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[path]
}

func (f *fakeGoogle) refreshCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refreshes
}

func (f *fakeGoogle) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests[r.URL.Path]++
	n := f.requests[r.URL.Path]
	var ft *fault
	if q := f.faults[r.URL.Path]; len(q) > 0 {
		ft, f.faults[r.URL.Path] = &q[0], q[1:]
	}
	var hold <-chan struct{}
	if f.hold != nil {
		hold = f.hold(r.URL.Path, n)
	}
	latency := f.latency
	f.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	if latency > 0 {
		time.Sleep(latency) // the emulated network's latency
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if ft != nil {
		if ft.retryAfter != "" {
			w.Header().Set("Retry-After", ft.retryAfter)
		}
		w.WriteHeader(ft.status)
		fmt.Fprintf(w, `{"error":{"code":%d,"message":"injected","status":"UNAVAILABLE"}}`, ft.status)
		return
	}
	switch r.URL.Path {
	case "/token":
		f.token(w, r)
	case "/v1/people/me":
		f.people(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeGoogle) token(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	if r.PostForm.Get("client_id") != fakeClientID || r.PostForm.Get("client_secret") != fakeClientSecret {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"invalid_client","error_description":"The OAuth client was not found."}`)
		return
	}
	if r.PostForm.Get("grant_type") != "refresh_token" {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"unsupported_grant_type"}`)
		return
	}
	sub, ok := strings.CutPrefix(r.PostForm.Get("refresh_token"), "rt-")
	f.mu.Lock()
	defer f.mu.Unlock()
	if !ok || f.revoked[sub] {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`)
		return
	}
	f.refreshes++
	f.issued++
	at := fmt.Sprintf("ya29.fake-%d", f.issued)
	f.access[at] = sub
	json.NewEncoder(w).Encode(map[string]any{
		"access_token": at, "expires_in": 3599, "token_type": "Bearer",
		"scope": "openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile",
	})
}

func (f *fakeGoogle) people(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("personFields") == "" {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":{"code":400,"message":"personFields mask is required.","status":"INVALID_ARGUMENT"}}`)
		return
	}
	at, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	sub, ok := f.access[at]
	if !ok {
		sub, ok = strings.CutPrefix(at, "at-")
	}
	ok = ok && !f.revoked[sub]
	name := f.names[sub]
	f.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}`)
		return
	}
	if name == "" {
		name = "User " + sub
	}
	json.NewEncoder(w).Encode(map[string]any{
		"resourceName": "people/" + sub,
		"etag":         "%EgUBAi43PRoEAQIFByIMR1BzQzVvbE5rU0E9",
		"names": []any{
			map[string]any{"metadata": map[string]any{"primary": false}, "displayName": "Old Name"},
			map[string]any{"metadata": map[string]any{"primary": true, "source": map[string]any{"type": "PROFILE", "id": sub}}, "displayName": name},
		},
		"emailAddresses": []any{map[string]any{"metadata": map[string]any{"primary": true}, "value": sub + "@example.com"}},
		"photos":         []any{map[string]any{"metadata": map[string]any{"primary": true}, "url": "https://lh3.googleusercontent.com/a/x"}},
	})
}

// seed stores n users, subs 100000..100000+n-1; those for which expired
// returns true have an access token that expired an hour ago.
func seed(tb testing.TB, st grant.Store, n int, expired func(i int) bool) []string {
	tb.Helper()
	subs := make([]string, n)
	for i := range n {
		subs[i] = strconv.Itoa(100000 + i)
	}
	err := granttest.Fill(context.Background(), st, n, 16, func(i int) (*grant.Record, error) {
		exp := time.Now().Add(time.Hour)
		if expired != nil && expired(i) {
			exp = time.Now().Add(-time.Hour)
		}
		return granttest.NewRecord(subs[i], exp), nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return subs
}
