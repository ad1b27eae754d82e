package ex

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/durabench/durabench/harness/predicate"
)

// The pass conditions of EX-07's checks, each a named predicate over what a
// replay observed: whether each history reproduced the result recorded in its
// closing event (replayed), what the workflows returned on the server, the
// events their histories hold, and the SDK versions histories were recorded
// and replayed with.

func replayPredicates() []predicate.Spec {
	return []predicate.Spec{
		replaySimplePredicate.Spec(),
		replaySignalsPredicate.Spec(),
		replayChildrenPredicate.Spec(),
		replayChainPredicate.Spec(),
		replayUpdatesPredicate.Spec(),
		replayCorpusPredicate.Spec(),
		replayFixturesPredicate.Spec(),
		replayOlderSDKPredicate.Spec(),
	}
}

// replayed is the outcome of replaying one history with the
// WorkflowReplayer: ok when it replayed without error and the workflow
// function returned what the history's closing event records; why says
// what differed otherwise.
type replayed struct {
	name string
	ok   bool
	why  string
}

// replayOf replays h's outcome rp against the result h records.
func replayOf(name string, rp Replay, h *historypb.History) replayed {
	ok, why := rp.ReproducesResult(h)
	return replayed{name: name, ok: ok, why: why}
}

func (r replayed) String() string {
	if r.ok {
		return r.name + ": replay reproduced the recorded result"
	}
	return r.name + ": " + r.why
}

func allReproduced(rs []replayed) bool {
	return !slices.ContainsFunc(rs, func(r replayed) bool { return !r.ok })
}

// A replay error as the SDK words a mismatch, for the tables.
const mismatchErr = "replay error: [TMPRL1100] During replay, a matching Timer command was expected in history event position 9. However, the replayed code did not produce that."

// simpleReplay is what replaying SimpleWorkflow's history showed
// (EX-07.replay-simple).
type simpleReplay struct {
	events, activities, timers int // events; ActivityTaskCompleted and TimerFired among them
	replay                     replayed
}

// simpleActivities and simpleTimers are what SimpleWorkflow runs (two
// Transform activities around one timer, replayflows.go).
const simpleActivities, simpleTimers = 2, 1

// simpleReplays: the history holds SimpleWorkflow's two completed activities
// and its fired timer, and it replays to the recorded result.
func simpleReplays(o simpleReplay) bool {
	return o.replay.ok && o.activities == simpleActivities && o.timers == simpleTimers
}

var replaySimplePredicate = predicate.New("EX-07.replay-simple", "simpleReplays", simpleReplays,
	predicate.Case[simpleReplay]{Name: "two activities and a timer, replayed to the recorded result",
		In: simpleReplay{events: 17, activities: 2, timers: 1, replay: replayed{name: "simple", ok: true}}, Want: true},
	predicate.Case[simpleReplay]{Name: "the replay reports nondeterminism",
		In: simpleReplay{events: 17, activities: 2, timers: 1, replay: replayed{name: "simple", why: mismatchErr}}, Want: false},
	predicate.Case[simpleReplay]{Name: "the history records no fired timer",
		In: simpleReplay{events: 13, activities: 2, replay: replayed{name: "simple", ok: true}}, Want: false},
)

// signalsReplay is what SignalsWorkflow returned and its replay showed
// (EX-07.replay-signals-timers).
type signalsReplay struct {
	sent   int      // "event" signals sent
	err    error    // the workflow's result error on the server
	order  []string // its result: signal-N, timer-N and activity-N=V in the order they came
	replay replayed
}

