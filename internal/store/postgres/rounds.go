package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// This file is the SQL of offline-fetch's rounds (package rounds): the
// offline_rounds table (migration 00004) and what rounds reads of River's
// river_job. Package rounds runs River on the store's pool (Pool) and calls
// these methods; it runs no SQL of its own.

// Round is a row of offline_rounds.
type Round struct {
	ID    int64
	Key   string
	Users int
	Open  bool
	// Started is set by StartRound when this call started the round.
	Started    bool
	StartedAt  time.Time
	FinishedAt time.Time // zero while open
	// Done (ok, revoked or skipped) and Failed count the users the
	// processes reported so far (AddRoundProgress); the others wait.
	Done, Failed int
}

// Waiting is how many of the round's users are neither done nor failed.
func (r Round) Waiting() int { return max(0, r.Users-r.Done-r.Failed) }

// RoundBudget names the budget that spreads round id (StartRound).
func RoundBudget(id int64) string { return "round " + strconv.FormatInt(id, 10) }

// Pool is the store's connection pool, for River's driver: River's tables
// live in the credentials' database, and its client shares the store's
// connections rather than opening a second pool.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// MigrateRiver applies River's migrations while holding a session advisory
// lock (lockRiverMigrations), as Open does for this package's own tables:
// processes starting together migrate once, the later ones finding nothing
// to do. River applies each of its migrations in a transaction of its own
// (one adds an enum value that the next uses, which one transaction cannot
// do), hence a session lock rather than a transaction's.
func (s *Store) MigrateRiver(ctx context.Context, log *slog.Logger) error {
	if log == nil {
		log = s.log
	}
	m, err := rivermigrate.New(riverpgxv5.New(s.pool), &rivermigrate.Config{Logger: log.With("component", "rivermigrate")})
	if err != nil {
		return s.fail(ctx, err, "cannot set up River's migrations")
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return s.fail(ctx, err, "cannot apply River's migrations")
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, $2)`, lockClassSingleton, lockRiverMigrations); err != nil {
		return s.fail(ctx, err, "cannot lock River's migrations")
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1, $2)`, lockClassSingleton, lockRiverMigrations)
	res, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return s.fail(ctx, err, "cannot apply River's migrations")
	}
	for _, v := range res.Versions {
		log.Info("River migration applied", "version", v.Version, "duration", v.Duration)
	}
	return nil
}

// StartRound returns the open round if there is one; otherwise it starts
// round key: the round's row and, through enqueue (which queues one job per
// user in tx and returns how many), its jobs, in one transaction, so that a
// round that is seen has all its jobs. The transaction holds
// lockRoundStart: processes arriving together wait for the first one's
// round, then join it.
//
// With scheduled, no round is started while another is open (the open one
// is returned, Started false: the caller says so), nor when a round named
// key exists already (another worker started this interval's round, and it
// is over): the result is then the zero Round.
//
// With spread, the round's jobs (River jobs of kind jobKind) are scheduled
// evenly over spread from now (River makes a scheduled job available at
// its time, within its scheduler's 5 s), and the round gets a budget of
// its own, RoundBudget(id), at users/spread: the fleet takes one of its
// slots before each user, so that its rate is flat rather than in 5 s
// steps.
func (s *Store) StartRound(ctx context.Context, key string, scheduled bool, spread time.Duration, jobKind string, enqueue func(ctx context.Context, tx pgx.Tx, id int64) (int, error)) (Round, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return Round{}, s.fail(ctx, err, "cannot start a round")
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, lockClassSingleton, lockRoundStart); err != nil {
		return Round{}, s.fail(ctx, err, "cannot take the round lock")
	}
	r, err := scanRound(tx.QueryRow(ctx, `SELECT `+roundColumns+` FROM offline_rounds WHERE open`))
	switch {
	case err == nil:
		return r, nil // joined (or, scheduled, skipped: the caller tells)
	case !errors.Is(err, pgx.ErrNoRows):
		return Round{}, s.fail(ctx, err, "cannot read the open round")
	}
	r = Round{Key: key, Open: true, Started: true}
	err = tx.QueryRow(ctx, `INSERT INTO offline_rounds (key) VALUES ($1) ON CONFLICT (key) DO NOTHING RETURNING id, started_at`, key).Scan(&r.ID, &r.StartedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Round{}, nil // this interval's round was started, and is done
	}
	if err != nil {
		return Round{}, s.fail(ctx, err, "cannot start a round")
	}
	if r.Users, err = enqueue(ctx, tx, r.ID); err != nil {
		return Round{}, err
	}
	if _, err := tx.Exec(ctx, `UPDATE offline_rounds SET users = $2 WHERE id = $1`, r.ID, r.Users); err != nil {
		return Round{}, s.fail(ctx, err, "cannot start a round")
	}
	if spread > 0 && r.Users > 0 {
		step := spread.Seconds() / float64(r.Users)
		if _, err := tx.Exec(ctx, `UPDATE river_job j SET state = 'scheduled', scheduled_at = now() + make_interval(secs => (n.k - 1) * $3::float8)
			FROM (SELECT id, row_number() OVER (ORDER BY id) AS k FROM river_job WHERE kind = $1 AND args->>'round' = $2 AND state = 'available') n
			WHERE j.id = n.id`, jobKind, strconv.FormatInt(r.ID, 10), step); err != nil {
			return Round{}, s.fail(ctx, err, "cannot spread the round")
		}
		perMinute := max(1, int(math.Ceil(float64(r.Users)*60/spread.Seconds())))
		if _, err := tx.Exec(ctx, `INSERT INTO rate_budgets (name, per_minute) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET per_minute = EXCLUDED.per_minute, next_at = now(), factor = 1, factor_at = now()`,
			RoundBudget(r.ID), perMinute); err != nil {
			return Round{}, s.fail(ctx, err, "cannot spread the round")
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return Round{}, s.fail(ctx, err, "cannot start a round")
	}
	return r, nil
}

