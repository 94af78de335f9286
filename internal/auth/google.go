package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/oauth2"

	"example.com/signin"
	"example.com/signin/internal/googlenet"
	"example.com/signin/internal/metrics"
)

// maxCodeLen bounds a one-time authorization code. Google documents codes
// of at most 256 bytes; twice that leaves room without letting a caller post
// arbitrary blobs to Google on our behalf.
const maxCodeLen = 512

// maxRevokeBody bounds how much of a revoke answer is read.
const maxRevokeBody = 64 << 10

// GoogleConfig configures a Google.
type GoogleConfig struct {
	// Client is the app's OAuth client. Required.
	Client *Client
	// HTTPClient carries every call to Google (googlenet's client, which
	// routes to the emulator when one is configured). Nil means a plain
	// client with a 15 s timeout.
	HTTPClient *http.Client
	// Logger receives configuration problems (never tokens). Nil discards.
	Logger *slog.Logger
	// Metrics counts the exchanges, refreshes and revocations sent to
	// Google, by outcome. Nil counts nothing.
	Metrics *metrics.Metrics
}

// Google talks to Google's OAuth 2.0 endpoints for the app: it exchanges
// one-time codes from the GIS code client and revokes grants. It is safe for
// concurrent use.
type Google struct {
	conf    oauth2.Config // never handed out; OAuth2Config returns a copy
	http    *http.Client
	logger  *slog.Logger
	metrics *metrics.Metrics
}

// NewGoogle returns a Google for cfg. It panics if cfg.Client is nil, which
// is a programming error.
func NewGoogle(cfg GoogleConfig) *Google {
	if cfg.Client == nil {
		panic("auth.NewGoogle: GoogleConfig.Client is nil")
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 15 * time.Second}
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Google{
		conf: oauth2.Config{
			ClientID:     cfg.Client.ID,
			ClientSecret: cfg.Client.Secret,
			// Codes from the GIS popup code client are bound to this
			// pseudo redirect URI; any other value is redirect_uri_mismatch.
			RedirectURL: "postmessage",
			Endpoint: oauth2.Endpoint{
				AuthURL:  googlenet.AuthURL,
				TokenURL: googlenet.TokenURL,
				// Google wants the client credentials in the body.
				// AutoDetect would retry a failed exchange with the
				// other style, sending a one-time code twice and
				// hiding the real error behind "already redeemed".
				AuthStyle: oauth2.AuthStyleInParams,
			},
		},
		http:    hc,
		logger:  logger,
		metrics: cfg.Metrics,
	}
}

// Context returns ctx carrying the Google HTTP client, as x/oauth2 expects
// (oauth2.HTTPClient), so that token calls go where googlenet says. A
// context that already carries one (a batch job's retrying client, say)
// keeps it.
func (g *Google) Context(ctx context.Context) context.Context {
	if _, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok {
		return ctx
	}
	return context.WithValue(ctx, oauth2.HTTPClient, g.http)
}

// Exchange trades a one-time code from the GIS code client (popup mode) for
// tokens. The code is sent to Google exactly once. Errors:
//   - EINVALID "invalid_code": empty, oversized or unprintable code, refused
//     before Google is called;
//   - EINVALID "invalid_grant": Google refused the code (expired, already
//     used, malformed, or issued to someone else);
//   - EINTERNAL "google_client_misconfigured": Google refused our client
//     (wrong secret, redirect URI, client type); it is logged;
//   - EUPSTREAM "google_unavailable": Google unreachable, slow, 5xx, 429 or
//     an unreadable answer.
//
// The token's "id_token" must still be verified (see Verifier.Verify).
func (g *Google) Exchange(ctx context.Context, code string) (*oauth2.Token, error) {
	if code == "" || len(code) > maxCodeLen || !printable(code) {
		return nil, &signin.Error{Kind: signin.EINVALID, Code: "invalid_code", Message: "the sign-in code is missing or malformed"}
	}
	tok, err := g.conf.Exchange(g.Context(ctx), code)
	return g.tokenResult("exchange", tok, err, g.metrics.Exchange)
}

