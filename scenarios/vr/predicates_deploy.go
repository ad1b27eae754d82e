package vr

import (
	"errors"
	"math"
	"slices"

	"github.com/durabench/durabench/harness/predicate"
	"github.com/durabench/durabench/scenarios/vr/flows"
)

// The pass conditions of VR-01's routing and Worker Deployment checks
// (levels 4 and 5) and of VR-03's migration checks: each a named predicate
// over what a scenario observed, with a table that holds an input a platform
// without the behaviour would produce.

func deployPredicates() []predicate.Spec {
	return []predicate.Spec{
		queueRoutingPredicate.Spec(),
		pinnedPredicate.Spec(),
		autoUpgradePredicate.Spec(),
		rampPredicate.Spec(),
		retirePredicate.Spec(),
		cutoverPredicate.Spec(),
		continueAsNewPredicate.Spec(),
		listOldRunsPredicate.Spec(),
		batchMovePredicate.Spec(),
		overridePredicate.Spec(),
		zeroDowntimePredicate.Spec(),
		rollbackPredicate.Spec(),
	}
}

// runOutcome is what became of one run.
type runOutcome struct {
	id    string
	start string // where the run stood before the change: its build id, or its task queue for queue routing
	code  string // flows.Result.Code of its result: the code that returned
	err   error  // its failure, or why no result came
}

// done: the run returned a result from code.
func (r runOutcome) done(code string) bool { return r.err == nil && r.code == code }

// queueRouting is VR-01.task-queue-routing: a v1 run started on the v1
// queue before v2 was deployed on a queue of its own, and a new run started
// on the v2 queue; start is the queue each run's describe reports.
type queueRouting struct {
	oldQueue, newQueue string
	old, fresh         runOutcome
}

// routedByQueue: the queues differ, each run stayed on the queue it was
// started on, and each completed with that queue's code.
func routedByQueue(o queueRouting) bool {
	return o.oldQueue != o.newQueue && o.old.start == o.oldQueue && o.fresh.start == o.newQueue &&
		o.old.done(buildV1) && o.fresh.done(buildV2)
}

var queueRoutingPredicate = predicate.New("VR-01.task-queue-routing", "routedByQueue", routedByQueue,
	predicate.Case[queueRouting]{Name: "each run completes on its own queue's code",
		In: queueRouting{oldQueue: "q1", newQueue: "q2", old: runOutcome{start: "q1", code: "v1"}, fresh: runOutcome{start: "q2", code: "v2"}}, Want: true},
	predicate.Case[queueRouting]{Name: "v2 deployed on the same queue: the old run finishes on v2 code",
		In: queueRouting{oldQueue: "q1", newQueue: "q1", old: runOutcome{start: "q1", code: "v2"}, fresh: runOutcome{start: "q1", code: "v2"}}, Want: false},
	predicate.Case[queueRouting]{Name: "the old run fails on v2 code (nondeterminism)",
		In: queueRouting{oldQueue: "q1", newQueue: "q2", old: runOutcome{start: "q1", err: errors.New("workflow task timed out")}, fresh: runOutcome{start: "q2", code: "v2"}}, Want: false},
)

// versionSwitch is a run started on v1 (current) and blocked on a signal,
// then v2 made current, then the run signalled; fresh is a run started after
// the switch. It serves VR-01.pinned-build and VR-01.auto-upgrade.
type versionSwitch struct {
	name     string        // the deployment
	behavior string        // the workers' default versioning behavior
	before   runVersioning // the blocked run once its first workflow task completed
	current  string        // the deployment's current build after the switch
	after    runVersioning // the run once it completed
	old      runOutcome
	fresh    runOutcome
	err      error // a deployment operation that failed
}

// pinnedStaysOnBuild: the run was pinned to v1, v2 became current and served
// the new run, and the pinned run, signalled after the switch, still
// completed on v1 code with no override.
func pinnedStaysOnBuild(o versionSwitch) bool {
	return o.err == nil && o.current == buildV2 &&
		o.before.Behavior == "pinned" && o.before.Build == buildV1 &&
		o.after.Build == buildV1 && o.after.Override == "" &&
		o.old.done(buildV1) && o.fresh.done(buildV2)
}

