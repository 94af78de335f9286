package emulator_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/api/idtoken"
	"google.golang.org/api/option"
	people "google.golang.org/api/people/v1"

	"example.com/signin/internal/emulator"
	"example.com/signin/internal/googlenet"
)

// TestGoogleClientLibraries drives the emulator with the client libraries
// the app uses, configured with Google's real URLs and routed by googlenet,
// exactly as the app talks to Google. If the emulator's wire format drifted
// from Google's, these libraries would fail here.
func TestGoogleClientLibraries(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	u, _ := url.Parse(e.srv.URL)
	gnet, err := googlenet.New(u.Host, googlenet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, gnet.HTTPClient())

	conf := &oauth2.Config{
		ClientID:     emulator.DemoClientID,
		ClientSecret: emulator.DemoClientSecret,
		Endpoint:     oauth2.Endpoint{AuthURL: googlenet.AuthURL, TokenURL: googlenet.TokenURL, AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL:  "postmessage",
		Scopes:       []string{"openid", "email", "profile"},
	}
	code := e.mint(t, emulator.CodeRequest{AccessType: "offline", Nonce: "nonce-1"})

	tok, err := conf.Exchange(ctx, code)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if tok.RefreshToken == "" || tok.TokenType != "Bearer" || time.Until(tok.Expiry) < 50*time.Minute {
		t.Errorf("token %+v", tok)
	}
	rawID, _ := tok.Extra("id_token").(string)

	validator, err := idtoken.NewValidator(ctx, option.WithHTTPClient(gnet.HTTPClient()))
	if err != nil {
		t.Fatalf("NewValidator: %v", err)
	}
	payload, err := validator.Validate(ctx, rawID, emulator.DemoClientID)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if payload.Issuer != googlenet.Issuer || payload.Subject != adaSub || payload.Claims["email"] != "ada@example.com" || payload.Claims["nonce"] != "nonce-1" {
		t.Errorf("payload %+v", payload)
	}
	if _, err := validator.Validate(ctx, rawID, "someone-else.apps.googleusercontent.com"); err == nil {
		t.Error("Validate accepted a token for another audience")
	}

	// Refresh through a TokenSource: an expired token is refreshed once.
	expired := *tok
	expired.Expiry = time.Now().Add(-time.Minute)
	ts := conf.TokenSource(ctx, &expired)
	fresh, err := ts.Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if fresh.AccessToken == tok.AccessToken || fresh.RefreshToken != tok.RefreshToken {
		t.Errorf("refreshed token %+v", fresh)
	}
	if fresh.Extra("id_token") == nil {
		t.Error("refresh answer lacks an id_token")
	}

	svc, err := people.NewService(ctx, option.WithHTTPClient(oauth2.NewClient(ctx, ts)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.People.Get("people/me").PersonFields("names,emailAddresses,photos").Context(ctx).Do()
	if err != nil {
		t.Fatalf("People.Get: %v", err)
	}
	if p.ResourceName != "people/"+adaSub || p.Names[0].DisplayName != "Ada Lovelace" || p.EmailAddresses[0].Value != "ada@example.com" || p.Photos[0].Url == "" {
		t.Errorf("person %+v", p)
	}

	// Errors come back as the libraries' typed errors.
	if _, err := conf.Exchange(ctx, code); err == nil {
		t.Error("a reused code was accepted")
	} else {
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" || re.ErrorDescription != "Code was already redeemed." {
			t.Errorf("reused code: %v", err)
		}
	}
	if _, err := svc.People.Get("people/me").Context(ctx).Do(); err == nil {
		t.Error("people/me without personFields succeeded")
	}
	if got := e.emu.Stats().Endpoints["certs"].Requests; got < 1 {
		t.Errorf("idtoken fetched the keys %d times", got)
	}
}
