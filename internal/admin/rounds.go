package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"example.com/signin/internal/store/postgres"
	"example.com/signin/internal/wiring"
)

// roundJSON is a round as "signin-admin rounds -json" prints it, one
// object a line.
type roundJSON struct {
	Key      string     `json:"key"`
	Users    int        `json:"users"`
	Done     int        `json:"done"`
	Failed   int        `json:"failed"`
	Waiting  int        `json:"waiting"`
	Open     bool       `json:"open"`
	Started  time.Time  `json:"started"`
	Finished *time.Time `json:"finished,omitempty"`
	// ETA is when an open round should end at the pace it kept so far.
	ETA *time.Time `json:"eta,omitempty"`
}

func viewRound(r postgres.Round, now time.Time) roundJSON {
	v := roundJSON{Key: r.Key, Users: r.Users, Done: r.Done, Failed: r.Failed, Waiting: r.Waiting(), Open: r.Open, Started: r.StartedAt.UTC()}
	switch {
	case !r.Open:
		f := r.FinishedAt.UTC()
		v.Finished = &f
	case r.Done+r.Failed > 0 && now.After(r.StartedAt):
		per := now.Sub(r.StartedAt) / time.Duration(r.Done+r.Failed)
		eta := now.Add(per * time.Duration(v.Waiting)).UTC().Truncate(time.Second)
		v.ETA = &eta
	}
	return v
}

// rounds lists offline-fetch's most recent rounds, newest first.
func (c *command) rounds(ctx context.Context, e *wiring.Parts) error {
	if e.DB == nil {
		return usageError(fmt.Errorf("rounds: -database is required"))
	}
	rs, err := e.DB.RecentRounds(ctx, c.limit)
	if err != nil {
		return err
	}
	now := time.Now()
	if c.json {
		enc := json.NewEncoder(c.stdout)
		for _, r := range rs {
			if err := enc.Encode(viewRound(r, now)); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tUSERS\tDONE\tFAILED\tWAITING\tSTARTED\tFINISHED / ETA")
	for _, r := range rs {
		v := viewRound(r, now)
		end := "-"
		switch {
		case v.Finished != nil:
			end = v.Finished.Format(time.RFC3339)
		case v.ETA != nil:
			end = "eta " + v.ETA.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\n", clean(v.Key), v.Users, v.Done, v.Failed, v.Waiting, v.Started.Format(time.RFC3339), end)
	}
	return tw.Flush()
}
