package file

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"example.com/signin"
	"example.com/signin/internal/grant"
)

// Ended sessions, beside the credentials. Signing in writes nothing here:
// the session cookie is the session. What is kept is what ended sessions,
// per user, in one small file in the ".session-ends" subdirectory named
// after the SHA-256 of the user's sub: the time at or before which every
// session of the user was issued is ended (sign-out everywhere, disconnect,
// Google's security events, signin-admin sessions end), and the keys of
// single sessions signed out, each until that session would have expired
// anyway. Ending is a read and a rewrite of that one file under the user's
// lock, whatever the number of sessions anyone holds.
//
// Files are written whole to a temporary name, synced and renamed, so a
// reader sees the old state or the new one. A user's expired keys are
// dropped whenever their file is written; a file whose every entry has
// expired is removed by a bounded sweep (sweepBatch files, at most once per
// sweepEvery) made after a write. Nothing is scanned at start or on a
// read.
//
// The ".sessions" directory of earlier versions (one file per session) is
// renamed aside when the store opens and removed in the background (a
// removal cut short is finished by the next Open).

const (
	endsDir        = ".session-ends"
	legacySessions = ".sessions"
	maxEndsFile    = 1 << 20
	sweepEvery     = time.Minute
	sweepBatch     = 256
	// damagedEndsKept is how long the end that replaces a damaged file is
	// kept: the store does not know -session-max-age, so a bound above any
	// sensible one (as signin-admin's).
	damagedEndsKept = 400 * 24 * time.Hour
)

// endsFile is the JSON of a user's file.
type endsFile struct {
	Sub        string      `json:"sub"`
	ValidAfter time.Time   `json:"valid_after,omitzero"`
	KeepUntil  time.Time   `json:"keep_until"`
	Ended      []endedSess `json:"ended,omitempty"`
}

type endedSess struct {
	Key     string    `json:"key"`
	Expires time.Time `json:"expires"`
}

// endsName is the name of sub's file (and, with lockExt, of its lock).
func endsName(sub string) string {
	h := sha256.Sum256([]byte(sub))
	return hex.EncodeToString(h[:])
}

// SessionEnds returns what ended sub's sessions (see web.SessionStore).
func (s *Store) SessionEnds(ctx context.Context, sub string) (time.Time, []string, error) {
	if err := grant.CheckSub(sub); err != nil {
		return time.Time{}, nil, err
	}
	ef, err := readEndsFile(filepath.Join(s.dir, endsDir, endsName(sub)))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return time.Time{}, nil, nil
	case err != nil:
		return time.Time{}, nil, internal(err, "cannot read the user's ended sessions")
	case ef.Sub != sub:
		return time.Time{}, nil, internal(fmt.Errorf("%s holds another user", endsName(sub)), "cannot read the user's ended sessions")
	}
	now := s.now()
	var keys []string
	for _, e := range ef.Ended {
		if now.Before(e.Expires) {
			keys = append(keys, e.Key)
		}
	}
	return ef.ValidAfter, keys, nil
}

// EndSession ends the one session of sub that key names, until expires.
func (s *Store) EndSession(ctx context.Context, sub, key string, expires time.Time) error {
	if key == "" || len(key) > 256 {
		return signin.Errorf(signin.EINVALID, "invalid_session", "A session key is 1 to 256 bytes.")
	}
	return s.updateEnds(ctx, sub, func(ef *endsFile) {
		for _, e := range ef.Ended {
			if e.Key == key {
				return
			}
		}
		ef.Ended = append(ef.Ended, endedSess{Key: key, Expires: expires.UTC()})
	})
}

// EndUserSessions ends every session of sub issued at or before at.
func (s *Store) EndUserSessions(ctx context.Context, sub string, at, keepUntil time.Time) error {
	return s.updateEnds(ctx, sub, func(ef *endsFile) {
		if at.After(ef.ValidAfter) {
			ef.ValidAfter = at.UTC()
		}
		if keepUntil.After(ef.KeepUntil) {
			ef.KeepUntil = keepUntil.UTC()
		}
	})
}

// updateEnds rewrites sub's file with fn's change, under the user's lock,
// dropping the keys that expired; then perhaps sweeps a few other files.
func (s *Store) updateEnds(ctx context.Context, sub string, fn func(*endsFile)) error {
	if err := grant.CheckSub(sub); err != nil {
		return err
	}
	dir := filepath.Join(s.dir, endsDir)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return internal(err, "cannot end the session")
	}
	// Never write through a link to somewhere else.
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
		if err == nil {
			err = fmt.Errorf("%s is not a directory (links are not followed)", endsDir)
		}
		return internal(err, "cannot end the session")
	}
	name := endsName(sub)
	unlock, err := s.lock(ctx, filepath.Join(endsDir, name))
	if err != nil {
		return err
	}
	defer unlock()
	path := filepath.Join(dir, name)
	ef, err := readEndsFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		ef = &endsFile{Sub: sub}
	case err != nil:
		// A damaged file is replaced, failing closed: what it held ended
		// sessions, which cannot be told apart any more, so every session
		// of the user issued until now is ended (they sign in again).
		s.log.Warn("replacing a damaged file of ended sessions: ending every session of its user", "file", name, "err", err)
		now := s.now()
		ef = &endsFile{Sub: sub, ValidAfter: now.UTC(), KeepUntil: now.Add(damagedEndsKept).UTC()}
	case ef.Sub != sub:
		return internal(fmt.Errorf("%s holds another user", name), "cannot end the session")
	}
	fn(ef)
	now := s.now()
	kept := ef.Ended[:0]
	for _, e := range ef.Ended {
		if now.Before(e.Expires) {
			kept = append(kept, e)
			if e.Expires.After(ef.KeepUntil) {
				ef.KeepUntil = e.Expires
			}
		}
	}
	ef.Ended = kept
	b, err := json.Marshal(ef)
	if err != nil || len(b) > maxEndsFile {
		return signin.Errorf(signin.ETOOLARGE, "too_many_ended_sessions", "Too many sessions of this user were ended one by one; sign out everywhere instead.")
	}
	if err := writeFileAtomic(dir, tempName(name), name, b); err != nil {
		return internal(err, "cannot end the session")
	}
	s.maybeSweep(now)
	return nil
}

