// Package file is the default credential store: one JSON file per user in a
// directory (credentials/ by default), safe to share between processes on
// one machine, such as the web server and offline-fetch, or two
// offline-fetch runs.
//
// # Layout
//
// Each record is the JSON form of grant.Record (see grant.EncodeRecord),
// in a file named after the user's sub:
//
//   - a sub of 1 to 64 ASCII digits (Google's shape) is used as it is:
//     "109876543210987654321.json", so a person can find a user's file;
//   - any other sub of up to 100 bytes is hex-encoded: "x-<hex of sub>.json";
//   - a longer one is hashed: "h-<hex of SHA-256 of sub>.json".
//
// The three forms cannot collide (digits, "x-" and "h-" never overlap, hex
// is one-to-one, SHA-256 is collision-resistant) and no sub can name a path
// outside the directory: the name is made of digits, "x-", "h-", hex
// digits and ".json" only. Each record also holds its sub, which is checked
// against the file name when read.
//
// Beside each record sits "<name>.lock", the user's lock file, and during a
// write a temporary ".tmp-<name>" file (removed under the user's lock when
// an interrupted write left it: by the next write, by Delete and by Open).
// A record that cannot be read, set aside by SetAside, becomes
// "<name>.json.damaged-<UTC time>". Other files are ignored, so List never
// mistakes a temporary or damaged file for a record. Server-side sessions
// live in the ".sessions" subdirectory (see sessions.go).
//
// # Permissions
//
// The directory is created 0700 and files 0600: they hold refresh tokens.
// If the directory already exists with any group or other permission bits,
// Open tightens it to 0700 and logs a warning rather than refusing to start:
// a loose directory is almost always an accident of umask or of a checkout,
// and refusing would only make people loosen things further to get going.
//
// # Atomicity and locking
//
// A write goes to a temporary file in the same directory (0600), which is
// fsynced, renamed over the record and followed by an fsync of the directory,
// so a crash at any moment leaves the old record or the new one, never a torn
// one. Readers (Get, List) therefore need no lock.
//
// Updates of one user are serialised by a lock held across the
// read-modify-write, so that two writers cannot both read the old token and
// one of them lose the other's refresh: in-process by a per-user channel
// (cheap to wait on, and a wait can be cancelled), across processes by
// flock(2) on the user's lock file. flock alone would serialise goroutines
// too, but each waiter would block an OS thread in the kernel, with no way
// to cancel; so goroutines queue on the channel and only one per process
// holds or polls the flock. flock is per open file and released by the
// kernel when a process dies, so a killed writer never leaves a stale lock.
// flock works between processes on one machine; do not put the directory on
// a network filesystem shared by several machines (use a database backend).
package file

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"example.com/signin"
	"example.com/signin/internal/grant"
)

const (
	recordExt  = ".json"
	lockExt    = ".lock"
	tempPrefix = ".tmp-"

	// damagedInfix follows the record's file name in the name of a damaged
	// record set aside: "<name>.json.damaged-<time>".
	damagedInfix = ".damaged-"

	// maxDigits and maxHexSub keep every file name (with ".lock") far below
	// the usual 255-byte name limit.
	maxDigits = 64
	maxHexSub = 100

	// staleTemp is the age after which Open removes a temporary file: one
	// left by a writer that crashed. No write takes that long.
	staleTemp = time.Hour

	// listBatch is how many directory entries List reads at a time.
	listBatch = 256
)

// Store is the file-backed grant.Store. It is safe for concurrent use by
// goroutines and processes.
type Store struct {
	dir string
	now func() time.Time
	log *slog.Logger

	mu    sync.Mutex
	locks map[string]*userLock // in-process user locks, removed when unused

	// The sweep of expired ended sessions (sessions.go).
	sweepMu   sync.Mutex
	lastSweep time.Time
	sweepDir  *os.File // where the last sweep stopped; nil: start over
}

var _ grant.Store = (*Store)(nil)

// userLock is one user's in-process lock: a channel with room for one token,
// so that waiting for it can be abandoned when the context ends. refs counts
// holders and waiters so that the map entry can go when the last one leaves,
// keeping memory flat however many users pass through.
type userLock struct {
	ch   chan struct{}
	refs int
}

// Config configures a Store. Dir is required.
type Config struct {
	// Dir is the credentials directory.
	Dir string
	// Now is the clock for CreatedAt and UpdatedAt (default time.Now).
	Now func() time.Time
	// Logger receives the store's warnings, such as a directory whose
	// permissions it tightened. Nil discards.
	Logger *slog.Logger
}

