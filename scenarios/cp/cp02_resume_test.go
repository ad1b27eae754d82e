package cp

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	batchpb "go.temporal.io/api/batch/v1"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/harness/ledger"
)

// TestCP02 measures resuming from the failed step: retries, a fixed build
// deployed under a failing step, reset to a chosen event (with signals
// reapplied or not, one run or a batch), and activity pause and unpause.
// The external ledger counts every step's executions.
func TestCP02(t *testing.T) {
	t.Run("no_redo_on_retry", testCP02NoRedoOnRetry)
	t.Run("fix_and_continue", testCP02FixAndContinue)
	t.Run("reset_to_event", testCP02ResetToEvent)
	t.Run("reset_reapplies_signals", testCP02ResetReappliesSignals)
	t.Run("batch_reset", testCP02BatchReset)
	t.Run("activity_pause_resume", testCP02ActivityPauseResume)
	t.Run("ledger_exact", testCP02LedgerExact)
}

// Builds of the steps' activities.
const (
	resumeBuggy = "buggy"
	resumeFixed = "fixed"
)

// resumeFixture is one subtest's client, task queue and ledger.
type resumeFixture struct {
	c   client.Client
	ns  string
	tq  string
	led string
}

func newResumeFixture(t *testing.T) resumeFixture {
	env := harness.Get(t)
	return resumeFixture{c: env.Dial(t), ns: env.Options.Namespace, tq: harness.TaskQueue(t), led: filepath.Join(env.Scratch(t), "ledger.jsonl")}
}

// deploy starts an in-process worker running build name, whose steps fail
// at bug (0: none); the returned function stops it.
func (f resumeFixture) deploy(t *testing.T, name string, bug int) func() {
	t.Helper()
	w := worker.New(f.c, f.tq, worker.Options{})
	registerResume(w, &ResumeActivities{Ledger: f.led, Build: name, Bug: bug})
	if err := w.Start(); err != nil {
		t.Fatalf("worker %s: %v", name, err)
	}
	t.Cleanup(w.Stop)
	return w.Stop
}

// start starts a ResumeWorkflow; a run left open is terminated at test end.
func (f resumeFixture) start(ctx context.Context, t *testing.T, in ResumeInput) (string, client.WorkflowRun) {
	t.Helper()
	id := harness.UniqueID(t, "resume")
	run, err := f.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id, TaskQueue: f.tq, WorkflowTaskTimeout: 2 * time.Second, WorkflowExecutionTimeout: 3 * time.Minute,
	}, ResumeWorkflow, in)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = f.c.TerminateWorkflow(context.Background(), id, "", "test cleanup") })
	return id, run
}

// entries reads the ledger entries of workflow id.
func (f resumeFixture) entries(t *testing.T, id string) []ledger.Entry {
	return sagaEntries(t, f.led, id)
}

// resumeExecs is the executions (start entries) of steps 1..n.
func resumeExecs(entries []ledger.Entry, n int) []int {
	c := sagaCountsIn(entries, ledger.Start)
	out := make([]int, n)
	for i := range out {
		out[i] = c[i+1]
	}
	return out
}

// waitExecs waits until step has run at least n times.
func (f resumeFixture) waitExecs(ctx context.Context, t *testing.T, id string, step, n int) {
	t.Helper()
	if err := harness.WaitFor(ctx, 30*time.Second, 20*time.Millisecond, fmt.Sprintf("%d executions of step %d", n, step), func(context.Context) (bool, error) {
		return sagaCountsIn(f.entries(t, id), ledger.Start)[step] >= n, nil
	}); err != nil {
		t.Fatal(err)
	}
}

// resumeStepOf is the step an activity id names, 0 if none.
func resumeStepOf(activityID string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(activityID, "step-"))
	return n
}

