// Package ex measures the execution-semantics items (EX-01..EX-07): progress
// after crashes, side effects, idempotent starts, persistence, determinism
// and replay. Its tests run real workflows against the dev server; worker
// and server processes are killed for real.
package ex

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/durabench/durabench/harness/ledger"
)

// StepsInput describes a multi-step workflow: Steps activities run one after
// another; after step TimerAfterStep (if > 0) the workflow sleeps Timer.
type StepsInput struct {
	Steps          int
	StepDuration   time.Duration
	TimerAfterStep int
	Timer          time.Duration
}

// StepInput is one activity call.
type StepInput struct {
	Step     int
	Duration time.Duration
}

// stepStartToClose is short, so that a step on a killed worker is retried soon.
const stepStartToClose = 3 * time.Second

// StepsWorkflow runs the steps and returns their outputs in order.
func StepsWorkflow(ctx workflow.Context, in StepsInput) ([]string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: stepStartToClose,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    200 * time.Millisecond,
			BackoffCoefficient: 1.5,
			MaximumInterval:    time.Second,
		},
	})
	var out []string
	for i := 1; i <= in.Steps; i++ {
		var s string
		if err := workflow.ExecuteActivity(ctx, StepActivityName, StepInput{Step: i, Duration: in.StepDuration}).Get(ctx, &s); err != nil {
			return out, fmt.Errorf("step %d: %w", i, err)
		}
		out = append(out, s)
		if i == in.TimerAfterStep {
			if err := workflow.Sleep(ctx, in.Timer); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// StepActivityName is the registered name of Steps.Run.
const StepActivityName = "Step"

// Steps is the activity side: every execution is written to an external
// ledger before and after its (simulated) side effect.
type Steps struct {
	Ledger string // ledger file path
	// Plant, when set, makes the execution of one step of one workflow
	// write its ledger entries twice, as if the step had run twice with no
	// fault behind it: the broken setup of EX-01.control-chaos-accounting.
	// The chaos run never sets it.
	Plant ledger.StepKey
}

// Run performs one step.
func (s *Steps) Run(ctx context.Context, in StepInput) (string, error) {
	info := activity.GetInfo(ctx)
	e := ledger.Entry{Key: info.WorkflowExecution.ID, Step: in.Step, Attempt: info.Attempt}
	times := 1
	if s.Plant == (ledger.StepKey{Key: e.Key, Step: in.Step}) && info.Attempt == 1 {
		times = 2
	}
	for range times {
		e.Phase, e.At = ledger.Start, time.Time{}
		if err := ledger.Append(s.Ledger, e); err != nil {
			return "", err
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(in.Duration): // the work itself
		}
		e.Phase, e.At = ledger.Done, time.Time{}
		if err := ledger.Append(s.Ledger, e); err != nil {
			return "", err
		}
	}
	return stepOutput(in.Step), nil
}

// plantArg formats the step Steps.Plant names, for a worker's arguments.
func plantArg(k ledger.StepKey) string { return fmt.Sprintf("%s#%d", k.Key, k.Step) }

// parsePlant reads plantArg's format; "" is no plant.
func parsePlant(arg string) (ledger.StepKey, error) {
	if arg == "" {
		return ledger.StepKey{}, nil
	}
	i := strings.LastIndexByte(arg, '#')
	if i < 1 {
		return ledger.StepKey{}, fmt.Errorf("plant %q: want workflow-id#step", arg)
	}
	step, err := strconv.Atoi(arg[i+1:])
	if err != nil || step < 1 {
		return ledger.StepKey{}, fmt.Errorf("plant %q: want workflow-id#step", arg)
	}
	return ledger.StepKey{Key: arg[:i], Step: step}, nil
}

func stepOutput(step int) string { return fmt.Sprintf("step-%d", step) }

// expectedOutputs is the result a StepsWorkflow of n steps must return.
func expectedOutputs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = stepOutput(i + 1)
	}
	return out
}

// registerSteps registers the step workflow and the activity s.
func registerSteps(r worker.Registry, s *Steps) {
	r.RegisterWorkflow(StepsWorkflow)
	r.RegisterActivityWithOptions(s.Run, activity.RegisterOptions{Name: StepActivityName})
}

// GateInput configures GateWorkflow.
type GateInput struct {
	Fail bool // return an error at once (a failed run)
	Done bool // return at once (a completed run)
}

// GateState is what GateWorkflow's "state" query returns.
type GateState struct {
	Pings   int
	Bumps   int
	Started time.Time
}

// GateWorkflow waits for a "finish" signal; it counts "ping" signals and
// "bump" updates so that a test can see how often each arrived.
func GateWorkflow(ctx workflow.Context, in GateInput) (GateState, error) {
	st := GateState{Started: workflow.Now(ctx)}
	if in.Fail {
		return st, temporal.NewApplicationError("asked to fail", "GateFailed")
	}
	if in.Done {
		return st, nil
	}
	if err := workflow.SetQueryHandler(ctx, "state", func() (GateState, error) { return st, nil }); err != nil {
		return st, err
	}
	if err := workflow.SetUpdateHandler(ctx, "bump", func(ctx workflow.Context) (int, error) {
		st.Bumps++
		return st.Bumps, nil
	}); err != nil {
		return st, err
	}
	pings := workflow.GetSignalChannel(ctx, "ping")
	finish := workflow.GetSignalChannel(ctx, "finish")
	done := false
	for !done {
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(pings, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil); st.Pings++ })
		sel.AddReceive(finish, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil); done = true })
		sel.Select(ctx)
	}
	// Let in-flight update handlers finish before returning.
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return st, err
	}
	return st, nil
}
