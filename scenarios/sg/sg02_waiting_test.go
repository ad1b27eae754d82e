package sg

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/durabench/durabench/harness"
)

// TestSG02 measures durable waits: release by a signal, timeouts, approval
// by update, an HTTP callback completing an activity, escalation, waits that
// outlive worker and server restarts, week-long waits under time skipping,
// and thousands of waits that hold no worker slots.
func TestSG02(t *testing.T) {
	env := harness.Get(t)
	c := env.Dial(t)
	tq := harness.TaskQueue(t)
	cb := make(chan string, 1)
	startWorker(t, c, tq, worker.Options{}, func(r worker.Registry) { registerCallbacks(r, &Callbacks{Started: cb}) })
	a := approvals{c: c, tq: tq}

	t.Run("await_condition", a.testAwaitCondition)
	t.Run("await_timeout", a.testAwaitTimeout)
	t.Run("approval_by_update", a.testApprovalByUpdate)
	t.Run("webhook_callback", func(t *testing.T) { a.testWebhookCallback(t, cb) })
	t.Run("escalation", a.testEscalation)
	t.Run("wait_survives_restart", testWaitSurvivesRestart)
	t.Run("long_wait_tested", testLongWait)
	t.Run("many_waiters", testManyWaiters)
}

// approvals runs ApprovalWorkflows on a task queue served by an in-process worker.
type approvals struct {
	c  client.Client
	tq string
}

func (a approvals) start(ctx context.Context, t *testing.T, in ApprovalInput) client.WorkflowRun {
	t.Helper()
	return start(ctx, t, a.c, startOptions(a.tq, harness.UniqueID(t, "wf")), ApprovalWorkflow, in)
}

// state reads an approval's state once its first workflow task has run.
func state(ctx context.Context, c client.Client, id string) (ApprovalResult, error) {
	var st ApprovalResult
	err := harness.WaitFor(ctx, time.Minute, 50*time.Millisecond, "the state of "+id, func(ctx context.Context) (bool, error) {
		return query(ctx, c, id, stateQuery, &st) == nil, nil
	})
	return st, err
}

func (a approvals) testAwaitCondition(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-02.await-condition")
	ctx := harness.Context(t, time.Minute)
	run := a.start(ctx, t, ApprovalInput{})
	o := release{approver: "alice"}
	var err error
	if o.before, err = state(ctx, a.c, run.GetID()); err != nil {
		t.Fatal(err)
	}
	d, err := a.c.DescribeWorkflowExecution(ctx, run.GetID(), "")
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	status := d.GetWorkflowExecutionInfo().GetStatus()
	o.openBefore = status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
	if o.err = a.c.SignalWorkflow(ctx, run.GetID(), "", approveSignal, Approval{Approver: o.approver}); o.err == nil {
		o.err = run.Get(ctx, &o.res)
	}
	harness.Decide(check, awaitPredicate, o, fmt.Sprintf("workflow.Await on the approval: before the signal describe said %s and the query read "+
		"approved=%v; after an %q signal from %s the run returned approved=%v by %q via %s after %s (error: %v)",
		status, o.before.Approved, approveSignal, o.approver, o.res.Approved, o.res.Approver, o.res.Via, o.res.Waited.Round(time.Millisecond), o.err), nil)
}

func (a approvals) testAwaitTimeout(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-02.await-timeout")
	ctx := harness.Context(t, time.Minute)
	o := timeout{timeout: 2 * time.Second}
	run := a.start(ctx, t, ApprovalInput{Timeout: o.timeout})
	err := run.Get(ctx, &o.res)
	events, _, histErr := countEvents(ctx, a.c, run.GetID())
	o.timersFired, o.err = events[enumspb.EVENT_TYPE_TIMER_FIRED], errors.Join(err, histErr)
	// Waited is workflow time: the timer fires on the server, then a
	// workflow task runs and reads the clock.
	harness.Decide(check, awaitTimeoutPredicate, o, fmt.Sprintf("AwaitWithTimeout(%s) with no signal returned %v after %s of workflow time, "+
		"%s after the timeout (bound: at or after it, less than %s after: Temporal's documented timer precision); "+
		"history: %d TimerStarted, %d TimerFired (error: %v)",
		o.timeout, !o.res.TimedOut, o.res.Waited.Round(time.Millisecond), (o.res.Waited-o.timeout).Round(time.Millisecond), timerLateness,
		events[enumspb.EVENT_TYPE_TIMER_STARTED], o.timersFired, o.err),
		map[string]float64{"timeout_s": o.timeout.Seconds(), "waited_s": o.res.Waited.Seconds(), "late_ms": ms(o.res.Waited - o.timeout)})
}

