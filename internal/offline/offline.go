// Package offline is the offline-fetch engine: it acts for users while they
// are away. For each stored user with an active grant it gets a valid access
// token (refreshing it, and saving the refreshed token, only when needed),
// fetches the user's People API profile and prints one line per user.
//
// It is built for many users: the store is read as a stream by a bounded
// pool of workers, so memory does not grow with the number of users; Google's
// 429 and 5xx answers are retried with backoff; a user whose grant Google
// refuses (invalid_grant) is marked revoked in the store and the run goes on;
// cancelling the context stops it cleanly. cmd/offline-fetch only turns flags
// into a Config and calls Run.
package offline

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"example.com/signin"
	"example.com/signin/internal/grant"
)

// Defaults for Config's zero values.
const (
	DefaultConcurrency    = 8
	DefaultRequestTimeout = 20 * time.Second
	DefaultMaxRetries     = 4

	// MaxConcurrency bounds Config.Concurrency: Google's per-user and
	// per-project quotas make more pointless.
	MaxConcurrency = 1024
)

// PersonFields are the People API fields fetched for each user.
const PersonFields = "names,emailAddresses,photos"

// Config is what a run needs: the Fetcher's configuration (Grants and
// HTTPClient are required; RequestTimeout and MaxRetries are the
// Fetcher's) and the run's own settings.
type Config struct {
	FetcherConfig

	// User, when set, is the one user to fetch, by sub or by the email
	// their record holds; otherwise every user with an active grant. An
	// email that several users' records hold is an EINVALID error listing
	// their subs. A user whose grant was revoked counts as revoked.
	User string
	// Concurrency is how many users are fetched at once (default 8).
	Concurrency int

	// JSON prints JSON lines instead of tab-separated text.
	JSON bool
	// Stdout receives one line per user; Stderr errors, progress and the
	// summary. Nil discards.
	Stdout, Stderr io.Writer
	// Progress draws a progress line on Stderr, redrawn in place at most
	// every half second; set it when Stderr is a terminal.
	Progress bool
}

// Summary counts what happened to the users of a run.
type Summary struct {
	OK      int // profile fetched and printed
	Revoked int // Google refused the grant during this run; now marked revoked
	Failed  int // anything else that went wrong, unreadable records included
	Skipped int // already revoked before the run: not tried
	// ScopeMissing counts the users whose grant lacks a scope the work
	// needs (-scopes): not tried, not a failure of the run; their page
	// asks them for it.
	ScopeMissing int
	// Refreshed counts the users among OK whose access token was
	// refreshed (and the new one saved) for this run.
	Refreshed int
	// Interrupted counts users whose fetch the cancellation cut short;
	// they are in no other count.
	Interrupted int
}

// Plus is s and o counted together.
func (s Summary) Plus(o Summary) Summary {
	return Summary{OK: s.OK + o.OK, Revoked: s.Revoked + o.Revoked, Failed: s.Failed + o.Failed, Skipped: s.Skipped + o.Skipped,
		ScopeMissing: s.ScopeMissing + o.ScopeMissing, Refreshed: s.Refreshed + o.Refreshed, Interrupted: s.Interrupted + o.Interrupted}
}

// String is the summary line: "ok=N revoked=N failed=N skipped=N", with
// " scope_missing=N" when users lack a scope the work needs,
// " refreshed=N" when tokens were refreshed and " interrupted=N" when the
// run was cut short.
func (s Summary) String() string {
	line := fmt.Sprintf("ok=%d revoked=%d failed=%d skipped=%d", s.OK, s.Revoked, s.Failed, s.Skipped)
	if s.ScopeMissing > 0 {
		line += fmt.Sprintf(" scope_missing=%d", s.ScopeMissing)
	}
	if s.Refreshed > 0 {
		line += fmt.Sprintf(" refreshed=%d", s.Refreshed)
	}
	if s.Interrupted > 0 {
		line += fmt.Sprintf(" interrupted=%d", s.Interrupted)
	}
	return line
}

// ExitCode is the process exit status for a run's result: 2 for a usage or
// configuration error, 1 when the run failed (store error, interruption) or
// some user failed or was found revoked, 0 when every user tried succeeded.
// Users skipped because they were revoked in an earlier run do not fail the
// run: a nightly job would otherwise fail forever over one departed user.
func ExitCode(s Summary, err error) int {
	switch {
	case err != nil && signin.ErrorKind(err) == signin.EINVALID:
		return 2
	case err != nil, s.Failed > 0, s.Revoked > 0, s.Interrupted > 0:
		return 1
	}
	return 0
}

// Run fetches every user's profile (or Config.User's) and prints it. It
// returns an error only for a configuration problem (EINVALID), the store
// failing, or ctx ending; what happened to each user is in the output and the
// Summary, whose line it also prints on Stderr.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	if err := cfg.check(); err != nil {
		return Summary{}, err
	}
	r := newRunner(cfg)
	return r.run(ctx)
}

