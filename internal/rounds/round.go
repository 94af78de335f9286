package rounds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"example.com/signin/internal/grant"
)

// Advisory locks (two-key, class "signin" as the store's; the store's
// goose lock is one-key). roundLock serialises starting a round;
// migrateLock, River's migrations.
const (
	lockClass   = 0x5169
	roundLock   = 0x0002
	migrateLock = 0x0003
)

// enqueueBatch is how many users' jobs are inserted per statement.
const enqueueBatch = 1000

// round is the round a process works.
type round struct {
	id      int64
	key     string
	users   int
	started bool // by this process
}

// oneOffKey names a one-off round by its start.
func oneOffKey(now time.Time) string {
	return "run " + now.UTC().Format(time.RFC3339Nano)
}

// scheduledKey names the round of the interval holding now: every worker,
// and every leader River elects, names it the same.
func scheduledKey(every time.Duration, now time.Time) string {
	return fmt.Sprintf("every %v %s", every, now.UTC().Truncate(every).Format(time.RFC3339))
}

// joinOrStart returns the open round if there is one; otherwise it starts
// round key: the round's row and one job per stored user, in one
// transaction, so that a round that is seen has all its jobs. The
// transaction holds roundLock: processes arriving together wait for the
// first one's round, then join it. With scheduled, a round whose key exists
// already (another worker started this interval's round) is not started
// again, and neither is one while another round is open: the result is
// then the zero round.
func (e *engine) joinOrStart(ctx context.Context, key string, scheduled bool) (round, error) {
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		return round{}, fmt.Errorf("rounds: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, lockClass, roundLock); err != nil {
		return round{}, fmt.Errorf("rounds: waiting for the round lock: %w", err)
	}
	var r round
	err = tx.QueryRow(ctx, `SELECT id, key, users FROM offline_rounds WHERE open`).Scan(&r.id, &r.key, &r.users)
	switch {
	case err == nil && scheduled:
		e.log.Warn("the previous round is still running: this interval's round is not started", "open", r.key, "skipped", key)
		return round{}, nil
	case err == nil:
		return r, nil
	case !errors.Is(err, pgx.ErrNoRows):
		return round{}, fmt.Errorf("rounds: reading the open round: %w", err)
	}
	err = tx.QueryRow(ctx, `INSERT INTO offline_rounds (key) VALUES ($1) ON CONFLICT (key) DO NOTHING RETURNING id`, key).Scan(&r.id)
	if errors.Is(err, pgx.ErrNoRows) {
		return round{}, nil // this interval's round was started, and is done
	}
	if err != nil {
		return round{}, fmt.Errorf("rounds: starting a round: %w", err)
	}
	r.key, r.started = key, true
	if r.users, err = e.enqueue(ctx, tx, r.id); err != nil {
		return round{}, err
	}
	if _, err := tx.Exec(ctx, `UPDATE offline_rounds SET users = $2 WHERE id = $1`, r.id, r.users); err != nil {
		return round{}, fmt.Errorf("rounds: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return round{}, fmt.Errorf("rounds: starting a round: %w", err)
	}
	return r, nil
}

// enqueue inserts a job for each stored user, reading the store as a
// stream, and returns how many. A record the store cannot read is reported
// here (it has no sub to queue); revoked users get a job, which reports
// them skipped, as a run does.
func (e *engine) enqueue(ctx context.Context, tx pgx.Tx, id int64) (int, error) {
	n := 0
	batch := make([]river.InsertManyParams, 0, enqueueBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if _, err := e.client.InsertManyTx(ctx, tx, batch); err != nil {
			return fmt.Errorf("rounds: queueing users: %w", err)
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	err := e.store.List(ctx, func(rec *grant.Record, err error) error {
		if err != nil {
			e.users.ReportUnreadable("", err)
			return nil
		}
		if grant.ActOn(rec) == grant.PassOver {
			return nil
		}
		batch = append(batch, river.InsertManyParams{Args: userArgs{Round: id, Sub: rec.Sub}})
		if len(batch) == enqueueBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return n, err
}

// finishIfDone marks round id finished if none of its jobs is left to
// claim or run, and reports whether it is.
func (e *engine) finishIfDone(ctx context.Context, id int64) (bool, error) {
	var left bool
	err := e.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM river_job
		WHERE state IN ('available', 'pending', 'retryable', 'running', 'scheduled')
		AND kind = $1 AND args->>'round' = $2)`, userArgs{}.Kind(), fmt.Sprint(id)).Scan(&left)
	if err != nil || left {
		return false, err
	}
	_, err = e.pool.Exec(ctx, `UPDATE offline_rounds SET open = false, finished_at = now() WHERE id = $1 AND open`, id)
	return err == nil, err
}

// migrate applies River's migrations while holding a session advisory
// lock, as the store does for the app's own tables (which it migrated when
// it opened, before): processes starting together migrate once, the later
// ones finding nothing to do. River applies each of its migrations in a
// transaction of its own (one adds an enum value that the next uses, which
// one transaction cannot do), hence a session lock rather than a
// transaction's.
func migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) error {
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: log.With("component", "rivermigrate")})
	if err != nil {
		return fmt.Errorf("rounds: River's migrations: %w", err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("rounds: River's migrations: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, $2)`, lockClass, migrateLock); err != nil {
		return fmt.Errorf("rounds: River's migrations: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1, $2)`, lockClass, migrateLock)
	res, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return fmt.Errorf("rounds: River's migrations: %w", err)
	}
	for _, v := range res.Versions {
		log.Info("River migration applied", "version", v.Version, "duration", v.Duration)
	}
	return nil
}
