package grant_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"example.com/signin"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/grant/granttest"
	"example.com/signin/internal/store/file"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const sub = "109876543210987654321"

// fakeGoogle is the part of Google a grant talks to: it records
// revocations and can fail them.
type fakeGoogle struct {
	revoked []string
	fail    error
}

func (f *fakeGoogle) Refresh(ctx context.Context, rt string) (*oauth2.Token, error) {
	return nil, errors.New("fakeGoogle: no refreshes here")
}

func (f *fakeGoogle) Revoke(ctx context.Context, token string) error {
	if err := ctx.Err(); err != nil {
		return err // as a request on a cancelled context
	}
	if f.fail != nil {
		return f.fail
	}
	f.revoked = append(f.revoked, token)
	return nil
}

// TestSaveExchange: what a code exchange gave is merged into the stored
// record by Google's rules.
func TestSaveExchange(t *testing.T) {
	revokedAt := t0.Add(-time.Hour)
	tests := []struct {
		name        string
		cur         grant.Record
		tok         *oauth2.Token
		wantRefresh string
		wantStatus  grant.Status
		wantExpiry  time.Time
		wantScopes  string
	}{
		{
			name:        "refresh without refresh token keeps the stored one",
			cur:         grant.Record{Status: grant.StatusActive, Token: grant.Token{AccessToken: "a1", RefreshToken: "r1"}, Scopes: []string{"openid"}},
			tok:         &oauth2.Token{AccessToken: "a2", Expiry: t0.Add(time.Hour)},
			wantRefresh: "r1", wantStatus: grant.StatusActive, wantExpiry: t0.Add(time.Hour), wantScopes: "openid",
		},
		{
			name:        "new refresh token replaces the stored one",
			cur:         grant.Record{Status: grant.StatusActive, Token: grant.Token{AccessToken: "a1", RefreshToken: "r1"}},
			tok:         &oauth2.Token{AccessToken: "a2", RefreshToken: "r2", Expiry: t0.Add(time.Hour)},
			wantRefresh: "r2", wantStatus: grant.StatusActive, wantExpiry: t0.Add(time.Hour),
		},
		{
			name:        "new refresh token reactivates a revoked record",
			cur:         grant.Record{Status: grant.StatusRevoked, RevokedReason: "gone", RevokedAt: &revokedAt, Token: grant.Token{RefreshToken: "r1"}},
			tok:         &oauth2.Token{AccessToken: "a2", RefreshToken: "r2", Expiry: t0.Add(time.Hour)},
			wantRefresh: "r2", wantStatus: grant.StatusActive, wantExpiry: t0.Add(time.Hour),
		},
		{
			name:        "access token alone does not reactivate",
			cur:         grant.Record{Status: grant.StatusRevoked, RevokedReason: "gone", RevokedAt: &revokedAt, Token: grant.Token{RefreshToken: "r1"}},
			tok:         &oauth2.Token{AccessToken: "a2", Expiry: t0.Add(time.Hour)},
			wantRefresh: "r1", wantStatus: grant.StatusRevoked, wantExpiry: t0.Add(time.Hour),
		},
		{
			name:        "expires_in only",
			cur:         grant.Record{Status: grant.StatusActive},
			tok:         &oauth2.Token{AccessToken: "a2", RefreshToken: "r2", ExpiresIn: 3599},
			wantRefresh: "r2", wantStatus: grant.StatusActive, wantExpiry: t0.Add(3599 * time.Second),
		},
		{
			name: "granted scopes from an answer with a refresh token (the union, after an incremental grant)",
			cur:  grant.Record{Status: grant.StatusActive, Scopes: []string{"openid"}, Token: grant.Token{RefreshToken: "r1"}},
			tok: (&oauth2.Token{AccessToken: "a2", RefreshToken: "r2", Expiry: t0}).WithExtra(map[string]any{
				"scope": "openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/contacts.readonly",
			}),
			wantRefresh: "r2", wantStatus: grant.StatusActive, wantExpiry: t0,
			wantScopes: "openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/contacts.readonly",
		},
		{
			// The stored refresh token was not replaced, so the grant the
			// record holds is still the one it was.
			name: "an exchange without a refresh token keeps the stored token's scopes",
			cur:  grant.Record{Status: grant.StatusActive, Scopes: []string{"openid"}, Token: grant.Token{RefreshToken: "r1"}},
			tok: (&oauth2.Token{AccessToken: "a2", Expiry: t0}).WithExtra(map[string]any{
				"scope": "openid https://www.googleapis.com/auth/contacts.readonly",
			}),
			wantRefresh: "r1", wantStatus: grant.StatusActive, wantExpiry: t0, wantScopes: "openid",
		},
		{
			name: "the first grant's scopes",
			cur:  grant.Record{Status: grant.StatusActive},
			tok: (&oauth2.Token{AccessToken: "a2", RefreshToken: "r2", Expiry: t0}).WithExtra(map[string]any{
				"scope": "openid https://www.googleapis.com/auth/userinfo.profile",
			}),
			wantRefresh: "r2", wantStatus: grant.StatusActive, wantExpiry: t0,
			wantScopes: "openid https://www.googleapis.com/auth/userinfo.profile",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &granttest.Memory{}
			cur := tt.cur
			cur.Sub = sub
			granttest.Put(t, st, &cur)
			g := grant.New(grant.Config{Store: st, Google: &fakeGoogle{}, Now: func() time.Time { return t0 }})
			_, status, err := g.SaveExchange(t.Context(), sub, grant.Identity{Email: "ada@example.com"}, tt.tok)
			if err != nil {
				t.Fatal(err)
			}
			rec, err := st.Get(t.Context(), sub)
			if err != nil {
				t.Fatal(err)
			}
			if status != rec.Offline() {
				t.Errorf("SaveExchange said %q, the record says %q", status, rec.Offline())
			}
			if rec.Email != "ada@example.com" {
				t.Errorf("email %q", rec.Email)
			}
			if rec.Token.AccessToken != tt.tok.AccessToken {
				t.Errorf("access token %q, want %q", rec.Token.AccessToken, tt.tok.AccessToken)
			}
			if rec.Token.RefreshToken != tt.wantRefresh {
				t.Errorf("refresh token %q, want %q", rec.Token.RefreshToken, tt.wantRefresh)
			}
			if rec.Status != tt.wantStatus {
				t.Errorf("status %q, want %q", rec.Status, tt.wantStatus)
			}
			if rec.Status == grant.StatusActive && (rec.RevokedAt != nil || rec.RevokedReason != "") {
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

func TestSaveExchangeWithoutRefreshTokenStoresNothing(t *testing.T) {
	st := &granttest.Memory{}
	g := grant.New(grant.Config{Store: st, Google: &fakeGoogle{}})
	_, status, err := g.SaveExchange(t.Context(), sub, grant.Identity{}, &oauth2.Token{AccessToken: "a1", Expiry: t0})
	if err != nil || status != grant.OfflineNone {
		t.Fatalf("SaveExchange = %q, %v; want none", status, err)
	}
	if _, err := st.Get(t.Context(), sub); signin.ErrorKind(err) != signin.ENOTFOUND {
		t.Errorf("a record was stored: %v", err)
	}
}

// A damaged record is replaced by an exchange with a refresh token (set
// aside, logged), and left alone by one without.
func TestSaveExchangeOverADamagedRecord(t *testing.T) {
	var logs strings.Builder
	st := &granttest.Memory{}
	st.Damage(sub)
	g := grant.New(grant.Config{Store: st, Google: &fakeGoogle{}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})

	_, status, err := g.SaveExchange(t.Context(), sub, grant.Identity{}, &oauth2.Token{AccessToken: "a1", Expiry: t0})
	if err != nil || status != grant.OfflineUnreadable {
		t.Errorf("SaveExchange without a refresh token = %q, %v; want unreadable", status, err)
	}
	if _, err := st.Get(t.Context(), sub); signin.ErrorCode(err) != grant.CodeCorruptRecord {
		t.Errorf("the damaged record was touched with nothing to replace it: %v", err)
	}

	_, status, err = g.SaveExchange(t.Context(), sub, grant.Identity{Email: "e@example.com"}, &oauth2.Token{AccessToken: "a2", RefreshToken: "r2", Expiry: t0})
	if err != nil || status != grant.OfflineActive {
		t.Fatalf("SaveExchange with a refresh token = %q, %v; want active", status, err)
	}
	rec, err := st.Get(t.Context(), sub)
	if err != nil || rec.Token.RefreshToken != "r2" || rec.Email != "e@example.com" {
		t.Errorf("record after replacing a damaged one: %+v, %v", rec, err)
	}
	if !strings.Contains(logs.String(), "set aside") || !strings.Contains(logs.String(), "sub="+sub) {
		t.Errorf("replacing a damaged record was not logged:\n%s", logs.String())
	}
}

func TestLookup(t *testing.T) {
	dir := t.TempDir()
	st, err := file.Open(file.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	active := granttest.NewRecord("1", t0)
	revoked := granttest.NewRecord("2", t0)
	revoked.Status = grant.StatusRevoked
	noRefresh := granttest.NewRecord("3", t0)
	noRefresh.Token.RefreshToken = ""
	for _, r := range []*grant.Record{active, revoked, noRefresh} {
		granttest.Put(t, st, r)
	}
	// A record cut short, as a crash of something else than the store
	// might leave it.
	if err := os.WriteFile(filepath.Join(dir, "4.json"), []byte(`{"version":1,"sub":"4","status":"act`), 0o600); err != nil {
		t.Fatal(err)
	}
	g := grant.New(grant.Config{Store: st, Google: &fakeGoogle{}})
	for _, tc := range []struct {
		sub     string
		want    grant.Offline
		wantRec bool
	}{
		{"1", grant.OfflineActive, true},
		{"2", grant.OfflineRevoked, true},
		{"3", grant.OfflineNone, true},
		{"4", grant.OfflineUnreadable, false},
		{"5", grant.OfflineNone, false},
	} {
		rec, got, err := g.Lookup(t.Context(), tc.sub)
		if err != nil || got != tc.want || (rec != nil) != tc.wantRec {
			t.Errorf("Lookup(%s) = %v, %q, %v; want %q, record %v", tc.sub, rec, got, err, tc.want, tc.wantRec)
		}
	}
}

func TestDisconnect(t *testing.T) {
	t.Run("revokes the refresh token, then forgets", func(t *testing.T) {
		st, google := &granttest.Memory{}, &fakeGoogle{}
		granttest.Put(t, st, granttest.NewRecord(sub, t0))
		revoked, err := grant.New(grant.Config{Store: st, Google: google}).Disconnect(t.Context(), sub)
		if err != nil || !revoked {
			t.Fatalf("Disconnect = %v, %v", revoked, err)
		}
		if len(google.revoked) != 1 || google.revoked[0] != "rt-"+sub {
			t.Errorf("revoked %q, want the refresh token", google.revoked)
		}
		if _, err := st.Get(t.Context(), sub); signin.ErrorKind(err) != signin.ENOTFOUND {
			t.Errorf("record still there: %v", err)
		}
	})
	t.Run("the access token when there is no refresh token", func(t *testing.T) {
		st, google := &granttest.Memory{}, &fakeGoogle{}
		rec := granttest.NewRecord(sub, t0)
		rec.Token.RefreshToken = ""
		granttest.Put(t, st, rec)
		if _, err := grant.New(grant.Config{Store: st, Google: google}).Disconnect(t.Context(), sub); err != nil {
			t.Fatal(err)
		}
		if len(google.revoked) != 1 || google.revoked[0] != "at-"+sub {
			t.Errorf("revoked %q, want the access token", google.revoked)
		}
	})
	t.Run("Google unavailable: nothing forgotten", func(t *testing.T) {
		st := &granttest.Memory{}
		google := &fakeGoogle{fail: signin.Errorf(signin.EUPSTREAM, "google_unavailable", "down")}
		before := granttest.Put(t, st, granttest.NewRecord(sub, t0))
		_, err := grant.New(grant.Config{Store: st, Google: google}).Disconnect(t.Context(), sub)
		if signin.ErrorKind(err) != signin.EUPSTREAM {
			t.Fatalf("Disconnect = %v, want EUPSTREAM", err)
		}
		if rec, err := st.Get(t.Context(), sub); err != nil || !granttest.Equal(rec, before) {
			t.Errorf("record after a failed revocation: %+v, %v", rec, err)
		}
	})
	t.Run("nothing stored", func(t *testing.T) {
		google := &fakeGoogle{}
		revoked, err := grant.New(grant.Config{Store: &granttest.Memory{}, Google: google}).Disconnect(t.Context(), sub)
		if err != nil || revoked || len(google.revoked) != 0 {
			t.Errorf("Disconnect = %v, %v, revoked %q", revoked, err, google.revoked)
		}
	})
}

func TestOfflineOfRecord(t *testing.T) {
	var nilRec *grant.Record
	if got := nilRec.Offline(); got != grant.OfflineNone {
		t.Errorf("nil record: %q", got)
	}
}

// TestOfflineOfErrors: what a token source's error shows of the grant, as
// the API and the pages answer by it. A record without a refresh token is
// "none" (enable offline access), not "revoked" (reconnect).
func TestOfflineOfErrors(t *testing.T) {
	st := &granttest.Memory{}
	expired := t0.Add(-time.Hour)
	revoked := granttest.Put(t, st, granttest.NewRecord("2", expired))
	revoked.Status = grant.StatusRevoked
	noRefresh := granttest.NewRecord("3", expired)
	noRefresh.Token.RefreshToken = ""
	granttest.Put(t, st, noRefresh)
	failing := granttest.Put(t, st, granttest.NewRecord("4", expired))
	g := grant.New(grant.Config{Store: st, Google: &fakeGoogle{}, Now: func() time.Time { return t0 }})
	for _, tc := range []struct {
		name string
		rec  *grant.Record
		want grant.Offline
	}{
		{"revoked", revoked, grant.OfflineRevoked},
		{"no refresh token", noRefresh, grant.OfflineNone},
		{"record gone", granttest.NewRecord("9", expired), grant.OfflineNone},
		{"Google failing", failing, ""},
	} {
		_, err := g.TokenSource(t.Context(), tc.rec).Token()
		if err == nil {
			t.Fatalf("%s: no error", tc.name)
		}
		if got := grant.OfflineOf(err); got != tc.want {
			t.Errorf("%s: OfflineOf(%v) = %q, want %q", tc.name, err, got, tc.want)
		}
	}
	if got := grant.OfflineOf(nil); got != "" {
		t.Errorf("OfflineOf(nil) = %q", got)
	}
}

// failingStore is a Store whose writes fail as a read-only or unreachable
// store's do.
type failingStore struct {
	granttest.Memory
	err error
}

func (f *failingStore) Update(ctx context.Context, sub string, fn func(cur *grant.Record) (*grant.Record, error)) (*grant.Record, error) {
	return nil, f.err
}

// TestSaveExchangeNotKept: when the store cannot keep what an exchange gave,
// a new grant (Google's one refresh token) is revoked at Google, so that the
// user's next consent gives a fresh one, and the error says so in words,
// not in the store's; the kind stays (a database outage is still a 503). A
// failure with no new refresh token revokes nothing: that would end the
// grant the stored record holds.
func TestSaveExchangeNotKept(t *testing.T) {
	storeErr := signin.Wrap(errors.New("open 1.lock: read-only file system"), signin.EINTERNAL, "", "cannot lock the credential record")
	outage := signin.Wrap(errors.New("dial tcp: connection refused"), signin.EUNAVAILABLE, "database_unavailable", "The database is unavailable.")
	tests := []struct {
		name        string
		storeErr    error
		revokeErr   error
		tok         *oauth2.Token
		wantRevoked []string
		wantKind    string
		wantWords   string
	}{
		{"new grant: revoked", storeErr, nil, &oauth2.Token{AccessToken: "a1", RefreshToken: "r1"}, []string{"r1"}, signin.EINTERNAL, "cancelled it at Google"},
		{"new grant, database down: revoked, still a 503", outage, nil, &oauth2.Token{AccessToken: "a1", RefreshToken: "r1"}, []string{"r1"}, signin.EUNAVAILABLE, "cancelled it at Google"},
		{"new grant, revoke fails: consent again", storeErr, errors.New("google down"), &oauth2.Token{AccessToken: "a1", RefreshToken: "r1"}, nil, signin.EINTERNAL, "ask for your consent once more"},
		{"no refresh token: nothing revoked", storeErr, nil, &oauth2.Token{AccessToken: "a1"}, nil, signin.EINTERNAL, "kept nothing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			google := &fakeGoogle{fail: tc.revokeErr}
			g := grant.New(grant.Config{Store: &failingStore{err: tc.storeErr}, Google: google})
			_, status, err := g.SaveExchange(t.Context(), sub, grant.Identity{}, tc.tok)
			if err == nil {
				t.Fatalf("SaveExchange = %q, nil; want an error", status)
			}
			if signin.ErrorCode(err) != grant.CodeGrantNotKept || signin.ErrorKind(err) != tc.wantKind {
				t.Errorf("error code %q kind %q, want %q %q", signin.ErrorCode(err), signin.ErrorKind(err), grant.CodeGrantNotKept, tc.wantKind)
			}
			msg := signin.ErrorMessage(err)
			if strings.Contains(msg, "cannot lock") || !strings.Contains(msg, tc.wantWords) || !strings.Contains(msg, "try again") {
				t.Errorf("message %q: want %q and \"try again\", not the store's words", msg, tc.wantWords)
			}
			if strings.Join(google.revoked, ",") != strings.Join(tc.wantRevoked, ",") {
				t.Errorf("revoked %q, want %q", google.revoked, tc.wantRevoked)
			}
		})
	}

	// A cancelled request (the browser went away mid-save) still revokes.
	google := &fakeGoogle{}
	g := grant.New(grant.Config{Store: &failingStore{err: context.Canceled}, Google: google})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := g.SaveExchange(ctx, sub, grant.Identity{}, &oauth2.Token{AccessToken: "a1", RefreshToken: "r1"}); err == nil || len(google.revoked) != 1 {
		t.Errorf("cancelled request: err %v, revoked %q; want the new grant revoked", err, google.revoked)
	}
}
