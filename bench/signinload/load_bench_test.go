package signinload

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/api/idtoken"
	"google.golang.org/api/option"

	"example.com/signin/internal/emulator"
	"example.com/signin/internal/googlenet"
	"example.com/signin/internal/pgtest"
)

// BenchmarkTokenSignIn measures POST /tokensignin under load over loopback
// HTTP: 64 connections, each request a fresh ID token minted by the
// emulator (minting is not timed), against the hand-written baseline
// (Handwritten, in this process) and signin (its binary, a process of its
// own, demo mode on the same emulator, -log-level warn) with the file store
// (file) or PostgreSQL (postgres; skipped without a database, see
// internal/pgtest). Each iteration is a round of 4,000 tokens, which both
// servers get, in turns of 1,000, which of them goes first alternating, so
// that both see the same load on a shared machine; each keeps its 64
// connections open for the whole run, as wrk does. Metrics: each server's requests per second over
// the rounds, and their ratio (signin-x: signin's throughput over the
// baseline's, the goal of issue 19 is >= 0.9 on the file store and >= 0.8
// on PostgreSQL), and each server process's CPU time per request. Run with
// -benchtime Nx (N rounds).
//
// In file and postgres, the tokens are those of 200 users, each signing in
// again and again (every token fresh): the grant's status that signin reads
// at each sign-in is then in its PostgreSQL cache, kept current by
// LISTEN/NOTIFY. postgres-new-users gives every request a user who has
// never signed in, so that each sign-in reads PostgreSQL: the cost of the
// cache's misses.
func BenchmarkTokenSignIn(b *testing.B) {
	for _, bc := range []struct {
		name, backend string
		newUsers      bool
	}{
		{"file", "file", false},
		{"postgres", "postgres", false},
		{"postgres-new-users", "postgres", true},
	} {
		b.Run(bc.name, func(b *testing.B) { benchTokenSignIn(b, bc.backend, bc.newUsers) })
	}
}

const (
	connections = 64
	roundSize   = 4000 // requests per server per round
	chunkSize   = 1000 // requests per server per turn
	users       = 200
)

func benchTokenSignIn(b *testing.B, backend string, newUsers bool) {
	emu, emuAddr := startEmulator(b)
	subs := make([]string, users)
	for i := range subs {
		u, err := emu.AddUser(emulator.User{Email: fmt.Sprintf("load%d@example.com", i), Name: fmt.Sprintf("Load %d", i)})
		if err != nil {
			b.Fatal(err)
		}
		subs[i] = u.Sub
	}

	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keyEnv := "SESSION_KEYS=" + base64.StdEncoding.EncodeToString(key)
	// The baseline is a process of its own too: this test binary, run as
	// the server (TestMain).
	baseline := startServer(b, os.Args[0], []string{envHandwritten + "=" + emuAddr, keyEnv})

	creds := filepath.Join(b.TempDir(), "credentials")
	if err := os.Mkdir(creds, 0o700); err != nil {
		b.Fatal(err)
	}
	args := []string{"-credentials", creds, "-emulator-addr", emuAddr, "-log-level", "warn"}
	env := []string{keyEnv}
	if backend == "postgres" {
		sealKey := make([]byte, 32)
		_, _ = rand.Read(sealKey)
		args = append(args, "-database", pgtest.URL(b))
		env = append(env, "SIGNIN_ENCRYPTION_KEYS="+base64.StdEncoding.EncodeToString(sealKey))
	}
	app := startServer(b, signinBinary(b), env, args...)

	added := 0
	mint := func(n int) []string {
		toks := make([]string, n)
		for i := range toks {
			sub := subs[i%len(subs)]
			if newUsers {
				u, err := emu.AddUser(emulator.User{Email: fmt.Sprintf("new%d@example.com", added), Name: fmt.Sprintf("New %d", added)})
				if err != nil {
					b.Fatal(err)
				}
				added++
				sub = u.Sub
			}
			t, err := emu.MintIDToken(emulator.DemoClientID, sub, "")
			if err != nil {
				b.Fatal(err)
			}
			toks[i] = t
		}
		return toks
	}
	// Each server keeps its connections for the whole run, as wrk does.
	baseClient, appClient := newLoadClient(b), newLoadClient(b)
	// Warm both: keys fetched, connections open, records looked up once.
	warm := mint(connections * 2)
	load(b, baseClient, baseline.base, warm)
	load(b, appClient, app.base, warm)

	var baseDur, appDur, baseCPU, appCPU time.Duration
	run := func(srv server, c *http.Client, toks []string, dur, cpu *time.Duration) {
		c0 := srv.cpu()
		*dur += load(b, c, srv.base, toks)
		*cpu += srv.cpu() - c0
	}
	var n int
	turn := 0
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		toks := mint(roundSize)
		b.StartTimer()
		// The servers take turns in chunks, which of them goes first
		// alternating, so that a burst of other work on the machine falls
		// on both rather than on one server's whole round.
		for chunk := range slices.Chunk(toks, chunkSize) {
			if turn%2 == 0 {
				run(baseline, baseClient, chunk, &baseDur, &baseCPU)
				run(app, appClient, chunk, &appDur, &appCPU)
			} else {
				run(app, appClient, chunk, &appDur, &appCPU)
				run(baseline, baseClient, chunk, &baseDur, &baseCPU)
			}
			turn++
		}
		n += len(toks)
	}
	baseRPS := float64(n) / baseDur.Seconds()
	appRPS := float64(n) / appDur.Seconds()
	b.ReportMetric(baseRPS, "handwritten-req/s")
	b.ReportMetric(appRPS, "signin-req/s")
	b.ReportMetric(appRPS/baseRPS, "signin-x")
	// The servers' own CPU per request: what the shared machine's load
	// does not change much.
	b.ReportMetric(float64(baseCPU.Microseconds())/float64(n), "handwritten-cpu-µs/req")
	b.ReportMetric(float64(appCPU.Microseconds())/float64(n), "signin-cpu-µs/req")
}

