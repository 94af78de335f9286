package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"example.com/signin/internal/emulator"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/offline"
)

// TestConcurrentConnects is issue 6's concurrency test: 100 /connect
// requests at once for 20 users, while offline-fetch runs in a loop over
// the same file store, refreshing every stored user's access token on each
// pass (tokens live 30 s, under the one-minute refresh margin) and writing
// it back. Half the users connected before (their records are being
// refreshed when the burst arrives), half are new. Each user's five codes
// are a first or a forced consent bringing a refresh token and codes
// without one, posted from signed-out browsers and from browsers already
// signed in as the user. Run it with -race.
//
// Every request succeeds and signs its browser in as its user; no pass of
// offline-fetch fails or finds a grant revoked; afterwards every record
// decodes, holds a refresh token Google accepts (a last pass fetches
// everyone), and no temporary file is left.
func TestConcurrentConnects(t *testing.T) {
	const users, codesPerUser = 20, 5
	re := newRealEnv(t, &realConfig{
		Emulator: emulator.Config{AccessTokenTTL: 30 * time.Second},
		// A hundred exchanges, ID token signatures and fsyncs at once on
		// a small machine under -race: give Google production's patience.
		GoogleTimeout: 20 * time.Second,
	})

	type post struct {
		sub  string
		code string
		b    *browser
	}
	var posts []post
	for i := range users {
		u := re.user(fmt.Sprintf("user%02d@example.com", i), fmt.Sprintf("User %02d", i))
		returning := i < users/2
		if returning {
			mustStatus(t, re.browser().xhr("/connect", url.Values{"code": {re.code(u.Sub, false)}}), http.StatusOK)
		}
		for j := range codesPerUser {
			// Codes are minted in order: a new user's first offline
			// consent brings a refresh token, prompt=consent (j == 1)
			// another one, the rest none.
			p := post{sub: u.Sub, code: re.code(u.Sub, j == 1), b: re.browser()}
			if j >= 2 {
				mustStatus(t, p.b.xhr("/tokensignin", url.Values{"credential": {re.idToken(u.Sub)}}), http.StatusOK)
			}
			posts = append(posts, p)
		}
	}

	// offline-fetch, over and over until the connects are done.
	done := make(chan struct{})
	firstPass := make(chan struct{})
	type pass struct {
		sum        offline.Summary
		err        error
		out        string
		start, end time.Time
	}
	var passes []pass
	var loop sync.WaitGroup
	loop.Go(func() {
		for {
			var out strings.Builder
			start := time.Now()
			sum, err := re.runOffline(context.Background(), &out)
			passes = append(passes, pass{sum, err, out.String(), start, time.Now()})
			if len(passes) == 1 {
				close(firstPass)
			}
			select {
			case <-done:
				return
			default:
			}
		}
	})
	<-firstPass // the loop is running over the returning users' records

	results := make([]*response, len(posts))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, p := range posts {
		wg.Go(func() {
			<-start
			results[i] = postForm(p.b, "/connect", url.Values{"code": {p.code}})
		})
	}
	burstStart := time.Now()
	close(start)
	wg.Wait()
	burstEnd := time.Now()
	close(done)
	loop.Wait()

	for i, r := range results {
		if r.status != http.StatusOK {
			t.Errorf("connect %d (user %s): %d %s", i, posts[i].sub, r.status, r.body)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	for i, p := range posts {
		if got := p.b.signedInAs(); got != p.sub {
			t.Errorf("browser %d is signed in as %q, want %q", i, got, p.sub)
		}
	}
	overlapping, fetched := 0, 0
	for i, p := range passes {
		if p.err != nil || p.sum.Failed != 0 || p.sum.Revoked != 0 {
			t.Errorf("offline-fetch pass %d: %+v, %v\n%s", i, p.sum, p.err, p.out)
		}
		if p.start.Before(burstEnd) && p.end.After(burstStart) {
			overlapping++
			fetched += p.sum.OK
		}
	}
	if overlapping == 0 {
		t.Error("no offline-fetch pass ran during the connects")
	}

	n := 0
	if err := re.files.List(t.Context(), func(rec *grant.Record, err error) error {
		if err != nil {
			t.Errorf("unreadable record: %v", err)
			return nil
		}
		n++
		if rec.Token.RefreshToken == "" || rec.Status != grant.StatusActive || rec.Email == "" {
			t.Errorf("record %s: status %q, email %q, refresh token present: %v", rec.Sub, rec.Status, rec.Email, rec.Token.RefreshToken != "")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != users {
		t.Errorf("%d records, want %d", n, users)
	}
	ents, err := os.ReadDir(re.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
	// Every stored refresh token works.
	sum, err := re.runOffline(t.Context(), io.Discard)
	sum.Refreshed = 0 // how many need it depends on the timing of the passes
	if err != nil || sum != (offline.Summary{OK: users}) {
		t.Errorf("last pass: %+v, %v", sum, err)
	}
	if got, want := re.emu.Stats().Grants["authorization_code"], len(posts)+users/2; got != want {
		t.Errorf("%d codes redeemed, want %d", got, want)
	}
	t.Logf("%d concurrent connects for %d users; %d offline-fetch passes during them, refreshing and saving %d users' tokens",
		len(posts), users, overlapping, fetched)
}
