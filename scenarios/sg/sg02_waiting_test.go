package sg

import (
	"bytes"
	"context"
	"encoding/json"
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
	before, err := state(ctx, a.c, run.GetID())
	if err != nil {
		t.Fatal(err)
	}
	var res ApprovalResult
	if err = a.c.SignalWorkflow(ctx, run.GetID(), "", approveSignal, Approval{Approver: "alice"}); err == nil {
		err = run.Get(ctx, &res)
	}
	ok := !before.Approved && err == nil && res.Approved && res.Approver == "alice" && res.Via == "signal"
	check.Result(ok, fmt.Sprintf("workflow.Await on the approval: before the signal the query read approved=%v; "+
		"after an %q signal from alice the run returned approved=%v by %q via %s after %s (error: %v)",
		before.Approved, approveSignal, res.Approved, res.Approver, res.Via, res.Waited.Round(time.Millisecond), err), nil)
}

func (a approvals) testAwaitTimeout(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-02.await-timeout")
	ctx := harness.Context(t, time.Minute)
	const timeout = 2 * time.Second
	run := a.start(ctx, t, ApprovalInput{Timeout: timeout})
	var res ApprovalResult
	err := run.Get(ctx, &res)
	events, _, histErr := countEvents(ctx, a.c, run.GetID())
	// Waited is workflow time: the timer fires on the server, then a
	// workflow task runs; a loaded machine adds a few seconds at most.
	ok := err == nil && histErr == nil && res.TimedOut && !res.Approved &&
		res.Waited >= timeout && res.Waited < timeout+5*time.Second && events[enumspb.EVENT_TYPE_TIMER_FIRED] == 1
	check.Result(ok, fmt.Sprintf("AwaitWithTimeout(%s) with no signal returned %v after %s of workflow time (error: %v); "+
		"history: %d TimerStarted, %d TimerFired (error: %v)",
		timeout, !res.TimedOut, res.Waited.Round(time.Millisecond), err,
		events[enumspb.EVENT_TYPE_TIMER_STARTED], events[enumspb.EVENT_TYPE_TIMER_FIRED], histErr),
		map[string]float64{"timeout_s": timeout.Seconds(), "waited_s": res.Waited.Seconds()})
}

func (a approvals) testApprovalByUpdate(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-02.approval-by-update")
	ctx := harness.Context(t, time.Minute)
	run := a.start(ctx, t, ApprovalInput{})
	if _, err := state(ctx, a.c, run.GetID()); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	var reply, res ApprovalResult
	h, err := a.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: run.GetID(), UpdateName: approveUpdate, Args: []any{Approval{Approver: "dave"}},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, &reply)
	}
	roundTrip := time.Since(began)
	if err == nil {
		err = run.Get(ctx, &res)
	}
	ok := err == nil && reply.Approved && reply.Approver == "dave" && reply.Via == "update" &&
		res.Approved && res.Approver == "dave" && res.Via == "update"
	check.Result(ok, fmt.Sprintf("an %q update from dave answered the caller in %s with approved=%v by %q via %s; "+
		"the run then returned approved=%v by %q via %s (error: %v)",
		approveUpdate, roundTrip.Round(time.Millisecond), reply.Approved, reply.Approver, reply.Via, res.Approved, res.Approver, res.Via, err),
		map[string]float64{"update_round_trip_ms": float64(roundTrip) / float64(time.Millisecond)})
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
	status, body, err := postJSON(ctx, srv.URL, callbackBody{WorkflowID: run.GetID(), ActivityID: callbackActID, Decision: "approved by webhook"})
	var res string
	if err == nil {
		err = run.Get(ctx, &res)
	}
	ok := err == nil && status == http.StatusNoContent && res == "approved by webhook"
	answer := strings.TrimSpace(fmt.Sprintf("%d %s", status, body))
	check.Result(ok, fmt.Sprintf("activity %q returned ErrResultPending; POST %s answered %s; CompleteActivityByID woke the workflow, which returned %q (error: %v)",
		callbackActID, srv.URL, answer, res, err), nil)
}

