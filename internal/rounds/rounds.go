// Package rounds shares offline-fetch's work between processes on several
// machines, on River (a PostgreSQL job queue) in the credentials' database.
//
// A round is one pass over every stored user. The first process to arrive
// starts it: in one transaction, under an advisory lock, it adds a row to
// offline_rounds and one River job per user, unique per (round, user); the
// job's arguments are the round's id and the user's sub, never a token.
// Processes that arrive while a round is open join it: at most one round is
// open at a time. Each process's River client claims users' jobs (FOR UPDATE
// SKIP LOCKED) and does each with package offline's Users, which prints the
// same lines as a run without a database. A one-off process leaves once no
// job of its round is left to claim or run, and marks the round finished.
//
// A process that dies leaves its jobs running in River's table; River's
// leader rescues them after RescueAfter(JobTimeout) and another process
// does them: a user may then be done twice, never zero times.
//
// With Config.Every, processes are workers: River's periodic job, enqueued
// by the elected leader only and unique per interval, starts a round per
// interval, which every worker works.
//
// River runs on the store's pool, and every statement on the app's tables
// (offline_rounds) and every advisory lock are package postgres's: this
// package runs no SQL of its own.
package rounds

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"example.com/signin"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/metrics"
	"example.com/signin/internal/offline"
	"example.com/signin/internal/store/postgres"
)

// Defaults and bounds.
const (
	// DefaultJobTimeout bounds one user's job: the token refresh and the
	// People API call, their retries included. Past it the job's context
	// ends and the user is tried again later.
	DefaultJobTimeout = 2 * time.Minute

	// maxRescueMargin bounds how long after JobTimeout a job still
	// running is taken to be abandoned (its process died) and rescued:
	// time for a job whose context ended to return and be recorded. It is
	// JobTimeout itself when that is shorter.
	maxRescueMargin = 30 * time.Second

	// maxAttempts is how many times a user's job is tried: the first try,
	// retries of failures worth retrying (Google or the database down,
	// after each request's own retries) and rescues after a process died.
	maxAttempts = 4

	// softStop is how long a stopping process waits for its users in
	// flight before cancelling them: they go back to the queue at once,
	// for another process.
	softStop = 10 * time.Second

	// claimAhead is how many users a process claims per user it does at
	// once (see Run).
	claimAhead = 2

	// pollInterval is how often a process checks whether its round is
	// done, and a worker whether the open round is.
	pollInterval = 200 * time.Millisecond
)

// RescueAfter is how long a job may run before River takes it to be
// abandoned: JobTimeout plus a margin (JobTimeout again, at most 30 s).
func RescueAfter(jobTimeout time.Duration) time.Duration {
	return jobTimeout + min(jobTimeout, maxRescueMargin)
}

// Config configures Run.
type Config struct {
	// DB is the credentials' database. River's tables live there too
	// (migrated by Run), and River's client uses its pool: give the store
	// room for River's own connections (about 8) besides the users'.
	DB *postgres.Store
	// Offline is the per-user work and output, as for offline.Run (User is
	// ignored: a round is every user). Its Concurrency is the number of
	// users this process does at once.
	Offline offline.Config
	// Every, when positive, makes this process a worker: a round every
	// Every, until ctx ends. Zero: join or start one round, then return.
	Every time.Duration
	// JobTimeout bounds one user's job (DefaultJobTimeout).
	JobTimeout time.Duration
	// Spread, with Every, schedules each round's users evenly over this
	// much of the interval (0: all at once): the round's starter schedules
	// its jobs, and every worker paces them on the round's own budget.
	Spread time.Duration
	// Budgets, when set, are the whole fleet's rates of calls to Google,
	// held in the database: every call waits for its budget, and a 429
	// lowers it for every process (see Budgets).
	Budgets Budgets
	// Fleet counts rounds, users by outcome, budget waits and 429s. Nil
	// counts nothing.
	Fleet *metrics.Fleet
	// Logger receives what an operator should know. Nil discards.
	Logger *slog.Logger
}

