package granttest

import (
	"context"

	"golang.org/x/sync/errgroup"

	"example.com/signin/internal/grant"
)

// Fill stores n records, made by record(i) for i in [0, n), through Update
// from up to concurrency goroutines at once, so that seeding thousands of
// users (for benchmarks and load tests) costs the store's write latency
// divided by the concurrency. It stops at the first error.
func Fill(ctx context.Context, st grant.Store, n, concurrency int, record func(i int) (*grant.Record, error)) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(max(concurrency, 1))
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			rec, err := record(i)
			if err != nil {
				return err
			}
			_, err = st.Update(ctx, rec.Sub, func(*grant.Record) (*grant.Record, error) { return rec, nil })
			return err
		})
	}
	return g.Wait()
}
