package wf

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Order is the typed input of a pricing step.
type Order struct {
	ID    string
	Qty   int
	Price float64
}

// Quote is the typed output of a pricing step; Where says which worker ran
// it, on which task queue, and whether as a local activity.
type Quote struct {
	OrderID string
	Total   float64
	Where   string
	Attempt int32
}

// Steps holds WF-01's activities; each worker of a test gets its own, named
// so that the test sees where a step ran.
type Steps struct {
	Name   string
	Probe  *Probe
	Tokens chan []byte // task tokens of steps left pending for asynchronous completion
}

func (s *Steps) quote(ctx context.Context, o Order) Quote {
	info := activity.GetInfo(ctx)
	return Quote{
		OrderID: o.ID, Total: float64(o.Qty) * o.Price, Attempt: info.Attempt,
		Where: fmt.Sprintf("%s/%s/local=%v", s.Name, info.TaskQueue, info.IsLocalActivity),
	}
}

// PriceOrder prices an order at once.
func (s *Steps) PriceOrder(ctx context.Context, o Order) (Quote, error) {
	return s.quote(ctx, o), nil
}

// PriceOrderSlowly takes 300ms (the work itself) to price an order.
func (s *Steps) PriceOrderSlowly(ctx context.Context, o Order) (Quote, error) {
	i := s.Probe.begin(o.ID, activity.GetInfo(ctx).Attempt)
	err := work(ctx, 300*time.Millisecond, false)
	s.Probe.end(i, err != nil)
	return s.quote(ctx, o), err
}

// PriceOrderLater hands its task token to the test and leaves the result to
// be completed from outside.
func (s *Steps) PriceOrderLater(ctx context.Context, o Order) (Quote, error) {
	select {
	case s.Tokens <- activity.GetInfo(ctx).TaskToken:
	case <-ctx.Done():
		return Quote{}, ctx.Err()
	}
	return Quote{}, activity.ErrResultPending
}

// FlakyPrice fails until attempt okAt, then takes hold (the work itself) and
// prices the order.
func (s *Steps) FlakyPrice(ctx context.Context, o Order, okAt int32, hold time.Duration) (Quote, error) {
	attempt := activity.GetInfo(ctx).Attempt
	i := s.Probe.begin(o.ID, attempt)
	if attempt < okAt {
		s.Probe.end(i, false)
		return Quote{}, fmt.Errorf("attempt %d of %s fails by design", attempt, o.ID)
	}
	err := work(ctx, hold, false)
	s.Probe.end(i, err != nil)
	return s.quote(ctx, o), err
}

// DynamicStep answers calls to activity types no worker registered: it
// reports the type name it was called by and the raw arguments it decoded.
func DynamicStep(ctx context.Context, args converter.EncodedValues) (string, error) {
	var (
		label string
		n     int
	)
	if err := args.Get(&label, &n); err != nil {
		return "", fmt.Errorf("decode raw arguments: %w", err)
	}
	return fmt.Sprintf("%s(%q, %d)", activity.GetInfo(ctx).ActivityType.Name, label, n), nil
}

// steps names WF-01's activities in workflow code; local activities are
// called by their registered name so that the worker's own Steps runs them.
var steps *Steps

var stepOptions = workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second}

// PriceWorkflow runs one pricing step synchronously: call and wait.
func PriceWorkflow(ctx workflow.Context, o Order) (Quote, error) {
	ctx = workflow.WithActivityOptions(ctx, stepOptions)
	var q Quote
	err := workflow.ExecuteActivity(ctx, steps.PriceOrder, o).Get(ctx, &q)
	return q, err
}

// LocalPriceWorkflow runs the pricing step as a local activity.
func LocalPriceWorkflow(ctx workflow.Context, o Order) (Quote, error) {
	ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 10 * time.Second})
	var q Quote
	err := workflow.ExecuteLocalActivity(ctx, "PriceOrder", o).Get(ctx, &q)
	return q, err
}