func (a approvals) testEscalation(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-02.escalation")
	ctx := harness.Context(t, 2*time.Minute)
	const escalateAfter, shortDeadline = time.Second, 3 * time.Second
	// Both run at once: one is approved after its escalation, the other
	// reaches its final deadline unapproved.
	expiring := a.start(ctx, t, ApprovalInput{Timeout: escalateAfter, Deadline: shortDeadline})
	approved := a.start(ctx, t, ApprovalInput{Timeout: escalateAfter, Deadline: time.Minute})
	if err := harness.WaitFor(ctx, time.Minute, 50*time.Millisecond, "the escalation", func(ctx context.Context) (bool, error) {
		var st ApprovalResult
		return query(ctx, a.c, approved.GetID(), stateQuery, &st) == nil && len(st.Escalations) > 0, nil
	}); err != nil {
		t.Fatal(err)
	}
	var ra, re ApprovalResult
	err := a.c.SignalWorkflow(ctx, approved.GetID(), "", approveSignal, Approval{Approver: "erin"})
	if err == nil {
		err = approved.Get(ctx, &ra)
	}
	errExp := expiring.Get(ctx, &re)
	okApproved := err == nil && ra.Approved && ra.Via == "signal" && ra.TimedOut && len(ra.Escalations) == 1 && ra.EscalatedAfter >= escalateAfter
	okExpired := errExp == nil && !re.Approved && re.TimedOut && len(re.Escalations) == 1 &&
		re.Waited >= shortDeadline && re.Waited < shortDeadline+5*time.Second
	check.Result(okApproved && okExpired, fmt.Sprintf(
		"no approval within %s: escalation activity ran (%q) %s after the start, then the wait went on and an approval signal from erin "+
			"released it: approved=%v after %s (error: %v). With a final deadline of %s and no approval: escalated %d time(s) at %s, "+
			"returned approved=%v after %s (error: %v)",
		escalateAfter, firstOr(ra.Escalations), ra.EscalatedAfter.Round(time.Millisecond), ra.Approved, ra.Waited.Round(time.Millisecond), err,
		shortDeadline, len(re.Escalations), re.EscalatedAfter.Round(time.Millisecond), re.Approved, re.Waited.Round(time.Millisecond), errExp),
		map[string]float64{"escalated_after_s": ra.EscalatedAfter.Seconds(), "expired_after_s": re.Waited.Seconds()})
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
	// The new worker rebuilds the wait from history: still waiting.
	after, err := state(ctx, c, run.GetID())
	if err != nil {
		t.Fatal(err)
	}
	var res ApprovalResult
	if err = c.SignalWorkflow(ctx, run.GetID(), "", approveSignal, Approval{Approver: "frank"}); err == nil {
		err = harness.AwaitResult(ctx, run, &res)
	}
	ok := !after.Approved && err == nil && res.Approved && res.Approver == "frank"
	check.Result(ok, fmt.Sprintf("a waiting approval: worker pid %d SIGKILLed, server SIGKILLed and restarted on its SQLite file (%.1fs); "+
		"worker pid %d replayed it (query: approved=%v); a signal then released it: approved=%v by %q (error: %v)",
		first.PID(), down.Seconds(), second.PID(), after.Approved, res.Approved, res.Approver, err),
		map[string]float64{"restart_s": down.Seconds()})
}