var pinnedPredicate = predicate.New("VR-01.pinned-build", "pinnedStaysOnBuild", pinnedStaysOnBuild,
	predicate.Case[versionSwitch]{Name: "pinned run completes on v1 while v2 serves new runs",
		In: versionSwitch{current: "v2", before: runVersioning{Build: "v1", Behavior: "pinned"}, after: runVersioning{Build: "v1", Behavior: "pinned"},
			old: runOutcome{code: "v1"}, fresh: runOutcome{code: "v2"}}, Want: true},
	predicate.Case[versionSwitch]{Name: "the run moved to v2 at its next task (what AutoUpgrade does)",
		In: versionSwitch{current: "v2", before: runVersioning{Build: "v1", Behavior: "pinned"}, after: runVersioning{Build: "v2", Behavior: "pinned"},
			old: runOutcome{code: "v2"}, fresh: runOutcome{code: "v2"}}, Want: false},
	predicate.Case[versionSwitch]{Name: "setting v2 current refused",
		In: versionSwitch{current: "v1", before: runVersioning{Build: "v1", Behavior: "pinned"}, after: runVersioning{Build: "v1", Behavior: "pinned"},
			old: runOutcome{code: "v1"}, fresh: runOutcome{code: "v1"}, err: errors.New("set current version: FailedPrecondition")}, Want: false},
)

// autoUpgradeMoves: with the workers' default behavior AutoUpgrade and no
// override, the blocked run started on v1 and completed on v2 code after
// the switch, and the new run ran on v2.
func autoUpgradeMoves(o versionSwitch) bool {
	return o.err == nil && o.current == buildV2 &&
		o.before.Behavior == "auto-upgrade" && o.before.Build == buildV1 && o.before.Override == "" &&
		o.after.Build == buildV2 && o.after.Override == "" &&
		o.old.done(buildV2) && o.fresh.done(buildV2)
}

var autoUpgradePredicate = predicate.New("VR-01.auto-upgrade", "autoUpgradeMoves", autoUpgradeMoves,
	predicate.Case[versionSwitch]{Name: "the blocked run finishes on v2, the new run starts there",
		In: versionSwitch{current: "v2", before: runVersioning{Build: "v1", Behavior: "auto-upgrade"}, after: runVersioning{Build: "v2", Behavior: "auto-upgrade"},
			old: runOutcome{code: "v2"}, fresh: runOutcome{code: "v2"}}, Want: true},
	predicate.Case[versionSwitch]{Name: "the blocked run stays on v1 (pinned)",
		In: versionSwitch{current: "v2", before: runVersioning{Build: "v1", Behavior: "pinned"}, after: runVersioning{Build: "v1", Behavior: "pinned"},
			old: runOutcome{code: "v1"}, fresh: runOutcome{code: "v2"}}, Want: false},
	predicate.Case[versionSwitch]{Name: "moved only by a per-run override",
		In: versionSwitch{current: "v2", before: runVersioning{Build: "v1", Behavior: "auto-upgrade", Override: "auto-upgrade"}, after: runVersioning{Build: "v2", Behavior: "auto-upgrade", Override: "auto-upgrade"},
			old: runOutcome{code: "v2"}, fresh: runOutcome{code: "v2"}}, Want: false},
)

// rampMinStarts and rampTolerance are the catalog's terms for
// VR-01.ramp: "within 10 points over 200 starts".
const (
	rampMinStarts = 200
	rampTolerance = 10.0
)

// rampShare is VR-01.ramp: new runs started while v2 ramps at percent over
// v1 current; each run's version is the Code of its result.
type rampShare struct {
	percent   float64
	starts    int
	onRamping int
	onCurrent int
	failed    int
	err       error // setting the ramp failed
}

// rampSharePercent is the share of starts that ran on the ramping version.
func (o rampShare) rampSharePercent() float64 {
	if o.starts == 0 {
		return 0
	}
	return 100 * float64(o.onRamping) / float64(o.starts)
}

// rampMatches: at least rampMinStarts runs, every one completed on one of
// the two versions, and the ramping version's share is within rampTolerance
// points of the configured percentage.
func rampMatches(o rampShare) bool {
	return o.err == nil && o.starts >= rampMinStarts && o.failed == 0 && o.onRamping+o.onCurrent == o.starts &&
		math.Abs(o.rampSharePercent()-o.percent) <= rampTolerance
}

