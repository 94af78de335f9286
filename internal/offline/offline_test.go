package offline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"example.com/signin"
	"example.com/signin/internal/auth"
	"example.com/signin/internal/emulator"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/grant/granttest"
	"example.com/signin/internal/store/file"
)

// sleeps is a Config.Sleep that waits for nothing and records the waits.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.d)
}

type result struct {
	stdout, stderr string
	sum            Summary
	err            error
	sleeps         []time.Duration
}

func openStore(t testing.TB) *file.Store {
	t.Helper()
	st, err := file.Open(file.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// run runs the engine against f with cfg's blanks filled in.
func run(t testing.TB, ctx context.Context, f *fakeGoogle, st grant.Store, cfg Config) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	var sl sleeps
	cfg.Grants = f.grants(st)
	cfg.HTTPClient = f.net.HTTPClient()
	cfg.Stdout, cfg.Stderr = &stdout, &stderr
	if cfg.Sleep == nil {
		cfg.Sleep = sl.sleep
	}
	sum, err := Run(ctx, cfg)
	return result{stdout: stdout.String(), stderr: stderr.String(), sum: sum, err: err, sleeps: sl.all()}
}

// plainLines parses the text output: sub -> [name, email].
func plainLines(t *testing.T, out string) map[string][2]string {
	t.Helper()
	got := map[string][2]string{}
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if l == "" {
			continue
		}
		f := strings.Split(l, "\t")
		if len(f) != 3 {
			t.Fatalf("output line %q: want sub<TAB>name<TAB>email", l)
		}
		if _, dup := got[f[0]]; dup {
			t.Errorf("user %s printed twice", f[0])
		}
		got[f[0]] = [2]string{f[1], f[2]}
	}
	return got
}

func jsonLines(t *testing.T, out string) map[string]line {
	t.Helper()
	got := map[string]line{}
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var v line
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("output line %q is not JSON: %v", l, err)
		}
		if _, dup := got[v.Sub]; dup {
			t.Errorf("user %s printed twice", v.Sub)
		}
		got[v.Sub] = v
	}
	return got
}

func wantSummaryLine(t *testing.T, stderr string, s Summary) {
	t.Helper()
	if !strings.HasSuffix(stderr, s.String()+"\n") {
		t.Errorf("stderr does not end with the summary line %q:\n%s", s.String(), stderr)
	}
}

// TestRunEveryUser: every user printed once with the People API's name and
// email; expired tokens refreshed once each and saved, fresh ones not.
func TestRunEveryUser(t *testing.T) {
	f := newFakeGoogle(t)
	st := openStore(t)
	subs := seed(t, st, 60, func(i int) bool { return i%2 == 0 })
	r := run(t, t.Context(), f, st, Config{Concurrency: 8})
	if r.err != nil {
		t.Fatal(r.err)
	}
	got := plainLines(t, r.stdout)
	for _, sub := range subs {
		if want := [2]string{"User " + sub, sub + "@example.com"}; got[sub] != want {
			t.Errorf("user %s: printed %q, want %q", sub, got[sub], want)
		}
	}
	if len(got) != len(subs) {
		t.Errorf("%d users printed, want %d", len(got), len(subs))
	}
	if want := (Summary{OK: 60, Refreshed: 30}); r.sum != want {
		t.Errorf("summary %+v, want %+v", r.sum, want)
	}
	wantSummaryLine(t, r.stderr, r.sum)
	if r.stderr != r.sum.String()+"\n" {
		t.Errorf("stderr has more than the summary:\n%s", r.stderr)
	}
	if n := f.refreshCount(); n != 30 {
		t.Errorf("%d refresh grants, want 30 (one per expired token, none for fresh ones)", n)
	}
	for i, sub := range subs {
		rec, err := st.Get(t.Context(), sub)
		if err != nil {
			t.Fatal(err)
		}
		refreshed := strings.HasPrefix(rec.Token.AccessToken, "ya29.fake-")
		if refreshed != (i%2 == 0) || rec.Token.RefreshToken != "rt-"+sub {
			t.Errorf("user %s: saved token %+v (expired before: %v)", sub, rec.Token, i%2 == 0)
		}
	}
	if ExitCode(r.sum, r.err) != 0 {
		t.Errorf("exit code %d, want 0", ExitCode(r.sum, r.err))
	}

	// A second run refreshes nothing: the saved tokens are fresh.
	r = run(t, t.Context(), f, st, Config{JSON: true})
	if r.err != nil || r.sum.OK != 60 {
		t.Fatalf("second run: %+v, %v", r.sum, r.err)
	}
	for _, l := range jsonLines(t, r.stdout) {
		if l.Status != "ok" || l.Name != "User "+l.Sub || l.Email != l.Sub+"@example.com" || l.Error != "" || l.Refreshed {
			t.Errorf("JSON line %+v", l)
		}
	}
	if n := f.refreshCount(); n != 30 {
		t.Errorf("second run refreshed %d tokens, want none", n-30)
	}
}

