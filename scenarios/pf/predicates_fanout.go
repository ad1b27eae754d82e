package pf

import (
	"errors"

	"github.com/durabench/durabench/harness/predicate"
)

// Bounds of PF-02, from the catalog's ladder (criteria/catalog_pf.go). The
// rates are claims of "at least", judged on the lower bound of the median
// per-second completion rate's interval; "within 20%" is judged on the
// lower bound of the last-over-first rate ratio's interval. The margins are
// in the details.
const (
	rateFloorUseful = 100.0 // activities/s, level 3
	rateFloorHigh   = 500.0 // activities/s, level 5
	maxDegradation  = 0.20  // level 5: the last tenth within 20% of the first
)

// The server's default history limits (limit.historyCount.error and
// limit.historySize.error), which each run of a fan-out must stay under.
const (
	defaultHistoryEvents = 51_200
	defaultHistoryBytes  = 50 << 20
)

func fanOutPredicates() []predicate.Spec {
	return []predicate.Spec{
		fanOut1kPredicate.Spec(), fanOut10kPredicate.Spec(), rate100Predicate.Spec(), rate500Predicate.Spec(),
		childrenPredicate.Spec(), contentionPredicate.Spec(), noDegradationPredicate.Spec(),
	}
}

// fanResult is one fan-out as the client and the worker saw it.
type fanResult struct {
	name       string
	want, got  int   // activities asked for, and the count the workflow returned
	executions int   // activity executions the worker recorded
	err        error // the workflow's
}

func (f fanResult) exact() bool { return f.err == nil && f.got == f.want && f.executions == f.want }

// everyFanOutExact: every run returned its count with each activity run
// exactly once.
func everyFanOutExact(runs []fanResult) bool {
	for _, r := range runs {
		if !r.exact() {
			return false
		}
	}
	return len(runs) > 0
}

var fanOut1kPredicate = predicate.New("PF-02.fan-out-1k", "everyFanOutExact", everyFanOutExact,
	predicate.Case[[]fanResult]{Name: "both shapes, each 1,000 of 1,000", In: []fanResult{{"1k", 1000, 1000, 1000, nil}, {"1k_futures", 1000, 1000, 1000, nil}}, Want: true},
	predicate.Case[[]fanResult]{Name: "an activity lost", In: []fanResult{{"1k", 1000, 1000, 1000, nil}, {"1k_futures", 1000, 999, 999, nil}}, Want: false},
	predicate.Case[[]fanResult]{Name: "an activity run twice", In: []fanResult{{"1k", 1000, 1000, 1001, nil}}, Want: false},
	predicate.Case[[]fanResult]{Name: "the workflow failed", In: []fanResult{{"1k", 1000, 0, 0, errors.New("workflow timed out")}}, Want: false},
	predicate.Case[[]fanResult]{Name: "nothing ran", In: nil, Want: false},
)

// chain is a fan-out over continue-as-new runs: each run's completions as
// its history records them, and its history's size against the server's
// limits.
type chain struct {
	fanResult
	perRun int
	runs   []runShare
}

type runShare struct{ activities, events, bytes int }

// chainedExact: the fan-out is exact, it took as many runs as its share per
// run implies, each run's history records its share of completions (the
// progress carried into each new run was right), and every history stayed
// under the server's default limits.
func chainedExact(c chain) bool {
	if !c.exact() || c.perRun <= 0 || len(c.runs) != (c.want+c.perRun-1)/c.perRun {
		return false
	}
	total := 0
	for i, r := range c.runs {
		share := min(c.perRun, c.want-i*c.perRun)
		if r.activities != share || r.events >= defaultHistoryEvents || r.bytes >= defaultHistoryBytes {
			return false
		}
		total += r.activities
	}
	return total == c.want
}

func fourRuns(activities ...int) []runShare {
	out := make([]runShare, len(activities))
	for i, a := range activities {
		out[i] = runShare{activities: a, events: 3*a + 35, bytes: 276 * a}
	}
	return out
}

var fanOut10kPredicate = predicate.New("PF-02.fan-out-10k", "chainedExact", chainedExact,
	predicate.Case[chain]{Name: "4 runs of 2,500", In: chain{fanResult{"10k", 10000, 10000, 10000, nil}, 2500, fourRuns(2500, 2500, 2500, 2500)}, Want: true},
	predicate.Case[chain]{Name: "progress lost at continue-as-new: a run redid its predecessor's share", In: chain{fanResult{"10k", 10000, 10000, 12500, nil}, 2500, fourRuns(2500, 2500, 2500, 2500, 2500)}, Want: false},
	predicate.Case[chain]{Name: "a run's history records fewer completions than it counted", In: chain{fanResult{"10k", 10000, 10000, 10000, nil}, 2500, fourRuns(2500, 2000, 2500, 2500)}, Want: false},
	predicate.Case[chain]{Name: "a run over the server's event limit", In: chain{fanResult{"10k", 10000, 10000, 10000, nil}, 2500, []runShare{{2500, 60000, 1 << 20}, {2500, 7535, 1 << 20}, {2500, 7535, 1 << 20}, {2500, 7535, 1 << 20}}}, Want: false},
)

