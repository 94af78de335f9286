package metrics_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"example.com/signin"
	"example.com/signin/internal/metrics"
	"example.com/signin/internal/metrics/metricstest"
)

func readTextfile(t *testing.T, path string) metricstest.Families {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return metricstest.Parse(t, f)
}

// The textfile parses as Prometheus's text format, says what the run did,
// and keeps the last success time of an earlier run when this one failed.
func TestWriteOfflineTextfile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "signin_offline_fetch.prom")
	t0 := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)

	m := metrics.New(prometheus.NewRegistry())
	m.Refresh(nil)
	m.Refresh(nil)
	m.Refresh(signin.Errorf(signin.EINVALID, "invalid_grant", "dead"))
	ok := metrics.OfflineRun{Users: map[string]int{"ok": 3, "revoked": 1, "scope_missing": 2}, Start: t0, End: t0.Add(1500 * time.Millisecond), Success: true}
	if err := metrics.WriteOfflineTextfile(path, ok, m); err != nil {
		t.Fatal(err)
	}
	fams := readTextfile(t, path)
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"signin_offline_fetch_users", []string{"outcome", "ok"}, 3},
		{"signin_offline_fetch_users", []string{"outcome", "revoked"}, 1},
		{"signin_offline_fetch_users", []string{"outcome", "failed"}, 0},
		{"signin_offline_fetch_users", []string{"outcome", "scope_missing"}, 2},
		{"signin_offline_fetch_refreshes", []string{"outcome", "ok"}, 2},
		{"signin_offline_fetch_refreshes", []string{"outcome", "invalid_grant"}, 1},
		{"signin_offline_fetch_duration_seconds", nil, 1.5},
		{"signin_offline_fetch_success", nil, 1},
		{"signin_offline_fetch_last_run_timestamp_seconds", nil, float64(t0.Unix()) + 1.5},
		{"signin_offline_fetch_last_success_timestamp_seconds", nil, float64(t0.Unix()) + 1.5},
	} {
		if got := fams.Value(tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("textfile mode: %v %v", fi, err)
	}

	// A failed run a day later: its own time and status, the earlier
	// success kept.
	t1 := t0.Add(24 * time.Hour)
	failed := metrics.OfflineRun{Users: map[string]int{"failed": 4}, Start: t1, End: t1.Add(time.Second)}
	if err := metrics.WriteOfflineTextfile(path, failed, nil); err != nil {
		t.Fatal(err)
	}
	fams = readTextfile(t, path)
	if got := fams.Value("signin_offline_fetch_success"); got != 0 {
		t.Errorf("success = %v after a failed run", got)
	}
	if got := fams.Value("signin_offline_fetch_last_run_timestamp_seconds"); got != float64(t1.Unix()+1) {
		t.Errorf("last run = %v", got)
	}
	if got := fams.Value("signin_offline_fetch_last_success_timestamp_seconds"); got != float64(t0.Unix())+1.5 {
		t.Errorf("last success = %v, want the earlier run's", got)
	}
	// Only the textfile is left: the temporary file was renamed.
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %v", ents)
	}

	// A first run that fails has no last success at all.
	fresh := filepath.Join(dir, "fresh.prom")
	if err := metrics.WriteOfflineTextfile(fresh, failed, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := readTextfile(t, fresh)["signin_offline_fetch_last_success_timestamp_seconds"]; ok {
		t.Error("a last success time with no successful run")
	}
}