// resumeResetPoint is the WorkflowTaskCompleted event that follows step's
// completion: the workflow task that scheduled the next step (or began the
// wait after it). Resetting to it keeps everything up to the step.
func resumeResetPoint(events []*historypb.HistoryEvent, step int) (int64, error) {
	scheduled, _, completed := sagaActivityByID(events, resumeStepID(step))
	if scheduled == nil || completed == nil {
		return 0, fmt.Errorf("history has no completion of %s", resumeStepID(step))
	}
	for _, ev := range events {
		if ev.GetEventId() > completed.GetEventId() && ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
			return ev.GetEventId(), nil
		}
	}
	return 0, fmt.Errorf("no workflow task completed after event %d", completed.GetEventId())
}

// resumeScheduledAfter lists the steps scheduled after event point.
func resumeScheduledAfter(events []*historypb.HistoryEvent, point int64) []int {
	var out []int
	for _, ev := range events {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && ev.GetEventId() > point {
			out = append(out, resumeStepOf(a.GetActivityId()))
		}
	}
	return out
}

// reset resets run runID of id to workflow-task event point and returns the
// new run's id.
func (f resumeFixture) reset(ctx context.Context, id, runID string, point int64, exclude ...enumspb.ResetReapplyExcludeType) (string, error) {
	resp, err := f.c.ResetWorkflowExecution(ctx, &workflowservice.ResetWorkflowExecutionRequest{
		Namespace:                 f.ns,
		WorkflowExecution:         &commonpb.WorkflowExecution{WorkflowId: id, RunId: runID},
		Reason:                    "durabench CP-02: resume after the reset point",
		WorkflowTaskFinishEventId: point,
		RequestId:                 uuid.NewString(),
		ResetReapplyExcludeTypes:  exclude,
		Identity:                  "durabench-cp02",
	})
	return resp.GetRunId(), err
}

func testCP02NoRedoOnRetry(t *testing.T) {
	check := harness.Get(t).Check(t, "CP-02.no-redo-on-retry")
	ctx := harness.Context(t, time.Minute)
	f := newResumeFixture(t)
	f.deploy(t, "v1", 0)
	const steps, failStep, failUntil = 4, 3, 3
	id, run := f.start(ctx, t, ResumeInput{Steps: steps, FailStep: failStep, FailUntil: failUntil})
	var res ResumeResult
	err := run.Get(ctx, &res)
	events, herr := harness.History(ctx, f.c, id, run.GetRunID())
	if herr != nil {
		t.Fatal(herr)
	}
	_, started, _ := sagaActivityByID(events, resumeStepID(failStep))
	entries := f.entries(t, id)
	o := resumeRetry{failStep: failStep, execs: resumeExecs(entries, steps), histAttempt: started.GetActivityTaskStartedEventAttributes().GetAttempt(), err: err}
	harness.Decide(check, resumeRetryPredicate, o, fmt.Sprintf(
		"%d steps, step %d failing on attempts before %d (retry interval %s, observed gaps %s): ledger executions per step %v; history: step %d last started at attempt %d; "+
			"result %q (error: %v); ledger: %s",
		steps, failStep, failUntil, resumeRetryInterval, sagaGapsMS(sagaRetryGaps(entries, failStep, sagaActionFail, ledger.Start)), o.execs, failStep, o.histAttempt, res.Outputs, err, sagaTrace(entries, false)),
		map[string]float64{"attempts": float64(o.execs[failStep-1])})
}

