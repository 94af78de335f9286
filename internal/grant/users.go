package grant

import (
	"context"
	"errors"
	"slices"
	"strings"

	"example.com/signin"
)

// CodeAmbiguousUser is the error code of an email that several users'
// records hold: the sub must be given.
const CodeAmbiguousUser = "ambiguous_user"

// maxListed bounds the subs an ambiguous email's error names.
const maxListed = 10

// FindUser returns the record of user, as an operator names one: a sub, or
// else (when no record has that sub and user holds an "@") the email
// exactly one record holds, compared without case. No record is an
// ENOTFOUND error; an email several records hold is EINVALID
// CodeAmbiguousUser naming their subs. A record that cannot be read is
// returned as its error (CodeCorruptRecord): user is then its sub.
func FindUser(ctx context.Context, st Store, user string) (*Record, error) {
	rec, err := st.Get(ctx, user)
	if signin.ErrorKind(err) != signin.ENOTFOUND {
		return rec, err
	}
	if !strings.Contains(user, "@") {
		return nil, signin.Errorf(signin.ENOTFOUND, "", "no record is stored for this user")
	}
	var found []*Record
	err = st.List(ctx, func(rec *Record, err error) error {
		if err == nil && strings.EqualFold(rec.Email, user) {
			found = append(found, rec)
			if len(found) > maxListed {
				return errStopList
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStopList) {
		return nil, err
	}
	switch len(found) {
	case 0:
		return nil, signin.Errorf(signin.ENOTFOUND, "", "no record is stored for a user with this email")
	case 1:
		return found[0], nil
	}
	subs := make([]string, 0, len(found))
	for _, rec := range found {
		subs = append(subs, rec.Sub)
	}
	slices.Sort(subs)
	more := ""
	if len(found) > maxListed {
		subs, more = subs[:maxListed], ", ..."
	}
	return nil, signin.Errorf(signin.EINVALID, CodeAmbiguousUser,
		"%q names %d users (subs %s%s): give the sub of the one you mean", user, len(found), strings.Join(subs, ", "), more)
}

// Import copies rec, a record from another store, into st under the user's
// lock: the newer record wins. A user st does not have, or has an older
// record of, gets rec (keeping st's creation time when it has one); a
// record in st as new or newer is kept. It reports whether rec was
// written, and is idempotent.
func Import(ctx context.Context, st Store, rec *Record) (bool, error) {
	wrote := false
	_, err := st.Update(ctx, rec.Sub, func(cur *Record) (*Record, error) {
		if cur != nil && !cur.UpdatedAt.Before(rec.UpdatedAt) {
			return nil, nil
		}
		next := *rec
		if cur != nil {
			next.CreatedAt = cur.CreatedAt
		}
		wrote = true
		return &next, nil
	})
	return wrote && err == nil, err
}

// Act is what acting for users while they are away (offline-fetch, its
// rounds) does with a stored record.
type Act int

const (
	// PassOver: no grant to act with (no refresh token), a record kept
	// for another reason, such as an account Google disabled. A run over
	// every user does not list it; asked for by name, it fails
	// (CodeOfflineAccessRequired).
	PassOver Act = iota
	// SkipRevoked: Google refused the grant before. It is reported, and
	// never sent to Google again until the user connects again.
	SkipRevoked
	// Use: a grant to act with.
	Use
)

// ActOn says what to do with rec.
func ActOn(rec *Record) Act {
	switch rec.Offline() {
	case OfflineRevoked:
		return SkipRevoked
	case OfflineActive:
		return Use
	}
	return PassOver
}
