package rt

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"google.golang.org/grpc"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/harness/ledger"
)

// TestRT04 measures heartbeats: that they are recorded, that a stuck or
// crashed activity is detected by them and resumes from their details, that
// cancellation and pause reach the activity through them, and that frequent
// heartbeats are throttled.
func TestRT04(t *testing.T) {
	t.Run("heartbeat_recorded", testHeartbeatRecorded)
	t.Run("stuck_and_resume", testStuckAndResume)
	t.Run("cancel_via_heartbeat", testCancelViaHeartbeat)
	t.Run("worker_crash", testWorkerCrashDetected)
	t.Run("throttled", testHeartbeatThrottled)
	t.Run("pause", testPauseViaHeartbeat)
}

// beater is a Scripted activity that heartbeats its progress (the number of
// 100ms items done, resumed from heartbeat details on a retry) until its
// context ends or the test releases it, and tells the test what it saw.
type beater struct {
	started  chan struct{} // closed when the first attempt begins
	release  chan struct{} // closed by the test to let the activity finish
	once     sync.Once
	mu       sync.Mutex
	progress int
	resumed  []int // the offset each attempt resumed from
	ended    time.Time
	endErr   error // the context's error when it ended
	cause    error // the context's cause when it ended
}

func newBeater() *beater {
	return &beater{started: make(chan struct{}), release: make(chan struct{})}
}

func (b *beater) run(ctx context.Context, _ int32, _ Job) (string, error) {
	offset := 0
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &offset); err != nil {
			return "", err
		}
	}
	b.mu.Lock()
	b.progress = offset
	b.resumed = append(b.resumed, offset)
	b.mu.Unlock()
	b.once.Do(func() { close(b.started) })
	tick := time.NewTicker(100 * time.Millisecond) // one item of work per tick
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			b.mu.Lock()
			b.ended, b.endErr, b.cause = time.Now(), ctx.Err(), context.Cause(ctx)
			b.mu.Unlock()
			return "", ctx.Err()
		case <-b.release:
			return fmt.Sprintf("done at %d", b.current()), nil
		case <-tick.C:
			b.mu.Lock()
			b.progress++
			p := b.progress
			b.mu.Unlock()
			activity.RecordHeartbeat(ctx, p)
		}
	}
}

func (b *beater) current() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.progress
}

// waitStarted waits for the beater's first attempt.
func (b *beater) waitStarted(ctx context.Context, t *testing.T) {
	t.Helper()
	select {
	case <-b.started:
	case <-ctx.Done():
		t.Fatal("the activity never started")
	}
}

// heartbeatDetails decodes a pending activity's heartbeat details, -1 if none.
func heartbeatDetails(t *testing.T, pa *workflowpb.PendingActivityInfo) int {
	t.Helper()
	d := -1
	if p := pa.GetHeartbeatDetails(); p != nil {
		if err := converter.GetDefaultDataConverter().FromPayloads(p, &d); err != nil {
			t.Fatalf("heartbeat details: %v", err)
		}
	}
	return d
}

func testHeartbeatRecorded(t *testing.T) {
	check := harness.Get(t).Check(t, "RT-04.heartbeat-recorded")
	ctx := harness.Context(t, time.Minute)
	c := harness.Get(t).Dial(t)
	b := newBeater()
	tq, _ := scripted(t, c, worker.Options{}, b.run)
	run := start(ctx, t, c, client.StartWorkflowOptions{TaskQueue: tq}, CallWorkflow,
		CallInput{Activity: ScriptedName, StartToClose: time.Minute, Heartbeat: time.Second})
	b.waitStarted(ctx, t)
	// The SDK sends the first heartbeat at once and batches later ones for
	// 80% of the heartbeat timeout: wait for a batched one.
	pa := waitPending(ctx, t, c, run.GetID(), "heartbeat details of 2 or more", func(pa *workflowpb.PendingActivityInfo) bool {
		return heartbeatDetails(t, pa) >= 2
	})
	describedAt, progress := time.Now(), b.current()
	close(b.release)
	var out string
	err := run.Get(ctx, &out)
	details := heartbeatDetails(t, pa)
	last, started := pa.GetLastHeartbeatTime().AsTime(), pa.GetLastStartedTime().AsTime()
	// The wait guaranteed details of 2 or more; the predicate judges what it
	// did not: that they are the activity's own and the recorded time fresh.
	r := recordedBeat{hb: time.Second, details: details, progress: progress, sinceStart: last.Sub(started), age: describedAt.Sub(last), out: out, err: err}
	harness.Decide(check, recordedHeartbeatPredicate, r, fmt.Sprintf("activity heartbeating its progress every 100ms, heartbeat timeout 1s: describe showed details %d (activity at %d) and last heartbeat %s after the attempt started, %s before the describe (bound %s: the SDK's throttle %s plus %s); result %q (error: %v)",
		details, progress, ms(r.sinceStart), ms(r.age), ms(throttleOf(r.hb)+realTime.late), ms(throttleOf(r.hb)), ms(realTime.late), out, err),
		map[string]float64{"details": float64(details), "heartbeat_age_s": describedAt.Sub(last).Seconds()})
}

