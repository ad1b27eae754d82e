package ex

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
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
	"go.temporal.io/sdk/temporal"
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
	detected.Result(isNDE(replayErr) && isNDE(earlyErr), fmt.Sprintf("history of a completed run of the original code (%d events, signalled while it waited) replayed on the changed code in %s: %s; "+
		"history of one signalled with its start (%d events): %s",
		len(h.GetEvents()), replayTime.Round(time.Millisecond), clip(fmt.Sprint(replayErr), 300), len(eh.GetEvents()), clip(fmt.Sprint(earlyErr), 300)),
		map[string]float64{"replay_s": replayTime.Seconds()})
	namesOK, namesDetail := namesMismatch(replayErr, h)
	earlyOK, earlyDetail := namesMismatch(earlyErr, eh)
	named.Result(namesOK && earlyOK, fmt.Sprintf("signalled while it waited: %s. Signalled with its start: %s", namesDetail, earlyDetail), nil)

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
	failedAt, failMsg := closingFailure(failH)
	taskFailures := countEvents(failH)[enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED]
	var wee *temporal.WorkflowExecutionError
	failPolicy.Result(errors.As(failErr, &wee) && strings.Contains(failMsg, "[TMPRL1100]") && taskFailures == 0,
		fmt.Sprintf("FailWorkflow: the run failed %s after the signal that made it run the changed code (including the sticky-queue "+
			"fallback from the dead worker), with %d workflow-task failures before; failure: %q", sinceOrNone(failedAt, signalled), taskFailures, failMsg),
		map[string]float64{"fail_latency_s": failedAt.Sub(signalled).Seconds()})

	// BlockWorkflow: the runs stay open while their workflow task fails.
	var attempts int32
	if err := harness.WaitFor(ctx, time.Minute, 100*time.Millisecond, "a retried workflow task", func(ctx context.Context) (bool, error) {
		d, err := c.DescribeWorkflowExecution(ctx, stuck.GetID(), "")
		attempts = d.GetPendingWorkflowTask().GetAttempt()
		return err == nil && attempts >= 2, err
	}); err != nil {
		t.Fatal(err)
	}
	desc, err := c.DescribeWorkflowExecution(ctx, stuck.GetID(), "")
	if err != nil {
		t.Fatal(err)
	}
	status := desc.GetWorkflowExecutionInfo().GetStatus()
	cause, causeMsg := workflowTaskFailure(mustHistory(ctx, t, c, stuck.GetID(), ""))
	nde := metrics.count("temporal_workflow_task_execution_failed", "failure_reason", "NonDeterminismError")
	visible.Result(status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING && desc.GetPendingWorkflowTask().GetAttempt() >= 2 &&
		cause == enumspb.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR && strings.Contains(causeMsg, "[TMPRL1100]") && nde > 0,
		fmt.Sprintf("describe: status %s, pending workflow task attempt %d (describe gives no cause); history: WorkflowTaskFailed cause %s, %q; "+
			"SDK metric temporal_workflow_task_execution_failed{failure_reason=NonDeterminismError} = %d",
			status, desc.GetPendingWorkflowTask().GetAttempt(), cause, causeMsg, nde),
		map[string]float64{"task_attempts": float64(desc.GetPendingWorkflowTask().GetAttempt()), "nde_metric": float64(nde)})

	// Recover one run by resetting it to its first workflow task: it runs
	// again from the start on the changed code, with its signal reapplied.
	var out []string
	newRun, resetErr := resetToFirstTask(ctx, t, c, toReset.GetID())
	if resetErr == nil {
		resetErr = c.GetWorkflow(ctx, toReset.GetID(), newRun).Get(ctx, &out)
	}
	want := []string{ValidateActivity, ReserveActivity, ChargeActivity}
	reset.Result(resetErr == nil && slices.Equal(out, want), fmt.Sprintf("stuck run reset to its first workflow task: new run %s completed on the "+
		"changed code with %v (error: %v); expected %v", harness.ShortID(newRun), out, resetErr, want), nil)

	// Recover the other by redeploying the original code.
	stopV2()
	redeployed := time.Now()
	env.StartWorker(t, scenarioRole, roleConfig(env, blockTQ, nil))
	var blockedOut []string
	blockErr := stuck.Get(ctx, &blockedOut)
	wantV1 := []string{ReserveActivity, ChargeActivity}
	block.Result(blockErr == nil && slices.Equal(blockedOut, wantV1) && status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING,
		fmt.Sprintf("BlockWorkflow: the run stayed %s with its workflow task failing (attempt %d); after the original code was redeployed it "+
			"completed in %s with %v (error: %v)", status, attempts, time.Since(redeployed).Round(time.Millisecond), blockedOut, blockErr),
		map[string]float64{"recovery_s": time.Since(redeployed).Seconds()})
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

