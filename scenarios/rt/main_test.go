package rt

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/harness/ledger"
)

// workerRole is a worker child process running every workflow of the package
// and the ledger-writing activities; a short sticky timeout lets another
// worker take over soon after this one is killed.
const workerRole = "rt-worker"

var roles = map[string]harness.WorkerRole{
	workerRole: {
		Options: worker.Options{StickyScheduleToStartTimeout: time.Second},
		Register: func(r worker.Registry, cfg harness.RoleConfig) {
			registerCommon(r, cfg.Args["ledger"])
		},
	},
}

func TestMain(m *testing.M) { harness.Main(m, "rt", roles) }

// startWorker starts an in-process worker on tq with the package's
// workflows, the ledger activities (writing to ledgerPath) and whatever
// register adds; it stops at test end.
func startWorker(t *testing.T, c client.Client, tq, ledgerPath string, o worker.Options, register func(worker.Registry)) worker.Worker {
	t.Helper()
	w := worker.New(c, tq, o)
	registerCommon(w, ledgerPath)
	if register != nil {
		register(w)
	}
	if err := w.Start(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	t.Cleanup(w.Stop)
	return w
}

// start starts a workflow; one left open is terminated at test end.
func start(ctx context.Context, t *testing.T, c client.Client, o client.StartWorkflowOptions, wf any, args ...any) client.WorkflowRun {
	t.Helper()
	if o.ID == "" {
		o.ID = harness.UniqueID(t, "wf")
	}
	if o.WorkflowExecutionTimeout == 0 {
		o.WorkflowExecutionTimeout = 5 * time.Minute
	}
	run, err := c.ExecuteWorkflow(ctx, o, wf, args...)
	if err != nil {
		t.Fatalf("start %s: %v", o.ID, err)
	}
	t.Cleanup(func() { _ = c.TerminateWorkflow(context.Background(), o.ID, "", "test cleanup") })
	return run
}

// call runs CallWorkflow on tq and waits for its result.
func call(ctx context.Context, t *testing.T, c client.Client, tq string, in CallInput) (string, client.WorkflowRun, error) {
	t.Helper()
	run := start(ctx, t, c, client.StartWorkflowOptions{TaskQueue: tq}, CallWorkflow, in)
	var out string
	err := run.Get(ctx, &out)
	return out, run, err
}

func mustHistory(ctx context.Context, t *testing.T, c client.Client, id, runID string) []*historypb.HistoryEvent {
	t.Helper()
	events, err := harness.History(ctx, c, id, runID)
	if err != nil {
		t.Fatal(err)
	}
	return events
}

// firstOf returns the first event of type typ; a harness fault if none.
func firstOf(t *testing.T, events []*historypb.HistoryEvent, typ enumspb.EventType) *historypb.HistoryEvent {
	t.Helper()
	evs := harness.EventsOf(events, typ)
	if len(evs) == 0 {
		t.Fatalf("history has no %s event", typ)
	}
	return evs[0]
}

// pendingActivity returns the workflow's only pending activity, nil if none.
func pendingActivity(ctx context.Context, c client.Client, id string) (*workflowpb.PendingActivityInfo, error) {
	d, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", id, err)
	}
	if pas := d.GetPendingActivities(); len(pas) > 0 {
		return pas[0], nil
	}
	return nil, nil
}

// waitPending waits until the pending activity satisfies cond and returns it.
func waitPending(ctx context.Context, t *testing.T, c client.Client, id, what string, cond func(*workflowpb.PendingActivityInfo) bool) *workflowpb.PendingActivityInfo {
	t.Helper()
	var pa *workflowpb.PendingActivityInfo
	if err := harness.WaitFor(ctx, time.Minute, 20*time.Millisecond, what, func(ctx context.Context) (bool, error) {
		var err error
		pa, err = pendingActivity(ctx, c, id)
		return pa != nil && cond(pa), err
	}); err != nil {
		t.Fatal(err)
	}
	return pa
}

// readLedger reads the whole ledger; a harness fault if it cannot.
func readLedger(t *testing.T, path string) []ledger.Entry {
	t.Helper()
	entries, err := ledger.Read(path)
	if err != nil {
		t.Fatalf("ledger: %v", err)
	}
	return entries
}

// waitLedger waits until the ledger satisfies cond.
func waitLedger(ctx context.Context, t *testing.T, path, what string, cond func([]ledger.Entry) bool) {
	t.Helper()
	if err := harness.WaitFor(ctx, time.Minute, 10*time.Millisecond, what, func(context.Context) (bool, error) {
		entries, err := ledger.Read(path)
		return err == nil && cond(entries), err
	}); err != nil {
		t.Fatal(err)
	}
}

// entriesOf returns the ledger entries of phase, in file order.
func entriesOf(entries []ledger.Entry, phase string) []ledger.Entry {
	var out []ledger.Entry
	for _, e := range entries {
		if e.Phase == phase {
			out = append(out, e)
		}
	}
	return out
}

// ms formats a duration in milliseconds.
func ms(d time.Duration) string { return fmt.Sprintf("%dms", d.Round(time.Millisecond).Milliseconds()) }

// msList formats durations as "[100ms 200ms]".
func msList(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = ms(d)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// quietLogger discards the SDK's log lines, for clients and test
// environments that have no test logger.
func quietLogger() sdklog.Logger {
	return sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}
