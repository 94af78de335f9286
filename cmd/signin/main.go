// Command signin serves the sign-in app: Google Sign-In verified on the
// server, optional or necessary offline access, the client-side flow at
// /staticjs for comparison, and disconnect.
//
// Without a client_secrets.json it runs a demo against the built-in Google
// emulator. See README.md for flags and environment variables.
//
// Exit status (internal/exitcode): 0 after a clean shutdown (SIGINT or
// SIGTERM), 1 when the server stops on a run-time failure (the address in
// use), 2 for usage and configuration errors (unknown flags, bad values, a
// client file that cannot be used, a credentials directory it cannot
// write, a database URL that cannot work), naming the flag or variable.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"example.com/signin/internal/auth"
	"example.com/signin/internal/config"
	"example.com/signin/internal/emulator"
	"example.com/signin/internal/exitcode"
	"example.com/signin/internal/googlenet"
	"example.com/signin/internal/httpserve"
	"example.com/signin/internal/metrics"
	"example.com/signin/internal/offline"
	"example.com/signin/internal/version"
	"example.com/signin/internal/web"
	"example.com/signin/internal/wiring"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(Main(ctx, os.Args[1:], os.Getenv, os.Stderr))
}

// Main parses args, serves until ctx ends, and returns the exit status (see
// the package documentation).
func Main(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	cfg, err := ParseFlags(args, getenv, stderr)
	if err != nil {
		return exitcode.Report(stderr, "signin", exitcode.AsUsage(err))
	}
	if cfg.Version {
		fmt.Print(version.String("signin"))
		return 0
	}
	return exitcode.Report(stderr, "signin", Run(ctx, cfg))
}

// flagError is an error the flag package has already printed, with the
// usage: it is not printed again.
func flagError(err error) error { return exitcode.Printed(err) }

// Config is everything the server needs from flags and environment.
type Config struct {
	Addr string
	config.Common
	SessionKeyFile string
	OtherClientIDs []string
	HostedDomain   string
	ClockSkew      time.Duration
	SessionMaxAge  time.Duration
	SecureCookies  bool
	EmulatorAddr   string // demo mode: where to run the in-process emulator
	DevDir         string
	Getenv         func(string) string
	Stderr         io.Writer
	// Ready, if set, is called with the server's base URL once it listens
	// (tests use it with Addr "127.0.0.1:0").
	Ready func(baseURL string)
	// ReadHeaderTimeout is how long a client may take to send a request's
	// headers before the connection is closed (the slow-loris defence).
	// Zero means httpserve.DefaultReadHeaderTimeout. Not a flag: tests shorten it.
	ReadHeaderTimeout time.Duration
	// Version: print the build's version and exit (-version).
	Version bool
	// MetricsAddr, when set, is where /metrics is served, on a listener
	// of its own (-metrics-addr).
	MetricsAddr string
	// MetricsReady, if set, is called with the metrics listener's URL
	// once it listens (tests use it with MetricsAddr "127.0.0.1:0").
	MetricsReady func(metricsURL string)
	// OfflineScopes is -scopes, normalised (grant.ParseScopes).
	OfflineScopes []string
}

