package main

import (
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.com/signin/internal/pgtest"
)

// databaseEnv is the environment a replica on a database needs: shared
// session and sealing keys.
func databaseEnv() map[string]string {
	key := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	seal := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("s", 32)))
	return map[string]string{"SESSION_KEYS": key, "SIGNIN_ENCRYPTION_KEYS": seal}
}

func status(t *testing.T, u string) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A replica started while its database is down listens at once: alive
// (/healthz 200) but not ready (/readyz 503, requests 503), so that a
// liveness probe does not restart it in a loop; it becomes ready when the
// database answers (issue 23, item 3).
func TestReplicaListensWhileDatabaseDown(t *testing.T) {
	if testing.Short() {
		t.Skip("stops a PostgreSQL server")
	}
	srv := pgtest.NewServer(t)
	dbURL := srv.NewDatabase(t)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	base, _, stop := startIn(t, credentialsIn(t), databaseEnv(), "-database", dbURL)
	defer stop()
	if got := status(t, base+"/healthz"); got != http.StatusOK {
		t.Errorf("/healthz while the database is down: %d, want 200 (alive)", got)
	}
	if got := status(t, base+"/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz while the database is down: %d, want 503", got)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for status(t, base+"/readyz") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("/readyz still not 200 60 s after the database came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// SIGTERM (the context ending) while the replica waits for its database is
// a clean shutdown: Run returns nil, so the exit status is 0 (start's stop
// fails the test otherwise).
func TestStopWhileWaitingForDatabase(t *testing.T) {
	base, _, stop := startIn(t, credentialsIn(t), databaseEnv(), "-database",
		"postgres://signin@127.0.0.1:"+pgtest.ClosedPort(t)+"/signin?sslmode=disable")
	if got := status(t, base+"/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz with no database: %d, want 503", got)
	}
	stop()
}

// credentialsIn returns a directory for startIn whose credentials
// directory exists: demo mode publishes its emulator's address there, and
// with -database signin does not create it.
func credentialsIn(t *testing.T) string {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "credentials"), 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}