// TestRunRevoked: a user whose grant Google refuses is marked revoked with
// Google's reason, whether the refresh or the API call finds out, and the
// others succeed. The next run skips them without calling Google, and does
// not fail because of them.
func TestRunRevoked(t *testing.T) {
	f := newFakeGoogle(t)
	st := openStore(t)
	subs := seed(t, st, 10, func(i int) bool { return i < 5 })
	expiredRevoked, freshRevoked := subs[0], subs[7] // found by the refresh; by people/me's 401
	f.do(func(f *fakeGoogle) { f.revoked[expiredRevoked], f.revoked[freshRevoked] = true, true })

	r := run(t, t.Context(), f, st, Config{JSON: true})
	if r.err != nil {
		t.Fatal(r.err)
	}
	if want := (Summary{OK: 8, Revoked: 2, Refreshed: 4}); r.sum != want {
		t.Errorf("summary %+v, want %+v", r.sum, want)
	}
	if ExitCode(r.sum, r.err) != 1 {
		t.Errorf("exit code %d, want 1", ExitCode(r.sum, r.err))
	}
	lines := jsonLines(t, r.stdout)
	for _, sub := range subs {
		l := lines[sub]
		if sub == expiredRevoked || sub == freshRevoked {
			if l.Status != "revoked" || l.Error != grant.CodeOfflineAccessRevoked {
				t.Errorf("revoked user %s: JSON line %+v", sub, l)
			}
			rec, _ := st.Get(t.Context(), sub)
			if rec.Status != grant.StatusRevoked || rec.RevokedReason != "Token has been expired or revoked." || rec.RevokedAt == nil {
				t.Errorf("user %s: record status %q reason %q at %v", sub, rec.Status, rec.RevokedReason, rec.RevokedAt)
			}
			if rec.Token.RefreshToken == "" {
				t.Errorf("user %s: revoking deleted the refresh token", sub)
			}
			// Who it is, for the person reading: the record's name and email.
			if !strings.Contains(r.stderr, sub+" (Test User <user6@example.com>): revoked: offline_access_revoked: ") {
				t.Errorf("stderr does not report %s by name and email:\n%s", sub, r.stderr)
			}
			if l.Name != "Test User" || l.Email != "user6@example.com" {
				t.Errorf("revoked user %s: JSON line without name and email: %+v", sub, l)
			}
		} else if l.Status != "ok" {
			t.Errorf("user %s: JSON line %+v, want ok", sub, l)
		}
	}
	wantSummaryLine(t, r.stderr, r.sum)

	before := f.count("/token") + f.count("/v1/people/me")
	r = run(t, t.Context(), f, st, Config{})
	if want := (Summary{OK: 8, Skipped: 2}); r.sum != want || r.err != nil {
		t.Errorf("second run: %+v, %v; want %+v", r.sum, r.err, want)
	}
	if n := f.count("/token") + f.count("/v1/people/me") - before; n != 8 {
		t.Errorf("second run made %d requests, want 8 (none for skipped users)", n)
	}
	if !strings.Contains(r.stderr, freshRevoked+" (Test User <user6@example.com>): skipped: offline_access_revoked: offline access was revoked on ") {
		t.Errorf("stderr does not report the skipped user:\n%s", r.stderr)
	}
	if ExitCode(r.sum, r.err) != 0 {
		t.Errorf("exit code %d, want 0: users revoked before the run do not fail it", ExitCode(r.sum, r.err))
	}
}

