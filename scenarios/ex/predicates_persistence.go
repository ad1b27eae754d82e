package ex

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/durabench/durabench/harness/predicate"
)

// The pass conditions of EX-04's checks. A state is judged against one
// reached another way (an uncrashed run of the same inputs, a cached
// worker, or what the inputs determine), never against itself.

func persistencePredicates() []predicate.Spec {
	return []predicate.Spec{
		restartPredicate.Spec(), everyStepPredicate.Spec(), noCachePredicate.Spec(), historyPredicate.Spec(),
		serverStatePredicate.Spec(), longHistoryPredicate.Spec(),
	}
}

// stateAt builds the state StateWorkflow reaches after the given steps
// (Transform of each), for the tables.
func stateAt(steps int) State {
	st := State{Tags: map[string]int{}}
	for i := 1; i <= steps; i++ {
		v, _ := Transform(context.Background(), i)
		st.Step = i
		st.add(v)
	}
	return st
}

// restartedState is a state queried before a worker's SIGKILL, after a new
// worker process took over, and on an uncrashed run fed the same inputs
// (EX-04.query-after-restart).
type restartedState struct {
	before, after, uncrashed State
	err                      error // of the query after the restart
}

// stateSurvivesWorkerRestart: the new worker answered with the state the
// killed one had, which is the uncrashed run's.
func stateSurvivesWorkerRestart(o restartedState) bool {
	return o.err == nil && o.uncrashed.Step > 0 && reflect.DeepEqual(o.after, o.before) && reflect.DeepEqual(o.before, o.uncrashed)
}

var restartPredicate = predicate.New("EX-04.query-after-restart", "stateSurvivesWorkerRestart", stateSurvivesWorkerRestart,
	predicate.Case[restartedState]{Name: "counter, slice and map the same on both workers and the uncrashed run",
		In: restartedState{before: stateAt(1), after: stateAt(1), uncrashed: stateAt(1)}, Want: true},
	predicate.Case[restartedState]{Name: "the new worker started from an empty state",
		In: restartedState{before: stateAt(1), after: stateAt(0), uncrashed: stateAt(1)}, Want: false},
	predicate.Case[restartedState]{Name: "the map was not restored",
		In: restartedState{before: stateAt(1), after: State{Step: 1, Counter: stateAt(1).Counter, Items: stateAt(1).Items}, uncrashed: stateAt(1)}, Want: false},
)

// crashPointsMin is the catalog's number of crash points: the worker is
// killed after each step of a 20-step workflow (EX-04.crash-at-every-step).
const crashPointsMin = 20

// everyStep is a workflow whose worker was SIGKILLed after each step in
// turn, compared at each step with an uncrashed run fed the same signals
// (EX-04.crash-at-every-step).
type everyStep struct {
	steps, kills      int
	mismatches        []string // steps at which a state queried before the kill or after the restart differed from the uncrashed run's
	result, uncrashed State    // the two runs' results
	err               error    // of either run
}

// sameStateAtEveryCrashPoint: the worker was killed after every one of at
// least crashPointsMin steps, no queried state differed from the uncrashed
// run's at the same step, and both runs returned the same final state.
func sameStateAtEveryCrashPoint(o everyStep) bool {
	return o.err == nil && o.steps >= crashPointsMin && o.kills == o.steps && len(o.mismatches) == 0 &&
		o.result.Step == o.steps && reflect.DeepEqual(o.result, o.uncrashed)
}

var everyStepPredicate = predicate.New("EX-04.crash-at-every-step", "sameStateAtEveryCrashPoint", sameStateAtEveryCrashPoint,
	predicate.Case[everyStep]{Name: "20 kills, no difference, same result",
		In: everyStep{steps: 20, kills: 20, result: stateAt(20), uncrashed: stateAt(20)}, Want: true},
	predicate.Case[everyStep]{Name: "the state after the 7th restart lost a step",
		In: everyStep{steps: 20, kills: 20, mismatches: []string{"step 7: after restart step 6"}, result: stateAt(20), uncrashed: stateAt(20)}, Want: false},
	predicate.Case[everyStep]{Name: "a step redone after a crash: the final counter differs",
		In: everyStep{steps: 20, kills: 20, result: State{Step: 20, Counter: stateAt(20).Counter + 9, Items: stateAt(20).Items, Tags: stateAt(20).Tags}, uncrashed: stateAt(20)}, Want: false},
	predicate.Case[everyStep]{Name: "fewer crash points than the catalog asks",
		In: everyStep{steps: 5, kills: 5, result: stateAt(5), uncrashed: stateAt(5)}, Want: false},
)

