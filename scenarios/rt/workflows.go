// Package rt measures the retry-and-timeout items (RT-01..RT-04): retry
// policies attempt by attempt, every timeout type, what stands in for a
// circuit breaker, and heartbeats. Its tests run real workflows against the
// dev server, in real time, with short intervals and tolerances a loaded
// machine meets; waits of minutes run in the SDK's time-skipping test
// environment.
package rt

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/durabench/durabench/harness/ledger"
)

// Job is the one argument of every activity here; each reads what it needs.
type Job struct {
	Mode         string        // what a scripted activity does, read by the test that registers it
	Items        int           // Progress: items to process
	ItemDuration time.Duration // Progress: the work of one item
	StallAt      int           // Progress: on attempt 1, stop heartbeating before this item (0: never)
	SucceedAt    int32         // Retrier: the first attempt that succeeds
	Breaker      string        // GuardedCall: the id of the breaker workflow to ask
}

// CallInput is one activity call with its options, so that a test states the
// policy and timeouts it measures in one place.
type CallInput struct {
	Activity            string
	Job                 Job
	ActivityID          string
	TaskQueue           string // empty: the workflow's task queue
	StartToClose        time.Duration
	ScheduleToClose     time.Duration
	ScheduleToStart     time.Duration
	Heartbeat           time.Duration
	Retry               *temporal.RetryPolicy // nil: the server's default policy
	WaitForCancellation bool
	Local               bool // run as a local activity (StartToClose, ScheduleToClose and Retry apply)
}

func (in CallInput) execute(ctx workflow.Context) workflow.Future {
	if in.Local {
		ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: in.StartToClose, ScheduleToCloseTimeout: in.ScheduleToClose, RetryPolicy: in.Retry,
		})
		return workflow.ExecuteLocalActivity(ctx, in.Activity, in.Job)
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		ActivityID: in.ActivityID, TaskQueue: in.TaskQueue,
		StartToCloseTimeout: in.StartToClose, ScheduleToCloseTimeout: in.ScheduleToClose,
		ScheduleToStartTimeout: in.ScheduleToStart, HeartbeatTimeout: in.Heartbeat,
		RetryPolicy: in.Retry, WaitForCancellation: in.WaitForCancellation,
	})
	return workflow.ExecuteActivity(ctx, in.Activity, in.Job)
}

// CallWorkflow makes one activity call and returns its result or error.
func CallWorkflow(ctx workflow.Context, in CallInput) (string, error) {
	var out string
	err := in.execute(ctx).Get(ctx, &out)
	return out, err
}

// FanOutWorkflow makes n identical activity calls at once, waits for all of
// them and returns how many succeeded; it then fails with the first error.
func FanOutWorkflow(ctx workflow.Context, in CallInput, n int) (int, error) {
	futures := make([]workflow.Future, n)
	for i := range futures {
		futures[i] = in.execute(ctx)
	}
	ok := 0
	var first error
	for _, f := range futures {
		if err := f.Get(ctx, nil); err != nil {
			first = cmp.Or(first, err)
		} else {
			ok++
		}
	}
	return ok, first
}

// Caught is what TimeoutsWorkflow did with one call.
type Caught struct {
	TimeoutType string // the TimeoutError's type; empty if the call did not time out
	Details     int    // the last heartbeat details carried by the TimeoutError, -1 if none
	Fallback    string // the fallback result the workflow chose instead of failing
}

// TimeoutsWorkflow makes every call at once and catches each timeout as a
// TimeoutError, taking a fallback path instead of failing; any other error
// fails the workflow.
func TimeoutsWorkflow(ctx workflow.Context, calls []CallInput) ([]Caught, error) {
	futures := make([]workflow.Future, len(calls))
	for i, in := range calls {
		futures[i] = in.execute(ctx)
	}
	out := make([]Caught, len(calls))
	for i, f := range futures {
		err := f.Get(ctx, nil)
		var te *temporal.TimeoutError
		if !errors.As(err, &te) {
			return out, fmt.Errorf("call %d: want a timeout, got %w", i, err)
		}
		c := Caught{TimeoutType: te.TimeoutType().String(), Details: -1}
		if te.HasLastHeartbeatDetails() {
			if err := te.LastHeartbeatDetails(&c.Details); err != nil {
				return out, fmt.Errorf("call %d: heartbeat details: %w", i, err)
			}
		}
		c.Fallback = "fallback after " + c.TimeoutType
		out[i] = c
	}
	return out, nil
}

// SleepWorkflow sleeps; tests give it a run timeout shorter than the sleep.
func SleepWorkflow(ctx workflow.Context, d time.Duration) error {
	return workflow.Sleep(ctx, d)
}

// Chain modes of ChainWorkflow.
const (
	ChainContinueAsNew = "continue-as-new"
	ChainRetry         = "retry"
)

// ChainWorkflow's first run works for firstRun, then continues as new or
// fails (to be retried by the workflow retry policy); later runs sleep for an
// hour, so that only an execution timeout spanning the chain can close it.
func ChainWorkflow(ctx workflow.Context, mode string, firstRun time.Duration) error {
	info := workflow.GetInfo(ctx)
	if info.ContinuedExecutionRunID != "" || info.Attempt > 1 {
		return workflow.Sleep(ctx, time.Hour)
	}
	if err := workflow.Sleep(ctx, firstRun); err != nil {
		return err
	}
	if mode == ChainContinueAsNew {
		return workflow.NewContinueAsNewError(ctx, ChainWorkflow, mode, firstRun)
	}
	return temporal.NewApplicationError("first run fails by design", "FirstRun")
}

