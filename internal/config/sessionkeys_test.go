package config

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestSessionKeysFileCreatedOnceAndKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creds", ".session-key")
	first, err := SessionKeys(env(nil), path)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 1 || len(first[0]) < 32 {
		t.Fatalf("want one secret of at least 32 bytes, got %d keys", len(first))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	again, err := SessionKeys(env(nil), path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first[0], again[0]) {
		t.Error("a restart read a different key: sessions would not survive it")
	}
}

func TestSessionKeysConcurrentFirstUseAgree(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".session-key")
	var wg sync.WaitGroup
	got := make([][][]byte, 8)
	for i := range got {
		wg.Go(func() {
			k, err := SessionKeys(env(nil), path)
			if err != nil {
				t.Error(err)
			}
			got[i] = k
		})
	}
	wg.Wait()
	for i := range got {
		if got[i] == nil || !bytes.Equal(got[i][0], got[0][0]) {
			t.Fatal("concurrent first starts derived different keys")
		}
	}
}

func TestSessionKeysRefusesOpenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".session-key")
	secret := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	if err := os.WriteFile(path, []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := SessionKeys(env(nil), path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key file accepted (err %v)", err)
	}
}

func TestSessionKeysFromEnv(t *testing.T) {
	a := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	b := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{2}, 48))
	path := filepath.Join(t.TempDir(), "unused")
	keys, err := SessionKeys(env(map[string]string{EnvSessionKeys: a + ", " + b}), path)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || !bytes.Equal(keys[0], bytes.Repeat([]byte{1}, 32)) || !bytes.Equal(keys[1], bytes.Repeat([]byte{2}, 48)) {
		t.Fatalf("two secrets gave %d keys, want both, newest first", len(keys))
	}
	if _, err := os.Stat(path); err == nil {
		t.Error("key file written although SESSION_KEYS was set")
	}

	short := base64.StdEncoding.EncodeToString([]byte("short-secret"))
	for _, bad := range []string{short, "%%%not-base64%%%"} {
		_, err := SessionKeys(env(map[string]string{EnvSessionKeys: bad}), path)
		if err == nil {
			t.Errorf("SESSION_KEYS=%q accepted", bad)
		} else if strings.Contains(err.Error(), bad) {
			t.Errorf("error echoes the secret: %v", err)
		}
	}
}
