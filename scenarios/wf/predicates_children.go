package wf

import (
	"errors"
	"slices"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/durabench/durabench/harness/predicate"
)

// The pass conditions of WF-02's checks, each a named predicate over what
// the parent returned and what each child's own history and worker show.

func childPredicates() []predicate.Spec {
	return []predicate.Spec{
		childResultPredicate.Spec(), childFailurePredicate.Spec(), cancelPropagatesPredicate.Spec(),
		abandonPredicate.Spec(), terminatePredicate.Spec(), requestCancelPredicate.Spec(),
		childrenRestartPredicate.Spec(), manyChildrenPredicate.Spec(),
	}
}

// childResults is what a parent of three children received
// (WF-02.child-result).
type childResults struct {
	err          error
	values, want []int
	completed    int // ChildWorkflowExecutionCompleted events in the parent
}

// resultsReturned: the parent received each child's own result, in order,
// and its history records every child's completion.
func resultsReturned(o childResults) bool {
	return o.err == nil && slices.Equal(o.values, o.want) && o.completed == len(o.want)
}

var childResultPredicate = predicate.New("WF-02.child-result", "resultsReturned", resultsReturned,
	predicate.Case[childResults]{Name: "2, 4, 6 from N=1, 2, 3", In: childResults{values: []int{2, 4, 6}, want: []int{2, 4, 6}, completed: 3}, Want: true},
	predicate.Case[childResults]{Name: "fire-and-forget children: no result comes back",
		In: childResults{values: []int{0, 0, 0}, want: []int{2, 4, 6}}, Want: false},
)

// childFailure is what a parent saw of one failing and one succeeding child
// (WF-02.child-failure).
type childFailure struct {
	err        error
	errs       []string // per child: the error as the parent saw it, "" for none
	want       string   // ChildWorkflowExecutionError caused by the child's ApplicationError
	otherValue int      // the succeeding child's result
}

// failureSurfaced: the failing child's error reached the parent as a
// ChildWorkflowExecutionError wrapping its original cause, and the sibling's
// result was kept.
func failureSurfaced(o childFailure) bool {
	return o.err == nil && len(o.errs) == 2 && o.errs[0] == "" && o.errs[1] == o.want && o.otherValue == 2
}

const wantChildErr = `ChildWorkflowExecutionError caused by ApplicationError type=ChildRefused message="child refuses 5"`

var childFailurePredicate = predicate.New("WF-02.child-failure", "failureSurfaced", failureSurfaced,
	predicate.Case[childFailure]{Name: "typed error with its cause", In: childFailure{errs: []string{"", wantChildErr}, want: wantChildErr, otherValue: 2}, Want: true},
	predicate.Case[childFailure]{Name: "the cause is lost: a generic error",
		In: childFailure{errs: []string{"", "ChildWorkflowExecutionError caused by <nil>"}, want: wantChildErr, otherValue: 2}, Want: false},
	predicate.Case[childFailure]{Name: "the child's failure fails the whole parent",
		In: childFailure{err: errors.New("workflow failed"), want: wantChildErr}, Want: false},
)

// childObservation is what a child went through, seen from its own history.
type childObservation struct {
	status          enumspb.WorkflowExecutionStatus
	cancelRequested bool
	cleanups        int               // Cleanup activities completed in the child's history
	probeCleanups   int               // Cleanup executions the worker saw
	closeType       enumspb.EventType // the child's last event
	terminateReason string            // its reason, when terminated
}

func (o childObservation) cancelledWithCleanup() bool {
	return o.status == enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED && o.cancelRequested && o.cleanups == 1 && o.probeCleanups == 1
}

var (
	childCancelled = childObservation{status: enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, cancelRequested: true, cleanups: 1, probeCleanups: 1,
		closeType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED}
	childRunning    = childObservation{status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, closeType: enumspb.EVENT_TYPE_TIMER_STARTED}
	childTerminated = childObservation{status: enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, closeType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
		terminateReason: "by parent close policy"}
)

// cancelPropagation is a parent cancelled while its child (Abandon, so that
// only the context's cancellation can reach it) waits on a timer
// (WF-02.cancel-propagates).
type cancelPropagation struct {
	parentErr error
	child     childObservation
}

