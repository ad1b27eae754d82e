package cp

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/harness/ledger"
)

// TestCP01 measures sagas: compensation order, what is compensated,
// compensation retries and escalation, a worker crash mid-compensation,
// cancellation and parallel steps. Every side effect and compensation is
// counted in an external ledger.
func TestCP01(t *testing.T) {
	env := harness.Get(t)
	s := sagaFixture{c: env.Dial(t), tq: harness.TaskQueue(t), led: filepath.Join(env.Scratch(t), "ledger.jsonl")}
	w := worker.New(s.c, s.tq, worker.Options{})
	registerSaga(w, &SagaActivities{Ledger: s.led})
	if err := w.Start(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	t.Cleanup(w.Stop)

	t.Run("compensate_reverse", s.testReverse)
	t.Run("only_completed_compensated", s.testOnlyCompleted)
	t.Run("compensation_retried", s.testRetried)
	t.Run("compensation_escalated", s.testEscalated)
	t.Run("survives_crash", testSagaCrash)
	t.Run("cancel_compensates", s.testCancel)
	t.Run("parallel_compensation", s.testParallel)
}

// sagaFixture runs sagas on a task queue served by an in-process worker,
// all recording in one ledger (entries are keyed by workflow id).
type sagaFixture struct {
	c   client.Client
	tq  string
	led string
}

// orderSaga is reserve, charge, ship; edit changes the steps' behaviour.
func orderSaga(edit func(steps []SagaStep)) SagaInput {
	steps := []SagaStep{{Name: "reserve"}, {Name: "charge"}, {Name: "ship"}}
	edit(steps)
	return SagaInput{Steps: steps}
}

// startSaga starts a saga; a run left open is terminated at test end.
func startSaga(ctx context.Context, t *testing.T, c client.Client, tq string, in SagaInput) (string, client.WorkflowRun) {
	t.Helper()
	id := harness.UniqueID(t, "saga")
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id, TaskQueue: tq, WorkflowTaskTimeout: 2 * time.Second, WorkflowExecutionTimeout: 3 * time.Minute,
	}, SagaWorkflow, in)
	if err != nil {
		t.Fatalf("start saga: %v", err)
	}
	t.Cleanup(func() { _ = c.TerminateWorkflow(context.Background(), id, "", "test cleanup") })
	return id, run
}

// sagaEntries reads the ledger entries of workflow id.
func sagaEntries(t *testing.T, path, id string) []ledger.Entry {
	t.Helper()
	all, err := ledger.Read(path)
	if err != nil {
		t.Fatalf("ledger: %v", err)
	}
	return slices.DeleteFunc(all, func(e ledger.Entry) bool { return e.Key != id })
}

// sagaStepsIn lists the steps of the entries of one phase, in ledger order.
func sagaStepsIn(entries []ledger.Entry, phase string) []int {
	var out []int
	for _, e := range entries {
		if e.Phase == phase {
			out = append(out, e.Step)
		}
	}
	return out
}

// sagaAttemptsIn lists the attempts of one step's entries of one phase.
func sagaAttemptsIn(entries []ledger.Entry, step int, phase string) []int32 {
	var out []int32
	for _, e := range entries {
		if e.Step == step && e.Phase == phase {
			out = append(out, e.Attempt)
		}
	}
	return out
}

// sagaCountsIn counts the entries of one phase per step.
func sagaCountsIn(entries []ledger.Entry, phase string) map[int]int {
	n := map[int]int{}
	for _, e := range entries {
		if e.Phase == phase {
			n[e.Step]++
		}
	}
	return n
}

// sagaTrace is the ledger as a readable sequence, e.g. "start 1, done 1,
// undo-start 2 (attempt 2, pid 41)"; pids are shown when withPID.
func sagaTrace(entries []ledger.Entry, withPID bool) string {
	parts := make([]string, len(entries))
	for i, e := range entries {
		var extra []string
		if e.Attempt > 1 {
			extra = append(extra, fmt.Sprintf("attempt %d", e.Attempt))
		}
		if withPID {
			extra = append(extra, fmt.Sprintf("pid %d", e.PID))
		}
		parts[i] = fmt.Sprintf("%s %d", e.Phase, e.Step)
		if len(extra) > 0 {
			parts[i] += " (" + strings.Join(extra, ", ") + ")"
		}
	}
	return strings.Join(parts, ", ")
}

