// Package httpserve runs the commands' HTTP servers one way: timeouts on
// every phase of a request, so slow or stalled clients cannot hold
// connections, and a graceful shutdown when the context ends.
package httpserve

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// DefaultReadHeaderTimeout bounds how long a client may take to send its
// request headers (slow-loris).
const DefaultReadHeaderTimeout = 5 * time.Second

// ShutdownGrace is how long in-flight requests get to finish at shutdown.
const ShutdownGrace = 5 * time.Second

// NewServer returns an http.Server for h with the project's timeouts.
// readHeaderTimeout zero means DefaultReadHeaderTimeout (tests shorten it).
func NewServer(h http.Handler, logger *slog.Logger, readHeaderTimeout time.Duration) *http.Server {
	if readHeaderTimeout <= 0 {
		readHeaderTimeout = DefaultReadHeaderTimeout
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      45 * time.Second, // above the timeouts of calls to Google
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// Serve runs hs on ln until ctx is done, then shuts it down, giving
// in-flight requests ShutdownGrace to finish. It returns nil after a clean
// shutdown.
func Serve(ctx context.Context, ln net.Listener, hs *http.Server) error {
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
