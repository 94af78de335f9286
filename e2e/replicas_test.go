package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"example.com/signin/internal/pgtest"
)

// replicas is a google-emulator and two signin processes ("replicas") on one
// PostgreSQL database, each with its own credentials directory, so that
// nothing they share goes through files.
type replicas struct {
	emuURL, emuAddr string
	db              string
	env             []string
	apps            [2]string // base URLs
	procs           [2]*process
	emu             *emulatorClient
}

func startReplicas(t *testing.T, emuArgs ...string) *replicas {
	t.Helper()
	r := &replicas{db: pgtest.URL(t)}
	work := t.TempDir()
	emu := startProcess(t, "google-emulator", binaries.emulator, work, nil, append([]string{"-addr", "127.0.0.1:0"}, emuArgs...)...)
	r.emuURL = emu.waitOutput(t, emulatorListening)
	r.emuAddr = strings.TrimPrefix(r.emuURL, "http://")
	waitHTTP(t, emu, r.emuURL+"/emulator/v1/stats")
	r.emu = newEmulatorClient(r.emuURL)

	key := make([]byte, 32)
	_, _ = rand.Read(key)
	s := &stack{EmuAddr: r.emuAddr}
	sealKey := make([]byte, 32)
	_, _ = rand.Read(sealKey)
	r.env = append(s.env(), "SESSION_KEYS="+base64.StdEncoding.EncodeToString(key),
		"SIGNIN_ENCRYPTION_KEYS="+base64.StdEncoding.EncodeToString(sealKey))
	for i := range r.procs {
		p := startProcess(t, fmt.Sprintf("signin-%c", 'A'+i), binaries.signin, work, r.env,
			"-addr", "127.0.0.1:0", "-credentials", fmt.Sprintf("%s/credentials-%d", work, i),
			"-database", r.db, "-log-level", "debug")
		r.apps[i] = p.waitOutput(t, signinServing)
		waitHTTP(t, p, r.apps[i]+"/readyz") // the database answered: a replica listens before
		r.procs[i] = p
	}
	return r
}

// client is a browser-like HTTP client: a cookie jar shared by requests to
// either replica (they are one site behind a load balancer: the tests send
// the jar's cookies for the replica's host by hand).
type client struct {
	hc  *http.Client
	jar *cookiejar.Jar
}

func newClient() *client {
	jar, _ := cookiejar.New(nil)
	return &client{hc: &http.Client{Timeout: 30 * time.Second}, jar: jar}
}

// post sends a page's XHR POST to base+path and returns the status and JSON.
func (c *client) post(ctx context.Context, base, path string, form url.Values) (int, map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Requested-With", "XmlHttpRequest")
	return c.do(req)
}

func (c *client) get(ctx context.Context, base, path string) (int, map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return 0, nil, err
	}
	return c.do(req)
}

// do sends req with the client's cookies, whichever replica it goes to,
// and keeps the cookies it answers with.
func (c *client) do(req *http.Request) (int, map[string]any, error) {
	site, _ := url.Parse("http://signin.test/")
	for _, ck := range c.jar.Cookies(site) {
		req.AddCookie(ck)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	c.jar.SetCookies(site, resp.Cookies())
	var out map[string]any
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out, nil
}

func (r *replicas) code(ctx context.Context, t *testing.T, sub string) string {
	t.Helper()
	var res struct {
		Code string `json:"code"`
	}
	req := map[string]string{"client_id": demoClientID, "sub": sub, "scope": "openid email profile",
		"access_type": "offline", "prompt": "consent", "redirect_uri": "postmessage"}
	if err := r.emu.do(ctx, http.MethodPost, "/emulator/v1/codes", req, &res); err != nil {
		t.Fatal(err)
	}
	return res.Code
}

func (r *replicas) addUser(ctx context.Context, t *testing.T, email string) emuUser {
	t.Helper()
	var u emuUser
	if err := r.emu.do(ctx, http.MethodPost, "/emulator/v1/users", map[string]string{"email": email}, &u); err != nil {
		t.Fatal(err)
	}
	return u
}

// offlineFetch runs offline-fetch -database -json and returns its exit code
// and the status of each user's line.
func (r *replicas) offlineFetch(ctx context.Context, t *testing.T) (int, map[string]string) {
	t.Helper()
	s := &stack{EmuAddr: r.emuAddr, CredDir: t.TempDir(), WorkDir: t.TempDir()}
	code, stdout, stderr := s.offlineFetchEnv(ctx, t, r.env, "-database", r.db, "-json", "-concurrency", "16")
	statuses := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		var l struct{ Sub, Status string }
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			statuses[l.Sub] = l.Status
		}
	}
	if code != 0 {
		t.Logf("offline-fetch exit %d; stderr:\n%s", code, stderr)
	}
	return code, statuses
}

