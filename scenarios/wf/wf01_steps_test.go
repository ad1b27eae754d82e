package wf

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/harness"
)

// TestWF01 measures step definition: activities with typed input and output,
// local activities, synchronous and future-based invocation, asynchronous
// completion, per-step options, long local activities and dynamic activities.
func TestWF01(t *testing.T) {
	t.Parallel()
	env := harness.Get(t)
	c := env.Dial(t)
	tq := harness.TaskQueue(t)
	s := &Steps{Name: "main", Probe: &Probe{}, Tokens: make(chan []byte, 1)}
	newWorker(t, c, tq, worker.Options{}, func(r worker.Registry) {
		r.RegisterActivity(s)
		r.RegisterDynamicActivity(DynamicStep, activity.DynamicRegisterOptions{})
		registerWorkflows(r, PriceWorkflow, LocalPriceWorkflow, AsyncPriceWorkflow, PendingPriceWorkflow,
			PerStepWorkflow, LongLocalWorkflow, DynamicCallWorkflow)
	})
	st := stepsTest{c: c, tq: tq, steps: s}
	t.Run("activity_step", st.testActivityStep)
	t.Run("local_activity", st.testLocalActivity)
	t.Run("async_invocation", st.testAsyncInvocation)
	t.Run("async_completion", st.testAsyncCompletion)
	t.Run("per_step_options", st.testPerStepOptions)
	t.Run("long_local_activity", st.testLongLocalActivity)
	t.Run("dynamic_activity", st.testDynamicActivity)
}

type stepsTest struct {
	c     client.Client
	tq    string
	steps *Steps
}

// run executes wf to completion and returns its id and error.
func (st stepsTest) run(ctx context.Context, t *testing.T, o client.StartWorkflowOptions, out any, wf any, args ...any) (string, error) {
	t.Helper()
	o.TaskQueue = st.tq
	r := start(ctx, t, st.c, o, wf, args...)
	return r.GetID(), r.Get(ctx, out)
}

func (st stepsTest) wantQuote(o Order, local bool) Quote {
	return Quote{OrderID: o.ID, Total: float64(o.Qty) * o.Price, Where: fmt.Sprintf("%s/%s/local=%v", st.steps.Name, st.tq, local), Attempt: 1}
}

