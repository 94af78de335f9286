package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Fleet is what an offline-fetch worker (-database) counts of its rounds
// and of the call budgets it shares with the other processes. A nil
// *Fleet counts nothing.
type Fleet struct {
	rounds      *prometheus.CounterVec
	users       *prometheus.CounterVec
	behind      prometheus.Gauge
	budgetWaits *prometheus.CounterVec
	budgetWait  *prometheus.CounterVec
	refused     *prometheus.CounterVec
	rate        *prometheus.GaugeVec
}

// Round events and user outcomes, the label values of Fleet's counters.
const (
	RoundStarted  = "started"  // this process started it
	RoundFinished = "finished" // this process saw it end
	RoundSkipped  = "skipped"  // the previous round was still running

	UserOK          = "ok"
	UserRevoked     = "revoked"
	UserFailed      = "failed"
	UserSkipped     = "skipped"
	UserRetried     = "retried"     // to be tried again later (Google or the database failing)
	UserQuota       = "quota"       // put back for lack of budget: tried again, never failed for it
	UserInterrupted = "interrupted" // the process stopped
)

// NewFleet creates the fleet's collectors and registers them with reg.
func NewFleet(reg prometheus.Registerer) *Fleet {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	}
	f := &Fleet{
		rounds: counter("rounds_total", "Offline rounds, by event: started by this process, seen finished, skipped (the previous one still running).", "event"),
		users:  counter("round_users_total", "Users' jobs this process ended, by outcome (ok, revoked, failed, skipped, retried, quota, interrupted).", "outcome"),
		behind: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "round_shortfall_seconds",
			Help: "How much longer than its interval the last round started needs at the configured rate (0: it fits)."}),
		budgetWaits: counter("budget_waits_total", "Calls to Google that waited for the shared budget, by budget (people, token).", "budget"),
		budgetWait:  counter("budget_wait_seconds_total", "Time calls to Google waited for the shared budget, by budget.", "budget"),
		refused:     counter("google_quota_refusals_total", "429 answers from Google (quota), by budget: each lowered the fleet's rate.", "budget"),
		rate: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "budget_rate_per_minute",
			Help: "The shared budget's rate in force, by budget: lowered after a 429, recovering to -rate."}, []string{"budget"}),
	}
	reg.MustRegister(f.rounds, f.users, f.behind, f.budgetWaits, f.budgetWait, f.refused, f.rate)
	return f
}

// Round counts a round event.
func (f *Fleet) Round(event string) {
	if f != nil {
		f.rounds.WithLabelValues(event).Inc()
	}
}

// Users counts n users' jobs ended with outcome.
func (f *Fleet) Users(outcome string, n int) {
	if f != nil && n > 0 {
		f.users.WithLabelValues(outcome).Add(float64(n))
	}
}

// Shortfall sets how much longer than its interval a round needs.
func (f *Fleet) Shortfall(d time.Duration) {
	if f != nil {
		f.behind.Set(max(d, 0).Seconds())
	}
}

// BudgetWait counts a call that waited d for budget.
func (f *Fleet) BudgetWait(budget string, d time.Duration) {
	if f != nil && d > 0 {
		f.budgetWaits.WithLabelValues(budget).Inc()
		f.budgetWait.WithLabelValues(budget).Add(d.Seconds())
	}
}

// QuotaRefusal counts a 429 from Google.
func (f *Fleet) QuotaRefusal(budget string) {
	if f != nil {
		f.refused.WithLabelValues(budget).Inc()
	}
}

// BudgetRate sets the shared budget's rate in force.
func (f *Fleet) BudgetRate(budget string, perMinute float64) {
	if f != nil {
		f.rate.WithLabelValues(budget).Set(perMinute)
	}
}
