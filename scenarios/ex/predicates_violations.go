package ex

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/durabench/durabench/harness/predicate"
)

// The pass conditions of EX-06's checks: OrderWorkflow's original code
// meets its changed version (fixtures/nondeterminism.OrderWorkflowChanged),
// in a replay and live, and PanicWorkflow meets each panic policy.

func violationPredicates() []predicate.Spec {
	return []predicate.Spec{
		ndeDetectedPredicate.Spec(), namesMismatchPredicate.Spec(), blockPredicate.Spec(), failPolicyPredicate.Spec(),
		panicPredicate.Spec(), visiblePredicate.Spec(), resetPredicate.Spec(),
	}
}

// What each version of OrderWorkflow returns: the steps it ran.
var (
	originalSteps = []string{ReserveActivity, ChargeActivity}
	changedSteps  = []string{ValidateActivity, ReserveActivity, ChargeActivity}
)

// Error messages of the SDK for the table (abridged).
const (
	ndeNamed  = ndeCode + " nondeterministic workflow: history event is ActivityTaskScheduled: (ActivityId:6, ActivityType:(Name:Reserve), …), replay command is ScheduleActivityTask: (ActivityId:6, ActivityType:(Name:Validate), …)"
	ndeLookup = ndeCode + " lookup failed for scheduledEventID to activityID: scheduleEventID: 15, activityID: 15"
)

// ndeReplays is the replay on the changed code of two histories of the
// original (EX-06.nde-detected): signalled while it waited, and signalled
// with its start. An empty message: the replay did not fail.
type ndeReplays struct {
	waited, early string
}

// changedCodeFailsReplay: both replays failed with a non-determinism error.
func changedCodeFailsReplay(o ndeReplays) bool {
	return hasNDECode(o.waited) && hasNDECode(o.early)
}

var ndeDetectedPredicate = predicate.New("EX-06.nde-detected", "changedCodeFailsReplay", changedCodeFailsReplay,
	predicate.Case[ndeReplays]{Name: "both replays fail with TMPRL1100", In: ndeReplays{waited: ndeLookup, early: ndeNamed}, Want: true},
	predicate.Case[ndeReplays]{Name: "the changed code replays the old history", In: ndeReplays{waited: "", early: ""}, Want: false},
	predicate.Case[ndeReplays]{Name: "a failure, but no non-determinism error",
		In: ndeReplays{waited: "unable to find workflow type: OrderWorkflow", early: ndeNamed}, Want: false},
)

// mismatch is one non-determinism error and what its history recorded
// where the changed code diverges (EX-06.nde-names-mismatch).
type mismatch struct {
	msg        string // "" if the replay did not fail
	eventID    int64  // the recorded ActivityTaskScheduled of Reserve
	activityID string
}

// named lists, for each thing the error must name, whether it does: the
// recorded event and the replayed command, their activity types and the
// recorded activity's id.
func (m mismatch) named() map[string]bool {
	out := map[string]bool{}
	for _, s := range []string{"ActivityTaskScheduled", "ScheduleActivityTask", ReserveActivity, ValidateActivity, "ActivityId:" + m.activityID} {
		out[s] = strings.Contains(m.msg, s)
	}
	return out
}

// errorsNameBothSides: every replay failed with an error that names both
// sides of the mismatch.
func errorsNameBothSides(ms []mismatch) bool {
	return len(ms) > 0 && !slices.ContainsFunc(ms, func(m mismatch) bool {
		return m.msg == "" || slices.Contains(slices.Collect(maps.Values(m.named())), false)
	})
}

var namesMismatchPredicate = predicate.New("EX-06.nde-names-mismatch", "errorsNameBothSides", errorsNameBothSides,
	predicate.Case[[]mismatch]{Name: "event and command named with their types and the activity id",
		In: []mismatch{{msg: ndeNamed, eventID: 6, activityID: "6"}}, Want: true},
	predicate.Case[[]mismatch]{Name: "one error names only ids of another event",
		In: []mismatch{{msg: ndeNamed, eventID: 6, activityID: "6"}, {msg: ndeLookup, eventID: 5, activityID: "5"}}, Want: false},
	predicate.Case[[]mismatch]{Name: "the replay did not fail", In: []mismatch{{eventID: 5, activityID: "5"}}, Want: false},
)

