package reports

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"net/url"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/durabench/durabench/harness/evidence"
)

// ChartDir is where chart SVGs are written, relative to the directory that
// holds REPORT.md; the markdown links and report.json paths use it.
const ChartDir = "reports/charts"

// ChartPath is the slash-separated path of a chart's SVG relative to the
// directory that holds REPORT.md.
func ChartPath(id string) string { return ChartDir + "/" + id + ".svg" }

// chartLink is ChartPath escaped for a markdown link target: an id may hold
// characters, such as parentheses, that would end the link.
func chartLink(id string) string { return ChartDir + "/" + url.PathEscape(id) + ".svg" }

// RenderedChart is one chart of a report, drawn.
type RenderedChart struct {
	ID   string
	Path string // ChartPath(ID)
	SVG  []byte
}

// RenderCharts draws every chart the report's evidence carries, in report
// order. Two charts with one id would overwrite each other's file, so that
// is a harness bug and an error.
func (r *Report) RenderCharts() ([]RenderedChart, error) {
	owner := map[string]string{}
	var out []RenderedChart
	for _, it := range r.Items() {
		for _, c := range it.Checks {
			if c.Record == nil {
				continue
			}
			for _, ch := range c.Record.Charts {
				if prev, ok := owner[ch.ID]; ok {
					return nil, fmt.Errorf("harness bug: chart id %q is used by checks %s and %s", ch.ID, prev, c.ID)
				}
				owner[ch.ID] = c.ID
				svg, err := RenderChart(ch)
				if err != nil {
					return nil, fmt.Errorf("check %s: %w", c.ID, err)
				}
				out = append(out, RenderedChart{ID: ch.ID, Path: ChartPath(ch.ID), SVG: svg})
			}
		}
	}
	return out, nil
}

// Size of the plot area of every chart; a legend adds a strip below it so
// that it never hides data.
var (
	chartWidth  = 16 * vg.Centimeter
	chartHeight = 9 * vg.Centimeter
	chartMargin = 0.3 * vg.Centimeter
)

// palette is the Okabe-Ito colour-blind-safe set (without its yellow, which
// is unreadable on white); series beyond it repeat the colours with dashes.
var palette = []color.Color{
	color.RGBA{0x00, 0x72, 0xB2, 0xFF}, // blue
	color.RGBA{0xD5, 0x5E, 0x00, 0xFF}, // vermillion
	color.RGBA{0x00, 0x9E, 0x73, 0xFF}, // bluish green
	color.RGBA{0xCC, 0x79, 0xA7, 0xFF}, // reddish purple
	color.RGBA{0xE6, 0x9F, 0x00, 0xFF}, // orange
	color.RGBA{0x56, 0xB4, 0xE9, 0xFF}, // sky blue
	color.Black,
}

var glyphs = []draw.GlyphDrawer{
	draw.CircleGlyph{}, draw.BoxGlyph{}, draw.TriangleGlyph{}, draw.PyramidGlyph{},
	draw.RingGlyph{}, draw.SquareGlyph{}, draw.CrossGlyph{}, draw.PlusGlyph{},
}

func seriesColor(i int) color.Color { return palette[i%len(palette)] }

func seriesDashes(i int) []vg.Length {
	if i < len(palette) {
		return nil
	}
	return []vg.Length{vg.Points(6), vg.Points(2 * float64(i/len(palette)))}
}

