package vr

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/scenarios/vr/flows"
	"github.com/durabench/durabench/scenarios/vr/flows/planted"
	v1 "github.com/durabench/durabench/scenarios/vr/flows/v1"
	v2 "github.com/durabench/durabench/scenarios/vr/flows/v2"
)

// recordHistoriesEnv, when set to 1, makes TestVR01/record run the v1
// workflows and write their histories to HistoriesDir, with a manifest.
const recordHistoriesEnv = "DURABENCH_RECORD_HISTORIES"

// TestVR01 measures VR-01 levels 2 and 3: drain then deploy, GetVersion
// branches replaying the committed v1 histories and carrying a live v1 run
// on v2 code, and the control that makes v2's change without GetVersion.
// Levels 4 and 5 (task queues and Worker Deployments) are in
// vr01_deployments_test.go.
func TestVR01(t *testing.T) {
	t.Run("record", testRecord)
	t.Run("drain_then_deploy", testDrainThenDeploy)
	t.Run("getversion_replay", func(t *testing.T) {
		testGetVersionReplay(t, harness.Get(t).Check(t, "VR-01.getversion-replay"), v2.RegisterWorkflows, v2.Register)
	})
	t.Run("getversion_live", testGetVersionLive)
	t.Run("control_unversioned_change", func(t *testing.T) {
		unguarded, err := planted.Lookup("unguarded-v2")
		if err != nil {
			t.Fatal(err)
		}
		testGetVersionReplay(t, harness.Get(t).Control(t, "VR-01.control-unversioned-change"), unguarded.RegisterWorkflows,
			func(r worker.Registry) { unguarded.RegisterWorkflows(r); flows.RegisterActivities(r) })
	})
}

// flowsWorker starts an in-process worker on tq with the workflows and
// activities register adds; Stop may be called more than once.
func flowsWorker(t *testing.T, c client.Client, tq string, register func(worker.Registry)) worker.Worker {
	t.Helper()
	w := worker.New(c, tq, worker.Options{})
	register(w)
	if err := w.Start(); err != nil {
		t.Fatalf("harness: worker on %s: %v", tq, err)
	}
	t.Cleanup(w.Stop)
	return w
}

// start starts a run of workflow type wf on tq.
func start(ctx context.Context, t *testing.T, c client.Client, tq, id, wf string, args ...any) client.WorkflowRun {
	t.Helper()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: tq, WorkflowExecutionTimeout: 2 * time.Minute}, wf, args...)
	if err != nil {
		t.Fatalf("harness: start %s %s: %v", wf, id, err)
	}
	return run
}

// result waits for a run's flows.Result.
func result(ctx context.Context, t *testing.T, run client.WorkflowRun) flows.Result {
	t.Helper()
	var res flows.Result
	if err := harness.AwaitResult(ctx, run, &res); err != nil {
		t.Fatalf("harness: run %s: %v", run.GetID(), err)
	}
	return res
}

// history returns one run's events, failing the test when it cannot.
func history(ctx context.Context, t *testing.T, c client.Client, id, runID string) []*historypb.HistoryEvent {
	t.Helper()
	evs, err := harness.History(ctx, c, id, runID)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return evs
}

// taskFailures counts the failed workflow tasks (a nondeterminism error
// shows as one) in the histories of runs and of their children.
func taskFailures(ctx context.Context, t *testing.T, c client.Client, runs ...client.WorkflowRun) int {
	t.Helper()
	n := 0
	for _, run := range runs {
		evs := history(ctx, t, c, run.GetID(), "")
		n += len(harness.EventsOf(evs, enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED))
		for _, ev := range harness.EventsOf(evs, enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED) {
			child := ev.GetChildWorkflowExecutionStartedEventAttributes().GetWorkflowExecution()
			n += len(harness.EventsOf(history(ctx, t, c, child.GetWorkflowId(), child.GetRunId()), enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED))
		}
	}
	return n
}

// waitBlocked waits until run has completed activity step and then a
// workflow task: it is parked, waiting for a signal.
func waitBlocked(ctx context.Context, t *testing.T, c client.Client, run client.WorkflowRun, step string) {
	t.Helper()
	err := harness.WaitFor(ctx, 20*time.Second, 50*time.Millisecond, run.GetID()+" waiting after "+step, func(ctx context.Context) (bool, error) {
		evs, err := harness.History(ctx, c, run.GetID(), run.GetRunID())
		if err != nil {
			return false, err
		}
		done := false
		for _, ev := range evs {
			if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == step {
				done = slices.ContainsFunc(harness.EventsOf(evs, enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED), func(e *historypb.HistoryEvent) bool {
					return e.GetActivityTaskCompletedEventAttributes().GetScheduledEventId() == ev.GetEventId()
				})
			}
		}
		last := evs[len(evs)-1].GetEventType()
		return done && last == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, nil
	})
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
}

