package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"example.com/signin/bench/scale"
)

// row is one line of the report: a measurement, ours next to its floor or
// baseline and the peers, the ratio to the baseline from the same run, the
// goal and whether it is met.
type row struct {
	what, ours, base, peers, ratio, goal, met string
}

const na = "n/a" // a measurement that did not run or failed

// Goals. "MB" is 10^6 bytes, as the goal is written.
const (
	goalCachedNs       = 3e3  // VerifyCached < 3 µs
	goalCachedVsFloor  = 10   // ... and at least 10x faster than the floor
	goalFirstVsIdtoken = 1.10 // first-seen token, every check: at most 10% over bare idtoken
	goalDecodeNs       = 5e3  // session decode < 5 µs
	goalDecodeAllocs   = 40   // ... and < 40 allocations
	goalConnectNs      = 1e6  // /connect's own time < 1 ms
	goalWallRatio      = 1.2  // offline-fetch within 1.2x of ideal
	goalRSSBytes       = 64e6 // offline-fetch peak RSS < 64 MB
	goalRSSFlatRatio   = 1.25 // ... and flat: 100,000 users within 25% of 10,000
	goalRefetchPerMin  = 1    // unknown kids: at most one refetch a minute
	goalColdFetches    = 1    // 200 concurrent cold verifications: one fetch
	goalSteadyFetches  = 0    // steady state: no fetch per verification
	goalRandomKidBurst = 1    // a burst of unknown kids: at most one refetch
)

// report turns the medians into rows.
type report struct {
	rs    *results
	scale []scaleSummary
}

// scaleSummary is the median of the repeated runs of one scale
// configuration.
type scaleSummary struct {
	users   int
	latency time.Duration
	expire  bool
	runs    int
	wall    time.Duration
	ideal   time.Duration
	rss     int64
	refresh int
	people  int
}

func summarize(runs []scale.Result, expire bool) scaleSummary {
	s := scaleSummary{runs: len(runs), expire: expire}
	if len(runs) == 0 {
		return s
	}
	var walls, rss, refresh, people []float64
	for _, r := range runs {
		walls = append(walls, float64(r.Wall))
		rss = append(rss, float64(r.PeakRSS))
		refresh = append(refresh, float64(r.RefreshGrants))
		people = append(people, float64(r.PeopleCalls))
	}
	s.users, s.latency, s.ideal = runs[0].Users, runs[0].Latency, runs[0].Ideal
	s.wall = time.Duration(median(walls))
	s.rss = int64(median(rss))
	s.refresh = int(median(refresh))
	s.people = int(median(people))
	return s
}

func (r *report) get(name string, cpu int, unit string) (float64, bool) {
	return r.rs.median(key{name, cpu}, unit)
}

// timeAllocs formats a benchmark's ns/op and allocs/op.
func (r *report) timeAllocs(name string, cpu int) string {
	ns, ok := r.get(name, cpu, "ns/op")
	if !ok {
		return na
	}
	s := fmtNs(ns)
	if a, ok := r.get(name, cpu, "allocs/op"); ok {
		s += fmt.Sprintf(", %.0f allocs", a)
	}
	return s
}

// ratio formats a/b for two benchmarks' ns/op.
func (r *report) ratio(a, b string, cpu int) string {
	x, ok1 := r.get(a, cpu, "ns/op")
	y, ok2 := r.get(b, cpu, "ns/op")
	if !ok1 || !ok2 || y == 0 {
		return na
	}
	return fmtRatio(x / y)
}

func (r *report) rows() []row {
	var out []row
	out = append(out, r.idTokenRows()...)
	out = append(out, r.keyFetchRows()...)
	out = append(out, r.sessionRows()...)
	out = append(out, r.requestRows()...)
	out = append(out, r.connectRows()...)
	out = append(out, r.scaleRows()...)
	return out
}

