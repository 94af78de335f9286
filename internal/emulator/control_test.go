package emulator_test

import (
	"net"
	"net/http"
	"strings"
	"testing"

	"example.com/signin/internal/emulator"
)

func TestControlAPI(t *testing.T) {
	e := newEnv(t, emulator.Config{})

	r := e.postJSON(t, "/emulator/v1/users", map[string]string{"email": "mary@example.com", "name": "Mary Jackson", "hd": "example.com"})
	if r.status != 201 || len(r.str("sub")) != 21 || r.str("name") != "Mary Jackson" || r.str("hd") != "example.com" || !strings.HasPrefix(r.str("picture"), e.srv.URL) {
		t.Fatalf("add user: %d %s", r.status, r.raw)
	}
	mary := r.str("sub")
	if r := e.postJSON(t, "/emulator/v1/users", map[string]string{"email": "mary@example.com"}); r.status != 409 || r.str("error") != "already_exists" {
		t.Errorf("duplicate user: %d %s", r.status, r.raw)
	}

	r = e.get(t, "/emulator/v1/users", "")
	if users := r.body["users"].([]any); len(users) != 4 || users[3].(map[string]any)["sub"] != mary {
		t.Errorf("list users: %s", r.raw)
	}

	r = e.postJSON(t, "/emulator/v1/codes", map[string]any{"client_id": demoID, "sub": mary, "scope": "openid email profile", "access_type": "offline", "nonce": "abc"})
	if r.status != 200 || !strings.HasPrefix(r.str("code"), "4/0A") {
		t.Fatalf("mint code: %d %s", r.status, r.raw)
	}
	tok := e.exchange(t, r.str("code"), "postmessage")
	if tok.str("refresh_token") == "" || claims(t, tok.str("id_token"))["nonce"] != "abc" {
		t.Errorf("exchange of a control-API code: %s", tok.raw)
	}

	r = e.postJSON(t, "/emulator/v1/id-tokens", map[string]string{"client_id": demoID, "email": "mary@example.com", "nonce": "n1"})
	if c := claims(t, r.str("credential")); r.status != 200 || c["sub"] != mary || c["nonce"] != "n1" || c["hd"] != "example.com" || c["aud"] != demoID {
		t.Errorf("mint id token: %d %s", r.status, r.raw)
	}

	if r := e.postJSON(t, "/emulator/v1/users/"+mary+"/revoke", nil); r.status != 200 || r.body["revoked_grants"] != float64(1) {
		t.Errorf("revoke user: %d %s", r.status, r.raw)
	}
	wantOAuthError(t, e.refresh(t, tok.str("refresh_token")), 400, "invalid_grant", "Token has been expired or revoked.")

	_, oldKid := e.emu.SigningKey()
	if r := e.postJSON(t, "/emulator/v1/keys/rotate", nil); r.status != 200 || r.str("kid") == "" || r.str("kid") == oldKid {
		t.Errorf("rotate: %d %s", r.status, r.raw)
	}

	if r := e.postJSON(t, "/emulator/v1/faults", map[string]any{"endpoint": "people", "status": 500, "count": 1}); r.status != 200 {
		t.Errorf("fault: %d %s", r.status, r.raw)
	}
	if r := e.get(t, "/v1/people/me?personFields=names", "x"); r.status != 500 {
		t.Errorf("people after fault: %d", r.status)
	}
	if r := e.postJSON(t, "/emulator/v1/latency", map[string]any{"endpoint": "people", "delay": "0s"}); r.status != 200 {
		t.Errorf("latency: %d %s", r.status, r.raw)
	}
	if r := e.postJSON(t, "/emulator/v1/clock", map[string]any{"shift": "1h"}); r.status != 200 || r.str("shift") != "1h0m0s" {
		t.Errorf("clock: %d %s", r.status, r.raw)
	}
	if r := e.postJSON(t, "/emulator/v1/clock", map[string]any{"shift": 1800}); r.str("shift") != "1h30m0s" {
		t.Errorf("clock is not cumulative or numbers are not seconds: %s", r.raw)
	}
	if r := e.postJSON(t, "/emulator/v1/access-token-ttl", map[string]any{"ttl": "30s"}); r.status != 200 || r.str("ttl") != "30s" {
		t.Errorf("ttl: %d %s", r.status, r.raw)
	}

	r = e.get(t, "/emulator/v1/stats", "")
	ep := r.body["endpoints"].(map[string]any)
	people := ep["people"].(map[string]any)
	if people["requests"] != float64(1) || people["status"].(map[string]any)["500"] != float64(1) ||
		r.body["grants"].(map[string]any)["authorization_code"] != float64(1) {
		t.Errorf("stats: %s", r.raw)
	}

	if r := e.postJSON(t, "/emulator/v1/reset", nil); r.status != 200 {
		t.Errorf("reset: %d", r.status)
	}
	if r := e.get(t, "/emulator/v1/users", ""); len(r.body["users"].([]any)) != 3 {
		t.Errorf("users after reset: %s", r.raw)
	}
}

