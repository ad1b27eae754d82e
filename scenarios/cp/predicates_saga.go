package cp

import (
	"errors"
	"slices"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/durabench/durabench/harness/predicate"
)

// The pass conditions of CP-01's checks, each a named predicate over what a
// saga run observed in its ledger, its history and its result.

func sagaPredicates() []predicate.Spec {
	return []predicate.Spec{
		sagaReversePredicate.Spec(),
		sagaOnlyCompletedPredicate.Spec(),
		sagaRetriedPredicate.Spec(),
		sagaEscalatedPredicate.Spec(),
		sagaCrashPredicate.Spec(),
		sagaCancelPredicate.Spec(),
		sagaParallelPredicate.Spec(),
	}
}

// sagaReversed returns s in reverse order.
func sagaReversed(s []int) []int {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

// sagaRollback is what a saga whose action failed did (CP-01.compensate-reverse
// and CP-01.only-completed-compensated).
type sagaRollback struct {
	steps      int   // steps in the saga
	failed     int   // the step whose action failed, by the workflow's result
	done       []int // steps whose action completed, in ledger order
	never      []int // steps whose action never started (ledger)
	undoStarts []int // steps whose compensation started, in ledger order
	undone     []int // steps whose compensation completed, in ledger order
	err        error // the workflow's error
}

// compensatedInReverse: the saga ended, at least two steps had completed
// (an order needs two; the catalog's case is steps 1 and 2 before a failure
// at step 3), and their compensations completed in exactly the reverse order
// of the actions.
func compensatedInReverse(o sagaRollback) bool {
	return o.err == nil && len(o.done) >= 2 && slices.Equal(o.undone, sagaReversed(o.done))
}

var sagaReversePredicate = predicate.New("CP-01.compensate-reverse", "compensatedInReverse", compensatedInReverse,
	predicate.Case[sagaRollback]{Name: "failure at step 3: steps 2 then 1 undone",
		In: sagaRollback{steps: 3, failed: 3, done: []int{1, 2}, undoStarts: []int{2, 1}, undone: []int{2, 1}}, Want: true},
	predicate.Case[sagaRollback]{Name: "compensations in forward order",
		In: sagaRollback{steps: 3, failed: 3, done: []int{1, 2}, undoStarts: []int{1, 2}, undone: []int{1, 2}}, Want: false},
	predicate.Case[sagaRollback]{Name: "only the last step undone",
		In: sagaRollback{steps: 3, failed: 3, done: []int{1, 2}, undoStarts: []int{2}, undone: []int{2}}, Want: false},
	predicate.Case[sagaRollback]{Name: "no compensation: the failure just fails the run",
		In: sagaRollback{steps: 3, failed: 3, done: []int{1, 2}, err: errors.New("activity error: ship refused")}, Want: false},
)

// onlyCompletedCompensated: some step never ran, every step whose action
// completed was undone exactly once, and no other step (the failed one, one
// that never ran) had a compensation started.
func onlyCompletedCompensated(o sagaRollback) bool {
	if o.err != nil || len(o.never) == 0 || len(o.done) == 0 {
		return false
	}
	for _, s := range o.undoStarts {
		if !slices.Contains(o.done, s) {
			return false
		}
	}
	return slices.Equal(slices.Sorted(slices.Values(o.undone)), slices.Sorted(slices.Values(o.done)))
}

var sagaOnlyCompletedPredicate = predicate.New("CP-01.only-completed-compensated", "onlyCompletedCompensated", onlyCompletedCompensated,
	predicate.Case[sagaRollback]{Name: "failure at step 2: step 1 undone, steps 2 and 3 not",
		In: sagaRollback{steps: 3, failed: 2, done: []int{1}, never: []int{3}, undoStarts: []int{1}, undone: []int{1}}, Want: true},
	predicate.Case[sagaRollback]{Name: "every step's compensation runs, whatever ran",
		In: sagaRollback{steps: 3, failed: 2, done: []int{1}, never: []int{3}, undoStarts: []int{3, 2, 1}, undone: []int{3, 2, 1}}, Want: false},
	predicate.Case[sagaRollback]{Name: "the failed step is undone too",
		In: sagaRollback{steps: 3, failed: 2, done: []int{1}, never: []int{3}, undoStarts: []int{2, 1}, undone: []int{2, 1}}, Want: false},
	predicate.Case[sagaRollback]{Name: "the completed step is not undone",
		In: sagaRollback{steps: 3, failed: 2, done: []int{1}, never: []int{3}}, Want: false},
	predicate.Case[sagaRollback]{Name: "every step ran: nothing shows a step that never ran",
		In: sagaRollback{steps: 3, failed: 3, done: []int{1, 2}, undoStarts: []int{2, 1}, undone: []int{2, 1}}, Want: false},
)

// sagaRetry is what a compensation failing transiently did
// (CP-01.compensation-retried).
type sagaRetry struct {
	step         int     // the step whose compensation fails transiently
	failUntil    int32   // its attempts before this one fail
	starts       []int32 // attempts the ledger shows starting, in order
	fails        []int32 // attempts the ledger shows failing
	dones        []int32 // attempts the ledger shows completing
	histAttempt  int32   // the attempt of its ActivityTaskStarted event in history
	histComplete bool    // history has its ActivityTaskCompleted
	compensated  []int   // the workflow's result
	err          error
}

// compensationRetried: the compensation's attempts 1..n-1 failed, attempt n
// (n ≥ 2) completed it, history agrees on n and on the completion, and the
// workflow counts the step as compensated.
func compensationRetried(o sagaRetry) bool {
	n := int32(len(o.starts))
	return o.err == nil && n >= 2 && slices.Equal(o.starts, sagaSeq(n)) && slices.Equal(o.fails, sagaSeq(n-1)) &&
		slices.Equal(o.dones, []int32{n}) && o.histAttempt == n && o.histComplete && slices.Contains(o.compensated, o.step)
}

// sagaSeq is 1..n.
func sagaSeq(n int32) []int32 {
	out := make([]int32, 0, n)
	for i := int32(1); i <= n; i++ {
		out = append(out, i)
	}
	return out
}

var sagaRetriedPredicate = predicate.New("CP-01.compensation-retried", "compensationRetried", compensationRetried,
	predicate.Case[sagaRetry]{Name: "attempts 1 and 2 fail, 3 succeeds; history shows attempt 3 completed",
		In: sagaRetry{step: 2, failUntil: 3, starts: []int32{1, 2, 3}, fails: []int32{1, 2}, dones: []int32{3}, histAttempt: 3, histComplete: true, compensated: []int{2, 1}}, Want: true},
	predicate.Case[sagaRetry]{Name: "no retry: one failed attempt, the step left as it was",
		In: sagaRetry{step: 2, failUntil: 3, starts: []int32{1}, fails: []int32{1}, histAttempt: 1, compensated: []int{1}}, Want: false},
	predicate.Case[sagaRetry]{Name: "retried but never succeeded",
		In: sagaRetry{step: 2, failUntil: 3, starts: []int32{1, 2, 3, 4}, fails: []int32{1, 2, 3, 4}, histAttempt: 4, compensated: []int{1}}, Want: false},
	predicate.Case[sagaRetry]{Name: "ledger and history disagree on the attempt",
		In: sagaRetry{step: 2, failUntil: 3, starts: []int32{1, 2, 3}, fails: []int32{1, 2}, dones: []int32{3}, histAttempt: 1, histComplete: true, compensated: []int{2, 1}}, Want: false},
)

// sagaEscalation is what a compensation failing on every attempt led to
// (CP-01.compensation-escalated).
type sagaEscalation struct {
	step          int                             // the step whose compensation always fails
	failed        int                             // its failed attempts (ledger)
	deadLetter    bool                            // its dead-letter record is in the ledger
	statusWaiting enumspb.WorkflowExecutionStatus // the run's status once the record was written
	awaiting      []int                           // escalations the run reported waiting on a human (query)
	otherBefore   bool                            // a later compensation completed before the human's signal
	result        SagaResult
	err           error
}

// compensationEscalated: after failing every attempt its retry policy allows
// (sagaUndoAttempts) the compensation was written to a dead letter, the run
// then stayed open waiting on a human for that step (and did nothing else
// meanwhile), and the human's signal let it record the resolution and finish
// the rest of the rollback.
func compensationEscalated(o sagaEscalation) bool {
	return o.err == nil && o.failed == sagaUndoAttempts && o.deadLetter &&
		o.statusWaiting == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING && slices.Equal(o.awaiting, []int{o.step}) && !o.otherBefore &&
		slices.Equal(o.result.Escalated, []int{o.step}) && len(o.result.Resolutions) == 1 && o.result.Resolutions[0] != "" &&
		len(o.result.Compensated) > 0
}

var sagaEscalatedPredicate = predicate.New("CP-01.compensation-escalated", "compensationEscalated", compensationEscalated,
	predicate.Case[sagaEscalation]{Name: "dead letter, run waits, the signal resolves it and step 1 is undone",
		In: sagaEscalation{step: 2, failed: sagaUndoAttempts, deadLetter: true, statusWaiting: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, awaiting: []int{2},
			result: SagaResult{Compensated: []int{1}, Escalated: []int{2}, Resolutions: []string{"refunded by hand"}}}, Want: true},
	predicate.Case[sagaEscalation]{Name: "dropped: the failure is ignored and the rollback goes on",
		In: sagaEscalation{step: 2, failed: sagaUndoAttempts, statusWaiting: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, otherBefore: true,
			result: SagaResult{Compensated: []int{1}}}, Want: false},
	predicate.Case[sagaEscalation]{Name: "dead letter written, but the run fails instead of waiting",
		In: sagaEscalation{step: 2, failed: sagaUndoAttempts, deadLetter: true, statusWaiting: enumspb.WORKFLOW_EXECUTION_STATUS_FAILED,
			err: errors.New("workflow execution error: activity error: undoing charge failed on attempt 4")}, Want: false},
	predicate.Case[sagaEscalation]{Name: "escalated after one attempt, without retrying",
		In: sagaEscalation{step: 2, failed: 1, deadLetter: true, statusWaiting: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, awaiting: []int{2},
			result: SagaResult{Compensated: []int{1}, Escalated: []int{2}, Resolutions: []string{"refunded by hand"}}}, Want: false},
)

// sagaCrash is what a worker SIGKILL in the middle of compensation led to
// (CP-01.survives-crash).
type sagaCrash struct {
	killedPID, newPID int
	interrupted       int         // the step whose compensation was running at the kill
	doneBeforeKill    []int       // compensations the ledger shows completed at the kill
	actionStarts      map[int]int // action executions per step
	undoStarts        map[int]int // compensation executions per step
	undoDone          map[int]int // completed compensations per step
	finishedBy        int         // the process that completed the interrupted compensation
	result            SagaResult
	err               error
}

// survivedCrash: the kill landed after a compensation had completed, the run
// then finished the rollback on the new worker (every completed step undone
// exactly once, in reverse order), and neither a compensation completed
// before the kill nor any action ran again.
func survivedCrash(o sagaCrash) bool {
	if o.err != nil || len(o.doneBeforeKill) == 0 || o.finishedBy == 0 || o.finishedBy == o.killedPID {
		return false
	}
	for _, s := range o.doneBeforeKill {
		if o.undoStarts[s] != 1 {
			return false
		}
	}
	for s, n := range o.actionStarts {
		if n != 1 {
			return false
		}
		if slices.Contains(o.result.Completed, s) && o.undoDone[s] != 1 {
			return false
		}
	}
	return len(o.result.Completed) > 0 && slices.Equal(o.result.Compensated, sagaReversed(o.result.Completed))
}

var sagaCrashPredicate = predicate.New("CP-01.survives-crash", "survivedCrash", survivedCrash,
	predicate.Case[sagaCrash]{Name: "undo 2 done, undo 1 killed and finished by the new worker",
		In: sagaCrash{killedPID: 100, newPID: 200, interrupted: 1, doneBeforeKill: []int{2}, actionStarts: map[int]int{1: 1, 2: 1, 3: 1},
			undoStarts: map[int]int{2: 1, 1: 2}, undoDone: map[int]int{2: 1, 1: 1}, finishedBy: 200,
			result: SagaResult{Completed: []int{1, 2}, Failed: 3, Compensated: []int{2, 1}}}, Want: true},
	predicate.Case[sagaCrash]{Name: "the completed compensation ran again after the restart",
		In: sagaCrash{killedPID: 100, newPID: 200, interrupted: 1, doneBeforeKill: []int{2}, actionStarts: map[int]int{1: 1, 2: 1, 3: 1},
			undoStarts: map[int]int{2: 2, 1: 2}, undoDone: map[int]int{2: 2, 1: 1}, finishedBy: 200,
			result: SagaResult{Completed: []int{1, 2}, Failed: 3, Compensated: []int{2, 1}}}, Want: false},
	predicate.Case[sagaCrash]{Name: "the rollback is lost with the worker",
		In: sagaCrash{killedPID: 100, newPID: 200, interrupted: 1, doneBeforeKill: []int{2}, actionStarts: map[int]int{1: 1, 2: 1, 3: 1},
			undoStarts: map[int]int{2: 1, 1: 1}, undoDone: map[int]int{2: 1},
			err: errors.New("context deadline exceeded")}, Want: false},
	predicate.Case[sagaCrash]{Name: "the kill landed before any compensation completed",
		In: sagaCrash{killedPID: 100, newPID: 200, interrupted: 2, actionStarts: map[int]int{1: 1, 2: 1, 3: 1},
			undoStarts: map[int]int{2: 2, 1: 1}, undoDone: map[int]int{2: 1, 1: 1}, finishedBy: 200,
			result: SagaResult{Completed: []int{1, 2}, Failed: 3, Compensated: []int{2, 1}}}, Want: false},
)

// sagaCancel is what cancelling a saga mid-way did (CP-01.cancel-compensates).
type sagaCancel struct {
	doneAtCancel []int // steps completed when the cancel was requested (query)
	undone       []int // completed compensations, in ledger order
	status       enumspb.WorkflowExecutionStatus
	err          error // the run's error
	cancelID     int64 // event id of WorkflowExecutionCancelRequested
	undoIDs      []int64
	closeID      int64 // event id of the run's closing event
}

// cancelCompensates: the run ended Canceled, and between the cancel request
// and that end its compensations were scheduled and undid every completed
// step, in reverse order.
func cancelCompensates(o sagaCancel) bool {
	var canceled *temporal.CanceledError
	if o.status != enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED || !errors.As(o.err, &canceled) ||
		len(o.doneAtCancel) == 0 || !slices.Equal(o.undone, sagaReversed(o.doneAtCancel)) || len(o.undoIDs) != len(o.doneAtCancel) {
		return false
	}
	for _, id := range o.undoIDs {
		if id <= o.cancelID || id >= o.closeID {
			return false
		}
	}
	return true
}

var sagaCancelPredicate = predicate.New("CP-01.cancel-compensates", "cancelCompensates", cancelCompensates,
	predicate.Case[sagaCancel]{Name: "cancelled after step 2: undo 2 and 1 run, then Canceled",
		In: sagaCancel{doneAtCancel: []int{1, 2}, undone: []int{2, 1}, status: enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED,
			err: temporal.NewCanceledError(), cancelID: 12, undoIDs: []int64{14, 20}, closeID: 26}, Want: true},
	predicate.Case[sagaCancel]{Name: "compensations on the cancelled context: cancelled before they run",
		In: sagaCancel{doneAtCancel: []int{1, 2}, status: enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED,
			err: temporal.NewCanceledError(), cancelID: 12, closeID: 15}, Want: false},
	predicate.Case[sagaCancel]{Name: "compensated, but the run reports Completed instead of Canceled",
		In: sagaCancel{doneAtCancel: []int{1, 2}, undone: []int{2, 1}, status: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED,
			cancelID: 12, undoIDs: []int64{14, 20}, closeID: 26}, Want: false},
	predicate.Case[sagaCancel]{Name: "only the first compensation completes before the run ends",
		In: sagaCancel{doneAtCancel: []int{1, 2}, undone: []int{2}, status: enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED,
			err: temporal.NewCanceledError(), cancelID: 12, undoIDs: []int64{14}, closeID: 20}, Want: false},
)

// sagaParallel is what a saga of parallel steps with one failing did
// (CP-01.parallel-compensation).
type sagaParallel struct {
	steps      int
	failed     int         // the step whose action failed
	started    int         // actions that started
	done       map[int]int // completed actions per step
	undoStarts map[int]int // compensation executions per step
	undone     map[int]int // completed compensations per step
	lateDone   []int       // steps whose action completed after the failure (ledger order)
	err        error
}

// parallelConsistent: every action started, one failed, and the ledger ends
// consistent: every completed action has exactly one completed
// compensation, and no step without a completed action saw a compensation.
func parallelConsistent(o sagaParallel) bool {
	if o.err != nil || o.failed == 0 || o.started != o.steps {
		return false
	}
	someDone := false
	for s := 1; s <= o.steps; s++ {
		if o.done[s] > 1 || o.undone[s] != o.done[s] || (o.done[s] == 0 && o.undoStarts[s] > 0) {
			return false
		}
		someDone = someDone || o.done[s] == 1
	}
	return someDone
}

var sagaParallelPredicate = predicate.New("CP-01.parallel-compensation", "parallelConsistent", parallelConsistent,
	predicate.Case[sagaParallel]{Name: "C fails; A, B and D (done after the failure) each undone once",
		In: sagaParallel{steps: 4, failed: 3, started: 4, done: map[int]int{1: 1, 2: 1, 4: 1}, undoStarts: map[int]int{1: 1, 2: 1, 4: 1},
			undone: map[int]int{1: 1, 2: 1, 4: 1}, lateDone: []int{2, 4}}, Want: true},
	predicate.Case[sagaParallel]{Name: "compensating as soon as C fails: D, done later, never undone",
		In: sagaParallel{steps: 4, failed: 3, started: 4, done: map[int]int{1: 1, 2: 1, 4: 1}, undoStarts: map[int]int{1: 1, 2: 1},
			undone: map[int]int{1: 1, 2: 1}, lateDone: []int{2, 4}}, Want: false},
	predicate.Case[sagaParallel]{Name: "undoing every step, the failed one included",
		In: sagaParallel{steps: 4, failed: 3, started: 4, done: map[int]int{1: 1, 2: 1, 4: 1}, undoStarts: map[int]int{1: 1, 2: 1, 3: 1, 4: 1},
			undone: map[int]int{1: 1, 2: 1, 3: 1, 4: 1}}, Want: false},
	predicate.Case[sagaParallel]{Name: "a compensation applied twice",
		In: sagaParallel{steps: 4, failed: 3, started: 4, done: map[int]int{1: 1, 2: 1, 4: 1}, undoStarts: map[int]int{1: 2, 2: 1, 4: 1},
			undone: map[int]int{1: 2, 2: 1, 4: 1}}, Want: false},
)