func testCP02FixAndContinue(t *testing.T) {
	check := harness.Get(t).Check(t, "CP-02.fix-and-continue")
	ctx := harness.Context(t, time.Minute)
	f := newResumeFixture(t)
	const steps, bug = 4, 3
	stopBuggy := f.deploy(t, resumeBuggy, bug)
	id, run := f.start(ctx, t, ResumeInput{Steps: steps})
	f.waitExecs(ctx, t, id, bug, 3)
	stopBuggy()
	o := resumeFix{bugStep: bug, fixedBuild: resumeFixed, buggyAttempts: sagaCountsIn(f.entries(t, id), ledger.Start)[bug]}
	fixedAt := time.Now()
	f.deploy(t, resumeFixed, 0)
	var res ResumeResult
	o.err = run.Get(ctx, &res)
	took := time.Since(fixedAt)
	entries := f.entries(t, id)
	all := resumeExecs(entries, steps)
	o.fixedAttempts, o.earlier = all[bug-1]-o.buggyAttempts, all[:bug-1]
	if len(res.Outputs) >= bug {
		o.output = res.Outputs[bug-1]
	}
	harness.Decide(check, resumeFixPredicate, o, fmt.Sprintf(
		"build %s fails step %d on every attempt (retry interval %s, unlimited attempts; observed gaps %s): %d attempts, then that worker stopped and build %s started on the same task queue; "+
			"the run completed %.2fs later with %q (error: %v); ledger executions per step %v (step %d: %d by the fixed build); ledger: %s",
		resumeBuggy, bug, resumeRetryInterval, sagaGapsMS(sagaRetryGaps(entries, bug, sagaActionFail, ledger.Start)), o.buggyAttempts, resumeFixed, took.Seconds(), res.Outputs, o.err, all, bug, o.fixedAttempts, sagaTrace(entries, false)),
		map[string]float64{"buggy_attempts": float64(o.buggyAttempts), "fix_to_complete_s": took.Seconds()})
}

func testCP02ResetToEvent(t *testing.T) {
	check := harness.Get(t).Check(t, "CP-02.reset-to-event")
	ctx := harness.Context(t, time.Minute)
	f := newResumeFixture(t)
	f.deploy(t, "v1", 0)
	const steps, keep = 4, 2
	id, run := f.start(ctx, t, ResumeInput{Steps: steps})
	if err := run.Get(ctx, nil); err != nil {
		t.Fatalf("first run: %v", err)
	}
	events, err := harness.History(ctx, f.c, id, run.GetRunID())
	if err != nil {
		t.Fatal(err)
	}
	point, err := resumeResetPoint(events, keep)
	if err != nil {
		t.Fatal(err)
	}
	o := resumeReset{steps: steps, point: point, afterPoint: resumeScheduledAfter(events, point), oldRun: run.GetRunID()}
	before := len(f.entries(t, id))
	o.newRun, o.err = f.reset(ctx, id, run.GetRunID(), point)
	var res ResumeResult
	if o.err == nil {
		o.err = f.c.GetWorkflow(ctx, id, o.newRun).Get(ctx, &res)
		newEvents, err := harness.History(ctx, f.c, id, o.newRun)
		if err != nil {
			t.Fatal(err)
		}
		o.rescheduled = resumeScheduledAfter(newEvents, point)
	}
	entries := f.entries(t, id)
	o.reexecuted = slices.Compact(slices.Sorted(slices.Values(sagaStepsIn(entries[before:], ledger.Start))))
	harness.Decide(check, resumeResetPredicate, o, fmt.Sprintf(
		"%d-step run completed (run %s); reset to WorkflowTaskCompleted event %d, the task after step %d completed (original run scheduled steps %v after it): "+
			"new run %s scheduled steps %v after the point, ledger shows steps %v executed after the reset; new run result %q (error: %v)",
		steps, harness.ShortID(o.oldRun), point, keep, o.afterPoint, harness.ShortID(o.newRun), o.rescheduled, o.reexecuted, res.Outputs, o.err),
		map[string]float64{"reexecuted_steps": float64(len(o.reexecuted))})
}

// resumeSignalsIn decodes the item signals in events after point.
func resumeSignalsIn(t *testing.T, events []*historypb.HistoryEvent, point int64) []string {
	var out []string
	for _, ev := range events {
		a := ev.GetWorkflowExecutionSignaledEventAttributes()
		if a == nil || ev.GetEventId() <= point || a.GetSignalName() != resumeItemSignal {
			continue
		}
		var item string
		if err := converter.GetDefaultDataConverter().FromPayloads(a.GetInput(), &item); err != nil {
			t.Fatalf("signal input: %v", err)
		}
		out = append(out, item)
	}
	return out
}

