package metrics

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// OfflineRun is what one offline-fetch run did, for WriteOfflineTextfile.
type OfflineRun struct {
	// Users counts the users by outcome: ok, revoked, failed, skipped,
	// scope_missing, interrupted.
	Users map[string]int
	// Start and End are when the run started and ended.
	Start, End time.Time
	// Success says the run succeeded (exit status 0).
	Success bool
}

// Names of the offline-fetch textfile's metrics.
const (
	offlineUsers       = Namespace + "_offline_fetch_users"
	offlineRefreshes   = Namespace + "_offline_fetch_refreshes"
	offlineDuration    = Namespace + "_offline_fetch_duration_seconds"
	offlineSuccess     = Namespace + "_offline_fetch_success"
	offlineLastRun     = Namespace + "_offline_fetch_last_run_timestamp_seconds"
	offlineLastSuccess = Namespace + "_offline_fetch_last_success_timestamp_seconds"
)

// WriteOfflineTextfile writes what run did to path in the Prometheus text
// format, for node_exporter's textfile collector: users by outcome, the
// refreshes m counted during the run by outcome (m may be nil), the run's
// duration, whether it succeeded, when it ran, and when a run last
// succeeded: this one, or, when it failed, the time the previous file at
// path recorded (so an alert on that time keeps working across failed
// runs).
//
// The write is atomic: a temporary file in path's directory (not ending in
// .prom, so the collector ignores it), synced, then renamed over path. A
// collector scraping meanwhile reads the old file or the new one.
func WriteOfflineTextfile(path string, run OfflineRun, m *Metrics) error {
	lastSuccess, haveLast := previousSuccess(path)
	if run.Success {
		lastSuccess, haveLast = float64(run.End.UnixMilli())/1e3, true
	}

	reg := prometheus.NewRegistry()
	gauge := func(name, help string, v float64) {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
		g.Set(v)
		reg.MustRegister(g)
	}
	users := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: offlineUsers,
		Help: "Users of the last offline-fetch run, by outcome (ok, revoked, failed, skipped, scope_missing, interrupted)."}, []string{"outcome"})
	for _, o := range []string{"ok", "revoked", "failed", "skipped", "scope_missing", "interrupted"} {
		users.WithLabelValues(o).Set(float64(run.Users[o]))
	}
	refreshes := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: offlineRefreshes,
		Help: "Refresh token grants sent to Google by the last offline-fetch run, by outcome."}, []string{"outcome"})
	refreshes.WithLabelValues(OutcomeOK).Set(0) // present even when nothing was refreshed
	for outcome, n := range m.refreshCounts() {
		refreshes.WithLabelValues(outcome).Set(n)
	}
	reg.MustRegister(users, refreshes)
	gauge(offlineDuration, "Duration of the last offline-fetch run.", run.End.Sub(run.Start).Seconds())
	success := 0.0
	if run.Success {
		success = 1
	}
	gauge(offlineSuccess, "Whether the last offline-fetch run succeeded (exit status 0).", success)
	gauge(offlineLastRun, "When the last offline-fetch run ended, in Unix seconds.", float64(run.End.UnixMilli())/1e3)
	if haveLast {
		gauge(offlineLastSuccess, "When an offline-fetch run last succeeded, in Unix seconds.", lastSuccess)
	}

	fams, err := reg.Gather()
	if err != nil {
		return fmt.Errorf("metrics textfile: %w", err)
	}
	var buf bytes.Buffer
	for _, f := range fams {
		if _, err := expfmt.MetricFamilyToText(&buf, f); err != nil {
			return fmt.Errorf("metrics textfile: %w", err)
		}
	}
	return writeAtomic(path, buf.Bytes())
}

// refreshCounts reads the refresh counter's value by outcome.
func (m *Metrics) refreshCounts() map[string]float64 {
	if m == nil {
		return nil
	}
	ch := make(chan prometheus.Metric)
	go func() {
		m.refreshes.Collect(ch)
		close(ch)
	}()
	out := map[string]float64{}
	for c := range ch {
		var d dto.Metric
		if c.Write(&d) != nil {
			continue
		}
		for _, l := range d.GetLabel() {
			if l.GetName() == "outcome" {
				out[l.GetValue()] += d.GetCounter().GetValue()
			}
		}
	}
	return out
}

// previousSuccess reads the last-success time from the file a previous
// run wrote at path, if there is one and it has it.
func previousSuccess(path string) (float64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(f)
	if err != nil {
		return 0, false
	}
	fam := fams[offlineLastSuccess]
	if fam == nil || len(fam.GetMetric()) != 1 || fam.GetMetric()[0].GetGauge() == nil {
		return 0, false
	}
	return fam.GetMetric()[0].GetGauge().GetValue(), true
}

// writeAtomic replaces path with data: a synced temporary file renamed
// over it, readable by the collector (0644: metrics are not secrets).
func writeAtomic(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-")
	if err != nil {
		return fmt.Errorf("metrics textfile: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("metrics textfile: %w", err)
	}
	if err = tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("metrics textfile: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("metrics textfile: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("metrics textfile: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("metrics textfile: %w", err)
	}
	return nil
}
