package grant

import (
	"context"
	"fmt"

	"example.com/signin"
	"example.com/signin/internal/seal"
)

// Sealed returns st with the tokens of every record sealed at rest: the
// access and refresh tokens are sealed with the keyring's newest key (bound
// to the record's sub) before the backend sees them, and opened when read,
// so neither a record file, a database row, a temporary file nor a backup
// holds a usable token. Records written before sealing (plain tokens) open
// as they are and are sealed on their next write. A token that does not open
// (another user's, tampered with, or sealed by a key no longer configured)
// makes its record unreadable (CodeCorruptRecord), as a damaged file does.
//
// It is a decorator rather than a backend concern so that every backend
// gets it alike, and the rules of a grant never see a sealed value.
func Sealed(st Store, keys *seal.Keyring) Store {
	return &sealedStore{st: st, keys: keys}
}

type sealedStore struct {
	st   Store
	keys *seal.Keyring
}

func (s *sealedStore) Get(ctx context.Context, sub string) (*Record, error) {
	rec, err := s.st.Get(ctx, sub)
	if err != nil {
		return nil, err
	}
	if err := s.open(rec); err != nil {
		return nil, err
	}
	return rec, nil
}

func (s *sealedStore) Update(ctx context.Context, sub string, fn func(cur *Record) (*Record, error)) (*Record, error) {
	saved, err := s.st.Update(ctx, sub, func(cur *Record) (*Record, error) {
		if cur != nil {
			if err := s.open(cur); err != nil {
				return nil, err
			}
		}
		next, err := fn(cur)
		if err != nil || next == nil {
			return next, err
		}
		sealed := *next
		if err := s.seal(sub, &sealed); err != nil {
			return nil, err
		}
		return &sealed, nil
	})
	if err != nil || saved == nil {
		return saved, err
	}
	if err := s.open(saved); err != nil {
		return nil, err
	}
	return saved, nil
}

func (s *sealedStore) Delete(ctx context.Context, sub string) error { return s.st.Delete(ctx, sub) }

func (s *sealedStore) List(ctx context.Context, fn func(rec *Record, err error) error) error {
	return s.st.List(ctx, func(rec *Record, err error) error {
		if err == nil {
			if oerr := s.open(rec); oerr != nil {
				return fn(nil, oerr)
			}
		}
		return fn(rec, err)
	})
}

func (s *sealedStore) seal(sub string, rec *Record) error {
	for _, t := range []*string{&rec.Token.AccessToken, &rec.Token.RefreshToken} {
		v, err := s.keys.Seal(sub, *t)
		if err != nil {
			return signin.Wrap(err, signin.EINTERNAL, "", "cannot seal the credential record")
		}
		*t = v
	}
	return nil
}

func (s *sealedStore) open(rec *Record) error {
	for _, t := range []*string{&rec.Token.AccessToken, &rec.Token.RefreshToken} {
		v, err := s.keys.Open(rec.Sub, *t)
		if err != nil {
			return signin.Wrap(fmt.Errorf("record of %q: %w", rec.Sub, err), signin.EINTERNAL, CodeCorruptRecord,
				"A stored credential record cannot be read.")
		}
		*t = v
	}
	return nil
}
