package verify_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"example.com/signin/internal/auth"
	"example.com/signin/internal/auth/authtest"
)

// The key fetch benchmarks count requests for Google's key set, as the
// certs endpoint sees them, in the four situations where a verifier's key
// cache shows: the steady state, a cold start under load, a certs answer
// without Cache-Control (a proxy or emulator that drops it), and tokens with
// made-up key ids (an attacker making us fetch). Their metrics are the
// result; their ns/op are not the point.

const (
	steadyCalls = 100  // verifications per iteration of the steady-state experiments
	coldCallers = 200  // concurrent first verifications on a cold cache
	randomKids  = 1000 // tokens with made-up kids per experiment
)

// BenchmarkKeyFetches reports, for ours, bare idtoken and go-oidc:
//   - steady/<lib>: key fetches per verification with a warm cache
//     (fetches/op, though each op is 100 verifications; Google's
//     Cache-Control);
//   - no-cache-control/<lib>: the same when the certs answer has neither
//     Cache-Control nor Age (fetches/op);
//   - cold-200/<lib>: fetches when 200 verifications start together on a
//     cold cache (fetches, per cold start);
//   - random-kids-1000/<lib>: fetches caused by 1000 tokens whose kid is
//     not in the key set, right after a warm-up fetch (fetches, per 1000);
//   - random-kids-10min/ours: the same 1000 tokens spread over ten minutes
//     of our verifier's clock (refetches/min; the goal is at most one).
func BenchmarkKeyFetches(b *testing.B) {
	google := authtest.NewIssuer(b) // Google's Cache-Control and Age
	bare := authtest.NewIssuer(b)
	bare.SetHeaders("", "")
	goodGoogle, goodBare := googleToken(google), googleToken(bare)
	forged := withRandomKids(b, goodGoogle, randomKids)

	for _, l := range libraries() {
		b.Run("steady/"+l.name, func(b *testing.B) { steady(b, l, google, goodGoogle) })
	}
	for _, l := range libraries() {
		b.Run("no-cache-control/"+l.name, func(b *testing.B) { steady(b, l, bare, goodBare) })
	}
	for _, l := range libraries() {
		b.Run("cold-200/"+l.name, func(b *testing.B) { cold(b, l, google, goodGoogle) })
	}
	for _, l := range libraries() {
		b.Run("random-kids-1000/"+l.name, func(b *testing.B) { unknownKids(b, l, google, goodGoogle, forged) })
	}
	b.Run("random-kids-10min/ours", func(b *testing.B) { unknownKidsOverTime(b, google, forged) })
}

// steady counts fetches per verification of a valid token once the
// library's cache is warm (steadyCalls verifications per iteration, so
// that even -benchtime=1x measures a steady state).
func steady(b *testing.B, l library, iss *authtest.Issuer, token string) {
	ctx := context.Background()
	o, ours := l.new(b, iss)
	if err := o(ctx, token); err != nil {
		b.Fatal(err)
	}
	before, oursBefore := iss.Fetches(), count(ours)
	for b.Loop() {
		for range steadyCalls {
			if err := o(ctx, token); err != nil {
				b.Fatal(err)
			}
		}
	}
	n := iss.Fetches() - before
	crossCheck(b, n, ours, oursBefore)
	b.ReportMetric(float64(n)/float64(b.N*steadyCalls), "fetches/op")
}

// cold counts the fetches made when coldCallers goroutines verify a valid
// token at once with a fresh (cold) library.
func cold(b *testing.B, l library, iss *authtest.Issuer, token string) {
	ctx := context.Background()
	var total int64
	for b.Loop() {
		o, ours := l.new(b, iss)
		before := iss.Fetches()
		start := make(chan struct{})
		errs := make(chan error, coldCallers)
		var wg sync.WaitGroup
		for range coldCallers {
			wg.Go(func() {
				<-start
				errs <- o(ctx, token)
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		n := iss.Fetches() - before
		crossCheck(b, n, ours, 0)
		total += n
	}
	b.ReportMetric(float64(total)/float64(b.N), "fetches")
}

// unknownKids counts the fetches that tokens with made-up kids cause right
// after a warm-up verification (all within well under a minute).
func unknownKids(b *testing.B, l library, iss *authtest.Issuer, good string, forged []string) {
	ctx := context.Background()
	var total int64
	for b.Loop() {
		o, ours := l.new(b, iss)
		if err := o(ctx, good); err != nil {
			b.Fatal(err)
		}
		before, oursBefore := iss.Fetches(), count(ours)
		for _, tok := range forged {
			if o(ctx, tok) == nil {
				b.Fatal("a token with an unknown kid verified")
			}
		}
		n := iss.Fetches() - before
		crossCheck(b, n, ours, oursBefore)
		total += n
	}
	b.ReportMetric(float64(total)/float64(b.N), "fetches")
}

// unknownKidsOverTime sends the forged tokens to our verifier spread over
// ten minutes of its clock, and reports its refetches per minute.
func unknownKidsOverTime(b *testing.B, iss *authtest.Issuer, forged []string) {
	const span = 10 * time.Minute
	ctx := context.Background()
	// Valid on the verifier's clock throughout: issued at its start,
	// expiring an hour later.
	clock := authtest.NewClock(time.Now())
	good := iss.Sign(nil, authtest.Claims(clientID, testSub))
	var total int64
	for b.Loop() {
		v := newOurs(b, iss, func(c *auth.VerifierConfig) { c.Now = clock.Now; c.CacheSize = -1 })
		if _, err := v.Verify(ctx, good, ""); err != nil {
			b.Fatal(err)
		}
		before, oursBefore := iss.Fetches(), v.KeyFetches()
		step := span / time.Duration(len(forged))
		for _, tok := range forged {
			clock.Advance(step)
			if _, err := v.Verify(ctx, tok, ""); err == nil {
				b.Fatal("a token with an unknown kid verified")
			}
		}
		n := iss.Fetches() - before
		crossCheck(b, n, v.KeyFetches, oursBefore)
		total += n
	}
	b.ReportMetric(float64(total)/float64(b.N)/span.Minutes(), "refetches/min")
}

// withRandomKids returns n copies of token whose header names a random
// kid. The payload and signature are the original's: nothing checks the
// signature of a token whose key cannot be found, and every library looks
// the kid up (and may fetch) before that.
func withRandomKids(tb testing.TB, token string, n int) []string {
	tb.Helper()
	rest := token[strings.IndexByte(token, '.'):]
	out := make([]string, n)
	for i := range out {
		kid := make([]byte, 20)
		if _, err := rand.Read(kid); err != nil {
			tb.Fatal(err)
		}
		out[i] = authtest.Segment(authtest.Header(hex.EncodeToString(kid))) + rest
	}
	return out
}

func count(f func() int64) int64 {
	if f == nil {
		return 0
	}
	return f()
}

// crossCheck fails b when our verifier's own count (auth's KeyFetches)
// disagrees with what the certs endpoint saw.
func crossCheck(b *testing.B, seen int64, ours func() int64, before int64) {
	b.Helper()
	if ours != nil {
		if n := ours() - before; n != seen {
			b.Errorf("KeyFetches counted %d fetches, the certs endpoint saw %d", n, seen)
		}
	}
}
