// Package metricstest reads metrics the way Prometheus does, for tests:
// scraped over HTTP (or read from a file) and parsed by Prometheus's own
// text parser, so a test sees exactly what a scrape would.
package metricstest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"example.com/signin/internal/metrics"
)

// Families are parsed metric families by name.
type Families map[string]*dto.MetricFamily

// Parse parses the Prometheus text format.
func Parse(tb testing.TB, r io.Reader) Families {
	tb.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		tb.Fatalf("parsing metrics: %v", err)
	}
	return fams
}

// Scrape GETs url (a /metrics endpoint) and parses the answer.
func Scrape(tb testing.TB, url string) Families {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	return Parse(tb, resp.Body)
}

// Gather serves reg through metrics.Handler and scrapes it.
func Gather(tb testing.TB, reg *prometheus.Registry) Families {
	tb.Helper()
	srv := httptest.NewServer(metrics.Handler(reg))
	defer srv.Close()
	return Scrape(tb, srv.URL)
}

// Value is the value of the series of name whose labels include labels
// (a counter's or gauge's value, a histogram's sample count), summed over
// every series that matches; 0 when none does.
func (f Families) Value(name string, labels ...string) float64 {
	fam := f[name]
	if fam == nil {
		return 0
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	var sum float64
next:
	for _, m := range fam.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		case m.Untyped != nil:
			sum += m.Untyped.GetValue()
		}
	}
	return sum
}

// Series lists name's series as label sets ("a=1,b=2"), sorted, for
// failure messages.
func (f Families) Series(name string) []string {
	var out []string
	for _, m := range f[name].GetMetric() {
		var ls []string
		for _, l := range m.GetLabel() {
			ls = append(ls, l.GetName()+"="+l.GetValue())
		}
		out = append(out, strings.Join(ls, ","))
	}
	sort.Strings(out)
	return out
}
