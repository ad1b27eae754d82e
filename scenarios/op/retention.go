package op

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	namespacepb "go.temporal.io/api/namespace/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/durabench/durabench/harness"
)

// OP-05's workflow and the observations its checks share: a run that
// completes (at once, or after a timer), namespaces registered with a
// retention of their own, and a watch that times a closed run's removal.

// retentionWorkflowName is RetentionWorkflow's registered name.
const retentionWorkflowName = "retentionWorkflow"

// RetentionWorkflow sleeps for hold (0: none) and completes: a closed run at
// once, or a run kept open on a timer.
func RetentionWorkflow(ctx workflow.Context, hold time.Duration) (string, error) {
	if hold > 0 {
		if err := workflow.Sleep(ctx, hold); err != nil {
			return "", err
		}
	}
	return workflow.GetInfo(ctx).WorkflowExecution.RunID, nil
}

// retentionPoll is how often a watch describes a run: the resolution of the
// observed removal times.
const retentionPoll = 100 * time.Millisecond

// retentionNS is a namespace with a client and a worker running
// RetentionWorkflow.
type retentionNS struct {
	name string
	c    client.Client
	tq   string
}

// newRetentionNS starts a worker for RetentionWorkflow on client c.
func newRetentionNS(t *testing.T, c client.Client, name string) retentionNS {
	t.Helper()
	n := retentionNS{name: name, c: c, tq: harness.TaskQueue(t)}
	w := worker.New(c, n.tq, worker.Options{})
	w.RegisterWorkflowWithOptions(RetentionWorkflow, workflow.RegisterOptions{Name: retentionWorkflowName})
	if err := w.Start(); err != nil {
		t.Fatalf("worker on %s: %v", name, err)
	}
	t.Cleanup(w.Stop)
	return n
}

// registerRetentionNS registers namespace name on the server at addr with
// retention r and the given archival state for history and visibility
// (the URIs are the server's defaults), and returns it with a worker. An
// error is the server refusing the registration.
func registerRetentionNS(ctx context.Context, t *testing.T, addr, name string, r time.Duration, archival enumspb.ArchivalState) (retentionNS, error) {
	t.Helper()
	nc, err := client.NewNamespaceClient(client.Options{HostPort: addr, Logger: harness.TestLogger(t)})
	if err != nil {
		t.Fatalf("namespace client: %v", err)
	}
	defer nc.Close()
	if err := nc.Register(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace:                        name,
		WorkflowExecutionRetentionPeriod: durationpb.New(r),
		HistoryArchivalState:             archival,
		VisibilityArchivalState:          archival,
	}); err != nil {
		return retentionNS{}, err
	}
	c, err := client.DialContext(ctx, client.Options{HostPort: addr, Namespace: name, Logger: harness.TestLogger(t)})
	if err != nil {
		t.Fatalf("dial namespace %s: %v", name, err)
	}
	t.Cleanup(c.Close)
	return newRetentionNS(t, c, name), nil
}

// describeNS returns the namespace's configuration as the server reports it.
func describeNS(ctx context.Context, t *testing.T, addr, name string) (*namespacepb.NamespaceConfig, error) {
	t.Helper()
	nc, err := client.NewNamespaceClient(client.Options{HostPort: addr, Logger: harness.TestLogger(t)})
	if err != nil {
		t.Fatalf("namespace client: %v", err)
	}
	defer nc.Close()
	resp, err := nc.Describe(ctx, name)
	return resp.GetConfig(), err
}

// updateRetention sets namespace name's retention to r.
func updateRetention(ctx context.Context, t *testing.T, addr, name string, r time.Duration) error {
	t.Helper()
	nc, err := client.NewNamespaceClient(client.Options{HostPort: addr, Logger: harness.TestLogger(t)})
	if err != nil {
		t.Fatalf("namespace client: %v", err)
	}
	defer nc.Close()
	return nc.Update(ctx, &workflowservice.UpdateNamespaceRequest{
		Namespace: name,
		Config:    &namespacepb.NamespaceConfig{WorkflowExecutionRetentionTtl: durationpb.New(r)},
	})
}

// closedRun is a run of RetentionWorkflow that completed.
type closedRun struct {
	id, runID string
	closed    time.Time // the server's close time
}

