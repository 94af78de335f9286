// Package scale measures cmd/offline-fetch at scale, as a user runs it: a
// freshly built offline-fetch binary, run as a child process against an
// in-process Google emulator (GOOGLE_EMULATOR_HOST, demo client), over a
// credentials directory of N users with real offline grants at that
// emulator. It reports the run's wall time against the ideal (users x
// People API latency / concurrency), the child's peak RSS (VmHWM), and
// what the emulator saw: refresh grants and People API calls.
//
// Seeding 100,000 users takes a while (a grant and a credential file
// each), so a seeded data set (the emulator's state file with the grants,
// and the credentials directory) is kept in a cache directory and reused
// while its access tokens are valid; see Open.
package scale

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/errgroup"

	"example.com/signin/internal/auth"
	"example.com/signin/internal/emulator"
	"example.com/signin/internal/googlenet"
	"example.com/signin/internal/grant"
)

// Layout of a data set directory.
const (
	stateFile   = "emulator.json" // the emulator's state: users, grants, tokens, keys
	credsDir    = "credentials"   // the file store's directory
	markerFile  = "dataset.json"  // written last: the data set is complete and consistent
	datasetKind = 1               // bump when the seeding changes, to invalidate caches
)

// tokenTTL is the lifetime of the seeded access tokens, at the emulator and
// in the records; maxAge is how long a cached data set is reused, well
// inside it, so a run never finds expired tokens it did not ask for.
const (
	tokenTTL = 30 * 24 * time.Hour
	maxAge   = 7 * 24 * time.Hour
)

// scopes granted to the seeded users: what the People API call needs. Not
// openid, so that neither seeding nor refreshing makes the emulator sign an
// ID token (an RSA signature per user, which would load the shared CPU
// during the runs for no benefit: offline-fetch does not use it).
const scopes = "email profile"

// Dataset is a seeded directory: an emulator state file holding Users
// users with offline grants, and a credentials directory with one record
// per user holding that user's tokens.
type Dataset struct {
	Users int
	Dir   string
}

type marker struct {
	Kind    int       `json:"kind"`
	Users   int       `json:"users"`
	Created time.Time `json:"created"`
}

// Open returns the data set of n users in cacheDir, seeding it first when
// it is missing, incomplete (a run or seeding was interrupted), from an
// older version of this package, or older than a week. Progress goes to
// log.
func Open(ctx context.Context, cacheDir string, n int, log io.Writer) (*Dataset, error) {
	d := &Dataset{Users: n, Dir: filepath.Join(cacheDir, fmt.Sprintf("users-%d", n))}
	if m, err := readMarker(d.Dir); err == nil && m.Kind == datasetKind && m.Users == n && time.Since(m.Created) < maxAge {
		return d, nil
	}
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(cacheDir, ".seeding-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp) // after a successful rename there is nothing left to remove
	start := time.Now()
	fmt.Fprintf(log, "scale: seeding %d users into %s (once; reused for a week)\n", n, d.Dir)
	if err := seed(ctx, tmp, n, log); err != nil {
		return nil, fmt.Errorf("seeding %d users: %w", n, err)
	}
	if err := writeMarker(tmp, marker{Kind: datasetKind, Users: n, Created: time.Now()}); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(d.Dir); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, d.Dir); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "scale: seeded %d users in %v\n", n, time.Since(start).Round(time.Millisecond))
	return d, nil
}

func readMarker(dir string) (marker, error) {
	var m marker
	b, err := os.ReadFile(filepath.Join(dir, markerFile))
	if err != nil {
		return m, err
	}
	return m, json.Unmarshal(b, &m)
}

func writeMarker(dir string, m marker) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, markerFile), b, 0o600)
}

// newEmulator starts the emulator on dir's state file: only the demo
// client, no default users, long-lived access tokens.
func newEmulator(dir string) (*emulator.Emulator, error) {
	return emulator.New(emulator.Config{
		StateFile:      filepath.Join(dir, stateFile),
		Users:          []emulator.User{},
		AccessTokenTTL: tokenTTL,
	})
}

// seed gives n new test accounts an offline grant at an emulator whose
// state file is in dir, as the consent popup and /connect would (a code
// minted for an offline consent, exchanged by x/oauth2 with
// redirect_uri=postmessage), and writes each user's record into dir's
// credentials directory.
//
// The records are written directly (grant.EncodeRecord, a 0600 file named
// as the file store names a Google sub), not through file.Store.Update:
// its two fsyncs per record would make 100,000 users take minutes, and a
// cache needs no durability (an interrupted seeding is simply redone).
func seed(ctx context.Context, dir string, n int, log io.Writer) error {
	creds := filepath.Join(dir, credsDir)
	if err := os.Mkdir(creds, 0o700); err != nil {
		return err
	}
	emu, err := newEmulator(dir)
	if err != nil {
		return err
	}
	// The exchanges go to the emulator's handler in memory: the network
	// adds nothing to a seeding.
	hc := &http.Client{Transport: handlerTransport{emu.Handler()}}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)
	conf := &oauth2.Config{
		ClientID: emulator.DemoClientID, ClientSecret: emulator.DemoClientSecret, RedirectURL: "postmessage",
		Endpoint: oauth2.Endpoint{AuthURL: googlenet.AuthURL, TokenURL: googlenet.TokenURL, AuthStyle: oauth2.AuthStyleInParams},
	}
	var done atomic.Int64
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(2 * runtime.GOMAXPROCS(0))
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if err := seedOne(ctx, emu, conf, creds, i); err != nil {
				return err
			}
			if k := done.Add(1); k%20000 == 0 {
				fmt.Fprintf(log, "scale: %d/%d users seeded\n", k, n)
			}
			return nil
		})
	}
	err = g.Wait()
	// Close writes the final state file, with every grant.
	return errors.Join(err, emu.Close())
}

