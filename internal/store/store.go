// Package store opens the configured backend for users' grants and the web
// server's ended sessions: PostgreSQL when a database URL is given (several
// replicas of signin, offline-fetch on other machines), else the file store
// in the credentials directory (one machine; the default). The backends
// live in the subpackages file and postgres; both pass grant/granttest and
// store/sessiontest.
package store

import (
	"context"
	"log/slog"
	"time"

	"example.com/signin/internal/grant"
	"example.com/signin/internal/store/file"
	"example.com/signin/internal/store/postgres"
)

// Backend is a store of grants and of ended sessions (the web server's
// SessionStore: signing in writes nothing, ending sessions writes what
// ended them).
type Backend interface {
	grant.Store
	SessionEnds(ctx context.Context, sub string) (validAfter time.Time, ended []string, err error)
	EndSession(ctx context.Context, sub, key string, expires time.Time) error
	EndUserSessions(ctx context.Context, sub string, at, keepUntil time.Time) error
	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
	// Close releases the store's resources (the database pool).
	Close()
	// Describe is a one-line, secret-free description for start-up logs.
	Describe() string
}

// Config says which backend to open.
type Config struct {
	// DatabaseURL is a libpq URL (postgres://user@host:5432/db). Empty
	// means the file store.
	DatabaseURL string
	// Dir is the credentials directory of the file store.
	Dir string
	// Logger receives the backend's warnings. Nil discards.
	Logger *slog.Logger
	// Timeout bounds each database operation (postgres.Config.Timeout).
	// 0: postgres.DefaultTimeout.
	Timeout time.Duration
	// MaxWait bounds how long Open waits for a database that does not
	// answer (postgres.Config.MaxWait). 0: until ctx ends.
	MaxWait time.Duration
	// Background returns the database store at once, connecting and
	// migrating in the background (postgres.Start): a server listens
	// meanwhile, answering 503 until the database does.
	Background bool
	// MaxConns bounds the database's connection pool (0: pgxpool's
	// default, 4 or the number of CPUs).
	MaxConns int32
	// RecordCache is how many users' credentials rows the database store
	// keeps in memory, coherent with the database
	// (postgres.Config.RecordCache). 0: none. The file store ignores it.
	RecordCache int
}

// Open opens the backend cfg names. With a database it waits for it to come
// up (logging why) until ctx ends, and applies the schema migrations.
func Open(ctx context.Context, cfg Config) (Backend, error) {
	if cfg.DatabaseURL != "" {
		open := postgres.Open
		if cfg.Background {
			open = postgres.Start
		}
		st, err := open(ctx, postgres.Config{URL: cfg.DatabaseURL, Logger: cfg.Logger, MaxConns: cfg.MaxConns, Timeout: cfg.Timeout, MaxWait: cfg.MaxWait,
			RecordCache: cfg.RecordCache})
		if err != nil {
			return nil, err
		}
		return st, nil
	}
	st, err := file.Open(file.Config{Dir: cfg.Dir, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	return st, nil
}
