package pf

import (
	"math"

	"github.com/durabench/durabench/harness/predicate"
	"github.com/durabench/durabench/harness/stats"
)

// Bounds of PF-01, each from the catalog's ladder (criteria/catalog_pf.go),
// which takes them from the master document (CRITERIA.md: "The master calls
// 5–100 ms typical"). A bound on a tail is judged on the side of its 95%
// interval that makes the claim hard to earn: a ceiling on the upper bound,
// so that a run on a quiet host does not pass a check a slightly busier one
// fails; the margin is in each detail.
const (
	activityP95Ceiling = 500.0 // ms, level 2: five times the master's typical upper end
	masterTypicalLow   = 5.0   // ms, the master's typical band for a step's overhead
	masterTypicalHigh  = 100.0 // ms, its upper end, and level 3's p95 ceiling
	activityP99Ceiling = 50.0  // ms, level 4: half the master's upper end
	localP95Ceiling    = 10.0  // ms, level 4: a local activity skips the task queues
	loadedP99Ceiling   = 100.0 // ms, level 5: the master's upper end, under load
	breakdownTolerance = 0.10  // level 5: the parts add up to within 10%
	// minLoadShare is the share of the offered background load that must
	// have run during the loaded series for it to count as loaded: a
	// platform that starved the load would otherwise pass on an idle queue.
	minLoadShare = 0.5
	// Sample sizes: at least 1,000 timed steps per kind (the catalog's
	// level 2), 200 under load.
	stepSamples = 1000
	loadSamples = 200
)

// interval is an estimate with its 95% interval.
type interval struct{ est, lo, hi float64 }

func tailOf(xs []float64, q float64) interval {
	lo, hi := stats.Bootstrap(xs, func(s []float64) float64 { return stats.Quantile(s, q) })
	return interval{stats.Quantile(xs, q), lo, hi}
}

func latencyPredicates() []predicate.Spec {
	return []predicate.Spec{
		activityLatencyPredicate.Spec(), activityP95Predicate.Spec(), localFasterPredicate.Spec(),
		activityP99Predicate.Spec(), localP95Predicate.Spec(), overheadPredicate.Spec(),
		breakdownPredicate.Spec(), underLoadPredicate.Spec(),
	}
}

// activityLatencyReported: at least stepSamples steps were timed, the
// median has an interval around it, and p95 is under the level-2 ceiling.
func activityLatencyReported(s stats.Summary) bool {
	return s.N >= stepSamples && s.P50Lo <= s.P50 && s.P50 <= s.P50Hi && s.P50Lo < s.P50Hi && s.P95 < activityP95Ceiling
}

var activityLatencyPredicate = predicate.New("PF-01.activity-latency", "activityLatencyReported", activityLatencyReported,
	predicate.Case[stats.Summary]{Name: "1,000 steps, p95 60 ms", In: stats.Summary{N: 1000, P50: 49, P50Lo: 48, P50Hi: 50, P95: 60}, Want: true},
	predicate.Case[stats.Summary]{Name: "only 500 steps timed", In: stats.Summary{N: 500, P50: 49, P50Lo: 48, P50Hi: 50, P95: 60}, Want: false},
	predicate.Case[stats.Summary]{Name: "p95 of 800 ms", In: stats.Summary{N: 1000, P50: 300, P50Lo: 290, P50Hi: 310, P95: 800}, Want: false},
	predicate.Case[stats.Summary]{Name: "no interval", In: stats.Summary{N: 1000, P50: 49, P50Lo: 49, P50Hi: 49, P95: 60}, Want: false},
)

// ceiling is the predicate "the interval's upper bound is under c".
func ceiling(c float64) func(interval) bool { return func(i interval) bool { return i.hi < c } }

var activityP95Predicate = predicate.New("PF-01.activity-p95-under-100ms", "activityP95UpperBoundUnder100ms", ceiling(masterTypicalHigh),
	predicate.Case[interval]{Name: "p95 57 ms [56, 59]", In: interval{57, 56, 59}, Want: true},
	predicate.Case[interval]{Name: "p95 95 ms but its interval reaches 104", In: interval{95, 90, 104}, Want: false},
)

var activityP99Predicate = predicate.New("PF-01.activity-p99-under-50ms", "activityP99UpperBoundUnder50ms", ceiling(activityP99Ceiling),
	predicate.Case[interval]{Name: "p99 45 ms [44, 48]", In: interval{45, 44, 48}, Want: true},
	predicate.Case[interval]{Name: "p99 57 ms [55, 62]", In: interval{57, 55, 62}, Want: false},
)

var localP95Predicate = predicate.New("PF-01.local-activity-p95-under-10ms", "localP95UpperBoundUnder10ms", ceiling(localP95Ceiling),
	predicate.Case[interval]{Name: "p95 8 ms [7.5, 9]", In: interval{8, 7.5, 9}, Want: true},
	predicate.Case[interval]{Name: "p95 9.5 ms but its interval reaches 12", In: interval{9.5, 8, 12}, Want: false},
)

// stepPair is a local activity series beside an activity series.
type stepPair struct{ local, activity stats.Summary }