func seedOne(ctx context.Context, emu *emulator.Emulator, conf *oauth2.Config, creds string, i int) error {
	u, err := emu.AddUser(emulator.User{Email: fmt.Sprintf("user%06d@scale.example", i), Name: fmt.Sprintf("Scale User %d", i)})
	if err != nil {
		return err
	}
	if !allDigits(u.Sub) {
		return fmt.Errorf("emulator gave sub %q, not a Google-shaped id", u.Sub)
	}
	code, err := emu.MintCode(emulator.CodeRequest{ClientID: emulator.DemoClientID, Sub: u.Sub, Scope: scopes, AccessType: "offline"})
	if err != nil {
		return err
	}
	tok, err := conf.Exchange(ctx, code)
	if err != nil {
		return err
	}
	if tok.RefreshToken == "" {
		return fmt.Errorf("user %d: the first offline consent gave no refresh token", i)
	}
	now := time.Now().UTC()
	rec := &grant.Record{Version: grant.RecordVersion, Sub: u.Sub, Email: u.Email, Name: u.Name, Status: grant.StatusActive,
		Token: grant.TokenFrom(tok), Scopes: auth.GrantedScopes(tok), CreatedAt: now, UpdatedAt: now}
	return writeRecord(creds, rec)
}

// writeRecord writes rec where the file store keeps it: "<sub>.json" for a
// sub of digits (see internal/store/file).
func writeRecord(creds string, rec *grant.Record) error {
	data, err := grant.EncodeRecord(rec)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(creds, rec.Sub+".json"), data, 0o600)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// handlerTransport answers requests with an http.Handler, in memory.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

// RunConfig is one offline-fetch run.
type RunConfig struct {
	// Binary is the offline-fetch executable (see Build).
	Binary string
	// Latency is added by the emulator to every People API call.
	Latency time.Duration
	// Concurrency is offline-fetch's -concurrency.
	Concurrency int
	// Expire marks every stored access token expired (by the record's
	// expiry; the emulator still accepts it) before the run, so that every
	// user needs one refresh. The refreshed tokens are kept: the data set
	// stays consistent for the next run.
	Expire bool
	// Env is added to the child's environment (GODEBUG=gctrace=1, say).
	Env []string
	// Log receives progress; nil discards.
	Log io.Writer
}

// Result is what a run measured.
type Result struct {
	Users         int
	Latency       time.Duration
	Concurrency   int
	Wall          time.Duration // from starting the child to its exit
	Ideal         time.Duration // Users x Latency / Concurrency
	PeakRSS       int64         // the child's peak resident set size (VmHWM), bytes; 0 outside Linux
	ExitCode      int
	Summary       string // offline-fetch's summary line, "ok=N revoked=N failed=N skipped=N"
	OK            int    // users whose profile was fetched
	RefreshGrants int    // refresh_token grants the emulator answered
	PeopleCalls   int    // People API requests the emulator answered
	Stderr        string // the last 64 KiB of the child's stderr
}

// Ratio is Wall divided by Ideal (0 when there is no ideal).
func (r Result) Ratio() float64 {
	if r.Ideal <= 0 {
		return 0
	}
	return r.Wall.Seconds() / r.Ideal.Seconds()
}

var summaryLine = regexp.MustCompile(`ok=(\d+) revoked=\d+ failed=\d+ skipped=\d+`)