// Open returns the store kept in cfg.Dir, creating the directory (0700) if
// needed. See the package documentation for what it does to an existing
// directory with loose permissions. It also removes temporary files that
// crashed writers left more than an hour ago.
func Open(cfg Config) (*Store, error) {
	dir := cfg.Dir
	if dir == "" {
		return nil, signin.Errorf(signin.EINVALID, "", "The credentials directory is not set.")
	}
	s := &Store{dir: dir, now: cfg.Now, log: cfg.Logger, locks: map[string]*userLock{}}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := checkLocking(); err != nil {
		return nil, signin.Wrap(err, signin.EINVALID, "", "The file credential store cannot lock files on this system.")
	}
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, internal(err, "cannot create the credentials directory")
		}
		fi, err = os.Stat(dir)
	}
	if err != nil {
		return nil, internal(err, "cannot use the credentials directory")
	}
	if !fi.IsDir() {
		return nil, signin.Errorf(signin.EINVALID, "", "The credentials path %q is not a directory.", dir)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, internal(err, "cannot restrict the credentials directory to its owner")
		}
		// A fresh checkout's directory (the repository keeps it, with a
		// .keep file) is 0755 by umask and holds nothing yet: tightening
		// it is routine, not news. With something in it, it is a warning.
		level := slog.LevelWarn
		if holdsNothing(dir) {
			level = slog.LevelInfo
		}
		s.log.Log(context.Background(), level, "credentials directory was accessible to other users; restricted it to its owner",
			"dir", dir, "was", fmt.Sprintf("%04o", perm), "now", "0700")
	}
	s.removeStaleTemps()
	s.removeLegacySessions()
	return s, nil
}

// holdsNothing reports whether dir holds nothing but the repository's
// .keep file.
func holdsNothing(dir string) bool {
	d, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer d.Close()
	names, _ := d.Readdirnames(2)
	return len(names) == 0 || (len(names) == 1 && names[0] == ".keep")
}

// Describe names the store for start-up logs.
func (s *Store) Describe() string { return "files in " + s.dir }

// Ping reports whether the credentials directory is still there.
func (s *Store) Ping(ctx context.Context) error {
	fi, err := os.Stat(s.dir)
	if err == nil && !fi.IsDir() {
		err = fmt.Errorf("%s is not a directory", s.dir)
	}
	if err != nil {
		return signin.Wrap(err, signin.EUNAVAILABLE, "store_unavailable", "The credentials directory cannot be read.")
	}
	return nil
}

// Close releases the directory the sweep of ended sessions reads.
func (s *Store) Close() {
	s.sweepMu.Lock()
	defer s.sweepMu.Unlock()
	if s.sweepDir != nil {
		s.sweepDir.Close()
		s.sweepDir = nil
	}
}

// Get returns sub's record without taking the lock: writes are atomic
// renames, so it sees a whole record, old or new.
func (s *Store) Get(ctx context.Context, sub string) (*grant.Record, error) {
	if err := grant.CheckSub(sub); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	name := fileName(sub)
	rec, err := s.read(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notFound()
	}
	return rec, err
}

// Update implements grant.Store.
func (s *Store) Update(ctx context.Context, sub string, fn func(cur *grant.Record) (*grant.Record, error)) (*grant.Record, error) {
	if err := grant.CheckSub(sub); err != nil {
		return nil, err
	}
	name := fileName(sub)
	unlock, err := s.lock(ctx, name)
	if err != nil {
		return nil, err
	}
	defer unlock()

	cur, err := s.read(name)
	if errors.Is(err, fs.ErrNotExist) {
		cur, err = nil, nil
	}
	if err != nil {
		// Never overwrite a record we cannot read: it may hold the only
		// refresh token for the user, and someone should look at it.
		return nil, err
	}
	next, data, err := grant.Apply(sub, cur, fn, func() time.Time { return s.now().UTC().Round(0) })
	if err != nil || data == nil {
		return next, err // nil on an error; cur when there is nothing to write
	}
	if err := s.write(name, data); err != nil {
		return nil, err
	}
	return next, nil
}

