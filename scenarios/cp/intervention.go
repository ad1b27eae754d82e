package cp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Names the CP-03 operator uses: signals, updates, queries and the ids of
// activities it addresses by hand.
const (
	SkipStepSignal      = "skip-step"
	PokeSignal          = "poke"
	FixAddressUpdate    = "fix-address"
	ParcelStatusQuery   = "status"
	ApprovalActivityID  = "approval"
	FlakyActivityID     = "flaky"
	StuckStep           = "enrich" // the step of StuckStepsWorkflow that never succeeds
	BadAddressType      = "BadAddress"
	ManualRejectionType = "ManualRejection"
	opWaitingForAddress = "waiting for a corrected address"
)

// opStepPlan is StuckStepsWorkflow's steps, in order.
var opStepPlan = []string{"fetch", StuckStep, "store"}

// InterventionActivities are the activities of CP-03. They record what ran,
// by key, so that a test can see cleanups and attempts from outside.
type InterventionActivities struct {
	mu   sync.Mutex
	runs map[string][]time.Time // key -> start time of each execution
}

func (a *InterventionActivities) record(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.runs == nil {
		a.runs = map[string][]time.Time{}
	}
	a.runs[key] = append(a.runs[key], time.Now())
}

// runsOf returns the start times of the executions recorded under key.
func (a *InterventionActivities) runsOf(key string) []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]time.Time(nil), a.runs[key]...)
}

// CleanupKey is the key under which Cleanup records its runs for a workflow.
func CleanupKey(workflowID string) string { return "cleanup/" + workflowID }

// StepKey is the key under which Step records its attempts.
func StepKey(workflowID, step string) string { return "step/" + workflowID + "/" + step }

// FlakyKey is the key under which Flaky records its attempts.
func FlakyKey(workflowID string) string { return "flaky/" + workflowID }

// Cleanup is the work a cancelled GuardedWorkflow does before it stops.
func (a *InterventionActivities) Cleanup(ctx context.Context) error {
	a.record(CleanupKey(activity.GetInfo(ctx).WorkflowExecution.ID))
	return nil
}

// Step runs one step of StuckStepsWorkflow; StuckStep always fails.
func (a *InterventionActivities) Step(ctx context.Context, step string) error {
	a.record(StepKey(activity.GetInfo(ctx).WorkflowExecution.ID, step))
	if step == StuckStep {
		return fmt.Errorf("step %s: upstream service keeps timing out", step)
	}
	return nil
}

// Parcel is AddressFixWorkflow's data, which an operator corrects.
type Parcel struct {
	ID      string
	Address string
}

// ValidAddress is the rule both the delivery and the update validator apply:
// a street address needs a house number.
func ValidAddress(addr string) bool {
	return strings.TrimSpace(addr) != "" && strings.ContainsFunc(addr, unicode.IsDigit)
}

// Deliver delivers a parcel, refusing an address without a house number.
func (a *InterventionActivities) Deliver(ctx context.Context, p Parcel) (string, error) {
	if !ValidAddress(p.Address) {
		return "", temporal.NewNonRetryableApplicationError(fmt.Sprintf("address %q has no house number", p.Address), BadAddressType, nil)
	}
	return fmt.Sprintf("parcel %s delivered to %s", p.ID, p.Address), nil
}

// AwaitApproval leaves the approval to an operator, who completes or fails it
// by activity id.
func (a *InterventionActivities) AwaitApproval(context.Context) (string, error) {
	return "", activity.ErrResultPending
}

// Flaky fails every attempt before FlakySucceedsAt.
func (a *InterventionActivities) Flaky(ctx context.Context) (string, error) {
	info := activity.GetInfo(ctx)
	a.record(FlakyKey(info.WorkflowExecution.ID))
	if info.Attempt < FlakySucceedsAt {
		return "", fmt.Errorf("attempt %d fails by design", info.Attempt)
	}
	return fmt.Sprintf("succeeded on attempt %d", info.Attempt), nil
}

// FlakySucceedsAt is the first attempt on which Flaky succeeds: beyond
// RetuneWorkflow's original maximum of attempts.
const FlakySucceedsAt = 4

// FlakyOriginalPolicy is the policy RetuneWorkflow schedules Flaky with: its
// second attempt is due an hour after the first fails, and there is no third.
var FlakyOriginalPolicy = temporal.RetryPolicy{
	InitialInterval: time.Hour, BackoffCoefficient: 2, MaximumInterval: time.Hour, MaximumAttempts: 2,
}

func opShortActivity(ctx workflow.Context, retry *temporal.RetryPolicy) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second, RetryPolicy: retry})
}

