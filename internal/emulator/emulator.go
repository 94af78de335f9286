package emulator

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The demo client: what the emulator knows when Config.Clients is nil, and
// what the app uses in demo mode.
const (
	DemoClientID     = "000000000000-demo.apps.googleusercontent.com"
	DemoClientSecret = "GOCSPX-demo-client-secret"
)

// Issuer is the iss claim of every ID token, as Google's. The emulator never
// claims another issuer, so an app that checks iss strictly works unchanged.
const Issuer = "https://accounts.google.com"

// Endpoint names, for faults, latency and statistics.
const (
	EndpointDiscovery = "discovery" // GET /.well-known/openid-configuration
	EndpointAuth      = "auth"      // /o/oauth2/v2/auth and /o/oauth2/auth (the account chooser and consent pages)
	EndpointToken     = "token"     // POST /token
	EndpointRevoke    = "revoke"    // POST /revoke
	EndpointCerts     = "certs"     // GET /oauth2/v3/certs (JWKS) and /oauth2/v1/certs (PEM)
	EndpointTokenInfo = "tokeninfo" // /tokeninfo and /oauth2/v3/tokeninfo
	EndpointPeople    = "people"    // GET /v1/people/me and /v1/people/me/connections
	EndpointGSI       = "gsi"       // /gsi/client, /gsi/style, /gsi/select, /gsi/revoke
	EndpointUserInfo  = "userinfo"  // /v1/userinfo and /oauth2/v3/userinfo
	EndpointRISC      = "risc"      // GET /.well-known/risc-configuration
)

// endpointNames lists every endpoint a fault or latency may name.
var endpointNames = []string{
	EndpointDiscovery, EndpointAuth, EndpointToken, EndpointRevoke, EndpointCerts,
	EndpointTokenInfo, EndpointPeople, EndpointGSI, EndpointUserInfo, EndpointRISC,
}

func knownEndpoint(name string) bool {
	for _, n := range endpointNames {
		if n == name {
			return true
		}
	}
	return false
}

// Client is an OAuth client registered with the emulator, as in Google
// Cloud's client_secrets.json ("web" client).
type Client struct {
	ID     string
	Secret string
	// JavaScriptOrigins are the origins allowed to open the popup flows
	// (GIS). Empty means any http origin on a loopback host (localhost,
	// 127.0.0.1, [::1]), which suits the demo; Google itself would refuse.
	JavaScriptOrigins []string
	// RedirectURIs are the registered redirect URIs for redirect-mode flows
	// (including GIS login_uri). Empty means any http(s) URI on a loopback
	// host, for the same reason. The popup value "postmessage" is always
	// accepted, as Google does for web clients.
	RedirectURIs []string
}

// User is a test Google account.
type User struct {
	Sub          string `json:"sub"` // Google's stable id: 21 digits when generated
	Email        string `json:"email"`
	Name         string `json:"name,omitempty"`
	GivenName    string `json:"given_name,omitempty"`
	FamilyName   string `json:"family_name,omitempty"`
	Picture      string `json:"picture,omitempty"` // empty: an avatar served by the emulator
	HostedDomain string `json:"hd,omitempty"`      // Workspace domain; empty for consumer accounts
}