// testStuckAndResume: Progress stops heartbeating at item 5 of 10 on its
// first attempt; the heartbeat timeout must detect it, and the retry resume
// from item 5 without processing items 0-4 again.
func testStuckAndResume(t *testing.T) {
	env := harness.Get(t)
	stuck := env.Check(t, "RT-04.stuck-detected")
	resume := env.Check(t, "RT-04.resume-from-details")
	ctx := harness.Context(t, time.Minute)
	c := env.Dial(t)
	tq := harness.TaskQueue(t)
	led := filepath.Join(env.Scratch(t), "ledger.jsonl")
	startWorker(t, c, tq, led, worker.Options{}, nil)
	const items, stallAt, hbTimeout, startToClose = 10, 5, time.Second, 30 * time.Second
	run := startProgress(ctx, t, c, tq, Job{Items: items, ItemDuration: 100 * time.Millisecond, StallAt: stallAt}, hbTimeout, startToClose)
	var out string
	err := run.Get(ctx, &out)

	entries := readLedger(t, led)
	startedEv := harness.EventsOf(mustHistory(ctx, t, c, run.GetID(), ""), enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED)
	lastFailure := "none"
	var lastFailureType enumspb.TimeoutType
	var attempt int32
	if len(startedEv) == 1 {
		a := startedEv[0].GetActivityTaskStartedEventAttributes()
		attempt = a.GetAttempt()
		lastFailureType = a.GetLastFailure().GetTimeoutFailureInfo().GetTimeoutType()
		lastFailure = lastFailureType.String()
	}
	stalls, resumes := entriesOf(entries, phaseStall), entriesOf(entries, phaseResume)
	var detection time.Duration
	if len(stalls) == 1 && len(resumes) == 2 {
		detection = resumes[1].At.Sub(stalls[0].At)
	}
	sr := stuckRun{hb: hbTimeout, interval: time.Second, startToClose: startToClose, attempt: attempt, lastFailure: lastFailureType, detection: detection, err: err}
	harness.Decide(stuck, stuckPredicate, sr,
		fmt.Sprintf("attempt 1 stopped heartbeating before item %d (heartbeat timeout %s, retry interval %s, start-to-close %s): the final attempt was %d, started after a %s timeout (history), %s after the stall (bound %s: throttle, timeout, interval and real-time tolerance; margin %s); result %q (error: %v)",
			stallAt, hbTimeout, sr.interval, startToClose, attempt, lastFailure, ms(detection), ms(detectionBound(sr.hb, sr.interval)), ms(detectionBound(sr.hb, sr.interval)-detection), out, err),
		map[string]float64{"detection_s": detection.Seconds()})

	perItem, redone := itemRuns(entries, items)
	resumedAt := -1
	if len(resumes) == 2 {
		resumedAt = resumes[1].Step
	}
	harness.Decide(resume, resumePredicate, resumeRun{stallAt: stallAt, resumedAt: resumedAt, perItem: perItem, err: err},
		fmt.Sprintf("the retry read heartbeat details %d and resumed there (stalled at %d); runs per item %v; items processed twice %v; result %q", resumedAt, stallAt, perItem, redone, out),
		map[string]float64{"resumed_at": float64(resumedAt), "items_redone": float64(len(redone))})
}

// startProgress starts a workflow running the Progress activity, retried
// every second.
func startProgress(ctx context.Context, t *testing.T, c client.Client, tq string, job Job, hb, startToClose time.Duration) client.WorkflowRun {
	t.Helper()
	return start(ctx, t, c, client.StartWorkflowOptions{TaskQueue: tq}, CallWorkflow, CallInput{Activity: ProgressName, Job: job,
		StartToClose: startToClose, Heartbeat: hb, Retry: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 1}})
}

// itemRuns counts how often the ledger shows each item processed, and lists
// the items processed more than once.
func itemRuns(entries []ledger.Entry, items int) (perItem, redone []int) {
	perItem = make([]int, items)
	for _, e := range entriesOf(entries, phaseItem) {
		if e.Step >= 0 && e.Step < items {
			perItem[e.Step]++
		}
	}
	for i, n := range perItem {
		if n > 1 {
			redone = append(redone, i)
		}
	}
	return perItem, redone
}

