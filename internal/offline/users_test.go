package offline

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"example.com/signin"
	"example.com/signin/internal/grant"
)

// TestOutcomeRetryable: what a job queue may try again later, and what
// not.
func TestOutcomeRetryable(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"ok", nil, false},
		{"google down", &signin.Error{Kind: signin.EUPSTREAM, Code: "google_unavailable"}, true},
		{"rate limited", &signin.Error{Kind: signin.EUPSTREAM, Code: "rate_limited"}, true},
		{"timeout", &signin.Error{Kind: signin.EUPSTREAM, Code: "timeout"}, true},
		{"database down", &signin.Error{Kind: signin.EUNAVAILABLE, Code: "database_unavailable"}, true},
		{"job deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), true},
		{"refreshed token refused", &signin.Error{Kind: signin.EUPSTREAM, Code: "people_unauthorized"}, false},
		{"revoked", &signin.Error{Kind: signin.ECONFLICT, Code: grant.CodeOfflineAccessRevoked}, false},
		{"no scope", &signin.Error{Kind: signin.EFORBIDDEN, Code: "insufficient_scope"}, false},
		{"gone", &signin.Error{Kind: signin.ENOTFOUND}, false},
		{"other", errors.New("boom"), false},
	} {
		if got := (Outcome{err: c.err}).Retryable(); got != c.want {
			t.Errorf("%s: retryable %v, want %v", c.name, got, c.want)
		}
	}
}
