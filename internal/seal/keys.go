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
		keys, err := parseKeys(env)
		if err != nil {
			// Never echo the value: it is a secret.
			return nil, fmt.Errorf("%s: %w", EnvKeys, err)
		}
		return NewKeyring(keys)
	}
	keys, err := loadOrCreateKeyFile(keyFile, logger)
	if err != nil {
		return nil, err
	}
	return NewKeyring(keys)
}

func parseKeys(s string) ([][]byte, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
	if len(fields) == 0 {
		return nil, errors.New("no keys")
	}
	keys := make([][]byte, 0, len(fields))
	for i, f := range fields {
		k, err := decodeKey(f)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("%d bytes, want exactly %d (try: openssl rand -base64 32)", len(b), KeySize)
			}
			return b, nil
		}
	}
	return nil, errors.New("not base64 (try: openssl rand -base64 32)")
}

func loadOrCreateKeyFile(path string, logger *slog.Logger) ([][]byte, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createKeyFile(path, logger)
	}
	if err != nil {
		return nil, fmt.Errorf("encryption key file: %w", err)
	}
	// Checked before opening: opening a FIFO would block.
	if err := checkKeyFile(path, fi); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("encryption key file: %w", err)
	}
	defer f.Close()
	// Checked again on what was opened, in case the path changed meanwhile.
	if fi, err = f.Stat(); err != nil {
		return nil, fmt.Errorf("encryption key file: %w", err)
	}
	if err := checkKeyFile(path, fi); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("encryption key file: %w", err)
	}
	if len(b) > maxKeyFile {
		return nil, fmt.Errorf("encryption key file %s: larger than %d bytes", path, maxKeyFile)
	}
	keys, err := parseKeys(string(b))
	if err != nil {
		return nil, fmt.Errorf("encryption key file %s: %w", path, err)
	}
	return keys, nil
}

func checkKeyFile(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("encryption key file %s is not a regular file (mode %v)", path, fi.Mode())
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("encryption key file %s is readable by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	return nil
}

func createKeyFile(path string, logger *slog.Logger) ([][]byte, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("encryption key file: %w", err)
	}
	k := make([]byte, KeySize)
	rand.Read(k) // never fails (crypto/rand, Go 1.24+)

	// Write a temporary file (CreateTemp makes it 0600), then hard-link it
	// into place: the key file appears whole or not at all, and if another
	// process won the race, Link fails and we use its key.
	tmp, err := os.CreateTemp(dir, ".encryption-key-*")
	if err != nil {
		return nil, fmt.Errorf("encryption key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.WriteString(base64.StdEncoding.EncodeToString(k) + "\n")
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return nil, fmt.Errorf("encryption key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		return loadOrCreateKeyFile(path, logger)
	} else if err != nil {
		return nil, fmt.Errorf("encryption key file: %w", err)
	}
	logger.Warn("created a token encryption key file; in production, set "+EnvKeys+" instead", "path", path, "key_id", keyID(k))
	return [][]byte{k}, nil
}
