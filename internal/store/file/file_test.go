package file

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"example.com/signin"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/grant/granttest"
	"example.com/signin/internal/store/sessiontest"
)

// The tests re-execute the test binary as helper processes (other
// "programs" sharing the store); these variables tell it what to do.
const (
	envHelper = "SIGNIN_FILESTORE_HELPER" // "increment" or "crash"
	envDir    = "SIGNIN_FILESTORE_DIR"
	envSub    = "SIGNIN_FILESTORE_SUB"
	envCount  = "SIGNIN_FILESTORE_COUNT"
)

func mustOpen(t testing.TB, dir string) *Store {
	t.Helper()
	return mustOpenConfig(t, Config{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
}

func mustOpenConfig(t testing.TB, cfg Config) *Store {
	t.Helper()
	dir := cfg.Dir
	s, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open(%q): %v", dir, err)
	}
	return s
}

func TestContract(t *testing.T) {
	granttest.Run(t, func(t *testing.T) grant.Store { return mustOpen(t, t.TempDir()) },
		func(t *testing.T, st grant.Store, sub string) {
			// Cut the record short, as a copy onto a full disk would.
			path := filepath.Join(st.(*Store).dir, fileName(sub)+recordExt)
			if err := os.WriteFile(path, []byte(`{"version":1,"sub":"`+sub+`","status":"act`), 0o600); err != nil {
				t.Fatal(err)
			}
		})
}

func TestModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "credentials")
	s := mustOpen(t, dir)
	granttest.Put(t, s, granttest.NewRecord("109876543210987654321", time.Now()))
	wantMode(t, dir, 0o700|fs.ModeDir)
	wantMode(t, filepath.Join(dir, "109876543210987654321.json"), 0o600)
	wantMode(t, filepath.Join(dir, "109876543210987654321.lock"), 0o600)
}

// TestLooseDirectoryTightened: a directory others can read is tightened to
// 0700; with records in it that is a warning, while a fresh checkout's
// (nothing but .keep) is routine, at info.
func TestLooseDirectoryTightened(t *testing.T) {
	for _, tc := range []struct {
		name, file, level string
	}{
		{"with a record", "109876543210987654321.json", "level=WARN"},
		{"fresh checkout", ".keep", "level=INFO"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "credentials")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, tc.file), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, 0o755); err != nil { // whatever the umask
				t.Fatal(err)
			}
			var logs bytes.Buffer
			mustOpenConfig(t, Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			wantMode(t, dir, 0o700|fs.ModeDir)
			if !strings.Contains(logs.String(), tc.level) || !strings.Contains(logs.String(), "was=0755") {
				t.Errorf("want a %s line about the loose directory; logs:\n%s", tc.level, logs.String())
			}
		})
	}
}

func TestOpenRefusesAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{Dir: path}); signin.ErrorKind(err) != signin.EINVALID {
		t.Errorf("Open(a file) = %v, want EINVALID", err)
	}
	if _, err := Open(Config{}); signin.ErrorKind(err) != signin.EINVALID {
		t.Errorf("Open(\"\") = %v, want EINVALID", err)
	}
}

func wantMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode(); got != want {
		t.Errorf("mode of %s = %v, want %v", filepath.Base(path), got, want)
	}
}

func TestFileNames(t *testing.T) {
	tests := []struct {
		name, sub, want string
		hashed          bool
	}{
		{name: "google sub", sub: "109876543210987654321", want: "109876543210987654321"},
		{name: "64 digits", sub: strings.Repeat("1", 64), want: strings.Repeat("1", 64)},
		{name: "65 digits", sub: strings.Repeat("1", 65), want: "x-" + strings.Repeat("31", 65)},
		{name: "parent dirs", sub: "../../x", want: "x-2e2e2f2e2e2f78"},
		{name: "slash", sub: "a/b", want: "x-612f62"},
		{name: "nul", sub: "a\x00b", want: "x-610062"},
		{name: "looks like ours", sub: "x-41", want: "x-782d3431"},
		{name: "101 bytes", sub: strings.Repeat("a", 101), hashed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fileName(tt.sub)
			if tt.hashed {
				if !strings.HasPrefix(got, "h-") || len(got) != 2+64 {
					t.Errorf("fileName = %q, want h-<sha256>", got)
				}
			} else if got != tt.want {
				t.Errorf("fileName(%q) = %q, want %q", tt.sub, got, tt.want)
			}
			if !isRecordName(got) {
				t.Errorf("isRecordName(%q) = false for a name fileName made", got)
			}
		})
	}
}