func (c *Config) check() error {
	invalid := func(format string, args ...any) error {
		return signin.Errorf(signin.EINVALID, "invalid_config", format, args...)
	}
	switch {
	case c.Grants == nil:
		return invalid("offline: no grants (credential store)")
	case c.HTTPClient == nil:
		return invalid("offline: no HTTP client for Google")
	case c.Concurrency < 0 || c.Concurrency > MaxConcurrency:
		return invalid("offline: Concurrency %d: want 1 to %d", c.Concurrency, MaxConcurrency)
	case c.RequestTimeout < 0:
		return invalid("offline: the request timeout must be positive")
	}
	if c.User != "" {
		if err := grant.CheckSub(c.User); err != nil {
			return invalid("offline: -user: %s", signin.ErrorMessage(err))
		}
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Stdout == nil {
		c.Stdout = io.Discard
	}
	if c.Stderr == nil {
		c.Stderr = io.Discard
	}
	return nil
}

type runner struct {
	cfg   Config
	f     *Fetcher
	out   *output
	start time.Time

	ok, revoked, failed, skipped, scopeMissing, refreshed, interrupted atomic.Int64
}

func newRunner(cfg Config) *runner {
	f := NewFetcher(cfg.FetcherConfig)
	cfg.FetcherConfig = f.cfg // with its defaults
	return &runner{
		cfg:   cfg,
		f:     f,
		out:   &output{json: cfg.JSON, stdout: cfg.Stdout, stderr: cfg.Stderr},
		start: cfg.Now(),
	}
}

func (r *runner) run(ctx context.Context) (Summary, error) {
	jobs := make(chan *grant.Record) // unbuffered: the store is read as fast as users are done
	var wg sync.WaitGroup
	for range r.cfg.Concurrency {
		wg.Go(func() {
			for rec := range jobs {
				if ctx.Err() != nil {
					continue // started nothing new after cancellation
				}
				r.fetch(ctx, rec)
			}
		})
	}
	stopProgress := r.progress()

	dispatch := func(rec *grant.Record) error {
		switch act := grant.ActOn(rec); {
		case act == grant.PassOver && r.cfg.User == "":
			return nil
		case act == grant.SkipRevoked && r.cfg.User != "":
			// The one user asked for cannot be done: a failure, not
			// one departed user among many.
			r.revoked.Add(1)
			r.out.revoked(whoOf(rec), revokedBefore(rec))
			return nil
		case act == grant.SkipRevoked:
			r.skipped.Add(1)
			r.out.skipped(rec)
			return nil
		}
		select {
		case jobs <- rec:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var err error
	if r.cfg.User != "" {
		var rec *grant.Record
		rec, err = grant.FindUser(ctx, r.cfg.Grants.Store(), r.cfg.User)
		switch {
		case err == nil:
			err = dispatch(rec)
		case signin.ErrorCode(err) == grant.CodeAmbiguousUser:
			err = signin.Wrap(err, signin.EINVALID, grant.CodeAmbiguousUser, "-user: "+signin.ErrorMessage(err))
		case signin.ErrorKind(err) == signin.ENOTFOUND:
			r.failed.Add(1)
			r.out.failed(asked(r.cfg.User), "not_found", signin.ErrorMessage(err))
			err = nil
		case signin.ErrorCode(err) == grant.CodeCorruptRecord:
			r.failed.Add(1)
			r.out.failed(asked(r.cfg.User), grant.CodeCorruptRecord, describe(err))
			err = nil
		}
	} else {
		err = r.cfg.Grants.Store().List(ctx, func(rec *grant.Record, err error) error {
			if err != nil {
				r.failed.Add(1)
				r.out.failed(who{sub: grant.DamagedSub(err)}, signin.ErrorCode(err), describe(err))
				return nil
			}
			return dispatch(rec)
		})
	}
	close(jobs)
	wg.Wait()
	stopProgress()
	if signin.ErrorKind(err) == signin.EINVALID {
		return r.summary(), err // -user named no one in particular
	}

	sum := r.summary()
	r.out.stderrLine(sum.String())
	r.cfg.Logger.Info("offline-fetch done", "summary", sum.String(), "retries", r.f.rt.retries.Load(),
		"elapsed", r.cfg.Now().Sub(r.start))
	if ctx.Err() != nil {
		return sum, fmt.Errorf("offline-fetch interrupted: %w", context.Cause(ctx))
	}
	if err != nil {
		return sum, err
	}
	return sum, nil
}

// asked is the user -user named, when no record says more: an email is
// an email, never a sub.
func asked(user string) who {
	if strings.Contains(user, "@") {
		return who{email: user}
	}
	return who{sub: user}
}

func (r *runner) summary() Summary {
	return Summary{
		OK:           int(r.ok.Load()),
		Revoked:      int(r.revoked.Load()),
		Failed:       int(r.failed.Load()),
		Skipped:      int(r.skipped.Load()),
		ScopeMissing: int(r.scopeMissing.Load()),
		Refreshed:    int(r.refreshed.Load()),
		Interrupted:  int(r.interrupted.Load()),
	}
}

// fetch does one user: Users.Try, then Users.Report, the same code a
// round uses.
func (r *runner) fetch(ctx context.Context, rec *grant.Record) {
	o := r.try(ctx, rec)
	if o.err != nil && ctx.Err() != nil {
		r.interrupted.Add(1)
		return
	}
	r.report(o)
}

// progress draws the progress line every half second until stopped, if
// asked to. A short run draws nothing.
func (r *runner) progress() (stop func()) {
	if !r.cfg.Progress {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				r.out.clearProgress()
				return
			case <-t.C:
				r.out.drawProgress(progressLine(r.summary(), r.cfg.Now().Sub(r.start)))
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

func progressLine(s Summary, elapsed time.Duration) string {
	n := s.OK + s.Revoked + s.Failed + s.Skipped + s.ScopeMissing
	rate := 0.0
	if secs := elapsed.Seconds(); secs > 0 {
		rate = float64(n) / secs
	}
	users := "users"
	if n == 1 {
		users = "user"
	}
	return fmt.Sprintf("offline-fetch: %d %s, %s, %s, %.1f/s", n, users, s.String(), elapsed.Round(time.Second), rate)
}
