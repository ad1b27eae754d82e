// Package v1 is the first version of the VR workflows: the code whose
// histories are committed under fixtures/histories/vr and that v2 must keep
// replaying.
package v1

import (
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/durabench/durabench/scenarios/vr/flows"
)

// Code is what this version's workflows put in flows.Result.Code and
// flows.LoopState.Codes.
const Code = "v1"

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

// Approval submits item, accepts UpdateAmend updates (each runs Amend) until
// SignalApprove arrives, then fulfils.
func Approval(ctx workflow.Context, item string) (flows.Result, error) {
	res := flows.Result{Code: Code}
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
	return res, flows.Run(ctx, &res, flows.ActFulfil, item)
}

// Order reserves, charges, waits flows.SettleTimer and ships.
func Order(ctx workflow.Context, item string) (flows.Result, error) {
	res := flows.Result{Code: Code}
	if err := flows.Run(ctx, &res, flows.ActReserve, item); err != nil {
		return res, err
	}
	if err := flows.Run(ctx, &res, flows.ActCharge, item); err != nil {
		return res, err
	}
	if err := workflow.Sleep(ctx, flows.SettleTimer); err != nil {
		return res, err
	}
	return res, flows.Run(ctx, &res, flows.ActShip, item)
}

// Parent runs Child on item and returns the child's steps, each prefixed
// with "Child:".
func Parent(ctx workflow.Context, item string) (flows.Result, error) {
	res := flows.Result{Code: Code}
	var child flows.Result
	if err := workflow.ExecuteChildWorkflow(flows.ChildOptions(ctx), flows.Child, item).Get(ctx, &child); err != nil {
		return res, err
	}
	for _, s := range child.Steps {
		res.Steps = append(res.Steps, "Child:"+s)
	}
	return res, nil
}

// Child packs item.
func Child(ctx workflow.Context, item string) (flows.Result, error) {
	res := flows.Result{Code: Code}
	return res, flows.Run(ctx, &res, flows.ActPack, item)
}

// Loop runs st.Every iterations, each waiting for SignalTick, then continues
// as new carrying st, until st.Iterations reaches st.Target. Ticks already
// received when it continues as new are carried in st.Pending, not lost.
func Loop(ctx workflow.Context, st flows.LoopState) (flows.LoopState, error) {
	return flows.LoopRun(ctx, st, Code)
}

// Quick runs one activity and returns.
func Quick(ctx workflow.Context, item string) (flows.Result, error) {
	res := flows.Result{Code: Code}
	return res, flows.Run(ctx, &res, flows.ActWork, item)
}
