package wf

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// SleepReport is when a sleeping workflow went to sleep and resumed, in
// workflow time.
type SleepReport struct {
	Slept, Resumed time.Time
}

// SleepWorkflow sleeps d on a durable timer.
func SleepWorkflow(ctx workflow.Context, d time.Duration) (SleepReport, error) {
	r := SleepReport{Slept: workflow.Now(ctx)}
	err := workflow.Sleep(ctx, d)
	r.Resumed = workflow.Now(ctx)
	return r, err
}

// cancelTimerSignal tells TimerCancelWorkflow to cancel its timer.
const cancelTimerSignal = "cancel-timer"

// TimerCancelReport is the path TimerCancelWorkflow took and what its
// cancelled timer returned.
type TimerCancelReport struct {
	Path     string // "timer" or "signal"
	TimerErr string // the timer's error once cancelled: "CanceledError" or its text
}

// TimerCancelWorkflow waits for a timer of d or a signal; on the signal it
// cancels the timer and takes the signal path.
func TimerCancelWorkflow(ctx workflow.Context, d time.Duration) (TimerCancelReport, error) {
	var r TimerCancelReport
	timerCtx, cancel := workflow.WithCancel(ctx)
	timer := workflow.NewTimer(timerCtx, d)
	sel := workflow.NewSelector(ctx)
	sel.AddFuture(timer, func(workflow.Future) { r.Path = "timer" })
	sel.AddReceive(workflow.GetSignalChannel(ctx, cancelTimerSignal), func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(ctx, nil)
		r.Path = "signal"
		cancel()
	})
	sel.Select(ctx)
	if r.Path == "signal" {
		var ce *temporal.CanceledError
		if err := timer.Get(ctx, nil); errors.As(err, &ce) {
			r.TimerErr = "CanceledError"
		} else if err != nil {
			r.TimerErr = err.Error()
		}
	}
	return r, nil
}

// ManyTimersWorkflow starts one timer per duration, all at once, and waits
// for every one to fire.
func ManyTimersWorkflow(ctx workflow.Context, ds []time.Duration) error {
	timers := make([]workflow.Future, len(ds))
	for i, d := range ds {
		timers[i] = workflow.NewTimer(ctx, d)
	}
	for _, f := range timers {
		if err := f.Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// ScheduledWorkflow is the action of every WF-05 schedule. With hold it
// runs until a "finish" signal, so that runs overlap; it gives up after
// five minutes so that nothing outlives the test.
func ScheduledWorkflow(ctx workflow.Context, hold bool) (string, error) {
	if hold {
		workflow.GetSignalChannel(ctx, finishSignal).ReceiveWithTimeout(ctx, 5*time.Minute, nil)
	}
	return workflow.GetInfo(ctx).WorkflowExecution.ID, nil
}