// TestHostileSubsStayInside stores records for subs made to escape and
// checks that every file created is a plain, safely named file directly in
// the store's directory, and that nothing appeared beside it.
func TestHostileSubsStayInside(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "credentials")
	s := mustOpen(t, dir)
	subs := append(granttest.HostileSubs(), "../../../../../../../../tmp/evil", "/", "./..", "\x00")
	for _, sub := range subs {
		granttest.Put(t, s, granttest.NewRecord(sub, time.Now()))
	}
	// Too long, or not UTF-8: refused, nothing written.
	for _, sub := range []string{strings.Repeat("../", 100), "\xff/../x"} {
		if _, err := s.Update(t.Context(), sub, func(*grant.Record) (*grant.Record, error) {
			return granttest.NewRecord("1", time.Now()), nil
		}); signin.ErrorKind(err) != signin.EINVALID {
			t.Errorf("Update(%q) = %v, want EINVALID", sub, err)
		}
	}
	safe := regexp.MustCompile(`^([0-9]{1,64}|x-[0-9a-f]{2,200}|h-[0-9a-f]{64})\.(json|lock)$`)
	var files int
	err := filepath.WalkDir(parent, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case path == parent || path == dir:
			return nil
		case filepath.Dir(path) != dir:
			t.Errorf("file outside the store directory: %s", path)
		case !d.Type().IsRegular():
			t.Errorf("not a regular file: %s", path)
		case !safe.MatchString(d.Name()):
			t.Errorf("unexpected file name %q", d.Name())
		}
		files++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 * len(subs); files != want {
		t.Errorf("%d files in the store directory, want %d (a record and a lock per sub)", files, want)
	}
}

// TestMisplacedRecord: a record whose sub does not match its file name (a
// file copied or renamed by hand) is not served as the other user's.
func TestMisplacedRecord(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	granttest.Put(t, s, granttest.NewRecord("111", time.Now()))
	if err := os.Rename(filepath.Join(dir, "111.json"), filepath.Join(dir, "222.json")); err != nil {
		t.Fatal(err)
	}
	rec, err := s.Get(t.Context(), "222")
	if err == nil || signin.ErrorCode(err) != grant.CodeCorruptRecord {
		t.Errorf("Get(222) = %+v, %v; want a corrupt_record error", rec, err)
	}
}

