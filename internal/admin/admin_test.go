package admin

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.com/signin"
	"example.com/signin/internal/auth"
	"example.com/signin/internal/emulator"
	"example.com/signin/internal/googlenet"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/pgtest"
	"example.com/signin/internal/seal"
	"example.com/signin/internal/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// fixture is a store (files or PostgreSQL) with users granted at an
// emulator, and the environment the command runs with.
type fixture struct {
	t       *testing.T
	env     map[string]string
	dir     string
	db      string
	emu     *emulator.Emulator
	backend store.Backend
	grants  *grant.Grants
	subs    map[string]string // email -> sub
}

func newKey() string {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return base64.StdEncoding.EncodeToString(k)
}

func newFixture(t *testing.T, db bool) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir(), subs: map[string]string{}}
	emu, err := emulator.New(emulator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	f.emu = emu
	srv := httptest.NewServer(emu.Handler())
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	f.env = map[string]string{googlenet.EnvEmulatorHost: host, seal.EnvKeys: newKey()}
	if db {
		f.db = pgtest.URL(t)
		f.env["DATABASE_URL"] = f.db
	}
	f.backend, err = store.Open(t.Context(), store.Config{DatabaseURL: f.db, Dir: f.dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.backend.Close)
	keys, err := seal.LoadKeys(f.getenv, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := googlenet.New(host, googlenet.Options{})
	google := auth.NewGoogle(auth.GoogleConfig{Client: &auth.Client{ID: emulator.DemoClientID, Secret: emulator.DemoClientSecret}, HTTPClient: n.HTTPClient()})
	f.grants = grant.New(grant.Config{Store: grant.Sealed(f.backend, keys), Google: google})
	// Two records share an email (a user changed address at Google, and
	// another took it): an email must then not pick one.
	for i, email := range []string{"ada@example.com", "grace@example.com", "twin@example.com", "twin@example.com"} {
		u, err := emu.AddUser(emulator.User{Email: fmt.Sprintf("%d.%s", i, email)})
		if err != nil {
			t.Fatal(err)
		}
		code, err := emu.MintCode(emulator.CodeRequest{ClientID: emulator.DemoClientID, Sub: u.Sub, Scope: "openid email profile", AccessType: "offline", RedirectURI: "postmessage"})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := google.Exchange(t.Context(), code)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.grants.SaveExchange(t.Context(), u.Sub, grant.Identity{Email: email, Name: u.Name}, tok); err != nil {
			t.Fatal(err)
		}
		f.subs[email] = u.Sub
	}
	return f
}

func (f *fixture) getenv(k string) string { return f.env[k] }

// run runs signin-admin with args (and the fixture's credentials), and
// returns the exit status and output. No output may hold a token.
func (f *fixture) run(args ...string) (int, string, string) {
	f.t.Helper()
	var out, errOut bytes.Buffer
	args = append(args, "-credentials", f.dir)
	code := Main(context.Background(), args, f.getenv, &out, &errOut)
	f.noTokens(out.String() + errOut.String())
	return code, out.String(), errOut.String()
}

func (f *fixture) noTokens(s string) {
	f.t.Helper()
	for _, sub := range f.subs {
		rec, err := f.grants.Store().Get(context.Background(), sub)
		if err != nil {
			continue
		}
		for _, tok := range []string{rec.Token.AccessToken, rec.Token.RefreshToken} {
			if tok != "" && strings.Contains(s, tok) {
				f.t.Errorf("the output holds a token of %s", sub)
			}
		}
	}
	if strings.Contains(s, "sealed:v1:") {
		f.t.Error("the output holds a sealed token")
	}
}

func backends(t *testing.T, fn func(t *testing.T, f *fixture)) {
	for _, db := range []bool{false, true} {
		name := map[bool]string{false: "files", true: "postgres"}[db]
		t.Run(name, func(t *testing.T) { fn(t, newFixture(t, db)) })
	}
}

func TestUsersListAndShow(t *testing.T) {
	backends(t, func(t *testing.T, f *fixture) {
		code, out, errOut := f.run("users", "list", "-json")
		if code != 0 {
			t.Fatalf("users list: %d %s", code, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 4 {
			t.Fatalf("%d lines, want 4:\n%s", len(lines), out)
		}
		var v userJSON
		if err := json.Unmarshal([]byte(lines[0]), &v); err != nil || v.Offline != "active" || v.SealingKey == "" || v.LastRefresh == nil {
			t.Errorf("line %s: %+v %v", lines[0], v, err)
		}
		if code, out, _ := f.run("users", "list"); code != 0 || !strings.Contains(out, "ada@example.com") || !strings.Contains(out, "LAST REFRESH") {
			t.Errorf("table: %d\n%s", code, out)
		}
		code, out, _ = f.run("users", "show", "ada@example.com")
		if code != 0 || !strings.Contains(out, f.subs["ada@example.com"]) || !strings.Contains(out, "sealing key:") {
			t.Errorf("users show by email: %d\n%s", code, out)
		}
		// -json: one JSON line, as users list -json prints them.
		code, out, _ = f.run("users", "show", "ada@example.com", "-json")
		var shown userJSON
		if code != 0 || strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "}\n") || json.Unmarshal([]byte(out), &shown) != nil || shown.Sub != f.subs["ada@example.com"] {
			t.Errorf("users show -json: %d, want one JSON line of Ada:\n%s", code, out)
		}
		if code, _, errOut := f.run("users", "show", "twin@example.com"); code != 1 || !strings.Contains(errOut, "names 2 users") {
			t.Errorf("ambiguous email: %d %s", code, errOut)
		}
		if code, _, _ := f.run("users", "show", "nobody@example.com"); code != 1 {
			t.Errorf("unknown user: %d", code)
		}
		if code, _, _ := f.run("users", "frobnicate"); code != 2 {
			t.Errorf("unknown command: %d", code)
		}
	})
}

func TestSessionsEnd(t *testing.T) {
	backends(t, func(t *testing.T, f *fixture) {
		sub := f.subs["grace@example.com"]
		before := time.Now().Add(-time.Millisecond)
		code, out, errOut := f.run("sessions", "end", "grace@example.com")
		if code != 0 || !strings.Contains(out, "ended every session of "+sub) {
			t.Fatalf("sessions end: %d %s %s", code, out, errOut)
		}
		// Every session of Grace issued until now is ended; Ada's are not.
		if validAfter, _, err := f.backend.SessionEnds(t.Context(), sub); err != nil || validAfter.Before(before) {
			t.Errorf("Grace's sessions end at %v (%v), want after %v", validAfter, err, before)
		}
		if validAfter, _, err := f.backend.SessionEnds(t.Context(), f.subs["ada@example.com"]); err != nil || !validAfter.IsZero() {
			t.Errorf("Ada's sessions end at %v (%v), want never", validAfter, err)
		}
	})
}

func TestUsersDelete(t *testing.T) {
	backends(t, func(t *testing.T, f *fixture) {
		ada, grace := f.subs["ada@example.com"], f.subs["grace@example.com"]
		// Google unreachable: -revoke keeps the record.
		f.emu.InjectFault(emulator.Fault{Endpoint: emulator.EndpointRevoke, Status: 503, Count: 5})
		if code, _, errOut := f.run("users", "delete", ada, "-revoke"); code != 1 || !strings.Contains(errOut, "kept") {
			t.Errorf("delete -revoke with Google down: %d %s", code, errOut)
		}
		if _, err := f.backend.Get(t.Context(), ada); err != nil {
			t.Fatalf("the record was not kept: %v", err)
		}
		f.emu.Reset()
		// Reset forgot the users and grants: grant Ada again.
		f2 := newFixture(t, f.db != "")
		ada = f2.subs["ada@example.com"]
		code, out, errOut := f2.run("users", "delete", ada, "-revoke")
		if code != 0 || !strings.Contains(out, "revoked at Google: true") {
			t.Fatalf("delete -revoke: %d %s %s", code, out, errOut)
		}
		if got := f2.emu.Stats().Revocations; got != 1 {
			t.Errorf("%d revocations at Google, want 1", got)
		}
		if _, err := f2.backend.Get(t.Context(), ada); signin.ErrorKind(err) != signin.ENOTFOUND {
			t.Errorf("record after delete: %v", err)
		}
		if code, out, _ := f.run("users", "delete", grace); code != 0 || !strings.Contains(out, "the grant stays valid there") {
			t.Errorf("delete without -revoke: %d %q", code, out)
		}
		// A user whose grant Google already revoked: nothing stays valid.
		twin := f.subs["twin@example.com"]
		if _, err := f.grants.MarkRevoked(t.Context(), twin, "Token has been expired or revoked."); err != nil {
			t.Fatal(err)
		}
		if code, out, _ := f.run("users", "delete", twin); code != 0 || strings.Contains(out, "stays valid") || !strings.Contains(out, "already revoked") {
			t.Errorf("delete of a revoked user: %d %q, want it to say the grant was already revoked", code, out)
		}
	})
}

func TestReencrypt(t *testing.T) {
	backends(t, func(t *testing.T, f *fixture) {
		old := f.env[seal.EnvKeys]
		oldKeys, _ := seal.LoadKeys(f.getenv, "", nil)
		// Refused: the key to drop still seals every record.
		if code, out, _ := f.run("reencrypt", "-drop", oldKeys.Newest()); code != 1 || !strings.Contains(out, "key "+oldKeys.Newest()+": 4 records") {
			t.Errorf("drop of the only key: %d\n%s", code, out)
		}
		f.env[seal.EnvKeys] = newKey() + "," + old
		newKeys, _ := seal.LoadKeys(f.getenv, "", nil)
		code, out, errOut := f.run("reencrypt", "-drop", oldKeys.Newest())
		if code != 0 || !strings.Contains(out, "resealed=4") || !strings.Contains(out, "key "+oldKeys.Newest()+": 0 records") {
			t.Fatalf("reencrypt: %d\n%s%s", code, out, errOut)
		}
		raw, _ := f.backend.Get(t.Context(), f.subs["ada@example.com"])
		if seal.KeyID(raw.Token.RefreshToken) != newKeys.Newest() {
			t.Errorf("resealed with %s, want %s", seal.KeyID(raw.Token.RefreshToken), newKeys.Newest())
		}
		// Everything still opens with the new key alone.
		f.env[seal.EnvKeys] = strings.Split(f.env[seal.EnvKeys], ",")[0]
		if code, _, errOut := f.run("users", "list"); code != 0 {
			t.Errorf("after dropping the old key: %d %s", code, errOut)
		}
	})
}

// TestImport: a file store copied into PostgreSQL, twice: the second run
// changes nothing; a record newer in the database is kept; tokens arrive
// sealed and still work.
func TestImport(t *testing.T) {
	files := newFixture(t, false)
	db := pgtest.URL(t)
	env := func(k string) string {
		if k == "DATABASE_URL" {
			return db
		}
		return files.env[k]
	}
	run := func() (int, string) {
		var out, errOut bytes.Buffer
		code := Main(context.Background(), []string{"import", "-from", files.dir}, env, &out, &errOut)
		files.noTokens(out.String() + errOut.String())
		return code, out.String() + errOut.String()
	}
	if code, out := run(); code != 0 || !strings.Contains(out, "imported=4 kept=0 failed=0") {
		t.Fatalf("first import: %d %s", code, out)
	}
	if code, out := run(); code != 0 || !strings.Contains(out, "imported=0 kept=4 failed=0") {
		t.Fatalf("second import: %d %s", code, out)
	}
	pg, err := store.Open(t.Context(), store.Config{DatabaseURL: db})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	ada := files.subs["ada@example.com"]
	raw, err := pg.Get(t.Context(), ada)
	if err != nil || !seal.IsSealed(raw.Token.RefreshToken) {
		t.Fatalf("imported record: sealed %v, %v", raw != nil && seal.IsSealed(raw.Token.RefreshToken), err)
	}
	// A newer record in the file store wins; then the database's wins.
	if _, err := files.grants.MarkRevoked(t.Context(), ada, "test"); err != nil {
		t.Fatal(err)
	}
	if code, out := run(); code != 0 || !strings.Contains(out, "imported=1 kept=3") {
		t.Fatalf("import of a newer file record: %d %s", code, out)
	}
	if rec, _ := pg.Get(t.Context(), ada); rec.Status != grant.StatusRevoked {
		t.Errorf("the newer record did not win: %q", rec.Status)
	}
	if code, out := run(); code != 0 || !strings.Contains(out, "imported=0 kept=4") {
		t.Fatalf("import again: %d %s", code, out)
	}
	if code, out := func() (int, string) {
		var out bytes.Buffer
		return Main(context.Background(), []string{"import", "-from", filepath.Join(files.dir, "nope")}, env, &out, &out), out.String()
	}(); code != 2 {
		t.Errorf("import from a missing directory: %d %s", code, out)
	}
}

// With a database every process must share the sealing keys: without
// them the command is a configuration error (exit 2) naming the variable,
// said at once rather than after waiting for the database.
func TestDatabaseWithoutSealingKeys(t *testing.T) {
	env := map[string]string{"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none?sslmode=disable"}
	var out, errOut bytes.Buffer
	code := Main(t.Context(), []string{"users", "list", "-credentials", t.TempDir()}, func(k string) string { return env[k] }, &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), seal.EnvKeys) {
		t.Errorf("exit %d, stderr %q; want 2 naming %s", code, errOut.String(), seal.EnvKeys)
	}
}
