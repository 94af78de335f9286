package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"example.com/signin/internal/store/postgres"
)

// quotaStats is the emulator's count of People API requests refused for
// quota, and of those it let through each second.
func (f *roundsFixture) quotaStats(t *testing.T) (refused int, perSecond map[int64]int) {
	t.Helper()
	var s struct {
		Quota map[string]struct {
			Refused   int           `json:"refused"`
			PerSecond map[int64]int `json:"per_second"`
		} `json:"quota"`
	}
	if err := f.emu.do(context.Background(), "GET", "/emulator/v1/stats", nil, &s); err != nil {
		t.Fatal(err)
	}
	return s.Quota["people"].Refused, s.Quota["people"].PerSecond
}

// roundUnderQuota runs three offline-fetch processes (-concurrency 32,
// -rate 6000/m) on one round, and checks what a user relies on: each exits
// 0 and every user is done exactly once. It returns the round's wall time,
// from the processes' start to the last one's exit.
func (f *roundsFixture) roundUnderQuota(t *testing.T, name string) time.Duration {
	t.Helper()
	start := time.Now()
	var procs []*process
	for i := range 3 {
		procs = append(procs, f.fetch(t, fmt.Sprintf("%s-%d", name, i), "-concurrency", "32", "-rate", "6000/m", "-log-level", "warn"))
	}
	union := map[string]int{}
	for _, p := range procs {
		if code := p.wait(t, 5*time.Minute); code != 0 {
			t.Errorf("%s: exit %d\n%s", p.name, code, p.logs.String())
		}
		for sub, c := range p.okLines() {
			union[sub] += c
		}
	}
	wall := time.Since(start)
	for _, sub := range f.subs {
		if union[sub] != 1 {
			t.Errorf("user %s done %d times, want once", sub, union[sub])
		}
	}
	return wall
}

// flatness is the highest and lowest per-second count of the full seconds
// between the first and the last, against their mean.
func flatness(perSecond map[int64]int) string {
	var secs []int64
	for s := range perSecond {
		secs = append(secs, s)
	}
	sort.Slice(secs, func(i, j int) bool { return secs[i] < secs[j] })
	if len(secs) < 3 {
		return fmt.Sprint(perSecond)
	}
	inner := secs[1 : len(secs)-1]
	lo, hi, sum := 1<<30, 0, 0
	for _, s := range inner {
		n := perSecond[s]
		lo, hi, sum = min(lo, n), max(hi, n), sum+n
	}
	mean := float64(sum) / float64(len(inner))
	return fmt.Sprintf("per second: mean %.1f, min %d, max %d over %d full seconds", mean, lo, hi, len(inner))
}

// TestRoundWithinQuota: the People API's quota is 6,000 a minute and three
// processes, each -concurrency 32 (able to go far faster), share a round
// of 1,500 users with -rate 6000/m. The emulator refuses no request for
// quota, and every user is done once. Then the same round again while
// another client spends half the quota for the first seconds: the fleet
// gets 429s, counts them in the database's budget, slows down for every
// process, and still does every user once, none failed; the shared rate
// is back to the full one once the other client has stopped.
//
// The wall time (goal: within 1.15x of 1,500 / 6,000 a minute, 15 s) is
// logged, for BENCHMARKS.md, not asserted.
func TestRoundWithinQuota(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const n = 1500
	f := startRounds(t, n)
	if err := f.emu.do(t.Context(), "POST", "/emulator/v1/quota", map[string]any{"endpoint": "people", "per_minute": 6000}, nil); err != nil {
		t.Fatal(err)
	}

	before := f.peopleCalls(t)
	wall := f.roundUnderQuota(t, "quota")
	refused, perSecond := f.quotaStats(t)
	if refused != 0 {
		t.Errorf("the emulator refused %d People API calls for quota, want 0", refused)
	}
	if calls := f.peopleCalls(t) - before; calls != n {
		t.Errorf("%d People API calls, want %d", calls, n)
	}
	t.Logf("alone: %d users in %v (%.2fx of 15 s); %s", n, wall.Round(10*time.Millisecond), wall.Seconds()/15, flatness(perSecond))

	// Another client of the same project spends half the quota (50 calls
	// a second) for the round's first 6 seconds.
	tok := f.otherClientToken(t)
	var otherOK, other429 atomic.Int64
	ctx, stop := context.WithTimeout(t.Context(), 6*time.Second)
	defer stop()
	otherDone := make(chan struct{})
	go func() {
		defer close(otherDone)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			go func() {
				switch f.callPeople(tok) {
				case http.StatusOK:
					otherOK.Add(1)
				case http.StatusTooManyRequests:
					other429.Add(1)
				}
			}()
		}
	}()
	wall = f.roundUnderQuota(t, "shared")
	<-otherDone
	time.Sleep(200 * time.Millisecond) // the other client's last calls (not the fleet's) are answered
	refused2, _ := f.quotaStats(t)
	fleet429 := refused2 - refused - int(other429.Load())

	st, err := postgres.Open(t.Context(), postgres.Config{URL: f.db})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b, err := st.Budget(t.Context(), "people")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("shared: %d users in %v; the other client: %d ok, %d refused; the fleet: %d refused (budget counted %d)",
		n, wall.Round(10*time.Millisecond), otherOK.Load(), other429.Load(), fleet429, b.Refused)
	if fleet429 <= 0 {
		t.Errorf("the fleet got no 429 while another client spent half the quota (emulator refused %d, the other client %d)", refused2-refused, other429.Load())
	}
	if int(b.Refused) != fleet429 {
		t.Errorf("the budget counted %d 429s, the emulator refused the fleet %d", b.Refused, fleet429)
	}
	// The shared rate is lowered by each 429 and grows back with time:
	// back to the full rate once nothing refuses any more.
	deadline := time.Now().Add(2 * postgres.BudgetRecovery)
	for b.Factor < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the shared rate is at %.2f of -rate %v after the other client stopped", b.Factor, 2*postgres.BudgetRecovery)
		}
		time.Sleep(100 * time.Millisecond)
		if b, err = st.Budget(t.Context(), "people"); err != nil {
			t.Fatal(err)
		}
	}
}