// Config configures an Emulator. The zero value is a working demo.
type Config struct {
	// Clients are the registered OAuth clients; nil means just the demo
	// client (DemoClientID, DemoClientSecret).
	Clients []Client
	// Users are the test accounts; nil means three demo users.
	Users []User
	// AccessTokenTTL is the lifetime of access tokens; 0 means 3599s, as
	// Google.
	AccessTokenTTL time.Duration
	// KeyMaxAge is the max-age the key sets (/oauth2/v3/certs and
	// /oauth2/v1/certs) are served with; 0 means 6 hours, about what Google
	// sends.
	KeyMaxAge time.Duration
	// KeySigningDelay is how long after RotateKey publishes a new key it
	// starts signing; 0 means KeyMaxAge, the least that lets every key set
	// cached under max-age hold the key before a token it signed arrives.
	KeySigningDelay time.Duration
	// KeyRetireAfter is how long a replaced key stays published once its
	// successor signs; 0 means the ID token lifetime (1 hour) plus
	// KeyMaxAge, so tokens it signed verify until they expire.
	KeyRetireAfter time.Duration
	// ControlHosts are host names (or host:port) besides loopback ones
	// under which the control API answers, such as the address the
	// emulator listens on. Any other Host header is refused, which defeats
	// DNS rebinding.
	ControlHosts []string
	// RISCMaxAttempts bounds the POSTs of one security event token to a
	// receiver; 0 means 5.
	RISCMaxAttempts int
	// RISCRetryBackoff is the wait before the first retry of a security
	// event delivery; it doubles for each further one. 0 means 500ms.
	RISCRetryBackoff time.Duration
	// StateFile, when set, is where users, grants, tokens and signing keys
	// are kept (JSON, mode 0600), so a demo survives restarts. Call Close
	// to flush it.
	StateFile string
	// RevokeOnCodeReuse makes a second exchange of a code also revoke the
	// tokens the first one issued, as RFC 6749 section 4.1.2 recommends.
	// Off by default: Google answers "Code was already redeemed." and, as
	// far as public reports show, leaves the grant alone. Turn it on to
	// check that an app survives the stricter servers.
	RevokeOnCodeReuse bool
	// Quotas are per-minute limits on the People API and the token
	// endpoint (see Quota), as a project's; SetQuota changes them.
	Quotas []Quota
	// Logger receives the emulator's logs; nil discards them. No token,
	// code or secret is ever logged.
	Logger *slog.Logger
	// Now is the clock ShiftClock moves; nil is the wall clock. A test
	// that checks a time to the second (a key that must not sign one
	// second before its time) gives a clock that stands still, so that a
	// slow machine cannot move it.
	Now func() time.Time
}

// DefaultUsers returns the demo test accounts used when Config.Users is nil.
// Their subs are fixed so that a demo's stored credentials stay valid across
// restarts.
func DefaultUsers() []User {
	return []User{
		{Sub: "107351908233017426134", Email: "ada@example.com", Name: "Ada Lovelace", GivenName: "Ada", FamilyName: "Lovelace"},
		{Sub: "114812093760385312027", Email: "grace@example.com", Name: "Grace Hopper", GivenName: "Grace", FamilyName: "Hopper"},
		{Sub: "103845021975620491453", Email: "alan@example.org", Name: "Alan Turing", GivenName: "Alan", FamilyName: "Turing", HostedDomain: "example.org"},
	}
}

// DemoClient returns the client registered when Config.Clients is nil.
func DemoClient() Client {
	return Client{ID: DemoClientID, Secret: DemoClientSecret}
}

const (
	defaultAccessTokenTTL = 3599 * time.Second
	defaultKeyMaxAge      = 6 * time.Hour
	codeLifetime          = 10 * time.Minute
	idTokenLifetime       = time.Hour
	maxRefreshPerGrant    = 100 // Google: the 101st live refresh token kills the oldest
)

// Emulator is a local stand-in for Google's OAuth 2.0, OpenID Connect,
// Identity Services and People API endpoints. It is safe for concurrent use.
type Emulator struct {
	log      *slog.Logger
	cfg      Config
	clients  map[string]Client
	keyAge   time.Duration
	keys     *keyring
	faults   *faultBox
	quotas   *quotaBox
	stats    *statsBox
	risc     *riscBox
	pages    *template.Template
	gisParts [2][]byte // /gsi/client split around the origin placeholder

	clockShift atomic.Int64 // nanoseconds added to the wall clock
	ttl        atomic.Int64 // access token lifetime, nanoseconds
	lastBase   atomic.Pointer[string]

	mu sync.RWMutex // guards the identity state below
	id *identity

	saver *saver
}