// signalledRun runs a workflow that waits for items after step 1, sends it
// items once it waits, and returns the reset point (the workflow task that
// began the wait) and the run.
func (f resumeFixture) signalledRun(ctx context.Context, t *testing.T, items []string) (string, client.WorkflowRun, int64) {
	t.Helper()
	id, run := f.start(ctx, t, ResumeInput{Steps: 2, WaitItems: len(items)})
	var point int64
	if err := harness.WaitFor(ctx, 30*time.Second, 50*time.Millisecond, "the run to wait for items", func(ctx context.Context) (bool, error) {
		events, err := harness.History(ctx, f.c, id, run.GetRunID())
		if err != nil {
			return false, err
		}
		point, err = resumeResetPoint(events, 1)
		return err == nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if err := f.c.SignalWorkflow(ctx, id, run.GetRunID(), resumeItemSignal, it); err != nil {
			t.Fatalf("signal: %v", err)
		}
	}
	var res ResumeResult
	if err := run.Get(ctx, &res); err != nil || !slices.Equal(res.Items, items) {
		t.Fatalf("harness: the first run returned items %v (error: %v), want %v", res.Items, err, items)
	}
	return id, run, point
}

// resetWithSignals resets a signalled run to point with the given exclusions
// and observes the new run: the signals it carries once its first workflow
// task after the reset completed, its status then, and (after sending
// resend, if any) its result.
func (f resumeFixture) resetWithSignals(ctx context.Context, t *testing.T, id, runID string, point int64, resend []string, exclude ...enumspb.ResetReapplyExcludeType) resumeSignalReset {
	t.Helper()
	o := resumeSignalReset{exclude: exclude}
	newRun, err := f.reset(ctx, id, runID, point, exclude...)
	if err != nil {
		o.err = err
		return o
	}
	if err := harness.WaitFor(ctx, 30*time.Second, 50*time.Millisecond, "the new run's first workflow task", func(ctx context.Context) (bool, error) {
		events, err := harness.History(ctx, f.c, id, newRun)
		if err != nil {
			return false, err
		}
		for _, ev := range events {
			if ev.GetEventId() > point && ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
				o.signals = resumeSignalsIn(t, events, point)
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		t.Fatal(err)
	}
	desc, err := f.c.DescribeWorkflowExecution(ctx, id, newRun)
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	o.status = desc.GetWorkflowExecutionInfo().GetStatus()
	for _, it := range resend {
		if err := f.c.SignalWorkflow(ctx, id, newRun, resumeItemSignal, it); err != nil {
			t.Fatalf("signal: %v", err)
		}
	}
	var res ResumeResult
	o.err = f.c.GetWorkflow(ctx, id, newRun).Get(ctx, &res)
	o.items = res.Items
	return o
}

func testCP02ResetReappliesSignals(t *testing.T) {
	check := harness.Get(t).Check(t, "CP-02.reset-reapplies-signals")
	ctx := harness.Context(t, time.Minute)
	f := newResumeFixture(t)
	f.deploy(t, "v1", 0)
	o := resumeReapply{sent: []string{"apple", "pear"}, resent: []string{"plum", "fig"}}
	idA, runA, pointA := f.signalledRun(ctx, t, o.sent)
	o.reapplied = f.resetWithSignals(ctx, t, idA, runA.GetRunID(), pointA, nil)
	idB, runB, pointB := f.signalledRun(ctx, t, o.sent)
	o.excluded = f.resetWithSignals(ctx, t, idB, runB.GetRunID(), pointB, o.resent, enumspb.RESET_REAPPLY_EXCLUDE_TYPE_SIGNAL)
	harness.Decide(check, resumeReapplyPredicate, o, fmt.Sprintf(
		"runs wait for 2 items after step 1 and received %q; each reset to the workflow task that began the wait. "+
			"Reapply (no exclusion): new run carries signals %q, status %s after its first task, result items %q (error: %v). "+
			"Exclude %v: new run carries signals %q, status %s after its first task; sent %q, result items %q (error: %v)",
		o.sent, o.reapplied.signals, o.reapplied.status, o.reapplied.items, o.reapplied.err,
		o.excluded.exclude, o.excluded.signals, o.excluded.status, o.resent, o.excluded.items, o.excluded.err),
		map[string]float64{"reapplied": float64(len(o.reapplied.signals)), "excluded_reapplied": float64(len(o.excluded.signals))})
}

// startBatch starts a batch operation, waiting while the namespace's one
// batch slot is taken by another.
func (f resumeFixture) startBatch(ctx context.Context, req *workflowservice.StartBatchOperationRequest) error {
	var last error
	err := harness.WaitFor(ctx, time.Minute, 200*time.Millisecond, "a free batch slot", func(ctx context.Context) (bool, error) {
		_, last = f.c.WorkflowService().StartBatchOperation(ctx, req)
		var busy *serviceerror.ResourceExhausted
		if errors.As(last, &busy) {
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	return last
}

func testCP02BatchReset(t *testing.T) {
	check := harness.Get(t).Check(t, "CP-02.batch-reset")
	ctx := harness.Context(t, 2*time.Minute)
	f := newResumeFixture(t)
	const runs, steps, bug = 3, 3, 2
	stopBuggy := f.deploy(t, resumeBuggy, bug)
	o := resumeBatch{query: fmt.Sprintf("TaskQueue = '%s' AND ExecutionStatus = 'Failed'", f.tq)}
	for range runs {
		id, run := f.start(ctx, t, ResumeInput{Steps: steps, MaxAttempts: 2})
		if err := run.Get(ctx, nil); err == nil {
			t.Fatalf("harness: run %s did not fail on build %s", id, resumeBuggy)
		}
		o.runs = append(o.runs, resumeBatchRun{id: id, oldRun: run.GetRunID()})
	}
	if err := harness.WaitFor(ctx, 30*time.Second, 100*time.Millisecond, "the failed runs to be visible", func(ctx context.Context) (bool, error) {
		resp, err := f.c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: f.ns, Query: o.query})
		if err != nil {
			return false, err
		}
		o.matched = int(resp.GetCount())
		return o.matched == runs, nil
	}); err != nil {
		t.Fatal(err)
	}
	stopBuggy()
	f.deploy(t, resumeFixed, 0)
	job := uuid.NewString()
	started := time.Now()
	if err := f.startBatch(ctx, &workflowservice.StartBatchOperationRequest{
		Namespace: f.ns, VisibilityQuery: o.query, JobId: job, Reason: "durabench CP-02: re-drive after the fix",
		Operation: &workflowservice.StartBatchOperationRequest_ResetOperation{ResetOperation: &batchpb.BatchOperationReset{
			Identity: "durabench-cp02",
			Options:  &commonpb.ResetOptions{Target: &commonpb.ResetOptions_FirstWorkflowTask{FirstWorkflowTask: &emptypb.Empty{}}},
		}},
	}); err != nil {
		check.Fail(fmt.Sprintf("StartBatchOperation (reset to the first workflow task, query %q) refused: %v", o.query, err), nil)
		return
	}
	var desc *workflowservice.DescribeBatchOperationResponse
	if err := harness.WaitFor(ctx, time.Minute, 200*time.Millisecond, "the batch to finish", func(ctx context.Context) (bool, error) {
		var err error
		desc, err = f.c.WorkflowService().DescribeBatchOperation(ctx, &workflowservice.DescribeBatchOperationRequest{Namespace: f.ns, JobId: job})
		if err != nil {
			return false, err
		}
		return desc.GetState() != enumspb.BATCH_OPERATION_STATE_RUNNING, nil
	}); err != nil {
		t.Fatal(err)
	}
	batchTook := time.Since(started)
	o.state, o.total, o.completed, o.failures = desc.GetState(), desc.GetTotalOperationCount(), desc.GetCompleteOperationCount(), desc.GetFailureOperationCount()
	var per []string
	for i := range o.runs {
		r := &o.runs[i]
		r.err = f.c.GetWorkflow(ctx, r.id, "").Get(ctx, nil)
		d, err := f.c.DescribeWorkflowExecution(ctx, r.id, "")
		if err != nil {
			t.Fatalf("describe: %v", err)
		}
		r.newRun, r.status = d.GetWorkflowExecutionInfo().GetExecution().GetRunId(), d.GetWorkflowExecutionInfo().GetStatus()
		per = append(per, fmt.Sprintf("%s: run %s -> %s %s, ledger executions %v (error: %v)",
			r.id[len(r.id)-8:], harness.ShortID(r.oldRun), harness.ShortID(r.newRun), r.status, resumeExecs(f.entries(t, r.id), steps), r.err))
	}
	harness.Decide(check, resumeBatchPredicate, o, fmt.Sprintf(
		"%d runs failed at step %d on build %s; query %q listed %d; build %s deployed; batch reset to the first workflow task: state %s after %.2fs, "+
			"operations total %d, completed %d, failed %d; %s",
		runs, bug, resumeBuggy, o.query, o.matched, resumeFixed, o.state, batchTook.Seconds(), o.total, o.completed, o.failures, strings.Join(per, "; ")),
		map[string]float64{"runs": float64(runs), "batch_s": batchTook.Seconds()})
}

// pendingStep is the pending activity of step, if any.
func (f resumeFixture) pendingStep(ctx context.Context, id string, step int) (state enumspb.PendingActivityState, attempt int32, err error) {
	d, err := f.c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return 0, 0, err
	}
	for _, pa := range d.GetPendingActivities() {
		if pa.GetActivityId() == resumeStepID(step) {
			return pa.GetState(), pa.GetAttempt(), nil
		}
	}
	return 0, 0, nil
}

func testCP02ActivityPauseResume(t *testing.T) {
	check := harness.Get(t).Check(t, "CP-02.activity-pause-resume")
	ctx := harness.Context(t, time.Minute)
	f := newResumeFixture(t)
	const steps, bug = 2, 2
	stopBuggy := f.deploy(t, resumeBuggy, bug)
	id, run := f.start(ctx, t, ResumeInput{Steps: steps})
	f.waitExecs(ctx, t, id, bug, 3)
	exec := &commonpb.WorkflowExecution{WorkflowId: id}
	if _, err := f.c.WorkflowService().PauseActivity(ctx, &workflowservice.PauseActivityRequest{
		Namespace: f.ns, Execution: exec, Identity: "durabench-cp02",
		Activity: &workflowservice.PauseActivityRequest_Id{Id: resumeStepID(bug)}, Reason: "step 2 fails on a bug; holding it for the fix",
	}); err != nil {
		check.Fail(fmt.Sprintf("PauseActivity of %s refused: %v", resumeStepID(bug), err), nil)
		return
	}
	o := resumePause{interval: resumeRetryInterval}
	// The server arms no timer sooner than about 1s (RT-01), so retries come
	// further apart than the configured interval: the window is four of the
	// longest gaps observed, and at least ten configured intervals.
	for _, g := range sagaRetryGaps(f.entries(t, id), bug, sagaActionFail, ledger.Start) {
		o.gap = max(o.gap, g)
	}
	o.window = max(4*o.gap, 10*resumeRetryInterval)
	var pausedAttempt int32
	if err := harness.WaitFor(ctx, 10*time.Second, 50*time.Millisecond, "the activity to be paused", func(ctx context.Context) (bool, error) {
		var err error
		o.state, pausedAttempt, err = f.pendingStep(ctx, id, bug)
		return o.state == enumspb.PENDING_ACTIVITY_STATE_PAUSED, err
	}); err != nil {
		o.err = err
	}
	o.beforePause = sagaCountsIn(f.entries(t, id), ledger.Start)[bug]
	// Attempts must not grow over the window: the wait timing out is the
	// expected outcome.
	_ = harness.WaitFor(ctx, o.window, 50*time.Millisecond, "an attempt while paused", func(context.Context) (bool, error) {
		return sagaCountsIn(f.entries(t, id), ledger.Start)[bug] > o.beforePause, nil
	})
	entries := f.entries(t, id)
	o.duringWindow = sagaCountsIn(entries, ledger.Start)[bug] - o.beforePause
	seen := len(entries)
	stopBuggy()
	f.deploy(t, resumeFixed, 0)
	if _, err := f.c.WorkflowService().UnpauseActivity(ctx, &workflowservice.UnpauseActivityRequest{
		Namespace: f.ns, Execution: exec, Identity: "durabench-cp02",
		Activity: &workflowservice.UnpauseActivityRequest_Id{Id: resumeStepID(bug)}, ResetAttempts: true,
	}); err != nil {
		check.Fail(fmt.Sprintf("UnpauseActivity of %s refused: %v", resumeStepID(bug), err), nil)
		return
	}
	var res ResumeResult
	if err := run.Get(ctx, &res); o.err == nil {
		o.err = err
	}
	entries = f.entries(t, id)
	for _, e := range entries[seen:] {
		if e.Step == bug && e.Phase == ledger.Start {
			o.resumedAttempt = e.Attempt
			break
		}
	}
	if len(res.Outputs) >= bug {
		o.output = res.Outputs[bug-1]
	}
	harness.Decide(check, resumePausePredicate, o, fmt.Sprintf(
		"step %d fails on build %s (retry interval %s, longest observed gap %s): PauseActivity after %d attempts; server state %s with next attempt %d; "+
			"attempts started during a %s window: %d; build %s deployed, UnpauseActivity with reset attempts: next execution at attempt %d; "+
			"result %q (error: %v); ledger: %s",
		bug, resumeBuggy, o.interval, o.gap.Round(time.Millisecond), o.beforePause, o.state, pausedAttempt, o.window.Round(time.Millisecond), o.duringWindow, resumeFixed, o.resumedAttempt,
		res.Outputs, o.err, sagaTrace(entries, false)),
		map[string]float64{"attempts_before_pause": float64(o.beforePause), "attempts_while_paused": float64(o.duringWindow), "window_ms": float64(o.window.Milliseconds()), "gap_ms": float64(o.gap.Milliseconds())})
}

func testCP02LedgerExact(t *testing.T) {
	check := harness.Get(t).Check(t, "CP-02.ledger-exact")
	ctx := harness.Context(t, time.Minute)
	f := newResumeFixture(t)
	const steps, bug = 4, 3
	stopBuggy := f.deploy(t, resumeBuggy, bug)
	id, run := f.start(ctx, t, ResumeInput{Steps: steps, MaxAttempts: 2})
	if err := run.Get(ctx, nil); err == nil {
		t.Fatalf("harness: the run did not fail on build %s", resumeBuggy)
	}
	stopBuggy()
	f.deploy(t, resumeFixed, 0)
	events, err := harness.History(ctx, f.c, id, run.GetRunID())
	if err != nil {
		t.Fatal(err)
	}
	point, err := resumeResetPoint(events, bug-1)
	if err != nil {
		t.Fatal(err)
	}
	o := resumeLedger{before: sagaCountsIn(f.entries(t, id), ledger.Start)}
	newRun, err := f.reset(ctx, id, run.GetRunID(), point)
	o.err = err
	var res ResumeResult
	if err == nil {
		o.err = f.c.GetWorkflow(ctx, id, newRun).Get(ctx, &res)
		newEvents, err := harness.History(ctx, f.c, id, newRun)
		if err != nil {
			t.Fatal(err)
		}
		o.rescheduled = resumeScheduledAfter(newEvents, point)
	}
	all, err := ledger.Read(f.led)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range all {
		if e.Key != id || !slices.Contains([]string{ledger.Start, ledger.Done, sagaActionFail}, e.Phase) {
			o.strays++
		}
	}
	o.after = sagaCountsIn(f.entries(t, id), ledger.Start)
	harness.Decide(check, resumeLedgerPredicate, o, fmt.Sprintf(
		"%d-step run failed at step %d after 2 attempts on build %s; build %s deployed; reset to WorkflowTaskCompleted event %d (after step %d): "+
			"new run %s scheduled steps %v, result %q (error: %v); ledger executions per step before %v, after %v; entries of other workflows or phases: %d",
		steps, bug, resumeBuggy, resumeFixed, point, bug-1, harness.ShortID(newRun), o.rescheduled, res.Outputs, o.err, o.before, o.after, o.strays),
		map[string]float64{"rescheduled": float64(len(o.rescheduled))})
}
