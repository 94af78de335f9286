package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"example.com/signin"
	"example.com/signin/internal/grant"
)

var _ grant.Store = (*Store)(nil)

// recordColumns are the columns of a credentials row, in scanRecord's order.
const recordColumns = `sub, version, email, name, scopes, status, revoked_reason, revoked_at,
	access_token, token_type, refresh_token, expiry, created_at, updated_at, disabled_at, disabled_reason, refreshed_at`

// Get returns sub's record, or an ENOTFOUND error.
func (s *Store) Get(ctx context.Context, sub string) (*grant.Record, error) {
	if err := grant.CheckSub(sub); err != nil {
		return nil, err
	}
	key := escapeText(sub)
	c := s.cache
	var ticket uint64
	fill := false
	if c != nil {
		var rec *grant.Record
		var hit bool
		if rec, hit, ticket, fill = c.lookup(key); hit {
			if rec == nil {
				return nil, notFound()
			}
			return rec, nil
		}
		c.reads.Add(1)
	}
	ctx, cancel := s.bound(ctx, 0)
	defer cancel()
	rec, err := scanRecord(s.pool.QueryRow(ctx, `SELECT `+recordColumns+` FROM credentials WHERE sub = $1`, key))
	if c != nil && c.afterRead != nil {
		c.afterRead(key)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		if fill {
			c.fill(key, nil, ticket)
		}
		return nil, notFound()
	}
	if err != nil {
		// Not kept: a damaged row or an outage is read again next time.
		return nil, s.fail(ctx, err, "cannot read the credential record")
	}
	if fill {
		c.fill(key, cloneRecord(rec), ticket)
	}
	return rec, nil
}

// forget drops key from the record cache once a write of this replica is
// over, committed or not (or not known), so that its next Get reads the
// database rather than what the cache held before: a replica reads its own
// writes at once, without waiting for the notification.
func (s *Store) forget(key string) {
	if s.cache != nil {
		s.cache.drop(key)
	}
}

func notFound() error {
	return signin.Errorf(signin.ENOTFOUND, "", "No stored credentials for this user.")
}

