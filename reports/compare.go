package reports

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/durabench/durabench/harness/calibrate"
	"github.com/durabench/durabench/harness/evidence"
)

// CompareOptions tune Compare.
type CompareOptions struct {
	// MinEffect is the smallest relative change of a median that counts as a
	// regression even when it is statistically clear (0.10 = 10%), so that
	// a real but immaterial shift in a large sample does not fail CI.
	MinEffect float64
	// MaxSteal is the share of CPU time, in percent, that the host's
	// hypervisor may take while a timing check runs before a regression found
	// in it is set aside as unconfirmed: on a shared host that slows every
	// timing and throughput at once (on the reference machine 8-31% steal
	// during PF-02 went with the 10K fan-out at 81/s, against 230-277 when
	// quiet). A correctness check is never set aside. 0 takes nothing aside.
	MaxSteal float64
	// MinProbeSlowdown is how many times longer the host probe's CPU pass
	// (harness/calibrate, recorded with the PF checks) must take in the
	// current run than in the baseline, the two medians' intervals apart,
	// before a regression found in timing checks is set aside as
	// unconfirmed: the host was slower, not necessarily the platform. When
	// the probe held steady the regression counts, and says so. The fsync
	// probe is shown, not judged: on the reference machine its median moved
	// between 0.19 and 1.17 ms over nine probes with nothing changed, at a
	// scale far below a step's. A correctness check is never set aside. 0
	// takes nothing aside.
	MinProbeSlowdown float64
}

// Regression is one way the current run is worse than the baseline.
type Regression struct {
	Kind   string // "stars", "fail-close", "metric"
	Item   string
	Check  string // for metrics
	Detail string
	// Timing is set when every check behind the regression is a timing
	// check: only then may it be rerun, or set aside for a busy host.
	Timing bool
	// Rerun holds the commands that rerun those timing checks.
	Rerun []string
}

func (r Regression) String() string {
	where := r.Item
	if r.Check != "" {
		where = r.Check
	}
	return fmt.Sprintf("%s %s: %s", r.Kind, where, r.Detail)
}

// ReadJSON decodes a report.json written by WriteJSON.
func ReadJSON(r io.Reader) (*JSONReport, error) {
	var rep JSONReport
	if err := json.NewDecoder(r).Decode(&rep); err != nil {
		return nil, fmt.Errorf("report.json: %w", err)
	}
	if len(rep.Items) == 0 {
		return nil, fmt.Errorf("report.json: field items: must not be empty")
	}
	return &rep, nil
}

// Comparison is what Compare found: the regressions, those set aside
// because the host was busy when their evidence was taken, and how many gated
// medians it compared, so that "no regression" says what was looked at.
type Comparison struct {
	Regressions []Regression
	Unconfirmed []Regression
	// Slower lists gated medians that moved the worse way with the two
	// intervals apart, but by less than they may move: not a regression,
	// shown with the host probe's verdict so that a reader sees whether the
	// host or the platform was slower.
	Slower  []Regression
	Metrics int
}

// Rerun lists the commands that rerun the checks behind the regressions
// when every regression rests on timing checks alone, nil otherwise: a
// correctness check counts on its first failure and is never rerun.
func (c Comparison) Rerun() []string {
	var out []string
	for _, r := range c.Regressions {
		if !r.Timing {
			return nil
		}
		for _, cmd := range r.Rerun {
			if !slices.Contains(out, cmd) {
				out = append(out, cmd)
			}
		}
	}
	return out
}

