package auth_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/api/idtoken"
	"google.golang.org/api/option"

	"example.com/signin/internal/auth"
	"example.com/signin/internal/auth/authtest"
	"example.com/signin/internal/googlenet"
)

// The benchmarks verify the same Google-shaped token (RS256, 2048-bit key,
// about 900 bytes) four ways: our full verification, our cache, bare
// idtoken, and the RSA operation alone (the floor). Each has a serial and a
// parallel variant; run with -cpu 1,2 to see scaling.

func benchToken(b *testing.B) (*authtest.Issuer, string) {
	b.Helper()
	iss := authtest.NewIssuer(b)
	claims := authtest.Claims(webID, testSub)
	claims["hd"] = "example.com"
	claims["at_hash"] = "HK6E_P6Dh8Y93mRNtsDB1Q"
	return iss, iss.Sign(nil, claims)
}

// both runs op serially and in parallel.
func both(b *testing.B, op func() error) {
	b.Helper()
	if err := op(); err != nil { // warm caches, and fail fast
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := op(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := op(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkVerify is the first-seen token path: everything is checked,
// with one client id configured (signin's default).
func BenchmarkVerify(b *testing.B) {
	iss, token := benchToken(b)
	v := newVerifier(b, iss, func(c *auth.VerifierConfig) { c.CacheSize = -1; c.Audiences = []string{webID} })
	ctx := context.Background()
	both(b, func() error { _, err := v.Verify(ctx, token, ""); return err })
	if n := iss.Fetches(); n != 1 {
		b.Errorf("%d key fetches, want 1", n)
	}
}

// BenchmarkVerifySeveralClientIDs is BenchmarkVerify with the web and an
// Android client id configured (-other-client-ids): it also decodes "aud"
// to tell idtoken which one to compare.
func BenchmarkVerifySeveralClientIDs(b *testing.B) {
	iss, token := benchToken(b)
	v := newVerifier(b, iss, func(c *auth.VerifierConfig) { c.CacheSize = -1 })
	ctx := context.Background()
	both(b, func() error { _, err := v.Verify(ctx, token, ""); return err })
}

// BenchmarkVerifyCached is a bearer token seen before.
func BenchmarkVerifyCached(b *testing.B) {
	iss, token := benchToken(b)
	v := newVerifier(b, iss)
	ctx := context.Background()
	both(b, func() error { _, err := v.VerifyCached(ctx, token); return err })
}

// BenchmarkIdtokenBare is idtoken.Validator alone (signature, aud, exp), with
// its own key cache warm.
func BenchmarkIdtokenBare(b *testing.B) {
	iss, token := benchToken(b)
	u, _ := url.Parse(iss.URL())
	n, err := googlenet.New(u.Host, googlenet.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	val, err := idtoken.NewValidator(ctx, option.WithHTTPClient(n.HTTPClient()))
	if err != nil {
		b.Fatal(err)
	}
	both(b, func() error { _, err := val.Validate(ctx, token, webID); return err })
}

// BenchmarkRSAFloor is the least any verification costs: SHA-256 of the
// signed part and one RSA PKCS #1 v1.5 verification.
func BenchmarkRSAFloor(b *testing.B) {
	iss, token := benchToken(b)
	pub := &iss.Signer().Private.PublicKey
	dot := strings.LastIndexByte(token, '.')
	sig, err := base64.RawURLEncoding.DecodeString(token[dot+1:])
	if err != nil {
		b.Fatal(err)
	}
	signed := []byte(token[:dot])
	both(b, func() error {
		h := sha256.Sum256(signed)
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig)
	})
}