// Update reads sub's record and saves what fn returns, in one transaction
// holding the row's lock (SELECT ... FOR UPDATE) from the read to the
// commit, so that updates of a user are serialised across replicas and
// processes: a second replica wanting to refresh the same token waits, then
// reads the refreshed one. Waiting is bounded by Config.LockTimeout (then
// EUNAVAILABLE, code record_busy), holding by Config.HoldTimeout.
//
// A user with no row has nothing to lock, so two first writers would both
// see nil and the second would fail on the primary key (or, worse, a
// connect and a refresh would each act on what they saw). Creation is
// therefore serialised by a transaction advisory lock on a hash of the
// sub, taken only when the row is missing, before reading again: whoever
// comes second sees the first one's row, and locks it. Hash collisions
// only make two users' first writes wait for each other.
//
// fn runs inside the transaction: it sees the record as locked, and
// nothing is written if it fails or returns nil. If the database goes away
// meanwhile the transaction is rolled back by the server: nothing is
// written, and the error is EUNAVAILABLE.
func (s *Store) Update(ctx context.Context, sub string, fn func(cur *grant.Record) (*grant.Record, error)) (*grant.Record, error) {
	if err := grant.CheckSub(sub); err != nil {
		return nil, err
	}
	key := escapeText(sub)
	if s.cache != nil {
		// The write may create key's row: from now on the known subs
		// must not answer "no row" for it (a Get once the commit is
		// done must read it), and again when the write is over, in case
		// the set was loaded again meanwhile (see knownsubs.go).
		s.cache.mayHave(key)
		defer s.cache.wrote(key) // after the deferred rollback: the transaction is over
	}
	// Two bounds: taking the lock (which may wait LockTimeout for another
	// holder), then writing; fn runs between them, unbounded here
	// (HoldTimeout ends a hung holder's session).
	lockCtx, cancelLock := s.bound(ctx, s.lockWait)
	defer cancelLock()
	tx, err := s.begin(lockCtx)
	if err != nil {
		return nil, err
	}
	defer s.rollback(ctx, tx)

	cur, err := s.lockRow(lockCtx, tx, key)
	if err == nil && cur == nil {
		if _, err = tx.Exec(lockCtx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, lockClassUserCreate, key); err != nil {
			return nil, s.fail(lockCtx, err, "cannot lock the credential record")
		}
		cur, err = s.lockRow(lockCtx, tx, key)
	}
	if err != nil {
		return nil, err
	}
	cancelLock()
	next, data, err := grant.Apply(sub, cur, fn, func() time.Time { return normTime(s.now()) })
	if err != nil || data == nil {
		// nil on an error; cur when there is nothing to write (the
		// deferred rollback releases the lock)
		return next, err
	}
	rec := *next
	rec.CreatedAt = normTime(rec.CreatedAt)
	rec.Token.Expiry = normTime(rec.Token.Expiry)
	rec.RevokedAt = normTimePtr(rec.RevokedAt)
	rec.DisabledAt = normTimePtr(rec.DisabledAt)
	rec.RefreshedAt = normTimePtr(rec.RefreshedAt)
	rec.Scopes = append([]string(nil), rec.Scopes...)
	ctx, cancel := s.bound(ctx, 0)
	defer cancel()
	if cur == nil {
		_, err = tx.Exec(ctx, `INSERT INTO credentials (`+recordColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`, recordArgs(key, &rec)...)
	} else {
		_, err = tx.Exec(ctx, `UPDATE credentials SET (`+recordColumns+`)
			= ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) WHERE sub = $1`, recordArgs(key, &rec)...)
	}
	if err != nil {
		return nil, s.fail(ctx, err, "cannot write the credential record")
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, s.fail(ctx, err, "cannot write the credential record")
	}
	return &rec, nil
}

// begin starts a transaction whose lock waits end after LockTimeout and
// which the server ends if it stays idle (fn running) past HoldTimeout.
func (s *Store) begin(ctx context.Context) (pgx.Tx, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, s.fail(ctx, err, "cannot start a transaction")
	}
	_, err = tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true), set_config('idle_in_transaction_session_timeout', $2, true)`,
		s.lockTimeout, s.holdTimeout)
	if err != nil {
		s.rollback(ctx, tx)
		return nil, s.fail(ctx, err, "cannot start a transaction")
	}
	return tx, nil
}