// cancelReachedChild: the parent ended cancelled, and the child received the
// cancellation request, ran its cleanup once and ended cancelled.
func cancelReachedChild(o cancelPropagation) bool {
	var ce *temporal.CanceledError
	return errors.As(o.parentErr, &ce) && o.child.cancelledWithCleanup()
}

var cancelPropagatesPredicate = predicate.New("WF-02.cancel-propagates", "cancelReachedChild", cancelReachedChild,
	predicate.Case[cancelPropagation]{Name: "child cancelled, cleanup ran", In: cancelPropagation{parentErr: temporal.NewCanceledError(), child: childCancelled}, Want: true},
	predicate.Case[cancelPropagation]{Name: "the parent is cancelled, the child keeps waiting",
		In: cancelPropagation{parentErr: temporal.NewCanceledError(), child: childRunning}, Want: false},
	predicate.Case[cancelPropagation]{Name: "cancelled without its cleanup",
		In: cancelPropagation{parentErr: temporal.NewCanceledError(), child: childObservation{status: enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, cancelRequested: true}}, Want: false},
)

// policyRun is what the three children of one parent went through when the
// parent closed in one way.
type policyRun struct {
	how          string // how the parent closed
	abandonMid   enumspb.WorkflowExecutionStatus
	abandonFinal enumspb.WorkflowExecutionStatus
	abandonValue int
	abandonErr   error
	terminated   childObservation
	cancelled    childObservation
}

// Each parent-close predicate needs both ways of closing the parent
// (completed and terminated) observed.
const closeWays = 2

// abandonKept: after either way of closing the parent, the abandoned child
// was still running once its siblings had been acted on, and then finished
// on its own with its result.
func abandonKept(runs []policyRun) bool {
	ok := len(runs) == closeWays
	for _, r := range runs {
		ok = ok && r.abandonMid == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING && r.abandonFinal == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED &&
			r.abandonErr == nil && r.abandonValue == 20
	}
	return ok
}

// terminatedByPolicy: the Terminate child ended terminated, by the server's
// parent-close policy (its reason says so), after either way of closing.
func terminatedByPolicy(runs []policyRun) bool {
	ok := len(runs) == closeWays
	for _, r := range runs {
		ok = ok && r.terminated.status == enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED &&
			r.terminated.closeType == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED && strings.Contains(r.terminated.terminateReason, "parent close policy")
	}
	return ok
}

// cancelRequestedByPolicy: the RequestCancel child received the request,
// ran its cleanup and ended cancelled, after either way of closing.
func cancelRequestedByPolicy(runs []policyRun) bool {
	ok := len(runs) == closeWays
	for _, r := range runs {
		ok = ok && r.cancelled.cancelledWithCleanup()
	}
	return ok
}

var (
	policiesHonoured = []policyRun{
		{how: "completed", abandonMid: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, abandonFinal: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, abandonValue: 20, terminated: childTerminated, cancelled: childCancelled},
		{how: "terminated", abandonMid: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, abandonFinal: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, abandonValue: 20, terminated: childTerminated, cancelled: childCancelled},
	}
	// Every child terminated, whatever its policy (the server applies one
	// policy to all).
	policiesIgnored = []policyRun{
		{how: "completed", abandonMid: enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, abandonFinal: enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, terminated: childTerminated,
			cancelled: childObservation{status: enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, closeType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED, terminateReason: "by parent close policy"}},
		{how: "terminated", abandonMid: enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, abandonFinal: enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, terminated: childTerminated,
			cancelled: childObservation{status: enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, closeType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED, terminateReason: "by parent close policy"}},
	}
	// No policy applied: every child keeps running.
	policiesNone = []policyRun{
		{how: "completed", abandonMid: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, abandonFinal: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, abandonValue: 20, terminated: childRunning, cancelled: childRunning},
		{how: "terminated", abandonMid: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, abandonFinal: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, abandonValue: 20, terminated: childRunning, cancelled: childRunning},
	}
)

