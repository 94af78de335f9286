package offline

import (
	"errors"
	"testing"
	"time"

	"example.com/signin"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/grant/granttest"
)

// TestFetchProfileErrors: the contract the web server's /api/profile maps
// to its answers. Every error is a *signin.Error itself, not wrapped in the
// HTTP client's.
func TestFetchProfileErrors(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(f *fakeGoogle, st grant.Store)
		sub      string
		wantKind string
		wantCode string
	}{
		{name: "record deleted since it was read", sub: "404", wantKind: signin.ENOTFOUND, wantCode: signin.ENOTFOUND},
		{
			name:  "grant revoked at Google",
			setup: func(f *fakeGoogle, st grant.Store) { f.do(func(f *fakeGoogle) { f.revoked["1"] = true }) },
			sub:   "1", wantKind: signin.ECONFLICT, wantCode: grant.CodeOfflineAccessRevoked,
		},
		{
			name: "record revoked before",
			setup: func(f *fakeGoogle, st grant.Store) {
				st.Update(t.Context(), "1", func(cur *grant.Record) (*grant.Record, error) {
					cur.Status = grant.StatusRevoked
					return cur, nil
				})
			},
			sub: "1", wantKind: signin.ECONFLICT, wantCode: grant.CodeOfflineAccessRevoked,
		},
		{
			name: "no refresh token",
			setup: func(f *fakeGoogle, st grant.Store) {
				st.Update(t.Context(), "1", func(cur *grant.Record) (*grant.Record, error) {
					cur.Token.RefreshToken, cur.Token.Expiry = "", time.Now().Add(-time.Hour)
					return cur, nil
				})
			},
			sub: "1", wantKind: signin.ECONFLICT, wantCode: "offline_access_required",
		},
		{
			name:  "token endpoint down",
			setup: func(f *fakeGoogle, st grant.Store) { f.inject("/token", fault{status: 500}, fault{status: 500}) },
			sub:   "2", wantKind: signin.EUPSTREAM, wantCode: "google_unavailable",
		},
		{
			name:  "people down",
			setup: func(f *fakeGoogle, st grant.Store) { f.inject("/v1/people/me", fault{status: 503}, fault{status: 503}) },
			sub:   "1", wantKind: signin.EUPSTREAM, wantCode: "google_unavailable",
		},
		{
			name:  "scope missing",
			setup: func(f *fakeGoogle, st grant.Store) { f.inject("/v1/people/me", fault{status: 403}) },
			sub:   "1", wantKind: signin.EFORBIDDEN, wantCode: "insufficient_scope",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeGoogle(t)
			st := &granttest.Memory{}
			granttest.Put(t, st, granttest.NewRecord("1", time.Now().Add(time.Hour)))
			granttest.Put(t, st, granttest.NewRecord("2", time.Now().Add(-time.Hour)))
			if tt.setup != nil {
				tt.setup(f, st)
			}
			var sl sleeps
			rec, err := st.Get(t.Context(), tt.sub)
			if err != nil { // read before it was deleted
				rec = granttest.NewRecord(tt.sub, time.Now().Add(-time.Hour))
			}
			fe := NewFetcher(FetcherConfig{Grants: f.grants(st), HTTPClient: f.net.HTTPClient(), MaxRetries: 1, Sleep: sl.sleep})
			p, err := fe.FetchProfile(t.Context(), rec)
			if err == nil {
				t.Fatalf("FetchProfile = %+v, want an error", p)
			}
			var se *signin.Error
			if !errors.As(err, &se) || error(se) != err {
				t.Errorf("error %T %v is not a *signin.Error", err, err)
			}
			if signin.ErrorKind(err) != tt.wantKind || signin.ErrorCode(err) != tt.wantCode {
				t.Errorf("FetchProfile = %v (kind %s, code %s); want %s %s", err, signin.ErrorKind(err), signin.ErrorCode(err), tt.wantKind, tt.wantCode)
			}
		})
	}
}

func TestFetchProfile(t *testing.T) {
	f := newFakeGoogle(t)
	st := &granttest.Memory{}
	granttest.Put(t, st, granttest.NewRecord("7", time.Now().Add(-time.Hour)))
	fe := NewFetcher(FetcherConfig{Grants: f.grants(st), HTTPClient: f.net.HTTPClient()})
	rec, err := st.Get(t.Context(), "7")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 { // from the same, now stale, record
		p, err := fe.FetchProfile(t.Context(), rec)
		if err != nil {
			t.Fatal(err)
		}
		if v := ProfileOf(p); p.ResourceName != "people/7" || v.Name != "User 7" || v.Email != "7@example.com" {
			t.Errorf("profile %+v", p)
		}
	}
	if f.refreshCount() != 1 {
		t.Errorf("%d refreshes for three fetches of an expired token, want 1", f.refreshCount())
	}
}
