package cp

import (
	"errors"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/durabench/durabench/harness/predicate"
)

// The pass conditions of CP-03 (manual intervention), one named predicate
// per check over what the scenario observed.

func interventionPredicates() []predicate.Spec {
	return []predicate.Spec{
		opCancelTerminatePredicate.Spec(),
		opSkipBySignalPredicate.Spec(),
		opEditByUpdatePredicate.Spec(),
		opCompleteByHandPredicate.Spec(),
		opAuditTrailPredicate.Spec(),
		opBatchOperationsPredicate.Spec(),
		opActivityOptionsPredicate.Spec(),
	}
}

// opStop is what one cancel or terminate did to a waiting GuardedWorkflow.
type opStop struct {
	status           enumspb.WorkflowExecutionStatus // after the run closed (or the wait for it gave up)
	firstStatus      enumspb.WorkflowExecutionStatus // the first describe after the call returned
	cleanups         int                             // executions of Cleanup the activity recorded
	cleanupScheduled bool                            // history holds a scheduled Cleanup
	err              error                           // of the cancel or terminate call
}

// opStops is CP-03.cancel-terminate's observation.
type opStops struct{ cancel, terminate opStop }

// cancelGracefulTerminateAtOnce: the cancelled run ran its cleanup and closed
// as Canceled; the terminated run was Terminated by the time the call
// returned and no cleanup was scheduled or ran.
func cancelGracefulTerminateAtOnce(s opStops) bool {
	c, t := s.cancel, s.terminate
	return c.err == nil && c.status == wsCanceled && c.cleanups > 0 && c.cleanupScheduled &&
		t.err == nil && t.firstStatus == wsTerminated && t.status == wsTerminated && t.cleanups == 0 && !t.cleanupScheduled
}

var (
	wsRunning    = enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
	wsCanceled   = enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED
	wsTerminated = enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED
	wsCompleted  = enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	wsFailed     = enumspb.WORKFLOW_EXECUTION_STATUS_FAILED
)

var opCancelTerminatePredicate = predicate.New("CP-03.cancel-terminate", "cancelGracefulTerminateAtOnce", cancelGracefulTerminateAtOnce,
	predicate.Case[opStops]{Name: "cancel runs the cleanup and closes Canceled; terminate closes at once without it",
		In: opStops{cancel: opStop{status: wsCanceled, firstStatus: wsRunning, cleanups: 1, cleanupScheduled: true},
			terminate: opStop{status: wsTerminated, firstStatus: wsTerminated}}, Want: true},
	predicate.Case[opStops]{Name: "cancel behaves like terminate: no cleanup",
		In: opStops{cancel: opStop{status: wsCanceled, firstStatus: wsCanceled},
			terminate: opStop{status: wsTerminated, firstStatus: wsTerminated}}, Want: false},
	predicate.Case[opStops]{Name: "the cancel request is ignored: the run keeps running",
		In: opStops{cancel: opStop{status: wsRunning, firstStatus: wsRunning},
			terminate: opStop{status: wsTerminated, firstStatus: wsTerminated}}, Want: false},
	predicate.Case[opStops]{Name: "terminate lets the workflow clean up",
		In: opStops{cancel: opStop{status: wsCanceled, firstStatus: wsRunning, cleanups: 1, cleanupScheduled: true},
			terminate: opStop{status: wsTerminated, firstStatus: wsRunning, cleanups: 1, cleanupScheduled: true}}, Want: false},
	predicate.Case[opStops]{Name: "terminate refused",
		In: opStops{cancel: opStop{status: wsCanceled, firstStatus: wsRunning, cleanups: 1, cleanupScheduled: true},
			terminate: opStop{status: wsRunning, firstStatus: wsRunning, err: errors.New("PermissionDenied")}}, Want: false},
)