var (
	abandonPredicate = predicate.New("WF-02.parent-close-abandon", "abandonKept", abandonKept,
		predicate.Case[[]policyRun]{Name: "each policy honoured", In: policiesHonoured, Want: true},
		predicate.Case[[]policyRun]{Name: "one policy for all children: the abandoned child is terminated", In: policiesIgnored, Want: false},
		predicate.Case[[]policyRun]{Name: "only the completed parent observed", In: policiesHonoured[:1], Want: false},
	)
	terminatePredicate = predicate.New("WF-02.parent-close-terminate", "terminatedByPolicy", terminatedByPolicy,
		predicate.Case[[]policyRun]{Name: "each policy honoured", In: policiesHonoured, Want: true},
		predicate.Case[[]policyRun]{Name: "no policy applied: the child keeps running", In: policiesNone, Want: false},
	)
	requestCancelPredicate = predicate.New("WF-02.parent-close-request-cancel", "cancelRequestedByPolicy", cancelRequestedByPolicy,
		predicate.Case[[]policyRun]{Name: "each policy honoured", In: policiesHonoured, Want: true},
		predicate.Case[[]policyRun]{Name: "terminated instead of cancelled: no cleanup", In: policiesIgnored, Want: false},
		predicate.Case[[]policyRun]{Name: "no policy applied: the child keeps running", In: policiesNone, Want: false},
	)
)

// childrenRestart is what a parent received after its children's worker and
// the server were killed mid-run (WF-02.survives-restart).
type childrenRestart struct {
	err          error
	values, want []int
	step1, step2 []int // per child, executions of each step in the ledger
}

// childrenResumed: the parent received every child's result, each child's
// step 1 (completed before the kills) ran exactly once and its step 2 ran.
func childrenResumed(o childrenRestart) bool {
	ok := o.err == nil && slices.Equal(o.values, o.want) && len(o.step1) == len(o.want) && len(o.step2) == len(o.want)
	for i := range min(len(o.step1), len(o.step2)) {
		ok = ok && o.step1[i] == 1 && o.step2[i] >= 1
	}
	return ok
}

var childrenRestartPredicate = predicate.New("WF-02.survives-restart", "childrenResumed", childrenResumed,
	predicate.Case[childrenRestart]{Name: "resumed after the kills",
		In: childrenRestart{values: []int{2, 4, 6}, want: []int{2, 4, 6}, step1: []int{1, 1, 1}, step2: []int{1, 1, 1}}, Want: true},
	predicate.Case[childrenRestart]{Name: "children restarted from scratch: step 1 again",
		In: childrenRestart{values: []int{2, 4, 6}, want: []int{2, 4, 6}, step1: []int{2, 2, 2}, step2: []int{1, 1, 1}}, Want: false},
	predicate.Case[childrenRestart]{Name: "children lost with the in-memory state",
		In: childrenRestart{err: errors.New("context deadline exceeded"), want: []int{2, 4, 6}, step1: []int{1, 1, 1}, step2: []int{0, 0, 0}}, Want: false},
)

// manyChildren is a parent starting n children in batches
// (WF-02.many-children).
type manyChildren struct {
	n                                                    int
	err                                                  error
	results, wrong                                       int // results received, and those wrong or missing
	initiated, started, distinct, startFailed, completed int // the parent's history
}

// everyChildOnce: n results, none wrong, and the history shows n children
// initiated, started under n distinct ids, none failing to start, all
// completed.
func everyChildOnce(o manyChildren) bool {
	return o.err == nil && o.results == o.n && o.wrong == 0 && o.initiated == o.n && o.started == o.n && o.distinct == o.n &&
		o.startFailed == 0 && o.completed == o.n
}

var manyChildrenPredicate = predicate.New("WF-02.many-children", "everyChildOnce", everyChildOnce,
	predicate.Case[manyChildren]{Name: "500 of 500",
		In: manyChildren{n: 500, results: 500, initiated: 500, started: 500, distinct: 500, completed: 500}, Want: true},
	predicate.Case[manyChildren]{Name: "a per-parent child limit: 100 start failures",
		In: manyChildren{n: 500, results: 500, wrong: 100, initiated: 500, started: 400, distinct: 400, startFailed: 100, completed: 400}, Want: false},
	predicate.Case[manyChildren]{Name: "one child started twice under the same id",
		In: manyChildren{n: 500, results: 500, initiated: 500, started: 500, distinct: 499, completed: 500}, Want: false},
)
