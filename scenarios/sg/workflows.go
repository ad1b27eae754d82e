// Package sg measures the signals-and-events items (SG-01..SG-04): durable
// ordered signals, waits with timeouts and escalation, the ways an outside
// event starts a workflow, and queries and updates. Its tests run real
// workflows against the dev server (worker and server processes are killed
// for real) and, for waits of days, the SDK's time-skipping test environment.
package sg

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Names of the signals, queries, updates and activities of the workflows.
const (
	itemSignal           = "item"
	approveSignal        = "approve"
	releaseSignal        = "release"
	finishSignal         = "finish"
	receivedQuery        = "received"
	stateQuery           = "state"
	approveUpdate        = "approve"
	addUpdate            = "add"
	heldAddUpdate        = "add-after-release"
	callbackActID        = "callback" // activity id of the callback activity
	callbackActivityName = "AwaitCallback"
	escalateActivityName = "Escalate"
)

// Item is one external event sent as a signal.
type Item struct {
	Sender int
	Seq    int
	Body   string
	SentAt time.Time // when the sender called SignalWorkflow
}

// Received is an item as the workflow saw it.
type Received struct {
	Item
	At time.Time // workflow time of the workflow task that received it
}

// CollectInput configures CollectWorkflow.
type CollectInput struct {
	Expect int // the workflow returns once it has received this many items
}

// CollectWorkflow records every "item" signal in arrival order and returns
// them once it has Expect of them; the "received" query reads them so far.
func CollectWorkflow(ctx workflow.Context, in CollectInput) ([]Received, error) {
	var got []Received
	if err := workflow.SetQueryHandler(ctx, receivedQuery, func() ([]Received, error) { return got, nil }); err != nil {
		return nil, err
	}
	ch := workflow.GetSignalChannel(ctx, itemSignal)
	for len(got) < in.Expect {
		var it Item
		ch.Receive(ctx, &it)
		got = append(got, Received{Item: it, At: workflow.Now(ctx)})
	}
	return got, nil
}

// ApprovalInput configures ApprovalWorkflow.
type ApprovalInput struct {
	// Timeout of the first wait; 0 waits for the approval without a timeout.
	Timeout time.Duration
	// Deadline, when longer than Timeout: a first wait that times out runs the
	// escalation activity and the wait goes on until Deadline (from the start).
	Deadline time.Duration
}

// Approval is the argument of the "approve" signal and update.
type Approval struct {
	Approver string
}

// ApprovalResult is what ApprovalWorkflow returns and its "state" query reads.
type ApprovalResult struct {
	Approved       bool
	Approver       string
	Via            string        // "signal" or "update"
	TimedOut       bool          // the first wait (AwaitWithTimeout) returned false
	Escalations    []string      // results of the escalation activity
	EscalatedAfter time.Duration // workflow time from the start to the end of the escalation
	Waited         time.Duration // workflow time from the start to the end of the wait
}

// ApprovalWorkflow waits for an approval sent as an "approve" signal or
// update, with an optional timeout, escalation and final deadline.
func ApprovalWorkflow(ctx workflow.Context, in ApprovalInput) (ApprovalResult, error) {
	var res ApprovalResult
	start := workflow.Now(ctx)
	closed := false
	approve := func(a Approval, via string) {
		if !res.Approved && !closed {
			res.Approved, res.Approver, res.Via = true, a.Approver, via
		}
	}
	if err := workflow.SetQueryHandler(ctx, stateQuery, func() (ApprovalResult, error) { return res, nil }); err != nil {
		return res, err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, approveUpdate,
		func(ctx workflow.Context, a Approval) (ApprovalResult, error) {
			if closed {
				return res, errors.New("the wait is already over")
			}
			approve(a, "update")
			res.Waited = workflow.Now(ctx).Sub(start)
			return res, nil
		},
		workflow.UpdateHandlerOptions{Validator: validApproval},
	); err != nil {
		return res, err
	}
	workflow.Go(ctx, func(ctx workflow.Context) {
		ch := workflow.GetSignalChannel(ctx, approveSignal)
		for {
			var a Approval
			ch.Receive(ctx, &a)
			approve(a, "signal")
		}
	})
	approved := func() bool { return res.Approved }
	if in.Timeout == 0 {
		if err := workflow.Await(ctx, approved); err != nil {
			return res, err
		}
	} else {
		ok, err := workflow.AwaitWithTimeout(ctx, in.Timeout, approved)
		if err != nil {
			return res, err
		}
		res.TimedOut = !ok
		if !ok && in.Deadline > in.Timeout {
			if err := escalate(ctx, &res); err != nil {
				return res, err
			}
			res.EscalatedAfter = workflow.Now(ctx).Sub(start)
			if _, err := workflow.AwaitWithTimeout(ctx, in.Deadline-res.EscalatedAfter, approved); err != nil {
				return res, err
			}
		}
	}
	closed = true
	res.Waited = workflow.Now(ctx).Sub(start)
	// Let an update handler that is still running finish before returning.
	err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	return res, err
}