// testLongWait runs a week-long approval twice in the time-skipping test
// environment: once unapproved to the deadline, once approved on day 3.
func testLongWait(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-02.long-wait-tested")
	const day = 24 * time.Hour
	in := ApprovalInput{Timeout: day, Deadline: 7 * day}
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
	expired, wallExpired, errExpired := run(0)
	approved, wallApproved, errApproved := run(3 * day)
	near := func(got, want time.Duration) bool { return got >= want && got < want+time.Minute }
	ok := errExpired == nil && !expired.Approved && len(expired.Escalations) == 1 && near(expired.EscalatedAfter, day) && near(expired.Waited, 7*day) &&
		errApproved == nil && approved.Approved && len(approved.Escalations) == 1 && near(approved.Waited, 3*day) &&
		wallExpired < time.Second && wallApproved < time.Second
	check.Result(ok, fmt.Sprintf("time skipped: a 7-day wait with escalation at day 1 and no approval escalated at %s and expired at %s "+
		"of virtual time in %s of wall time (error: %v); approved by a signal at day 3 it returned approved=%v after %s virtual "+
		"(%d escalation) in %s wall (error: %v)",
		expired.EscalatedAfter, expired.Waited, wallExpired.Round(time.Microsecond), errExpired,
		approved.Approved, approved.Waited, len(approved.Escalations), wallApproved.Round(time.Microsecond), errApproved),
		map[string]float64{"virtual_h": expired.Waited.Hours(), "wall_ms_expired": float64(wallExpired) / float64(time.Millisecond),
			"wall_ms_approved": float64(wallApproved) / float64(time.Millisecond)})
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
	const n, slots = manyWaiters, 4
	base, where := waitersServer(t)
	g := newGauges()
	c, err := client.NewClientFromExisting(base, client.Options{Namespace: env.Options.Namespace, MetricsHandler: g, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(c.Close)
	tq := harness.TaskQueue(t)
	ws := &waiters{}
	w := worker.New(c, tq, worker.Options{MaxConcurrentWorkflowTaskExecutionSize: slots, MaxConcurrentWorkflowTaskPollers: slots})
	w.RegisterWorkflowWithOptions(ws.Wait, workflow.RegisterOptions{Name: "Wait"})
	if err := w.Start(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	t.Cleanup(w.Stop)

	prefix := harness.UniqueID(t, "w")
	id := func(i int) string { return fmt.Sprintf("%s-%05d", prefix, i) }
	began := time.Now()
	if err := parallel(ctx, n, 32, func(ctx context.Context, i int) error {
		o := startOptions(tq, id(i))
		_, err := c.ExecuteWorkflow(ctx, o, "Wait")
		return err
	}); err != nil {
		t.Fatalf("starting waiters: %v", err)
	}
	// Waits that held a slot would stall here at the slot count: a finding,
	// reported with how many got through.
	if err := harness.WaitFor(ctx, 2*time.Minute, 100*time.Millisecond, "every waiter to reach its wait", func(context.Context) (bool, error) {
		return ws.arrived.Load() >= n, nil
	}); err != nil {
		check.Fail(fmt.Sprintf("on %s: only %d of %d workflows reached their wait on a worker with %d workflow-task slots (%v)",
			where, ws.arrived.Load(), n, slots, err), map[string]float64{"waiters": float64(ws.arrived.Load())})
		return
	}
	startup := time.Since(began)
	// The last workflow tasks are still being answered when their workflow
	// code has run; their slots are free once that is done. Slots held by the
	// waits would keep the gauge up, and the check fails with its value.
	_ = harness.WaitFor(ctx, 30*time.Second, 20*time.Millisecond, "free workflow-task slots", func(context.Context) (bool, error) {
		return g.get(slotsUsedGauge) == 0, nil
	})
	waiting, resumedEarly := ws.arrived.Load(), ws.resumed.Load()
	slotsUsed, cached := g.get(slotsUsedGauge), g.get(stickyCacheGauge)
	began = time.Now()
	if err := parallel(ctx, n, 32, func(ctx context.Context, i int) error {
		return c.SignalWorkflow(ctx, id(i), "", approveSignal, nil)
	}); err != nil {
		t.Fatalf("signalling waiters: %v", err)
	}
	var completed int64
	waitErr := harness.WaitFor(ctx, 3*time.Minute, 250*time.Millisecond, "every waiter to complete", func(ctx context.Context) (bool, error) {
		resp, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Query: fmt.Sprintf("TaskQueue = '%s' AND ExecutionStatus = 'Completed'", tq),
		})
		if err != nil {
			return false, err
		}
		completed = resp.GetCount()
		return completed >= n, nil
	})
	resume := time.Since(began)
	ok := waitErr == nil && waiting == n && resumedEarly == 0 && slotsUsed == 0 && ws.resumed.Load() == n && completed == n
	check.Result(ok, fmt.Sprintf("on %s: %d workflows reached their wait in %.1fs on one worker with %d workflow-task slots; while all %d waited, "+
		"%d had resumed, workflow-task slots in use %.0f of %d, sticky cache %.0f workflows; after one signal each, %d resumed in the worker "+
		"and visibility counted %d completed, %.1fs after the first signal (error: %v)",
		where, n, startup.Seconds(), slots, waiting, resumedEarly, slotsUsed, slots, cached, ws.resumed.Load(), completed, resume.Seconds(), waitErr),
		map[string]float64{"waiters": n, "slots": slots, "slots_used_while_waiting": slotsUsed, "sticky_cache": cached,
			"start_s": startup.Seconds(), "resume_s": resume.Seconds(), "completed": float64(completed)})
}

// manyWaiters is how many workflows SG-02.many-waiters keeps waiting at once:
// 1,000 start, wait and resume in under a minute on two loaded cores.
const manyWaiters = 1000

// waitersServer is the server SG-02.many-waiters runs on. Embedded, it is a
// dedicated in-memory dev server (persistence is not what the check
// measures, and SQLite file writes would triple its run time) whose task
// queues have one partition: with the default four, the partitions without a
// poller forward tasks at 10 per second, which would measure the forwarder.
func waitersServer(t *testing.T) (client.Client, string) {
	env := harness.Get(t)
	if ok, _ := env.CanKillServer(); !ok {
		return env.Dial(t), "the external server " + env.Options.HostPort
	}
	srv := env.StartServer(t, harness.ServerOptions{InMemory: true, DynamicConfig: map[string]string{
		"matching.numTaskqueueReadPartitions": "1", "matching.numTaskqueueWritePartitions": "1",
	}})
	return srv.Dial(t), "a dedicated in-memory dev server with one task-queue partition"
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
