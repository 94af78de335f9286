package auth_test

import (
	"context"
	"sync"
	"testing"
)

// TestRefreshWhileExchanging: the web server exchanges codes while its
// profile fetcher refreshes tokens through the same Google. Under -race it
// guards the shared oauth2.Config, whose auth-style cache Exchange sets on
// first use.
func TestRefreshWhileExchanging(t *testing.T) {
	f := newFakeGoogle(t, answer(200, "application/json", tokenAnswer))
	g, _ := newGoogle(t, f)
	done := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				if _, err := g.Refresh(context.Background(), "1//refresh"); err != nil {
					t.Error(err)
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