// TestRunRetries: 429 and 5xx answers from the token endpoint and the
// People API are retried, waiting what Retry-After says (seconds or a
// date), else a jittered backoff.
func TestRunRetries(t *testing.T) {
	f := newFakeGoogle(t)
	st := openStore(t)
	seed(t, st, 1, func(int) bool { return true })
	now := time.Now().Truncate(time.Second) // HTTP dates have whole seconds
	f.inject("/token", fault{status: 500}, fault{status: 503, retryAfter: "3"})
	f.inject("/v1/people/me",
		fault{status: 429, retryAfter: "7"},
		fault{status: 503, retryAfter: now.Add(12 * time.Second).Format(http.TimeFormat)},
		fault{status: 502})
	r := run(t, t.Context(), f, st, Config{FetcherConfig: FetcherConfig{Now: func() time.Time { return now }}})
	if r.err != nil || r.sum != (Summary{OK: 1, Refreshed: 1}) {
		t.Fatalf("run: %+v, %v\n%s", r.sum, r.err, r.stderr)
	}
	if got := f.count("/token"); got != 3 {
		t.Errorf("%d token requests, want 3 (2 faults, then success)", got)
	}
	if got := f.count("/v1/people/me"); got != 4 {
		t.Errorf("%d people requests, want 4 (3 faults, then success)", got)
	}
	if f.refreshCount() != 1 {
		t.Errorf("%d refreshes granted, want 1", f.refreshCount())
	}
	if len(r.sleeps) != 5 {
		t.Fatalf("waits %v, want 5", r.sleeps)
	}
	// In order: token 500 (backoff, first retry), token 503 (Retry-After
	// 3), people 429 (7), people 503 (a date 12 s ahead), people 502
	// (backoff, third retry).
	checks := []struct {
		name string
		ok   func(time.Duration) bool
	}{
		{"backoff before retry 1", func(d time.Duration) bool { return d >= 0 && d < baseDelay }},
		{"Retry-After: 3", func(d time.Duration) bool { return d == 3*time.Second }},
		{"Retry-After: 7", func(d time.Duration) bool { return d == 7*time.Second }},
		{"Retry-After: <date>", func(d time.Duration) bool { return d == 12*time.Second }},
		{"backoff before retry 3", func(d time.Duration) bool { return d >= 0 && d < 4*baseDelay }},
	}
	for i, c := range checks {
		if !c.ok(r.sleeps[i]) {
			t.Errorf("wait %d (%s) = %v", i, c.name, r.sleeps[i])
		}
	}
}

func TestRunRetriesGiveUp(t *testing.T) {
	tests := []struct {
		name     string
		faults   []fault
		retries  int
		wantCode string
		wantReqs int
	}{
		{name: "5xx beyond the retries", faults: []fault{{status: 500}, {status: 500}, {status: 500}, {status: 500}}, retries: 2, wantCode: "google_unavailable", wantReqs: 3},
		{name: "no retries", faults: []fault{{status: 503}}, retries: -1, wantCode: "google_unavailable", wantReqs: 1},
		{name: "Retry-After too long", faults: []fault{{status: 429, retryAfter: "120"}}, retries: 4, wantCode: "rate_limited", wantReqs: 1},
		{name: "not retryable", faults: []fault{{status: 403}}, retries: 4, wantCode: "insufficient_scope", wantReqs: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeGoogle(t)
			st := openStore(t)
			subs := seed(t, st, 1, nil)
			f.inject("/v1/people/me", tt.faults...)
			r := run(t, t.Context(), f, st, Config{FetcherConfig: FetcherConfig{MaxRetries: tt.retries}, JSON: true})
			if r.err != nil || r.sum != (Summary{Failed: 1}) {
				t.Fatalf("run: %+v, %v", r.sum, r.err)
			}
			if l := jsonLines(t, r.stdout)[subs[0]]; l.Status != "failed" || l.Error != tt.wantCode {
				t.Errorf("JSON line %+v, want failed %s", l, tt.wantCode)
			}
			if got := f.count("/v1/people/me"); got != tt.wantReqs {
				t.Errorf("%d requests, want %d", got, tt.wantReqs)
			}
			if ExitCode(r.sum, r.err) != 1 {
				t.Errorf("exit code %d, want 1", ExitCode(r.sum, r.err))
			}
			if rec, _ := st.Get(t.Context(), subs[0]); rec.Status != grant.StatusActive {
				t.Errorf("a failure that is not invalid_grant changed the record's status to %q", rec.Status)
			}
		})
	}
}