// Refresh trades a refresh token for a new access token (and, rarely, a new
// refresh token). It sends exactly one refresh grant, bypassing x/oauth2's
// token cache. The HTTP client is ctx's oauth2.HTTPClient when it carries
// one, else the Google client's. Errors are those of Exchange; an
// "invalid_grant" here means the grant is dead (revoked by the user,
// expired, or the password changed): see InvalidGrant.
func (g *Google) Refresh(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	if refreshToken == "" {
		return nil, &signin.Error{Kind: signin.ECONFLICT, Code: "offline_access_required", Message: "there is no refresh token"}
	}
	tok, err := g.conf.TokenSource(g.Context(ctx), &oauth2.Token{RefreshToken: refreshToken}).Token()
	return g.tokenResult("refresh", tok, err, g.metrics.Refresh)
}

// tokenResult ends a token call (op "exchange" or "refresh"): its error
// mapped by mapTokenError, and its outcome counted by count.
func (g *Google) tokenResult(op string, tok *oauth2.Token, err error, count func(error)) (*oauth2.Token, error) {
	if err != nil {
		err = mapTokenError(g.logger, op, err)
	}
	count(err)
	if err != nil {
		return nil, err
	}
	return tok, nil
}

// mapTokenError maps an error from x/oauth2's token calls (op "exchange" or
// "refresh") to the app's vocabulary, as Exchange documents; Google refusing
// our client is logged. This is the one place that reads Google's token
// error answers; everyone else sees a *GoogleError in the chain.
func mapTokenError(logger *slog.Logger, op string, err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		// Network errors, timeouts, cancellations and answers that are not
		// JSON: x/oauth2 returns plain errors for those.
		return &signin.Error{Kind: signin.EUPSTREAM, Code: "google_unavailable", Message: "Google could not be reached; please try again", Err: atEndpoint(EndpointToken, fmt.Errorf("token endpoint (%s): %w", op, err))}
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	// RetrieveError's own message quotes the whole response body when there
	// is no error code; ours says only what the logs need.
	var cause error = &GoogleError{Op: op, Status: status, Code: re.ErrorCode, Description: printableLine(re.ErrorDescription, maxDescriptionLen), err: re}
	cause = atEndpoint(EndpointToken, cause)
	switch {
	case re.ErrorCode == "invalid_grant" && op == "exchange":
		return &signin.Error{Kind: signin.EINVALID, Code: "invalid_grant", Message: "the sign-in code was not accepted by Google (expired or already used); please try again", Err: cause}
	case re.ErrorCode == "invalid_grant":
		return &signin.Error{Kind: signin.EINVALID, Code: "invalid_grant", Message: "Google no longer accepts this app's offline access for the user (revoked or expired); it must be granted again", Err: cause}
	case re.ErrorCode == "redirect_uri_mismatch", re.ErrorCode == "invalid_client", re.ErrorCode == "unauthorized_client":
		logger.Error("Google refused this app's OAuth client: check client_secrets.json and the client in the Cloud console",
			"op", op, "status", status, "error", re.ErrorCode, "error_description", re.ErrorDescription)
		return &signin.Error{Kind: signin.EINTERNAL, Code: "google_client_misconfigured", Message: "sign-in is misconfigured on this server", Err: cause}
	case status >= 500 || status == http.StatusTooManyRequests || status == 0 || (status >= 200 && status < 300):
		return &signin.Error{Kind: signin.EUPSTREAM, Code: "google_unavailable", Message: "Google could not be reached; please try again", Err: cause}
	default:
		// Another 4xx (invalid_request, invalid_scope, ...): our request
		// is wrong, which no retry by the user fixes.
		logger.Error("Google refused a token request", "op", op, "status", status, "error", re.ErrorCode, "error_description", re.ErrorDescription)
		return &signin.Error{Kind: signin.EINTERNAL, Code: "google_request_rejected", Message: "Google refused the request", Err: cause}
	}
}

// GoogleError is an error answer from Google's token endpoint (or its
// revoke endpoint, Op "revoke"), decided once
// here, as x/oauth2's RetrieveError is, but without quoting the answer's
// body. It sits in the chain of the *signin.Error that Exchange and Refresh
// return; InvalidGrant finds it.
type GoogleError struct {
	Op          string // "exchange", "refresh" or "revoke"
	Status      int    // HTTP status
	Code        string // OAuth error code, such as "invalid_grant"
	Description string // Google's error_description: one printable line, bounded
	err         error
}

// maxDescriptionLen bounds GoogleError.Description, which is Google's text
// (or whatever a misbehaving endpoint sends) and may be stored and shown.
const maxDescriptionLen = 256