// opSkip is CP-03.skip-by-signal's observation.
type opSkip struct {
	stuckAttempts int      // attempts of the stuck step before the signal
	signalErr     error    // of the signal call
	result        []string // the workflow's result
	err           error    // the workflow's error
}

var opWantSkipped = []string{"fetch:done", StuckStep + ":skipped", "store:done"}

// stuckStepSkipped: the step had failed at least twice (it was stuck), the
// signal was accepted, and the workflow completed with the step opSkip and
// the later step done.
func stuckStepSkipped(s opSkip) bool {
	return s.stuckAttempts >= 2 && s.signalErr == nil && s.err == nil && slices.Equal(s.result, opWantSkipped)
}

var opSkipBySignalPredicate = predicate.New("CP-03.skip-by-signal", "stuckStepSkipped", stuckStepSkipped,
	predicate.Case[opSkip]{Name: "stuck after 4 attempts, opSkip, the next step ran",
		In: opSkip{stuckAttempts: 4, result: opWantSkipped}, Want: true},
	predicate.Case[opSkip]{Name: "the signal is not acted on: the workflow is still stuck when the wait gives up",
		In: opSkip{stuckAttempts: 12, err: errors.New("context deadline exceeded")}, Want: false},
	predicate.Case[opSkip]{Name: "opSkip, but the workflow opStop there",
		In: opSkip{stuckAttempts: 4, result: []string{"fetch:done", StuckStep + ":skipped"}}, Want: false},
	predicate.Case[opSkip]{Name: "the step was never stuck",
		In: opSkip{stuckAttempts: 0, result: opWantSkipped}, Want: false},
)

// opEdit is CP-03.edit-by-update's observation.
type opEdit struct {
	waiting     string // the workflow's status query before the update
	badAddr     string // sent first, must be refused
	rejectErr   error  // the refused update's error
	goodAddr    string // sent second
	acceptErr   error
	acceptOut   string   // the accepted update's result
	result      string   // the workflow's result
	err         error    // the workflow's error
	rejectedRan bool     // the refused address reached the workflow (a Deliver attempt used it)
	delivered   []string // addresses Deliver was called with, from history
}

// dataCorrectedByUpdate: the refused update was rejected with an error and
// never reached the workflow's data; the valid one was accepted and the
// workflow completed using it.
func dataCorrectedByUpdate(e opEdit) bool {
	return e.waiting == opWaitingForAddress && e.rejectErr != nil && !e.rejectedRan &&
		e.acceptErr == nil && e.err == nil && len(e.delivered) > 0 && e.delivered[len(e.delivered)-1] == e.goodAddr &&
		e.result == "parcel p-1 delivered to "+e.goodAddr
}

var opEditByUpdatePredicate = predicate.New("CP-03.edit-by-update", "dataCorrectedByUpdate", dataCorrectedByUpdate,
	predicate.Case[opEdit]{Name: "bad input refused by the validator, the correction used",
		In: opEdit{waiting: opWaitingForAddress, badAddr: "", rejectErr: errors.New("refused"), goodAddr: "10 Main St",
			result: "parcel p-1 delivered to 10 Main St", delivered: []string{"Main St", "10 Main St"}}, Want: true},
	predicate.Case[opEdit]{Name: "no validator: the bad input is accepted and used",
		In: opEdit{waiting: opWaitingForAddress, badAddr: "", goodAddr: "10 Main St", rejectedRan: true,
			result: "parcel p-1 delivered to 10 Main St", delivered: []string{"Main St", "", "10 Main St"}}, Want: false},
	predicate.Case[opEdit]{Name: "the update is accepted but the workflow keeps the old data",
		In: opEdit{waiting: opWaitingForAddress, rejectErr: errors.New("refused"), goodAddr: "10 Main St",
			err: errors.New("deadline exceeded"), delivered: []string{"Main St"}}, Want: false},
	predicate.Case[opEdit]{Name: "updates unsupported",
		In: opEdit{waiting: opWaitingForAddress, rejectErr: errors.New("unimplemented"), goodAddr: "10 Main St",
			acceptErr: errors.New("unimplemented"), delivered: []string{"Main St"}}, Want: false},
)

