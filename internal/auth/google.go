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
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"example.com/signin"
	"example.com/signin/internal/googlenet"
)

// maxCodeLen bounds a one-time authorization code. Google documents codes
// of at most 256 bytes; twice that leaves room without letting a caller post
// arbitrary blobs to Google on our behalf.
const maxCodeLen = 512

// maxRevokeBody bounds how much of a revoke answer is read.
const maxRevokeBody = 64 << 10

// defaultScopes are the scopes asked for when GoogleConfig.Scopes is empty.
func defaultScopes() []string { return []string{"openid", "email", "profile"} }

// GoogleConfig configures a Google.
type GoogleConfig struct {
	// Client is the app's OAuth client. Required.
	Client *Client
	// HTTPClient carries every call to Google (googlenet's client, which
	// routes to the emulator when one is configured). Nil means a plain
	// client with a 15 s timeout.
	HTTPClient *http.Client
	// Scopes asked for; empty means openid, email and profile.
	Scopes []string
	// Logger receives configuration problems (never tokens). Nil discards.
	Logger *slog.Logger
}

// Google talks to Google's OAuth 2.0 endpoints for the app: it exchanges
// one-time codes from the GIS code client and revokes grants. It is safe for
// concurrent use.
type Google struct {
	conf   oauth2.Config // never handed out; OAuth2Config returns a copy
	http   *http.Client
	logger *slog.Logger
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
	scopes := slices.Clone(cfg.Scopes)
	if len(scopes) == 0 {
		scopes = defaultScopes()
	}
	return &Google{
		conf: oauth2.Config{
			ClientID:     cfg.Client.ID,
			ClientSecret: cfg.Client.Secret,
			// Codes from the GIS popup code client are bound to this
			// pseudo redirect URI; any other value is redirect_uri_mismatch.
			RedirectURL: "postmessage",
			Scopes:      scopes,
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
		http:   hc,
		logger: logger,
	}
}

// OAuth2Config returns a copy of the app's x/oauth2 configuration: client
// id and secret, RedirectURL "postmessage", Google's endpoints with the
// credentials sent in the body. Use it with Context for refreshes.
func (g *Google) OAuth2Config() *oauth2.Config {
	// Field by field, not a copy of the struct: an oauth2.Config keeps a
	// lazily created auth-style cache (an atomic pointer) that Exchange
	// sets on first use, so copying g.conf while an exchange runs is a
	// data race (found by issue 6's concurrency test). The copy would not
	// share the cache anyway.
	return &oauth2.Config{
		ClientID:     g.conf.ClientID,
		ClientSecret: g.conf.ClientSecret,
		Endpoint:     g.conf.Endpoint,
		RedirectURL:  g.conf.RedirectURL,
		Scopes:       slices.Clone(g.conf.Scopes),
	}
}

// Context returns ctx carrying the Google HTTP client, as x/oauth2 expects
// (oauth2.HTTPClient), so that token calls go where googlenet says.
func (g *Google) Context(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, g.http)
}

// Exchange trades a one-time code from the GIS code client (popup mode) for
// tokens. The code is sent to Google exactly once. Errors:
//   - EINVALID "invalid_code": empty, oversized or malformed code (Google is
//     not called);
//   - EINVALID "invalid_grant": Google refused the code (expired, already
//     used, or issued to someone else);
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
	if err != nil {
		return nil, mapTokenError(g.logger, "exchange", err)
	}
	return tok, nil
}

// mapTokenError maps an error from x/oauth2's token calls (op "exchange" or
// "refresh") to the app's vocabulary, as Exchange documents; Google refusing
// our client is logged. The saving TokenSource uses it for refreshes.
func mapTokenError(logger *slog.Logger, op string, err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		// Network errors, timeouts, cancellations and answers that are not
		// JSON: x/oauth2 returns plain errors for those.
		return &signin.Error{Kind: signin.EUPSTREAM, Code: "google_unavailable", Message: "Google could not be reached; please try again", Err: fmt.Errorf("token endpoint (%s): %w", op, err)}
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	// RetrieveError's own message quotes the whole response body when there
	// is no error code; ours says only what the logs need.
	cause := &tokenEndpointError{Op: op, Status: status, Code: re.ErrorCode, Description: re.ErrorDescription, err: re}
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

// tokenEndpointError describes an error answer from Google's token endpoint
// without quoting its body. It unwraps to the *oauth2.RetrieveError.
type tokenEndpointError struct {
	Op          string // "exchange" or "refresh"
	Status      int    // HTTP status
	Code        string // OAuth error code, such as "invalid_grant"
	Description string // Google's error_description
	err         error
}

func (e *tokenEndpointError) Error() string {
	s := fmt.Sprintf("token endpoint (%s): HTTP %d", e.Op, e.Status)
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Description != "" {
		s += fmt.Sprintf(" (%q)", e.Description)
	}
	return s
}

func (e *tokenEndpointError) Unwrap() error { return e.err }

// Revoke revokes token (an access or refresh token) at Google, which ends
// the whole grant. A token Google no longer knows (400 invalid_token) counts
// as revoked. Anything else, or no answer, is EUPSTREAM
// "google_unavailable", so the caller can keep its state and let the user
// retry.
func (g *Google) Revoke(ctx context.Context, token string) error {
	if token == "" {
		return &signin.Error{Kind: signin.EINVALID, Code: "invalid_token", Message: "there is no token to revoke"}
	}
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
		return revokeUnavailable(fmt.Errorf("revoke: HTTP %d: %s", resp.StatusCode, code))
	}
	return revokeUnavailable(fmt.Errorf("revoke: HTTP %d", resp.StatusCode))
}

func revokeUnavailable(err error) error {
	return &signin.Error{Kind: signin.EUPSTREAM, Code: "google_unavailable", Message: "Google could not be reached to revoke access; please try again", Err: err}
}

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

// IsInvalidGrant reports whether err says Google refused a code or refresh
// token (invalid_grant): expired, used, revoked. The only cure is a new
// consent.
func IsInvalidGrant(err error) bool {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
		return true
	}
	var se *signin.Error
	return errors.As(err, &se) && se.Code == "invalid_grant"
}