// load posts each token once to base's /tokensignin over connections
// keep-alive connections and returns the time it took. Any answer but 200
// fails the benchmark.
// newLoadClient is a client of up to connections connections to one
// server, kept open (and closed at the end of b).
func newLoadClient(b *testing.B) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: connections, MaxConnsPerHost: connections, DisableCompression: true}
	b.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

func load(b *testing.B, c *http.Client, base string, toks []string) time.Duration {
	b.Helper()
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range connections {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(toks) || failed.Load() != nil {
					return
				}
				body := "credential=" + url.QueryEscape(toks[i])
				req, _ := http.NewRequest(http.MethodPost, base+"/tokensignin", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("X-Requested-With", "XMLHttpRequest")
				resp, err := c.Do(req)
				if err != nil {
					failed.Store(err.Error())
					return
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Store(fmt.Sprintf("%s: %d %s", base, resp.StatusCode, bytes.TrimSpace(got)))
					return
				}
			}
		})
	}
	wg.Wait()
	d := time.Since(start)
	if f := failed.Load(); f != nil {
		b.Fatal(f)
	}
	return d
}

func startEmulator(b *testing.B) (*emulator.Emulator, string) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	emu, err := emulator.New(emulator.Config{Users: []emulator.User{}, ControlHosts: []string{addr}})
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: emu.Handler()}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { srv.Close(); emu.Close() })
	// A request through the address sets the base the tokens are minted
	// for (the issuer stays Google's).
	resp, err := http.Get("http://" + addr + "/.well-known/openid-configuration")
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	return emu, addr
}

var build struct {
	once sync.Once
	bin  string
	err  error
}

// signinBinary builds signin once and returns its path.
func signinBinary(b *testing.B) string {
	b.Helper()
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "signinload")
		if err != nil {
			build.err = err
			return
		}
		build.bin = filepath.Join(dir, "signin")
		// From the main module (this package's directory is
		// bench/signinload), with its own go.sum.
		cmd := exec.Command("go", "build", "-o", build.bin, "./cmd/signin")
		cmd.Dir = filepath.Join("..", "..")
		out, err := cmd.CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		b.Fatal(build.err)
	}
	return build.bin
}

// server is a started server process.
type server struct {
	base string
	pid  int
}

// cpu returns the CPU time the process has used so far (user and system),
// from /proc (Linux; zero elsewhere).
func (s server) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces), ")": state
	// is field 3, utime 14 and stime 15, in clock ticks (100 a second on
	// Linux).
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	var ut, st int64
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// startServer starts bin with -addr on a free loopback port (and args),
// and returns its base URL once /readyz answers 200: signin listens before
// its database is migrated and answers 503 database_unavailable meanwhile,
// which a round started at /healthz would get.
func startServer(b *testing.B, bin string, env []string, args ...string) server {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	work := b.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, append([]string{"-addr", addr}, args...)...)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cancel(); _ = cmd.Wait() })
	base := "http://" + addr
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return server{base, cmd.Process.Pid}
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not answer: %v\n%s", filepath.Base(bin), err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// envHandwritten, set to the emulator's address, makes the test binary the
// hand-written server (with SESSION_KEYS as its key), listening on -addr.
const envHandwritten = "SIGNINLOAD_HANDWRITTEN_EMULATOR"

// TestMain runs the hand-written server when asked to (envHandwritten),
// else the benchmarks, and then stops the throwaway PostgreSQL server they
// may have started.
func TestMain(m *testing.M) {
	if emuAddr := os.Getenv(envHandwritten); emuAddr != "" {
		if err := serveHandwritten(emuAddr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	pgtest.Main(m)
}

func serveHandwritten(emuAddr string) error {
	var addr string
	for i, a := range os.Args {
		if a == "-addr" && i+1 < len(os.Args) {
			addr = os.Args[i+1]
		}
	}
	key, err := base64.StdEncoding.DecodeString(os.Getenv("SESSION_KEYS"))
	if err != nil {
		return err
	}
	gnet, err := googlenet.New(emuAddr, googlenet.Options{})
	if err != nil {
		return err
	}
	v, err := idtoken.NewValidator(context.Background(), option.WithHTTPClient(gnet.HTTPClient()))
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/", Handwritten(v, emulator.DemoClientID, key))
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}