func testCancelViaHeartbeat(t *testing.T) {
	check := harness.Get(t).Check(t, "RT-04.cancel-via-heartbeat")
	ctx := harness.Context(t, time.Minute)
	c := harness.Get(t).Dial(t)
	b := newBeater()
	tq, _ := scripted(t, c, worker.Options{}, b.run)
	const hb = time.Second
	run := start(ctx, t, c, client.StartWorkflowOptions{TaskQueue: tq}, CallWorkflow,
		CallInput{Activity: ScriptedName, StartToClose: time.Minute, Heartbeat: hb, WaitForCancellation: true})
	b.waitStarted(ctx, t)
	cancelAt := time.Now()
	if err := c.CancelWorkflow(ctx, run.GetID(), ""); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	err := run.Get(ctx, nil)
	events := mustHistory(ctx, t, c, run.GetID(), "")
	var canceled *temporal.CanceledError
	b.mu.Lock()
	ended, endErr := b.ended, b.endErr
	b.mu.Unlock()
	latency := ended.Sub(cancelAt)
	r := cancelRun{hb: hb, endErr: endErr, latency: latency, workflowCanceled: errors.As(err, &canceled),
		cancelRequested: len(harness.EventsOf(events, enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED)), canceled: len(harness.EventsOf(events, enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCELED))}
	harness.Decide(check, cancelPredicate, r, fmt.Sprintf("workflow cancelled while its activity heartbeats every 100ms (heartbeat timeout %s, so at most one heartbeat call per %s): the activity's context ended %s after the request with %v (bound %s: the throttle plus %s); history has %d ActivityTaskCancelRequested and %d ActivityTaskCanceled; workflow error: %v",
		hb, ms(throttleOf(hb)), ms(latency), endErr, ms(throttleOf(hb)+realTime.late), ms(realTime.late), r.cancelRequested, r.canceled, err),
		map[string]float64{"cancel_latency_s": latency.Seconds()})
}

// testWorkerCrashDetected SIGKILLs a worker process in the middle of a
// heartbeating Progress activity and lets a worker in this process take
// over: the heartbeat timeout must detect the crash long before
// start-to-close, and the retry resume from the last recorded details.
func testWorkerCrashDetected(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "RT-04.worker-crash-detected")
	ctx := harness.Context(t, 2*time.Minute)
	c := env.Dial(t)
	tq := harness.TaskQueue(t)
	led := filepath.Join(env.Scratch(t), "ledger.jsonl")
	crashed := env.StartWorker(t, workerRole, harness.RoleConfig{Address: env.Options.HostPort, Namespace: env.Options.Namespace, TaskQueue: tq, Args: map[string]string{"ledger": led}})
	const items, hb, startToClose = 30, time.Second, time.Minute
	run := startProgress(ctx, t, c, tq, Job{Items: items, ItemDuration: 100 * time.Millisecond}, hb, startToClose)
	waitLedger(ctx, t, led, "item 15 to be processed", func(e []ledger.Entry) bool {
		return slices.ContainsFunc(e, func(e ledger.Entry) bool { return e.Phase == phaseItem && e.Step == 15 })
	})
	killedAt := time.Now()
	if err := crashed.Kill(); err != nil {
		t.Fatalf("kill worker: %v", err)
	}
	startWorker(t, c, tq, led, worker.Options{}, nil)
	var out string
	err := run.Get(ctx, &out)

	entries := readLedger(t, led)
	var lastBefore, resumedAt = -1, -1
	var resumed time.Time
	var redoneBelow []int
	for _, e := range entries {
		switch {
		case e.PID == crashed.PID() && e.Phase == phaseItem:
			lastBefore = max(lastBefore, e.Step)
		case e.PID != crashed.PID() && e.Phase == phaseResume && resumedAt < 0:
			resumedAt, resumed = e.Step, e.At
		}
	}
	for _, e := range entries {
		if e.PID != crashed.PID() && e.Phase == phaseItem && e.Step < resumedAt {
			redoneBelow = append(redoneBelow, e.Step)
		}
	}
	perItem, redone := itemRuns(entries, items)
	detection := resumed.Sub(killedAt)
	cr := crashRun{hb: hb, interval: time.Second, startToClose: startToClose, resumedAt: resumedAt, redoneBelow: redoneBelow, perItem: perItem, detection: detection, err: err}
	harness.Decide(check, crashPredicate, cr, fmt.Sprintf("worker pid %d SIGKILLed after item %d of %d (heartbeat timeout %s, retry interval 1s, start-to-close %s): the activity resumed on another worker %s after the kill (bound %s: throttle, timeout, interval and real-time tolerance), at item %d from its heartbeat details; "+
		"items below it processed again %v; items processed twice in all %v (done after the last heartbeat that reached the server); result %q (error: %v)",
		crashed.PID(), lastBefore, items, hb, startToClose, ms(detection), ms(detectionBound(cr.hb, cr.interval)), resumedAt, redoneBelow, redone, out, err),
		map[string]float64{"detection_s": detection.Seconds(), "resumed_at": float64(resumedAt), "items_redone": float64(len(redone))})
}

