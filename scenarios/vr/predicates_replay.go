package vr

import (
	"regexp"
	"slices"
	"strings"

	"github.com/durabench/durabench/harness/predicate"
)

// The pass conditions of VR-01 levels 2-3 and of VR-02: named predicates over
// what the replay and versioning scenarios observed, each with a table that
// shows it can return false.

func replayPredicates() []predicate.Spec {
	return []predicate.Spec{
		drainPredicate.Spec(),
		getVersionReplayPredicate.Spec(),
		getVersionLivePredicate.Spec(),
		catchesPredicate.Spec(),
		plantedPredicate.Spec(),
		safePredicate.Spec(),
		namesPredicate.Spec(),
		serverHistoriesPredicate.Spec(),
		ciGatePredicate.Spec(),
		handlerPredicate.Spec(),
	}
}

// drain is what VR-01.drain-then-deploy observed: runs started and finished
// on a v1 worker, then runs started after that worker stopped and a v2
// worker started on the same task queue.
type drain struct {
	v1Codes      []string // flows.Result.Code of each run started before the switch
	v1Open       int      // of those, runs still open when the v1 worker stopped
	v2Codes      []string // Code of each run started after the switch
	taskFailures int      // failed workflow tasks in all those histories (a replay error shows as one)
	errs         []string // runs that did not complete
}

func allEqual(xs []string, want string) bool {
	return len(xs) > 0 && !slices.ContainsFunc(xs, func(x string) bool { return x != want })
}

// drainThenDeploy: every v1 run completed on v1 before the switch, every new
// run completed on v2, and no workflow task failed.
func drainThenDeploy(d drain) bool {
	return len(d.errs) == 0 && allEqual(d.v1Codes, "v1") && d.v1Open == 0 && allEqual(d.v2Codes, "v2") && d.taskFailures == 0
}

var drainPredicate = predicate.New("VR-01.drain-then-deploy", "drainThenDeploy", drainThenDeploy,
	predicate.Case[drain]{Name: "v1 drained, new runs on v2, no task failure",
		In: drain{v1Codes: []string{"v1", "v1", "v1"}, v2Codes: []string{"v2", "v2", "v2"}}, Want: true},
	predicate.Case[drain]{Name: "a v2 run hit a replay error (workflow task failed)",
		In: drain{v1Codes: []string{"v1"}, v2Codes: []string{"v2"}, taskFailures: 1}, Want: false},
	predicate.Case[drain]{Name: "new runs still served by v1 code",
		In: drain{v1Codes: []string{"v1"}, v2Codes: []string{"v1"}}, Want: false},
	predicate.Case[drain]{Name: "a v1 run still open at the switch",
		In: drain{v1Codes: []string{"v1"}, v1Open: 1, v2Codes: []string{"v2"}}, Want: false},
	predicate.Case[drain]{Name: "a new run did not complete",
		In: drain{v1Codes: []string{"v1"}, v2Codes: []string{"v2"}, errs: []string{"order: context deadline exceeded"}}, Want: false},
	predicate.Case[drain]{Name: "nothing ran on v2",
		In: drain{v1Codes: []string{"v1"}}, Want: false},
)

// versionedReplay is what VR-01.getversion-replay (and its control)
// observed: the committed v1 histories replayed under the code under test,
// and new runs of that code.
type versionedReplay struct {
	histories   int      // committed v1 histories replayed
	failed      []string // those that did not replay, with the SDK's error
	newRuns     int      // new runs of the changed workflows
	onNewBranch int      // of those, runs that ran the new step and recorded its GetVersion marker at version 1
}

// v1ReplaysAndNewRunsBranch: every committed v1 history replays and every
// new run takes the new branch, recorded by its marker.
func v1ReplaysAndNewRunsBranch(o versionedReplay) bool {
	return o.histories > 0 && len(o.failed) == 0 && o.newRuns > 0 && o.onNewBranch == o.newRuns
}

