package reports

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/plot"

	"github.com/durabench/durabench/harness/evidence"
)

// latencies is a deterministic skewed sample: n values spread over a decade
// around centre.
func latencies(n int, centre float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = centre * math.Pow(10, float64((i*7919)%n)/float64(n)-0.5)
	}
	return out
}

func histogramChart() evidence.Chart {
	return evidence.Chart{ID: "EX-01-latency", Title: "Step latency", Kind: evidence.Histogram,
		XLabel: "latency (ms)", YLabel: "steps", LogX: true,
		Series: []evidence.Series{
			{Name: "activity", Y: latencies(1000, 12)},
			{Name: "local activity", Y: latencies(1000, 2)},
			{Name: "function call", Y: latencies(1000, 0.002)},
		}}
}

// svgDoc parses b as XML and returns its root element and all its text.
func svgDoc(t *testing.T, b []byte) (root string, text string) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(b))
	var sb strings.Builder
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "SVG is well-formed XML")
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Local
			}
		case xml.CharData:
			sb.Write(tok)
			sb.WriteByte('\n')
		}
	}
	return root, sb.String()
}

func TestRenderChart(t *testing.T) {
	for _, tc := range []struct {
		name  string
		chart evidence.Chart
		want  []string // texts drawn in the SVG
	}{
		{"histogram on log x", histogramChart(), []string{"Step latency", "latency (ms)", "cumulative fraction of steps",
			"activity (n=1000, p50=", "local activity (n=1000", "function call (n=1000", "0.001", "100", "0.9"}},
		{"histogram, linear, unnamed", evidence.Chart{ID: "h", Kind: evidence.Histogram, XLabel: "ms",
			Series: []evidence.Series{{Y: []float64{3, 1, 2, 2}}}}, []string{"cumulative fraction of samples", "ms"}},
		{"line", evidence.Chart{ID: "fanout", Title: "Completions", Kind: evidence.Line, XLabel: "time (s)", YLabel: "completions/s",
			Series: []evidence.Series{
				{Name: "1000 children", X: []float64{0, 1, 2, 3}, Y: []float64{0, 300, 310, 0}},
				{Name: "100 children", X: []float64{0, 1}, Y: []float64{0, 80}},
			}}, []string{"Completions", "time (s)", "completions/s", "1000 children", "100 children", "300"}},
		{"points on log x", evidence.Chart{ID: "payload", Title: "Latency by payload", Kind: evidence.Points,
			XLabel: "payload (bytes)", YLabel: "latency (ms)", LogX: true,
			Series: []evidence.Series{{Name: "activity", X: []float64{10, 1e3, 1e6}, Y: []float64{3, 3.3, 40}}}},
			[]string{"Latency by payload", "payload (bytes)", "latency (ms)", "activity", "1000", "1e6"}},
		{"one point", evidence.Chart{ID: "one", Kind: evidence.Points,
			Series: []evidence.Series{{Name: "only", X: []float64{5}, Y: []float64{5}}}}, []string{"only"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := RenderChart(tc.chart)
			require.NoError(t, err)
			root, text := svgDoc(t, b)
			assert.Equal(t, "svg", root)
			for _, w := range tc.want {
				assert.Contains(t, text, w)
			}
			again, err := RenderChart(tc.chart)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(b, again), "the same chart renders to the same bytes")
		})
	}
}

