package cp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	activitypb "go.temporal.io/api/activity/v1"
	batchpb "go.temporal.io/api/batch/v1"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/durabench/durabench/harness"
)

// opIdentity is the identity of the operator's client: every intervention
// should be recorded under it.
const opIdentity = "operator-alice"

// opReasonHeader is the header under which the operator's client sends the
// reason for a signal or an update, which have no reason field.
const opReasonHeader = "operator-reason"

// opBatchGroupKey is the custom search attribute that selects the runs of a
// batch operation.
var opBatchGroupKey = temporal.NewSearchAttributeKeyKeyword("CpBatchGroup")

// TestCP03 measures manual intervention through the API: cancel and
// terminate, skipping a step by signal, correcting data by update,
// completing and failing an activity by hand, changing a pending activity's
// options, batch operations over a visibility query, and the audit trail all
// of these leave in history.
func TestCP03(t *testing.T) {
	env := harness.Get(t)
	ctx := harness.Context(t, 3*time.Minute)
	op := cpDialOperator(t, env)
	cpEnsureSearchAttributes(ctx, t, op, env.Options.Namespace, map[string]enumspb.IndexedValueType{
		opBatchGroupKey.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	})
	f := &opFixture{env: env, wc: env.Dial(t), op: op, tq: harness.TaskQueue(t), acts: &InterventionActivities{}}
	w := worker.New(f.wc, f.tq, worker.Options{})
	for _, wf := range []any{GuardedWorkflow, StuckStepsWorkflow, AddressFixWorkflow, ApprovalWorkflow, BatchTargetWorkflow, RetuneWorkflow} {
		w.RegisterWorkflow(wf)
	}
	w.RegisterActivity(f.acts)
	if err := w.Start(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	t.Cleanup(w.Stop)

	t.Run("cancel_terminate", f.testCancelTerminate)
	t.Run("skip_by_signal", f.testSkipBySignal)
	t.Run("edit_by_update", f.testEditByUpdate)
	t.Run("complete_activity_by_hand", f.testCompleteByHand)
	t.Run("activity_options_update", f.testActivityOptions)
	t.Run("batch_operations", f.testBatch)
	// Last: it reads the history every intervention above left.
	t.Run("audit_trail", f.testAuditTrail)
}

// opFixture is the operator's setting: a worker's client and task queue, and
// the operator's own client, whose interventions are logged for the audit.
type opFixture struct {
	env  *harness.Env
	wc   client.Client // the worker's client
	op   client.Client // the operator's: identity opIdentity, reasons in a header
	tq   string
	acts *InterventionActivities
	log  []opIntervention
}

// opIntervention is one intervention made, for the audit-trail check.
type opIntervention struct {
	kind      string
	id, runID string
	given     string // the operator's reason
}

func (f *opFixture) note(kind string, run client.WorkflowRun, reason string) {
	f.log = append(f.log, opIntervention{kind: kind, id: run.GetID(), runID: run.GetRunID(), given: reason})
}

// opReasonKey carries the operator's reason in a context.
type opReasonKey struct{}

// opWithReason returns ctx carrying the operator's reason for the signal or
// update sent with it.
func opWithReason(ctx context.Context, reason string) context.Context {
	return context.WithValue(ctx, opReasonKey{}, reason)
}

// opReasonPropagator writes the reason a context carries into the header of
// the signals and updates the operator's client sends.
type opReasonPropagator struct{}

func (opReasonPropagator) Inject(ctx context.Context, w workflow.HeaderWriter) error {
	reason, _ := ctx.Value(opReasonKey{}).(string)
	if reason == "" {
		return nil
	}
	p, err := converter.GetDefaultDataConverter().ToPayload(reason)
	if err != nil {
		return err
	}
	w.Set(opReasonHeader, p)
	return nil
}

// Extract, InjectFromWorkflow and ExtractToWorkflow do nothing: the reason
// travels only from the operator's client to history.
func (opReasonPropagator) Extract(ctx context.Context, _ workflow.HeaderReader) (context.Context, error) {
	return ctx, nil
}

func (opReasonPropagator) InjectFromWorkflow(workflow.Context, workflow.HeaderWriter) error {
	return nil
}

func (opReasonPropagator) ExtractToWorkflow(ctx workflow.Context, _ workflow.HeaderReader) (workflow.Context, error) {
	return ctx, nil
}

// cpDialOperator dials the package's server as the operator.
func cpDialOperator(t *testing.T, env *harness.Env) client.Client {
	t.Helper()
	o := env.Options
	o.Identity = opIdentity
	o.ContextPropagators = []workflow.ContextPropagator{opReasonPropagator{}}
	o.Logger = harness.TestLogger(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, o)
	if err != nil {
		t.Fatalf("dial as operator: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// cpEnsureSearchAttributes adds the custom search attributes that are
// missing and waits until a query on each is accepted.
func cpEnsureSearchAttributes(ctx context.Context, t *testing.T, c client.Client, ns string, attrs map[string]enumspb.IndexedValueType) {
	t.Helper()
	ops := c.OperatorService()
	list, err := ops.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: ns})
	if err != nil {
		t.Fatalf("list search attributes: %v", err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range attrs {
		if _, ok := list.GetCustomAttributes()[name]; !ok {
			missing[name] = typ
		}
	}
	if len(missing) > 0 {
		_, err := ops.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: ns, SearchAttributes: missing})
		var exists *serviceerror.AlreadyExists
		if err != nil && !errors.As(err, &exists) {
			t.Fatalf("add search attributes %v: %v", missing, err)
		}
	}
	for name := range attrs {
		err := harness.WaitFor(ctx, 30*time.Second, 100*time.Millisecond, "search attribute "+name, func(ctx context.Context) (bool, error) {
			_, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: ns, Query: name + " IS NOT NULL"})
			var invalid *serviceerror.InvalidArgument
			if errors.As(err, &invalid) {
				return false, nil
			}
			return err == nil, err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// start starts a workflow on the fixture's queue; a run left open is
// terminated at test end.
func (f *opFixture) start(ctx context.Context, t *testing.T, prefix string, o client.StartWorkflowOptions, wf any, args ...any) client.WorkflowRun {
	t.Helper()
	o.ID = harness.UniqueID(t, prefix)
	o.TaskQueue = f.tq
	if o.WorkflowExecutionTimeout == 0 {
		o.WorkflowExecutionTimeout = 5 * time.Minute
	}
	run, err := f.wc.ExecuteWorkflow(ctx, o, wf, args...)
	if err != nil {
		t.Fatalf("start %s: %v", o.ID, err)
	}
	t.Cleanup(func() { _ = f.wc.TerminateWorkflow(context.Background(), run.GetID(), run.GetRunID(), "test cleanup") })
	return run
}

// cpStatus is a run's status, UNSPECIFIED when describe fails.
func cpStatus(ctx context.Context, c client.Client, id, runID string) enumspb.WorkflowExecutionStatus {
	d, err := c.DescribeWorkflowExecution(ctx, id, runID)
	if err != nil {
		return enumspb.WORKFLOW_EXECUTION_STATUS_UNSPECIFIED
	}
	return d.GetWorkflowExecutionInfo().GetStatus()
}

// cpAwaitClosed waits until a run is closed and returns its status (RUNNING
// if it never closed).
func cpAwaitClosed(ctx context.Context, c client.Client, id, runID string, timeout time.Duration) enumspb.WorkflowExecutionStatus {
	st := wsRunning
	_ = harness.WaitFor(ctx, timeout, 50*time.Millisecond, id+" to close", func(ctx context.Context) (bool, error) {
		st = cpStatus(ctx, c, id, runID)
		return st != wsRunning && st != enumspb.WORKFLOW_EXECUTION_STATUS_UNSPECIFIED, nil
	})
	return st
}

// cpAwaitEvent waits until a run's history holds an event of type typ.
func cpAwaitEvent(ctx context.Context, t *testing.T, c client.Client, id, runID string, typ enumspb.EventType) {
	t.Helper()
	err := harness.WaitFor(ctx, 30*time.Second, 50*time.Millisecond, fmt.Sprintf("%s in %s", typ, id), func(ctx context.Context) (bool, error) {
		events, err := harness.History(ctx, c, id, runID)
		return len(harness.EventsOf(events, typ)) > 0, err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// cpPendingActivity returns a run's pending activity activityID, nil when
// there is none.
func cpPendingActivity(ctx context.Context, c client.Client, id, runID, activityID string) (*workflowpb.PendingActivityInfo, error) {
	d, err := c.DescribeWorkflowExecution(ctx, id, runID)
	if err != nil {
		return nil, err
	}
	for _, pa := range d.GetPendingActivities() {
		if pa.GetActivityId() == activityID {
			return pa, nil
		}
	}
	return nil, nil
}

// cpFirstTaskCompleted is the id of a history's first WorkflowTaskCompleted
// event, the reset point that re-runs everything after the start.
func cpFirstTaskCompleted(events []*historypb.HistoryEvent) int64 {
	if done := harness.EventsOf(events, enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED); len(done) > 0 {
		return done[0].GetEventId()
	}
	return 0
}

func (f *opFixture) testCancelTerminate(t *testing.T) {
	check := f.env.Check(t, "CP-03.cancel-terminate")
	ctx := harness.Context(t, time.Minute)
	cRun := f.start(ctx, t, "cancel", client.StartWorkflowOptions{}, GuardedWorkflow)
	tRun := f.start(ctx, t, "terminate", client.StartWorkflowOptions{}, GuardedWorkflow)
	for _, r := range []client.WorkflowRun{cRun, tRun} {
		cpAwaitEvent(ctx, t, f.wc, r.GetID(), r.GetRunID(), enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
	}
	const cancelReason, terminateReason = "customer withdrew the order", "runaway run: stop it now"
	var s opStops
	cancelAt := time.Now()
	s.cancel.err = f.op.CancelWorkflowWithOptions(ctx, client.CancelWorkflowOptions{WorkflowID: cRun.GetID(), RunID: cRun.GetRunID(), Reason: cancelReason})
	s.cancel.firstStatus = cpStatus(ctx, f.op, cRun.GetID(), cRun.GetRunID())
	s.terminate.err = f.op.TerminateWorkflow(ctx, tRun.GetID(), tRun.GetRunID(), terminateReason)
	s.terminate.firstStatus = cpStatus(ctx, f.op, tRun.GetID(), tRun.GetRunID())
	s.cancel.status = cpAwaitClosed(ctx, f.op, cRun.GetID(), cRun.GetRunID(), 20*time.Second)
	cancelClosed := time.Since(cancelAt)
	s.terminate.status = cpAwaitClosed(ctx, f.op, tRun.GetID(), tRun.GetRunID(), 20*time.Second)
	for _, x := range []struct {
		st  *opStop
		run client.WorkflowRun
	}{{&s.cancel, cRun}, {&s.terminate, tRun}} {
		x.st.cleanups = len(f.acts.runsOf(CleanupKey(x.run.GetID())))
		events, err := harness.History(ctx, f.wc, x.run.GetID(), x.run.GetRunID())
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range harness.EventsOf(events, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) {
			if ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName() == "Cleanup" {
				x.st.cleanupScheduled = true
			}
		}
	}
	if s.cancel.err == nil {
		f.note("cancel", cRun, cancelReason)
	}
	if s.terminate.err == nil {
		f.note("terminate", tRun, terminateReason)
	}
	harness.Decide(check, opCancelTerminatePredicate, s, fmt.Sprintf(
		"two GuardedWorkflow runs waiting. Cancel (error: %v): status right after the call %s, closed as %s after %d ms; Cleanup scheduled in history %v, executions %d. "+
			"Terminate (error: %v): status right after the call %s, final %s; Cleanup scheduled %v, executions %d",
		s.cancel.err, s.cancel.firstStatus, s.cancel.status, cancelClosed.Milliseconds(), s.cancel.cleanupScheduled, s.cancel.cleanups,
		s.terminate.err, s.terminate.firstStatus, s.terminate.status, s.terminate.cleanupScheduled, s.terminate.cleanups),
		map[string]float64{"cancel_to_closed_ms": float64(cancelClosed.Milliseconds())})
}

func (f *opFixture) testSkipBySignal(t *testing.T) {
	check := f.env.Check(t, "CP-03.skip-by-signal")
	ctx := harness.Context(t, time.Minute)
	run := f.start(ctx, t, "skip", client.StartWorkflowOptions{}, StuckStepsWorkflow)
	key := StepKey(run.GetID(), StuckStep)
	// Three attempts started: at least two failed, the step is stuck.
	if err := harness.WaitFor(ctx, 30*time.Second, 50*time.Millisecond, "the stuck step's third attempt", func(context.Context) (bool, error) {
		return len(f.acts.runsOf(key)) >= 3, nil
	}); err != nil {
		t.Fatal(err)
	}
	const reason = "enrichment service down for the day: ship without it"
	s := opSkip{stuckAttempts: len(f.acts.runsOf(key))}
	s.signalErr = f.op.SignalWorkflow(opWithReason(ctx, reason), run.GetID(), run.GetRunID(), SkipStepSignal, StuckStep)
	if s.signalErr == nil {
		f.note("signal", run, reason)
	}
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	s.err = harness.AwaitResult(rctx, run, &s.result)
	after := len(f.acts.runsOf(key))
	harness.Decide(check, opSkipBySignalPredicate, s, fmt.Sprintf(
		"step %s failing every attempt (retry every 200 ms, unlimited): %d attempts before the %s signal (error: %v), %d in all; workflow result %v (error: %v)",
		StuckStep, s.stuckAttempts, SkipStepSignal, s.signalErr, after, s.result, s.err),
		map[string]float64{"stuck_attempts": float64(s.stuckAttempts)})
}

func (f *opFixture) update(ctx context.Context, run client.WorkflowRun, reason, addr string) (string, error) {
	h, err := f.op.UpdateWorkflow(opWithReason(ctx, reason), client.UpdateWorkflowOptions{
		WorkflowID: run.GetID(), RunID: run.GetRunID(), UpdateName: FixAddressUpdate, Args: []any{addr},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	var out string
	if err == nil {
		err = h.Get(ctx, &out)
	}
	return out, err
}

func (f *opFixture) testEditByUpdate(t *testing.T) {
	check := f.env.Check(t, "CP-03.edit-by-update")
	ctx := harness.Context(t, time.Minute)
	parcel := Parcel{ID: "p-1", Address: "Main St"}
	run := f.start(ctx, t, "edit", client.StartWorkflowOptions{}, AddressFixWorkflow, parcel)
	e := opEdit{badAddr: "Main Street", goodAddr: "10 Main St"}
	if err := harness.WaitFor(ctx, 30*time.Second, 50*time.Millisecond, "the parcel to wait for an address", func(ctx context.Context) (bool, error) {
		v, err := f.wc.QueryWorkflow(ctx, run.GetID(), run.GetRunID(), ParcelStatusQuery)
		if err != nil {
			return false, nil // the first workflow task may not have run yet
		}
		if err := v.Get(&e.waiting); err != nil {
			return false, err
		}
		return e.waiting == opWaitingForAddress, nil
	}); err != nil {
		t.Fatal(err)
	}
	const reason = "customer phoned in the house number"
	_, e.rejectErr = f.update(ctx, run, reason, e.badAddr)
	e.acceptOut, e.acceptErr = f.update(ctx, run, reason, e.goodAddr)
	if e.acceptErr == nil {
		f.note("update", run, reason)
	}
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	e.err = harness.AwaitResult(rctx, run, &e.result)
	events, err := harness.History(ctx, f.wc, run.GetID(), run.GetRunID())
	if err != nil {
		t.Fatal(err)
	}
	dc := converter.GetDefaultDataConverter()
	for _, ev := range harness.EventsOf(events, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) {
		var p Parcel
		if err := dc.FromPayloads(ev.GetActivityTaskScheduledEventAttributes().GetInput(), &p); err != nil {
			t.Fatalf("Deliver input: %v", err)
		}
		e.delivered = append(e.delivered, p.Address)
	}
	e.rejectedRan = slices.Contains(e.delivered, e.badAddr)
	accepted := len(harness.EventsOf(events, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED))
	harness.Decide(check, opEditByUpdatePredicate, e, fmt.Sprintf(
		"parcel refused for address %q, workflow status %q. Update %q: %v. Update %q: %q (error: %v). Updates accepted in history: %d. "+
			"Deliver called with %q; workflow result %q (error: %v)",
		parcel.Address, e.waiting, e.badAddr, e.rejectErr, e.goodAddr, e.acceptOut, e.acceptErr, accepted, e.delivered, e.result, e.err), nil)
}

// awaitStarted waits until a run's pending activity activityID is started
// by a worker.
func (f *opFixture) awaitStarted(ctx context.Context, t *testing.T, run client.WorkflowRun, activityID string) {
	t.Helper()
	err := harness.WaitFor(ctx, 30*time.Second, 50*time.Millisecond, activityID+" started in "+run.GetID(), func(ctx context.Context) (bool, error) {
		pa, err := cpPendingActivity(ctx, f.wc, run.GetID(), run.GetRunID(), activityID)
		return pa.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED, err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (f *opFixture) testCompleteByHand(t *testing.T) {
	check := f.env.Check(t, "CP-03.complete-activity-by-hand")
	ctx := harness.Context(t, time.Minute)
	ns := f.env.Options.Namespace
	okRun := f.start(ctx, t, "approve", client.StartWorkflowOptions{}, ApprovalWorkflow)
	noRun := f.start(ctx, t, "reject", client.StartWorkflowOptions{}, ApprovalWorkflow)
	f.awaitStarted(ctx, t, okRun, ApprovalActivityID)
	f.awaitStarted(ctx, t, noRun, ApprovalActivityID)
	b := opByHand{decision: "approved by alice after a phone call", failMsg: "credit check failed on manual review"}
	b.completeErr = f.op.CompleteActivityByID(ctx, ns, okRun.GetID(), okRun.GetRunID(), ApprovalActivityID, b.decision, nil)
	b.failErr = f.op.CompleteActivityByID(ctx, ns, noRun.GetID(), noRun.GetRunID(), ApprovalActivityID, nil,
		temporal.NewNonRetryableApplicationError(b.failMsg, ManualRejectionType, nil))
	if b.completeErr == nil {
		f.note("complete", okRun, b.decision)
	}
	if b.failErr == nil {
		f.note("fail", noRun, b.failMsg)
	}
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	b.completedErr = harness.AwaitResult(rctx, okRun, &b.completed)
	b.failedErr = harness.AwaitResult(rctx, noRun, &b.failed)
	harness.Decide(check, opCompleteByHandPredicate, b, fmt.Sprintf(
		"activity %q returning ErrResultPending in two runs. CompleteActivityByID with result %q (error: %v): workflow result %q (error: %v). "+
			"CompleteActivityByID with a non-retryable %s %q (error: %v): workflow result %q (error: %v)",
		ApprovalActivityID, b.decision, b.completeErr, b.completed, b.completedErr, ManualRejectionType, b.failMsg, b.failErr, b.failed, b.failedErr), nil)
}

func (f *opFixture) testActivityOptions(t *testing.T) {
	check := f.env.Check(t, "CP-03.activity-options-update")
	ctx := harness.Context(t, time.Minute)
	// The server does not schedule a retry due after the run's timeout, so
	// the run must outlive the original hour-long retry interval.
	run := f.start(ctx, t, "retune", client.StartWorkflowOptions{WorkflowExecutionTimeout: 2 * time.Hour}, RetuneWorkflow)
	// The first attempt failed; the second is an hour away.
	if err := harness.WaitFor(ctx, 30*time.Second, 50*time.Millisecond, "Flaky in backoff before attempt 2", func(ctx context.Context) (bool, error) {
		pa, err := cpPendingActivity(ctx, f.wc, run.GetID(), run.GetRunID(), FlakyActivityID)
		return pa.GetAttempt() == 2 && pa.GetState() == enumspb.PENDING_ACTIVITY_STATE_SCHEDULED, err
	}); err != nil {
		t.Fatal(err)
	}
	newPolicy := &commonpb.RetryPolicy{
		InitialInterval: durationpb.New(100 * time.Millisecond), BackoffCoefficient: 1,
		MaximumInterval: durationpb.New(100 * time.Millisecond), MaximumAttempts: 5,
	}
	r := opRetune{
		original: fmt.Sprintf("initial interval %s, maximum attempts %d", FlakyOriginalPolicy.InitialInterval, FlakyOriginalPolicy.MaximumAttempts),
		updated:  "retry policy: initial and maximum interval 100ms, maximum attempts 5",
	}
	_, r.updateErr = f.op.WorkflowService().UpdateActivityOptions(ctx, &workflowservice.UpdateActivityOptionsRequest{
		Namespace: f.env.Options.Namespace, Execution: &commonpb.WorkflowExecution{WorkflowId: run.GetID(), RunId: run.GetRunID()},
		Identity: opIdentity, Activity: &workflowservice.UpdateActivityOptionsRequest_Id{Id: FlakyActivityID},
		ActivityOptions: &activitypb.ActivityOptions{RetryPolicy: newPolicy},
		UpdateMask:      &fieldmaskpb.FieldMask{Paths: []string{"retry_policy"}},
	})
	r.updatedAt = time.Now()
	if r.updateErr == nil {
		f.note("activity options", run, "upstream recovered: retry sooner and longer")
	}
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	r.err = harness.AwaitResult(rctx, run, &r.result)
	r.attempts = f.acts.runsOf(FlakyKey(run.GetID()))
	var gaps []string
	for i := 1; i < len(r.attempts); i++ {
		from := r.attempts[i-1]
		if i == 1 {
			from = r.updatedAt
		}
		gaps = append(gaps, fmt.Sprintf("%d ms", r.attempts[i].Sub(from).Milliseconds()))
	}
	metrics := map[string]float64{"attempts": float64(len(r.attempts))}
	if len(r.attempts) > 1 {
		metrics["update_to_next_attempt_ms"] = float64(r.attempts[1].Sub(r.updatedAt).Milliseconds())
	}
	harness.Decide(check, opActivityOptionsPredicate, r, fmt.Sprintf(
		"Flaky fails before attempt %d under %s; after attempt 1 failed, UpdateActivityOptions set the %s (error: %v). "+
			"Attempts run: %d; from the update to attempt 2, then between attempts: %v; workflow result %q (error: %v)",
		FlakySucceedsAt, r.original, r.updated, r.updateErr, len(r.attempts), gaps, r.result, r.err), metrics)
}

// opBatchGroups are the batch operations, each over its own group of runs,
// in the order they run; the control group matches none.
var opBatchGroups = []string{"signal", "cancel", "terminate"}

// runBatch starts one batch operation, waiting for the namespace's batch
// slot, and waits for it to finish.
func (f *opFixture) runBatch(ctx context.Context, req *workflowservice.StartBatchOperationRequest) opBatchJob {
	job := opBatchJob{query: req.GetVisibilityQuery()}
	req.Namespace, req.JobId = f.env.Options.Namespace, uuid.NewString()
	svc := f.op.WorkflowService()
	// Only one batch operation runs per namespace; the previous one may still
	// be counted as open until visibility catches up.
	job.err = harness.WaitFor(ctx, time.Minute, 200*time.Millisecond, "a free batch slot", func(ctx context.Context) (bool, error) {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := svc.StartBatchOperation(sctx, req)
		var busy *serviceerror.ResourceExhausted
		if errors.As(err, &busy) || errors.Is(err, context.DeadlineExceeded) {
			return false, nil
		}
		return err == nil, err
	})
	if job.err != nil {
		return job
	}
	job.err = harness.WaitFor(ctx, time.Minute, 100*time.Millisecond, "batch job "+req.JobId, func(ctx context.Context) (bool, error) {
		d, err := svc.DescribeBatchOperation(ctx, &workflowservice.DescribeBatchOperationRequest{Namespace: req.Namespace, JobId: req.JobId})
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		job.state, job.total, job.complete, job.failures = d.GetState(), d.GetTotalOperationCount(), d.GetCompleteOperationCount(), d.GetFailureOperationCount()
		return job.state != enumspb.BATCH_OPERATION_STATE_RUNNING && job.state != enumspb.BATCH_OPERATION_STATE_UNSPECIFIED, nil
	})
	return job
}

func (f *opFixture) testBatch(t *testing.T) {
	check := f.env.Check(t, "CP-03.batch-operations")
	ctx := harness.Context(t, 2*time.Minute)
	prefix := harness.UniqueID(t, "grp")
	const perGroup = 2
	type target struct {
		group string
		run   client.WorkflowRun
	}
	var targets []target
	var values []string
	for _, g := range append(slices.Clone(opBatchGroups), "control") {
		value := prefix + "-" + g
		values = append(values, "'"+value+"'")
		for range perGroup {
			o := client.StartWorkflowOptions{TypedSearchAttributes: temporal.NewSearchAttributes(opBatchGroupKey.ValueSet(value))}
			targets = append(targets, target{g, f.start(ctx, t, "batch-"+g, o, BatchTargetWorkflow)})
		}
	}
	all := fmt.Sprintf("%s IN (%s) AND ExecutionStatus = 'Running'", opBatchGroupKey.GetName(), strings.Join(values, ", "))
	if err := harness.WaitFor(ctx, 30*time.Second, 100*time.Millisecond, "the batch targets in visibility", func(ctx context.Context) (bool, error) {
		n, err := f.op.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: f.env.Options.Namespace, Query: all})
		return n.GetCount() == int64(len(targets)), err
	}); err != nil {
		t.Fatal(err)
	}
	reasonHeader, err := converter.GetDefaultDataConverter().ToPayload("batch signal: wake the group")
	if err != nil {
		t.Fatal(err)
	}
	var b opBatch
	for _, g := range opBatchGroups {
		req := &workflowservice.StartBatchOperationRequest{
			VisibilityQuery: fmt.Sprintf("%s = '%s-%s'", opBatchGroupKey.GetName(), prefix, g),
			Reason:          "batch " + g + ": operator request",
		}
		switch g {
		case "signal":
			req.Operation = &workflowservice.StartBatchOperationRequest_SignalOperation{SignalOperation: &batchpb.BatchOperationSignal{
				Signal: PokeSignal, Identity: opIdentity, Header: &commonpb.Header{Fields: map[string]*commonpb.Payload{opReasonHeader: reasonHeader}},
			}}
		case "cancel":
			req.Operation = &workflowservice.StartBatchOperationRequest_CancellationOperation{CancellationOperation: &batchpb.BatchOperationCancellation{Identity: opIdentity}}
		case "terminate":
			req.Operation = &workflowservice.StartBatchOperationRequest_TerminationOperation{TerminationOperation: &batchpb.BatchOperationTermination{Identity: opIdentity}}
		}
		job := f.runBatch(ctx, req)
		job.op = g
		b.jobs = append(b.jobs, job)
		if job.err == nil {
			for _, tg := range targets {
				if tg.group == g {
					reason := req.Reason
					if g == "signal" {
						reason = "batch signal: wake the group"
					}
					f.note("batch "+g, tg.run, reason)
					break
				}
			}
		}
	}
	// Cancelled runs close on their next workflow task.
	for _, tg := range targets {
		if tg.group == "cancel" {
			cpAwaitClosed(ctx, f.op, tg.run.GetID(), tg.run.GetRunID(), 20*time.Second)
		}
	}
	var lines []string
	for _, tg := range targets {
		events, err := harness.History(ctx, f.op, tg.run.GetID(), tg.run.GetRunID())
		if err != nil {
			t.Fatal(err)
		}
		r := opBatchTarget{
			group: tg.group, status: cpStatus(ctx, f.op, tg.run.GetID(), tg.run.GetRunID()),
			signals:         len(harness.EventsOf(events, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)),
			cancelRequested: len(harness.EventsOf(events, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED)) > 0,
		}
		b.runs = append(b.runs, r)
		lines = append(lines, fmt.Sprintf("%s: %s, %d signal(s), cancel requested %v", r.group, r.status, r.signals, r.cancelRequested))
	}
	var jobs []string
	for _, j := range b.jobs {
		jobs = append(jobs, fmt.Sprintf("%s over %q: %s, %d/%d done, %d failed (error: %v)", j.op, j.query, j.state, j.complete, j.total, j.failures, j.err))
	}
	harness.Decide(check, opBatchOperationsPredicate, b, fmt.Sprintf(
		"%d BatchTargetWorkflow runs per group (signal, cancel, terminate, control), grouped by the custom search attribute %s; batch operations one after another: %s. Runs after: %s",
		perGroup, opBatchGroupKey.GetName(), strings.Join(jobs, "; "), strings.Join(lines, "; ")), nil)
}

// opAuditRead finds the event an intervention of kind left in a run's history
// and what it recorded: identity, reason and where the reason was read.
func opAuditRead(kind string, events []*historypb.HistoryEvent) opAudited {
	a := opAudited{kind: kind}
	headerReason := func(h *commonpb.Header) string {
		var s string
		if p := h.GetFields()[opReasonHeader]; p != nil {
			_ = converter.GetDefaultDataConverter().FromPayload(p, &s)
		}
		return s
	}
	// activity returns the event of type typ about the activity with id.
	activity := func(id string, typ enumspb.EventType, scheduledID func(*historypb.HistoryEvent) int64) *historypb.HistoryEvent {
		for _, s := range harness.EventsOf(events, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) {
			if s.GetActivityTaskScheduledEventAttributes().GetActivityId() != id {
				continue
			}
			for _, ev := range harness.EventsOf(events, typ) {
				if scheduledID(ev) == s.GetEventId() {
					return ev
				}
			}
		}
		return nil
	}
	first := func(typ enumspb.EventType) *historypb.HistoryEvent {
		if evs := harness.EventsOf(events, typ); len(evs) > 0 {
			return evs[0]
		}
		return nil
	}
	var ev *historypb.HistoryEvent
	switch kind {
	case "cancel", "batch cancel":
		ev, a.where = first(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED), "cause"
		attrs := ev.GetWorkflowExecutionCancelRequestedEventAttributes()
		a.identity, a.reason = attrs.GetIdentity(), attrs.GetCause()
	case "terminate", "batch terminate":
		ev, a.where = first(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED), "reason"
		attrs := ev.GetWorkflowExecutionTerminatedEventAttributes()
		a.identity, a.reason = attrs.GetIdentity(), attrs.GetReason()
	case "signal", "batch signal":
		ev, a.where = first(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED), "header "+opReasonHeader
		attrs := ev.GetWorkflowExecutionSignaledEventAttributes()
		a.identity, a.reason = attrs.GetIdentity(), headerReason(attrs.GetHeader())
	case "update":
		ev, a.where = first(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED), "header "+opReasonHeader
		req := ev.GetWorkflowExecutionUpdateAcceptedEventAttributes().GetAcceptedRequest()
		a.identity, a.reason = req.GetMeta().GetIdentity(), headerReason(req.GetInput().GetHeader())
	case "complete":
		ev = activity(ApprovalActivityID, enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, func(e *historypb.HistoryEvent) int64 {
			return e.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()
		})
		a.where, a.identity = "none: the completion request has no reason field", ev.GetActivityTaskCompletedEventAttributes().GetIdentity()
	case "fail":
		ev = activity(ApprovalActivityID, enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED, func(e *historypb.HistoryEvent) int64 {
			return e.GetActivityTaskFailedEventAttributes().GetScheduledEventId()
		})
		attrs := ev.GetActivityTaskFailedEventAttributes()
		a.where, a.identity, a.reason = "failure message", attrs.GetIdentity(), attrs.GetFailure().GetMessage()
	case "activity options":
		ev, a.where = first(enumspb.EVENT_TYPE_ACTIVITY_PROPERTIES_MODIFIED_EXTERNALLY), "none: the request has no reason field"
	case "reset":
		for _, e := range harness.EventsOf(events, enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED) {
			if attrs := e.GetWorkflowTaskFailedEventAttributes(); attrs.GetCause() == enumspb.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW {
				ev, a.where, a.identity, a.reason = e, "failure message", attrs.GetIdentity(), attrs.GetFailure().GetMessage()
			}
		}
	}
	if ev != nil {
		a.event = ev.GetEventType().String()
	}
	return a
}

func (f *opFixture) testAuditTrail(t *testing.T) {
	check := f.env.Check(t, "CP-03.audit-trail")
	ctx := harness.Context(t, time.Minute)
	// A reset, of the parcel run whose address was corrected.
	for _, in := range slices.Clone(f.log) {
		if in.kind != "update" {
			continue
		}
		events, err := harness.History(ctx, f.op, in.id, in.runID)
		if err != nil {
			t.Fatal(err)
		}
		const reason = "replay the delivery with the corrected data"
		resp, err := f.op.ResetWorkflowExecution(ctx, &workflowservice.ResetWorkflowExecutionRequest{
			Namespace: f.env.Options.Namespace, WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: in.id, RunId: in.runID},
			Reason: reason, WorkflowTaskFinishEventId: cpFirstTaskCompleted(events), Identity: opIdentity,
		})
		if err != nil {
			f.log = append(f.log, opIntervention{kind: "reset", id: in.id, given: reason})
			t.Logf("reset refused: %v", err)
			break
		}
		t.Cleanup(func() { _ = f.wc.TerminateWorkflow(context.Background(), in.id, resp.GetRunId(), "test cleanup") })
		f.log = append(f.log, opIntervention{kind: "reset", id: in.id, runID: resp.GetRunId(), given: reason})
	}
	a := opAudit{operator: opIdentity}
	var lines []string
	for _, in := range f.log {
		var it opAudited
		if in.runID == "" {
			it = opAudited{kind: in.kind, where: "the intervention was refused"}
		} else {
			events, err := harness.History(ctx, f.op, in.id, in.runID)
			if err != nil {
				t.Fatal(err)
			}
			it = opAuditRead(in.kind, events)
		}
		it.given = in.given
		a.items = append(a.items, it)
		event := it.event
		if event == "" {
			event = "no event"
		}
		lines = append(lines, fmt.Sprintf("%s: %s, identity %q, reason %q (%s; given %q)", it.kind, event, it.identity, it.reason, it.where, it.given))
	}
	withIdentity, withReasonGiven := 0, 0
	for _, it := range a.items {
		if it.event != "" && it.identity == opIdentity {
			withIdentity++
		}
		if it.event != "" && it.reason == it.given {
			withReasonGiven++
		}
	}
	harness.Decide(check, opAuditTrailPredicate, a, fmt.Sprintf("operator client identity %q; %d interventions, %d recorded with that identity, %d with the reason given: %s",
		opIdentity, len(a.items), withIdentity, withReasonGiven, strings.Join(lines, "; ")),
		map[string]float64{"interventions": float64(len(a.items)), "with_identity": float64(withIdentity), "with_reason": float64(withReasonGiven)})
}
