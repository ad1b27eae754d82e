package ex

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/durabench/durabench/harness/predicate"
)

// The pass conditions of EX-05's checks. A replayed value is judged against
// the recorded one only where a replay that recomputed it would get another
// value: time has moved on, the sources are random or planted to differ.

func determinismPredicates() []predicate.Spec {
	return []predicate.Spec{
		nowPredicate.Spec(), sideEffectPredicate.Spec(), mutablePredicate.Spec(), coroutinesPredicate.Spec(),
		directCallPredicate.Spec(), staticFlagsPredicate.Spec(), referenceCleanPredicate.Spec(),
	}
}

// ndeCode is the code the Go SDK gives its non-determinism errors.
const ndeCode = "[TMPRL1100]"

// hasNDECode reports whether an error message carries ndeCode.
func hasNDECode(msg string) bool { return strings.Contains(msg, ndeCode) }

// valuesReplay is a ValuesWorkflow run and its replay on sources that
// return other values than the live ones and count their calls
// (EX-05.workflow-now-stable, side-effect-stable, mutable-side-effect).
type valuesReplay struct {
	rounds             int
	configs            []int // what the live configuration source gave, round by round
	recorded, replayed ValuesResult
	reproduced         bool      // the replay returned the recorded result (the history's payload)
	replayedAt         time.Time // when the replay ran
	markers            map[string]int
	randomCalls        int64 // calls of the replay sources' Random
	configCalls        int64 // and Config
}

// nowStableOnReplay: workflow.Now moved forward during the run (so a clock
// read again would give other values), the replay ran after the last
// recorded value, and it returned the recorded values.
func nowStableOnReplay(o valuesReplay) bool {
	n := o.recorded.Nows
	return o.reproduced && len(n) == o.rounds && o.rounds >= 2 && n[0].Before(n[len(n)-1]) && o.replayedAt.After(n[len(n)-1]) &&
		slices.EqualFunc(o.replayed.Nows, n, time.Time.Equal)
}

var (
	valuesT0   = time.Date(2026, 1, 1, 13, 32, 58, 170e6, time.UTC)
	valuesNows = []time.Time{valuesT0, valuesT0.Add(44 * time.Millisecond), valuesT0.Add(93 * time.Millisecond)}
	valuesRand = []RandomValue{{N: 7614410248096841215, UUID: "9cd3337a"}, {N: 42, UUID: "5e0f"}, {N: -7, UUID: "77aa"}}
	liveValues = ValuesResult{Nows: valuesNows, Randoms: valuesRand, Configs: []int{1, 1, 2}}
)

// valuesCase is a replay of liveValues that returned replayed.
func valuesCase(replayed ValuesResult, markers map[string]int, randomCalls, configCalls int64) valuesReplay {
	return valuesReplay{rounds: 3, configs: liveValues.Configs, recorded: liveValues, replayed: replayed, reproduced: slices.EqualFunc(replayed.Nows, valuesNows, time.Time.Equal),
		replayedAt: valuesT0.Add(time.Second), markers: markers, randomCalls: randomCalls, configCalls: configCalls}
}

var valuesMarkers = map[string]int{"SideEffect": 3, "MutableSideEffect": 2}

var nowPredicate = predicate.New("EX-05.workflow-now-stable", "nowStableOnReplay", nowStableOnReplay,
	predicate.Case[valuesReplay]{Name: "replayed 1s later, the recorded times", In: valuesCase(liveValues, valuesMarkers, 0, 0), Want: true},
	predicate.Case[valuesReplay]{Name: "the wall clock read again on replay",
		In: valuesCase(ValuesResult{Nows: []time.Time{valuesT0.Add(time.Second), valuesT0.Add(time.Second), valuesT0.Add(time.Second)},
			Randoms: valuesRand, Configs: []int{1, 1, 2}}, valuesMarkers, 0, 0), Want: false},
	predicate.Case[valuesReplay]{Name: "time did not move during the run: nothing to tell apart",
		In: valuesReplay{rounds: 2, recorded: ValuesResult{Nows: []time.Time{valuesT0, valuesT0}}, replayed: ValuesResult{Nows: []time.Time{valuesT0, valuesT0}},
			reproduced: true, replayedAt: valuesT0.Add(time.Second)}, Want: false},
)