// kinds counts the entries of a SignalsWorkflow result by kind and reports
// whether a timer or an activity came between the first and the last signal.
func (o signalsReplay) kinds() (n map[string]int, interleaved bool) {
	n = map[string]int{}
	first, last := -1, -1
	for i, e := range o.order {
		k, _, _ := strings.Cut(e, "-")
		n[k]++
		if k == "signal" {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	for _, e := range o.order[max(first, 0):max(last, 0)] {
		if !strings.HasPrefix(e, "signal-") {
			interleaved = true
		}
	}
	return n, interleaved
}

// signalsInterleavedReplay: the workflow received every signal, with timers
// and activities between them, and its history replays to the result it
// returned.
func signalsInterleavedReplay(o signalsReplay) bool {
	n, interleaved := o.kinds()
	return o.err == nil && o.sent > 0 && n["signal"] == o.sent && n["timer"] > 0 && n["activity"] > 0 && interleaved && o.replay.ok
}

var replaySignalsPredicate = predicate.New("EX-07.replay-signals-timers", "signalsInterleavedReplay", signalsInterleavedReplay,
	predicate.Case[signalsReplay]{Name: "two signals between timers and activities, replayed to the recorded order",
		In: signalsReplay{sent: 2, order: []string{"signal-0", "activity-1=2", "timer-1", "signal-1"}, replay: replayed{name: "signals", ok: true}}, Want: true},
	predicate.Case[signalsReplay]{Name: "the replay returns another order",
		In: signalsReplay{sent: 2, order: []string{"signal-0", "activity-1=2", "timer-1", "signal-1"},
			replay: replayed{name: "signals", why: `recorded ["signal-0","activity-1=2","timer-1","signal-1"], replayed ["activity-1=2","signal-0","timer-1","signal-1"]`}}, Want: false},
	predicate.Case[signalsReplay]{Name: "a signal was lost",
		In: signalsReplay{sent: 2, order: []string{"activity-1=2", "timer-1", "signal-1"}, replay: replayed{name: "signals", ok: true}}, Want: false},
	predicate.Case[signalsReplay]{Name: "the signals came in one batch, no timer or activity between them",
		In: signalsReplay{sent: 2, order: []string{"activity-1=2", "timer-1", "signal-0", "signal-1"}, replay: replayed{name: "signals", ok: true}}, Want: false},
)

// childrenReplay is what replaying a parent and its children showed
// (EX-07.replay-children).
type childrenReplay struct {
	want     int        // children the parent was asked to start
	parent   replayed   // the parent's history
	children []replayed // one per ChildWorkflowExecutionStarted event in the parent's history
}

// parentAndChildrenReplay: the parent started every child, and the parent's
// and every child's history replay to their recorded results.
func parentAndChildrenReplay(o childrenReplay) bool {
	return o.want > 0 && o.parent.ok && len(o.children) == o.want && allReproduced(o.children)
}

var replayChildrenPredicate = predicate.New("EX-07.replay-children", "parentAndChildrenReplay", parentAndChildrenReplay,
	predicate.Case[childrenReplay]{Name: "a parent and its three children reproduce their results",
		In: childrenReplay{want: 3, parent: replayed{name: "parent", ok: true},
			children: []replayed{{name: "child 1", ok: true}, {name: "child 2", ok: true}, {name: "child 3", ok: true}}}, Want: true},
	predicate.Case[childrenReplay]{Name: "a child's replay returns another result",
		In: childrenReplay{want: 3, parent: replayed{name: "parent", ok: true},
			children: []replayed{{name: "child 1", ok: true}, {name: "child 2", why: "recorded 6, replayed 7"}, {name: "child 3", ok: true}}}, Want: false},
	predicate.Case[childrenReplay]{Name: "the parent's history shows two children started of three",
		In: childrenReplay{want: 3, parent: replayed{name: "parent", ok: true},
			children: []replayed{{name: "child 1", ok: true}, {name: "child 2", ok: true}}}, Want: false},
)

// chainReplay is what a continue-as-new chain of ChainWorkflow showed
// (EX-07.replay-continue-as-new): the replay of each run, the activity
// result each run computed as its own history records it, and the state the
// last run returned, which carries what every earlier run handed over.
type chainReplay struct {
	want     int        // runs the chain was asked for (ChainState.Runs)
	runs     []replayed // one per run, following NewExecutionRunId
	computed []int      // the Transform result recorded in each run's history
	final    ChainState // the last run's result
}

// carried is the state the chain should end with, from what each run
// computed: ChainWorkflow's fold (replayflows.go).
func (o chainReplay) carried() ChainState {
	st := ChainState{Runs: o.want}
	for _, v := range o.computed {
		st.Run++
		st.Total += v
		st.Items = append(st.Items, fmt.Sprintf("run%d=%d", st.Run, v))
	}
	return st
}

// chainCarriesState: the chain ran as many times as asked, every run
// replays to its recorded result (its continue-as-new input, or the final
// state), and the state the last run returned holds what each earlier run
// computed, in order: nothing handed over at a continue-as-new was lost,
// repeated or altered on its way into the next run.
func chainCarriesState(o chainReplay) bool {
	want := o.carried()
	return o.want > 0 && len(o.runs) == o.want && len(o.computed) == o.want && allReproduced(o.runs) &&
		o.final.Run == want.Run && o.final.Runs == want.Runs && o.final.Total == want.Total && slices.Equal(o.final.Items, want.Items)
}

var replayChainPredicate = predicate.New("EX-07.replay-continue-as-new", "chainCarriesState", chainCarriesState,
	predicate.Case[chainReplay]{Name: "three runs; the last returns every run's result",
		In: chainReplay{want: 3, runs: []replayed{{name: "run 1", ok: true}, {name: "run 2", ok: true}, {name: "run 3", ok: true}}, computed: []int{2, 6, 12},
			final: ChainState{Run: 3, Runs: 3, Total: 20, Items: []string{"run1=2", "run2=6", "run3=12"}}}, Want: true},
	predicate.Case[chainReplay]{Name: "the new run started without the items handed over",
		In: chainReplay{want: 3, runs: []replayed{{name: "run 1", ok: true}, {name: "run 2", ok: true}, {name: "run 3", ok: true}}, computed: []int{2, 6, 12},
			final: ChainState{Run: 3, Runs: 3, Total: 20, Items: []string{"run3=12"}}}, Want: false},
	predicate.Case[chainReplay]{Name: "the second run's result was counted twice",
		In: chainReplay{want: 3, runs: []replayed{{name: "run 1", ok: true}, {name: "run 2", ok: true}, {name: "run 3", ok: true}}, computed: []int{2, 6, 12},
			final: ChainState{Run: 3, Runs: 3, Total: 26, Items: []string{"run1=2", "run2=6", "run3=12"}}}, Want: false},
	predicate.Case[chainReplay]{Name: "a run replays to another continue-as-new input",
		In: chainReplay{want: 3, runs: []replayed{{name: "run 1", ok: true}, {name: "run 2", why: `recorded {"Run":2,...}, replayed {"Run":1,...}`}, {name: "run 3", ok: true}},
			computed: []int{2, 6, 12}, final: ChainState{Run: 3, Runs: 3, Total: 20, Items: []string{"run1=2", "run2=6", "run3=12"}}}, Want: false},
)

// updatesReplay is what UpdatesWorkflow did with a sequence of "add"
// updates and what its replay showed (EX-07.replay-updates).
type updatesReplay struct {
	sent                []int // the values sent, in order; the validator rejects those not positive
	rejected            error // what the client got for the last value the validator should reject
	err                 error // the workflow's result error
	result              int   // its result
	accepted, completed int   // UpdateAccepted and UpdateCompleted events in its history
	replay              replayed
}

// updatesReplayExactly: the validator rejected the values that are not
// positive with an application error, the others were accepted and
// completed, each once in history (a rejected update leaves no event), the
// workflow returned their sum, and its history replays to that result.
func updatesReplayExactly(o updatesReplay) bool {
	valid, sum := 0, 0
	for _, n := range o.sent {
		if n > 0 {
			valid++
			sum += n
		}
	}
	var appErr *temporal.ApplicationError
	rejectedOK := valid == len(o.sent) || errors.As(o.rejected, &appErr)
	return valid > 0 && rejectedOK && o.err == nil && o.result == sum && o.accepted == valid && o.completed == valid && o.replay.ok
}

var replayUpdatesPredicate = predicate.New("EX-07.replay-updates", "updatesReplayExactly", updatesReplayExactly,
	predicate.Case[updatesReplay]{Name: "5 and 7 accepted, -1 rejected by the validator, replayed to 12",
		In: updatesReplay{sent: []int{5, -1, 7}, rejected: temporal.NewApplicationError("add -1: only positive values are accepted", ""),
			result: 12, accepted: 2, completed: 2, replay: replayed{name: "updates", ok: true}}, Want: true},
	predicate.Case[updatesReplay]{Name: "the validator did not run: -1 was accepted",
		In: updatesReplay{sent: []int{5, -1, 7}, result: 11, accepted: 3, completed: 3, replay: replayed{name: "updates", ok: true}}, Want: false},
	predicate.Case[updatesReplay]{Name: "the replay fails on the update events",
		In: updatesReplay{sent: []int{5, -1, 7}, rejected: temporal.NewApplicationError("add -1: only positive values are accepted", ""),
			result: 12, accepted: 2, completed: 2, replay: replayed{name: "updates", why: "replay error: [TMPRL1100] nondeterministic workflow: missing replay command for WorkflowExecutionUpdateAccepted"}}, Want: false},
)

// minCorpus is the catalog's bound for EX-07.replay-corpus ("at least 100
// histories from randomized workflows", criteria/catalog_ex.go).
const minCorpus = 100

// corpusReplay is what replaying the randomized corpus showed
// (EX-07.replay-corpus).
type corpusReplay struct {
	histories int      // replayed
	differ    []string // those that did not reproduce their result, with why
}

// corpusReplaysExactly: at least minCorpus histories replayed, and every one
// reproduced its recorded result.
func corpusReplaysExactly(o corpusReplay) bool {
	return o.histories >= minCorpus && len(o.differ) == 0
}

var replayCorpusPredicate = predicate.New("EX-07.replay-corpus", "corpusReplaysExactly", corpusReplaysExactly,
	predicate.Case[corpusReplay]{Name: "100 histories, all reproduced", In: corpusReplay{histories: 100}, Want: true},
	predicate.Case[corpusReplay]{Name: "one of 100 replays to another result",
		In: corpusReplay{histories: 100, differ: []string{"wf-017: recorded [\"timer 4ms\"], replayed [\"signal 9f\"]"}}, Want: false},
	predicate.Case[corpusReplay]{Name: "a corpus smaller than the catalog asks", In: corpusReplay{histories: 20}, Want: false},
)

// fixtureSet is what replaying one committed set of histories showed: the
// directory, what its manifest says it was recorded with, how many it
// holds, and those that did not reproduce their result.
type fixtureSet struct {
	dir           string
	recordedSDK   string
	recordedOn    string // the server version
	recordedAt    string // the manifest's date
	histories     int
	writtenBy     []string // the distinct SDK versions the histories' own WorkflowTaskCompleted events record
	failed        []string
	replayingWith string // temporal.SDKVersion of the SDK under test
}

func (s fixtureSet) String() string {
	return fmt.Sprintf("%s: %d histories recorded %s with SDK %s (per the manifest; their workflow tasks were completed by SDK %v) on server %s, "+
		"replayed with SDK %s: %d do not reproduce their result %v",
		s.dir, s.histories, s.recordedAt, s.recordedSDK, s.writtenBy, s.recordedOn, s.replayingWith, len(s.failed), s.failed)
}

// fixturesReplay: the committed set holds histories and every one
// reproduces its recorded result on the SDK under test
// (EX-07.replay-committed-fixtures).
func fixturesReplay(s fixtureSet) bool {
	return s.histories > 0 && len(s.failed) == 0
}

var replayFixturesPredicate = predicate.New("EX-07.replay-committed-fixtures", "fixturesReplay", fixturesReplay,
	predicate.Case[fixtureSet]{Name: "ten histories recorded with 1.50.0, all reproduced",
		In: fixtureSet{dir: "fixtures/histories", recordedSDK: "1.50.0", histories: 10, replayingWith: "1.50.0"}, Want: true},
	predicate.Case[fixtureSet]{Name: "a workflow edit broke one history",
		In: fixtureSet{dir: "fixtures/histories", recordedSDK: "1.50.0", histories: 10, failed: []string{"simple.json: " + mismatchErr}, replayingWith: "1.50.0"}, Want: false},
	predicate.Case[fixtureSet]{Name: "an empty set", In: fixtureSet{dir: "fixtures/histories", recordedSDK: "1.50.0", replayingWith: "1.50.0"}, Want: false},
)

// olderSDKReplay is what replaying the sets recorded by older SDK releases
// showed (EX-07.replay-older-sdk): one per fixtures/histories/sdk-v*.
type olderSDKReplay struct {
	sets []fixtureSet
}

// olderSDKHistoriesReplay: there is at least one set, each was recorded
// with an SDK release older than the one replaying it (as its manifest says
// and as the SDK metadata of the histories' completed workflow tasks says),
// holds histories, and every one of them replays without nondeterminism to
// its recorded result.
func olderSDKHistoriesReplay(o olderSDKReplay) bool {
	return len(o.sets) > 0 && !slices.ContainsFunc(o.sets, func(s fixtureSet) bool {
		older := func(v string) bool { return olderVersion(v, s.replayingWith) }
		return !older(s.recordedSDK) || len(s.writtenBy) == 0 || !all(s.writtenBy, older) || !fixturesReplay(s)
	})
}

func all[T any](xs []T, f func(T) bool) bool {
	return !slices.ContainsFunc(xs, func(x T) bool { return !f(x) })
}

var replayOlderSDKPredicate = predicate.New("EX-07.replay-older-sdk", "olderSDKHistoriesReplay", olderSDKHistoriesReplay,
	predicate.Case[olderSDKReplay]{Name: "ten histories recorded with 1.44.0 reproduce their results on 1.50.0",
		In: olderSDKReplay{sets: []fixtureSet{{dir: "fixtures/histories/sdk-v1.44", recordedSDK: "1.44.0", histories: 10, writtenBy: []string{"1.44.0"}, replayingWith: "1.50.0"}}}, Want: true},
	predicate.Case[olderSDKReplay]{Name: "a history recorded with 1.44.0 no longer replays on 1.50.0",
		In: olderSDKReplay{sets: []fixtureSet{{dir: "fixtures/histories/sdk-v1.44", recordedSDK: "1.44.0", histories: 10, writtenBy: []string{"1.44.0"}, replayingWith: "1.50.0",
			failed: []string{"signals.json: " + mismatchErr}}}}, Want: false},
	predicate.Case[olderSDKReplay]{Name: "the set was recorded again with the SDK under test: nothing crosses versions",
		In: olderSDKReplay{sets: []fixtureSet{{dir: "fixtures/histories/sdk-v1.44", recordedSDK: "1.50.0", histories: 10, writtenBy: []string{"1.50.0"}, replayingWith: "1.50.0"}}}, Want: false},
	predicate.Case[olderSDKReplay]{Name: "the manifest names 1.44.0 but the histories were written by 1.50.0",
		In: olderSDKReplay{sets: []fixtureSet{{dir: "fixtures/histories/sdk-v1.44", recordedSDK: "1.44.0", histories: 10, writtenBy: []string{"1.50.0"}, replayingWith: "1.50.0"}}}, Want: false},
	predicate.Case[olderSDKReplay]{Name: "no set recorded with an older SDK", In: olderSDKReplay{}, Want: false},
)

// olderVersion reports whether release a (MAJOR.MINOR.PATCH, a leading v
// allowed) is older than release b; an unparsable version is not older.
func olderVersion(a, b string) bool {
	pa, okA := parseVersion(a)
	pb, okB := parseVersion(b)
	return okA && okB && slices.Compare(pa, pb) < 0
}

func parseVersion(v string) ([]int, bool) {
	v, _, _ = strings.Cut(strings.TrimPrefix(v, "v"), "-") // a pre-release sorts with its release
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return nil, false
	}
	out := make([]int, 3)
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}
