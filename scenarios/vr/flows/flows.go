// Package flows holds what the v1 and v2 code of the VR workflows share: the
// workflow, activity, signal and update names both versions register under,
// the result and state types, and the one activity body every step runs.
// The versions themselves live in flows/v1 and flows/v2; flows/planted holds
// variants of them with deliberate changes for replay tests.
package flows

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Workflow type names, the same in every version so that a run started on one
// version's code can continue on another's.
const (
	// Approval waits for SignalApprove (accepting UpdateAmend meanwhile) and then fulfils the request.
	Approval = "Approval"
	// Order reserves, charges, waits a short settle timer and ships.
	Order = "Order"
	// Parent runs Child and returns the child's steps with its own.
	Parent = "Parent"
	// Child runs one activity; Parent starts it.
	Child = "Child"
	// Loop waits for SignalTick per iteration and continues as new every LoopState.Every iterations.
	Loop = "Loop"
	// Quick runs one activity and returns at once.
	Quick = "Quick"
)

// Signal and update names.
const (
	// SignalApprove approves an Approval run; its payload is the approver (a string).
	SignalApprove = "approve"
	// SignalTick advances a Loop run by one iteration (no payload).
	SignalTick = "tick"
	// UpdateAmend amends a waiting Approval run; its argument is a note (a string) and it
	// returns the number of amendments so far.
	UpdateAmend = "amend"
)

// Activity type names. Every activity runs Step, which does no work.
const (
	ActSubmit     = "Submit"
	ActAmend      = "Amend"
	ActFulfil     = "Fulfil"
	ActNotify     = "Notify" // v2 only, after approval
	ActReserve    = "Reserve"
	ActCharge     = "Charge"
	ActShip       = "Ship"
	ActFraudCheck = "FraudCheck" // v2 only, before charging
	ActPack       = "Pack"       // Child's step
	ActAudit      = "Audit"      // v2 only, Parent's step after the child
	ActWork       = "Work"       // Quick's step
)

// Activities lists every activity name; a worker of either version registers
// them all so that it can serve runs of the other.
var Activities = []string{ActSubmit, ActAmend, ActFulfil, ActNotify, ActReserve, ActCharge, ActShip,
	ActFraudCheck, ActPack, ActAudit, ActWork}

// SettleTimer is Order's timer between charging and shipping.
const SettleTimer = 10 * time.Millisecond

// Result is what Approval, Order, Parent, Child and Quick return.
type Result struct {
	Code  string   // the code ("v1", "v2", or a planted variant's name) that returned
	Steps []string // the activities run, in order; Parent prefixes its child's with "Child:"
}

// LoopState is Loop's input, carried across continue-as-new, and its result.
type LoopState struct {
	Iterations int      // iterations done so far over the whole chain
	Target     int      // the chain completes when Iterations reaches Target
	Every      int      // iterations per run: the run continues as new after Every of them
	Codes      []string // per run of the chain, the code that closed it (continued as new or completed)
	Pending    int      // ticks received but not yet counted when the previous run continued as new
}

// Step is the body of every activity: it does no work and returns its
// activity type, so that a result shows which step ran.
func Step(ctx context.Context, arg string) (string, error) {
	return activity.GetInfo(ctx).ActivityType.Name, nil
}

// RegisterActivities registers Step under every name in Activities.
func RegisterActivities(r worker.ActivityRegistry) {
	for _, name := range Activities {
		r.RegisterActivityWithOptions(Step, activity.RegisterOptions{Name: name})
	}
}

// WithActivityOptions gives ctx the short timeouts and quick retries every
// step uses.
func WithActivityOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond, BackoffCoefficient: 1},
	})
}

// Run executes activity name with arg and appends name to res.Steps once it
// completes.
func Run(ctx workflow.Context, res *Result, name, arg string) error {
	if err := workflow.ExecuteActivity(WithActivityOptions(ctx), name, arg).Get(ctx, nil); err != nil {
		return err
	}
	res.Steps = append(res.Steps, name)
	return nil
}

// ChildOptions gives the child of a Parent run an id derived from the
// parent's, so that a test can find it.
func ChildOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:               workflow.GetInfo(ctx).WorkflowExecution.ID + "-child",
		WorkflowExecutionTimeout: time.Minute,
	})
}

// LoopRun is the body of Loop in every version (code names the version): it
// counts st.Every ticks of SignalTick, then continues as new with st, until
// st.Iterations reaches st.Target. Ticks received but not counted when the
// run continues as new go into st.Pending, so none is lost across runs.
func LoopRun(ctx workflow.Context, st LoopState, code string) (LoopState, error) {
	if st.Every < 1 {
		return st, temporal.NewNonRetryableApplicationError("LoopState.Every must be at least 1", "BadLoopState", nil)
	}
	ticks := workflow.GetSignalChannel(ctx, SignalTick)
	for i := 0; i < st.Every && st.Iterations < st.Target; i++ {
		if st.Pending > 0 {
			st.Pending--
		} else {
			ticks.Receive(ctx, nil)
		}
		st.Iterations++
	}
	st.Codes = append(st.Codes, code)
	if st.Iterations >= st.Target {
		return st, nil
	}
	for ticks.ReceiveAsync(nil) {
		st.Pending++
	}
	return st, workflow.NewContinueAsNewError(ctx, Loop, st)
}