// TestCorruptRecordNotOverwritten: Update refuses to replace a record it
// cannot read; it may hold the user's only refresh token.
func TestCorruptRecordNotOverwritten(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	path := filepath.Join(dir, "5.json")
	if err := os.WriteFile(path, []byte(`{"version":1,"sub":"5","tok`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := s.Update(t.Context(), "5", func(*grant.Record) (*grant.Record, error) {
		return granttest.NewRecord("5", time.Now()), nil
	})
	if signin.ErrorCode(err) != grant.CodeCorruptRecord {
		t.Errorf("Update over a corrupt record = %v, want corrupt_record", err)
	}
	if b, _ := os.ReadFile(path); !bytes.HasSuffix(b, []byte(`"tok`)) {
		t.Errorf("corrupt record was overwritten")
	}
}

func TestDeleteLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	for _, sub := range []string{"1", "../x"} {
		granttest.Put(t, s, granttest.NewRecord(sub, time.Now()))
		if err := s.Delete(t.Context(), sub); err != nil {
			t.Fatal(err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("files left after Delete: %v", ents)
	}
}

func TestStaleTempsRemoved(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	for name, age := range map[string]time.Duration{".tmp-old": 2 * time.Hour, ".tmp-new": time.Minute} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("{"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	mustOpenConfig(t, Config{Dir: dir, Now: func() time.Time { return now }})
	if _, err := os.Stat(filepath.Join(dir, ".tmp-old")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale temporary file kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".tmp-new")); err != nil {
		t.Errorf("recent temporary file (a writer may be using it) removed: %v", err)
	}
}

// TestLockWaitCancelled: a writer waiting for a user's lock, held by another
// process (here another Store on the same directory, which shares only the
// flock) or by another goroutine, gives up when its context ends, and
// fn is not called.
func TestLockWaitCancelled(t *testing.T) {
	dir := t.TempDir()
	holder, other := mustOpen(t, dir), mustOpen(t, dir)
	granttest.Put(t, holder, granttest.NewRecord("9", time.Now()))

	inside, release := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		_, err := holder.Update(context.Background(), "9", func(cur *grant.Record) (*grant.Record, error) {
			close(inside)
			<-release
			return nil, nil
		})
		done <- err
	}()
	<-inside
	for name, s := range map[string]*Store{"other process": other, "same process": holder} {
		// Long enough for the writer to be waiting when it ends; the test
		// passes whatever the timing.
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancel()
		called := make(chan struct{}, 1)
		errc := make(chan error)
		go func() {
			_, err := s.Update(ctx, "9", func(*grant.Record) (*grant.Record, error) {
				called <- struct{}{}
				return nil, nil
			})
			errc <- err
		}()
		if err := <-errc; !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: Update while locked, context ended = %v, want context.DeadlineExceeded", name, err)
		}
		if len(called) != 0 {
			t.Errorf("%s: fn ran without the lock", name)
		}
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// And the lock is free again for both.
	if err := granttest.Increment(t.Context(), other, "9"); err != nil {
		t.Fatal(err)
	}
}

// TestListStreams: List goes through thousands of records with flat memory,
// skips temporary and lock files, and reports every unreadable record
// instead of skipping it.
func TestListStreams(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	const n = 5000
	// Written directly (no fsync, several at once) to keep the test fast;
	// the format is the store's own.
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				writeRecord(t, dir, granttest.NewRecord(strconv.Itoa(100000+i), time.Now()))
			}
		})
	}
	wg.Wait()
	junk := map[string]string{
		".tmp-123":     `{"version":1,"sub":"1`, // a crashed write: not a record
		"100000.lock":  "",
		".keep":        "",
		"README":       "not a record",
		"session.json": `{"keys":[]}`, // another file in the directory: ignored
	}
	corrupt := map[string]string{
		"7.json":    `{"version":1,"sub":"7","token":`,                             // torn
		"8.json":    `{"version":2,"sub":"8","status":"active","token":{}}`,        // newer version
		"9.json":    `{"version":1,"sub":"10","status":"active","token":{}}`,       // misplaced
		"x-61.json": strings.Repeat(" ", grant.MaxRecordSize+1),                    // oversized
		"11.json":   `{"version":1,"status":"active","token":{"access_token":""}}`, // no sub
	}
	for name, body := range junk {
		writeFile(t, dir, name, body)
	}
	for name, body := range corrupt {
		writeFile(t, dir, name, body)
	}

	var ok, bad int
	var heapEarly, heapLate uint64
	err := s.List(t.Context(), func(rec *grant.Record, err error) error {
		if err != nil {
			bad++
			if signin.ErrorCode(err) != grant.CodeCorruptRecord {
				t.Errorf("unreadable record reported as %v, want corrupt_record", err)
			}
			return nil
		}
		ok++
		switch ok {
		case 200:
			heapEarly = liveHeap()
		case n - 200:
			heapLate = liveHeap()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if ok != n || bad != len(corrupt) {
		t.Errorf("List: %d records, %d errors; want %d and %d", ok, bad, n, len(corrupt))
	}
	// Holding the records seen so far would cost about 1 KiB each here.
	if grew := int64(heapLate) - int64(heapEarly); grew > 1<<20 {
		t.Errorf("live heap grew by %d bytes over %d records: List holds what it has read", grew, n-400)
	}
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func writeRecord(t testing.TB, dir string, rec *grant.Record) {
	t.Helper()
	now := time.Now().UTC()
	rec.Version, rec.CreatedAt, rec.UpdatedAt = grant.RecordVersion, now, now
	data, err := grant.EncodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, fileName(rec.Sub)+recordExt, string(data))
}

func writeFile(t testing.TB, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCrossProcessUpdates: several processes (the test binary run again)
// incrementing a counter in one user's record at once, while this process
// does the same from goroutines, lose no update.
func TestCrossProcessUpdates(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	s := mustOpen(t, dir)
	const sub, procs, each = "109876543210987654321", 4, 40
	granttest.Put(t, s, granttest.NewRecord(sub, time.Now()))

	var cmds []*exec.Cmd
	for range procs {
		cmd := helper(t, "increment", dir, sub, each)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range each {
				if err := granttest.Increment(t.Context(), s, sub); err != nil {
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
	if got, want := granttest.Count(t, s, sub), (procs+4)*each; got != want {
		t.Errorf("counter = %d after %d increments: updates were lost", got, want)
	}
}

// TestCrashSafety kills a process writing records in a loop (SIGKILL, at
// random moments, many times) and then checks that every record is whole:
// it decodes and holds a refresh token, and no temporary file is taken for
// a record. Each new writer must also get the lock its killed predecessor
// held, which the kernel releases.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	const kills = 30
	for i := range kills {
		cmd := helper(t, "crash", dir, "", 0)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan bool, 1)
		go func() { // "ready" after its first complete write
			line, _ := bufio.NewReader(out).ReadString('\n')
			ready <- line == "ready\n"
		}()
		select {
		case ok := <-ready:
			if !ok {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("writer %d did not start: %s", i, cmd.Stderr)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("writer %d made no write in 30 s: is a killed writer's lock still held?", i)
		}
		// A random moment in the middle of the writes (not a wait for
		// something to happen).
		time.Sleep(time.Duration(rand.IntN(20_000)) * time.Microsecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
	}

	s := mustOpen(t, dir)
	var n int
	if err := s.List(t.Context(), func(rec *grant.Record, err error) error {
		if err != nil {
			t.Errorf("torn or unreadable record after a crash: %v", err)
			return nil
		}
		n++
		if !strings.HasPrefix(rec.Token.RefreshToken, "rt-") {
			t.Errorf("record %q lost its refresh token: %+v", rec.Sub, rec.Token)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != crashUsers {
		t.Errorf("%d records after the crashes, want %d", n, crashUsers)
	}
	// Open removed every temporary file the kills left: they may hold whole
	// records, tokens included.
	temps, _ := filepath.Glob(filepath.Join(dir, tempPrefix+"*"))
	if len(temps) != 0 {
		t.Errorf("temporary files left after a restart: %v", temps)
	}
	t.Logf("%d kills: %d records whole", kills, n)
}

// TestUserTempsRemoved: a user's temporary file, which an interrupted write
// may have left holding a whole record, goes at once (not an hour later)
// when it is safe: at Open, at the user's next write and at Delete.
func TestUserTempsRemoved(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	plant := func(sub string) string {
		t.Helper()
		rec := granttest.NewRecord(sub, time.Now())
		rec.Version, rec.CreatedAt, rec.UpdatedAt = grant.RecordVersion, time.Now(), time.Now()
		data, err := grant.EncodeRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, tempName(fileName(sub)))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	gone := func(what, path string) {
		t.Helper()
		if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: temporary file %s still there (%v)", what, filepath.Base(path), err)
		}
	}

	granttest.Put(t, s, granttest.NewRecord("1", time.Now()))
	tmp := plant("1")
	if err := s.Delete(t.Context(), "1"); err != nil {
		t.Fatal(err)
	}
	gone("Delete", tmp)

	tmp = plant("../x")
	mustOpen(t, dir)
	gone("Open", tmp)
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("Open left files for a user with no record: %v", ents)
	}

	tmp = plant("2")
	granttest.Put(t, s, granttest.NewRecord("2", time.Now()))
	gone("Update", tmp)
}

// crashUsers is how many users the crash helper writes, in turn.
const crashUsers = 5

func helper(t *testing.T, what, dir, sub string, count int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envHelper+"="+what, envDir+"="+dir, envSub+"="+sub, envCount+"="+strconv.Itoa(count))
	cmd.Stderr = new(bytes.Buffer)
	return cmd
}

// TestHelperProcess is not a test: it is the other process of
// TestCrossProcessUpdates and TestCrashSafety.
func TestHelperProcess(t *testing.T) {
	what := os.Getenv(envHelper)
	if what == "" {
		t.Skip("helper process for other tests")
	}
	s, err := Open(Config{Dir: os.Getenv(envDir)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx := context.Background()
	switch what {
	case "increment":
		n, _ := strconv.Atoi(os.Getenv(envCount))
		for range n {
			if err := granttest.Increment(ctx, s, os.Getenv(envSub)); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
	case "crash":
		// Write records of varying size until killed, so that a torn
		// write would show as bad JSON or a record without its token.
		for i := 0; ; i++ {
			sub := strconv.Itoa(1000 + i%crashUsers)
			_, err := s.Update(ctx, sub, func(cur *grant.Record) (*grant.Record, error) {
				rec := granttest.NewRecord(sub, time.Now().Add(time.Hour))
				rec.Token.RefreshToken = fmt.Sprintf("rt-%d-%s", i, strings.Repeat("r", rand.IntN(400)))
				rec.Token.AccessToken = strings.Repeat("a", rand.IntN(2000))
				return rec, nil
			})
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			if i == crashUsers-1 {
				fmt.Println("ready")
			}
		}
	}
	os.Exit(0)
}

func TestSessionContract(t *testing.T) {
	sessiontest.Run(t, func(t *testing.T) sessiontest.Store { return mustOpen(t, t.TempDir()) })
}

// TestSessionEndsSweep: a user's file that ends nothing any more (every
// session it ends has expired) is removed by the bounded sweep after a
// write; the others stay.
func TestSessionEndsSweep(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := mustOpenConfig(t, Config{Dir: dir, Now: clock, Logger: slog.New(slog.DiscardHandler)})
	ctx := t.Context()
	for i := range 5 {
		if err := s.EndUserSessions(ctx, fmt.Sprint(100+i), now, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.EndSession(ctx, "1", "old", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.EndSession(ctx, "1", "new", now.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	if _, keys, err := s.SessionEnds(ctx, "1"); err != nil || len(keys) != 1 || keys[0] != "new" {
		t.Errorf("SessionEnds = %q, %v; want only the unexpired key", keys, err)
	}
	// Sweeps run after writes, at most once a minute, sweepBatch names
	// each: a few writes a minute apart go round this directory.
	for range 3 {
		if err := s.EndUserSessions(ctx, "2", clock(), clock().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		now = now.Add(sweepEvery)
		mu.Unlock()
	}
	var names []string
	ents, _ := os.ReadDir(filepath.Join(dir, endsDir))
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), lockExt) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	want := []string{endsName("1"), endsName("2")}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("files after the sweep %q, want those of users 1 and 2 %q", names, want)
	}
}

// TestSessionEndsDamagedFailsClosed: a damaged file of a user's ended
// sessions is an error when read, and the next write replaces it ending
// every session of the user issued until then (what it ended cannot be
// told apart), not none of them.
func TestSessionEndsDamagedFailsClosed(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	ctx := t.Context()
	if err := s.EndSession(ctx, "7", "k1", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, endsDir, endsName("7"))
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SessionEnds(ctx, "7"); err == nil {
		t.Error("a damaged file read as nothing ended")
	}
	before := time.Now()
	if err := s.EndSession(ctx, "7", "k2", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	va, keys, err := s.SessionEnds(ctx, "7")
	if err != nil || va.Before(before) || !slices.Equal(keys, []string{"k2"}) {
		t.Errorf("after the damaged file: %v %q %v; want every session until now ended, and k2", va, keys, err)
	}
}

// TestLegacySessionsRemoved: the directory of a file per session (earlier
// versions) is gone after Open, without Open reading it.
func TestLegacySessionsRemoved(t *testing.T) {
	dir := t.TempDir()
	legacy := filepath.Join(dir, legacySessions)
	if err := os.Mkdir(legacy, 0o700); err != nil {
		t.Fatal(err)
	}
	// And one whose removal a crash cut short, renamed aside by an
	// earlier Open.
	cut := filepath.Join(dir, tempPrefix+legacyAside+"1")
	if err := os.Mkdir(cut, 0o700); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		for _, d := range []string{legacy, cut} {
			if err := os.WriteFile(filepath.Join(d, fmt.Sprint(i)), []byte(`{"sub":"1"}`), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	mustOpen(t, dir)
	if _, err := os.Lstat(legacy); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s after Open: %v", legacySessions, err)
	}
	// Removed in the background: wait for it, with a generous bound.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ents, _ := os.ReadDir(dir)
		left := 0
		for _, e := range ents {
			if strings.Contains(e.Name(), "legacy-sessions") {
				left++
			}
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the old sessions are still in %s", dir)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// within runs fn and fails the test if it has not returned in 5 s: a FIFO
// opened for reading blocks until a writer comes, which would hang a
// request for ever.
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s still blocked after 5 s", what)
	}
}

// TestSpecialFilesRefused: a record that is a FIFO or a symbolic link is a
// damaged record, answered at once, never followed or waited on; a lock
// file that is a link, a FIFO or a directory is set aside, and nothing is
// created outside the directory.
func TestSpecialFilesRefused(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	ctx := t.Context()

	if err := syscall.Mkfifo(filepath.Join(dir, "1.json"), 0o600); err != nil {
		t.Fatal(err)
	}
	within(t, "Get of a FIFO record", func() {
		_, err := s.Get(ctx, "1")
		if signin.ErrorCode(err) != grant.CodeCorruptRecord {
			t.Errorf("Get of a FIFO record = %v, want corrupt_record", err)
		}
	})
	within(t, "Update of a FIFO record", func() {
		_, err := s.Update(ctx, "1", func(*grant.Record) (*grant.Record, error) { return nil, nil })
		if signin.ErrorCode(err) != grant.CodeCorruptRecord {
			t.Errorf("Update of a FIFO record = %v, want corrupt_record", err)
		}
	})
	within(t, "SetAside of a FIFO record", func() {
		if where, err := s.SetAside(ctx, "1"); err != nil || where == "" {
			t.Errorf("SetAside of a FIFO record = %q, %v", where, err)
		}
	})

	// A link to a valid record of the same user elsewhere is not used.
	outside := t.TempDir()
	granttest.Put(t, mustOpen(t, outside), granttest.NewRecord("2", time.Now()))
	if err := os.Symlink(filepath.Join(outside, "2.json"), filepath.Join(dir, "2.json")); err != nil {
		t.Fatal(err)
	}
	if rec, err := s.Get(ctx, "2"); signin.ErrorCode(err) != grant.CodeCorruptRecord {
		t.Errorf("Get of a symlinked record = %+v, %v; want corrupt_record", rec, err)
	}

	// A lock file linked outside the directory: nothing is created there,
	// and the user is not locked out either (issue 23, item 6): the link
	// is set aside, as a damaged record is, and the update goes through.
	target := filepath.Join(outside, "planted")
	if err := os.Symlink(target, filepath.Join(dir, "3.lock")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, "3", func(*grant.Record) (*grant.Record, error) {
		return granttest.NewRecord("3", time.Now()), nil
	}); err != nil {
		t.Errorf("Update with a symlinked lock file: %v; want the link set aside", err)
	}
	if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a file was created outside the directory through the lock's link: %v", err)
	}
	wantLockSetAside(t, dir, "3", fs.ModeSymlink)

	// A FIFO or a directory as lock file too, at once.
	if err := syscall.Mkfifo(filepath.Join(dir, "4.lock"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "6.lock"), 0o700); err != nil {
		t.Fatal(err)
	}
	for sub, mode := range map[string]fs.FileMode{"4": fs.ModeNamedPipe, "6": fs.ModeDir} {
		within(t, "Update with a "+mode.String()+" lock file", func() {
			if _, err := s.Update(ctx, sub, func(*grant.Record) (*grant.Record, error) {
				return granttest.NewRecord(sub, time.Now()), nil
			}); err != nil {
				t.Errorf("Update with a %v lock file: %v", mode, err)
			}
		})
		wantLockSetAside(t, dir, sub, mode)
	}

	// The ended sessions' directory may not be a link elsewhere either.
	if err := os.Symlink(outside, filepath.Join(dir, endsDir)); err != nil {
		t.Fatal(err)
	}
	if err := s.EndSession(ctx, "5", "k", time.Now().Add(time.Hour)); err == nil {
		t.Error("EndSession through a symlinked directory succeeded")
	}
	if err := s.EndUserSessions(ctx, "5", time.Now(), time.Now().Add(time.Hour)); err == nil {
		t.Error("EndUserSessions through a symlinked directory succeeded")
	}
	// Nor the old sessions directory, which Open removes: not through
	// the link.
	if err := os.Symlink(outside, filepath.Join(dir, legacySessions)); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, dir)
	if ents, _ := os.ReadDir(outside); len(ents) != 2 { // 2.json, 2.lock
		t.Errorf("files created or removed outside the directory: %v", ents)
	}
}

// wantLockSetAside checks that sub's lock path is a regular file again and
// that what was there before (of type mode) was kept beside it.
func wantLockSetAside(t *testing.T, dir, sub string, mode fs.FileMode) {
	t.Helper()
	if fi, err := os.Lstat(filepath.Join(dir, sub+".lock")); err == nil && !fi.Mode().IsRegular() {
		t.Errorf("%s.lock is still a %v", sub, fi.Mode().Type())
	}
	kept, _ := filepath.Glob(filepath.Join(dir, sub+".lock.damaged-*"))
	if len(kept) != 1 {
		t.Fatalf("set aside as %v, want one %s.lock.damaged-<time>", kept, sub)
	}
	if fi, err := os.Lstat(kept[0]); err != nil || fi.Mode().Type() != mode {
		t.Errorf("%s is %v, %v; want the %v that was there", kept[0], fi, err, mode)
	}
}

// Two processes (two Stores on one directory) meeting a damaged lock path
// at once: one sets it aside, the other uses the lock file that replaced
// it (never setting that aside too, which would let both hold "the" lock):
// no update is lost.
func TestDamagedLockSetAsideOnce(t *testing.T) {
	dir := t.TempDir()
	a, b := mustOpen(t, dir), mustOpen(t, dir)
	const sub = "7"
	granttest.Put(t, a, granttest.NewRecord(sub, time.Now()))
	lock := filepath.Join(dir, sub+".lock")
	if err := os.Remove(lock); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(t.TempDir(), "elsewhere"), lock); err != nil {
		t.Fatal(err)
	}
	const each = 25
	var wg sync.WaitGroup
	errs := make(chan error, 2*each)
	for _, s := range []*Store{a, b} {
		wg.Go(func() {
			for range each {
				errs <- granttest.Increment(t.Context(), s, sub)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := granttest.Count(t, a, sub); n != 2*each {
		t.Errorf("counter %d after %d increments: updates were lost", n, 2*each)
	}
	wantLockSetAside(t, dir, sub, fs.ModeSymlink)
}
