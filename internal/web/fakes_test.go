package web

import (
	"context"
	"sort"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/api/people/v1"

	"example.com/signin"
	"example.com/signin/internal/auth"
	"example.com/signin/internal/grant"
)

// fakeVerifier is a Verifier made of functions.
type fakeVerifier struct {
	VerifyFn       func(ctx context.Context, rawToken, nonce string) (*auth.Claims, error)
	VerifyCachedFn func(ctx context.Context, rawToken string) (*auth.Claims, error)
}

var _ Verifier = (*fakeVerifier)(nil)

func (f *fakeVerifier) Verify(ctx context.Context, rawToken, nonce string) (*auth.Claims, error) {
	return f.VerifyFn(ctx, rawToken, nonce)
}

func (f *fakeVerifier) VerifyCached(ctx context.Context, rawToken string) (*auth.Claims, error) {
	return f.VerifyCachedFn(ctx, rawToken)
}

// fakeGoogle is Google made of functions: the server's Exchanger, and the
// Google of its grants (which revoke; refreshes are the profile fetcher's,
// faked apart).
type fakeGoogle struct {
	ExchangeFn func(ctx context.Context, code string) (*oauth2.Token, error)
	RevokeFn   func(ctx context.Context, token string) error
}

var (
	_ Exchanger    = (*fakeGoogle)(nil)
	_ grant.Google = (*fakeGoogle)(nil)
)

func (f *fakeGoogle) Refresh(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	return nil, signin.Errorf(signin.EINTERNAL, "", "fakeGoogle: refreshes are the profile fetcher's")
}

func (f *fakeGoogle) Exchange(ctx context.Context, code string) (*oauth2.Token, error) {
	return f.ExchangeFn(ctx, code)
}

func (f *fakeGoogle) Revoke(ctx context.Context, token string) error {
	return f.RevokeFn(ctx, token)
}

// fakeProfiles is a ProfileFetcher made of a function.
type fakeProfiles struct {
	FetchProfileFn func(ctx context.Context, rec *grant.Record) (*people.Person, error)
}

var _ ProfileFetcher = (*fakeProfiles)(nil)

func (f *fakeProfiles) FetchProfile(ctx context.Context, rec *grant.Record) (*people.Person, error) {
	return f.FetchProfileFn(ctx, rec)
}

// memStore is an in-memory grant.Store with the interface's contract.
type memStore struct {
	mu      sync.Mutex
	recs    map[string]grant.Record
	updates int // successful writes, to prove "nothing stored"
	gets    int // Get calls, to prove a handler reads no more than it must
	now     func() time.Time
}

var _ grant.Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{recs: make(map[string]grant.Record), now: time.Now}
}

func cloneRecord(r grant.Record) *grant.Record {
	r.Scopes = append([]string(nil), r.Scopes...)
	if r.RevokedAt != nil {
		t := *r.RevokedAt
		r.RevokedAt = &t
	}
	return &r
}

func notFound() error {
	return signin.Errorf(signin.ENOTFOUND, "", "no record")
}

func (m *memStore) Get(_ context.Context, sub string) (*grant.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gets++
	r, ok := m.recs[sub]
	if !ok {
		return nil, notFound()
	}
	return cloneRecord(r), nil
}

func (m *memStore) Update(_ context.Context, sub string, fn func(cur *grant.Record) (*grant.Record, error)) (*grant.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var cur *grant.Record
	if r, ok := m.recs[sub]; ok {
		cur = cloneRecord(r)
	}
	next, err := fn(cur)
	if err != nil {
		return nil, err
	}
	if next == nil {
		return cur, nil
	}
	now := m.now()
	next.Version = grant.RecordVersion
	next.Sub = sub
	if old, ok := m.recs[sub]; ok {
		next.CreatedAt = old.CreatedAt
	} else {
		next.CreatedAt = now
	}
	next.UpdatedAt = now
	m.recs[sub] = *cloneRecord(*next)
	m.updates++
	return cloneRecord(*next), nil
}

func (m *memStore) Delete(_ context.Context, sub string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.recs[sub]; !ok {
		return notFound()
	}
	delete(m.recs, sub)
	return nil
}

// SetAside implements grant.Store: memStore holds no damaged records.
func (m *memStore) SetAside(context.Context, string) (string, error) { return "", nil }

func (m *memStore) List(ctx context.Context, fn func(rec *grant.Record, err error) error) error {
	m.mu.Lock()
	subs := make([]string, 0, len(m.recs))
	for s := range m.recs {
		subs = append(subs, s)
	}
	m.mu.Unlock()
	sort.Strings(subs)
	for _, s := range subs {
		r, err := m.Get(ctx, s)
		if signin.ErrorKind(err) == signin.ENOTFOUND {
			continue
		}
		if err := fn(r, err); err != nil {
			return err
		}
	}
	return nil
}

// put stores rec as it is (test setup).
func (m *memStore) put(rec grant.Record) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs[rec.Sub] = *cloneRecord(rec)
}

// record returns sub's record and whether there is one.
func (m *memStore) record(sub string) (grant.Record, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[sub]
	return r, ok
}

// reads returns how many times Get was called.
func (m *memStore) reads() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gets
}

func (m *memStore) writes() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.updates
}

// memSessions is a SessionStore in memory.
type memSessions struct {
	now func() time.Time // for expiry; nil means time.Now

	mu         sync.Mutex
	validAfter map[string]time.Time
	ended      map[string]map[string]time.Time // sub -> key -> expires
	// loads counts SessionEnds calls, to show what the cache saves;
	// writes counts the writes, to show that signing in makes none.
	loads, writes int
}

var _ SessionStore = (*memSessions)(nil)

func newMemSessions() *memSessions {
	return &memSessions{validAfter: make(map[string]time.Time), ended: make(map[string]map[string]time.Time)}
}

func (m *memSessions) SessionEnds(_ context.Context, sub string) (time.Time, []string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.loads++
	now := time.Now
	if m.now != nil {
		now = m.now
	}
	var keys []string
	for k, exp := range m.ended[sub] {
		if now().Before(exp) {
			keys = append(keys, k)
		}
	}
	return m.validAfter[sub], keys, nil
}

func (m *memSessions) EndSession(_ context.Context, sub, key string, expires time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes++
	if m.ended[sub] == nil {
		m.ended[sub] = make(map[string]time.Time)
	}
	m.ended[sub][key] = expires
	return nil
}

func (m *memSessions) EndUserSessions(_ context.Context, sub string, at, _ time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes++
	if at.After(m.validAfter[sub]) {
		m.validAfter[sub] = at
	}
	return nil
}

func (m *memSessions) counts() (loads, writes int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.loads, m.writes
}
