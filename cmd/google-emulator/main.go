// Command google-emulator runs the local Google emulator: Google's OAuth
// 2.0, OpenID Connect, Identity Services and People API endpoints on one
// address, with test accounts and a control API (see package
// example.com/signin/internal/emulator). Point an app at it with
// GOOGLE_EMULATOR_HOST=host:port.
//
// Usage:
//
//	google-emulator [-addr 127.0.0.1:9022] [-clients client_secrets.json,...]
//	                [-state emulator-state.json] [-access-token-ttl 3599s] [-revoke-on-code-reuse]
//	                [-key-max-age 6h] [-control-host name,...]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"example.com/signin/internal/emulator"
	"example.com/signin/internal/exitcode"
	"example.com/signin/internal/httpserve"
	"example.com/signin/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(Main(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// Main runs the emulator until ctx ends and returns the exit status, by
// the commands' one rule (internal/exitcode).
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := ParseFlags(args, stdout, stderr)
	if err == nil {
		err = Run(ctx, cfg)
	}
	return exitcode.Report(stderr, "google-emulator", err)
}

// usageError is a problem with the command line or the files it names:
// exit status 2.
type usageError = exitcode.UsageError

// Config is everything the command needs from its flags.
type Config struct {
	Addr     string
	Emulator emulator.Config
	Stdout   io.Writer // where the listening address and clients are printed
	Stderr   io.Writer // logs
	Version  bool      // -version: print the build's version and exit
}