// otherClientToken is an access token of a user of another app of the
// same project (the demo client), outside the fleet.
func (f *roundsFixture) otherClientToken(t *testing.T) string {
	t.Helper()
	var u emuUser
	if err := f.emu.do(t.Context(), "POST", "/emulator/v1/users", map[string]string{"email": "other-client@example.com"}, &u); err != nil {
		t.Fatal(err)
	}
	var c struct{ Code string }
	if err := f.emu.do(t.Context(), "POST", "/emulator/v1/codes", map[string]string{"client_id": demoClientID, "sub": u.Sub,
		"scope": "openid email profile", "redirect_uri": "postmessage"}, &c); err != nil {
		t.Fatal(err)
	}
	resp, err := http.PostForm("http://"+f.emuAddr+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {c.Code},
		"redirect_uri": {"postmessage"}, "client_id": {demoClientID}, "client_secret": {demoClientSecret}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("exchange: %d %v", resp.StatusCode, err)
	}
	return tok.AccessToken
}

// callPeople calls the People API with tok and returns the status (0 when
// no answer came).
func (f *roundsFixture) callPeople(tok string) int {
	req, _ := http.NewRequest(http.MethodGet, "http://"+f.emuAddr+"/v1/people/me?personFields=names", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRoundSpread: two workers, -every 1m -spread 30s, 600 users, under a
// People API quota of 6,000 a minute and no -rate: the round's users are
// spread over 30 s, so the emulator's per-second counts stay within 1.5x
// of their mean (20 a second; a burst would be up to 600 at once), none is
// refused, and each user is done once.
func TestRoundSpread(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const n = 600
	f := startRounds(t, n)
	if err := f.emu.do(t.Context(), "POST", "/emulator/v1/quota", map[string]any{"endpoint": "people", "per_minute": 6000}, nil); err != nil {
		t.Fatal(err)
	}
	var procs []*process
	for i := range 2 {
		procs = append(procs, f.fetch(t, fmt.Sprintf("spread-%d", i), "-every", "1m", "-spread", "30s", "-concurrency", "32", "-log-level", "info"))
	}
	st, err := postgres.Open(t.Context(), postgres.Config{URL: f.db})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		rs, err := st.RecentRounds(t.Context(), 1)
		if err == nil && len(rs) == 1 && !rs[0].Open {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no round finished after 3 minutes: %+v, %v", rs, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	union := map[string]int{}
	for _, p := range procs {
		if code := p.wait(t, time.Minute); code != 0 {
			t.Errorf("%s: exit %d\n%s", p.name, code, p.logs.String())
		}
		for sub, c := range p.okLines() {
			union[sub] += c
		}
	}
	for _, sub := range f.subs {
		if union[sub] != 1 {
			t.Errorf("user %s done %d times, want once", sub, union[sub])
		}
	}
	refused, perSecond := f.quotaStats(t)
	if refused != 0 {
		t.Errorf("the emulator refused %d calls for quota", refused)
	}
	var secs []int64
	for s := range perSecond {
		secs = append(secs, s)
	}
	sort.Slice(secs, func(i, j int) bool { return secs[i] < secs[j] })
	if len(secs) < 10 {
		t.Fatalf("the round's calls came in %d seconds, want them spread over about 30: %v", len(secs), perSecond)
	}
	inner := secs[1 : len(secs)-1] // the first and last seconds are partial
	sum := 0
	for _, s := range inner {
		sum += perSecond[s]
	}
	mean := float64(sum) / float64(len(inner))
	for _, s := range inner {
		if c := perSecond[s]; float64(c) > 1.5*mean {
			t.Errorf("%d calls in second %d, more than 1.5x the mean %.1f: %v", c, s-secs[0], mean, perSecond)
		}
	}
	t.Logf("%d users over %d seconds; %s", n, len(secs), flatness(perSecond))
}
