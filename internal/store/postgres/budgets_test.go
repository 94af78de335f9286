package postgres

import (
	"sync"
	"testing"
	"time"

	"example.com/signin/internal/pgtest"
)

// TestBudgetSlots: processes taking slots of one budget at once get slots
// that never coincide and are spaced at the budget's rate, whoever took
// them: 6,000 a minute is one slot every 10 ms across the fleet.
func TestBudgetSlots(t *testing.T) {
	url := pgtest.URL(t)
	stores := []*Store{mustOpen(t, url), mustOpen(t, url), mustOpen(t, url)}
	var mu sync.Mutex
	var all []Slots
	var wg sync.WaitGroup
	for _, st := range stores {
		wg.Go(func() {
			for range 20 {
				sl, err := st.TakeSlots(t.Context(), "people", 6000, 5)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				all = append(all, sl)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	var times []time.Time
	for _, sl := range all {
		if sl.Interval != 10*time.Millisecond || sl.Count != 5 {
			t.Fatalf("slots %+v, want 5 every 10ms", sl)
		}
		for i := range sl.Count {
			times = append(times, sl.First.Add(time.Duration(i)*sl.Interval))
		}
	}
	// Sorted, consecutive slots are exactly one interval apart: no two
	// processes were given the same time, and none were skipped unless the
	// budget was idle (a gap, never a crowd).
	sortTimes(times)
	for i := 1; i < len(times); i++ {
		if d := times[i].Sub(times[i-1]); d < 10*time.Millisecond {
			t.Fatalf("slots %v and %v are %v apart, want at least 10ms", times[i-1], times[i], d)
		}
	}
}

// TestBudgetSlotsAfterLaterWriter: a process whose transaction began before
// another's that wrote the budget (it waited on the row lock, so its now()
// is the earlier) gets the full rate, not a hair under it: 10 ms exactly
// (it got 10.000076 ms when the factor's recovery counted back in time).
// The other's later clock is set directly rather than raced for.
func TestBudgetSlotsAfterLaterWriter(t *testing.T) {
	st := mustOpen(t, pgtest.URL(t))
	ctx := t.Context()
	if _, err := st.TakeSlots(ctx, "people", 6000, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := st.pool.Exec(ctx, `UPDATE rate_budgets SET factor_at = now() + interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	for _, perMinute := range []int{6000, 0} { // configured, and as stored
		sl, err := st.TakeSlots(ctx, "people", perMinute, 5)
		if err != nil {
			t.Fatal(err)
		}
		if sl.Interval != 10*time.Millisecond || sl.PerMinute != 6000 {
			t.Errorf("TakeSlots(%d): every %v at %v a minute, want every 10ms at 6000", perMinute, sl.Interval, sl.PerMinute)
		}
	}
	if b, err := st.Budget(ctx, "people"); err != nil || b.Factor != 1 {
		t.Errorf("budget %+v, %v; want factor 1", b, err)
	}
}

// TestBudgetLowered: a 429 halves the fleet's rate and pushes the next
// slot past its Retry-After; 429s right after do not halve it again; the
// rate grows back to the full one with time.
func TestBudgetLowered(t *testing.T) {
	st := mustOpen(t, pgtest.URL(t))
	ctx := t.Context()
	if _, err := st.TakeSlots(ctx, "people", 6000, 1); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := st.LowerBudget(ctx, "people", 2*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	b, err := st.Budget(ctx, "people")
	if err != nil {
		t.Fatal(err)
	}
	if b.Refused != 3 || b.Factor < 0.45 || b.Factor > 0.55 {
		t.Errorf("after three 429s at once: %+v, want factor about 0.5 (halved once), 3 refused", b)
	}
	sl, err := st.TakeSlots(ctx, "people", 6000, 1)
	if err != nil {
		t.Fatal(err)
	}
	if until := time.Until(sl.First); until < time.Second || sl.Interval < 19*time.Millisecond {
		t.Errorf("next slot in %v every %v: want past the 2 s Retry-After, every 20 ms (half the rate)", until, sl.Interval)
	}
	// Time passes (moved back rather than waited for).
	if _, err := st.pool.Exec(ctx, `UPDATE rate_budgets SET factor_at = factor_at - make_interval(secs => $1)`, BudgetRecovery.Seconds()); err != nil {
		t.Fatal(err)
	}
	if b, err := st.Budget(ctx, "people"); err != nil || b.Factor != 1 {
		t.Errorf("after the recovery time: %+v, %v; want factor 1", b, err)
	}
}

func sortTimes(ts []time.Time) {
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && ts[j].Before(ts[j-1]); j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
		}
	}
}

// BenchmarkTakeSlots is the budget's own cost: one TakeSlots (a statement
// and a row lock) per 5 slots at 6,000 a minute; per call, divide by 5.
//
//	SIGNIN_TEST_DATABASE_URL=... go test -run '^$' -bench TakeSlots -cpu 1 ./internal/store/postgres
func BenchmarkTakeSlots(b *testing.B) {
	st := mustOpen(b, pgtest.URL(b))
	for b.Loop() {
		if _, err := st.TakeSlots(b.Context(), "people", 1<<30, 5); err != nil {
			b.Fatal(err)
		}
	}
}
