package rounds

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/riverqueue/river"

	"example.com/signin"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/metrics"
)

// quotaSnooze is how long a user put back for lack of budget waits before
// it may be claimed again.
const quotaSnooze = time.Second

// River queues: users' jobs, and the jobs that start scheduled rounds
// (worked one at a time, by workers only).
const (
	queueUsers  = "offline_fetch"
	queueRounds = "offline_fetch_rounds"
)

// userArgs is one user's job in a round: the round's id and the user's sub,
// nothing else (the record, and its token, are read from the store when the
// job runs). A user has one job per round.
type userArgs struct {
	Round int64  `json:"round"`
	Sub   string `json:"sub"`
}

func (userArgs) Kind() string { return "offline_fetch_user" }

func (userArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueUsers, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// roundArgs starts the scheduled round named Key. River's leader enqueues
// one per interval; Key is unique besides, so that a new leader's first
// enqueue (RunOnStart) does not start the interval's round again.
type roundArgs struct {
	Key string `json:"key"`
}

func (roundArgs) Kind() string { return "offline_fetch_round" }

func (roundArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueRounds, MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// Retry delays of a user's job: 2 s, then 8 s, then 32 s, jittered. They
// come on top of each request's own retries (offline.Fetcher, which honours
// Retry-After up to 30 s): a user is tried again only once those are spent.
const (
	retryBase = 2 * time.Second
	retryMax  = time.Minute
)

// userWorker does one user's job.
type userWorker struct {
	river.WorkerDefaults[userArgs]
	e *engine
}

// NextRetry spreads the retries of users that failed together.
func (w *userWorker) NextRetry(job *river.Job[userArgs]) time.Time {
	d := retryMax
	if a := max(job.Attempt-1, 0); a < 5 {
		d = min(retryMax, retryBase<<(2*a))
	}
	return time.Now().Add(d/2 + rand.N(d/2+1))
}

// Work reads the user's record from the store and does the user. It
// returns an error only for a failure worth trying again (Google or the
// database down) while attempts remain, and for a job cut short by the
// process stopping (River puts it back in the queue at once). Anything
// else is reported, as a run reports it, and the job completes: a revoked
// grant (marked revoked in the store by the token source), an unreadable
// record, a failure on the last attempt.
func (w *userWorker) Work(ctx context.Context, job *river.Job[userArgs]) error {
	e := w.e
	sub := job.Args.Sub
	last := job.Attempt >= job.MaxAttempts
	ctx, st := withJobState(ctx)
	select {
	case e.slots <- struct{}{}:
		defer func() { <-e.slots }()
	case <-ctx.Done():
		e.interrupted(ctx)
		return ctx.Err()
	}
	if e.cfg.Spread > 0 {
		if err := e.spreadWait(ctx, job.Args.Round); err != nil {
			if e.interrupted(ctx) {
				return err
			}
			if ctx.Err() != nil { // the job's time went waiting for its turn
				e.fleet.Users(metrics.UserQuota, 1)
				return river.JobSnooze(quotaSnooze)
			}
			return err // the database: later
		}
	}
	rec, err := e.store.Get(ctx, sub)
	switch {
	case err == nil:
	case e.interrupted(ctx):
		return err
	case signin.ErrorKind(err) == signin.ENOTFOUND:
		// Disconnected since the round started: nothing to do, as a
		// run does not see a record deleted before it is listed.
		e.log.Info("user gone since the round started", "sub", sub)
		return nil
	case signin.ErrorCode(err) == grant.CodeCorruptRecord, last, signin.ErrorKind(err) != signin.EUNAVAILABLE:
		e.count(job.Args.Round, e.users.ReportUnreadable(sub, err))
		return nil
	default:
		return err // the database is unavailable: later
	}
	o := e.users.Try(ctx, rec)
	if o.Err() != nil && e.interrupted(ctx) {
		return o.Err()
	}
	if o.Err() != nil && st.waitedForBudget.Load() && ctx.Err() != nil {
		// The job's time went waiting for the fleet's budget (Google's
		// quota): back in the queue, its attempt not counted. A user is
		// never failed for quota.
		e.fleet.Users(metrics.UserQuota, 1)
		e.log.Info("user waited for the budget past the job's timeout; put back", "sub", sub)
		return river.JobSnooze(quotaSnooze)
	}
	if o.Retryable() && !last {
		e.fleet.Users(metrics.UserRetried, 1)
		e.log.Info("user failed; trying again later", "sub", sub, "attempt", job.Attempt, "error", o.Err())
		return o.Err()
	}
	e.count(job.Args.Round, e.users.Report(o))
	return nil
}

// interrupted reports, and counts, a job cut short because the process is
// stopping.
func (e *engine) interrupted(ctx context.Context) bool {
	if ctx.Err() == nil || !e.stopping.Load() {
		return false
	}
	e.users.Interrupted()
	e.fleet.Users(metrics.UserInterrupted, 1)
	return true
}

// roundWorker starts a scheduled round.
type roundWorker struct {
	river.WorkerDefaults[roundArgs]
	e *engine
}

// roundTimeout bounds starting a scheduled round: listing every user and
// queueing their jobs, which takes longer than one user's job (about 10 s
// for 100,000 users on a loaded machine).
const roundTimeout = 10 * time.Minute

func (w *roundWorker) Timeout(*river.Job[roundArgs]) time.Duration { return roundTimeout }

func (w *roundWorker) Work(ctx context.Context, job *river.Job[roundArgs]) error {
	r, err := w.e.joinOrStart(ctx, job.Args.Key, true)
	if err != nil {
		return err
	}
	if r.Started {
		w.e.log.Info("round started", "id", r.ID, "key", r.Key, "users", r.Users)
		w.e.needs(r, w.e.cfg.Every)
	}
	return nil
}
