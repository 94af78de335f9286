package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Demo client credentials, as the emulator registers them by default and
// signin uses in demo mode. Written out rather than imported: the tests
// talk to the emulator over HTTP only, as any client of Google would.
const (
	demoClientID     = "000000000000-demo.apps.googleusercontent.com"
	demoClientSecret = "GOCSPX-demo-client-secret"
)

// emulatorClient speaks the emulator's control API (/emulator/v1/) and,
// where a test checks what Google would say, Google's own endpoints.
type emulatorClient struct {
	base string
	hc   *http.Client
}

func newEmulatorClient(base string) *emulatorClient {
	return &emulatorClient{base: base, hc: &http.Client{Timeout: 10 * time.Second}}
}

// emuUser is a test account as the control API lists it.
type emuUser struct {
	Sub     string `json:"sub"`
	Email   string `json:"email"`
	Name    string `json:"name"`
	Picture string `json:"picture"`
}

// do sends a control API request with a JSON body (nil for none) and
// decodes the JSON answer into out (nil to discard it).
func (c *emulatorClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode %s: %w", method, path, data, err)
	}
	return nil
}

// users lists the emulator's test accounts.
func (c *emulatorClient) users(t *testing.T) []emuUser {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var res struct {
		Users []emuUser `json:"users"`
	}
	if err := c.do(ctx, http.MethodGet, "/emulator/v1/users", nil, &res); err != nil {
		t.Fatal(err)
	}
	return res.Users
}

// hasUser reports whether the emulator has an account with email.
func (c *emulatorClient) hasUser(t *testing.T, email string) bool {
	t.Helper()
	for _, u := range c.users(t) {
		if u.Email == email {
			return true
		}
	}
	return false
}

// user returns the emulator's account with email.
func (c *emulatorClient) user(t *testing.T, email string) emuUser {
	t.Helper()
	for _, u := range c.users(t) {
		if u.Email == email {
			return u
		}
	}
	t.Fatalf("the emulator has no account %s", email)
	return emuUser{}
}

// mintIDToken asks the emulator for an ID token for the demo client, as
// the GIS button would hand one to the page.
func (c *emulatorClient) mintIDToken(ctx context.Context, t *testing.T, sub string) string {
	t.Helper()
	var res struct {
		Credential string `json:"credential"`
	}
	req := map[string]string{"client_id": demoClientID, "sub": sub}
	if err := c.do(ctx, http.MethodPost, "/emulator/v1/id-tokens", req, &res); err != nil {
		t.Fatal(err)
	}
	if res.Credential == "" {
		t.Fatal("the emulator minted an empty ID token")
	}
	return res.Credential
}

// refresh tries a refresh grant at the token endpoint, as the server would,
// and returns an error if Google refuses it.
func (c *emulatorClient) refresh(ctx context.Context, refreshToken string) error {
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {refreshToken},
		"client_id":     {demoClientID},
		"client_secret": {demoClientSecret},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Error string `json:"error"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("token endpoint: %s %s", resp.Status, body.Error)
	}
	return nil
}

// emuStats is GET /emulator/v1/stats: counters since the emulator started.
type emuStats struct {
	Endpoints map[string]struct {
		Requests int64 `json:"requests"`
	} `json:"endpoints"`
	Grants      map[string]int64 `json:"grants"`
	Revocations int64            `json:"revocations"`
}

// stats reads the emulator's counters.
func (c *emulatorClient) stats(t *testing.T) emuStats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var st emuStats
	if err := c.do(ctx, http.MethodGet, "/emulator/v1/stats", nil, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// grants is the number of token endpoint grants of a type
// (authorization_code, refresh_token) answered so far.
func (s emuStats) grants(kind string) int64 { return s.Grants[kind] }

// revocations is the number of successful revocations, at /revoke and
// through GIS's revoke.
func (s emuStats) revocations() int64 { return s.Revocations }

// tokenRequests is the number of requests to the token endpoint.
func (s emuStats) tokenRequests() int64 { return s.Endpoints["token"].Requests }

// peopleRequests is the number of People API requests.
func (s emuStats) peopleRequests() int64 { return s.Endpoints["people"].Requests }