// New returns an emulator configured by cfg. It generates a signing key
// (or loads one from cfg.StateFile).
func New(cfg Config) (*Emulator, error) {
	if cfg.Clients == nil {
		cfg.Clients = []Client{DemoClient()}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Users == nil {
		cfg.Users = DefaultUsers()
	}
	if cfg.AccessTokenTTL < 0 || cfg.KeyMaxAge < 0 || cfg.KeySigningDelay < 0 || cfg.KeyRetireAfter < 0 || cfg.RISCMaxAttempts < 0 || cfg.RISCRetryBackoff < 0 {
		return nil, errors.New("emulator: negative duration in Config")
	}
	if cfg.AccessTokenTTL == 0 {
		cfg.AccessTokenTTL = defaultAccessTokenTTL
	}
	if cfg.KeyMaxAge == 0 {
		cfg.KeyMaxAge = defaultKeyMaxAge
	}
	if cfg.KeySigningDelay == 0 {
		cfg.KeySigningDelay = cfg.KeyMaxAge
	}
	if cfg.KeyRetireAfter == 0 {
		cfg.KeyRetireAfter = idTokenLifetime + cfg.KeyMaxAge
	}
	if cfg.RISCMaxAttempts == 0 {
		cfg.RISCMaxAttempts = defaultRISCMaxAttempts
	}
	if cfg.RISCRetryBackoff == 0 {
		cfg.RISCRetryBackoff = defaultRISCRetryBackoff
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	e := &Emulator{
		log:     log,
		cfg:     cfg,
		clients: make(map[string]Client, len(cfg.Clients)),
		keyAge:  cfg.KeyMaxAge,
		faults:  newFaultBox(),
		quotas:  newQuotaBox(),
		stats:   newStatsBox(),
		risc:    newRISCBox(cfg.RISCMaxAttempts, cfg.RISCRetryBackoff),
	}
	for _, c := range cfg.Clients {
		if c.ID == "" || c.Secret == "" {
			return nil, fmt.Errorf("emulator: client %q: id and secret are required", c.ID)
		}
		for _, o := range c.JavaScriptOrigins {
			if _, err := parseOrigin(o); err != nil {
				return nil, fmt.Errorf("emulator: client %q: JavaScript origin %q: %w", c.ID, o, err)
			}
		}
		if _, dup := e.clients[c.ID]; dup {
			return nil, fmt.Errorf("emulator: client %q registered twice", c.ID)
		}
		e.clients[c.ID] = c
	}
	e.ttl.Store(int64(cfg.AccessTokenTTL))
	for _, q := range cfg.Quotas {
		if err := e.SetQuota(q); err != nil {
			return nil, fmt.Errorf("emulator: %w", err)
		}
	}

	var err error
	if e.pages, err = parsePages(); err != nil {
		return nil, err
	}
	if e.gisParts, err = loadGISScript(); err != nil {
		return nil, err
	}

	e.id = newIdentity()
	for _, u := range cfg.Users {
		if _, err := e.id.addUser(u); err != nil {
			return nil, fmt.Errorf("emulator: user %q: %w", u.Email, err)
		}
	}

	var saved *stateFile
	if cfg.StateFile != "" {
		if saved, err = readStateFile(cfg.StateFile); err != nil {
			return nil, err
		}
	}
	if saved != nil && len(saved.Keys) > 0 {
		if e.keys, err = restoreKeyring(saved.Keys, cfg.KeyRetireAfter); err != nil {
			return nil, fmt.Errorf("emulator: state file %s: %w", cfg.StateFile, err)
		}
	} else if e.keys, err = newKeyring(e.now(), cfg.KeyRetireAfter); err != nil {
		return nil, err
	}
	if saved != nil {
		if err := e.id.restore(saved, e.clients); err != nil {
			return nil, fmt.Errorf("emulator: state file %s: %w", cfg.StateFile, err)
		}
	}
	if cfg.StateFile != "" {
		e.saver = startSaver(e)
		e.saver.markDirty() // write the file (and the keys) right away
	}
	return e, nil
}

// Close ends security event deliveries under way, flushes the state file,
// if any, and stops the goroutine that writes it. The emulator's handlers
// keep working, but further changes are no longer saved.
func (e *Emulator) Close() error {
	e.risc.mu.Lock()
	e.risc.cancel()
	e.risc.mu.Unlock()
	_ = e.WaitRISC(context.Background()) // quick: every delivery was just cancelled
	if e.saver == nil {
		return nil
	}
	return e.saver.close()
}

// now is the emulator's clock: Config.Now (the wall clock) plus the
// ShiftClock offset.
func (e *Emulator) now() time.Time {
	return e.cfg.Now().Add(time.Duration(e.clockShift.Load()))
}

// accessTTL is the lifetime given to new access tokens.
func (e *Emulator) accessTTL() time.Duration { return time.Duration(e.ttl.Load()) }

// changed records that persistent state changed.
func (e *Emulator) changed() {
	if e.saver != nil {
		e.saver.markDirty()
	}
}

// Handler returns the HTTP handler serving every Google path the emulator
// knows, the control API under /emulator/v1/, and the pages' assets.
func (e *Emulator) Handler() http.Handler {
	mux := http.NewServeMux()
	ep := e.endpoint

	mux.Handle("GET /.well-known/openid-configuration", ep(EndpointDiscovery, e.handleDiscovery))
	mux.Handle("GET /.well-known/risc-configuration", ep(EndpointRISC, e.handleRISCConfiguration))

	mux.Handle("GET /o/oauth2/v2/auth", ep(EndpointAuth, e.handleAuth))
	mux.Handle("POST /o/oauth2/v2/auth", ep(EndpointAuth, e.handleAuth))
	mux.Handle("GET /o/oauth2/auth", ep(EndpointAuth, e.handleAuth))
	mux.Handle("POST /o/oauth2/auth", ep(EndpointAuth, e.handleAuth))

	mux.Handle("POST /token", ep(EndpointToken, e.handleToken))
	mux.Handle("POST /revoke", ep(EndpointRevoke, e.handleRevoke))
	mux.Handle("GET /revoke", ep(EndpointRevoke, e.handleRevoke)) // Google still answers the old GET form
	mux.HandleFunc("OPTIONS /revoke", e.handlePreflight)

	mux.Handle("GET /oauth2/v3/certs", ep(EndpointCerts, e.handleCerts))
	mux.Handle("GET /oauth2/v1/certs", ep(EndpointCerts, e.handlePEMCerts))

	for _, p := range []string{"/tokeninfo", "/oauth2/v3/tokeninfo"} {
		mux.Handle("GET "+p, ep(EndpointTokenInfo, e.handleTokenInfo))
		mux.Handle("POST "+p, ep(EndpointTokenInfo, e.handleTokenInfo))
		mux.HandleFunc("OPTIONS "+p, e.handlePreflight)
	}
	for _, p := range []string{"/v1/userinfo", "/oauth2/v3/userinfo"} {
		mux.Handle("GET "+p, ep(EndpointUserInfo, e.handleUserInfo))
		mux.HandleFunc("OPTIONS "+p, e.handlePreflight)
	}

	mux.Handle("GET /v1/people/me", ep(EndpointPeople, e.handlePeopleMe))
	mux.HandleFunc("OPTIONS /v1/people/me", e.handlePreflight)
	mux.Handle("GET /v1/people/me/connections", ep(EndpointPeople, e.handleConnections))
	mux.HandleFunc("OPTIONS /v1/people/me/connections", e.handlePreflight)

	mux.Handle("GET /gsi/client", ep(EndpointGSI, e.handleGISClient))
	mux.Handle("GET /gsi/style", ep(EndpointGSI, e.handleGISStyle))
	mux.Handle("GET /gsi/select", ep(EndpointGSI, e.handleGSISelect))
	mux.Handle("POST /gsi/select", ep(EndpointGSI, e.handleGSISelect))
	mux.Handle("POST /gsi/revoke", ep(EndpointGSI, e.handleGSIRevoke))
	mux.HandleFunc("OPTIONS /gsi/revoke", e.handlePreflight)

	mux.HandleFunc("GET /emulator/static/{file}", e.handleStatic)
	mux.HandleFunc("GET /emulator/avatars/{file}", e.handleAvatar)
	mux.HandleFunc("GET /favicon.ico", e.handleFavicon)
	mux.HandleFunc("GET /{$}", e.handleIndex)

	e.installControl(mux)
	return mux
}

// baseURL is the emulator's base URL as the client reached it. It also
// remembers the latest one, for tokens minted in-process (MintIDToken),
// which have no request to take it from.
func (e *Emulator) baseURL(r *http.Request) string {
	host := r.Host
	if host == "" || strings.ContainsAny(host, "/\\@?# ") {
		host = "127.0.0.1"
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	base := scheme + "://" + host
	if p := e.lastBase.Load(); p == nil || *p != base {
		e.lastBase.Store(&base)
	}
	return base
}

// defaultBase is the base URL for in-process mints: the one the emulator was
// last reached at, or its default address.
func (e *Emulator) defaultBase() string {
	if p := e.lastBase.Load(); p != nil {
		return *p
	}
	return "http://127.0.0.1:9022"
}

// SigningKey returns the private key that signs new ID tokens and its kid,
// so adversarial tests can forge variants (other algorithms, claims or
// kids) that only the signature check would otherwise catch.
func (e *Emulator) SigningKey() (*rsa.PrivateKey, string) {
	k := e.keys.current(e.now())
	return k.priv, k.kid
}