// Delete implements grant.Store. It removes the user's lock file too, last,
// so that the directory does not collect a file per user who ever left.
func (s *Store) Delete(ctx context.Context, sub string) error {
	if err := grant.CheckSub(sub); err != nil {
		return err
	}
	name := fileName(sub)
	unlock, err := s.lock(ctx, name)
	if err != nil {
		return err
	}
	defer unlock()
	// A temporary file an interrupted write left may hold the tokens too.
	if err := os.Remove(filepath.Join(s.dir, tempName(name))); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return internal(err, "cannot delete the credential record")
	}
	if err := os.Remove(filepath.Join(s.dir, name+recordExt)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return notFound()
		}
		return internal(err, "cannot delete the credential record")
	}
	if err := syncDir(s.dir); err != nil {
		return internal(err, "cannot delete the credential record")
	}
	// Removing the lock file while holding it is safe: a process waiting on
	// it notices that the path now names another file (or none) once it gets
	// the lock, and starts again (see lockFile). It is the last step, so a
	// process that creates a new lock file meanwhile finds the record gone.
	if err := os.Remove(filepath.Join(s.dir, name+lockExt)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("cannot remove a lock file", "err", err)
	}
	return nil
}

// SetAside implements grant.Store: it renames a record file that cannot be
// read to "<name>.json.damaged-<UTC time>", beside it, which List and every
// other reader ignore, and logs where it went.
func (s *Store) SetAside(ctx context.Context, sub string) (string, error) {
	if err := grant.CheckSub(sub); err != nil {
		return "", err
	}
	name := fileName(sub)
	unlock, err := s.lock(ctx, name)
	if err != nil {
		return "", err
	}
	defer unlock()
	_, err = s.read(name)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if signin.ErrorCode(err) != grant.CodeCorruptRecord {
		return "", err
	}
	aside := name + recordExt + damagedInfix + s.now().UTC().Format("20060102T150405.000000000Z")
	if err := os.Rename(filepath.Join(s.dir, name+recordExt), filepath.Join(s.dir, aside)); err != nil {
		return "", internal(err, "cannot set a damaged credential record aside")
	}
	if err := syncDir(s.dir); err != nil {
		return "", internal(err, "cannot set a damaged credential record aside")
	}
	s.log.Warn("set a damaged credential record aside", "file", name+recordExt, "kept_as", aside, "err", err)
	return aside, nil
}

// List implements grant.Store. It reads the directory listBatch entries at
// a time and each record as it goes, so memory stays flat. A record file that
// cannot be read or decoded, or whose sub does not match its name, is
// passed to fn as (nil, err).
//
// A record replaced while List runs is seen once on ext4 and XFS, which
// rewrite a directory entry in place on rename; POSIX leaves this to the
// filesystem, and on some (tmpfs, btrfs) such a record may be missed or seen
// twice. Records that are not written during the listing are seen exactly
// once everywhere.
func (s *Store) List(ctx context.Context, fn func(rec *grant.Record, err error) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d, err := os.Open(s.dir)
	if err != nil {
		return internal(err, "cannot list the credentials directory")
	}
	defer d.Close()
	for {
		ents, err := d.ReadDir(listBatch)
		for _, e := range ents {
			if err := ctx.Err(); err != nil {
				return err
			}
			name, ok := strings.CutSuffix(e.Name(), recordExt)
			if !ok || !isRecordName(name) {
				continue
			}
			if !e.Type().IsRegular() {
				if err := fn(nil, corrupt(e.Name(), fmt.Errorf("not a regular file"))); err != nil {
					return err
				}
				continue
			}
			rec, rerr := s.read(name)
			if errors.Is(rerr, fs.ErrNotExist) {
				continue // deleted since the directory was read
			}
			if err := fn(rec, rerr); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && len(ents) == 0) {
			return nil
		}
		if err != nil {
			return internal(err, "cannot list the credentials directory")
		}
	}
}

// read reads and decodes the record file for name (a fileName). A missing
// file is returned as an fs.ErrNotExist error for the caller to map.
func (s *Store) read(name string) (*grant.Record, error) {
	file := name + recordExt
	f, err := openRegular(filepath.Join(s.dir, file), os.O_RDONLY)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, err
	case errors.Is(err, errNotRegular):
		return nil, corrupt(file, err)
	case err != nil:
		return nil, internal(err, "cannot read a credential record")
	}
	defer f.Close()
	// Read one byte past the limit so that DecodeRecord sees an oversized
	// file as oversized rather than as truncated JSON.
	data, err := io.ReadAll(io.LimitReader(f, grant.MaxRecordSize+1))
	if err != nil {
		return nil, internal(err, "cannot read a credential record")
	}
	rec, err := grant.DecodeRecord(data)
	if err != nil {
		return nil, corrupt(file, err)
	}
	if fileName(rec.Sub) != name {
		return nil, corrupt(file, fmt.Errorf("record for another user (file name does not match its sub)"))
	}
	return rec, nil
}

