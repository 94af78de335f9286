// Package postgres keeps offline credentials (a grant.Store) and server-side
// sessions in PostgreSQL, so that several replicas of signin, and
// offline-fetch runs, can share one database.
//
// Open connects (waiting while the database is down), applies the schema
// migrations embedded in the binary under an advisory lock (so replicas
// starting together migrate once), and refuses a database whose schema is
// newer than the binary knows.
//
// Updates of one user are serialised by a row lock (SELECT ... FOR UPDATE)
// held by the transaction that writes: the lock and the write cannot part,
// so a holder that loses its lock (its session ended) cannot write either,
// and no waiter acts on a token the holder is replacing.
//
// Errors are *signin.Error. The database being unreachable, restarting,
// not answering within Config.Timeout (a hung host, a network dropping
// packets) or a user's lock not coming in time are kind signin.EUNAVAILABLE
// (503, try again; nothing was written). The database URL's password never
// appears in an error or a log line.
//
// With Config.RecordCache (the signin server's choice) Get keeps what it
// read, a record as stored (tokens sealed) or the absence of one, for up to
// that many users, least recently used first out, so that a sign-in reads
// nothing from the database. Every change of a credentials row, whoever
// makes it (another replica, offline-fetch, signin-admin, psql), is
// announced by a trigger (pg_notify on channel signin_credentials, the sub
// as payload; TRUNCATE: an empty payload, everything), and a listener on a
// connection of its own drops the user's entry. The listener polls its
// connection every 100 ms; the cache answers only within 500 ms of the
// start of its last successful poll (every change committed before it was
// heard of), so a replica serves a row at most about half a second older
// than the database, and none while the listener is down or the database
// hangs: Gets then read the database. Each poll also checks that the
// session still listens (a pooler in transaction mode would silently drop
// the LISTEN). A replica's own writes drop the entry when their
// transaction ends, so it reads them back at once.
//
// The cache also keeps the hashes of every sub that may have a row
// (knownsubs.go), so that a Get of a user it does not hold, and who has no
// row (most users signing in), needs no query either. After each LISTEN
// every sub is read in the background, on a connection of its own; every
// notification, and a replica's own Update, adds one. The set answers "no
// row" only once loaded and while the cache is trusted, so with the same
// lag; a lost listener discards it, TRUNCATE loads it again. A table of
// more than 1,000,000 rows keeps none (16 MB at most).
//
// An outage is logged twice, whatever the traffic: once when the first
// operation finds the database gone (ERROR), once when one succeeds again
// (WARN, with how long it lasted and how many operations were refused).
package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/signin"
)

// Config configures Open.
type Config struct {
	// URL is the database, as a libpq URL
	// (postgres://user:password@host:5432/dbname?sslmode=verify-full) or
	// keyword/value string.
	URL string

	// Logger receives the store's few log lines (waiting for the database,
	// migrations applied, failed session cleanup). Nil: none.
	Logger *slog.Logger

	// MaxConns bounds the connection pool. 0: pgxpool's default (4, or the
	// number of CPUs if more).
	MaxConns int32

	// LockTimeout is how long Update and Delete wait for a user's lock,
	// which another replica may hold while it refreshes the user's token at
	// Google. Past it they fail with EUNAVAILABLE, code "record_busy". 0:
	// 30 seconds. Callers should bound their Google calls well below it.
	LockTimeout time.Duration

	// HoldTimeout bounds how long an Update may keep a user's lock (how long
	// fn may take). Past it PostgreSQL ends the session, the lock goes to a
	// waiter and the holder's write fails: nothing is written from a stale
	// read. It only guards against a holder that hangs; callers must give
	// the Google call inside fn a deadline well below it, so that a
	// refreshed token is never thrown away. 0: 2 minutes.
	HoldTimeout time.Duration

	// Timeout bounds each operation: acquiring a connection and running
	// its statements (a wait for a user's lock may take LockTimeout more;
	// the fn of Update is not counted). Past it the operation fails as
	// EUNAVAILABLE database_unavailable, as when the database is down, so
	// that a hung database gets requests a prompt 503 rather than holding
	// them. 0: DefaultTimeout.
	Timeout time.Duration

	// MaxWait bounds how long Open waits for an unreachable database,
	// retrying with backoff and logging each wait. 0: until ctx ends.
	MaxWait time.Duration

	// Now is the clock: records' CreatedAt and UpdatedAt, session expiry.
	// Nil: time.Now.
	Now func() time.Time

	// RecordCache is how many users' credentials rows (or their absence)
	// Get keeps in memory, coherent with the database through
	// LISTEN/NOTIFY (see the package comment). 0: none, every Get reads
	// the database. The signin server enables it; offline-fetch and
	// signin-admin read authoritatively.
	RecordCache int

	// For tests: the record cache's trust window (0: trustWindow), its
	// clock (nil: time.Now) and hooks (see recordCache).
	cacheWindow     time.Duration
	cacheNow        func() time.Time
	cacheAfterRead  func(key string)
	cacheBeforePoll func()
	cacheListen     string // the listener's LISTEN statement
	// knownSubsLimit bounds the record cache's set of known subs: 0,
	// knownSubsMax; negative, no set.
	knownSubsLimit int
}

