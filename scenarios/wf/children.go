package wf

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/durabench/durabench/harness/ledger"
)

// ChildInput tells ChildWorkflow what to do; with no flag set it returns 2N.
type ChildInput struct {
	N    int
	Fail bool          // fail at once with a ChildRefused application error
	Hold bool          // wait on a one-hour timer until a "finish" signal or a cancellation
	Step time.Duration // when > 0: record step 1, sleep Step on a durable timer, record step 2
}

const (
	childErrType = "ChildRefused"
	finishSignal = "finish"
)

// ChildWorkflow is the child of every WF-02 scenario.
func ChildWorkflow(ctx workflow.Context, in ChildInput) (int, error) {
	switch {
	case in.Fail:
		return 0, temporal.NewNonRetryableApplicationError(fmt.Sprintf("child refuses %d", in.N), childErrType, nil)
	case in.Hold:
		return holdChild(ctx, in.N)
	case in.Step > 0:
		return stepChild(ctx, in)
	}
	return 2 * in.N, nil
}

// holdChild waits on a long timer until told to finish; when cancelled, it
// runs its cleanup step in a disconnected context and ends as cancelled.
func holdChild(ctx workflow.Context, n int) (int, error) {
	finished := false
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(workflow.GetSignalChannel(ctx, finishSignal), func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(ctx, nil)
		finished = true
	})
	sel.AddFuture(workflow.NewTimer(ctx, time.Hour), func(workflow.Future) {})
	sel.Select(ctx)
	if finished {
		return 2 * n, nil
	}
	if ctx.Err() == nil {
		return 0, errors.New("the one-hour timer fired")
	}
	cleanup, _ := workflow.NewDisconnectedContext(ctx)
	cleanup = workflow.WithActivityOptions(cleanup, workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second})
	if err := workflow.ExecuteActivity(cleanup, children.Cleanup).Get(cleanup, nil); err != nil {
		return 0, fmt.Errorf("cleanup: %w", err)
	}
	return 0, ctx.Err()
}

// stepChild records step 1, sleeps, records step 2 (each recorded in the ledger).
func stepChild(ctx workflow.Context, in ChildInput) (int, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, MaximumInterval: time.Second},
	})
	if err := workflow.ExecuteActivity(ctx, children.Record, 1).Get(ctx, nil); err != nil {
		return 0, err
	}
	if err := workflow.Sleep(ctx, in.Step); err != nil {
		return 0, err
	}
	if err := workflow.ExecuteActivity(ctx, children.Record, 2).Get(ctx, nil); err != nil {
		return 0, err
	}
	return 2 * in.N, nil
}

// children names the Children activities in workflow code.
var children *Children

// Children holds the child workflows' activities.
type Children struct {
	Probe  *Probe
	Ledger string // ledger file, for workers in child processes
}

// Cleanup is a cancelled child's cleanup step; the probe tags it with the
// child's workflow id.
func (c *Children) Cleanup(ctx context.Context) error {
	if c.Probe != nil {
		c.Probe.end(c.Probe.begin(activity.GetInfo(ctx).WorkflowExecution.ID, activity.GetInfo(ctx).Attempt), false)
	}
	return nil
}

// Record records one step of a child in the ledger.
func (c *Children) Record(ctx context.Context, step int) error {
	if err := appendLedger(ctx, c.Ledger, step, ledger.Start); err != nil {
		return err
	}
	return appendLedger(ctx, c.Ledger, step, ledger.Done)
}

// How ParentWorkflow closes once its children have started.
const (
	closeAwait  = ""       // wait for every child's result
	closeReturn = "return" // complete at once
	closeBlock  = "block"  // wait until cancelled or terminated
)

// ParentInput configures ParentWorkflow.
type ParentInput struct {
	Children            []ChildInput
	Policies            []enumspb.ParentClosePolicy // per child; unspecified is the server default (Terminate)
	Close               string
	Batch               int // start children in batches of this size (0: all at once)
	WaitForCancellation bool
}

// ParentResult holds each child's value or a description of its error.
type ParentResult struct {
	Values []int
	Errors []string
}

// ChildID is the workflow id of a parent's i-th child.
func ChildID(parentID string, i int) string { return fmt.Sprintf("%s-child-%d", parentID, i) }

// ParentWorkflow starts its children (in batches), then closes as told.
func ParentWorkflow(ctx workflow.Context, in ParentInput) (ParentResult, error) {
	id := workflow.GetInfo(ctx).WorkflowExecution.ID
	n := len(in.Children)
	res := ParentResult{Values: make([]int, n), Errors: make([]string, n)}
	batch := in.Batch
	if batch <= 0 {
		batch = n
	}
	for lo := 0; lo < n; lo += batch {
		var futures []workflow.ChildWorkflowFuture
		for i := lo; i < min(lo+batch, n); i++ {
			o := workflow.ChildWorkflowOptions{WorkflowID: ChildID(id, i), WaitForCancellation: in.WaitForCancellation}
			if i < len(in.Policies) {
				o.ParentClosePolicy = in.Policies[i]
			}
			futures = append(futures, workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, o), ChildWorkflow, in.Children[i]))
		}
		for _, f := range futures {
			if err := f.GetChildWorkflowExecution().Get(ctx, nil); err != nil {
				return res, fmt.Errorf("child start: %w", err)
			}
		}
		if in.Close != closeAwait {
			continue
		}
		for k, f := range futures {
			if err := f.Get(ctx, &res.Values[lo+k]); err != nil {
				res.Errors[lo+k] = describeChildError(err)
				if ctx.Err() != nil {
					return res, ctx.Err()
				}
			}
		}
	}
	if in.Close == closeBlock {
		if err := workflow.Await(ctx, func() bool { return false }); err != nil {
			return res, err
		}
	}
	return res, nil
}

// describeChildError says how a child's failure reached the parent.
func describeChildError(err error) string {
	var ce *temporal.ChildWorkflowExecutionError
	if !errors.As(err, &ce) {
		return fmt.Sprintf("%T: %v", err, err)
	}
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return fmt.Sprintf("ChildWorkflowExecutionError caused by ApplicationError type=%s message=%q", ae.Type(), ae.Message())
	}
	return "ChildWorkflowExecutionError: " + err.Error()
}