func (st stepsTest) testActivityStep(t *testing.T) {
	check := harness.Get(t).Check(t, "WF-01.activity-step")
	ctx := harness.Context(t, time.Minute)
	in := Order{ID: "o-1", Qty: 3, Price: 2.5}
	var q Quote
	id, err := st.run(ctx, t, client.StartWorkflowOptions{}, &q, PriceWorkflow, in)
	events := mustHistory(ctx, t, st.c, id, "")
	sched := harness.EventsOf(events, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
	var recorded Order
	if len(sched) == 1 {
		_ = converter.GetDefaultDataConverter().FromPayloads(sched[0].GetActivityTaskScheduledEventAttributes().GetInput(), &recorded)
	}
	o := stepCall{err: err, sent: in, got: q, want: st.wantQuote(in, false), scheduled: len(sched), recorded: recorded}
	harness.Decide(check, activityStepPredicate, o, fmt.Sprintf("activity %q with input %+v returned %+v (error: %v); history: %d ActivityTaskScheduled, its input decodes to %+v",
		activityType(sched), in, q, err, len(sched), recorded), nil)
}

func activityType(sched []*historypb.HistoryEvent) string {
	if len(sched) == 0 {
		return "(none scheduled)"
	}
	return sched[0].GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
}

func (st stepsTest) testLocalActivity(t *testing.T) {
	check := harness.Get(t).Check(t, "WF-01.local-activity")
	ctx := harness.Context(t, time.Minute)
	in := Order{ID: "o-local", Qty: 4, Price: 1.25}
	var q Quote
	id, err := st.run(ctx, t, client.StartWorkflowOptions{}, &q, LocalPriceWorkflow, in)
	events := mustHistory(ctx, t, st.c, id, "")
	markers := harness.EventsOf(events, enumspb.EVENT_TYPE_MARKER_RECORDED)
	scheduled := len(harness.EventsOf(events, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED))
	var name string
	var recorded Quote
	if len(markers) == 1 {
		m := markers[0].GetMarkerRecordedEventAttributes()
		name = m.GetMarkerName()
		_ = converter.GetDefaultDataConverter().FromPayloads(m.GetDetails()["result"], &recorded)
	}
	o := localCall{err: err, got: q, want: st.wantQuote(in, true), markers: len(markers), markerName: name, recorded: recorded, scheduled: scheduled}
	harness.Decide(check, localActivityPredicate, o, fmt.Sprintf("local activity returned %+v (error: %v), ran on worker/queue %q; history: %d marker(s), name %q, recorded result %+v; %d ActivityTaskScheduled events",
		q, err, q.Where, len(markers), name, recorded, scheduled), nil)
}

func (st stepsTest) testAsyncInvocation(t *testing.T) {
	check := harness.Get(t).Check(t, "WF-01.async-invocation")
	ctx := harness.Context(t, time.Minute)
	orders := []Order{{ID: "sync-0", Qty: 1, Price: 10}, {ID: "async-1", Qty: 2, Price: 10}, {ID: "async-2", Qty: 3, Price: 10}, {ID: "async-3", Qty: 4, Price: 10}}
	var quotes []Quote
	id, err := st.run(ctx, t, client.StartWorkflowOptions{}, &quotes, AsyncPriceWorkflow, orders)
	events := mustHistory(ctx, t, st.c, id, "")
	// The synchronous step completed before the futures were scheduled, and
	// all futures were scheduled by the same workflow task.
	var syncDone int64
	if done := harness.EventsOf(events, enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED); len(done) > 0 {
		syncDone = done[0].GetEventId()
	}
	sched := harness.EventsOf(events, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
	tasks := map[int64]bool{}
	scheduledAfterSync := true
	for _, ev := range sched[1:] {
		tasks[ev.GetActivityTaskScheduledEventAttributes().GetWorkflowTaskCompletedEventId()] = true
		scheduledAfterSync = scheduledAfterSync && ev.GetEventId() > syncDone
	}
	overlap := overlapped(st.steps.Probe.Runs(), "async-")
	want := make([]Quote, len(orders))
	for i, o := range orders {
		want[i] = st.wantQuote(o, false)
	}
	o := asyncCall{err: err, resultsOK: slices.Equal(quotes, want), scheduled: len(sched), tasks: len(tasks), afterSync: scheduledAfterSync, overlapped: overlap}
	harness.Decide(check, asyncInvocationPredicate, o, fmt.Sprintf("1 synchronous step then 3 futures awaited afterwards: results correct %v (error: %v); the sync step completed (event %d) before the futures were scheduled: %v; "+
		"the 3 futures were scheduled by %d workflow task(s); their 300ms executions overlapped for %s",
		slices.Equal(quotes, want), err, syncDone, scheduledAfterSync, len(tasks), ms(overlap)),
		map[string]float64{"overlap_ms": float64(overlap.Milliseconds())})
}

// overlapped is how long all the runs whose tag starts with prefix were
// running at the same time (0 when they never all were).
func overlapped(runs []Run, prefix string) time.Duration {
	var lastStart, firstEnd time.Time
	for _, r := range runs {
		if !strings.HasPrefix(r.Tag, prefix) || r.End.IsZero() {
			continue
		}
		if r.Start.After(lastStart) {
			lastStart = r.Start
		}
		if firstEnd.IsZero() || r.End.Before(firstEnd) {
			firstEnd = r.End
		}
	}
	return max(firstEnd.Sub(lastStart), 0)
}

func (st stepsTest) testAsyncCompletion(t *testing.T) {
	check := harness.Get(t).Check(t, "WF-01.async-completion")
	ctx := harness.Context(t, time.Minute)
	o := client.StartWorkflowOptions{TaskQueue: st.tq}
	run := start(ctx, t, st.c, o, PendingPriceWorkflow, Order{ID: "o-ext", Qty: 1, Price: 1})
	var token []byte
	select {
	case token = <-st.steps.Tokens:
	case <-ctx.Done():
		t.Fatal("the pending activity never handed over its task token")
	}
	pendingAt := time.Now()
	sent := Quote{OrderID: "o-ext", Total: 42, Where: "completed from outside by task token"}
	cerr := st.c.CompleteActivity(ctx, token, sent, nil)
	var q Quote
	err := run.Get(ctx, &q)
	events := mustHistory(ctx, t, st.c, run.GetID(), "")
	completed := harness.EventsOf(events, enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)
	harness.Decide(check, asyncCompletionPredicate, asyncCompletion{completeErr: cerr, err: err, sent: sent, got: q, completed: len(completed)}, fmt.Sprintf("activity returned ErrResultPending; %s later the test called CompleteActivity with its %d-byte task token (error: %v); workflow received %+v (error: %v); ActivityTaskCompleted events: %d",
		ms(time.Since(pendingAt)), len(token), cerr, q, err, len(completed)), nil)
}

func (st stepsTest) testPerStepOptions(t *testing.T) {
	check := harness.Get(t).Check(t, "WF-01.per-step-options")
	ctx := harness.Context(t, time.Minute)
	tqB := harness.TaskQueue(t)
	b := &Steps{Name: "B", Probe: &Probe{}}
	newWorker(t, st.c, tqB, worker.Options{}, func(r worker.Registry) { r.RegisterActivity(b) })
	// Step B's work takes 2 s, 4× its 500 ms timeout: a timeout that fires
	// only after the work would have ended cannot be told from none.
	const slowB = 2 * time.Second
	var r PerStepReport
	id, err := st.run(ctx, t, client.StartWorkflowOptions{}, &r, PerStepWorkflow, PerStepInput{QueueA: st.tq, QueueB: tqB, SlowB: slowB})
	if err != nil {
		t.Fatalf("per-step workflow: %v", err)
	}
	events := mustHistory(ctx, t, st.c, id, "")
	sched := harness.EventsOf(events, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
	if len(sched) != 2 {
		t.Fatalf("want 2 scheduled steps, history has %d", len(sched))
	}
	recorded := make([]string, 2)
	for i, ev := range sched {
		a := ev.GetActivityTaskScheduledEventAttributes()
		recorded[i] = fmt.Sprintf("queue=%s start-to-close=%s max-attempts=%d",
			queueOwner(a.GetTaskQueue().GetName(), st.tq, tqB), a.GetStartToCloseTimeout().AsDuration(), a.GetRetryPolicy().GetMaximumAttempts())
	}
	// Step B's timeout, from its started and timed-out events.
	var bTook time.Duration
	if to := harness.EventsOf(events, enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT); len(to) == 1 {
		startedID := to[0].GetActivityTaskTimedOutEventAttributes().GetStartedEventId()
		bTook = to[0].GetEventTime().AsTime().Sub(byID(events)[startedID].GetEventTime().AsTime())
	}
	o := perStep{
		recorded: [2]string(recorded), wantRecorded: [2]string{
			fmt.Sprintf("queue=A start-to-close=%s max-attempts=3", perStepA.StartToCloseTimeout),
			fmt.Sprintf("queue=B start-to-close=%s max-attempts=1", perStepB.StartToCloseTimeout)},
		aWhere: r.A.Where, wantAWhere: fmt.Sprintf("main/%s/local=false", st.tq),
		aAttempts: attemptsOf(st.steps.Probe.Runs(), "A"), bAttempts: attemptsOf(b.Probe.Runs(), "B"),
		aResultAttempt: r.A.Attempt, aErr: r.AErr, bTimeout: r.BTimeout, bTook: bTook, bConfigured: perStepB.StartToCloseTimeout, bWork: slowB,
	}
	harness.Decide(check, perStepOptionsPredicate, o, fmt.Sprintf("history records step A {%s} and step B {%s}; step A ran on %s, attempts %v, result attempt %d (error %q); "+
		"step B ran on worker B, attempts %v, failed with timeout %q %s after it started: bound [%s configured, %s when its work would have finished), margin %s",
		recorded[0], recorded[1], r.A.Where, o.aAttempts, r.A.Attempt, r.AErr, o.bAttempts, r.BTimeout, ms(bTook), perStepB.StartToCloseTimeout, slowB, ms(slowB-bTook)),
		map[string]float64{"step_b_timeout_ms": float64(bTook.Milliseconds())})
}

func queueOwner(q, a, b string) string {
	switch q {
	case a:
		return "A"
	case b:
		return "B"
	}
	return q
}

func attemptsOf(runs []Run, tag string) []int32 {
	var out []int32
	for _, r := range runs {
		if r.Tag == tag {
			out = append(out, r.Attempt)
		}
	}
	return out
}

func (st stepsTest) testLongLocalActivity(t *testing.T) {
	check := harness.Get(t).Check(t, "WF-01.long-local-activity")
	quiet(t) // the backoff between attempts is measured
	ctx := harness.Context(t, time.Minute)
	const taskTimeout, hold = time.Second, 2500 * time.Millisecond
	var q Quote
	id, err := st.run(ctx, t, client.StartWorkflowOptions{WorkflowTaskTimeout: taskTimeout}, &q, LongLocalWorkflow, LongLocalInput{OKAt: 3, Hold: hold})
	events := mustHistory(ctx, t, st.c, id, "")
	var runs []Run
	for _, r := range st.steps.Probe.Runs() {
		if r.Tag == "long" {
			runs = append(runs, r)
		}
	}
	// Backoff between attempts as the activity saw it start, against the
	// retry policy's intervals.
	var gaps, wantGaps []time.Duration
	for i := 1; i < len(runs); i++ {
		gaps = append(gaps, runs[i].Start.Sub(runs[i-1].Start).Round(time.Millisecond))
		wantGaps = append(wantGaps, time.Duration(float64(localInitialInterval)*math.Pow(localBackoff, float64(i-1))))
	}
	var marker localMarker
	if m := harness.EventsOf(events, enumspb.EVENT_TYPE_MARKER_RECORDED); len(m) == 1 {
		_ = converter.GetDefaultDataConverter().FromPayloads(m[0].GetMarkerRecordedEventAttributes().GetDetails()["data"], &marker)
	}
	taskTimeouts := len(harness.EventsOf(events, enumspb.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT))
	taskFailures := len(harness.EventsOf(events, enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED))
	tasks := len(harness.EventsOf(events, enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED))
	var lastTook time.Duration
	if len(runs) > 0 {
		lastTook = runs[len(runs)-1].End.Sub(runs[len(runs)-1].Start)
	}
	o := longLocal{err: err, attempts: len(runs), resultAttempt: q.Attempt, markerAttempt: marker.Attempt, gaps: gaps, wantGaps: wantGaps,
		coefficient: localBackoff, lastTook: lastTook, taskTimeout: taskTimeout, tasks: tasks, taskTimeouts: taskTimeouts, taskFail: taskFailures}
	harness.Decide(check, longLocalPredicate, o, fmt.Sprintf("local activity with retry policy (initial %s, coefficient %.0f): attempts %d, gaps between attempt starts %v against intervals %v "+
		"(bound: at least 90%% of the interval, under interval × %.0f, the next one in the sequence); the last attempt worked %s against a %s workflow task timeout; "+
		"result %+v (error: %v); marker records attempt %d; history: %d workflow tasks completed (more than 1: the SDK extended the task), %d timed out, %d failed",
		localInitialInterval, localBackoff, len(runs), gaps, wantGaps, localBackoff, ms(lastTook), taskTimeout, q, err, marker.Attempt, tasks, taskTimeouts, taskFailures),
		map[string]float64{"local_activity_ms": float64(lastTook.Milliseconds()), "workflow_tasks": float64(tasks)})
}

// localMarker is the part of the SDK's local-activity marker data we read.
type localMarker struct {
	Attempt int32
	Backoff time.Duration
}

func (st stepsTest) testDynamicActivity(t *testing.T) {
	check := harness.Get(t).Check(t, "WF-01.dynamic-activity")
	ctx := harness.Context(t, time.Minute)
	const typ = "ReportForTenant42"
	var got string
	_, err := st.run(ctx, t, client.StartWorkflowOptions{}, &got, DynamicCallWorkflow, typ, "ledger", 7)
	want := fmt.Sprintf("%s(%q, %d)", typ, "ledger", 7)
	harness.Decide(check, dynamicActivityPredicate, dynamicCall{err: err, got: got, want: want}, fmt.Sprintf("workflow called unregistered activity type %q with (\"ledger\", 7); the dynamic activity answered %q (error: %v)", typ, got, err), nil)
}
