package wf

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/harness/ledger"
)

// load keeps the latency-sensitive measurements (rates, concurrency,
// lateness) apart from the package's CPU-heavy scenarios, which run side by
// side: a measurement holds it alone (quiet), a heavy scenario shares it
// (heavy). Neither is ever taken twice by one test.
var load sync.RWMutex

// quiet waits until no heavy scenario runs and keeps new ones waiting until
// the test ends.
func quiet(t *testing.T) {
	load.Lock()
	t.Cleanup(load.Unlock)
}

// heavy marks a CPU-heavy scenario; it waits while a measurement is quiet.
func heavy(t *testing.T) {
	load.RLock()
	t.Cleanup(load.RUnlock)
}

// newWorker starts an in-process worker on tq, stopped at the end of the test.
func newWorker(t *testing.T, c client.Client, tq string, o worker.Options, register func(worker.Registry)) {
	t.Helper()
	w := worker.New(c, tq, o)
	register(w)
	if err := w.Start(); err != nil {
		t.Fatalf("worker on %s: %v", tq, err)
	}
	t.Cleanup(w.Stop)
}

// registerWorkflows registers each workflow function.
func registerWorkflows(r worker.Registry, wfs ...any) {
	for _, wf := range wfs {
		r.RegisterWorkflow(wf)
	}
}

// start starts wf with the given options (a unique id when o.ID is empty);
// a run still open at the end of the test is terminated.
func start(ctx context.Context, t *testing.T, c client.Client, o client.StartWorkflowOptions, wf any, args ...any) client.WorkflowRun {
	t.Helper()
	if o.ID == "" {
		o.ID = harness.UniqueID(t, "wf")
	}
	if o.WorkflowExecutionTimeout == 0 {
		o.WorkflowExecutionTimeout = 10 * time.Minute
	}
	run, err := c.ExecuteWorkflow(ctx, o, wf, args...)
	if err != nil {
		t.Fatalf("start %s: %v", o.ID, err)
	}
	t.Cleanup(func() {
		_ = c.TerminateWorkflow(context.Background(), run.GetID(), "", "test cleanup")
	})
	return run
}

// mustHistory is history for a run the test knows exists.
func mustHistory(ctx context.Context, t *testing.T, c client.Client, id, runID string) []*historypb.HistoryEvent {
	t.Helper()
	events, err := harness.History(ctx, c, id, runID)
	if err != nil {
		t.Fatal(err)
	}
	return events
}

// byID indexes events by event id.
func byID(events []*historypb.HistoryEvent) map[int64]*historypb.HistoryEvent {
	m := make(map[int64]*historypb.HistoryEvent, len(events))
	for _, ev := range events {
		m[ev.GetEventId()] = ev
	}
	return m
}

// status is a workflow's current status.
func status(ctx context.Context, c client.Client, id string) (enumspb.WorkflowExecutionStatus, error) {
	d, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return 0, fmt.Errorf("describe %s: %w", id, err)
	}
	return d.GetWorkflowExecutionInfo().GetStatus(), nil
}

// waitStatus waits until workflow id has status want and returns it, or the
// last status seen and an error.
func waitStatus(ctx context.Context, c client.Client, id string, want enumspb.WorkflowExecutionStatus, timeout time.Duration) (enumspb.WorkflowExecutionStatus, error) {
	var last enumspb.WorkflowExecutionStatus
	err := harness.WaitFor(ctx, timeout, 50*time.Millisecond, fmt.Sprintf("%s to be %s", id, want), func(ctx context.Context) (bool, error) {
		s, err := status(ctx, c, id)
		if err != nil {
			return false, nil // not started yet
		}
		last = s
		return s == want, nil
	})
	return last, err
}

// waitEvents waits until the run's history holds at least n events of typ.
func waitEvents(ctx context.Context, c client.Client, id string, typ enumspb.EventType, n int, timeout time.Duration) error {
	return harness.WaitFor(ctx, timeout, 50*time.Millisecond, fmt.Sprintf("%d %s events in %s", n, typ, id), func(ctx context.Context) (bool, error) {
		events, err := harness.History(ctx, c, id, "")
		return err == nil && len(harness.EventsOf(events, typ)) >= n, nil
	})
}

// ms formats a duration in milliseconds.
func ms(d time.Duration) string { return fmt.Sprintf("%dms", d.Milliseconds()) }

// concurrently runs f(0..n-1) in n goroutines and returns their errors joined.
func concurrently(n int, f func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = f(i) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// waitLedger waits until the ledger satisfies cond.
func waitLedger(ctx context.Context, path string, cond func([]ledger.Entry) bool) error {
	return harness.WaitFor(ctx, time.Minute, 20*time.Millisecond, "the ledger of "+filepath.Base(path), func(context.Context) (bool, error) {
		entries, err := ledger.Read(path)
		return err == nil && cond(entries), err
	})
}
