package planted

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/durabench/durabench/scenarios/vr/flows"
)

// code is what every variant's workflows put in flows.Result.Code.
const code = "planted"

// order runs Order's steps as listed: an activity name, "timer" (the settle
// timer, lasting settle), "sleep" (a new timer) or "child".
func order(ctx workflow.Context, item string, settle time.Duration, steps ...string) (flows.Result, error) {
	res := flows.Result{Code: code}
	for _, s := range steps {
		var err error
		switch s {
		case "timer":
			err = workflow.Sleep(ctx, settle)
		case "sleep":
			err = workflow.Sleep(ctx, time.Millisecond)
		case "child":
			var child flows.Result
			err = workflow.ExecuteChildWorkflow(flows.ChildOptions(ctx), flows.Child, item).Get(ctx, &child)
		default:
			err = flows.Run(ctx, &res, s, item)
		}
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

func orderActivityAdded(ctx workflow.Context, item string) (flows.Result, error) {
	return order(ctx, item, flows.SettleTimer, flows.ActReserve, flows.ActFraudCheck, flows.ActCharge, "timer", flows.ActShip)
}

func orderActivityRemoved(ctx workflow.Context, item string) (flows.Result, error) {
	return order(ctx, item, flows.SettleTimer, flows.ActReserve, "timer", flows.ActShip)
}

func orderActivityReordered(ctx workflow.Context, item string) (flows.Result, error) {
	return order(ctx, item, flows.SettleTimer, flows.ActCharge, flows.ActReserve, "timer", flows.ActShip)
}

func orderActivityRetyped(ctx workflow.Context, item string) (flows.Result, error) {
	return order(ctx, item, flows.SettleTimer, flows.ActReserve, "Invoice", "timer", flows.ActShip)
}

func orderTimerAdded(ctx workflow.Context, item string) (flows.Result, error) {
	return order(ctx, item, flows.SettleTimer, flows.ActReserve, "sleep", flows.ActCharge, "timer", flows.ActShip)
}

func orderChildAdded(ctx workflow.Context, item string) (flows.Result, error) {
	return order(ctx, item, flows.SettleTimer, flows.ActReserve, "child", flows.ActCharge, "timer", flows.ActShip)
}

func orderTimerDurationChanged(ctx workflow.Context, item string) (flows.Result, error) {
	return order(ctx, item, time.Hour, flows.ActReserve, flows.ActCharge, "timer", flows.ActShip)
}

// orderArgumentChanged passes Charge another value than the item.
func orderArgumentChanged(ctx workflow.Context, item string) (flows.Result, error) {
	res := flows.Result{Code: code}
	for _, s := range []struct{ name, arg string }{
		{flows.ActReserve, item}, {flows.ActCharge, item + " (discounted)"}, {"timer", ""}, {flows.ActShip, item},
	} {
		var err error
		if s.name == "timer" {
			err = workflow.Sleep(ctx, flows.SettleTimer)
		} else {
			err = flows.Run(ctx, &res, s.name, s.arg)
		}
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

func parentChildArgumentChanged(ctx workflow.Context, item string) (flows.Result, error) {
	res := flows.Result{Code: code}
	var child flows.Result
	if err := workflow.ExecuteChildWorkflow(flows.ChildOptions(ctx), flows.Child, item+" (gift-wrapped)").Get(ctx, &child); err != nil {
		return res, err
	}
	for _, s := range child.Steps {
		res.Steps = append(res.Steps, "Child:"+s)
	}
	return res, nil
}

// approval is v1's Approval with two hooks: amend, the body of the amend
// update handler, and approved, run once the approve signal arrives.
func approval(ctx workflow.Context, item string,
	amend func(ctx workflow.Context, res *flows.Result, note string) error,
	approved func(ctx workflow.Context, res *flows.Result, approver string) error,
) (flows.Result, error) {
	res := flows.Result{Code: code}
	amendments := 0
	if err := workflow.SetUpdateHandler(ctx, flows.UpdateAmend, func(ctx workflow.Context, note string) (int, error) {
		if err := amend(ctx, &res, note); err != nil {
			return 0, err
		}
		amendments++
		return amendments, nil
	}); err != nil {
		return res, err
	}
	if err := flows.Run(ctx, &res, flows.ActSubmit, item); err != nil {
		return res, err
	}
	var approver string
	workflow.GetSignalChannel(ctx, flows.SignalApprove).Receive(ctx, &approver)
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return res, err
	}
	if err := approved(ctx, &res, approver); err != nil {
		return res, err
	}
	return res, flows.Run(ctx, &res, flows.ActFulfil, item)
}

func runAmend(ctx workflow.Context, res *flows.Result, note string) error {
	return flows.Run(ctx, res, flows.ActAmend, note)
}

func nothing(workflow.Context, *flows.Result, string) error { return nil }

func approvalUpdateHandlerChanged(ctx workflow.Context, item string) (flows.Result, error) {
	return approval(ctx, item, func(ctx workflow.Context, res *flows.Result, note string) error {
		res.Steps = append(res.Steps, "amended in memory: "+note)
		return nil
	}, nothing)
}

func approvalSignalHandlingChanged(ctx workflow.Context, item string) (flows.Result, error) {
	return approval(ctx, item, runAmend, func(ctx workflow.Context, res *flows.Result, approver string) error {
		return flows.Run(ctx, res, flows.ActAudit, approver)
	})
}

// unguardedApproval is v2's Approval with Notify run unconditionally.
func unguardedApproval(ctx workflow.Context, item string) (flows.Result, error) {
	res, err := approval(ctx, item, runAmend, nothing)
	if err != nil {
		return res, err
	}
	return res, flows.Run(ctx, &res, flows.ActNotify, item)
}

// unguardedParent is v2's Parent with Audit run unconditionally.
func unguardedParent(ctx workflow.Context, item string) (flows.Result, error) {
	res := flows.Result{Code: code}
	var child flows.Result
	if err := workflow.ExecuteChildWorkflow(flows.ChildOptions(ctx), flows.Child, item).Get(ctx, &child); err != nil {
		return res, err
	}
	for _, s := range child.Steps {
		res.Steps = append(res.Steps, "Child:"+s)
	}
	return res, flows.Run(ctx, &res, flows.ActAudit, item)
}