// localFaster: the local step's median interval lies wholly below the
// activity step's.
func localFaster(p stepPair) bool {
	return p.local.N > 0 && p.activity.N > 0 && p.local.P50Hi < p.activity.P50Lo
}

var localFasterPredicate = predicate.New("PF-01.local-activity-latency", "localFasterThanActivity", localFaster,
	predicate.Case[stepPair]{Name: "8 ms against 49 ms", In: stepPair{stats.Summary{N: 1000, P50: 8, P50Lo: 7.8, P50Hi: 8.3}, stats.Summary{N: 1000, P50: 49, P50Lo: 48.8, P50Hi: 49.3}}, Want: true},
	predicate.Case[stepPair]{Name: "a local activity dispatched like an activity: intervals overlap", In: stepPair{stats.Summary{N: 1000, P50: 48, P50Lo: 46, P50Hi: 50}, stats.Summary{N: 1000, P50: 49, P50Lo: 48, P50Hi: 50}}, Want: false},
)

// overhead is what an activity step adds to the update round trip, with a
// conservative interval from the two medians' intervals, beside the plain
// function call timed the same way.
type overhead struct {
	median, lo, hi float64 // ms
	calls          int     // plain function calls timed
	callMs         float64 // their median
}

func overheadOf(act, none, call stats.Summary) overhead {
	return overhead{median: act.P50 - none.P50, lo: act.P50Lo - none.P50Hi, hi: act.P50Hi - none.P50Lo, calls: call.N, callMs: call.P50}
}

// overheadInMasterBand: the function call was timed as often as the steps,
// the step's overhead lies above it (with DelayEnv set the call sleeps too),
// and the overhead's interval lies within the master's typical 5–100 ms
// band.
func overheadInMasterBand(o overhead) bool {
	return o.calls >= stepSamples && o.lo > o.callMs && o.lo >= masterTypicalLow && o.hi <= masterTypicalHigh
}

var overheadPredicate = predicate.New("PF-01.baseline", "overheadInMasterBand", overheadInMasterBand,
	predicate.Case[overhead]{Name: "41 ms [40.8, 41.8] over a 23 ns call", In: overhead{41.4, 40.8, 41.8, 1000, 23e-6}, Want: true},
	predicate.Case[overhead]{Name: "a step of 250 ms", In: overhead{242, 230, 255, 1000, 23e-6}, Want: false},
	predicate.Case[overhead]{Name: "a step that adds nothing measurable to the round trip", In: overhead{0.4, -0.3, 1.1, 1000, 23e-6}, Want: false},
	predicate.Case[overhead]{Name: "the plain call not timed", In: overhead{41.4, 40.8, 41.8, 0, 0}, Want: false},
	predicate.Case[overhead]{Name: "the step costs no more than the call itself", In: overhead{41.4, 40.8, 41.8, 1000, 45}, Want: false},
)

// accounting is the step overhead measured against the sum of the parts the
// metrics attribute to it (means per step).
type accounting struct{ measured, accounted float64 }

// breakdownAddsUp: the parts add up to the measured overhead within
// breakdownTolerance.
func breakdownAddsUp(a accounting) bool {
	return a.measured > 0 && math.Abs(a.measured-a.accounted)/a.measured <= breakdownTolerance
}

var breakdownPredicate = predicate.New("PF-01.breakdown", "breakdownAddsUp", breakdownAddsUp,
	predicate.Case[accounting]{Name: "41.4 ms measured, 40.1 accounted", In: accounting{41.4, 40.1}, Want: true},
	predicate.Case[accounting]{Name: "half the time unexplained", In: accounting{41.4, 20}, Want: false},
	predicate.Case[accounting]{Name: "no overhead measured", In: accounting{0, 0}, Want: false},
)

// loaded is the activity step timed beside a background load.
type loaded struct {
	steps           int
	offered, ranPer float64 // background activities per second
	p99             interval
	sum             stats.Summary // the whole series, for the detail
}

// loadedP99Under100: enough steps were timed while at least minLoadShare of
// the offered load ran, and the p99's upper bound is under the ceiling.
func loadedP99Under100(l loaded) bool {
	return l.steps >= loadSamples && l.ranPer >= minLoadShare*l.offered && l.p99.hi < loadedP99Ceiling
}

var underLoadPredicate = predicate.New("PF-01.under-load", "loadedP99UpperBoundUnder100ms", loadedP99Under100,
	predicate.Case[loaded]{Name: "p99 80 ms [70, 95] with 22 of 20 load activities/s", In: loaded{steps: 200, offered: 20, ranPer: 22, p99: interval{80, 70, 95}}, Want: true},
	predicate.Case[loaded]{Name: "p99 123 ms [100, 171]", In: loaded{steps: 200, offered: 20, ranPer: 22, p99: interval{123, 100, 171}}, Want: false},
	predicate.Case[loaded]{Name: "the load starved: 2 of 20 activities/s ran", In: loaded{steps: 200, offered: 20, ranPer: 2, p99: interval{50, 48, 55}}, Want: false},
)
