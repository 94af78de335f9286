package postgres

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"example.com/signin"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/grant/granttest"
	"example.com/signin/internal/pgtest"
)

// The tests re-execute the test binary as helper processes (another
// replica, or an offline-fetch run), configured by these variables.
const (
	envHelper = "SIGNIN_PGSTORE_HELPER" // "increment" or "refresh"
	envURL    = "SIGNIN_PGSTORE_URL"
	envSub    = "SIGNIN_PGSTORE_SUB"
	envCount  = "SIGNIN_PGSTORE_COUNT"
)

// refreshDelay is how long the simulated refresh at Google takes: long
// enough for every other caller to be waiting on the lock meanwhile.
const refreshDelay = 300 * time.Millisecond

// refresh does what the app's saving token source does inside Update: use
// the stored access token while it is fresh, else refresh it at Google
// (slowly) and save the new one. It adds one to refreshes per refresh made.
func refresh(ctx context.Context, st grant.Store, sub string, refreshes *atomic.Int32) (*grant.Record, error) {
	return st.Update(ctx, sub, func(cur *grant.Record) (*grant.Record, error) {
		if cur == nil {
			return nil, fmt.Errorf("no record for %q", sub)
		}
		if cur.Token.Expiry.After(time.Now().Add(time.Minute)) {
			return nil, nil // fresh: nothing to do
		}
		time.Sleep(refreshDelay) // the call to Google
		n := refreshes.Add(1)
		cur.Token.AccessToken = fmt.Sprintf("at-refreshed-%d-%d", os.Getpid(), n)
		cur.Token.Expiry = time.Now().Add(time.Hour)
		return cur, nil
	})
}

// Two replicas (two pools) with several requests each, and an
// offline-fetch process, refresh the same user's expired token at once:
// one refresh happens at Google, and every caller ends with the new token.
func TestOneRefreshAcrossReplicas(t *testing.T) {
	url := pgtest.URL(t)
	replicas := []*Store{mustOpen(t, url), mustOpen(t, url)}
	const sub, perReplica, inChild = "109876543210987654321", 8, 4
	granttest.Put(t, replicas[0], granttest.NewRecord(sub, time.Now().Add(-time.Minute)))

	// The other process says "ready" once connected, and starts on "go".
	child := helper(t, "refresh", url, sub, inChild)
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	in, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewReader(out)
	if line, _ := lines.ReadString('\n'); line != "ready\n" {
		child.Process.Kill()
		child.Wait()
		t.Fatalf("helper process did not start: %q\n%s", line, child.Stderr)
	}

	start := make(chan bool)
	var refreshes atomic.Int32
	tokens := make(chan string, 2*perReplica)
	var wg sync.WaitGroup
	for _, st := range replicas {
		for range perReplica {
			wg.Go(func() {
				<-start
				rec, err := refresh(t.Context(), st, sub, &refreshes)
				if err != nil {
					t.Error(err)
					return
				}
				tokens <- rec.Token.AccessToken
			})
		}
	}
	fmt.Fprintln(in, "go")
	close(start)
	wg.Wait()
	close(tokens)
	childOut, _ := lines.ReadString('\n')
	if err := child.Wait(); err != nil {
		t.Fatalf("helper process: %v\n%s", err, child.Stderr)
	}
	var childRefreshes int
	var childToken string
	if _, err := fmt.Sscanf(childOut, "refreshes=%d token=%s", &childRefreshes, &childToken); err != nil {
		t.Fatalf("helper process said %q: %v", childOut, err)
	}

	if total := int(refreshes.Load()) + childRefreshes; total != 1 {
		t.Errorf("%d refreshes at Google (%d here, %d in the other process), want 1", total, refreshes.Load(), childRefreshes)
	}
	stored, err := replicas[1].Get(t.Context(), sub)
	if err != nil {
		t.Fatal(err)
	}
	want := stored.Token.AccessToken
	if !strings.HasPrefix(want, "at-refreshed-") {
		t.Fatalf("stored token %q was not refreshed", want)
	}
	for tok := range tokens {
		if tok != want {
			t.Errorf("a caller ended with token %q, want the refreshed %q", tok, want)
		}
	}
	if childToken != want {
		t.Errorf("the other process ended with token %q, want %q", childToken, want)
	}
}

