package main

import (
	"context"
	"encoding/base64"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRoundFlags: -every and -job-timeout are checked before anything
// runs; -every needs a database, and -user is not a round.
func TestRoundFlags(t *testing.T) {
	db := "postgres://u@127.0.0.1:5432/d"
	for _, c := range []struct {
		name    string
		args    []string
		env     string
		wantErr string
		rounds  bool
	}{
		{"no database", nil, "", "", false},
		{"database", []string{"-database", db}, "", "", true},
		{"DATABASE_URL", nil, db, "", true},
		{"one user", []string{"-database", db, "-user", "123"}, "", "", false},
		{"every", []string{"-database", db, "-every", "1h"}, "", "", true},
		{"every without database", []string{"-every", "1h"}, "", "-every needs -database", false},
		{"every and user", []string{"-database", db, "-every", "1h", "-user", "123"}, "", "-every and -user", false},
		{"negative every", []string{"-database", db, "-every", "-1s"}, "", "-every", false},
		{"metrics-addr without every", []string{"-database", db, "-metrics-addr", "127.0.0.1:0"}, "", "-metrics-addr is for a worker", false},
		{"zero job timeout", []string{"-database", db, "-job-timeout", "0"}, "", "-job-timeout", false},
		{"rate", []string{"-database", db, "-rate", "6000/m"}, "", "", true},
		{"rate without database", []string{"-rate", "6000/m"}, "", "-rate needs -database", false},
		{"rate and user", []string{"-database", db, "-user", "123", "-rate", "6000/m"}, "", "-rate needs -database", false},
		{"rate per hour", []string{"-database", db, "-rate", "6000/h"}, "", "want N/m or N/s", false},
		{"rate zero", []string{"-database", db, "-rate", "0/m"}, "", "want calls per minute", false},
		{"spread", []string{"-database", db, "-every", "1m", "-spread", "30s"}, "", "", true},
		{"spread without every", []string{"-database", db, "-spread", "30s"}, "", "-spread is for a worker", false},
		{"spread past every", []string{"-database", db, "-every", "1m", "-spread", "1m"}, "", "want less than -every", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == "DATABASE_URL" {
					return c.env
				}
				return ""
			}
			cfg, err := ParseFlags(c.args, getenv, io.Discard, io.Discard)
			switch {
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("error %v, want one about %q", err, c.wantErr)
			case c.wantErr == "" && err != nil:
				t.Fatal(err)
			case c.wantErr == "" && sharesRounds(cfg) != c.rounds:
				t.Errorf("shares rounds: %v, want %v", sharesRounds(cfg), c.rounds)
			}
		})
	}
}

// TestRateFlag: -rate is calls a minute, written N/m or N/s; -token-rate
// defaults to it.
func TestRateFlag(t *testing.T) {
	for in, want := range map[string]rate{"6000/m": 6000, "6000": 6000, "100/s": 6000, "1.5/s": 90, "60000/min": 60000} {
		cfg, err := ParseFlags([]string{"-database", "postgres://u@h/d", "-rate", in}, func(string) string { return "" }, io.Discard, io.Discard)
		if err != nil || cfg.Rate != want || cfg.TokenRate != want {
			t.Errorf("-rate %s: %v/%v, %v; want %v", in, cfg.Rate, cfg.TokenRate, err, want)
		}
	}
	cfg, err := ParseFlags([]string{"-database", "postgres://u@h/d", "-rate", "6000/m", "-token-rate", "600/m"}, func(string) string { return "" }, io.Discard, io.Discard)
	if err != nil || cfg.Rate != 6000 || cfg.TokenRate != 600 {
		t.Errorf("-token-rate: %v/%v, %v", cfg.Rate, cfg.TokenRate, err)
	}
}

// TestSpreadDefault: a worker spreads its rounds over 80% of -every unless
// told otherwise; -spread 0 means all at once.
func TestSpreadDefault(t *testing.T) {
	env := func(string) string { return "" }
	for _, c := range []struct {
		args []string
		want time.Duration
	}{
		{[]string{"-every", "1h"}, 48 * time.Minute},
		{[]string{"-every", "1m", "-spread", "30s"}, 30 * time.Second},
		{[]string{"-every", "1m", "-spread", "0"}, 0},
		{nil, 0},
	} {
		cfg, err := ParseFlags(append([]string{"-database", "postgres://u@h/d"}, c.args...), env, io.Discard, io.Discard)
		if err != nil || cfg.Spread != c.want {
			t.Errorf("%v: spread %v, %v; want %v", c.args, cfg.Spread, err, c.want)
		}
	}
}

// A worker (-every) waits for its database as long as it takes, and
// SIGTERM while it waits is a clean stop: exit 0, as for a signin replica
// (issue 23, items 2 and 3).
func TestWorkerStoppedWhileWaitingForDatabase(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	key := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	env := func(k string) string {
		switch k {
		case "SIGNIN_ENCRYPTION_KEYS":
			return key
		}
		return ""
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A client file: no demo mode, whose emulator would be looked for first.
	secrets := filepath.Join(t.TempDir(), "client_secrets.json")
	if err := os.WriteFile(secrets, []byte(`{"web":{"client_id":"1-x.apps.googleusercontent.com","client_secret":"s",`+
		`"auth_uri":"https://accounts.google.com/o/oauth2/auth","token_uri":"https://oauth2.googleapis.com/token"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	seen := make(chan struct{})
	stderr := &waitWriter{want: "database not reachable", seen: seen}
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"-database", "postgres://signin@127.0.0.1:" + port + "/signin?sslmode=disable",
			"-every", "1h", "-client-secrets", secrets, "-log-level", "warn"}, env, io.Discard, stderr, false)
	}()
	select {
	case <-seen:
	case code := <-done:
		t.Fatalf("exit %d before waiting for the database:\n%s", code, stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("no line saying it waits for the database:\n%s", stderr.String())
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("stopped while waiting: exit %d, want 0\n%s", code, stderr.String())
	}
}

// waitWriter collects what is written and closes seen once it holds want.
type waitWriter struct {
	mu   sync.Mutex
	buf  strings.Builder
	want string
	seen chan struct{}
}

func (w *waitWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.seen != nil && strings.Contains(w.buf.String(), w.want) {
		close(w.seen)
		w.seen = nil
	}
	return len(p), nil
}

func (w *waitWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
