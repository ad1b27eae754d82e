package op

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// OP-01's workflows. deployFlow is the reference scenario that runs on the
// embedded binary and, unchanged, on an external server: one activity, then
// the result. deployAwait keeps a run open across a server restart: an
// activity, a wait for a signal, a second activity. Each result names what
// every step saw (its attempt too), so a run that lost or redid a step
// cannot return the expected value.

// Names of OP-01's workflows, activity and signal as registered.
const (
	deployFlowType  = "deployFlow"
	deployAwaitType = "deployAwait"
	deployStepType  = "deployStep"
	deploySignal    = "deploy-go"
)

// deployActivity bounds one attempt of deployStep, a no-op.
var deployActivity = workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second}

// DeployFlow runs deployStep once and returns its output.
func DeployFlow(ctx workflow.Context, name string) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, deployActivity)
	var out string
	err := workflow.ExecuteActivity(ctx, deployStepType, "step", name).Get(ctx, &out)
	return out, err
}

// DeployAwait runs deployStep, waits for deploySignal, runs deployStep
// again and returns what the three saw.
func DeployAwait(ctx workflow.Context, name string) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, deployActivity)
	var first, second, sig string
	if err := workflow.ExecuteActivity(ctx, deployStepType, "before", name).Get(ctx, &first); err != nil {
		return "", err
	}
	workflow.GetSignalChannel(ctx, deploySignal).Receive(ctx, &sig)
	if err := workflow.ExecuteActivity(ctx, deployStepType, "after", name).Get(ctx, &second); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s|%s|%s", first, sig, second), nil
}

// DeployStep is a no-op activity naming its step, its input and its attempt.
func DeployStep(ctx context.Context, step, name string) (string, error) {
	return fmt.Sprintf("%s:%s@%d", step, name, activity.GetInfo(ctx).Attempt), nil
}

// deployFlowWant is deployFlow's result for name when its step ran once.
func deployFlowWant(name string) string { return "step:" + name + "@1" }

// deployAwaitWant is deployAwait's result for name and signal value sig
// when each step ran once.
func deployAwaitWant(name, sig string) string {
	return fmt.Sprintf("before:%s@1|%s|after:%s@1", name, sig, name)
}

func registerDeploy(w worker.Registry) {
	w.RegisterWorkflowWithOptions(DeployFlow, workflow.RegisterOptions{Name: deployFlowType})
	w.RegisterWorkflowWithOptions(DeployAwait, workflow.RegisterOptions{Name: deployAwaitType})
	w.RegisterActivityWithOptions(DeployStep, activity.RegisterOptions{Name: deployStepType})
}
