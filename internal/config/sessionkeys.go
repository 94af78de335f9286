package config

import (
	"fmt"
	"strings"

	"example.com/signin/internal/seal"
)

// EnvSessionKeys names the environment variable holding the session secrets:
// base64 strings of at least 32 bytes each, separated by commas or spaces,
// newest first. Older ones still decode existing cookies, so keys can be
// rotated without signing everyone out.
const EnvSessionKeys = "SESSION_KEYS"

// sessionSecret is what a session secret must be: at least 32 bytes.
var sessionSecret = seal.KeySpec{Size: 32, AtLeast: true}

// SessionKeys returns the session secrets, newest first: those of
// SESSION_KEYS, or, when that is unset, those in keyFile, which is created
// (0600, random) on first use so that restarts keep sessions. The web server
// derives its cookie key from each (once, with HKDF).
func SessionKeys(getenv func(string) string, keyFile string) ([][]byte, error) {
	if env := strings.TrimSpace(getenv(EnvSessionKeys)); env != "" {
		secrets, err := seal.ParseKeys(env, sessionSecret)
		if err != nil {
			// Never echo the value: it is a secret (ParseKeys does not).
			return nil, fmt.Errorf("%s: %w", EnvSessionKeys, err)
		}
		return secrets, nil
	}
	secrets, _, err := seal.LoadKeyFile(keyFile, "session key file", sessionSecret)
	return secrets, err
}