func validApproval(_ workflow.Context, a Approval) error {
	if a.Approver == "" {
		return errors.New("an approval needs an approver")
	}
	return nil
}

func escalate(ctx workflow.Context, res *ApprovalResult) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second})
	var out string
	if err := workflow.ExecuteActivity(ctx, escalateActivityName, workflow.GetInfo(ctx).WorkflowExecution.ID).Get(ctx, &out); err != nil {
		return fmt.Errorf("escalation: %w", err)
	}
	res.Escalations = append(res.Escalations, out)
	return nil
}

// Escalate is the escalation activity: here it only says whom it paged.
func Escalate(_ context.Context, workflowID string) (string, error) {
	return "paged the on-call approver for " + workflowID, nil
}

// CounterState is what CounterWorkflow returns and its "state" query reads.
type CounterState struct {
	Value    int
	Handled  int  // update handler executions
	Finished bool // the "finish" signal arrived
}

// CounterWorkflow holds a counter changed by "add" updates (validated: 1..100)
// and "add-after-release" updates, whose handler waits for the "release"
// signal; it returns after the "finish" signal.
func CounterWorkflow(ctx workflow.Context) (CounterState, error) {
	var st CounterState
	released := false
	if err := workflow.SetQueryHandler(ctx, stateQuery, func() (CounterState, error) { return st, nil }); err != nil {
		return st, err
	}
	add := func(n int) int {
		st.Value += n
		st.Handled++
		return st.Value
	}
	opts := workflow.UpdateHandlerOptions{Validator: validAdd}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, addUpdate, func(ctx workflow.Context, n int) (int, error) {
		return add(n), nil
	}, opts); err != nil {
		return st, err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, heldAddUpdate, func(ctx workflow.Context, n int) (int, error) {
		if err := workflow.Await(ctx, func() bool { return released }); err != nil {
			return 0, err
		}
		return add(n), nil
	}, opts); err != nil {
		return st, err
	}
	onSignal(ctx, releaseSignal, &released)
	onSignal(ctx, finishSignal, &st.Finished)
	err := workflow.Await(ctx, func() bool { return st.Finished && workflow.AllHandlersFinished(ctx) })
	return st, err
}

func validAdd(_ workflow.Context, n int) error {
	if n < 1 || n > 100 {
		return fmt.Errorf("n must be in 1..100, got %d", n)
	}
	return nil
}

// onSignal sets *flag when signal name arrives.
func onSignal(ctx workflow.Context, name string, flag *bool) {
	workflow.Go(ctx, func(ctx workflow.Context) {
		workflow.GetSignalChannel(ctx, name).Receive(ctx, nil)
		*flag = true
	})
}

// Event is an outside event that starts a workflow.
type Event struct {
	ID     string
	Source string
	Body   string
}

// EventWorkflow is started by a trigger; it returns its event.
func EventWorkflow(_ workflow.Context, ev Event) (Event, error) {
	return ev, nil
}

// CallbackWorkflow waits for an activity that an HTTP callback completes,
// and returns what the callback said.
func CallbackWorkflow(ctx workflow.Context) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		ActivityID:          callbackActID,
		StartToCloseTimeout: 2 * time.Minute,
	})
	var out string
	err := workflow.ExecuteActivity(ctx, callbackActivityName).Get(ctx, &out)
	return out, err
}

// Callbacks is the activity side of CallbackWorkflow: its activity reports
// that it started and leaves its completion to someone else.
type Callbacks struct {
	Started chan<- string // receives the workflow id when the activity starts
}

// AwaitCallback returns ErrResultPending: the completion comes from outside.
func (c *Callbacks) AwaitCallback(ctx context.Context) (string, error) {
	select {
	case c.Started <- activity.GetInfo(ctx).WorkflowExecution.ID:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return "", activity.ErrResultPending
}

// register adds the workflows and activities that worker child processes and
// in-process workers run.
func register(r worker.Registry) {
	r.RegisterWorkflow(CollectWorkflow)
	r.RegisterWorkflow(ApprovalWorkflow)
	r.RegisterWorkflow(CounterWorkflow)
	r.RegisterWorkflow(EventWorkflow)
	r.RegisterActivityWithOptions(Escalate, activity.RegisterOptions{Name: escalateActivityName})
}

// registerCallbacks adds CallbackWorkflow and its activity.
func registerCallbacks(r worker.Registry, cb *Callbacks) {
	r.RegisterWorkflow(CallbackWorkflow)
	r.RegisterActivityWithOptions(cb.AwaitCallback, activity.RegisterOptions{Name: callbackActivityName})
}