// add files r as a regression, or as unconfirmed when the checks it rests
// on are all timing checks that ran while the host took more than MaxSteal
// of the CPU, or while the host probe ran MinProbeSlowdown times slower than
// in the baseline, whose checks are base.
func (c *Comparison) add(r Regression, o CompareOptions, evidence []jsonCheck, base map[string]jsonCheck) {
	r.Timing = len(evidence) > 0 && !slices.ContainsFunc(evidence, func(ch jsonCheck) bool { return !ch.Timing })
	if r.Timing {
		for _, ch := range evidence {
			r.Rerun = append(r.Rerun, ch.Reproduce)
		}
	}
	aside := false
	if r.Timing && o.MaxSteal > 0 {
		least := math.Inf(1)
		for _, ch := range evidence {
			if ch.HostStealPct == nil {
				least = 0
				break
			}
			least = min(least, *ch.HostStealPct)
		}
		if least > o.MaxSteal {
			r.Detail += fmt.Sprintf("; measured while the host's hypervisor took at least %.0f%% of the CPU (over %.0f%%)", least, o.MaxSteal)
			aside = true
		}
	}
	if r.Timing && o.MinProbeSlowdown > 0 {
		if slowed, detail, ok := hostProbe(evidence, base, o.MinProbeSlowdown); ok {
			r.Detail += "; " + detail
			aside = aside || slowed
		}
	}
	if aside {
		c.Unconfirmed = append(c.Unconfirmed, r)
		return
	}
	c.Regressions = append(c.Regressions, r)
}

// hostProbe compares the host probe that each of checks carries with the
// one its baseline record carries: slowed when every check's CPU probe took
// at least minSlowdown times as long as the baseline's, with its interval
// above the baseline's. ok is false when a check has no probe in either run
// (a baseline from before the probe): then nothing is said.
func hostProbe(checks []jsonCheck, base map[string]jsonCheck, minSlowdown float64) (slowed bool, detail string, ok bool) {
	slowed = true
	var parts []string
	for _, c := range checks {
		b := base[c.ID]
		bc, cc := interval(b.Metrics, calibrate.CPUMetric+"_p50"), interval(c.Metrics, calibrate.CPUMetric+"_p50")
		bf, cf := interval(b.Metrics, calibrate.FsyncMetric+"_p50"), interval(c.Metrics, calibrate.FsyncMetric+"_p50")
		if bc == nil || cc == nil || bf == nil || cf == nil || bc[1] <= 0 || bf[1] <= 0 {
			return false, "", false
		}
		word := "steady"
		if cc[0] > bc[2] && cc[1]/bc[1] >= minSlowdown {
			word = "slowed"
		} else {
			slowed = false
		}
		part := fmt.Sprintf("host probe %s: CPU %.4g → %.4g ms (%+.1f%%), fsync %.4g → %.4g ms (%+.1f%%)",
			word, bc[1], cc[1], 100*(cc[1]/bc[1]-1), bf[1], cf[1], 100*(cf[1]/bf[1]-1))
		if !slices.Contains(parts, part) { // checks of one series share a probe
			parts = append(parts, part)
		}
	}
	return slowed, strings.Join(parts, "; "), len(checks) > 0
}

// checksByID indexes the checks of it.
func checksByID(it jsonItem) map[string]jsonCheck {
	out := map[string]jsonCheck{}
	for _, c := range it.Checks {
		out[c.ID] = c
	}
	return out
}

// newlyFailed lists the checks of cur that failed where base's passed: the
// evidence of a drop in stars.
func newlyFailed(base, cur jsonItem) []jsonCheck {
	passed := map[string]bool{}
	for _, c := range base.Checks {
		passed[c.ID] = c.Outcome == "passed"
	}
	var out []jsonCheck
	for _, c := range cur.Checks {
		if c.Outcome == "failed" && passed[c.ID] {
			out = append(out, c)
		}
	}
	return out
}