func (a approvals) testApprovalByUpdate(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-02.approval-by-update")
	ctx := harness.Context(t, time.Minute)
	run := a.start(ctx, t, ApprovalInput{})
	o := updateApproval{approver: "dave"}
	var err error
	if o.before, err = state(ctx, a.c, run.GetID()); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	h, err := a.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: run.GetID(), UpdateName: approveUpdate, Args: []any{Approval{Approver: o.approver}},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, &o.reply)
	}
	roundTrip := time.Since(began)
	if err == nil {
		err = run.Get(ctx, &o.res)
	}
	o.err = err
	harness.Decide(check, updateApprovalPredicate, o, fmt.Sprintf("before: the query read approved=%v; an %q update from %s answered the caller "+
		"in %s with approved=%v by %q via %s; the run then returned approved=%v by %q via %s (error: %v)",
		o.before.Approved, approveUpdate, o.approver, roundTrip.Round(time.Millisecond), o.reply.Approved, o.reply.Approver, o.reply.Via,
		o.res.Approved, o.res.Approver, o.res.Via, o.err),
		map[string]float64{"update_round_trip_ms": ms(roundTrip)})
}

// callbackBody is what the HTTP callback endpoint receives.
type callbackBody struct {
	WorkflowID string `json:"workflow_id"`
	ActivityID string `json:"activity_id"`
	Decision   string `json:"decision"`
}