// noCache is the same CommandsWorkflow inputs run on a worker process with
// the sticky cache off and on a caching worker (EX-04.no-sticky-cache).
type noCache struct {
	rounds          int
	tasks, sticky   int // workflow tasks of the no-cache run, and those on a sticky queue
	refTasks        int // the same on the caching worker
	refSticky       int
	result, queried CommandsState // the no-cache run's result and its state queried after completion
	refResult       CommandsState
	err, refErr     error
}

// rebuiltWithoutCache: no workflow task of the no-cache run went to a
// sticky queue, so each one replayed the history, and it took more tasks
// than rounds (each round waits for a signal, so a run without replays
// would be one that never waited); the caching worker did use its sticky
// queue; and both reached the same result, which the no-cache worker's
// query after completion (another replay) also returns.
func rebuiltWithoutCache(o noCache) bool {
	return o.err == nil && o.refErr == nil && o.sticky == 0 && o.tasks > o.rounds && o.refSticky > 0 &&
		reflect.DeepEqual(o.result, o.refResult) && reflect.DeepEqual(o.queried, o.result)
}

func commandsCase(counter int) CommandsState {
	return CommandsState{State: State{Step: 3, Counter: counter, Items: []string{"item-121", "input-1"}, Tags: map[string]int{"mod0": 1}},
		Issued: map[string]int{kindActivity: 3}}
}

var noCachePredicate = predicate.New("EX-04.no-sticky-cache", "rebuiltWithoutCache", rebuiltWithoutCache,
	predicate.Case[noCache]{Name: "14 tasks, none sticky; the cached run 14 of 15 sticky; same result",
		In: noCache{rounds: 3, tasks: 14, refTasks: 15, refSticky: 14, result: commandsCase(431), queried: commandsCase(431), refResult: commandsCase(431)}, Want: true},
	predicate.Case[noCache]{Name: "the cache setting ignored: tasks went to the sticky queue",
		In: noCache{rounds: 3, tasks: 14, sticky: 13, refTasks: 15, refSticky: 14, result: commandsCase(431), queried: commandsCase(431), refResult: commandsCase(431)}, Want: false},
	predicate.Case[noCache]{Name: "rebuilt from history, a different state",
		In: noCache{rounds: 3, tasks: 14, refTasks: 15, refSticky: 14, result: commandsCase(300), queried: commandsCase(300), refResult: commandsCase(431)}, Want: false},
)

// historyEvidence lists, per kind of command, the history events that must
// record it.
var historyEvidence = []struct {
	kind   string
	events []enumspb.EventType
	marker string
}{
	{kindActivity, []enumspb.EventType{enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED}, ""},
	{kindTimer, []enumspb.EventType{enumspb.EVENT_TYPE_TIMER_STARTED, enumspb.EVENT_TYPE_TIMER_FIRED}, ""},
	{kindChild, []enumspb.EventType{enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED, enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED}, ""},
	{kindSignal, []enumspb.EventType{enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED}, ""},
	{kindSideEffect, nil, "SideEffect"},
	{kindMutableSideEffect, nil, "MutableSideEffect"},
	{kindVersion, nil, "Version"},
	{kindLocalActivity, nil, "LocalActivity"},
}

// historyCounts is what a CommandsWorkflow counted it issued, by kind, and
// what its history holds (EX-04.history-complete).
type historyCounts struct {
	issued  map[string]int
	events  map[enumspb.EventType]int
	markers map[string]int // MarkerRecorded events by marker name
}

// historyHoldsEveryCommand: the workflow issued every kind of command and
// marker, and for each kind the history holds as many of each of its events
// as the workflow issued.
func historyHoldsEveryCommand(o historyCounts) bool {
	if len(o.issued) != len(historyEvidence) {
		return false
	}
	for _, e := range historyEvidence {
		want := o.issued[e.kind]
		if want == 0 || e.marker != "" && o.markers[e.marker] != want {
			return false
		}
		for _, typ := range e.events {
			if o.events[typ] != want {
				return false
			}
		}
	}
	return true
}

func (o historyCounts) describe() string {
	var parts []string
	for _, e := range historyEvidence {
		var got []string
		for _, typ := range e.events {
			got = append(got, fmt.Sprintf("%s %d", strings.TrimPrefix(typ.String(), "EVENT_TYPE_"), o.events[typ]))
		}
		if e.marker != "" {
			got = append(got, fmt.Sprintf("%s markers %d", e.marker, o.markers[e.marker]))
		}
		parts = append(parts, fmt.Sprintf("%s issued %d: %s", e.kind, o.issued[e.kind], strings.Join(got, ", ")))
	}
	return strings.Join(parts, "; ")
}

