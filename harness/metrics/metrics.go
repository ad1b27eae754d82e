// Package metrics collects Temporal's own metrics for scenarios: the SDK's,
// through a client.MetricsHandler backed by OpenTelemetry and a Prometheus
// registry, and the server's, scraped from its Prometheus endpoint. Both are
// read as Snapshots of counter values and histogram sums and counts; the
// difference of two snapshots taken around a run gives exact totals and
// means for that run, whatever the histograms' buckets.
package metrics

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
)

// SDK is a Prometheus registry fed by the SDK's metrics.
type SDK struct {
	reg      *prometheus.Registry
	provider *sdkmetric.MeterProvider
	handler  client.MetricsHandler
}

// NewSDK returns an SDK collector; pass Handler() as client.Options.MetricsHandler.
func NewSDK() (*SDK, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, fmt.Errorf("metrics: prometheus exporter: %w", err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	h := temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{Meter: provider.Meter("durabench")})
	return &SDK{reg: reg, provider: provider, handler: h}, nil
}

// Handler is the client.MetricsHandler to give the client.
func (s *SDK) Handler() client.MetricsHandler { return s.handler }

// Close releases the meter provider.
func (s *SDK) Close(ctx context.Context) error { return s.provider.Shutdown(ctx) }

// Snapshot reads every SDK metric now.
func (s *SDK) Snapshot() (Snapshot, error) {
	mfs, err := s.reg.Gather()
	if err != nil {
		return nil, fmt.Errorf("metrics: gather: %w", err)
	}
	return fromFamilies(mfs), nil
}

// Scrape reads a Prometheus text endpoint, such as the dev server's /metrics.
func Scrape(ctx context.Context, url string) (Snapshot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics: scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: scrape %s: status %s", url, resp.Status)
	}
	return Parse(resp.Body)
}

// Parse reads the Prometheus text exposition format.
func Parse(r io.Reader) (Snapshot, error) {
	var p expfmt.TextParser
	mfs, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("metrics: parse: %w", err)
	}
	return fromFamilies(slices.Collect(maps.Values(mfs))), nil
}

// Value is one series: a counter's or gauge's value in Sum, or a histogram's
// (or summary's) sum of observations and their count.
type Value struct {
	Sum   float64
	Count float64
}

// Mean is Sum/Count, 0 without observations.
func (v Value) Mean() float64 {
	if v.Count == 0 {
		return 0
	}
	return v.Sum / v.Count
}

// Series is one metric with its labels.
type Series struct {
	Name   string
	Labels map[string]string
	Value
}

// Snapshot holds every series, keyed by name and sorted labels.
type Snapshot map[string]Series

func fromFamilies(mfs []*dto.MetricFamily) Snapshot {
	s := Snapshot{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			var v Value
			switch {
			case m.GetHistogram() != nil:
				v = Value{Sum: m.GetHistogram().GetSampleSum(), Count: float64(m.GetHistogram().GetSampleCount())}
			case m.GetSummary() != nil:
				v = Value{Sum: m.GetSummary().GetSampleSum(), Count: float64(m.GetSummary().GetSampleCount())}
			case m.GetCounter() != nil:
				v = Value{Sum: m.GetCounter().GetValue()}
			case m.GetGauge() != nil:
				v = Value{Sum: m.GetGauge().GetValue()}
			case m.GetUntyped() != nil:
				v = Value{Sum: m.GetUntyped().GetValue()}
			}
			ser := Series{Name: mf.GetName(), Labels: labels, Value: v}
			s[key(ser.Name, labels)] = ser
		}
	}
	return s
}

func key(name string, labels map[string]string) string {
	var b strings.Builder
	b.WriteString(name)
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		fmt.Fprintf(&b, ",%s=%q", k, labels[k])
	}
	return b.String()
}

// Sub returns s minus before, series by series: what happened between the
// two snapshots. Series absent from before count from zero.
func (s Snapshot) Sub(before Snapshot) Snapshot {
	out := Snapshot{}
	for k, v := range s {
		b := before[k]
		v.Sum -= b.Sum
		v.Count -= b.Count
		out[k] = v
	}
	return out
}

// Add returns s plus o, series by series: the total of two differences.
func (s Snapshot) Add(o Snapshot) Snapshot {
	out := Snapshot{}
	for k, v := range s {
		out[k] = v
	}
	for k, v := range o {
		sum := out[k]
		sum.Name, sum.Labels = v.Name, v.Labels
		sum.Sum += v.Sum
		sum.Count += v.Count
		out[k] = sum
	}
	return out
}

// Total adds up the series named name whose labels include every pair of match.
func (s Snapshot) Total(name string, match map[string]string) Value {
	var t Value
	for _, ser := range s {
		if ser.Name == name && matches(ser.Labels, match) {
			t.Sum += ser.Sum
			t.Count += ser.Count
		}
	}
	return t
}

// By adds up the series named name that match, grouped by the value of label.
func (s Snapshot) By(name, label string, match map[string]string) map[string]Value {
	out := map[string]Value{}
	for _, ser := range s {
		if ser.Name == name && matches(ser.Labels, match) {
			v := out[ser.Labels[label]]
			v.Sum += ser.Sum
			v.Count += ser.Count
			out[ser.Labels[label]] = v
		}
	}
	return out
}

// Names lists the metric names present, sorted.
func (s Snapshot) Names() []string {
	set := map[string]bool{}
	for _, ser := range s {
		set[ser.Name] = true
	}
	return slices.Sorted(maps.Keys(set))
}

func matches(labels, match map[string]string) bool {
	for k, v := range match {
		if labels[k] != v {
			return false
		}
	}
	return true
}