// callbackHandler completes the named activity with the posted decision.
func callbackHandler(c client.Client, namespace string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b callbackBody
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := c.CompleteActivityByID(r.Context(), namespace, b.WorkflowID, "", b.ActivityID, b.Decision, nil); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// postJSON posts v to url and returns the response status and body.
func postJSON(ctx context.Context, url string, v any) (int, []byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	_, err = out.ReadFrom(resp.Body)
	return resp.StatusCode, out.Bytes(), err
}

func (a approvals) testWebhookCallback(t *testing.T, started <-chan string) {
	env := harness.Get(t)
	check := env.Check(t, "SG-02.webhook-callback")
	ctx := harness.Context(t, time.Minute)
	srv := httptest.NewServer(callbackHandler(a.c, env.Options.Namespace)) // listens on 127.0.0.1
	t.Cleanup(srv.Close)
	run := start(ctx, t, a.c, startOptions(a.tq, harness.UniqueID(t, "wf")), CallbackWorkflow)
	select {
	case id := <-started:
		if id != run.GetID() {
			t.Fatalf("callback activity started for %s, want %s", id, run.GetID())
		}
	case <-ctx.Done():
		t.Fatal("the callback activity did not start")
	}
	o := callback{decision: "approved by webhook"}
	// The activity function has returned ErrResultPending: the server must
	// still hold the activity as started, waiting for its completion.
	var pending []string
	d, err := a.c.DescribeWorkflowExecution(ctx, run.GetID(), "")
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	for _, p := range d.GetPendingActivities() {
		pending = append(pending, fmt.Sprintf("%s %s", p.GetActivityId(), p.GetState()))
		if p.GetActivityId() == callbackActID && p.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED {
			o.pendingBefore++
		}
	}
	var body []byte
	o.status, body, o.err = postJSON(ctx, srv.URL, callbackBody{WorkflowID: run.GetID(), ActivityID: callbackActID, Decision: o.decision})
	if o.err == nil {
		o.err = run.Get(ctx, &o.result)
	}
	answer := strings.TrimSpace(fmt.Sprintf("%d %s", o.status, body))
	harness.Decide(check, callbackPredicate, o, fmt.Sprintf("before the callback the server listed pending activities %v; POST %s with decision %q "+
		"answered %s; the workflow returned %q (error: %v)", pending, srv.URL, o.decision, answer, o.result, o.err), nil)
}

func (a approvals) testEscalation(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-02.escalation")
	ctx := harness.Context(t, 2*time.Minute)
	o := escalation{escalateAfter: time.Second, deadline: 3 * time.Second}
	// Both run at once: one is approved after its escalation, the other
	// reaches its final deadline unapproved.
	expiring := a.start(ctx, t, ApprovalInput{Timeout: o.escalateAfter, Deadline: o.deadline})
	approved := a.start(ctx, t, ApprovalInput{Timeout: o.escalateAfter, Deadline: time.Minute})
	// A platform that never escalates fails the check here, with the wait's error.
	waitErr := harness.WaitFor(ctx, 30*time.Second, 50*time.Millisecond, "the escalation", func(ctx context.Context) (bool, error) {
		var st ApprovalResult
		return query(ctx, a.c, approved.GetID(), stateQuery, &st) == nil && len(st.Escalations) > 0, nil
	})
	o.seen = waitErr == nil
	o.approvedErr = a.c.SignalWorkflow(ctx, approved.GetID(), "", approveSignal, Approval{Approver: "erin"})
	if o.approvedErr == nil {
		o.approvedErr = approved.Get(ctx, &o.approved)
	}
	o.expiredErr = expiring.Get(ctx, &o.expired)
	ra, re := o.approved, o.expired
	harness.Decide(check, escalationPredicate, o, fmt.Sprintf(
		"no approval within %s: the escalation activity ran (%q) and ended %s after the start, seen by a query before the approval: %v (%v); an approval "+
			"signal from erin then released the wait: approved=%v after %s (error: %v). With a final deadline of %s and no approval: escalated %d "+
			"time(s), ending %s after the start, and returned approved=%v after %s, %s past the deadline (error: %v). Bound on each: at or "+
			"after it, less than %s after (Temporal's documented timer precision)",
		o.escalateAfter, firstOr(ra.Escalations), ra.EscalatedAfter.Round(time.Millisecond), o.seen, waitErr, ra.Approved, ra.Waited.Round(time.Millisecond), o.approvedErr,
		o.deadline, len(re.Escalations), re.EscalatedAfter.Round(time.Millisecond), re.Approved, re.Waited.Round(time.Millisecond),
		(re.Waited-o.deadline).Round(time.Millisecond), o.expiredErr, timerLateness),
		map[string]float64{"escalated_after_s": ra.EscalatedAfter.Seconds(), "expired_after_s": re.Waited.Seconds(),
			"escalation_late_ms": ms(ra.EscalatedAfter - o.escalateAfter), "deadline_late_ms": ms(re.Waited - o.deadline)})
}

func firstOr(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return xs[0]
}

func testWaitSurvivesRestart(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "SG-02.wait-survives-restart")
	ctx := harness.Context(t, 3*time.Minute)
	srv, killable := env.KillableServer(t, harness.ServerOptions{}, check)
	if !killable {
		return
	}
	check.OnServer(srv)
	c := srv.Dial(t)
	tq := harness.TaskQueue(t)
	first := startChildWorker(t, srv.Address(), tq)
	run := start(ctx, t, c, startOptions(tq, harness.UniqueID(t, "wf")), ApprovalWorkflow, ApprovalInput{})
	if _, err := state(ctx, c, run.GetID()); err != nil {
		t.Fatal(err)
	}
	if err := first.Kill(); err != nil {
		t.Fatalf("kill worker: %v", err)
	}
	down := restartServer(t, srv)
	second := startChildWorker(t, srv.Address(), tq)
	// Only the new worker can answer: it rebuilds the wait from history. A
	// server that lost the run fails the check here.
	o := restartedWait{approver: "frank"}
	o.after, o.afterErr = state(ctx, c, run.GetID())
	if o.err = c.SignalWorkflow(ctx, run.GetID(), "", approveSignal, Approval{Approver: o.approver}); o.err == nil {
		o.err = harness.AwaitResult(ctx, run, &o.res)
	}
	harness.Decide(check, restartedWaitPredicate, o, fmt.Sprintf("a waiting approval: worker pid %d SIGKILLed, server SIGKILLed and restarted "+
		"on %s (%.1fs); worker pid %d answered the query with approved=%v (error: %v); a signal from %s then released it: approved=%v by %q (error: %v)",
		first.PID(), srv.Persistence(), down.Seconds(), second.PID(), o.after.Approved, o.afterErr, o.approver, o.res.Approved, o.res.Approver, o.err),
		map[string]float64{"restart_s": down.Seconds()})
}

