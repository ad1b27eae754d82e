package cp

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/harness"
)

// TestCP04 measures dead letters: poison runs failing after their attempts
// without holding others up, listed by status with their failure kept,
// tagging themselves and notifying a webhook (our pattern), re-driven by
// reset after a fix, and a poison activity found by its attempt count and
// paused.
func TestCP04(t *testing.T) {
	env := harness.Get(t)
	ctx := harness.Context(t, 3*time.Minute)
	op := cpDialOperator(t, env)
	cpEnsureSearchAttributes(ctx, t, op, env.Options.Namespace, map[string]enumspb.IndexedValueType{
		DeadLetterKey.GetName():       enumspb.INDEXED_VALUE_TYPE_BOOL,
		DeadLetterReasonKey.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	})
	d := &dlFixture{env: env, wc: env.Dial(t), op: op, sink: newDLSink(t)}
	t.Run("isolated", d.testIsolated)
	// The next four read the runs isolated left.
	t.Run("listable_by_status", d.testListable)
	t.Run("failure_kept", d.testFailureKept)
	t.Run("tagged", d.testTagged)
	t.Run("notify", d.testNotify)
	t.Run("redrive", d.testRedrive)
	t.Run("poison_activity_held", d.testHeld)
}

// dlPolicy is the poison runs' policy in isolated: 5 attempts, 500 ms apart,
// so that they retry for 2 s while healthy runs go through.
var dlPolicy = PoisonInput{MaxAttempts: 5, Interval: 500 * time.Millisecond}

// dlSink is the webhook that receives dead-letter notices.
type dlSink struct {
	url string
	mu  sync.Mutex
	got []DeadLetterNotice
}