// sideEffectStable: every round recorded its own random value (all
// distinct, so a recomputation would differ), one SideEffect marker each,
// and the replay returned the recorded values without calling the function.
func sideEffectStable(o valuesReplay) bool {
	r := o.recorded.Randoms
	distinct := map[RandomValue]bool{}
	for _, v := range r {
		distinct[v] = true
	}
	return o.reproduced && o.rounds > 0 && len(r) == o.rounds && len(distinct) == o.rounds && slices.Equal(o.replayed.Randoms, r) &&
		o.markers["SideEffect"] == o.rounds && o.randomCalls == 0
}

var sideEffectPredicate = predicate.New("EX-05.side-effect-stable", "sideEffectStable", sideEffectStable,
	predicate.Case[valuesReplay]{Name: "3 values in 3 markers, replayed without a call", In: valuesCase(liveValues, valuesMarkers, 0, 0), Want: true},
	predicate.Case[valuesReplay]{Name: "the function ran again on replay",
		In: valuesCase(ValuesResult{Nows: valuesNows, Randoms: []RandomValue{{-1, "not-recorded"}, {-1, "not-recorded"}, {-1, "not-recorded"}},
			Configs: []int{1, 1, 2}}, valuesMarkers, 3, 0), Want: false},
	predicate.Case[valuesReplay]{Name: "values kept in memory, no marker in history",
		In: valuesCase(liveValues, map[string]int{"MutableSideEffect": 2}, 0, 0), Want: false},
)

// valueChanges counts the values of configs that differ from the one
// before (the first counts).
func valueChanges(configs []int) int {
	n := 0
	for i, c := range configs {
		if i == 0 || c != configs[i-1] {
			n++
		}
	}
	return n
}

// mutableSideEffectStable: the run read the configuration as the source
// gave it, one MutableSideEffect marker per change of value (not per call),
// and the replay, whose source gives another value, returned the recorded
// ones without calling it.
func mutableSideEffectStable(o valuesReplay) bool {
	want := o.configs
	return o.reproduced && o.rounds > 0 && len(want) == o.rounds && slices.Equal(o.recorded.Configs, want) &&
		o.markers["MutableSideEffect"] == valueChanges(want) && slices.Equal(o.replayed.Configs, want) && o.configCalls == 0
}

var mutablePredicate = predicate.New("EX-05.mutable-side-effect", "mutableSideEffectStable", mutableSideEffectStable,
	predicate.Case[valuesReplay]{Name: "[1 1 2]: 2 markers, replayed as recorded", In: valuesCase(liveValues, valuesMarkers, 0, 0), Want: true},
	predicate.Case[valuesReplay]{Name: "a marker on every call",
		In: valuesCase(liveValues, map[string]int{"SideEffect": 3, "MutableSideEffect": 3}, 0, 0), Want: false},
	predicate.Case[valuesReplay]{Name: "the replay's source answered",
		In: valuesCase(ValuesResult{Nows: valuesNows, Randoms: valuesRand, Configs: []int{99, 99, 99}}, valuesMarkers, 0, 3), Want: false},
)

// coroutinesMin is the catalog's number of recorded runs for
// EX-05.deterministic-coroutines.
const coroutinesMin = 100

// coroutines is CoroutinesWorkflow run many times and each history replayed
// (EX-05.deterministic-coroutines).
type coroutines struct {
	runs     int
	orders   int      // distinct arrival orders among the recorded runs
	replayed int      // histories replayed
	differ   []string // replays whose result (the arrival order) differed from the recorded one, or that failed
}

// interleavingReplayed: at least coroutinesMin runs, every one replayed with
// its recorded arrival order; and the runs did not all arrive in one order
// (else a replay fixed on that order would pass without reproducing any
// interleaving).
func interleavingReplayed(o coroutines) bool {
	return o.runs >= coroutinesMin && o.replayed == o.runs && o.orders > 1 && len(o.differ) == 0
}

var coroutinesPredicate = predicate.New("EX-05.deterministic-coroutines", "interleavingReplayed", interleavingReplayed,
	predicate.Case[coroutines]{Name: "100 runs, 95 orders, every replay the same", In: coroutines{runs: 100, orders: 95, replayed: 100}, Want: true},
	predicate.Case[coroutines]{Name: "3 replays interleaved otherwise",
		In: coroutines{runs: 100, orders: 95, replayed: 100, differ: []string{"wf-007", "wf-031", "wf-077"}}, Want: false},
	predicate.Case[coroutines]{Name: "every run arrived in one order", In: coroutines{runs: 100, orders: 1, replayed: 100}, Want: false},
)

