package ex

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/durabench/durabench/harness"
)

// TestEX03 measures idempotent starts: conflict and reuse policies,
// concurrent identical starts, request-id deduplication and with-start calls.
func TestEX03(t *testing.T) {
	env := harness.Get(t)
	c := env.Dial(t)
	tq := harness.TaskQueue(t)
	w := worker.New(c, tq, worker.Options{})
	w.RegisterWorkflow(GateWorkflow)
	if err := w.Start(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	t.Cleanup(w.Stop)
	g := gate{c: c, tq: tq}

	t.Run("duplicate_start_rejected", g.testDuplicateRejected)
	t.Run("conflict_policies", g.testConflictPolicies)
	t.Run("reuse_policies", g.testReusePolicies)
	t.Run("control_terminate_existing", g.testControlTerminateExisting)
	t.Run("concurrent_starts", g.testConcurrentStarts)
	t.Run("request_id_dedup", g.testRequestIDDedup)
	t.Run("with_start_idempotent", g.testWithStart)
}

// gate starts GateWorkflows on one task queue served by an in-process worker.
type gate struct {
	c  client.Client
	tq string
}

func (g gate) options(id string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID: id, TaskQueue: g.tq,
		WorkflowExecutionTimeout:                 5 * time.Minute,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}
}

// start starts a GateWorkflow; a run left open is terminated at test end.
func (g gate) start(ctx context.Context, t *testing.T, o client.StartWorkflowOptions, in GateInput) (client.WorkflowRun, error) {
	run, err := g.c.ExecuteWorkflow(ctx, o, GateWorkflow, in)
	if err == nil {
		t.Cleanup(func() {
			_ = g.c.TerminateWorkflow(context.Background(), run.GetID(), run.GetRunID(), "test cleanup")
		})
	}
	return run, err
}

func (g gate) mustStart(ctx context.Context, t *testing.T, o client.StartWorkflowOptions, in GateInput) client.WorkflowRun {
	t.Helper()
	run, err := g.start(ctx, t, o, in)
	if err != nil {
		t.Fatalf("start %s: %v", o.ID, err)
	}
	return run
}

// closed starts a run that closes at once (failed if fail) and waits for it.
func (g gate) closed(ctx context.Context, t *testing.T, id string, fail bool) client.WorkflowRun {
	t.Helper()
	run := g.mustStart(ctx, t, g.options(id), GateInput{Done: !fail, Fail: fail})
	if err := run.Get(ctx, nil); (err != nil) != fail {
		t.Fatalf("run %s: want failure %v, got %v", id, fail, err)
	}
	return run
}

func (a attempt) String() string {
	switch {
	case a.err == nil:
		return "started run " + harness.ShortID(a.runID)
	case a.rejected():
		return "rejected (WorkflowExecutionAlreadyStarted)"
	}
	return "error: " + a.err.Error()
}

func (g gate) try(ctx context.Context, t *testing.T, o client.StartWorkflowOptions) attempt {
	run, err := g.start(ctx, t, o, GateInput{Done: true})
	if err != nil {
		return attempt{err: err}
	}
	return attempt{runID: run.GetRunID()}
}

// observeDuplicateStart starts a GateWorkflow, which keeps running, starts
// the same id again under conflict policy p (unspecified: the server's
// default, Fail), reads the first run's status, and starts the id a third
// time with the SDK's default, which joins a running run instead of failing.
func (g gate) observeDuplicateStart(ctx context.Context, t *testing.T, p enumspb.WorkflowIdConflictPolicy) duplicateStart {
	id := harness.UniqueID(t, "wf")
	first := g.mustStart(ctx, t, g.options(id), GateInput{})
	d := duplicateStart{firstRunID: first.GetRunID(), oldStatus: enumspb.WORKFLOW_EXECUTION_STATUS_UNSPECIFIED}
	o := g.options(id)
	o.WorkflowIDConflictPolicy = p
	if run, err := g.start(ctx, t, o, GateInput{}); err != nil {
		d.second.err = err
	} else {
		d.second.runID = run.GetRunID()
	}
	desc, err := g.c.DescribeWorkflowExecution(ctx, id, first.GetRunID())
	if err != nil {
		t.Fatalf("describe %s: %v", id, err)
	}
	d.oldStatus = desc.GetWorkflowExecutionInfo().GetStatus()
	o = g.options(id)
	o.WorkflowExecutionErrorWhenAlreadyStarted = false
	if run, err := g.start(ctx, t, o, GateInput{}); err != nil {
		d.joined.err = err
	} else {
		d.joined.runID = run.GetRunID()
	}
	return d
}