// testLongWait runs a week-long approval twice in the time-skipping test
// environment: once unapproved to the deadline, once approved on day 3.
func testLongWait(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-02.long-wait-tested")
	const day = 24 * time.Hour
	o := longWait{escalateAt: day, deadline: 7 * day, approveAt: 3 * day}
	in := ApprovalInput{Timeout: o.escalateAt, Deadline: o.deadline}
	run := func(approveAt time.Duration) (ApprovalResult, time.Duration, error) {
		var s testsuite.WorkflowTestSuite
		s.SetLogger(quietLogger())
		e := s.NewTestWorkflowEnvironment()
		e.RegisterWorkflow(ApprovalWorkflow)
		e.RegisterActivityWithOptions(Escalate, activity.RegisterOptions{Name: escalateActivityName})
		if approveAt > 0 {
			e.RegisterDelayedCallback(func() { e.SignalWorkflow(approveSignal, Approval{Approver: "grace"}) }, approveAt)
		}
		began := time.Now()
		e.ExecuteWorkflow(ApprovalWorkflow, in)
		wall := time.Since(began)
		var res ApprovalResult
		err := e.GetWorkflowError()
		if err == nil {
			err = e.GetWorkflowResult(&res)
		}
		return res, wall, err
	}
	o.expired, o.expiredWall, o.expiredErr = run(0)
	o.approved, o.approvedWall, o.approvedErr = run(o.approveAt)
	harness.Decide(check, longWaitPredicate, o, fmt.Sprintf("time skipped: a %s wait with escalation at %s and no approval escalated at %s and "+
		"expired at %s of virtual time in %s of wall time (error: %v); approved by a signal at %s it returned approved=%v after %s virtual "+
		"(%d escalation(s)) in %s wall (error: %v); bound: each under %s of wall time (the catalog's figure)",
		o.deadline, o.escalateAt, o.expired.EscalatedAfter, o.expired.Waited, o.expiredWall.Round(time.Microsecond), o.expiredErr,
		o.approveAt, o.approved.Approved, o.approved.Waited, len(o.approved.Escalations), o.approvedWall.Round(time.Microsecond), o.approvedErr, longWaitWall),
		map[string]float64{"virtual_h": o.expired.Waited.Hours(), "wall_ms_expired": ms(o.expiredWall), "wall_ms_approved": ms(o.approvedWall)})
}

// waiters counts, outside the workflows, how many first reached their wait
// and how many went past it. The counts skip replay, so a workflow evicted
// from the cache and replayed is not counted twice.
type waiters struct {
	arrived, resumed atomic.Int64
}

// Wait is a workflow that waits for the "approve" signal.
func (w *waiters) Wait(ctx workflow.Context) error {
	if !workflow.IsReplaying(ctx) {
		w.arrived.Add(1)
	}
	approved := false
	onSignal(ctx, approveSignal, &approved)
	if err := workflow.Await(ctx, func() bool { return approved }); err != nil {
		return err
	}
	if !workflow.IsReplaying(ctx) {
		w.resumed.Add(1)
	}
	return nil
}

func testManyWaiters(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "SG-02.many-waiters")
	ctx := harness.Context(t, 4*time.Minute)
	o := waiting{n: manyWaitersN, slots: manyWaitersSlots}
	base, srv, where := waitersServer(t)
	if srv != nil {
		check.OnServer(srv)
	}
	g := newGauges()
	c, err := client.NewClientFromExisting(base, client.Options{Namespace: env.Options.Namespace, MetricsHandler: g, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(c.Close)
	tq := harness.TaskQueue(t)
	ws := &waiters{}
	w := worker.New(c, tq, worker.Options{MaxConcurrentWorkflowTaskExecutionSize: o.slots, MaxConcurrentWorkflowTaskPollers: o.slots})
	w.RegisterWorkflowWithOptions(ws.Wait, workflow.RegisterOptions{Name: "Wait"})
	if err := w.Start(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	t.Cleanup(w.Stop)

	prefix := harness.UniqueID(t, "w")
	id := func(i int) string { return fmt.Sprintf("%s-%05d", prefix, i) }
	began := time.Now()
	if err := parallel(ctx, o.n, 32, func(ctx context.Context, i int) error {
		_, err := c.ExecuteWorkflow(ctx, startOptions(tq, id(i)), "Wait")
		return err
	}); err != nil {
		t.Fatalf("starting waiters: %v", err)
	}
	// Waits that held a slot would stall here at the slot count: the check
	// fails with how many got through.
	o.err = harness.WaitFor(ctx, 2*time.Minute, 100*time.Millisecond, "every waiter to reach its wait", func(context.Context) (bool, error) {
		return ws.arrived.Load() >= int64(o.n), nil
	})
	startup := time.Since(began)
	// The last workflow tasks are still being answered when their workflow
	// code has run; their slots are free once that is done. Slots held by the
	// waits would keep the gauge up, and the check fails with its value.
	if o.err == nil {
		o.err = harness.WaitFor(ctx, 30*time.Second, 20*time.Millisecond, "free workflow-task slots", func(context.Context) (bool, error) {
			return g.get(slotsUsedGauge) == 0, nil
		})
	}
	o.arrived, o.resumedEarly = ws.arrived.Load(), ws.resumed.Load()
	o.slotsUsed = g.get(slotsUsedGauge)
	cached := g.get(stickyCacheGauge)
	var resume time.Duration
	if o.err == nil {
		began = time.Now()
		if err := parallel(ctx, o.n, 32, func(ctx context.Context, i int) error {
			return c.SignalWorkflow(ctx, id(i), "", approveSignal, nil)
		}); err != nil {
			t.Fatalf("signalling waiters: %v", err)
		}
		o.err = harness.WaitFor(ctx, 3*time.Minute, 250*time.Millisecond, "every waiter to complete", func(ctx context.Context) (bool, error) {
			resp, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
				Query: fmt.Sprintf("TaskQueue = '%s' AND ExecutionStatus = 'Completed'", tq),
			})
			if err != nil {
				return false, err
			}
			o.completed = resp.GetCount()
			return o.completed >= int64(o.n), nil
		})
		resume = time.Since(began)
	}
	o.resumed = ws.resumed.Load()
	harness.Decide(check, manyWaitersPredicate, o, fmt.Sprintf("on %s: %d of %d workflows reached their wait in %.1fs on one worker with %d "+
		"workflow-task slots; while they waited, %d had resumed, workflow-task slots in use %.0f of %d, sticky cache %.0f workflows; after one "+
		"signal each, %d resumed in the worker and visibility counted %d completed, %.1fs after the first signal (error: %v)",
		where, o.arrived, o.n, startup.Seconds(), o.slots, o.resumedEarly, o.slotsUsed, o.slots, cached, o.resumed, o.completed, resume.Seconds(), o.err),
		map[string]float64{"waiters": float64(o.arrived), "slots": float64(o.slots), "slots_used_while_waiting": o.slotsUsed, "sticky_cache": cached,
			"start_s": startup.Seconds(), "resume_s": resume.Seconds(), "completed": float64(o.completed)})
}