// sagaRetryGaps is, for each retry of step, the delay from the end of the
// previous attempt (its failPhase entry) to the start of the retry (its
// startPhase entry).
func sagaRetryGaps(entries []ledger.Entry, step int, failPhase, startPhase string) []time.Duration {
	var out []time.Duration
	var failed time.Time
	for _, e := range entries {
		if e.Step != step {
			continue
		}
		switch {
		case e.Phase == failPhase:
			failed = e.At
		case e.Phase == startPhase && !failed.IsZero():
			out = append(out, e.At.Sub(failed))
			failed = time.Time{}
		}
	}
	return out
}

// sagaGapsMS formats durations as milliseconds, e.g. "[1000 998]ms".
func sagaGapsMS(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = strconv.FormatInt(d.Milliseconds(), 10)
	}
	return "[" + strings.Join(parts, " ") + "]ms"
}

// rollback runs a saga whose action fails and reads what the ledger shows.
func (s sagaFixture) rollback(t *testing.T, in SagaInput) (sagaRollback, []ledger.Entry) {
	ctx := harness.Context(t, time.Minute)
	id, run := startSaga(ctx, t, s.c, s.tq, in)
	var res SagaResult
	err := run.Get(ctx, &res)
	entries := sagaEntries(t, s.led, id)
	o := sagaRollback{steps: len(in.Steps), failed: res.Failed, done: sagaStepsIn(entries, ledger.Done),
		undoStarts: sagaStepsIn(entries, sagaUndoStart), undone: sagaStepsIn(entries, sagaUndoDone), err: err}
	started := sagaCountsIn(entries, ledger.Start)
	for step := 1; step <= len(in.Steps); step++ {
		if started[step] == 0 {
			o.never = append(o.never, step)
		}
	}
	return o, entries
}

func (o sagaRollback) describe(entries []ledger.Entry) string {
	return fmt.Sprintf("%d-step saga (reserve, charge, ship), step %d refused: actions completed %v, never started %v; "+
		"compensations started %v, completed %v (ledger order); workflow error: %v; ledger: %s",
		o.steps, o.failed, o.done, o.never, o.undoStarts, o.undone, o.err, sagaTrace(entries, false))
}

func (s sagaFixture) testReverse(t *testing.T) {
	check := harness.Get(t).Check(t, "CP-01.compensate-reverse")
	o, entries := s.rollback(t, orderSaga(func(st []SagaStep) { st[2].Fail = true }))
	harness.Decide(check, sagaReversePredicate, o, o.describe(entries), map[string]float64{"compensations": float64(len(o.undone))})
}

func (s sagaFixture) testOnlyCompleted(t *testing.T) {
	check := harness.Get(t).Check(t, "CP-01.only-completed-compensated")
	o, entries := s.rollback(t, orderSaga(func(st []SagaStep) { st[1].Fail = true }))
	harness.Decide(check, sagaOnlyCompletedPredicate, o, o.describe(entries), map[string]float64{"compensations": float64(len(o.undone))})
}