// namesMismatch checks that a non-determinism error names both sides of
// the mismatch: the recorded event and the replayed command, their activity
// types, and the recorded activity's id. Whether the event id itself is
// given is reported too.
func namesMismatch(err error, h *historypb.History) (bool, string) {
	if err == nil {
		return false, "the replay did not fail"
	}
	var eventID int64
	var activityID string
	for _, ev := range h.GetEvents() {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == ReserveActivity {
			eventID, activityID = ev.GetEventId(), a.GetActivityId()
			break
		}
	}
	msg := err.Error()
	names := map[string]bool{}
	ok := true
	for _, s := range []string{"ActivityTaskScheduled", "ScheduleActivityTask", ReserveActivity, ValidateActivity, "ActivityId:" + activityID} {
		names[s] = strings.Contains(msg, s)
		ok = ok && names[s]
	}
	eventIDShown := regexp.MustCompile(fmt.Sprintf(`(?i)(event ?id|event position|position)[:= ]+%d\b`, eventID)).MatchString(msg)
	return ok, fmt.Sprintf("recorded: ActivityTaskScheduled %s (event %d, activity id %s); the changed code issues %s first. The error names %v; "+
		"it labels event id %d explicitly: %v. Error: %s", ReserveActivity, eventID, activityID, ValidateActivity, names, eventID, eventIDShown, clip(msg, 600))
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
	failFailure := historyFailure(mustHistory(ctx, t, c, failed.GetID(), ""), func(ev *historypb.HistoryEvent) *failurepb.Failure {
		return ev.GetWorkflowExecutionFailedEventAttributes().GetFailure()
	})
	var attempts int32
	if err := harness.WaitFor(ctx, time.Minute, 100*time.Millisecond, "a retried workflow task", func(ctx context.Context) (bool, error) {
		d, err := c.DescribeWorkflowExecution(ctx, blocked.GetID(), "")
		attempts = d.GetPendingWorkflowTask().GetAttempt()
		return err == nil && attempts >= 2, err
	}); err != nil {
		t.Fatal(err)
	}
	d, err := c.DescribeWorkflowExecution(ctx, blocked.GetID(), "")
	if err != nil {
		t.Fatal(err)
	}
	blockH := mustHistory(ctx, t, c, blocked.GetID(), "")
	blockFailure := historyFailure(blockH, func(ev *historypb.HistoryEvent) *failurepb.Failure {
		return ev.GetWorkflowTaskFailedEventAttributes().GetFailure()
	})
	cause, _ := workflowTaskFailure(blockH)
	carries := func(f *failurepb.Failure) bool {
		return strings.Contains(f.GetMessage(), PanicValue) && strings.Contains(f.GetStackTrace(), "PanicWorkflow")
	}
	ok := failErr != nil && carries(failFailure) && d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING &&
		attempts >= 2 && cause == enumspb.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE && carries(blockFailure)
	check.Result(ok, fmt.Sprintf("BlockWorkflow: run %s, workflow task attempt %d, WorkflowTaskFailed cause %s, message %q, stack trace names PanicWorkflow: %v. "+
		"FailWorkflow: run failed (%v), failure message %q, stack trace names PanicWorkflow: %v",
		d.GetWorkflowExecutionInfo().GetStatus(), attempts, cause, blockFailure.GetMessage(), strings.Contains(blockFailure.GetStackTrace(), "PanicWorkflow"),
		failErr != nil, failFailure.GetMessage(), strings.Contains(failFailure.GetStackTrace(), "PanicWorkflow")),
		map[string]float64{"block_task_attempts": float64(attempts)})
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
