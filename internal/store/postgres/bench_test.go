package postgres

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"example.com/signin/internal/grant"
	"example.com/signin/internal/grant/granttest"
	"example.com/signin/internal/pgtest"
)

// One row; each operation is a round trip (Get, LoadSession) or a
// transaction of four (Update: begin with settings, lock the row, write,
// commit) to a local server.

// BenchmarkGet reads one user's row: uncached, a round trip each time;
// cached (the signin server), from memory but for the first read and any
// made while the listener's last poll is older than the trust window
// (reads/op counts them).
func BenchmarkGet(b *testing.B) {
	for _, cached := range []bool{false, true} {
		name := "uncached"
		if cached {
			name = "cached"
		}
		b.Run(name, func(b *testing.B) {
			var s *Store
			if cached {
				s = openCached(b, pgtest.URL(b), Config{cacheWindow: trustWindow})
				syncCache(b, s)
			} else {
				s = mustOpen(b, pgtest.URL(b))
			}
			const sub = "109876543210987654321"
			granttest.Put(b, s, granttest.NewRecord(sub, time.Now()))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Get(b.Context(), sub); err != nil {
					b.Fatal(err)
				}
			}
			if cached {
				b.ReportMetric(float64(reads(s))/float64(b.N), "reads/op")
			}
		})
	}
}

// BenchmarkGetNewUser reads a user without a row, a different one each
// time, never in the record cache (a sign-in of someone this replica has
// not seen): with the known subs loaded, from memory (reads/op counts the
// Gets that went to the database); without them, a round trip each. The
// table holds 10,000 other users. One allocation is the benchmark's
// making the sub.
func BenchmarkGetNewUser(b *testing.B) {
	url := pgtest.URL(b)
	w := mustOpen(b, url)
	ctx := b.Context()
	if _, err := w.pool.Exec(ctx, `INSERT INTO credentials (`+recordColumns+`)
		SELECT 'u' || i, 1, '', '', '{}', 'active', '', NULL, '', '', '', NULL, now(), now(), NULL, '', NULL
		FROM generate_series(1, 10000) AS i`); err != nil {
		b.Fatal(err)
	}
	for _, known := range []bool{true, false} {
		name := "known-subs"
		cfg := Config{cacheWindow: trustWindow}
		if !known {
			name, cfg.knownSubsLimit = "rows-only", rowsOnly
		}
		b.Run(name, func(b *testing.B) {
			s := openCached(b, url, cfg)
			if known {
				waitKnown(b, s, 0)
			}
			syncCache(b, s)
			i := int64(1e15)
			b.ReportAllocs()
			for b.Loop() {
				i++
				if _, err := s.Get(ctx, strconv.FormatInt(i, 10)); err == nil {
					b.Fatal("a row for a user who has none")
				}
			}
			b.ReportMetric(float64(reads(s))/float64(b.N), "reads/op")
		})
	}
}

func BenchmarkUpdate(b *testing.B) {
	s := mustOpen(b, pgtest.URL(b))
	const sub = "109876543210987654321"
	granttest.Put(b, s, granttest.NewRecord(sub, time.Now()))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		_, err := s.Update(b.Context(), sub, func(cur *grant.Record) (*grant.Record, error) {
			cur.Token.AccessToken = fmt.Sprint("at-", i)
			return cur, nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSessionEnds is what a replica asks the store about a user at
// most once a second while the user's sessions are busy: one round trip.
func BenchmarkSessionEnds(b *testing.B) {
	s := mustOpen(b, pgtest.URL(b))
	if err := s.EndUserSessions(b.Context(), "1", time.Now(), time.Now().Add(time.Hour)); err != nil {
		b.Fatal(err)
	}
	for i := range 3 {
		if err := s.EndSession(b.Context(), "1", strings.Repeat("k", 42)+strconv.Itoa(i), time.Now().Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, keys, err := s.SessionEnds(b.Context(), "1"); err != nil || len(keys) != 3 {
			b.Fatal(keys, err)
		}
	}
}