// TestReplicasShareOneDatabase: a session made on replica A is good on B;
// offline access granted through A is used by B; offline-fetch with
// -database sees every user; a sign-out on B ends the session on A.
func TestReplicasShareOneDatabase(t *testing.T) {
	ctx := t.Context()
	r := startReplicas(t)
	a, b := r.apps[0], r.apps[1]
	ada := r.addUser(ctx, t, "ada.replicas@example.com")
	c := newClient()
	if st, _, err := c.post(ctx, a, "/tokensignin", url.Values{"credential": {r.emu.mintIDToken(ctx, t, ada.Sub)}}); err != nil || st != 200 {
		t.Fatalf("sign-in on A: %d %v", st, err)
	}
	if st, me, err := c.get(ctx, b, "/api/me"); err != nil || st != 200 || me["user"].(map[string]any)["sub"] != ada.Sub {
		t.Fatalf("A's session on B: %d %v %v", st, me, err)
	}
	if st, me, err := c.post(ctx, a, "/connect", url.Values{"code": {r.code(ctx, t, ada.Sub)}}); err != nil || st != 200 || me["offline"] != true {
		t.Fatalf("connect on A: %d %v %v", st, me, err)
	}
	// B keeps users' credentials rows in memory (it read ada's absence for
	// /api/me) and hears of A's write through PostgreSQL's notifications:
	// within a second (issue 19), not at once.
	for deadline := time.Now().Add(10 * time.Second); ; {
		st, p, err := c.get(ctx, b, "/api/profile")
		if err == nil && st == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("profile on B with A's grant, 10 s after the connect: %d %v %v", st, p, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, statuses := r.offlineFetch(ctx, t); code != 0 || statuses[ada.Sub] != "ok" {
		t.Errorf("offline-fetch -database: exit %d, %v", code, statuses)
	}
	if st, _, err := c.post(ctx, b, "/signout", nil); err != nil || st != 200 {
		t.Fatalf("sign-out on B: %d %v", st, err)
	}
	time.Sleep(1100 * time.Millisecond) // replicas trust a live check for 1 s
	if st, _, _ := c.get(ctx, a, "/api/me"); st != http.StatusUnauthorized {
		t.Errorf("A after sign-out on B: %d, want 401", st)
	}
}

// TestReplicasConnectStorm: 100 users connect at once, spread over both
// replicas, while offline-fetch runs with access tokens that expire within
// seconds, and replica B is killed (SIGKILL) in the middle. Users whose
// request B dropped try again on A, as a browser would. Afterwards every
// user has a working refresh token: offline-fetch, with every access token
// expired, succeeds for all of them.
func TestReplicasConnectStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	ctx := t.Context()
	r := startReplicas(t, "-access-token-ttl", "65s") // expired to us (1 min margin) within 5 s
	const n = 100
	users := make([]emuUser, n)
	for i := range users {
		users[i] = r.addUser(ctx, t, fmt.Sprintf("storm%03d@example.com", i))
	}

	stopFetch := make(chan struct{})
	var fetches atomic.Int64
	var fetchWG sync.WaitGroup
	fetchWG.Go(func() {
		for {
			select {
			case <-stopFetch:
				return
			default:
			}
			r.offlineFetch(ctx, t) // users who are mid-connect may fail; only the end counts
			fetches.Add(1)
		}
	})

	var killed atomic.Bool
	var done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, u := range users {
		wg.Go(func() {
			c := newClient()
			// Alternate replicas; once B is gone, everyone uses A.
			for attempt := 0; attempt < 5; attempt++ {
				base := r.apps[(i+attempt)%2]
				if killed.Load() {
					base = r.apps[0]
				}
				st, me, err := c.post(ctx, base, "/connect", url.Values{"code": {r.code(ctx, t, u.Sub)}})
				if err == nil && st == 200 && me["offline"] == true {
					if done.Add(1) == n/2 && killed.CompareAndSwap(false, true) {
						_ = r.procs[1].cmd.Process.Kill() // kill -9, mid-storm
					}
					return
				}
			}
			errs <- fmt.Errorf("%s never connected", u.Email)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	close(stopFetch)
	fetchWG.Wait()
	if !killed.Load() {
		t.Fatal("replica B was not killed mid-storm")
	}

	time.Sleep(5 * time.Second) // every access token now looks expired
	code, statuses := r.offlineFetch(ctx, t)
	lost := 0
	for _, u := range users {
		if statuses[u.Sub] != "ok" {
			lost++
			t.Errorf("%s: %q after the storm", u.Email, statuses[u.Sub])
		}
	}
	if code != 0 || lost != 0 {
		t.Errorf("offline-fetch after the storm: exit %d, %d of %d users without a working refresh token", code, lost, n)
	}
	t.Logf("%d connects, %d offline-fetch runs during the storm, replica B killed after %d", n, fetches.Load(), n/2)
}
