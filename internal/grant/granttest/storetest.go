package granttest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"example.com/signin"
	"example.com/signin/internal/grant"
)

// HostileSubs returns subs a backend must store and return unchanged
// without their reaching outside its own space: path tricks, separators,
// NUL, non-ASCII, names that look like the file backend's own, and the
// longest allowed.
func HostileSubs() []string {
	return []string{
		"../../x", "..", ".", "a/b", "/etc/passwd", `a\b`, "a\x00b", "x\ny",
		"ünïcödé", "109876543210987654321.json", "x-41", "h-00", ".tmp-1", "1.lock", "CON",
		strings.Repeat("9", 64), strings.Repeat("9", 65), strings.Repeat("z", 100),
		strings.Repeat("z", 101), strings.Repeat("z", grant.MaxSubLen),
	}
}

// Run checks that the Store that open returns keeps the grant.Store
// contract. open is called once per subtest and must return an empty store.
// damage must make sub's stored record unreadable the way the backend's
// storage can be damaged (a file cut short, say), behind the store's back.
func Run(t *testing.T, open func(t *testing.T) grant.Store, damage func(t *testing.T, st grant.Store, sub string)) {
	t.Run("GetMissing", func(t *testing.T) {
		st := open(t)
		_, err := st.Get(t.Context(), "1")
		wantKind(t, err, signin.ENOTFOUND)
	})
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, open(t)) })
	t.Run("GrantedScopes", func(t *testing.T) { testGrantedScopes(t, open(t)) })
	t.Run("UpdateNoWrite", func(t *testing.T) { testUpdateNoWrite(t, open(t)) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, open(t)) })
	t.Run("HostileSubs", func(t *testing.T) { testHostileSubs(t, open(t)) })
	t.Run("InvalidSubs", func(t *testing.T) { testInvalidSubs(t, open(t)) })
	t.Run("List", func(t *testing.T) { testList(t, open(t)) })
	t.Run("ConcurrentUpdates", func(t *testing.T) { testConcurrentUpdates(t, open(t)) })
	t.Run("Damaged", func(t *testing.T) {
		st := open(t)
		testDamaged(t, st, func(sub string) { damage(t, st, sub) })
	})
}

// testDamaged: a record that cannot be read is reported, never overwritten
// by Update, set aside by SetAside (and only then), and can be deleted.
func testDamaged(t *testing.T, st grant.Store, damage func(sub string)) {
	ctx := t.Context()
	const sub, other = "31", "32"
	Put(t, st, NewRecord(sub, time.Now()))
	good := Put(t, st, NewRecord(other, time.Now()))
	damage(sub)

	_, err := st.Get(ctx, sub)
	wantCorrupt(t, "Get", err, sub)
	called := false
	_, err = st.Update(ctx, sub, func(*grant.Record) (*grant.Record, error) {
		called = true
		return NewRecord(sub, time.Now()), nil
	})
	wantCorrupt(t, "Update", err, sub)
	if called {
		t.Error("Update called fn with a damaged record")
	}
	_, err = st.Get(ctx, sub)
	wantCorrupt(t, "Get after Update", err, sub)

	damaged := 0
	if err := st.List(ctx, func(rec *grant.Record, err error) error {
		if err != nil {
			damaged++
			wantCorrupt(t, "List", err, sub)
		}
		return nil
	}); err != nil {
		t.Fatalf("List: %v", err)
	}
	if damaged != 1 {
		t.Errorf("List reported %d damaged records, want 1", damaged)
	}

	// SetAside leaves readable records and missing ones alone.
	for _, s := range []string{other, "33"} {
		if where, err := st.SetAside(ctx, s); where != "" || err != nil {
			t.Errorf("SetAside(%s) of a readable or missing record = %q, %v; want \"\", nil", s, where, err)
		}
	}
	if rec, err := st.Get(ctx, other); err != nil || !Equal(rec, good) {
		t.Errorf("SetAside changed a readable record: %+v, %v", rec, err)
	}

	where, err := st.SetAside(ctx, sub)
	if err != nil || where == "" {
		t.Fatalf("SetAside of a damaged record = %q, %v; want where it went", where, err)
	}
	_, err = st.Get(ctx, sub)
	wantKind(t, err, signin.ENOTFOUND)
	if err := st.List(ctx, func(rec *grant.Record, err error) error {
		if err != nil {
			t.Errorf("List after SetAside still reports %v", err)
		}
		return nil
	}); err != nil {
		t.Fatalf("List: %v", err)
	}
	saved := Put(t, st, NewRecord(sub, time.Now()))
	if rec, err := st.Get(ctx, sub); err != nil || !Equal(rec, saved) {
		t.Errorf("the record replacing a damaged one: %+v, %v", rec, err)
	}

	// A damaged record can be deleted.
	damage(sub)
	if err := st.Delete(ctx, sub); err != nil {
		t.Errorf("Delete of a damaged record: %v", err)
	}
	_, err = st.Get(ctx, sub)
	wantKind(t, err, signin.ENOTFOUND)
}