// directCalls is the replay of workflows that branch on time.Now and
// math/rand directly (EX-05.direct-call-detected).
type directCalls struct {
	timeErr string // the replay of the time branch, after its cutover
	replays int    // replays of the random branch's history
	nde     int    // that failed with a non-determinism error
	failed  int    // that failed at all
	silent  int    // that did not fail but returned another result than the recorded one
}

// directCallsCaught: the replay of the time branch, which takes the other
// path after the cutover, fails with a non-determinism error; of the random
// branch's replays, some failed (each takes the other path with probability
// 1/2, so with 40 replays none does with probability 2^-40), every failure
// is a non-determinism error, and no replay went another way silently.
func directCallsCaught(o directCalls) bool {
	return hasNDECode(o.timeErr) && o.replays > 0 && o.nde > 0 && o.nde == o.failed && o.silent == 0
}

var directCallPredicate = predicate.New("EX-05.direct-call-detected", "directCallsCaught", directCallsCaught,
	predicate.Case[directCalls]{Name: "time branch caught; 22 of 40 random replays caught",
		In: directCalls{timeErr: ndeCode + " During replay, a matching Timer command was expected", replays: 40, nde: 22, failed: 22}, Want: true},
	predicate.Case[directCalls]{Name: "the other path replayed silently",
		In: directCalls{timeErr: ndeCode + " During replay", replays: 40, silent: 19}, Want: false},
	predicate.Case[directCalls]{Name: "replays failed, but not with a non-determinism error",
		In: directCalls{timeErr: ndeCode + " During replay", replays: 40, nde: 0, failed: 20}, Want: false},
)

// staticFlags is workflowcheck's verdict on the planted workflows of
// fixtures/nondeterminism (EX-05.static-check-flags).
type staticFlags struct {
	planted        []string // violations planted in the fixture's workflows
	flagged        []string // of those, the ones workflowcheck flagged
	falsePositives []string // workflows without a planted violation that it flagged
}

// everyPlantedViolationFlagged: the fixture plants violations, and the
// checker flagged each one and no correct workflow.
func everyPlantedViolationFlagged(o staticFlags) bool {
	want, got := slices.Sorted(slices.Values(o.planted)), slices.Sorted(slices.Values(o.flagged))
	return len(want) > 0 && slices.Equal(want, got) && len(o.falsePositives) == 0
}

var plantedCase = []string{"time.Now", "math/rand", "map range", "global variable"}

var staticFlagsPredicate = predicate.New("EX-05.static-check-flags", "everyPlantedViolationFlagged", everyPlantedViolationFlagged,
	predicate.Case[staticFlags]{Name: "every planted violation flagged", In: staticFlags{planted: plantedCase, flagged: plantedCase}, Want: true},
	predicate.Case[staticFlags]{Name: "the global variable write missed",
		In: staticFlags{planted: plantedCase, flagged: plantedCase[:3]}, Want: false},
	predicate.Case[staticFlags]{Name: "a correct workflow flagged",
		In: staticFlags{planted: plantedCase, flagged: plantedCase, falsePositives: []string{"OrderWorkflowChanged: time.Now"}}, Want: false},
)

// referenceClean is workflowcheck's verdict on this package's own
// workflows (EX-05.reference-clean).
type referenceClean struct {
	workflows []string
	reports   map[string][]string // function -> diagnostics
}

// noFalsePositive: there were workflows to check and none was reported.
func noFalsePositive(o referenceClean) bool {
	return len(o.workflows) > 0 && len(o.reports) == 0
}

func (o referenceClean) noisy() []string {
	var out []string
	for _, fn := range slices.Sorted(maps.Keys(o.reports)) {
		out = append(out, fn+": "+strings.Join(o.reports[fn], "; "))
	}
	return out
}

var referenceCleanPredicate = predicate.New("EX-05.reference-clean", "noFalsePositive", noFalsePositive,
	predicate.Case[referenceClean]{Name: "2 workflows, nothing reported", In: referenceClean{workflows: []string{"StepsWorkflow", "StateWorkflow"}}, Want: true},
	predicate.Case[referenceClean]{Name: "a correct workflow reported",
		In: referenceClean{workflows: []string{"StepsWorkflow"}, reports: map[string][]string{"StepsWorkflow": {"calls time.Now"}}}, Want: false},
	predicate.Case[referenceClean]{Name: "no workflow found to check", In: referenceClean{}, Want: false},
)