// sustained is a fan-out's rate as judged: exact, with the median
// per-second completion rate's interval.
type sustained struct {
	exact bool
	rate  interval // activities/s
}

func atLeast(floor float64) func(sustained) bool {
	return func(s sustained) bool { return s.exact && s.rate.lo >= floor }
}

var rate100Predicate = predicate.New("PF-02.rate-100", "rateLowerBoundAtLeast100", atLeast(rateFloorUseful),
	predicate.Case[sustained]{Name: "228/s [217, 242]", In: sustained{true, interval{228, 217, 242}}, Want: true},
	predicate.Case[sustained]{Name: "105/s but its interval reaches down to 90", In: sustained{true, interval{105, 90, 120}}, Want: false},
	predicate.Case[sustained]{Name: "fast but an activity was lost", In: sustained{false, interval{228, 217, 242}}, Want: false},
)

var rate500Predicate = predicate.New("PF-02.rate-500", "rateLowerBoundAtLeast500", atLeast(rateFloorHigh),
	predicate.Case[sustained]{Name: "620/s [560, 680]", In: sustained{true, interval{620, 560, 680}}, Want: true},
	predicate.Case[sustained]{Name: "228/s [217, 242]", In: sustained{true, interval{228, 217, 242}}, Want: false},
)

var childrenPredicate = predicate.New("PF-02.children-batched", "childrenFanOutExact", fanResult.exact,
	predicate.Case[fanResult]{Name: "5,000 of 5,000", In: fanResult{"children", 5000, 5000, 5000, nil}, Want: true},
	predicate.Case[fanResult]{Name: "a child's activities lost", In: fanResult{"children", 5000, 4900, 4900, nil}, Want: false},
	predicate.Case[fanResult]{Name: "a child retried from scratch: activities run twice", In: fanResult{"children", 5000, 5000, 5100, nil}, Want: false},
)

// backlogSignal is what the contention readings of the runs showed, and of
// the 10K fan-out, whose activities wait seconds, the backlog the server
// reported.
type backlogSignal struct {
	sampled   bool    // every run's task queue was read at least twice without error, with waits and workflow tasks measured
	first     int64   // the 10K fan-out's first backlog reading
	peak      int64   // its highest
	waitP50Ms float64 // its activities' median schedule-to-start
}

// backlogRises: every run was sampled, and under the 10K fan-out, while its
// activities waited, the backlog the server reports rose above its first
// reading. A signal that stays flat while tasks wait is no signal for a
// scaler.
func backlogRises(b backlogSignal) bool {
	return b.sampled && b.waitP50Ms > 0 && b.peak > b.first
}

var contentionPredicate = predicate.New("PF-02.contention-reported", "backlogRisesUnderFanOut", backlogRises,
	predicate.Case[backlogSignal]{Name: "backlog 0 → 412 while activities waited 1.9 s", In: backlogSignal{true, 0, 412, 1938}, Want: true},
	predicate.Case[backlogSignal]{Name: "backlog read 0 throughout while activities waited 2 s", In: backlogSignal{true, 0, 0, 2000}, Want: false},
	predicate.Case[backlogSignal]{Name: "the task queue could not be read", In: backlogSignal{false, 0, 412, 1938}, Want: false},
)

// degradation is the completion rate over the last tenth of the 10K
// fan-out against the first, with the ratio's interval.
type degradation struct {
	exact bool
	ratio interval // last-tenth rate over first-tenth rate
}

// rateHeld: the fan-out was exact and the ratio's lower bound is at least
// 1 - maxDegradation.
func rateHeld(d degradation) bool { return d.exact && d.ratio.lo >= 1-maxDegradation }

var noDegradationPredicate = predicate.New("PF-02.no-degradation", "lastTenthWithin20Percent", rateHeld,
	predicate.Case[degradation]{Name: "1.08 [0.95, 1.21]", In: degradation{true, interval{1.08, 0.95, 1.21}}, Want: true},
	predicate.Case[degradation]{Name: "0.83 but its interval reaches down to 0.74", In: degradation{true, interval{0.83, 0.74, 0.93}}, Want: false},
	predicate.Case[degradation]{Name: "activities lost", In: degradation{false, interval{1.0, 0.95, 1.05}}, Want: false},
)
