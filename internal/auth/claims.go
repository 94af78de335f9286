// Package auth holds the app's Google specifics: the client configuration
// from client_secrets.json, the one-time code exchange (redirect_uri
// "postmessage"), complete ID token verification (idtoken plus the checks it
// does not make, and key and verified-token caches), revocation, and a
// TokenSource that saves the tokens it refreshes.
package auth

import "time"

// Claims are the verified claims of a Google ID token that the app uses.
// Identify users by Sub only, never by Email.
type Claims struct {
	Sub             string    `json:"sub"`
	Email           string    `json:"email,omitempty"`
	EmailVerified   bool      `json:"email_verified"`
	Name            string    `json:"name,omitempty"`
	GivenName       string    `json:"given_name,omitempty"`
	FamilyName      string    `json:"family_name,omitempty"`
	Picture         string    `json:"picture,omitempty"`
	HostedDomain    string    `json:"hd,omitempty"`
	Nonce           string    `json:"nonce,omitempty"`
	AuthorizedParty string    `json:"azp,omitempty"`
	Audience        string    `json:"aud"`
	Issuer          string    `json:"iss"`
	IssuedAt        time.Time `json:"-"`
	ExpiresAt       time.Time `json:"-"`
}
