package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"example.com/signin/internal/auth"
	"example.com/signin/internal/googlenet"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/pgtest"
	"example.com/signin/internal/store/postgres"
)

// roundsFixture is a google-emulator process and a PostgreSQL database
// holding the offline grants of many users, for offline-fetch processes
// sharing rounds (-database).
type roundsFixture struct {
	emuAddr string
	emu     *emulatorClient
	emuProc *process
	db      string
	env     []string
	work    string
	subs    []string
}

// startRounds starts the emulator and stores n users' grants, each made by
// a real code exchange at the emulator (control API codes, as the consent
// popup issues them), through the grant rules and the PostgreSQL store.
func startRounds(t *testing.T, n int) *roundsFixture {
	t.Helper()
	f := &roundsFixture{db: pgtest.URL(t), work: t.TempDir()}
	emu := startProcess(t, "google-emulator", binaries.emulator, f.work, nil, "-addr", "127.0.0.1:0")
	f.emuProc = emu
	emuURL := emu.waitOutput(t, emulatorListening)
	f.emuAddr = strings.TrimPrefix(emuURL, "http://")
	waitHTTP(t, emu, emuURL+"/emulator/v1/stats")
	f.emu = newEmulatorClient(emuURL)
	sealKey := make([]byte, 32)
	_, _ = rand.Read(sealKey)
	f.env = append((&stack{EmuAddr: f.emuAddr}).env(), "SIGNIN_ENCRYPTION_KEYS="+base64.StdEncoding.EncodeToString(sealKey))
	f.seed(t, n)
	return f
}

func (f *roundsFixture) seed(t *testing.T, n int) {
	t.Helper()
	ctx := context.Background()
	st, err := postgres.Open(ctx, postgres.Config{URL: f.db, MaxConns: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	gnet, err := googlenet.New(f.emuAddr, googlenet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	google := auth.NewGoogle(auth.GoogleConfig{Client: &auth.Client{ID: demoClientID, Secret: demoClientSecret}, HTTPClient: gnet.HTTPClient()})
	g := grant.New(grant.Config{Store: st, Google: google})
	f.subs = make([]string, n)
	var eg errgroup.Group
	eg.SetLimit(16)
	for i := range n {
		eg.Go(func() error {
			var u emuUser
			if err := f.emu.do(ctx, "POST", "/emulator/v1/users", map[string]string{"email": fmt.Sprintf("round%06d@example.com", i)}, &u); err != nil {
				return err
			}
			var c struct{ Code string }
			if err := f.emu.do(ctx, "POST", "/emulator/v1/codes", map[string]string{"client_id": demoClientID, "sub": u.Sub,
				"scope": "openid email profile", "access_type": "offline", "redirect_uri": "postmessage"}, &c); err != nil {
				return err
			}
			tok, err := google.Exchange(ctx, c.Code)
			if err != nil {
				return err
			}
			_, _, err = g.SaveExchange(ctx, u.Sub, grant.Identity{Email: u.Email, Name: u.Name}, tok)
			f.subs[i] = u.Sub
			return err
		})
	}
	if err := eg.Wait(); err != nil {
		t.Fatalf("seeding %d users: %v", n, err)
	}
}

// fetch starts offline-fetch -database -json with args.
func (f *roundsFixture) fetch(t *testing.T, name string, args ...string) *process {
	t.Helper()
	args = append([]string{"-database", f.db, "-json", "-credentials", f.work + "/credentials-" + name}, args...)
	return startProcess(t, name, binaries.offlineFetch, f.work, f.env, args...)
}

// peopleCalls is the emulator's count of People API requests.
func (f *roundsFixture) peopleCalls(t *testing.T) int {
	t.Helper()
	var s struct {
		Endpoints map[string]struct{ Requests int }
	}
	if err := f.emu.do(context.Background(), "GET", "/emulator/v1/stats", nil, &s); err != nil {
		t.Fatal(err)
	}
	return s.Endpoints["people"].Requests
}

// wait waits for p to exit and returns its exit code.
func (p *process) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("%s still running after %v:\n%s", p.name, timeout, p.logs.String())
	}
	var exit *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &exit):
		return exit.ExitCode()
	}
	t.Fatalf("%s: %v", p.name, p.err)
	return -1
}

// okLines counts the users p printed as done ("status":"ok" JSON lines; its
// logs and stderr are in the same buffer, and are not JSON).
func (p *process) okLines() map[string]int {
	seen := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(p.logs.String()))
	for sc.Scan() {
		var l struct{ Sub, Status string }
		if strings.HasPrefix(sc.Text(), "{") && json.Unmarshal(sc.Bytes(), &l) == nil && l.Status == "ok" {
			seen[l.Sub]++
		}
	}
	return seen
}