// Run does its share of a round (or, with Every, of a round per interval
// until ctx ends) and returns the summary of the users this process did.
// Its error is for configuration problems (EINVALID), the database failing,
// and, for a one-off round, ctx ending before the round did.
func Run(ctx context.Context, cfg Config) (offline.Summary, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.JobTimeout = cmp.Or(cfg.JobTimeout, DefaultJobTimeout)
	if cfg.Every < 0 || cfg.JobTimeout < 0 || cfg.Spread < 0 || (cfg.Spread > 0 && cfg.Spread >= cfg.Every) {
		return offline.Summary{}, signin.Errorf(signin.EINVALID, "invalid_config", "rounds: negative interval or job timeout")
	}
	if cfg.DB == nil {
		return offline.Summary{}, signin.Errorf(signin.EINVALID, "invalid_config", "rounds: no database")
	}
	if cfg.Budgets.PeoplePerMinute < 0 || cfg.Budgets.TokenPerMinute < 0 {
		return offline.Summary{}, signin.Errorf(signin.EINVALID, "invalid_config", "rounds: negative rate")
	}
	if cfg.Budgets != (Budgets{}) {
		cfg.Offline.Pacer = newPacer(cfg.DB, cfg.Budgets, cfg.Fleet, cfg.Logger)
	}
	users, err := offline.NewUsers(cfg.Offline)
	if err != nil {
		return offline.Summary{}, err
	}
	conc := cmp.Or(cfg.Offline.Concurrency, offline.DefaultConcurrency)
	if err := cfg.DB.MigrateRiver(ctx, cfg.Logger); err != nil {
		return offline.Summary{}, fmt.Errorf("rounds: %w", err)
	}

	e := &engine{
		db:       cfg.DB,
		store:    cfg.Offline.Grants.Store(),
		users:    users,
		log:      cfg.Logger,
		slots:    make(chan struct{}, conc),
		shares:   map[int64]offline.Summary{},
		progress: map[int64]offline.Summary{},
		spreads:  map[int64]*budget{},
		fleet:    cfg.Fleet,
		cfg:      cfg,
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &userWorker{e: e})
	river.AddWorker(workers, &roundWorker{e: e})
	rcfg := &river.Config{
		// Twice as many River workers as users done at once (e.slots): a
		// claim takes a round trip to the database, during which a worker
		// slot would otherwise sit idle; claimed users wait for a slot.
		Queues:               map[string]river.QueueConfig{queueUsers: {MaxWorkers: claimAhead * conc}},
		Workers:              workers,
		JobTimeout:           cfg.JobTimeout,
		RescueStuckJobsAfter: RescueAfter(cfg.JobTimeout),
		MaxAttempts:          maxAttempts,
		SoftStopTimeout:      softStop,
		// A user's job is short (one People API call): fetch again soon
		// after slots free up rather than every 100 ms.
		FetchCooldown:      10 * time.Millisecond,
		AdvisoryLockPrefix: postgres.RiverLockPrefix,
		Logger:             cfg.Logger.With("component", "river"),
	}
	if cfg.Every > 0 {
		rcfg.Queues[queueRounds] = river.QueueConfig{MaxWorkers: 1}
		rcfg.PeriodicJobs = []*river.PeriodicJob{river.NewPeriodicJob(
			river.PeriodicInterval(cfg.Every),
			func() (river.JobArgs, *river.InsertOpts) {
				return roundArgs{Key: scheduledKey(cfg.Every, time.Now())}, nil
			},
			&river.PeriodicJobOpts{ID: "offline_fetch_round", RunOnStart: true},
		)}
	}
	client, err := river.NewClient(riverpgxv5.New(cfg.DB.Pool()), rcfg)
	if err != nil {
		return offline.Summary{}, signin.Wrap(err, signin.EINVALID, "invalid_config", "rounds: cannot configure the job queue")
	}
	e.client = client

	// The client's context is not ctx: on ctx's end, Stop lets the users in
	// flight finish (up to softStop) rather than cutting them at once.
	if err := client.Start(context.WithoutCancel(ctx)); err != nil {
		return offline.Summary{}, fmt.Errorf("rounds: starting the job queue: %w", err)
	}
	stopProgress := users.StartProgress()
	var runErr error
	if cfg.Every > 0 {
		runErr = e.serve(ctx)
	} else {
		runErr = e.oneRound(ctx)
	}
	e.stopping.Store(true)
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), softStop+10*time.Second)
	if err := client.Stop(stopCtx); err != nil {
		cfg.Logger.Warn("stopping the job queue", "error", err)
	}
	cancel()
	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	e.flushProgress(flushCtx)
	cancel()
	if cfg.Every > 0 {
		// The rounds that ended while this worker stopped: its share of
		// them is final now that its users are back or done.
		reportCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		e.reportEnded(reportCtx)
		cancel()
	}
	stopProgress()
	sum := users.Finish()
	return sum, runErr
}

