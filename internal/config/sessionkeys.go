package config

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// EnvSessionKeys names the environment variable holding the session secrets:
// base64 strings of at least 32 bytes each, separated by commas or spaces,
// newest first. Older ones still decode existing cookies, so keys can be
// rotated without signing everyone out.
const EnvSessionKeys = "SESSION_KEYS"

// minSecret is the least entropy accepted for a session secret.
const minSecret = 32

// SessionKeys returns the session secrets, newest first: those of
// SESSION_KEYS, or, when that is unset, the secret in keyFile, which is
// created (0600, random) on first use so that restarts keep sessions. The
// web server derives its cookie key from each (once, with HKDF).
func SessionKeys(getenv func(string) string, keyFile string) ([][]byte, error) {
	var secrets [][]byte
	if env := strings.TrimSpace(getenv(EnvSessionKeys)); env != "" {
		for i, f := range strings.FieldsFunc(env, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
			s, err := decodeSecret(f)
			if err != nil {
				// Never echo the value: it is a secret.
				return nil, fmt.Errorf("%s: key %d: %w", EnvSessionKeys, i+1, err)
			}
			secrets = append(secrets, s)
		}
	} else {
		s, err := loadOrCreateSecret(keyFile)
		if err != nil {
			return nil, err
		}
		secrets = [][]byte{s}
	}
	return secrets, nil
}

func decodeSecret(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) < minSecret {
				return nil, fmt.Errorf("too short: %d bytes, want at least %d (try: openssl rand -base64 32)", len(b), minSecret)
			}
			return b, nil
		}
	}
	return nil, errors.New("not base64 (try: openssl rand -base64 32)")
}

func loadOrCreateSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createSecret(path)
	}
	if err != nil {
		return nil, fmt.Errorf("session key file: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("session key file %s is readable by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	s, err := decodeSecret(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("session key file %s: %w", path, err)
	}
	return s, nil
}

func createSecret(path string) ([]byte, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("session key file: %w", err)
	}
	s := make([]byte, minSecret)
	rand.Read(s) // never fails (crypto/rand, Go 1.24+)

	// Write a temporary file, then hard-link it into place: the key file
	// appears whole or not at all, and if another process won the race,
	// Link fails and we use its key.
	tmp, err := os.CreateTemp(dir, ".session-key-*")
	if err != nil {
		return nil, fmt.Errorf("session key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.WriteString(base64.StdEncoding.EncodeToString(s) + "\n")
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return nil, fmt.Errorf("session key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		return loadOrCreateSecret(path)
	} else if err != nil {
		return nil, fmt.Errorf("session key file: %w", err)
	}
	return s, nil
}
