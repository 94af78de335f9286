package seal

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// EnvKeys names the environment variable holding the sealing keys: base64
// strings of exactly 32 bytes each (openssl rand -base64 32), separated by
// commas or spaces, newest first. The newest seals; all of them open. To
// rotate, put a new key in front, reseal the records (the reencrypt admin
// command), then drop the old key.
const EnvKeys = "SIGNIN_ENCRYPTION_KEYS"

// DefaultKeyFileName is the name of the key file created when EnvKeys is
// unset, meant to sit beside the session key file in the credentials
// directory.
const DefaultKeyFileName = ".encryption-key"

// maxKeyFile bounds what is read from a key file.
const maxKeyFile = 64 << 10

// LoadKeys returns the Keyring given by SIGNIN_ENCRYPTION_KEYS or, when that
// is unset, by keyFile, which is created (0600, one random key) on first
// use; creating it is logged at warn level, since a production deployment
// should set the variable (and keep the key away from the data it protects).
// A key file may hold several keys, as the variable does. A key file that is
// readable by others, or is not a regular file, is refused.
func LoadKeys(getenv func(string) string, keyFile string, logger *slog.Logger) (*Keyring, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if env := strings.TrimSpace(getenv(EnvKeys)); env != "" {
		keys, err := ParseKeys(env, sealingKey)
		if err != nil {
			// Never echo the value: it is a secret.
			return nil, fmt.Errorf("%s: %w", EnvKeys, err)
		}
		return NewKeyring(keys)
	}
	keys, created, err := LoadKeyFile(keyFile, "encryption key file", sealingKey)
	if err != nil {
		return nil, err
	}
	if created {
		logger.Warn("created a token encryption key file; in production, set "+EnvKeys+" instead", "path", keyFile, "key_id", keyID(keys[0]))
	}
	return NewKeyring(keys)
}

// KeySpec says how long a key must be: Size bytes exactly, or at least Size
// bytes when AtLeast is set. A key created by LoadKeyFile has Size bytes.
type KeySpec struct {
	Size    int
	AtLeast bool
}

// sealingKey is what a sealing key must be: an AES-256 key.
var sealingKey = KeySpec{Size: KeySize}

// ParseKeys reads keys from s: base64 strings (standard or URL alphabet,
// padded or not), separated by commas or white space, newest first. Its
// errors never hold a key.
func ParseKeys(s string, size KeySpec) ([][]byte, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
	if len(fields) == 0 {
		return nil, errors.New("no keys")
	}
	keys := make([][]byte, 0, len(fields))
	for i, f := range fields {
		k, err := decodeKey(f, size)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func decodeKey(s string, size KeySpec) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			switch {
			case size.AtLeast && len(b) < size.Size:
				return nil, fmt.Errorf("too short: %d bytes, want at least %d (try: openssl rand -base64 %d)", len(b), size.Size, size.Size)
			case !size.AtLeast && len(b) != size.Size:
				return nil, fmt.Errorf("%d bytes, want exactly %d (try: openssl rand -base64 %d)", len(b), size.Size, size.Size)
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("not base64 (try: openssl rand -base64 %d)", size.Size)
}

// LoadKeyFile returns the keys in the file at path (see ParseKeys), or,
// when there is no file yet, creates it (0600, one random key of size.Size
// bytes) and reports created. Creation is atomic: the file appears whole or
// not at all, and of several processes starting at once one creates it and
// the others read that one's key. A file readable by others, or not a
// regular file, is refused. name names the file in errors ("session key
// file").
func LoadKeyFile(path, name string, size KeySpec) (keys [][]byte, created bool, err error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createKeyFile(path, name, size)
	}
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", name, err)
	}
	// Checked before opening: opening a FIFO would block.
	if err := checkKeyFile(path, name, fi); err != nil {
		return nil, false, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", name, err)
	}
	defer f.Close()
	// Checked again on what was opened, in case the path changed meanwhile.
	if fi, err = f.Stat(); err != nil {
		return nil, false, fmt.Errorf("%s: %w", name, err)
	}
	if err := checkKeyFile(path, name, fi); err != nil {
		return nil, false, err
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", name, err)
	}
	if len(b) > maxKeyFile {
		return nil, false, fmt.Errorf("%s %s: larger than %d bytes", name, path, maxKeyFile)
	}
	keys, err = ParseKeys(string(b), size)
	if err != nil {
		return nil, false, fmt.Errorf("%s %s: %w", name, path, err)
	}
	return keys, false, nil
}

func checkKeyFile(path, name string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s %s is not a regular file (mode %v)", name, path, fi.Mode())
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s %s is readable by others (mode %v): chmod 600 it", name, path, fi.Mode().Perm())
	}
	return nil
}

func createKeyFile(path, name string, size KeySpec) ([][]byte, bool, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("%s: %w", name, err)
	}
	k := make([]byte, size.Size)
	rand.Read(k) // never fails (crypto/rand, Go 1.24+)

	// Write a temporary file (CreateTemp makes it 0600), then hard-link it
	// into place: the key file appears whole or not at all, and if another
	// process won the race, Link fails and we use its key.
	tmp, err := os.CreateTemp(dir, "."+strings.TrimPrefix(filepath.Base(path), ".")+"-*")
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.WriteString(base64.StdEncoding.EncodeToString(k) + "\n")
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return nil, false, fmt.Errorf("%s: %w", name, err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		return LoadKeyFile(path, name, size)
	} else if err != nil {
		return nil, false, fmt.Errorf("%s: %w", name, err)
	}
	return [][]byte{k}, true, nil
}
