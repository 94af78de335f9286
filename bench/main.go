// Command bench runs the signin benchmarks and prints one markdown table:
// each measurement next to its physical floor or baseline and the peers a
// Go developer would otherwise use, with the ratios taken from the same run,
// the goal, and whether it is met.
//
// It builds the test binaries once and runs them -count rounds, each round
// running every benchmark once, so that a burst of load on a shared
// machine lands on all of them alike; every number is the median over the
// rounds. Then it runs offline-fetch at scale (package scale) -scale-count
// times and takes medians too.
//
// Usage, from the bench directory:
//
//	go run . [-count 5] [-benchtime 1s] [-scale=true] [-scale-count 3] [-cache dir] [-quick] [-raw file]
//
// Progress goes to stderr, the table to stdout.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"example.com/signin/bench/scale"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	count      int
	benchtime  string
	scale      bool
	scaleCount int
	cache      string
	quick      bool
	raw        string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.count, "count", 5, "rounds of the Go benchmarks; every number is the median over them")
	fs.StringVar(&o.benchtime, "benchtime", "1s", "go test -benchtime of each benchmark in a round")
	fs.BoolVar(&o.scale, "scale", true, "run offline-fetch at scale (2,000, 10,000 and 100,000 users)")
	fs.IntVar(&o.scaleCount, "scale-count", 3, "runs of each offline-fetch configuration; medians are reported")
	fs.StringVar(&o.cache, "cache", "", "where seeded data sets are kept between runs (default: the user cache directory's signin-bench)")
	fs.BoolVar(&o.quick, "quick", false, "a quick check of the machinery: one short round, small scale runs")
	fs.StringVar(&o.raw, "raw", "", "also write the raw go test output to this file")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.quick {
		o.count, o.benchtime, o.scaleCount = 1, "100ms", 1
	}
	if o.count < 1 || o.scaleCount < 1 {
		return o, errors.New("-count and -scale-count must be at least 1")
	}
	if o.cache == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return o, fmt.Errorf("no -cache and no user cache directory: %w", err)
		}
		o.cache = filepath.Join(dir, "signin-bench")
	}
	return o, nil
}

// suite is one set of benchmarks run from a test binary each round.
type suite struct {
	bin, dir  string // test binary, and the package directory it runs in
	pattern   string // -test.bench
	cpus      []int  // -test.cpu
	benchtime string // "" means the run's -benchtime
	once      bool   // first round only (counts, not timings)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	var raw io.Writer = io.Discard
	if o.raw != "" {
		if err := os.MkdirAll(filepath.Dir(o.raw), 0o755); err != nil {
			return err
		}
		f, err := os.Create(o.raw)
		if err != nil {
			return err
		}
		defer f.Close()
		raw = f
	}

	root, err := scale.ModuleRoot(ctx)
	if err != nil {
		return err
	}
	benchDir, err := os.Getwd()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "signin-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	loadBefore := loadAverage()
	started := time.Now()
	logf("bench: building test binaries")
	verifyBin, err := buildTest(ctx, benchDir, "./verify", filepath.Join(tmp, "verify.test"))
	if err != nil {
		return err
	}
	webBin, err := buildTest(ctx, root, "./internal/web", filepath.Join(tmp, "web.test"))
	if err != nil {
		return err
	}
	suites := []suite{
		{bin: verifyBin, dir: filepath.Join(benchDir, "verify"), pattern: "^BenchmarkIDToken$", cpus: []int{1, 2}},
		// CPU per request and per exchange: with GOMAXPROCS 1 the garbage
		// collector's work is counted too, not done on the other core.
		{bin: webBin, dir: filepath.Join(root, "internal", "web"), pattern: "^Benchmark(Session|Request|Connect)", cpus: []int{1}},
		{bin: verifyBin, dir: filepath.Join(benchDir, "verify"), pattern: "^BenchmarkKeyFetches$", cpus: []int{2}, benchtime: "1x", once: true},
	}

	rs := newResults()
	for round := 1; round <= o.count; round++ {
		for _, s := range suites {
			if s.once && round > 1 {
				continue
			}
			logf("bench: round %d/%d: %s", round, o.count, s.pattern)
			bt := s.benchtime
			if bt == "" {
				bt = o.benchtime
			}
			if err := runSuite(ctx, s, bt, rs, raw); err != nil {
				return err
			}
		}
	}

	var scaled []scaleSummary
	if o.scale {
		if scaled, err = runScale(ctx, o, tmp, stderr); err != nil {
			return err
		}
	}

	loadAfter := loadAverage()
	fmt.Fprintf(stdout, "Machine: %d CPUs (%s), %s %s/%s. Load average (1 min) %s before, %s after; the run took %v.\n",
		runtime.NumCPU(), cpuModel(), runtime.Version(), runtime.GOOS, runtime.GOARCH, loadBefore, loadAfter, time.Since(started).Round(time.Second))
	fmt.Fprintf(stdout, "Go benchmarks: medians of %s, -benchtime %s each. Scale runs: medians of %s.\n", plural(o.count, "round"), o.benchtime, plural(o.scaleCount, "run"))
	if o.quick {
		fmt.Fprintln(stdout, "QUICK MODE: a check of the machinery; the runs are too short and the scale runs too small for the goals.")
	}
	fmt.Fprintln(stdout)
	writeTable(stdout, (&report{rs: rs, scale: scaled}).rows())
	return nil
}

