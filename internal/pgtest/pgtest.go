// Package pgtest gives each test that needs PostgreSQL a fresh, empty
// database of its own, and can run throwaway PostgreSQL servers for tests
// that stop and start one.
//
// Where the databases come from, in this order:
//
//  1. SIGNIN_TEST_DATABASE_URL: a server the test may create databases on
//     (a libpq URL whose user has CREATEDB; its database is only used to
//     connect).
//  2. A throwaway server, started once per test binary from the installed
//     PostgreSQL binaries (initdb and postgres on PATH or under
//     /usr/lib/postgresql/*/bin), in a temporary directory, on a free
//     loopback port, as an unprivileged user when the tests run as root
//     (initdb refuses root).
//  3. Neither: the test is skipped, saying why; with SIGNIN_REQUIRE_POSTGRES=1
//     (as in CI) it fails instead.
//
// A package using the throwaway server calls Main from its TestMain, so the
// server stops and its directory goes when the tests end.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables read by this package.
const (
	EnvURL     = "SIGNIN_TEST_DATABASE_URL"
	EnvRequire = "SIGNIN_REQUIRE_POSTGRES"
)

// shared is the throwaway server of this test binary, started on first use.
var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Main runs the tests of a package that uses pgtest, then stops the
// throwaway server if one was started. Call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if shared.srv != nil {
		shared.srv.close()
	}
	os.Exit(code)
}

// Required reports whether SIGNIN_REQUIRE_POSTGRES asks for a missing
// PostgreSQL to fail tests rather than skip them.
func Required() bool { return os.Getenv(EnvRequire) == "1" }

// skipOrFail skips tb saying why, or fails it when PostgreSQL is required.
func skipOrFail(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required() {
		tb.Fatalf("%s (%s=1: PostgreSQL is required)", msg, EnvRequire)
	}
	tb.Skipf("%s; set %s, or install PostgreSQL (apt-get install postgresql)", msg, EnvURL)
}

// URL returns the URL of a new, empty database for this test, dropped when
// the test ends (connections still open then are closed by the server).
func URL(tb testing.TB) string {
	tb.Helper()
	admin := os.Getenv(EnvURL)
	if admin == "" {
		shared.once.Do(func() { shared.srv, shared.err = startServer() })
		if shared.err != nil {
			skipOrFail(tb, "no PostgreSQL for tests: %s is unset and no throwaway server: %v", EnvURL, shared.err)
		}
		admin = shared.srv.URL("postgres")
	}
	return createDatabase(tb, admin)
}

// createDatabase creates a database with a random name on the server of
// admin, drops it at the end of the test, and returns its URL.
func createDatabase(tb testing.TB, admin string) string {
	tb.Helper()
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		tb.Fatalf("%s must be a postgres:// URL", EnvURL) // never print it: it may hold a password
	}
	var b [8]byte
	rand.Read(b[:])
	name := "signin_test_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Errors are shown without the URL's password.
	mask := func(err error) string { return err.Error() }
	if pw, ok := u.User.Password(); ok && pw != "" {
		mask = func(err error) string { return strings.ReplaceAll(err.Error(), pw, "xxxxx") }
	}
	if err := adminExec(ctx, admin, "CREATE DATABASE "+name); err != nil {
		skipOrFail(tb, "cannot create a test database: %s", mask(err))
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := adminExec(ctx, admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("dropping test database %s: %s", name, mask(err))
		}
	})
	u.Path = "/" + name
	return u.String()
}

// adminExec runs one statement on a connection of its own.
func adminExec(ctx context.Context, connURL, sql string) error {
	conn, err := pgx.Connect(ctx, connURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// WaitReady waits until a server accepts connections at connURL, up to
// timeout.
func WaitReady(ctx context.Context, connURL string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, connURL)
		if err == nil {
			return conn.Close(context.Background())
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ClosedPort returns a loopback port nothing listens on: the port of a
// database URL that cannot be reached, for tests of a database that is
// down.
func ClosedPort(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	return port
}
