package auth_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"example.com/signin/internal/auth"
)

const secretInFile = "GOCSPX-Xy12abcDEF34ghiJKL56mnoPQR"

const webClientFile = `{"web":{"client_id":"1234-web.apps.googleusercontent.com","project_id":"signin-demo",
"auth_uri":"https://accounts.google.com/o/oauth2/auth","token_uri":"https://oauth2.googleapis.com/token",
"auth_provider_x509_cert_url":"https://www.googleapis.com/oauth2/v1/certs",
"client_secret":"` + secretInFile + `","javascript_origins":["http://localhost","http://localhost:9021"]}}`

func TestParseClientSecrets(t *testing.T) {
	for _, tc := range []struct {
		name    string
		data    string
		id      string
		origins []string
		wantErr string // substring of the error; empty: success
	}{
		{name: "web, no redirect_uris", data: webClientFile, id: webID, origins: []string{"http://localhost", "http://localhost:9021"}},
		{name: "web, empty redirect_uris", data: `{"web":{"client_id":"a","client_secret":"` + secretInFile + `","redirect_uris":[]}}`, id: "a"},
		{name: "web, with redirect_uris", data: `{"web":{"client_id":"a","client_secret":"` + secretInFile + `","redirect_uris":["http://localhost:9021/cb"]}}`, id: "a"},
		// A Desktop app client cannot sign in on a web page: refused, with
		// the steps to make the right one.
		{name: "installed", data: `{"installed":{"client_id":"b","client_secret":"` + secretInFile + `","redirect_uris":["http://localhost"]}}`, wantErr: `Create credentials → OAuth client ID → Application type "Web application"`},
		{name: "surrounding spaces trimmed", data: `{"web":{"client_id":" a\n","client_secret":" ` + secretInFile + `\n"}}`, id: "a"},
		{name: "missing client_id", data: `{"web":{"client_secret":"` + secretInFile + `"}}`, wantErr: `"web".client_id is missing`},
		{name: "empty client_id", data: `{"web":{"client_id":"","client_secret":"` + secretInFile + `"}}`, wantErr: `"web".client_id is missing`},
		{name: "missing client_secret", data: `{"web":{"client_id":"a"}}`, wantErr: `"web".client_secret is missing`},
		{name: "client_secret not a string", data: `{"web":{"client_id":"a","client_secret":12345678901234567890}}`, wantErr: `"web"`},
		{name: "secret with a control character", data: `{"web":{"client_id":"a","client_secret":"` + secretInFile + `\u0000"}}`, wantErr: "client_secret has characters"},
		{name: "not JSON", data: `client_id=a client_secret=` + secretInFile, wantErr: "not a JSON object"},
		{name: "truncated JSON", data: webClientFile[:len(webClientFile)-10], wantErr: "not a JSON object"},
		{name: "JSON array", data: `[` + webClientFile + `]`, wantErr: "not a JSON object"},
		{name: "empty", data: " \n", wantErr: "empty file"},
		{name: "unknown shape", data: `{"client_id":"a","client_secret":"` + secretInFile + `"}`, wantErr: `no "web" or "installed"`},
		{name: "service account key", data: `{"type":"service_account","private_key":"` + secretInFile + `"}`, wantErr: "service account"},
		{name: "both web and installed", data: `{"web":{"client_id":"a","client_secret":"x"},"installed":{"client_id":"a","client_secret":"` + secretInFile + `"}}`, wantErr: "both"},
		{name: "web not an object", data: `{"web":"` + secretInFile + `"}`, wantErr: `"web"`},
		{name: "too large", data: `{"web":{"client_id":"a","client_secret":"` + secretInFile + `","pad":"` + strings.Repeat("x", auth.MaxClientSecretsSize) + `"}}`, wantErr: "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := auth.ParseClientSecrets([]byte(tc.data))
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("parsed: %+v", c)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %q does not say %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), secretInFile) {
					t.Errorf("the secret is in the error: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseClientSecrets: %v", err)
			}
			if c.ID != tc.id || c.Secret != secretInFile || !slices.Equal(c.JavaScriptOrigins, tc.origins) {
				t.Errorf("client %+v", c)
			}
		})
	}
}

func TestLoadClientSecrets(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "client_secrets.json")
	if err := os.WriteFile(good, []byte(webClientFile), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := auth.LoadClientSecrets(good)
	if err != nil || c.ID != webID || c.Secret != secretInFile {
		t.Fatalf("LoadClientSecrets = %+v, %v", c, err)
	}

	missing := filepath.Join(dir, "nope.json")
	_, err = auth.LoadClientSecrets(missing)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v (want fs.ErrNotExist naming the file)", err)
	}

	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"web":{"client_secret":"`+secretInFile+`"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = auth.LoadClientSecrets(bad)
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "client_id") || strings.Contains(err.Error(), secretInFile) {
		t.Errorf("bad file: %v (want the file and the field named, and no secret)", err)
	}
}

func FuzzParseClientSecrets(f *testing.F) {
	for _, seed := range []string{
		webClientFile,
		`{"web":{"client_id":"a","client_secret":"b","redirect_uris":[]}}`,
		`{"installed":{"client_id":"a","client_secret":"b","redirect_uris":["http://localhost"]}}`,
		`{"web":{"client_id":"a"}}`,
		`{"type":"service_account","private_key":"x"}`,
		`{"web":null}`,
		`{"web":{"client_id":1}}`,
		`[]`, `null`, `""`, `{}`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := auth.ParseClientSecrets(data)
		if err == nil {
			if c.ID == "" || c.Secret == "" {
				t.Fatalf("accepted a client without id or secret: %+v", c)
			}
			return
		}
		// The error must not quote a secret the file holds. Only secrets
		// that cannot be mistaken for the error's own words are checked.
		for _, kind := range []string{"web", "installed"} {
			var file map[string]struct {
				Secret string `json:"client_secret"`
			}
			if json.Unmarshal(data, &file) != nil {
				return
			}
			s := file[kind].Secret
			if len(s) >= 12 && strings.ContainsAny(s, "0123456789") && !strings.ContainsAny(s, " \"'") && strings.Contains(err.Error(), s) {
				t.Fatalf("the error quotes the secret %q: %v", s, err)
			}
		}
	})
}