// listFlag collects a repeatable flag whose values may also be
// comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// ParseFlags turns the arguments into a Config, reading the client files.
func ParseFlags(args []string, stdout, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("google-emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := Config{Stdout: stdout, Stderr: stderr}
	var clients listFlag
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:9022", "`host:port` to listen on")
	fs.Var(&clients, "clients", "client_secrets.json `files` (Google's format) of the OAuth clients to accept; repeatable or comma-separated (default: the demo client only)")
	fs.StringVar(&o.Emulator.StateFile, "state", "", "`file` keeping users, grants and keys across restarts (mode 0600)")
	fs.DurationVar(&o.Emulator.AccessTokenTTL, "access-token-ttl", 3599*time.Second, "lifetime of issued access tokens")
	fs.DurationVar(&o.Emulator.KeyMaxAge, "key-max-age", 6*time.Hour, "max-age of the key sets; a rotation's new key signs one max-age after it is published")
	var controlHosts listFlag
	fs.Var(&controlHosts, "control-host", "further host `names` under which the control API answers (besides loopback ones and the -addr host), e.g. a container's name; repeatable or comma-separated")
	fs.BoolVar(&o.Emulator.RevokeOnCodeReuse, "revoke-on-code-reuse", false, "a replayed code also revokes the tokens it issued (RFC 6749 4.1.2; Google does not)")
	var quotas listFlag
	fs.Var(&quotas, "quota", "per-minute quotas as Google's, `endpoint=N` (people, token), e.g. people=6000; past one: 429 RESOURCE_EXHAUSTED; repeatable or comma-separated")
	showVersion := version.AddFlag(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: google-emulator [flags]\n\nRuns a local stand-in for Google Sign-In. Point apps at it with GOOGLE_EMULATOR_HOST=host:port.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, usageError{Err: err}
	}
	if *showVersion {
		o.Version = true
		return o, nil
	}
	if fs.NArg() > 0 {
		return o, usageError{Err: fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	host, _, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return o, usageError{Err: fmt.Errorf("-addr %q: %w", o.Addr, err)}
	}
	if host != "" {
		// The control API answers under loopback names and the listen
		// address, and under no other Host (DNS rebinding).
		o.Emulator.ControlHosts = append(o.Emulator.ControlHosts, host)
	}
	o.Emulator.ControlHosts = append(o.Emulator.ControlHosts, controlHosts...)
	for _, q := range quotas {
		ep, n, ok := strings.Cut(q, "=")
		per, err := strconv.Atoi(n)
		if !ok || err != nil || per < 0 {
			return o, usageError{Err: fmt.Errorf("-quota %q: want endpoint=N, e.g. people=6000", q)}
		}
		o.Emulator.Quotas = append(o.Emulator.Quotas, emulator.Quota{Endpoint: ep, PerMinute: per})
	}
	if o.Emulator.KeyMaxAge < time.Second {
		return o, usageError{Err: fmt.Errorf("-key-max-age must be at least 1s")}
	}
	if o.Emulator.AccessTokenTTL <= 0 {
		return o, usageError{Err: fmt.Errorf("-access-token-ttl must be positive")}
	}
	for _, path := range clients {
		c, err := readClientSecrets(path)
		if err != nil {
			return o, usageError{Err: err}
		}
		o.Emulator.Clients = append(o.Emulator.Clients, c)
	}
	return o, nil
}

// readClientSecrets reads a client in Google's client_secrets.json format
// ({"web": {...}} or {"installed": {...}}). Empty redirect_uris is normal for
// a popup-only web client.
func readClientSecrets(path string) (emulator.Client, error) {
	f, err := os.Open(path)
	if err != nil {
		return emulator.Client{}, fmt.Errorf("-clients: %w", err)
	}
	defer f.Close()
	type entry struct {
		ClientID          string   `json:"client_id"`
		ClientSecret      string   `json:"client_secret"`
		JavaScriptOrigins []string `json:"javascript_origins"`
		RedirectURIs      []string `json:"redirect_uris"`
	}
	var file struct {
		Web       *entry `json:"web"`
		Installed *entry `json:"installed"`
	}
	if err := json.NewDecoder(io.LimitReader(f, 1<<20)).Decode(&file); err != nil {
		return emulator.Client{}, fmt.Errorf("-clients %s: %w", path, err)
	}
	e := file.Web
	if e == nil {
		e = file.Installed
	}
	if e == nil || e.ClientID == "" || e.ClientSecret == "" {
		return emulator.Client{}, fmt.Errorf("-clients %s: want {\"web\": {\"client_id\": ..., \"client_secret\": ...}}", path)
	}
	return emulator.Client{ID: e.ClientID, Secret: e.ClientSecret, JavaScriptOrigins: e.JavaScriptOrigins, RedirectURIs: e.RedirectURIs}, nil
}

// Run serves the emulator until ctx ends, then shuts down gracefully.
func Run(ctx context.Context, o Config) error {
	stdout := o.Stdout
	if o.Version {
		fmt.Fprint(stdout, version.String("google-emulator"))
		return nil
	}
	log := slog.New(slog.NewTextHandler(o.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	o.Emulator.Logger = log
	emu, err := emulator.New(o.Emulator)
	if err != nil {
		return usageError{Err: err}
	}
	defer emu.Close()

	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return err
	}
	srv := httpserve.NewServer(emu.Handler(), log, 10*time.Second)
	srv.ReadTimeout = 30 * time.Second
	// Injected delays may be long; this still ends a stuck write.
	srv.WriteTimeout = 5 * time.Minute
	srv.IdleTimeout = 2 * time.Minute
	srv.MaxHeaderBytes = 64 << 10

	host := ln.Addr().String()
	fmt.Fprintf(stdout, "Google emulator listening on http://%s\n", host)
	if o.Emulator.Clients == nil {
		// The demo client's secret is public by design: it only opens the
		// emulator, so printing it helps and leaks nothing.
		fmt.Fprintf(stdout, "  demo client id: %s\n  demo client secret: %s\n", emulator.DemoClientID, emulator.DemoClientSecret)
	} else {
		for _, c := range o.Emulator.Clients {
			fmt.Fprintf(stdout, "  client id: %s\n", c.ID)
		}
	}
	fmt.Fprintf(stdout, "  point apps at it: GOOGLE_EMULATOR_HOST=%s\n  control API: http://%s/emulator/v1/\n", host, host)

	if err := httpserve.Serve(ctx, ln, srv); err != nil {
		return err
	}
	return emu.Close()
}
