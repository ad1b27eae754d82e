package wf

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/harness/ledger"
)

// TestWF02 measures child workflows: results and failures returned to the
// parent, cancellation propagated, each parent-close policy as the child
// experiences it, 500 children, and children surviving worker and server kills.
func TestWF02(t *testing.T) {
	t.Parallel()
	env := harness.Get(t)
	c := env.Dial(t)
	tq := harness.TaskQueue(t)
	probe := &Probe{}
	newWorker(t, c, tq, worker.Options{}, func(r worker.Registry) {
		registerWorkflows(r, ParentWorkflow, ChildWorkflow)
		r.RegisterActivity(&Children{Probe: probe})
	})
	ct := childTest{c: c, tq: tq, probe: probe}
	t.Run("child_result", ct.testResult)
	t.Run("child_failure", ct.testFailure)
	t.Run("cancel_propagates", ct.testCancelPropagates)
	t.Run("parent_close_policies", ct.testParentClosePolicies)
	t.Run("many_children", ct.testManyChildren)
	t.Run("survives_restart", testChildrenSurviveRestart)
}

type childTest struct {
	c     client.Client
	tq    string
	probe *Probe
}

func (ct childTest) start(ctx context.Context, t *testing.T, in ParentInput) client.WorkflowRun {
	t.Helper()
	return start(ctx, t, ct.c, client.StartWorkflowOptions{TaskQueue: ct.tq}, ParentWorkflow, in)
}

func (ct childTest) testResult(t *testing.T) {
	check := harness.Get(t).Check(t, "WF-02.child-result")
	ctx := harness.Context(t, time.Minute)
	run := ct.start(ctx, t, ParentInput{Children: []ChildInput{{N: 1}, {N: 2}, {N: 3}}})
	var res ParentResult
	err := run.Get(ctx, &res)
	completed := len(harness.EventsOf(mustHistory(ctx, t, ct.c, run.GetID(), ""), enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED))
	o := childResults{err: err, values: res.Values, want: []int{2, 4, 6}, completed: completed}
	harness.Decide(check, childResultPredicate, o, fmt.Sprintf("parent started 3 children with N=1,2,3 and received %v (error: %v); parent history: %d ChildWorkflowExecutionCompleted", res.Values, err, completed), nil)
}

func (ct childTest) testFailure(t *testing.T) {
	check := harness.Get(t).Check(t, "WF-02.child-failure")
	ctx := harness.Context(t, time.Minute)
	run := ct.start(ctx, t, ParentInput{Children: []ChildInput{{N: 1}, {N: 5, Fail: true}}})
	var res ParentResult
	err := run.Get(ctx, &res)
	want := fmt.Sprintf("ChildWorkflowExecutionError caused by ApplicationError type=%s message=%q", childErrType, "child refuses 5")
	o := childFailure{err: err, errs: res.Errors, want: want}
	if len(res.Values) > 0 {
		o.otherValue = res.Values[0]
	}
	harness.Decide(check, childFailurePredicate, o, fmt.Sprintf("the failing child surfaced in the parent as %q; the other child returned %d (error: %v)",
		strings.Join(res.Errors[min(1, len(res.Errors)):], ""), o.otherValue, err), nil)
}

