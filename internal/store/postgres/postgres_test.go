package postgres

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"example.com/signin"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/grant/granttest"
	"example.com/signin/internal/pgtest"
	"example.com/signin/internal/store/sessiontest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// mustOpen opens a store on url, closed at the end of the test.
func mustOpen(tb testing.TB, url string) *Store {
	tb.Helper()
	s, err := Open(context.Background(), Config{URL: url, Logger: testLogger(tb)})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// testLogger writes the store's log lines to the test's log.
func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Helper()
	w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// syncBuffer is a log destination tests read while the store writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestConformance(t *testing.T) {
	granttest.Run(t, func(t *testing.T) grant.Store { return mustOpen(t, pgtest.URL(t)) },
		func(t *testing.T, st grant.Store, sub string) {
			// A status no program of ours writes: the row does not read.
			_, err := st.(*Store).pool.Exec(t.Context(), `UPDATE credentials SET status = 'bogus' WHERE sub = $1`, escapeText(sub))
			if err != nil {
				t.Fatal(err)
			}
		})
}

// execSQL runs SQL on url directly, as an admin would.
func execSQL(t *testing.T, url, sql string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// Records are columns an admin can query.
func TestRecordIsColumns(t *testing.T) {
	url := pgtest.URL(t)
	s := mustOpen(t, url)
	rec := granttest.NewRecord("109876543210987654321", time.Now().Add(time.Hour))
	granttest.Put(t, s, rec)
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var email, rt string
	var scopes []string
	if err := conn.QueryRow(t.Context(), `SELECT email, refresh_token, scopes FROM credentials WHERE sub = '109876543210987654321'`).Scan(&email, &rt, &scopes); err != nil {
		t.Fatal(err)
	}
	if email != rec.Email || rt != rec.Token.RefreshToken || strings.Join(scopes, " ") != "openid email profile" {
		t.Errorf("row: %q %q %q", email, rt, scopes)
	}
}

// A row that does not decode (written by a newer program, or by hand) is
// passed to List's fn as an error, and the listing goes on; Get refuses it.
func TestUndecodableRows(t *testing.T) {
	url := pgtest.URL(t)
	s := mustOpen(t, url)
	for _, sub := range []string{"1", "2", "3"} {
		granttest.Put(t, s, granttest.NewRecord(sub, time.Now()))
	}
	execSQL(t, url, `UPDATE credentials SET version = 99 WHERE sub = '2'`)
	execSQL(t, url, `UPDATE credentials SET status = 'suspended' WHERE sub = '3'`)
	var ok, bad int
	if err := s.List(t.Context(), func(rec *grant.Record, err error) error {
		if err != nil {
			if signin.ErrorCode(err) != grant.CodeCorruptRecord || rec != nil {
				t.Errorf("List: %v, %v; want (nil, corrupt_record)", rec, err)
			}
			bad++
			return nil
		}
		ok++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if ok != 1 || bad != 2 {
		t.Errorf("List: %d good, %d bad; want 1, 2", ok, bad)
	}
	if _, err := s.Get(t.Context(), "2"); signin.ErrorCode(err) != grant.CodeCorruptRecord {
		t.Errorf("Get of a newer record: %v", err)
	}
}

// List reads in pages: more records than a page, each seen once.
func TestListPages(t *testing.T) {
	s := mustOpen(t, pgtest.URL(t))
	n := 2*listPage + 7
	if err := granttest.Fill(t.Context(), s, n, 8, func(i int) (*grant.Record, error) {
		return granttest.NewRecord(fmt.Sprint(100000+i), time.Now()), nil
	}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	if err := s.List(t.Context(), func(rec *grant.Record, err error) error {
		if err != nil {
			return err
		}
		if seen[rec.Sub] {
			t.Errorf("%s seen twice", rec.Sub)
		}
		seen[rec.Sub] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Errorf("List saw %d, want %d", len(seen), n)
	}
}

// Opening the same database again, or many times at once (replicas
// starting together), migrates once and works.
func TestOpenConcurrently(t *testing.T) {
	url := pgtest.URL(t)
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for range 5 {
		wg.Go(func() {
			s, err := Open(t.Context(), Config{URL: url})
			if err != nil {
				errs <- err
				return
			}
			s.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Open: %v", err)
	}
	s := mustOpen(t, url)
	granttest.Put(t, s, granttest.NewRecord("1", time.Now()))
}

// A database migrated by a newer program is refused, saying so.
func TestNewerSchemaRefused(t *testing.T) {
	url := pgtest.URL(t)
	mustOpen(t, url).Close()
	execSQL(t, url, `INSERT INTO goose_db_version (version_id, is_applied) VALUES (9999, true)`)
	_, err := Open(t.Context(), Config{URL: url})
	if signin.ErrorCode(err) != CodeSchemaTooNew || !strings.Contains(err.Error(), "9999") {
		t.Fatalf("Open on a newer schema: %v; want %s naming the version", err, CodeSchemaTooNew)
	}
	t.Log(err)
}

func TestEscapeText(t *testing.T) {
	for _, sub := range append(granttest.HostileSubs(), `\`, `\\0`, "\x00\\\x00", `a\0b`) {
		key := escapeText(sub)
		if strings.IndexByte(key, 0) >= 0 {
			t.Errorf("escapeText(%q) = %q holds NUL", sub, key)
		}
		if got, ok := unescapeText(key); !ok || got != sub {
			t.Errorf("unescapeText(escapeText(%q)) = %q, %v", sub, got, ok)
		}
	}
	for _, bad := range []string{`\`, `a\x`, `\1`} {
		if _, ok := unescapeText(bad); ok {
			t.Errorf("unescapeText(%q) accepted", bad)
		}
	}
}

// slogTo returns a logger writing text lines to w.
func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// As the file store: a record fn returns with a CreatedAt keeps it (a copy
// from the file store keeps its history), and an empty status is active.
func TestUpdateKeepsGivenCreatedAt(t *testing.T) {
	s := mustOpen(t, pgtest.URL(t))
	created := time.Date(2025, 3, 4, 5, 6, 7, 891011, time.UTC)
	rec := granttest.NewRecord("1", time.Now())
	rec.CreatedAt, rec.Status = created, ""
	saved := granttest.Put(t, s, rec)
	got, err := s.Get(t.Context(), "1")
	if err != nil {
		t.Fatal(err)
	}
	if !got.CreatedAt.Equal(created.Truncate(time.Microsecond)) || got.Status != grant.StatusActive || !granttest.Equal(got, saved) {
		t.Errorf("Get = %+v; want CreatedAt %v, status active, as Update returned %+v", got, created, saved)
	}
}

func TestSessionContract(t *testing.T) {
	sessiontest.Run(t, func(t *testing.T) sessiontest.Store { return mustOpen(t, pgtest.URL(t)) })
}

// Update returns the record as Get reads it back: every time in it at
// PostgreSQL's precision (microseconds), the optional ones too.
func TestUpdateReturnsWhatGetReads(t *testing.T) {
	s := mustOpen(t, pgtest.URL(t))
	at := time.Date(2025, 3, 4, 5, 6, 7, 891011, time.UTC)
	rec := granttest.NewRecord("1", time.Now())
	rec.RevokedAt, rec.DisabledAt, rec.RefreshedAt = &at, &at, &at
	saved := granttest.Put(t, s, rec)
	if !rec.DisabledAt.Equal(at) {
		t.Errorf("Update changed the caller's DisabledAt to %v", rec.DisabledAt)
	}
	got, err := s.Get(t.Context(), "1")
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string][2]*time.Time{"RevokedAt": {saved.RevokedAt, got.RevokedAt},
		"DisabledAt": {saved.DisabledAt, got.DisabledAt}, "RefreshedAt": {saved.RefreshedAt, got.RefreshedAt}} {
		if p[0] == nil || p[1] == nil || !p[0].Equal(*p[1]) || p[1].Nanosecond()%1000 != 0 {
			t.Errorf("%s: Update returned %v, Get %v", name, p[0], p[1])
		}
	}
}
