package httpserve

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Without a configured header timeout the server still has one, and every
// other phase of a request is bounded too.
func TestNewServerTimeouts(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name string
		in   time.Duration
		want time.Duration
	}{
		{"default", 0, DefaultReadHeaderTimeout},
		{"configured", time.Second, time.Second},
	} {
		hs := NewServer(http.NotFoundHandler(), logger, tc.in)
		if hs.ReadHeaderTimeout != tc.want {
			t.Errorf("%s: ReadHeaderTimeout %v, want %v", tc.name, hs.ReadHeaderTimeout, tc.want)
		}
		if hs.ReadTimeout <= 0 || hs.WriteTimeout <= 0 || hs.IdleTimeout <= 0 || hs.MaxHeaderBytes <= 0 || hs.MaxHeaderBytes > 1<<20 {
			t.Errorf("%s: unbounded: read %v, write %v, idle %v, max header bytes %d", tc.name, hs.ReadTimeout, hs.WriteTimeout, hs.IdleTimeout, hs.MaxHeaderBytes)
		}
	}
}

// Cancelling the context shuts the server down cleanly, after the request
// in flight has been answered, and says so in one line.
func TestServeShutsDownGracefully(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	inFlight := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(inFlight)
		time.Sleep(100 * time.Millisecond) // still working when shutdown starts
		io.WriteString(w, "done")
	})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	var logs bytes.Buffer
	go func() { served <- Serve(ctx, ln, NewServer(h, slog.New(slog.NewTextHandler(&logs, nil)), 0)) }()

	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String())
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-inFlight
	cancel()
	if err := <-served; err != nil {
		t.Errorf("Serve after shutdown: %v", err)
	}
	if body := <-got; body != "done" {
		t.Errorf("in-flight request got %q, want it answered", body)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "level=INFO msg=\"shut down\"") || !strings.Contains(lines[0], " drained=1 ") {
		t.Errorf("shutdown logged %q, want one line with drained=1", logs.String())
	}
}