// start starts a RetentionWorkflow holding for hold; a run left open is
// terminated at test end.
func (n retentionNS) start(ctx context.Context, t *testing.T, hold time.Duration) client.WorkflowRun {
	t.Helper()
	id := harness.UniqueID(t, "retention")
	run, err := n.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id, TaskQueue: n.tq, WorkflowExecutionTimeout: 10 * time.Minute,
	}, retentionWorkflowName, hold)
	if err != nil {
		t.Fatalf("start in %s: %v", n.name, err)
	}
	t.Cleanup(func() { _ = n.c.TerminateWorkflow(context.Background(), id, run.GetRunID(), "test cleanup") })
	return run
}

// closeRun runs RetentionWorkflow to completion and returns the closed run.
func (n retentionNS) closeRun(ctx context.Context, t *testing.T) closedRun {
	t.Helper()
	run := n.start(ctx, t, 0)
	if err := run.Get(ctx, nil); err != nil {
		t.Fatalf("harness: run %s in %s did not complete: %v", run.GetID(), n.name, err)
	}
	desc, err := n.c.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
	if err != nil {
		t.Fatalf("describe %s: %v", run.GetID(), err)
	}
	return closedRun{id: run.GetID(), runID: run.GetRunID(), closed: desc.GetWorkflowExecutionInfo().GetCloseTime().AsTime()}
}

// removal is when a watched run was last found and first missing, as
// offsets from an origin (its close time, or the delete call).
type removal struct {
	presentUntil time.Duration // the send time of the last describe that found it
	goneAt       time.Duration // the receive time of the first describe that returned NotFound
	gone         bool
	err          error // another error, or the deadline passing with the run still there
}

func (r removal) String() string {
	switch {
	case r.gone:
		return fmt.Sprintf("last found at %.2fs, NotFound at %.2fs", r.presentUntil.Seconds(), r.goneAt.Seconds())
	case r.err != nil:
		return fmt.Sprintf("last found at %.2fs, not removed: %v", r.presentUntil.Seconds(), r.err)
	}
	return "not watched"
}

// watchRemoval describes run id/runID every retentionPoll until the server
// returns NotFound or until passes; times are offsets from origin.
func watchRemoval(ctx context.Context, c client.Client, id, runID string, origin, until time.Time) removal {
	var r removal
	err := harness.WaitFor(ctx, time.Until(until), retentionPoll, "removal of "+id, func(ctx context.Context) (bool, error) {
		sent := time.Now()
		_, err := c.DescribeWorkflowExecution(ctx, id, runID)
		switch {
		case err == nil:
			r.presentUntil = sent.Sub(origin)
			return false, nil
		case isNotFound(err):
			r.goneAt, r.gone = time.Since(origin), true
			return true, nil
		case ctx.Err() != nil: // the deadline, which WaitFor reports
			return false, nil
		}
		return false, err
	})
	if !r.gone {
		r.err = err
	}
	return r
}

// watch watches a closed run's removal by retention: until is the end of
// window w, and times are offsets from the close.
func (n retentionNS) watch(ctx context.Context, run closedRun, w retentionWindow) removal {
	return watchRemoval(ctx, n.c, run.id, run.runID, run.closed, run.closed.Add(w.retention+w.jitter+w.slack))
}

// visibleRuns lists the runs of workflow id that visibility returns, and
// counts them.
func visibleRuns(ctx context.Context, c client.Client, ns, id string) (listed, counted int, err error) {
	q := fmt.Sprintf("WorkflowId = '%s'", id)
	l, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: ns, Query: q})
	if err != nil {
		return 0, 0, err
	}
	n, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: ns, Query: q})
	return len(l.GetExecutions()), int(n.GetCount()), err
}

// isNotFound reports whether err is the server's NotFound.
func isNotFound(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf)
}

// archivedFiles lists the files under a filestore URI (file://dir),
// relative to dir.
func archivedFiles(uri string) ([]string, error) {
	dir, ok := strings.CutPrefix(uri, "file://")
	if !ok {
		return nil, fmt.Errorf("URI %q is not a file store", uri)
	}
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out, err
}