// RenderChart draws c as an SVG document. The same chart always gives the
// same bytes, so committed charts change only when their data does.
func RenderChart(c evidence.Chart) ([]byte, error) {
	if err := checkChart(c); err != nil {
		return nil, err
	}
	p := plot.New()
	sansSerif(p)
	p.Title.Text = c.Title
	p.X.Label.Text, p.Y.Label.Text = c.XLabel, c.YLabel
	p.X.Tick.Marker, p.Y.Tick.Marker = niceTicks(7), niceTicks(5)
	p.Add(plotter.NewGrid())
	legend := plot.NewLegend()
	legend.TextStyle.Font.Variant = "Sans"
	legend.Top, legend.Left = true, true
	named := 0

	for i, s := range c.Series {
		var (
			thumb plot.Thumbnailer
			name  = s.Name
		)
		switch c.Kind {
		case evidence.Histogram:
			l, err := plotter.NewLine(ecdf(s.Y))
			if err != nil {
				return nil, fmt.Errorf("chart %s: series %q: %w", c.ID, s.Name, err)
			}
			l.StepStyle = plotter.PostStep
			styleLine(l, i)
			p.Add(l)
			thumb, name = l, name+" "+quantiles(s.Y)
		case evidence.Line:
			l, err := plotter.NewLine(xys(s))
			if err != nil {
				return nil, fmt.Errorf("chart %s: series %q: %w", c.ID, s.Name, err)
			}
			styleLine(l, i)
			p.Add(l)
			thumb = l
		case evidence.Points:
			sc, err := plotter.NewScatter(xys(s))
			if err != nil {
				return nil, fmt.Errorf("chart %s: series %q: %w", c.ID, s.Name, err)
			}
			sc.GlyphStyle = draw.GlyphStyle{Color: seriesColor(i), Radius: vg.Points(2.5), Shape: glyphs[i%len(glyphs)]}
			p.Add(sc)
			thumb = sc
		}
		if s.Name != "" {
			legend.Add(name, thumb)
			named++
		}
	}

	if c.Kind == evidence.Histogram {
		// A histogram's samples lie along x; y is the cumulative fraction, and
		// YLabel names what was sampled.
		what := c.YLabel
		if what == "" {
			what = "samples"
		}
		p.Y.Label.Text = "cumulative fraction of " + what
		p.Y.Min, p.Y.Max = 0, 1
		// Grid lines at 0.5 and 0.9 read the median and p90 off the chart.
		p.Y.Tick.Marker = plot.ConstantTicks{{Value: 0, Label: "0"}, {Value: 0.25, Label: "0.25"},
			{Value: 0.5, Label: "0.5"}, {Value: 0.75, Label: "0.75"}, {Value: 0.9, Label: "0.9"}, {Value: 1, Label: "1"}}
	}
	if c.LogX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = decadeTicks{}
		// Only powers of ten are labelled: widen the axis to whole decades so
		// that every axis carries labelled ticks.
		p.X.Min = math.Pow10(int(math.Floor(math.Log10(p.X.Min))))
		p.X.Max = math.Pow10(int(math.Ceil(math.Log10(p.X.Max))))
		if p.X.Min == p.X.Max {
			p.X.Max *= 10
		}
	}

	var legendHeight vg.Length
	if named > 0 {
		legendHeight = legend.Rectangle(draw.Canvas{}).Size().Y + chartMargin
	}
	canvas := vgsvg.New(chartWidth, chartHeight+legendHeight)
	dc := draw.New(canvas)
	p.Draw(draw.Crop(dc, 0, 0, legendHeight, 0))
	if legendHeight > 0 {
		legend.Draw(draw.Crop(dc, chartMargin, -chartMargin, 0, -chartHeight))
	}
	var buf bytes.Buffer
	if _, err := canvas.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("chart %s: %w", c.ID, err)
	}
	return buf.Bytes(), nil
}

// checkChart adds to evidence.Chart.Validate what drawing needs: finite
// values, and positive ones on a log axis.
func checkChart(c evidence.Chart) error {
	if err := c.Validate(); err != nil {
		return err
	}
	for _, s := range c.Series {
		check := func(field string, vs []float64, logAxis bool) error {
			for i, v := range vs {
				switch {
				case math.IsNaN(v) || math.IsInf(v, 0):
					return fmt.Errorf("chart %s: series %q: field %s: value %d is %v, not a finite number", c.ID, s.Name, field, i, v)
				case logAxis && v <= 0:
					return fmt.Errorf("chart %s: series %q: field %s: value %d is %v; log_x needs values > 0", c.ID, s.Name, field, i, v)
				}
			}
			return nil
		}
		// A histogram draws its samples (y) along the x axis.
		xField, xs, ys := "x", s.X, s.Y
		if c.Kind == evidence.Histogram {
			xField, xs, ys = "y", s.Y, nil
		}
		if err := check(xField, xs, c.LogX); err != nil {
			return err
		}
		if err := check("y", ys, false); err != nil {
			return err
		}
	}
	return nil
}

