// Package v2 is the second version of the VR workflows. Each change from v1
// is guarded by workflow.GetVersion, so that v1 histories replay under it and
// new runs take the new branch:
//
//   - Approval notifies after fulfilling (change "notify-after-approval"),
//   - Order checks for fraud before charging (change "fraud-check"),
//   - Parent audits after its child (change "audit-after-child").
package v2

import (
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/durabench/durabench/scenarios/vr/flows"
)

// Code is what this version's workflows put in flows.Result.Code and
// flows.LoopState.Codes.
const Code = "v2"

// Change ids passed to workflow.GetVersion; the version of the new branch is 1.
const (
	ChangeNotify = "notify-after-approval"
	ChangeFraud  = "fraud-check"
	ChangeAudit  = "audit-after-child"
)

// Register registers this version's workflows and every activity of
// flows.Activities with r, under the names in package flows.
func Register(r worker.Registry) {
	RegisterWorkflows(r)
	flows.RegisterActivities(r)
}

// RegisterWorkflows registers this version's workflows only, as a
// worker.WorkflowReplayer needs.
func RegisterWorkflows(r worker.WorkflowRegistry) {
	for name, fn := range map[string]any{
		flows.Approval: Approval, flows.Order: Order, flows.Parent: Parent,
		flows.Child: Child, flows.Loop: Loop, flows.Quick: Quick,
	} {
		r.RegisterWorkflowWithOptions(fn, workflow.RegisterOptions{Name: name})
	}
}

// Approval is v1's Approval with a Notify step after fulfilling. The version
// is decided when the run starts, before it waits: a run that v1 started and
// that was waiting for approval when v2 was deployed replays without the
// marker, gets DefaultVersion and finishes along the v1 path.
func Approval(ctx workflow.Context, item string) (flows.Result, error) {
	res := flows.Result{Code: Code}
	notify := workflow.GetVersion(ctx, ChangeNotify, workflow.DefaultVersion, 1)
	amendments := 0
	if err := workflow.SetUpdateHandler(ctx, flows.UpdateAmend, func(ctx workflow.Context, note string) (int, error) {
		if err := flows.Run(ctx, &res, flows.ActAmend, note); err != nil {
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
	if err := flows.Run(ctx, &res, flows.ActFulfil, item); err != nil {
		return res, err
	}
	if notify == 1 {
		return res, flows.Run(ctx, &res, flows.ActNotify, approver)
	}
	return res, nil
}

// Order is v1's Order with a FraudCheck step before charging, versioned
// where the change is.
func Order(ctx workflow.Context, item string) (flows.Result, error) {
	res := flows.Result{Code: Code}
	if err := flows.Run(ctx, &res, flows.ActReserve, item); err != nil {
		return res, err
	}
	if workflow.GetVersion(ctx, ChangeFraud, workflow.DefaultVersion, 1) == 1 {
		if err := flows.Run(ctx, &res, flows.ActFraudCheck, item); err != nil {
			return res, err
		}
	}
	if err := flows.Run(ctx, &res, flows.ActCharge, item); err != nil {
		return res, err
	}
	if err := workflow.Sleep(ctx, flows.SettleTimer); err != nil {
		return res, err
	}
	return res, flows.Run(ctx, &res, flows.ActShip, item)
}

// Parent is v1's Parent with an Audit step after the child.
func Parent(ctx workflow.Context, item string) (flows.Result, error) {
	res := flows.Result{Code: Code}
	var child flows.Result
	if err := workflow.ExecuteChildWorkflow(flows.ChildOptions(ctx), flows.Child, item).Get(ctx, &child); err != nil {
		return res, err
	}
	for _, s := range child.Steps {
		res.Steps = append(res.Steps, "Child:"+s)
	}
	if workflow.GetVersion(ctx, ChangeAudit, workflow.DefaultVersion, 1) == 1 {
		return res, flows.Run(ctx, &res, flows.ActAudit, item)
	}
	return res, nil
}

// Child packs item, as in v1.
func Child(ctx workflow.Context, item string) (flows.Result, error) {
	res := flows.Result{Code: Code}
	return res, flows.Run(ctx, &res, flows.ActPack, item)
}

// Loop is v1's Loop; only the code it records in st.Codes differs.
func Loop(ctx workflow.Context, st flows.LoopState) (flows.LoopState, error) {
	return flows.LoopRun(ctx, st, Code)
}

// Quick runs one activity and returns, as in v1.
func Quick(ctx workflow.Context, item string) (flows.Result, error) {
	res := flows.Result{Code: Code}
	return res, flows.Run(ctx, &res, flows.ActWork, item)
}