func wantCorrupt(t *testing.T, op string, err error, sub string) {
	t.Helper()
	if signin.ErrorCode(err) != grant.CodeCorruptRecord {
		t.Errorf("%s of a damaged record = %v; want code %s", op, err, grant.CodeCorruptRecord)
		return
	}
	if got := grant.DamagedSub(err); got != sub {
		t.Errorf("%s of a damaged record: DamagedSub = %q, want %q", op, got, sub)
	}
}

// Put stores rec for rec.Sub through Update, failing the test on error.
func Put(t testing.TB, st grant.Store, rec *grant.Record) *grant.Record {
	t.Helper()
	saved, err := st.Update(context.Background(), rec.Sub, func(*grant.Record) (*grant.Record, error) {
		r := *rec
		return &r, nil
	})
	if err != nil {
		t.Fatalf("Update(%q): %v", rec.Sub, err)
	}
	return saved
}

// NewRecord returns an active record for sub with a token whose access
// token expires at expiry.
func NewRecord(sub string, expiry time.Time) *grant.Record {
	return &grant.Record{
		Sub:    sub,
		Email:  "user" + fmt.Sprint(len(sub)) + "@example.com",
		Name:   "Test User",
		Scopes: []string{"openid", "email", "profile"},
		Token: grant.Token{
			AccessToken:  "at-" + sub,
			TokenType:    "Bearer",
			RefreshToken: "rt-" + sub,
			Expiry:       expiry.UTC().Round(0),
		},
		Status: grant.StatusActive,
	}
}

func testRoundTrip(t *testing.T, st grant.Store) {
	ctx := t.Context()
	before := time.Now().Add(-time.Second)
	want := NewRecord("109876543210987654321", time.Now().Add(time.Hour))
	disabled := time.Now().UTC().Truncate(time.Microsecond)
	want.DisabledAt, want.DisabledReason = &disabled, "hijacking"
	saved := Put(t, st, want)
	if saved.Version != grant.RecordVersion || saved.Sub != want.Sub || saved.Status != grant.StatusActive {
		t.Errorf("saved record: version %d sub %q status %q; want %d %q %q", saved.Version, saved.Sub, saved.Status, grant.RecordVersion, want.Sub, grant.StatusActive)
	}
	if saved.CreatedAt.Before(before) || saved.UpdatedAt.Before(saved.CreatedAt) {
		t.Errorf("CreatedAt %v, UpdatedAt %v: not set by the store", saved.CreatedAt, saved.UpdatedAt)
	}
	got, err := st.Get(ctx, want.Sub)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !Equal(got, saved) {
		t.Errorf("Get = %+v\nwant %+v", got, saved)
	}

	// A second update keeps CreatedAt and sees the first record.
	again, err := st.Update(ctx, want.Sub, func(cur *grant.Record) (*grant.Record, error) {
		if cur == nil || cur.Token.RefreshToken != want.Token.RefreshToken {
			return nil, fmt.Errorf("update saw %+v", cur)
		}
		cur.Token.AccessToken = "at-2"
		cur.CreatedAt = time.Time{} // the store must keep the original
		return cur, nil
	})
	if err != nil {
		t.Fatalf("second Update: %v", err)
	}
	if !again.CreatedAt.Equal(saved.CreatedAt) {
		t.Errorf("CreatedAt changed from %v to %v", saved.CreatedAt, again.CreatedAt)
	}
	got, err = st.Get(ctx, want.Sub)
	if err != nil || got.Token.AccessToken != "at-2" {
		t.Errorf("after second update: Get = %+v, %v; want access token at-2", got, err)
	}
}