func (r *report) idTokenRows() []row {
	var out []row
	const p = "BenchmarkIDToken/"
	for _, path := range []struct{ lib, what string }{
		{"ours", "ID token, first seen (every check)"},
		{"ours-cached", "ID token, seen before (VerifyCached)"},
	} {
		for _, cpu := range []int{1, 2} {
			for _, mode := range []string{"serial", "parallel"} {
				ours := p + path.lib + "/" + mode
				floor := p + "floor/" + mode
				var peers []string
				for _, peer := range []string{"idtoken", "go-oidc"} {
					name := p + peer + "/" + mode
					peers = append(peers, fmt.Sprintf("%s %s (%s floor)", peer, r.timeAllocs(name, cpu), r.ratio(name, floor, cpu)))
				}
				rw := row{
					what:  fmt.Sprintf("%s, %s, -cpu %d", path.what, mode, cpu),
					ours:  r.timeAllocs(ours, cpu),
					base:  "RSA floor " + r.timeAllocs(floor, cpu),
					peers: strings.Join(peers, "; "),
					ratio: r.ratio(ours, floor, cpu),
					goal:  "—",
					met:   "—",
				}
				if path.lib == "ours" {
					idt := p + "idtoken/" + mode
					ns, ok1 := r.get(ours, cpu, "ns/op")
					in, ok2 := r.get(idt, cpu, "ns/op")
					rw.goal = fmt.Sprintf("≤ %.1fx bare idtoken", goalFirstVsIdtoken)
					rw.met = verdict(ok1 && ok2 && in > 0, ns/in <= goalFirstVsIdtoken)
					if ok1 && ok2 && in > 0 {
						rw.ratio += fmt.Sprintf(" floor; %.2fx idtoken", ns/in)
					}
				}
				if path.lib == "ours-cached" {
					rw.peers = "no cache: " + rw.peers
					rw.goal = fmt.Sprintf("< 3 µs and ≥ %dx faster than floor", goalCachedVsFloor)
					ns, ok1 := r.get(ours, cpu, "ns/op")
					fl, ok2 := r.get(floor, cpu, "ns/op")
					rw.met = verdict(ok1 && ok2, ns < goalCachedNs && fl/ns >= goalCachedVsFloor)
					if ok1 && ok2 && ns > 0 {
						rw.ratio += fmt.Sprintf(" (%.0fx faster)", fl/ns)
					}
				}
				out = append(out, rw)
			}
		}
	}
	return out
}

func (r *report) keyFetchRows() []row {
	const p = "BenchmarkKeyFetches/"
	fetches := func(exp, lib, unit string) (float64, string) {
		v, ok := r.get(p+exp+"/"+lib, 2, unit)
		if !ok {
			return math.NaN(), na
		}
		return v, fmtCount(v)
	}
	peers := func(exp, unit string) string {
		_, i := fetches(exp, "idtoken", unit)
		_, g := fetches(exp, "go-oidc", unit)
		return fmt.Sprintf("idtoken %s; go-oidc %s", i, g)
	}
	var out []row
	for _, e := range []struct {
		exp, unit, what, goal string
		want                  float64
	}{
		{"steady", "fetches/op", "Key fetches per verification, steady state (Google's Cache-Control)", "0", goalSteadyFetches},
		{"no-cache-control", "fetches/op", "Key fetches per verification, certs answer without Cache-Control", "0", goalSteadyFetches},
		{"cold-200", "fetches", "Key fetches, 200 concurrent verifications on a cold cache", "1", goalColdFetches},
		{"random-kids-1000", "fetches", "Key fetches caused by 1,000 tokens with unknown kids, in a burst", "≤ 1", goalRandomKidBurst},
	} {
		v, s := fetches(e.exp, "ours", e.unit)
		out = append(out, row{what: e.what, ours: s, base: "—", peers: peers(e.exp, e.unit), ratio: "—",
			goal: e.goal, met: verdict(!math.IsNaN(v), v <= e.want)})
	}
	v, s := fetches("random-kids-10min", "ours", "refetches/min")
	out = append(out, row{what: "Key refetches per minute, 1,000 tokens with unknown kids over 10 minutes", ours: s, base: "—",
		peers: "idtoken never refetches (a rotated key fails until its cache expires); go-oidc refetches per unknown kid (above)",
		ratio: "—", goal: "≤ 1/min", met: verdict(!math.IsNaN(v), v <= goalRefetchPerMin)})
	return out
}

func (r *report) sessionRows() []row {
	cookie := func(name string) string {
		if v, ok := r.get(name, 1, "cookie-bytes"); ok {
			return fmt.Sprintf(", %.0f-byte cookie", v)
		}
		return ""
	}
	ns, ok1 := r.get("BenchmarkSessionDecode", 1, "ns/op")
	allocs, ok2 := r.get("BenchmarkSessionDecode", 1, "allocs/op")
	return []row{
		{
			what:  "Session cookie decode (every request), -cpu 1",
			ours:  r.timeAllocs("BenchmarkSessionDecode", 1),
			base:  "gorilla/sessions gob " + r.timeAllocs("BenchmarkSessionDecodeGob", 1),
			peers: "—",
			ratio: r.ratio("BenchmarkSessionDecode", "BenchmarkSessionDecodeGob", 1),
			goal:  fmt.Sprintf("< 5 µs, < %d allocs", goalDecodeAllocs),
			met:   verdict(ok1 && ok2, ns < goalDecodeNs && allocs < goalDecodeAllocs),
		},
		{
			what:  "Session cookie encode (sign-in), -cpu 1",
			ours:  r.timeAllocs("BenchmarkSessionEncode", 1) + cookie("BenchmarkSessionEncode"),
			base:  "gorilla/sessions gob " + r.timeAllocs("BenchmarkSessionEncodeGob", 1) + cookie("BenchmarkSessionEncodeGob"),
			peers: "—",
			ratio: r.ratio("BenchmarkSessionEncode", "BenchmarkSessionEncodeGob", 1),
			goal:  "—",
			met:   "—",
		},
	}
}