// blocked is a live run of the original code whose workflow task fails on
// the changed code under the BlockWorkflow policy, then the original code
// redeployed (EX-06.block-policy).
type blocked struct {
	status   enumspb.WorkflowExecutionStatus // while the changed code ran
	attempts int32                           // its pending workflow task's attempt then
	out      []string                        // the result after the redeploy
	err      error
}

// blockedThenRecovered: on the changed code the run stayed open with its
// workflow task retried (a second attempt at least: the first failed), and
// once the original code was back it completed with the original steps.
func blockedThenRecovered(o blocked) bool {
	return o.status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING && o.attempts >= 2 && o.err == nil && slices.Equal(o.out, originalSteps)
}

var blockPredicate = predicate.New("EX-06.block-policy", "blockedThenRecovered", blockedThenRecovered,
	predicate.Case[blocked]{Name: "running at attempt 2, completed after the redeploy",
		In: blocked{status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, attempts: 2, out: originalSteps}, Want: true},
	predicate.Case[blocked]{Name: "the run failed on the changed code",
		In: blocked{status: enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, attempts: 1, err: errors.New("workflow execution error")}, Want: false},
	predicate.Case[blocked]{Name: "stuck for good: still failing after the redeploy",
		In: blocked{status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, attempts: 2, err: errors.New("context deadline exceeded")}, Want: false},
)

// failedRun is a live run of the original code on the changed code under
// the FailWorkflow policy (EX-06.fail-workflow-policy).
type failedRun struct {
	closedBy     enumspb.EventType // the history's last event
	failure      string            // the WorkflowExecutionFailed event's failure and causes
	taskFailures int               // WorkflowTaskFailed events before
}

// failedOnFirstTask: the run closed failed, its failure carries the
// non-determinism error, and no workflow task failed before: the first task
// on the changed code closed the run.
func failedOnFirstTask(o failedRun) bool {
	return o.closedBy == closedFailed && hasNDECode(o.failure) && o.taskFailures == 0
}

const closedFailed = enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED

var failPolicyPredicate = predicate.New("EX-06.fail-workflow-policy", "failedOnFirstTask", failedOnFirstTask,
	predicate.Case[failedRun]{Name: "failed at once, the failure names TMPRL1100",
		In: failedRun{closedBy: closedFailed, failure: "Workflow failed on panic due to FailWorkflow workflow panic policy ← " + ndeNamed}, Want: true},
	predicate.Case[failedRun]{Name: "policy ignored: the task failed and was retried, the run still open",
		In: failedRun{closedBy: enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED, taskFailures: 12}, Want: false},
	predicate.Case[failedRun]{Name: "failed after retrying the task",
		In: failedRun{closedBy: closedFailed, failure: ndeNamed, taskFailures: 3}, Want: false},
)

// panics is PanicWorkflow under each policy (EX-06.panic-policy).
type panics struct {
	blockStatus          enumspb.WorkflowExecutionStatus
	blockAttempts        int32
	blockCause           enumspb.WorkflowTaskFailedCause
	blockMsg, blockStack string            // of the WorkflowTaskFailed failure
	failClosedBy         enumspb.EventType // the FailWorkflow run's last event
	failMsg, failStack   string            // of the WorkflowExecutionFailed failure
}

// carriesPanic: a failure's message holds the panic value and its stack
// trace names the panicking workflow.
func carriesPanic(msg, stack string) bool {
	return strings.Contains(msg, PanicValue) && strings.Contains(stack, "PanicWorkflow")
}

// panicsAsConfigured: under BlockWorkflow the run stayed open with its
// workflow task retried and failed as an unhandled worker failure; under
// FailWorkflow the run failed; both failures carry the panic and its stack.
func panicsAsConfigured(o panics) bool {
	return o.blockStatus == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING && o.blockAttempts >= 2 &&
		o.blockCause == enumspb.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE && carriesPanic(o.blockMsg, o.blockStack) &&
		o.failClosedBy == closedFailed && carriesPanic(o.failMsg, o.failStack)
}

