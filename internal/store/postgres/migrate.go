package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"example.com/signin"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// versionTable is goose's table of applied migrations.
const versionTable = "goose_db_version"

// migrations returns the embedded migrations and the newest version among
// them.
func migrations() (fs.FS, int64, error) {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, 0, err
	}
	names, err := fs.Glob(sub, "*.sql")
	if err != nil {
		return nil, 0, err
	}
	var newest int64
	for _, name := range names {
		var v int64
		if _, err := fmt.Sscanf(name, "%d_", &v); err == nil && v > newest {
			newest = v
		}
	}
	return sub, newest, nil
}

// migrate applies the embedded migrations that the database lacks, under
// a session advisory lock, after checking that the database's schema is not
// newer than ours.
func (s *Store) migrate(ctx context.Context, pool *pgxpool.Pool) error {
	fsys, known, err := migrations()
	if err != nil {
		return signin.Wrap(err, signin.EINTERNAL, "", "cannot read the embedded migrations")
	}
	if err := s.checkSchema(ctx, pool, known); err != nil {
		return err
	}
	// Retry the lock every second for up to 5 minutes: a replica that
	// started first is applying the migrations.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLockID), lock.WithLockTimeout(1, 300))
	if err != nil {
		return signin.Wrap(err, signin.EINTERNAL, "", "cannot set up the migration lock")
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return signin.Wrap(err, signin.EINTERNAL, "", "cannot set up the migrations")
	}
	results, err := p.Up(ctx)
	if err != nil {
		// A newer program may have migrated meanwhile; say so rather than
		// goose's complaint about versions it does not know.
		if cerr := s.checkSchema(ctx, pool, known); cerr != nil {
			return cerr
		}
		return s.fail(ctx, err, "cannot apply the database migrations")
	}
	for _, r := range results {
		s.log.Info("database migration applied", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
	}
	return s.checkSchema(ctx, pool, known)
}

// checkSchema refuses a database migrated past the newest version this
// program knows: its code would not know the tables it finds.
func (s *Store) checkSchema(ctx context.Context, pool *pgxpool.Pool, known int64) error {
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, versionTable).Scan(&exists); err != nil {
		return s.fail(ctx, err, "cannot read the database schema version")
	}
	var current int64
	if exists {
		err := pool.QueryRow(ctx, `SELECT coalesce(max(version_id), 0) FROM `+versionTable+` WHERE is_applied`).Scan(&current)
		if err != nil {
			return s.fail(ctx, err, "cannot read the database schema version")
		}
	}
	if current > known {
		return signin.Errorf(signin.EINTERNAL, CodeSchemaTooNew,
			"The database schema is at version %d, newer than the %d this program knows: a newer signin migrated it. Run that version (or newer) of signin, offline-fetch and signin-admin.",
			current, known)
	}
	return nil
}
