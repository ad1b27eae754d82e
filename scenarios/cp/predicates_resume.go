package cp

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/durabench/durabench/harness/predicate"
)

// The pass conditions of CP-02's checks, each a named predicate over what a
// run of ResumeWorkflow observed: executions per step in the external
// ledger, events in history, results and statuses.

func resumePredicates() []predicate.Spec {
	return []predicate.Spec{
		resumeRetryPredicate.Spec(),
		resumeFixPredicate.Spec(),
		resumeResetPredicate.Spec(),
		resumeReapplyPredicate.Spec(),
		resumeBatchPredicate.Spec(),
		resumePausePredicate.Spec(),
		resumeLedgerPredicate.Spec(),
	}
}

// resumeRetry is what a retried step did (CP-02.no-redo-on-retry).
type resumeRetry struct {
	failStep    int
	execs       []int // ledger executions of steps 1..n
	histAttempt int32 // attempt of the failing step's last ActivityTaskStarted in history
	err         error
}

// noRedoOnRetry: the run completed, its failing step ran more than once
// (and history agrees on how often), and every earlier step ran once.
func noRedoOnRetry(o resumeRetry) bool {
	if o.err != nil || o.failStep < 2 || len(o.execs) < o.failStep {
		return false
	}
	n := o.execs[o.failStep-1]
	if n < 2 || int32(n) != o.histAttempt {
		return false
	}
	for _, e := range o.execs[:o.failStep-1] {
		if e != 1 {
			return false
		}
	}
	return true
}

var resumeRetryPredicate = predicate.New("CP-02.no-redo-on-retry", "noRedoOnRetry", noRedoOnRetry,
	predicate.Case[resumeRetry]{Name: "step 3 runs 3 times, steps 1 and 2 once",
		In: resumeRetry{failStep: 3, execs: []int{1, 1, 3, 1}, histAttempt: 3}, Want: true},
	predicate.Case[resumeRetry]{Name: "a retry of the whole run: every step ran again",
		In: resumeRetry{failStep: 3, execs: []int{3, 3, 3, 1}, histAttempt: 3}, Want: false},
	predicate.Case[resumeRetry]{Name: "step 3 never retried: the run fails",
		In: resumeRetry{failStep: 3, execs: []int{1, 1, 1, 0}, histAttempt: 1, err: errors.New("activity error: step 3 fails transiently (attempt 1)")}, Want: false},
	predicate.Case[resumeRetry]{Name: "ledger and history disagree on the attempts",
		In: resumeRetry{failStep: 3, execs: []int{1, 1, 3, 1}, histAttempt: 1}, Want: false},
)

// resumeFix is what deploying a fixed build under a failing step did
// (CP-02.fix-and-continue).
type resumeFix struct {
	bugStep       int
	buggyAttempts int    // executions of the failing step before the fix
	fixedAttempts int    // after the fix
	earlier       []int  // executions of each earlier step
	output        string // the failing step's output in the result
	fixedBuild    string
	err           error
}

// fixedAndContinued: the buggy step kept retrying (two attempts or more)
// until the fixed build ran it, its output came from the fixed build, the run
// completed, and no earlier step ran again.
func fixedAndContinued(o resumeFix) bool {
	if o.err != nil || o.buggyAttempts < 2 || o.fixedAttempts < 1 || len(o.earlier) == 0 ||
		!strings.Contains(o.output, "build "+o.fixedBuild) {
		return false
	}
	for _, e := range o.earlier {
		if e != 1 {
			return false
		}
	}
	return true
}

var resumeFixPredicate = predicate.New("CP-02.fix-and-continue", "fixedAndContinued", fixedAndContinued,
	predicate.Case[resumeFix]{Name: "step 3 fails 6 times, the fixed build runs it once, steps 1-2 once",
		In: resumeFix{bugStep: 3, buggyAttempts: 6, fixedAttempts: 1, earlier: []int{1, 1}, output: "step 3 by build fixed", fixedBuild: "fixed"}, Want: true},
	predicate.Case[resumeFix]{Name: "the run failed on the bug before the fix",
		In: resumeFix{bugStep: 3, buggyAttempts: 1, earlier: []int{1, 1}, fixedBuild: "fixed", err: errors.New("activity error: build buggy: step 3 hits a bug")}, Want: false},
	predicate.Case[resumeFix]{Name: "restarted from scratch on the fixed build",
		In: resumeFix{bugStep: 3, buggyAttempts: 6, fixedAttempts: 1, earlier: []int{2, 2}, output: "step 3 by build fixed", fixedBuild: "fixed"}, Want: false},
	predicate.Case[resumeFix]{Name: "completed, but by the buggy build",
		In: resumeFix{bugStep: 3, buggyAttempts: 6, earlier: []int{1, 1}, output: "step 3 by build buggy", fixedBuild: "fixed"}, Want: false},
)