var panicked = panics{blockStatus: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, blockAttempts: 2,
	blockCause: enumspb.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE, blockMsg: PanicValue, blockStack: "ex.PanicWorkflow(...)",
	failClosedBy: closedFailed, failMsg: PanicValue, failStack: "ex.PanicWorkflow(...)"}

var panicPredicate = predicate.New("EX-06.panic-policy", "panicsAsConfigured", panicsAsConfigured,
	predicate.Case[panics]{Name: "blocked and retried; failed; both with value and stack", In: panicked, Want: true},
	predicate.Case[panics]{Name: "FailWorkflow ignored: the run kept retrying",
		In: func() panics {
			p := panicked
			p.failClosedBy, p.failMsg, p.failStack = enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED, "", ""
			return p
		}(), Want: false},
	predicate.Case[panics]{Name: "the failure has no stack trace",
		In: func() panics { p := panicked; p.blockStack, p.failStack = "", ""; return p }(), Want: false},
)

// visibleBlock is what an operator sees of a run blocked on a
// non-determinism error (EX-06.visible-to-operators).
type visibleBlock struct {
	status    enumspb.WorkflowExecutionStatus // describe
	attempts  int32                           // describe's pending workflow task
	cause     enumspb.WorkflowTaskFailedCause // history's first WorkflowTaskFailed
	message   string
	ndeMetric int64 // SDK counter temporal_workflow_task_execution_failed{failure_reason=NonDeterminismError}
}

// blockVisible: describe shows the run running with a retried workflow
// task, the history's WorkflowTaskFailed has cause NonDeterministicError
// and the error, and the SDK's metric counted it.
func blockVisible(o visibleBlock) bool {
	return o.status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING && o.attempts >= 2 &&
		o.cause == enumspb.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR && hasNDECode(o.message) && o.ndeMetric > 0
}

var visiblePredicate = predicate.New("EX-06.visible-to-operators", "blockVisible", blockVisible,
	predicate.Case[visibleBlock]{Name: "running, attempt 2, cause NonDeterministicError, metric 4",
		In: visibleBlock{status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, attempts: 2, cause: enumspb.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR,
			message: ndeNamed, ndeMetric: 4}, Want: true},
	predicate.Case[visibleBlock]{Name: "the failure recorded without its cause",
		In: visibleBlock{status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, attempts: 2, cause: enumspb.WORKFLOW_TASK_FAILED_CAUSE_UNSPECIFIED,
			message: ndeNamed, ndeMetric: 4}, Want: false},
	predicate.Case[visibleBlock]{Name: "no metric counted it",
		In: visibleBlock{status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, attempts: 2, cause: enumspb.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR,
			message: ndeNamed}, Want: false},
)

// resetRun is a stuck run reset to its first workflow task
// (EX-06.recover-by-reset).
type resetRun struct {
	newRunID string
	out      []string // the new run's result
	err      error    // of the reset or the result
}

// recoveredByReset: the reset made a new run, which completed on the
// changed code (its steps, Validate first).
func recoveredByReset(o resetRun) bool {
	return o.err == nil && o.newRunID != "" && slices.Equal(o.out, changedSteps)
}

var resetPredicate = predicate.New("EX-06.recover-by-reset", "recoveredByReset", recoveredByReset,
	predicate.Case[resetRun]{Name: "new run completed with Validate, Reserve, Charge", In: resetRun{newRunID: caseRun2, out: changedSteps}, Want: true},
	predicate.Case[resetRun]{Name: "reset refused", In: resetRun{err: fmt.Errorf("reset: %w", errors.New("invalid argument"))}, Want: false},
	predicate.Case[resetRun]{Name: "the new run stuck on the same error",
		In: resetRun{newRunID: caseRun2, err: errors.New("context deadline exceeded")}, Want: false},
)