// tempName is the base name of the temporary file a write of name's record
// goes through: one per user, since writes of one user are serialised by
// the user's lock. Whoever holds that lock and finds the file knows that an
// interrupted write left it, and removes it: it may hold a whole record,
// tokens included, which must not outlive the record.
func tempName(name string) string { return tempPrefix + name }

// write replaces the record file for name with data, atomically. The
// caller holds the user's lock.
func (s *Store) write(name string, data []byte) error {
	if err := writeFileAtomic(s.dir, tempName(name), name+recordExt, data); err != nil {
		return internal(err, "cannot save the credential record")
	}
	return nil
}

// writeFileAtomic replaces dir/name with data: written to dir/tmp (created
// here, never through a link, 0600), synced, renamed over dir/name, and the
// directory synced, so that a crash leaves the old file or the new one,
// never a torn one. A tmp left by an interrupted write is replaced.
func writeFileAtomic(dir, tmp, name string, data []byte) (err error) {
	tmp = filepath.Join(dir, tmp)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// O_EXCL: created here, never through a link.
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	// The rename is durable only once the directory is synced; until then a
	// power cut could bring back the old file (never a torn one).
	return syncDir(dir)
}

// lock takes the user's lock: first in-process, then across processes.
func (s *Store) lock(ctx context.Context, name string) (unlock func(), err error) {
	s.mu.Lock()
	l := s.locks[name]
	if l == nil {
		l = &userLock{ch: make(chan struct{}, 1)}
		s.locks[name] = l
	}
	l.refs++
	s.mu.Unlock()

	release := func(held bool) {
		if held {
			<-l.ch
		}
		s.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(s.locks, name)
		}
		s.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
	case <-ctx.Done():
		release(false)
		return nil, ctx.Err()
	}
	path := filepath.Join(s.dir, name+lockExt)
	f, err := lockFile(ctx, path)
	if err != nil && ctx.Err() == nil && (errors.Is(err, errNotRegular) || damaged(path)) {
		// Something that is not a lock file sits at the lock's path (a
		// link, a FIFO, a directory): set it aside, as a damaged record
		// is, rather than lock the user out until someone removes it.
		// Decided by the error lockFile met, not by looking again: another
		// process may have set the path aside and created the real lock
		// file since, and then this one must simply try again
		// (setLockAside looks under the directory lock and leaves a
		// regular file alone).
		if err = s.setLockAside(ctx, name); err == nil {
			f, err = lockFile(ctx, path)
		}
	}
	if err != nil {
		release(true)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, internal(err, "cannot lock the credential record")
	}
	return func() {
		f.Close() // releases the flock
		release(true)
	}, nil
}

// damaged reports whether path exists and is not a regular file.
func damaged(path string) bool {
	fi, err := os.Lstat(path)
	return err == nil && !fi.Mode().IsRegular()
}