func newDLSink(t *testing.T) *dlSink {
	s := &dlSink{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n DeadLetterNotice
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.got = append(s.got, n)
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *dlSink) notices() []DeadLetterNotice {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// dlRun is a started PoisonWorkflow.
type dlRun struct {
	in  PoisonInput
	run client.WorkflowRun
}

// dlFixture holds the clients, the webhook and the runs isolated leaves for
// the checks that inspect them.
type dlFixture struct {
	env     *harness.Env
	wc, op  client.Client
	sink    *dlSink
	tq      string // isolated's task queue
	poison  []dlRun
	healthy []string // workflow ids of healthy runs on tq
}

// worker serves PoisonWorkflow on a fresh task queue with its own
// activities.
func (d *dlFixture) worker(t *testing.T) (string, *DeadLetterActivities) {
	t.Helper()
	tq := harness.TaskQueue(t)
	acts := &DeadLetterActivities{WebhookURL: d.sink.url}
	w := worker.New(d.wc, tq, worker.Options{})
	w.RegisterWorkflow(PoisonWorkflow)
	w.RegisterActivity(acts)
	if err := w.Start(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	t.Cleanup(w.Stop)
	return tq, acts
}

func (d *dlFixture) start(ctx context.Context, t *testing.T, tq string, in PoisonInput) dlRun {
	t.Helper()
	o := client.StartWorkflowOptions{ID: harness.UniqueID(t, in.Item), TaskQueue: tq, WorkflowExecutionTimeout: 5 * time.Minute}
	run, err := d.wc.ExecuteWorkflow(ctx, o, PoisonWorkflow, in)
	if err != nil {
		t.Fatalf("start %s: %v", o.ID, err)
	}
	t.Cleanup(func() { _ = d.wc.TerminateWorkflow(context.Background(), run.GetID(), run.GetRunID(), "test cleanup") })
	return dlRun{in: in, run: run}
}

// healthyRuns runs n healthy items at once on tq and times each from its
// start call to its result.
func (d *dlFixture) healthyRuns(ctx context.Context, t *testing.T, tq, prefix string, n int) []dlGoodRun {
	out := make([]dlGoodRun, n)
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range out {
		ids[i] = harness.UniqueID(t, fmt.Sprintf("%s-%d", prefix, i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			t0 := time.Now()
			run, err := d.wc.ExecuteWorkflow(rctx, client.StartWorkflowOptions{ID: ids[i], TaskQueue: tq, WorkflowExecutionTimeout: time.Minute},
				PoisonWorkflow, PoisonInput{Item: fmt.Sprintf("%s-%d", prefix, i), MaxAttempts: dlPolicy.MaxAttempts, Interval: dlPolicy.Interval})
			if err == nil {
				err = run.Get(rctx, nil)
			}
			out[i] = dlGoodRun{latency: time.Since(t0), done: time.Now(), err: err}
		}()
	}
	wg.Wait()
	d.healthy = append(d.healthy, ids...)
	return out
}

func dlDurations(runs []dlGoodRun) string {
	var ms []string
	for _, l := range dlLatencies(runs) {
		ms = append(ms, fmt.Sprint(l.Milliseconds()))
	}
	return "[" + strings.Join(ms, " ") + "] ms"
}

func (d *dlFixture) testIsolated(t *testing.T) {
	check := d.env.Check(t, "CP-04.isolated")
	ctx := harness.Context(t, 2*time.Minute)
	tq, acts := d.worker(t)
	d.tq = tq
	const healthy, poison = 8, 3
	o := dlIsolation{maxAttempts: int(dlPolicy.MaxAttempts)}
	o.baseline = d.healthyRuns(ctx, t, tq, "good-alone", healthy)
	for i := range poison {
		in := dlPolicy
		in.Item = fmt.Sprintf("%s-%d", poisonPrefix, i)
		d.poison = append(d.poison, d.start(ctx, t, tq, in))
	}
	o.alongside = d.healthyRuns(ctx, t, tq, "good-beside", healthy)
	var closes []string
	for _, p := range d.poison {
		st := cpAwaitClosed(ctx, d.op, p.run.GetID(), p.run.GetRunID(), 30*time.Second)
		pr := dlPoisonRun{id: p.run.GetID(), status: st, attempts: acts.attemptsOf(p.in.Item)}
		if desc, err := d.op.DescribeWorkflowExecution(ctx, p.run.GetID(), p.run.GetRunID()); err == nil && desc.GetWorkflowExecutionInfo().GetCloseTime() != nil {
			pr.closed = desc.GetWorkflowExecutionInfo().GetCloseTime().AsTime()
		}
		o.poison = append(o.poison, pr)
		closes = append(closes, fmt.Sprintf("%s %s after %d attempts", p.in.Item, st, pr.attempts))
	}
	lastGood := time.Time{}
	for _, g := range o.alongside {
		if g.done.After(lastGood) {
			lastGood = g.done
		}
	}
	firstPoison := time.Time{}
	for _, p := range o.poison {
		if firstPoison.IsZero() || p.closed.Before(firstPoison) {
			firstPoison = p.closed
		}
	}
	errs := 0
	for _, g := range slices.Concat(o.baseline, o.alongside) {
		if g.err != nil {
			errs++
		}
	}
	base, beside := dlMedian(dlLatencies(o.baseline)), dlMedian(dlLatencies(o.alongside))
	harness.Decide(check, dlIsolatedPredicate, o, fmt.Sprintf(
		"one task queue and worker. %d healthy runs alone: latencies %s (median %d ms). Then %d poison runs (Process fails every attempt; %d attempts %s apart) "+
			"and %d healthy runs beside them: latencies %s (median %d ms); healthy errors %d; "+
			"last healthy run done %d ms before the first poison run closed (bound: before it, within the poison's retry span). Poison: %s",
		healthy, dlDurations(o.baseline), base.Milliseconds(), poison, dlPolicy.MaxAttempts, dlPolicy.Interval, healthy, dlDurations(o.alongside),
		beside.Milliseconds(), errs, firstPoison.Sub(lastGood).Milliseconds(), strings.Join(closes, "; ")),
		map[string]float64{"healthy_median_alone_ms": float64(base.Milliseconds()), "healthy_median_beside_poison_ms": float64(beside.Milliseconds())})
}

// needPoison stops a check that inspects isolated's runs when there are none.
func (d *dlFixture) needPoison(t *testing.T) {
	t.Helper()
	if len(d.poison) == 0 {
		t.Fatal("no poison runs: isolated did not start them")
	}
}

func (d *dlFixture) poisonIDs() []string {
	var ids []string
	for _, p := range d.poison {
		ids = append(ids, p.run.GetID())
	}
	return ids
}

// list waits until query returns at least want runs and returns them.
func (d *dlFixture) list(ctx context.Context, query string, want int) ([]*workflowpb.WorkflowExecutionInfo, error) {
	var got []*workflowpb.WorkflowExecutionInfo
	err := harness.WaitFor(ctx, 30*time.Second, 100*time.Millisecond, fmt.Sprintf("%d runs for %q", want, query), func(ctx context.Context) (bool, error) {
		got = nil
		var token []byte
		for {
			resp, err := d.op.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
				Namespace: d.env.Options.Namespace, Query: query, NextPageToken: token,
			})
			if err != nil {
				return false, err
			}
			got = append(got, resp.GetExecutions()...)
			if token = resp.GetNextPageToken(); len(token) == 0 {
				break
			}
		}
		return len(got) >= want, nil
	})
	return got, err
}

func (d *dlFixture) testListable(t *testing.T) {
	check := d.env.Check(t, "CP-04.listable-by-status")
	ctx := harness.Context(t, time.Minute)
	d.needPoison(t)
	l := dlListing{
		query: fmt.Sprintf("WorkflowType = 'PoisonWorkflow' AND ExecutionStatus = 'Failed' AND TaskQueue = '%s'", d.tq),
		want:  d.poisonIDs(),
	}
	runs, err := d.list(ctx, l.query, len(l.want))
	l.err = err
	for _, r := range runs {
		l.listed = append(l.listed, r.GetExecution().GetWorkflowId())
	}
	healthyListed := 0
	for _, id := range l.listed {
		if slices.Contains(d.healthy, id) {
			healthyListed++
		}
	}
	harness.Decide(check, dlListablePredicate, l, fmt.Sprintf("query %q on a queue with %d poison and %d healthy runs: %d listed (%d of them healthy), the poison runs exactly: %v (error: %v)",
		l.query, len(l.want), len(d.healthy), len(l.listed), healthyListed, dlSameSet(l.listed, l.want), l.err), nil)
}

// dlAppFailure walks a failure's cause chain to its application failure.
func dlAppFailure(f *failurepb.Failure) *failurepb.Failure {
	for ; f != nil; f = f.GetCause() {
		if f.GetApplicationFailureInfo() != nil {
			return f
		}
	}
	return nil
}

func (d *dlFixture) testFailureKept(t *testing.T) {
	check := d.env.Check(t, "CP-04.failure-kept")
	ctx := harness.Context(t, time.Minute)
	d.needPoison(t)
	f := dlFailureKept{maxAttempts: dlPolicy.MaxAttempts}
	var lines []string
	for _, p := range d.poison {
		events, err := harness.History(ctx, d.op, p.run.GetID(), p.run.GetRunID())
		if err != nil {
			f.err = err
			break
		}
		k := dlKept{id: p.run.GetID(), given: p.in.Item}
		var in PoisonInput
		if err := converter.GetDefaultDataConverter().FromPayloads(events[0].GetWorkflowExecutionStartedEventAttributes().GetInput(), &in); err == nil {
			k.input = in.Item
		}
		if closed := harness.EventsOf(events, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED); len(closed) > 0 {
			fail := closed[0].GetWorkflowExecutionFailedEventAttributes().GetFailure()
			k.failure = fail.GetMessage()
			k.retryState = fail.GetActivityFailureInfo().GetRetryState()
			if app := dlAppFailure(fail); app != nil {
				k.causeType, k.causeMsg = app.GetApplicationFailureInfo().GetType(), app.GetMessage()
			}
		}
		for _, ev := range harness.EventsOf(events, enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED) {
			sched := ev.GetActivityTaskStartedEventAttributes().GetScheduledEventId()
			if sched >= 1 && int(sched) <= len(events) && events[sched-1].GetActivityTaskScheduledEventAttributes().GetActivityType().GetName() == "Process" {
				k.attempt = ev.GetActivityTaskStartedEventAttributes().GetAttempt()
			}
		}
		f.runs = append(f.runs, k)
		lines = append(lines, fmt.Sprintf("%s: input item %q; close failure %q, cause %s %q, retry state %s; last attempt %d",
			harness.ShortID(p.run.GetRunID()), k.input, k.failure, k.causeType, k.causeMsg, k.retryState, k.attempt))
	}
	harness.Decide(check, dlFailureKeptPredicate, f, fmt.Sprintf("history of each failed run (maximum attempts %d): %s (error: %v)",
		f.maxAttempts, strings.Join(lines, "; "), f.err), nil)
}

func (d *dlFixture) testTagged(t *testing.T) {
	check := d.env.Check(t, "CP-04.tagged")
	ctx := harness.Context(t, time.Minute)
	d.needPoison(t)
	g := dlTagging{
		query: fmt.Sprintf("%s = true AND TaskQueue = '%s'", DeadLetterKey.GetName(), d.tq),
		want:  d.poisonIDs(), reason: MalformedItemType, listed: map[string]string{},
	}
	runs, err := d.list(ctx, g.query, len(g.want))
	g.err = err
	for _, r := range runs {
		var reason string
		if p := r.GetSearchAttributes().GetIndexedFields()[DeadLetterReasonKey.GetName()]; p != nil {
			_ = converter.GetDefaultDataConverter().FromPayload(p, &reason)
		}
		g.listed[r.GetExecution().GetWorkflowId()] = reason
	}
	for _, p := range d.poison {
		events, err := harness.History(ctx, d.op, p.run.GetID(), p.run.GetRunID())
		if err != nil {
			t.Fatal(err)
		}
		g.upserts += len(harness.EventsOf(events, enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES))
	}
	var found []string
	for id, r := range g.listed {
		found = append(found, fmt.Sprintf("%s reason %q", id[strings.LastIndex(id, "-")+1:], r))
	}
	slices.Sort(found)
	harness.Decide(check, dlTaggedPredicate, g, fmt.Sprintf("custom search attributes %s (Bool) and %s (Keyword), set by the run with UpsertTypedSearchAttributes "+
		"(%d upsert events over %d poison runs); query %q listed %d run(s): %v, the poison runs exactly: %v (error: %v)",
		DeadLetterKey.GetName(), DeadLetterReasonKey.GetName(), g.upserts, len(g.want), g.query, len(g.listed), found,
		dlSameSet(slices.Collect(maps.Keys(g.listed)), g.want), g.err), nil)
}

func (d *dlFixture) testNotify(t *testing.T) {
	check := d.env.Check(t, "CP-04.notify")
	ctx := harness.Context(t, time.Minute)
	d.needPoison(t)
	n := dlNotify{poison: d.poisonIDs(), healthy: d.healthy, wfType: "PoisonWorkflow", reason: MalformedItemType}
	n.err = harness.WaitFor(ctx, 10*time.Second, 50*time.Millisecond, "a notice per poison run", func(context.Context) (bool, error) {
		return len(d.sink.notices()) >= len(n.poison), nil
	})
	n.notices = d.sink.notices()
	var bodies []string
	for _, x := range n.notices {
		bodies = append(bodies, fmt.Sprintf("{workflow %s, type %s, reason %s, error %q}", x.WorkflowID[strings.LastIndex(x.WorkflowID, "-")+1:], x.WorkflowType, x.Reason, x.Error))
	}
	harness.Decide(check, dlNotifyPredicate, n, fmt.Sprintf("webhook sink %s (httptest on 127.0.0.1), posted to by the NotifyDeadLetter activity: %d notice(s) for %d poison and %d healthy runs: %s (error: %v)",
		d.sink.url, len(n.notices), len(n.poison), len(n.healthy), strings.Join(bodies, "; "), n.err), nil)
}

// count is the number of runs query matches, waiting until it is want.
func (d *dlFixture) count(ctx context.Context, query string, want int64) (int64, error) {
	var n int64
	err := harness.WaitFor(ctx, 30*time.Second, 100*time.Millisecond, fmt.Sprintf("%d runs for %q", want, query), func(ctx context.Context) (bool, error) {
		resp, err := d.op.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: d.env.Options.Namespace, Query: query})
		n = resp.GetCount()
		return err == nil && n == want, err
	})
	return n, err
}