// testHeartbeatThrottled heartbeats about 1,000 times a second for 2s
// through a client that counts its heartbeat RPCs.
func testHeartbeatThrottled(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "RT-04.throttled")
	ctx := harness.Context(t, time.Minute)
	var rpcs atomic.Int64
	o := env.Options
	o.Logger = quietLogger()
	o.ConnectionOptions.DialOptions = append(slices.Clone(o.ConnectionOptions.DialOptions), grpc.WithChainUnaryInterceptor(
		func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			if strings.HasSuffix(method, "/RecordActivityTaskHeartbeat") {
				rpcs.Add(1)
			}
			return invoker(ctx, method, req, reply, cc, opts...)
		}))
	c, err := client.DialContext(ctx, o)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(c.Close)

	const hb, burstFor = 2 * time.Second, 2 * time.Second
	type burst struct {
		calls int
		took  time.Duration
		rpcs  int64 // heartbeat RPCs sent during the burst
		ended time.Time
	}
	bursts := make(chan burst, 1)
	release := make(chan struct{})
	tq, _ := scripted(t, c, worker.Options{}, func(ctx context.Context, _ int32, _ Job) (string, error) {
		before, began := rpcs.Load(), time.Now()
		calls := 0
		for time.Since(began) < burstFor {
			calls++
			activity.RecordHeartbeat(ctx, calls)
			time.Sleep(time.Millisecond) // about a thousand heartbeats a second
		}
		bursts <- burst{calls: calls, took: time.Since(began), rpcs: rpcs.Load() - before, ended: time.Now()}
		for { // keep the final value current until released
			select {
			case <-release:
				return "done", nil
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(100 * time.Millisecond):
				activity.RecordHeartbeat(ctx, calls)
			}
		}
	})
	run := start(ctx, t, c, client.StartWorkflowOptions{TaskQueue: tq}, CallWorkflow,
		CallInput{Activity: ScriptedName, StartToClose: time.Minute, Heartbeat: hb})
	var b burst
	select {
	case b = <-bursts:
	case <-ctx.Done():
		t.Fatal("the heartbeat burst never ended")
	}
	// Watch describe for twice the allowed delay: the predicate, not this
	// wait, judges whether and how soon the final details arrived.
	throttle := throttleOf(hb)
	final, current := -1, time.Duration(-1)
	watch := 2*(throttle+realTime.late) - time.Since(b.ended)
	_ = harness.WaitFor(ctx, watch, 20*time.Millisecond, "the final heartbeat details", func(ctx context.Context) (bool, error) {
		pa, err := pendingActivity(ctx, c, run.GetID())
		if err != nil && ctx.Err() == nil {
			t.Fatal(err)
		}
		if pa != nil {
			final = heartbeatDetails(t, pa)
		}
		if final == b.calls {
			current = time.Since(b.ended)
		}
		return current >= 0, nil
	})
	close(release)
	err = run.Get(ctx, nil)
	r := throttleRun{hb: hb, calls: b.calls, took: b.took, rpcs: b.rpcs, final: final, current: current, err: err}
	harness.Decide(check, throttledPredicate, r, fmt.Sprintf("%d heartbeats in %s (%.0f/s), heartbeat timeout %s: %d heartbeat RPCs during the burst, one per %d calls (bound %d: one at once, then at most one per %s, the SDK's throttle); "+
		"describe showed details %d (final %d) %s after the burst (bound %s: the throttle plus %s; -1: not within %s); workflow error: %v",
		b.calls, ms(b.took), float64(b.calls)/b.took.Seconds(), hb, b.rpcs, int64(b.calls)/max(b.rpcs, 1), throttleBound(hb, b.took), ms(throttle),
		final, b.calls, ms(current), ms(throttle+realTime.late), ms(realTime.late), ms(2*(throttle+realTime.late)), err),
		map[string]float64{"heartbeats": float64(b.calls), "rpcs": float64(b.rpcs), "details_current_after_s": current.Seconds()})
}

