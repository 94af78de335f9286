package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
)

// notifyChannel is where migration 00011's trigger announces changes of
// credentials rows.
const notifyChannel = "signin_credentials"

const (
	// pollEvery is the pause between the listener's polls. Each poll
	// confirms the cache through its start (trustWindow), so a few polls
	// fit in the window and one slow poll does not send Gets to the
	// database.
	pollEvery = 100 * time.Millisecond
	// pollTimeout bounds a poll. Past it the connection is given up (and
	// the cache with it); Gets have gone to the database since the trust
	// window ended anyway.
	pollTimeout = time.Second
)

// watch keeps the record cache coherent until ctx ends: it listens on a
// connection of its own (not the pool's: LISTEN belongs to a session, and
// the pool's may be closed or reused at any time) and polls it, since pgconn
// reads notifications only while it reads an answer. Whenever the
// connection fails the cache is emptied and untrusted, and the listener
// connects again with backoff.
func (s *Store) watch(ctx context.Context, cfg *pgconn.Config) {
	c := s.cache
	wait := 100 * time.Millisecond
	warnedDeaf, off := false, false
	trusted := func() {
		if off {
			off = false
			s.log.Info("record cache on again", "database", s.target)
		}
	}
	for {
		confirmed, err := s.listen(ctx, cfg, trusted)
		c.lost()
		if ctx.Err() != nil {
			return
		}
		var deaf *notListening
		switch {
		case confirmed:
			wait, off = 100*time.Millisecond, true
			s.log.Warn("record cache off: its notification connection failed; Gets read the database until it is back",
				"database", s.target, "error", redactErr(err, s.redact).Error())
		case errors.As(err, &deaf) && !warnedDeaf:
			warnedDeaf = true
			s.log.Error("record cache off: LISTEN does not hold on this database's connections (a pooler in transaction mode?); Gets read the database",
				"database", s.target)
		default:
			s.log.Debug("record cache: cannot listen for notifications", "database", s.target,
				"retry_in", wait, "error", redactErr(err, s.redact).Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Second)
	}
}

// notListening is a poll finding its session not listening: notifications
// would never come (a pooler handing each statement to another session).
type notListening struct{}

func (*notListening) Error() string {
	return "the listener's session is not listening on " + notifyChannel
}

// listen connects, listens and polls until the connection fails or ctx
// ends, calling trusted after the first successful poll. confirmed says
// whether there was one (the cache was trusted).
func (s *Store) listen(ctx context.Context, base *pgconn.Config, trusted func()) (confirmed bool, err error) {
	c := s.cache
	cfg := base.Copy()
	// Called from within Exec, on this goroutine, for each notification
	// read with the answer.
	cfg.OnNotification = func(_ *pgconn.PgConn, n *pgconn.Notification) {
		if n.Channel != notifyChannel {
			return
		}
		if n.Payload == "" {
			c.dropAll()
		} else {
			c.heard(n.Payload)
		}
	}
	// A deadline on the socket, rather than a cancel request sent on a
	// second connection, ends a poll that does not answer: on a hung
	// database the cancel request would hang too.
	cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: pc.Conn()}
	}
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	conn, err := pgconn.ConnectConfig(cctx, cfg)
	cancel()
	if err != nil {
		return false, err
	}
	defer func() {
		// Close says goodbye to the server; bounded, for a hung one.
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	c.pid.Store(conn.PID())
	if _, err := execWithin(ctx, conn, c.listenSQL, s.timeout); err != nil {
		return false, err
	}
	s.log.Debug("record cache: listening for changes of credentials", "database", s.target)
	if c.subsLimit > 0 {
		// Now that every change is heard of, the known subs can be
		// loaded, in the background: the cache works meanwhile, and
		// Gets it does not answer read the database.
		c.listening()
		lctx, stopLoad := context.WithCancel(ctx)
		loadDone := make(chan struct{})
		go func() {
			defer close(loadDone)
			s.loadSubs(lctx, base)
		}()
		defer func() {
			stopLoad()
			<-loadDone
		}()
	}
	for {
		if c.beforePoll != nil {
			c.beforePoll()
		}
		t0 := c.now()
		// The poll asks whether the session still listens, which costs
		// nothing and catches what would otherwise silence the cache
		// for good: a pooler in transaction mode, an UNLISTEN.
		res, err := execWithin(ctx, conn, "SELECT pg_listening_channels()", pollTimeout)
		if err != nil {
			return confirmed, err
		}
		if !listening(res) {
			return confirmed, &notListening{}
		}
		c.confirm(t0)
		if !confirmed {
			confirmed = true
			trusted()
		}
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

// listening reports whether the answer of pg_listening_channels names
// notifyChannel.
func listening(res []*pgconn.Result) bool {
	for _, r := range res {
		for _, row := range r.Rows {
			if len(row) == 1 && string(row[0]) == notifyChannel {
				return true
			}
		}
	}
	return false
}

// execWithin runs sql on conn within timeout.
func execWithin(ctx context.Context, conn *pgconn.PgConn, sql string, timeout time.Duration) ([]*pgconn.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return conn.Exec(ctx, sql).ReadAll()
}