// sagaActivityByID finds, in history, the scheduled event of activity id and
// the started and completed events of its last attempt.
func sagaActivityByID(events []*historypb.HistoryEvent, id string) (scheduled, started, completed *historypb.HistoryEvent) {
	for _, ev := range events {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityId() == id {
			scheduled = ev
		}
		if scheduled == nil {
			continue
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil && a.GetScheduledEventId() == scheduled.GetEventId() {
			started = ev
		}
		if a := ev.GetActivityTaskCompletedEventAttributes(); a != nil && a.GetScheduledEventId() == scheduled.GetEventId() {
			completed = ev
		}
	}
	return scheduled, started, completed
}

func (s sagaFixture) testRetried(t *testing.T) {
	check := harness.Get(t).Check(t, "CP-01.compensation-retried")
	ctx := harness.Context(t, time.Minute)
	const step, failUntil = 2, 3
	id, run := startSaga(ctx, t, s.c, s.tq, orderSaga(func(st []SagaStep) {
		st[2].Fail = true
		st[step-1].UndoFailUntil = failUntil
	}))
	var res SagaResult
	err := run.Get(ctx, &res)
	entries := sagaEntries(t, s.led, id)
	events, herr := harness.History(ctx, s.c, id, run.GetRunID())
	if herr != nil {
		t.Fatal(herr)
	}
	_, started, completed := sagaActivityByID(events, sagaUndoID(step))
	o := sagaRetry{step: step, failUntil: failUntil, starts: sagaAttemptsIn(entries, step, sagaUndoStart), fails: sagaAttemptsIn(entries, step, sagaUndoFail),
		dones: sagaAttemptsIn(entries, step, sagaUndoDone), histAttempt: started.GetActivityTaskStartedEventAttributes().GetAttempt(),
		histComplete: completed != nil, compensated: res.Compensated, err: err}
	harness.Decide(check, sagaRetriedPredicate, o, fmt.Sprintf(
		"ship refused; undoing charge fails on attempts before %d (retry: initial %s, coefficient %.0f, maximum %d attempts; observed gaps %s): "+
			"ledger attempts started %v, failed %v, completed %v; history: activity %s last started at attempt %d (event %d), completed: %v (event %d); "+
			"workflow compensated %v (error: %v)",
		failUntil, sagaUndoRetry.InitialInterval, sagaUndoRetry.BackoffCoefficient, sagaUndoRetry.MaximumAttempts,
		sagaGapsMS(sagaRetryGaps(entries, step, sagaUndoFail, sagaUndoStart)), o.starts, o.fails, o.dones,
		sagaUndoID(step), o.histAttempt, started.GetEventId(), o.histComplete, completed.GetEventId(), o.compensated, err),
		map[string]float64{"attempts": float64(len(o.starts))})
}

// sagaQuery asks a saga for its state.
func sagaQuery(ctx context.Context, c client.Client, id string) (SagaState, error) {
	var st SagaState
	v, err := c.QueryWorkflow(ctx, id, "", sagaStateQuery)
	if err != nil {
		return st, err
	}
	return st, v.Get(&st)
}

func (s sagaFixture) testEscalated(t *testing.T) {
	check := harness.Get(t).Check(t, "CP-01.compensation-escalated")
	ctx := harness.Context(t, time.Minute)
	const step = 2
	id, run := startSaga(ctx, t, s.c, s.tq, orderSaga(func(st []SagaStep) {
		st[2].Fail = true
		st[step-1].UndoNeverSucceeds = true
	}))
	o := sagaEscalation{step: step}
	if err := harness.WaitFor(ctx, 30*time.Second, 50*time.Millisecond, "the dead-letter record", func(context.Context) (bool, error) {
		return slices.Contains(sagaStepsIn(sagaEntries(t, s.led, id), sagaDeadLetter), step), nil
	}); err != nil {
		t.Fatal(err)
	}
	var st SagaState
	if err := harness.WaitFor(ctx, 30*time.Second, 50*time.Millisecond, "the run to report the escalation", func(ctx context.Context) (bool, error) {
		var err error
		st, err = sagaQuery(ctx, s.c, id)
		return err == nil && len(st.Awaiting) > 0, nil
	}); err != nil {
		t.Fatal(err)
	}
	desc, err := s.c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	o.statusWaiting, o.awaiting = desc.GetWorkflowExecutionInfo().GetStatus(), st.Awaiting
	before := sagaEntries(t, s.led, id)
	o.otherBefore = len(sagaStepsIn(before, sagaUndoDone)) > 0
	o.failed = len(sagaAttemptsIn(before, step, sagaUndoFail))
	o.deadLetter = slices.Contains(sagaStepsIn(before, sagaDeadLetter), step)
	const note = "refund issued by hand, ticket OPS-17"
	if err := s.c.SignalWorkflow(ctx, id, "", sagaResolveSignal, SagaResolution{Step: step, Note: note}); err != nil {
		t.Fatalf("signal: %v", err)
	}
	o.err = run.Get(ctx, &o.result)
	after := sagaEntries(t, s.led, id)
	harness.Decide(check, sagaEscalatedPredicate, o, fmt.Sprintf(
		"ship refused; undoing charge fails on every attempt: %d attempts failed (ledger), dead-letter record for step %d: %v; "+
			"then the run was %s with %d pending activities, its query reporting escalations awaiting a human %v, compensations completed before the human's signal: %v; "+
			"signal %q sent: result escalated %v with resolutions %q, compensated %v (error: %v); ledger after the signal: %s",
		o.failed, step, o.deadLetter, o.statusWaiting, len(desc.GetPendingActivities()), o.awaiting, sagaStepsIn(before, sagaUndoDone),
		note, o.result.Escalated, o.result.Resolutions, o.result.Compensated, o.err, sagaTrace(after[len(before):], false)),
		map[string]float64{"failed_attempts": float64(o.failed)})
}

// testSagaCrash SIGKILLs the worker child process while a compensation runs
// (undoing reserve blocks on its first attempt until the kill), after
// undoing charge has completed, and lets a second worker finish.
func testSagaCrash(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "CP-01.survives-crash")
	ctx := harness.Context(t, 2*time.Minute)
	c := env.Dial(t)
	tq := harness.TaskQueue(t)
	led := filepath.Join(env.Scratch(t), "ledger.jsonl")
	cfg := harness.RoleConfig{Address: env.Options.HostPort, Namespace: env.Options.Namespace, TaskQueue: tq, Args: map[string]string{sagaArgLedger: led}}
	first := env.StartWorker(t, sagaRole, cfg)
	const interrupted = 1
	id, run := startSaga(ctx, t, c, tq, orderSaga(func(st []SagaStep) {
		st[2].Fail = true
		st[interrupted-1].UndoBlockFirst = true
	}))
	if err := harness.WaitFor(ctx, time.Minute, 20*time.Millisecond, "undoing reserve to start", func(context.Context) (bool, error) {
		return slices.Contains(sagaStepsIn(sagaEntries(t, led, id), sagaUndoStart), interrupted), nil
	}); err != nil {
		t.Fatal(err)
	}
	o := sagaCrash{killedPID: first.PID(), interrupted: interrupted, doneBeforeKill: sagaStepsIn(sagaEntries(t, led, id), sagaUndoDone)}
	killedAt := time.Now()
	if err := first.Kill(); err != nil {
		t.Fatalf("kill worker: %v", err)
	}
	second := env.StartWorker(t, sagaRole, cfg)
	o.newPID = second.PID()
	o.err = harness.AwaitResult(ctx, run, &o.result)
	entries := sagaEntries(t, led, id)
	o.actionStarts, o.undoStarts, o.undoDone = sagaCountsIn(entries, ledger.Start), sagaCountsIn(entries, sagaUndoStart), sagaCountsIn(entries, sagaUndoDone)
	var recovered time.Duration
	for _, e := range entries {
		if e.Phase == sagaUndoDone && e.Step == interrupted {
			o.finishedBy, recovered = e.PID, e.At.Sub(killedAt)
		}
	}
	harness.Decide(check, sagaCrashPredicate, o, fmt.Sprintf(
		"ship refused; worker pid %d SIGKILLed while undoing step %d, reserve (attempt 1 blocking), compensations completed before the kill %v; "+
			"worker pid %d started: undoing step %d completed by pid %d %.2fs after the kill; executions per step: actions %v, compensations started %v, completed %v; "+
			"result compensated %v (error: %v); ledger: %s",
		o.killedPID, o.interrupted, o.doneBeforeKill, o.newPID, o.interrupted, o.finishedBy, recovered.Seconds(), o.actionStarts, o.undoStarts, o.undoDone,
		o.result.Compensated, o.err, sagaTrace(entries, true)),
		map[string]float64{"recovery_s": recovered.Seconds()})
}