// DefaultTimeout is Config.Timeout's default: far above any statement of
// this package on a healthy database (milliseconds), well below an HTTP
// client's patience.
const DefaultTimeout = 5 * time.Second

// Store is a grant.Store, and a session store, on PostgreSQL. It is safe for
// concurrent use.
type Store struct {
	pool        *pgxpool.Pool
	log         *slog.Logger
	target      string // the database, without its password, for logs
	redact      func(string) string
	timeout     time.Duration // Config.Timeout
	lockWait    time.Duration // Config.LockTimeout
	lockTimeout string        // for set_config, in milliseconds
	holdTimeout string
	now         func() time.Time
	outage      outage

	// The start (Start): ready once the database answered and was
	// migrated; until then no connection is made but the start's own.
	ready     atomic.Bool
	started   chan struct{}
	startErr  error
	stopStart context.CancelFunc

	cleanupMu   sync.Mutex
	lastCleanup time.Time
	maxEnded    int // maxEndedSessions, or less in tests

	// The record cache (Config.RecordCache; nil: off) and its listener,
	// started once the store is ready and stopped by Close.
	cache       *recordCache
	subsTooMany atomic.Bool // said once that the known subs are not kept
	stopWatch   context.CancelFunc
	watchDone   chan struct{}
}

// Open connects to cfg.URL, waiting while the database cannot be reached
// (until ctx ends or cfg.MaxWait passes), applies the embedded migrations
// and returns the store. A database whose schema is newer than this program
// is refused (code "schema_too_new"); so are a malformed URL and refused
// credentials, at once.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	s, err := Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	<-s.started // the start ends with ctx, or at MaxWait
	if err := s.startErr; err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Start is Open without the wait: it returns at once, failing only on what
