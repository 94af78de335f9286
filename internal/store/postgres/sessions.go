package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"example.com/signin"
	"example.com/signin/internal/grant"
)

// Server-side sessions: the cookie carries only a random session id; the
// row keyed by that id's SHA-256 holds the session. A copy of the table
// therefore gives no one a cookie that works, and ending a session (or all
// of a user's) takes effect at once on every replica.

// MaxSessionData bounds a session's data.
const MaxSessionData = 64 << 10

// cleanupEvery is how often, at most, CreateSession also removes expired
// sessions, and cleanupBatch how many at most each time.
const (
	cleanupEvery = time.Minute
	cleanupBatch = 1000
)

// idHash is what the sessions table keeps of a session id.
func idHash(id string) []byte {
	h := sha256.Sum256([]byte(id))
	return h[:]
}

func checkSessionID(id string) error {
	if id == "" {
		return signin.Errorf(signin.EINVALID, "invalid_session", "The session id is empty.")
	}
	return nil
}

// CreateSession stores a session for sub under id (a random string from
// the caller, at least 128 bits of entropy: it is the cookie's only
// secret), holding data, until expires. An id already in use is ECONFLICT.
// Now and then it also removes expired sessions (a bounded batch).
func (s *Store) CreateSession(ctx context.Context, id string, sub string, data []byte, expires time.Time) error {
	if err := checkSessionID(id); err != nil {
		return err
	}
	if err := grant.CheckSub(sub); err != nil {
		return err
	}
	if len(data) > MaxSessionData {
		return signin.Errorf(signin.ETOOLARGE, "session_too_large", "The session is larger than %d bytes.", MaxSessionData)
	}
	if data == nil {
		data = []byte{}
	}
	now := s.now()
	ctx, cancel := s.bound(ctx, 0)
	defer cancel()
	// A new session need not wait for its WAL to reach the disk: a crash
	// in the next few milliseconds loses at worst a session that was just
	// made, and its user signs in again. Not waiting for that fsync is most
	// of a sign-in's database time. (Credentials are never written so:
	// Google gives a refresh token once.)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit TO OFF`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO sessions (id_hash, sub, data, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
			idHash(id), escapeText(sub), data, now, expires)
		return err
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
		return signin.Errorf(signin.ECONFLICT, "session_exists", "The session id is already in use.")
	}
	if err != nil {
		return s.fail(ctx, err, "cannot store the session")
	}
	s.maybeCleanup(ctx, now)
	return nil
}

// LoadSession returns the session stored under id: its user, data and
// expiry. A session that does not exist or has expired is ENOTFOUND.
func (s *Store) LoadSession(ctx context.Context, id string) (sub string, data []byte, expires time.Time, err error) {
	if err := checkSessionID(id); err != nil {
		return "", nil, time.Time{}, err
	}
	ctx, cancel := s.bound(ctx, 0)
	defer cancel()
	var key string
	err = s.pool.QueryRow(ctx, `SELECT sub, data, expires_at FROM sessions WHERE id_hash = $1 AND expires_at > $2`,
		idHash(id), s.now()).Scan(&key, &data, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil, time.Time{}, signin.Errorf(signin.ENOTFOUND, "no_session", "No such session, or it has expired.")
	}
	if err != nil {
		return "", nil, time.Time{}, s.fail(ctx, err, "cannot read the session")
	}
	sub, ok := unescapeText(key)
	if !ok {
		return "", nil, time.Time{}, signin.Errorf(signin.EINTERNAL, "corrupt_session", "A stored session cannot be read.")
	}
	return sub, data, expires.UTC(), nil
}

// DeleteSession ends the session stored under id. Ending one that does not
// exist (signed out already, or expired and removed) is not an error.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if err := checkSessionID(id); err != nil {
		return err
	}
	ctx, cancel := s.bound(ctx, 0)
	defer cancel()
	if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE id_hash = $1`, idHash(id)); err != nil {
		return s.fail(ctx, err, "cannot delete the session")
	}
	return nil
}

// DeleteUserSessions ends every session of sub (on disconnect, or an
// admin's "sign out everywhere") and returns how many there were.
func (s *Store) DeleteUserSessions(ctx context.Context, sub string) (int, error) {
	if err := grant.CheckSub(sub); err != nil {
		return 0, err
	}
	ctx, cancel := s.bound(ctx, 0)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE sub = $1`, escapeText(sub))
	if err != nil {
		return 0, s.fail(ctx, err, "cannot delete the user's sessions")
	}
	return int(tag.RowsAffected()), nil
}

// DeleteExpiredSessions removes up to limit sessions that expired, and
// returns how many it removed. CreateSession calls it now and then; a
// command may call it in a loop to clean up at once.
func (s *Store) DeleteExpiredSessions(ctx context.Context, limit int) (int, error) {
	ctx, cancel := s.bound(ctx, 0)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE id_hash IN
		(SELECT id_hash FROM sessions WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`, s.now(), limit)
	if err != nil {
		return 0, s.fail(ctx, err, "cannot delete expired sessions")
	}
	return int(tag.RowsAffected()), nil
}

// maybeCleanup removes a batch of expired sessions if this Store has not
// done so for cleanupEvery. Failures are logged, never returned: the
// session was stored, and expired rows are not served anyway.
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
	if n, err := s.DeleteExpiredSessions(ctx, cleanupBatch); err != nil {
		s.log.Warn("removing expired sessions failed", "error", err.Error())
	} else if n > 0 {
		s.log.Debug("removed expired sessions", "count", n)
	}
}
