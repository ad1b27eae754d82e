package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/durabench/durabench/agent/store"
)

// recordOptions are those of the store activities: retried until they
// succeed, because the run record must close whatever happens.
var recordOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 30 * time.Second,
	RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
}

// childGrace is how long past the task's own deadline the child workflow
// may run before Temporal times it out: the task stops itself at its
// deadline and reports its spend; the workflow timeout is the backstop.
const childGrace = 2 * time.Minute

// ScheduledRunWorkflow is what a Temporal Schedule starts at each fire time.
// It has no timeout of its own: the agent child has one, so that when the
// agent times out this workflow is still there to record it.
func ScheduledRunWorkflow(ctx workflow.Context, in ScheduledRunInput) (RunOutcome, error) {
	var a *Activities
	runID := workflow.GetInfo(ctx).WorkflowExecution.ID
	actx := workflow.WithActivityOptions(ctx, recordOptions)
	var plan RunPlan
	if err := workflow.ExecuteActivity(actx, a.StartRun, StartRunInput{ScheduleID: in.ScheduleID, RunID: runID, Trigger: in.Trigger}).Get(ctx, &plan); err != nil {
		return RunOutcome{RunID: runID}, err
	}
	if plan.Skip {
		return RunOutcome{RunID: runID, Skipped: plan.SkipReason}, nil
	}

	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:               plan.Task.TaskID,
		WorkflowExecutionTimeout: plan.Task.Timeout + childGrace,
		WaitForCancellation:      true,
	})
	var res ResearchResult
	childErr := workflow.ExecuteChildWorkflow(cctx, ResearchName, plan.Task).Get(ctx, &res)
	end := runEnd(res, childErr)

	// Record the end even if this workflow is being cancelled.
	dctx, _ := workflow.NewDisconnectedContext(actx)
	var closed store.CloseResult
	if err := workflow.ExecuteActivity(dctx, a.CloseRun, CloseRunInput{RunID: runID, End: end}).Get(dctx, &closed); err != nil {
		return RunOutcome{RunID: runID}, err
	}
	out := RunOutcome{RunID: runID, Status: end.Status, CostUSD: end.CostUSD, Error: end.Error}
	if end.Status.Failure() && plan.MaxConsecutiveFailures > 0 && closed.ConsecutiveFailures >= plan.MaxConsecutiveFailures {
		out.Paused = fmt.Sprintf("paused after %d consecutive failed runs; the last one %s: %s",
			closed.ConsecutiveFailures, end.Status, truncate(end.Error, 400))
		if err := workflow.ExecuteActivity(dctx, a.PauseForFailures, PauseForFailuresInput{ScheduleID: in.ScheduleID, Reason: out.Paused}).Get(dctx, nil); err != nil {
			return out, err
		}
	}
	return out, nil
}

// runEnd maps the agent's result, or the error that stood in for it, to the
// run record.
func runEnd(res ResearchResult, err error) store.RunEnd {
	end := store.RunEnd{
		Status: res.Status, CostUSD: res.Budget.SpentUSD, PromptTokens: res.PromptTokens,
		CompletionTokens: res.CompletionTokens, Model: res.Model, Error: res.Error, Output: res.Report, Calls: res.Calls,
	}
	if err == nil {
		return end
	}
	var (
		timeout    *temporal.TimeoutError
		canceled   *temporal.CanceledError
		terminated *temporal.TerminatedError
	)
	switch {
	case errors.As(err, &timeout):
		end.Status = store.RunTimedOut
		end.Error = "the agent workflow timed out past its grace period; its spend is unknown: " + err.Error()
	case errors.As(err, &canceled):
		end.Status = store.RunCancelled
		end.Error = "cancelled: " + err.Error()
	case errors.As(err, &terminated):
		end.Status = store.RunFailed
		end.Error = "the agent workflow was terminated: " + err.Error()
	default:
		end.Status = store.RunFailed
		end.Error = err.Error()
	}
	return end
}

// ReconcileWorkflow runs one reconciliation pass; a Temporal Schedule runs
// it periodically.
func ReconcileWorkflow(ctx workflow.Context) (ReconcileReport, error) {
	var a *Activities
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	var rep ReconcileReport
	err := workflow.ExecuteActivity(ctx, a.Reconcile).Get(ctx, &rep)
	return rep, err
}

// Register adds the workflows and activities to a worker.
func Register(r worker.Registry, a *Activities) {
	RegisterWorkflows(r)
	r.RegisterActivity(a)
}

// RegisterWorkflows adds the workflows alone, e.g. to a replayer.
func RegisterWorkflows(r worker.WorkflowRegistry) {
	r.RegisterWorkflowWithOptions(ScheduledRunWorkflow, workflow.RegisterOptions{Name: ScheduledRunName})
	r.RegisterWorkflowWithOptions(ResearchAgentWorkflow, workflow.RegisterOptions{Name: ResearchName})
	r.RegisterWorkflowWithOptions(ReconcileWorkflow, workflow.RegisterOptions{Name: ReconcileName})
}
