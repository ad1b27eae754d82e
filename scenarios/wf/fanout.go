package wf

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/durabench/durabench/harness/ledger"
)

// Branch is one branch of a fan-out: it works Duration, or fails at once.
type Branch struct {
	ID       int
	Duration time.Duration
	Fail     bool
}

const branchErrType = "BranchFailed"

// branches names the Branches activities in workflow code.
var branches *Branches

// Branches holds the fan-out activity.
type Branches struct {
	Probe  *Probe
	Ledger string // ledger file, for workers in child processes
}

// BranchTag is how a Probe tags branch id of workflow wfID.
func BranchTag(wfID string, id int) string { return fmt.Sprintf("%s/%d", wfID, id) }

// Work runs one branch, heartbeating so that a cancellation or a dead
// worker is noticed within the heartbeat timeout; it returns 100×ID.
func (b *Branches) Work(ctx context.Context, br Branch) (int, error) {
	info := activity.GetInfo(ctx)
	i := -1
	if b.Probe != nil {
		i = b.Probe.begin(BranchTag(info.WorkflowExecution.ID, br.ID), info.Attempt)
	}
	if err := appendLedger(ctx, b.Ledger, br.ID, ledger.Start); err != nil {
		return 0, err
	}
	var err error
	if br.Fail {
		err = temporal.NewNonRetryableApplicationError(fmt.Sprintf("branch %d fails by design", br.ID), branchErrType, nil)
	} else {
		err = work(ctx, br.Duration, true)
	}
	if b.Probe != nil {
		b.Probe.end(i, errors.Is(err, context.Canceled))
	}
	if err != nil {
		return 0, err
	}
	return 100 * br.ID, appendLedger(ctx, b.Ledger, br.ID, ledger.Done)
}

// branchOptions: a short heartbeat timeout lets a cancellation reach a
// branch, and a killed worker's branch be retried, within about two seconds.
func branchOptions(id int) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		ActivityID:          fmt.Sprint(id),
		StartToCloseTimeout: 30 * time.Second,
		HeartbeatTimeout:    2 * time.Second,
		WaitForCancellation: true,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, MaximumInterval: time.Second},
	}
}

func startBranch(ctx workflow.Context, br Branch) workflow.Future {
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, branchOptions(br.ID)), branches.Work, br)
}

// FanIn is the fan-in of a fan-out: results in the order the selector
// delivered them, and the failed branches with their error types.
type FanIn struct {
	Order  []int
	Values map[int]int
	Failed map[int]string
}

// FanOutWorkflow starts every branch at once and collects the results
// through a selector as they complete.
func FanOutWorkflow(ctx workflow.Context, brs []Branch) (FanIn, error) {
	res := FanIn{Values: map[int]int{}, Failed: map[int]string{}}
	sel := workflow.NewSelector(ctx)
	for _, br := range brs {
		sel.AddFuture(startBranch(ctx, br), func(f workflow.Future) {
			res.Order = append(res.Order, br.ID)
			var v int
			if err := f.Get(ctx, &v); err != nil {
				res.Failed[br.ID] = errorType(err)
				return
			}
			res.Values[br.ID] = v
		})
	}
	for range brs {
		sel.Select(ctx)
	}
	return res, nil
}

func errorType(err error) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae.Type()
	}
	return err.Error()
}

// QuorumInput configures QuorumWorkflow: proceed once Need branches have
// succeeded, or when Deadline passes, whichever comes first.
type QuorumInput struct {
	Branches []Branch
	Need     int
	Deadline time.Duration
}

// Paths QuorumWorkflow can take.
const (
	pathQuorum    = "quorum"    // Need branches succeeded in time
	pathDeadline  = "deadline"  // the deadline passed first
	pathExhausted = "exhausted" // every branch closed, too few succeeded
)

// QuorumResult says which path the workflow took, when, and what happened to
// each branch.
type QuorumResult struct {
	Path           string
	ProceededAfter time.Duration // workflow time from start to proceeding
	Succeeded      []int
	Failed         []int
	Cancelled      []int // branches still running when it proceeded, cancelled
	FinishedLate   []int // branches still running that finished before their cancellation landed
}

// QuorumWorkflow waits for any Need of the branches within Deadline; failed
// and slow branches do not block it. It then cancels the branches still
// running and waits until each has acknowledged the cancellation.
func QuorumWorkflow(ctx workflow.Context, in QuorumInput) (QuorumResult, error) {
	var res QuorumResult
	began := workflow.Now(ctx)
	branchCtx, cancelBranches := workflow.WithCancel(ctx)
	timerCtx, cancelTimer := workflow.WithCancel(ctx)
	type pending struct {
		id     int
		f      workflow.Future
		closed bool
	}
	all := make([]*pending, len(in.Branches))
	sel := workflow.NewSelector(ctx)
	for i, br := range in.Branches {
		p := &pending{id: br.ID, f: startBranch(branchCtx, br)}
		all[i] = p
		sel.AddFuture(p.f, func(f workflow.Future) {
			p.closed = true
			if err := f.Get(ctx, nil); err != nil {
				res.Failed = append(res.Failed, p.id)
				return
			}
			res.Succeeded = append(res.Succeeded, p.id)
		})
	}
	expired := false
	sel.AddFuture(workflow.NewTimer(timerCtx, in.Deadline), func(workflow.Future) { expired = true })
	for len(res.Succeeded) < in.Need && !expired && len(res.Succeeded)+len(res.Failed) < len(in.Branches) {
		sel.Select(ctx)
	}
	res.ProceededAfter = workflow.Now(ctx).Sub(began)
	switch {
	case len(res.Succeeded) >= in.Need:
		res.Path = pathQuorum
	case expired:
		res.Path = pathDeadline
	default:
		res.Path = pathExhausted
	}
	cancelTimer()
	cancelBranches()
	for _, p := range all {
		if p.closed {
			continue
		}
		var ce *temporal.CanceledError
		if err := p.f.Get(ctx, nil); errors.As(err, &ce) {
			res.Cancelled = append(res.Cancelled, p.id)
		} else {
			res.FinishedLate = append(res.FinishedLate, p.id)
		}
	}
	return res, nil
}

// BoundedInput configures BoundedWorkflow: N branches of Duration, at most K at once.
type BoundedInput struct {
	N, K     int
	Duration time.Duration
}

// BoundedResult is how many branches succeeded and the most the workflow had
// in flight at once.
type BoundedResult struct {
	Done        int
	MaxInFlight int
}

// BoundedWorkflow runs N branches behind a workflow-side semaphore of K.
func BoundedWorkflow(ctx workflow.Context, in BoundedInput) (BoundedResult, error) {
	var res BoundedResult
	sem := workflow.NewSemaphore(ctx, int64(in.K))
	wg := workflow.NewWaitGroup(ctx)
	inflight := 0
	var firstErr error
	for i := range in.N {
		if err := sem.Acquire(ctx, 1); err != nil {
			return res, err
		}
		inflight++
		res.MaxInFlight = max(res.MaxInFlight, inflight)
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			// No heartbeat timeout: nothing here is cancelled or killed.
			o := branchOptions(i)
			o.HeartbeatTimeout = 0
			err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, o), branches.Work, Branch{ID: i, Duration: in.Duration}).Get(ctx, nil)
			inflight--
			sem.Release(1)
			if err != nil && firstErr == nil {
				firstErr = err
			} else if err == nil {
				res.Done++
			}
		})
	}
	wg.Wait(ctx)
	return res, firstErr
}
