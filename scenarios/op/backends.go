package op

import (
	"context"
	"fmt"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/durabench/durabench/harness"
)

// The reference scenario of OP-03 and OP-06, run unchanged on every backend:
// an activity, a durable timer, a signal, a second activity. Its result
// names what each step saw, so a run that lost a step cannot return it.

const (
	backendSignal = "backend-go"
	// backendTimer is long enough to be pending when the server is killed
	// (the test waits for every TimerStarted first) and short enough to
	// keep the scenario within its share of make test.
	backendTimer = 3 * time.Second
)

// BackendFlow is the reference workflow.
func BackendFlow(ctx workflow.Context, n int) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	var a string
	if err := workflow.ExecuteActivity(ctx, BackendStep, "first", n).Get(ctx, &a); err != nil {
		return "", err
	}
	if err := workflow.Sleep(ctx, backendTimer); err != nil {
		return "", err
	}
	var sig string
	workflow.GetSignalChannel(ctx, backendSignal).Receive(ctx, &sig)
	var b string
	if err := workflow.ExecuteActivity(ctx, BackendStep, "second", n).Get(ctx, &b); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s|timer|%s|%s", a, sig, b), nil
}

// BackendStep is a no-op activity that names its step and the attempt.
func BackendStep(ctx context.Context, step string, n int) (string, error) {
	return fmt.Sprintf("%s-%d-attempt%d", step, n, activity.GetInfo(ctx).Attempt), nil
}

// backendWant is the result of run n when every step ran once.
func backendWant(n int) string {
	return fmt.Sprintf("first-%d-attempt1|timer|sig-%d|second-%d-attempt1", n, n, n)
}

// referenceWorker starts an in-process worker of the reference workflow on
// a task queue of its own, stopped at test end, and returns the queue.
func referenceWorker(t *testing.T, c client.Client) string {
	t.Helper()
	tq := harness.TaskQueue(t)
	w := worker.New(c, tq, worker.Options{})
	w.RegisterWorkflow(BackendFlow)
	w.RegisterActivity(BackendStep)
	if err := w.Start(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	t.Cleanup(w.Stop)
	return tq
}

// referenceRuns are the reference workflows one test started, run i with
// id ids[i].
type referenceRuns struct {
	c   client.Client
	ids []string
}

// startReference starts n reference workflows named tag-0 .. tag-(n-1),
// with opts as the template, and returns each start call's latency in ms.
func startReference(ctx context.Context, c client.Client, opts client.StartWorkflowOptions, tag string, n int) (*referenceRuns, []float64, error) {
	r := &referenceRuns{c: c}
	var ms []float64
	for i := range n {
		opts.ID = fmt.Sprintf("%s-%d", tag, i)
		t0 := time.Now()
		if _, err := c.ExecuteWorkflow(ctx, opts, BackendFlow, i); err != nil {
			return r, ms, fmt.Errorf("start %s: %w", opts.ID, err)
		}
		ms = append(ms, float64(time.Since(t0).Microseconds())/1000)
		r.ids = append(r.ids, opts.ID)
	}
	return r, ms, nil
}

// waitTimers waits until every run's timer has started, so that a server
// killed next has all of them pending; it returns how many had.
func (r *referenceRuns) waitTimers(ctx context.Context) (int, error) {
	var pending int
	err := harness.WaitFor(ctx, time.Minute, 100*time.Millisecond, "every timer started", func(ctx context.Context) (bool, error) {
		pending = 0
		for _, id := range r.ids {
			if hasEvent(ctx, r.c, id, enumspb.EVENT_TYPE_TIMER_STARTED) {
				pending++
			}
		}
		return pending == len(r.ids), nil
	})
	return pending, err
}

// signal sends each run its signal, asking again until the server takes it
// (it may still be recovering); it returns when the first was taken, from
// since.
func (r *referenceRuns) signal(ctx context.Context, since time.Time, within time.Duration) (time.Duration, error) {
	var first time.Duration
	for i, id := range r.ids {
		if err := harness.WaitFor(ctx, within, 250*time.Millisecond, "signal "+id, func(ctx context.Context) (bool, error) {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			return r.c.SignalWorkflow(sctx, id, "", backendSignal, fmt.Sprintf("sig-%d", i)) == nil, nil
		}); err != nil {
			return first, err
		}
		if i == 0 {
			first = time.Since(since)
		}
	}
	return first, nil
}

// results counts the runs that returned exactly what their steps produce
// and describes the others.
func (r *referenceRuns) results(ctx context.Context) (completed int, wrong []string) {
	for i, id := range r.ids {
		var got string
		if err := r.c.GetWorkflow(ctx, id, "").Get(ctx, &got); err != nil {
			wrong = append(wrong, fmt.Sprintf("%s: %v", id, err))
			continue
		}
		if got != backendWant(i) {
			wrong = append(wrong, fmt.Sprintf("%s returned %q, want %q", id, got, backendWant(i)))
			continue
		}
		completed++
	}
	return completed, wrong
}

// hasEvent reports whether workflow id's history holds an event of type et.
func hasEvent(ctx context.Context, c client.Client, id string, et enumspb.EventType) bool {
	events, err := harness.History(ctx, c, id, "")
	return err == nil && len(harness.EventsOf(events, et)) > 0
}