// setLockAside renames the damaged lock path of name to
// "<name>.lock.damaged-<UTC time>" (nothing reads it: an operator may look
// at it), and logs where it went. It does so under the directory's own
// lock, after looking again: another process may have set it aside and
// created the real lock file meanwhile, which must stay. (Nothing else
// turns a damaged lock path into a regular file: creating one through a
// link or over a FIFO or a directory fails.) If the rename fails, the
// error names the file to remove.
func (s *Store) setLockAside(ctx context.Context, name string) error {
	d, err := lockDir(ctx, s.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	path := filepath.Join(s.dir, name+lockExt)
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().IsRegular() {
		return nil // set aside by another process, or gone: try again
	}
	aside := name + lockExt + damagedInfix + s.now().UTC().Format("20060102T150405.000000000Z")
	if err := os.Rename(path, filepath.Join(s.dir, aside)); err != nil {
		return fmt.Errorf("the lock file %s is not a regular file (%v) and cannot be set aside; remove it: %w", path, fi.Mode().Type(), err)
	}
	if err := syncDir(s.dir); err != nil {
		return err
	}
	s.log.Warn("set a damaged lock file aside", "file", name+lockExt, "kept_as", aside, "type", fi.Mode().Type().String())
	return nil
}

// removeStaleTemps deletes temporary files that interrupted writes left
// behind: a user's own (".tmp-<name>") at once, under the user's lock, and
// any other only once it is older than staleTemp. It reads the directory in
// batches, as List does: os.ReadDir would hold every name at once, and at
// 100,000 users that alone was most of offline-fetch's peak memory
// (18.5 MB, found by the scale benchmark).
func (s *Store) removeStaleTemps() {
	d, err := os.Open(s.dir)
	if err != nil {
		return
	}
	defer d.Close()
	for {
		ents, err := d.ReadDir(listBatch)
		for _, e := range ents {
			user, ok := strings.CutPrefix(e.Name(), tempPrefix)
			if !ok {
				continue
			}
			if isRecordName(user) {
				s.removeUserTemp(user)
				continue
			}
			if strings.HasPrefix(user, legacyAside) && e.IsDir() {
				// An earlier Open's removal of the old sessions was
				// cut short (sessions.go): finish it.
				s.removeAside(filepath.Join(s.dir, e.Name()))
				continue
			}
			fi, err := e.Info()
			if err != nil || s.now().Sub(fi.ModTime()) < staleTemp {
				continue
			}
			if err := os.Remove(filepath.Join(s.dir, e.Name())); err == nil {
				s.log.Warn("removed a temporary file left by an interrupted write", "file", e.Name())
			}
		}
		if err != nil { // io.EOF at the end, or a read error: either way, done
			return
		}
	}
}

// removeUserTemp removes the temporary file of name's record under the
// user's lock, where no write of theirs can be under way.
func (s *Store) removeUserTemp(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	unlock, err := s.lock(ctx, name)
	if err != nil {
		s.log.Warn("cannot lock a user's record to remove a temporary file", "file", tempName(name), "err", err)
		return
	}
	defer unlock()
	if err := os.Remove(filepath.Join(s.dir, tempName(name))); err == nil {
		s.log.Warn("removed a temporary file left by an interrupted write", "file", tempName(name))
	}
	// Taking the lock created a lock file; a user without a record needs
	// none (see Delete for why removing it while held is safe).
	if _, err := os.Lstat(filepath.Join(s.dir, name+recordExt)); errors.Is(err, fs.ErrNotExist) {
		os.Remove(filepath.Join(s.dir, name+lockExt))
	}
}

// fileName maps sub to the base name of its files (without extension); see
// the package documentation. sub must have passed grant.CheckSub.
func fileName(sub string) string {
	if len(sub) <= maxDigits && allDigits(sub) {
		return sub
	}
	if len(sub) <= maxHexSub {
		return "x-" + hex.EncodeToString([]byte(sub))
	}
	sum := sha256.Sum256([]byte(sub))
	return "h-" + hex.EncodeToString(sum[:])
}

// isRecordName reports whether name (without extension) is one fileName
// can produce, so that List reads only our records.
func isRecordName(name string) bool {
	switch {
	case name == "":
		return false
	case allDigits(name):
		return len(name) <= maxDigits
	case strings.HasPrefix(name, "x-"):
		h := name[2:]
		return h != "" && len(h) <= 2*maxHexSub && len(h)%2 == 0 && lowerHex(h)
	case strings.HasPrefix(name, "h-"):
		h := name[2:]
		return len(h) == 2*sha256.Size && lowerHex(h)
	}
	return false
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// errNotRegular: a path the store opens is a symbolic link, a FIFO, a
// device or a directory. The store never follows a link (it could lead
// outside the directory) nor waits on a FIFO (a read would block until a
// writer comes).
var errNotRegular = errors.New("not a regular file (links are not followed)")

// openRegular opens path with flag, without following a symbolic link in
// its last element and without blocking on a special file, and refuses
// anything but a regular file (errNotRegular). With os.O_CREATE it creates
// the file (0600) in place, never through a link.
func openRegular(path string, flag int) (*os.File, error) {
	f, err := os.OpenFile(path, flag|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		// ELOOP: a link; EISDIR: a directory opened for writing.
		if errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.EISDIR) {
			return nil, fmt.Errorf("%s: %w", filepath.Base(path), errNotRegular)
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), errNotRegular)
	}
	return f, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func notFound() error {
	return signin.Errorf(signin.ENOTFOUND, "", "No offline access is stored for this user.")
}

func internal(err error, msg string) error {
	return signin.Wrap(err, signin.EINTERNAL, "", msg)
}

// corrupt is the error for the record file file that cannot be read: it
// names the file (for the operator's log) and the user the file name says
// it belongs to.
func corrupt(file string, err error) error {
	name, _ := strings.CutSuffix(file, recordExt)
	return grant.CorruptRecord(subOf(name), file, err)
}

// subOf is the sub a record name (a fileName) was made from, or "" when
// the name is a hash (or not a record name).
func subOf(name string) string {
	switch {
	case !isRecordName(name), strings.HasPrefix(name, "h-"):
		return ""
	case strings.HasPrefix(name, "x-"):
		b, err := hex.DecodeString(name[2:])
		if err != nil {
			return ""
		}
		return string(b)
	}
	return name
}
