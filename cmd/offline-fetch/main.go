// Command offline-fetch acts for users while they are away: for each stored
// offline credential it gets a valid access token (refreshing and saving it
// only when needed) and calls the People API people/me.
//
// Exit status: 0 when every user succeeded, 1 when some failed or were found
// revoked, 2 for usage or configuration errors.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"example.com/signin/internal/config"
	"example.com/signin/internal/exitcode"
	"example.com/signin/internal/googlenet"
	"example.com/signin/internal/httpserve"
	"example.com/signin/internal/metrics"
	"example.com/signin/internal/offline"
	"example.com/signin/internal/rounds"
	"example.com/signin/internal/version"
	"example.com/signin/internal/wiring"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, isTerminal(os.Stderr)))
}

// Config is everything offline-fetch needs from flags and environment.
type Config struct {
	config.Common
	// OfflineScopes is -scopes, normalised: what the work needs.
	OfflineScopes  []string
	User           string
	JSON           bool
	Concurrency    int
	RequestTimeout time.Duration
	MaxRetries     int
	Progress       bool
	Getenv         func(string) string
	Stdout, Stderr io.Writer
	// Version: print the build's version and exit (-version).
	Version bool
	// MetricsAddr, when set with Every, is where a worker serves /metrics.
	MetricsAddr string
	// MetricsTextfile, when set, is where the run's metrics are written
	// for node_exporter's textfile collector (-metrics-textfile).
	MetricsTextfile string
	// Metrics counts the run's calls to Google; nil counts nothing.
	Metrics *metrics.Metrics

	// Every and JobTimeout are for rounds shared by processes
	// (-database): see package rounds.
	Every, JobTimeout time.Duration
	// Spread spreads a worker's rounds over this much of -every (-spread;
	// default 80% of it).
	Spread time.Duration
	// Rate and TokenRate are the fleet's budgets of People API calls and
	// refreshes, per minute (-rate, -token-rate; 0: none).
	Rate, TokenRate rate
	// Fleet counts rounds, users, budget waits and 429s; nil counts
	// nothing.
	Fleet *metrics.Fleet
}

// Main parses args, runs, and returns the exit status.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, terminal bool) int {
	cfg, err := ParseFlags(args, getenv, stdout, stderr)
	if err != nil {
		return exitcode.Report(stderr, "offline-fetch", exitcode.AsUsage(err))
	}
	if cfg.Version {
		fmt.Fprint(stdout, version.String("offline-fetch"))
		return 0
	}
	cfg.Progress = terminal
	if cfg.MetricsTextfile != "" || cfg.MetricsAddr != "" {
		reg := prometheus.NewRegistry()
		cfg.Metrics = metrics.New(reg)
		cfg.Fleet = metrics.NewFleet(reg)
		if cfg.MetricsAddr != "" {
			// A worker (-every) is scraped like signin, on a listener of
			// its own.
			metrics.RegisterRuntime(reg)
			logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
			base, stop, err := httpserve.Background(ctx, cfg.MetricsAddr, metrics.Mux(reg), logger.With("component", "metrics"), 0)
			if err != nil {
				return exitcode.Report(stderr, "offline-fetch", exitcode.Usagef("-metrics-addr: %w", err))
			}
			defer stop()
			logger.Info("serving metrics", "url", base+"/metrics")
		}
	}
	start := time.Now()
	sum, err := Run(ctx, cfg)
	if cfg.Every > 0 && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = nil // a worker stopped (SIGTERM), also while it waited for its database
	}
	code := offline.ExitCode(sum, err)
	if exitcode.Report(stderr, "offline-fetch", err) == exitcode.Usage {
		code = exitcode.Usage
	}
	if cfg.Every > 0 && err == nil {
		code = 0 // a worker stopped: its users' outcomes are in its output
	}
	if cfg.MetricsTextfile != "" {
		run := metrics.OfflineRun{
			Users: map[string]int{"ok": sum.OK, "revoked": sum.Revoked, "failed": sum.Failed,
				"skipped": sum.Skipped, "scope_missing": sum.ScopeMissing, "interrupted": sum.Interrupted},
			Start: start, End: time.Now(), Success: code == 0,
		}
		if err := metrics.WriteOfflineTextfile(cfg.MetricsTextfile, run, cfg.Metrics); err != nil {
			// Not silent: the monitoring would show a stale run.
			fmt.Fprintln(stderr, "offline-fetch:", err)
			code = max(code, 1)
		}
	}
	return code
}

// flagError is an error the flag package has already printed, with the
// usage: it is not printed again.
func flagError(err error) error { return exitcode.Printed(err) }

// configError marks a configuration problem found before any user was
// tried: exit status 2 (see exitcode).
func configError(err error) error { return exitcode.AsUsage(err) }