// it can judge without the database (a malformed URL), and connects, waits
// and migrates in the background, as Open does. Until that is done every
// operation fails at once with EUNAVAILABLE database_unavailable, so that a
// server can listen meanwhile (alive, not ready). Started is closed when
// it is done; StartErr then says whether it failed.
func Start(ctx context.Context, cfg Config) (*Store, error) {
	redact := redactor(cfg.URL)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pcfg, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, redactErr(signin.Wrap(unwrapParse(err), signin.EINVALID, "invalid_database_url",
			"The database URL cannot be parsed (it is not shown: it may hold a password)."), redact)
	}
	if pcfg.ConnConfig.ConnectTimeout == 0 { // not in the URL (connect_timeout)
		// A host that drops packets would otherwise hold each attempt for
		// minutes, and Open's log line with it.
		pcfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	if cfg.MaxConns > 0 {
		pcfg.MaxConns = cfg.MaxConns
	}
	lock, hold := cfg.LockTimeout, cfg.HoldTimeout
	if lock <= 0 {
		lock = 30 * time.Second
	}
	if hold <= 0 {
		hold = 2 * time.Minute
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	s := &Store{
		log:         log,
		redact:      redact,
		timeout:     timeout,
		lockWait:    lock,
		lockTimeout: fmt.Sprint(lock.Milliseconds()),
		holdTimeout: fmt.Sprint(hold.Milliseconds()),
		now:         cfg.Now,
		started:     make(chan struct{}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.target = describe(pcfg.ConnConfig.Config)
	s.outage.log, s.outage.now, s.outage.target = log, s.now, s.target
	pcfg.ConnConfig.Tracer = answerTracer{&s.outage}
	// The start works on a pool of its own; this one makes no connection
	// before the start is done.
	startCfg := pcfg.Copy()
	// The cache's listener has a connection of its own (watch.go), without
	// the pool's tracer: its polls are not operations.
	listenCfg := pcfg.ConnConfig.Config.Copy()
	watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	s.stopWatch, s.watchDone = stopWatch, make(chan struct{})
	if cfg.RecordCache > 0 {
		limit := cfg.knownSubsLimit
		if limit == 0 {
			limit = knownSubsMax
		}
		s.cache = newRecordCache(cfg.RecordCache, cfg.cacheWindow, cfg.cacheNow, limit)
		s.cache.afterRead, s.cache.beforePoll = cfg.cacheAfterRead, cfg.cacheBeforePoll
		s.cache.listenSQL = cmp.Or(cfg.cacheListen, "LISTEN "+notifyChannel)
	}
	pcfg.BeforeConnect = func(context.Context, *pgx.ConnConfig) error {
		if !s.ready.Load() {
			return &notReady{}
		}
		return nil
	}
	s.pool, err = pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		stopWatch()
		return nil, s.fail(ctx, err, "cannot set up the database pool")
	}
	startCtx, stop := context.WithCancel(ctx)
	s.stopStart = stop
	go func() {
		defer close(s.started)
		defer stop()
		s.startErr = s.start(startCtx, startCfg, cfg.MaxWait)
		if s.startErr == nil {
			s.ready.Store(true)
			s.outage.armed.Store(true)
		}
		if s.startErr != nil || s.cache == nil {
			close(s.watchDone)
			return
		}
		go func() {
			defer close(s.watchDone)
			s.watch(watchCtx, listenCfg)
		}()
	}()
	return s, nil
}

// start waits for the database and migrates it, on a pool of its own.
func (s *Store) start(ctx context.Context, cfg *pgxpool.Config, maxWait time.Duration) error {
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return s.fail(ctx, err, "cannot set up the database pool")
	}
	defer pool.Close()
	if err := s.waitReachable(ctx, pool, maxWait); err != nil {
		return err
	}
	return s.migrate(ctx, pool)
}

// Started is closed once the start (Start, Open) is done; StartErr then
// says whether it failed.
func (s *Store) Started() <-chan struct{} { return s.started }

// StartErr is why the start failed, nil if it succeeded or is not done.
func (s *Store) StartErr() error {
	select {
	case <-s.started:
		return s.startErr
	default:
		return nil
	}
}

// notReady is the error of an operation before the start is done.
type notReady struct{}

func (*notReady) Error() string {
	return "the database is not ready yet (waiting for it, or migrating)"
}

// noAnswer is the cause of the end of a context made by bound: the
// database did not answer in time.
type noAnswer struct{ after time.Duration }

func (e *noAnswer) Error() string {
	return fmt.Sprintf("the database did not answer within %v", e.after)
}

// bound limits ctx to one operation's time, Config.Timeout plus extra (a
// lock wait). The operation's errors go through fail with the returned
// context, which tells the deadline from the caller's ctx ending.
func (s *Store) bound(ctx context.Context, extra time.Duration) (context.Context, context.CancelFunc) {
	d := s.timeout + extra
	return context.WithTimeoutCause(ctx, d, &noAnswer{after: d})
}

// rollback ends tx if it is still open (after a commit it does nothing),
// within Config.Timeout even when ctx has ended: a rollback on a hung
// database must not hold the caller either.
func (s *Store) rollback(ctx context.Context, tx pgx.Tx) {
	ctx, cancel := s.bound(context.WithoutCancel(ctx), 0)
	defer cancel()
	_ = tx.Rollback(ctx)
}

// outage logs the database going away and coming back, once each, rather
// than a line per refused operation.
type outage struct {
	log    *slog.Logger
	now    func() time.Time
	target string
	armed  atomic.Bool // Open succeeded: Open's own waiting logs itself
	down   atomic.Bool // fast path of answered

	mu      sync.Mutex
	since   time.Time
	refused int64
}

// refuse notes an operation that failed because the database is
// unavailable; the first of an outage is logged.
func (o *outage) refuse(err error) {
	if !o.armed.Load() {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.refused++
	if o.down.Load() {
		return
	}
	o.down.Store(true)
	o.since, o.refused = o.now(), 1
	o.log.Error("database unavailable: operations fail with database_unavailable (503) until it answers",
		"database", o.target, "error", err.Error())
}

// answered notes an operation that succeeded; the first after an outage
// is logged, with the outage's length and how many operations it refused
// (about one per request: a request stops at its first failure).
func (o *outage) answered() {
	if !o.down.Load() {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.down.Load() {
		return
	}
	o.down.Store(false)
	o.log.Warn("database answers again", "database", o.target,
		"down_for", o.now().Sub(o.since).Round(time.Millisecond), "refused", o.refused)
}

// answerTracer is the pool's query tracer: every statement that succeeds
// tells the outage log that the database answers.
type answerTracer struct{ o *outage }

func (a answerTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (a answerTracer) TraceQueryEnd(_ context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	if data.Err == nil {
		a.o.answered()
	}
}

// describe names the database for log lines: user, host, port and database
// name, never the password.
func describe(c pgconn.Config) string {
	return (&url.URL{Scheme: "postgres", User: url.User(c.User),
		Host: net.JoinHostPort(c.Host, fmt.Sprint(c.Port)), Path: "/" + c.Database}).String()
}

// waitReachable pings the database until it answers, logging each wait.
// Errors that waiting cannot cure (refused credentials, no such database)
// end it at once; so does maxWait (0: no bound) or the end of ctx.
func (s *Store) waitReachable(ctx context.Context, pool *pgxpool.Pool, maxWait time.Duration) error {
	parent := ctx
	if maxWait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, maxWait)
		defer cancel()
	}
	gaveUp := func(attempt int, err error) error {
		if parent.Err() != nil { // stopped (a signal), not given up
			return fmt.Errorf("stopped waiting for the database %s: %w", s.target, parent.Err())
		}
		return redactErr(signin.Wrap(err, signin.EUNAVAILABLE, CodeUnavailable,
			fmt.Sprintf("The database %s did not answer within %v (%d attempts): is it running, and is its address right?", s.target, maxWait, attempt)), s.redact)
	}
	wait := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := pool.Ping(ctx)
		if err == nil {
			if attempt > 1 {
				s.log.Info("database reachable", "database", s.target, "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return gaveUp(attempt, err)
		}
		mapped := s.fail(ctx, err, "cannot connect to the database "+s.target)
		if signin.ErrorKind(mapped) != signin.EUNAVAILABLE {
			return mapped // refused credentials, no such database: waiting will not help
		}
		s.log.Warn("database not reachable; waiting before trying again",
			"database", s.target, "attempt", attempt, "retry_in", wait, "error", mapped.Error())
		select {
		case <-ctx.Done():
			return gaveUp(attempt, err)
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Second)
	}
}

// Describe names the store for start-up logs, without the password, and
// says whether it keeps credentials in memory.
func (s *Store) Describe() string {
	if s.cache != nil {
		return fmt.Sprintf("PostgreSQL %s (record cache of %d users)", s.target, s.cache.max)
	}
	return "PostgreSQL " + s.target
}

// Ping checks that the database answers, within Config.Timeout.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.bound(ctx, 0)
	defer cancel()
	if err := s.pool.Ping(ctx); err != nil {
		return s.fail(ctx, err, "cannot reach the database")
	}
	s.outage.answered()
	return nil
}

// Close stops the start if it is still waiting and closes every
// connection. The store cannot be used afterwards.
func (s *Store) Close() {
	s.stopStart()
	<-s.started
	s.stopWatch()
	<-s.watchDone
	s.pool.Close()
}

// Error codes of this package, besides store's.
const (
	CodeUnavailable  = "database_unavailable" // cannot reach the database, or it is restarting
	CodeRecordBusy   = "record_busy"          // a user's lock did not come within LockTimeout
	CodeSchemaTooNew = "schema_too_new"       // the database was migrated by a newer program
	CodeRefused      = "database_refused"     // no such database or role, a wrong password: configuration
)

// isRefused reports the server refusing us for what waiting cannot cure
// and the user can fix: no such database, no such role, a wrong password,
// no pg_hba entry.
func isRefused(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return pgErr.Code == "3D000" || strings.HasPrefix(pgErr.Code, "28") // invalid_catalog_name, invalid_authorization_specification
}

// refusal is the server's reason (`database "x" does not exist`), which
// holds no password.
func refusal(err error) string {
	var pgErr *pgconn.PgError
	errors.As(err, &pgErr)
	return pgErr.Message
}

// fail turns an error from pgx into a *signin.Error, with what as the
// message of unexpected failures. The end of ctx is returned as it is
// (wrapped), as the file store does.
func (s *Store) fail(ctx context.Context, err error, what string) error {
	var late *noAnswer
	if ctx.Err() != nil && errors.As(context.Cause(ctx), &late) {
		// Our own deadline (bound), not the caller's: the database hangs.
		out := redactErr(signin.Wrap(fmt.Errorf("%w: %w", late, err), signin.EUNAVAILABLE, CodeUnavailable,
			"The database is unavailable; try again shortly."), s.redact)
		s.outage.refuse(out)
		return out
	}
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err)) {
		return redactErr(fmt.Errorf("%s: %w", what, ctx.Err()), s.redact)
	}
	var out *signin.Error
	var early *notReady
	switch {
	case errors.As(err, &out):
		return redactErr(err, s.redact)
	case errors.As(err, &early):
		return signin.Wrap(err, signin.EUNAVAILABLE, CodeUnavailable, "The database is not ready yet; try again shortly.")
	case isRefused(err):
		out = signin.Wrap(err, signin.EINVALID, CodeRefused,
			"The database refused the connection (check the URL: user, password, database name): "+refusal(err))
	case isBusy(err):
		out = signin.Wrap(err, signin.EUNAVAILABLE, CodeRecordBusy,
			"Another request is updating these credentials; try again.")
	case isUnavailable(err):
		out = signin.Wrap(err, signin.EUNAVAILABLE, CodeUnavailable,
			"The database is unavailable; try again shortly.")
		red := redactErr(out, s.redact)
		s.outage.refuse(red)
		return red
	default:
		out = signin.Wrap(err, signin.EINTERNAL, "", what)
	}
	return redactErr(out, s.redact)
}