// Increments from another process and from goroutines on two pools lose
// nothing.
func TestCrossProcessUpdates(t *testing.T) {
	url := pgtest.URL(t)
	a, b := mustOpen(t, url), mustOpen(t, url)
	const sub, procs, each = "109876543210987654321", 2, 25
	granttest.Put(t, a, granttest.NewRecord(sub, time.Now()))
	var cmds []*exec.Cmd
	for range procs {
		cmd := helper(t, "increment", url, sub, each)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	var wg sync.WaitGroup
	for _, st := range []*Store{a, b, a, b} {
		wg.Go(func() {
			for range each {
				if err := granttest.Increment(t.Context(), st, sub); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper process: %v\n%s", err, cmd.Stderr)
		}
	}
	if got, want := granttest.Count(t, a, sub), (procs+4)*each; got != want {
		t.Errorf("counter = %d after %d increments: updates were lost", got, want)
	}
}

// Two first writers of a user with no row yet are serialised too: the
// second sees the first one's record.
func TestFirstWritersSerialised(t *testing.T) {
	url := pgtest.URL(t)
	a, b := mustOpen(t, url), mustOpen(t, url)
	const sub = "42"
	var created atomic.Int32
	var wg sync.WaitGroup
	for _, st := range []*Store{a, b, a, b, a, b} {
		wg.Go(func() {
			_, err := st.Update(t.Context(), sub, func(cur *grant.Record) (*grant.Record, error) {
				if cur != nil {
					return nil, nil
				}
				time.Sleep(50 * time.Millisecond)
				created.Add(1)
				return granttest.NewRecord(sub, time.Now()), nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := created.Load(); n != 1 {
		t.Errorf("%d writers saw no record and created one, want 1", n)
	}
}

// A caller waiting longer than LockTimeout for a user's lock gets a clear
// EUNAVAILABLE error, and the holder's write stands.
func TestLockTimeout(t *testing.T) {
	url := pgtest.URL(t)
	holder := mustOpen(t, url)
	waiter, err := Open(t.Context(), Config{URL: url, LockTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer waiter.Close()
	const sub = "7"
	granttest.Put(t, holder, granttest.NewRecord(sub, time.Now()))

	locked, release := make(chan bool), make(chan bool)
	done := make(chan error, 1)
	go func() {
		_, err := holder.Update(t.Context(), sub, func(cur *grant.Record) (*grant.Record, error) {
			close(locked)
			<-release
			cur.Token.AccessToken = "holder"
			return cur, nil
		})
		done <- err
	}()
	<-locked
	_, err = waiter.Update(t.Context(), sub, func(cur *grant.Record) (*grant.Record, error) { return cur, nil })
	if signin.ErrorKind(err) != signin.EUNAVAILABLE || signin.ErrorCode(err) != CodeRecordBusy {
		t.Errorf("Update while another holds the lock past LockTimeout: %v; want EUNAVAILABLE %s", err, CodeRecordBusy)
	}
	if err := waiter.Delete(t.Context(), sub); signin.ErrorCode(err) != CodeRecordBusy {
		t.Errorf("Delete while another holds the lock: %v; want %s", err, CodeRecordBusy)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("holder: %v", err)
	}
	if rec, err := waiter.Get(t.Context(), sub); err != nil || rec.Token.AccessToken != "holder" {
		t.Errorf("after the holder: %v, %v", rec, err)
	}
}

// A holder that keeps the lock past HoldTimeout loses it, and with it its
// write: the waiter then proceeds from the record as it was, and the
// holder's late result is never saved over the waiter's. (A lock with a
// TTL that lets the holder write after the TTL loses refresh tokens.)
func TestHoldTimeoutEndsTheHoldersWrite(t *testing.T) {
	url := pgtest.URL(t)
	holder, err := Open(t.Context(), Config{URL: url, HoldTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	other := mustOpen(t, url)
	const sub = "7"
	granttest.Put(t, other, granttest.NewRecord(sub, time.Now()))

	locked := make(chan bool)
	done := make(chan error, 1)
	go func() {
		_, err := holder.Update(t.Context(), sub, func(cur *grant.Record) (*grant.Record, error) {
			close(locked)
			time.Sleep(time.Second) // hangs past HoldTimeout
			cur.Token.AccessToken = "late holder"
			return cur, nil
		})
		done <- err
	}()
	<-locked
	begin := time.Now()
	if _, err := other.Update(t.Context(), sub, func(cur *grant.Record) (*grant.Record, error) {
		cur.Token.AccessToken = "waiter"
		return cur, nil
	}); err != nil {
		t.Fatalf("waiter: %v", err)
	}
	if waited := time.Since(begin); waited > 900*time.Millisecond {
		t.Errorf("waiter waited %v: the holder kept the lock past HoldTimeout", waited)
	}
	err = <-done
	if signin.ErrorKind(err) != signin.EUNAVAILABLE {
		t.Errorf("holder past HoldTimeout: %v; want an EUNAVAILABLE error", err)
	}
	if rec, err := other.Get(t.Context(), sub); err != nil || rec.Token.AccessToken != "waiter" {
		t.Errorf("stored: %+v, %v; want the waiter's write", rec, err)
	}
	// The holder's pool recovers.
	if _, err := holder.Get(t.Context(), sub); err != nil {
		t.Errorf("holder's next Get: %v", err)
	}
}

func helper(t *testing.T, what, url, sub string, count int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envHelper+"="+what, envURL+"="+url, envSub+"="+sub, envCount+"="+strconv.Itoa(count))
	cmd.Stderr = new(bytes.Buffer)
	return cmd
}

// TestHelperProcess is not a test: it is the other process of
// TestCrossProcessUpdates and TestOneRefreshAcrossReplicas.
func TestHelperProcess(t *testing.T) {
	what := os.Getenv(envHelper)
	if what == "" {
		t.Skip("helper process for other tests")
	}
	ctx := context.Background()
	s, err := Open(ctx, Config{URL: os.Getenv(envURL)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer s.Close()
	sub := os.Getenv(envSub)
	n, _ := strconv.Atoi(os.Getenv(envCount))
	switch what {
	case "increment":
		for range n {
			if err := granttest.Increment(ctx, s, sub); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
	case "refresh":
		fmt.Println("ready")
		bufio.NewReader(os.Stdin).ReadString('\n') // "go"
		var refreshes atomic.Int32
		tokens := make([]string, n)
		var wg sync.WaitGroup
		var failed atomic.Bool
		for i := range n {
			wg.Go(func() {
				rec, err := refresh(ctx, s, sub, &refreshes)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					failed.Store(true)
					return
				}
				tokens[i] = rec.Token.AccessToken
			})
		}
		wg.Wait()
		if failed.Load() {
			os.Exit(1)
		}
		for _, tok := range tokens[1:] {
			if tok != tokens[0] {
				fmt.Fprintf(os.Stderr, "callers in this process ended with different tokens: %q\n", tokens)
				os.Exit(1)
			}
		}
		fmt.Printf("refreshes=%d token=%s\n", refreshes.Load(), tokens[0])
	}
	s.Close()
	os.Exit(0)
}
