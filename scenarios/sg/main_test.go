package sg

import (
	"context"
	"log/slog"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/harness"
)

// sgRole is a worker child process running the package's workflows; a short
// sticky timeout hands a killed worker's workflows to the next one soon.
const sgRole = "sg"

var roles = map[string]harness.WorkerRole{
	sgRole: {
		Options:  worker.Options{StickyScheduleToStartTimeout: time.Second},
		Register: func(r worker.Registry, _ harness.RoleConfig) { register(r) },
	},
}

func TestMain(m *testing.M) { harness.Main(m, "sg", roles) }

// startWorker runs an in-process worker for the package's workflows on tq,
// plus whatever extra registers.
func startWorker(t *testing.T, c client.Client, tq string, o worker.Options, extra ...func(worker.Registry)) {
	t.Helper()
	w := worker.New(c, tq, o)
	register(w)
	for _, f := range extra {
		f(w)
	}
	if err := w.Start(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	t.Cleanup(w.Stop)
}

// startChildWorker runs the package's workflows in a worker child process
// that the test can SIGKILL.
func startChildWorker(t *testing.T, address, tq string) *harness.Worker {
	t.Helper()
	env := harness.Get(t)
	return env.StartWorker(t, sgRole, harness.RoleConfig{Address: address, Namespace: env.Options.Namespace, TaskQueue: tq})
}

// startOptions are the options of a test's workflow: a short workflow task
// timeout, so that a task held by a killed worker is handed out again soon.
func startOptions(tq, id string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID: id, TaskQueue: tq,
		WorkflowTaskTimeout:                      2 * time.Second,
		WorkflowExecutionTimeout:                 10 * time.Minute,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}
}

// start starts a workflow; a run left open is terminated at test end.
func start(ctx context.Context, t *testing.T, c client.Client, o client.StartWorkflowOptions, wf any, args ...any) client.WorkflowRun {
	t.Helper()
	run, err := c.ExecuteWorkflow(ctx, o, wf, args...)
	if err != nil {
		t.Fatalf("start %s: %v", o.ID, err)
	}
	terminateAtEnd(t, c, run.GetID())
	return run
}

func terminateAtEnd(t *testing.T, c client.Client, id string) {
	t.Cleanup(func() { _ = c.TerminateWorkflow(context.Background(), id, "", "test cleanup") })
}

// query runs a query and decodes its answer into out.
func query(ctx context.Context, c client.Client, id, name string, out any) error {
	v, err := c.QueryWorkflow(ctx, id, "", name)
	if err != nil {
		return err
	}
	return v.Get(out)
}

// countEvents counts a workflow's history events by type, and in all.
func countEvents(ctx context.Context, c client.Client, id string) (map[enumspb.EventType]int, int, error) {
	events, err := harness.History(ctx, c, id, "")
	return harness.EventCounts(events), len(events), err
}

// restartServer SIGKILLs srv and starts it again on the same database file.
func restartServer(t *testing.T, srv *harness.Server) (down time.Duration) {
	t.Helper()
	killed := time.Now()
	if err := srv.Kill(); err != nil {
		t.Fatalf("kill server: %v", err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatalf("restart server: %v", err)
	}
	return time.Since(killed)
}

// quietLogger drops SDK logs, for clients and test environments whose
// expected warnings would drown the test output.
func quietLogger() log.Logger {
	return log.NewStructuredLogger(slog.New(slog.DiscardHandler))
}
