package cp

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/durabench/durabench/harness/ledger"
)

// CP-01's saga: steps whose side effects (actions) and their undoing
// (compensations) are recorded in an external ledger. The Go SDK has no saga
// construct; the compensation stack, its order and the escalation of a
// compensation that cannot succeed are this workflow's code (the catalog
// marks those checks as patterns).

// Ledger phases of the saga, beside ledger.Start and ledger.Done of an action.
const (
	sagaActionFail = "fail"        // the action failed; no side effect remains
	sagaUndoStart  = "undo-start"  // a compensation attempt began
	sagaUndoFail   = "undo-fail"   // a compensation attempt failed
	sagaUndoDone   = "undo-done"   // the side effect was undone
	sagaDeadLetter = "dead-letter" // a compensation that cannot succeed was escalated
)

// Signal and query names of SagaWorkflow.
const (
	sagaProceedSignal = "saga-proceed" // lets a run held after a step go on
	sagaResolveSignal = "saga-resolve" // a human resolved an escalated compensation
	sagaStateQuery    = "saga-state"
)

// SagaStep is one step of a saga and how its action and compensation
// behave.
type SagaStep struct {
	Name     string
	Duration time.Duration // how long the action takes
	Fail     bool          // the action fails, not retryably
	// UndoFailUntil: compensation attempts before this one fail (a transient
	// failure); 0 or 1: none do.
	UndoFailUntil int32
	// UndoNeverSucceeds: every compensation attempt fails (a permanent
	// failure).
	UndoNeverSucceeds bool
	// UndoBlockFirst: the compensation's first attempt blocks, heartbeating,
	// until its worker is killed.
	UndoBlockFirst bool
}

// SagaInput is a saga: its steps, run one after another or all at once.
type SagaInput struct {
	Steps    []SagaStep
	Parallel bool
	// HoldAfter: after this many steps have completed, wait for a proceed
	// signal (0: never), so that a test can cancel the run mid-saga.
	HoldAfter int
}

// SagaResult is how a saga ended. Steps are numbered from 1.
type SagaResult struct {
	Completed   []int    // steps whose action completed
	Failed      int      // the step whose action failed, 0 if none
	Compensated []int    // compensations that completed, in completion order
	Escalated   []int    // compensations that failed for good and went to a human
	Resolutions []string // the human's resolution of each escalated compensation
}

// SagaState is what the state query returns.
type SagaState struct {
	Completed []int
	Holding   bool  // waiting for the proceed signal
	Awaiting  []int // escalated compensations waiting for a human
}

// SagaResolution is the signal that resolves an escalated compensation.
type SagaResolution struct {
	Step int
	Note string
}

// sagaCall is what an action or compensation activity is given.
type sagaCall struct {
	Key  string // workflow id
	Step int
	Spec SagaStep
}

// sagaActionID and sagaUndoID name a step's activities, so that history
// shows which step each attempt belongs to.
func sagaActionID(step int) string { return fmt.Sprintf("action-%d", step) }
func sagaUndoID(step int) string   { return fmt.Sprintf("undo-%d", step) }

// Retry policies: short intervals keep the checks quick (the server arms no
// retry timer sooner than about 1s, so retries come about 1s apart anyway;
// see RT-01). A compensation gets sagaUndoAttempts attempts before it is
// escalated.
const sagaUndoAttempts = 4

var (
	sagaActionRetry = &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 400 * time.Millisecond}
	sagaUndoRetry   = &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 400 * time.Millisecond, MaximumAttempts: sagaUndoAttempts}
)

