package auth_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"example.com/signin/internal/auth"
	"example.com/signin/internal/auth/authtest"
	"example.com/signin/internal/metrics"
	"example.com/signin/internal/metrics/metricstest"
)

// Each call to Google is counted once, with its outcome from the error
// vocabulary; calls refused before Google is asked are not counted.
func TestGoogleCallsAreCounted(t *testing.T) {
	status := http.StatusOK
	f := newFakeGoogle(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case status == http.StatusOK && r.URL.Path == "/revoke":
			answer(http.StatusOK, "application/json", `{}`)(w, r)
		case status == http.StatusOK:
			answer(http.StatusOK, "application/json", tokenAnswer)(w, r)
		case status == http.StatusBadRequest:
			answer(status, "application/json", `{"error":"invalid_grant"}`)(w, r)
		default:
			answer(status, "application/json", `{"error":"backend_error"}`)(w, r)
		}
	})
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	g, _ := newGoogle(t, f, func(c *auth.GoogleConfig) { c.Metrics = m })

	ctx := context.Background()
	g.Exchange(ctx, testCode)
	g.Exchange(ctx, "") // refused here: not counted
	g.Refresh(ctx, "1//refresh")
	g.Refresh(ctx, "") // refused here: not counted
	g.Revoke(ctx, "1//refresh")
	status = http.StatusBadRequest
	g.Exchange(ctx, testCode)
	g.Refresh(ctx, "1//refresh")
	status = http.StatusServiceUnavailable
	g.Exchange(ctx, testCode)
	g.Revoke(ctx, "1//refresh")
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	g.Refresh(cancelled, "1//refresh")

	fams := metricstest.Gather(t, reg)
	for _, tc := range []struct {
		name, outcome string
		want          float64
	}{
		{"signin_code_exchanges_total", "ok", 1},
		{"signin_code_exchanges_total", "invalid_grant", 1},
		{"signin_code_exchanges_total", "google_unavailable", 1},
		{"signin_token_refreshes_total", "ok", 1},
		{"signin_token_refreshes_total", "invalid_grant", 1},
		{"signin_token_refreshes_total", "canceled", 1},
		{"signin_revocations_total", "ok", 1},
		{"signin_revocations_total", "google_unavailable", 1},
	} {
		if got := fams.Value(tc.name, "outcome", tc.outcome); got != tc.want {
			t.Errorf("%s{outcome=%q} = %v, want %v; series %v", tc.name, tc.outcome, got, tc.want, fams.Series(tc.name))
		}
	}
	for name, want := range map[string]float64{"signin_code_exchanges_total": 3, "signin_token_refreshes_total": 3, "signin_revocations_total": 2} {
		if got := fams.Value(name); got != want {
			t.Errorf("%s = %v in all, want %v; series %v", name, got, want, fams.Series(name))
		}
	}
}

// FailedEndpoint names the endpoint behind an error, and Google's code.
func TestFailedEndpoint(t *testing.T) {
	f := newFakeGoogle(t, answer(http.StatusServiceUnavailable, "application/json", `{"error":"backend_error"}`))
	g, _ := newGoogle(t, f)
	_, err := g.Exchange(context.Background(), testCode)
	if ep, code := auth.FailedEndpoint(err); ep != auth.EndpointToken || code != "backend_error" {
		t.Errorf("exchange: FailedEndpoint = %q, %q", ep, code)
	}
	err = g.Revoke(context.Background(), "1//refresh")
	if ep, code := auth.FailedEndpoint(err); ep != auth.EndpointRevoke || code != "backend_error" {
		t.Errorf("revoke: FailedEndpoint = %q, %q (%v)", ep, code, err)
	}
	iss := authtest.NewIssuer(t)
	iss.SetStatus(http.StatusInternalServerError)
	_, err = newVerifier(t, iss).Verify(context.Background(), iss.Token(webID, testSub), "")
	if ep, _ := auth.FailedEndpoint(err); ep != auth.EndpointCerts {
		t.Errorf("verify: FailedEndpoint = %q (%v)", ep, err)
	}
}

// Key fetches and the verified-token cache are counted.
func TestVerifierIsCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	iss := authtest.NewIssuer(t)
	v := newVerifier(t, iss, func(c *auth.VerifierConfig) { c.Metrics = m })
	tok := iss.Token(webID, testSub)
	for range 3 {
		if _, err := v.VerifyCached(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	fams := metricstest.Gather(t, reg)
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"signin_key_fetches_total", []string{"outcome", "ok"}, 1},
		{"signin_verified_token_cache_requests_total", []string{"result", "miss"}, 1},
		{"signin_verified_token_cache_requests_total", []string{"result", "hit"}, 2},
	} {
		if got := fams.Value(tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
}

// Refusal says why a token was refused, from a closed set.
func TestRefusal(t *testing.T) {
	iss := authtest.NewIssuer(t)
	v := newVerifier(t, iss)
	with := func(change func(map[string]any)) string {
		c := authtest.Claims(webID, testSub)
		change(c)
		return iss.Sign(nil, c)
	}
	now := time.Now().Unix()
	good := iss.Token(webID, testSub)
	for _, tc := range []struct {
		name, token, want string
	}{
		{"valid", good, ""},
		{"expired", with(func(c map[string]any) { c["iat"], c["exp"] = now-7200, now-3600 }), auth.RefusedExpired},
		{"wrong audience", with(func(c map[string]any) { c["aud"], c["azp"] = otherID, otherID }), auth.RefusedAudience},
		{"clock skew", with(func(c map[string]any) { c["iat"], c["exp"] = now+600, now+4200 }), auth.RefusedClockSkew},
		{"issuer", with(func(c map[string]any) { c["iss"] = "https://evil.example" }), auth.RefusedIssuer},
		{"signature", good[:len(good)-8] + "AAAAAAAA", auth.RefusedSignature},
		{"malformed", "not.a.token", auth.RefusedOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tc.token, "")
			if got := auth.Refusal(err); got != tc.want {
				t.Errorf("Refusal(%v) = %q, want %q", err, got, tc.want)
			}
		})
	}
}
