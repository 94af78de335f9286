package postgres

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"example.com/signin"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/grant/granttest"
	"example.com/signin/internal/pgtest"
)

// PostgreSQL restarted mid-run: the update in flight fails with a clear
// EUNAVAILABLE error and writes nothing, calls while it is down fail the
// same way at once, and after the restart the pool reconnects by itself
// with every committed record intact.
func TestConnectionLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a PostgreSQL server")
	}
	eachCache(t, testConnectionLoss)
}

// eachCache runs test without a record cache and with one (the signin
// server's).
func eachCache(t *testing.T, test func(t *testing.T, recordCache int)) {
	t.Run("uncached", func(t *testing.T) { test(t, 0) })
	t.Run("cached", func(t *testing.T) { test(t, 100) })
}

func testConnectionLoss(t *testing.T, recordCache int) {
	srv := pgtest.NewServer(t)
	s, err := Open(t.Context(), Config{URL: srv.NewDatabase(t), Logger: testLogger(t), RecordCache: recordCache})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const sub = "109876543210987654321"
	saved := granttest.Put(t, s, granttest.NewRecord(sub, time.Now()))

	locked, release := make(chan bool), make(chan bool)
	done := make(chan error, 1)
	go func() {
		_, err := s.Update(t.Context(), sub, func(cur *grant.Record) (*grant.Record, error) {
			close(locked)
			<-release
			cur.Token.RefreshToken = "rt-new"
			cur.Token.AccessToken = "at-new"
			return cur, nil
		})
		done <- err
	}()
	<-locked
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	close(release)
	err = <-done
	wantUnavailable(t, "Update in flight when the server stopped", err)

	begin := time.Now()
	_, err = s.Get(t.Context(), sub)
	wantUnavailable(t, "Get while the server is down", err)
	wantUnavailable(t, "Ping while the server is down", s.Ping(t.Context()))
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("calls while the server is down took %v, want a prompt failure", d)
	}

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(t.Context(), sub)
	if err != nil {
		t.Fatalf("Get after the restart: %v", err)
	}
	if !granttest.Equal(got, saved) {
		t.Errorf("after the restart: %+v\nwant the record as committed before: %+v", got, saved)
	}
	if err := granttest.Increment(t.Context(), s, sub); err != nil {
		t.Errorf("Update after the restart: %v", err)
	}
}

func wantUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	if signin.ErrorKind(err) != signin.EUNAVAILABLE || signin.ErrorCode(err) != CodeUnavailable {
		t.Errorf("%s: %v; want EUNAVAILABLE %s", what, err, CodeUnavailable)
		return
	}
	t.Logf("%s: %v", what, err)
}

// withPassword returns u with a user password (ignored by the test
// servers, which trust local connections).
func withPassword(t *testing.T, u, password string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	p.User = url.UserPassword(p.User.Username(), password)
	return p.String()
}

const secret = "Pa55-w0rd_s3cret"

// A replica started while the database is down waits, saying so (without
// the password), and starts once the database is back.
func TestOpenWaitsForDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a PostgreSQL server")
	}
	srv := pgtest.NewServer(t)
	dbURL := withPassword(t, srv.NewDatabase(t), secret)
	srv.Stop()
	var logs syncBuffer
	opened := make(chan error, 1)
	go func() {
		s, err := Open(t.Context(), Config{URL: dbURL, Logger: slogTo(&logs)})
		if err == nil {
			s.Close()
		}
		opened <- err
	}()
	time.Sleep(1500 * time.Millisecond)
	select {
	case err := <-opened:
		t.Fatalf("Open returned while the database was down: %v", err)
	default:
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-opened:
		if err != nil {
			t.Fatalf("Open after the database came back: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Open still waiting 30 s after the database came back")
	}
	out := logs.String()
	t.Logf("log:\n%s", out)
	if !strings.Contains(out, "database not reachable; waiting") || !strings.Contains(out, "database reachable") {
		t.Error("no log line saying Open waits for the database, and when it is back")
	}
	if strings.Contains(out, secret) {
		t.Error("a log line holds the database password")
	}
}