func testUpdateNoWrite(t *testing.T, st grant.Store) {
	ctx := t.Context()
	sub := "42"
	boom := errors.New("boom")
	if _, err := st.Update(ctx, sub, func(*grant.Record) (*grant.Record, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("Update with failing fn = %v, want %v", err, boom)
	}
	if rec, err := st.Update(ctx, sub, func(*grant.Record) (*grant.Record, error) { return nil, nil }); err != nil || rec != nil {
		t.Errorf("Update returning nil on a missing record = %v, %v; want nil, nil", rec, err)
	}
	_, err := st.Get(ctx, sub)
	wantKind(t, err, signin.ENOTFOUND)

	saved := Put(t, st, NewRecord(sub, time.Now()))
	if _, err := st.Update(ctx, sub, func(cur *grant.Record) (*grant.Record, error) {
		cur.Token.RefreshToken = "lost"
		return nil, boom
	}); !errors.Is(err, boom) {
		t.Errorf("Update with failing fn = %v, want %v", err, boom)
	}
	got, err := st.Get(ctx, sub)
	if err != nil || !Equal(got, saved) {
		t.Errorf("after failed update: Get = %+v, %v; want the record unchanged", got, err)
	}
	found, err := st.Update(ctx, sub, func(*grant.Record) (*grant.Record, error) { return nil, nil })
	if err != nil || !Equal(found, saved) {
		t.Errorf("Update returning nil = %+v, %v; want the record as found", found, err)
	}
}

func testDelete(t *testing.T, st grant.Store) {
	ctx := t.Context()
	wantKind(t, st.Delete(ctx, "7"), signin.ENOTFOUND)
	Put(t, st, NewRecord("7", time.Now()))
	if err := st.Delete(ctx, "7"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := st.Get(ctx, "7")
	wantKind(t, err, signin.ENOTFOUND)
	wantKind(t, st.Delete(ctx, "7"), signin.ENOTFOUND)
	// A deleted user can come back.
	Put(t, st, NewRecord("7", time.Now()))
	if _, err := st.Get(ctx, "7"); err != nil {
		t.Errorf("Get after re-adding: %v", err)
	}
}

func testHostileSubs(t *testing.T, st grant.Store) {
	ctx := t.Context()
	subs := HostileSubs()
	for _, sub := range subs {
		Put(t, st, NewRecord(sub, time.Now()))
	}
	for _, sub := range subs {
		got, err := st.Get(ctx, sub)
		if err != nil {
			t.Errorf("Get(%q): %v", sub, err)
			continue
		}
		if got.Sub != sub || got.Token.RefreshToken != "rt-"+sub {
			t.Errorf("Get(%q) returned the record of %q", sub, got.Sub)
		}
	}
	n := 0
	if err := st.List(ctx, func(rec *grant.Record, err error) error {
		if err != nil {
			t.Errorf("List: %v", err)
			return nil
		}
		n++
		return nil
	}); err != nil {
		t.Fatalf("List: %v", err)
	}
	if n != len(subs) {
		t.Errorf("List saw %d records, want %d", n, len(subs))
	}
	for _, sub := range subs {
		if err := st.Delete(ctx, sub); err != nil {
			t.Errorf("Delete(%q): %v", sub, err)
		}
	}
}

func testInvalidSubs(t *testing.T, st grant.Store) {
	ctx := t.Context()
	for _, sub := range []string{"", strings.Repeat("1", grant.MaxSubLen+1), "bad\xffutf8"} {
		_, err := st.Get(ctx, sub)
		wantKind(t, err, signin.EINVALID)
		called := false
		_, err = st.Update(ctx, sub, func(*grant.Record) (*grant.Record, error) {
			called = true
			return NewRecord("1", time.Now()), nil
		})
		wantKind(t, err, signin.EINVALID)
		if called {
			t.Errorf("Update(%q) called fn for an invalid sub", sub)
		}
		wantKind(t, st.Delete(ctx, sub), signin.EINVALID)
	}
}

func testList(t *testing.T, st grant.Store) {
	ctx := t.Context()
	const n = 40
	for i := range n {
		Put(t, st, NewRecord(fmt.Sprint(1000+i), time.Now()))
	}
	seen := map[string]int{}
	if err := st.List(ctx, func(rec *grant.Record, err error) error {
		if err != nil {
			t.Errorf("List: %v", err)
			return nil
		}
		seen[rec.Sub]++
		return nil
	}); err != nil {
		t.Fatalf("List: %v", err)
	}
	for i := range n {
		if sub := fmt.Sprint(1000 + i); seen[sub] != 1 {
			t.Errorf("List saw %s %d times, want once", sub, seen[sub])
		}
	}
	if len(seen) != n {
		t.Errorf("List saw %d users, want %d", len(seen), n)
	}

	stop := errors.New("stop")
	calls := 0
	if err := st.List(ctx, func(*grant.Record, error) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("List with fn failing = %v after %d calls; want %v after 1", err, calls, stop)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := st.List(cctx, func(*grant.Record, error) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("List with a cancelled context = %v, want context.Canceled", err)
	}
}

// testConcurrentUpdates: goroutines incrementing a counter held in the
// record must lose no increment.
func testConcurrentUpdates(t *testing.T, st grant.Store) {
	const goroutines, each = 50, 4
	sub := "109876543210987654321"
	Put(t, st, NewRecord(sub, time.Now()))
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				if err := Increment(t.Context(), st, sub); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := Count(t, st, sub); got != goroutines*each {
		t.Errorf("counter = %d after %d increments: updates were lost", got, goroutines*each)
	}
}

// Increment adds one to a counter kept in sub's record (in its access
// token, "n=<count>"), through Update. Tests of concurrent writers use it.
func Increment(ctx context.Context, st grant.Store, sub string) error {
	_, err := st.Update(ctx, sub, func(cur *grant.Record) (*grant.Record, error) {
		if cur == nil {
			return nil, fmt.Errorf("no record for %q", sub)
		}
		var n int
		fmt.Sscanf(cur.Token.AccessToken, "n=%d", &n)
		cur.Token.AccessToken = fmt.Sprintf("n=%d", n+1)
		return cur, nil
	})
	return err
}

// Count returns the counter that Increment keeps in sub's record.
func Count(t testing.TB, st grant.Store, sub string) int {
	t.Helper()
	rec, err := st.Get(context.Background(), sub)
	if err != nil {
		t.Fatalf("Get(%q): %v", sub, err)
	}
	var n int
	fmt.Sscanf(rec.Token.AccessToken, "n=%d", &n)
	return n
}

// Equal reports whether two records hold the same data (times compared
// with Equal).
func Equal(a, b *grant.Record) bool {
	if a == nil || b == nil {
		return a == b
	}
	for _, p := range [][2]*time.Time{{a.RevokedAt, b.RevokedAt}, {a.DisabledAt, b.DisabledAt}, {a.RefreshedAt, b.RefreshedAt}} {
		ta, tb := p[0], p[1]
		if (ta == nil) != (tb == nil) || (ta != nil && !ta.Equal(*tb)) {
			return false
		}
	}
	return a.Version == b.Version && a.Sub == b.Sub && a.Email == b.Email && a.Name == b.Name &&
		strings.Join(a.Scopes, " ") == strings.Join(b.Scopes, " ") &&
		a.Token.AccessToken == b.Token.AccessToken && a.Token.RefreshToken == b.Token.RefreshToken &&
		a.Token.TokenType == b.Token.TokenType && a.Token.Expiry.Equal(b.Token.Expiry) &&
		a.Status == b.Status && a.RevokedReason == b.RevokedReason && a.DisabledReason == b.DisabledReason &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}

func wantKind(t *testing.T, err error, kind string) {
	t.Helper()
	if err == nil {
		t.Errorf("err = nil, want kind %s", kind)
		return
	}
	if got := signin.ErrorKind(err); got != kind {
		t.Errorf("err = %v (kind %s), want kind %s", err, got, kind)
	}
}

// testGrantedScopes: the scopes Google said it granted come back exactly,
// in order, however long, and widen and narrow with the grant (an
// incremental grant's union; a new partial grant), so that which scopes a
// user misses is decided from what the backend returns.
func testGrantedScopes(t *testing.T, st grant.Store) {
	ctx := t.Context()
	rec := NewRecord("109876543210987654321", time.Now().Add(time.Hour))
	partial := []string{"openid", "https://www.googleapis.com/auth/userinfo.email", "https://www.googleapis.com/auth/userinfo.profile"}
	rec.Scopes = partial
	Put(t, st, rec)
	union := append(append([]string(nil), partial...), "https://www.googleapis.com/auth/contacts.readonly",
		"https://www.googleapis.com/auth/"+strings.Repeat("x", 150)+".readonly", `https://www.googleapis.com/auth/odd"\\scope`)
	for _, want := range [][]string{union, partial} {
		if _, err := st.Update(ctx, rec.Sub, func(cur *grant.Record) (*grant.Record, error) {
			cur.Scopes = want
			return cur, nil
		}); err != nil {
			t.Fatal(err)
		}
		got, err := st.Get(ctx, rec.Sub)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got.Scopes, "\n") != strings.Join(want, "\n") {
			t.Errorf("scopes read back %q, want %q", got.Scopes, want)
		}
		var listed []string
		if err := st.List(ctx, func(r *grant.Record, err error) error {
			if err == nil && r.Sub == rec.Sub {
				listed = r.Scopes
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if strings.Join(listed, "\n") != strings.Join(want, "\n") {
			t.Errorf("scopes listed %q, want %q", listed, want)
		}
	}
}