// GuardedWorkflow waits until it is cancelled, then runs Cleanup in a
// disconnected context and reports the cancellation.
func GuardedWorkflow(ctx workflow.Context) error {
	err := workflow.Await(ctx, func() bool { return false })
	if !temporal.IsCanceledError(err) {
		return err
	}
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	if cerr := workflow.ExecuteActivity(opShortActivity(dctx, nil), "Cleanup").Get(dctx, nil); cerr != nil {
		return errors.Join(err, cerr)
	}
	return err
}

// StuckStepsWorkflow runs opStepPlan in order. An operator skips a step by
// sending its name on SkipStepSignal: a running step is cancelled and the
// workflow goes on. The result lists each step as done or skipped.
func StuckStepsWorkflow(ctx workflow.Context) ([]string, error) {
	skip := map[string]bool{}
	signals := workflow.GetSignalChannel(ctx, SkipStepSignal)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var step string
			if !signals.Receive(ctx, &step) {
				return
			}
			skip[step] = true
		}
	})
	retry := &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 1}
	var out []string
	for _, step := range opStepPlan {
		sctx, cancel := workflow.WithCancel(ctx)
		f := workflow.ExecuteActivity(opShortActivity(sctx, retry), "Step", step)
		if err := workflow.Await(ctx, func() bool { return f.IsReady() || skip[step] }); err != nil {
			cancel()
			return out, err
		}
		if !f.IsReady() {
			cancel()
			out = append(out, step+":skipped")
			continue
		}
		cancel()
		if err := f.Get(ctx, nil); err != nil {
			return out, err
		}
		out = append(out, step+":done")
	}
	return out, nil
}

// AddressFixWorkflow delivers a parcel. When the address is refused it waits
// for an operator to correct it by FixAddressUpdate, whose validator refuses
// an address the delivery would refuse again, and delivers with the
// corrected data.
func AddressFixWorkflow(ctx workflow.Context, p Parcel) (string, error) {
	status := "delivering"
	if err := workflow.SetQueryHandler(ctx, ParcelStatusQuery, func() (string, error) { return status, nil }); err != nil {
		return "", err
	}
	err := workflow.SetUpdateHandlerWithOptions(ctx, FixAddressUpdate,
		func(ctx workflow.Context, addr string) (string, error) {
			old := p.Address
			p.Address = addr
			return fmt.Sprintf("address changed from %q to %q", old, addr), nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, addr string) error {
			if !ValidAddress(addr) {
				return fmt.Errorf("refused: address %q has no house number", addr)
			}
			return nil
		}})
	if err != nil {
		return "", err
	}
	for {
		var out string
		err := workflow.ExecuteActivity(opShortActivity(ctx, nil), "Deliver", p).Get(ctx, &out)
		var appErr *temporal.ApplicationError
		if err == nil || !errors.As(err, &appErr) || appErr.Type() != BadAddressType {
			return out, err
		}
		status = opWaitingForAddress
		refused := p.Address
		if err := workflow.Await(ctx, func() bool { return p.Address != refused }); err != nil {
			return "", err
		}
		status = "delivering"
	}
}

// ApprovalWorkflow waits for AwaitApproval, which an operator completes or
// fails by hand, then publishes the decision. A failed approval ends the
// workflow with a result naming the failure it saw.
func ApprovalWorkflow(ctx workflow.Context) ([]string, error) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		ActivityID: ApprovalActivityID, StartToCloseTimeout: 5 * time.Minute,
	})
	var decision string
	if err := workflow.ExecuteActivity(actx, "AwaitApproval").Get(ctx, &decision); err != nil {
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) {
			return nil, err
		}
		return []string{fmt.Sprintf("approval failed: %s: %s", appErr.Type(), appErr.Message())}, nil
	}
	if err := workflow.ExecuteActivity(opShortActivity(ctx, nil), "Step", "publish").Get(ctx, nil); err != nil {
		return nil, err
	}
	return []string{"approval:" + decision, "publish:done"}, nil
}

// BatchTargetWorkflow runs until it is cancelled, counting PokeSignal
// signals.
func BatchTargetWorkflow(ctx workflow.Context) (int, error) {
	pokes := 0
	ch := workflow.GetSignalChannel(ctx, PokeSignal)
	for {
		done := false
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(ch, func(c workflow.ReceiveChannel, _ bool) {
			c.Receive(ctx, nil)
			pokes++
		})
		sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) { done = true })
		sel.Select(ctx)
		if done {
			return pokes, ctx.Err()
		}
	}
}

// RetuneWorkflow calls Flaky under FlakyOriginalPolicy, under which it can
// never succeed in time; an operator changes the policy of the pending
// activity.
func RetuneWorkflow(ctx workflow.Context) (string, error) {
	policy := FlakyOriginalPolicy
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		ActivityID: FlakyActivityID, StartToCloseTimeout: 10 * time.Second, RetryPolicy: &policy,
	})
	var out string
	err := workflow.ExecuteActivity(actx, "Flaky").Get(ctx, &out)
	return out, err
}