// tick sends n ticks to Loop run id, one at a time: each once the run (or
// the run it continued as new into) has taken the previous one, so that no
// tick races a continue-as-new and the chain has no failed workflow task.
func tick(ctx context.Context, t *testing.T, c client.Client, id string, n int) {
	t.Helper()
	for range n {
		if err := c.SignalWorkflow(ctx, id, "", flows.SignalTick, nil); err != nil {
			t.Fatalf("harness: tick %s: %v", id, err)
		}
		if err := harness.WaitFor(ctx, 20*time.Second, 20*time.Millisecond, "the loop to take its tick", func(ctx context.Context) (bool, error) {
			evs, err := harness.History(ctx, c, id, "")
			if err != nil {
				return false, err
			}
			last := evs[len(evs)-1].GetEventType()
			return last == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED || last == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, nil
		}); err != nil {
			t.Fatalf("harness: %v", err)
		}
	}
}

// testRecord runs the v1 workflows and writes their histories as the
// committed fixtures; it runs only when recordHistoriesEnv is 1.
func testRecord(t *testing.T) {
	if os.Getenv(recordHistoriesEnv) != "1" {
		t.Skipf("set %s=1 to record the v1 histories into %s", recordHistoriesEnv, HistoriesDir)
	}
	env := harness.Get(t)
	c, tq := env.Dial(t), harness.TaskQueue(t)
	ctx := harness.Context(t, 2*time.Minute)
	flowsWorker(t, c, tq, v1.Register)
	var out []Committed
	keep := func(file, shape, id, runID string) {
		evs := history(ctx, t, c, id, runID)
		typ := evs[0].GetWorkflowExecutionStartedEventAttributes().GetWorkflowType().GetName()
		out = append(out, Committed{ManifestEntry: ManifestEntry{File: file, WorkflowID: id, WorkflowType: typ, Shape: shape},
			History: &historypb.History{Events: evs}})
	}

	approve := start(ctx, t, c, tq, harness.UniqueID(t, "approval"), flows.Approval, "laptop")
	if err := c.SignalWorkflow(ctx, approve.GetID(), "", flows.SignalApprove, "alice"); err != nil {
		t.Fatal(err)
	}
	result(ctx, t, approve)
	keep("approval.json", "Submit, the approve signal, Fulfil", approve.GetID(), approve.GetRunID())

	amended := start(ctx, t, c, tq, harness.UniqueID(t, "approval-amended"), flows.Approval, "desk")
	waitBlocked(ctx, t, c, amended, flows.ActSubmit)
	for _, note := range []string{"standing desk", "with drawers"} {
		h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: amended.GetID(), UpdateName: flows.UpdateAmend,
			Args: []any{note}, WaitForStage: client.WorkflowUpdateStageCompleted})
		if err == nil {
			err = h.Get(ctx, nil)
		}
		if err != nil {
			t.Fatalf("amend: %v", err)
		}
	}
	if err := c.SignalWorkflow(ctx, amended.GetID(), "", flows.SignalApprove, "bob"); err != nil {
		t.Fatal(err)
	}
	result(ctx, t, amended)
	keep("approval-amended.json", "Submit, two amend updates (each runs Amend), the approve signal, Fulfil", amended.GetID(), amended.GetRunID())

	order := start(ctx, t, c, tq, harness.UniqueID(t, "order"), flows.Order, "book")
	result(ctx, t, order)
	keep("order.json", "Reserve, Charge, a 10 ms settle timer, Ship", order.GetID(), order.GetRunID())

	parent := start(ctx, t, c, tq, harness.UniqueID(t, "parent"), flows.Parent, "lamp")
	result(ctx, t, parent)
	keep("parent.json", "a Child workflow", parent.GetID(), parent.GetRunID())
	started := harness.EventsOf(history(ctx, t, c, parent.GetID(), parent.GetRunID()), enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED)
	if len(started) != 1 {
		t.Fatalf("harness: parent started %d children", len(started))
	}
	child := started[0].GetChildWorkflowExecutionStartedEventAttributes().GetWorkflowExecution()
	keep("child.json", "Pack, as Parent's child", child.GetWorkflowId(), child.GetRunId())

	quick := start(ctx, t, c, tq, harness.UniqueID(t, "quick"), flows.Quick, "pen")
	result(ctx, t, quick)
	keep("quick.json", "Work", quick.GetID(), quick.GetRunID())

	loop := start(ctx, t, c, tq, harness.UniqueID(t, "loop"), flows.Loop, flows.LoopState{Target: 4, Every: 2})
	firstRun := loop.GetRunID()
	tick(ctx, t, c, loop.GetID(), 4)
	var st flows.LoopState
	if err := harness.AwaitResult(ctx, loop, &st); err != nil || len(st.Codes) != 2 {
		t.Fatalf("harness: loop: %v (state %+v)", err, st)
	}
	for i, runID := 1, firstRun; runID != ""; i++ {
		evs := history(ctx, t, c, loop.GetID(), runID)
		keep(fmt.Sprintf("loop-%d.json", i), fmt.Sprintf("run %d of a continue-as-new chain of 2 (Target 4, Every 2): tick signals", i), loop.GetID(), runID)
		runID = evs[len(evs)-1].GetWorkflowExecutionContinuedAsNewEventAttributes().GetNewExecutionRunId()
	}

	info, err := c.WorkflowService().GetSystemInfo(ctx, &workflowservice.GetSystemInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	m := Manifest{Recorded: time.Now().UTC().Truncate(time.Second), SDKVersion: temporal.SDKVersion, ServerVersion: info.GetServerVersion(), Code: v1.Code}
	if err := WriteCommitted(env.Root, m, out); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d histories to %s", len(out), HistoriesDir)
}