// testPauseViaHeartbeat pauses a heartbeating activity through the API,
// holds the pause for 2s, and unpauses it.
func testPauseViaHeartbeat(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "RT-04.pause-via-heartbeat")
	ctx := harness.Context(t, time.Minute)
	c := env.Dial(t)
	b := newBeater()
	tq, log := scripted(t, c, worker.Options{}, b.run)
	const hb = time.Second
	run := start(ctx, t, c, client.StartWorkflowOptions{TaskQueue: tq}, CallWorkflow,
		CallInput{Activity: ScriptedName, ActivityID: "work", StartToClose: time.Minute, Heartbeat: hb,
			Retry: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 1}})
	waitPending(ctx, t, c, run.GetID(), "heartbeat details of 3 or more", func(pa *workflowpb.PendingActivityInfo) bool {
		return heartbeatDetails(t, pa) >= 3
	})
	exec := &commonpb.WorkflowExecution{WorkflowId: run.GetID()}
	pausedAt := time.Now()
	if _, err := c.WorkflowService().PauseActivity(ctx, &workflowservice.PauseActivityRequest{
		Namespace: env.Options.Namespace, Execution: exec, Activity: &workflowservice.PauseActivityRequest_Id{Id: "work"}, Reason: "durabench pause check",
	}); err != nil {
		harness.Decide(check, pausePredicate, pauseRun{hb: hb, stopped: -1, apiErr: err}, fmt.Sprintf("PauseActivity failed: %v", err), nil)
		return
	}
	// A platform that does not deliver the pause leaves the attempt running:
	// the predicate judges that, so the waits below only bound the time.
	stopped := time.Duration(-1)
	if harness.WaitFor(ctx, 10*time.Second, 20*time.Millisecond, "the paused attempt to stop", func(context.Context) (bool, error) {
		return len(log.attempts()) == 1, nil
	}) == nil {
		b.mu.Lock()
		stopped = b.ended.Sub(pausedAt)
		b.mu.Unlock()
	}
	b.mu.Lock()
	cause := b.cause
	b.mu.Unlock()
	// The pause lasts 2s, by design: no attempt may start meanwhile.
	select {
	case <-time.After(2 * time.Second):
	case <-ctx.Done():
		t.Fatal("deadline during the pause")
	}
	pa, err := pendingActivity(ctx, c, run.GetID())
	if err != nil {
		t.Fatal(err)
	}
	attemptsWhilePaused := len(log.attempts())
	if _, err := c.WorkflowService().UnpauseActivity(ctx, &workflowservice.UnpauseActivityRequest{
		Namespace: env.Options.Namespace, Execution: exec, Activity: &workflowservice.UnpauseActivityRequest_Id{Id: "work"},
	}); err != nil {
		r := pauseRun{hb: hb, stopped: stopped, cause: cause, paused: pa.GetPaused(), attemptsWhilePaused: attemptsWhilePaused, apiErr: err}
		harness.Decide(check, pausePredicate, r, fmt.Sprintf("paused: context ended %s after the request with cause %v, describe paused=%v; UnpauseActivity failed: %v", ms(stopped), cause, r.paused, err), nil)
		return
	}
	_ = harness.WaitFor(ctx, 10*time.Second, 20*time.Millisecond, "the activity to resume", func(context.Context) (bool, error) {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.resumed) == 2, nil
	})
	close(b.release)
	var out string
	err = run.Get(ctx, &out)
	b.mu.Lock()
	resumed := slices.Clone(b.resumed)
	b.mu.Unlock()
	r := pauseRun{hb: hb, stopped: stopped, cause: cause, paused: pa.GetPaused(), attemptsWhilePaused: attemptsWhilePaused, resumed: resumed, out: out, err: err}
	harness.Decide(check, pausePredicate, r, fmt.Sprintf("activity heartbeating every 100ms (heartbeat timeout %s) paused through the API: its context ended %s later with cause %v (bound %s: the throttle plus %s; -1: not within 10s); 2s into the pause describe showed paused=%v, state %s, and %d attempt(s) had run; after unpause the activity resumed from details %v and returned %q (error: %v)",
		hb, ms(stopped), cause, ms(throttleOf(hb)+realTime.late), ms(realTime.late), pa.GetPaused(), pa.GetState(), attemptsWhilePaused, resumed, out, err),
		map[string]float64{"pause_latency_s": stopped.Seconds()})
}