// completeHistory is a history with n of every command and marker of
// historyEvidence (and 1 version marker).
func completeHistory(n int) historyCounts {
	o := historyCounts{issued: map[string]int{}, events: map[enumspb.EventType]int{}, markers: map[string]int{}}
	for _, e := range historyEvidence {
		k := n
		if e.kind == kindVersion {
			k = 1
		}
		o.issued[e.kind] = k
		for _, typ := range e.events {
			o.events[typ] = k
		}
		if e.marker != "" {
			o.markers[e.marker] = k
		}
	}
	return o
}

func withoutMarker(o historyCounts, name string) historyCounts {
	o.markers = map[string]int{}
	for k, v := range completeHistory(3).markers {
		if k != name {
			o.markers[k] = v
		}
	}
	return o
}

var historyPredicate = predicate.New("EX-04.history-complete", "historyHoldsEveryCommand", historyHoldsEveryCommand,
	predicate.Case[historyCounts]{Name: "3 rounds: every command and marker recorded", In: completeHistory(3), Want: true},
	predicate.Case[historyCounts]{Name: "local activities leave no marker", In: withoutMarker(completeHistory(3), "LocalActivity"), Want: false},
	predicate.Case[historyCounts]{Name: "nothing issued", In: historyCounts{}, Want: false},
)

// serverState is a StateWorkflow's state queried before its worker and the
// server were SIGKILLed, after the server restarted on the same database
// file and a new worker started, and its result after one more step
// (EX-04.server-restart).
type serverState struct {
	before, after, result State
	added                 int   // what the step after the restart adds to the counter (Transform of its number)
	err                   error // of the query after the restart, the last step or the result
}

// stateSurvivesServerRestart: the state after the restart is the one
// before, and the step after it built on that state: one more step, the
// counter grown by that step's value, the items extended.
func stateSurvivesServerRestart(o serverState) bool {
	return o.err == nil && o.before.Step > 0 && reflect.DeepEqual(o.after, o.before) &&
		o.result.Step == o.before.Step+1 && o.result.Counter == o.before.Counter+o.added &&
		len(o.result.Items) == len(o.before.Items)+1 && slices.Equal(o.result.Items[:len(o.before.Items)], o.before.Items)
}

func serverStateCase(after State, result State) serverState {
	v, _ := Transform(context.Background(), 4)
	return serverState{before: stateAt(3), after: after, result: result, added: v}
}

var serverStatePredicate = predicate.New("EX-04.server-restart", "stateSurvivesServerRestart", stateSurvivesServerRestart,
	predicate.Case[serverState]{Name: "step 3 before and after; step 4 built on it", In: serverStateCase(stateAt(3), stateAt(4)), Want: true},
	predicate.Case[serverState]{Name: "the workflow is gone after the restart",
		In: serverState{before: stateAt(3), err: errors.New("workflow execution not found")}, Want: false},
	predicate.Case[serverState]{Name: "rolled back to step 2: the last step was not persisted", In: serverStateCase(stateAt(2), stateAt(3)), Want: false},
)

// longHistoryMin is the catalog's history length for
// EX-04.long-history-rebuild: at least 10,000 events.
const longHistoryMin = 10000

// longHistory is a long workflow's state on its caching worker, rebuilt by
// a worker with the cache off after the first was killed, and its result,
// against what its input determines (EX-04.long-history-rebuild).
type longHistory struct {
	events                        int64
	want, cached, rebuilt, result LongState
	err                           error
}

// rebuiltLongHistory: the history has at least longHistoryMin events, and
// the cached state, the state rebuilt from the whole history and the result
// all equal what the input determines.
func rebuiltLongHistory(o longHistory) bool {
	return o.err == nil && o.events >= longHistoryMin && o.want.Markers > 0 &&
		o.cached == o.want && o.rebuilt == o.want && o.result == o.want
}

var (
	longWant = LongState{Markers: 10100, Sum: 484290}
	longPart = LongState{Markers: 9090, Sum: 435856}
)

var longHistoryPredicate = predicate.New("EX-04.long-history-rebuild", "rebuiltLongHistory", rebuiltLongHistory,
	predicate.Case[longHistory]{Name: "10,150 events, the same state everywhere",
		In: longHistory{events: 10150, want: longWant, cached: longWant, rebuilt: longWant, result: longWant}, Want: true},
	predicate.Case[longHistory]{Name: "the rebuild stopped short of the last batch",
		In: longHistory{events: 10150, want: longWant, cached: longWant, rebuilt: longPart, result: longWant}, Want: false},
	predicate.Case[longHistory]{Name: "a history too short to count",
		In: longHistory{events: 2000, want: LongState{Markers: 1000, Sum: 48}, cached: LongState{Markers: 1000, Sum: 48},
			rebuilt: LongState{Markers: 1000, Sum: 48}, result: LongState{Markers: 1000, Sum: 48}}, Want: false},
)
