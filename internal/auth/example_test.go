package auth_test

import (
	"context"
	"fmt"
	"os"

	"example.com/signin"
	"example.com/signin/internal/auth"
	"example.com/signin/internal/googlenet"
)

// A server verifies the ID token of each sign-in with Verify, and the
// bearer token of each API call with VerifyCached.
func ExampleVerifier() {
	net, err := googlenet.New(os.Getenv(googlenet.EnvEmulatorHost), googlenet.Options{})
	if err != nil {
		panic(err)
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{
		Audiences:  []string{"1234-web.apps.googleusercontent.com", "1234-android.apps.googleusercontent.com"},
		HTTPClient: net.HTTPClient(), // keys come from Google, or the emulator
	})
	if err != nil {
		panic(err)
	}
	credential := "the credential GIS posted" // an ID token
	claims, err := v.Verify(context.Background(), credential, "")
	switch signin.ErrorKind(err) {
	case signin.EUNAUTHORIZED: // forged, expired, for another app...: 401
	case signin.EUPSTREAM: // Google's keys unavailable: 502, try again
	}
	if err == nil {
		fmt.Println("signed in:", claims.Sub) // identify users by Sub, never by Email
	}
}
