package wiring

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"example.com/signin/internal/auth"
	"example.com/signin/internal/config"
	"example.com/signin/internal/googlenet"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/pgtest"
	"example.com/signin/internal/seal"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func noEnv(string) string { return "" }

// A database without shared sealing keys is refused at once, as a
// configuration error, before waiting for a database that may never come.
func TestDatabaseNeedsSharedKeys(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, err := Open(ctx, Config{Common: config.Common{Database: "postgres://nobody@127.0.0.1:1/none?sslmode=disable"}, Getenv: noEnv})
	var ce *ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), seal.EnvKeys) {
		t.Fatalf("err = %v, want a ConfigError naming %s", err, seal.EnvKeys)
	}
}

// What the commands write through Grants is sealed in the store, and the
// key file it was sealed with is the one beside the records, so another
// command opening the same directory reads it.
func TestPartsShareOneStore(t *testing.T) {
	dir := t.TempDir()
	n, err := googlenet.New("127.0.0.1:1", googlenet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	google := &config.Google{Client: &auth.Client{ID: "id", Secret: "secret"}, Net: n}
	p, err := Open(t.Context(), Config{Common: config.Common{CredentialsDir: dir}, Getenv: noEnv, Google: google, Writable: true, Why: "x"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Grants == nil || p.Google == nil {
		t.Fatal("no Grants or Google client although Google was given")
	}
	tok := &oauth2.Token{AccessToken: "at", RefreshToken: "rt-secret", Expiry: time.Now().Add(time.Hour)}
	if _, _, err := p.Grants.SaveExchange(t.Context(), "123", grant.Identity{Email: "ada@example.com"}, tok); err != nil {
		t.Fatal(err)
	}
	raw, err := p.Store.Get(t.Context(), "123")
	if err != nil {
		t.Fatal(err)
	}
	if raw.Token.RefreshToken == "rt-secret" || seal.KeyID(raw.Token.RefreshToken) != p.Keys.Newest() {
		t.Errorf("stored refresh token is not sealed with the newest key")
	}
	if _, err := os.Stat(filepath.Join(dir, seal.DefaultKeyFileName)); err != nil {
		t.Errorf("no key file beside the records: %v", err)
	}

	// A second command, without Google, opens what the first wrote.
	q, err := Open(t.Context(), Config{Common: config.Common{CredentialsDir: dir}, Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if q.Grants != nil || q.Google != nil {
		t.Error("Grants or a Google client built without Google")
	}
	rec, err := q.Sealed.Get(t.Context(), "123")
	if err != nil || rec.Token.RefreshToken != "rt-secret" {
		t.Errorf("second opener reads %v, %v; want the refresh token opened", rec, err)
	}
}

// A credentials directory that cannot be written is named as such, with
// what the command keeps there, rather than a key file failing inside it.
func TestNotWritableSaysSo(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can write to any directory")
	}
	dir := filepath.Join(t.TempDir(), "credentials")
	if err := os.Mkdir(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	_, err := Open(t.Context(), Config{Common: config.Common{CredentialsDir: dir}, Getenv: noEnv, Writable: true, Why: "it keeps the grants there"})
	if err == nil || !strings.Contains(err.Error(), "the directory is not writable") || !strings.Contains(err.Error(), "it keeps the grants there") || strings.Contains(err.Error(), "key file") {
		t.Fatalf("err = %v", err)
	}
}

// RecordCache reaches the database store: the signin server asks for one,
// the other commands for none.
func TestRecordCacheReachesTheStore(t *testing.T) {
	url := pgtest.URL(t)
	keys := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("s", 32)))
	env := func(k string) string {
		if k == seal.EnvKeys {
			return keys
		}
		return ""
	}
	for _, n := range []int{0, ServerRecordCache} {
		p, err := Open(t.Context(), Config{Common: config.Common{Database: url, CredentialsDir: t.TempDir()}, Getenv: env, RecordCache: n})
		if err != nil {
			t.Fatal(err)
		}
		d := p.Store.Describe()
		p.Close()
		if got := strings.Contains(d, "record cache of 10000 users"); got != (n > 0) {
			t.Errorf("RecordCache %d: the store is %q", n, d)
		}
	}
}