// opByHand is CP-03.complete-activity-by-hand's observation.
type opByHand struct {
	decision     string   // the result the operator supplied
	completeErr  error    // of CompleteActivityByID with a result
	completed    []string // that workflow's result
	completedErr error
	failMsg      string   // the failure the operator supplied
	failErr      error    // of CompleteActivityByID with an error
	failed       []string // that workflow's result
	failedErr    error
}

// completedAndFailedByHand: the workflow whose activity was completed by id
// went on with the supplied result; the one whose activity was failed by id
// saw the operator's failure.
func completedAndFailedByHand(b opByHand) bool {
	return b.completeErr == nil && b.completedErr == nil && slices.Equal(b.completed, []string{"approval:" + b.decision, "publish:done"}) &&
		b.failErr == nil && b.failedErr == nil && slices.Equal(b.failed, []string{"approval failed: " + ManualRejectionType + ": " + b.failMsg})
}

var opCompleteByHandPredicate = predicate.New("CP-03.complete-activity-by-hand", "completedAndFailedByHand", completedAndFailedByHand,
	predicate.Case[opByHand]{Name: "completed with the supplied result, failed with the supplied failure",
		In: opByHand{decision: "ok", completed: []string{"approval:ok", "publish:done"},
			failMsg: "no", failed: []string{"approval failed: " + ManualRejectionType + ": no"}}, Want: true},
	predicate.Case[opByHand]{Name: "completion by id refused: the activity stays pending",
		In: opByHand{decision: "ok", completeErr: errors.New("NotFound"), completedErr: errors.New("deadline exceeded"),
			failMsg: "no", failed: []string{"approval failed: " + ManualRejectionType + ": no"}}, Want: false},
	predicate.Case[opByHand]{Name: "the failure by hand is retried away instead of reaching the workflow",
		In: opByHand{decision: "ok", completed: []string{"approval:ok", "publish:done"},
			failMsg: "no", failedErr: errors.New("deadline exceeded")}, Want: false},
	predicate.Case[opByHand]{Name: "the workflow went on with another result than the supplied one",
		In: opByHand{decision: "ok", completed: []string{"approval:", "publish:done"},
			failMsg: "no", failed: []string{"approval failed: " + ManualRejectionType + ": no"}}, Want: false},
)

// opAudited is one intervention as history recorded it.
type opAudited struct {
	kind     string // signal, update, cancel, terminate, reset, complete, fail, activity options
	event    string // the event type found, "" if none
	identity string // recorded identity
	reason   string // recorded reason (a reason field, the header, the failure message), "" if none
	given    string // the reason the operator had
	where    string // where the reason would be: the field or header read
}

// opAudit is CP-03.audit-trail's observation.
type opAudit struct {
	operator string // the identity of the operator's client
	items    []opAudited
}

// everyInterventionAudited: each intervention left an event in history that
// carries the operator's identity and the reason the operator gave.
func everyInterventionAudited(a opAudit) bool {
	if len(a.items) == 0 || a.operator == "" {
		return false
	}
	for _, it := range a.items {
		if it.event == "" || it.identity != a.operator || it.given == "" || it.reason != it.given {
			return false
		}
	}
	return true
}

