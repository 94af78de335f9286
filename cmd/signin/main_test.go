package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"

	"example.com/signin/internal/config"
	"example.com/signin/internal/emulator"
	"example.com/signin/internal/googlenet"
)

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr bool
		check   func(t *testing.T, c Config)
	}{
		{name: "defaults", check: func(t *testing.T, c Config) {
			if c.Addr != "localhost:9021" || c.CredentialsDir != "credentials" || c.SecretsExplicit {
				t.Errorf("defaults: %+v", c)
			}
			if c.SessionKeyFile != filepath.Join("credentials", ".session-key") {
				t.Errorf("session key file %q", c.SessionKeyFile)
			}
		}},
		{name: "explicit client file is not demo-able", args: []string{"-client-secrets", "x.json"}, check: func(t *testing.T, c Config) {
			if !c.SecretsExplicit {
				t.Error("-client-secrets given but not marked explicit")
			}
		}},
		{name: "other client ids", args: []string{"-other-client-ids", " a.apps ,b.apps,"}, check: func(t *testing.T, c Config) {
			if strings.Join(c.OtherClientIDs, "|") != "a.apps|b.apps" {
				t.Errorf("ids %q", c.OtherClientIDs)
			}
		}},
		{name: "negative skew", args: []string{"-clock-skew", "-1s"}, wantErr: true},
		{name: "huge skew", args: []string{"-clock-skew", "1h"}, wantErr: true},
		{name: "bad log level", args: []string{"-log-level", "loud"}, wantErr: true},
		{name: "stray argument", args: []string{"serve"}, wantErr: true},
		{name: "unknown flag", args: []string{"-nope"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseFlags(tc.args, func(string) string { return "" }, io.Discard)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

// start runs the server as main would, on a free port, in a temp directory,
// and returns its base URL. It stops at the end of the test.
func start(t *testing.T, env map[string]string, args ...string) (string, Config) {
	t.Helper()
	base, cfg, stop := startIn(t, t.TempDir(), env, args...)
	t.Cleanup(stop)
	return base, cfg
}

// startIn is start in a given directory, with the stop function returned.
func startIn(t *testing.T, dir string, env map[string]string, args ...string) (string, Config, func()) {
	t.Helper()
	args = append([]string{
		"-addr", "127.0.0.1:0",
		"-credentials", filepath.Join(dir, "credentials"),
		"-client-secrets", filepath.Join(dir, "client_secrets.json"),
		"-emulator-addr", "127.0.0.1:0",
	}, args...)
	cfg, err := ParseFlags(args, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// ParseFlags saw -client-secrets; this test wants demo mode, as a
	// fresh clone without the file has.
	cfg.SecretsExplicit = false
	ready := make(chan string, 1)
	cfg.Ready = func(u string) { ready <- u }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	select {
	case u := <-ready:
		return u, cfg, stop
	case err := <-done:
		t.Fatalf("Run ended before serving: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}
	return "", cfg, stop
}

// gisScript returns the GIS script URL the page loads.
func gisScript(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /: %d", resp.StatusCode)
	}
	doc, err := html.Parse(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var src string
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "script" {
			for _, a := range n.Attr {
				if a.Key == "src" && strings.HasSuffix(a.Val, "/gsi/client") {
					src = a.Val
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if src == "" {
		t.Fatal("the page loads no GIS script")
	}
	return src
}

// A fresh clone with no client_secrets.json gets a working demo: the
// server starts its own emulator and the page loads GIS from it.
func TestDemoModeStartsItsOwnEmulator(t *testing.T) {
	base, cfg := start(t, nil)
	src := gisScript(t, base)
	u, err := url.Parse(src)
	if err != nil || u.Scheme != "http" || !strings.HasPrefix(u.Host, "127.0.0.1:") {
		t.Fatalf("demo GIS script %q is not a local emulator", src)
	}
	resp, err := http.Get(src)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "javascript") {
		t.Errorf("emulator's GIS script: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// Restarts keep sessions: the key is stored, owner-only.
	fi, err := os.Stat(cfg.SessionKeyFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("session key file: %v %v", fi, err)
	}
}

// In demo mode signin says where its emulator runs, in the credentials
// directory (offline-fetch reads it), while it runs.
func TestDemoPublishesTheEmulatorAddress(t *testing.T) {
	base, cfg, stop := startIn(t, t.TempDir(), nil)
	u, err := url.Parse(gisScript(t, base))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cfg.CredentialsDir, config.EmulatorAddrFile)
	got, err := config.PublishedEmulatorAddr(cfg.CredentialsDir)
	if err != nil || got != u.Host {
		t.Errorf("published emulator address %q, %v; want %q", got, err, u.Host)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v %v", path, fi, err)
	}
	stop()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("%s kept after signin stopped: %v", path, err)
	}
}

// With GOOGLE_EMULATOR_HOST the server uses that emulator, and a full
// sign-in works over HTTP.
func TestSignInAgainstEmulatorFromEnv(t *testing.T) {
	emu, err := emulator.New(emulator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	es := httptest.NewServer(emu.Handler())
	defer es.Close()
	host := strings.TrimPrefix(es.URL, "http://")
	base, _ := start(t, map[string]string{googlenet.EnvEmulatorHost: host})

	if got := gisScript(t, base); got != es.URL+"/gsi/client" {
		t.Errorf("GIS script %q, want the emulator's %q", got, es.URL+"/gsi/client")
	}
	sub := emu.Users()[0].Sub
	cred, err := emu.MintIDToken(emulator.DemoClientID, sub, "")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/tokensignin", strings.NewReader(url.Values{"credential": {cred}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Requested-With", "XmlHttpRequest")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), sub) {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
	}
	if n := emu.Stats().Endpoints["certs"].Requests; n != 1 {
		t.Errorf("key fetches at the emulator = %d, want 1", n)
	}
}

// The demo survives a restart: the session (its key is stored) and the
// offline grant (the in-process emulator saves its state) still work, so
// offline-fetch and the page keep working after signin is restarted.
func TestDemoSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Jar: jar}

	base, _, stop := startIn(t, dir, nil)
	emu := strings.TrimSuffix(gisScript(t, base), "/gsi/client")
	var users struct{ Users []struct{ Sub string } }
	getJSON(t, client, http.MethodGet, emu+"/emulator/v1/users", "", &users)
	var minted struct{ Code string }
	getJSON(t, client, http.MethodPost, emu+"/emulator/v1/codes", `{"client_id":"`+emulator.DemoClientID+`","sub":"`+users.Users[0].Sub+`","access_type":"offline"}`, &minted)
	var me struct{ Offline bool }
	postXHR(t, client, base+"/connect", url.Values{"code": {minted.Code}}, &me)
	if !me.Offline {
		t.Fatal("first consent did not give offline access")
	}
	stop()

	base, _, stop = startIn(t, dir, nil)
	defer stop()
	// Cookies are not told apart by port, so the jar sends the session to
	// the restarted server on its new port.
	resp, err := client.Get(base + "/api/profile")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "people/"+users.Users[0].Sub) {
		t.Fatalf("after restart /api/profile: %d %s", resp.StatusCode, body)
	}
}

func getJSON(t *testing.T, c *http.Client, method, u, body string, out any) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	decode(t, c, req, out)
}

func postXHR(t *testing.T, c *http.Client, u string, form url.Values, out any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Requested-With", "XmlHttpRequest")
	decode(t, c, req, out)
}

func decode(t *testing.T, c *http.Client, req *http.Request, out any) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d %s", req.Method, req.URL, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s %s: %v in %s", req.Method, req.URL, err, b)
	}
}

