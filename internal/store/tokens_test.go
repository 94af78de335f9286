package store_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"example.com/signin"
	"example.com/signin/internal/store"
	"example.com/signin/internal/store/storetest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestMergeToken(t *testing.T) {
	revokedAt := t0.Add(-time.Hour)
	tests := []struct {
		name        string
		cur         store.Record
		tok         *oauth2.Token
		wantRefresh string
		wantStatus  store.Status
		wantExpiry  time.Time
		wantScopes  string
	}{
		{
			name:        "refresh without refresh token keeps the stored one",
			cur:         store.Record{Status: store.StatusActive, Token: store.Token{AccessToken: "a1", RefreshToken: "r1"}, Scopes: []string{"openid"}},
			tok:         &oauth2.Token{AccessToken: "a2", Expiry: t0.Add(time.Hour)},
			wantRefresh: "r1", wantStatus: store.StatusActive, wantExpiry: t0.Add(time.Hour), wantScopes: "openid",
		},
		{
			name:        "new refresh token replaces the stored one",
			cur:         store.Record{Status: store.StatusActive, Token: store.Token{AccessToken: "a1", RefreshToken: "r1"}},
			tok:         &oauth2.Token{AccessToken: "a2", RefreshToken: "r2", Expiry: t0.Add(time.Hour)},
			wantRefresh: "r2", wantStatus: store.StatusActive, wantExpiry: t0.Add(time.Hour),
		},
		{
			name:        "new refresh token reactivates a revoked record",
			cur:         store.Record{Status: store.StatusRevoked, RevokedReason: "gone", RevokedAt: &revokedAt, Token: store.Token{RefreshToken: "r1"}},
			tok:         &oauth2.Token{AccessToken: "a2", RefreshToken: "r2", Expiry: t0.Add(time.Hour)},
			wantRefresh: "r2", wantStatus: store.StatusActive, wantExpiry: t0.Add(time.Hour),
		},
		{
			name:        "access token alone does not reactivate",
			cur:         store.Record{Status: store.StatusRevoked, RevokedReason: "gone", RevokedAt: &revokedAt, Token: store.Token{RefreshToken: "r1"}},
			tok:         &oauth2.Token{AccessToken: "a2", Expiry: t0.Add(time.Hour)},
			wantRefresh: "r1", wantStatus: store.StatusRevoked, wantExpiry: t0.Add(time.Hour),
		},
		{
			name:        "expires_in only",
			cur:         store.Record{Status: store.StatusActive},
			tok:         &oauth2.Token{AccessToken: "a2", RefreshToken: "r2", ExpiresIn: 3599},
			wantRefresh: "r2", wantStatus: store.StatusActive, wantExpiry: t0.Add(3599 * time.Second),
		},
		{
			name: "granted scopes from the answer",
			cur:  store.Record{Status: store.StatusActive, Scopes: []string{"openid"}, Token: store.Token{RefreshToken: "r1"}},
			tok: (&oauth2.Token{AccessToken: "a2", Expiry: t0}).WithExtra(map[string]any{
				"scope": "openid https://www.googleapis.com/auth/userinfo.email",
			}),
			wantRefresh: "r1", wantStatus: store.StatusActive, wantExpiry: t0,
			wantScopes: "openid https://www.googleapis.com/auth/userinfo.email",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := tt.cur
			store.MergeToken(&rec, tt.tok, t0)
			if rec.Token.AccessToken != tt.tok.AccessToken {
				t.Errorf("access token %q, want %q", rec.Token.AccessToken, tt.tok.AccessToken)
			}
			if rec.Token.RefreshToken != tt.wantRefresh {
				t.Errorf("refresh token %q, want %q", rec.Token.RefreshToken, tt.wantRefresh)
			}
			if rec.Status != tt.wantStatus {
				t.Errorf("status %q, want %q", rec.Status, tt.wantStatus)
			}
			if rec.Status == store.StatusActive && (rec.RevokedAt != nil || rec.RevokedReason != "") {
				t.Errorf("active record keeps revocation details: %v %q", rec.RevokedAt, rec.RevokedReason)
			}
			if !rec.Token.Expiry.Equal(tt.wantExpiry) {
				t.Errorf("expiry %v, want %v", rec.Token.Expiry, tt.wantExpiry)
			}
			if got := strings.Join(rec.Scopes, " "); got != tt.wantScopes {
				t.Errorf("scopes %q, want %q", got, tt.wantScopes)
			}
		})
	}
}

func newUser(t *testing.T, st store.Store, sub string, expiry time.Time) *store.UserTokens {
	t.Helper()
	storetest.Put(t, st, storetest.NewRecord(sub, expiry))
	return store.NewUserTokens(st, sub, func() time.Time { return t0 })
}

func TestUserTokensLoad(t *testing.T) {
	st := &storetest.Memory{}
	u := newUser(t, st, "1", t0.Add(time.Hour))
	tok, err := u.LoadToken(t.Context())
	if err != nil || tok.AccessToken != "at-1" || tok.RefreshToken != "rt-1" || !tok.Expiry.Equal(t0.Add(time.Hour)) {
		t.Errorf("LoadToken = %+v, %v", tok, err)
	}
	_, err = store.NewUserTokens(st, "2", nil).LoadToken(t.Context())
	if signin.ErrorKind(err) != signin.ENOTFOUND {
		t.Errorf("LoadToken(missing) = %v, want ENOTFOUND", err)
	}
}

