package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"example.com/signin"
)

// This file is the SQL of the call budgets offline-fetch's processes share
// (offline-fetch -rate; migration 00007): evenly spaced slots handed out
// from one row per budget, so that the whole fleet calls Google at a given
// rate, and a 429 from Google slows every process, not only the one that
// got it.

// How a budget is lowered and recovers.
const (
	// BudgetRecovery is how long a budget lowered to nothing would take
	// to grow back to its full rate: a factor of 0.5 is back to 1 in half
	// of it.
	BudgetRecovery = 30 * time.Second
	budgetFloor    = 0.05
	// budgetLowerEvery: 429s within this of the last lowering do not
	// lower the rate again (they answer calls sent before it).
	budgetLowerEvery = time.Second
)

// Slots are times at which a process may send calls: First, then every
// Interval, Count of them.
type Slots struct {
	First    time.Time
	Interval time.Duration
	Count    int
	// PerMinute is the budget's rate in force (lowered after a 429).
	PerMinute float64
}

// factorSQL is a budget's factor now, with the recovery time as the
// parameter p: the stored factor grown back linearly since factor_at, at
// most 1. The time since factor_at is never taken as negative: a statement
// whose transaction began before the one that wrote factor_at committed
// (it waited on the row lock) has an earlier now(), and must see the
// factor as stored, not below it.
func factorSQL(p string) string {
	return `least(1, r.factor + greatest(0, extract(epoch FROM now() - r.factor_at)) / ` + p + `::float8)`
}

// slotSQL is the spacing of a budget's slots in whole microseconds (the
// resolution of a PostgreSQL timestamp), at perMinute calls a minute times
// factor: next_at moves by exactly n of them, and TakeSlots reports exactly
// that spacing, so the slots it hands out are those next_at skipped, with
// no rounding between the two (6,000 a minute is 10 ms, not 10.000001).
func slotSQL(perMinute, factor string) string {
	return `greatest(1, round(60000000 / (` + perMinute + ` * ` + factor + `)))::bigint`
}

// TakeSlots takes n slots of budget name, at perMinute calls a minute for
// the whole fleet (every process should be given the same rate; the last
// one to take slots sets it). The first slot is the budget's next free
// one, or now when that is past: an idle budget gives no burst. One
// statement, one row lock: processes taking slots at once are served one
// after the other, each its own slots.
//
// perMinute 0 takes from the budget as stored (a round's, which the round's
// starter sized); there being none then is no error: the result has no
// slot (Count 0), and the caller need not wait.
func (s *Store) TakeSlots(ctx context.Context, name string, perMinute, n int) (Slots, error) {
	var next time.Time
	var micros int64
	if perMinute == 0 {
		slot := slotSQL("r.per_minute", factorSQL("$3"))
		err := s.pool.QueryRow(ctx, `
			UPDATE rate_budgets r SET next_at = greatest(r.next_at, now()) + ($2::int * `+slot+`) * interval '1 microsecond'
			WHERE name = $1
			RETURNING r.next_at, `+slot, name, n, BudgetRecovery.Seconds()).Scan(&next, &micros)
		if errors.Is(err, pgx.ErrNoRows) {
			return Slots{}, nil
		}
		if err != nil {
			return Slots{}, s.fail(ctx, err, "cannot take from the call budget")
		}
		return slots(next, micros, n), nil
	}
	err := s.pool.QueryRow(ctx, `
		INSERT INTO rate_budgets AS r (name, per_minute, next_at) VALUES ($1, $2::int, now() + ($3::int * `+slotSQL("$2::int", "1::float8")+`) * interval '1 microsecond')
		ON CONFLICT (name) DO UPDATE SET per_minute = EXCLUDED.per_minute,
			next_at = greatest(r.next_at, now()) + ($3::int * `+slotSQL("EXCLUDED.per_minute", factorSQL("$4"))+`) * interval '1 microsecond'
		RETURNING r.next_at, `+slotSQL("r.per_minute", factorSQL("$4")), name, perMinute, n, BudgetRecovery.Seconds()).Scan(&next, &micros)
	if err != nil {
		return Slots{}, s.fail(ctx, err, "cannot take from the call budget")
	}
	return slots(next, micros, n), nil
}

// slots are the n slots before next, spaced micros microseconds apart.
func slots(next time.Time, micros int64, n int) Slots {
	sl := Slots{Interval: time.Duration(micros) * time.Microsecond, Count: n}
	sl.PerMinute = float64(time.Minute) / float64(sl.Interval)
	sl.First = next.Add(-time.Duration(n) * sl.Interval)
	return sl
}

// LowerBudget records a 429 from Google on budget name: the fleet's rate
// is halved (unless it was lowered less than a second ago: those 429s
// answer calls sent before), never below 5% of the configured rate, and
// no slot is handed out before retryAfter from now.
func (s *Store) LowerBudget(ctx context.Context, name string, retryAfter time.Duration) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE rate_budgets r SET
			refused = refused + 1,
			next_at = greatest(next_at, now() + make_interval(secs => $2::float8)),
			factor = CASE WHEN lowered_at > now() - make_interval(secs => $3::float8) THEN factor
				ELSE greatest($5::float8, `+factorSQL("$4")+` / 2) END,
			factor_at = CASE WHEN lowered_at > now() - make_interval(secs => $3::float8) THEN factor_at ELSE now() END,
			lowered_at = CASE WHEN lowered_at > now() - make_interval(secs => $3::float8) THEN lowered_at ELSE now() END
		WHERE name = $1`, name, retryAfter.Seconds(), budgetLowerEvery.Seconds(), BudgetRecovery.Seconds(), budgetFloor)
	if err != nil {
		return s.fail(ctx, err, "cannot lower the call budget")
	}
	return nil
}

// BudgetState is a budget as the fleet shares it.
type BudgetState struct {
	Name      string
	PerMinute int     // configured
	Factor    float64 // in force now: 1 is the full rate
	Refused   int64   // 429s the fleet reported
}

// Budget returns budget name's state (ENOTFOUND before any slot was taken).
func (s *Store) Budget(ctx context.Context, name string) (BudgetState, error) {
	b := BudgetState{Name: name}
	err := s.pool.QueryRow(ctx, `SELECT per_minute, `+factorSQL("$2")+`, refused FROM rate_budgets r WHERE name = $1`,
		name, BudgetRecovery.Seconds()).Scan(&b.PerMinute, &b.Factor, &b.Refused)
	if errors.Is(err, pgx.ErrNoRows) {
		return BudgetState{}, signin.Errorf(signin.ENOTFOUND, "", "No budget %q yet.", name)
	}
	if err != nil {
		return BudgetState{}, s.fail(ctx, err, "cannot read the call budget")
	}
	return b, nil
}