// TestRoundThreeProcesses: three offline-fetch processes started together
// on one database share one round of 500 users: the People API is called
// 500 times, each user is printed once by one of them, and each exits 0.
func TestRoundThreeProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const n = 500
	f := startRounds(t, n)
	var procs []*process
	for i := range 3 {
		procs = append(procs, f.fetch(t, fmt.Sprintf("offline-fetch-%d", i), "-concurrency", "16"))
	}
	union := map[string]int{}
	for _, p := range procs {
		if code := p.wait(t, 2*time.Minute); code != 0 {
			t.Errorf("%s: exit %d\n%s", p.name, code, p.logs.String())
		}
		mine := p.okLines()
		t.Logf("%s did %d users", p.name, len(mine))
		for sub, c := range mine {
			union[sub] += c
		}
	}
	for _, sub := range f.subs {
		if union[sub] != 1 {
			t.Errorf("user %s printed %d times, want 1", sub, union[sub])
		}
	}
	if got := f.peopleCalls(t); got != n {
		t.Errorf("%d People API calls, want %d", got, n)
	}
}

// TestRoundProcessKilled: of three processes sharing a round, one is
// killed (SIGKILL) in the middle. The other two finish the round once
// River rescues the dead one's jobs: every user is done, and the only
// users done twice are among those the dead process had in flight: the
// jobs River's table shows running for it when it died (claimed, or done
// but their completion not yet written by River's batch).
func TestRoundProcessKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const n, conc = 500, 16
	f := startRounds(t, n)
	// Slow enough that the round is still going when one process dies.
	if err := f.emu.do(context.Background(), "POST", "/emulator/v1/latency", map[string]string{"endpoint": "people", "delay": "100ms"}, nil); err != nil {
		t.Fatal(err)
	}
	var procs []*process
	for i := range 3 {
		procs = append(procs, f.fetch(t, fmt.Sprintf("offline-fetch-%d", i), "-concurrency", fmt.Sprint(conc), "-job-timeout", "3s", "-log-level", "info"))
	}
	victim := procs[2]
	deadline := time.Now().Add(time.Minute)
	for len(victim.okLines()) < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not get going:\n%s", victim.name, victim.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	victimID := regexp.MustCompile(`msg="River client started" component=river client_id=(\S+)`).FindStringSubmatch(victim.logs.String())
	if victimID == nil {
		t.Fatalf("%s did not log its River client id:\n%s", victim.name, victim.logs.String())
	}
	if err := victim.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	<-victim.done
	conn, err := pgx.Connect(t.Context(), f.db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(t.Context(), `SELECT args->>'sub' FROM river_job
		WHERE kind = 'offline_fetch_user' AND state = 'running' AND attempted_by[cardinality(attempted_by)] = $1`, victimID[1])
	if err != nil {
		t.Fatal(err)
	}
	subs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	inFlight := map[string]bool{}
	for _, sub := range subs {
		inFlight[sub] = true
	}
	union := map[string]int{}
	for sub, c := range victim.okLines() {
		union[sub] += c
	}
	t.Logf("%s killed after %d users, with %d in flight", victim.name, len(union), len(inFlight))
	for _, p := range procs[:2] {
		if code := p.wait(t, 3*time.Minute); code != 0 {
			t.Errorf("%s: exit %d\n%s", p.name, code, p.logs.String())
		}
		for sub, c := range p.okLines() {
			union[sub] += c
		}
	}
	t.Logf("the survivors finished %v after the kill", time.Since(killedAt).Round(time.Second))
	twice := 0
	for _, sub := range f.subs {
		switch c := union[sub]; {
		case c == 0:
			t.Errorf("user %s never done", sub)
		case c > 2:
			t.Errorf("user %s done %d times", sub, c)
		case c > 1:
			twice++
			if !inFlight[sub] {
				t.Errorf("user %s done twice, but was not in flight in the dead process", sub)
			}
		}
	}
	if calls := f.peopleCalls(t); calls < n || calls > n+len(inFlight) {
		t.Errorf("%d People API calls, want %d to %d", calls, n, n+len(inFlight))
	}
	t.Logf("%d users done twice; %d People API calls", twice, f.peopleCalls(t))
}