var getVersionReplayPredicate = predicate.New("VR-01.getversion-replay", "v1ReplaysAndNewRunsBranch", v1ReplaysAndNewRunsBranch,
	predicate.Case[versionedReplay]{Name: "v2 with GetVersion: 8 histories replay, 3 new runs branch",
		In: versionedReplay{histories: 8, newRuns: 3, onNewBranch: 3}, Want: true},
	predicate.Case[versionedReplay]{Name: "v2 without GetVersion: v1 histories fail to replay, no marker on new runs",
		In: versionedReplay{histories: 8, failed: []string{"order.json: [TMPRL1100] nondeterministic workflow"}, newRuns: 3}, Want: false},
	predicate.Case[versionedReplay]{Name: "replays, but new runs keep the old path",
		In: versionedReplay{histories: 8, newRuns: 3, onNewBranch: 0}, Want: false},
	predicate.Case[versionedReplay]{Name: "no history replayed",
		In: versionedReplay{newRuns: 3, onNewBranch: 3}, Want: false},
)

// liveRun is what VR-01.getversion-live observed of a v1 run parked on the
// approve signal when its v1 worker stopped and a v2 worker started.
type liveRun struct {
	parked       bool     // the run had completed its first step and was waiting when v1 stopped
	err          string   // the run's error, "" if it completed
	code         string   // the code that returned
	steps        []string // the steps it ran
	v1Path       []string // the steps v1 runs
	taskFailures int
}

// finishesOnV2AlongV1Path: the parked run completed on v2 code, ran exactly
// v1's steps (the DefaultVersion branch) and no workflow task failed.
func finishesOnV2AlongV1Path(o liveRun) bool {
	return o.parked && o.err == "" && o.code == "v2" && len(o.v1Path) > 0 && slices.Equal(o.steps, o.v1Path) && o.taskFailures == 0
}

var getVersionLivePredicate = predicate.New("VR-01.getversion-live", "finishesOnV2AlongV1Path", finishesOnV2AlongV1Path,
	predicate.Case[liveRun]{Name: "completed by v2 along the v1 path",
		In: liveRun{parked: true, code: "v2", steps: []string{"Submit", "Fulfil"}, v1Path: []string{"Submit", "Fulfil"}}, Want: true},
	predicate.Case[liveRun]{Name: "took the v2 branch (Notify) though started on v1",
		In: liveRun{parked: true, code: "v2", steps: []string{"Submit", "Fulfil", "Notify"}, v1Path: []string{"Submit", "Fulfil"}}, Want: false},
	predicate.Case[liveRun]{Name: "stuck on a nondeterminism error",
		In: liveRun{parked: true, err: "context deadline exceeded", v1Path: []string{"Submit", "Fulfil"}, taskFailures: 3}, Want: false},
	predicate.Case[liveRun]{Name: "finished by v1 code: the switch did not happen",
		In: liveRun{parked: true, code: "v1", steps: []string{"Submit", "Fulfil"}, v1Path: []string{"Submit", "Fulfil"}}, Want: false},
	predicate.Case[liveRun]{Name: "the run was not parked when v1 stopped",
		In: liveRun{code: "v2", steps: []string{"Submit", "Fulfil"}, v1Path: []string{"Submit", "Fulfil"}}, Want: false},
)

// caught is the replay of one committed history under a planted variant,
// beside its replay under v1, the code that recorded it.
type caught struct {
	variant  string
	baseline string // v1's replay error, "" when it replays
	err      string // the variant's replay error, "" when it replays
	mismatch bool   // err is the SDK's nondeterminism error
}

// replayCatches: the history replays under v1, and the variant's replay
// fails with a nondeterminism error (not any error: an unregistered type
// would fail too).
func replayCatches(o caught) bool { return o.baseline == "" && o.mismatch }

var catchesPredicate = predicate.New("VR-02.replay-test-catches", "replayCatches", replayCatches,
	predicate.Case[caught]{Name: "reordering fails with TMPRL1100",
		In: caught{variant: "activity-reordered", err: "[TMPRL1100] nondeterministic workflow: history event is ...", mismatch: true}, Want: true},
	predicate.Case[caught]{Name: "reordering replays: not caught",
		In: caught{variant: "activity-reordered"}, Want: false},
	predicate.Case[caught]{Name: "fails for another reason: the type is not registered",
		In: caught{variant: "activity-reordered", err: "unable to find workflow type: Order"}, Want: false},
	predicate.Case[caught]{Name: "the history does not even replay under v1",
		In: caught{variant: "activity-reordered", baseline: "[TMPRL1100] ...", err: "[TMPRL1100] ...", mismatch: true}, Want: false},
)

