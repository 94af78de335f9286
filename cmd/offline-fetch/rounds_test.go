package main

import (
	"io"
	"strings"
	"testing"
)

// TestRoundFlags: -every and -job-timeout are checked before anything
// runs; -every needs a database, and -user is not a round.
func TestRoundFlags(t *testing.T) {
	db := "postgres://u@127.0.0.1:5432/d"
	for _, c := range []struct {
		name    string
		args    []string
		env     string
		wantErr string
		rounds  bool
	}{
		{"no database", nil, "", "", false},
		{"database", []string{"-database", db}, "", "", true},
		{"DATABASE_URL", nil, db, "", true},
		{"one user", []string{"-database", db, "-user", "123"}, "", "", false},
		{"every", []string{"-database", db, "-every", "1h"}, "", "", true},
		{"every without database", []string{"-every", "1h"}, "", "-every needs -database", false},
		{"every and user", []string{"-database", db, "-every", "1h", "-user", "123"}, "", "-every and -user", false},
		{"negative every", []string{"-database", db, "-every", "-1s"}, "", "-every", false},
		{"metrics-addr without every", []string{"-database", db, "-metrics-addr", "127.0.0.1:0"}, "", "-metrics-addr is for a worker", false},
		{"zero job timeout", []string{"-database", db, "-job-timeout", "0"}, "", "-job-timeout", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == "DATABASE_URL" {
					return c.env
				}
				return ""
			}
			cfg, err := ParseFlags(c.args, getenv, io.Discard, io.Discard)
			switch {
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("error %v, want one about %q", err, c.wantErr)
			case c.wantErr == "" && err != nil:
				t.Fatal(err)
			case c.wantErr == "" && sharesRounds(cfg) != c.rounds:
				t.Errorf("shares rounds: %v, want %v", sharesRounds(cfg), c.rounds)
			}
		})
	}
}