// resumeReset is what a reset to a chosen workflow-task event did
// (CP-02.reset-to-event).
type resumeReset struct {
	steps       int
	point       int64 // the WorkflowTaskCompleted event reset to
	afterPoint  []int // steps the original run scheduled after the point
	oldRun      string
	newRun      string
	rescheduled []int // steps the new run scheduled after the point (its history)
	reexecuted  []int // steps with ledger executions after the reset
	err         error // the new run's
}

// resetToEvent: the point lies inside the run (some steps before it, some
// after), the reset made a new run that completed, and that run scheduled and
// executed exactly the steps after the point.
func resetToEvent(o resumeReset) bool {
	return o.err == nil && o.newRun != "" && o.newRun != o.oldRun &&
		len(o.afterPoint) > 0 && len(o.afterPoint) < o.steps &&
		slices.Equal(o.rescheduled, o.afterPoint) && slices.Equal(o.reexecuted, o.afterPoint)
}

var resumeResetPredicate = predicate.New("CP-02.reset-to-event", "resetToEvent", resetToEvent,
	predicate.Case[resumeReset]{Name: "reset after step 2: steps 3 and 4 run again",
		In: resumeReset{steps: 4, point: 14, afterPoint: []int{3, 4}, oldRun: "r1", newRun: "r2", rescheduled: []int{3, 4}, reexecuted: []int{3, 4}}, Want: true},
	predicate.Case[resumeReset]{Name: "the new run starts over from step 1",
		In: resumeReset{steps: 4, point: 14, afterPoint: []int{3, 4}, oldRun: "r1", newRun: "r2", rescheduled: []int{1, 2, 3, 4}, reexecuted: []int{1, 2, 3, 4}}, Want: false},
	predicate.Case[resumeReset]{Name: "reset refused: no new run",
		In: resumeReset{steps: 4, point: 14, afterPoint: []int{3, 4}, oldRun: "r1", err: errors.New("invalid argument: reset event id")}, Want: false},
	predicate.Case[resumeReset]{Name: "history says 3 and 4, the ledger shows step 2 ran too",
		In: resumeReset{steps: 4, point: 14, afterPoint: []int{3, 4}, oldRun: "r1", newRun: "r2", rescheduled: []int{3, 4}, reexecuted: []int{2, 3, 4}}, Want: false},
)

// resumeSignalReset is one reset of a run that had received signals after the
// reset point.
type resumeSignalReset struct {
	exclude []enumspb.ResetReapplyExcludeType
	signals []string // item signals in the new run's history before the test sent any to it
	status  enumspb.WorkflowExecutionStatus
	items   []string // the new run's result
	err     error
}

// resumeReapply is a pair of resets: one reapplying signals, one excluding
// them (CP-02.reset-reapplies-signals).
type resumeReapply struct {
	sent      []string // signals the original run received after the reset point
	reapplied resumeSignalReset
	excluded  resumeSignalReset
	resent    []string // signals sent to the excluded run to finish it
}

// reappliedAsAsked: the reset with signals reapplied carried the original
// signals into the new run, which completed with them; the reset excluding
// signals carried none, its run waited, and it completed with only what was
// sent to it afterwards.
func reappliedAsAsked(o resumeReapply) bool {
	return len(o.sent) > 0 && o.reapplied.err == nil && slices.Equal(o.reapplied.signals, o.sent) && slices.Equal(o.reapplied.items, o.sent) &&
		o.excluded.err == nil && len(o.excluded.signals) == 0 && o.excluded.status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING &&
		slices.Equal(o.excluded.items, o.resent)
}

var (
	resumeCaseSent   = []string{"apple", "pear"}
	resumeCaseResent = []string{"plum", "fig"}
)

