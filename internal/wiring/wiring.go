// Package wiring builds what every command works on, from the flags they
// share (config.Common): the store (the files in -credentials, or
// PostgreSQL), the keys that seal tokens at rest, the Google client and the
// grant rules over them. signin, offline-fetch and signin-admin each call
// Open once, so the three open the same store the same way and find exactly
// what the others wrote.
//
// Where Google is (the real one, an emulator, demo mode) is decided before,
// by config.LoadGoogle and each command's demo-mode rules; Open takes the
// result.
package wiring

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"example.com/signin"
	"example.com/signin/internal/auth"
	"example.com/signin/internal/config"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/metrics"
	"example.com/signin/internal/seal"
	"example.com/signin/internal/store"
	"example.com/signin/internal/store/postgres"
)

// Config says what to build.
type Config struct {
	// Common holds -client-secrets, -credentials and -database (or
	// DATABASE_URL), as parsed.
	config.Common
	// Getenv reads the environment (SIGNIN_ENCRYPTION_KEYS). Required.
	Getenv func(string) string
	// Logger receives the store's and the keys' warnings (the store's
	// with component=store). Nil discards.
	Logger *slog.Logger
	// Google is which client the app is and where Google is. Nil builds
	// no Google client and no Grants: for commands that only read and
	// write the store.
	Google *config.Google
	// Metrics counts the calls to Google. Nil counts nothing.
	Metrics *metrics.Metrics
	// Writable asks that the file store's directory be checked writable
	// before anything is written there, so that the first failure names
	// the directory rather than a key file inside it. Why says what the
	// command keeps there, for that message.
	Writable bool
	Why      string
	// MaxConns bounds the database's connection pool (0: pgxpool's
	// default): offline-fetch's rounds run River on it too.
	MaxConns int32
	// RecordCache is how many users' credentials rows the database store
	// keeps in memory (store.Config.RecordCache): ServerRecordCache for
	// the signin server, whose every sign-in reads one; 0 (none) for the
	// commands that must read what is in the database right now.
	RecordCache int
	// Background: the database is connected and migrated in the
	// background (Parts.DB.Started says when), so that a server listens
	// at once; see store.Config.Background.
	Background bool
}

// ServerRecordCache is the signin server's Config.RecordCache: the users
// whose credentials rows (most often, their absence) a replica keeps in
// memory. A sign-in reads the user's row; 10,000 users signing in within a
// few minutes of each other are served from memory, for a few MB (an entry
// is a record with sealed tokens, about 1 KB, or a sub alone).
const ServerRecordCache = 10_000

// Parts are what Open built. Close releases them.
type Parts struct {
	// Store is the backend as it stores records: tokens sealed.
	Store store.Backend
	// Keys seal and open tokens at rest.
	Keys *seal.Keyring
	// Sealed is Store seen through Keys: tokens in the clear.
	Sealed grant.Store
	// DB is Store when it is PostgreSQL (offline-fetch's rounds run on
	// it), else nil.
	DB *postgres.Store
	// Google and Grants are nil when Config.Google was.
	Google *auth.Google
	Grants *grant.Grants

	common config.Common
}

// ConfigError is a configuration that cannot work (keys that are missing
// or malformed); the commands report it as a usage error where they tell
// those apart.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// UsageError marks it for exitcode: exit status 2.
func (e *ConfigError) UsageError() bool { return true }

// Open builds the parts cfg describes. With a database every process must
// share the sealing keys, so SIGNIN_ENCRYPTION_KEYS is then required, and
// that is checked before waiting for the database.
func Open(ctx context.Context, cfg Config) (*Parts, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Database != "" && strings.TrimSpace(cfg.Getenv(seal.EnvKeys)) == "" {
		return nil, &ConfigError{fmt.Errorf("with -database (or %s), set %s: every process must share the keys that seal tokens", config.EnvDatabaseURL, seal.EnvKeys)}
	}
	st, err := store.Open(ctx, store.Config{DatabaseURL: cfg.Database, Dir: cfg.CredentialsDir, Logger: logger.With("component", "store"), MaxConns: cfg.MaxConns, Timeout: cfg.DatabaseTimeout, MaxWait: cfg.DatabaseWait, Background: cfg.Background,
		RecordCache: cfg.RecordCache})
	if err != nil {
		return nil, storeError(cfg.Common, err)
	}
	p := &Parts{Store: st, common: cfg.Common}
	p.DB, _ = st.(*postgres.Store)
	if cfg.Database == "" && cfg.Writable {
		if err := checkWritable(cfg.CredentialsDir, cfg.Why); err != nil {
			st.Close()
			return nil, &ConfigError{err}
		}
	}
	// The key file, used when the variable is unset, sits beside the
	// records on one machine (created on first start, with a warning to
	// set the variable in production).
	p.Keys, err = seal.LoadKeys(cfg.Getenv, filepath.Join(cfg.CredentialsDir, seal.DefaultKeyFileName), logger)
	if err != nil {
		st.Close()
		return nil, &ConfigError{err}
	}
	p.Sealed = grant.Sealed(st, p.Keys)
	if cfg.Google != nil {
		p.Google = auth.NewGoogle(auth.GoogleConfig{Client: cfg.Google.Client, HTTPClient: cfg.Google.Net.HTTPClient(), Logger: logger, Metrics: cfg.Metrics})
		p.Grants = grant.New(grant.Config{Store: p.Sealed, Google: p.Google, Logger: logger})
	}
	return p, nil
}

// storeError makes a store error the user can fix (a URL that cannot
// work, a database or role that does not exist, a directory that is not
// one) a ConfigError naming where it came from: -database, DATABASE_URL or
// -credentials (the URL never shown: it may hold a password).
func storeError(c config.Common, err error) error {
	if signin.ErrorKind(err) != signin.EINVALID {
		return err
	}
	where := "-credentials " + c.CredentialsDir
	if c.Database != "" {
		where = c.DatabaseFrom
	}
	return &ConfigError{fmt.Errorf("%s: %w", where, err)}
}

// StartErr is why the database could not be started in the background
// (Config.Background; see postgres.Start), once DB.Started is closed, as
// Open would have returned it; nil without a database.
func (p *Parts) StartErr() error {
	if p.DB == nil {
		return nil
	}
	if err := p.DB.StartErr(); err != nil {
		return storeError(p.common, err)
	}
	return nil
}

// Close releases the store.
func (p *Parts) Close() { p.Store.Close() }

// checkWritable says, in words, that the credentials directory cannot be
// written: otherwise the first thing to fail is a key file in it, and
// "key file: permission denied" sends the user the wrong way.
func checkWritable(dir, why string) error {
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("-credentials %s: the directory is not writable (%v); %s: fix its owner or permissions, or choose another directory with -credentials", dir, err, why)
	}
	f.Close()
	return os.Remove(f.Name())
}

// OfflineScopes reads -scopes (config.Common.Scopes): the scopes the
// offline work needs beyond sign-in, normalised as Google grants them, by
// the grant's rules (grant.ParseScopes). signin asks users for them;
// offline-fetch reports a user whose grant lacks one as scope_missing.
func OfflineScopes(flag string) ([]string, error) {
	scopes, err := grant.ParseScopes(flag)
	if err != nil {
		return nil, fmt.Errorf("-scopes: %w", err)
	}
	return scopes, nil
}
