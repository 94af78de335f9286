package store

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"example.com/signin"
	"golang.org/x/oauth2"
)

// CodeOfflineAccessRevoked is the error code for a user whose stored grant
// Google refused (invalid_grant): the user must grant offline access again.
const CodeOfflineAccessRevoked = "offline_access_revoked"

// maxReasonLen bounds RevokedReason, which is Google's text (or whatever a
// misbehaving token endpoint sends).
const maxReasonLen = 256

// MergeToken applies a token from Google (a code exchange or a refresh) to
// cur, by Google's rules: Google sends a refresh token only on the first
// consent (or with prompt=consent), so a new refresh token replaces the
// stored one and makes the record active again (it is a new grant), while an
// answer without one keeps the stored one. The access token, its type and
// expiry are always replaced; an answer that carries only expires_in gets its
// expiry from now. Scopes are replaced when the answer lists them (Google's
// "scope" field: what was actually granted).
func MergeToken(cur *Record, t *oauth2.Token, now time.Time) {
	if cur == nil || t == nil {
		return
	}
	nt := TokenFrom(t)
	if nt.Expiry.IsZero() && t.ExpiresIn > 0 {
		nt.Expiry = now.Add(time.Duration(t.ExpiresIn) * time.Second).UTC()
	}
	if nt.RefreshToken == "" {
		nt.RefreshToken = cur.Token.RefreshToken
	} else {
		cur.Status = StatusActive
		cur.RevokedReason = ""
		cur.RevokedAt = nil
	}
	cur.Token = nt
	if s, ok := t.Extra("scope").(string); ok && strings.TrimSpace(s) != "" {
		cur.Scopes = strings.Fields(s)
	}
}

// UserTokens keeps one user's token in a Store. It is what
// auth.NewSavingTokenSource needs (its TokenUpdater interface, satisfied
// structurally so that this package does not depend on auth): loading the
// saved token and replacing it under the store's per-user lock.
type UserTokens struct {
	st  Store
	sub string
	now func() time.Time
}

// NewUserTokens returns the token keeper for sub's record in st. now is the
// clock for RevokedAt and token expiries (nil means time.Now).
func NewUserTokens(st Store, sub string, now func() time.Time) *UserTokens {
	if now == nil {
		now = time.Now
	}
	return &UserTokens{st: st, sub: sub, now: now}
}

// LoadToken returns the saved token. It fails with ENOTFOUND when there is no
// record and with ECONFLICT (code offline_access_revoked) when the record is
// revoked.
func (u *UserTokens) LoadToken(ctx context.Context) (*oauth2.Token, error) {
	rec, err := u.st.Get(ctx, u.sub)
	if err != nil {
		return nil, err
	}
	if rec.Status == StatusRevoked {
		return nil, revokedError(nil)
	}
	return rec.Token.OAuth2(), nil
}

// UpdateToken calls fn with the saved token under the store's lock for the
// user and saves the token fn returns (by MergeToken's rules) when it differs
// from the saved one. It fails like LoadToken when there is no record or it
// is revoked, without calling fn.
//
// When fn fails with Google's invalid_grant (an *oauth2.RetrieveError with
// ErrorCode "invalid_grant" anywhere in its chain), the grant is dead: the
// record is marked revoked, with Google's error_description as the reason,
// and saved, and UpdateToken returns an ECONFLICT offline_access_revoked
// error wrapping fn's error. Any other error from fn is returned as it is and
// nothing is written.
func (u *UserTokens) UpdateToken(ctx context.Context, fn func(saved *oauth2.Token) (*oauth2.Token, error)) error {
	var revoked error
	_, err := u.st.Update(ctx, u.sub, func(cur *Record) (*Record, error) {
		if cur == nil {
			return nil, signin.Errorf(signin.ENOTFOUND, "", "No offline access is stored for this user.")
		}
		if cur.Status == StatusRevoked {
			return nil, revokedError(nil)
		}
		nt, err := fn(cur.Token.OAuth2())
		if err != nil {
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
				return nil, err
			}
			now := u.now().UTC()
			cur.Status = StatusRevoked
			cur.RevokedReason = reason(re)
			cur.RevokedAt = &now
			revoked = revokedError(err)
			return cur, nil
		}
		before := cur.Token
		scopes := strings.Join(cur.Scopes, " ")
		MergeToken(cur, nt, u.now())
		if sameToken(before, cur.Token) && scopes == strings.Join(cur.Scopes, " ") {
			return nil, nil // unchanged: nothing to write
		}
		return cur, nil
	})
	if err != nil {
		return err
	}
	return revoked
}

func sameToken(a, b Token) bool {
	return a.AccessToken == b.AccessToken && a.RefreshToken == b.RefreshToken &&
		a.TokenType == b.TokenType && a.Expiry.Equal(b.Expiry)
}

func revokedError(cause error) error {
	return &signin.Error{
		Kind:    signin.ECONFLICT,
		Code:    CodeOfflineAccessRevoked,
		Message: "Google no longer accepts this user's offline access; they must connect again.",
		Err:     cause,
	}
}

// reason is Google's explanation of an invalid_grant, made safe to store
// and show: printable, one line, bounded.
func reason(re *oauth2.RetrieveError) string {
	s := re.ErrorDescription
	if s == "" {
		s = re.ErrorCode
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, s)
	if len(s) > maxReasonLen {
		s = s[:maxReasonLen]
		for !utf8.ValidString(s) { // do not cut a character in half
			s = s[:len(s)-1]
		}
	}
	return s
}