var rampPredicate = predicate.New("VR-01.ramp", "rampMatches", rampMatches,
	predicate.Case[rampShare]{Name: "30% ramp, 64 of 200 on v2",
		In: rampShare{percent: 30, starts: 200, onRamping: 64, onCurrent: 136}, Want: true},
	predicate.Case[rampShare]{Name: "ramp ignored: every run on the current version",
		In: rampShare{percent: 30, starts: 200, onCurrent: 200}, Want: false},
	predicate.Case[rampShare]{Name: "ramp treated as a switch: every run on v2",
		In: rampShare{percent: 30, starts: 200, onRamping: 200}, Want: false},
	predicate.Case[rampShare]{Name: "too few starts to judge a share",
		In: rampShare{percent: 30, starts: 50, onRamping: 15, onCurrent: 35}, Want: false},
	predicate.Case[rampShare]{Name: "runs lost",
		In: rampShare{percent: 30, starts: 200, onRamping: 60, onCurrent: 130, failed: 10}, Want: false},
)

// retirement is VR-01.drain-and-retire: v1's drainage status while its
// pinned runs were open after v2 became current, and once they closed; the
// deletion of v1 after its workers stopped; and what became of every run.
type retirement struct {
	config         map[string]string // the dedicated server's dynamic config that shortens drainage and poller history
	pinned         int               // runs pinned to v1 when v2 became current
	whileOpen      string            // v1's drainage status while its pinned runs were open
	deleteDraining error             // DeleteVersion while draining
	afterClose     string            // v1's drainage status once they closed
	deletePolled   error             // DeleteVersion while v1's worker still polled
	deleteAttempts int               // DeleteVersion calls after the worker stopped, the last one succeeding unless deleteErr
	deleteErr      error             // the last of them
	stillListed    bool              // the deployment still lists v1 after the deletion
	runs           []runOutcome      // v1's pinned runs, a v2 run open across the deletion, a run started after it
	want           []string          // the code each of runs must return
}

// drainedThenRetired: v1 reported draining while pinned runs remained and
// drained once they closed; DeleteVersion then succeeded once its workers
// stopped, the deployment no longer lists it, and every run completed on
// the code it was pinned to.
func drainedThenRetired(o retirement) bool {
	if o.whileOpen != "draining" || o.afterClose != "drained" || o.deleteErr != nil || o.deleteAttempts == 0 || o.stillListed ||
		len(o.runs) == 0 || len(o.runs) != len(o.want) {
		return false
	}
	for i, r := range o.runs {
		if !r.done(o.want[i]) {
			return false
		}
	}
	return true
}

var retirePredicate = predicate.New("VR-01.drain-and-retire", "drainedThenRetired", drainedThenRetired,
	predicate.Case[retirement]{Name: "draining, drained, deleted; every run completes",
		In: retirement{whileOpen: "draining", afterClose: "drained", deleteAttempts: 2, runs: []runOutcome{{code: "v1"}, {code: "v2"}}, want: []string{"v1", "v2"}}, Want: true},
	predicate.Case[retirement]{Name: "drainage never reported (status stays unspecified)",
		In: retirement{whileOpen: "unspecified", afterClose: "unspecified", deleteAttempts: 1, runs: []runOutcome{{code: "v1"}, {code: "v2"}}, want: []string{"v1", "v2"}}, Want: false},
	predicate.Case[retirement]{Name: "deletion refused",
		In: retirement{whileOpen: "draining", afterClose: "drained", deleteAttempts: 40, deleteErr: errors.New("version cannot be deleted since it has active pollers"),
			stillListed: true, runs: []runOutcome{{code: "v1"}, {code: "v2"}}, want: []string{"v1", "v2"}}, Want: false},
	predicate.Case[retirement]{Name: "the v2 run was lost with the deletion",
		In: retirement{whileOpen: "draining", afterClose: "drained", deleteAttempts: 1, runs: []runOutcome{{code: "v1"}, {err: errors.New("workflow task timed out")}}, want: []string{"v1", "v2"}}, Want: false},
)

// cutover is VR-03.drain-cutover: runs started on v1 before v2 became
// current, and runs started after; start is the build each old run ran its
// first workflow task on.
type cutover struct {
	old, fresh []runOutcome
	err        error
}

