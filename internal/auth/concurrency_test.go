package auth_test

import (
	"context"
	"sync"
	"testing"
)

// TestOAuth2ConfigWhileExchanging: OAuth2Config may be called while
// exchanges run (offline-fetch and the web server's profile fetcher take
// it from the same Google). Under -race it guards against OAuth2Config copying
// the oauth2.Config struct, whose auth-style cache Exchange sets
// atomically on first use.
func TestOAuth2ConfigWhileExchanging(t *testing.T) {
	f := newFakeGoogle(t, answer(200, "application/json", tokenAnswer))
	g, _ := newGoogle(t, f)
	done := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				if c := g.OAuth2Config(); c.ClientID != webID || c.RedirectURL != "postmessage" {
					t.Errorf("config %+v", c)
				}
				select {
				case <-done:
					return
				default:
				}
			}
		})
	}
	var exchanges sync.WaitGroup
	for range 4 {
		exchanges.Go(func() {
			if _, err := g.Exchange(context.Background(), testCode); err != nil {
				t.Error(err)
			}
		})
	}
	exchanges.Wait()
	close(done)
	readers.Wait()
}
