package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// roundsMaxConns is the store's pool with rounds: River's producer,
// completer, notifier and leader (about 8) besides the users' reads and
// writes, as when River had a pool of its own.
const roundsMaxConns = 12

// sharesRounds: with a database, every user is done in a round shared
// with the other offline-fetch processes on the same database (package
// rounds); one user (-user) is done here, as without a database.
func sharesRounds(cfg Config) bool { return cfg.Database != "" && cfg.User == "" }

// checkRoundFlags checks -every, -job-timeout and -metrics-addr.
func checkRoundFlags(cfg Config) error {
	switch {
	case cfg.Every < 0:
		return errors.New("-every: want a positive interval")
	case cfg.Every > 0 && cfg.Database == "":
		return errors.New("-every needs -database (or DATABASE_URL): the workers share their rounds through it")
	case cfg.Every > 0 && cfg.User != "":
		return errors.New("-every and -user: a round is every user")
	case cfg.MetricsAddr != "" && cfg.Every == 0:
		return errors.New("-metrics-addr is for a worker (-every), which runs long enough to be scraped; a one-off run writes -metrics-textfile")
	case cfg.JobTimeout <= 0:
		return errors.New("-job-timeout: want a positive duration")
	case cfg.Spread < 0:
		return errors.New("-spread: want a positive duration, or 0 for none")
	case cfg.Spread > 0 && cfg.Every == 0:
		return errors.New("-spread is for a worker's rounds (-every)")
	case cfg.Spread > 0 && cfg.Spread >= cfg.Every:
		return fmt.Errorf("-spread %v: want less than -every %v, so that a round ends before the next", cfg.Spread, cfg.Every)
	case cfg.Rate > 0 && !sharesRounds(cfg):
		return errors.New("-rate needs -database (or DATABASE_URL) and every user: the processes share the budget through it")
	}
	return nil
}

// rate is a flag of calls a minute: "6000/m", "6000/min", "100/s" or
// "6000" (a minute).
type rate int

func (r *rate) String() string {
	if *r == 0 {
		return ""
	}
	return strconv.Itoa(int(*r)) + "/m"
}

func (r *rate) Set(v string) error {
	n, per, _ := strings.Cut(strings.TrimSpace(v), "/")
	f, err := strconv.ParseFloat(n, 64)
	if err != nil || f <= 0 || math.IsInf(f, 0) {
		return fmt.Errorf("%q: want calls per minute, N/m (e.g. 6000/m)", v)
	}
	switch per {
	case "", "m", "min", "minute":
	case "s", "sec", "second":
		f *= 60
	default:
		return fmt.Errorf("%q: per %q? want N/m or N/s", v, per)
	}
	if f < 1 || f > math.MaxInt32 {
		return fmt.Errorf("%q: want 1 to %d a minute", v, math.MaxInt32)
	}
	*r = rate(math.Round(f))
	return nil
}
