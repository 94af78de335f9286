package offline

import (
	"context"
	"errors"

	"example.com/signin"
	"example.com/signin/internal/grant"
)

// Users does users one at a time for a caller that decides itself which
// users to do and when: a job queue shared by several processes (package
// rounds). It prints Run's lines, counts Run's Summary and draws Run's
// progress line, so that the output of a round is the output of a run. It
// is safe for concurrent use.
//
// Unlike Run, it separates trying a user (Try) from reporting the outcome
// (Report): a caller that will try a user again later reports nothing until
// the last try.
type Users struct {
	r *runner
}

// NewUsers checks cfg as Run does (cfg.User is ignored) and returns a Users.
func NewUsers(cfg Config) (*Users, error) {
	cfg.User = ""
	if err := cfg.check(); err != nil {
		return nil, err
	}
	return &Users{r: newRunner(cfg)}, nil
}

// Outcome is what trying one user gave, not yet reported.
type Outcome struct {
	rec       *grant.Record
	profile   Profile
	refreshed bool
	contacts  *int
	missing   []string // scopes the grant lacks (CodeScopeMissing)
	err       error
	skipped   bool
}

// Err is the user's error, nil when the profile was fetched or the user was
// skipped (revoked before).
func (o Outcome) Err() error { return o.err }

// Retryable reports whether trying again later may succeed: Google or the
// database failed or could not be reached (after the request's own
// retries). A revoked grant, a record that cannot be read, a missing scope
// are not retryable.
func (o Outcome) Retryable() bool {
	if o.err == nil {
		return false
	}
	switch signin.ErrorKind(o.err) {
	case signin.EUPSTREAM:
		return signin.ErrorCode(o.err) != "people_unauthorized"
	case signin.EUNAVAILABLE:
		return true
	}
	return errors.Is(o.err, context.DeadlineExceeded)
}

// Try fetches rec's profile, as Run does for each user, without printing
// anything. A record already revoked is skipped without calling Google.
func (u *Users) Try(ctx context.Context, rec *grant.Record) Outcome { return u.r.try(ctx, rec) }

func (r *runner) try(ctx context.Context, rec *grant.Record) Outcome {
	if grant.ActOn(rec) == grant.SkipRevoked {
		return Outcome{rec: rec, skipped: true}
	}
	res, err := r.f.Fetch(ctx, rec)
	if err != nil {
		return Outcome{rec: rec, err: err, missing: res.MissingScopes}
	}
	return Outcome{rec: rec, profile: ProfileOf(res.Person), refreshed: res.Refreshed, contacts: res.Contacts}
}

// Report prints o's line and counts it, exactly as Run would have, and
// returns what it counted (one user), for a caller keeping counts of its
// own (a round's share).
func (u *Users) Report(o Outcome) Summary { return u.r.report(o) }

func (r *runner) report(o Outcome) Summary {
	switch {
	case o.skipped:
		r.skipped.Add(1)
		r.out.skipped(o.rec)
		return Summary{Skipped: 1}
	case o.err == nil:
		r.ok.Add(1)
		if o.refreshed {
			r.refreshed.Add(1)
		}
		r.out.ok(o.rec.Sub, o.profile.Name, o.profile.Email, o.refreshed, o.contacts)
		if o.refreshed {
			return Summary{OK: 1, Refreshed: 1}
		}
		return Summary{OK: 1}
	case signin.ErrorCode(o.err) == grant.CodeScopeMissing:
		r.scopeMissing.Add(1)
		r.out.scopeMissing(whoOf(o.rec), o.missing, describe(o.err))
		return Summary{ScopeMissing: 1}
	case signin.ErrorCode(o.err) == grant.CodeOfflineAccessRevoked:
		r.revoked.Add(1)
		r.out.revoked(whoOf(o.rec), revokedReason(o.err))
		return Summary{Revoked: 1}
	default:
		r.failed.Add(1)
		r.out.failed(whoOf(o.rec), signin.ErrorCode(o.err), describe(o.err))
		return Summary{Failed: 1}
	}
}

// ReportUnreadable reports a user whose record cannot be read (sub may be
// empty when even that is unknown), as Run does, and returns what it
// counted.
func (u *Users) ReportUnreadable(sub string, err error) Summary {
	u.r.failed.Add(1)
	if sub == "" {
		sub = grant.DamagedSub(err)
	}
	u.r.out.failed(who{sub: sub}, signin.ErrorCode(err), describe(err))
	return Summary{Failed: 1}
}

// Interrupted counts a user whose try the end of the process cut short.
func (u *Users) Interrupted() { u.r.interrupted.Add(1) }

// Summary counts the users reported so far.
func (u *Users) Summary() Summary { return u.r.summary() }

// StartProgress draws the progress line, if Config.Progress asks for it,
// until the returned function is called.
func (u *Users) StartProgress() (stop func()) { return u.r.progress() }

// Note prints s as a line on Stderr, with the run's other lines (a
// round's own summary, say).
func (u *Users) Note(s string) { u.r.out.stderrLine(s) }

// Finish prints the summary line on Stderr, as Run does at its end, and
// returns the summary.
func (u *Users) Finish() Summary {
	sum := u.r.summary()
	u.r.out.stderrLine(sum.String())
	u.r.cfg.Logger.Info("offline-fetch done", "summary", sum.String(), "retries", u.r.f.rt.retries.Load(),
		"elapsed", u.r.cfg.Now().Sub(u.r.start))
	return sum
}