// drainedAndCutOver: there were old and new runs; every old run started on
// v1 and completed on v1 code, and every new run completed on v2 code.
func drainedAndCutOver(o cutover) bool {
	return o.err == nil && len(o.old) > 0 && len(o.fresh) > 0 &&
		!slices.ContainsFunc(o.old, func(r runOutcome) bool { return r.start != buildV1 || !r.done(buildV1) }) &&
		!slices.ContainsFunc(o.fresh, func(r runOutcome) bool { return !r.done(buildV2) })
}

var cutoverPredicate = predicate.New("VR-03.drain-cutover", "drainedAndCutOver", drainedAndCutOver,
	predicate.Case[cutover]{Name: "old runs finish on v1, new ones on v2",
		In: cutover{old: []runOutcome{{start: "v1", code: "v1"}, {start: "v1", code: "v1"}}, fresh: []runOutcome{{code: "v2"}, {code: "v2"}}}, Want: true},
	predicate.Case[cutover]{Name: "an old run picked up by v2 code and failed",
		In: cutover{old: []runOutcome{{start: "v1", code: "v1"}, {start: "v1", err: errors.New("nondeterministic workflow")}}, fresh: []runOutcome{{code: "v2"}}}, Want: false},
	predicate.Case[cutover]{Name: "new runs still on v1",
		In: cutover{old: []runOutcome{{start: "v1", code: "v1"}}, fresh: []runOutcome{{code: "v1"}}}, Want: false},
)

// canChain is VR-03.continue-as-new-upgrade: a Pinned UpgradeLoop chain
// started on v1, v2 made current after some iterations, and ticks sent until
// the chain completed.
type canChain struct {
	target       int
	beforeSwitch int             // iterations counted before v2 became current
	runs         []runVersioning // each run of the chain, in order
	result       flows.LoopState
	err          error
}

// movesAtContinueAsNew: the chain completed with every iteration counted
// once across its runs (its state carried), its first run on v1, the run
// after the switch's continue-as-new on v2, and the result shows v1 code
// closed the first run and v2 code the last.
func movesAtContinueAsNew(o canChain) bool {
	n := len(o.runs)
	return o.err == nil && n >= 2 && o.result.Iterations == o.target &&
		o.runs[0].Build == buildV1 && o.runs[n-1].Build == buildV2 &&
		len(o.result.Codes) == n && o.result.Codes[0] == buildV1 && o.result.Codes[n-1] == buildV2
}

var continueAsNewPredicate = predicate.New("VR-03.continue-as-new-upgrade", "movesAtContinueAsNew", movesAtContinueAsNew,
	predicate.Case[canChain]{Name: "first run on v1, next run on v2, 4 of 4 iterations",
		In: canChain{target: 4, beforeSwitch: 1, runs: []runVersioning{{Build: "v1"}, {Build: "v2"}},
			result: flows.LoopState{Iterations: 4, Target: 4, Every: 2, Codes: []string{"v1", "v2"}}}, Want: true},
	predicate.Case[canChain]{Name: "continue-as-new inherits the pin: the chain stays on v1",
		In: canChain{target: 4, beforeSwitch: 1, runs: []runVersioning{{Build: "v1"}, {Build: "v1"}},
			result: flows.LoopState{Iterations: 4, Target: 4, Every: 2, Codes: []string{"v1", "v1"}}}, Want: false},
	predicate.Case[canChain]{Name: "state lost: the new run started from zero and never reached the target",
		In: canChain{target: 4, beforeSwitch: 1, runs: []runVersioning{{Build: "v1"}, {Build: "v2"}},
			result: flows.LoopState{Iterations: 2, Target: 4, Every: 2, Codes: []string{"v2"}}, err: errors.New("context deadline exceeded")}, Want: false},
)

// oldRunListing is VR-03.list-old-runs: a visibility query for open runs on
// v1, against the runs describe shows open on v1 and on v2 at that time.
type oldRunListing struct {
	query  string
	onOld  []string // workflow ids open on v1
	onNew  []string // workflow ids open on v2
	listed []string
	err    error
}