func TestRenderChartInvalid(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*evidence.Chart)
		want   []string
	}{
		{"empty id", func(c *evidence.Chart) { c.ID = "" }, []string{"field id"}},
		{"unknown kind", func(c *evidence.Chart) { c.Kind = "pie" }, []string{"field kind", `"pie"`}},
		{"no series", func(c *evidence.Chart) { c.Series = nil }, []string{"field series"}},
		{"empty samples", func(c *evidence.Chart) { c.Series[1].Y = nil }, []string{`series "local activity"`, "field y"}},
		{"NaN sample", func(c *evidence.Chart) { c.Series[0].Y[3] = math.NaN() }, []string{`series "activity"`, "field y: value 3 is NaN"}},
		{"non-positive sample on log x", func(c *evidence.Chart) { c.Series[2].Y[0] = 0 }, []string{`series "function call"`, "field y", "log_x"}},
		{"lengths differ", func(c *evidence.Chart) {
			c.Kind = evidence.Line
			c.Series = []evidence.Series{{Name: "s", X: []float64{1}, Y: []float64{1, 2}}}
		}, []string{"fields x and y"}},
		{"infinite x", func(c *evidence.Chart) {
			c.Kind = evidence.Points
			c.Series = []evidence.Series{{Name: "s", X: []float64{1, math.Inf(1)}, Y: []float64{1, 2}}}
		}, []string{"field x: value 1 is +Inf"}},
		{"infinite y", func(c *evidence.Chart) {
			c.Kind, c.LogX = evidence.Line, false
			c.Series = []evidence.Series{{Name: "s", X: []float64{1, 2}, Y: []float64{math.Inf(-1), 2}}}
		}, []string{"field y: value 0 is -Inf"}},
		{"zero x on log x", func(c *evidence.Chart) {
			c.Kind = evidence.Points
			c.Series = []evidence.Series{{Name: "s", X: []float64{0, 10}, Y: []float64{1, 2}}}
		}, []string{"field x: value 0 is 0", "log_x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := histogramChart()
			tc.change(&c)
			_, err := RenderChart(c)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestECDF(t *testing.T) {
	pts := ecdf([]float64{3, 1, 2, 2})
	var got [][2]float64
	for _, p := range pts {
		got = append(got, [2]float64{p.X, p.Y})
	}
	assert.Equal(t, [][2]float64{{1, 0}, {1, 0.25}, {2, 0.75}, {3, 1}}, got, "ties make one step")
	assert.Equal(t, "(n=4, p50=2.00, p99=3.00)", quantiles([]float64{3, 1, 2, 2}))
}

func TestSig3(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{{0, "0"}, {12.345, "12.3"}, {1234, "1234"}, {0.012345, "0.0123"}, {-2.5, "-2.50"}, {1e-9, "0.000000"}} {
		assert.Equal(t, tc.want, sig3(tc.in), "%v", tc.in)
	}
}

func TestTicks(t *testing.T) {
	labels := func(ticks []plot.Tick) []string {
		var out []string
		for _, tk := range ticks {
			if tk.Label != "" {
				out = append(out, tk.Label)
			}
		}
		return out
	}
	assert.Equal(t, []string{"0", "1", "2", "3", "4", "5", "6"}, labels(niceTicks(7).Ticks(0, 6)))
	assert.Equal(t, []string{"0", "100", "200", "300"}, labels(niceTicks(5).Ticks(0, 310)))
	assert.Equal(t, []string{"0.2", "0.4", "0.6", "0.8", "1.0"}, labels(niceTicks(5).Ticks(0.2, 1)))
	assert.Equal(t, []string{"0.00", "0.25", "0.50", "0.75", "1.00"}, labels(niceTicks(5).Ticks(0, 1)))
	assert.Equal(t, []string{"-1", "0", "1"}, labels(niceTicks(3).Ticks(-1, 1)))
	assert.Equal(t, []string{"0.001", "0.01", "0.1", "1", "10"}, labels(decadeTicks{}.Ticks(0.001, 10)))
	assert.Equal(t, []string{"1e-4", "0.001", "100000", "1e6"}, labels(append(decadeTicks{}.Ticks(1e-4, 1e-3), decadeTicks{}.Ticks(1e5, 1e6)...)))
}

// chartReport is a report whose EX-01.l2 evidence carries two charts.
func chartReport(t *testing.T, charts ...evidence.Chart) *Report {
	t.Helper()
	recs := passUpTo("EX-01", 3)
	recs[0].Charts = charts
	return build(t, profile("min-h"), recs...)
}

func TestRenderCharts(t *testing.T) {
	line := evidence.Chart{ID: "EX-01-fanout", Title: "Fan-out", Kind: evidence.Line,
		Series: []evidence.Series{{Name: "n", X: []float64{0, 1}, Y: []float64{0, 1}}}}
	got, err := chartReport(t, histogramChart(), line).RenderCharts()
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, "EX-01-latency", got[0].ID)
	assert.Equal(t, "reports/charts/EX-01-latency.svg", got[0].Path)
	assert.Equal(t, "reports/charts/EX-01-fanout.svg", got[1].Path)
	root, _ := svgDoc(t, got[1].SVG)
	assert.Equal(t, "svg", root)

	_, err = chartReport(t, line, line).RenderCharts()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `chart id "EX-01-fanout" is used by checks EX-01.l2 and EX-01.l2`)

	bad := line
	bad.Series = []evidence.Series{{Name: "n", X: []float64{0, 1}, Y: []float64{0, math.NaN()}}}
	_, err = chartReport(t, bad).RenderCharts()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "check EX-01.l2: chart EX-01-fanout")
}

func TestChartLinks(t *testing.T) {
	odd := evidence.Chart{ID: "EX-01-lat(p)", Title: "Latency [ms]\nby step", Kind: evidence.Points,
		Series: []evidence.Series{{Name: "n", X: []float64{1}, Y: []float64{1}}}}
	r := chartReport(t, histogramChart(), odd)
	for _, tc := range []struct {
		lang string
		want []string
	}{
		{"en", []string{"**Charts**"}},
		{"ja", []string{"**グラフ**"}},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			var buf bytes.Buffer
			require.NoError(t, WriteMarkdown(&buf, r, tc.lang))
			md := buf.String()
			for _, w := range append(tc.want,
				"`EX-01.l2`\n\n![Step latency](reports/charts/EX-01-latency.svg)\n",
				`![Latency \[ms\] by step](reports/charts/EX-01-lat%28p%29.svg)`) {
				assert.Contains(t, md, w)
			}
			assert.Less(t, strings.Index(md, "### EX-01"), strings.Index(md, "reports/charts/EX-01-latency.svg"), "under its item")
			assert.Less(t, strings.Index(md, "reports/charts/EX-01-latency.svg"), strings.Index(md, "### VR-01"), "before the next item")
		})
	}

	var buf bytes.Buffer
	require.NoError(t, WriteJSON(&buf, r))
	var doc struct {
		Items []struct {
			ID     string
			Checks []struct {
				ID     string
				Charts []map[string]string
			}
		}
	}
	require.NoError(t, json.Unmarshal(buf.Bytes(), &doc))
	require.Equal(t, "EX-01", doc.Items[0].ID)
	assert.Equal(t, []map[string]string{
		{"id": "EX-01-latency", "title": "Step latency", "path": "reports/charts/EX-01-latency.svg"},
		{"id": "EX-01-lat(p)", "title": "Latency [ms]\nby step", "path": "reports/charts/EX-01-lat(p).svg"},
	}, doc.Items[0].Checks[0].Charts)
	assert.Nil(t, doc.Items[0].Checks[1].Charts, "a check without charts lists none")
}
