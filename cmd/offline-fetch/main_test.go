package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"example.com/signin/internal/auth"
	"example.com/signin/internal/config"
	"example.com/signin/internal/emulator"
	"example.com/signin/internal/googlenet"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/store/file"
)

// connectUser stores sub's offline credentials as /connect would: a real
// code exchange at the emulator, kept in the file store.
func connectUser(t *testing.T, emu *emulator.Emulator, host, dir, sub string) {
	t.Helper()
	code, err := emu.MintCode(emulator.CodeRequest{ClientID: emulator.DemoClientID, Sub: sub, Scope: "openid email profile", AccessType: "offline", RedirectURI: "postmessage"})
	if err != nil {
		t.Fatal(err)
	}
	n, err := googlenet.New(host, googlenet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := auth.NewGoogle(auth.GoogleConfig{Client: &auth.Client{ID: emulator.DemoClientID, Secret: emulator.DemoClientSecret}, HTTPClient: n.HTTPClient()})
	tok, err := g.Exchange(context.Background(), code)
	if err != nil {
		t.Fatal(err)
	}
	st, err := file.Open(file.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := grant.New(grant.Config{Store: st, Google: g}).SaveExchange(context.Background(), sub, grant.Identity{}, tok); err != nil {
		t.Fatal(err)
	}
}

func TestMainExitStatus(t *testing.T) {
	emu, err := emulator.New(emulator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	es := httptest.NewServer(emu.Handler())
	defer es.Close()
	host := strings.TrimPrefix(es.URL, "http://")
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	users := emu.Users()
	for _, u := range users {
		connectUser(t, emu, host, creds, u.Sub)
	}
	env := func(k string) string {
		if k == googlenet.EnvEmulatorHost {
			return host
		}
		return ""
	}
	// No -client-secrets: the package directory has no client_secrets.json,
	// so this is demo mode on the emulator of GOOGLE_EMULATOR_HOST, as on a
	// fresh clone.
	run := func(args ...string) (code int, stdout, stderr string) {
		var out, errb bytes.Buffer
		code = Main(context.Background(), append([]string{"-credentials", creds}, args...), env, &out, &errb, false)
		return code, out.String(), errb.String()
	}

	code, out, errOut := run("-json")
	if code != 0 {
		t.Fatalf("all users fine: exit %d\n%s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(users) {
		t.Fatalf("%d lines for %d users:\n%s", len(lines), len(users), out)
	}
	for _, l := range lines {
		var r struct{ Sub, Email, Status string }
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.Status != "ok" || r.Email == "" {
			t.Errorf("line %q: %v", l, err)
		}
	}

	code, out, _ = run("-user", users[1].Sub)
	if code != 0 || !strings.HasPrefix(out, users[1].Sub+"\t") || strings.Count(out, "\n") != 1 {
		t.Errorf("-user: exit %d, output %q", code, out)
	}

	// The user removes access in their Google account; the next run marks
	// them revoked, goes on with the others, and exits 1.
	emu.RevokeUser(users[0].Sub)
	code, out, errOut = run()
	if code != 1 {
		t.Errorf("one revoked user: exit %d, want 1", code)
	}
	if strings.Count(out, "\n") != len(users)-1 || !strings.Contains(errOut, "revoked=1") {
		t.Errorf("one revoked user: stdout %q, stderr %q", out, errOut)
	}
	for _, secret := range []string{emulator.DemoClientSecret, "ya29.", "1//"} {
		if strings.Contains(out+errOut, secret) {
			t.Errorf("output contains %q", secret)
		}
	}

	// Out of range either way: one wording, exit 2.
	for _, n := range []string{"0", "2000"} {
		if code, _, errOut := run("-concurrency", n); code != 2 || errOut != "offline-fetch: -concurrency "+n+": want 1 to 1024\n" {
			t.Errorf("-concurrency %s: exit %d, want 2; stderr %q", n, code, errOut)
		}
	}
	if code, _, _ := run("stray"); code != 2 {
		t.Errorf("stray argument: exit %d, want 2", code)
	}
	// The flag package prints the error and the usage; it is not said twice.
	if code, _, errOut := run("-nope"); code != 2 || strings.Count(errOut, "flag provided but not defined: -nope") != 1 {
		t.Errorf("unknown flag: exit %d, stderr %q", code, errOut)
	}
}

// In demo mode with no emulator running, offline-fetch says what to do and
// exits 2 instead of failing every user one by one.
func TestDemoWithoutEmulator(t *testing.T) {
	var out, errb bytes.Buffer
	env := func(k string) string {
		if k == googlenet.EnvEmulatorHost {
			return "127.0.0.1:1" // nothing listens on port 1
		}
		return ""
	}
	code := Main(context.Background(), []string{"-credentials", t.TempDir()}, env, &out, &errb, false)
	if code != 2 || !strings.Contains(errb.String(), "127.0.0.1:1, which GOOGLE_EMULATOR_HOST names") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}

	// signin said where its emulator is, but it has stopped (killed, say,
	// so it could not remove the file): say so, and name no Google URL
	// for what was a dial of the emulator.
	creds := t.TempDir()
	if _, err := config.PublishEmulatorAddr(creds, "127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	code = Main(context.Background(), []string{"-credentials", creds}, func(string) string { return "" }, &out, &errb, false)
	msg := errb.String()
	if code != 2 || !strings.Contains(msg, "signin said its Google emulator is at 127.0.0.1:1") ||
		!strings.Contains(msg, "go run ./cmd/signin") || strings.Contains(msg, "google.com") {
		t.Errorf("stale address: exit %d, stderr %q", code, msg)
	}
}

// offline-fetch finds the demo's emulator where signin started it (any
// -emulator-addr), with no flag or variable.
func TestDemoFindsSigninsEmulator(t *testing.T) {
	emu, err := emulator.New(emulator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	es := httptest.NewServer(emu.Handler())
	defer es.Close()
	host := strings.TrimPrefix(es.URL, "http://")
	creds := filepath.Join(t.TempDir(), "credentials")
	users := emu.Users()
	for _, u := range users {
		connectUser(t, emu, host, creds, u.Sub)
	}
	// What signin -emulator-addr <host> does in demo mode.
	if _, err := config.PublishEmulatorAddr(creds, host); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"-credentials", creds}, func(string) string { return "" }, &out, &errb, false)
	if code != 0 || strings.Count(out.String(), "\n") != len(users) {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

// A mistyped -credentials is an error (exit 2), not an empty directory
// created and a run of nobody.
func TestMissingCredentialsDirectory(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "credentails")
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"-credentials", missing}, func(string) string { return "" }, &out, &errb, false)
	if code != 2 || !strings.Contains(errb.String(), "-credentials "+missing+": no such file or directory") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("the mistyped directory was created: %v", err)
	}
}
