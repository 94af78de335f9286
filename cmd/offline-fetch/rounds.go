package main

import "errors"

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
	}
	return nil
}
