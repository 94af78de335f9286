// Package httpserve runs the commands' HTTP servers one way: timeouts on
// every phase of a request, so slow or stalled clients cannot hold
// connections, and a graceful shutdown when the context ends, logged in one
// line with how many requests it waited for.
package httpserve

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// DefaultReadHeaderTimeout bounds how long a client may take to send its
// request headers (slow-loris).
const DefaultReadHeaderTimeout = 5 * time.Second

// ShutdownGrace is how long in-flight requests get to finish at shutdown.
const ShutdownGrace = 5 * time.Second

// NewServer returns an http.Server for h with the project's timeouts.
// readHeaderTimeout zero means DefaultReadHeaderTimeout (tests shorten it).
// Serve logs its shutdown to logger.
func NewServer(h http.Handler, logger *slog.Logger, readHeaderTimeout time.Duration) *http.Server {
	if readHeaderTimeout <= 0 {
		readHeaderTimeout = DefaultReadHeaderTimeout
	}
	return &http.Server{
		Handler:           &tracker{next: h, log: logger},
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      45 * time.Second, // above the timeouts of calls to Google
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// tracker counts the requests in flight, for the shutdown's log line.
type tracker struct {
	next   http.Handler
	log    *slog.Logger
	active atomic.Int64
}

func (t *tracker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t.active.Add(1)
	defer t.active.Add(-1)
	t.next.ServeHTTP(w, r)
}

// Serve runs hs on ln until ctx is done, then shuts it down, giving
// in-flight requests ShutdownGrace to finish, and logs one line: how many
// requests were drained (answered during the shutdown) and, if the grace
// ran out, how many were abandoned. It returns nil after a clean shutdown.
// A server not made by NewServer is served the same way, with its logs
// discarded.
func Serve(ctx context.Context, ln net.Listener, hs *http.Server) error {
	t, ok := hs.Handler.(*tracker)
	if !ok {
		t = &tracker{next: hs.Handler, log: slog.New(slog.DiscardHandler)}
		if t.next == nil {
			t.next = http.DefaultServeMux // what http.Server does with a nil Handler
		}
		hs.Handler = t
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	start := time.Now()
	inFlight := t.active.Load()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	err := hs.Shutdown(shutdownCtx)
	left := t.active.Load()
	attrs := []slog.Attr{
		slog.String("addr", ln.Addr().String()),
		slog.Int64("drained", max(inFlight-left, 0)),
		slog.Duration("took", time.Since(start)),
	}
	if err != nil {
		t.log.LogAttrs(context.Background(), slog.LevelWarn, "shut down before every request was answered",
			append(attrs, slog.Int64("abandoned", left), slog.String("error", err.Error()))...)
		return err
	}
	t.log.LogAttrs(context.Background(), slog.LevelInfo, "shut down", attrs...)
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Background serves h on a listener of its own at addr (a metrics endpoint,
// say) until ctx ends or stop is called; stop waits for it to shut down. It
// returns the listener's base URL (the port really bound, for ":0").
func Background(ctx context.Context, addr string, h http.Handler, logger *slog.Logger, readHeaderTimeout time.Duration) (baseURL string, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := Serve(ctx, ln, NewServer(h, logger, readHeaderTimeout)); err != nil {
			logger.Error("listener stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	return "http://" + ln.Addr().String(), func() { cancel(); <-done }, nil
}
