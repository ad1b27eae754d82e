package stats

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/stat"
)

func TestSummarize(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want Summary
	}{
		{"empty", nil, Summary{}},
		{"one", []float64{4}, Summary{N: 1, Mean: 4, P50: 4, P95: 4, P99: 4, Min: 4, Max: 4, P50Lo: 4, P50Hi: 4}},
		{"constant", []float64{2, 2, 2}, Summary{N: 3, Mean: 2, P50: 2, P95: 2, P99: 2, Min: 2, Max: 2, P50Lo: 2, P50Hi: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Summarize(tt.in))
		})
	}
}

func TestSummarizePercentiles(t *testing.T) {
	s := Summarize(ramp(100))
	assert.Equal(t, 100, s.N)
	assert.Equal(t, 50.5, s.Mean)
	assert.Equal(t, []float64{50, 95, 99, 1, 100}, []float64{s.P50, s.P95, s.P99, s.Min, s.Max})
	assert.Less(t, s.P50Lo, s.P50)
	assert.Greater(t, s.P50Hi, s.P50)
}

func TestSummarizeDoesNotModifyInput(t *testing.T) {
	in := []float64{3, 1, 2}
	Summarize(in)
	assert.Equal(t, []float64{3, 1, 2}, in)
}

// TestBootstrapCoverage draws many samples from a known distribution and
// checks that the 95% interval of the median covers the true median about
// 95% of the time: an interval that is too narrow would make regressions
// look significant when they are noise.
func TestBootstrapCoverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	const trials, n = 200, 101
	covered := 0
	for range trials {
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = rng.ExpFloat64() // true median ln 2
		}
		s := Summarize(xs)
		require.LessOrEqual(t, s.P50Lo, s.P50Hi)
		if s.P50Lo <= 0.6931 && 0.6931 <= s.P50Hi {
			covered++
		}
	}
	assert.InDelta(t, 0.95, float64(covered)/trials, 0.05, "covered %d of %d", covered, trials)
}

func TestBootstrapDeterministic(t *testing.T) {
	xs := ramp(50)
	mean := func(r []float64) float64 { return stat.Mean(r, nil) }
	lo1, hi1 := Bootstrap(xs, mean)
	lo2, hi2 := Bootstrap(xs, mean)
	assert.Equal(t, []float64{lo1, hi1}, []float64{lo2, hi2})
}

func TestDropWarmup(t *testing.T) {
	tests := []struct {
		n    int
		want []float64
	}{{0, []float64{1, 2, 3}}, {2, []float64{3}}, {5, []float64{}}}
	for _, tt := range tests {
		assert.Equal(t, tt.want, DropWarmup([]float64{1, 2, 3}, tt.n))
	}
}

// ramp returns 100, 99, ..., 1 (descending, so sorting matters).
func ramp(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = float64(n - i)
	}
	return out
}

func TestQuantile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	tests := []struct {
		p    float64
		want float64
	}{{0, 1}, {0.5, 3}, {1, 5}}
	for _, tc := range tests {
		if got := Quantile(xs, tc.p); got != tc.want {
			t.Errorf("Quantile(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if xs[0] != 5 {
		t.Errorf("input modified: %v", xs)
	}
	if got := Quantile(nil, 0.5); got != 0 {
		t.Errorf("Quantile(nil) = %v, want 0", got)
	}
}

func TestSummarizeRounds(t *testing.T) {
	// Two rounds sit at 10, two at 20: single-sample resampling would make
	// the median's interval narrow; resampling rounds spans both levels.
	var rounds [][]float64
	for _, level := range []float64{10, 20, 10, 20} {
		r := make([]float64, 100)
		for i := range r {
			r[i] = level + float64(i%5)/10
		}
		rounds = append(rounds, r)
	}
	s := SummarizeRounds(rounds)
	if s.N != 400 {
		t.Fatalf("N = %d, want 400 pooled samples", s.N)
	}
	if s.P50Lo > 11 || s.P50Hi < 19 {
		t.Errorf("interval [%v, %v] should span the two round levels", s.P50Lo, s.P50Hi)
	}
	var pooled []float64
	for _, r := range rounds {
		pooled = append(pooled, r...)
	}
	if iid := Summarize(pooled); s.P50 != iid.P50 || s.P95 != iid.P95 {
		t.Errorf("pooled figures differ: %+v vs %+v", s, iid)
	}
	if one := SummarizeRounds(rounds[:1]); one != Summarize(rounds[0]) {
		t.Errorf("one round: %+v, want the plain summary", one)
	}
}

func TestBootstrapRatio(t *testing.T) {
	p95 := func(xs []float64) float64 { return Quantile(xs, 0.95) }
	scaled := func(xs []float64, k float64) []float64 {
		out := make([]float64, len(xs))
		for i, x := range xs {
			out[i] = x * k
		}
		return out
	}
	base := ramp(200)
	tests := []struct {
		name     string
		num, den []float64
		lo, hi   float64 // the interval must lie in [lo, hi] and contain the true ratio
		truth    float64
	}{
		{"same sample", base, base, 0.8, 1.25, 1},
		{"twice as slow", scaled(base, 2), base, 1.6, 2.5, 2},
		{"half", scaled(base, 0.5), base, 0.4, 0.625, 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lo, hi := BootstrapRatio(tt.num, tt.den, p95)
			assert.LessOrEqual(t, lo, tt.truth)
			assert.GreaterOrEqual(t, hi, tt.truth)
			assert.GreaterOrEqual(t, lo, tt.lo)
			assert.LessOrEqual(t, hi, tt.hi)
		})
	}
	lo, hi := BootstrapRatio(nil, base, p95)
	assert.Equal(t, []float64{0, 0}, []float64{lo, hi}, "an empty sample has no interval")
}
