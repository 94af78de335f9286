package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startWith is main_test.go's start in demo mode, with change applied to
// the Config before Run.
func startWith(t *testing.T, change func(*Config)) string {
	t.Helper()
	dir := t.TempDir()
	cfg, err := ParseFlags([]string{
		"-addr", "127.0.0.1:0",
		"-credentials", filepath.Join(dir, "credentials"),
		"-emulator-addr", "127.0.0.1:0",
	}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ClientSecrets = filepath.Join(dir, "client_secrets.json") // absent: demo mode
	change(&cfg)
	ready := make(chan string, 1)
	cfg.Ready = func(u string) { ready <- u }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case u := <-ready:
		return u
	case err := <-done:
		t.Fatalf("Run ended before serving: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}
	return ""
}

// TestSlowLorisHeadersAreCut: a client that sends its request headers a
// line at a time, or nothing at all, holds a connection only until
// ReadHeaderTimeout: the server closes it without an answer, long before
// the client is done. A normal request meanwhile is served.
func TestSlowLorisHeadersAreCut(t *testing.T) {
	const timeout = 300 * time.Millisecond
	base := startWith(t, func(c *Config) { c.ReadHeaderTimeout = timeout })
	addr := strings.TrimPrefix(base, "http://")

	tests := []struct {
		name   string
		prefix string // sent at once
		drip   bool   // then one header line every 50 ms, for up to 7.5 s
	}{
		{name: "headers a line at a time", prefix: "GET / HTTP/1.1\r\nHost: " + addr + "\r\n", drip: true},
		{name: "request line only", prefix: "GET / HTTP/1.1\r\n"},
		{name: "nothing at all"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, tc.prefix); err != nil {
				t.Fatal(err)
			}
			// The dripping client: it stops when its writes fail (the
			// server closed) or after lines lines, never ending its
			// headers.
			const lines = 150
			sent := make(chan int, 1)
			go func() {
				n := 0
				if tc.drip {
					tick := time.NewTicker(50 * time.Millisecond)
					defer tick.Stop()
					for ; n < lines; n++ {
						<-tick.C
						if _, err := fmt.Fprintf(conn, "X-Slow-%d: a\r\n", n); err != nil {
							break
						}
					}
				}
				sent <- n
			}()

			// The failure bound, not a measurement: a server without a
			// header timeout keeps the connection past it (its
			// ReadTimeout is 15 s).
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			got, err := io.ReadAll(conn)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the server kept the connection open")
			}
			if len(got) > 0 && !strings.HasPrefix(string(got), "HTTP/1.1 408") {
				t.Errorf("the server answered %q", got)
			}
			if n := <-sent; tc.drip && n >= lines {
				t.Errorf("the client sent all %d header lines before the server closed", n)
			}
		})
	}

	// Meanwhile, and after, a normal request is served.
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %d", resp.StatusCode)
	}
}