// isBusy reports a lock wait that ran into lock_timeout.
func isBusy(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "55P03" // lock_not_available
}

// isUnavailable reports an error of reaching the database rather than of
// the statement: no connection, a connection lost, the server shutting down
// or starting up, out of connections.
func isUnavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03", // admin_shutdown, crash_shutdown, cannot_connect_now
			"53300", // too_many_connections
			"25P03": // idle_in_transaction_session_timeout: the session was ended
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08") // connection_exception
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		pgconn.SafeToRetry(err) || pgconn.Timeout(err) ||
		strings.Contains(err.Error(), "conn closed") // pgx's error for a connection it closed after a failure
}

// redactor returns a function that masks the password of rawURL wherever it
// appears, literally or URL-escaped.
func redactor(rawURL string) func(string) string {
	var secrets []string
	if u, err := url.Parse(rawURL); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			secrets = append(secrets, pw)
		}
	}
	for _, re := range passwordPatterns {
		for _, m := range re.FindAllStringSubmatch(rawURL, -1) {
			secrets = append(secrets, m[1])
			if un, err := url.PathUnescape(m[1]); err == nil {
				secrets = append(secrets, un)
			}
		}
	}
	var pairs []string
	for _, s := range secrets {
		if s == "" {
			continue
		}
		pairs = append(pairs, s, "xxxxx", url.QueryEscape(s), "xxxxx", url.PathEscape(s), "xxxxx")
	}
	if len(pairs) == 0 {
		return func(s string) string { return s }
	}
	r := strings.NewReplacer(pairs...)
	return r.Replace
}