// Compare lists the regressions of current against baseline:
//   - an item's stars dropped, or an item measured in the baseline is not
//     measured now;
//   - an applicable fail-close item fails in the current run;
//   - a gated metric's median got worse beyond its noise. A check gates the
//     metrics it names (evidence Gate: the scenario names only figures
//     stable from run to run, such as the PF step latencies and fan-out
//     rates, not recovery times under chaos). A metric X recorded as X_p50
//     with its bootstrap 95% interval (X_p50_lo, X_p50_hi) regresses when
//     the two runs' intervals do not overlap in the worse direction and the
//     median moved by at least MinEffect, or by the metric's own measured
//     noise when that is larger.
//
// A drop in stars or a metric regression whose evidence (the checks that
// newly failed, or the gated check) is all timing checks that ran while the
// host's hypervisor took more than MaxSteal of the CPU, or while the host
// probe recorded with them ran MinProbeSlowdown times slower than in the
// baseline, is listed as Unconfirmed instead: such a run cannot tell a
// slower platform from a busier or slower host. Where both runs carry the
// probe and it held steady, the regression counts and its detail says so. A
// correctness check and a fail-close failure always count.
func Compare(baseline, current *JSONReport, o CompareOptions) Comparison {
	var out Comparison
	base := map[string]jsonItem{}
	for _, it := range baseline.Items {
		base[it.ID] = it
	}
	for _, cur := range current.Items {
		b, ok := base[cur.ID]
		if !ok {
			continue
		}
		switch {
		case b.Stars == nil:
		case cur.Stars == nil:
			out.Regressions = append(out.Regressions, Regression{Kind: "stars", Item: cur.ID,
				Detail: fmt.Sprintf("measured at %d in the baseline, not measured now (%s)", *b.Stars, cur.Reason)})
		case *cur.Stars < *b.Stars:
			failed := newlyFailed(b, cur)
			detail := fmt.Sprintf("%d → %d (%s)", *b.Stars, *cur.Stars, cur.Reason)
			// What the failed checks observed, so that a CI log that keeps
			// no evidence still says what went wrong.
			for _, c := range failed {
				if c.Detail != "" {
					detail += fmt.Sprintf("; %s observed: %s", c.ID, c.Detail)
				}
			}
			out.add(Regression{Kind: "stars", Item: cur.ID, Detail: detail}, o, failed, checksByID(b))
		}
		compareMetrics(b, cur, o, &out)
	}
	for _, fc := range current.Overall.FailClose {
		if fc.Applies && fc.Status == "fail" {
			out.Regressions = append(out.Regressions, Regression{Kind: "fail-close", Item: fc.Item, Detail: fmt.Sprintf("rates %d (≤2)", *fc.Stars)})
		}
	}
	return out
}

func compareMetrics(base, cur jsonItem, o CompareOptions, out *Comparison) {
	baseChecks := checksByID(base)
	for _, c := range cur.Checks {
		b, ok := baseChecks[c.ID]
		if !ok {
			continue
		}
		for _, name := range slices.Sorted(maps.Keys(c.Gate)) {
			bm, cm := interval(b.Metrics, name+"_p50"), interval(c.Metrics, name+"_p50")
			if bm == nil || cm == nil || bm[1] == 0 {
				continue
			}
			out.Metrics++
			rule := c.Gate[name]
			effect := max(o.MinEffect, rule.MinEffect)
			change := (cm[1] - bm[1]) / bm[1]
			apart, by := cm[0] > bm[2], change // lower is better: current's low end above baseline's high end
			if rule.Better == evidence.HigherIsBetter {
				apart, by = cm[2] < bm[0], -change
			}
			switch {
			case apart && by >= effect:
				out.add(Regression{Kind: "metric", Item: cur.ID, Check: c.ID, Detail: fmt.Sprintf(
					"%s median %.4g → %.4g (%+.1f%%, beyond the %.0f%% it may move); 95%% intervals [%.4g, %.4g] and [%.4g, %.4g] do not overlap",
					name+"_p50", bm[1], cm[1], 100*change, 100*effect, bm[0], bm[2], cm[0], cm[2])}, o, []jsonCheck{c}, baseChecks)
			case apart && by > 0:
				r := Regression{Kind: "metric", Item: cur.ID, Check: c.ID, Detail: fmt.Sprintf(
					"%s median %.4g → %.4g (%+.1f%%, inside the %.0f%% it may move); 95%% intervals [%.4g, %.4g] and [%.4g, %.4g] do not overlap",
					name+"_p50", bm[1], cm[1], 100*change, 100*effect, bm[0], bm[2], cm[0], cm[2])}
				if _, detail, ok := hostProbe([]jsonCheck{c}, baseChecks, o.MinProbeSlowdown); ok && o.MinProbeSlowdown > 0 {
					r.Detail += "; " + detail
				}
				out.Slower = append(out.Slower, r)
			}
		}
	}
}

// interval returns {lo, median, hi} of metric name, or nil if incomplete.
func interval(m map[string]float64, name string) []float64 {
	mid, ok1 := m[name]
	lo, ok2 := m[name+"_lo"]
	hi, ok3 := m[name+"_hi"]
	if !ok1 || !ok2 || !ok3 {
		return nil
	}
	return []float64{lo, mid, hi}
}
