package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// MaxClientSecretsSize bounds client_secrets.json. Google's files are well
// under 1 KiB; anything near this size is not one.
const MaxClientSecretsSize = 1 << 20

// Client is this app's Google OAuth client.
type Client struct {
	ID     string
	Secret string
	// JavaScriptOrigins are the origins registered for the client, from the
	// file (informational: Google enforces them, not us).
	JavaScriptOrigins []string
}

// clientFile is the inner object of Google's downloaded client file. Only
// the fields we use are decoded; auth_uri and token_uri are ignored on
// purpose, because where Google is is googlenet's decision, not the file's.
type clientFile struct {
	ClientID          string   `json:"client_id"`
	ClientSecret      string   `json:"client_secret"`
	RedirectURIs      []string `json:"redirect_uris"`
	JavaScriptOrigins []string `json:"javascript_origins"`
}

// errInstalledClient refuses a Desktop app client: Google lets only a Web
// application client sign users in on a web page (JavaScript origins, the
// popup's postmessage code exchange), so it would fail at the first
// sign-in, with an error from Google that says little.
var errInstalledClient = errors.New(`this is a Desktop app ("installed") client, which cannot sign users in on a web page. ` +
	`In the Google Cloud console (https://console.cloud.google.com/apis/credentials): ` +
	`Create credentials → OAuth client ID → Application type "Web application"; ` +
	`under "Authorized JavaScript origins" add http://localhost and http://localhost:9021; ` +
	`create it, download its JSON and save it as client_secrets.json (see README.md, "Use a real Google client")`)

// ParseClientSecrets parses a client_secrets.json downloaded from the Google
// Cloud console: {"web": {...}}. A Desktop app client ({"installed": ...})
// is refused with the steps to create a Web application one. An empty or
// missing "redirect_uris" is accepted, since that is how a popup-only client is
// registered (google.ConfigFromJSON refuses it). Errors never contain the
// client secret, or any other value from the file.
func ParseClientSecrets(data []byte) (*Client, error) {
	if len(data) > MaxClientSecretsSize {
		return nil, fmt.Errorf("larger than %d bytes: not a Google client secrets file", MaxClientSecretsSize)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("empty file: want Google's client secrets JSON")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		// json.SyntaxError and UnmarshalTypeError name positions and types,
		// never the content, so the secret cannot leak through them.
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	var kind string
	var raw json.RawMessage
	for _, k := range []string{"web", "installed"} {
		if v, ok := top[k]; ok {
			if kind != "" {
				return nil, errors.New(`both "web" and "installed" present: want exactly one client`)
			}
			kind, raw = k, v
		}
	}
	if kind == "" {
		_, key := top["private_key"]
		_, typ := top["type"]
		if key || typ {
			return nil, errors.New(`this looks like a service account key, not an OAuth client: download the OAuth 2.0 Client ID JSON (type "Web application") from the Cloud console`)
		}
		return nil, errors.New(`no "web" or "installed" object: not a Google OAuth client file`)
	}
	if kind == "installed" {
		return nil, errInstalledClient
	}
	var cf clientFile
	if err := json.Unmarshal(raw, &cf); err != nil {
		return nil, fmt.Errorf("%q: %w", kind, err)
	}
	c := &Client{
		ID:     strings.TrimSpace(cf.ClientID),
		Secret: strings.TrimSpace(cf.ClientSecret),
	}
	if c.ID == "" {
		return nil, fmt.Errorf(`%q.client_id is missing or empty`, kind)
	}
	if c.Secret == "" {
		return nil, fmt.Errorf(`%q.client_secret is missing or empty`, kind)
	}
	if !printable(c.ID) {
		return nil, fmt.Errorf(`%q.client_id has characters a Google client id never has`, kind)
	}
	if !printable(c.Secret) {
		return nil, fmt.Errorf(`%q.client_secret has characters a Google client secret never has`, kind)
	}
	for _, o := range cf.JavaScriptOrigins {
		if o = strings.TrimSpace(o); o != "" {
			c.JavaScriptOrigins = append(c.JavaScriptOrigins, o)
		}
	}
	return c, nil
}

// LoadClientSecrets reads and parses the client file at path. Errors name
// the file; a missing file's error satisfies errors.Is(err, fs.ErrNotExist).
func LoadClientSecrets(path string) (*Client, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("client secrets: %w", err) // *PathError names the file
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxClientSecretsSize+1))
	if err != nil {
		return nil, fmt.Errorf("client secrets %s: %w", path, err)
	}
	c, err := ParseClientSecrets(data)
	if err != nil {
		return nil, fmt.Errorf("client secrets %s: %w", path, err)
	}
	return c, nil
}

// printable reports whether s is printable ASCII without spaces, as Google's
// client ids and secrets are.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
