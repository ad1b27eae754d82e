package ex

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Names used by the replay workflows.
const (
	FlakyActivityName = "Flaky"
	eventSignal       = "event"
	addUpdate         = "add"
)

// SimpleWorkflow runs an activity, a timer and another activity.
func SimpleWorkflow(ctx workflow.Context, n int) (string, error) {
	ctx = shortActivities(ctx)
	var a, b int
	if err := workflow.ExecuteActivity(ctx, TransformActivityName, n).Get(ctx, &a); err != nil {
		return "", err
	}
	if err := workflow.Sleep(ctx, 50*time.Millisecond); err != nil {
		return "", err
	}
	if err := workflow.ExecuteActivity(ctx, TransformActivityName, a).Get(ctx, &b); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d->%d->%d", n, a, b), nil
}

// SignalsWorkflow interleaves three sources until it has received signals
// "event" signals: a timer that it re-arms each time it fires, an activity
// started at each firing, and the signals. It returns the order in which
// they came.
func SignalsWorkflow(ctx workflow.Context, signals int) ([]string, error) {
	ctx = shortActivities(ctx)
	var order []string
	received, ticks := 0, 0
	sel := workflow.NewSelector(ctx)
	var tick func()
	tick = func() {
		ticks++
		n := ticks
		sel.AddFuture(workflow.ExecuteActivity(ctx, TransformActivityName, n), func(f workflow.Future) {
			var v int
			_ = f.Get(ctx, &v)
			order = append(order, fmt.Sprintf("activity-%d=%d", n, v))
		})
		sel.AddFuture(workflow.NewTimer(ctx, 300*time.Millisecond), func(workflow.Future) {
			order = append(order, fmt.Sprintf("timer-%d", n))
			tick()
		})
	}
	tick()
	sel.AddReceive(workflow.GetSignalChannel(ctx, eventSignal), func(c workflow.ReceiveChannel, _ bool) {
		var s string
		c.Receive(ctx, &s)
		order = append(order, "signal-"+s)
		received++
	})
	for received < signals {
		sel.Select(ctx)
	}
	return order, nil
}

// ParentWorkflow runs n ChildWorkflows in parallel, with ids derived from its
// own, and returns their results in order.
func ParentWorkflow(ctx workflow.Context, n int) ([]int, error) {
	parent := workflow.GetInfo(ctx).WorkflowExecution.ID
	futures := make([]workflow.Future, n)
	for i := range futures {
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID: fmt.Sprintf("%s-child-%d", parent, i), WorkflowExecutionTimeout: time.Minute,
		})
		futures[i] = workflow.ExecuteChildWorkflow(cctx, ChildWorkflow, i+1)
	}
	out := make([]int, n)
	for i, f := range futures {
		if err := f.Get(ctx, &out[i]); err != nil {
			return out, err
		}
	}
	return out, nil
}

// ChainState is handed from one run of ChainWorkflow to the next.
type ChainState struct {
	Run   int
	Runs  int
	Total int
	Items []string
}

// ChainWorkflow folds one activity result into its state per run and
// continues as new until it has run Runs times.
func ChainWorkflow(ctx workflow.Context, st ChainState) (ChainState, error) {
	var v int
	if err := workflow.ExecuteActivity(shortActivities(ctx), TransformActivityName, st.Run+1).Get(ctx, &v); err != nil {
		return st, err
	}
	st.Run++
	st.Total += v
	st.Items = append(st.Items, fmt.Sprintf("run%d=%d", st.Run, v))
	if st.Run < st.Runs {
		return st, workflow.NewContinueAsNewError(ctx, ChainWorkflow, st)
	}
	return st, nil
}

// UpdatesWorkflow sums the values of "add" updates, whose validator rejects
// values that are not positive, until a "finish" signal.
func UpdatesWorkflow(ctx workflow.Context) (int, error) {
	total := 0
	if err := workflow.SetUpdateHandlerWithOptions(ctx, addUpdate, func(ctx workflow.Context, n int) (int, error) {
		total += n
		return total, nil
	}, workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, n int) error {
		if n <= 0 {
			return fmt.Errorf("add %d: only positive values are accepted", n)
		}
		return nil
	}}); err != nil {
		return 0, err
	}
	workflow.GetSignalChannel(ctx, finishSignal).Receive(ctx, nil)
	err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	return total, err
}

// Kinds of corpus steps.
const (
	stepTimer = iota
	stepActivity
	stepChild
	stepSignal
	stepKinds
)

// CorpusStep is one step of a randomized corpus workflow.
type CorpusStep struct {
	Kind     int
	Millis   int // timer duration
	Failures int // attempts of the Flaky activity that fail (2 exhausts its retries)
}

// CorpusPlan derives a corpus workflow's steps from its seed. It is a pure
// function, so the workflow and the test that sends its signals agree.
func CorpusPlan(seed int64) []CorpusStep {
	r := rand.New(rand.NewSource(seed))
	steps := make([]CorpusStep, 3+r.Intn(3))
	for i := range steps {
		steps[i] = CorpusStep{Kind: r.Intn(stepKinds), Millis: 1 + r.Intn(30), Failures: r.Intn(3)}
	}
	return steps
}

// CorpusWorkflow runs the plan of its seed: timers, Flaky activities (which
// may exhaust their two attempts), child workflows, and waits for "event"
// signals. It returns what each step produced.
func CorpusWorkflow(ctx workflow.Context, seed int64) ([]string, error) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 50 * time.Millisecond, BackoffCoefficient: 1, MaximumAttempts: 2,
		},
	})
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowExecutionTimeout: time.Minute})
	signals := workflow.GetSignalChannel(ctx, eventSignal)
	var out []string
	for i, step := range CorpusPlan(seed) {
		switch step.Kind {
		case stepTimer:
			if err := workflow.Sleep(ctx, time.Duration(step.Millis)*time.Millisecond); err != nil {
				return out, err
			}
			out = append(out, fmt.Sprintf("timer %dms", step.Millis))
		case stepActivity:
			var attempts int32
			err := workflow.ExecuteActivity(actx, FlakyActivityName, step.Failures).Get(ctx, &attempts)
			var appErr *temporal.ApplicationError
			switch {
			case err == nil:
				out = append(out, fmt.Sprintf("activity ok after %d attempt(s)", attempts))
			case errors.As(err, &appErr):
				out = append(out, "activity failed: "+appErr.Message())
			default:
				return out, err
			}
		case stepChild:
			var v int
			if err := workflow.ExecuteChildWorkflow(cctx, ChildWorkflow, i).Get(ctx, &v); err != nil {
				return out, err
			}
			out = append(out, fmt.Sprintf("child %d", v))
		case stepSignal:
			var s string
			signals.Receive(ctx, &s)
			out = append(out, "signal "+s)
		}
	}
	return out, nil
}

// Flaky fails its first failures attempts and returns the attempt that
// succeeded.
func Flaky(ctx context.Context, failures int32) (int32, error) {
	attempt := activity.GetInfo(ctx).Attempt
	if attempt <= failures {
		return 0, temporal.NewApplicationError(fmt.Sprintf("attempt %d fails", attempt), "Flaky")
	}
	return attempt, nil
}
