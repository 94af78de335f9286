package main

import "errors"

// sharesRounds: with a database, every user is done in a round shared
// with the other offline-fetch processes on the same database (package
// rounds); one user (-user) is done here, as without a database.
func sharesRounds(cfg Config) bool { return cfg.Database != "" && cfg.User == "" }

// checkRoundFlags checks -every and -job-timeout.
func checkRoundFlags(cfg Config) error {
	switch {
	case cfg.Every < 0:
		return errors.New("-every: want a positive interval")
	case cfg.Every > 0 && cfg.Database == "":
		return errors.New("-every needs -database (or DATABASE_URL): the workers share their rounds through it")
	case cfg.Every > 0 && cfg.User != "":
		return errors.New("-every and -user: a round is every user")
	case cfg.JobTimeout <= 0:
		return errors.New("-job-timeout: want a positive duration")
	}
	return nil
}