// ParseFlags turns command-line arguments and the environment into a Config.
func ParseFlags(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	cfg := Config{Getenv: getenv, Stderr: stderr}
	fs := flag.NewFlagSet("signin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: signin [flags]

Serves the Google Sign-In app. Without client_secrets.json it runs a demo
on the built-in Google emulator. Environment: SESSION_KEYS (session
secrets, newest first), DATABASE_URL (as -database), GOOGLE_EMULATOR_HOST (send Google calls to an
emulator at host:port).
Exit status: 0 after a clean shutdown (Ctrl-C, SIGTERM), 1 for a run-time
failure (an address in use), 2 for usage and configuration errors.

Flags:
`)
		fs.PrintDefaults()
	}
	cfg.Register(fs, "info")
	fs.StringVar(&cfg.Addr, "addr", "localhost:9021", "listen address (host:port); Google's JavaScript origins must match it")
	fs.StringVar(&cfg.SessionKeyFile, "session-key-file", "", "session secret file, created on first start when "+config.EnvSessionKeys+" is unset (default <credentials>/.session-key)")
	other := fs.String("other-client-ids", "", "comma-separated extra client ids accepted as ID token audience (Android, iOS)")
	fs.StringVar(&cfg.HostedDomain, "hosted-domain", "", "accept only Google Workspace users of this domain (hd claim)")
	fs.DurationVar(&cfg.ClockSkew, "clock-skew", time.Minute, "allowed clock difference with Google for ID token iat")
	fs.DurationVar(&cfg.SessionMaxAge, "session-max-age", 7*24*time.Hour, "how long a sign-in session lasts")
	fs.BoolVar(&cfg.SecureCookies, "secure-cookies", false, "mark cookies Secure (set this when served over HTTPS)")
	fs.StringVar(&cfg.EmulatorAddr, "emulator-addr", config.DefaultEmulatorAddr, "demo mode: address of the in-process Google emulator")
	fs.StringVar(&cfg.DevDir, "dev", "", "development: read templates and static files from this module directory on every request")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics at /metrics on this address (host:port), a listener of its own; default: off")
	showVersion := version.AddFlag(fs)
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
	cfg.WaitForever() // a replica waits for its database as long as it takes
	var err error
	if cfg.OfflineScopes, err = wiring.OfflineScopes(cfg.Scopes); err != nil {
		return cfg, err
	}
	for _, id := range strings.Split(*other, ",") {
		if id = strings.TrimSpace(id); id != "" {
			cfg.OtherClientIDs = append(cfg.OtherClientIDs, id)
		}
	}
	if cfg.SessionKeyFile == "" {
		cfg.SessionKeyFile = filepath.Join(cfg.CredentialsDir, ".session-key")
	}
	if cfg.ClockSkew < 0 || cfg.ClockSkew > 10*time.Minute {
		return cfg, fmt.Errorf("-clock-skew %v: want between 0 and 10m", cfg.ClockSkew)
	}
	if cfg.SessionMaxAge <= 0 {
		return cfg, fmt.Errorf("-session-max-age %v: want a positive duration", cfg.SessionMaxAge)
	}
	if cfg.DevDir != "" {
		for _, sub := range []string{"templates", "static"} {
			if fi, err := os.Stat(filepath.Join(cfg.DevDir, sub)); err != nil || !fi.IsDir() {
				return cfg, fmt.Errorf("-dev %s: no %s directory there: give this module's directory, where go.mod is (-dev . from the module's root)", cfg.DevDir, sub+string(filepath.Separator))
			}
		}
	}
	for _, a := range []struct{ flag, addr string }{{"-addr", cfg.Addr}, {"-emulator-addr", cfg.EmulatorAddr}, {"-metrics-addr", cfg.MetricsAddr}} {
		if err := checkAddr(a.addr); a.addr != "" && err != nil {
			return cfg, fmt.Errorf("%s %q: %v: want host:port, such as localhost:9021 or :9021", a.flag, a.addr, err)
		}
	}
	if cfg.MetricsAddr != "" && cfg.MetricsAddr == cfg.Addr {
		return cfg, fmt.Errorf("-metrics-addr %s: metrics are never served on the public address", cfg.MetricsAddr)
	}
	return cfg, nil
}

// Run serves the app until ctx is cancelled, then shuts down gracefully.
func Run(ctx context.Context, cfg Config) error {
	logger := slog.New(slog.NewTextHandler(cfg.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))

	google, err := config.LoadGoogle(cfg.ClientSecrets, cfg.SecretsExplicit, cfg.Getenv, googlenet.Options{})
	if err != nil {
		return err
	}
	if cfg.Database != "" && strings.TrimSpace(cfg.Getenv(config.EnvSessionKeys)) == "" {
		// Each replica would make its own key file, and none could read
		// another's cookies.
		return exitcode.Usagef("with -database (or %s), set %s: every replica must share the session keys", config.EnvDatabaseURL, config.EnvSessionKeys)
	}
	if google.Demo && !google.EmulatorFromEnv {
		stopEmu, addr, err := startDemoEmulator(ctx, cfg, logger)
		if err != nil {
			return err
		}
		defer stopEmu()
		// The emulator may listen on another port than asked (":0" in tests).
		if err := google.UseEmulator(addr, googlenet.Options{}); err != nil {
			return err
		}
	}
	if google.Demo {
		logger.Warn(google.Describe())
	} else {
		logger.Info(google.Describe())
	}

	var m *metrics.Metrics
	if cfg.MetricsAddr != "" {
		reg := prometheus.NewRegistry()
		m = metrics.New(reg)
		metrics.RegisterRuntime(reg)
		stopMetrics, err := serveMetrics(ctx, cfg, reg, logger)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}

	parts, err := wiring.Open(ctx, wiring.Config{Common: cfg.Common, Getenv: cfg.Getenv, Logger: logger, Google: google, Metrics: m,
		Writable: true, Why: "signin keeps users' offline access, the session key and the demo's state there",
		Background: true, RecordCache: wiring.ServerRecordCache})
	if err != nil {
		return err
	}
	defer parts.Close()
	st, grants, g := parts.Store, parts.Grants, parts.Google
	logger.Info("store", "backend", st.Describe())
	keys, err := config.SessionKeys(cfg.Getenv, cfg.SessionKeyFile)
	if err != nil {
		return exitcode.AsUsage(err) // a malformed SESSION_KEYS, or -session-key-file
	}
	if google.Demo && !google.EmulatorFromEnv {
		// offline-fetch finds the demo's emulator here, wherever it runs.
		remove, err := config.PublishEmulatorAddr(cfg.CredentialsDir, google.EmulatorAddr)
		if err != nil {
			return err
		}
		defer remove()
	}
	verifier, err := auth.NewVerifier(auth.VerifierConfig{
		Audiences:    append([]string{google.Client.ID}, cfg.OtherClientIDs...),
		HostedDomain: cfg.HostedDomain,
		ClockSkew:    cfg.ClockSkew,
		HTTPClient:   google.Net.HTTPClient(),
		Logger:       logger,
		Metrics:      m,
	})
	if err != nil {
		return err
	}
	risc, err := auth.NewRISCVerifier(auth.RISCVerifierConfig{
		ClientIDs:  append([]string{google.Client.ID}, cfg.OtherClientIDs...),
		HTTPClient: google.Net.HTTPClient(),
		Logger:     logger.With("component", "risc"),
		Metrics:    m,
	})
	if err != nil {
		return err
	}
	srv, err := web.New(web.Config{
		ClientID: google.Client.ID,
		Grants:   grants,
		Verifier: verifier,
		Google:   g,
		// A person is waiting on this page: one retry and a short timeout,
		// not a batch job's patience.
		Profiles: offline.NewFetcher(offline.FetcherConfig{
			Grants: grants, HTTPClient: google.Net.HTTPClient(),
			MaxRetries: 1, RequestTimeout: 10 * time.Second, Logger: logger,
		}),
		Net:           google.Net,
		SessionKeys:   keys,
		Sessions:      st,
		RISC:          risc,
		SessionMaxAge: cfg.SessionMaxAge,
		SecureCookies: cfg.SecureCookies,
		Demo:          google.Demo,
		DevDir:        cfg.DevDir,
		Logger:        logger,
		Metrics:       m,
		Ready:         st.Ping,
		OfflineScopes: cfg.OfflineScopes,
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("-addr %s: the address is in use (another signin, or another program, listens there): stop it, or choose another address with -addr", cfg.Addr)
	}
	if err != nil {
		return fmt.Errorf("-addr %s: %w", cfg.Addr, err)
	}
	base := baseURL(cfg.Addr, ln.Addr())
	logger.Info("serving", "url", base)
	if cfg.Ready != nil {
		cfg.Ready(base)
	}
	serveCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	if parts.DB != nil {
		// Listening already (alive, /readyz 503) while the database is
		// awaited; a database that can never work stops the server.
		go func() {
			<-parts.DB.Started()
			if err := parts.StartErr(); err != nil {
				stop(err)
				return
			}
			logger.Info("database ready", "backend", st.Describe())
		}()
	}
	if err := httpserve.Serve(serveCtx, ln, httpserve.NewServer(srv.Handler(), logger, cfg.ReadHeaderTimeout)); err != nil {
		return err
	}
	if ctx.Err() == nil && serveCtx.Err() != nil {
		return context.Cause(serveCtx)
	}
	return nil
}

// checkAddr checks that addr is a listen address (host:port, a numeric or
// named port), before anything starts.
func checkAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("port %q: %v", port, err)
	}
	return nil
}

// serveMetrics serves reg at /metrics on cfg.MetricsAddr, a listener apart
// from the app's, until ctx ends or stop is called; stop waits for it to
// shut down.
func serveMetrics(ctx context.Context, cfg Config, reg *prometheus.Registry, logger *slog.Logger) (stop func(), err error) {
	base, stop, err := httpserve.Background(ctx, cfg.MetricsAddr, metrics.Mux(reg), logger.With("component", "metrics"), cfg.ReadHeaderTimeout)
	if err != nil {
		return nil, fmt.Errorf("-metrics-addr: %w", err)
	}
	logger.Info("serving metrics", "url", base+"/metrics")
	if cfg.MetricsReady != nil {
		cfg.MetricsReady(base + "/metrics")
	}
	return stop, nil
}

// startDemoEmulator runs the Google emulator in this process for demo mode.
// If its address is taken by an emulator already (another signin, or
// cmd/google-emulator), that one is used instead.
func startDemoEmulator(ctx context.Context, cfg Config, logger *slog.Logger) (stop func(), addr string, err error) {
	ln, err := net.Listen("tcp", cfg.EmulatorAddr)
	if err != nil {
		if isEmulator(ctx, cfg.EmulatorAddr) {
			logger.Warn("demo mode: using the Google emulator already running", "addr", cfg.EmulatorAddr)
			return func() {}, cfg.EmulatorAddr, nil
		}
		return nil, "", fmt.Errorf("demo mode: cannot start the Google emulator on %s: %w (use -emulator-addr, or set %s)", cfg.EmulatorAddr, err, googlenet.EnvEmulatorHost)
	}
	emu, err := emulator.New(emulator.Config{
		StateFile: filepath.Join(cfg.CredentialsDir, ".emulator-state.json"),
		Logger:    logger.With("component", "emulator"),
	})
	if err != nil {
		ln.Close()
		return nil, "", err
	}
	emuCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := httpserve.Serve(emuCtx, ln, httpserve.NewServer(emu.Handler(), logger, cfg.ReadHeaderTimeout)); err != nil {
			logger.Error("emulator stopped", "err", err)
		}
		// Close writes the emulator's state file, so the demo's grants
		// survive a restart of signin.
		if err := emu.Close(); err != nil {
			logger.Error("emulator state not saved", "err", err)
		}
	}()
	return func() { cancel(); <-done }, ln.Addr().String(), nil
}

// isEmulator reports whether a Google emulator answers at addr.
func isEmulator(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/emulator/v1/stats", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// baseURL is the URL to open: the host as configured when it is a name (a
// Google client's JavaScript origin is http://localhost:9021, not the IP
// "localhost" resolved to), with the port actually bound.
func baseURL(configured string, bound net.Addr) string {
	host, _, err := net.SplitHostPort(configured)
	_, port, _ := net.SplitHostPort(bound.String())
	if err != nil || host == "" || net.ParseIP(host) != nil {
		return "http://" + bound.String()
	}
	return "http://" + net.JoinHostPort(host, port)
}