func TestUserTokensUpdate(t *testing.T) {
	ctx := t.Context()
	st := &storetest.Memory{}
	u := newUser(t, st, "1", t0.Add(-time.Minute))
	before, _ := st.Get(ctx, "1")

	// Unchanged token: nothing written.
	if err := u.UpdateToken(ctx, func(saved *oauth2.Token) (*oauth2.Token, error) { return saved, nil }); err != nil {
		t.Fatal(err)
	}
	if after, _ := st.Get(ctx, "1"); !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Errorf("an unchanged token was written")
	}

	// A refresh answer without refresh token: saved, refresh token kept.
	err := u.UpdateToken(ctx, func(saved *oauth2.Token) (*oauth2.Token, error) {
		if saved.RefreshToken != "rt-1" {
			return nil, fmt.Errorf("fn saw refresh token %q", saved.RefreshToken)
		}
		return &oauth2.Token{AccessToken: "new", Expiry: t0.Add(time.Hour)}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := st.Get(ctx, "1")
	if rec.Token.AccessToken != "new" || rec.Token.RefreshToken != "rt-1" {
		t.Errorf("after refresh: %+v", rec.Token)
	}

	// Another error from fn: returned as is, nothing written.
	boom := errors.New("network down")
	if err := u.UpdateToken(ctx, func(*oauth2.Token) (*oauth2.Token, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("UpdateToken = %v, want %v", err, boom)
	}
	other := &oauth2.RetrieveError{ErrorCode: "invalid_client", Response: &http.Response{StatusCode: 401}}
	if err := u.UpdateToken(ctx, func(*oauth2.Token) (*oauth2.Token, error) { return nil, other }); !errors.Is(err, other) {
		t.Errorf("UpdateToken = %v, want %v", err, other)
	}
	if after, _ := st.Get(ctx, "1"); !storetest.Equal(after, rec) {
		t.Errorf("a failed update wrote %+v", after)
	}
}

func TestUserTokensInvalidGrantRevokes(t *testing.T) {
	ctx := t.Context()
	st := &storetest.Memory{}
	u := newUser(t, st, "1", t0.Add(-time.Minute))
	grant := &oauth2.RetrieveError{ErrorCode: "invalid_grant", ErrorDescription: "Token has been expired or revoked.",
		Response: &http.Response{StatusCode: 400}}
	// Wrapped, as a caller's own error vocabulary would.
	err := u.UpdateToken(ctx, func(*oauth2.Token) (*oauth2.Token, error) {
		return nil, fmt.Errorf("refresh: %w", grant)
	})
	if signin.ErrorKind(err) != signin.ECONFLICT || signin.ErrorCode(err) != store.CodeOfflineAccessRevoked {
		t.Fatalf("UpdateToken = %v, want ECONFLICT %s", err, store.CodeOfflineAccessRevoked)
	}
	if !errors.Is(err, grant) {
		t.Errorf("error %v does not wrap Google's", err)
	}
	rec, _ := st.Get(ctx, "1")
	if rec.Status != store.StatusRevoked || rec.RevokedReason != "Token has been expired or revoked." ||
		rec.RevokedAt == nil || !rec.RevokedAt.Equal(t0) {
		t.Errorf("record after invalid_grant: status %q reason %q at %v", rec.Status, rec.RevokedReason, rec.RevokedAt)
	}
	if rec.Token.RefreshToken != "rt-1" {
		t.Errorf("revoking dropped the refresh token (nothing is deleted): %+v", rec.Token)
	}

	// Revoked now: neither load nor update calls Google again.
	if _, err := u.LoadToken(ctx); signin.ErrorCode(err) != store.CodeOfflineAccessRevoked {
		t.Errorf("LoadToken(revoked) = %v", err)
	}
	called := false
	err = u.UpdateToken(ctx, func(saved *oauth2.Token) (*oauth2.Token, error) { called = true; return saved, nil })
	if signin.ErrorCode(err) != store.CodeOfflineAccessRevoked || called {
		t.Errorf("UpdateToken(revoked) = %v, fn called %v", err, called)
	}

	// A new consent (a new refresh token, through MergeToken) reconnects.
	if _, err := st.Update(ctx, "1", func(cur *store.Record) (*store.Record, error) {
		store.MergeToken(cur, &oauth2.Token{AccessToken: "a", RefreshToken: "rt-new", Expiry: t0.Add(time.Hour)}, t0)
		return cur, nil
	}); err != nil {
		t.Fatal(err)
	}
	if tok, err := u.LoadToken(ctx); err != nil || tok.RefreshToken != "rt-new" {
		t.Errorf("after reconnecting: LoadToken = %+v, %v", tok, err)
	}
}

func TestUserTokensRevokedReasonIsSafe(t *testing.T) {
	st := &storetest.Memory{}
	u := newUser(t, st, "1", t0)
	desc := "evil\n\x1b[31mred\x1b[0m" + strings.Repeat("é", 300)
	u.UpdateToken(context.Background(), func(*oauth2.Token) (*oauth2.Token, error) {
		return nil, &oauth2.RetrieveError{ErrorCode: "invalid_grant", ErrorDescription: desc}
	})
	rec, _ := st.Get(t.Context(), "1")
	if strings.ContainsAny(rec.RevokedReason, "\n\x1b") || len(rec.RevokedReason) > 256 || !strings.HasPrefix(rec.RevokedReason, "evil") {
		t.Errorf("RevokedReason = %q: want printable, bounded", rec.RevokedReason)
	}
}
