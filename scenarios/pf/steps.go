package pf

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Step kinds: what one "step" update runs.
const (
	kindNone     = "none"           // nothing: the cost of the update round trip itself
	kindActivity = "activity"       // one empty activity
	kindLocal    = "local-activity" // one empty local activity
)

const (
	stepUpdate     = "step"
	stopSignal     = "stop"
	emptyActivity  = "PFEmpty"
	loadWorkflow   = "PFLoad"
	fanOutName     = "PFFanOut"
	fanParentName  = "PFFanParent"
	fanFuturesName = "PFFanFutures"
)

// stepWorkflowName gives each kind its own workflow type, so that the SDK's
// workflow-task metrics (tagged by workflow type) split by kind.
func stepWorkflowName(kind string) string { return "PFStep-" + kind }

// DelayEnv is the documented switch that injects a delay into the activity
// path: every empty activity and local activity sleeps this long (a Go
// duration such as "20ms"). It exists to show that `durabench compare`
// catches a slower step; never set it for a real evaluation.
const DelayEnv = "DURABENCH_INJECT_STEP_DELAY"

// injectedDelay reads DelayEnv; empty means none.
func injectedDelay() (time.Duration, error) {
	v := os.Getenv(DelayEnv)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s=%q: must be a non-negative Go duration such as 20ms", DelayEnv, v)
	}
	return d, nil
}

// steps holds the empty activity and its injected delay.
type steps struct{ delay time.Duration }

// Empty does nothing (beyond the injected delay): what is measured is the
// platform's cost of running a step.
func (s steps) Empty(context.Context) error {
	if s.delay > 0 {
		time.Sleep(s.delay) // the injected fault itself, not synchronisation
	}
	return nil
}

// StepWorkflow runs one step per "step" update until the "stop" signal.
func StepWorkflow(ctx workflow.Context) error {
	err := workflow.SetUpdateHandler(ctx, stepUpdate, func(ctx workflow.Context, kind string) error {
		switch kind {
		case kindNone:
			return nil
		case kindActivity:
			return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
				StartToCloseTimeout: 30 * time.Second,
			}), emptyActivity).Get(ctx, nil)
		case kindLocal:
			return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
				StartToCloseTimeout: 30 * time.Second,
			}), emptyActivity).Get(ctx, nil)
		}
		return fmt.Errorf("step kind %q: must be %s, %s or %s", kind, kindNone, kindActivity, kindLocal)
	})
	if err != nil {
		return err
	}
	workflow.GetSignalChannel(ctx, stopSignal).Receive(ctx, nil)
	return workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
}

// LoadWorkflow is background load: an empty activity, then a timer of
// period, until the "stop" signal.
func LoadWorkflow(ctx workflow.Context, period time.Duration) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second})
	stop := workflow.GetSignalChannel(ctx, stopSignal)
	for !stop.ReceiveAsync(nil) {
		if err := workflow.ExecuteActivity(ctx, emptyActivity).Get(ctx, nil); err != nil {
			return err
		}
		stopped := false
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(stop, func(c workflow.ReceiveChannel, _ bool) {
			c.Receive(ctx, nil)
			stopped = true
		})
		sel.AddFuture(workflow.NewTimer(ctx, period), func(workflow.Future) {})
		sel.Select(ctx)
		if stopped {
			return nil
		}
	}
	return nil
}

// registerSteps registers the step, load and fan-out workflows and the
// empty activity with the injected delay.
func registerSteps(r worker.Registry, delay time.Duration, rec *fanRecorder) {
	for _, k := range []string{kindNone, kindActivity, kindLocal} {
		r.RegisterWorkflowWithOptions(StepWorkflow, workflow.RegisterOptions{Name: stepWorkflowName(k)})
	}
	r.RegisterWorkflowWithOptions(LoadWorkflow, workflow.RegisterOptions{Name: loadWorkflow})
	r.RegisterWorkflowWithOptions(FanOutWorkflow, workflow.RegisterOptions{Name: fanOutName})
	r.RegisterWorkflowWithOptions(FanParentWorkflow, workflow.RegisterOptions{Name: fanParentName})
	r.RegisterWorkflowWithOptions(FanFuturesWorkflow, workflow.RegisterOptions{Name: fanFuturesName})
	r.RegisterActivityWithOptions(steps{delay}.Empty, activity.RegisterOptions{Name: emptyActivity})
	r.RegisterActivityWithOptions(rec.recordCompletion, activity.RegisterOptions{Name: fanActivity})
}