// ecdf is the empirical CDF of samples as step points: at each distinct value,
// the fraction of samples at or below it, preceded by a zero at the smallest.
//
// Histograms are drawn as empirical CDFs rather than binned bars: the series
// of one chart (activity, local activity, function call) differ in scale by
// orders of magnitude and in sample count, so one set of bins suits none of
// them, while a CDF needs no bins, normalises the counts and shows every
// percentile directly (read p50 at 0.5, p99 at 0.99); with log_x it keeps
// microsecond and second latencies on one readable axis.
func ecdf(samples []float64) plotter.XYs {
	s := slices.Clone(samples)
	slices.Sort(s)
	n := float64(len(s))
	pts := plotter.XYs{{X: s[0], Y: 0}}
	for i, v := range s {
		if i+1 < len(s) && s[i+1] == v {
			continue // ties: one step to the fraction after the last of them
		}
		pts = append(pts, plotter.XY{X: v, Y: float64(i+1) / n})
	}
	return pts
}

// quantiles summarises samples for a legend: count, median and p99 by the
// nearest-rank rule, the x at which the CDF drawn reaches 0.5 and 0.99.
func quantiles(samples []float64) string {
	s := slices.Clone(samples)
	slices.Sort(s)
	rank := func(q float64) float64 { return s[int(math.Ceil(q*float64(len(s))))-1] }
	return fmt.Sprintf("(n=%d, p50=%s, p99=%s)", len(s), sig3(rank(0.5)), sig3(rank(0.99)))
}

// sig3 formats v with three significant digits, without an exponent.
func sig3(v float64) string {
	if v == 0 {
		return "0"
	}
	decimals := max(0, min(6, 2-int(math.Floor(math.Log10(math.Abs(v))))))
	return strconv.FormatFloat(v, 'f', decimals, 64)
}

func xys(s evidence.Series) plotter.XYs {
	pts := make(plotter.XYs, len(s.Y))
	for i := range s.Y {
		pts[i] = plotter.XY{X: s.X[i], Y: s.Y[i]}
	}
	return pts
}

func styleLine(l *plotter.Line, i int) {
	l.Color = seriesColor(i)
	l.Width = vg.Points(1.5)
	l.Dashes = seriesDashes(i)
}

// sansSerif switches every text of p to Liberation Sans, which reads better
// than the default serif at chart sizes.
func sansSerif(p *plot.Plot) {
	p.Title.TextStyle.Font.Variant = "Sans"
	p.X.Label.TextStyle.Font.Variant = "Sans"
	p.Y.Label.TextStyle.Font.Variant = "Sans"
	p.X.Tick.Label.Font.Variant = "Sans"
	p.Y.Tick.Label.Font.Variant = "Sans"
}

// niceTicks labels about n round values (steps of 1, 2, 2.5 or 5 times a
// power of ten); gonum's default aims at 3, too sparse for a 16 cm axis.
type niceTicks int

func (n niceTicks) Ticks(lo, hi float64) []plot.Tick {
	raw := (hi - lo) / float64(n-1)
	mag := math.Pow10(int(math.Floor(math.Log10(raw))))
	step := 10 * mag
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	decimals := max(0, -int(math.Floor(math.Log10(step))))
	if math.Mod(step/math.Pow10(-decimals), 1) != 0 {
		decimals++ // 2.5 × 10^k needs one more digit
	}
	var ticks []plot.Tick
	for k := math.Ceil(lo / step); k*step <= hi+step*1e-9; k++ {
		v := k * step
		if v == 0 {
			v = 0 // no "-0"
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', decimals, 64)})
	}
	return ticks
}

// decadeTicks labels the powers of ten of a log axis, with unlabelled minor
// ticks at 2..9 times each, and writes 10^6 as "1e6" rather than "1e+06".
type decadeTicks struct{}

func (decadeTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for e := int(math.Floor(math.Log10(lo))); e <= int(math.Ceil(math.Log10(hi))); e++ {
		d := math.Pow10(e)
		label := "1e" + strconv.Itoa(e)
		if e >= -3 && e <= 5 {
			label = strconv.FormatFloat(d, 'f', -1, 64)
		}
		ticks = append(ticks, plot.Tick{Value: d, Label: label})
		for m := 2; m <= 9; m++ {
			ticks = append(ticks, plot.Tick{Value: d * float64(m)})
		}
	}
	return ticks
}
