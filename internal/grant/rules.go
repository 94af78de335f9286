package grant

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"example.com/signin"
	"example.com/signin/internal/auth"
)

// Offline is what the server can do for a user while they are away, as the
// API and the pages name it.
type Offline string

const (
	// OfflineNone: no grant is stored (or one without a refresh token).
	OfflineNone Offline = "none"
	// OfflineActive: a refresh token is stored and believed to work.
	OfflineActive Offline = "active"
	// OfflineRevoked: Google refused the stored grant; the user must
	// connect again.
	OfflineRevoked Offline = "revoked"
	// OfflineUnreadable: a record is stored but cannot be read (damaged);
	// connecting again replaces it.
	OfflineUnreadable Offline = "unreadable"
)

// Offline is what rec allows. A nil record is OfflineNone.
func (rec *Record) Offline() Offline {
	switch {
	case rec == nil:
		return OfflineNone
	case rec.Status == StatusRevoked:
		return OfflineRevoked
	case rec.Token.RefreshToken == "":
		return OfflineNone
	default:
		return OfflineActive
	}
}

// CodeOfflineAccessRevoked is the error code for a user whose stored grant
// Google refused (invalid_grant): the user must grant offline access again.
const CodeOfflineAccessRevoked = "offline_access_revoked"

// CodeOfflineAccessRequired is the error code for a user with no refresh
// token stored.
const CodeOfflineAccessRequired = "offline_access_required"

// OfflineOf says what err, returned by acting for a user offline (a token
// source, a fetch made with one), shows of the user's grant: OfflineNone
// when there is nothing to act on (no record, or one without a refresh
// token: CodeOfflineAccessRequired), OfflineRevoked when Google refused the
// grant (CodeOfflineAccessRevoked), and "" for any other error (Google or
// the store failing), which says nothing of the grant. The API and the
// pages both answer by it.
func OfflineOf(err error) Offline {
	switch {
	case err == nil:
		return ""
	case signin.ErrorKind(err) == signin.ENOTFOUND, signin.ErrorCode(err) == CodeOfflineAccessRequired:
		return OfflineNone
	case signin.ErrorCode(err) == CodeOfflineAccessRevoked:
		return OfflineRevoked
	}
	return ""
}

// Google is the part of Google's OAuth 2.0 endpoints a grant needs
// (*auth.Google). Its errors carry an *auth.GoogleError when Google
// answered, so that auth.InvalidGrant recognises a dead grant.
type Google interface {
	// Refresh trades a refresh token for a new token.
	Refresh(ctx context.Context, refreshToken string) (*oauth2.Token, error)
	// Revoke ends the grant a token belongs to. A token Google no longer
	// knows is not an error.
	Revoke(ctx context.Context, token string) error
}

// DefaultRefreshMargin is how long before its expiry a token is refreshed,
// so that it does not expire between Token and the API call, or because our
// clock is behind Google's.
const DefaultRefreshMargin = time.Minute