var opAuditTrailPredicate = predicate.New("CP-03.audit-trail", "everyInterventionAudited", everyInterventionAudited,
	predicate.Case[opAudit]{Name: "every intervention recorded with identity and reason",
		In: opAudit{operator: "operator-alice", items: []opAudited{
			{kind: "terminate", event: "WorkflowExecutionTerminated", identity: "operator-alice", reason: "r1", given: "r1"},
			{kind: "signal", event: "WorkflowExecutionSignaled", identity: "operator-alice", reason: "r2", given: "r2"}}}, Want: true},
	predicate.Case[opAudit]{Name: "an intervention leaves no event",
		In: opAudit{operator: "operator-alice", items: []opAudited{
			{kind: "terminate", event: "WorkflowExecutionTerminated", identity: "operator-alice", reason: "r1", given: "r1"},
			{kind: "activity options", given: "r3"}}}, Want: false},
	predicate.Case[opAudit]{Name: "an event without the reason",
		In: opAudit{operator: "operator-alice", items: []opAudited{
			{kind: "complete", event: "ActivityTaskCompleted", identity: "operator-alice", given: "r4"}}}, Want: false},
	predicate.Case[opAudit]{Name: "the SDK's default identity instead of the operator's",
		In: opAudit{operator: "operator-alice", items: []opAudited{
			{kind: "terminate", event: "WorkflowExecutionTerminated", identity: "4242@host", reason: "r1", given: "r1"}}}, Want: false},
	predicate.Case[opAudit]{Name: "nothing observed",
		In: opAudit{operator: "operator-alice"}, Want: false},
)

// opBatchJob is one batch operation as DescribeBatchOperation reported it.
type opBatchJob struct {
	op                        string // signal, cancel, terminate
	query                     string
	state                     enumspb.BatchOperationState
	total, complete, failures int64
	err                       error // starting it or waiting for it
}

// opBatchTarget is one run's state after the batch operations.
type opBatchTarget struct {
	group           string // the batch operation whose query matches it; "control" for none
	status          enumspb.WorkflowExecutionStatus
	signals         int  // WorkflowExecutionSignaled events
	cancelRequested bool // a WorkflowExecutionCancelRequested event
}

// opBatch is CP-03.batch-operations' observation.
type opBatch struct {
	jobs []opBatchJob
	runs []opBatchTarget
}

// effectMatches: a run shows the effect of its own group's operation and of
// no other.
func (r opBatchTarget) effectMatches() bool {
	switch r.group {
	case "signal":
		return r.status == wsRunning && r.signals == 1 && !r.cancelRequested
	case "cancel":
		return r.status == wsCanceled && r.signals == 0 && r.cancelRequested
	case "terminate":
		return r.status == wsTerminated && r.signals == 0 && !r.cancelRequested
	case "control":
		return r.status == wsRunning && r.signals == 0 && !r.cancelRequested
	}
	return false
}

// batchExactlyMatching: each batch operation completed over as many runs as
// its query matched, every matching run shows its operation's effect, and
// every other run (the control group and the other groups) is untouched.
func batchExactlyMatching(b opBatch) bool {
	groups := map[string]int64{}
	for _, r := range b.runs {
		groups[r.group]++
		if !r.effectMatches() {
			return false
		}
	}
	if groups["control"] == 0 || len(b.jobs) != 3 {
		return false
	}
	for _, j := range b.jobs {
		if j.err != nil || j.state != enumspb.BATCH_OPERATION_STATE_COMPLETED || j.total != groups[j.op] || j.complete != j.total || j.failures != 0 {
			return false
		}
	}
	return true
}

func opCaseJobs() []opBatchJob {
	done := enumspb.BATCH_OPERATION_STATE_COMPLETED
	return []opBatchJob{{op: "signal", state: done, total: 1, complete: 1}, {op: "cancel", state: done, total: 1, complete: 1},
		{op: "terminate", state: done, total: 1, complete: 1}}
}

func opCaseRuns(control opBatchTarget) []opBatchTarget {
	return []opBatchTarget{{group: "signal", status: wsRunning, signals: 1}, {group: "cancel", status: wsCanceled, cancelRequested: true},
		{group: "terminate", status: wsTerminated}, control}
}

