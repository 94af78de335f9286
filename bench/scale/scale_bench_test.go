package scale_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"example.com/signin/bench/scale"
)

// EnvScale turns on the full-size runs; without it the benchmark runs a
// small version, seeded afresh, so that CI's run-once check exercises the
// whole machinery in seconds.
const EnvScale = "SIGNIN_BENCH_SCALE"

// EnvCache is where seeded data sets are kept between full-size runs
// (default: the user's cache directory, signin-bench).
const EnvCache = "SIGNIN_BENCH_CACHE"

// BenchmarkOfflineFetchScale runs the offline-fetch binary over many
// stored users against the emulator and reports, per run: wall-s, ideal-s
// (users x People API latency / concurrency), wall/ideal (the goal: at
// most 1.2), peak-rss-MiB of the offline-fetch process (the goal: under 64
// and flat in the number of users), and the emulator's refresh-grants and
// people-calls.
//
// With SIGNIN_BENCH_SCALE=1: 2,000 and 10,000 users at 50 ms latency and
// concurrency 32 with fresh tokens (0 refreshes expected), 2,000 with
// expired tokens (one refresh per user expected), and 10,000 and 100,000
// users without added latency for peak RSS. Otherwise: 200 users, 5 ms.
func BenchmarkOfflineFetchScale(b *testing.B) {
	type run struct {
		users   int
		latency time.Duration
		expire  bool
	}
	runs := []run{{200, 5 * time.Millisecond, false}, {200, 5 * time.Millisecond, true}}
	cache := b.TempDir()
	if os.Getenv(EnvScale) == "1" {
		runs = []run{
			{2000, 50 * time.Millisecond, false},
			{10000, 50 * time.Millisecond, false},
			{2000, 50 * time.Millisecond, true},
			{10000, 0, false},
			{100000, 0, false},
		}
		if cache = os.Getenv(EnvCache); cache == "" {
			dir, err := os.UserCacheDir()
			if err != nil {
				b.Fatal(err)
			}
			cache = filepath.Join(dir, "signin-bench")
		}
	}
	ctx := context.Background()
	bin, err := scale.Build(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range runs {
		tokens := "fresh"
		if r.expire {
			tokens = "expired"
		}
		b.Run(fmt.Sprintf("users=%d/latency=%v/%s", r.users, r.latency, tokens), func(b *testing.B) {
			d, err := scale.Open(ctx, cache, r.users, b.Output())
			if err != nil {
				b.Fatal(err)
			}
			var res scale.Result
			for b.Loop() {
				res, err = d.Run(ctx, scale.RunConfig{Binary: bin, Latency: r.latency, Concurrency: 32, Expire: r.expire})
				if err != nil {
					b.Fatal(err)
				}
			}
			want := 0
			if r.expire {
				want = r.users
			}
			if res.RefreshGrants != want || res.PeopleCalls != r.users {
				b.Errorf("%d refresh grants and %d People API calls, want %d and %d", res.RefreshGrants, res.PeopleCalls, want, r.users)
			}
			b.ReportMetric(res.Wall.Seconds(), "wall-s")
			b.ReportMetric(res.Ideal.Seconds(), "ideal-s")
			b.ReportMetric(res.Ratio(), "wall/ideal")
			b.ReportMetric(float64(res.PeakRSS)/(1<<20), "peak-rss-MiB")
			b.ReportMetric(float64(res.RefreshGrants), "refresh-grants")
			b.ReportMetric(float64(res.PeopleCalls), "people-calls")
		})
	}
}
