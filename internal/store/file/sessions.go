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
	"syscall"
	"time"

	"example.com/signin"
)

// Server-side sessions, beside the credentials: one small file per live
// session in the ".sessions" subdirectory, named after the SHA-256 of the
// session id (so the directory never holds a usable cookie value), holding
// the user's sub and the session's expiry. Ending a session removes its
// file; ending a user's sessions reads the directory and removes theirs.
// That is a scan, fine for one machine's sessions (signing out everywhere is
// rare and the files are tiny); several replicas use a database.
//
// Files are written whole to a temporary name and renamed, so a reader sees
// a session or none. Expired files are removed when met, and by Open.

const (
	sessionsDir    = ".sessions"
	maxSessionFile = 8 << 10
)

// sessionFile is the JSON of a session file.
type sessionFile struct {
	Sub     string    `json:"sub"`
	Data    []byte    `json:"data,omitempty"`
	Expires time.Time `json:"expires"`
}

func (s *Store) sessionPath(id string) string {
	h := sha256.Sum256([]byte(id))
	return filepath.Join(s.dir, sessionsDir, hex.EncodeToString(h[:]))
}

// CreateSession records session id of sub, live until expires.
func (s *Store) CreateSession(ctx context.Context, id, sub string, data []byte, expires time.Time) error {
	if id == "" || sub == "" {
		return signin.Errorf(signin.EINVALID, "", "A session needs an id and a user.")
	}
	b, err := json.Marshal(sessionFile{Sub: sub, Data: data, Expires: expires.UTC()})
	if err != nil || len(b) > maxSessionFile {
		return signin.Errorf(signin.EINVALID, "", "The session is too large to keep.")
	}
	dir := filepath.Join(s.dir, sessionsDir)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return internal(err, "cannot keep the session")
	}
	// Never write through a link to somewhere else.
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
		if err == nil {
			err = fmt.Errorf("%s is not a directory (links are not followed)", sessionsDir)
		}
		return internal(err, "cannot keep the session")
	}
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return internal(err, "cannot keep the session")
	}
	tmp := f.Name()
	_, werr := f.Write(b)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp)
		return internal(err, "cannot keep the session")
	}
	if err := os.Rename(tmp, s.sessionPath(id)); err != nil {
		os.Remove(tmp)
		return internal(err, "cannot keep the session")
	}
	return nil
}

// LoadSession returns a live session; ENOTFOUND when it was ended, has
// expired or never existed.
func (s *Store) LoadSession(ctx context.Context, id string) (sub string, data []byte, expires time.Time, err error) {
	path := s.sessionPath(id)
	sf, err := readSessionFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", nil, time.Time{}, sessionNotFound()
	case err != nil:
		return "", nil, time.Time{}, internal(err, "cannot read the session")
	case !s.now().Before(sf.Expires):
		os.Remove(path)
		return "", nil, time.Time{}, sessionNotFound()
	}
	return sf.Sub, sf.Data, sf.Expires, nil
}

// DeleteSession ends one session.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if err := os.Remove(s.sessionPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return internal(err, "cannot end the session")
	}
	return nil
}

// DeleteUserSessions ends every session of sub (and removes expired ones it
// meets), and says how many of sub's it ended.
func (s *Store) DeleteUserSessions(ctx context.Context, sub string) (int, error) {
	n := 0
	err := s.eachSession(ctx, func(path string, sf *sessionFile) error {
		if sf.Sub == sub {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return n, internal(err, "cannot end the user's sessions")
	}
	return n, nil
}

// removeExpiredSessions removes the session files past their expiry, and
// temporary files of crashed writers.
func (s *Store) removeExpiredSessions() error {
	return s.eachSession(context.Background(), func(string, *sessionFile) error { return nil })
}

// eachSession calls fn for each live session file, reading the directory in
// batches; expired and unreadable files are removed on the way.
func (s *Store) eachSession(ctx context.Context, fn func(path string, sf *sessionFile) error) error {
	dir := filepath.Join(s.dir, sessionsDir)
	// Expired and damaged files are removed: never through a link to
	// somewhere else.
	if fi, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	} else if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory (links are not followed)", sessionsDir)
	}
	d, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer d.Close()
	now := s.now()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		names, err := d.Readdirnames(listBatch)
		for _, name := range names {
			path := filepath.Join(dir, name)
			if strings.HasPrefix(name, tempPrefix) {
				if fi, err := os.Lstat(path); err == nil && now.Sub(fi.ModTime()) > staleTemp {
					os.Remove(path)
				}
				continue
			}
			sf, rerr := readSessionFile(path)
			if errors.Is(rerr, fs.ErrNotExist) {
				continue
			}
			if rerr != nil || !now.Before(sf.Expires) {
				os.Remove(path)
				continue
			}
			if err := fn(path, sf); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && len(names) == 0) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// readSessionFile reads a session file without following links or blocking
// on special files.
func readSessionFile(path string) (*sessionFile, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("session file %s is not a regular file", filepath.Base(path))
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSessionFile+1))
	if err != nil {
		return nil, err
	}
	var sf sessionFile
	if len(b) > maxSessionFile || json.Unmarshal(b, &sf) != nil || sf.Sub == "" {
		return nil, fmt.Errorf("session file %s is damaged", filepath.Base(path))
	}
	return &sf, nil
}

func sessionNotFound() error {
	return signin.Errorf(signin.ENOTFOUND, "", "No such session.")
}