// AsyncPriceWorkflow prices the first order synchronously, then starts the
// others as futures and only afterwards waits for them.
func AsyncPriceWorkflow(ctx workflow.Context, orders []Order) ([]Quote, error) {
	ctx = workflow.WithActivityOptions(ctx, stepOptions)
	quotes := make([]Quote, len(orders))
	if err := workflow.ExecuteActivity(ctx, steps.PriceOrder, orders[0]).Get(ctx, &quotes[0]); err != nil {
		return nil, err
	}
	var futures []workflow.Future
	for _, o := range orders[1:] {
		futures = append(futures, workflow.ExecuteActivity(ctx, steps.PriceOrderSlowly, o))
	}
	for i, f := range futures {
		if err := f.Get(ctx, &quotes[i+1]); err != nil {
			return nil, err
		}
	}
	return quotes, nil
}

// PendingPriceWorkflow waits for a step that is completed from outside.
func PendingPriceWorkflow(ctx workflow.Context, o Order) (Quote, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 5 * time.Minute})
	var q Quote
	err := workflow.ExecuteActivity(ctx, steps.PriceOrderLater, o).Get(ctx, &q)
	return q, err
}

// PerStepInput names the task queues of PerStepWorkflow's two steps.
type PerStepInput struct {
	QueueA, QueueB string
	SlowB          time.Duration // how long step B works; more than its timeout
}

// PerStepReport is what each step of PerStepWorkflow came to.
type PerStepReport struct {
	A        Quote
	AErr     string
	BErr     string
	BTimeout string // the timeout type of step B's failure, if any
}

// Options of PerStepWorkflow's steps: A retries up to 3 attempts with a 10s
// timeout; B gets one attempt with a 500ms timeout.
var (
	perStepA = workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond, BackoffCoefficient: 2, MaximumAttempts: 3},
	}
	perStepB = workflow.ActivityOptions{
		StartToCloseTimeout: 500 * time.Millisecond,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	}
)

// PerStepWorkflow runs two steps with different timeouts, retry policies and
// task queues.
func PerStepWorkflow(ctx workflow.Context, in PerStepInput) (PerStepReport, error) {
	var r PerStepReport
	a, b := perStepA, perStepB
	a.TaskQueue, b.TaskQueue = in.QueueA, in.QueueB
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, a), steps.FlakyPrice, Order{ID: "A", Qty: 1, Price: 1}, int32(3), time.Duration(0)).Get(ctx, &r.A); err != nil {
		r.AErr = err.Error()
	}
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, b), steps.FlakyPrice, Order{ID: "B", Qty: 1, Price: 1}, int32(1), in.SlowB).Get(ctx, nil)
	if err != nil {
		r.BErr = err.Error()
		var te *temporal.TimeoutError
		if errors.As(err, &te) {
			r.BTimeout = te.TimeoutType().String()
		}
	}
	return r, nil
}

// LongLocalInput configures LongLocalWorkflow.
type LongLocalInput struct {
	OKAt int32         // the first attempt that succeeds
	Hold time.Duration // how long that attempt works
}

// Backoff of LongLocalWorkflow's local activity retries.
const (
	localInitialInterval = 200 * time.Millisecond
	localBackoff         = 2.0
)

// LongLocalWorkflow runs a local activity that fails before attempt OKAt and
// then works for Hold, longer than the workflow task timeout.
func LongLocalWorkflow(ctx workflow.Context, in LongLocalInput) (Quote, error) {
	ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		ScheduleToCloseTimeout: time.Minute,
		StartToCloseTimeout:    30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: localInitialInterval, BackoffCoefficient: localBackoff, MaximumAttempts: 5,
		},
	})
	var q Quote
	err := workflow.ExecuteLocalActivity(ctx, "FlakyPrice", Order{ID: "long", Qty: 2, Price: 5}, in.OKAt, in.Hold).Get(ctx, &q)
	return q, err
}

// DynamicCallWorkflow calls an activity type that only a dynamic activity answers.
func DynamicCallWorkflow(ctx workflow.Context, activityType, label string, n int) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, stepOptions)
	var s string
	err := workflow.ExecuteActivity(ctx, activityType, label, n).Get(ctx, &s)
	return s, err
}
