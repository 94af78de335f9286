package offline

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	people "google.golang.org/api/people/v1"

	"example.com/signin"
	"example.com/signin/internal/grant"
)

// FetcherConfig configures a Fetcher. Grants and HTTPClient are required;
// the rest have defaults.
type FetcherConfig struct {
	// Grants keeps the users' grants and refreshes their tokens.
	Grants *grant.Grants
	// HTTPClient carries every call to Google (googlenet's client). Only
	// its Transport is used: the Fetcher adds its own per-request timeout
	// and retries on top of it, for People API calls and refreshes alike.
	HTTPClient *http.Client
	// RequestTimeout bounds each HTTP request, each retry included
	// (default 20 s).
	RequestTimeout time.Duration
	// MaxRetries is how many times a request answered with 429 or 5xx, or
	// failing in the network, is retried (default 4; negative for none).
	// A web request may want fewer than a batch job.
	MaxRetries int
	// Now is the clock (default time.Now); Sleep waits between retries
	// (default: a timer that ends early with ctx).
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// Logger receives retries and problems that need an operator, never
	// tokens. Nil discards.
	Logger *slog.Logger
	// Pacer, when set, is a budget of calls shared with other processes:
	// each request waits for it, and a 429 waits for it again rather than
	// counting as a retry (see Pacer).
	Pacer Pacer
	// Scopes are the scopes the offline work needs beyond sign-in
	// (-scopes), normalised (grant.ParseScopes). A user whose grant lacks
	// one is not fetched: Fetch answers CodeScopeMissing. With
	// contacts.readonly among them, Fetch also counts the user's contacts.
	Scopes []string
	// ContactsPageSize is the People API's pageSize for listing contacts
	// (default 1000, Google's maximum).
	ContactsPageSize int
}

// Fetcher fetches users' People API profiles with their stored offline
// credentials, refreshing and saving tokens as needed (one refresh per
// expired token, however many callers, in this process or another sharing
// the store). It is what the web server's /api/profile and offline-fetch
// both use, and is safe for concurrent use.
type Fetcher struct {
	cfg    FetcherConfig // with defaults
	grants *grant.Grants
	rt     *retryTransport
	hc     *http.Client // for token refreshes, through rt
}

// NewFetcher returns a Fetcher for cfg. It panics if a required field is
// missing, which is a programming error.
func NewFetcher(cfg FetcherConfig) *Fetcher {
	if cfg.Grants == nil || cfg.HTTPClient == nil {
		panic("offline.NewFetcher: Grants and HTTPClient are required")
	}
	cfg.setDefaults()
	base := cfg.HTTPClient.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	rt := &retryTransport{
		base:    base,
		max:     cfg.MaxRetries,
		timeout: cfg.RequestTimeout,
		sleep:   cfg.Sleep,
		now:     cfg.Now,
		log:     cfg.Logger,
		pacer:   cfg.Pacer,
	}
	return &Fetcher{
		cfg:    cfg,
		grants: cfg.Grants,
		rt:     rt,
		hc:     &http.Client{Transport: rt, CheckRedirect: cfg.HTTPClient.CheckRedirect},
	}
}