// Config configures Grants. Store and Google are required.
type Config struct {
	Store  Store
	Google Google
	// RefreshMargin: how long before its expiry a token counts as expired
	// (default DefaultRefreshMargin). Keep it well below the tokens'
	// lifetime (Google's is an hour), or every call refreshes.
	RefreshMargin time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives what an operator should know (a damaged record, a
	// grant Google refused), never tokens. Nil discards.
	Logger *slog.Logger
}

// Grants applies the rules of a grant to the records in a Store. It is safe
// for concurrent use.
type Grants struct {
	store  Store
	google Google
	margin time.Duration
	now    func() time.Time
	log    *slog.Logger
}

// New returns Grants for cfg. It panics if Store or Google is missing, which
// is a programming error.
func New(cfg Config) *Grants {
	if cfg.Store == nil || cfg.Google == nil {
		panic("grant.New: Config.Store and Config.Google are required")
	}
	g := &Grants{store: cfg.Store, google: cfg.Google, margin: cfg.RefreshMargin, now: cfg.Now, log: cfg.Logger}
	if g.margin <= 0 {
		g.margin = DefaultRefreshMargin
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	return g
}

// Store is the store the grants are kept in.
func (g *Grants) Store() Store { return g.store }

// Lookup reads sub's record once and says what it allows. No record is
// (nil, OfflineNone, nil); a record that cannot be read is (nil,
// OfflineUnreadable, nil), logged, so that nothing about signing in depends
// on it. Other errors (the store failing) are returned.
func (g *Grants) Lookup(ctx context.Context, sub string) (*Record, Offline, error) {
	rec, err := g.store.Get(ctx, sub)
	switch {
	case err == nil:
		return rec, rec.Offline(), nil
	case signin.ErrorKind(err) == signin.ENOTFOUND:
		return nil, OfflineNone, nil
	case signin.ErrorCode(err) == CodeCorruptRecord:
		g.log.LogAttrs(ctx, slog.LevelWarn, "a stored credential record cannot be read; the user must connect again",
			slog.String("sub", sub), slog.String("error", err.Error()))
		return nil, OfflineUnreadable, nil
	}
	return nil, "", err
}

// Identity is who a grant belongs to, from the verified ID token, kept in
// the record for people (never for identity: the sub is).
type Identity struct {
	Email string
	Name  string
}

// SaveExchange stores what a code exchange gave for sub, by Google's rules
// (Google sends a refresh token only on a first consent or with
// prompt=consent): a new refresh token replaces the stored one and makes
// the grant active again; without one, a stored record keeps its refresh
// token and gets the new access token; with neither, nothing is written and
// the user has no offline access (OfflineNone: ask again with
// prompt=consent). It returns the record as saved (nil when none is
// stored or it cannot be read), so the caller need not read it again, and
// what the grant allows afterwards. A user whose account Google disabled is
// refused (CodeAccountDisabled) and nothing is written.
//
// A stored record that cannot be read is replaced when the exchange gave a
// refresh token: the store sets the damaged record aside for the operator
// (logged), so that a damaged file never costs the user the grant they just
// gave. Without a refresh token there is nothing to replace it with: it
// stays, and the answer is OfflineUnreadable.
//
// When the store fails, nothing is kept (CodeGrantNotKept, in words the
// user can act on). If Google gave a refresh token, which it gives only once
// per consent, the new grant is then revoked at Google: left alive, it
// would make Google send no refresh token on the user's next try, and the
// server would never get one. After a revocation the next consent gives a
// fresh refresh token; the page also asks with prompt=consent, which gets
// one either way.
func (g *Grants) SaveExchange(ctx context.Context, sub string, who Identity, tok *oauth2.Token) (*Record, Offline, error) {
	rec, status, err := g.saveExchange(ctx, sub, who, tok)
	if signin.ErrorCode(err) == CodeCorruptRecord {
		if tok.RefreshToken == "" {
			g.log.LogAttrs(ctx, slog.LevelWarn, "a stored credential record cannot be read; the user must connect again with consent",
				slog.String("sub", sub), slog.String("error", err.Error()))
			return nil, OfflineUnreadable, nil
		}
		var where string
		where, err = g.store.SetAside(ctx, sub)
		if err == nil {
			g.log.LogAttrs(ctx, slog.LevelWarn, "a damaged credential record was set aside and replaced by the user's new grant",
				slog.String("sub", sub), slog.String("damaged_record_kept_as", where))
			rec, status, err = g.saveExchange(ctx, sub, who, tok)
		}
	}
	if err == nil || signin.ErrorCode(err) == CodeAccountDisabled {
		return rec, status, err
	}
	return nil, "", g.notKept(ctx, sub, tok, err)
}

// CodeGrantNotKept is the error code of a code exchange whose grant the
// store could not keep: nothing was stored, and the user should try again
// (with prompt=consent, so that Google sends a refresh token).
const CodeGrantNotKept = "grant_not_kept"

// revokeNotKeptTimeout bounds the revocation of a grant that could not be
// kept. It runs even if the request was cancelled: the grant must not
// outlive a failure nobody will retry.
const revokeNotKeptTimeout = 10 * time.Second

// notKept revokes at Google the new grant in tok that the store failed to
// keep (err), and returns the error to answer with: err's kind (so a
// database outage is still a 503), CodeGrantNotKept, and a message that
// says what happened without the store's own words.
func (g *Grants) notKept(ctx context.Context, sub string, tok *oauth2.Token, err error) error {
	kind := signin.ErrorKind(err)
	if kind != signin.EUNAVAILABLE {
		kind = signin.EINTERNAL
	}
	if tok.RefreshToken == "" {
		// No new grant was given (Google sends a refresh token only with
		// consent): revoking the access token would end the grant the
		// stored record may still hold, so nothing is revoked.
		g.log.LogAttrs(ctx, slog.LevelError, "a code exchange could not be stored; Google sent no refresh token, so nothing was lost",
			slog.String("sub", sub), slog.String("error", err.Error()))
		return signin.Wrap(err, kind, CodeGrantNotKept,
			"The server could not save your sign-in with offline access, so it kept nothing. Please try again.")
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revokeNotKeptTimeout)
	defer cancel()
	if rerr := g.google.Revoke(rctx, tok.RefreshToken); rerr != nil {
		g.log.LogAttrs(ctx, slog.LevelError, "a new grant could not be stored, nor revoked at Google; the user's next consent (prompt=consent) replaces it",
			slog.String("sub", sub), slog.String("error", err.Error()), slog.String("revoke_error", rerr.Error()))
		return signin.Wrap(err, kind, CodeGrantNotKept,
			"The server could not save the offline access you just gave, so it kept nothing. Please try again: Google will ask for your consent once more.")
	}
	g.log.LogAttrs(ctx, slog.LevelError, "a new grant could not be stored; it was revoked at Google, so that the user's next consent gives a new refresh token",
		slog.String("sub", sub), slog.String("error", err.Error()))
	return signin.Wrap(err, kind, CodeGrantNotKept,
		"The server could not save the offline access you just gave, so it kept nothing and cancelled it at Google. Please try again: Google will ask for your consent once more.")
}

// SavedRefreshToken says, for the audit line of an exchange SaveExchange
// made active, which refresh token the record holds now: "new" when the
// exchange gave one (it replaced the stored one), "kept" when it did not
// (the stored one stays).
func SavedRefreshToken(tok *oauth2.Token) string {
	if tok.RefreshToken == "" {
		return "kept"
	}
	return "new"
}

func (g *Grants) saveExchange(ctx context.Context, sub string, who Identity, tok *oauth2.Token) (*Record, Offline, error) {
	var status Offline
	rec, err := g.store.Update(ctx, sub, func(cur *Record) (*Record, error) {
		if err := CheckEnabled(cur); err != nil {
			return nil, err
		}
		if cur == nil {
			if tok.RefreshToken == "" {
				status = OfflineNone
				return nil, nil
			}
			cur = &Record{Sub: sub}
		}
		g.merge(cur, tok, true)
		if who.Email != "" {
			cur.Email = who.Email
		}
		if who.Name != "" {
			cur.Name = who.Name
		}
		status = cur.Offline()
		return cur, nil
	})
	if err != nil {
		return nil, "", err
	}
	return rec, status, nil
}

// merge applies a token from Google (a code exchange or a refresh) to cur: a
// new refresh token replaces the stored one and makes the record active
// again (it is a new grant), while an answer without one keeps the stored
// one. The access token, its type and expiry are always replaced; an answer
// that carries only expires_in gets its expiry from now. Scopes are replaced
// when the answer lists them (Google's "scope": what was actually granted,
// the union of every grant after an incremental one), except by a code
// exchange that gave no refresh token while one is stored: the record's
// scopes are those its refresh token holds, which that exchange did not
// change (see GrantedScopes).
func (g *Grants) merge(cur *Record, t *oauth2.Token, exchange bool) {
	keepScopes := exchange && t.RefreshToken == "" && cur.Token.RefreshToken != ""
	nt := TokenFrom(t)
	if nt.Expiry.IsZero() && t.ExpiresIn > 0 {
		nt.Expiry = g.now().Add(time.Duration(t.ExpiresIn) * time.Second).UTC()
	}
	if nt.RefreshToken == "" {
		nt.RefreshToken = cur.Token.RefreshToken
	} else {
		cur.Status = StatusActive
		cur.RevokedReason = ""
		cur.RevokedAt = nil
	}
	cur.Token = nt
	now := g.now().UTC()
	cur.RefreshedAt = &now
	if scopes := auth.GrantedScopes(t); len(scopes) > 0 && !keepScopes {
		cur.Scopes = scopes
	}
}

// Disconnect ends sub's grant: it revokes it at Google (the refresh token,
// else the access token), then deletes the record. If Google cannot be
// reached nothing is deleted and the error is returned, so the user can try
// again: deleting first would leave a live grant at Google that no one can
// revoke any more. A record that cannot be read is deleted (it holds
// nothing that can be revoked). revoked says whether a revocation was sent.
func (g *Grants) Disconnect(ctx context.Context, sub string) (revoked bool, err error) {
	rec, status, err := g.Lookup(ctx, sub)
	if err != nil {
		return false, err
	}
	if rec == nil && status == OfflineNone {
		return false, nil
	}
	if rec != nil {
		tok := rec.Token.RefreshToken
		if tok == "" {
			tok = rec.Token.AccessToken
		}
		if tok != "" {
			if err := g.google.Revoke(ctx, tok); err != nil {
				return false, err
			}
			revoked = true
		}
	}
	if err := g.store.Delete(ctx, sub); err != nil && signin.ErrorKind(err) != signin.ENOTFOUND {
		return revoked, err
	}
	return revoked, nil
}

// Audit events of a grant: one info line each, message "audit", with the
// event and the user's sub (the web server logs the others in the same
// shape); never a token.
const (
	auditGrantRevoked         = "grant_revoked_by_google" // reason: Google's description
	auditRefreshTokenReplaced = "refresh_token_replaced"  // a refresh answer carried a new refresh token
)

func (g *Grants) audit(ctx context.Context, event, sub string, attrs ...slog.Attr) {
	g.log.LogAttrs(ctx, slog.LevelInfo, "audit", append([]slog.Attr{slog.String("event", event), slog.String("sub", sub)}, attrs...)...)
}

// markRevoked records that Google refused cur's grant, with Google's reason.
func (g *Grants) markRevoked(cur *Record, reason string) {
	now := g.now().UTC()
	cur.Status = StatusRevoked
	cur.RevokedReason = reason
	cur.RevokedAt = &now
}

// revokedError is the error of acting with a grant Google refused, now
// (cause is Google's answer) or before; reason is Google's, as the record
// keeps it (RevokedReason).
func revokedError(cause error, reason string) error {
	return &signin.Error{
		Kind:    signin.ECONFLICT,
		Code:    CodeOfflineAccessRevoked,
		Message: "Google no longer accepts this user's offline access; they must connect again.",
		Err:     &revocation{reason: reason, cause: cause},
	}
}

// revocation carries the reason Google gave for refusing a grant in a
// CodeOfflineAccessRevoked error.
type revocation struct {
	reason string
	cause  error
}

func (r *revocation) Error() string {
	if r.cause != nil {
		return r.cause.Error()
	}
	if r.reason != "" {
		return "revoked before: " + r.reason
	}
	return "revoked before"
}

func (r *revocation) Unwrap() error { return r.cause }

// RevokedReason is the reason Google gave for refusing the grant err
// reports (a CodeOfflineAccessRevoked error), as the record keeps it in
// RevokedReason: "" when err is no such error or Google gave none.
func RevokedReason(err error) string {
	var r *revocation
	if errors.As(err, &r) {
		return r.reason
	}
	return ""
}

func sameToken(a, b Token) bool {
	return a.AccessToken == b.AccessToken && a.RefreshToken == b.RefreshToken &&
		a.TokenType == b.TokenType && a.Expiry.Equal(b.Expiry)
}

func sameScopes(a, b []string) bool {
	return strings.Join(a, " ") == strings.Join(b, " ")
}

// MarkRevoked records that Google no longer honours sub's grant (a
// Cross-Account Protection event said so), with reason, so that the page
// offers to reconnect and offline-fetch skips the user. It says whether
// there was an active grant to mark.
func (g *Grants) MarkRevoked(ctx context.Context, sub, reason string) (bool, error) {
	marked := false
	_, err := g.store.Update(ctx, sub, func(cur *Record) (*Record, error) {
		if cur == nil || cur.Status == StatusRevoked || cur.Token.RefreshToken == "" {
			return nil, nil
		}
		g.markRevoked(cur, reason)
		marked = true
		return cur, nil
	})
	return marked, err
}

// MarkRevokedByToken marks revoked the grant whose refresh token matches
// (Google names a revoked token by a prefix or a hash, never by its user),
// and returns that user's sub, or "" when no stored grant matches. It reads
// every record: such events are rare, and the store keeps no second copy
// of any token to index.
func (g *Grants) MarkRevokedByToken(ctx context.Context, matches func(refreshToken string) bool, reason string) (string, error) {
	var found string
	err := g.store.List(ctx, func(rec *Record, err error) error {
		if err != nil || rec.Token.RefreshToken == "" || !matches(rec.Token.RefreshToken) {
			return nil // an unreadable record holds no token that could match
		}
		found = rec.Sub
		return errStopList
	})
	if err != nil && !errors.Is(err, errStopList) {
		return "", err
	}
	if found == "" {
		return "", nil
	}
	_, err = g.MarkRevoked(ctx, found, reason)
	return found, err
}

var errStopList = errors.New("found")

// SetDisabled records whether Google says sub's account is disabled, and
// why. While it is, sign-in is refused (see Record.DisabledAt). A user
// with no record gets one holding no token.
func (g *Grants) SetDisabled(ctx context.Context, sub string, disabled bool, reason string) error {
	_, err := g.store.Update(ctx, sub, func(cur *Record) (*Record, error) {
		switch {
		case cur == nil && !disabled:
			return nil, nil
		case cur == nil:
			cur = &Record{Sub: sub, Status: StatusActive}
		}
		if disabled {
			now := g.now().UTC()
			cur.DisabledAt, cur.DisabledReason = &now, reason
		} else {
			cur.DisabledAt, cur.DisabledReason = nil, ""
		}
		return cur, nil
	})
	return err
}

// CodeAccountDisabled is the error code of a sign-in refused because Google
// said the account is disabled.
const CodeAccountDisabled = "account_disabled"

// CheckEnabled refuses a user whose account Google disabled: EFORBIDDEN
// account_disabled.
func CheckEnabled(rec *Record) error {
	if rec != nil && rec.DisabledAt != nil {
		return signin.Errorf(signin.EFORBIDDEN, CodeAccountDisabled,
			"Google has disabled this account (%s); signing in is refused until Google enables it again.", rec.DisabledReason)
	}
	return nil
}
