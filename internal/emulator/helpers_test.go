package emulator_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"example.com/signin/internal/emulator"
)

const (
	demoID     = emulator.DemoClientID
	demoSecret = emulator.DemoClientSecret
	adaSub     = "107351908233017426134"
	graceSub   = "114812093760385312027"
)

// env is an emulator served over real HTTP.
type env struct {
	emu *emulator.Emulator
	srv *httptest.Server
}

func newEnv(t *testing.T, cfg emulator.Config) *env {
	t.Helper()
	emu, err := emulator.New(cfg)
	if err != nil {
		t.Fatalf("emulator.New: %v", err)
	}
	srv := httptest.NewServer(emu.Handler())
	t.Cleanup(func() {
		srv.Close()
		if err := emu.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &env{emu: emu, srv: srv}
}

func newServer(emu *emulator.Emulator) *httptest.Server { return httptest.NewServer(emu.Handler()) }

func (e *env) url(path string) string { return e.srv.URL + path }

// response is a decoded JSON answer.
type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r response) str(key string) string {
	s, _ := r.body[key].(string)
	return s
}

func do(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", req.URL, err)
	}
	out := response{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &out.body); err != nil {
			t.Fatalf("%s %s: body is not a JSON object: %v\n%s", req.Method, req.URL, err, b)
		}
	}
	return out
}

func (e *env) postForm(t *testing.T, path string, form url.Values) response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url(path), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, req)
}

func (e *env) get(t *testing.T, path string, bearer string) response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.url(path), nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return do(t, req)
}

func (e *env) postJSON(t *testing.T, path string, body any) response {
	t.Helper()
	var r io.Reader = http.NoBody
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(http.MethodPost, e.url(path), r)
	req.Header.Set("Content-Type", "application/json")
	return do(t, req)
}

// exchange redeems a code at /token with the demo client.
func (e *env) exchange(t *testing.T, code, redirectURI string) response {
	t.Helper()
	return e.postForm(t, "/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI},
		"client_id": {demoID}, "client_secret": {demoSecret},
	})
}

func (e *env) refresh(t *testing.T, refreshToken string) response {
	t.Helper()
	return e.postForm(t, "/token", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {refreshToken},
		"client_id": {demoID}, "client_secret": {demoSecret},
	})
}

func (e *env) people(t *testing.T, accessToken string) response {
	t.Helper()
	return e.get(t, "/v1/people/me?personFields=names,emailAddresses,photos", accessToken)
}

// mint issues a popup code for Ada.
func (e *env) mint(t *testing.T, r emulator.CodeRequest) string {
	t.Helper()
	if r.ClientID == "" {
		r.ClientID = demoID
	}
	if r.Sub == "" && r.Email == "" {
		r.Sub = adaSub
	}
	code, err := e.emu.MintCode(r)
	if err != nil {
		t.Fatalf("MintCode: %v", err)
	}
	return code
}

// offlineTokens mints an offline code for Ada and exchanges it.
func (e *env) offlineTokens(t *testing.T) response {
	t.Helper()
	r := e.exchange(t, e.mint(t, emulator.CodeRequest{AccessType: "offline"}), "postmessage")
	if r.status != http.StatusOK || r.str("refresh_token") == "" {
		t.Fatalf("offline exchange: %d %s", r.status, r.raw)
	}
	return r
}

func wantOAuthError(t *testing.T, r response, status int, code, description string) {
	t.Helper()
	if r.status != status || r.str("error") != code || (description != "" && r.str("error_description") != description) {
		t.Errorf("got %d %s\nwant %d {error:%q error_description:%q}", r.status, r.raw, status, code, description)
	}
}

// claims decodes a JWT's payload without verifying it.
func claims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	return m
}

func jwtHeader(t *testing.T, jwt string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(jwt, ".")[0])
	if err != nil {
		t.Fatalf("JWT header: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("JWT header: %v", err)
	}
	return m
}