var resumeReapplyPredicate = predicate.New("CP-02.reset-reapplies-signals", "reappliedAsAsked", reappliedAsAsked,
	predicate.Case[resumeReapply]{Name: "reapplied: same items; excluded: waits, finishes on new ones",
		In: resumeReapply{sent: resumeCaseSent,
			reapplied: resumeSignalReset{signals: resumeCaseSent, status: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, items: resumeCaseSent},
			excluded: resumeSignalReset{exclude: []enumspb.ResetReapplyExcludeType{enumspb.RESET_REAPPLY_EXCLUDE_TYPE_SIGNAL},
				status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, items: resumeCaseResent}, resent: resumeCaseResent}, Want: true},
	predicate.Case[resumeReapply]{Name: "signals lost by the reset: the new run waits forever",
		In: resumeReapply{sent: resumeCaseSent,
			reapplied: resumeSignalReset{status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, err: errors.New("context deadline exceeded")},
			excluded: resumeSignalReset{exclude: []enumspb.ResetReapplyExcludeType{enumspb.RESET_REAPPLY_EXCLUDE_TYPE_SIGNAL},
				status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, items: resumeCaseResent}, resent: resumeCaseResent}, Want: false},
	predicate.Case[resumeReapply]{Name: "the exclusion ignored: signals reapplied anyway",
		In: resumeReapply{sent: resumeCaseSent,
			reapplied: resumeSignalReset{signals: resumeCaseSent, status: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, items: resumeCaseSent},
			excluded: resumeSignalReset{exclude: []enumspb.ResetReapplyExcludeType{enumspb.RESET_REAPPLY_EXCLUDE_TYPE_SIGNAL},
				signals: resumeCaseSent, status: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, items: resumeCaseSent}, resent: resumeCaseResent}, Want: false},
)

// resumeBatchRun is one run a batch reset should have reset.
type resumeBatchRun struct {
	id, oldRun, newRun string
	status             enumspb.WorkflowExecutionStatus // of the current run after the batch
	err                error                           // its result
}

// resumeBatch is what a batch reset over a visibility query did
// (CP-02.batch-reset).
type resumeBatch struct {
	query     string
	matched   int // failed runs the query listed before the batch
	state     enumspb.BatchOperationState
	total     int64
	completed int64
	failures  int64
	runs      []resumeBatchRun
}

// batchResetAll: the query matched every failed run, the batch completed
// with one successful operation per run and none failed, and each run now
// has a new run that completed.
func batchResetAll(o resumeBatch) bool {
	if len(o.runs) == 0 || o.matched != len(o.runs) || o.state != enumspb.BATCH_OPERATION_STATE_COMPLETED ||
		o.total != int64(len(o.runs)) || o.completed != o.total || o.failures != 0 {
		return false
	}
	for _, r := range o.runs {
		if r.err != nil || r.newRun == "" || r.newRun == r.oldRun || r.status != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			return false
		}
	}
	return true
}

func resumeCaseBatchRuns(newRun string, status enumspb.WorkflowExecutionStatus) []resumeBatchRun {
	return []resumeBatchRun{
		{id: "a", oldRun: "a1", newRun: newRun + "a", status: status},
		{id: "b", oldRun: "b1", newRun: newRun + "b", status: status},
	}
}

var resumeBatchPredicate = predicate.New("CP-02.batch-reset", "batchResetAll", batchResetAll,
	predicate.Case[resumeBatch]{Name: "two failed runs reset and completed",
		In: resumeBatch{matched: 2, state: enumspb.BATCH_OPERATION_STATE_COMPLETED, total: 2, completed: 2,
			runs: resumeCaseBatchRuns("2", enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED)}, Want: true},
	predicate.Case[resumeBatch]{Name: "the batch failed its operations: runs still failed",
		In: resumeBatch{matched: 2, state: enumspb.BATCH_OPERATION_STATE_COMPLETED, total: 2, failures: 2,
			runs: []resumeBatchRun{{id: "a", oldRun: "a1", newRun: "a1", status: enumspb.WORKFLOW_EXECUTION_STATUS_FAILED}, {id: "b", oldRun: "b1", newRun: "b1", status: enumspb.WORKFLOW_EXECUTION_STATUS_FAILED}}}, Want: false},
	predicate.Case[resumeBatch]{Name: "reset, but the new runs fail again",
		In: resumeBatch{matched: 2, state: enumspb.BATCH_OPERATION_STATE_COMPLETED, total: 2, completed: 2,
			runs: resumeCaseBatchRuns("2", enumspb.WORKFLOW_EXECUTION_STATUS_FAILED)}, Want: false},
	predicate.Case[resumeBatch]{Name: "the query missed one run",
		In: resumeBatch{matched: 1, state: enumspb.BATCH_OPERATION_STATE_COMPLETED, total: 1, completed: 1,
			runs: resumeCaseBatchRuns("2", enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED)}, Want: false},
)

// resumePause is what pausing, fixing and unpausing a failing activity did
// (CP-02.activity-pause-resume).
type resumePause struct {
	interval       time.Duration // the activity's configured retry interval
	gap            time.Duration // the longest observed delay between attempts before the pause
	window         time.Duration // how long attempts were watched while paused
	beforePause    int           // attempts before the pause
	state          enumspb.PendingActivityState
	duringWindow   int   // attempts that started during the window
	resumedAttempt int32 // attempt number of the first execution after the unpause
	output         string
	err            error
}