func (d *dlFixture) testRedrive(t *testing.T) {
	check := d.env.Check(t, "CP-04.redrive")
	ctx := harness.Context(t, 2*time.Minute)
	tq, acts := d.worker(t)
	var parked []dlRun
	for i := range 2 {
		parked = append(parked, d.start(ctx, t, tq, PoisonInput{
			Item: fmt.Sprintf("%s-redrive-%d", poisonPrefix, i), MaxAttempts: 3, Interval: 100 * time.Millisecond, Hold: 5 * time.Minute,
		}))
	}
	// The dead-letter queue: runs that tagged themselves and wait, parked,
	// for a re-drive.
	r := dlRedrive{query: fmt.Sprintf("%s = true AND ExecutionStatus = 'Running' AND TaskQueue = '%s'", DeadLetterKey.GetName(), tq)}
	r.before, r.err = d.count(ctx, r.query, int64(len(parked)))
	acts.fix()
	t0 := time.Now()
	for _, p := range parked {
		x := dlRedriven{id: p.run.GetID(), item: p.in.Item, oldRunID: p.run.GetRunID()}
		events, err := harness.History(ctx, d.op, x.id, x.oldRunID)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := d.op.ResetWorkflowExecution(ctx, &workflowservice.ResetWorkflowExecutionRequest{
			Namespace: d.env.Options.Namespace, WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: x.id, RunId: x.oldRunID},
			Reason: "re-drive after the parser fix", WorkflowTaskFinishEventId: cpFirstTaskCompleted(events), Identity: opIdentity,
		})
		x.err = err
		if err == nil {
			x.newRunID = resp.GetRunId()
			rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			x.runErr = d.wc.GetWorkflow(rctx, x.id, x.newRunID).Get(rctx, &x.result)
			cancel()
		}
		r.runs = append(r.runs, x)
	}
	redrive := time.Since(t0)
	r.after, _ = d.count(ctx, r.query, 0)
	ever, everErr := d.count(ctx, fmt.Sprintf("%s = true AND TaskQueue = '%s'", DeadLetterKey.GetName(), tq), int64(len(parked)))
	var lines []string
	for _, x := range r.runs {
		lines = append(lines, fmt.Sprintf("%s: reset %s -> %s (error: %v), result %q (error: %v)",
			x.item, harness.ShortID(x.oldRunID), harness.ShortID(x.newRunID), x.err, x.result, x.runErr))
	}
	harness.Decide(check, dlRedrivePredicate, r, fmt.Sprintf(
		"%d runs dead-lettered after 3 attempts, parked with the tag; dead-letter count %q: %d (error: %v). After the fix, reset to the first workflow task: %s; "+
			"re-drive took %d ms; count after: %d. Runs with the tag in any status (the reset closes the parked run as Terminated, tag kept): %d (error: %v)",
		len(parked), r.query, r.before, r.err, strings.Join(lines, "; "), redrive.Milliseconds(), r.after, ever, everErr),
		map[string]float64{"dead_letters_before": float64(r.before), "dead_letters_after": float64(r.after), "redrive_ms": float64(redrive.Milliseconds())})
}

