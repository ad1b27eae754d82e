package ex

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Names shared by the state workflows.
const (
	TransformActivityName = "Transform"
	stateQuery            = "state"
	advanceSignal         = "advance"
	inputSignal           = "input"
	finishSignal          = "finish"
)

// Transform is a pure activity: the same input always gives the same output,
// so that two runs fed the same inputs reach the same state.
func Transform(_ context.Context, n int) (int, error) {
	return n*n%11 + n, nil
}

// shortActivities gives activities a short timeout and fast retries.
func shortActivities(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 50 * time.Millisecond, BackoffCoefficient: 1},
	})
}

// State is the state of StateWorkflow: a counter, a slice and a map.
type State struct {
	Step    int
	Counter int
	Items   []string
	Tags    map[string]int
}

// add folds one transformed value into the state.
func (s *State) add(v int) {
	s.Counter += v
	s.Items = append(s.Items, fmt.Sprintf("item-%d", v))
	s.Tags[fmt.Sprintf("mod%d", v%3)]++
}

// StateWorkflow advances one step per "advance" signal: each step runs the
// Transform activity and folds its result into the state, which the "state"
// query returns. It returns the state after the last step.
func StateWorkflow(ctx workflow.Context, steps int) (State, error) {
	st := State{Tags: map[string]int{}}
	if err := workflow.SetQueryHandler(ctx, stateQuery, func() (State, error) { return st, nil }); err != nil {
		return st, err
	}
	ctx = shortActivities(ctx)
	advance := workflow.GetSignalChannel(ctx, advanceSignal)
	for st.Step < steps {
		advance.Receive(ctx, nil)
		var v int
		if err := workflow.ExecuteActivity(ctx, TransformActivityName, st.Step+1).Get(ctx, &v); err != nil {
			return st, err
		}
		st.Step++
		st.add(v)
	}
	return st, nil
}

// Kinds of commands and markers CommandsWorkflow issues, as counted in
// CommandsState.Issued.
const (
	kindActivity          = "activity"
	kindLocalActivity     = "local-activity-marker"
	kindTimer             = "timer"
	kindSideEffect        = "side-effect-marker"
	kindMutableSideEffect = "mutable-side-effect-marker"
	kindVersion           = "version-marker"
	kindChild             = "child-workflow"
	kindSignal            = "signal"
)

// CommandsState is what CommandsWorkflow has built and which commands it
// issued, by kind.
type CommandsState struct {
	State
	Issued map[string]int
}

// CommandsWorkflow runs rounds that each issue every kind of command and
// marker (activity, local activity, timer, side effect, mutable side effect,
// child workflow) and consume one "input" signal; a version marker comes
// first. Its state depends only on its input and the signals, so two runs fed
// the same inputs reach the same state.
func CommandsWorkflow(ctx workflow.Context, rounds int) (CommandsState, error) {
	st := CommandsState{State: State{Tags: map[string]int{}}, Issued: map[string]int{}}
	if err := workflow.SetQueryHandler(ctx, stateQuery, func() (CommandsState, error) { return st, nil }); err != nil {
		return st, err
	}
	ctx = shortActivities(ctx)
	ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 5 * time.Second})
	ctx = workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowExecutionTimeout: time.Minute})
	version := workflow.GetVersion(ctx, "commands-change", workflow.DefaultVersion, 1)
	st.Issued[kindVersion]++
	inputs := workflow.GetSignalChannel(ctx, inputSignal)
	lastConfig := -1
	for round := 1; round <= rounds; round++ {
		var se, config, act, local, child int
		if err := workflow.SideEffect(ctx, func(workflow.Context) any { return round * 10 }).Get(&se); err != nil {
			return st, err
		}
		st.Issued[kindSideEffect]++
		// The configuration changes every other round; a marker is recorded only on change.
		if err := workflow.MutableSideEffect(ctx, "config", func(workflow.Context) any { return (round + 1) / 2 },
			func(a, b any) bool { return a.(int) == b.(int) }).Get(&config); err != nil {
			return st, err
		}
		if config != lastConfig {
			st.Issued[kindMutableSideEffect]++
			lastConfig = config
		}
		if err := workflow.ExecuteActivity(ctx, TransformActivityName, round).Get(ctx, &act); err != nil {
			return st, err
		}
		st.Issued[kindActivity]++
		if err := workflow.ExecuteLocalActivity(ctx, TransformActivityName, round+100).Get(ctx, &local); err != nil {
			return st, err
		}
		st.Issued[kindLocalActivity]++
		if err := workflow.Sleep(ctx, 10*time.Millisecond); err != nil {
			return st, err
		}
		st.Issued[kindTimer]++
		if err := workflow.ExecuteChildWorkflow(ctx, ChildWorkflow, round).Get(ctx, &child); err != nil {
			return st, err
		}
		st.Issued[kindChild]++
		var input string
		inputs.Receive(ctx, &input)
		st.Issued[kindSignal]++
		st.Step = round
		st.add(se + config + act + local + child + int(version))
		st.Items = append(st.Items, input)
	}
	return st, nil
}

// ChildWorkflow transforms n through one activity.
func ChildWorkflow(ctx workflow.Context, n int) (int, error) {
	var v int
	err := workflow.ExecuteActivity(shortActivities(ctx), TransformActivityName, n).Get(ctx, &v)
	return v, err
}

// LongInput sizes LongHistoryWorkflow.
type LongInput struct {
	Batches  int
	PerBatch int
}

// LongState is what LongHistoryWorkflow's "state" query returns.
type LongState struct {
	Markers int
	Sum     int
}

// LongHistoryWorkflow grows a long history cheaply: batches of side-effect
// markers, each batch ended by a one-millisecond timer (which closes the
// workflow task, keeping each completion small). It then waits for "finish".
func LongHistoryWorkflow(ctx workflow.Context, in LongInput) (LongState, error) {
	var st LongState
	if err := workflow.SetQueryHandler(ctx, stateQuery, func() (LongState, error) { return st, nil }); err != nil {
		return st, err
	}
	for b := 0; b < in.Batches; b++ {
		for i := 0; i < in.PerBatch; i++ {
			n := st.Markers
			var v int
			if err := workflow.SideEffect(ctx, func(workflow.Context) any { return n % 97 }).Get(&v); err != nil {
				return st, err
			}
			st.Markers++
			st.Sum += v
		}
		if err := workflow.Sleep(ctx, time.Millisecond); err != nil {
			return st, err
		}
	}
	workflow.GetSignalChannel(ctx, finishSignal).Receive(ctx, nil)
	return st, nil
}