// replayFailures formats failed replays for a detail.
func replayFailures(rs []Replayed) []string {
	var out []string
	for _, r := range Failed(rs) {
		out = append(out, fmt.Sprintf("%s (%s): %v", r.Name, r.WorkflowType, r.Err))
	}
	return out
}

func typesOf(hs []Committed) []string {
	var out []string
	for _, h := range hs {
		if !slices.Contains(out, h.WorkflowType) {
			out = append(out, h.WorkflowType)
		}
	}
	return out
}

// testDrainThenDeploy runs Order, Parent and Quick on a v1 worker until
// they complete, stops it, starts a v2 worker on the same task queue and
// runs them again.
func testDrainThenDeploy(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "VR-01.drain-then-deploy")
	c, tq := env.Dial(t), harness.TaskQueue(t)
	ctx := harness.Context(t, time.Minute)
	types := []string{flows.Order, flows.Parent, flows.Quick}
	var o drain
	var runs []client.WorkflowRun
	runAll := func(codes *[]string) {
		for _, wf := range types {
			run := start(ctx, t, c, tq, harness.UniqueID(t, strings.ToLower(wf)), wf, "chair")
			runs = append(runs, run)
			var res flows.Result
			if err := harness.AwaitResult(ctx, run, &res); err != nil {
				o.errs = append(o.errs, fmt.Sprintf("%s: %v", wf, err))
				continue
			}
			*codes = append(*codes, res.Code)
		}
	}
	w1 := flowsWorker(t, c, tq, v1.Register)
	runAll(&o.v1Codes)
	for _, run := range runs {
		d, err := c.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
		if err != nil {
			t.Fatalf("harness: %v", err)
		}
		if d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			o.v1Open++
		}
	}
	w1.Stop()
	flowsWorker(t, c, tq, v2.Register)
	runAll(&o.v2Codes)
	o.taskFailures = taskFailures(ctx, t, c, runs...)
	harness.Decide(check, drainPredicate, o, fmt.Sprintf("%v on a v1 worker returned codes %v (%d open when it stopped); "+
		"then a v2 worker on the same task queue: %v returned codes %v; %d failed workflow tasks in the %d histories (children included); errors %v",
		types, o.v1Codes, o.v1Open, types, o.v2Codes, o.taskFailures, len(runs), o.errs),
		map[string]float64{"v1_runs": float64(len(o.v1Codes)), "v2_runs": float64(len(o.v2Codes)), "workflow_task_failures": float64(o.taskFailures)})
}

// newBranch is, per workflow a GetVersion change touches, the change id and
// the step its new branch adds.
var newBranch = []struct{ workflow, change, step string }{
	{flows.Approval, v2.ChangeNotify, flows.ActNotify},
	{flows.Order, v2.ChangeFraud, flows.ActFraudCheck},
	{flows.Parent, v2.ChangeAudit, flows.ActAudit},
}