// engine is what the workers and the process's loop share.
type engine struct {
	db     *postgres.Store
	client *river.Client[pgx.Tx]
	store  grant.Store
	users  *offline.Users
	log    *slog.Logger
	// stopping is set once the process stops: a job whose context ends
	// then was interrupted, not failed.
	stopping atomic.Bool
	// slots bounds the users done at once (Config.Offline.Concurrency).
	slots chan struct{}

	fleet *metrics.Fleet
	cfg   Config

	mu sync.Mutex
	// shares is what this process reported of each round's users, until
	// the round ends and a worker prints it.
	shares map[int64]offline.Summary
	// progress is what this process reported of each round's users since
	// it last added it to the database (flushProgress).
	progress map[int64]offline.Summary
	// spreads are the rounds' own budgets (Config.Spread), by round.
	spreads map[int64]*budget
	// reported is the last round a worker has printed its share of (or,
	// at its start, the last one that ended before).
	reported int64
}

// oneRound joins the open round, or starts one, and waits until none of
// its jobs is left to claim or run.
func (e *engine) oneRound(ctx context.Context) error {
	r, err := e.joinOrStart(ctx, oneOffKey(time.Now()), false)
	if err != nil {
		return err
	}
	e.log.Info("round", "id", r.ID, "key", r.Key, "started_here", r.Started, "users", r.Users)
	if r.Started {
		e.needs(r, 0)
	}
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		e.flushProgress(ctx)
		done, err := e.db.FinishRoundIfDone(ctx, r.ID, userArgs{}.Kind())
		switch {
		case err != nil && ctx.Err() == nil:
			e.log.Warn("checking whether the round is done", "round", r.ID, "error", err)
		case done:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("offline-fetch interrupted: %w", context.Cause(ctx))
		case <-t.C:
		}
	}
}

// serve is a worker's loop until ctx ends: it marks the open round
// finished once none of its jobs is left (so that the next interval's round
// can start), and prints this worker's share of every round that ended
// since it started, the open one at its start included.
func (e *engine) serve(ctx context.Context) error {
	for {
		open, err := e.db.OpenRound(ctx)
		if err == nil {
			var last int64
			last, err = e.db.LastRoundID(ctx)
			e.reported = last
			if open.ID != 0 {
				e.reported = open.ID - 1
			}
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		e.log.Warn("reading the rounds", "error", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pollInterval):
		}
	}
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		e.reportEnded(ctx)
	}
}

// reportEnded finishes the open round if none of its jobs is left, and
// prints this worker's share of each round that ended since the last it
// printed, in order: "round KEY: ok=N revoked=N failed=N skipped=N".
func (e *engine) reportEnded(ctx context.Context) {
	e.flushProgress(ctx)
	rs, err := e.db.RoundsAfter(ctx, e.reported)
	for _, r := range rs {
		if r.Open {
			var done bool
			if done, err = e.db.FinishRoundIfDone(ctx, r.ID, userArgs{}.Kind()); err != nil || !done {
				break
			}
		}
		e.users.Note("round " + r.Key + ": " + e.share(r.ID).String())
		e.mu.Lock()
		delete(e.spreads, r.ID)
		e.mu.Unlock()
		e.fleet.Round(metrics.RoundFinished)
		e.reported = r.ID
	}
	if err != nil && ctx.Err() == nil {
		e.log.Warn("checking whether the round is done", "error", err)
	}
}
