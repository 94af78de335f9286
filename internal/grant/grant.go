// Package grant is the one home of a user's offline grant: the credential
// Record, the Store interface that keeps records (backends live under
// internal/store; granttest is the contract every backend passes) and the
// rules of a grant, by Google's behaviour:
//
//   - saving what a code exchange gave (Grants.SaveExchange): a new refresh
//     token replaces the stored one, an answer without one keeps it, and a
//     new grant replaces a damaged record (set aside for the operator);
//   - what the server can do for a user offline (Record.Offline): none,
//     active, revoked, or unreadable;
//   - a token source built from the record it is given that refreshes only
//     when needed and writes the refreshed token back under the user's lock
//     (Grants.TokenSource);
//   - a grant Google refuses (invalid_grant) is marked revoked, not deleted,
//     so the page can offer to reconnect;
//   - disconnecting revokes at Google first and forgets the record only then
//     (Grants.Disconnect);
//   - what an error from acting with a grant shows of it, as the API and
//     the pages answer (OfflineOf), and why Google refused it
//     (RevokedReason, as the record keeps it);
//   - which records acting offline passes over, skips or uses (ActOn);
//   - finding a user by sub or email (FindUser), and which record wins an
//     import from another store (Import: the newer);
//   - how every backend stamps and checks a record it writes (Apply,
//     Validate).
//
// The web server, offline-fetch, its rounds and signin-admin each make one
// call for each of these; none decides a rule. Google's protocol itself is
// package auth's.
package grant

import (
	"context"
	"time"

	"golang.org/x/oauth2"
)

// RecordVersion is the version of the Record format written today.
// Decoders refuse records of a newer version rather than dropping fields.
const RecordVersion = 1

// Status of a stored grant.
type Status string

const (
	// StatusActive: the grant is believed to work.
	StatusActive Status = "active"
	// StatusRevoked: Google refused the refresh token (invalid_grant); the
	// user must grant offline access again ("reconnect"). Nothing is deleted,
	// so the web page can say so.
	StatusRevoked Status = "revoked"
)

// Record is one user's offline credentials: what a batch job needs to act for
// the user while they are away. Its JSON form (version 1) is documented in the
// README and is the file backend's on-disk format.
type Record struct {
	Version       int        `json:"version"`
	Sub           string     `json:"sub"`                      // Google's stable user id
	Email         string     `json:"email,omitempty"`          // for people, never for identity
	Name          string     `json:"name,omitempty"`           // display name at grant time
	Scopes        []string   `json:"scopes,omitempty"`         // as granted by Google
	Token         Token      `json:"token"`                    // the OAuth 2.0 token
	Status        Status     `json:"status"`                   // active or revoked
	RevokedReason string     `json:"revoked_reason,omitempty"` // Google's error, when revoked
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
	// DisabledAt is set while Google says the account is disabled (a
	// Cross-Account Protection event): sign-in is refused until Google
	// enables it again. Such a record may hold no token.
	DisabledAt     *time.Time `json:"disabled_at,omitempty"`
	DisabledReason string     `json:"disabled_reason,omitempty"`
	// RefreshedAt is when Google last gave this grant's tokens (an
	// exchange or a refresh).
	RefreshedAt *time.Time `json:"refreshed_at,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// Token is the stored form of an oauth2.Token. It is our own type so that the
// on-disk format does not change when x/oauth2 adds fields.
type Token struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
}

// OAuth2 converts the stored token to an *oauth2.Token.
func (t Token) OAuth2() *oauth2.Token {
	return &oauth2.Token{
		AccessToken:  t.AccessToken,
		TokenType:    t.TokenType,
		RefreshToken: t.RefreshToken,
		Expiry:       t.Expiry,
	}
}

// TokenFrom converts an *oauth2.Token to its stored form.
func TokenFrom(t *oauth2.Token) Token {
	if t == nil {
		return Token{}
	}
	return Token{
		AccessToken:  t.AccessToken,
		TokenType:    t.TokenType,
		RefreshToken: t.RefreshToken,
		Expiry:       t.Expiry,
	}
}

// Store keeps one Record per user, keyed by the user's sub. Implementations
// are safe for concurrent use. Errors are *signin.Error values; a missing
// record is kind signin.ENOTFOUND, a sub that CheckSub refuses is
// signin.EINVALID, and a stored record that cannot be decoded (damaged,
// or not what the backend keeps records in) is EINTERNAL with code
// CodeCorruptRecord, made by CorruptRecord. granttest.Run checks an
// implementation against this contract.
type Store interface {
	// Get returns the record for sub, or an ENOTFOUND error.
	Get(ctx context.Context, sub string) (*Record, error)

	// Update reads sub's record, calls fn with it (nil when there is none),
	// and saves the record fn returns, all under a lock that serialises
	// updates of that user's record, across processes where the backend is
	// shared. fn may modify and return its argument. If fn returns an error,
	// or a nil record, nothing is written. The store sets Version, Sub,
	// CreatedAt (when new) and UpdatedAt. The write is atomic: readers see
	// the old record or the new one, never a mix. Update returns the record
	// as saved (or as found, when fn returned nil). A stored record that
	// cannot be read is never overwritten: Update returns its
	// CodeCorruptRecord error without calling fn (see SetAside).
	Update(ctx context.Context, sub string, fn func(cur *Record) (*Record, error)) (*Record, error)

	// SetAside moves sub's record out of the way if it cannot be read,
	// under the same lock as Update, so that the next Update starts from no
	// record. The damaged record is kept where an operator can find it and
	// no reader takes it for a record; where says where (a file name, say),
	// for the log. A record that can be read, or none, is left as it is:
	// where is "" and err nil.
	SetAside(ctx context.Context, sub string) (where string, err error)

	// Delete removes sub's record, under the same lock as Update. Deleting a
	// record that does not exist returns an ENOTFOUND error.
	Delete(ctx context.Context, sub string) error

	// List calls fn for each stored record, one at a time, in no particular
	// order, reading the store as it goes so that memory does not grow with
	// the number of users. A record that cannot be read is passed to fn as
	// (nil, err) so the caller can report it (DamagedSub(err) names its
	// user when the backend can tell); it is never skipped silently.
	// List stops at the first error fn returns and returns it, and at the
	// end of ctx. fn may call the store (to update the record it is given,
	// say). Records that exist throughout the listing are seen exactly
	// once; one created, replaced or deleted meanwhile may be missed, or
	// seen twice (see the backend).
	List(ctx context.Context, fn func(rec *Record, err error) error) error
}
