package grant_test

import (
	"strings"
	"testing"
	"time"

	"example.com/signin"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/grant/granttest"
)

// TestFindUser: an operator names a user by sub or by the email one record
// holds; an email several records hold names their subs, and finds none.
func TestFindUser(t *testing.T) {
	st := &granttest.Memory{}
	for sub, email := range map[string]string{"1": "Ada@Example.com", "2": "twin@example.com", "3": "twin@example.com"} {
		rec := granttest.NewRecord(sub, t0)
		rec.Email = email
		granttest.Put(t, st, rec)
	}
	for _, tc := range []struct {
		user, wantSub, wantCode string
	}{
		{"1", "1", ""},
		{"ada@example.com", "1", ""},
		{"twin@example.com", "", grant.CodeAmbiguousUser},
		{"9", "", signin.ENOTFOUND},
		{"nobody@example.com", "", signin.ENOTFOUND},
	} {
		rec, err := grant.FindUser(t.Context(), st, tc.user)
		switch {
		case tc.wantCode != "" && signin.ErrorCode(err) != tc.wantCode:
			t.Errorf("FindUser(%q) = %v, %v; want code %s", tc.user, rec, err, tc.wantCode)
		case tc.wantCode == "" && (err != nil || rec.Sub != tc.wantSub):
			t.Errorf("FindUser(%q) = %v, %v; want sub %s", tc.user, rec, err, tc.wantSub)
		}
	}
	_, err := grant.FindUser(t.Context(), st, "twin@example.com")
	if msg := signin.ErrorMessage(err); !strings.Contains(msg, "names 2 users (subs 2, 3)") {
		t.Errorf("ambiguous email says %q, want both subs", msg)
	}
}

// TestImport: the newer record wins, whichever store holds it, and the
// importing store keeps its creation time.
func TestImport(t *testing.T) {
	st := &granttest.Memory{Now: func() time.Time { return t0 }}
	old := granttest.NewRecord("1", t0)
	old.UpdatedAt = t0.Add(-time.Hour)
	if wrote, err := grant.Import(t.Context(), st, old); err != nil || !wrote {
		t.Fatalf("into an empty store: %v, %v", wrote, err)
	}
	// The store stamped the copy with its own clock (t0): a record from
	// before that is older, one from after is newer.
	older := granttest.NewRecord("1", t0)
	older.Name, older.UpdatedAt = "older", t0.Add(-time.Minute)
	if wrote, err := grant.Import(t.Context(), st, older); err != nil || wrote {
		t.Errorf("an older record over a newer: wrote %v, %v", wrote, err)
	}
	newer := granttest.NewRecord("1", t0)
	newer.Name, newer.UpdatedAt, newer.CreatedAt = "newer", t0.Add(time.Minute), t0.Add(time.Minute)
	if wrote, err := grant.Import(t.Context(), st, newer); err != nil || !wrote {
		t.Errorf("a newer record: wrote %v, %v", wrote, err)
	}
	rec, err := st.Get(t.Context(), "1")
	if err != nil || rec.Name != "newer" || !rec.CreatedAt.Equal(t0) {
		t.Errorf("after imports: %+v, %v; want the newer record created at %v", rec, err, t0)
	}
}

func TestActOn(t *testing.T) {
	active := granttest.NewRecord("1", t0)
	revoked := granttest.NewRecord("2", t0)
	revoked.Status = grant.StatusRevoked
	none := granttest.NewRecord("3", t0)
	none.Token.RefreshToken = ""
	for _, tc := range []struct {
		rec  *grant.Record
		want grant.Act
	}{{active, grant.Use}, {revoked, grant.SkipRevoked}, {none, grant.PassOver}} {
		if got := grant.ActOn(tc.rec); got != tc.want {
			t.Errorf("ActOn(%s) = %v, want %v", tc.rec.Sub, got, tc.want)
		}
	}
}

// A grant revoked before says why, as the record keeps it.
func TestRevokedReasonFromRecord(t *testing.T) {
	rec := granttest.NewRecord("1", t0)
	rec.Status, rec.RevokedReason = grant.StatusRevoked, "Token has been expired or revoked."
	g := grant.New(grant.Config{Store: &granttest.Memory{}, Google: &fakeGoogle{}})
	_, err := g.TokenSource(t.Context(), rec).Token()
	if got := grant.RevokedReason(err); got != rec.RevokedReason {
		t.Errorf("RevokedReason = %q, want %q", got, rec.RevokedReason)
	}
	if got := grant.RevokedReason(signin.Errorf(signin.ECONFLICT, grant.CodeOfflineAccessRequired, "x")); got != "" {
		t.Errorf("RevokedReason of another error = %q", got)
	}
}
