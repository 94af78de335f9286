package grant_test

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.com/signin"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/grant/granttest"
	"example.com/signin/internal/seal"
	"example.com/signin/internal/store/file"
)

func testKeyring(t testing.TB, n int) *seal.Keyring {
	t.Helper()
	var keys [][]byte
	for range n {
		k := make([]byte, seal.KeySize)
		_, _ = rand.Read(k)
		keys = append(keys, k)
	}
	r, err := seal.NewKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSealedContract(t *testing.T) {
	keys := testKeyring(t, 1)
	granttest.Run(t, func(t *testing.T) grant.Store { return grant.Sealed(&granttest.Memory{}, keys) })
}

// TestSealedNoTokenOnDisk: the files hold no token, the store gives them
// back, and a sealed token copied into another user's record does not open.
func TestSealedNoTokenOnDisk(t *testing.T) {
	dir := t.TempDir()
	files, err := file.Open(file.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	st := grant.Sealed(files, testKeyring(t, 1))
	for _, sub := range []string{"1", "2"} {
		granttest.Put(t, st, granttest.NewRecord(sub, t0))
	}
	err = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		for _, tok := range []string{"at-1", "rt-1", "at-2", "rt-2"} {
			if strings.Contains(string(b), tok) {
				t.Errorf("%s holds the token %q", filepath.Base(path), tok)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := st.Get(t.Context(), "1")
	if err != nil || rec.Token.RefreshToken != "rt-1" || rec.Token.AccessToken != "at-1" {
		t.Fatalf("Get = %+v, %v", rec, err)
	}
	// User 2's sealed refresh token, pasted into user 1's record.
	raw2, _ := files.Get(t.Context(), "2")
	if _, err := files.Update(t.Context(), "1", func(cur *grant.Record) (*grant.Record, error) {
		cur.Token.RefreshToken = raw2.Token.RefreshToken
		return cur, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(t.Context(), "1"); signin.ErrorCode(err) != grant.CodeCorruptRecord {
		t.Errorf("a token sealed for another user opened: %v", err)
	}
}

// TestSealedLegacyRecords: a record written before sealing opens, and is
// sealed on its next write; a rotated ring opens the old key's values.
func TestSealedLegacyRecords(t *testing.T) {
	mem := &granttest.Memory{}
	granttest.Put(t, mem, granttest.NewRecord("1", t0)) // plain, as before sealing
	old := testKeyring(t, 1)
	st := grant.Sealed(mem, old)
	if rec, err := st.Get(t.Context(), "1"); err != nil || rec.Token.RefreshToken != "rt-1" {
		t.Fatalf("legacy record: %+v, %v", rec, err)
	}
	if _, err := st.Update(t.Context(), "1", func(cur *grant.Record) (*grant.Record, error) {
		cur.Token.Expiry = t0.Add(time.Hour)
		return cur, nil
	}); err != nil {
		t.Fatal(err)
	}
	raw, _ := mem.Get(t.Context(), "1")
	if !seal.IsSealed(raw.Token.RefreshToken) || seal.KeyID(raw.Token.RefreshToken) != old.Newest() {
		t.Errorf("after a write the refresh token is %q, want sealed by %s", raw.Token.RefreshToken, old.Newest())
	}
}

// BenchmarkRecordRead measures what sealing adds to reading a record: the
// same Get on a memory store, plain and sealed (goal: under 5 us added).
func BenchmarkRecordRead(b *testing.B) {
	rec := granttest.NewRecord("109876543210987654321", t0)
	rec.Token.AccessToken = "ya29." + strings.Repeat("a", 200)
	rec.Token.RefreshToken = "1//0" + strings.Repeat("r", 100)
	for _, tc := range []struct {
		name string
		wrap func(grant.Store) grant.Store
	}{
		{"plain", func(s grant.Store) grant.Store { return s }},
		{"sealed", func(s grant.Store) grant.Store { return grant.Sealed(s, testKeyring(b, 1)) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			st := tc.wrap(&granttest.Memory{})
			granttest.Put(b, st, rec)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := st.Get(b.Context(), rec.Sub); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