func (d duplicateStart) describe(policy string) string {
	joined := "error: " + fmt.Sprint(d.joined.err)
	if d.joined.err == nil {
		joined = fmt.Sprintf("returned run %s (the first run: %v)", harness.ShortID(d.joined.runID), d.joined.runID == d.firstRunID)
	}
	return fmt.Sprintf("first start: run %s, running; second start of the running id (conflict policy %s): %s; first run %s now %s; "+
		"a third start with the SDK default (no error when already started): %s",
		harness.ShortID(d.firstRunID), policy, d.second, harness.ShortID(d.firstRunID), d.oldStatus, joined)
}

func (g gate) testDuplicateRejected(t *testing.T) {
	check := harness.Get(t).Check(t, "EX-03.duplicate-start-rejected")
	ctx := harness.Context(t, 2*time.Minute)
	d := g.observeDuplicateStart(ctx, t, enumspb.WORKFLOW_ID_CONFLICT_POLICY_UNSPECIFIED)
	harness.Decide(check, duplicateStartPredicate, d, d.describe("unspecified, the server's default Fail"), nil)
}

func (g gate) testConflictPolicies(t *testing.T) {
	check := harness.Get(t).Check(t, "EX-03.conflict-policies")
	ctx := harness.Context(t, 2*time.Minute)
	id := harness.UniqueID(t, "wf")
	first := g.mustStart(ctx, t, g.options(id), GateInput{})
	withPolicy := func(p enumspb.WorkflowIdConflictPolicy) client.StartWorkflowOptions {
		o := g.options(id)
		o.WorkflowIDConflictPolicy = p
		return o
	}
	o := conflicts{firstRunID: first.GetRunID()}
	o.fail = g.try(ctx, t, withPolicy(enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL))
	o.useExisting = g.try(ctx, t, withPolicy(enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING))
	o.terminate = g.try(ctx, t, withPolicy(enumspb.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING))
	d, err := g.c.DescribeWorkflowExecution(ctx, id, first.GetRunID())
	if err != nil {
		t.Fatalf("describe %s: %v", id, err)
	}
	o.oldStatus = d.GetWorkflowExecutionInfo().GetStatus()
	harness.Decide(check, conflictPredicate, o, fmt.Sprintf("running run %s; Fail: %s; UseExisting: %s (same run: %v); TerminateExisting: %s, old run now %s",
		harness.ShortID(o.firstRunID), o.fail, o.useExisting, o.useExisting.runID == o.firstRunID, o.terminate, o.oldStatus), nil)
}

// reuseAttempt starts id again after it closed, under reuse policy p.
func (g gate) reuseAttempt(ctx context.Context, t *testing.T, id string, p enumspb.WorkflowIdReusePolicy) attempt {
	o := g.options(id)
	o.WorkflowIDReusePolicy = p
	return g.try(ctx, t, o)
}

func (g gate) testReusePolicies(t *testing.T) {
	check := harness.Get(t).Check(t, "EX-03.reuse-policies")
	ctx := harness.Context(t, 2*time.Minute)
	succeeded := harness.UniqueID(t, "ok")
	failed := harness.UniqueID(t, "failed")
	o := reuses{succeeded: g.closed(ctx, t, succeeded, false).GetRunID(), failed: g.closed(ctx, t, failed, true).GetRunID()}
	o.reject = g.reuseAttempt(ctx, t, succeeded, enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE)
	o.failedOnly = g.reuseAttempt(ctx, t, succeeded, enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY)
	o.failedOnlyAfterFailure = g.reuseAttempt(ctx, t, failed, enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY)
	o.allow = g.reuseAttempt(ctx, t, succeeded, enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE)
	harness.Decide(check, reusePredicate, o, fmt.Sprintf("after completed run %s: RejectDuplicate %s; AllowDuplicateFailedOnly %s; AllowDuplicate %s. "+
		"After failed run %s: AllowDuplicateFailedOnly %s", harness.ShortID(o.succeeded), o.reject, o.failedOnly, o.allow,
		harness.ShortID(o.failed), o.failedOnlyAfterFailure), nil)
}

