package admin

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"example.com/signin/internal/googlenet"
	"example.com/signin/internal/offline"
	"example.com/signin/internal/rounds"
	"example.com/signin/internal/store/postgres"
)

// TestRounds: after offline-fetch's round of the fixture's four users,
// "signin-admin rounds" lists it: its key, 4 users, 4 done, none failed or
// waiting, and when it finished; -json prints one object a line. Without a
// database there are no rounds to list (exit 2).
func TestRounds(t *testing.T) {
	f := newFixture(t, true)
	sum, err := rounds.Run(t.Context(), rounds.Config{DB: f.backend.(*postgres.Store), Offline: offline.Config{
		FetcherConfig: offline.FetcherConfig{Grants: f.grants, HTTPClient: f.emuClient()},
		Stdout:        io.Discard, Stderr: io.Discard,
	}})
	if err != nil || sum.OK != 4 {
		t.Fatalf("round: %+v, %v", sum, err)
	}

	code, out, errOut := f.run("rounds", "-json")
	if code != 0 {
		t.Fatalf("rounds -json: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 {
		t.Fatalf("rounds -json: %d lines, want 1:\n%s", len(lines), out)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &r); err != nil {
		t.Fatal(err)
	}
	key, _ := r["key"].(string)
	if !strings.HasPrefix(key, "run ") || r["users"] != float64(4) || r["done"] != float64(4) || r["failed"] != float64(0) ||
		r["waiting"] != float64(0) || r["finished"] == nil || r["open"] != false {
		t.Errorf("rounds -json: %s", lines[0])
	}

	code, out, _ = f.run("rounds")
	if code != 0 || !strings.Contains(out, "KEY") || !strings.Contains(out, key) {
		t.Errorf("rounds: exit %d:\n%s", code, out)
	}

	delete(f.env, "DATABASE_URL")
	if code, _, errOut := f.run("rounds"); code != 2 || !strings.Contains(errOut, "-database") {
		t.Errorf("rounds without a database: exit %d: %s", code, errOut)
	}
}

// emuClient is an HTTP client that sends Google's requests to the
// fixture's emulator.
func (f *fixture) emuClient() *http.Client {
	n, err := googlenet.New(f.env[googlenet.EnvEmulatorHost], googlenet.Options{})
	if err != nil {
		f.t.Fatal(err)
	}
	return n.HTTPClient()
}
