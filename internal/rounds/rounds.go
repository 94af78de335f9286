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
package rounds

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"example.com/signin"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/offline"
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

	// rescuerInterval, leaderTTL and schedulerInterval are River's own
	// (not configurable): its rescuer looks for stuck jobs every 30 s, a
	// dead leader is replaced within about 15 s, and a job to retry is
	// made available within 5 s.
	rescuerInterval   = 30 * time.Second
	leaderTTL         = 15 * time.Second
	schedulerInterval = 5 * time.Second

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

// MaxRescueDelay bounds how long after its process died a user's job is
// running again elsewhere: the rescue horizon, River's rescuer interval, a
// new leader if the dead process led, and the scheduler.
func MaxRescueDelay(jobTimeout time.Duration) time.Duration {
	return RescueAfter(jobTimeout) + rescuerInterval + leaderTTL + schedulerInterval
}

// Config configures Run.
type Config struct {
	// DatabaseURL is the credentials' database; River's tables live there
	// too (migrated by Run).
	DatabaseURL string
	// Offline is the per-user work and output, as for offline.Run (User is
	// ignored: a round is every user). Its Concurrency is the number of
	// users this process does at once.
	Offline offline.Config
	// Every, when positive, makes this process a worker: a round every
	// Every, until ctx ends. Zero: join or start one round, then return.
	Every time.Duration
	// JobTimeout bounds one user's job (DefaultJobTimeout).
	JobTimeout time.Duration
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
	if cfg.Every < 0 || cfg.JobTimeout < 0 {
		return offline.Summary{}, signin.Errorf(signin.EINVALID, "invalid_config", "rounds: negative interval or job timeout")
	}
	users, err := offline.NewUsers(cfg.Offline)
	if err != nil {
		return offline.Summary{}, err
	}
	conc := cmp.Or(cfg.Offline.Concurrency, offline.DefaultConcurrency)

	pcfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return offline.Summary{}, signin.Errorf(signin.EINVALID, "invalid_database_url", "The database URL cannot be parsed.")
	}
	pcfg.MaxConns = 8 // River's producer, completer, notifier and leader; the users' reads use the store's pool
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return offline.Summary{}, fmt.Errorf("rounds: connecting to the database: %w", err)
	}
	defer pool.Close()
	if err := migrate(ctx, pool, cfg.Logger); err != nil {
		return offline.Summary{}, err
	}

	e := &engine{
		pool:  pool,
		store: cfg.Offline.Grants.Store(),
		users: users,
		log:   cfg.Logger,
		slots: make(chan struct{}, conc),
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
		FetchCooldown: 10 * time.Millisecond,
		Logger:        cfg.Logger.With("component", "river"),
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
	client, err := river.NewClient(riverpgxv5.New(pool), rcfg)
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
	stopProgress()
	sum := users.Finish()
	return sum, runErr
}

// engine is what the workers and the process's loop share.
type engine struct {
	pool   *pgxpool.Pool
	client *river.Client[pgx.Tx]
	store  grant.Store
	users  *offline.Users
	log    *slog.Logger
	// stopping is set once the process stops: a job whose context ends
	// then was interrupted, not failed.
	stopping atomic.Bool
	// slots bounds the users done at once (Config.Offline.Concurrency).
	slots chan struct{}
}

// oneRound joins the open round, or starts one, and waits until none of
// its jobs is left to claim or run.
func (e *engine) oneRound(ctx context.Context) error {
	r, err := e.joinOrStart(ctx, oneOffKey(time.Now()), false)
	if err != nil {
		return err
	}
	e.log.Info("round", "id", r.id, "key", r.key, "started_here", r.started, "users", r.users)
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		done, err := e.finishIfDone(ctx, r.id)
		switch {
		case err != nil && ctx.Err() == nil:
			e.log.Warn("checking whether the round is done", "round", r.id, "error", err)
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

// serve is a worker's loop: it marks the open round finished once it is
// done (so that the next interval's round can start), and prints, when a
// round is over, the summary of this worker's users in it, until ctx ends.
func (e *engine) serve(ctx context.Context) error {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	var cur round              // the open round last seen
	var before offline.Summary // when it opened (rounds do not overlap)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		var r round
		err := e.pool.QueryRow(ctx, `SELECT id, key FROM offline_rounds WHERE open`).Scan(&r.id, &r.key)
		if errors.Is(err, pgx.ErrNoRows) {
			err = nil
		}
		if err == nil && r.id != 0 {
			var done bool
			if done, err = e.finishIfDone(ctx, r.id); done {
				r = round{}
			}
		}
		if err != nil {
			if ctx.Err() == nil {
				e.log.Warn("checking whether the round is done", "error", err)
			}
			continue
		}
		if cur.id != 0 && r.id != cur.id {
			now := e.users.Summary()
			e.users.Note("round " + cur.key + ": " + minus(now, before).String())
			before = now
		}
		cur = r
	}
}

// minus is what happened between two summaries.
func minus(a, b offline.Summary) offline.Summary {
	return offline.Summary{OK: a.OK - b.OK, Revoked: a.Revoked - b.Revoked, Failed: a.Failed - b.Failed,
		Skipped: a.Skipped - b.Skipped, ScopeMissing: a.ScopeMissing - b.ScopeMissing, Interrupted: a.Interrupted - b.Interrupted}
}