var opBatchOperationsPredicate = predicate.New("CP-03.batch-operations", "batchExactlyMatching", batchExactlyMatching,
	predicate.Case[opBatch]{Name: "each operation hit its group only",
		In: opBatch{jobs: opCaseJobs(), runs: opCaseRuns(opBatchTarget{group: "control", status: wsRunning})}, Want: true},
	predicate.Case[opBatch]{Name: "the signal batch also reached a control run",
		In: opBatch{jobs: opCaseJobs(), runs: opCaseRuns(opBatchTarget{group: "control", status: wsRunning, signals: 1})}, Want: false},
	predicate.Case[opBatch]{Name: "the terminate batch matched everything",
		In: opBatch{jobs: opCaseJobs(), runs: opCaseRuns(opBatchTarget{group: "control", status: wsTerminated})}, Want: false},
	predicate.Case[opBatch]{Name: "batch operations refused",
		In: opBatch{jobs: []opBatchJob{{op: "signal", err: errors.New("Unimplemented")}, {op: "cancel", err: errors.New("Unimplemented")},
			{op: "terminate", err: errors.New("Unimplemented")}}, runs: []opBatchTarget{{group: "control", status: wsRunning}}}, Want: false},
)

// opRetune is CP-03.activity-options-update's observation.
type opRetune struct {
	original  string      // the original policy, for the detail
	updated   string      // the new options, for the detail
	updateErr error       // of UpdateActivityOptions
	updatedAt time.Time   // when the call returned
	attempts  []time.Time // start of each attempt of the activity
	result    string
	err       error
}

// retuneBound bounds the wait from the options update to the next attempt.
// The original policy had that attempt due an hour after the first failed;
// 10 s is far below that and above dispatch latency on a loaded machine.
const retuneBound = 10 * time.Second

// nextAttemptUsesNewOptions: the update was accepted, the next attempt came
// within retuneBound of it rather than an hour after the first, and the
// activity went past the original maximum of attempts to succeed.
func nextAttemptUsesNewOptions(r opRetune) bool {
	if r.updateErr != nil || r.err != nil || len(r.attempts) < 2 {
		return false
	}
	next := r.attempts[1].Sub(r.updatedAt)
	return next >= -50*time.Millisecond && next <= retuneBound && // -50ms: the call returns after the server applied it
		int32(len(r.attempts)) > FlakyOriginalPolicy.MaximumAttempts && len(r.attempts) == FlakySucceedsAt
}

func opCaseAttempts(at time.Time, gaps ...time.Duration) []time.Time {
	out := []time.Time{at}
	for _, g := range gaps {
		at = at.Add(g)
		out = append(out, at)
	}
	return out
}

var (
	opCaseT0     = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	opCaseUpdate = opCaseT0.Add(2 * time.Second)
)

var opActivityOptionsPredicate = predicate.New("CP-03.activity-options-update", "nextAttemptUsesNewOptions", nextAttemptUsesNewOptions,
	predicate.Case[opRetune]{Name: "next attempt 120ms after the update, succeeds on attempt 4",
		In: opRetune{updatedAt: opCaseUpdate, attempts: opCaseAttempts(opCaseT0, 2120*time.Millisecond, 110*time.Millisecond, 105*time.Millisecond),
			result: "succeeded on attempt 4"}, Want: true},
	predicate.Case[opRetune]{Name: "the update is ignored: no second attempt before the wait gives up",
		In: opRetune{updatedAt: opCaseUpdate, attempts: opCaseAttempts(opCaseT0), err: errors.New("context deadline exceeded")}, Want: false},
	predicate.Case[opRetune]{Name: "the interval changed but not the maximum: fails after attempt 2",
		In: opRetune{updatedAt: opCaseUpdate, attempts: opCaseAttempts(opCaseT0, 2120*time.Millisecond), err: errors.New("activity error: attempt 2 fails by design")}, Want: false},
	predicate.Case[opRetune]{Name: "the update is refused",
		In: opRetune{updateErr: errors.New("Unimplemented"), updatedAt: opCaseUpdate, attempts: opCaseAttempts(opCaseT0), err: errors.New("context deadline exceeded")}, Want: false},
)
