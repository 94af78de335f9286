package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"example.com/signin"
	"example.com/signin/internal/grant"
)

// Ended sessions (migration 00005). Signing in writes nothing here: the
// cookie is the session. Per user, session_ends keeps the time at or before
// which every session of the user is ended, and ended_sessions the key
// (SHA-256 of the id, given by the web server: this table never holds a
// cookie's id) of each session signed out, until it would have expired.
// Ending a user's sessions is one upsert, however many they hold. Rows past
// their use are removed in bounded batches, at most once per cleanupEvery,
// after a write.

// cleanupEvery is how often, at most, a write also removes expired rows,
// and cleanupBatch how many at most each time, per table.
const (
	cleanupEvery = time.Minute
	cleanupBatch = 1000
)

// maxSessionKey bounds a session key.
const maxSessionKey = 256

// maxEndedSessions bounds how many sessions of one user may be ended one
// by one and not yet expired: each costs a row, which SessionEnds reads
// with every check of the user's sessions. Past it EndSession refuses
// (too_many_ended_sessions) and the user signs out everywhere instead, one
// row however many sessions. The file store's bound (1 MiB of them) is
// about as many.
const maxEndedSessions = 10000

// SessionEnds returns what ended sub's sessions (see web.SessionStore), in
// one round trip.
func (s *Store) SessionEnds(ctx context.Context, sub string) (time.Time, []string, error) {
	if err := grant.CheckSub(sub); err != nil {
		return time.Time{}, nil, err
	}
	ctx, cancel := s.bound(ctx, 0)
	defer cancel()
	var validAfter *time.Time
	var keys []string
	err := s.pool.QueryRow(ctx, `SELECT
		(SELECT valid_after FROM session_ends WHERE sub = $1),
		ARRAY(SELECT key FROM ended_sessions WHERE sub = $1 AND expires_at > $2)`,
		escapeText(sub), s.now()).Scan(&validAfter, &keys)
	if err != nil {
		return time.Time{}, nil, s.fail(ctx, err, "cannot read the user's ended sessions")
	}
	if validAfter == nil {
		return time.Time{}, keys, nil
	}
	return validAfter.UTC(), keys, nil
}

// EndSession ends the one session of sub that key names, until expires.
func (s *Store) EndSession(ctx context.Context, sub, key string, expires time.Time) error {
	if err := grant.CheckSub(sub); err != nil {
		return err
	}
	if key == "" || len(key) > maxSessionKey {
		return signin.Errorf(signin.EINVALID, "invalid_session", "A session key is 1 to %d bytes.", maxSessionKey)
	}
	ctx, cancel := s.bound(ctx, 0)
	defer cancel()
	limit := s.maxEnded
	if limit <= 0 {
		limit = maxEndedSessions
	}
	// One statement: the row is written only while the user has fewer
	// than limit unexpired ended sessions, or when it is already there
	// (ending a session twice). Two sign-outs at once may both pass the
	// count; the bound is a guard against a runaway list, not an exact
	// quota.
	var written bool
	err := s.pool.QueryRow(ctx, `WITH w AS (
		INSERT INTO ended_sessions (sub, key, expires_at)
		SELECT $1, $2, $3
		WHERE EXISTS (SELECT 1 FROM ended_sessions WHERE sub = $1 AND key = $2)
		   OR (SELECT count(*) FROM ended_sessions WHERE sub = $1 AND expires_at > $4) < $5
		ON CONFLICT (sub, key) DO UPDATE SET expires_at = GREATEST(ended_sessions.expires_at, EXCLUDED.expires_at)
		RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM w)`,
		escapeText(sub), key, expires, s.now(), limit).Scan(&written)
	if err != nil {
		return s.fail(ctx, err, "cannot end the session")
	}
	if !written {
		return signin.Errorf(signin.ETOOLARGE, "too_many_ended_sessions", "Too many sessions of this user were ended one by one; sign out everywhere instead.")
	}
	s.maybeCleanup(ctx, s.now())
	return nil
}

// EndUserSessions ends every session of sub issued at or before at: one
// row, whose valid_after only moves forward.
func (s *Store) EndUserSessions(ctx context.Context, sub string, at, keepUntil time.Time) error {
	if err := grant.CheckSub(sub); err != nil {
		return err
	}
	ctx, cancel := s.bound(ctx, 0)
	defer cancel()
	_, err := s.pool.Exec(ctx, `INSERT INTO session_ends (sub, valid_after, keep_until) VALUES ($1, $2, $3)
		ON CONFLICT (sub) DO UPDATE SET
			valid_after = GREATEST(session_ends.valid_after, EXCLUDED.valid_after),
			keep_until = GREATEST(session_ends.keep_until, EXCLUDED.keep_until)`,
		escapeText(sub), at, keepUntil)
	if err != nil {
		return s.fail(ctx, err, "cannot end the user's sessions")
	}
	s.maybeCleanup(ctx, s.now())
	return nil
}

// DeleteExpiredSessionEnds removes up to limit rows of each table that no
// longer end any session that could still be presented, and returns how
// many it removed. A write calls it now and then; a command may call it in
// a loop to clean up at once.
func (s *Store) DeleteExpiredSessionEnds(ctx context.Context, limit int) (int, error) {
	now := s.now()
	n := 0
	ctx, cancel := s.bound(ctx, 0)
	defer cancel()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM ended_sessions WHERE ctid IN
			(SELECT ctid FROM ended_sessions WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`, now, limit)
		if err != nil {
			return err
		}
		n += int(tag.RowsAffected())
		tag, err = tx.Exec(ctx, `DELETE FROM session_ends WHERE sub IN
			(SELECT sub FROM session_ends WHERE keep_until <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`, now, limit)
		n += int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return 0, s.fail(ctx, err, "cannot delete expired ended sessions")
	}
	return n, nil
}

// maybeCleanup removes a batch of expired rows if this Store has not done
// so for cleanupEvery. Failures are logged, never returned: the session was
// ended, and expired rows end nothing anyway.
func (s *Store) maybeCleanup(ctx context.Context, now time.Time) {
	s.cleanupMu.Lock()
	due := now.Sub(s.lastCleanup) >= cleanupEvery
	if due {
		s.lastCleanup = now
	}
	s.cleanupMu.Unlock()
	if !due {
		return
	}
	if n, err := s.DeleteExpiredSessionEnds(ctx, cleanupBatch); err != nil {
		s.log.Warn("removing expired ended sessions failed", "error", err.Error())
	} else if n > 0 {
		s.log.Debug("removed expired ended sessions", "count", n)
	}
}