// setDefaults replaces zero values by the documented defaults.
func (c *FetcherConfig) setDefaults() {
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	switch {
	case c.MaxRetries == 0:
		c.MaxRetries = DefaultMaxRetries
	case c.MaxRetries < 0:
		c.MaxRetries = 0
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = Sleep
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.ContactsPageSize <= 0 {
		c.ContactsPageSize = maxContactsPageSize
	}
}

// maxContactsPageSize is the largest page people/me/connections gives.
const maxContactsPageSize = 1000

// ContactsFields are the People API fields asked for each contact: the
// work only counts them, so the least there is.
const ContactsFields = "metadata"

// FetchProfile returns the people/me profile (PersonFields) of rec's user,
// with the grant rec holds: rec is not read again unless its token must be
// refreshed. A 401 for a token that had not expired (the user removed our
// access, or clocks disagree) gets one forced refresh: if the grant is dead,
// that refresh gets invalid_grant and the record is marked revoked.
//
// Errors are *signin.Error: ENOTFOUND when the record is gone;
// ECONFLICT "offline_access_revoked" when Google refused the stored
// grant, now or before (the record is marked revoked); ECONFLICT
// "offline_access_required" when the record holds no refresh token;
// EFORBIDDEN "insufficient_scope" when the grant does not cover the profile;
// EUPSTREAM when Google failed or could not be reached (codes
// "google_unavailable", "rate_limited", "people_unauthorized").
func (f *Fetcher) FetchProfile(ctx context.Context, rec *grant.Record) (*people.Person, error) {
	res, err := f.Fetch(ctx, rec)
	return res.Person, err
}

// Result is what Fetch got for one user.
type Result struct {
	Person *people.Person
	// Refreshed: the access token was refreshed (and the new one saved)
	// for this fetch.
	Refreshed bool
	// Contacts is how many contacts the user has (every page of
	// people/me/connections), when the configured scopes include
	// contacts.readonly; nil otherwise.
	Contacts *int
	// MissingScopes are the configured scopes the user's grant lacks, with
	// a CodeScopeMissing error.
	MissingScopes []string
}

// Fetch is FetchProfile, also saying whether the user's token was
// refreshed, and doing what the configured scopes ask for: a user whose
// grant lacks one of them is not fetched (EFORBIDDEN CodeScopeMissing,
// Result.MissingScopes saying which), and contacts.readonly counts the
// user's contacts.
func (f *Fetcher) Fetch(ctx context.Context, rec *grant.Record) (Result, error) {
	if missing := rec.MissingScopes(f.cfg.Scopes); len(missing) > 0 {
		return Result{MissingScopes: missing}, scopeMissing(missing, nil)
	}
	tctx := context.WithValue(ctx, oauth2.HTTPClient, f.hc) // for refreshes
	ts := f.grants.TokenSource(tctx, rec)
	// oauth2.Transport rather than oauth2.NewClient: NewClient caches the
	// token in a ReuseTokenSource, which would keep a rejected token after
	// ts.Refresh. ts caches it itself.
	client := &http.Client{Transport: &oauth2.Transport{Source: ts, Base: f.rt}}
	svc, err := people.NewService(ctx, option.WithHTTPClient(client))
	if err != nil {
		return Result{}, signin.Wrap(err, signin.EINTERNAL, "", "cannot create the People API client")
	}
	get := func() (*people.Person, error) {
		return svc.People.Get("people/me").PersonFields(PersonFields).Context(ctx).Do()
	}
	p, err := get()
	if isStatus(err, http.StatusUnauthorized) {
		if used, terr := ts.Token(); terr == nil {
			if _, err = ts.Refresh(used); err == nil {
				p, err = get()
			}
		}
	}
	if err != nil {
		return Result{Refreshed: ts.Refreshed()}, fetchError(err)
	}
	res := Result{Person: p, Refreshed: ts.Refreshed()}
	if slices.Contains(f.cfg.Scopes, grant.ScopeContactsReadOnly) {
		n, err := f.countContacts(ctx, svc)
		res.Refreshed = ts.Refreshed()
		if isStatus(err, http.StatusForbidden) {
			// The record said granted; Google says not (a grant changed
			// since): the user must grant it again.
			res.MissingScopes = []string{grant.ScopeContactsReadOnly}
			return res, scopeMissing(res.MissingScopes, err)
		}
		if err != nil {
			return res, fetchError(err)
		}
		res.Contacts = &n
	}
	return res, nil
}

// countContacts counts the user's contacts, reading every page.
func (f *Fetcher) countContacts(ctx context.Context, svc *people.Service) (int, error) {
	n := 0
	err := svc.People.Connections.List("people/me").PersonFields(ContactsFields).
		PageSize(int64(f.cfg.ContactsPageSize)).Context(ctx).
		Pages(ctx, func(page *people.ListConnectionsResponse) error {
			n += len(page.Connections)
			return nil
		})
	return n, err
}

// scopeMissing is the error of a user whose grant lacks scopes the work
// needs.
func scopeMissing(missing []string, cause error) error {
	names := make([]string, len(missing))
	for i, s := range missing {
		names[i] = strings.TrimPrefix(s, "https://www.googleapis.com/auth/")
	}
	return &signin.Error{Kind: signin.EFORBIDDEN, Code: grant.CodeScopeMissing,
		Message: "the user has not granted " + strings.Join(names, ", ") + ", which the offline work needs (-scopes); their page asks for it", Err: cause}
}

// fetchError maps an error from the token source or the People API to the
// app's vocabulary. The token source's errors are *signin.Error already,
// inside the HTTP client's *url.Error.
func fetchError(err error) error {
	var se *signin.Error
	if errors.As(err, &se) {
		return se
	}
	upstream := func(code, msg string) error {
		return &signin.Error{Kind: signin.EUPSTREAM, Code: code, Message: msg, Err: err}
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		switch {
		case ge.Code == http.StatusForbidden:
			return &signin.Error{Kind: signin.EFORBIDDEN, Code: "insufficient_scope",
				Message: "The stored grant does not include access to the user's profile.", Err: err}
		case ge.Code == http.StatusUnauthorized:
			return upstream("people_unauthorized", "Google refused a freshly refreshed token; please try again.")
		case ge.Code == http.StatusTooManyRequests:
			return upstream("rate_limited", "Google is rate limiting the app; please try again later.")
		}
		return upstream("google_unavailable", "Google could not be reached; please try again.")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return upstream("timeout", "Google did not answer in time; please try again.")
	}
	return upstream("google_unavailable", "Google could not be reached; please try again.")
}

func isStatus(err error, code int) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == code
}

// Profile is what the app shows of a People API person: the name, email
// address and photo Google marks primary, else the first it lists.
type Profile struct {
	Name, Email, Photo string
}

// ProfileOf picks p's primary name, email address and photo (else the first
// non-empty entry of each).
func ProfileOf(p *people.Person) Profile {
	var v Profile
	if p == nil {
		return v
	}
	for _, n := range p.Names {
		if n != nil && (v.Name == "" || n.Metadata != nil && n.Metadata.Primary) {
			v.Name = n.DisplayName
		}
	}
	for _, e := range p.EmailAddresses {
		if e != nil && (v.Email == "" || e.Metadata != nil && e.Metadata.Primary) {
			v.Email = e.Value
		}
	}
	for _, ph := range p.Photos {
		if ph != nil && (v.Photo == "" || ph.Metadata != nil && ph.Metadata.Primary) {
			v.Photo = ph.Url
		}
	}
	return v
}