func TestRunOneUser(t *testing.T) {
	f := newFakeGoogle(t)
	st := openStore(t)
	subs := seed(t, st, 5, func(int) bool { return true })
	r := run(t, t.Context(), f, st, Config{User: subs[3]})
	if r.err != nil || r.sum != (Summary{OK: 1, Refreshed: 1}) {
		t.Fatalf("run: %+v, %v", r.sum, r.err)
	}
	if got := plainLines(t, r.stdout); len(got) != 1 || got[subs[3]][1] != subs[3]+"@example.com" {
		t.Errorf("output %q, want only %s", r.stdout, subs[3])
	}
	if f.refreshCount() != 1 {
		t.Errorf("%d refreshes, want 1 (the other users untouched)", f.refreshCount())
	}

	r = run(t, t.Context(), f, st, Config{User: "999"})
	if r.err != nil || r.sum != (Summary{Failed: 1}) || !strings.Contains(r.stderr, "999: failed: not_found: ") {
		t.Errorf("unknown user: %+v, %v\n%s", r.sum, r.err, r.stderr)
	}
}

// TestRunOneUserByEmail: -user takes the email a record holds; an email
// that several records hold is a usage error naming their subs.
func TestRunOneUserByEmail(t *testing.T) {
	f := newFakeGoogle(t)
	st := openStore(t)
	subs := seed(t, st, 2, func(int) bool { return true })
	rec := granttest.NewRecord("7", time.Now().Add(-time.Hour))
	rec.Email = "Ada@Example.com"
	granttest.Put(t, st, rec)

	r := run(t, t.Context(), f, st, Config{User: "ada@example.com", JSON: true})
	if r.err != nil || r.sum != (Summary{OK: 1, Refreshed: 1}) {
		t.Fatalf("run: %+v, %v\n%s", r.sum, r.err, r.stderr)
	}
	if l := jsonLines(t, r.stdout)["7"]; l.Status != "ok" || !l.Refreshed {
		t.Errorf("JSON line %+v, want user 7 ok and refreshed\n%s", l, r.stdout)
	}

	// The seeded users share one email.
	r = run(t, t.Context(), f, st, Config{User: "user6@example.com"})
	if signin.ErrorKind(r.err) != signin.EINVALID || ExitCode(r.sum, r.err) != 2 ||
		!strings.Contains(signin.ErrorMessage(r.err), subs[0]) || !strings.Contains(signin.ErrorMessage(r.err), subs[1]) {
		t.Errorf("ambiguous email: %+v, %v", r.sum, r.err)
	}

	r = run(t, t.Context(), f, st, Config{User: "nobody@example.com"})
	if r.err != nil || r.sum != (Summary{Failed: 1}) || !strings.Contains(r.stderr, "nobody@example.com: failed: not_found: ") {
		t.Errorf("unknown email: %+v, %v\n%s", r.sum, r.err, r.stderr)
	}
	// In JSON the email is the email: "sub" is no place for it.
	r = run(t, t.Context(), f, st, Config{User: "nobody@example.com", JSON: true})
	var l struct{ Sub, Email, Status, Error string }
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil || l.Sub != "" || l.Email != "nobody@example.com" || l.Status != "failed" || l.Error != "not_found" {
		t.Errorf("unknown email, -json: %q (%v), want sub empty and the email in \"email\"", r.stdout, err)
	}
}

// TestRunOneRevokedUser: asked for by -user, a user whose grant was revoked
// in an earlier run is a failure (exit 1), not a skip.
func TestRunOneRevokedUser(t *testing.T) {
	f := newFakeGoogle(t)
	st := openStore(t)
	rec := granttest.NewRecord("8", time.Now().Add(time.Hour))
	rec.Status, rec.RevokedReason = grant.StatusRevoked, "Token has been expired or revoked."
	granttest.Put(t, st, rec)
	r := run(t, t.Context(), f, st, Config{User: "8"})
	if r.sum != (Summary{Revoked: 1}) || ExitCode(r.sum, r.err) != 1 {
		t.Errorf("run: %+v, %v; exit %d, want 1", r.sum, r.err, ExitCode(r.sum, r.err))
	}
	if !strings.Contains(r.stderr, "8 (Test User <user1@example.com>): revoked: offline_access_revoked: offline access was revoked") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
}

