package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.com/signin/internal/emulator"
	"example.com/signin/internal/googlenet"
	"example.com/signin/internal/metrics/metricstest"
)

// -metrics-textfile writes the run for node_exporter: a successful run
// with its refreshes, then a failed one that keeps the last success time.
func TestMetricsTextfile(t *testing.T) {
	emu, err := emulator.New(emulator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	es := httptest.NewServer(emu.Handler())
	defer es.Close()
	host := strings.TrimPrefix(es.URL, "http://")
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	// Tokens that expire within the refresh margin: every user refreshes.
	emu.SetAccessTokenTTL(30 * time.Second)
	users := emu.Users()
	for _, u := range users {
		connectUser(t, emu, host, creds, u.Sub)
	}
	env := func(k string) string {
		if k == googlenet.EnvEmulatorHost {
			return host
		}
		return ""
	}
	prom := filepath.Join(dir, "textfile", "signin_offline_fetch.prom")
	if err := os.Mkdir(filepath.Dir(prom), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func() int {
		var out, errb bytes.Buffer
		code := Main(context.Background(), []string{"-credentials", creds, "-metrics-textfile", prom}, env, &out, &errb, false)
		t.Logf("exit %d; stderr:\n%s", code, errb.String())
		return code
	}
	read := func() metricstest.Families {
		f, err := os.Open(prom)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return metricstest.Parse(t, f)
	}

	if code := run(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	first := read()
	n := float64(len(users))
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"signin_offline_fetch_users", []string{"outcome", "ok"}, n},
		{"signin_offline_fetch_users", []string{"outcome", "failed"}, 0},
		{"signin_offline_fetch_refreshes", []string{"outcome", "ok"}, n},
		{"signin_offline_fetch_success", nil, 1},
	} {
		if got := first.Value(tc.name, tc.labels...); got != tc.want {
			t.Errorf("first run: %s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	lastSuccess := first.Value("signin_offline_fetch_last_success_timestamp_seconds")
	if d := time.Since(time.UnixMilli(int64(lastSuccess * 1e3))); d < 0 || d > time.Minute {
		t.Errorf("last success %v is not the run just made", lastSuccess)
	}
	if first.Value("signin_offline_fetch_duration_seconds") <= 0 {
		t.Error("no duration")
	}

	// Every user removes the app's access at Google: the run fails.
	for _, u := range users {
		emu.RevokeUser(u.Sub)
	}
	if code := run(); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	second := read()
	if got := second.Value("signin_offline_fetch_users", "outcome", "revoked"); got != n {
		t.Errorf("second run: revoked users %v, want %v", got, n)
	}
	if got := second.Value("signin_offline_fetch_refreshes", "outcome", "invalid_grant"); got != n {
		t.Errorf("second run: refused refreshes %v, want %v; %v", got, n, second.Series("signin_offline_fetch_refreshes"))
	}
	if got := second.Value("signin_offline_fetch_success"); got != 0 {
		t.Errorf("second run: success %v", got)
	}
	if got := second.Value("signin_offline_fetch_last_success_timestamp_seconds"); got != lastSuccess {
		t.Errorf("second run: last success %v, want the first run's %v", got, lastSuccess)
	}
}

func TestVersionFlag(t *testing.T) {
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"-version"}, func(string) string { return "" }, &out, &errb, false)
	if code != 0 || !strings.HasPrefix(out.String(), "offline-fetch ") || errb.Len() != 0 {
		t.Errorf("-version: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}
