package auth

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"example.com/signin"
)

// This file is the hook users of x/oauth2 have asked for since 2014
// (golang/oauth2#84): Config.TokenSource refreshes an expired token
// silently and keeps the new one in memory only, so a program that stores
// tokens never learns of the refresh, and two programs sharing a store
// refresh the same token at once and each keep their own. A
// SavingTokenSource does the refresh itself, under the store's lock, and
// writes the result back. It is small and depends only on x/oauth2 and the
// TokenUpdater interface, so it can be lifted into any program.

// TokenUpdater is where a SavingTokenSource keeps its token (one user's, in
// this app; store.UserTokens implements it over a store.Store).
type TokenUpdater interface {
	// LoadToken returns the saved token, without locking.
	LoadToken(ctx context.Context) (*oauth2.Token, error)
	// UpdateToken calls fn with the saved token while holding the lock that
	// serialises updates of it (across processes if the backend is shared)
	// and saves what fn returns when it differs. If fn fails, UpdateToken
	// returns an error and normally saves nothing (an implementation may
	// record that the grant is dead, as store.UserTokens does).
	UpdateToken(ctx context.Context, fn func(saved *oauth2.Token) (*oauth2.Token, error)) error
}

// DefaultRefreshMargin is how long before its expiry a token is refreshed,
// so that it does not expire between Token and the API call, or because our
// clock is behind Google's.
const DefaultRefreshMargin = time.Minute

// SavingTokenSource is an oauth2.TokenSource that refreshes the token it
// keeps in a TokenUpdater when the token has expired or is about to, and
// saves the new one there. It never refreshes a token that is still fresh,
// and refreshes at most once however many goroutines, or processes sharing
// the updater's lock, find the token expired at the same time: the others
// use the token the first one saved. A refresh answer without a refresh token
// keeps the saved one (Google rarely sends a new one).
//
// It is safe for concurrent use. Errors are *signin.Error values:
// those of the TokenUpdater (such as ENOTFOUND, or ECONFLICT
// "offline_access_revoked" from store.UserTokens), ECONFLICT
// "offline_access_required" when there is no refresh token, and those of a
// failed refresh (EUPSTREAM "google_unavailable" and others, wrapping the
// *oauth2.RetrieveError when Google answered).
type SavingTokenSource struct {
	ctx    context.Context
	conf   *oauth2.Config
	u      TokenUpdater
	margin time.Duration
	now    func() time.Time
	logger *slog.Logger

	mu  sync.Mutex    // serialises Token and Refresh in this process
	tok *oauth2.Token // last token seen, saved or refreshed; guarded by mu
}

var _ oauth2.TokenSource = (*SavingTokenSource)(nil)

// SavingOption configures a SavingTokenSource.
type SavingOption func(*SavingTokenSource)

// WithRefreshMargin sets how long before its expiry a token counts as
// expired (default DefaultRefreshMargin). Keep it well below the tokens'
// lifetime (Google's is an hour), or every call refreshes.
func WithRefreshMargin(d time.Duration) SavingOption {
	return func(s *SavingTokenSource) { s.margin = d }
}

// WithRefreshClock sets the clock that decides whether a token has expired
// (default time.Now).
func WithRefreshClock(now func() time.Time) SavingOption {
	return func(s *SavingTokenSource) { s.now = now }
}

// WithRefreshLogger sets where refresh problems that need an operator (such
// as Google refusing the app's client) are logged. Tokens are never logged.
func WithRefreshLogger(l *slog.Logger) SavingOption {
	return func(s *SavingTokenSource) { s.logger = l }
}

// NewSavingTokenSource returns a token source for the token kept in u,
// refreshed with conf. ctx is used for every load, update and refresh, for
// the life of the source; it should carry the HTTP client for Google as
// oauth2.HTTPClient (see Google.Context), or x/oauth2 uses
// http.DefaultClient.
func NewSavingTokenSource(ctx context.Context, conf *oauth2.Config, u TokenUpdater, opts ...SavingOption) *SavingTokenSource {
	s := &SavingTokenSource{
		ctx:    ctx,
		conf:   conf,
		u:      u,
		margin: DefaultRefreshMargin,
		now:    time.Now,
		logger: slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Token returns a token that will not expire within the margin: the one it
// has, else the saved one (another process may have refreshed it), else a
// refreshed one, saved. The caller must not modify it.
func (s *SavingTokenSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fresh(s.tok) {
		return s.tok, nil
	}
	saved, err := s.u.LoadToken(s.ctx)
	if err != nil {
		return nil, err
	}
	if s.fresh(saved) {
		s.tok = saved
		return saved, nil
	}
	return s.update(s.fresh)
}

// Refresh is for an API answer of 401 to a token that has not expired: the
// user revoked the grant, or clocks disagree. It returns a new token: the
// saved one if it is no longer rejected (someone refreshed meanwhile), else a
// refreshed one, saved. If the grant was revoked, the refresh fails with
// invalid_grant, which store.UserTokens records.
func (s *SavingTokenSource) Refresh(rejected *oauth2.Token) (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.update(func(saved *oauth2.Token) bool {
		return s.fresh(saved) && (rejected == nil || saved.AccessToken != rejected.AccessToken)
	})
}

// update refreshes the saved token under the updater's lock, unless the
// saved token is already usable: another goroutine or process refreshed it
// while we waited for the lock. Then it is used as it is (and, unchanged, not
// written).
func (s *SavingTokenSource) update(usable func(*oauth2.Token) bool) (*oauth2.Token, error) {
	var got *oauth2.Token
	err := s.u.UpdateToken(s.ctx, func(saved *oauth2.Token) (*oauth2.Token, error) {
		if usable(saved) {
			got = saved
			return saved, nil
		}
		if saved == nil || saved.RefreshToken == "" {
			return nil, &signin.Error{Kind: signin.ECONFLICT, Code: "offline_access_required",
				Message: "The server holds no refresh token for this user; they must grant offline access."}
		}
		// A fresh refresher with only the refresh token: x/oauth2's own
		// cache is bypassed, so exactly one refresh grant is sent.
		nt, err := s.conf.TokenSource(s.ctx, &oauth2.Token{RefreshToken: saved.RefreshToken}).Token()
		if err != nil {
			return nil, mapTokenError(s.logger, "refresh", err)
		}
		if nt.RefreshToken == "" {
			nt.RefreshToken = saved.RefreshToken
		}
		got = nt
		return nt, nil
	})
	if err != nil {
		return nil, err
	}
	s.tok = got
	return got, nil
}

// fresh reports whether t can be used for at least the margin. Like
// x/oauth2, a token without an expiry never expires.
func (s *SavingTokenSource) fresh(t *oauth2.Token) bool {
	if t == nil || t.AccessToken == "" {
		return false
	}
	return t.Expiry.IsZero() || s.now().Add(s.margin).Before(t.Expiry)
}