func TestRunConfigErrors(t *testing.T) {
	f := newFakeGoogle(t)
	st := openStore(t)
	full := func() Config {
		return Config{FetcherConfig: FetcherConfig{Grants: f.grants(st), HTTPClient: f.net.HTTPClient()}}
	}
	tests := []struct {
		name   string
		change func(*Config)
	}{
		{"no grants", func(c *Config) { c.Grants = nil }},
		{"no http client", func(c *Config) { c.HTTPClient = nil }},
		{"negative concurrency", func(c *Config) { c.Concurrency = -1 }},
		{"huge concurrency", func(c *Config) { c.Concurrency = MaxConcurrency + 1 }},
		{"negative timeout", func(c *Config) { c.RequestTimeout = -time.Second }},
		{"user too long", func(c *Config) { c.User = strings.Repeat("1", 300) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := full()
			tt.change(&cfg)
			sum, err := Run(t.Context(), cfg)
			if signin.ErrorKind(err) != signin.EINVALID {
				t.Errorf("Run = %v, want EINVALID", err)
			}
			if ExitCode(sum, err) != 2 {
				t.Errorf("exit code %d, want 2", ExitCode(sum, err))
			}
		})
	}
}

// TestRunCancel: once the context ends, no new user is started, the ones in
// flight are abandoned, and the run reports what it did.
func TestRunCancel(t *testing.T) {
	f := newFakeGoogle(t)
	st := openStore(t)
	seed(t, st, 30, nil)
	ctx, cancel := context.WithCancel(t.Context())
	blocked := make(chan struct{})
	var once sync.Once
	f.do(func(f *fakeGoogle) {
		f.hold = func(path string, n int) <-chan struct{} {
			if path != "/v1/people/me" || n <= 5 {
				return nil
			}
			once.Do(func() { close(blocked) })
			return make(chan struct{}) // until the client gives up
		}
	})
	go func() {
		<-blocked
		cancel()
	}()
	r := run(t, ctx, f, st, Config{Concurrency: 2})
	if !errors.Is(r.err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", r.err)
	}
	// Each of the two workers has at most one user in flight: when the
	// sixth request is held, the first four users are done and the fifth
	// may be; the sixth (and a seventh) are cut short.
	if r.sum.OK < 4 || r.sum.OK > 5 || r.sum.Failed != 0 || r.sum.Interrupted < 1 || r.sum.OK+r.sum.Interrupted > 7 {
		t.Errorf("summary %+v, want 4 or 5 ok, the rest of at most 7 interrupted, none failed", r.sum)
	}
	if n := f.count("/v1/people/me"); n > 7 {
		t.Errorf("%d people requests: users were started after the cancellation", n)
	}
	if got := plainLines(t, r.stdout); len(got) != r.sum.OK {
		t.Errorf("%d users printed, want %d", len(got), r.sum.OK)
	}
	wantSummaryLine(t, r.stderr, r.sum)
	if ExitCode(r.sum, r.err) != 1 {
		t.Errorf("exit code %d, want 1", ExitCode(r.sum, r.err))
	}
}