// variantOutcome is whether replaying the committed histories of the
// workflow a variant changes failed with a nondeterminism error.
type variantOutcome struct {
	name   string
	caught bool
	err    string // the first replay error ("" if none)
}

// plantedBreakingChanges are the planted changes VR-02.planted-changes
// names in the catalog: each must be planted and caught.
var plantedBreakingChanges = []string{"activity-added", "activity-removed", "activity-reordered", "activity-retyped", "timer-added", "child-added"}

// plantedObs is what VR-02.planted-changes observed.
type plantedObs struct {
	baseline []string // committed histories that do not replay under v1
	variants []variantOutcome
}

// everyPlantedChangeCaught: the histories replay under v1, and each change
// the catalog lists was planted and caught.
func everyPlantedChangeCaught(o plantedObs) bool {
	if len(o.baseline) > 0 {
		return false
	}
	for _, name := range plantedBreakingChanges {
		i := slices.IndexFunc(o.variants, func(v variantOutcome) bool { return v.name == name })
		if i < 0 || !o.variants[i].caught {
			return false
		}
	}
	return true
}

func allCaught(names ...string) []variantOutcome {
	var out []variantOutcome
	for _, n := range names {
		out = append(out, variantOutcome{name: n, caught: true})
	}
	return out
}

var plantedPredicate = predicate.New("VR-02.planted-changes", "everyPlantedChangeCaught", everyPlantedChangeCaught,
	predicate.Case[plantedObs]{Name: "all six caught", In: plantedObs{variants: allCaught(plantedBreakingChanges...)}, Want: true},
	predicate.Case[plantedObs]{Name: "the added timer passes replay",
		In: plantedObs{variants: append(allCaught(plantedBreakingChanges[:4]...), variantOutcome{name: "timer-added"}, variantOutcome{name: "child-added", caught: true})}, Want: false},
	predicate.Case[plantedObs]{Name: "one change never planted", In: plantedObs{variants: allCaught(plantedBreakingChanges[1:]...)}, Want: false},
	predicate.Case[plantedObs]{Name: "the histories do not replay under v1 either",
		In: plantedObs{baseline: []string{"order.json"}, variants: allCaught(plantedBreakingChanges...)}, Want: false},
)

// safeChanges are the safe changes VR-02.safe-changes-pass names in the
// catalog; "guarded" is v2, each change under GetVersion.
var safeChanges = []string{"activity-body-changed", "argument-values-changed", "guarded"}

// safeChangesReplay: each safe change the catalog lists was tried and every
// committed history replayed under it.
func safeChangesReplay(vs []variantOutcome) bool {
	for _, name := range safeChanges {
		i := slices.IndexFunc(vs, func(v variantOutcome) bool { return v.name == name })
		if i < 0 || vs[i].err != "" {
			return false
		}
	}
	return true
}

var safePredicate = predicate.New("VR-02.safe-changes-pass", "safeChangesReplay", safeChangesReplay,
	predicate.Case[[]variantOutcome]{Name: "all three replay",
		In: []variantOutcome{{name: "activity-body-changed"}, {name: "argument-values-changed"}, {name: "guarded"}}, Want: true},
	predicate.Case[[]variantOutcome]{Name: "a changed argument is flagged (a false alarm)",
		In: []variantOutcome{{name: "activity-body-changed"}, {name: "argument-values-changed", caught: true, err: "[TMPRL1100] ..."}, {name: "guarded"}}, Want: false},
	predicate.Case[[]variantOutcome]{Name: "the guarded change was not tried",
		In: []variantOutcome{{name: "activity-body-changed"}, {name: "argument-values-changed"}}, Want: false},
)

// errorNames is what one replay error of a caught change names.
type errorNames struct {
	variant  string
	workflow bool // the workflow's type or id
	eventID  bool // an event id or position, labelled as such
	expected bool // what the history holds at the mismatch
	actual   bool // the command the new code produced
}

