package ex

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/durabench/durabench/fixtures/nondeterminism"
	"github.com/durabench/durabench/harness"
)

// TestEX06 measures how determinism violations are handled: a changed
// workflow meets the history of runs started on the old code (replayed, and
// live under the BlockWorkflow and FailWorkflow policies), stuck runs are
// seen and recovered by redeploying or resetting, and workflow panics follow
// the configured policy.
func TestEX06(t *testing.T) {
	t.Parallel()
	t.Run("changed_code", testChangedCode)
	t.Run("panic_policy", testPanicPolicy)
}

// registerOrderV2 registers the changed OrderWorkflow and its activities.
func registerOrderV2(r worker.Registry) {
	r.RegisterWorkflowWithOptions(nondeterminism.OrderWorkflowChanged, workflow.RegisterOptions{Name: OrderWorkflowName})
	for _, name := range []string{ReserveActivity, ChargeActivity, ValidateActivity} {
		r.RegisterActivityWithOptions(orderStep(name), activity.RegisterOptions{Name: name})
	}
}

// startV2 runs the changed code on an in-process worker for tq; its client
// reports metrics to m when m is not nil.
func startV2(t *testing.T, c client.Client, tq string, policy worker.WorkflowPanicPolicy, m *countingMetrics) worker.Worker {
	t.Helper()
	if m != nil {
		var err error
		if c, err = client.NewClientFromExisting(c, client.Options{MetricsHandler: m}); err != nil {
			t.Fatalf("client: %v", err)
		}
		t.Cleanup(c.Close)
	}
	w := worker.New(c, tq, worker.Options{WorkflowPanicPolicy: policy})
	registerOrderV2(w)
	if err := w.Start(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	return w
}

func testChangedCode(t *testing.T) {
	env := harness.Get(t)
	detected := env.Check(t, "EX-06.nde-detected")
	named := env.Check(t, "EX-06.nde-names-mismatch")
	block := env.Check(t, "EX-06.block-policy")
	failPolicy := env.Check(t, "EX-06.fail-workflow-policy")
	visible := env.Check(t, "EX-06.visible-to-operators")
	reset := env.Check(t, "EX-06.recover-by-reset")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := env.Dial(t)

	// The original code runs in worker processes: one run completes, three
	// are left waiting for their "go" signal after Reserve.
	blockTQ, failTQ := harness.TaskQueue(t), harness.TaskQueue(t)
	v1 := env.StartWorker(t, scenarioRole, roleConfig(env, blockTQ, nil))
	v1Fail := env.StartWorker(t, scenarioRole, roleConfig(env, failTQ, nil))
	start := func(tq, prefix string) client.WorkflowRun {
		return startWorkflow(ctx, t, c, scenarioOptions(tq, harness.UniqueID(t, prefix)), OrderWorkflowName)
	}
	// Two completed runs whose histories differ in where the signal lands,
	// which changes the event at which the changed code's replay fails and
	// with it what the error can name: with the signal in the first
	// workflow task (signal-with-start), and with it sent once the run
	// waits for it, as a run waiting for a person does.
	early, err := c.SignalWithStartWorkflow(ctx, harness.UniqueID(t, "early"), goSignal, nil, scenarioOptions(blockTQ, ""), OrderWorkflowName)
	if err != nil {
		t.Fatal(err)
	}
	done := start(blockTQ, "done")
	stuck, toReset, failing := start(blockTQ, "stuck"), start(blockTQ, "reset"), start(failTQ, "fail")
	if err := waitBlocked(ctx, c, done.GetID()); err != nil {
		t.Fatal(err)
	}
	if err := c.SignalWorkflow(ctx, done.GetID(), "", goSignal, nil); err != nil {
		t.Fatal(err)
	}
	for _, run := range []client.WorkflowRun{early, done} {
		if err := run.Get(ctx, nil); err != nil {
			t.Fatalf("original code: %v", err)
		}
	}
	for _, run := range []client.WorkflowRun{stuck, toReset, failing} {
		if err := waitEvent(ctx, c, run.GetID(), enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range []*harness.Worker{v1, v1Fail} {
		if err := w.Kill(); err != nil {
			t.Fatalf("kill worker: %v", err)
		}
	}

	// Replay of the completed runs' histories on the changed code.
	r, err := NewReplayer(func(reg worker.WorkflowRegistry) {
		reg.RegisterWorkflowWithOptions(nondeterminism.OrderWorkflowChanged, workflow.RegisterOptions{Name: OrderWorkflowName})
	})
	if err != nil {
		t.Fatal(err)
	}
	h := mustHistory(ctx, t, c, done.GetID(), "")
	started := time.Now()
	replayErr := r.Replay(h, done.GetID()).Err
	replayTime := time.Since(started)
	eh := mustHistory(ctx, t, c, early.GetID(), "")
	earlyErr := r.Replay(eh, early.GetID()).Err
	replays := ndeReplays{waited: errText(replayErr), early: errText(earlyErr)}
	harness.Decide(detected, ndeDetectedPredicate, replays, fmt.Sprintf("history of a completed run of the original code (%d events, signalled while it waited) "+
		"replayed on the changed code in %s: %s; history of one signalled with its start (%d events): %s",
		len(h.GetEvents()), replayTime.Round(time.Microsecond), clip(orNone(replays.waited), 300), len(eh.GetEvents()), clip(orNone(replays.early), 300)),
		map[string]float64{"replay_s": replayTime.Seconds()})
	ms := []mismatch{observeMismatch(replayErr, h), observeMismatch(earlyErr, eh)}
	harness.Decide(named, namesMismatchPredicate, ms, fmt.Sprintf("signalled while it waited: %s. Signalled with its start: %s",
		ms[0].describe(), ms[1].describe()), nil)

	// The changed code deployed live: BlockWorkflow (the default, with
	// metrics) and FailWorkflow.
	metrics := &countingMetrics{counts: map[string]int64{}}
	v2 := startV2(t, c, blockTQ, worker.BlockWorkflow, metrics)
	v2Stopped := false
	stopV2 := func() {
		if !v2Stopped {
			v2.Stop()
			v2Stopped = true
		}
	}
	t.Cleanup(stopV2)
	t.Cleanup(startV2(t, c, failTQ, worker.FailWorkflow, nil).Stop)
	signalled := time.Now()
	for _, run := range []client.WorkflowRun{stuck, toReset, failing} {
		if err := c.SignalWorkflow(ctx, run.GetID(), "", goSignal, nil); err != nil {
			t.Fatal(err)
		}
	}

	failErr := failing.Get(ctx, nil)
	failH := mustHistory(ctx, t, c, failing.GetID(), "")
	fr := failedRun{closedBy: closingEventType(failH)}
	var failedAt time.Time
	failedAt, fr.failure = closingFailure(failH)
	fr.taskFailures = countEvents(failH)[enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED]
	harness.Decide(failPolicy, failPolicyPredicate, fr,
		fmt.Sprintf("FailWorkflow: the run failed %s after the signal that made it run the changed code (including the sticky-queue "+
			"fallback from the dead worker), with %d workflow-task failures before; result error: %v; failure: %q",
			sinceOrNone(failedAt, signalled), fr.taskFailures, failErr, fr.failure),
		map[string]float64{"fail_latency_s": failedAt.Sub(signalled).Seconds()})

	// BlockWorkflow: the runs stay open while their workflow task fails.
	status, attempts, waitErr := waitRetriedTask(ctx, c, stuck.GetID())
	cause, causeMsg := workflowTaskFailure(mustHistory(ctx, t, c, stuck.GetID(), ""))
	vb := visibleBlock{status: status, attempts: attempts, cause: cause, message: causeMsg,
		ndeMetric: metrics.count("temporal_workflow_task_execution_failed", "failure_reason", "NonDeterminismError")}
	harness.Decide(visible, visiblePredicate, vb,
		fmt.Sprintf("describe: status %s, pending workflow task attempt %d (%s); history: WorkflowTaskFailed cause %s, %q; "+
			"SDK metric temporal_workflow_task_execution_failed{failure_reason=NonDeterminismError} = %d",
			status, attempts, okOrErr(waitErr), cause, causeMsg, vb.ndeMetric),
		map[string]float64{"task_attempts": float64(attempts), "nde_metric": float64(vb.ndeMetric)})

	// Recover one run by resetting it to its first workflow task: it runs
	// again from the start on the changed code, with its signal reapplied.
	var rr resetRun
	rr.newRunID, rr.err = resetToFirstTask(ctx, t, c, toReset.GetID())
	if rr.err == nil {
		rr.err = c.GetWorkflow(ctx, toReset.GetID(), rr.newRunID).Get(ctx, &rr.out)
	}
	harness.Decide(reset, resetPredicate, rr, fmt.Sprintf("stuck run reset to its first workflow task: new run %s completed on the "+
		"changed code with %v (error: %v); the changed code's steps are %v", harness.ShortID(rr.newRunID), rr.out, rr.err, changedSteps), nil)

	// Recover the other by redeploying the original code.
	stopV2()
	redeployed := time.Now()
	env.StartWorker(t, scenarioRole, roleConfig(env, blockTQ, nil))
	b := blocked{status: status, attempts: attempts}
	b.err = stuck.Get(ctx, &b.out)
	harness.Decide(block, blockPredicate, b,
		fmt.Sprintf("BlockWorkflow: on the changed code the run was %s with its workflow task at attempt %d (%s); after the original code was "+
			"redeployed it completed in %s with %v (error: %v)", status, attempts, okOrErr(waitErr), time.Since(redeployed).Round(time.Millisecond), b.out, b.err),
		map[string]float64{"recovery_s": time.Since(redeployed).Seconds()})
}

// waitRetriedTask waits until run id's pending workflow task is on its
// second attempt or more (its first failed and was retried), or the run has
// closed, and returns what describe last showed. A wait that ends otherwise
// is returned, not fatal: a platform that neither retries nor closes the run
// fails the check that reads it.
func waitRetriedTask(ctx context.Context, c client.Client, id string) (enumspb.WorkflowExecutionStatus, int32, error) {
	var status enumspb.WorkflowExecutionStatus
	var attempts int32
	err := harness.WaitFor(ctx, time.Minute, 100*time.Millisecond, "a retried workflow task or the close of "+id, func(ctx context.Context) (bool, error) {
		d, err := c.DescribeWorkflowExecution(ctx, id, "")
		if err != nil {
			return false, err
		}
		status, attempts = d.GetWorkflowExecutionInfo().GetStatus(), d.GetPendingWorkflowTask().GetAttempt()
		return attempts >= 2 || status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, nil
	})
	return status, attempts, err
}

func okOrErr(err error) string {
	if err == nil {
		return "describe polled until then"
	}
	return err.Error()
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func orNone(s string) string {
	if s == "" {
		return "no error"
	}
	return s
}

// waitBlocked waits until workflow id has completed an activity and then
// the workflow task after it: it is waiting for its signal.
func waitBlocked(ctx context.Context, c client.Client, id string) error {
	return harness.WaitFor(ctx, time.Minute, 50*time.Millisecond, "the workflow task after an activity in "+id, func(ctx context.Context) (bool, error) {
		events, err := harness.History(ctx, c, id, "")
		if err != nil {
			return false, err
		}
		activity := false
		for _, ev := range events {
			switch ev.GetEventType() {
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
				activity = true
			case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
				if activity {
					return true, nil
				}
			}
		}
		return false, nil
	})
}

// observeMismatch pairs a replay's error with what h recorded where the
// changed code diverges: the ActivityTaskScheduled of Reserve.
func observeMismatch(err error, h *historypb.History) mismatch {
	m := mismatch{msg: errText(err)}
	for _, ev := range h.GetEvents() {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == ReserveActivity {
			m.eventID, m.activityID = ev.GetEventId(), a.GetActivityId()
			break
		}
	}
	return m
}

// describe says what the error names, and whether it labels the event id
// itself (reported, not judged).
func (m mismatch) describe() string {
	if m.msg == "" {
		return "the replay did not fail"
	}
	eventIDShown := regexp.MustCompile(fmt.Sprintf(`(?i)(event ?id|event position|position)[:= ]+%d\b`, m.eventID)).MatchString(m.msg)
	return fmt.Sprintf("recorded: ActivityTaskScheduled %s (event %d, activity id %s); the changed code issues %s first. The error names %v; "+
		"it labels event id %d explicitly: %v. Error: %s", ReserveActivity, m.eventID, m.activityID, ValidateActivity, m.named(), m.eventID, eventIDShown, clip(m.msg, 600))
}

// closingEventType is the type of h's last event (its closing event, once
// closed).
func closingEventType(h *historypb.History) enumspb.EventType {
	events := h.GetEvents()
	if len(events) == 0 {
		return enumspb.EVENT_TYPE_UNSPECIFIED
	}
	return events[len(events)-1].GetEventType()
}

// closingFailure returns the time and failure of a WorkflowExecutionFailed event.
func closingFailure(h *historypb.History) (time.Time, string) {
	for _, ev := range h.GetEvents() {
		if a := ev.GetWorkflowExecutionFailedEventAttributes(); a != nil {
			return ev.GetEventTime().AsTime(), failureText(a.GetFailure())
		}
	}
	return time.Time{}, ""
}

// workflowTaskFailure returns the cause and failure of the first
// WorkflowTaskFailed event.
func workflowTaskFailure(h *historypb.History) (enumspb.WorkflowTaskFailedCause, string) {
	for _, ev := range h.GetEvents() {
		if a := ev.GetWorkflowTaskFailedEventAttributes(); a != nil {
			return a.GetCause(), failureText(a.GetFailure())
		}
	}
	return enumspb.WORKFLOW_TASK_FAILED_CAUSE_UNSPECIFIED, ""
}

// failureText is a failure's message followed by those of its causes.
func failureText(f *failurepb.Failure) string {
	var msgs []string
	for ; f != nil; f = f.GetCause() {
		msgs = append(msgs, f.GetMessage())
	}
	return clip(strings.Join(msgs, " ← "), 400)
}

// clip shortens s to about n bytes for a detail line.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// resetToFirstTask resets id to its first completed workflow task and
// returns the new run id.
func resetToFirstTask(ctx context.Context, t *testing.T, c client.Client, id string) (string, error) {
	var first int64
	for _, ev := range mustHistory(ctx, t, c, id, "").GetEvents() {
		if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
			first = ev.GetEventId()
			break
		}
	}
	resp, err := c.ResetWorkflowExecution(ctx, &workflowservice.ResetWorkflowExecutionRequest{
		Namespace:                 harness.Get(t).Options.Namespace,
		WorkflowExecution:         &commonpb.WorkflowExecution{WorkflowId: id},
		Reason:                    "recover from a non-determinism error",
		WorkflowTaskFinishEventId: first,
		RequestId:                 uuid.NewString(),
	})
	if err != nil {
		return "", fmt.Errorf("reset %s to event %d: %w", id, first, err)
	}
	t.Cleanup(func() { _ = c.TerminateWorkflow(context.Background(), id, resp.GetRunId(), "test cleanup") })
	return resp.GetRunId(), nil
}

func testPanicPolicy(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "EX-06.panic-policy")
	ctx := harness.Context(t, 2*time.Minute)
	c := env.Dial(t)
	blockTQ, failTQ := harness.TaskQueue(t), harness.TaskQueue(t)
	startScenarioWorker(t, c, blockTQ, nil, worker.Options{WorkflowPanicPolicy: worker.BlockWorkflow})
	startScenarioWorker(t, c, failTQ, nil, worker.Options{WorkflowPanicPolicy: worker.FailWorkflow})
	blocked := startWorkflow(ctx, t, c, scenarioOptions(blockTQ, harness.UniqueID(t, "block")), PanicWorkflow)
	failed := startWorkflow(ctx, t, c, scenarioOptions(failTQ, harness.UniqueID(t, "fail")), PanicWorkflow)

	failErr := failed.Get(ctx, nil)
	failH := mustHistory(ctx, t, c, failed.GetID(), "")
	o := panics{failClosedBy: closingEventType(failH)}
	failFailure := historyFailure(failH, func(ev *historypb.HistoryEvent) *failurepb.Failure {
		return ev.GetWorkflowExecutionFailedEventAttributes().GetFailure()
	})
	o.failMsg, o.failStack = failFailure.GetMessage(), failFailure.GetStackTrace()
	var waitErr error
	o.blockStatus, o.blockAttempts, waitErr = waitRetriedTask(ctx, c, blocked.GetID())
	blockH := mustHistory(ctx, t, c, blocked.GetID(), "")
	blockFailure := historyFailure(blockH, func(ev *historypb.HistoryEvent) *failurepb.Failure {
		return ev.GetWorkflowTaskFailedEventAttributes().GetFailure()
	})
	o.blockMsg, o.blockStack = blockFailure.GetMessage(), blockFailure.GetStackTrace()
	o.blockCause, _ = workflowTaskFailure(blockH)
	harness.Decide(check, panicPredicate, o, fmt.Sprintf("BlockWorkflow: run %s, workflow task attempt %d (%s), WorkflowTaskFailed cause %s, message %q, "+
		"stack trace names PanicWorkflow: %v. FailWorkflow: result error %v, failure message %q, stack trace names PanicWorkflow: %v",
		o.blockStatus, o.blockAttempts, okOrErr(waitErr), o.blockCause, o.blockMsg, strings.Contains(o.blockStack, "PanicWorkflow"),
		failErr, o.failMsg, strings.Contains(o.failStack, "PanicWorkflow")),
		map[string]float64{"block_task_attempts": float64(o.blockAttempts)})
}

// historyFailure returns the first failure that get finds in h, descending
// into causes to the innermost failure that carries a stack trace.
func historyFailure(h *historypb.History, get func(*historypb.HistoryEvent) *failurepb.Failure) *failurepb.Failure {
	for _, ev := range h.GetEvents() {
		if f := get(ev); f != nil {
			for f.GetStackTrace() == "" && f.GetCause() != nil {
				f = f.GetCause()
			}
			return f
		}
	}
	return nil
}

// countingMetrics is a client.MetricsHandler that counts counter increments
// by name and tags.
type countingMetrics struct {
	mu     sync.Mutex
	tags   map[string]string
	counts map[string]int64 // key: name{k=v,...}
	parent *countingMetrics
}

func (m *countingMetrics) root() *countingMetrics {
	if m.parent != nil {
		return m.parent
	}
	return m
}

func (m *countingMetrics) WithTags(tags map[string]string) client.MetricsHandler {
	merged := map[string]string{}
	for k, v := range m.tags {
		merged[k] = v
	}
	for k, v := range tags {
		merged[k] = v
	}
	return &countingMetrics{tags: merged, parent: m.root()}
}

func (m *countingMetrics) Counter(name string) client.MetricsCounter {
	key := name + fmt.Sprint(m.tags)
	return counterFunc(func(d int64) {
		r := m.root()
		r.mu.Lock()
		r.counts[key] += d
		r.mu.Unlock()
	})
}

func (m *countingMetrics) Gauge(name string) client.MetricsGauge {
	return client.MetricsNopHandler.Gauge(name)
}

func (m *countingMetrics) Timer(name string) client.MetricsTimer {
	return client.MetricsNopHandler.Timer(name)
}

type counterFunc func(int64)

func (f counterFunc) Inc(d int64) { f(d) }

// count sums the counter name over every tag set holding tag=value.
func (m *countingMetrics) count(name, tag, value string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for key, v := range m.counts {
		if strings.HasPrefix(key, name+"map[") && strings.Contains(key, tag+":"+value) {
			n += v
		}
	}
	return n
}
