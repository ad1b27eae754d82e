package ex

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/harness"
)

// Helpers shared by the EX-02, EX-04, EX-05, EX-06 and EX-07 tests.

// startScenarioWorker runs registerScenario, and any extra registrations,
// on an in-process worker for tq, stopped at test end.
func startScenarioWorker(t *testing.T, c client.Client, tq string, args map[string]string, o worker.Options, extra ...func(worker.Registry)) worker.Worker {
	t.Helper()
	w := worker.New(c, tq, o)
	registerScenario(w, args)
	for _, register := range extra {
		register(w)
	}
	if err := w.Start(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	t.Cleanup(w.Stop)
	return w
}

// roleConfig is the configuration of a scenario worker child process on the
// package's server.
func roleConfig(env *harness.Env, tq string, args map[string]string) harness.RoleConfig {
	return harness.RoleConfig{Address: env.Options.HostPort, Namespace: env.Options.Namespace, TaskQueue: tq, Args: args}
}

// scenarioOptions are start options for a test workflow: a short workflow
// task timeout so that a task held by a killed worker is handed out again
// soon, and an execution timeout so that nothing outlives the run for long.
func scenarioOptions(tq, id string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID: id, TaskQueue: tq, WorkflowTaskTimeout: 2 * time.Second, WorkflowExecutionTimeout: 5 * time.Minute,
	}
}

// startWorkflow starts wf and terminates it at test end if it is still open.
func startWorkflow(ctx context.Context, t *testing.T, c client.Client, o client.StartWorkflowOptions, wf any, args ...any) client.WorkflowRun {
	t.Helper()
	run, err := c.ExecuteWorkflow(ctx, o, wf, args...)
	if err != nil {
		t.Fatalf("start %s: %v", o.ID, err)
	}
	t.Cleanup(func() { _ = c.TerminateWorkflow(context.Background(), run.GetID(), run.GetRunID(), "test cleanup") })
	return run
}

// queryState asks a workflow's "state" query, waiting at most 30s for an
// answer (a query to a killed sticky worker falls back to the normal queue).
func queryState(ctx context.Context, c client.Client, id string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := c.QueryWorkflow(ctx, id, "", stateQuery)
	if err != nil {
		return fmt.Errorf("query %s: %w", id, err)
	}
	return v.Get(out)
}

// mustHistory fetches the history of one run.
func mustHistory(ctx context.Context, t *testing.T, c client.Client, id, runID string) *historypb.History {
	t.Helper()
	h, err := FetchHistory(ctx, c, id, runID)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// countEvents counts the events of each type in h.
func countEvents(h *historypb.History) map[enumspb.EventType]int {
	n := map[enumspb.EventType]int{}
	for _, ev := range h.GetEvents() {
		n[ev.GetEventType()]++
	}
	return n
}

// countMarkers counts the MarkerRecorded events of each marker name in h.
func countMarkers(h *historypb.History) map[string]int {
	n := map[string]int{}
	for _, ev := range h.GetEvents() {
		if a := ev.GetMarkerRecordedEventAttributes(); a != nil {
			n[a.GetMarkerName()]++
		}
	}
	return n
}

// waitEvent waits until the history of id holds an event of type typ.
func waitEvent(ctx context.Context, c client.Client, id string, typ enumspb.EventType) error {
	return harness.WaitFor(ctx, time.Minute, 50*time.Millisecond, typ.String()+" in "+id, func(ctx context.Context) (bool, error) {
		at, err := eventTime(ctx, c, id, typ)
		return !at.IsZero(), err
	})
}

// startMany starts n workflows concurrently and waits for them; it returns
// each run's id and run id, and fails the test on a harness fault.
func startMany(ctx context.Context, t *testing.T, c client.Client, tq string, n int, wf any, args func(i int) []any, after func(run client.WorkflowRun, i int) error) []client.WorkflowRun {
	t.Helper()
	runs := make([]client.WorkflowRun, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run, err := c.ExecuteWorkflow(ctx, scenarioOptions(tq, fmt.Sprintf("%s-%03d", harness.UniqueID(t, "wf"), i)), wf, args(i)...)
			if err == nil && after != nil {
				err = after(run, i)
			}
			if err == nil {
				err = run.Get(ctx, nil)
			}
			runs[i], errs[i] = run, err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	return runs
}