func (e *GoogleError) Error() string {
	s := fmt.Sprintf("token endpoint (%s): HTTP %d", e.Op, e.Status)
	if e.Op == "revoke" {
		s = fmt.Sprintf("revoke: HTTP %d", e.Status)
	}
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Description != "" {
		s += fmt.Sprintf(" (%q)", e.Description)
	}
	return s
}

func (e *GoogleError) Unwrap() error { return e.err }

// InvalidGrant reports whether err says Google refused a code or refresh
// token with invalid_grant (expired, used, revoked: the only cure is a new
// consent), and returns Google's answer when it did.
func InvalidGrant(err error) (*GoogleError, bool) {
	var ge *GoogleError
	if errors.As(err, &ge) && ge.Code == "invalid_grant" {
		return ge, true
	}
	return nil, false
}

// printableLine makes s safe to store and show: printable, one line, at
// most n bytes, not cutting a character in half.
func printableLine(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, s)
	if len(s) > n {
		s = s[:n]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}

// Revoke revokes token (an access or refresh token) at Google, which ends
// the whole grant. A token Google no longer knows (400 invalid_token) counts
// as revoked. Anything else, or no answer, is EUPSTREAM
// "google_unavailable", so the caller can keep its state and let the user
// retry.
func (g *Google) Revoke(ctx context.Context, token string) error {
	if token == "" {
		return &signin.Error{Kind: signin.EINVALID, Code: "invalid_token", Message: "there is no token to revoke"}
	}
	err := g.revoke(ctx, token)
	g.metrics.Revocation(err)
	return err
}

func (g *Google) revoke(ctx context.Context, token string) error {
	// The token goes in the body, never in the URL, so that it cannot end
	// up in an error message or a proxy's log.
	body := url.Values{"token": {token}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, googlenet.RevokeURL, strings.NewReader(body))
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := g.http.Do(req)
	if err != nil {
		return revokeUnavailable(fmt.Errorf("revoke: %w", err))
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxRevokeBody))
	if err != nil {
		return revokeUnavailable(fmt.Errorf("revoke: reading the answer: %w", err))
	}
	code := oauthErrorCode(answer)
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusBadRequest && code == "invalid_token":
		return nil // already revoked or expired: nothing left to revoke
	}
	if code != "" {
		return revokeUnavailable(&GoogleError{Op: "revoke", Status: resp.StatusCode, Code: code})
	}
	return revokeUnavailable(&GoogleError{Op: "revoke", Status: resp.StatusCode})
}

func revokeUnavailable(err error) error {
	return &signin.Error{Kind: signin.EUPSTREAM, Code: "google_unavailable", Message: "Google could not be reached to revoke access; please try again", Err: atEndpoint(EndpointRevoke, err)}
}

// Google's endpoints, as FailedEndpoint names them.
const (
	EndpointToken  = "token"  // code exchanges and refreshes
	EndpointRevoke = "revoke" // revocations
	EndpointCerts  = "certs"  // the signing keys (ID tokens and RISC)
)

// FailedEndpoint says which of Google's endpoints an error from this
// package came from (EndpointToken, ...; "" when none did) and Google's
// OAuth error code when Google answered with one: what an operator needs
// in the log line of a failed call.
func FailedEndpoint(err error) (endpoint, googleCode string) {
	var ee *endpointError
	if errors.As(err, &ee) {
		endpoint = ee.endpoint
	}
	var ge *GoogleError
	if errors.As(err, &ge) {
		googleCode = ge.Code
	}
	return endpoint, googleCode
}

// endpointError marks a cause with the endpoint that failed. It adds
// nothing to the message.
type endpointError struct {
	endpoint string
	err      error
}

func atEndpoint(endpoint string, err error) error {
	return &endpointError{endpoint: endpoint, err: err}
}

func (e *endpointError) Error() string { return e.err.Error() }
func (e *endpointError) Unwrap() error { return e.err }

// oauthErrorCode returns the "error" of a JSON OAuth error answer, or "".
func oauthErrorCode(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || len(e.Error) > 64 || !printable(e.Error) {
		return ""
	}
	return e.Error
}

// IDToken returns the "id_token" that came with t, or "".
func IDToken(t *oauth2.Token) string {
	if t == nil {
		return ""
	}
	s, _ := t.Extra("id_token").(string)
	return s
}

// GrantedScopes returns the scopes Google says it granted with t (the
// token response's "scope"), or nil.
func GrantedScopes(t *oauth2.Token) []string {
	if t == nil {
		return nil
	}
	s, _ := t.Extra("scope").(string)
	return strings.Fields(s)
}