// Run starts the emulator on the data set, runs the binary over every
// user, and stops the emulator (which saves its state).
func (d *Dataset) Run(ctx context.Context, cfg RunConfig) (res Result, err error) {
	log := cfg.Log
	if log == nil {
		log = io.Discard
	}
	if cfg.Concurrency < 1 {
		return res, errors.New("scale: RunConfig.Concurrency must be at least 1")
	}
	res = Result{Users: d.Users, Latency: cfg.Latency, Concurrency: cfg.Concurrency,
		Ideal: time.Duration(int64(d.Users) * int64(cfg.Latency) / int64(cfg.Concurrency))}
	creds := filepath.Join(d.Dir, credsDir)

	// From here on the data set may change (refreshes, the emulator's
	// state); it is marked complete again only after a clean stop.
	m, err := readMarker(d.Dir)
	if err != nil {
		return res, fmt.Errorf("scale: data set %s: %w", d.Dir, err)
	}
	if err := os.Remove(filepath.Join(d.Dir, markerFile)); err != nil {
		return res, err
	}
	defer func() {
		if err == nil {
			err = writeMarker(d.Dir, m)
		}
	}()
	if cfg.Expire {
		if err := expireAll(ctx, creds); err != nil {
			return res, err
		}
	}

	emu, err := startEmulator(d.Dir)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, emu.Close()) }()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	srv := &http.Server{Handler: emu.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }() // returns when srv is closed
	defer srv.Close()
	emu.SetLatency(emulator.EndpointPeople, cfg.Latency)

	// Demo mode on the emulator, as on a fresh clone: no
	// client_secrets.json in the working directory, GOOGLE_EMULATOR_HOST
	// set.
	cmd := exec.CommandContext(ctx, cfg.Binary, "-credentials", creds, "-concurrency", strconv.Itoa(cfg.Concurrency))
	cmd.Dir = d.Dir
	cmd.Env = append(withoutEnv(os.Environ(), googlenet.EnvEmulatorHost), googlenet.EnvEmulatorHost+"="+ln.Addr().String())
	cmd.Env = append(cmd.Env, cfg.Env...)
	var stderr tailBuffer
	cmd.Stderr = &stderr // stdout (one line per user) goes to /dev/null
	tokens := "fresh"
	if cfg.Expire {
		tokens = "expired"
	}
	fmt.Fprintf(log, "scale: offline-fetch over %d users (%s tokens), People API latency %v, concurrency %d\n",
		d.Users, tokens, cfg.Latency, cfg.Concurrency)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("scale: starting %s: %w", cfg.Binary, err)
	}
	stop := make(chan struct{})
	peak := watchPeakRSS(cmd.Process.Pid, stop)
	runErr := cmd.Wait()
	res.Wall = time.Since(start)
	close(stop)
	res.PeakRSS = <-peak
	var exit *exec.ExitError
	switch {
	case errors.As(runErr, &exit):
		res.ExitCode = exit.ExitCode()
	case runErr != nil:
		return res, fmt.Errorf("scale: running %s: %w", cfg.Binary, runErr)
	}
	res.Stderr = stderr.String()
	if m := summaryLine.FindStringSubmatch(res.Stderr); m != nil {
		res.Summary = m[0]
		res.OK, _ = strconv.Atoi(m[1])
	}
	st := emu.Stats()
	res.RefreshGrants = st.Grants["refresh_token"]
	res.PeopleCalls = st.Endpoints[emulator.EndpointPeople].Requests
	if res.ExitCode != 0 || res.OK != d.Users {
		return res, fmt.Errorf("scale: offline-fetch exited %d, %q for %d users; stderr:\n%s", res.ExitCode, res.Summary, d.Users, stderr.String())
	}
	return res, nil
}

// startEmulator starts the emulator on the data set's state file and waits
// for the write of the state file that starting triggers, so that the
// (for 100,000 users, sizeable) write does not land in the middle of the
// measured run.
func startEmulator(dir string) (*emulator.Emulator, error) {
	path := filepath.Join(dir, stateFile)
	before, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	emu, err := newEmulator(dir)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if fi, err := os.Stat(path); err == nil && !fi.ModTime().Equal(before.ModTime()) {
			return emu, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	emu.Close()
	return nil, errors.New("scale: the emulator did not write its state file within a minute of starting")
}

// expireAll sets every record's access token expiry an hour in the past.
func expireAll(ctx context.Context, creds string) error {
	ents, err := os.ReadDir(creds)
	if err != nil {
		return err
	}
	past := time.Now().Add(-time.Hour).UTC()
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(2 * runtime.GOMAXPROCS(0))
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !allDigits(name) || ctx.Err() != nil {
			continue
		}
		g.Go(func() error {
			b, err := os.ReadFile(filepath.Join(creds, e.Name()))
			if err != nil {
				return err
			}
			rec, err := grant.DecodeRecord(b)
			if err != nil {
				return err
			}
			rec.Token.Expiry = past
			return writeRecord(creds, rec)
		})
	}
	return g.Wait()
}

func withoutEnv(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// tailBuffer keeps the last 64 KiB written to it.
type tailBuffer struct{ b bytes.Buffer }

func (t *tailBuffer) Write(p []byte) (int, error) {
	const keep = 64 << 10
	t.b.Write(p)
	if t.b.Len() > 2*keep {
		tail := bytes.Clone(t.b.Bytes()[t.b.Len()-keep:])
		t.b.Reset()
		t.b.Write(tail)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return t.b.String() }

// Build compiles cmd/offline-fetch into dir, from the signin module's own
// directory (so with its go.mod, as a user builds it), and returns the
// binary's path.
func Build(ctx context.Context, dir string) (string, error) {
	root, err := ModuleRoot(ctx)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "offline-fetch")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/offline-fetch")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/offline-fetch: %w\n%s", err, out)
	}
	return bin, nil
}

// ModuleRoot returns the directory of the example.com/signin module.
func ModuleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "example.com/signin").Output()
	if err != nil {
		return "", fmt.Errorf("finding the signin module (run from inside the bench module): %w", err)
	}
	dir := strings.TrimSpace(string(out))
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("no go.mod in %q", dir)
		}
		return "", err
	}
	return dir, nil
}