func (s sagaFixture) testCancel(t *testing.T) {
	check := harness.Get(t).Check(t, "CP-01.cancel-compensates")
	ctx := harness.Context(t, time.Minute)
	in := orderSaga(func([]SagaStep) {})
	in.HoldAfter = 2
	id, run := startSaga(ctx, t, s.c, s.tq, in)
	var st SagaState
	if err := harness.WaitFor(ctx, 30*time.Second, 50*time.Millisecond, "the saga to hold after step 2", func(ctx context.Context) (bool, error) {
		var err error
		st, err = sagaQuery(ctx, s.c, id)
		return err == nil && st.Holding, nil
	}); err != nil {
		t.Fatal(err)
	}
	o := sagaCancel{doneAtCancel: st.Completed}
	if err := s.c.CancelWorkflow(ctx, id, ""); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	o.err = run.Get(ctx, nil)
	desc, err := s.c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	o.status = desc.GetWorkflowExecutionInfo().GetStatus()
	events, err := harness.History(ctx, s.c, id, run.GetRunID())
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		switch {
		case ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED:
			o.cancelID = ev.GetEventId()
		case strings.HasPrefix(ev.GetActivityTaskScheduledEventAttributes().GetActivityId(), "undo-"):
			o.undoIDs = append(o.undoIDs, ev.GetEventId())
		}
	}
	if len(events) == 0 {
		t.Fatalf("history of %s is empty", id)
	}
	closing := events[len(events)-1]
	o.closeID = closing.GetEventId()
	entries := sagaEntries(t, s.led, id)
	o.undone = sagaStepsIn(entries, sagaUndoDone)
	var canceled string
	if o.err != nil {
		canceled = o.err.Error()
	}
	harness.Decide(check, sagaCancelPredicate, o, fmt.Sprintf(
		"saga held after steps %v; cancel requested (event %d): compensations scheduled at events %v, completed %v (ledger order); "+
			"run closed at event %d (%s), status %s, error %q; ledger: %s",
		o.doneAtCancel, o.cancelID, o.undoIDs, o.undone, o.closeID, closing.GetEventType(), o.status, canceled, sagaTrace(entries, false)),
		map[string]float64{"compensations": float64(len(o.undone))})
}