// FlakyWorkflow fails every run before attempt succeedAt and then returns
// the attempt that succeeded.
func FlakyWorkflow(ctx workflow.Context, succeedAt int32) (int32, error) {
	attempt := workflow.GetInfo(ctx).Attempt
	if attempt < succeedAt {
		return 0, temporal.NewApplicationError(fmt.Sprintf("run attempt %d fails by design", attempt), "Flaky")
	}
	return attempt, nil
}

// Registered activity names.
const (
	ScriptedName = "Scripted"
	ProgressName = "Progress"
	RetrierName  = "Retrier"
	GuardedName  = "GuardedCall"
)

// attemptRec is one attempt of an activity as the activity saw it.
type attemptRec struct {
	ActivityID string
	Attempt    int32
	Start, End time.Time
}

// attemptLog records, in the test process, when each attempt of an activity
// began and ended by the clock it is given (real or the test environment's).
type attemptLog struct {
	clock func() time.Time
	mu    sync.Mutex
	recs  []attemptRec
}

func newAttemptLog(clock func() time.Time) *attemptLog { return &attemptLog{clock: clock} }

// activity wraps body, the scripted behaviour of one test, into an activity
// that records each attempt.
func (l *attemptLog) activity(body func(ctx context.Context, attempt int32, job Job) (string, error)) func(context.Context, Job) (string, error) {
	return func(ctx context.Context, job Job) (string, error) {
		info := activity.GetInfo(ctx)
		start := l.clock()
		out, err := body(ctx, info.Attempt, job)
		l.mu.Lock()
		l.recs = append(l.recs, attemptRec{ActivityID: info.ActivityID, Attempt: info.Attempt, Start: start, End: l.clock()})
		l.mu.Unlock()
		return out, err
	}
}

// attempts returns the recorded attempts in the order they ended.
func (l *attemptLog) attempts() []attemptRec {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]attemptRec(nil), l.recs...)
}

// hang blocks until the activity's context ends or the worker stops.
func hang(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-activity.GetWorkerStopChannel(ctx):
		return errors.New("worker stopping")
	}
}

// Ledger phases beyond ledger.Start and ledger.Done.
const (
	phaseItem   = "item"   // Progress processed one item (Step is the item)
	phaseResume = "resume" // Progress began an attempt at offset Step
	phaseStall  = "stall"  // Progress stopped heartbeating before item Step
	phaseFail   = "fail"   // Retrier's attempt is about to return its error
)

// Progress processes items one by one, heartbeating the offset of the next
// item, and resumes a retried attempt from the last heartbeat details. Each
// processed item is written to an external ledger, so that a test sees which
// items ran twice, even across a killed worker.
type Progress struct {
	Ledger string
}

// Run processes job.Items items.
func (p *Progress) Run(ctx context.Context, job Job) (string, error) {
	info := activity.GetInfo(ctx)
	entry := func(phase string, step int) ledger.Entry {
		return ledger.Entry{Key: info.WorkflowExecution.ID, Step: step, Attempt: info.Attempt, Phase: phase}
	}
	offset := 0
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &offset); err != nil {
			return "", fmt.Errorf("heartbeat details: %w", err)
		}
	}
	if err := ledger.Append(p.Ledger, entry(phaseResume, offset)); err != nil {
		return "", err
	}
	activity.RecordHeartbeat(ctx, offset)
	for i := offset; i < job.Items; i++ {
		if info.Attempt == 1 && i == job.StallAt && job.StallAt > 0 {
			if err := ledger.Append(p.Ledger, entry(phaseStall, i)); err != nil {
				return "", err
			}
			return "", hang(ctx) // stuck: no more heartbeats
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(job.ItemDuration): // the work of one item
		}
		if err := ledger.Append(p.Ledger, entry(phaseItem, i)); err != nil {
			return "", err
		}
		activity.RecordHeartbeat(ctx, i+1)
	}
	return fmt.Sprintf("processed %d items, attempt %d resumed at %d", job.Items, info.Attempt, offset), nil
}

// Retrier fails every attempt before job.SucceedAt, writing each attempt's
// start and failure to an external ledger that survives process kills.
type Retrier struct {
	Ledger string
}

// Run is one attempt.
func (r *Retrier) Run(ctx context.Context, job Job) (string, error) {
	info := activity.GetInfo(ctx)
	e := ledger.Entry{Key: info.WorkflowExecution.ID, Attempt: info.Attempt, Phase: ledger.Start}
	if err := ledger.Append(r.Ledger, e); err != nil {
		return "", err
	}
	if info.Attempt >= job.SucceedAt {
		return fmt.Sprintf("succeeded on attempt %d", info.Attempt), nil
	}
	e.Phase, e.At = phaseFail, time.Time{}
	if err := ledger.Append(r.Ledger, e); err != nil {
		return "", err
	}
	return "", fmt.Errorf("attempt %d fails by design", info.Attempt)
}

// registerCommon registers the workflows and the ledger-writing activities
// every worker of this package runs.
func registerCommon(r worker.Registry, ledgerPath string) {
	for _, wf := range []any{CallWorkflow, FanOutWorkflow, TimeoutsWorkflow, SleepWorkflow, ChainWorkflow, FlakyWorkflow, BreakerWorkflow} {
		r.RegisterWorkflow(wf)
	}
	r.RegisterActivityWithOptions((&Progress{Ledger: ledgerPath}).Run, activity.RegisterOptions{Name: ProgressName})
	r.RegisterActivityWithOptions((&Retrier{Ledger: ledgerPath}).Run, activity.RegisterOptions{Name: RetrierName})
}