// testControlTerminateExisting runs the level-2 rejection predicate on a
// second start of a running id under conflict policy TerminateExisting: the
// duplicate gets through (the first run is terminated), so the control fails.
func (g gate) testControlTerminateExisting(t *testing.T) {
	control := harness.Get(t).Control(t, "EX-03.control-terminate-existing")
	ctx := harness.Context(t, 2*time.Minute)
	d := g.observeDuplicateStart(ctx, t, enumspb.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING)
	harness.Decide(control, duplicateStartPredicate, d, d.describe("TerminateExisting"), nil)
}

// concurrently runs n copies of f released at the same instant.
func concurrently(n int, f func() attempt) []attempt {
	out := make([]attempt, n)
	var wg sync.WaitGroup
	release := make(chan struct{})
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-release
			out[i] = f()
		}()
	}
	close(release)
	wg.Wait()
	return out
}

func (g gate) testConcurrentStarts(t *testing.T) {
	check := harness.Get(t).Check(t, "EX-03.concurrent-starts")
	ctx := harness.Context(t, 2*time.Minute)
	const n = concurrentStartsN
	failID := harness.UniqueID(t, "fail")
	fail := concurrently(n, func() attempt {
		run, err := g.start(ctx, t, g.options(failID), GateInput{})
		if err != nil {
			return attempt{err: err}
		}
		return attempt{runID: run.GetRunID()}
	})
	o := concurrentStarts{n: n, useN: n}
	var other []error
	for _, a := range fail {
		switch {
		case a.err == nil:
			o.started++
		case a.rejected():
			o.rejected++
		default:
			other = append(other, a.err)
		}
	}
	o.other = len(other)
	o.visible, o.countErr = g.countRuns(ctx, failID)

	useID := harness.UniqueID(t, "use")
	use := concurrently(n, func() attempt {
		o := g.options(useID)
		o.WorkflowIDConflictPolicy = enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING
		run, err := g.start(ctx, t, o, GateInput{})
		if err != nil {
			return attempt{err: err}
		}
		return attempt{runID: run.GetRunID()}
	})
	distinct := map[string]bool{}
	for _, a := range use {
		if a.err != nil {
			o.useErrs++
			continue
		}
		distinct[a.runID] = true
	}
	o.useDistinct = len(distinct)
	harness.Decide(check, concurrentPredicate, o, fmt.Sprintf("%d concurrent starts with conflict policy Fail: %d started, %d rejected, other errors %v; "+
		"visibility counts %d run(s) for the id (error: %v). %d concurrent starts with UseExisting: %d distinct run id(s), %d errors",
		n, o.started, o.rejected, other, o.visible, o.countErr, n, o.useDistinct, o.useErrs),
		map[string]float64{"concurrent_starts": n, "runs_created": float64(o.visible)})
}

// countRuns counts the runs visibility knows for id, waiting until the
// first is visible (visibility is written asynchronously).
func (g gate) countRuns(ctx context.Context, id string) (int64, error) {
	var n int64
	err := harness.WaitFor(ctx, 30*time.Second, 100*time.Millisecond, "visibility of "+id, func(ctx context.Context) (bool, error) {
		resp, err := g.c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: fmt.Sprintf("WorkflowId = '%s'", id)})
		if err != nil {
			return false, err
		}
		n = resp.GetCount()
		return n > 0, nil
	})
	return n, err
}

