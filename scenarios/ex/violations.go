package ex

import (
	"context"

	"go.temporal.io/sdk/workflow"
)

// Names of OrderWorkflow and its activities. A changed version of this
// workflow (fixtures/nondeterminism.OrderWorkflowChanged) registers under the
// same name.
const (
	OrderWorkflowName = "OrderWorkflow"
	ReserveActivity   = "Reserve"
	ChargeActivity    = "Charge"
	ValidateActivity  = "Validate"
	goSignal          = "go"
)

// OrderWorkflow reserves, waits for a "go" signal, then charges; it returns
// the steps done.
func OrderWorkflow(ctx workflow.Context) ([]string, error) {
	ctx = shortActivities(ctx)
	var done []string
	var s string
	if err := workflow.ExecuteActivity(ctx, ReserveActivity).Get(ctx, &s); err != nil {
		return done, err
	}
	done = append(done, s)
	workflow.GetSignalChannel(ctx, goSignal).Receive(ctx, nil)
	if err := workflow.ExecuteActivity(ctx, ChargeActivity).Get(ctx, &s); err != nil {
		return done, err
	}
	return append(done, s), nil
}

// orderStep is an order activity that returns its own name.
func orderStep(name string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return name, nil }
}

// PanicValue is what PanicWorkflow panics with.
const PanicValue = "planted panic in workflow code"

// PanicWorkflow panics in its first workflow task.
func PanicWorkflow(ctx workflow.Context) error {
	panic(PanicValue)
}
