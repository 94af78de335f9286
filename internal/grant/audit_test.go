package grant_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"example.com/signin/internal/grant"
	"example.com/signin/internal/grant/granttest"
)

// A refresh that brings a new refresh token, and a grant Google refuses,
// are audit events: one info line each, with the sub and never a token.
func TestTokenSourceAuditLines(t *testing.T) {
	var logs bytes.Buffer
	cfg := grant.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	e := newSavingTokenEndpoint(t)
	e.set(func(e *savingTokenEndpoint) { e.newRefresh = "rt-rotated" })
	st := &granttest.Memory{}
	granttest.Put(t, st, granttest.NewRecord(savingSub, time.Now().Add(-time.Hour)))
	if _, err := savingSource(t, e, st, cfg).Token(); err != nil {
		t.Fatal(err)
	}
	e.set(func(e *savingTokenEndpoint) { e.revoked["rt-rotated"] = true })
	granttest.Put(t, st, func() *grant.Record {
		rec, _ := st.Get(t.Context(), savingSub)
		rec.Token.Expiry = time.Now().Add(-time.Minute)
		return rec
	}())
	if _, err := savingSource(t, e, st, cfg).Token(); err == nil {
		t.Fatal("a revoked grant refreshed")
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	want := []string{
		`level=INFO msg=audit event=refresh_token_replaced sub=` + savingSub,
		`level=INFO msg=audit event=grant_revoked_by_google sub=` + savingSub + ` reason="Token has been expired or revoked."`,
	}
	if len(lines) != len(want) {
		t.Fatalf("log lines:\n%s\nwant %d", logs.String(), len(want))
	}
	for i, l := range lines {
		if _, rest, _ := strings.Cut(l, " "); rest != want[i] { // drop time=
			t.Errorf("line %d = %q, want %q", i, rest, want[i])
		}
		if strings.Contains(l, "rt-") {
			t.Errorf("a token in the log: %s", l)
		}
	}
}
