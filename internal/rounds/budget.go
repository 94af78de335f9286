package rounds

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"example.com/signin/internal/googlenet"
	"example.com/signin/internal/metrics"
	"example.com/signin/internal/offline"
	"example.com/signin/internal/store/postgres"
)

// Budgets are the fleet's rates of calls to Google (offline-fetch -rate):
// every process on the database together makes at most PeoplePerMinute
// People API calls and TokenPerMinute refreshes a minute. 0: no budget.
type Budgets struct {
	PeoplePerMinute int
	TokenPerMinute  int
}

// Budget names, the rows of rate_budgets and the metrics' label values.
const (
	budgetPeople = "people"
	budgetToken  = "token"
)

// Slot batching. A process takes slotBatch seconds' worth of slots at once
// (one database round trip for them; at 6,000 a minute, 5 slots), and
// drops a slot it could not use within staleSlot of its time rather than
// send a call late into the next ones' (Google's quota window tolerates
// about a second's burst; a slot a little late is still within it).
const (
	slotBatch = 50 * time.Millisecond
	staleSlot = 500 * time.Millisecond
)

// pacer is an offline.Pacer over the budgets held in PostgreSQL: a call
// waits for a slot of its budget (the People API's, or the token
// endpoint's), and a 429 lowers the budget for the whole fleet.
type pacer struct {
	people, token *budget
}

func newPacer(db *postgres.Store, b Budgets, fleet *metrics.Fleet, log *slog.Logger) *pacer {
	p := &pacer{}
	if b.PeoplePerMinute > 0 {
		p.people = &budget{db: db, name: budgetPeople, label: budgetPeople, perMinute: b.PeoplePerMinute, fleet: fleet, log: log}
	}
	if b.TokenPerMinute > 0 {
		p.token = &budget{db: db, name: budgetToken, label: budgetToken, perMinute: b.TokenPerMinute, fleet: fleet, log: log}
	}
	return p
}

var (
	peopleHost = strings.TrimSuffix(strings.TrimPrefix(googlenet.PeopleURL, "https://"), "/")
	tokenHost  = strings.TrimPrefix(googlenet.TokenURL, "https://")
)

// budgetFor is req's budget: by Google's URL, which req still has (the
// emulator's address is put in below this transport).
func (p *pacer) budgetFor(req *http.Request) *budget {
	switch {
	case req.URL.Host == peopleHost:
		return p.people
	case req.URL.Host+req.URL.Path == tokenHost:
		return p.token
	}
	return nil
}

// Wait implements offline.Pacer. A job whose context ends while it waits
// is marked (jobState), so that it is put back rather than failed.
func (p *pacer) Wait(ctx context.Context, req *http.Request) error {
	b := p.budgetFor(req)
	if b == nil {
		return nil
	}
	err := b.wait(ctx)
	if err != nil {
		if st := jobStateOf(ctx); st != nil {
			st.waitedForBudget.Store(true)
		}
	}
	return err
}

// Refused implements offline.Pacer: a 429 on a budgeted call lowers the
// budget for the fleet, and the call waits for it again.
func (p *pacer) Refused(ctx context.Context, req *http.Request, retryAfter time.Duration) bool {
	b := p.budgetFor(req)
	if b == nil {
		return false
	}
	b.refused(ctx, retryAfter)
	if st := jobStateOf(ctx); st != nil {
		st.waitedForBudget.Store(true)
	}
	return true
}

// budget is one process's view of a shared budget: the slots it took and
// has not used yet.
type budget struct {
	db        *postgres.Store
	name      string
	label     string // for the metrics: name, or "spread" for a round's
	perMinute int    // 0: as stored (a round's budget, sized by its starter)
	fleet     *metrics.Fleet
	log       *slog.Logger

	mu    sync.Mutex
	slots []time.Time
	none  bool // perMinute 0 and no such budget: no wait
}

// spreadWait waits for a slot of round id's own budget, which spreads its
// users over the worker's -spread (none when the round was not spread).
func (e *engine) spreadWait(ctx context.Context, id int64) error {
	e.mu.Lock()
	b := e.spreads[id]
	if b == nil {
		b = &budget{db: e.db, name: postgres.RoundBudget(id), label: "spread", fleet: e.fleet, log: e.log}
		e.spreads[id] = b
	}
	e.mu.Unlock()
	return b.wait(ctx)
}

// batch is how many slots to take at once.
func (b *budget) batch() int {
	return max(1, int(math.Round(float64(b.perMinute)/60*slotBatch.Seconds())))
}

// wait returns at the time of the next slot this process holds (taking
// more from the database when it has none), or ctx's error.
func (b *budget) wait(ctx context.Context) error {
	b.mu.Lock()
	now := time.Now()
	for len(b.slots) > 0 && now.Sub(b.slots[0]) > staleSlot {
		b.slots = b.slots[1:]
	}
	if b.none {
		b.mu.Unlock()
		return nil
	}
	if len(b.slots) == 0 {
		sl, err := b.db.TakeSlots(ctx, b.name, b.perMinute, b.batch())
		if err != nil {
			b.mu.Unlock()
			return err
		}
		if sl.Count == 0 {
			b.none = true
			b.mu.Unlock()
			return nil
		}
		for i := range sl.Count {
			b.slots = append(b.slots, sl.First.Add(time.Duration(i)*sl.Interval))
		}
		b.fleet.BudgetRate(b.label, sl.PerMinute)
	}
	at := b.slots[0]
	b.slots = b.slots[1:]
	b.mu.Unlock()
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err()
	}
	b.fleet.BudgetWait(b.label, d)
	return offline.Sleep(ctx, d)
}

// refused lowers the budget for the fleet after a 429 and drops the slots
// this process held (taken at the old rate).
func (b *budget) refused(ctx context.Context, retryAfter time.Duration) {
	b.mu.Lock()
	b.slots = nil
	b.mu.Unlock()
	b.fleet.QuotaRefusal(b.label)
	if err := b.db.LowerBudget(context.WithoutCancel(ctx), b.name, retryAfter); err != nil {
		// The next slots come at the old rate; the next 429 tries again.
		b.log.Warn("cannot lower the shared budget after a 429", "budget", b.name, "error", err)
	}
}

// jobState is what the budget tells a user's job through its context.
type jobState struct {
	waitedForBudget atomic.Bool
}

type jobStateKey struct{}

func withJobState(ctx context.Context) (context.Context, *jobState) {
	st := &jobState{}
	return context.WithValue(ctx, jobStateKey{}, st), st
}

func jobStateOf(ctx context.Context) *jobState {
	st, _ := ctx.Value(jobStateKey{}).(*jobState)
	return st
}