// TestRoundsEvery: two workers (-every) share a round per interval: each
// round (three of them) does every user exactly once, between the two
// workers, and SIGTERM stops both with status 0.
func TestRoundsEvery(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const n, rounds = 50, 3
	f := startRounds(t, n)
	var procs []*process
	for i := range 2 {
		args := []string{"-every", "3s", "-concurrency", "8", "-log-level", "info"}
		if i == 0 {
			args = append(args, "-metrics-addr", "127.0.0.1:0") // a worker is scraped like signin
		}
		procs = append(procs, f.fetch(t, fmt.Sprintf("worker-%d", i), args...))
	}
	conn, err := pgx.Connect(t.Context(), f.db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// Each worker prints its share of every round that ended since it
	// started: wait for both to have printed that of the same rounds (an
	// event, however slow the machine; the first round may have ended
	// before the slower worker was up).
	roundLine := regexp.MustCompile(`(?m)^round (.+): ok=(\d+) revoked=0 failed=0 skipped=0$`)
	shares := func() map[string][]int { // the workers' "round KEY: ok=N ..." lines
		roundOK := map[string][]int{}
		for _, p := range procs {
			for _, m := range roundLine.FindAllStringSubmatch(p.logs.String(), -1) {
				ok, _ := strconv.Atoi(m[2])
				roundOK[m[1]] = append(roundOK[m[1]], ok)
			}
		}
		return roundOK
	}
	both := func(roundOK map[string][]int) int {
		n := 0
		for _, oks := range roundOK {
			if len(oks) == len(procs) {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(3 * time.Minute)
	for both(shares()) < rounds {
		if time.Now().After(deadline) {
			t.Fatalf("both workers printed their share of %d rounds after 3 minutes, want %d: %v\n%s\n%s", both(shares()), rounds, shares(), procs[0].logs.String(), procs[1].logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	metricsURL := procs[0].waitOutput(t, regexp.MustCompile(`msg="serving metrics" url=(http://\S+)`))
	resp, err := http.Get(metricsURL)
	if err != nil {
		t.Fatalf("worker's /metrics: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "go_goroutines") {
		t.Errorf("worker's /metrics: %d\n%.300s", resp.StatusCode, body)
	}
	for _, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	lines := 0
	for _, p := range procs {
		if code := p.wait(t, 30*time.Second); code != 0 {
			t.Errorf("%s: exit %d after SIGTERM\n%s", p.name, code, p.logs.String())
		}
		mine := 0
		for _, c := range p.okLines() {
			mine += c
		}
		lines += mine
		t.Logf("%s did %d users' jobs", p.name, mine)
	}

	// Each finished round: one completed job per user, on its first try.
	// A round the SIGTERM cut short is left open, its users' jobs back in
	// the queue (or done already).
	rows, err := conn.Query(t.Context(), `SELECT r.id, r.key, r.open, count(j.id), count(DISTINCT j.args->>'sub'),
			count(j.id) FILTER (WHERE j.state = 'completed' AND j.attempt = 1),
			count(j.id) FILTER (WHERE j.state = 'completed')
		FROM offline_rounds r LEFT JOIN river_job j ON j.kind = 'offline_fetch_user' AND j.args->>'round' = r.id::text
		GROUP BY r.id, r.key ORDER BY r.id`)
	if err != nil {
		t.Fatal(err)
	}
	type roundRow struct {
		id                               int64
		key                              string
		open                             bool
		jobs, subs, firstTime, completed int
	}
	rs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (roundRow, error) {
		var r roundRow
		return r, row.Scan(&r.id, &r.key, &r.open, &r.jobs, &r.subs, &r.firstTime, &r.completed)
	})
	if err != nil {
		t.Fatal(err)
	}
	done, finished := 0, 0
	for _, r := range rs {
		t.Logf("round %d %q open=%v: %d jobs, %d users, %d completed first time", r.id, r.key, r.open, r.jobs, r.subs, r.firstTime)
		done += r.completed
		if r.open {
			continue
		}
		finished++
		if r.jobs != n || r.subs != n || r.firstTime != n {
			t.Errorf("round %q: %d jobs for %d users (%d completed first time), want %d each", r.key, r.jobs, r.subs, r.firstTime, n)
		}
	}
	if finished < rounds {
		t.Errorf("%d rounds finished, want %d", finished, rounds)
	}
	// Each worker's share of a round that ended: between them, every user.
	summed := 0
	for key, oks := range shares() {
		if len(oks) == len(procs) {
			summed++
			if oks[0]+oks[1] != n {
				t.Errorf("round %q: the workers' summaries say %v users, want %d between them", key, oks, n)
			}
		}
	}
	if summed < rounds {
		t.Errorf("both workers summed up %d rounds, want at least %d: %v", summed, rounds, shares())
	}
	// Nothing done twice: the lines printed and Google's count agree with
	// the jobs completed.
	if calls := f.peopleCalls(t); calls != done || lines != done {
		t.Errorf("%d People API calls and %d lines for %d users' jobs in finished rounds", calls, lines, done)
	}
}
