package rounds

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"example.com/signin/internal/auth"
	"example.com/signin/internal/emulator"
	"example.com/signin/internal/googlenet"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/offline"
	"example.com/signin/internal/pgtest"
	"example.com/signin/internal/store/postgres"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// fixture is an emulated Google and a database of n users who granted
// offline access through real code exchanges.
type fixture struct {
	e      *emulator.Emulator
	net    *googlenet.Net
	google *auth.Google
	db     string
	st     *postgres.Store
	users  []emulator.User
}

func newFixture(t *testing.T, n int) *fixture {
	t.Helper()
	e, err := emulator.New(emulator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	srv := httptest.NewServer(e.Handler())
	t.Cleanup(srv.Close)
	nt, err := googlenet.New(srv.Listener.Addr().String(), googlenet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{e: e, net: nt, db: pgtest.URL(t), google: auth.NewGoogle(auth.GoogleConfig{
		Client: &auth.Client{ID: emulator.DemoClientID, Secret: emulator.DemoClientSecret}, HTTPClient: nt.HTTPClient(),
	})}
	f.st, err = postgres.Open(t.Context(), postgres.Config{URL: f.db, MaxConns: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.st.Close)
	g := f.grants()
	for i := range n {
		u, err := e.AddUser(emulator.User{Email: fmt.Sprintf("round%03d@example.com", i)})
		if err != nil {
			t.Fatal(err)
		}
		code, err := e.MintCode(emulator.CodeRequest{ClientID: emulator.DemoClientID, Sub: u.Sub,
			Scope: "openid email profile", AccessType: "offline", RedirectURI: "postmessage"})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := f.google.Exchange(t.Context(), code)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := g.SaveExchange(t.Context(), u.Sub, grant.Identity{Email: u.Email, Name: u.Name}, tok); err != nil {
			t.Fatal(err)
		}
		f.users = append(f.users, u)
	}
	return f
}

func (f *fixture) grants() *grant.Grants {
	return grant.New(grant.Config{Store: f.st, Google: f.google})
}

// run is one process's share of a round, on a store of its own: its
// summary and JSON lines.
func (f *fixture) run(ctx context.Context, t *testing.T) (offline.Summary, []map[string]string, error) {
	st, err := postgres.Open(ctx, postgres.Config{URL: f.db, MaxConns: 16})
	if err != nil {
		return offline.Summary{}, nil, err
	}
	defer st.Close()
	var out, errOut strings.Builder
	sum, err := Run(ctx, Config{DB: st, Offline: offline.Config{
		FetcherConfig: offline.FetcherConfig{Grants: grant.New(grant.Config{Store: st, Google: f.google}), HTTPClient: f.net.HTTPClient()},
		Concurrency:   4, JSON: true, Stdout: &out, Stderr: &errOut,
	}})
	var lines []map[string]string
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		var l map[string]string
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Errorf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return sum, lines, err
}

// TestThreeProcessesOneRound: three processes started together share one
// round: every user is done once, by one of them, with one People API
// call; a revoked user is reported skipped, once; each process's summary
// counts its own users. A later run is a new round.
func TestThreeProcessesOneRound(t *testing.T) {
	const n = 60
	f := newFixture(t, n)
	gone := f.users[7].Sub
	if _, err := f.st.Update(t.Context(), gone, func(cur *grant.Record) (*grant.Record, error) {
		cur.Status = grant.StatusRevoked
		return cur, nil
	}); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	seen := map[string]int{}
	var total offline.Summary
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			sum, lines, err := f.run(t.Context(), t)
			if err != nil {
				t.Errorf("run: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, l := range lines {
				seen[l["sub"]]++
				if want := map[bool]string{true: "skipped", false: "ok"}[l["sub"] == gone]; l["status"] != want {
					t.Errorf("line %v, want status %s", l, want)
				}
			}
			total.OK += sum.OK
			total.Skipped += sum.Skipped
			total.Failed += sum.Failed
		})
	}
	wg.Wait()
	for _, u := range f.users {
		if seen[u.Sub] != 1 {
			t.Errorf("user %s printed %d times, want once", u.Sub, seen[u.Sub])
		}
	}
	if want := (offline.Summary{OK: n - 1, Skipped: 1}); total != want {
		t.Errorf("summaries add up to %+v, want %+v", total, want)
	}
	if got := f.e.Stats().Endpoints["people"].Requests; got != n-1 {
		t.Errorf("%d People API calls, want %d", got, n-1)
	}

	// The round is finished; a new run is a new round.
	sum, lines, err := f.run(t.Context(), t)
	if err != nil || sum.OK != n-1 || len(lines) != n {
		t.Errorf("second round: %+v, %d lines, %v", sum, len(lines), err)
	}
	conn, err := pgx.Connect(t.Context(), f.db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var rounds, open int
	if err := conn.QueryRow(t.Context(), `SELECT count(*), count(*) FILTER (WHERE open) FROM offline_rounds`).Scan(&rounds, &open); err != nil {
		t.Fatal(err)
	}
	if rounds != 2 || open != 0 {
		t.Errorf("%d rounds, %d open; want 2 finished", rounds, open)
	}
}

// TestRoundFailures: Google's 503s that outlast a request's own retries
// (none here) make the user's job retry later, and the user is printed
// once, ok; a grant Google refuses is marked revoked, printed revoked and
// its job completes on its first try, not retried.
func TestRoundFailures(t *testing.T) {
	const n, faults = 12, 3
	f := newFixture(t, n)
	gone := f.users[0].Sub
	f.e.RevokeUser(gone) // the People API's 401, then the forced refresh's invalid_grant
	f.e.InjectFault(emulator.Fault{Endpoint: emulator.EndpointPeople, Count: faults + 1, Status: 503})

	var out, errOut strings.Builder
	sum, err := Run(t.Context(), Config{DB: f.st, Offline: offline.Config{
		FetcherConfig: offline.FetcherConfig{Grants: f.grants(), HTTPClient: f.net.HTTPClient(), MaxRetries: -1},
		Concurrency:   1, JSON: true, Stdout: &out, Stderr: &errOut,
	}})
	// The revoked user's first People API call may be one of the 503s.
	if want := (offline.Summary{OK: n - 1, Revoked: 1}); err != nil || sum != want {
		t.Fatalf("%+v, %v; want %+v\n%s", sum, err, want, errOut.String())
	}
	if got := strings.Count(out.String(), "\n"); got != n {
		t.Errorf("%d lines, want %d:\n%s", got, n, out.String())
	}
	rec, err := f.st.Get(t.Context(), gone)
	if err != nil || rec.Status != grant.StatusRevoked {
		t.Errorf("revoked user's record: %+v, %v", rec, err)
	}
	conn, err := pgx.Connect(t.Context(), f.db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var retried, notCompleted int
	var goneAttempts int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FILTER (WHERE attempt > 1), count(*) FILTER (WHERE state <> 'completed'),
		coalesce(max(attempt) FILTER (WHERE args->>'sub' = $1), 0) FROM river_job WHERE kind = 'offline_fetch_user'`, gone).Scan(&retried, &notCompleted, &goneAttempts); err != nil {
		t.Fatal(err)
	}
	if retried < faults || notCompleted != 0 {
		t.Errorf("%d jobs retried (want at least %d), %d not completed", retried, faults, notCompleted)
	}
	if goneAttempts > 2 {
		t.Errorf("the revoked user's job ran %d times: invalid_grant is not retried", goneAttempts)
	}
}

// TestRoundBudget: with a budget, 429s from Google (here the next 6 People
// API calls, with no request retries at all) lower the shared budget and
// the users wait for it: none fails, each is printed once, ok, and every
// 429 is counted in the budget. The emulator's quota (600 a minute) is
// never exceeded by the budget's 600 a minute.
func TestRoundBudget(t *testing.T) {
	const n, refused = 20, 6
	f := newFixture(t, n)
	if err := f.e.SetQuota(emulator.Quota{Endpoint: emulator.EndpointPeople, PerMinute: 600}); err != nil {
		t.Fatal(err)
	}
	f.e.InjectFault(emulator.Fault{Endpoint: emulator.EndpointPeople, Count: refused, Status: 429, RetryAfter: "0"})
	var out, errOut strings.Builder
	sum, err := Run(t.Context(), Config{DB: f.st, Budgets: Budgets{PeoplePerMinute: 600, TokenPerMinute: 600}, Offline: offline.Config{
		FetcherConfig: offline.FetcherConfig{Grants: f.grants(), HTTPClient: f.net.HTTPClient(), MaxRetries: -1},
		Concurrency:   8, JSON: true, Stdout: &out, Stderr: &errOut,
	}})
	if want := (offline.Summary{OK: n}); err != nil || sum != want {
		t.Fatalf("%+v, %v; want %+v\n%s", sum, err, want, errOut.String())
	}
	if got := strings.Count(out.String(), `"status":"ok"`); got != n {
		t.Errorf("%d ok lines, want %d:\n%s", got, n, out.String())
	}
	b, err := f.st.Budget(t.Context(), "people")
	if err != nil || b.Refused != refused || b.PerMinute != 600 {
		t.Errorf("budget %+v, %v; want %d refused", b, err, refused)
	}
	if q := f.e.Stats().Quota["people"]; q.Refused != 0 {
		t.Errorf("the emulator refused %d calls for quota", q.Refused)
	}
}

// TestRoundNeedsMoreThanItsInterval: a worker whose round cannot finish in
// its interval at the configured rate says so when the round starts, on
// stderr, with how long it needs.
func TestRoundNeedsMoreThanItsInterval(t *testing.T) {
	f := newFixture(t, 20)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errOut := &syncBuilder{}
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, Config{DB: f.st, Every: 10 * time.Minute, Budgets: Budgets{PeoplePerMinute: 1, TokenPerMinute: 1}, Offline: offline.Config{
			FetcherConfig: offline.FetcherConfig{Grants: f.grants(), HTTPClient: f.net.HTTPClient()},
			Concurrency:   4, JSON: true, Stdout: io.Discard, Stderr: errOut,
		}})
		done <- err
	}()
	want := "cannot finish in its interval: 20 users at 1/min need 0.33 hours; the interval is 10m0s"
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(errOut.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q on stderr after a minute:\n%s", want, errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("worker stopped: %v", err)
	}
}

// syncBuilder is a strings.Builder safe for concurrent use.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
