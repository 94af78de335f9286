package rounds

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"example.com/signin/internal/grant"
	"example.com/signin/internal/metrics"
	"example.com/signin/internal/offline"
	"example.com/signin/internal/store/postgres"
)

// enqueueBatch is how many users' jobs are inserted per statement.
const enqueueBatch = 1000

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
// round key (postgres.Store.StartRound: the round's row and one job per
// stored user, in one transaction). With scheduled, a round is not started
// while another is open, nor when this interval's round exists already:
// the result is then the zero Round.
func (e *engine) joinOrStart(ctx context.Context, key string, scheduled bool) (postgres.Round, error) {
	spread := time.Duration(0)
	if scheduled {
		spread = e.cfg.Spread
	}
	r, err := e.db.StartRound(ctx, key, scheduled, spread, userArgs{}.Kind(), e.enqueue)
	if err != nil {
		return postgres.Round{}, fmt.Errorf("rounds: %w", err)
	}
	if scheduled && r.ID != 0 && !r.Started {
		e.fleet.Round(metrics.RoundSkipped)
		e.log.Warn("the previous round is still running: this interval's round is not started", "open", r.Key, "skipped", key)
		return postgres.Round{}, nil
	}
	return r, nil
}

// enqueue inserts a job for each stored user in tx, reading the store as a
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
			e.count(id, e.users.ReportUnreadable("", err))
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

// needs says at a round's start how long it needs at the People API's
// budget, and, when that is longer than interval (a worker's -every), that
// it cannot finish in time: a log line and the round_shortfall_seconds
// metric.
func (e *engine) needs(r postgres.Round, interval time.Duration) {
	e.fleet.Round(metrics.RoundStarted)
	rate := e.cfg.Budgets.PeoplePerMinute
	if rate <= 0 || r.Users == 0 {
		return
	}
	need := time.Duration(float64(r.Users) / float64(rate) * float64(time.Minute))
	msg := fmt.Sprintf("%d users at %d/min need %.2f hours", r.Users, rate, need.Hours())
	if interval > 0 {
		msg += fmt.Sprintf("; the interval is %v", interval)
		e.fleet.Shortfall(need - interval)
		if need > interval {
			e.log.Warn("the round cannot finish within its interval at the configured rate: "+msg, "round", r.Key)
			e.users.Note("round " + r.Key + ": cannot finish in its interval: " + msg)
			return
		}
	}
	e.log.Info(msg, "round", r.Key)
}

// count adds what was reported of one user to this process's share of
// round id.
func (e *engine) count(id int64, s offline.Summary) {
	e.fleet.Users(metrics.UserOK, s.OK)
	e.fleet.Users(metrics.UserRevoked, s.Revoked)
	e.fleet.Users(metrics.UserFailed, s.Failed)
	e.fleet.Users(metrics.UserSkipped, s.Skipped)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.shares[id] = e.shares[id].Plus(s)
	e.progress[id] = e.progress[id].Plus(s)
}

// flushProgress adds what this process reported since the last flush to
// the rounds' counts in the database (signin-admin rounds); what cannot be
// written is kept for the next flush.
func (e *engine) flushProgress(ctx context.Context) {
	e.mu.Lock()
	p := e.progress
	e.progress = map[int64]offline.Summary{}
	e.mu.Unlock()
	for id, s := range p {
		if err := e.db.AddRoundProgress(ctx, id, s.OK+s.Revoked+s.Skipped, s.Failed); err != nil {
			e.mu.Lock()
			e.progress[id] = e.progress[id].Plus(s)
			e.mu.Unlock()
			if ctx.Err() == nil {
				e.log.Warn("counting the round's progress", "round", id, "error", err)
			}
		}
	}
}

// share removes and returns this process's share of round id.
func (e *engine) share(id int64) offline.Summary {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.shares[id]
	delete(e.shares, id)
	return s
}