// Patterns over the SDK's replay errors. The Go SDK (v1.50.0) writes
// "history event is <event>, replay command is <command>", "missing replay
// command for <event>", "extra replay command for <command>", "a matching
// <command> command was expected in history event position <n>" and
// "lookup failed for scheduledEventID to activityID: scheduleEventID: <n>".
var (
	attrEventID   = regexp.MustCompile(`[A-Za-z]+EventId:\d+`) // an attribute of a printed event, not the id of the mismatching one
	labelledEvent = regexp.MustCompile(`(?i)event\s*(id|position)?\s*:?\s*\d+`)
	expectedText  = regexp.MustCompile(`history event is|command was expected|missing replay command for`)
	actualText    = regexp.MustCompile(`replay command is|extra replay command for`)
)

// namesOf reads what err names, for a history of workflow type typ and id.
func namesOf(variant, err, typ, id string) errorNames {
	return errorNames{
		variant:  variant,
		workflow: regexp.MustCompile(`\b`+regexp.QuoteMeta(typ)+`\b`).MatchString(err) || strings.Contains(err, id),
		eventID:  labelledEvent.MatchString(attrEventID.ReplaceAllString(err, "")),
		expected: expectedText.MatchString(err),
		actual:   actualText.MatchString(err),
	}
}

// errorsNameTheMismatch: every error of a caught change names the workflow,
// an event id, and the expected and the actual command.
func errorsNameTheMismatch(es []errorNames) bool {
	return len(es) > 0 && !slices.ContainsFunc(es, func(e errorNames) bool { return !(e.workflow && e.eventID && e.expected && e.actual) })
}

var namesPredicate = predicate.New("VR-02.names-mismatch", "errorsNameTheMismatch", errorsNameTheMismatch,
	predicate.Case[[]errorNames]{Name: "every error names all four",
		In: []errorNames{{variant: "activity-reordered", workflow: true, eventID: true, expected: true, actual: true}}, Want: true},
	predicate.Case[[]errorNames]{Name: "the error does not name the workflow",
		In: []errorNames{{variant: "activity-reordered", eventID: true, expected: true, actual: true}}, Want: false},
	predicate.Case[[]errorNames]{Name: "an error names only an event id",
		In: []errorNames{{variant: "activity-reordered", workflow: true, eventID: true, expected: true, actual: true},
			{variant: "activity-removed", workflow: true, eventID: true}}, Want: false},
	predicate.Case[[]errorNames]{Name: "no error to judge", In: nil, Want: false},
)

// serverReplay is what VR-02.server-histories observed: the closed runs
// listed from the server, per workflow type, replayed in one call under v2,
// and the same call under v2's changes made without GetVersion.
type serverReplay struct {
	started   map[string]int // closed runs produced, per workflow type
	replayed  map[string]int // histories fetched and replayed under v2, per workflow type
	failed    []string       // of those, the ones that did not replay
	unguarded int            // histories the unguarded variant failed to replay (a replay that really compares)
}

// serverHistoriesReplay: every closed run of every type was fetched and
// replayed under v2 without error, and the same call flags the unguarded
// change, so the fetched histories really were replayed.
func serverHistoriesReplay(o serverReplay) bool {
	if len(o.started) == 0 || len(o.failed) > 0 || o.unguarded == 0 {
		return false
	}
	for typ, n := range o.started {
		if o.replayed[typ] != n {
			return false
		}
	}
	return true
}

var serverHistoriesPredicate = predicate.New("VR-02.server-histories", "serverHistoriesReplay", serverHistoriesReplay,
	predicate.Case[serverReplay]{Name: "every run of every type replayed, the unguarded change flagged",
		In: serverReplay{started: map[string]int{"Order": 1, "Loop": 2}, replayed: map[string]int{"Order": 1, "Loop": 2}, unguarded: 1}, Want: true},
	predicate.Case[serverReplay]{Name: "a type's runs were not listed",
		In: serverReplay{started: map[string]int{"Order": 1, "Loop": 2}, replayed: map[string]int{"Order": 1}, unguarded: 1}, Want: false},
	predicate.Case[serverReplay]{Name: "a server history fails under v2",
		In: serverReplay{started: map[string]int{"Order": 1}, replayed: map[string]int{"Order": 1}, failed: []string{"order-1"}, unguarded: 1}, Want: false},
	predicate.Case[serverReplay]{Name: "nothing flags the unguarded change: the histories were not really replayed",
		In: serverReplay{started: map[string]int{"Order": 1}, replayed: map[string]int{"Order": 1}}, Want: false},
)