// pausedAndResumed: the activity had been retrying (two attempts or more),
// the server showed it paused, no attempt started over a window of at least
// three observed retry gaps and five configured intervals (so that an
// activity still retrying would have started about three attempts in it),
// the unpause restarted it at attempt 1, and the run completed.
func pausedAndResumed(o resumePause) bool {
	return o.err == nil && o.beforePause >= 2 && o.state == enumspb.PENDING_ACTIVITY_STATE_PAUSED &&
		o.gap > 0 && o.window >= 3*o.gap && o.window >= 5*o.interval &&
		o.duringWindow == 0 && o.resumedAttempt == 1 && o.output != ""
}

var resumePausePredicate = predicate.New("CP-02.activity-pause-resume", "pausedAndResumed", pausedAndResumed,
	predicate.Case[resumePause]{Name: "paused after 3 attempts 1s apart, none for 4s, resumed at attempt 1",
		In: resumePause{interval: 200 * time.Millisecond, gap: time.Second, window: 4 * time.Second, beforePause: 3, state: enumspb.PENDING_ACTIVITY_STATE_PAUSED,
			resumedAttempt: 1, output: "step 2 by build fixed"}, Want: true},
	predicate.Case[resumePause]{Name: "the pause does not stop retries",
		In: resumePause{interval: 200 * time.Millisecond, gap: time.Second, window: 4 * time.Second, beforePause: 3, state: enumspb.PENDING_ACTIVITY_STATE_SCHEDULED,
			duringWindow: 4, resumedAttempt: 8, output: "step 2 by build fixed"}, Want: false},
	predicate.Case[resumePause]{Name: "unpaused without resetting attempts",
		In: resumePause{interval: 200 * time.Millisecond, gap: time.Second, window: 4 * time.Second, beforePause: 3, state: enumspb.PENDING_ACTIVITY_STATE_PAUSED,
			resumedAttempt: 4, output: "step 2 by build fixed"}, Want: false},
	predicate.Case[resumePause]{Name: "a window of one retry gap proves nothing",
		In: resumePause{interval: 200 * time.Millisecond, gap: time.Second, window: time.Second, beforePause: 3, state: enumspb.PENDING_ACTIVITY_STATE_PAUSED,
			resumedAttempt: 1, output: "step 2 by build fixed"}, Want: false},
)

// resumeLedger is the ledger before and after a reset of a failed run
// (CP-02.ledger-exact).
type resumeLedger struct {
	before, after map[int]int // executions per step
	rescheduled   []int       // steps the new run scheduled after the reset point (history)
	strays        int         // ledger entries of other workflows or unknown phases
	err           error       // the new run's
}

// ledgerExact: the new run completed, and the ledger grew by exactly one
// execution of each step the new run scheduled after the reset point and by
// nothing else.
func ledgerExact(o resumeLedger) bool {
	if o.err != nil || len(o.rescheduled) == 0 || o.strays != 0 {
		return false
	}
	steps := slices.Sorted(maps.Keys(o.after))
	for s := range o.before {
		if !slices.Contains(steps, s) {
			steps = append(steps, s)
		}
	}
	for _, s := range steps {
		want := 0
		if slices.Contains(o.rescheduled, s) {
			want = 1
		}
		if o.after[s]-o.before[s] != want {
			return false
		}
	}
	return true
}

var resumeLedgerPredicate = predicate.New("CP-02.ledger-exact", "ledgerExact", ledgerExact,
	predicate.Case[resumeLedger]{Name: "failed at step 3, reset before it: 3 and 4 once more",
		In: resumeLedger{before: map[int]int{1: 1, 2: 1, 3: 2}, after: map[int]int{1: 1, 2: 1, 3: 3, 4: 1}, rescheduled: []int{3, 4}}, Want: true},
	predicate.Case[resumeLedger]{Name: "step 2 ran again though it preceded the reset point",
		In: resumeLedger{before: map[int]int{1: 1, 2: 1, 3: 2}, after: map[int]int{1: 1, 2: 2, 3: 3, 4: 1}, rescheduled: []int{3, 4}}, Want: false},
	predicate.Case[resumeLedger]{Name: "a step ran twice in the new run",
		In: resumeLedger{before: map[int]int{1: 1, 2: 1, 3: 2}, after: map[int]int{1: 1, 2: 1, 3: 4, 4: 1}, rescheduled: []int{3, 4}}, Want: false},
	predicate.Case[resumeLedger]{Name: "an entry of another workflow",
		In: resumeLedger{before: map[int]int{1: 1, 2: 1, 3: 2}, after: map[int]int{1: 1, 2: 1, 3: 3, 4: 1}, rescheduled: []int{3, 4}, strays: 1}, Want: false},
)