func (s sagaFixture) testParallel(t *testing.T) {
	check := harness.Get(t).Check(t, "CP-01.parallel-compensation")
	ctx := harness.Context(t, time.Minute)
	// Reservations of four items at once; C is refused at once while B and
	// D are still running, so they complete after the failure.
	in := SagaInput{Parallel: true, Steps: []SagaStep{
		{Name: "reserve-A", Duration: 50 * time.Millisecond},
		{Name: "reserve-B", Duration: 300 * time.Millisecond},
		{Name: "reserve-C", Fail: true},
		{Name: "reserve-D", Duration: 600 * time.Millisecond},
	}}
	id, run := startSaga(ctx, t, s.c, s.tq, in)
	var res SagaResult
	o := sagaParallel{steps: len(in.Steps)}
	o.err = run.Get(ctx, &res)
	o.failed = res.Failed
	entries := sagaEntries(t, s.led, id)
	o.started = len(sagaCountsIn(entries, ledger.Start))
	o.done, o.undoStarts, o.undone = sagaCountsIn(entries, ledger.Done), sagaCountsIn(entries, sagaUndoStart), sagaCountsIn(entries, sagaUndoDone)
	failedAt := slices.IndexFunc(entries, func(e ledger.Entry) bool { return e.Phase == sagaActionFail })
	if failedAt >= 0 {
		o.lateDone = sagaStepsIn(entries[failedAt:], ledger.Done)
	}
	harness.Decide(check, sagaParallelPredicate, o, fmt.Sprintf(
		"4 parallel reservations (A 50ms, B 300ms, C refused at once, D 600ms): %d started, step %d failed, completed after the failure %v; "+
			"per step: actions done %v, compensations started %v, completed %v; result completed %v, compensated %v (error: %v); ledger: %s",
		o.started, o.failed, o.lateDone, o.done, o.undoStarts, o.undone, res.Completed, res.Compensated, o.err, sagaTrace(entries, false)),
		map[string]float64{"compensations": float64(len(o.undone))})
}
