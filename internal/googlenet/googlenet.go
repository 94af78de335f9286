// Package googlenet decides where the app's Google traffic goes. It builds
// the one *http.Client used for every outbound Google call (token exchange
// and refresh, revocation, signing keys, People API) and the URLs the
// browser loads (the GIS script, the People API for the client-side flow).
//
// Everything else in the app uses Google's real URLs. When an emulator is
// configured (package config reads GOOGLE_EMULATOR_HOST=host:port, or picks
// the demo's address), the client's transport sends requests for Google's
// hosts to http://host:port with the same path, and the browser URLs point
// there too. This is the only package that routes anything to the emulator;
// no other package's code depends on whether Google is emulated.
package googlenet

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// EnvEmulatorHost names the environment variable that points every Google
// call at an emulator ("host:port").
const EnvEmulatorHost = "GOOGLE_EMULATOR_HOST"

// Google's endpoints, as the app uses them. With an emulator these same URLs
// are routed to it by the client's transport.
const (
	AuthURL   = "https://accounts.google.com/o/oauth2/v2/auth"
	TokenURL  = "https://oauth2.googleapis.com/token"
	RevokeURL = "https://oauth2.googleapis.com/revoke"
	CertsURL  = "https://www.googleapis.com/oauth2/v3/certs"
	PeopleURL = "https://people.googleapis.com/"
	GISURL    = "https://accounts.google.com/gsi/client"
	Issuer    = "https://accounts.google.com"

	RISCConfigURL = "https://accounts.google.com/.well-known/risc-configuration"
)

// googleHosts are the hosts routed to the emulator. The emulator serves all
// their paths from one base URL, since Google's paths do not overlap.
var googleHosts = map[string]bool{
	"accounts.google.com":          true,
	"oauth2.googleapis.com":        true,
	"www.googleapis.com":           true,
	"people.googleapis.com":        true,
	"openidconnect.googleapis.com": true,
}

// Net is where Google is: the real one, or an emulator.
type Net struct {
	emulator string // host:port, empty for Google
	client   *http.Client
}

// Options tune the outbound HTTP client.
type Options struct {
	// Timeout bounds each outbound request, including reading the body.
	// Zero means 15 seconds.
	Timeout time.Duration
	// Transport is the base transport; nil means a clone of
	// http.DefaultTransport. Tests inject fault-making transports here.
	Transport http.RoundTripper
}

// New returns a Net that talks to Google, or to the emulator at
// emulatorHost ("host:port") when it is not empty.
func New(emulatorHost string, opts Options) (*Net, error) {
	if emulatorHost != "" {
		if err := checkHostPort(emulatorHost); err != nil {
			return nil, fmt.Errorf("%s=%q: %w", EnvEmulatorHost, emulatorHost, err)
		}
	}
	if opts.Timeout == 0 {
		opts.Timeout = 15 * time.Second
	}
	base := opts.Transport
	if base == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		t.ResponseHeaderTimeout = opts.Timeout
		base = t
	}
	var rt http.RoundTripper = base
	if emulatorHost != "" {
		rt = &emulatorTransport{host: emulatorHost, base: base}
	}
	return &Net{
		emulator: emulatorHost,
		client:   &http.Client{Transport: rt, Timeout: opts.Timeout},
	}, nil
}

func checkHostPort(hp string) error {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return fmt.Errorf("want host:port: %w", err)
	}
	if host == "" || strings.ContainsAny(host, "/@?#") {
		return fmt.Errorf("want host:port, got something else")
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return fmt.Errorf("want host:port: bad port %q", port)
	}
	return nil
}

// HTTPClient returns the client for every outbound Google call. It is safe
// for concurrent use and must not be modified.
func (n *Net) HTTPClient() *http.Client { return n.client }

// Emulated reports whether Google calls go to an emulator.
func (n *Net) Emulated() bool { return n.emulator != "" }

// EmulatorHost returns the emulator's host:port, or "" for Google.
func (n *Net) EmulatorHost() string { return n.emulator }

// BrowserURL returns the URL a browser should load for one of Google's
// URLs above: the same URL for Google, the emulator's for an emulator.
func (n *Net) BrowserURL(googleURL string) string {
	if n.emulator == "" {
		return googleURL
	}
	i := strings.Index(googleURL, "://")
	rest := googleURL[i+3:]
	path := "/"
	if j := strings.IndexByte(rest, '/'); j >= 0 {
		path = rest[j:]
	}
	return "http://" + n.emulator + path
}

// GISScriptURL is the URL of the Google Identity Services script.
func (n *Net) GISScriptURL() string { return n.BrowserURL(GISURL) }

// PeopleAPIBase is the People API base URL for JavaScript in the page
// (with a trailing slash).
func (n *Net) PeopleAPIBase() string { return n.BrowserURL(PeopleURL) }

// BrowserOrigins returns the origins the pages' Content-Security-Policy must
// allow for GIS: scripts, frames, popups and fetches.
func (n *Net) BrowserOrigins() Origins {
	if n.emulator != "" {
		o := "http://" + n.emulator
		return Origins{Script: []string{o}, Frame: []string{o}, Connect: []string{o}, Style: []string{o}}
	}
	return Origins{
		Script:  []string{"https://accounts.google.com/gsi/client"},
		Frame:   []string{"https://accounts.google.com/gsi/"},
		Connect: []string{"https://accounts.google.com/gsi/", "https://oauth2.googleapis.com", "https://people.googleapis.com"},
		Style:   []string{"https://accounts.google.com/gsi/style"},
	}
}

// Origins lists CSP sources per directive.
type Origins struct {
	Script, Frame, Connect, Style []string
}

// emulatorTransport sends requests for Google's hosts to the emulator, keeping
// the path and query, and everything else unchanged.
type emulatorTransport struct {
	host string
	base http.RoundTripper
}

func (t *emulatorTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !googleHosts[req.URL.Hostname()] {
		return t.base.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	r.URL.Scheme = "http"
	r.URL.Host = t.host
	r.Host = t.host
	return t.base.RoundTrip(r)
}
