// Package stats summarises samples (durations, rates) for evidence: sample
// count, mean, percentiles and a bootstrap 95% interval of the median,
// computed with gonum.
package stats

import (
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/stat"
)

// Summary of a sample.
type Summary struct {
	N    int
	Mean float64
	P50  float64
	P95  float64
	P99  float64
	Min  float64
	Max  float64
	// P50Lo and P50Hi bound the median with 95% confidence (percentile
	// bootstrap); equal to P50 for fewer than two samples.
	P50Lo float64
	P50Hi float64
}

// bootstrapResamples is enough for a stable 2.5/97.5 percentile pair.
const bootstrapResamples = 2000

// Summarize returns the summary of xs (not modified); the zero Summary when
// empty. The bootstrap uses a fixed seed so that the same sample always gives
// the same interval.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := sorted(xs)
	p50 := quantile(s, 0.50)
	sum := Summary{
		N: len(s), Mean: stat.Mean(s, nil),
		P50: p50, P95: quantile(s, 0.95), P99: quantile(s, 0.99),
		Min: s[0], Max: s[len(s)-1],
		P50Lo: p50, P50Hi: p50,
	}
	if len(s) > 1 {
		sum.P50Lo, sum.P50Hi = Bootstrap(s, func(r []float64) float64 { return quantile(sorted(r), 0.5) })
	}
	return sum
}

// Bootstrap returns the percentile-bootstrap 95% interval of statistic f
// over xs.
func Bootstrap(xs []float64, f func([]float64) float64) (lo, hi float64) {
	rng := rand.New(rand.NewPCG(1, 2))
	est := make([]float64, bootstrapResamples)
	r := make([]float64, len(xs))
	for i := range est {
		for j := range r {
			r[j] = xs[rng.IntN(len(xs))]
		}
		est[i] = f(r)
	}
	slices.Sort(est)
	return quantile(est, 0.025), quantile(est, 0.975)
}

// BootstrapRatio returns the percentile-bootstrap 95% interval of
// f(num)/f(den), the two samples resampled independently (such as a p95
// under load over the p95 alone). A resampled denominator of 0 or less
// counts as 1e-9, so the ratio stays finite.
func BootstrapRatio(num, den []float64, f func([]float64) float64) (lo, hi float64) {
	if len(num) == 0 || len(den) == 0 {
		return 0, 0
	}
	rng := rand.New(rand.NewPCG(7, 11))
	est := make([]float64, bootstrapResamples)
	rn, rd := make([]float64, len(num)), make([]float64, len(den))
	for i := range est {
		for j := range rn {
			rn[j] = num[rng.IntN(len(num))]
		}
		for j := range rd {
			rd[j] = den[rng.IntN(len(den))]
		}
		est[i] = f(rn) / max(f(rd), 1e-9)
	}
	slices.Sort(est)
	return quantile(est, 0.025), quantile(est, 0.975)
}

// SummarizeRounds summarises samples taken in rounds (independent runs of
// the same measurement, such as one workflow each): the figures are those of
// all samples pooled, but the median's interval comes from resampling whole
// rounds. Samples within a round share its conditions (a workflow, a cache,
// a checkpoint of the database), so resampling single samples would give an
// interval too narrow to hold from one run to the next.
func SummarizeRounds(rounds [][]float64) Summary {
	var all []float64
	for _, r := range rounds {
		all = append(all, r...)
	}
	s := Summarize(all)
	if len(rounds) < 2 {
		return s
	}
	rng := rand.New(rand.NewPCG(3, 4))
	est := make([]float64, bootstrapResamples)
	var pooled []float64
	for i := range est {
		pooled = pooled[:0]
		for range rounds {
			pooled = append(pooled, rounds[rng.IntN(len(rounds))]...)
		}
		est[i] = quantile(sorted(pooled), 0.5)
	}
	slices.Sort(est)
	s.P50Lo, s.P50Hi = quantile(est, 0.025), quantile(est, 0.975)
	return s
}

// DropWarmup returns xs without its first n samples (all of them if n is
// larger), so that connection set-up and caches warming do not skew figures.
func DropWarmup(xs []float64, n int) []float64 {
	return xs[min(n, len(xs)):]
}

func sorted(xs []float64) []float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s
}

func quantile(sorted []float64, p float64) float64 {
	return stat.Quantile(p, stat.Empirical, sorted, nil)
}

// Metrics flattens a summary into evidence metrics named prefix_n, prefix_p50, ...
func (s Summary) Metrics(prefix string) map[string]float64 {
	return map[string]float64{
		prefix + "_n": float64(s.N), prefix + "_mean": s.Mean,
		prefix + "_p50": s.P50, prefix + "_p95": s.P95, prefix + "_p99": s.P99,
		prefix + "_min": s.Min, prefix + "_max": s.Max,
		prefix + "_p50_lo": s.P50Lo, prefix + "_p50_hi": s.P50Hi,
	}
}

// Quantile returns the p-quantile (0..1) of xs (not modified), 0 when empty.
func Quantile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	return quantile(sorted(xs), p)
}