func (d *dlFixture) testHeld(t *testing.T) {
	check := d.env.Check(t, "CP-04.poison-activity-held")
	ctx := harness.Context(t, time.Minute)
	tq, acts := d.worker(t)
	h := dlHeld{interval: 200 * time.Millisecond, threshold: 5}
	poison := d.start(ctx, t, tq, PoisonInput{Item: poisonPrefix + "-held", Interval: h.interval}) // unlimited attempts
	slow := d.start(ctx, t, tq, PoisonInput{Item: pendingPrefix + "-slow", Interval: h.interval})  // waits on an external system
	h.poison = poison.run.GetID()
	svc := d.op.WorkflowService()
	ns := d.env.Options.Namespace
	running := fmt.Sprintf("TaskQueue = '%s' AND ExecutionStatus = 'Running'", tq)
	if _, err := d.list(ctx, running, 2); err != nil {
		t.Fatal(err)
	}
	if err := harness.WaitFor(ctx, 30*time.Second, 50*time.Millisecond, "the slow run's activity started", func(ctx context.Context) (bool, error) {
		pa, err := cpPendingActivity(ctx, d.op, slow.run.GetID(), slow.run.GetRunID(), ProcessActivityID)
		return pa.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED, err
	}); err != nil {
		t.Fatal(err)
	}
	// The operator's scan: every running run's pending activities, by attempt.
	scanErr := harness.WaitFor(ctx, 30*time.Second, 100*time.Millisecond, "an activity at attempt "+fmt.Sprint(h.threshold), func(ctx context.Context) (bool, error) {
		runs, err := d.list(ctx, running, 0)
		if err != nil {
			return false, err
		}
		h.found = nil
		for _, r := range runs {
			desc, err := d.op.DescribeWorkflowExecution(ctx, r.GetExecution().GetWorkflowId(), r.GetExecution().GetRunId())
			if err != nil {
				return false, err
			}
			for _, pa := range desc.GetPendingActivities() {
				if pa.GetAttempt() >= h.threshold {
					h.found = append(h.found, r.GetExecution().GetWorkflowId())
					h.attemptAtFind = pa.GetAttempt()
				}
			}
		}
		return len(h.found) > 0, nil
	})
	if scanErr != nil {
		t.Fatal(scanErr)
	}
	starts := acts.startsOf(poison.in.Item)
	before := len(starts)
	var gaps []string
	for i := 1; i < len(starts); i++ {
		g := starts[i].Sub(starts[i-1])
		h.observedGap = max(h.observedGap, g)
		gaps = append(gaps, fmt.Sprint(g.Milliseconds()))
	}
	_, h.pauseErr = svc.PauseActivity(ctx, &workflowservice.PauseActivityRequest{
		Namespace: ns, Execution: &commonpb.WorkflowExecution{WorkflowId: h.poison}, Identity: opIdentity,
		Activity: &workflowservice.PauseActivityRequest_Id{Id: ProcessActivityID}, Reason: "poison item: hold until the parser is fixed",
	})
	_ = harness.WaitFor(ctx, 10*time.Second, 50*time.Millisecond, "the activity paused", func(ctx context.Context) (bool, error) {
		pa, err := cpPendingActivity(ctx, d.op, h.poison, "", ProcessActivityID)
		h.state = pa.GetState()
		h.pausedIdentity = pa.GetPauseInfo().GetManual().GetIdentity()
		return h.state == enumspb.PENDING_ACTIVITY_STATE_PAUSED, err
	})
	atPause := acts.attemptsOf(poison.in.Item)
	// Twice the longest gap seen between attempts, at least 10 intervals.
	h.window = max(10*h.interval, 2*h.observedGap).Round(time.Millisecond)
	// Watch for another attempt: the wait giving up is the activity held.
	_ = harness.WaitFor(ctx, h.window, 20*time.Millisecond, "another attempt", func(context.Context) (bool, error) {
		return acts.attemptsOf(poison.in.Item) > atPause, nil
	})
	h.grewDuring = acts.attemptsOf(poison.in.Item) - atPause
	harness.Decide(check, dlHeldPredicate, h, fmt.Sprintf(
		"Process with unlimited attempts every %s on a poison item, beside a run whose activity waits (attempt 1). Scan of running runs' pending activities for attempt >= %d found %v (attempt %d); "+
			"%d executions before PauseActivity (error: %v), gaps between them [%s] ms; %d when it showed %s (paused by %q); over the next %s (%d configured intervals, longest observed gap %d ms) %d more",
		h.interval, h.threshold, h.found, h.attemptAtFind, before, h.pauseErr, strings.Join(gaps, " "), atPause, h.state, h.pausedIdentity, h.window,
		int(h.window/h.interval), h.observedGap.Milliseconds(), h.grewDuring),
		map[string]float64{"attempts_at_pause": float64(atPause), "attempts_during_window": float64(h.grewDuring), "window_ms": float64(h.window.Milliseconds())})
}
