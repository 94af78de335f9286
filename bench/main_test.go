package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"example.com/signin/bench/scale"
)

const sampleOutput = `goos: linux
goarch: amd64
pkg: example.com/signin/bench/verify
cpu: AMD EPYC
BenchmarkIDToken/floor/serial         	   28000	     41000 ns/op	    1376 B/op	       9 allocs/op
BenchmarkIDToken/floor/serial-2       	   30000	     40000 ns/op	    1376 B/op	       9 allocs/op
BenchmarkKeyFetches/cold-200/ours-2   	       1	  19842249 ns/op	         1.000 fetches
BenchmarkSessionEncode                	   10000	     39405 ns/op	       360.0 cookie-bytes	    5265 B/op	      31 allocs/op
--- BENCH: BenchmarkSomething
    some log line
PASS
`

func TestParseBench(t *testing.T) {
	rs := newResults()
	other, err := rs.parseBench(strings.NewReader(sampleOutput), []int{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		k    key
		unit string
		want float64
	}{
		{"no suffix is GOMAXPROCS 1", key{"BenchmarkIDToken/floor/serial", 1}, "ns/op", 41000},
		{"suffix -2 is GOMAXPROCS 2", key{"BenchmarkIDToken/floor/serial", 2}, "ns/op", 40000},
		{"allocs", key{"BenchmarkIDToken/floor/serial", 2}, "allocs/op", 9},
		{"custom metric", key{"BenchmarkKeyFetches/cold-200/ours", 2}, "fetches", 1},
		{"custom metric among standard ones", key{"BenchmarkSessionEncode", 1}, "cookie-bytes", 360},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := rs.median(tt.k, tt.unit)
			if !ok || got != tt.want {
				t.Errorf("median(%v, %q) = %v, %v; want %v", tt.k, tt.unit, got, ok, tt.want)
			}
		})
	}
	if len(other) != 7 {
		t.Errorf("%d other lines, want 7 (headers, BENCH block, PASS): %q", len(other), other)
	}
}

func TestSplitCPU(t *testing.T) {
	tests := []struct {
		name string
		in   string
		cpus []int
		want key
	}{
		{"suffix of a -cpu value", "BenchmarkX/y-2", []int{1, 2}, key{"BenchmarkX/y", 2}},
		{"no suffix", "BenchmarkX/y", []int{1, 2}, key{"BenchmarkX/y", 1}},
		{"dash and digits that are not a -cpu value", "BenchmarkX/cold-200", []int{1, 2}, key{"BenchmarkX/cold-200", 1}},
		{"-1 is never a suffix", "BenchmarkX/y-1", []int{1}, key{"BenchmarkX/y-1", 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := splitCPU(tt.in, tt.cpus); got != tt.want {
				t.Errorf("splitCPU(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want float64
	}{
		{"one", []float64{3}, 3},
		{"odd, unsorted", []float64{5, 1, 3}, 3},
		{"even: mean of the middle two", []float64{4, 1, 3, 2}, 2.5},
		{"an outlier does not move it", []float64{1, 1, 1, 1000}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]float64(nil), tt.in...)
			if got := median(in); got != tt.want {
				t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
			}
			for i := range in {
				if in[i] != tt.in[i] {
					t.Fatalf("median reordered its argument: %v", in)
				}
			}
		})
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		{"ns", fmtNs(850), "850 ns"},
		{"µs, small", fmtNs(2345), "2.35 µs"},
		{"µs", fmtNs(41234), "41.2 µs"},
		{"µs, large", fmtNs(212345), "212 µs"},
		{"ms", fmtNs(3.2e6), "3.20 ms"},
		{"s", fmtDur(15640 * time.Millisecond), "15.64 s"},
		{"ratio", fmtRatio(1.0583), "1.06x"},
		{"small ratio", fmtRatio(0.0231), "0.023x"},
		{"count", fmtCount(1), "1"},
		{"mean count", fmtCount(0.5), "0.5"},
		{"MB", fmtMB(38.3e6), "38.3 MB"},
		{"thousands", fmtInt(100000), "100,000"},
		{"no thousands", fmtInt(200), "200"},
		{"plural", plural(3, "run"), "3 runs"},
		{"singular", plural(1, "run"), "1 run"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

// The report judges goals from the medians, and says n/a rather than
// passing a goal whose measurement is missing.
func TestReportGoals(t *testing.T) {
	rs := newResults()
	add := func(name string, cpu int, unit string, vs ...float64) {
		for _, v := range vs {
			rs.add(key{name, cpu}, unit, v)
		}
	}
	add("BenchmarkIDToken/floor/serial", 1, "ns/op", 40000, 41000, 90000)
	add("BenchmarkIDToken/ours-cached/serial", 1, "ns/op", 900, 950, 5000)
	add("BenchmarkSessionDecode", 1, "ns/op", 6000)
	add("BenchmarkSessionDecode", 1, "allocs/op", 16)
	add("BenchmarkKeyFetches/cold-200/ours", 2, "fetches", 1)
	rep := &report{rs: rs, scale: []scaleSummary{
		summarize([]scale.Result{{Users: 2000, Latency: 50 * time.Millisecond, Ideal: 3125 * time.Millisecond, Wall: 3300 * time.Millisecond, PeopleCalls: 2000}}, false),
		summarize([]scale.Result{{Users: 10000, PeakRSS: 22e6}}, false),
		summarize([]scale.Result{{Users: 100000, PeakRSS: 38e6}}, false),
	}}
	met := make(map[string]string)
	for _, r := range rep.rows() {
		met[r.what] = r.met
	}
	tests := []struct{ what, want string }{
		{"ID token, seen before (VerifyCached), serial, -cpu 1", "yes"},
		{"ID token, seen before (VerifyCached), serial, -cpu 2", na},
		{"Session cookie decode (every request), -cpu 1", "**no**"},
		{"Key fetches, 200 concurrent verifications on a cold cache", "yes"},
		{"Key fetches caused by 1,000 tokens with unknown kids, in a burst", na},
		{"offline-fetch, 2,000 users, People API +50ms, -concurrency 32: wall time (1 run)", "yes"},
		{"offline-fetch, 2,000 users, fresh tokens: refresh grants at the emulator", "yes"},
		{"offline-fetch peak RSS (VmHWM of the process), 10,000 users, -concurrency 32 (1 run)", "yes"},
		{"offline-fetch peak RSS (VmHWM of the process), 100,000 users, -concurrency 32 (1 run)", "**no**"}, // 1.73x: not flat
	}
	for _, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			got, ok := met[tt.what]
			if !ok {
				t.Fatalf("no row %q", tt.what)
			}
			if got != tt.want {
				t.Errorf("met = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	writeTable(&b, []row{{what: "a | b", ours: "1", base: "2", peers: "3", ratio: "4", goal: "5", met: "yes"}})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want header, rule and one row:\n%s", len(lines), b.String())
	}
	if want := `| a \| b | 1 | 2 | 3 | 4 | 5 | yes |`; lines[2] != want {
		t.Errorf("row %q, want %q", lines[2], want)
	}
	for _, l := range lines {
		if n := strings.Count(strings.ReplaceAll(l, `\|`, ""), "|"); n != 8 {
			t.Errorf("line %q has %d cell separators, want 8", l, n)
		}
	}
}