// SagaWorkflow runs the steps' actions and, if one fails or the run is
// cancelled, compensates every completed step: in reverse order, or all at
// once for parallel steps. A compensation that fails after all its attempts
// is escalated: a dead-letter record, then a wait for a human's resolution
// signal before the saga goes on.
func SagaWorkflow(ctx workflow.Context, in SagaInput) (SagaResult, error) {
	key := workflow.GetInfo(ctx).WorkflowExecution.ID
	var res SagaResult
	holding, proceed := false, false
	var awaiting []int
	resolved := map[int]string{}
	if err := workflow.SetQueryHandler(ctx, sagaStateQuery, func() (SagaState, error) {
		return SagaState{Completed: res.Completed, Holding: holding, Awaiting: awaiting}, nil
	}); err != nil {
		return res, err
	}
	// Compensations run in a context that a cancellation of the run does not
	// reach, so that a cancelled saga still undoes its steps; the signal
	// listeners use it too, so that a human can resolve an escalation then.
	undoBase, _ := workflow.NewDisconnectedContext(ctx)
	workflow.Go(undoBase, func(gctx workflow.Context) {
		ch := workflow.GetSignalChannel(gctx, sagaResolveSignal)
		for {
			var r SagaResolution
			ch.Receive(gctx, &r)
			resolved[r.Step] = r.Note
		}
	})
	workflow.Go(undoBase, func(gctx workflow.Context) {
		workflow.GetSignalChannel(gctx, sagaProceedSignal).Receive(gctx, nil)
		proceed = true
	})

	call := func(step int) sagaCall { return sagaCall{Key: key, Step: step, Spec: in.Steps[step-1]} }
	action := func(step int) workflow.Future {
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			ActivityID: sagaActionID(step), StartToCloseTimeout: 10 * time.Second, RetryPolicy: sagaActionRetry,
		})
		return workflow.ExecuteActivity(actx, "SagaAction", call(step))
	}
	var failure error
	if in.Parallel {
		futures := make([]workflow.Future, len(in.Steps))
		for i := range in.Steps {
			futures[i] = action(i + 1)
		}
		// Every action must settle before compensating: one still running
		// when another fails may yet complete and need undoing.
		for i, f := range futures {
			if err := f.Get(ctx, nil); err != nil {
				if failure == nil {
					failure, res.Failed = err, i+1
				}
				continue
			}
			res.Completed = append(res.Completed, i+1)
		}
	} else {
		for i := range in.Steps {
			if err := action(i+1).Get(ctx, nil); err != nil {
				failure, res.Failed = err, i+1
				break
			}
			res.Completed = append(res.Completed, i+1)
			if in.HoldAfter == i+1 {
				holding = true
				err := workflow.Await(ctx, func() bool { return proceed })
				holding = false
				if err != nil {
					failure = err
					break
				}
			}
		}
	}
	if failure == nil {
		return res, nil
	}

	compensate := func(cctx workflow.Context, step int) error {
		uctx := workflow.WithActivityOptions(cctx, workflow.ActivityOptions{
			ActivityID: sagaUndoID(step), StartToCloseTimeout: 10 * time.Second, HeartbeatTimeout: time.Second, RetryPolicy: sagaUndoRetry,
		})
		err := workflow.ExecuteActivity(uctx, "SagaUndo", call(step)).Get(cctx, nil)
		if err == nil {
			res.Compensated = append(res.Compensated, step)
			return nil
		}
		// Escalate, never drop: record the dead letter, then hold until a
		// human resolves it.
		dctx := workflow.WithActivityOptions(cctx, workflow.ActivityOptions{
			ActivityID: fmt.Sprintf("dead-letter-%d", step), StartToCloseTimeout: 10 * time.Second, RetryPolicy: sagaActionRetry,
		})
		if err := workflow.ExecuteActivity(dctx, "SagaEscalate", call(step)).Get(cctx, nil); err != nil {
			return err
		}
		awaiting = append(awaiting, step)
		if err := workflow.Await(cctx, func() bool { _, ok := resolved[step]; return ok }); err != nil {
			return err
		}
		awaiting = slices.DeleteFunc(awaiting, func(s int) bool { return s == step })
		res.Escalated = append(res.Escalated, step)
		res.Resolutions = append(res.Resolutions, resolved[step])
		return nil
	}
	if in.Parallel {
		wg := workflow.NewWaitGroup(undoBase)
		errs := make([]error, len(res.Completed))
		for i, step := range res.Completed {
			wg.Add(1)
			workflow.Go(undoBase, func(gctx workflow.Context) {
				defer wg.Done()
				errs[i] = compensate(gctx, step)
			})
		}
		wg.Wait(undoBase)
		for _, err := range errs {
			if err != nil {
				return res, err
			}
		}
	} else {
		for i := len(res.Completed) - 1; i >= 0; i-- {
			if err := compensate(undoBase, res.Completed[i]); err != nil {
				return res, err
			}
		}
	}
	if ctx.Err() != nil {
		return res, ctx.Err() // the run ends Canceled
	}
	return res, nil
}

// SagaActivities are the saga's actions and compensations, which record
// every side effect in the ledger with the process id that did it.
type SagaActivities struct {
	Ledger string
}

func (a *SagaActivities) record(ctx context.Context, c sagaCall, phase string) error {
	return ledger.Append(a.Ledger, ledger.Entry{Key: c.Key, Step: c.Step, Attempt: activity.GetInfo(ctx).Attempt, Phase: phase})
}

// SagaAction performs a step's side effect.
func (a *SagaActivities) SagaAction(ctx context.Context, c sagaCall) error {
	if err := a.record(ctx, c, ledger.Start); err != nil {
		return err
	}
	if c.Spec.Duration > 0 {
		select {
		case <-time.After(c.Spec.Duration):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if c.Spec.Fail {
		if err := a.record(ctx, c, sagaActionFail); err != nil {
			return err
		}
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s refused", c.Spec.Name), "StepRefused", nil)
	}
	return a.record(ctx, c, ledger.Done)
}

// SagaUndo undoes a step's side effect.
func (a *SagaActivities) SagaUndo(ctx context.Context, c sagaCall) error {
	if err := a.record(ctx, c, sagaUndoStart); err != nil {
		return err
	}
	attempt := activity.GetInfo(ctx).Attempt
	if c.Spec.UndoBlockFirst && attempt == 1 {
		// Hold until the test kills this worker; heartbeats let the server
		// notice the loss within the heartbeat timeout.
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				activity.RecordHeartbeat(ctx)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if c.Spec.UndoNeverSucceeds || attempt < c.Spec.UndoFailUntil {
		if err := a.record(ctx, c, sagaUndoFail); err != nil {
			return err
		}
		return fmt.Errorf("undoing %s failed on attempt %d", c.Spec.Name, attempt)
	}
	return a.record(ctx, c, sagaUndoDone)
}

// SagaEscalate writes the dead-letter record of a compensation that could
// not succeed.
func (a *SagaActivities) SagaEscalate(ctx context.Context, c sagaCall) error {
	return a.record(ctx, c, sagaDeadLetter)
}

// registerSaga registers the saga workflow and its activities.
func registerSaga(r worker.Registry, acts *SagaActivities) {
	r.RegisterWorkflow(SagaWorkflow)
	r.RegisterActivity(acts)
}