func (g gate) testRequestIDDedup(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "EX-03.request-id-dedup")
	ctx := harness.Context(t, 2*time.Minute)
	id := harness.UniqueID(t, "wf")
	input, err := converter.GetDefaultDataConverter().ToPayloads(GateInput{})
	if err != nil {
		t.Fatal(err)
	}
	req := func(requestID string) *workflowservice.StartWorkflowExecutionRequest {
		return &workflowservice.StartWorkflowExecutionRequest{
			Namespace: env.Options.Namespace, WorkflowId: id, RequestId: requestID,
			WorkflowType:             &commonpb.WorkflowType{Name: "GateWorkflow"},
			TaskQueue:                &taskqueuepb.TaskQueue{Name: g.tq},
			Input:                    input,
			WorkflowExecutionTimeout: durationpb.New(5 * time.Minute),
			WorkflowIdConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		}
	}
	svc := g.c.WorkflowService()
	requestID := uuid.NewString()
	r1, err1 := svc.StartWorkflowExecution(ctx, req(requestID))
	if err1 == nil {
		t.Cleanup(func() { _ = g.c.TerminateWorkflow(context.Background(), id, r1.GetRunId(), "test cleanup") })
	}
	r2, err2 := svc.StartWorkflowExecution(ctx, req(requestID)) // a retry of the same request
	_, err3 := svc.StartWorkflowExecution(ctx, req(uuid.NewString()))
	o := requestIDs{first: attempt{runID: r1.GetRunId(), err: err1}, retry: attempt{runID: r2.GetRunId(), err: err2}, fresh: attempt{err: err3}}
	harness.Decide(check, requestIDPredicate, o, fmt.Sprintf("conflict policy Fail; first request: run %s (error: %v); same request id again: run %s (error: %v, started flag %v); "+
		"a new request id: %v", harness.ShortID(r1.GetRunId()), err1, harness.ShortID(r2.GetRunId()), err2, r2.GetStarted(), attempt{err: err3}), nil)
}

func (g gate) testWithStart(t *testing.T) {
	check := harness.Get(t).Check(t, "EX-03.with-start-idempotent")
	ctx := harness.Context(t, 2*time.Minute)

	// Signal-with-start twice: one run, both signals delivered.
	sigID := harness.UniqueID(t, "sig")
	o := g.options(sigID)
	o.WorkflowExecutionErrorWhenAlreadyStarted = false
	var sigRuns []string
	var sigErr error
	for range 2 {
		run, err := g.c.SignalWithStartWorkflow(ctx, sigID, "ping", nil, o, GateWorkflow, GateInput{})
		if err != nil {
			sigErr = err
			break
		}
		sigRuns = append(sigRuns, run.GetRunID())
	}
	t.Cleanup(func() { _ = g.c.TerminateWorkflow(context.Background(), sigID, "", "test cleanup") })
	sigState, sigQueryErr := g.state(ctx, sigID)

	// Update-with-start twice with one update id: one run, one execution.
	updID := harness.UniqueID(t, "upd")
	var updRuns []string
	var results []int
	var updErr error
	for range 2 {
		uo := g.options(updID)
		uo.WorkflowIDConflictPolicy = enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING
		uo.WorkflowExecutionErrorWhenAlreadyStarted = false
		op := g.c.NewWithStartWorkflowOperation(uo, GateWorkflow, GateInput{})
		h, err := g.c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
			StartWorkflowOperation: op,
			UpdateOptions: client.UpdateWorkflowOptions{
				UpdateID: "bump-once", UpdateName: "bump", WaitForStage: client.WorkflowUpdateStageCompleted,
			},
		})
		var v int
		if err == nil {
			err = h.Get(ctx, &v)
		}
		if err != nil {
			updErr = err
			break
		}
		results = append(results, v)
		updRuns = append(updRuns, h.RunID())
	}
	t.Cleanup(func() { _ = g.c.TerminateWorkflow(context.Background(), updID, "", "test cleanup") })
	updState, updQueryErr := g.state(ctx, updID)

	ws := withStarts{sigRuns: sigRuns, sigErr: errors.Join(sigErr, sigQueryErr), pings: sigState.Pings,
		updRuns: updRuns, updResults: results, updErr: errors.Join(updErr, updQueryErr), bumps: updState.Bumps}
	harness.Decide(check, withStartPredicate, ws, fmt.Sprintf("signal-with-start ×2: runs %v (error: %v), signals received %d (query error: %v); "+
		"update-with-start ×2 with one update id: runs %v, results %v (error: %v), update executed %d time(s) (query error: %v)",
		harness.ShortIDs(sigRuns), sigErr, sigState.Pings, sigQueryErr, harness.ShortIDs(updRuns), results, updErr, updState.Bumps, updQueryErr), nil)
}

func (g gate) state(ctx context.Context, id string) (GateState, error) {
	var st GateState
	v, err := g.c.QueryWorkflow(ctx, id, "", "state")
	if err == nil {
		err = v.Get(&st)
	}
	return st, err
}
