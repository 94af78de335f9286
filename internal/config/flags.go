package config

import (
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Common is the configuration signin, offline-fetch and signin-admin take
// from the same flags, so that each finds exactly what the others stored.
type Common struct {
	ClientSecrets string
	// SecretsExplicit is set when -client-secrets was given: a missing
	// file is then an error, not demo mode.
	SecretsExplicit bool
	CredentialsDir  string
	// Database is a PostgreSQL URL: -database, else $DATABASE_URL. Empty
	// means the file store in CredentialsDir.
	Database string
	// DatabaseFrom names where Database came from, for messages:
	// "-database" or "DATABASE_URL" (never the URL: it may hold a
	// password).
	DatabaseFrom string
	// DatabaseTimeout bounds each database operation (-database-timeout):
	// past it the database counts as unavailable (503 for a request).
	DatabaseTimeout time.Duration
	// DatabaseWait bounds how long a command waits for a database that
	// does not answer at start (-database-wait). 0: for ever, as a server
	// replica does (see WaitForever).
	DatabaseWait time.Duration
	// DatabaseWaitExplicit is set when -database-wait was given.
	DatabaseWaitExplicit bool
	LogLevel             slog.Level
	// Scopes is -scopes as given: the scopes the offline work needs beyond
	// sign-in, comma-separated (grant.ParseScopes reads it).
	Scopes string

	logLevel string
}

// Register defines -client-secrets, -credentials, -database and
// -log-level on fs.
// Call Parsed after fs.Parse.
func (c *Common) Register(fs *flag.FlagSet, defaultLogLevel string) {
	fs.StringVar(&c.ClientSecrets, "client-secrets", DefaultClientSecrets, "Google OAuth client file (the JSON downloaded from the Cloud console); absent at this default path: demo mode on the emulator")
	fs.StringVar(&c.CredentialsDir, "credentials", "credentials", "directory of stored offline credentials (created 0700)")
	fs.StringVar(&c.Database, "database", "", "PostgreSQL URL (postgres://user@host:5432/db?sslmode=disable) for credentials and sessions, shared by replicas; default $"+EnvDatabaseURL+", else the files in -credentials")
	fs.DurationVar(&c.DatabaseTimeout, "database-timeout", DefaultDatabaseTimeout, "with -database: bound on each database operation (a connection and its statements); past it the database counts as unavailable (503 database_unavailable)")
	fs.DurationVar(&c.DatabaseWait, "database-wait", DefaultDatabaseWait, "with -database: how long to wait at start for a database that does not answer before giving up (exit 1); 0: for ever. Default for ever for signin and offline-fetch -every")
	fs.StringVar(&c.logLevel, "log-level", defaultLogLevel, "log level: debug, info, warn, error")
	fs.StringVar(&c.Scopes, "scopes", "", "comma-separated scopes the offline work needs beyond sign-in (contacts.readonly); the same on signin and offline-fetch")
}

// DefaultDatabaseWait is -database-wait's default for one-shot commands
// (signin-admin, offline-fetch without -every): a cron job must end.
const DefaultDatabaseWait = 30 * time.Second

// WaitForever makes a server (signin, offline-fetch -every) wait for its
// database as long as it takes, unless -database-wait was given.
func (c *Common) WaitForever() {
	if !c.DatabaseWaitExplicit {
		c.DatabaseWait = 0
	}
}

// DefaultDatabaseTimeout is -database-timeout's default.
const DefaultDatabaseTimeout = 5 * time.Second

// EnvDatabaseURL is read when -database is not given.
const EnvDatabaseURL = "DATABASE_URL"

// Parsed finishes what Register began, once fs has parsed the arguments:
// it rejects stray arguments, notes whether -client-secrets was given,
// takes the database from the environment when -database is absent and
// reads the log level.
func (c *Common) Parsed(fs *flag.FlagSet, getenv func(string) string) error {
	c.DatabaseFrom = "-database"
	if c.Database == "" {
		c.Database = strings.TrimSpace(getenv(EnvDatabaseURL))
		c.DatabaseFrom = EnvDatabaseURL
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "client-secrets":
			c.SecretsExplicit = true
		case "database-wait":
			c.DatabaseWaitExplicit = true
		}
	})
	if err := c.LogLevel.UnmarshalText([]byte(c.logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	if c.DatabaseTimeout <= 0 || c.DatabaseTimeout > 10*time.Minute {
		return fmt.Errorf("-database-timeout %v: want more than 0 and at most 10m", c.DatabaseTimeout)
	}
	if c.DatabaseWait < 0 {
		return fmt.Errorf("-database-wait %v: want 0 (for ever) or more", c.DatabaseWait)
	}
	return nil
}
