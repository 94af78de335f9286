package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.com/signin/internal/emulator"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseFlags(t *testing.T) {
	web := writeFile(t, "web.json", `{"web":{"client_id":"1-web.apps.googleusercontent.com","client_secret":"GOCSPX-1","javascript_origins":["http://localhost:9021"],"redirect_uris":[]}}`)
	other := writeFile(t, "other.json", `{"web":{"client_id":"2-web.apps.googleusercontent.com","client_secret":"GOCSPX-2"}}`)
	noSecret := writeFile(t, "nosecret.json", `{"web":{"client_id":"3-web.apps.googleusercontent.com"}}`)
	notJSON := writeFile(t, "bad.json", `client_id=x`)

	tests := []struct {
		name      string
		args      []string
		wantErr   bool
		addr      string
		clientIDs []string
		ttl       time.Duration
		state     string
	}{
		{name: "defaults", args: nil, addr: "127.0.0.1:9022", ttl: 3599 * time.Second},
		{name: "addr and ttl", args: []string{"-addr", ":0", "-access-token-ttl", "90s"}, addr: ":0", ttl: 90 * time.Second},
		{name: "state", args: []string{"-state", "/tmp/x.json"}, addr: "127.0.0.1:9022", ttl: 3599 * time.Second, state: "/tmp/x.json"},
		{name: "one client", args: []string{"-clients", web}, addr: "127.0.0.1:9022", ttl: 3599 * time.Second, clientIDs: []string{"1-web.apps.googleusercontent.com"}},
		{name: "comma list", args: []string{"-clients", web + "," + other}, addr: "127.0.0.1:9022", ttl: 3599 * time.Second, clientIDs: []string{"1-web.apps.googleusercontent.com", "2-web.apps.googleusercontent.com"}},
		{name: "repeated", args: []string{"-clients", other, "-clients", web}, addr: "127.0.0.1:9022", ttl: 3599 * time.Second, clientIDs: []string{"2-web.apps.googleusercontent.com", "1-web.apps.googleusercontent.com"}},
		{name: "missing file", args: []string{"-clients", filepath.Join(t.TempDir(), "none.json")}, wantErr: true},
		{name: "no secret", args: []string{"-clients", noSecret}, wantErr: true},
		{name: "not json", args: []string{"-clients", notJSON}, wantErr: true},
		{name: "bad addr", args: []string{"-addr", "9022"}, wantErr: true},
		{name: "zero ttl", args: []string{"-access-token-ttl", "0s"}, wantErr: true},
		{name: "key max-age under a second", args: []string{"-key-max-age", "500ms"}, wantErr: true},
		{name: "unknown flag", args: []string{"-port", "1"}, wantErr: true},
		{name: "stray argument", args: []string{"serve"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := ParseFlags(tt.args, io.Discard, io.Discard)
			if tt.wantErr {
				if err == nil || !errors.As(err, new(usageError)) {
					t.Fatalf("ParseFlags(%q) = %v, want a usage error", tt.args, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseFlags(%q): %v", tt.args, err)
			}
			var ids []string
			for _, c := range o.Emulator.Clients {
				ids = append(ids, c.ID)
			}
			if o.Addr != tt.addr || o.Emulator.AccessTokenTTL != tt.ttl || o.Emulator.StateFile != tt.state || strings.Join(ids, ",") != strings.Join(tt.clientIDs, ",") {
				t.Errorf("got addr %q ttl %v state %q clients %v", o.Addr, o.Emulator.AccessTokenTTL, o.Emulator.StateFile, ids)
			}
		})
	}

	if o, _ := ParseFlags([]string{"-addr", "emu.internal:9022", "-control-host", "a.example,b.example"}, io.Discard, io.Discard); strings.Join(o.Emulator.ControlHosts, ",") != "emu.internal,a.example,b.example" {
		t.Errorf("control hosts %q", o.Emulator.ControlHosts)
	}

	if o, _ := ParseFlags([]string{"-key-max-age", "3s"}, io.Discard, io.Discard); o.Emulator.KeyMaxAge != 3*time.Second {
		t.Errorf("-key-max-age 3s: %v", o.Emulator.KeyMaxAge)
	}

	o, _ := ParseFlags([]string{"-clients", web}, io.Discard, io.Discard)
	if c := o.Emulator.Clients[0]; c.Secret != "GOCSPX-1" || len(c.JavaScriptOrigins) != 1 || len(c.RedirectURIs) != 0 {
		t.Errorf("client read as %+v", c)
	}
	if _, err := ParseFlags([]string{"-h"}, io.Discard, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}

func TestRunServesAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		cfg, err := ParseFlags([]string{"-addr", "127.0.0.1:0"}, pw, io.Discard)
		if err == nil {
			err = Run(ctx, cfg)
		}
		done <- err
		pw.Close()
	}()

	// The first line says where it listens.
	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		t.Fatalf("no output: %v", <-done)
	}
	first := lines.Text()
	base, ok := strings.CutPrefix(first, "Google emulator listening on ")
	if !ok {
		t.Fatalf("first line %q", first)
	}
	restc := make(chan string, 1)
	go func() {
		var rest strings.Builder
		for lines.Scan() {
			rest.WriteString(lines.Text() + "\n")
		}
		restc <- rest.String()
	}()

	resp, err := http.Get(base + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("discovery: %d", resp.StatusCode)
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("run after cancel: %v", err)
	}
	if rest := <-restc; !strings.Contains(rest, emulator.DemoClientID) {
		t.Errorf("output does not name the demo client:\n%s\n%s", first, rest)
	}
}

func TestVersionFlag(t *testing.T) {
	var out, errb strings.Builder
	cfg, err := ParseFlags([]string{"-version", "-addr", "not an address"}, &out, &errb)
	if err != nil {
		t.Fatalf("-version: %v", err)
	}
	if err := Run(context.Background(), cfg); err != nil {
		t.Fatalf("-version: %v", err)
	}
	if !strings.HasPrefix(out.String(), "google-emulator ") || errb.Len() != 0 {
		t.Errorf("-version printed %q, stderr %q", out.String(), errb.String())
	}
}