// gateRun is one run of the CI gate (TestV2ReplaysCommittedV1Histories) as
// a subprocess.
type gateRun struct {
	variant  string
	exit     int  // the process's exit status
	ran      bool // the gate test ran (its PASS or FAIL line is in the output)
	mismatch bool // the output prints the SDK's nondeterminism error
	ms       float64
}

// gate is what VR-02.ci-gate observed: the gate with a breaking variant
// swapped in, and with the guarded one.
type gate struct{ breaking, guarded gateRun }

// gateStopsBreakingChange: with the breaking change the gate ran, exited
// non-zero and printed the mismatch; with the guarded one it ran and exited
// zero.
func gateStopsBreakingChange(g gate) bool {
	return g.breaking.ran && g.breaking.exit != 0 && g.breaking.mismatch && g.guarded.ran && g.guarded.exit == 0
}

var ciGatePredicate = predicate.New("VR-02.ci-gate", "gateStopsBreakingChange", gateStopsBreakingChange,
	predicate.Case[gate]{Name: "non-zero with the mismatch, zero when guarded",
		In: gate{breaking: gateRun{exit: 1, ran: true, mismatch: true}, guarded: gateRun{ran: true}}, Want: true},
	predicate.Case[gate]{Name: "the breaking change passes the gate",
		In: gate{breaking: gateRun{ran: true}, guarded: gateRun{ran: true}}, Want: false},
	predicate.Case[gate]{Name: "non-zero but the test never ran (a build or flag error)",
		In: gate{breaking: gateRun{exit: 2}, guarded: gateRun{ran: true}}, Want: false},
	predicate.Case[gate]{Name: "fails without printing the mismatch",
		In: gate{breaking: gateRun{exit: 1, ran: true}, guarded: gateRun{ran: true}}, Want: false},
	predicate.Case[gate]{Name: "the guarded change fails too",
		In: gate{breaking: gateRun{exit: 1, ran: true, mismatch: true}, guarded: gateRun{exit: 1, ran: true, mismatch: true}}, Want: false},
)

// handlerReplay is one handler variant replayed against one committed
// Approval history.
type handlerReplay struct {
	variant     string
	history     string
	hasMessages bool // the history holds the messages the changed handler handles
	caught      bool // the replay failed with a nondeterminism error
	err         string
}

// handlerObservation is what VR-02.handler-changes observed.
type handlerObservation struct {
	baseline []string // Approval histories that do not replay under v1
	variants []string // the handler variants tried
	replays  []handlerReplay
}

// handlerChangesCaught: the histories replay under v1; each handler variant
// was replayed against at least one history holding its messages, and every
// such replay was caught. Replays of histories without the messages are
// reported, not judged: nothing is there to compare.
func handlerChangesCaught(o handlerObservation) bool {
	if len(o.baseline) > 0 || len(o.variants) == 0 {
		return false
	}
	for _, v := range o.variants {
		with := 0
		for _, r := range o.replays {
			if r.variant == v && r.hasMessages {
				if !r.caught {
					return false
				}
				with++
			}
		}
		if with == 0 {
			return false
		}
	}
	return true
}

var handlerPredicate = predicate.New("VR-02.handler-changes", "handlerChangesCaught", handlerChangesCaught,
	predicate.Case[handlerObservation]{Name: "both caught where the history holds the messages",
		In: handlerObservation{variants: []string{"update", "signal"}, replays: []handlerReplay{
			{variant: "update", history: "amended", hasMessages: true, caught: true}, {variant: "update", history: "plain"},
			{variant: "signal", history: "plain", hasMessages: true, caught: true}}}, Want: true},
	predicate.Case[handlerObservation]{Name: "the update handler change passes a history with updates",
		In: handlerObservation{variants: []string{"update"}, replays: []handlerReplay{{variant: "update", history: "amended", hasMessages: true}}}, Want: false},
	predicate.Case[handlerObservation]{Name: "no history with the messages to replay",
		In: handlerObservation{variants: []string{"update"}, replays: []handlerReplay{{variant: "update", history: "plain"}}}, Want: false},
	predicate.Case[handlerObservation]{Name: "the histories do not replay under v1",
		In: handlerObservation{baseline: []string{"approval.json"}, variants: []string{"update"}, replays: []handlerReplay{
			{variant: "update", history: "amended", hasMessages: true, caught: true}}}, Want: false},
)