// Neither errors nor log lines ever show the URL's password, however the
// connection fails.
func TestPasswordNeverShown(t *testing.T) {
	port := pgtest.ClosedPort(t)
	dbURL := pgtest.URL(t)
	noSuchDB, _ := url.Parse(withPassword(t, dbURL, secret))
	noSuchDB.Path = "/no_such_database"
	tests := []struct {
		name, url string
		wantKind  string
	}{
		{"nothing listening", "postgres://signin:" + secret + "@127.0.0.1:" + port + "/signin?sslmode=disable&connect_timeout=1", signin.EUNAVAILABLE},
		{"no such database", noSuchDB.String(), signin.EINVALID},
		{"malformed port", "postgres://signin:" + secret + "@127.0.0.1:54x32/signin", signin.EINVALID},
		{"malformed URL", "postgres://signin:" + secret + "@127.0.0.1:5432/signin?sslmode=%zz", signin.EINVALID},
		{"unknown parameter", "postgres://signin:" + secret + "@127.0.0.1:" + port + "/signin?sslmode=bogus", signin.EINVALID},
		{"keyword/value", "host=127.0.0.1 port=" + port + " user=signin password=" + secret + " dbname=signin sslmode=disable connect_timeout=1", signin.EUNAVAILABLE},
		{"keyword/value quoted", "host=127.0.0.1 port=" + port + " user=signin password='" + secret + "' dbname=signin sslmode=disable connect_timeout=1", signin.EUNAVAILABLE},
		{"escaped in URL", "postgres://signin:" + url.QueryEscape(secret+"/@:") + "@127.0.0.1:" + port + "/signin?sslmode=disable", signin.EUNAVAILABLE},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs syncBuffer
			s, err := Open(t.Context(), Config{URL: tc.url, Logger: slogTo(&logs), MaxWait: time.Second})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			t.Logf("error: %v", err)
			if signin.ErrorKind(err) != tc.wantKind {
				t.Errorf("kind %s, want %s", signin.ErrorKind(err), tc.wantKind)
			}
			for _, where := range []string{err.Error(), signin.ErrorMessage(err), logs.String()} {
				if strings.Contains(where, secret) || strings.Contains(where, url.QueryEscape(secret)) {
					t.Errorf("the password shows: %s", where)
				}
			}
		})
	}
}

// The redactor masks the password however the connection string spells
// it, in the error and in its *signin.Error form, whatever a driver error
// might echo back.
func TestRedactor(t *testing.T) {
	for _, tc := range []struct{ conn, password string }{
		{"postgres://u:" + secret + "@h/db", secret},
		{"postgres://u:" + url.QueryEscape(secret+"/@") + "@h/db", secret + "/@"},
		{"postgres://u:" + secret + "@h:54x32/db", secret}, // net/url refuses it
		{"host=h user=u password=" + secret + " dbname=db", secret},
		{"host=h user=u password='" + secret + "' dbname=db", secret},
		{"host=h user=u password = " + secret, secret},
	} {
		conn := tc.conn
		redact := redactor(conn)
		leak := errors.New("driver said: " + conn + " / " + tc.password)
		for _, err := range []error{
			redactErr(leak, redact),
			redactErr(signin.Wrap(leak, signin.EUNAVAILABLE, CodeUnavailable, "down"), redact),
		} {
			if strings.Contains(err.Error(), tc.password) || strings.Contains(err.Error(), secret) {
				t.Errorf("%q: the password shows in %q", conn, err)
			}
			if !errors.Is(err, leak) {
				t.Errorf("%q: redaction lost the error chain", conn)
			}
		}
		if signin.ErrorKind(redactErr(signin.Wrap(leak, signin.EUNAVAILABLE, "", "down"), redact)) != signin.EUNAVAILABLE {
			t.Errorf("redaction lost the kind")
		}
	}
}