// lockRow reads and locks the row of key; nil if there is none.
func (s *Store) lockRow(ctx context.Context, tx pgx.Tx, key string) (*grant.Record, error) {
	rec, err := scanRecord(tx.QueryRow(ctx, `SELECT `+recordColumns+` FROM credentials WHERE sub = $1 FOR UPDATE`, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, s.fail(ctx, err, "cannot read the credential record")
	}
	return rec, nil
}

// Delete removes sub's record, waiting for the row's lock as Update does.
func (s *Store) Delete(ctx context.Context, sub string) error {
	if err := grant.CheckSub(sub); err != nil {
		return err
	}
	defer s.forget(escapeText(sub)) // after the deferred rollback: the transaction is over
	ctx, cancel := s.bound(ctx, s.lockWait)
	defer cancel()
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer s.rollback(ctx, tx)
	tag, err := tx.Exec(ctx, `DELETE FROM credentials WHERE sub = $1`, escapeText(sub))
	if err != nil {
		return s.fail(ctx, err, "cannot delete the credential record")
	}
	if err := tx.Commit(ctx); err != nil {
		return s.fail(ctx, err, "cannot delete the credential record")
	}
	if tag.RowsAffected() == 0 {
		return notFound()
	}
	return nil
}

// SetAside moves sub's row to credentials_set_aside if it cannot be read
// (under the row's lock), so that the next Update starts from no record and
// an operator can still look at it. A row that reads, or none, is left.
func (s *Store) SetAside(ctx context.Context, sub string) (string, error) {
	if err := grant.CheckSub(sub); err != nil {
		return "", err
	}
	key := escapeText(sub)
	defer s.forget(key) // after the deferred rollback: the transaction is over
	ctx, cancel := s.bound(ctx, s.lockWait)
	defer cancel()
	tx, err := s.begin(ctx)
	if err != nil {
		return "", err
	}
	defer s.rollback(ctx, tx)
	_, err = s.lockRow(ctx, tx, key)
	if signin.ErrorCode(err) != grant.CodeCorruptRecord {
		if err != nil {
			return "", err
		}
		return "", nil // readable, or none
	}
	if _, err := tx.Exec(ctx, `INSERT INTO credentials_set_aside SELECT *, now() FROM credentials WHERE sub = $1`, key); err != nil {
		return "", s.fail(ctx, err, "cannot set the damaged credential record aside")
	}
	if _, err := tx.Exec(ctx, `DELETE FROM credentials WHERE sub = $1`, key); err != nil {
		return "", s.fail(ctx, err, "cannot set the damaged credential record aside")
	}
	if err := tx.Commit(ctx); err != nil {
		return "", s.fail(ctx, err, "cannot set the damaged credential record aside")
	}
	return "table credentials_set_aside", nil
}

// listPage is how many rows List reads at a time.
const listPage = 100

// List calls fn for each record in order of sub, reading listPage rows at a
// time by keyset (sub greater than the last one seen), without holding a
// connection or a transaction while fn runs: memory does not grow with the
// number of users, fn may use the store, and a record that exists
// throughout is seen exactly once. One created or deleted meanwhile is
// seen or not, depending on where the listing is; none is seen twice.
func (s *Store) List(ctx context.Context, fn func(rec *grant.Record, err error) error) error {
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		page, err := s.readPage(ctx, &after)
		if err != nil {
			return err
		}
		for _, it := range page {
			if err := fn(it.rec, it.err); err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if len(page) < listPage {
			return nil
		}
	}
}

// listed is a row of List's: a record, or why it cannot be read.
type listed struct {
	rec *grant.Record
	err error
}

// readPage reads the next page of List, after *after, within
// Config.Timeout, and moves *after on.
func (s *Store) readPage(ctx context.Context, after *string) ([]listed, error) {
	ctx, cancel := s.bound(ctx, 0)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT `+recordColumns+` FROM credentials WHERE sub > $1 ORDER BY sub LIMIT $2`, *after, listPage)
	if err != nil {
		return nil, s.fail(ctx, err, "cannot list the credential records")
	}
	defer rows.Close()
	page := make([]listed, 0, listPage)
	for rows.Next() {
		rec, key, err := scanRow(rows)
		if key != "" {
			*after = key
		}
		if err != nil && key == "" { // cannot even tell which row: give up
			return nil, s.fail(ctx, err, "cannot list the credential records")
		}
		page = append(page, listed{rec, err})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, err, "cannot list the credential records")
	}
	return page, nil
}

// row is a credentials row as scanned, before checking.
type row struct {
	key                                  string
	version                              int32
	email, name                          string
	scopes                               []string
	status, revokedReason                string
	revokedAt                            *time.Time
	accessToken, tokenType, refreshToken string
	expiry                               *time.Time
	createdAt, updatedAt                 time.Time
	disabledAt                           *time.Time
	disabledReason                       string
	refreshedAt                          *time.Time
}

func (r *row) dest() []any {
	return []any{&r.key, &r.version, &r.email, &r.name, &r.scopes, &r.status, &r.revokedReason, &r.revokedAt,
		&r.accessToken, &r.tokenType, &r.refreshToken, &r.expiry, &r.createdAt, &r.updatedAt, &r.disabledAt, &r.disabledReason, &r.refreshedAt}
}

// scanRecord scans one row and checks it.
func scanRecord(r pgx.Row) (*grant.Record, error) {
	var raw row
	if err := r.Scan(raw.dest()...); err != nil {
		return nil, err
	}
	return raw.record()
}

// scanRow scans the current row of rows. It returns the row's key whenever
// it could be read, so that List can go past a row that does not decode.
func scanRow(rows pgx.Rows) (*grant.Record, string, error) {
	var raw row
	if err := rows.Scan(raw.dest()...); err != nil {
		// Read the key alone, to report the row and move on.
		vals, verr := rows.Values()
		if verr == nil && len(vals) > 0 {
			if key, ok := vals[0].(string); ok {
				return nil, key, corrupt(key, err)
			}
		}
		return nil, "", err
	}
	rec, err := raw.record()
	return rec, raw.key, err
}

// record checks a scanned row as grant.DecodeRecord checks a file
// (grant.Validate). Anything else is an EINTERNAL error with code
// grant.CodeCorruptRecord.
func (r *row) record() (*grant.Record, error) {
	sub, ok := unescapeText(r.key)
	if !ok {
		return nil, corrupt(r.key, errors.New("malformed sub"))
	}
	// Unescape every text field; one that escapeText cannot have written
	// makes the row corrupt.
	bad := false
	u := func(v string) string {
		out, ok := unescapeText(v)
		bad = bad || !ok
		return out
	}
	rec := &grant.Record{
		Version:        int(r.version),
		Sub:            sub,
		Email:          u(r.email),
		Name:           u(r.name),
		Status:         grant.Status(r.status),
		RevokedReason:  u(r.revokedReason),
		DisabledReason: u(r.disabledReason),
		Token: grant.Token{
			AccessToken:  u(r.accessToken),
			TokenType:    u(r.tokenType),
			RefreshToken: u(r.refreshToken),
		},
		CreatedAt: r.createdAt.UTC(),
		UpdatedAt: r.updatedAt.UTC(),
	}
	for _, sc := range r.scopes {
		rec.Scopes = append(rec.Scopes, u(sc))
	}
	if bad {
		return nil, corrupt(r.key, errors.New("malformed escape in a text field"))
	}
	if err := grant.Validate(rec); err != nil {
		return nil, corrupt(r.key, err)
	}
	if r.revokedAt != nil {
		t := r.revokedAt.UTC()
		rec.RevokedAt = &t
	}
	if r.expiry != nil {
		rec.Token.Expiry = r.expiry.UTC()
	}
	if r.disabledAt != nil {
		t := r.disabledAt.UTC()
		rec.DisabledAt = &t
	}
	if r.refreshedAt != nil {
		t := r.refreshedAt.UTC()
		rec.RefreshedAt = &t
	}
	return rec, nil
}

func corrupt(key string, err error) error {
	sub, _ := unescapeText(key)
	return grant.CorruptRecord(sub, fmt.Sprintf("credentials row %q", key), err)
}

// recordArgs are rec's column values, in recordColumns' order.
func recordArgs(key string, rec *grant.Record) []any {
	var expiry *time.Time
	if !rec.Token.Expiry.IsZero() {
		expiry = &rec.Token.Expiry
	}
	scopes := make([]string, len(rec.Scopes))
	for i, sc := range rec.Scopes {
		scopes[i] = escapeText(sc)
	}
	e := escapeText
	return []any{key, rec.Version, e(rec.Email), e(rec.Name), scopes, string(rec.Status), e(rec.RevokedReason), rec.RevokedAt,
		e(rec.Token.AccessToken), e(rec.Token.TokenType), e(rec.Token.RefreshToken), expiry, rec.CreatedAt, rec.UpdatedAt,
		rec.DisabledAt, e(rec.DisabledReason), rec.RefreshedAt}
}

// normTime is t as PostgreSQL keeps it (microseconds, UTC), so that the
// record Update returns equals the one Get reads back.
func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Round(0).Truncate(time.Microsecond).UTC()
}

// normTimePtr is normTime of *t, in a new time (nil stays nil): the
// caller's record is not changed.
func normTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	n := normTime(*t)
	return &n
}

// escapeText is s as a text column holds it: "\" written "\\" and NUL
// written "\0", since PostgreSQL's text cannot hold NUL and a record's
// strings may (the file store keeps them). Anything without a backslash or
// NUL, such as Google's subs (digits), emails and tokens, is stored as it
// is, so an admin can query it as it is.
func escapeText(s string) string {
	if !strings.ContainsAny(s, "\\\x00") {
		return s
	}
	return textEscaper.Replace(s)
}

var textEscaper = strings.NewReplacer(`\`, `\\`, "\x00", `\0`)

// unescapeText undoes escapeText; false for a string escapeText cannot
// make.
func unescapeText(key string) (string, bool) {
	if !strings.Contains(key, `\`) {
		return key, true
	}
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		if key[i] != '\\' {
			b.WriteByte(key[i])
			continue
		}
		if i+1 == len(key) {
			return "", false
		}
		i++
		switch key[i] {
		case '\\':
			b.WriteByte('\\')
		case '0':
			b.WriteByte(0)
		default:
			return "", false
		}
	}
	return b.String(), true
}
