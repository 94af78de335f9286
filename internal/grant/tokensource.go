package grant

import (
	"context"
	"log/slog"
	"sync"

	"golang.org/x/oauth2"

	"example.com/signin"
	"example.com/signin/internal/auth"
)

// This file is the hook users of x/oauth2 have asked for since 2014
// (golang/oauth2#84): Config.TokenSource refreshes an expired token
// silently and keeps the new one in memory only, so a program that stores
// tokens never learns of the refresh, and two programs sharing a store
// refresh the same token at once and each keep their own. TokenSource does
// the refresh itself, inside Store.Update (under the user's lock, across
// processes and replicas where the backend is shared), and writes the result
// back.

// TokenSource is an oauth2.TokenSource for one user's stored grant. It
// starts from the record it was built from (no second read), refreshes when
// the token has expired or is about to, and saves the new token. It never
// refreshes a token that is still fresh, and refreshes at most once however
// many goroutines, or processes sharing the store's lock, find the token
// expired at the same time: the others use the token the first one saved.
// A refresh answer without a refresh token keeps the saved one.
//
// When Google refuses the refresh token (invalid_grant) the record is marked
// revoked and saved, and the error is ECONFLICT "offline_access_revoked".
// Other errors are *signin.Error values: ENOTFOUND when the record is gone,
// ECONFLICT "offline_access_required" when there is no refresh token, and
// those of auth's refresh (EUPSTREAM "google_unavailable", ...). It is safe
// for concurrent use.
type TokenSource struct {
	g   *Grants
	ctx context.Context
	sub string

	mu        sync.Mutex    // serialises Token and Refresh in this process
	tok       *oauth2.Token // last token seen, saved or refreshed; guarded by mu
	err       error         // the record's state forbids use (revoked); guarded by mu
	refreshed bool          // this source got a new token from Google; guarded by mu
}

var _ oauth2.TokenSource = (*TokenSource)(nil)

// TokenSource returns the token source for rec's grant. ctx is used for
// every update and refresh, for the life of the source; it may carry the
// HTTP client for Google as oauth2.HTTPClient (a batch job's retrying
// client, say).
func (g *Grants) TokenSource(ctx context.Context, rec *Record) *TokenSource {
	ts := &TokenSource{g: g, ctx: ctx, sub: rec.Sub}
	if rec.Status == StatusRevoked {
		ts.err = revokedError(nil, rec.RevokedReason)
	} else {
		ts.tok = rec.Token.OAuth2()
	}
	return ts
}

// Token returns a token that will not expire within the margin: the one it
// has, else a refreshed one, saved (or the one another process saved
// meanwhile). The caller must not modify it.
func (s *TokenSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	if s.fresh(s.tok) {
		return s.tok, nil
	}
	return s.update(s.fresh)
}

// Refresh is for an API answer of 401 to a token that has not expired: the
// user revoked the grant, or clocks disagree. It returns a new token: the
// saved one if it is no longer the rejected one (someone refreshed
// meanwhile), else a refreshed one, saved. If the grant was revoked, the
// refresh fails with invalid_grant and the record is marked revoked.
func (s *TokenSource) Refresh(rejected *oauth2.Token) (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	return s.update(func(saved *oauth2.Token) bool {
		return s.fresh(saved) && (rejected == nil || saved.AccessToken != rejected.AccessToken)
	})
}

// update refreshes the saved token inside Store.Update, unless the saved
// token is already usable: another goroutine or process refreshed it while
// we waited for the lock. Then it is used as it is, and nothing is written.
func (s *TokenSource) update(usable func(*oauth2.Token) bool) (*oauth2.Token, error) {
	var got *oauth2.Token
	var revoked error
	var reason string // Google's, when it refused the grant
	replaced := false // Google sent a new refresh token
	_, err := s.g.store.Update(s.ctx, s.sub, func(cur *Record) (*Record, error) {
		if cur == nil {
			return nil, signin.Errorf(signin.ENOTFOUND, "", "No offline access is stored for this user.")
		}
		if cur.Status == StatusRevoked {
			return nil, revokedError(nil, cur.RevokedReason)
		}
		saved := cur.Token.OAuth2()
		if usable(saved) {
			got = saved
			return nil, nil
		}
		if saved.RefreshToken == "" {
			return nil, &signin.Error{Kind: signin.ECONFLICT, Code: CodeOfflineAccessRequired,
				Message: "The server holds no refresh token for this user; they must grant offline access."}
		}
		nt, err := s.g.google.Refresh(s.ctx, saved.RefreshToken)
		if ge, dead := auth.InvalidGrant(err); dead {
			reason = ge.Description
			if reason == "" {
				reason = ge.Code
			}
			s.g.markRevoked(cur, reason)
			revoked = revokedError(err, reason)
			return cur, nil
		}
		if err != nil {
			return nil, err
		}
		s.refreshed = true
		before, scopes := cur.Token, cur.Scopes
		s.g.merge(cur, nt, false)
		replaced = cur.Token.RefreshToken != before.RefreshToken
		got = cur.Token.OAuth2()
		if sameToken(before, cur.Token) && sameScopes(scopes, cur.Scopes) {
			return nil, nil
		}
		return cur, nil
	})
	if err == nil && revoked != nil {
		err = revoked
		s.g.audit(s.ctx, auditGrantRevoked, s.sub, slog.String("reason", reason))
	}
	if err == nil && replaced {
		s.g.audit(s.ctx, auditRefreshTokenReplaced, s.sub)
	}
	if err != nil {
		if signin.ErrorCode(err) == CodeOfflineAccessRevoked {
			s.err, s.tok = err, nil
		}
		return nil, err
	}
	s.tok = got
	return got, nil
}

// Refreshed reports whether this source has refreshed the token at
// Google: not when the token it started with was fresh, nor when another
// goroutine or process had saved a fresh one meanwhile.
func (s *TokenSource) Refreshed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshed
}

// fresh reports whether t can be used for at least the margin. Like
// x/oauth2, a token without an expiry never expires.
func (s *TokenSource) fresh(t *oauth2.Token) bool {
	if t == nil || t.AccessToken == "" {
		return false
	}
	return t.Expiry.IsZero() || s.g.now().Add(s.g.margin).Before(t.Expiry)
}
