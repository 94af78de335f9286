package seal

import (
	"bytes"
	"encoding/base64"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func mustKeyring(tb testing.TB, keys ...[]byte) *Keyring {
	tb.Helper()
	r, err := NewKeyring(keys)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

const refreshToken = "1//0gFAKEexampleRefreshTokenxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

func TestRoundTrip(t *testing.T) {
	r := mustKeyring(t, key(1))
	for _, plain := range []string{refreshToken, "ya29.a0", "x", strings.Repeat("é", 300)} {
		s, err := r.Seal("1234", plain)
		if err != nil {
			t.Fatal(err)
		}
		if !IsSealed(s) || (len(plain) > 4 && strings.Contains(s, plain)) {
			t.Fatalf("Seal(%q) = %q: not sealed, or the plaintext shows", plain, s)
		}
		if KeyID(s) != r.Newest() {
			t.Errorf("KeyID = %q, want %q", KeyID(s), r.Newest())
		}
		got, err := r.Open("1234", s)
		if err != nil || got != plain {
			t.Errorf("Open = %q, %v; want %q", got, err, plain)
		}
	}
}

func TestSealIsRandomized(t *testing.T) {
	r := mustKeyring(t, key(1))
	a, _ := r.Seal("1", refreshToken)
	b, _ := r.Seal("1", refreshToken)
	if a == b {
		t.Error("two seals of the same token are equal: the nonce is not fresh")
	}
}

func TestEmptySealsToEmpty(t *testing.T) {
	r := mustKeyring(t, key(1))
	s, err := r.Seal("1", "")
	if err != nil || s != "" {
		t.Fatalf("Seal(\"\") = %q, %v", s, err)
	}
	if got, err := r.Open("1", ""); err != nil || got != "" {
		t.Fatalf("Open(\"\") = %q, %v", got, err)
	}
}

func TestRotation(t *testing.T) {
	old := mustKeyring(t, key(1))
	sealedOld, _ := old.Seal("7", refreshToken)

	rotated := mustKeyring(t, key(2), key(1))
	if rotated.Newest() == old.Newest() {
		t.Fatal("the new key has the old key's id")
	}
	if ids := rotated.IDs(); len(ids) != 2 || ids[0] != rotated.Newest() || ids[1] != old.Newest() {
		t.Fatalf("IDs = %v, want [new old]", ids)
	}
	if got, err := rotated.Open("7", sealedOld); err != nil || got != refreshToken {
		t.Fatalf("an old key no longer opens: %q, %v", got, err)
	}
	sealedNew, _ := rotated.Seal("7", refreshToken)
	if KeyID(sealedNew) != rotated.Newest() {
		t.Errorf("sealed with %s, want the newest %s", KeyID(sealedNew), rotated.Newest())
	}
	// Dropping the new key makes its values unknown, with the kid named.
	_, err := old.Open("7", sealedNew)
	if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), rotated.Newest()) {
		t.Errorf("unknown kid: err %v, want ErrUnknownKey naming %s", err, rotated.Newest())
	}
}

func TestKeyIDStable(t *testing.T) {
	a, b := mustKeyring(t, key(9)), mustKeyring(t, key(9))
	if a.Newest() != b.Newest() || len(a.Newest()) != 8 {
		t.Errorf("key ids %q, %q: want the same 8 hex characters", a.Newest(), b.Newest())
	}
	if a.Newest() == mustKeyring(t, key(8)).Newest() {
		t.Error("two keys have the same id")
	}
	if a.Newest() == "09090909" {
		t.Error("the key id is the key")
	}
}

func TestWrongSubFails(t *testing.T) {
	r := mustKeyring(t, key(1))
	s, _ := r.Seal("alice", refreshToken)
	if got, err := r.Open("bob", s); !errors.Is(err, ErrOpen) || got != "" {
		t.Errorf("opened for another user: %q, %v", got, err)
	}
}