// lockedBuffer is a bytes.Buffer safe for the server's logger and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestStoreWarningsReachTheLog: the file store's documented warnings (here,
// a credentials directory others could read, tightened to 0700) arrive in
// signin's log.
func TestStoreWarningsReachTheLog(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	if err := os.Mkdir(creds, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(creds, 0o755); err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	cfg, err := ParseFlags([]string{"-addr", "127.0.0.1:0", "-credentials", creds, "-emulator-addr", "127.0.0.1:0",
		"-client-secrets", filepath.Join(dir, "client_secrets.json")}, func(string) string { return "" }, &logs)
	if err != nil {
		t.Fatal(err)
	}
	cfg.SecretsExplicit = false // demo mode
	ready := make(chan string, 1)
	cfg.Ready = func(u string) { ready <- u }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "credentials directory was accessible to other users") || !strings.Contains(logs.String(), "component=store") {
		t.Errorf("the store's warning is not in the log:\n%s", logs.String())
	}
}

// What signin says when it cannot start names the flag to change, and
// says each thing once; the exit status tells usage errors (2) from
// start-up failures (1).
func TestMainErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		want     []string // each in stderr exactly once
		skipRoot bool
	}{
		{name: "unknown flag", args: []string{"-nope"}, code: 2, want: []string{"flag provided but not defined: -nope"}},
		{name: "bad value", args: []string{"-clock-skew", "soon"}, code: 2, want: []string{`invalid value "soon" for flag -clock-skew`}},
		{name: "dev directory missing", args: []string{"-dev", "/nonexistent"}, code: 2, want: []string{"-dev /nonexistent: "}},
		{name: "address in use", args: []string{"-addr", busy.Addr().String()}, code: 1,
			want: []string{"-addr " + busy.Addr().String() + ": the address is in use", "choose another address with -addr"}},
		{name: "credentials not writable", code: 2, skipRoot: true,
			want: []string{"the directory is not writable", "with -credentials"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skipRoot && os.Geteuid() == 0 {
				t.Skip("root can write to any directory")
			}
			creds := filepath.Join(t.TempDir(), "credentials")
			if err := os.Mkdir(creds, 0o700); err != nil {
				t.Fatal(err)
			}
			if tc.name == "credentials not writable" {
				if err := os.Chmod(creds, 0o500); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.Chmod(creds, 0o700) })
			}
			args := append([]string{"-credentials", creds, "-emulator-addr", "127.0.0.1:0", "-addr", "127.0.0.1:0"}, tc.args...)
			var stderr strings.Builder
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			code := Main(ctx, args, func(string) string { return "" }, &stderr)
			if code != tc.code {
				t.Errorf("exit status %d, want %d\n%s", code, tc.code, stderr.String())
			}
			for _, w := range tc.want {
				if n := strings.Count(stderr.String(), w); n != 1 {
					t.Errorf("stderr says %q %d times, want once:\n%s", w, n, stderr.String())
				}
			}
			if strings.Contains(stderr.String(), "session key file") {
				t.Errorf("stderr blames the session key file:\n%s", stderr.String())
			}
		})
	}
}
