package auth

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"testing"
	"time"
	"unsafe"

	"example.com/signin/internal/auth/authtest"
)

func TestVerifiedCacheIsBounded(t *testing.T) {
	for _, size := range []int{1, 3, 255, 1000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			c := newVerifiedCache(size)
			now := time.Now()
			for i := range 3 * size {
				key := sha256.Sum256(fmt.Append(nil, i))
				c.put(&key, &Claims{Sub: fmt.Sprint(i), ExpiresAt: now.Add(time.Hour)}, now)
				if n := c.len(); n > size {
					t.Fatalf("after %d puts the cache holds %d entries, bound %d", i+1, n, size)
				}
			}
			// The newest entry is always there.
			key := sha256.Sum256(fmt.Append(nil, 3*size-1))
			if got, ok := c.get(&key, now); !ok || got.Sub != fmt.Sprint(3*size-1) {
				t.Errorf("the entry just put is missing: %v %v", got, ok)
			}
		})
	}
}

func TestVerifiedCacheEvictsExpiredFirstAndNeverServesThem(t *testing.T) {
	c := newVerifiedCache(2)
	now := time.Now()
	k1, k2, k3 := sha256.Sum256([]byte("1")), sha256.Sum256([]byte("2")), sha256.Sum256([]byte("3"))
	c.put(&k1, &Claims{Sub: "1", ExpiresAt: now.Add(time.Minute)}, now)
	c.put(&k2, &Claims{Sub: "2", ExpiresAt: now.Add(time.Hour)}, now)
	later := now.Add(2 * time.Minute)
	if _, ok := c.get(&k1, later); ok {
		t.Fatal("an expired entry was served")
	}
	c.put(&k1, &Claims{Sub: "1", ExpiresAt: now.Add(time.Minute)}, now) // back in, expired at `later`
	c.put(&k3, &Claims{Sub: "3", ExpiresAt: now.Add(time.Hour)}, later)
	if _, ok := c.get(&k2, later); !ok {
		t.Error("a live entry was evicted while an expired one was there")
	}
	if _, ok := c.get(&k3, later); !ok {
		t.Error("the new entry is missing")
	}
	if got, ok := c.get(&k3, now.Add(time.Hour)); ok {
		t.Errorf("served at exp: %+v", got)
	}
	c.put(&k1, &Claims{Sub: "1", ExpiresAt: now}, now)
	if _, ok := c.get(&k1, now.Add(-time.Hour)); ok {
		t.Error("an already expired token was cached")
	}
}

// TestVerifyCachedAnswersFromTheCache proves a repeated token is not verified
// again: with the keys gone, Verify fails but VerifyCached still answers.
func TestVerifyCachedAnswersFromTheCache(t *testing.T) {
	iss := authtest.NewIssuer(t)
	v, err := NewVerifier(VerifierConfig{Audiences: []string{"web"}, HTTPClient: http.DefaultClient, CertsURL: iss.CertsURL()})
	if err != nil {
		t.Fatal(err)
	}
	token := iss.Token("web", "1234")
	if _, err := v.VerifyCached(context.Background(), token); err != nil {
		t.Fatal(err)
	}
	iss.SetStatus(http.StatusInternalServerError)
	v.keys.cur.Store(nil)
	v.keys.gate.next = time.Time{}
	if _, err := v.Verify(context.Background(), token, ""); err == nil {
		t.Fatal("Verify succeeded without keys: the test proves nothing")
	}
	c, err := v.VerifyCached(context.Background(), token)
	if err != nil || c.Sub != "1234" {
		t.Fatalf("VerifyCached of a cached token = %v, %v", c, err)
	}
	if n := v.cache.len(); n != 1 {
		t.Errorf("cache holds %d entries, want 1", n)
	}
}

func TestParseJWKSKeepsOnlyUsableRS256Keys(t *testing.T) {
	good := authtest.NewKey(t, "good").PublicJWK()
	mk := func(f func(*authtest.JWK)) authtest.JWK { k := good; f(&k); return k }
	keys := []authtest.JWK{
		good,
		mk(func(k *authtest.JWK) { k.Kid = "" }),
		mk(func(k *authtest.JWK) { k.Kid = "es"; k.Kty = "EC" }),
		mk(func(k *authtest.JWK) { k.Kid = "rs512"; k.Alg = "RS512" }),
		mk(func(k *authtest.JWK) { k.Kid = "enc"; k.Use = "enc" }),
		mk(func(k *authtest.JWK) { k.Kid = "small"; k.N = k.N[:100] }),
		mk(func(k *authtest.JWK) { k.Kid = "bad-n"; k.N = "!!" }),
		mk(func(k *authtest.JWK) { k.Kid = "even-e"; k.E = "AQAA" }),
		mk(func(k *authtest.JWK) { k.Kid = "huge-e"; k.E = "AQABAQAB" }),
		mk(func(k *authtest.JWK) { k.Kid = "no-alg"; k.Alg = ""; k.Use = "" }),
		mk(func(k *authtest.JWK) { k.E = "Aw" }), // a duplicate of "good": the first wins
	}
	body := fmt.Appendf(nil, `{"keys":[%s]}`, joinJSON(t, keys))
	kids, clean, err := parseJWKS(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(kids) != 2 {
		t.Errorf("kids = %v, want good and no-alg", kids)
	}
	for _, k := range []string{"good", "no-alg"} {
		if _, ok := kids[k]; !ok {
			t.Errorf("usable key %q dropped", k)
		}
	}
	if again, _, err := parseJWKS(clean); err != nil || len(again) != 2 {
		t.Errorf("the JWKS given to idtoken does not parse back: %v %v", again, err)
	}
}

func joinJSON(t *testing.T, keys []authtest.JWK) string {
	t.Helper()
	var b []byte
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `{"kid":%q,"kty":%q,"alg":%q,"use":%q,"n":%q,"e":%q}`, k.Kid, k.Kty, k.Alg, k.Use, k.N, k.E)
	}
	return string(b)
}

func TestCacheTTL(t *testing.T) {
	const floor = 5 * time.Minute
	for _, tc := range []struct {
		name, cc, age string
		want          time.Duration
	}{
		{"google", "public, max-age=19204, must-revalidate, no-transform", "120", 19084 * time.Second},
		{"missing", "", "", floor},
		{"zero", "max-age=0", "", floor},
		{"negative", "max-age=-5", "", floor},
		{"quoted", `max-age="600"`, "", 600 * time.Second},
		{"upper case", "MAX-AGE=600", "", 600 * time.Second},
		{"no-cache wins", "max-age=600, no-cache", "", floor},
		{"age beyond", "max-age=600", "900", floor},
		{"bad age ignored", "max-age=600", "x", 600 * time.Second},
		{"overflow: the floor", "max-age=99999999999999999999", "", floor},
		{"a year capped to a day", "max-age=31536000", "", maxKeyTTL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.cc != "" {
				h.Set("Cache-Control", tc.cc)
			}
			if tc.age != "" {
				h.Set("Age", tc.age)
			}
			if got := cacheTTL(h, floor); got != tc.want {
				t.Errorf("cacheTTL = %v, want %v", got, tc.want)
			}
		})
	}
}

// The padding comment on cacheShard holds: one shard per cache line.
func TestCacheShardSize(t *testing.T) {
	if n := unsafe.Sizeof(cacheShard{}); n != 64 {
		t.Errorf("cacheShard is %d bytes, want 64", n)
	}
}