func TestTamperFails(t *testing.T) {
	r := mustKeyring(t, key(1), key(2))
	s, _ := r.Seal("1", refreshToken)
	kid := KeyID(s)
	body := s[len(prefixV1)+len(kid)+1:]
	raw, _ := base64.RawURLEncoding.DecodeString(body)

	flip := func(i int) string {
		b := bytes.Clone(raw)
		b[i] ^= 1
		return prefixV1 + kid + ":" + base64.RawURLEncoding.EncodeToString(b)
	}
	cases := map[string]string{
		"nonce bit":      flip(0),
		"ciphertext bit": flip(nonceSize + 3),
		"tag bit":        flip(len(raw) - 1),
		"truncated":      s[:len(s)-4],
		"short":          prefixV1 + kid + ":AAAA",
		"not base64":     prefixV1 + kid + ":!!!!",
		"no body":        prefixV1 + kid,
		"other kid":      prefixV1 + r.IDs()[1] + ":" + body, // key id swapped: additional data differs
		"future format":  "sealed:v2:" + kid + ":" + body,
	}
	for name, v := range cases {
		if got, err := r.Open("1", v); err == nil || got != "" {
			t.Errorf("%s: opened: %q, %v", name, got, err)
		}
	}
}

func TestLegacyPlainPassesThrough(t *testing.T) {
	r := mustKeyring(t, key(1))
	for _, plain := range []string{refreshToken, "ya29.a0AfB_legacy"} {
		if IsSealed(plain) || KeyID(plain) != "" {
			t.Errorf("%q taken for a sealed value", plain)
		}
		if got, err := r.Open("1", plain); err != nil || got != plain {
			t.Errorf("Open(legacy) = %q, %v", got, err)
		}
	}
}

func TestNewKeyringErrors(t *testing.T) {
	for name, keys := range map[string][][]byte{
		"none":      nil,
		"short":     {make([]byte, 16)},
		"long":      {make([]byte, 33)},
		"duplicate": {key(1), key(1)},
	} {
		if _, err := NewKeyring(keys); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestLoadKeysFromEnv(t *testing.T) {
	a := base64.StdEncoding.EncodeToString(key(1))
	b := base64.RawURLEncoding.EncodeToString(key(2))
	path := filepath.Join(t.TempDir(), "unused")
	r, err := LoadKeys(env(map[string]string{EnvKeys: a + ", " + b}), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := mustKeyring(t, key(1), key(2))
	if strings.Join(r.IDs(), ",") != strings.Join(want.IDs(), ",") {
		t.Errorf("IDs = %v, want %v (newest first)", r.IDs(), want.IDs())
	}
	if _, err := os.Stat(path); err == nil {
		t.Error("a key file was created although the variable is set")
	}
}

func TestLoadKeysParseErrors(t *testing.T) {
	secret := base64.StdEncoding.EncodeToString(key(3))
	for name, tc := range map[string]struct{ value, want string }{
		"bad base64":   {"not*base64", "key 1: not base64"},
		"too short":    {base64.StdEncoding.EncodeToString(make([]byte, 16)), "key 1: 16 bytes, want exactly 32"},
		"too long":     {base64.StdEncoding.EncodeToString(make([]byte, 48)), "key 1: 48 bytes, want exactly 32"},
		"second bad":   {base64.StdEncoding.EncodeToString(key(1)) + " zz*", "key 2: not base64"},
		"only commas":  {", ,", "no keys"},
		"secret given": {secret + "," + secret, "same key id"},
	} {
		_, err := LoadKeys(env(map[string]string{EnvKeys: tc.value}), filepath.Join(t.TempDir(), "k"), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want it to contain %q", name, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), secret) || (tc.value != ", ," && strings.Contains(err.Error(), tc.value)) {
			t.Errorf("%s: the error echoes the secret: %v", name, err)
		}
	}
}

type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *logCapture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *logCapture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

func TestLoadKeysCreatesFile0600AndWarns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creds", DefaultKeyFileName)
	var logs logCapture
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	first, err := LoadKeys(env(nil), path, logger)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, EnvKeys) {
		t.Errorf("creating the key file was not logged at warn naming %s: %q", EnvKeys, out)
	}
	logs.mu.Lock()
	logs.buf.Reset()
	logs.mu.Unlock()
	again, err := LoadKeys(env(nil), path, logger)
	if err != nil {
		t.Fatal(err)
	}
	if again.Newest() != first.Newest() {
		t.Error("a restart read a different key: every sealed token would be lost")
	}
	if logs.String() != "" {
		t.Errorf("reading an existing key file logged: %q", logs.String())
	}
	s, _ := first.Seal("1", refreshToken)
	if got, err := again.Open("1", s); err != nil || got != refreshToken {
		t.Errorf("the reloaded ring does not open: %q, %v", got, err)
	}
}

func TestLoadKeysConcurrentFirstUseAgree(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultKeyFileName)
	got := make([]*Keyring, 8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			r, err := LoadKeys(env(nil), path, nil)
			if err != nil {
				t.Error(err)
			}
			got[i] = r
		})
	}
	wg.Wait()
	for _, r := range got {
		if r == nil || r.Newest() != got[0].Newest() {
			t.Fatal("concurrent first starts made different keys")
		}
	}
}

func TestLoadKeysRefusesOpenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultKeyFileName)
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key(1))), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeys(env(nil), path, nil); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key file accepted (err %v)", err)
	}
}

func TestLoadKeysRefusesNonRegularFile(t *testing.T) {
	dir := t.TempDir()
	asDir := filepath.Join(dir, "a-directory")
	if err := os.Mkdir(asDir, 0o700); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "a-fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{asDir, fifo} {
		if _, err := LoadKeys(env(nil), p, nil); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("%s accepted as a key file (err %v)", p, err)
		}
	}
}

func TestLoadKeysBadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultKeyFileName)
	if err := os.WriteFile(path, []byte("c2hvcnQ=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadKeys(env(nil), path, nil)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "want exactly 32") {
		t.Errorf("short key in file: err %v", err)
	}
}

func BenchmarkOpen(b *testing.B) {
	r := mustKeyring(b, key(1), key(2))
	plain := refreshToken + strings.Repeat("x", 200-len(refreshToken))
	s, _ := r.Seal("109876543210987654321", plain)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Open("109876543210987654321", s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenLegacy(b *testing.B) {
	r := mustKeyring(b, key(1))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Open("1", refreshToken); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSeal(b *testing.B) {
	r := mustKeyring(b, key(1))
	plain := refreshToken + strings.Repeat("x", 200-len(refreshToken))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Seal("109876543210987654321", plain); err != nil {
			b.Fatal(err)
		}
	}
}

func TestKeyringWith(t *testing.T) {
	a, b := mustKeyring(t, key(1)), mustKeyring(t, key(2))
	fromB, err := b.Seal("s", "tok")
	if err != nil {
		t.Fatal(err)
	}
	both := a.With(b)
	if got, err := both.Open("s", fromB); err != nil || got != "tok" {
		t.Errorf("With does not open the other ring's value: %q %v", got, err)
	}
	v, _ := both.Seal("s", "tok")
	if KeyID(v) != a.Newest() {
		t.Errorf("With seals with %s, want the first ring's newest %s", KeyID(v), a.Newest())
	}
}

func TestBinaryRoundTripAndRotation(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, KeySize), bytes.Repeat([]byte{2}, KeySize)
	old, err := NewKeyring([][]byte{k1})
	if err != nil {
		t.Fatal(err)
	}
	ring, err := NewKeyring([][]byte{k2, k1})
	if err != nil {
		t.Fatal(err)
	}
	ad := []byte("cookie")
	sealed := old.SealBinary(nil, []byte("hello"), ad)
	if len(sealed) != len("hello")+BinaryOverhead {
		t.Errorf("%d bytes sealed, want %d", len(sealed), len("hello")+BinaryOverhead)
	}
	// The older key still opens; the newest seals.
	if got, err := ring.OpenBinary(nil, sealed, ad); err != nil || string(got) != "hello" {
		t.Errorf("OpenBinary with the key second in the ring = %q, %v", got, err)
	}
	if _, err := old.OpenBinary(nil, ring.SealBinary(nil, []byte("x"), ad), ad); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("a value of a key not in the ring: %v, want ErrUnknownKey", err)
	}
	if _, err := ring.OpenBinary(nil, sealed, []byte("other")); !errors.Is(err, ErrOpen) {
		t.Errorf("other additional data: %v, want ErrOpen", err)
	}
	for i := range sealed {
		b := bytes.Clone(sealed)
		b[i] ^= 1
		if _, err := ring.OpenBinary(nil, b, ad); err == nil {
			t.Fatalf("byte %d flipped: opened", i)
		}
	}
	if _, err := ring.OpenBinary(nil, sealed[:BinaryOverhead-1], ad); !errors.Is(err, ErrOpen) {
		t.Errorf("too short: %v, want ErrOpen", err)
	}
}