// buildTest compiles the test binary of pkg (relative to dir).
func buildTest(ctx context.Context, dir, pkg, out string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "test", "-c", "-o", out, pkg)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go test -c %s: %w\n%s", pkg, err, b)
	}
	return out, nil
}

// runSuite runs one suite's benchmarks once and adds the results.
func runSuite(ctx context.Context, s suite, benchtime string, rs *results, raw io.Writer) error {
	cpus := make([]string, len(s.cpus))
	for i, c := range s.cpus {
		cpus[i] = strconv.Itoa(c)
	}
	cmd := exec.CommandContext(ctx, s.bin, "-test.run", "^$", "-test.bench", s.pattern,
		"-test.cpu", strings.Join(cpus, ","), "-test.benchtime", benchtime, "-test.timeout", "30m")
	cmd.Dir = s.dir
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, raw)
	cmd.Stderr = io.MultiWriter(&out, raw)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s -test.bench %s: %w\n%s", filepath.Base(s.bin), s.pattern, err, out.String())
	}
	_, err := rs.parseBench(&out, s.cpus)
	return err
}

// scaleConfig is one offline-fetch configuration.
type scaleConfig struct {
	users   int
	latency time.Duration
	expire  bool
}

// runScale runs every scale configuration o.scaleCount times, round-robin.
func runScale(ctx context.Context, o options, tmp string, log io.Writer) ([]scaleSummary, error) {
	configs := []scaleConfig{
		{2000, 50 * time.Millisecond, false},
		{10000, 50 * time.Millisecond, false},
		{2000, 50 * time.Millisecond, true},
		{10000, 0, false},
		{100000, 0, false},
	}
	if o.quick {
		configs = []scaleConfig{
			{200, 5 * time.Millisecond, false},
			{1000, 5 * time.Millisecond, false},
			{200, 5 * time.Millisecond, true},
			{1000, 0, false},
			{5000, 0, false},
		}
	}
	fmt.Fprintln(log, "bench: building offline-fetch")
	bin, err := scale.Build(ctx, tmp)
	if err != nil {
		return nil, err
	}
	sets := make(map[int]*scale.Dataset)
	for _, c := range configs {
		if sets[c.users] == nil {
			if sets[c.users], err = scale.Open(ctx, o.cache, c.users, log); err != nil {
				return nil, err
			}
		}
	}
	results := make([][]scale.Result, len(configs))
	for round := 1; round <= o.scaleCount; round++ {
		for i, c := range configs {
			fmt.Fprintf(log, "bench: scale round %d/%d: ", round, o.scaleCount)
			res, err := sets[c.users].Run(ctx, scale.RunConfig{Binary: bin, Latency: c.latency, Concurrency: 32, Expire: c.expire, Log: log})
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(log, "bench: wall %v, peak RSS %s, %s\n", res.Wall.Round(time.Millisecond), fmtMB(float64(res.PeakRSS)), res.Summary)
			results[i] = append(results[i], res)
		}
	}
	out := make([]scaleSummary, len(configs))
	for i, c := range configs {
		out[i] = summarize(results[i], c.expire)
	}
	return out, nil
}

// loadAverage returns the 1-minute load average, or "unknown".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

// cpuModel returns the CPU's model name, or "unknown CPU".
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.Lines(string(b)) {
		if name, ok := strings.CutPrefix(line, "model name"); ok {
			if _, v, ok := strings.Cut(name, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return "unknown CPU"
}