func (ct childTest) testCancelPropagates(t *testing.T) {
	check := harness.Get(t).Check(t, "WF-02.cancel-propagates")
	ctx := harness.Context(t, time.Minute)
	// Abandon, so that only the cancellation of the parent's context can reach the child.
	run := ct.start(ctx, t, ParentInput{
		Children: []ChildInput{{N: 7, Hold: true}}, Policies: []enumspb.ParentClosePolicy{enumspb.PARENT_CLOSE_POLICY_ABANDON},
		WaitForCancellation: true,
	})
	if err := waitEvents(ctx, ct.c, run.GetID(), enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED, 1, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := ct.c.CancelWorkflow(ctx, run.GetID(), ""); err != nil {
		t.Fatalf("cancel parent: %v", err)
	}
	perr := run.Get(ctx, nil)
	child := ChildID(run.GetID(), 0)
	o := ct.observeChild(ctx, t, child, enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED)
	harness.Decide(check, cancelPropagatesPredicate, cancelPropagation{parentErr: perr, child: o}, fmt.Sprintf("parent cancelled while its child waited on a one-hour timer: parent ended with %v; child: %s", perr, o), nil)
}

func (o childObservation) String() string {
	s := fmt.Sprintf("status %s, cancel requested in its history: %v, cleanup activities completed: %d (executions seen by the worker: %d)",
		o.status, o.cancelRequested, o.cleanups, o.probeCleanups)
	if o.closeType == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED {
		s += fmt.Sprintf(", terminated with reason %q", o.terminateReason)
	}
	return s
}

// observeChild waits (up to 30s) for child to reach want and reads its history.
func (ct childTest) observeChild(ctx context.Context, t *testing.T, child string, want enumspb.WorkflowExecutionStatus) childObservation {
	t.Helper()
	var o childObservation
	o.status, _ = waitStatus(ctx, ct.c, child, want, 30*time.Second)
	events := mustHistory(ctx, t, ct.c, child, "")
	o.cancelRequested = len(harness.EventsOf(events, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED)) > 0
	o.cleanups = len(harness.EventsOf(events, enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED))
	last := events[len(events)-1]
	o.closeType = last.GetEventType()
	o.terminateReason = last.GetWorkflowExecutionTerminatedEventAttributes().GetReason()
	for _, r := range ct.probe.Runs() {
		if r.Tag == child {
			o.probeCleanups++
		}
	}
	return o
}

func (ct childTest) testParentClosePolicies(t *testing.T) {
	env := harness.Get(t)
	abandon := env.Check(t, "WF-02.parent-close-abandon")
	terminate := env.Check(t, "WF-02.parent-close-terminate")
	cancel := env.Check(t, "WF-02.parent-close-request-cancel")
	ctx := harness.Context(t, 2*time.Minute)
	runs := []policyRun{ct.closeParent(ctx, t, closeReturn), ct.closeParent(ctx, t, closeBlock)}
	var aD, tD, cD []string
	for _, r := range runs {
		aD = append(aD, fmt.Sprintf("parent %s: child still %s after its siblings were acted on, then on a signal it finished %s with %d (error: %v)",
			r.how, r.abandonMid, r.abandonFinal, r.abandonValue, r.abandonErr))
		tD = append(tD, fmt.Sprintf("parent %s: child %s", r.how, r.terminated))
		cD = append(cD, fmt.Sprintf("parent %s: child %s", r.how, r.cancelled))
	}
	harness.Decide(abandon, abandonPredicate, runs, strings.Join(aD, "; "), nil)
	harness.Decide(terminate, terminatePredicate, runs, strings.Join(tD, "; "), nil)
	harness.Decide(cancel, requestCancelPredicate, runs, strings.Join(cD, "; "), nil)
}

// closeParent starts a parent with three holding children (Abandon,
// Terminate, RequestCancel), closes it (it completes, or the test terminates
// it) and observes each child.
func (ct childTest) closeParent(ctx context.Context, t *testing.T, how string) policyRun {
	t.Helper()
	run := ct.start(ctx, t, ParentInput{
		Children: []ChildInput{{N: 10, Hold: true}, {N: 20, Hold: true}, {N: 30, Hold: true}},
		Policies: []enumspb.ParentClosePolicy{enumspb.PARENT_CLOSE_POLICY_ABANDON, enumspb.PARENT_CLOSE_POLICY_TERMINATE, enumspb.PARENT_CLOSE_POLICY_REQUEST_CANCEL},
		Close:    how,
	})
	r := policyRun{how: "completed"}
	if how == closeBlock {
		r.how = "terminated"
		if err := waitEvents(ctx, ct.c, run.GetID(), enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED, 3, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := ct.c.TerminateWorkflow(ctx, run.GetID(), "", "closing the parent"); err != nil {
			t.Fatalf("terminate parent: %v", err)
		}
	} else if err := run.Get(ctx, nil); err != nil {
		t.Fatalf("parent: %v", err)
	}
	r.terminated = ct.observeChild(ctx, t, ChildID(run.GetID(), 1), enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED)
	r.cancelled = ct.observeChild(ctx, t, ChildID(run.GetID(), 2), enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED)
	// The server applies the policies of all children when it closes the
	// parent, so by now the abandoned child would have been acted on too.
	abandoned := ChildID(run.GetID(), 0)
	var err error
	if r.abandonMid, err = status(ctx, ct.c, abandoned); err != nil {
		t.Fatal(err)
	}
	if r.abandonMid == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		if err := ct.c.SignalWorkflow(ctx, abandoned, "", finishSignal, nil); err != nil {
			t.Fatalf("signal abandoned child: %v", err)
		}
		r.abandonErr = ct.c.GetWorkflow(ctx, abandoned, "").Get(ctx, &r.abandonValue)
	}
	r.abandonFinal, _ = status(ctx, ct.c, abandoned)
	return r
}

func (ct childTest) testManyChildren(t *testing.T) {
	check := harness.Get(t).Check(t, "WF-02.many-children")
	heavy(t)
	ctx := harness.Context(t, 3*time.Minute)
	const n, batch = 500, 100
	in := ParentInput{Children: make([]ChildInput, n), Batch: batch}
	for i := range in.Children {
		in.Children[i].N = i
	}
	began := time.Now()
	run := ct.start(ctx, t, in)
	var res ParentResult
	err := run.Get(ctx, &res)
	took := time.Since(began)
	events := mustHistory(ctx, t, ct.c, run.GetID(), "")
	started := harness.EventsOf(events, enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED)
	ids := map[string]bool{}
	for _, ev := range started {
		ids[ev.GetChildWorkflowExecutionStartedEventAttributes().GetWorkflowExecution().GetWorkflowId()] = true
	}
	wrong := 0
	for i, v := range res.Values {
		if v != 2*i || res.Errors[i] != "" {
			wrong++
		}
	}
	initiated := len(harness.EventsOf(events, enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED))
	startFailed := len(harness.EventsOf(events, enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED))
	completed := len(harness.EventsOf(events, enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED))
	o := manyChildren{n: n, err: err, results: len(res.Values), wrong: wrong + max(n-len(res.Values), 0), initiated: initiated, started: len(started),
		distinct: len(ids), startFailed: startFailed, completed: completed}
	harness.Decide(check, manyChildrenPredicate, o, fmt.Sprintf("parent started %d children in batches of %d in %.1fs (error: %v): %d results, %d wrong or missing; history: %d initiated, %d started (%d distinct ids), %d start failures, %d completed",
		n, batch, took.Seconds(), err, len(res.Values), o.wrong, initiated, len(started), len(ids), startFailed, completed),
		map[string]float64{"children": n, "duration_s": took.Seconds(), "children_per_s": n / took.Seconds()})
}

func testChildrenSurviveRestart(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "WF-02.survives-restart")
	if ok, why := env.CanKillServer(); !ok {
		check.NotMeasured(why)
		return
	}
	ctx := harness.Context(t, 3*time.Minute)
	srv := env.StartServer(t, harness.ServerOptions{})
	c := srv.Dial(t)
	tq := harness.TaskQueue(t)
	led := filepath.Join(env.Scratch(t), "ledger.jsonl")
	cfg := harness.RoleConfig{Address: srv.Address(), Namespace: "default", TaskQueue: tq, Args: map[string]string{"ledger": led}}
	first := env.StartWorker(t, ledgerRole, cfg)
	const n = 3
	in := ParentInput{Children: make([]ChildInput, n)}
	for i := range in.Children {
		in.Children[i] = ChildInput{N: i + 1, Step: 3 * time.Second}
	}
	// Short, so that a task held by the killed worker is handed out again soon.
	run := start(ctx, t, c, client.StartWorkflowOptions{TaskQueue: tq, WorkflowTaskTimeout: 2 * time.Second}, ParentWorkflow, in)
	// Kill while every child sleeps between its two steps: its timer has
	// started, so the server has recorded step 1 as completed.
	for i := range n {
		if err := waitEvents(ctx, c, ChildID(run.GetID(), i), enumspb.EVENT_TYPE_TIMER_STARTED, 1, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := first.Kill(); err != nil {
		t.Fatalf("kill worker: %v", err)
	}
	if err := srv.Kill(); err != nil {
		t.Fatalf("kill server: %v", err)
	}
	killedAt := time.Now()
	if err := srv.Restart(); err != nil {
		t.Fatalf("restart server: %v", err)
	}
	second := env.StartWorker(t, ledgerRole, cfg)
	var res ParentResult
	err := harness.AwaitResult(ctx, run, &res)
	entries, lerr := ledger.Read(led)
	if lerr != nil {
		t.Fatal(lerr)
	}
	starts := ledger.Starts(entries)
	o := childrenRestart{err: err, values: res.Values, want: []int{2, 4, 6}}
	var execs []string
	for i := range n {
		s1, s2 := starts[ledger.StepKey{Key: ChildID(run.GetID(), i), Step: 1}], starts[ledger.StepKey{Key: ChildID(run.GetID(), i), Step: 2}]
		o.step1, o.step2 = append(o.step1, s1), append(o.step2, s2)
		execs = append(execs, fmt.Sprintf("child %d step 1: %d, step 2: %d", i, s1, s2))
	}
	harness.Decide(check, childrenRestartPredicate, o, fmt.Sprintf("%d children asleep between their steps (step 1 recorded completed); worker pid %d and the server SIGKILLed, server restarted on the same SQLite file, worker pid %d started; "+
		"parent received %v %.1fs after the kills (error: %v); ledger executions: %s",
		n, first.PID(), second.PID(), res.Values, time.Since(killedAt).Seconds(), err, strings.Join(execs, ", ")),
		map[string]float64{"recovery_s": time.Since(killedAt).Seconds()})
}
