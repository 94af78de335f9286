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
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"example.com/signin/internal/auth"
	"example.com/signin/internal/config"
	"example.com/signin/internal/googlenet"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/offline"
	"example.com/signin/internal/rounds"
	"example.com/signin/internal/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, isTerminal(os.Stderr)))
}

// Config is everything offline-fetch needs from flags and environment.
type Config struct {
	config.Common
	User           string
	JSON           bool
	Concurrency    int
	RequestTimeout time.Duration
	MaxRetries     int
	Progress       bool
	Getenv         func(string) string
	Stdout, Stderr io.Writer

	// Every and JobTimeout are for rounds shared by processes
	// (-database): see package rounds.
	Every, JobTimeout time.Duration
}

// Main parses args, runs, and returns the exit status.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, terminal bool) int {
	cfg, err := ParseFlags(args, getenv, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "offline-fetch:", err)
		return 2
	}
	cfg.Progress = terminal
	sum, err := Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "offline-fetch:", err)
	}
	var cerr configError
	if errors.As(err, &cerr) {
		return 2
	}
	if cfg.Every > 0 && err == nil {
		return 0 // a worker stopped: its users' outcomes are in its output
	}
	return offline.ExitCode(sum, err)
}

// configError marks a configuration problem found before any user was
// tried (exit status 2).
type configError struct{ error }

func (e configError) Unwrap() error { return e.error }

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
	fs.StringVar(&cfg.User, "user", "", "only this user (their Google sub); default: every active user")
	fs.BoolVar(&cfg.JSON, "json", false, "print JSON lines instead of sub<TAB>name<TAB>email")
	fs.IntVar(&cfg.Concurrency, "concurrency", offline.DefaultConcurrency, fmt.Sprintf("users processed at once (1 to %d)", offline.MaxConcurrency))
	fs.DurationVar(&cfg.RequestTimeout, "timeout", offline.DefaultRequestTimeout, "timeout of each request to Google, each retry included")
	fs.IntVar(&cfg.MaxRetries, "retries", offline.DefaultMaxRetries, "retries of a request answered 429 or 5xx or failing in the network (0: none)")
	fs.DurationVar(&cfg.Every, "every", 0, "with -database: run as a worker, a round of every user per interval, shared with the other workers (0: one round, then exit)")
	fs.DurationVar(&cfg.JobTimeout, "job-timeout", rounds.DefaultJobTimeout, "with -database: bound on one user's work; the users of a process that dies go to the others within twice this (+30s at most) plus 50s")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if err := cfg.Parsed(fs, getenv); err != nil {
		return cfg, err
	}
	// Zero would mean "default" to the engine; on the command line it
	// means what it says.
	if cfg.Concurrency < 1 {
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
	if err := checkRoundFlags(cfg); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// Run fetches every selected user's profile. The error is for configuration
// problems; per-user failures are counted in the summary.
func Run(ctx context.Context, cfg Config) (offline.Summary, error) {
	logger := slog.New(slog.NewTextHandler(cfg.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	google, err := config.LoadGoogle(cfg.ClientSecrets, cfg.SecretsExplicit, cfg.Getenv, googlenet.Options{Timeout: cfg.RequestTimeout})
	if err != nil {
		return offline.Summary{}, configError{err}
	}
	if google.Demo {
		fmt.Fprintf(cfg.Stderr, "offline-fetch: %s\n", google.Describe())
		// The demo's emulator lives in the signin process (or
		// cmd/google-emulator); without it every user would fail one by one.
		if err := emulatorAnswers(ctx, google.Net.HTTPClient()); err != nil {
			return offline.Summary{}, configError{fmt.Errorf("demo mode: no Google emulator answers at %s (%v): start `go run ./cmd/signin` or `go run ./cmd/google-emulator` first", google.EmulatorAddr, err)}
		}
	}
	st, err := store.Open(ctx, store.Config{DatabaseURL: cfg.Database, Dir: cfg.CredentialsDir, Logger: logger.With("component", "store")})
	if err != nil {
		return offline.Summary{}, configError{err}
	}
	defer st.Close()
	g := auth.NewGoogle(auth.GoogleConfig{Client: google.Client, HTTPClient: google.Net.HTTPClient(), Logger: logger})
	ocfg := offline.Config{
		FetcherConfig: offline.FetcherConfig{
			Grants:         grant.New(grant.Config{Store: st, Google: g, Logger: logger}),
			HTTPClient:     google.Net.HTTPClient(),
			RequestTimeout: cfg.RequestTimeout,
			MaxRetries:     cfg.MaxRetries,
			Logger:         logger,
		},
		User:        cfg.User,
		Concurrency: cfg.Concurrency,
		JSON:        cfg.JSON,
		Stdout:      cfg.Stdout,
		Stderr:      cfg.Stderr,
		Progress:    cfg.Progress,
	}
	if sharesRounds(cfg) {
		return rounds.Run(ctx, rounds.Config{DatabaseURL: cfg.Database, Offline: ocfg,
			Every: cfg.Every, JobTimeout: cfg.JobTimeout, Logger: logger})
	}
	return offline.Run(ctx, ocfg)
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
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// isTerminal reports whether f is a terminal (for the progress line).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