// ParseFlags turns command-line arguments into a Config.
func ParseFlags(args []string, getenv func(string) string, stdout, stderr io.Writer) (Config, error) {
	cfg := Config{Getenv: getenv, Stdout: stdout, Stderr: stderr}
	fs := flag.NewFlagSet("offline-fetch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: offline-fetch [flags]

For each user who granted offline access: get a valid access token
(refreshing and saving it only when needed) and call the People API.
One line per user on stdout; failures and a summary on stderr.
Exit status: 0 all users succeeded, 1 some failed or were revoked, 2 usage
or configuration error.

Flags:
`)
		fs.PrintDefaults()
	}
	cfg.Register(fs, "warn")
	fs.StringVar(&cfg.User, "user", "", "only this user: their Google sub, or the email their record holds; default: every active user")
	fs.BoolVar(&cfg.JSON, "json", false, "print JSON lines instead of sub<TAB>name<TAB>email")
	fs.IntVar(&cfg.Concurrency, "concurrency", offline.DefaultConcurrency, fmt.Sprintf("users processed at once (1 to %d)", offline.MaxConcurrency))
	fs.DurationVar(&cfg.RequestTimeout, "timeout", offline.DefaultRequestTimeout, "timeout of each request to Google, each retry included")
	fs.IntVar(&cfg.MaxRetries, "retries", offline.DefaultMaxRetries, "retries of a request answered 429 or 5xx or failing in the network (0: none)")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "with -every: serve Prometheus metrics at /metrics on this address (host:port), a listener of its own; default: off")
	fs.StringVar(&cfg.MetricsTextfile, "metrics-textfile", "", "at the end, write the run's metrics to this `file` (node_exporter textfile format, e.g. /var/lib/node_exporter/textfile/signin_offline_fetch.prom)")
	showVersion := version.AddFlag(fs)
	fs.DurationVar(&cfg.Every, "every", 0, "with -database: run as a worker, a round of every user per interval, shared with the other workers (0: one round, then exit)")
	fs.DurationVar(&cfg.JobTimeout, "job-timeout", rounds.DefaultJobTimeout, "with -database: bound on one user's work; the users of a process that dies go to the others within twice this (+30s at most) plus 50s")
	fs.DurationVar(&cfg.Spread, "spread", 0, "with -every: schedule each round's users evenly over this much of the interval, so the fleet's rate is flat (0: all at once; default: 80% of -every)")
	fs.Var(&cfg.Rate, "rate", "with -database: People API calls a minute for all the processes together (`N/m`, e.g. 6000/m; N/s too), held in the database; calls wait for it, and a 429 lowers it for every process (default: none)")
	fs.Var(&cfg.TokenRate, "token-rate", "with -rate: refreshes at the token endpoint a minute for all the processes together, a budget of their own (`N/m`; default: -rate's)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, flagError(err)
	}
	if *showVersion {
		cfg.Version = true
		return cfg, nil
	}
	if err := cfg.Parsed(fs, getenv); err != nil {
		return cfg, err
	}
	var err error
	if cfg.OfflineScopes, err = wiring.OfflineScopes(cfg.Scopes); err != nil {
		return cfg, err
	}
	// Zero would mean "default" to the engine; on the command line it
	// means what it says.
	if cfg.Concurrency < 1 || cfg.Concurrency > offline.MaxConcurrency {
		return cfg, fmt.Errorf("-concurrency %d: want 1 to %d", cfg.Concurrency, offline.MaxConcurrency)
	}
	if cfg.RequestTimeout <= 0 {
		return cfg, fmt.Errorf("-timeout %v: want a positive duration", cfg.RequestTimeout)
	}
	if cfg.MaxRetries < 0 {
		return cfg, fmt.Errorf("-retries %d: want 0 or more", cfg.MaxRetries)
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = -1 // the engine's "none"
	}
	if cfg.TokenRate == 0 {
		cfg.TokenRate = cfg.Rate // a refresh precedes at most one call
	}
	spreadSet := false
	fs.Visit(func(f *flag.Flag) { spreadSet = spreadSet || f.Name == "spread" })
	if !spreadSet && cfg.Every > 0 {
		cfg.Spread = cfg.Every * 8 / 10
	}
	if err := checkRoundFlags(cfg); err != nil {
		return cfg, err
	}
	if cfg.Every > 0 {
		cfg.WaitForever() // a worker waits for its database as a replica does
	}
	return cfg, nil
}

// Run fetches every selected user's profile. The error is for configuration
// problems; per-user failures are counted in the summary.
func Run(ctx context.Context, cfg Config) (offline.Summary, error) {
	logger := slog.New(slog.NewTextHandler(cfg.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	// A mistyped -credentials would otherwise be created, empty, and the
	// run would "succeed" with nobody in it. signin creates the directory.
	// (With a database the users are there, not in the directory.)
	if fi, err := os.Stat(cfg.CredentialsDir); cfg.Database == "" && (err != nil || !fi.IsDir()) {
		if err == nil {
			err = errors.New("not a directory")
		}
		return offline.Summary{}, configError(fmt.Errorf("-credentials %s: %w (it is where signin stores what users granted; it creates it on its first start)", cfg.CredentialsDir, unwrapPath(err)))
	}
	opts := googlenet.Options{Timeout: cfg.RequestTimeout}
	google, err := config.LoadGoogle(cfg.ClientSecrets, cfg.SecretsExplicit, cfg.Getenv, opts)
	if err != nil {
		return offline.Summary{}, configError(err)
	}
	if google.Demo {
		if err := useDemoEmulator(ctx, cfg, google, opts); err != nil {
			return offline.Summary{}, configError(err)
		}
		fmt.Fprintf(cfg.Stderr, "offline-fetch: %s\n", google.Describe())
	}
	wcfg := wiring.Config{Common: cfg.Common, Getenv: cfg.Getenv, Logger: logger, Google: google, Metrics: cfg.Metrics}
	if sharesRounds(cfg) {
		wcfg.MaxConns = roundsMaxConns
	}
	parts, err := wiring.Open(ctx, wcfg)
	if err != nil {
		return offline.Summary{}, err // wiring tells configuration (2) from a database that does not answer (1)
	}
	defer parts.Close()
	ocfg := offline.Config{
		FetcherConfig: offline.FetcherConfig{
			Grants:         parts.Grants,
			HTTPClient:     google.Net.HTTPClient(),
			RequestTimeout: cfg.RequestTimeout,
			MaxRetries:     cfg.MaxRetries,
			Logger:         logger,
			Scopes:         cfg.OfflineScopes,
		},
		User:        cfg.User,
		Concurrency: cfg.Concurrency,
		JSON:        cfg.JSON,
		Stdout:      cfg.Stdout,
		Stderr:      cfg.Stderr,
		Progress:    cfg.Progress,
	}
	if sharesRounds(cfg) {
		return rounds.Run(ctx, rounds.Config{DB: parts.DB, Offline: ocfg,
			Every: cfg.Every, Spread: cfg.Spread, JobTimeout: cfg.JobTimeout, Logger: logger, Fleet: cfg.Fleet,
			Budgets: rounds.Budgets{PeoplePerMinute: int(cfg.Rate), TokenPerMinute: int(cfg.TokenRate)}})
	}
	return offline.Run(ctx, ocfg)
}

// useDemoEmulator points google at the demo's emulator: the one
// GOOGLE_EMULATOR_HOST names, else the one signin said it runs (in the
// credentials directory), else the default address. The demo's emulator
// lives in the signin process (or cmd/google-emulator); without it every
// user would fail one by one, so it must answer.
func useDemoEmulator(ctx context.Context, cfg Config, google *config.Google, opts googlenet.Options) error {
	published := ""
	if !google.EmulatorFromEnv {
		addr, err := config.PublishedEmulatorAddr(cfg.CredentialsDir)
		if err != nil {
			return err
		}
		if addr != "" {
			if err := google.UseEmulator(addr, opts); err != nil {
				return err
			}
			published = addr
		}
	}
	err := emulatorAnswers(ctx, google.Net.HTTPClient())
	switch {
	case err == nil:
		return nil
	case google.EmulatorFromEnv:
		return fmt.Errorf("demo mode: no Google emulator answers at %s, which %s names (%v): start `go run ./cmd/google-emulator -addr %s`, or fix the variable", google.EmulatorAddr, googlenet.EnvEmulatorHost, err, google.EmulatorAddr)
	case published != "":
		return fmt.Errorf("demo mode: signin said its Google emulator is at %s (%s), but nothing answers there (%v): has signin stopped? Start `go run ./cmd/signin` again", published, filepath.Join(cfg.CredentialsDir, config.EmulatorAddrFile), err)
	}
	return fmt.Errorf("demo mode: no Google emulator answers at %s (%v), and no signin running in demo mode has written its address in %s: start `go run ./cmd/signin` (with the same -credentials) first", google.EmulatorAddr, err, cfg.CredentialsDir)
}

// emulatorAnswers checks that the (emulated) Google discovery document is
// served.
func emulatorAnswers(ctx context.Context, c *http.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, googlenet.Issuer+"/.well-known/openid-configuration", nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		// The request is made to Google's URL and sent to the emulator:
		// the URL would only mislead; the dial error names the address.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// unwrapPath drops the *fs.PathError's operation and path, which the
// message names already.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// isTerminal reports whether f is a terminal (for the progress line).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
