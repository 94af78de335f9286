package emulator_test

import (
	"testing"

	"example.com/signin/internal/emulator"
)

// TestQuota: past a per-minute quota the People API answers Google's 429
// (RESOURCE_EXHAUSTED, ErrorInfo RATE_LIMIT_EXCEEDED, Retry-After) and the
// token endpoint OAuth's rate_limit_exceeded; the refusals are counted in
// the stats; per_minute 0 lifts the quota. A quota of 1 a minute lets one
// request through and refills in 60 s, longer than the test.
func TestQuota(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	tok := e.offlineTokens(t)
	at, rt := tok.str("access_token"), tok.str("refresh_token")

	if r := e.postJSON(t, "/emulator/v1/quota", map[string]any{"endpoint": "people", "per_minute": 1}); r.status != 200 || r.body["per_minute"] != float64(1) {
		t.Fatalf("set quota: %d %s", r.status, r.raw)
	}
	if r := e.people(t, at); r.status != 200 {
		t.Fatalf("first call within the quota: %d %s", r.status, r.raw)
	}
	r := e.people(t, at)
	if r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("past the quota: %d Retry-After %q %s", r.status, r.header.Get("Retry-After"), r.raw)
	}
	body, _ := r.body["error"].(map[string]any)
	details, _ := body["details"].([]any)
	if body["status"] != "RESOURCE_EXHAUSTED" || body["code"] != float64(429) || len(details) != 1 ||
		details[0].(map[string]any)["reason"] != "RATE_LIMIT_EXCEEDED" ||
		details[0].(map[string]any)["@type"] != "type.googleapis.com/google.rpc.ErrorInfo" {
		t.Errorf("429 body: %s", r.raw)
	}

	if r := e.postJSON(t, "/emulator/v1/quota", map[string]any{"endpoint": "token", "per_minute": 1}); r.status != 200 {
		t.Fatalf("set token quota: %d %s", r.status, r.raw)
	}
	if r := e.refresh(t, rt); r.status != 200 {
		t.Fatalf("first refresh: %d %s", r.status, r.raw)
	}
	wantOAuthError(t, e.refresh(t, rt), 429, "rate_limit_exceeded", "Rate Limit Exceeded")

	s := e.emu.Stats()
	if q := s.Quota["people"]; q.PerMinute != 1 || q.Refused != 1 {
		t.Errorf("people quota stats: %+v", q)
	}
	if q := s.Quota["token"]; q.PerMinute != 1 || q.Refused != 1 {
		t.Errorf("token quota stats: %+v", q)
	}
	if got := s.Endpoints["people"].Status[429]; got != 1 {
		t.Errorf("people 429s in the endpoint stats: %d", got)
	}

	if r := e.postJSON(t, "/emulator/v1/quota", map[string]any{"endpoint": "people", "per_minute": 0}); r.status != 200 {
		t.Fatalf("lift quota: %d %s", r.status, r.raw)
	}
	for range 3 {
		if r := e.people(t, at); r.status != 200 {
			t.Errorf("quota lifted: %d %s", r.status, r.raw)
		}
	}
	for _, bad := range []map[string]any{{"endpoint": "certs", "per_minute": 5}, {"endpoint": "people", "per_minute": -1}} {
		if r := e.postJSON(t, "/emulator/v1/quota", bad); r.status != 400 || r.str("error") != "invalid_argument" {
			t.Errorf("quota %v: %d %s", bad, r.status, r.raw)
		}
	}
}
