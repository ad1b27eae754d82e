package rt

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Breaker states.
const (
	BreakerClosed   = "closed"
	BreakerOpen     = "open"
	BreakerHalfOpen = "half-open"
)

// BreakerConfig configures BreakerWorkflow.
type BreakerConfig struct {
	Threshold int           // consecutive failures that open the breaker
	OpenFor   time.Duration // how long it stays open before letting one probe through
}

// BreakerState is what the "state" query returns.
type BreakerState struct {
	State       string
	Failures    int      // consecutive failures while closed
	Rejected    int      // calls refused while open or while a probe was in flight
	Transitions []string // e.g. "closed->open"
	OpenedAt    time.Time
	HalfOpenAt  time.Time
}

// Permit is the answer to an "acquire" update.
type Permit struct {
	Allowed bool
	Probe   bool // the one call let through while half-open
	State   string
}

// BreakerWorkflow is a circuit breaker kept in an entity workflow, shared by
// every caller that asks it through updates: "acquire" before a call,
// "report" (true: success) after it. It opens after Threshold consecutive
// failures, half-opens after OpenFor, lets one probe through and closes on
// its success. It runs until the "stop" signal.
func BreakerWorkflow(ctx workflow.Context, cfg BreakerConfig) (BreakerState, error) {
	st := BreakerState{State: BreakerClosed}
	probing := false
	move := func(to string) {
		st.Transitions = append(st.Transitions, st.State+"->"+to)
		st.State = to
	}
	open := func(ctx workflow.Context) {
		move(BreakerOpen)
		st.OpenedAt, st.Failures = workflow.Now(ctx), 0
		workflow.Go(ctx, func(ctx workflow.Context) {
			if workflow.Sleep(ctx, cfg.OpenFor) == nil && st.State == BreakerOpen {
				move(BreakerHalfOpen)
				st.HalfOpenAt = workflow.Now(ctx)
			}
		})
	}
	if err := workflow.SetQueryHandler(ctx, "state", func() (BreakerState, error) { return st, nil }); err != nil {
		return st, err
	}
	if err := workflow.SetUpdateHandler(ctx, "acquire", func(ctx workflow.Context) (Permit, error) {
		switch {
		case st.State == BreakerClosed:
			return Permit{Allowed: true, State: st.State}, nil
		case st.State == BreakerHalfOpen && !probing:
			probing = true
			return Permit{Allowed: true, Probe: true, State: st.State}, nil
		}
		st.Rejected++
		return Permit{State: st.State}, nil
	}); err != nil {
		return st, err
	}
	if err := workflow.SetUpdateHandler(ctx, "report", func(ctx workflow.Context, ok bool) (string, error) {
		switch st.State {
		case BreakerClosed:
			st.Failures++
			if ok {
				st.Failures = 0
			} else if st.Failures >= cfg.Threshold {
				open(ctx)
			}
		case BreakerHalfOpen:
			probing = false
			if ok {
				move(BreakerClosed)
			} else {
				open(ctx)
			}
		}
		return st.State, nil
	}); err != nil {
		return st, err
	}
	workflow.GetSignalChannel(ctx, "stop").Receive(ctx, nil)
	err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	return st, err
}

// Guarded is an activity that calls a dependency through the breaker kept
// by the workflow job.Breaker: refused calls never reach the dependency and
// fail with the non-retryable type "BreakerOpen".
type Guarded struct {
	Client     client.Client
	Dependency func(ctx context.Context) error
}

// Call is one guarded call.
func (g *Guarded) Call(ctx context.Context, job Job) (string, error) {
	breaker := job.Breaker
	var permit Permit
	if err := g.update(ctx, breaker, "acquire", &permit); err != nil {
		return "", err
	}
	if !permit.Allowed {
		return "", temporal.NewNonRetryableApplicationError("breaker is "+permit.State, "BreakerOpen", nil)
	}
	callErr := g.Dependency(ctx)
	var state string
	if err := g.update(ctx, breaker, "report", &state, callErr == nil); err != nil {
		return "", err
	}
	if callErr != nil {
		return "", temporal.NewNonRetryableApplicationError(callErr.Error(), "DependencyFailed", callErr)
	}
	return fmt.Sprintf("called (probe %v), breaker now %s", permit.Probe, state), nil
}

func (g *Guarded) update(ctx context.Context, id, name string, out any, args ...any) error {
	h, err := g.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: id, UpdateName: name, Args: args, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return fmt.Errorf("breaker %s %s: %w", id, name, err)
	}
	return h.Get(ctx, out)
}