func (r *report) requestRows() []row {
	pg, mem := "BenchmarkRequest/postgres/api-me/server-loopback", "BenchmarkRequest/postgres-grants/api-me/server-loopback"
	pgNs, ok1 := r.get(pg, 1, "ns/op")
	memNs, ok2 := r.get(mem, 1, "ns/op")
	out := []row{{
		what:  "GET /api/me over loopback HTTP, grants in PostgreSQL: sessions in PostgreSQL vs in memory (a cookie session's cost), -cpu 1",
		ours:  r.timeAllocs(pg, 1),
		base:  "sessions in memory " + r.timeAllocs(mem, 1),
		peers: "—",
		ratio: r.ratio(pg, mem, 1),
		goal:  ">= 0.8x the throughput",
		met:   verdict(ok1 && ok2, memNs/pgNs >= 0.8),
	}}
	for _, q := range []struct{ name, what string }{
		{"api-me", "GET /api/me with a session, full middleware chain (CPU per request), -cpu 1"},
		{"index", "GET / signed in with offline access, page rendered (CPU per request), -cpu 1"},
	} {
		p := "BenchmarkRequest/" + q.name + "/"
		out = append(out, row{
			what:  q.what,
			ours:  fmt.Sprintf("in-process %s; over loopback HTTP %s", r.timeAllocs(p+"server", 1), r.timeAllocs(p+"server-loopback", 1)),
			base:  fmt.Sprintf("bare handler writing the same bytes: in-process %s; over loopback HTTP %s", r.timeAllocs(p+"bare", 1), r.timeAllocs(p+"bare-loopback", 1)),
			peers: "—",
			ratio: fmt.Sprintf("%s in-process; %s over HTTP", r.ratio(p+"server", p+"bare", 1), r.ratio(p+"server-loopback", p+"bare-loopback", 1)),
			goal:  "—",
			met:   "—",
		})
	}
	return out
}

func (r *report) connectRows() []row {
	own := "BenchmarkConnect/own"
	ns, ok := r.get(own, 1, "ns/op")
	return []row{
		{
			what:  "POST /connect, server's own time per exchange (instant token endpoint in memory, memory store), -cpu 1",
			ours:  r.timeAllocs(own, 1),
			base:  "of which ID token verification (ours, first seen): " + r.timeAllocs("BenchmarkIDToken/ours/serial", 1),
			peers: "—",
			ratio: "—",
			goal:  "< 1 ms",
			met:   verdict(ok, ns < goalConnectNs),
		},
		{
			what:  "POST /connect with a loopback HTTP token endpoint and the file store (two fsyncs), -cpu 1",
			ours:  r.timeAllocs("BenchmarkConnect/loopback-file", 1),
			base:  "own time " + r.timeAllocs(own, 1),
			peers: "—",
			ratio: r.ratio("BenchmarkConnect/loopback-file", own, 1),
			goal:  "—",
			met:   "—",
		},
		{
			what:  "POST /connect, server's own time, grants and sessions in PostgreSQL (SIGNIN_TEST_DATABASE_URL or a throwaway server), -cpu 1",
			ours:  r.timeAllocs("BenchmarkConnect/own-postgres", 1),
			base:  "memory stores " + r.timeAllocs(own, 1),
			peers: "—",
			ratio: r.ratio("BenchmarkConnect/own-postgres", own, 1),
			goal:  "< 2 ms",
			met:   r.under("BenchmarkConnect/own-postgres", 2e6),
		},
	}
}

// under is the verdict of "name's ns/op is under limit".
func (r *report) under(name string, limit float64) string {
	ns, ok := r.get(name, 1, "ns/op")
	return verdict(ok, ns < limit)
}