// waitersServer is the server SG-02.many-waiters runs on, nil for an
// external one. Embedded, it is a dedicated in-memory dev server
// (persistence is not what the check measures, and SQLite file writes would
// triple its run time) whose task queues have one partition: with the
// default four, the partitions without a poller forward tasks at 10 per
// second, which would measure the forwarder. The check records the server,
// so that the report lists that non-default dynamic config with it.
func waitersServer(t *testing.T) (client.Client, *harness.Server, string) {
	env := harness.Get(t)
	if ok, _ := env.CanKillServer(); !ok {
		return env.Dial(t), nil, "the external server " + env.Options.HostPort
	}
	srv := env.StartServer(t, harness.ServerOptions{InMemory: true, DynamicConfig: map[string]string{
		"matching.numTaskqueueReadPartitions": "1", "matching.numTaskqueueWritePartitions": "1",
	}})
	return srv.Dial(t), srv, "a dedicated in-memory dev server with one task-queue partition"
}

// parallel runs f(0..n-1) on `workers` goroutines and returns the first error.
func parallel(ctx context.Context, n, workers int, f func(context.Context, int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(ctx, i); err != nil {
					cancel(fmt.Errorf("item %d: %w", i, err))
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// Names of the worker gauges that testManyWaiters reads.
const (
	slotsUsedGauge   = "temporal_worker_task_slots_used/WorkflowWorker"
	stickyCacheGauge = "temporal_sticky_cache_size/none"
)

// gauges is a metrics handler that keeps the last value of every gauge,
// named "name/worker_type" ("none" for gauges of no worker type).
type gauges struct {
	mu   *sync.Mutex
	last map[string]float64
	tags map[string]string
}

func newGauges() gauges {
	return gauges{mu: &sync.Mutex{}, last: map[string]float64{}}
}

func (g gauges) WithTags(tags map[string]string) client.MetricsHandler {
	merged := maps.Clone(g.tags)
	if merged == nil {
		merged = map[string]string{}
	}
	maps.Copy(merged, tags)
	return gauges{mu: g.mu, last: g.last, tags: merged}
}

func (g gauges) Counter(name string) client.MetricsCounter {
	return client.MetricsNopHandler.Counter(name)
}
func (g gauges) Timer(name string) client.MetricsTimer { return client.MetricsNopHandler.Timer(name) }

func (g gauges) Gauge(name string) client.MetricsGauge {
	return gauge{g: g, name: name + "/" + g.tags["worker_type"]}
}

func (g gauges) get(name string) float64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.last[name]
}

type gauge struct {
	g    gauges
	name string
}

func (x gauge) Update(v float64) {
	x.g.mu.Lock()
	defer x.g.mu.Unlock()
	x.g.last[x.name] = v
}