// roundColumns are offline_rounds' columns, in scanRound's order.
const roundColumns = `id, key, users, open, started_at, finished_at, done, failed`

func scanRound(row pgx.Row) (Round, error) {
	var r Round
	var fin *time.Time
	err := row.Scan(&r.ID, &r.Key, &r.Users, &r.Open, &r.StartedAt, &fin, &r.Done, &r.Failed)
	if fin != nil {
		r.FinishedAt = *fin
	}
	return r, err
}

// OpenRound returns the open round, or the zero Round when none is.
func (s *Store) OpenRound(ctx context.Context) (Round, error) {
	r, err := scanRound(s.pool.QueryRow(ctx, `SELECT `+roundColumns+` FROM offline_rounds WHERE open`))
	if errors.Is(err, pgx.ErrNoRows) {
		return Round{}, nil
	}
	if err != nil {
		return Round{}, s.fail(ctx, err, "cannot read the open round")
	}
	return r, nil
}

// LastRoundID is the id of the newest round (0: none yet).
func (s *Store) LastRoundID(ctx context.Context) (int64, error) {
	var id int64
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM offline_rounds`).Scan(&id); err != nil {
		return 0, s.fail(ctx, err, "cannot read the rounds")
	}
	return id, nil
}

// RoundsAfter returns the rounds whose id is greater than after, oldest
// first: at most one of them is open (the last).
func (s *Store) RoundsAfter(ctx context.Context, after int64) ([]Round, error) {
	return s.rounds(ctx, `SELECT `+roundColumns+` FROM offline_rounds WHERE id > $1 ORDER BY id`, after)
}

// FinishRoundIfDone marks round id finished if none of its jobs (River
// jobs of kind jobKind whose "round" argument is id) is left to claim or
// run, and reports whether it is finished.
func (s *Store) FinishRoundIfDone(ctx context.Context, id int64, jobKind string) (bool, error) {
	var left bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM river_job
		WHERE state IN ('available', 'pending', 'retryable', 'running', 'scheduled')
		AND kind = $1 AND args->>'round' = $2)`, jobKind, strconv.FormatInt(id, 10)).Scan(&left)
	if err != nil {
		return false, s.fail(ctx, err, "cannot read the round's jobs")
	}
	if left {
		return false, nil
	}
	if _, err = s.pool.Exec(ctx, `UPDATE offline_rounds SET open = false, finished_at = now() WHERE id = $1 AND open`, id); err != nil {
		return false, s.fail(ctx, err, fmt.Sprintf("cannot mark round %d finished", id))
	}
	if _, err = s.pool.Exec(ctx, `DELETE FROM rate_budgets WHERE name = $1`, RoundBudget(id)); err != nil {
		return false, s.fail(ctx, err, fmt.Sprintf("cannot mark round %d finished", id))
	}
	return true, nil
}

// AddRoundProgress adds users done and failed to round id's counts.
func (s *Store) AddRoundProgress(ctx context.Context, id int64, done, failed int) error {
	if _, err := s.pool.Exec(ctx, `UPDATE offline_rounds SET done = done + $2, failed = failed + $3 WHERE id = $1`, id, done, failed); err != nil {
		return s.fail(ctx, err, "cannot count the round's progress")
	}
	return nil
}

// RecentRounds returns the newest limit rounds, newest first.
func (s *Store) RecentRounds(ctx context.Context, limit int) ([]Round, error) {
	return s.rounds(ctx, `SELECT `+roundColumns+` FROM offline_rounds ORDER BY id DESC LIMIT $1`, limit)
}

// rounds runs query, which selects roundColumns, with arg.
func (s *Store) rounds(ctx context.Context, query string, arg any) ([]Round, error) {
	rows, err := s.pool.Query(ctx, query, arg)
	if err != nil {
		return nil, s.fail(ctx, err, "cannot read the rounds")
	}
	rs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Round, error) { return scanRound(row) })
	if err != nil {
		return nil, s.fail(ctx, err, "cannot read the rounds")
	}
	return rs, nil
}
