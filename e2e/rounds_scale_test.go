package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvRoundScale turns TestRoundScale on: a comma-separated list of user
// counts (10000,100000).
const EnvRoundScale = "SIGNIN_ROUND_SCALE"

// maxScaleAccounts is how many emulator accounts are made by real code
// exchanges; beyond it, records are copies of those accounts' records under
// new subs (each token then serves several records, and each record still
// costs one People API call). Seeding through the emulator runs at about
// 1,000 users a second here, too slow for 100,000.
const maxScaleAccounts = 10000

// TestRoundScale measures rounds at scale, for BENCHMARKS.md: for each
// user count, with 50 ms added to every People API call, one offline-fetch
// process (-concurrency 32) and then three on a round of every user; wall
// time, People API calls per user, peak RSS of each process, and the time
// each user's job held a worker slot beyond the 50 ms of Google's latency.
//
//	SIGNIN_ROUND_SCALE=10000,100000 go test ./e2e -run TestRoundScale -v -timeout 60m
func TestRoundScale(t *testing.T) {
	spec := os.Getenv(EnvRoundScale)
	if spec == "" {
		t.Skipf("set %s=10000[,100000] to measure rounds at scale", EnvRoundScale)
	}
	for _, s := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			t.Fatalf("%s: %q is not a user count", EnvRoundScale, s)
		}
		t.Run(fmt.Sprint(n), func(t *testing.T) { measureRounds(t, n) })
	}
}

func measureRounds(t *testing.T, n int) {
	const conc, latency = 32, 50 * time.Millisecond
	start := time.Now()
	f := startRounds(t, min(n, maxScaleAccounts))
	conn, err := pgx.Connect(t.Context(), f.db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if n > maxScaleAccounts {
		// Copies under new subs ('9' and 20 digits: never one of the
		// emulator's), tokens and all.
		if _, err := conn.Exec(t.Context(), `INSERT INTO credentials
			SELECT '9' || lpad(i::text, 20, '0'), c.version, c.email, c.name, c.scopes, c.status, c.revoked_reason, c.revoked_at,
				c.access_token, c.token_type, c.refresh_token, c.expiry, c.created_at, c.updated_at
			FROM generate_series(1, $1) i
			JOIN (SELECT *, row_number() OVER (ORDER BY sub) - 1 AS k FROM credentials) c ON c.k = i % $2`,
			n-maxScaleAccounts, maxScaleAccounts); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d users seeded in %v", n, time.Since(start).Round(time.Second))
	if err := f.emu.do(t.Context(), "POST", "/emulator/v1/latency", map[string]string{"endpoint": "people", "delay": latency.String()}, nil); err != nil {
		t.Fatal(err)
	}

	type result struct {
		wall      time.Duration
		calls     int
		rss       []int64 // KiB
		slot, job time.Duration
		cpu       time.Duration // of the offline-fetch processes, per user
		emuCPU    time.Duration // of the emulator, per user
		pgCPU     time.Duration // of PostgreSQL, per user (anyone else's use of the server included)
		load      string
	}
	round := func(procs int) result {
		before := f.peopleCalls(t)
		emu0, pg0 := cpuTime(f.emuProc.cmd.Process.Pid), postgresCPU()
		var ps []*process
		t0 := time.Now()
		var hwm []func() int64
		for i := range procs {
			p := f.fetch(t, fmt.Sprintf("scale-%d-%d-%d", n, procs, i), "-concurrency", fmt.Sprint(conc))
			ps = append(ps, p)
			hwm = append(hwm, peakRSS(p))
		}
		var r result
		for i, p := range ps {
			if code := p.wait(t, 30*time.Minute); code != 0 {
				t.Fatalf("%s: exit %d\n%s", p.name, code, tail(p.logs.String(), 2000))
			}
			r.rss = append(r.rss, hwm[i]())
			r.cpu += p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime()
		}
		r.cpu /= time.Duration(n)
		r.emuCPU = (cpuTime(f.emuProc.cmd.Process.Pid) - emu0) / time.Duration(n)
		r.pgCPU = (postgresCPU() - pg0) / time.Duration(n)
		r.load = loadavg()
		r.wall = time.Since(t0)
		r.calls = f.peopleCalls(t) - before
		// A worker slot per user: the time the processes' slots were
		// there, shared out; and River's own record of a job's run, from
		// claim (attempted_at) to completion (finalized_at).
		r.slot = r.wall * time.Duration(conc*procs) / time.Duration(n)
		var ms float64
		if err := conn.QueryRow(t.Context(), `SELECT avg(extract(epoch FROM finalized_at - attempted_at)) * 1000 FROM river_job
			WHERE kind = 'offline_fetch_user' AND args->>'round' = (SELECT max(id)::text FROM offline_rounds)`).Scan(&ms); err != nil {
			t.Fatal(err)
		}
		r.job = time.Duration(ms * float64(time.Millisecond))
		return r
	}
	one := round(1)
	three := round(3)
	for _, c := range []struct {
		name string
		r    result
	}{{"1 process", one}, {"3 processes", three}} {
		t.Logf("%d users, %s, -concurrency %d, People API +%v: wall %v, %.2f People API calls/user, peak RSS %v MiB, slot time/user %v (work %v + engine %v), job claim-to-complete %v, CPU/user: offline-fetch %v, emulator %v, PostgreSQL %v; load average %s",
			n, c.name, conc, latency, c.r.wall.Round(10*time.Millisecond), float64(c.r.calls)/float64(n), mib(c.r.rss),
			c.r.slot.Round(100*time.Microsecond), latency, (c.r.slot - latency).Round(100*time.Microsecond), c.r.job.Round(100*time.Microsecond), c.r.cpu.Round(10*time.Microsecond), c.r.emuCPU.Round(10*time.Microsecond), c.r.pgCPU.Round(10*time.Microsecond), c.r.load)
	}
	t.Logf("%d users: 3 processes %.2fx faster than 1", n, one.wall.Seconds()/three.wall.Seconds())
}

func mib(kib []int64) string {
	var s []string
	for _, k := range kib {
		s = append(s, fmt.Sprintf("%.0f", float64(k)/1024))
	}
	return strings.Join(s, "/")
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// loadavg is the machine's load average (Linux), for the record: these
// numbers depend on what else the machine runs.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// cpuTime is the CPU time process pid and its waited-for children used
// (Linux: /proc/pid/stat utime, stime, cutime, cstime, at 100 ticks a
// second).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // fields from 3 (state) on
	var ticks int64
	for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime: fields 14-17
		if i < len(f) {
			v, _ := strconv.ParseInt(f[i], 10, 64)
			ticks += v
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// postgresCPU is the CPU time of every process named postgres: the server,
// its live backends and, in the postmaster's children's time, the ended
// ones.
func postgresCPU() time.Duration {
	dirs, _ := os.ReadDir("/proc")
	var total time.Duration
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.TrimSpace(string(comm)) == "postgres" {
			total += cpuTime(pid)
		}
	}
	return total
}

// peakRSS samples p's VmHWM (Linux: its peak resident set) every 5 ms until
// it exits, and returns a function giving the last sample, in KiB. Not
// getrusage's ru_maxrss: for a child of a Go program it includes the
// parent's memory image before exec (see BENCHMARKS.md).
func peakRSS(p *process) func() int64 {
	var peak int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		path := fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid)
		for {
			if b, err := os.ReadFile(path); err == nil {
				for _, l := range strings.Split(string(b), "\n") {
					if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
						k, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
						peak = max(peak, k)
					}
				}
			}
			select {
			case <-p.done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() int64 {
		<-done
		return peak
	}
}