// listsOldRuns: the query listed exactly the runs open on v1, and there were
// runs on v2 for it to leave out.
func listsOldRuns(o oldRunListing) bool {
	return o.err == nil && len(o.onOld) > 0 && len(o.onNew) > 0 && sameSet(o.listed, o.onOld)
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

var listOldRunsPredicate = predicate.New("VR-03.list-old-runs", "listsOldRuns", listsOldRuns,
	predicate.Case[oldRunListing]{Name: "lists the two v1 runs, not the v2 one",
		In: oldRunListing{onOld: []string{"a", "b"}, onNew: []string{"c"}, listed: []string{"b", "a"}}, Want: true},
	predicate.Case[oldRunListing]{Name: "the server writes no version to visibility: nothing listed",
		In: oldRunListing{onOld: []string{"a", "b"}, onNew: []string{"c"}}, Want: false},
	predicate.Case[oldRunListing]{Name: "the query matches every open run",
		In: oldRunListing{onOld: []string{"a", "b"}, onNew: []string{"c"}, listed: []string{"a", "b", "c"}}, Want: false},
)

// batchMove is VR-03.batch-move: a batch operation over a visibility query
// for open runs on v1 setting a pinned override to v2, then each run
// signalled.
type batchMove struct {
	query            string
	state            string // the batch's final state
	total, succeeded int64
	failed           int64
	moved            []runVersioning // each run after the batch
	runs             []runOutcome    // start: the build before the batch
	remaining        int             // runs the query still matched after the batch
	err              error
}

// batchMovedOldRuns: the batch completed with every run it matched updated
// and none failed, each run was on v1 before and on a v2 override after,
// each completed on v2 code, and the query matches none of them any more.
func batchMovedOldRuns(o batchMove) bool {
	if o.err != nil || o.state != "completed" || o.failed != 0 || len(o.runs) == 0 ||
		o.succeeded != int64(len(o.runs)) || len(o.moved) != len(o.runs) || o.remaining != 0 {
		return false
	}
	for i, r := range o.runs {
		if r.start != buildV1 || o.moved[i].Override != buildV2 || !r.done(buildV2) {
			return false
		}
	}
	return true
}

var batchMovePredicate = predicate.New("VR-03.batch-move", "batchMovedOldRuns", batchMovedOldRuns,
	predicate.Case[batchMove]{Name: "three runs moved and completed on v2",
		In: batchMove{state: "completed", total: 3, succeeded: 3, moved: []runVersioning{{Override: "v2"}, {Override: "v2"}, {Override: "v2"}},
			runs: []runOutcome{{start: "v1", code: "v2"}, {start: "v1", code: "v2"}, {start: "v1", code: "v2"}}}, Want: true},
	predicate.Case[batchMove]{Name: "the batch failed on every run: they stay on v1",
		In: batchMove{state: "completed", total: 3, failed: 3, moved: []runVersioning{{}, {}, {}}, remaining: 3,
			runs: []runOutcome{{start: "v1", code: "v1"}, {start: "v1", code: "v1"}, {start: "v1", code: "v1"}}}, Want: false},
	predicate.Case[batchMove]{Name: "the batch never finished",
		In: batchMove{state: "running", total: 3, succeeded: 1, err: errors.New("waiting for batch: gave up after 30s")}, Want: false},
)

// overrideMove is VR-03.version-override: a run pinned to v1, given a pinned
// override to v2 through UpdateWorkflowExecutionOptions, then signalled.
type overrideMove struct {
	before runVersioning
	after  runVersioning // once it completed
	run    runOutcome
	err    error // the update's error
}

// overrideMovesPinnedRun: the run was pinned to v1, the override to v2 was
// accepted and recorded, and the run completed on v2 code.
func overrideMovesPinnedRun(o overrideMove) bool {
	return o.err == nil && o.before.Behavior == "pinned" && o.before.Build == buildV1 &&
		o.after.Override == buildV2 && o.after.Build == buildV2 && o.run.done(buildV2)
}

var overridePredicate = predicate.New("VR-03.version-override", "overrideMovesPinnedRun", overrideMovesPinnedRun,
	predicate.Case[overrideMove]{Name: "pinned to v1, overridden to v2, completes on v2",
		In: overrideMove{before: runVersioning{Build: "v1", Behavior: "pinned"}, after: runVersioning{Build: "v2", Behavior: "pinned", Override: "v2"}, run: runOutcome{code: "v2"}}, Want: true},
	predicate.Case[overrideMove]{Name: "override refused",
		In: overrideMove{before: runVersioning{Build: "v1", Behavior: "pinned"}, after: runVersioning{Build: "v1", Behavior: "pinned"}, run: runOutcome{code: "v1"},
			err: errors.New("update workflow execution options: Unimplemented")}, Want: false},
	predicate.Case[overrideMove]{Name: "override recorded but ignored: completes on v1",
		In: overrideMove{before: runVersioning{Build: "v1", Behavior: "pinned"}, after: runVersioning{Build: "v1", Behavior: "pinned", Override: "v2"}, run: runOutcome{code: "v1"}}, Want: false},
)

// loadRun is VR-03.zero-downtime: a start every 100 ms across the switch of
// the current version from v1 to v2. Latencies are of the start call, in
// milliseconds, by when the start was issued: before the switch was
// requested, during it (until the new routing had propagated), after it.
type loadRun struct {
	planned, started, refused int
	completed, failed, stuck  int
	onOld, onNew              int // runs whose result came from v1 code, from v2 code
	before, during, after     []float64
	switchErr                 error
}

// noDowntime: every planned start was accepted, every run completed (none
// failed, none stuck), starts were issued before and during the switch, and
// runs ran on both versions, so the load did span the migration.
func noDowntime(o loadRun) bool {
	return o.switchErr == nil && o.planned > 0 && o.started == o.planned && o.refused == 0 &&
		o.completed == o.planned && o.failed == 0 && o.stuck == 0 &&
		len(o.before) > 0 && len(o.during) > 0 && o.onOld > 0 && o.onNew > 0
}

var zeroDowntimePredicate = predicate.New("VR-03.zero-downtime", "noDowntime", noDowntime,
	predicate.Case[loadRun]{Name: "100 starts across the switch, all completed",
		In: loadRun{planned: 100, started: 100, completed: 100, onOld: 40, onNew: 60, before: []float64{4, 5}, during: []float64{5, 9}, after: []float64{4}}, Want: true},
	predicate.Case[loadRun]{Name: "starts refused while the switch propagates",
		In: loadRun{planned: 100, started: 93, refused: 7, completed: 93, onOld: 40, onNew: 53, before: []float64{4}, during: []float64{5}}, Want: false},
	predicate.Case[loadRun]{Name: "runs stuck on a version without workers",
		In: loadRun{planned: 100, started: 100, completed: 88, stuck: 12, onOld: 40, onNew: 48, before: []float64{4}, during: []float64{5}}, Want: false},
	predicate.Case[loadRun]{Name: "no switch happened during the load",
		In: loadRun{planned: 100, started: 100, completed: 100, onOld: 100, before: []float64{4}}, Want: false},
)

// rollbackRun is VR-03.rollback: with v2 current, a run pinned to v2 and
// blocked; v1 made current again; a new run started; the blocked run
// signalled.
type rollbackRun struct {
	pinned  runVersioning // the blocked run before the rollback
	current string        // the current build after the rollback
	old     runOutcome    // the blocked run
	fresh   runOutcome    // the run started after the rollback
	err     error
}

// rolledBack: v1 is current again, the new run completed on v1 code, and the
// run pinned to v2 completed on v2 code.
func rolledBack(o rollbackRun) bool {
	return o.err == nil && o.current == buildV1 && o.pinned.Behavior == "pinned" && o.pinned.Build == buildV2 &&
		o.old.done(buildV2) && o.fresh.done(buildV1)
}

var rollbackPredicate = predicate.New("VR-03.rollback", "rolledBack", rolledBack,
	predicate.Case[rollbackRun]{Name: "new runs back on v1, the v2 run finishes on v2",
		In: rollbackRun{pinned: runVersioning{Build: "v2", Behavior: "pinned"}, current: "v1", old: runOutcome{code: "v2"}, fresh: runOutcome{code: "v1"}}, Want: true},
	predicate.Case[rollbackRun]{Name: "rollback refused: new runs stay on v2",
		In: rollbackRun{pinned: runVersioning{Build: "v2", Behavior: "pinned"}, current: "v2", old: runOutcome{code: "v2"}, fresh: runOutcome{code: "v2"},
			err: errors.New("set current version: ResourceExhausted")}, Want: false},
	predicate.Case[rollbackRun]{Name: "rollback drags the v2 run back onto v1 code",
		In: rollbackRun{pinned: runVersioning{Build: "v2", Behavior: "pinned"}, current: "v1", old: runOutcome{err: errors.New("nondeterministic workflow: missing Notify")}, fresh: runOutcome{code: "v1"}}, Want: false},
)