// maybeSweep looks at the next sweepBatch files of the directory, if no
// sweep ran for sweepEvery, and removes those whose every entry expired.
// The directory is read where the last sweep stopped, so that every file is
// met in turn, in bounded work each time.
func (s *Store) maybeSweep(now time.Time) {
	s.sweepMu.Lock()
	defer s.sweepMu.Unlock()
	if now.Sub(s.lastSweep) < sweepEvery {
		return
	}
	s.lastSweep = now
	n, err := s.sweepEnds(now, sweepBatch)
	if err != nil {
		s.log.Warn("sweeping expired ended sessions failed", "err", err)
	} else if n > 0 {
		s.log.Debug("removed expired files of ended sessions", "count", n)
	}
}

// sweepEnds reads up to batch names of the directory, from where the last
// call stopped (a new pass after the end), and removes the expired files
// among them. The caller holds sweepMu.
func (s *Store) sweepEnds(now time.Time, batch int) (int, error) {
	dir := filepath.Join(s.dir, endsDir)
	if s.sweepDir == nil {
		d, err := os.Open(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		s.sweepDir = d
	}
	names, err := s.sweepDir.Readdirnames(batch)
	if err != nil || len(names) < batch {
		s.sweepDir.Close()
		s.sweepDir = nil
		if errors.Is(err, io.EOF) {
			err = nil
		}
	}
	removed := 0
	for _, name := range names {
		path := filepath.Join(dir, name)
		if strings.HasPrefix(name, tempPrefix) {
			if fi, err := os.Lstat(path); err == nil && now.Sub(fi.ModTime()) > staleTemp {
				os.Remove(path)
			}
			continue
		}
		if strings.HasSuffix(name, lockExt) {
			continue // removed with its file
		}
		if ef, err := readEndsFile(path); err != nil || now.Before(ef.KeepUntil) {
			continue
		}
		if s.removeExpiredEnds(name, now) {
			removed++
		}
	}
	return removed, err
}

// removeExpiredEnds removes the file name, and its lock, if it is still
// expired under the user's lock.
func (s *Store) removeExpiredEnds(name string, now time.Time) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	unlock, err := s.lock(ctx, filepath.Join(endsDir, name))
	if err != nil {
		return false
	}
	defer unlock()
	path := filepath.Join(s.dir, endsDir, name)
	ef, err := readEndsFile(path)
	if err != nil || now.Before(ef.KeepUntil) {
		return false
	}
	for _, e := range ef.Ended {
		if now.Before(e.Expires) {
			return false
		}
	}
	if os.Remove(path) != nil {
		return false
	}
	// lockFile notices a lock file removed under it and takes the new one.
	os.Remove(path + lockExt)
	return true
}

// readEndsFile reads a user's file without following links or blocking on
// special files.
func readEndsFile(path string) (*endsFile, error) {
	f, err := openRegular(path, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxEndsFile+1))
	if err != nil {
		return nil, err
	}
	var ef endsFile
	if len(b) > maxEndsFile || json.Unmarshal(b, &ef) != nil || ef.Sub == "" {
		return nil, fmt.Errorf("%s is damaged", filepath.Base(path))
	}
	return &ef, nil
}

// removeLegacySessions renames the ".sessions" directory of earlier
// versions (a file per session, which no cookie of this version names)
// aside, at once, and removes it in the background: it may hold a great
// many files.
func (s *Store) removeLegacySessions() {
	old := filepath.Join(s.dir, legacySessions)
	fi, err := os.Lstat(old)
	if err != nil {
		return
	}
	if !fi.IsDir() {
		os.Remove(old)
		return
	}
	aside := filepath.Join(s.dir, fmt.Sprintf("%s%s%d", tempPrefix, legacyAside, s.now().UnixNano()))
	if err := os.Rename(old, aside); err != nil {
		s.log.Warn("cannot remove the sessions directory of an earlier version", "dir", old, "err", err)
		return
	}
	s.log.Info("removing the sessions of an earlier version: their holders sign in again", "dir", old)
	s.removeAside(aside)
}

// legacyAside names (after tempPrefix) the old sessions directory renamed
// aside; a removal cut short is finished by the next Open
// (removeStaleTemps).
const legacyAside = "legacy-sessions-"

// removeAside removes the directory dir in the background: it may hold a
// great many files.
func (s *Store) removeAside(dir string) {
	go func() {
		if err := os.RemoveAll(dir); err != nil {
			s.log.Warn("cannot remove the sessions directory of an earlier version", "dir", dir, "err", err)
		}
	}()
}
