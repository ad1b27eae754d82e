package pf

import (
	"context"
	"slices"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/workflow"
)

const fanActivity = "PFFanStep"

// FanOutInput shapes one fan-out: Total empty activities, at most Window in
// flight, continuing as new after PerRun completions so that each run's
// history stays far below the server's limits. Done carries progress across
// runs.
type FanOutInput struct {
	Total  int
	Window int
	PerRun int
	Done   int
}

// FanOutWorkflow runs Window coroutines, each executing activities one
// after another until this run's share is done: a sliding window without a
// selector whose cost grows with the number of futures.
func FanOutWorkflow(ctx workflow.Context, in FanOutInput) (int, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 2 * time.Minute})
	share := min(in.Total-in.Done, in.PerRun)
	next, completed := 0, 0
	var firstErr error
	wg := workflow.NewWaitGroup(ctx)
	for range min(in.Window, share) {
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			for next < share && firstErr == nil {
				next++
				if err := workflow.ExecuteActivity(ctx, fanActivity).Get(ctx, nil); err != nil {
					firstErr = err
					return
				}
				completed++
			}
		})
	}
	wg.Wait(ctx)
	if firstErr != nil {
		return in.Done + completed, firstErr
	}
	in.Done += completed
	if in.Done < in.Total {
		return in.Done, workflow.NewContinueAsNewError(ctx, FanOutWorkflow, in)
	}
	return in.Done, nil
}

// FanFuturesWorkflow schedules n activities in its first workflow task,
// keeping their futures, then awaits them in order: the shape most users
// write for a fan-out that fits in one history.
func FanFuturesWorkflow(ctx workflow.Context, n int) (int, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 2 * time.Minute})
	futures := make([]workflow.Future, n)
	for i := range futures {
		futures[i] = workflow.ExecuteActivity(ctx, fanActivity)
	}
	for i, f := range futures {
		if err := f.Get(ctx, nil); err != nil {
			return i, err
		}
	}
	return n, nil
}

// FanParentInput shapes the children pattern: Children fan-out children,
// started Batch at a time, each running PerChild activities.
type FanParentInput struct {
	Children int
	Batch    int
	Child    FanOutInput
}

// FanParentWorkflow starts children in batches and returns the activities
// they completed.
func FanParentWorkflow(ctx workflow.Context, in FanParentInput) (int, error) {
	total := 0
	for started := 0; started < in.Children; {
		var futures []workflow.ChildWorkflowFuture
		for ; started < in.Children && len(futures) < in.Batch; started++ {
			futures = append(futures, workflow.ExecuteChildWorkflow(ctx, FanOutWorkflow, in.Child))
		}
		for _, f := range futures {
			var n int
			if err := f.Get(ctx, &n); err != nil {
				return total, err
			}
			total += n
		}
	}
	return total, nil
}

// fanRecorder is the fan-out activity: it notes when each one ran and how
// long it waited to start, as the worker saw it.
type fanRecorder struct {
	mu     sync.Mutex
	events []fanEvent
}

// fanEvent is one fan-out activity as the worker saw it.
type fanEvent struct {
	at   time.Time // when it ran
	wait float64   // schedule-to-start, milliseconds
}

func (r *fanRecorder) recordCompletion(ctx context.Context) error {
	info := activity.GetInfo(ctx)
	ev := fanEvent{at: time.Now(), wait: ms(info.StartedTime.Sub(info.ScheduledTime))}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	return nil
}

// take returns what was recorded, in time order, and clears it.
func (r *fanRecorder) take() []fanEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	evs := r.events
	r.events = nil
	slices.SortFunc(evs, func(a, b fanEvent) int { return a.at.Compare(b.at) })
	return evs
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