func (r *report) scaleRows() []row {
	var out []row
	var rss []scaleSummary
	for _, s := range r.scale {
		if s.runs == 0 {
			continue
		}
		switch {
		case s.latency > 0 && !s.expire:
			ratio := s.wall.Seconds() / s.ideal.Seconds()
			out = append(out, row{
				what:  fmt.Sprintf("offline-fetch, %s users, People API +%v, -concurrency 32: wall time (%s)", fmtInt(s.users), s.latency, plural(s.runs, "run")),
				ours:  fmtDur(s.wall),
				base:  "ideal " + fmtDur(s.ideal) + " (users × latency ÷ concurrency)",
				peers: "—",
				ratio: fmtRatio(ratio),
				goal:  fmt.Sprintf("≤ %.1fx ideal", goalWallRatio),
				met:   verdict(true, ratio <= goalWallRatio),
			})
			out = append(out, row{
				what: fmt.Sprintf("offline-fetch, %s users, fresh tokens: refresh grants at the emulator", fmtInt(s.users)),
				ours: fmt.Sprint(s.refresh), base: "—", peers: "—", ratio: "—", goal: "0", met: verdict(true, s.refresh == 0),
			})
		case s.expire:
			out = append(out, row{
				what:  fmt.Sprintf("offline-fetch, %s users, expired tokens: refresh grants at the emulator (%s)", fmtInt(s.users), plural(s.runs, "run")),
				ours:  fmt.Sprintf("%d (wall %s)", s.refresh, fmtDur(s.wall)),
				base:  "ideal " + fmtDur(s.ideal) + " without refreshes",
				peers: "—",
				ratio: fmtRatio(s.wall.Seconds() / s.ideal.Seconds()),
				goal:  fmt.Sprintf("1 per user (%d)", s.users),
				met:   verdict(true, s.refresh == s.users),
			})
		default:
			rss = append(rss, s)
		}
	}
	for i, s := range rss {
		rw := row{
			what:  fmt.Sprintf("offline-fetch peak RSS (VmHWM of the process), %s users, -concurrency 32 (%s)", fmtInt(s.users), plural(s.runs, "run")),
			ours:  fmtMB(float64(s.rss)),
			base:  "—",
			peers: "—",
			ratio: "—",
			goal:  "< 64 MB",
			met:   verdict(s.rss > 0, s.rss > 0 && s.rss < goalRSSBytes),
		}
		if i > 0 {
			first := rss[0]
			flat := float64(s.rss) / float64(first.rss)
			rw.base = fmt.Sprintf("%s users: %s", fmtInt(first.users), fmtMB(float64(first.rss)))
			rw.ratio = fmtRatio(flat)
			rw.goal += fmt.Sprintf(", flat (≤ %.2fx)", goalRSSFlatRatio)
			rw.met = verdict(s.rss > 0, s.rss > 0 && s.rss < goalRSSBytes && flat <= goalRSSFlatRatio)
		}
		out = append(out, rw)
	}
	return out
}

func verdict(measured, ok bool) string {
	switch {
	case !measured:
		return na
	case ok:
		return "yes"
	default:
		return "**no**"
	}
}

// writeTable writes rows as one markdown table.
func writeTable(w io.Writer, rows []row) {
	fmt.Fprintln(w, "| Measurement | Ours | Floor / baseline (same run) | Peers (same run) | Ours ÷ baseline | Goal | Met |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- |")
	for _, r := range rows {
		cells := []string{r.what, r.ours, r.base, r.peers, r.ratio, r.goal, r.met}
		for i, c := range cells {
			cells[i] = strings.ReplaceAll(c, "|", `\|`)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
}

// fmtNs formats nanoseconds with three significant digits or so.
func fmtNs(ns float64) string {
	switch {
	case ns < 1e3:
		return fmt.Sprintf("%.0f ns", ns)
	case ns < 1e4:
		return fmt.Sprintf("%.2f µs", ns/1e3)
	case ns < 1e5:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	case ns < 1e6:
		return fmt.Sprintf("%.0f µs", ns/1e3)
	case ns < 1e9:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	default:
		return fmt.Sprintf("%.2f s", ns/1e9)
	}
}

func fmtDur(d time.Duration) string { return fmtNs(float64(d)) }

func fmtRatio(x float64) string {
	switch {
	case x < 0.01:
		return fmt.Sprintf("%.4fx", x)
	case x < 0.1:
		return fmt.Sprintf("%.3fx", x)
	default:
		return fmt.Sprintf("%.2fx", x)
	}
}

// fmtCount formats a count that may be a mean over iterations.
func fmtCount(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

func fmtMB(b float64) string { return fmt.Sprintf("%.1f MB", b/1e6) }

// plural returns "1 run", "3 runs".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// fmtInt writes n with thousands separators.
func fmtInt(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