// passwordPatterns find a password in a URL that net/url cannot parse, or in
// a keyword/value string.
var passwordPatterns = []*regexp.Regexp{
	regexp.MustCompile(`://[^:/@\s]*:([^@\s]+)@`),
	regexp.MustCompile(`password\s*=\s*'((?:[^'\\]|\\.)*)'`),
	regexp.MustCompile(`password\s*=\s*([^'\s]\S*)`),
}

// redactedError is an error whose message has the password masked. Its
// chain is kept for errors.Is and As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactErr masks the password in err's message. A *signin.Error stays one
// (its cause masked), so that signin.ErrorKind and friends see it.
func redactErr(err error, redact func(string) string) error {
	if err == nil {
		return nil
	}
	var se *signin.Error
	if errors.As(err, &se) && se == err {
		c := *se
		c.Message = redact(c.Message)
		if c.Err != nil {
			c.Err = &redactedError{msg: redact(c.Err.Error()), err: c.Err}
		}
		return &c
	}
	if msg := err.Error(); redact(msg) != msg {
		return &redactedError{msg: redact(msg), err: err}
	}
	return err
}

// unwrapParse drops pgx's rendering of the connection string from a parse
// error, and net/url's, keeping the reason.
func unwrapParse(err error) error {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) && pe.Unwrap() != nil {
		err = pe.Unwrap()
	} else if errors.As(err, &pe) {
		return errors.New("malformed connection string")
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