func TestRunReportsUnreadableRecords(t *testing.T) {
	f := newFakeGoogle(t)
	dir := t.TempDir()
	st, err := file.Open(file.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	seed(t, st, 3, nil)
	if err := os.WriteFile(filepath.Join(dir, "42.json"), []byte(`{"version":1,"sub":"42","tok`), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, t.Context(), f, st, Config{JSON: true})
	if r.err != nil || r.sum != (Summary{OK: 3, Failed: 1}) {
		t.Fatalf("run: %+v, %v", r.sum, r.err)
	}
	if !strings.Contains(r.stderr, "42: failed: corrupt_record: ") {
		t.Errorf("stderr does not report the unreadable record by its user:\n%s", r.stderr)
	}
	if l := jsonLines(t, r.stdout)["42"]; l.Status != "failed" || l.Error != grant.CodeCorruptRecord {
		t.Errorf("JSON line for the unreadable record, by the sub its file name says: %+v\n%s", l, r.stdout)
	}
}

// TestRunOutputIsOneLinePerUser: names with tabs, newlines or terminal
// escapes cannot break the line format or drive the terminal.
func TestRunOutputIsOneLinePerUser(t *testing.T) {
	f := newFakeGoogle(t)
	st := openStore(t)
	subs := seed(t, st, 2, nil)
	f.do(func(f *fakeGoogle) { f.names[subs[0]] = "Eve\tEvil\nroot\t0\x1b[2J\u202egnp.exe" })
	r := run(t, t.Context(), f, st, Config{})
	got := plainLines(t, r.stdout)
	if len(got) != 2 || got[subs[0]][0] != "Eve Evil root 0 [2J gnp.exe" {
		t.Errorf("output %q", r.stdout)
	}
	r = run(t, t.Context(), f, st, Config{JSON: true})
	if l := jsonLines(t, r.stdout)[subs[0]]; l.Name != "Eve\tEvil\nroot\t0\x1b[2J\u202egnp.exe" {
		t.Errorf("JSON keeps the name as it is (escaped by JSON); got %q", l.Name)
	}
}

// TestRunNoTokensInOutput: whatever happens, no token reaches stdout,
// stderr or the log.
func TestRunNoTokensInOutput(t *testing.T) {
	f := newFakeGoogle(t)
	st := openStore(t)
	subs := seed(t, st, 6, func(i int) bool { return i%2 == 0 })
	f.do(func(f *fakeGoogle) { f.revoked[subs[0]], f.revoked[subs[1]] = true, true })
	f.inject("/v1/people/me", fault{status: 500}, fault{status: 401})
	var logs bytes.Buffer
	cfg := Config{FetcherConfig: FetcherConfig{Logger: slogTo(&logs)}, JSON: true}
	r := run(t, t.Context(), f, st, cfg)
	all := r.stdout + r.stderr + logs.String()
	for _, bad := range []string{"at-", "rt-", "ya29.", fakeClientSecret} {
		if strings.Contains(all, bad) {
			t.Errorf("output contains %q:\n%s", bad, all)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name, header string
		want         time.Duration
		ok           bool
	}{
		{name: "absent", header: ""},
		{name: "seconds", header: "7", want: 7 * time.Second, ok: true},
		{name: "zero", header: "0", want: 0, ok: true},
		{name: "spaces", header: " 2 ", want: 2 * time.Second, ok: true},
		{name: "huge", header: "99999999999999999999", want: maxDelay + time.Second, ok: true},
		{name: "negative", header: "-1"},
		{name: "fraction", header: "1.5"},
		{name: "date", header: now.Add(90 * time.Second).Format(http.TimeFormat), want: 90 * time.Second, ok: true},
		{name: "past date", header: now.Add(-time.Hour).Format(http.TimeFormat), want: 0, ok: true},
		{name: "garbage", header: "soon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := retryAfter(tt.header, now)
			if got != tt.want || ok != tt.ok {
				t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tt.header, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestFullJitterBounds(t *testing.T) {
	for attempt := range 40 {
		ceil := maxDelay
		if attempt < 16 {
			ceil = min(maxDelay, baseDelay<<attempt)
		}
		for range 100 {
			if d := fullJitter(attempt); d < 0 || d >= ceil {
				t.Fatalf("fullJitter(%d) = %v, want in [0, %v)", attempt, d, ceil)
			}
		}
	}
}

// TestProgressLine: the progress line is erased before every result line,
// stdout's included (on a terminal both go to the same screen), so that it
// never glues itself to one or stays in the scrollback.
func TestProgressLine(t *testing.T) {
	var term bytes.Buffer // stdout and stderr on one terminal
	o := &output{stdout: &term, stderr: &term}
	o.drawProgress(progressLine(Summary{OK: 90, Failed: 10}, 4*time.Second))
	o.ok("2", "Ada", "ada@example.com", false, nil)
	o.drawProgress(progressLine(Summary{OK: 1}, time.Second))
	o.failed(who{sub: "1"}, "google_unavailable", "boom")
	o.clearProgress()
	want := "\r\x1b[Koffline-fetch: 100 users, ok=90 revoked=0 failed=10 skipped=0, 4s, 25.0/s" +
		"\r\x1b[K2\tAda\tada@example.com\n" +
		"\r\x1b[Koffline-fetch: 1 user, ok=1 revoked=0 failed=0 skipped=0, 1s, 1.0/s" +
		"\r\x1b[K1: failed: google_unavailable: boom\n"
	if got := term.String(); got != want {
		t.Errorf("terminal = %q\nwant      %q", got, want)
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		sum  Summary
		err  error
		want int
	}{
		{"all ok", Summary{OK: 3}, nil, 0},
		{"nothing to do", Summary{}, nil, 0},
		{"skipped only", Summary{OK: 1, Skipped: 4}, nil, 0},
		{"failed", Summary{OK: 1, Failed: 1}, nil, 1},
		{"revoked now", Summary{OK: 1, Revoked: 1}, nil, 1},
		{"interrupted", Summary{OK: 1, Interrupted: 1}, context.Canceled, 1},
		{"store failed", Summary{}, signin.Errorf(signin.EINTERNAL, "", "disk"), 1},
		{"usage", Summary{}, signin.Errorf(signin.EINVALID, "", "bad flag"), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ExitCode(tt.sum, tt.err); got != tt.want {
				t.Errorf("ExitCode = %d, want %d", got, tt.want)
			}
		})
	}
}

// BenchmarkOfflineFetch measures whole runs over many users: against the
// fake Google with 2 ms per request, and against the emulator with 20 ms
// added to each People API call, where a run should take about users x
// latency / concurrency. It reports users per second and the peak heap in
// use during the runs.
func BenchmarkOfflineFetch(b *testing.B) {
	const concurrency = 16
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("fake/users=%d", n), func(b *testing.B) {
			f := newFakeGoogle(b)
			f.do(func(f *fakeGoogle) { f.latency = 2 * time.Millisecond })
			st := openStore(b)
			seed(b, st, n, nil)
			benchRuns(b, n, func() result {
				return run(b, context.Background(), f, st, Config{Concurrency: concurrency, JSON: true})
			})
		})
	}
	b.Run("emulator/users=1000", func(b *testing.B) {
		const n, latency = 1000, 20 * time.Millisecond
		em := newEmulated(b)
		st := openStore(b)
		seedEmulator(b, em, st, n)
		em.e.SetLatency(emulator.EndpointPeople, latency)
		b.Logf("expected about %v per run (users x latency / concurrency)", n*latency/concurrency)
		benchRuns(b, n, func() result {
			var out bytes.Buffer
			sum, err := Run(context.Background(), Config{FetcherConfig: FetcherConfig{Grants: em.grants(st), HTTPClient: em.net.HTTPClient()},
				Concurrency: concurrency, JSON: true, Stdout: &out})
			return result{sum: sum, err: err}
		})
	})
}

func benchRuns(b *testing.B, n int, runOnce func() result) {
	stop := make(chan struct{})
	peak := make(chan uint64)
	go func() { // sample the heap while the runs go
		var m runtime.MemStats
		var top uint64
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				peak <- top
				return
			case <-t.C:
				runtime.ReadMemStats(&m)
				top = max(top, m.HeapInuse)
			}
		}
	}()
	b.ResetTimer()
	for b.Loop() {
		r := runOnce()
		if r.err != nil || r.sum.OK != n {
			b.Fatalf("run: %+v, %v", r.sum, r.err)
		}
	}
	b.StopTimer()
	close(stop)
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "users/s")
	b.ReportMetric(float64(<-peak)/(1<<20), "peak-heap-MiB")
}

// seedEmulator stores n users with real grants at the emulator: each is
// added as a test account, consents with offline access and has its code
// exchanged, 16 at a time. Their access tokens are fresh.
func seedEmulator(tb testing.TB, em *emulated, st grant.Store, n int) {
	tb.Helper()
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, em.net.HTTPClient())
	err := granttest.Fill(ctx, st, n, 16, func(i int) (*grant.Record, error) {
		u, err := em.e.AddUser(emulator.User{Email: fmt.Sprintf("bench%d@example.com", i)})
		if err != nil {
			return nil, err
		}
		code, err := em.e.MintCode(emulator.CodeRequest{ClientID: emulator.DemoClientID, Sub: u.Sub,
			Scope: "openid email profile", AccessType: "offline", RedirectURI: "postmessage"})
		if err != nil {
			return nil, err
		}
		tok, err := em.google.Exchange(ctx, code)
		if err != nil {
			return nil, err
		}
		return &grant.Record{Sub: u.Sub, Email: u.Email, Name: u.Name, Status: grant.StatusActive,
			Token: grant.TokenFrom(tok), Scopes: auth.GrantedScopes(tok)}, nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

func slogTo(w *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