// testGetVersionReplay replays the committed v1 histories with the
// workflows replayWith adds, then starts new runs of each changed workflow
// on a worker with live's workflows and looks for the new step and the
// GetVersion marker. VR-01.getversion-replay runs it on v2; its control on
// v2's changes made without GetVersion.
func testGetVersionReplay(t *testing.T, check *harness.Check, replayWith func(worker.WorkflowRegistry), live func(worker.Registry)) {
	env := harness.Get(t)
	m, hs, err := LoadCommitted(env.Root)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	rs := ReplayCommitted(replayWith, hs)
	o := versionedReplay{histories: len(rs), failed: replayFailures(rs)}

	c, tq := env.Dial(t), harness.TaskQueue(t)
	ctx := harness.Context(t, time.Minute)
	flowsWorker(t, c, tq, live)
	var notes []string
	for _, nb := range newBranch {
		run := start(ctx, t, c, tq, harness.UniqueID(t, strings.ToLower(nb.workflow)), nb.workflow, "sofa")
		if nb.workflow == flows.Approval {
			if err := c.SignalWorkflow(ctx, run.GetID(), "", flows.SignalApprove, "carol"); err != nil {
				t.Fatalf("harness: %v", err)
			}
		}
		res := result(ctx, t, run)
		markers, err := VersionMarkers(history(ctx, t, c, run.GetID(), run.GetRunID()))
		if err != nil {
			t.Fatalf("harness: %v", err)
		}
		marked := slices.Contains(markers, VersionMarker{ChangeID: nb.change, Version: 1})
		o.newRuns++
		if marked && slices.Contains(res.Steps, nb.step) {
			o.onNewBranch++
		}
		notes = append(notes, fmt.Sprintf("%s ran %v, markers %+v", nb.workflow, res.Steps, markers))
	}
	harness.Decide(check, getVersionReplayPredicate, o, fmt.Sprintf("%d committed v1 histories (%v; recorded %s with SDK %s, server %s) replayed: %d failed %v; "+
		"new runs: %s; %d of %d took the new branch with its marker at version 1",
		o.histories, typesOf(hs), m.Recorded.Format(time.DateOnly), m.SDKVersion, m.ServerVersion, len(o.failed), shortAll(o.failed, 220),
		strings.Join(notes, "; "), o.onNewBranch, o.newRuns),
		map[string]float64{"histories": float64(o.histories), "replay_failures": float64(len(o.failed)), "new_branch_runs": float64(o.onNewBranch)})
}

// testGetVersionLive parks an Approval run on the approve signal under a
// v1 worker, stops that worker, starts a v2 worker on the same task queue
// and sends the signal.
func testGetVersionLive(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "VR-01.getversion-live")
	c, tq := env.Dial(t), harness.TaskQueue(t)
	ctx := harness.Context(t, time.Minute)
	w1 := flowsWorker(t, c, tq, v1.Register)
	run := start(ctx, t, c, tq, harness.UniqueID(t, "approval"), flows.Approval, "bike")
	waitBlocked(ctx, t, c, run, flows.ActSubmit)
	w1.Stop()
	o := liveRun{parked: true, v1Path: []string{flows.ActSubmit, flows.ActFulfil}}
	flowsWorker(t, c, tq, v2.Register)
	signalled := time.Now()
	if err := c.SignalWorkflow(ctx, run.GetID(), "", flows.SignalApprove, "dave"); err != nil {
		t.Fatalf("harness: %v", err)
	}
	var res flows.Result
	if err := harness.AwaitResult(ctx, run, &res); err != nil {
		o.err = err.Error()
	}
	took := time.Since(signalled)
	o.code, o.steps = res.Code, res.Steps
	o.taskFailures = taskFailures(ctx, t, c, run)
	markers, err := VersionMarkers(history(ctx, t, c, run.GetID(), run.GetRunID()))
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	harness.Decide(check, getVersionLivePredicate, o, fmt.Sprintf("Approval started on v1, parked on the approve signal after Submit; v1 worker stopped, "+
		"v2 worker started on the same task queue, signal sent: returned code %q, steps %v (v1's path %v, v2's adds %s), error %q, "+
		"%d failed workflow tasks, version markers %+v, %d ms from signal to result",
		o.code, o.steps, o.v1Path, flows.ActNotify, o.err, o.taskFailures, markers, took.Milliseconds()),
		map[string]float64{"signal_to_result_ms": float64(took.Milliseconds()), "workflow_task_failures": float64(o.taskFailures)})
}

// short cuts s to n characters.
func short(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func shortAll(xs []string, n int) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = short(x, n)
	}
	return out
}