func TestControlAPIRefusesBadInput(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	tests := []struct {
		name, path string
		body       any
		status     int
	}{
		{"user without email", "/emulator/v1/users", map[string]string{"name": "X"}, 400},
		{"unknown field", "/emulator/v1/users", map[string]string{"email": "a@b.example", "mail": "typo"}, 400},
		{"code for unknown user", "/emulator/v1/codes", map[string]string{"client_id": demoID, "sub": "1"}, 404},
		{"code for unknown client", "/emulator/v1/codes", map[string]string{"client_id": "nope", "sub": adaSub}, 404},
		{"code with bad scope", "/emulator/v1/codes", map[string]string{"client_id": demoID, "sub": adaSub, "scope": "openid contacts"}, 400},
		{"code with bad access_type", "/emulator/v1/codes", map[string]string{"client_id": demoID, "sub": adaSub, "access_type": "forever"}, 400},
		{"code with unregistered redirect", "/emulator/v1/codes", map[string]string{"client_id": demoID, "sub": adaSub, "redirect_uri": "https://evil.example/cb"}, 400},
		{"fault for unknown endpoint", "/emulator/v1/faults", map[string]any{"endpoint": "nope", "status": 500}, 400},
		{"fault doing nothing", "/emulator/v1/faults", map[string]any{"endpoint": "token"}, 400},
		{"fault with bad delay", "/emulator/v1/faults", map[string]any{"endpoint": "token", "delay": "soon"}, 400},
		{"latency for unknown endpoint", "/emulator/v1/latency", map[string]any{"endpoint": "nope", "delay": "1s"}, 400},
		{"clock without shift", "/emulator/v1/clock", map[string]any{}, 400},
		{"ttl zero", "/emulator/v1/access-token-ttl", map[string]any{"ttl": 0}, 400},
		{"revoke unknown user", "/emulator/v1/users/123/revoke", nil, 404},
		{"unknown call", "/emulator/v1/nothing", nil, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.postJSON(t, tt.path, tt.body)
			if r.status != tt.status || r.str("error") == "" || r.str("message") == "" {
				t.Errorf("got %d %s, want %d with a JSON error", r.status, r.raw, tt.status)
			}
		})
	}

	t.Run("not JSON", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, e.url("/emulator/v1/users"), strings.NewReader("email=x"))
		if r := do(t, req); r.status != 400 {
			t.Errorf("got %d", r.status)
		}
	})
	t.Run("cross-origin browser", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, e.url("/emulator/v1/reset"), nil)
		req.Header.Set("Origin", "https://evil.example")
		if r := do(t, req); r.status != 403 {
			t.Errorf("got %d, want 403", r.status)
		}
	})
}

// TestControlAPIRefusesOtherHostsAndSites: the control API answers only
// under a loopback host name or address (or a configured one), so a DNS
// rebinding page cannot reach it, and never a cross-site browser request.
// Google's endpoints answer under any host.
func TestControlAPIRefusesOtherHostsAndSites(t *testing.T) {
	e := newEnv(t, emulator.Config{ControlHosts: []string{"emulator.internal", "gw.example:9022"}})
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(e.srv.URL, "http://"))
	tests := []struct {
		name, host string
		header     map[string]string
		want       int
	}{
		{"127.0.0.1", "127.0.0.1:" + port, nil, 200},
		{"localhost", "localhost:" + port, nil, 200},
		{"LOCALHOST, trailing dot", "LOCALHOST.:" + port, nil, 200},
		{"a .localhost name", "emu.localhost:" + port, nil, 200},
		{"other loopback address", "127.0.0.2:" + port, nil, 200},
		{"IPv6 loopback", "[::1]:" + port, nil, 200},
		{"wildcard address", "0.0.0.0:" + port, nil, 200},
		{"configured name, any port", "emulator.internal:" + port, nil, 200},
		{"configured host:port", "gw.example:9022", nil, 200},
		{"configured host:port, other port", "gw.example:" + port, nil, 403},
		{"DNS rebinding", "rebind.example:" + port, map[string]string{"Origin": "http://rebind.example:" + port}, 403},
		{"DNS rebinding, no Origin", "rebind.example:" + port, nil, 403},
		{"LAN address", "192.168.1.20:" + port, nil, 403},
		{"name ending in localhost", "evillocalhost:" + port, nil, 403},
		{"own origin", "127.0.0.1:" + port, map[string]string{"Origin": "http://127.0.0.1:" + port, "Sec-Fetch-Site": "same-origin"}, 200},
		{"typed into the address bar", "localhost:" + port, map[string]string{"Sec-Fetch-Site": "none"}, 200},
		{"other loopback origin", "127.0.0.1:" + port, map[string]string{"Origin": "http://localhost:9021"}, 403},
		{"opaque origin", "127.0.0.1:" + port, map[string]string{"Origin": "null"}, 403},
		{"cross-site without Origin", "127.0.0.1:" + port, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"same-site without Origin", "127.0.0.1:" + port, map[string]string{"Sec-Fetch-Site": "same-site"}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.url("/emulator/v1/id-tokens"), strings.NewReader(`{"client_id":"`+demoID+`","sub":"`+adaSub+`"}`))
			req.Host = tt.host
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			r := do(t, req)
			if r.status != tt.want || (tt.want == 403 && (r.str("error") != "forbidden" || r.str("credential") != "")) {
				t.Errorf("got %d %s, want %d", r.status, r.raw, tt.want)
			}
		})
	}
	// Google's own endpoints are not the control API: any host.
	req, _ := http.NewRequest(http.MethodGet, e.url("/oauth2/v3/certs"), nil)
	req.Host = "www.googleapis.com"
	if r := do(t, req); r.status != 200 {
		t.Errorf("certs under Google's host name: %d", r.status)
	}
}
