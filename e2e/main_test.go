package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binaries are the commands under test, built once by TestMain. It is the
// package's only shared state: set before any test runs, read-only after.
var binaries struct {
	signin, offlineFetch, emulator, admin string
}

// TestMain builds the real binaries once, as a user would with go build, so
// that every test runs exactly what ships (flags, demo mode, logging), not a
// test double wired up in-process.
func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "signin-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)

	// go test puts $GOROOT/bin first on the test binary's PATH, so this is
	// the go command that is running the tests.
	goTool, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: cannot find the go command to build the binaries:", err)
		return 1
	}
	// One go build for the four commands: it builds them in parallel and,
	// with -o naming a directory, writes each as <dir>/<command>.
	cmd := exec.Command(goTool, "build", "-o", dir+string(filepath.Separator),
		"./cmd/signin", "./cmd/offline-fetch", "./cmd/google-emulator", "./cmd/signin-admin")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build of the commands failed: %v\n%s", err, out)
		return 1
	}
	binaries.signin = filepath.Join(dir, "signin")
	binaries.offlineFetch = filepath.Join(dir, "offline-fetch")
	binaries.emulator = filepath.Join(dir, "google-emulator")
	binaries.admin = filepath.Join(dir, "signin-admin")
	return m.Run()
}

// moduleRoot is the directory holding go.mod, found from the test's working
// directory (the package directory under go test).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// stack is one emulator and one signin server, as separate processes, with
// the signin's working directory (and so its credentials/) fresh for the
// test.
type stack struct {
	// EmuAddr is the emulator's host:port (GOOGLE_EMULATOR_HOST).
	EmuAddr string
	// EmuURL is the emulator's base URL, as the browser and the control
	// API client reach it.
	EmuURL string
	// AppURL is the signin app's base URL as the browser uses it. It is
	// on "localhost" while the emulator is on "127.0.0.1", so that the two
	// are different sites to the browser, as the app and Google are: the
	// cookie jars are separate and GIS redirect mode really is a cross-site
	// form post.
	AppURL string
	// WorkDir is the signin's (and offline-fetch's) working directory.
	WorkDir string
	// CredDir is the signin's credentials directory.
	CredDir string

	Emu *emulatorClient
}

// startStack starts a google-emulator and a signin in demo mode pointed at
// it with GOOGLE_EMULATOR_HOST, waits until both answer, and stops them when
// the test ends. On failure their logs go to the test log.
func startStack(t *testing.T) *stack {
	t.Helper()
	return startStackWith(t)
}

// startStackWith is startStack with more flags for signin.
func startStackWith(t *testing.T, signinArgs ...string) *stack {
	t.Helper()
	if binaries.signin == "" {
		t.Fatal("binaries not built: TestMain did not run")
	}
	s := &stack{WorkDir: t.TempDir()}
	s.CredDir = filepath.Join(s.WorkDir, "credentials")

	// Both commands listen on a port the kernel picks (":0") and print
	// where: no port is chosen here that another process could take first.
	emu := startProcess(t, "google-emulator", binaries.emulator, s.WorkDir, nil, "-addr", "127.0.0.1:0")
	s.EmuURL = emu.waitOutput(t, emulatorListening)
	s.EmuAddr = strings.TrimPrefix(s.EmuURL, "http://")
	waitHTTP(t, emu, s.EmuURL+"/emulator/v1/stats")

	// No client_secrets.json in WorkDir: demo mode, with the demo client
	// the emulator registers by default.
	app := startProcess(t, "signin", binaries.signin, s.WorkDir, s.env(), append([]string{
		"-addr", "127.0.0.1:0",
		"-credentials", s.CredDir,
		"-log-level", "debug",
	}, signinArgs...)...)
	served := app.waitOutput(t, signinServing)
	waitHTTP(t, app, served+"/healthz")
	u, err := url.Parse(served)
	if err != nil {
		t.Fatalf("signin serves at %q: %v", served, err)
	}
	s.AppURL = "http://localhost:" + u.Port()

	s.Emu = newEmulatorClient(s.EmuURL)
	return s
}

// env is the environment for the app's commands: the test's own, less
// anything that would change what is under test, plus the emulator.
func (s *stack) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "GOOGLE_EMULATOR_HOST", "SESSION_KEYS", "SIGNIN_ENCRYPTION_KEYS", "DATABASE_URL":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GOOGLE_EMULATOR_HOST="+s.EmuAddr)
}

// offlineFetch runs the offline-fetch binary as a cron job would, in the
// signin's working directory against the same credentials, and returns its
// exit code, stdout and stderr.
func (s *stack) offlineFetch(ctx context.Context, t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return s.offlineFetchEnv(ctx, t, s.env(), args...)
}

// offlineFetchEnv is offlineFetch with the given environment.
func (s *stack) offlineFetchEnv(ctx context.Context, t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, binaries.offlineFetch, append([]string{"-credentials", s.CredDir}, args...)...)
	cmd.Dir = s.WorkDir
	cmd.Env = env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("offline-fetch did not run: %v", err)
	}
	return code, out.String(), errOut.String()
}

// What the commands print once they listen: google-emulator on stdout,
// signin in its start-up log.
var (
	emulatorListening = regexp.MustCompile(`Google emulator listening on (http://127\.0\.0\.1:[0-9]+)`)
	signinServing     = regexp.MustCompile(`msg=serving url=(http://127\.0\.0\.1:[0-9]+)`)
)

// process is a command under test running in the background.
type process struct {
	name string
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{} // closed when the process has exited
	err  error         // the exit status, once done is closed
}

// startProcess starts bin with args in dir. It is stopped (SIGTERM, then
// SIGKILL) when the test ends, and its output goes to the test log if the
// test failed or the process died early.
func startProcess(t *testing.T, name, bin, dir string, env []string, args ...string) *process {
	t.Helper()
	p := &process{name: name, logs: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	p.cmd.Env = env
	p.cmd.Stdout = p.logs
	p.cmd.Stderr = p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("---- %s output ----\n%s---- end of %s output ----", name, p.logs.String(), name)
		}
	})
	return p
}

// stop asks the process to shut down gracefully, and kills it if it does
// not within a few seconds.
func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitOutput waits until the process prints a line matching re, and
// returns the regexp's first group. It polls the captured output: the
// process writes it from its own goroutines.
func (p *process) waitOutput(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if m := re.FindStringSubmatch(p.logs.String()); m != nil {
			return m[1]
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before it was ready: %v\n%s", p.name, p.err, p.logs.String())
		case <-deadline:
			t.Fatalf("%s printed nothing matching %q within 30s:\n%s", p.name, re, p.logs.String())
		case <-tick.C:
		}
	}
}

// waitHTTP waits until url answers 200, failing the test if the process
// exits first or it takes unreasonably long.
func waitHTTP(t *testing.T, p *process, url string) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s did not answer 200 within 30s (last: %v)\n%s", p.name, url, err, p.logs.String())
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before it was ready: %v\n%s", p.name, p.err, p.logs.String())
		case <-tick.C:
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a
// process's stdout and stderr and reads from the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
