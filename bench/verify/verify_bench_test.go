package verify_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"google.golang.org/api/idtoken"
	"google.golang.org/api/option"

	"example.com/signin/internal/auth"
	"example.com/signin/internal/auth/authtest"
	"example.com/signin/internal/googlenet"
)

const (
	clientID = "1234-web.apps.googleusercontent.com"
	testSub  = "110169484474386276334"
)

// googleToken returns a Google-shaped ID token (RS256, 2048-bit key, about
// 900 bytes, the claims Google sends for a Workspace account) from iss.
func googleToken(iss *authtest.Issuer) string {
	claims := authtest.Claims(clientID, testSub)
	claims["hd"] = "example.com"
	claims["at_hash"] = "HK6E_P6Dh8Y93mRNtsDB1Q"
	return iss.Sign(nil, claims)
}

// op is one verification; it returns the verification's error.
type op func(ctx context.Context, token string) error

// library is a way to verify tokens. new builds one with a cold key cache
// for the issuer, and returns with it its own count of key fetches when the
// library keeps one (ours), else nil.
type library struct {
	name string
	new  func(tb testing.TB, iss *authtest.Issuer) (op, func() int64)
}

// libraries returns the three verifiers compared: ours (every check, no
// verified-token cache), bare idtoken (signature, aud, exp) and go-oidc
// (signature, iss, aud, exp, and the claims decoded as an app would).
func libraries() []library {
	return []library{
		{"ours", func(tb testing.TB, iss *authtest.Issuer) (op, func() int64) {
			v := newOurs(tb, iss, func(c *auth.VerifierConfig) { c.CacheSize = -1 })
			return func(ctx context.Context, tok string) error { _, err := v.Verify(ctx, tok, ""); return err }, v.KeyFetches
		}},
		{"idtoken", func(tb testing.TB, iss *authtest.Issuer) (op, func() int64) {
			v := newIdtoken(tb, iss)
			return func(ctx context.Context, tok string) error { _, err := v.Validate(ctx, tok, clientID); return err }, nil
		}},
		{"go-oidc", func(tb testing.TB, iss *authtest.Issuer) (op, func() int64) {
			v := newGoOIDC(iss)
			return func(ctx context.Context, tok string) error {
				t, err := v.Verify(ctx, tok)
				if err != nil {
					return err
				}
				var c googleClaims
				return t.Claims(&c)
			}, nil
		}},
	}
}

// googleClaims is what an app decodes from a verified token with go-oidc.
type googleClaims struct {
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	Name          string `json:"name"`
	Picture       string `json:"picture"`
	HostedDomain  string `json:"hd"`
	AuthorizedBy  string `json:"azp"`
}

func newOurs(tb testing.TB, iss *authtest.Issuer, opts ...func(*auth.VerifierConfig)) *auth.Verifier {
	tb.Helper()
	cfg := auth.VerifierConfig{Audiences: []string{clientID}, HTTPClient: http.DefaultClient, CertsURL: iss.CertsURL()}
	for _, o := range opts {
		o(&cfg)
	}
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// newIdtoken returns an idtoken.Validator whose requests for Google's
// certs URL reach iss, the way the app routes them to the emulator.
func newIdtoken(tb testing.TB, iss *authtest.Issuer) *idtoken.Validator {
	tb.Helper()
	u, err := url.Parse(iss.URL())
	if err != nil {
		tb.Fatal(err)
	}
	n, err := googlenet.New(u.Host, googlenet.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	v, err := idtoken.NewValidator(context.Background(), option.WithHTTPClient(n.HTTPClient()))
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// newGoOIDC is go-oidc set up for Google without discovery, as its
// documentation shows for a known issuer and JWKS URL.
func newGoOIDC(iss *authtest.Issuer) *oidc.IDTokenVerifier {
	ks := oidc.NewRemoteKeySet(context.Background(), iss.CertsURL())
	return oidc.NewVerifier(googlenet.Issuer, ks, &oidc.Config{ClientID: clientID})
}

// both runs o serially and in parallel (run with -cpu 1,2 to see scaling).
func both(b *testing.B, token string, o op) {
	b.Helper()
	ctx := context.Background()
	if err := o(ctx, token); err != nil { // warm the key cache, and fail fast
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := o(ctx, token); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := o(ctx, token); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkIDToken verifies the same token, with warm key caches, five
// ways: the floor (SHA-256 of the signed part and one RSA PKCS #1 v1.5
// verification, the least any verification costs), ours on a first-seen
// token (everything checked), ours on a token seen before (VerifyCached,
// the API's bearer-token path), bare idtoken and go-oidc.
func BenchmarkIDToken(b *testing.B) {
	iss := authtest.NewIssuer(b)
	token := googleToken(iss)

	pub := &iss.Signer().Private.PublicKey
	dot := strings.LastIndexByte(token, '.')
	sig, err := base64.RawURLEncoding.DecodeString(token[dot+1:])
	if err != nil {
		b.Fatal(err)
	}
	signed := []byte(token[:dot])
	b.Run("floor", func(b *testing.B) {
		both(b, token, func(context.Context, string) error {
			h := sha256.Sum256(signed)
			return rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig)
		})
	})
	for _, l := range libraries() {
		b.Run(l.name, func(b *testing.B) {
			o, _ := l.new(b, iss)
			both(b, token, o)
		})
	}
	b.Run("ours-cached", func(b *testing.B) {
		v := newOurs(b, iss)
		both(b, token, func(ctx context.Context, tok string) error { _, err := v.VerifyCached(ctx, tok); return err })
	})
}
