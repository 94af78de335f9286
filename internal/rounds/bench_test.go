//go:build unix

package rounds

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"example.com/signin/internal/auth"
	"example.com/signin/internal/googlenet"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/offline"
	"example.com/signin/internal/pgtest"
	"example.com/signin/internal/store/postgres"
)

// BenchmarkEngineOverhead is what a round costs beyond the work: the same
// users (fresh tokens in PostgreSQL) and a People API that answers at
// once, done by offline.Run (the store listed once, no job queue) and by
// one process's round (a River job per user: enqueue, claim, the record
// read again, completion, the round's end noticed). The difference of the
// two per-user times is the job engine's own cost, with -concurrency 32.
//
//	SIGNIN_TEST_DATABASE_URL=... go test -run '^$' -bench EngineOverhead ./internal/rounds
func BenchmarkEngineOverhead(b *testing.B) {
	const users, conc = 2000, 32
	db := pgtest.URL(b)
	st, err := postgres.Open(b.Context(), postgres.Config{URL: db, MaxConns: 16})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	for i := range users {
		sub := fmt.Sprintf("1%020d", i)
		if _, err := st.Update(b.Context(), sub, func(*grant.Record) (*grant.Record, error) {
			return &grant.Record{Email: sub + "@example.com", Name: "User " + sub, Scopes: []string{"email", "profile"},
				Token: grant.Token{AccessToken: "at-" + sub, TokenType: "Bearer", RefreshToken: "rt-" + sub, Expiry: time.Now().Add(24 * time.Hour)}}, nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	google := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"resourceName":"people/1","names":[{"displayName":"Ada"}],"emailAddresses":[{"value":"ada@example.com"}]}`)
	}))
	defer google.Close()
	nt, err := googlenet.New(google.Listener.Addr().String(), googlenet.Options{})
	if err != nil {
		b.Fatal(err)
	}
	g := grant.New(grant.Config{Store: st, Google: auth.NewGoogle(auth.GoogleConfig{
		Client: &auth.Client{ID: "client", Secret: "secret"}, HTTPClient: nt.HTTPClient()})})
	ocfg := offline.Config{FetcherConfig: offline.FetcherConfig{Grants: g, HTTPClient: nt.HTTPClient()}, Concurrency: conc}

	check := func(b *testing.B, sum offline.Summary, err error) {
		if err != nil || sum.OK != users {
			b.Fatalf("%+v, %v", sum, err)
		}
	}
	// The process's CPU (this process: the engine, the store's client
	// and the fake Google; not PostgreSQL's) per user.
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.Run("run", func(b *testing.B) {
		c0 := cpu()
		for b.Loop() {
			sum, err := offline.Run(context.Background(), ocfg)
			check(b, sum, err)
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*users), "µs/user")
		b.ReportMetric(float64((cpu()-c0).Microseconds())/float64(b.N*users), "cpu-µs/user")
	})
	b.Run("round", func(b *testing.B) {
		c0 := cpu()
		for b.Loop() {
			sum, err := Run(context.Background(), Config{DB: st, Offline: ocfg})
			check(b, sum, err)
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*users), "µs/user")
		b.ReportMetric(float64((cpu()-c0).Microseconds())/float64(b.N*users), "cpu-µs/user")
	})
}
