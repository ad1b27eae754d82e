package sg

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/harness/stats"
)

// TestSG03 measures how outside events start workflows: signal-with-start,
// update-with-start, a schedule, an HTTP webhook built on the client, a start
// delay, the webhook at volume, and whether a message queue connects natively.
func TestSG03(t *testing.T) {
	env := harness.Get(t)
	c := env.Dial(t)
	tq := harness.TaskQueue(t)
	// Enough pollers for every partition of the task queue: a partition
	// without one forwards its tasks slowly.
	startWorker(t, c, tq, worker.Options{MaxConcurrentWorkflowTaskPollers: 8})
	tr := triggers{c: c, tq: tq}

	t.Run("signal_with_start", tr.testSignalWithStart)
	t.Run("update_with_start", tr.testUpdateWithStart)
	t.Run("schedule_trigger", tr.testSchedule)
	t.Run("http_webhook", tr.testWebhook)
	t.Run("start_delay", tr.testStartDelay)
	t.Run("trigger_throughput", tr.testThroughput)
	t.Run("native_queue_trigger", testNativeQueue)
}

// triggers starts workflows on a task queue served by an in-process worker.
type triggers struct {
	c  client.Client
	tq string
}

func (tr triggers) testSignalWithStart(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-03.signal-with-start")
	ctx := harness.Context(t, time.Minute)
	id := harness.UniqueID(t, "wf")
	_, before := tr.c.DescribeWorkflowExecution(ctx, id, "")
	var nf *serviceerror.NotFound
	o := signalWithStart{absentBefore: errors.As(before, &nf)}
	so := startOptions(tr.tq, id)
	so.WorkflowExecutionErrorWhenAlreadyStarted = false
	terminateAtEnd(t, tr.c, id)
	for seq := range 2 {
		var run client.WorkflowRun
		run, o.err = tr.c.SignalWithStartWorkflow(ctx, id, itemSignal, Item{Seq: seq, SentAt: time.Now()}, so, CollectWorkflow, CollectInput{Expect: 2})
		if o.err != nil {
			break
		}
		o.runs = append(o.runs, run.GetRunID())
	}
	var got []Received
	if o.err == nil {
		o.err = tr.c.GetWorkflow(ctx, id, "").Get(ctx, &got)
	}
	events, _, histErr := countEvents(ctx, tr.c, id)
	o.received, o.err = seqs(got), errors.Join(o.err, histErr)
	o.started, o.signaled = events[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED], events[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED]
	harness.Decide(check, signalWithStartPredicate, o, fmt.Sprintf("before: describe said %v; signal-with-start ×2 returned runs %v; the run "+
		"received signals %v; history: %d started, %d signaled (error: %v)",
		before, harness.ShortIDs(o.runs), o.received, o.started, o.signaled, o.err), nil)
}

func (tr triggers) testUpdateWithStart(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-03.update-with-start")
	ctx := harness.Context(t, time.Minute)
	id := harness.UniqueID(t, "wf")
	terminateAtEnd(t, tr.c, id)
	var o updateWithStart
	for _, n := range []int{5, 3} {
		so := startOptions(tr.tq, id)
		so.WorkflowIDConflictPolicy = enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING
		so.WorkflowExecutionErrorWhenAlreadyStarted = false
		var h client.WorkflowUpdateHandle
		h, o.err = tr.c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
			StartWorkflowOperation: tr.c.NewWithStartWorkflowOperation(so, CounterWorkflow),
			UpdateOptions: client.UpdateWorkflowOptions{
				UpdateName: addUpdate, Args: []any{n}, WaitForStage: client.WorkflowUpdateStageCompleted,
			},
		})
		var v int
		if o.err == nil {
			o.err = h.Get(ctx, &v)
		}
		if o.err != nil {
			break
		}
		o.runs, o.results = append(o.runs, h.RunID()), append(o.results, v)
	}
	if o.err == nil {
		o.err = finish(ctx, tr.c, id, &o.final)
	}
	harness.Decide(check, updateWithStartPredicate, o, fmt.Sprintf("update-with-start add(5) then add(3) with conflict policy UseExisting: "+
		"runs %v, update results %v (error: %v); the run ended with value %d after %d update(s)",
		harness.ShortIDs(o.runs), o.results, o.err, o.final.Value, o.final.Handled), nil)
}

// finish ends a CounterWorkflow and reads its result.
func finish(ctx context.Context, c client.Client, id string, st *CounterState) error {
	if err := c.SignalWorkflow(ctx, id, "", finishSignal, nil); err != nil {
		return err
	}
	return c.GetWorkflow(ctx, id, "").Get(ctx, st)
}

// triggerAttribute is the custom search attribute a schedule sets.
const triggerAttribute = "DurabenchTrigger"

// ensureSearchAttribute registers a keyword search attribute in the
// namespace unless it exists.
func ensureSearchAttribute(ctx context.Context, c client.Client, namespace, name string) error {
	op := c.OperatorService()
	list, err := op.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	if _, ok := list.GetCustomAttributes()[name]; ok {
		return nil
	}
	_, err = op.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: namespace, SearchAttributes: map[string]enumspb.IndexedValueType{name: enumspb.INDEXED_VALUE_TYPE_KEYWORD},
	})
	var exists *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("add search attribute %s: %w", name, err)
	}
	return nil
}

func (tr triggers) testSchedule(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "SG-03.schedule-trigger")
	ctx := harness.Context(t, 2*time.Minute)
	// A managed cluster may forbid registering search attributes from here.
	if err := ensureSearchAttribute(ctx, tr.c, env.Options.Namespace, triggerAttribute); err != nil {
		check.NotMeasured("cannot register the custom search attribute the schedule sets: " + err.Error())
		return
	}
	key := temporal.NewSearchAttributeKeyKeyword(triggerAttribute)
	o := scheduled{sent: Event{ID: "nightly-report", Source: "schedule", Body: "report for 2024-06-01"}, wantMemo: "billing", wantAttr: "schedule"}
	// Paused and triggered by hand: the test does not wait for a calendar.
	h, err := tr.c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID: harness.UniqueID(t, "sched"), Paused: true,
		Action: &client.ScheduleWorkflowAction{
			ID: harness.UniqueID(t, "wf"), Workflow: EventWorkflow, Args: []any{o.sent}, TaskQueue: tr.tq,
			WorkflowExecutionTimeout: 10 * time.Minute,
			Memo:                     map[string]any{"team": o.wantMemo},
			TypedSearchAttributes:    temporal.NewSearchAttributes(key.ValueSet(o.wantAttr)),
		},
	})
	if err != nil {
		t.Fatalf("create schedule: %v", err)
	}
	t.Cleanup(func() { _ = h.Delete(context.Background()) })
	if err := h.Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
		t.Fatalf("trigger schedule: %v", err)
	}
	var started *client.ScheduleWorkflowExecution
	o.err = harness.WaitFor(ctx, time.Minute, 100*time.Millisecond, "the schedule's action", func(ctx context.Context) (bool, error) {
		d, err := h.Describe(ctx)
		if err != nil {
			return false, err
		}
		if len(d.Info.RecentActions) > 0 {
			started = d.Info.RecentActions[0].StartWorkflowResult
		}
		return started != nil, nil
	})
	o.actionSeen = started != nil
	wfID := "none"
	if o.actionSeen {
		terminateAtEnd(t, tr.c, started.WorkflowID)
		wfID = started.WorkflowID
		o.err = tr.c.GetWorkflow(ctx, started.WorkflowID, started.FirstExecutionRunID).Get(ctx, &o.got)
		var descErr error
		o.memo, o.attr, descErr = memoAndAttribute(ctx, tr.c, started.WorkflowID, "team", triggerAttribute)
		o.err = errors.Join(o.err, descErr)
	}
	harness.Decide(check, schedulePredicate, o, fmt.Sprintf("paused schedule triggered by hand; its recent actions name workflow %s; the run "+
		"returned %+v; memo team=%q, search attribute %s=%q (error: %v)", wfID, o.got, o.memo, triggerAttribute, o.attr, o.err), nil)
}

// memoAndAttribute reads one string memo field and one string search
// attribute of a workflow.
func memoAndAttribute(ctx context.Context, c client.Client, id, memoKey, attrKey string) (memo, attr string, err error) {
	d, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return "", "", err
	}
	info := d.GetWorkflowExecutionInfo()
	dc := converter.GetDefaultDataConverter()
	if p := info.GetMemo().GetFields()[memoKey]; p != nil {
		if err := dc.FromPayload(p, &memo); err != nil {
			return "", "", fmt.Errorf("memo %s: %w", memoKey, err)
		}
	}
	if p := info.GetSearchAttributes().GetIndexedFields()[attrKey]; p != nil {
		if err := dc.FromPayload(p, &attr); err != nil {
			return "", "", fmt.Errorf("search attribute %s: %w", attrKey, err)
		}
	}
	return memo, attr, nil
}

// webhook is an HTTP endpoint that starts one EventWorkflow per posted
// event, with the event id as workflow id: a repeated event is answered with
// the run it started before.
type webhook struct {
	c      client.Client
	tq     string
	prefix string // workflow id prefix, unique to the test
}

// webhookReply is the endpoint's JSON answer.
type webhookReply struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	Duplicate  bool   `json:"duplicate"`
}

func (h webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ev Event
	if err := json.NewDecoder(r.Body).Decode(&ev); err != nil || ev.ID == "" {
		http.Error(w, fmt.Sprintf("want a JSON event with an id (%v)", err), http.StatusBadRequest)
		return
	}
	o := startOptions(h.tq, h.prefix+ev.ID)
	o.WorkflowIDReusePolicy = enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE
	reply := webhookReply{WorkflowID: o.ID}
	status := http.StatusCreated
	run, err := h.c.ExecuteWorkflow(r.Context(), o, EventWorkflow, ev)
	var dup *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case err == nil:
		reply.RunID = run.GetRunID()
	case errors.As(err, &dup):
		reply.RunID, reply.Duplicate, status = dup.RunId, true, http.StatusOK
	default:
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(reply)
}

// post sends one event to the webhook.
func post(ctx context.Context, url string, ev Event) (int, webhookReply, error) {
	status, body, err := postJSON(ctx, url, ev)
	var r webhookReply
	if err == nil && (status == http.StatusCreated || status == http.StatusOK) {
		err = json.Unmarshal(body, &r)
	} else if err == nil {
		err = fmt.Errorf("HTTP %d: %s", status, body)
	}
	return status, r, err
}

// startWebhook serves a webhook that starts workflows on tq.
func (tr triggers) startWebhook(t *testing.T, tq string) (string, webhook) {
	h := webhook{c: tr.c, tq: tq, prefix: harness.UniqueID(t, "evt") + "-"}
	srv := httptest.NewServer(h) // listens on 127.0.0.1
	t.Cleanup(srv.Close)
	return srv.URL, h
}

// countRuns counts the runs visibility knows on the test's task queue that
// match extra (a visibility query clause or ""), once it counts at least want.
func (tr triggers) countRuns(ctx context.Context, extra string, want int64) (int64, error) {
	q := fmt.Sprintf("TaskQueue = '%s'", tr.tq)
	if extra != "" {
		q += " AND " + extra
	}
	var n int64
	err := harness.WaitFor(ctx, time.Minute, 200*time.Millisecond, "visibility to count "+q, func(ctx context.Context) (bool, error) {
		resp, err := tr.c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: q})
		if err != nil {
			return false, err
		}
		n = resp.GetCount()
		return n >= want, nil
	})
	return n, err
}

func (tr triggers) testWebhook(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-03.http-webhook")
	ctx := harness.Context(t, time.Minute)
	url, h := tr.startWebhook(t, tr.tq)
	events := []Event{
		{ID: "a", Source: "billing", Body: "invoice paid"},
		{ID: "b", Source: "crm", Body: "lead created"},
		{ID: "c", Source: "github", Body: "push"},
	}
	type posted struct {
		status int
		reply  webhookReply
		err    error
	}
	var mu sync.Mutex
	byEvent := map[string][]posted{}
	send := func(ev Event) {
		s, r, err := post(ctx, url, ev)
		mu.Lock()
		byEvent[ev.ID] = append(byEvent[ev.ID], posted{s, r, err})
		mu.Unlock()
	}
	for _, ev := range events {
		send(ev)
	}
	// Repeats: "a" after its run has completed, "c" twice at once.
	if err := tr.c.GetWorkflow(ctx, h.prefix+"a", "").Get(ctx, nil); err != nil {
		t.Fatalf("run of event a: %v", err)
	}
	send(events[0])
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { send(events[2]) })
	}
	wg.Wait()

	var o webhookRun
	var lines []string
	for _, ev := range events {
		e := webhookEvent{id: ev.ID, sent: ev}
		runIDs := map[string]bool{}
		for _, p := range byEvent[ev.ID] {
			e.posts++
			switch {
			case p.err != nil:
				e.errs++
			case p.status == http.StatusCreated && !p.reply.Duplicate:
				e.created++
			case p.reply.Duplicate:
				e.duplicates++
			}
			runIDs[p.reply.RunID] = true
		}
		e.runIDs = len(runIDs)
		e.runErr = tr.c.GetWorkflow(ctx, h.prefix+ev.ID, "").Get(ctx, &e.got)
		o.events = append(o.events, e)
		lines = append(lines, fmt.Sprintf("event %s posted %d×: %d started, %d answered as duplicates, %d errors, %d distinct run id(s); run returned %q (error: %v)",
			ev.ID, e.posts, e.created, e.duplicates, e.errs, e.runIDs, e.got.Body, e.runErr))
	}
	o.runs, o.countErr = tr.countRuns(ctx, fmt.Sprintf("WorkflowId STARTS_WITH '%s'", h.prefix), int64(len(events)))
	harness.Decide(check, webhookPredicate, o, fmt.Sprintf("httptest endpoint on 127.0.0.1 starting EventWorkflow with the event id as workflow id "+
		"(reuse policy RejectDuplicate): %s; visibility counts %d run(s) for the %d events (error: %v)",
		strings.Join(lines, "; "), o.runs, len(events), o.countErr), map[string]float64{"events": float64(len(events)), "runs": float64(o.runs)})
}

func (tr triggers) testStartDelay(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-03.start-delay")
	ctx := harness.Context(t, time.Minute)
	o := startDelay{delay: 2 * time.Second}
	so := startOptions(tr.tq, harness.UniqueID(t, "wf"))
	so.StartDelay = o.delay
	run := start(ctx, t, tr.c, so, EventWorkflow, Event{ID: "delayed"})
	o.err = run.Get(ctx, nil)
	var startedAt, firstTask time.Time
	var backoff time.Duration
	it := tr.c.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for o.err == nil && it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			o.err = err
			break
		}
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			startedAt = ev.GetEventTime().AsTime()
			backoff = ev.GetWorkflowExecutionStartedEventAttributes().GetFirstWorkflowTaskBackoff().AsDuration()
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
			if firstTask.IsZero() {
				firstTask = ev.GetEventTime().AsTime()
			}
		}
	}
	o.found, o.observed = !firstTask.IsZero(), firstTask.Sub(startedAt)
	harness.Decide(check, startDelayPredicate, o, fmt.Sprintf("StartDelay %s: history says first workflow task backoff %s, and the first "+
		"WorkflowTaskStarted came %s after WorkflowExecutionStarted, %s past the delay (bound: at or after it, less than %s after: "+
		"Temporal's documented timer precision) (error: %v)", o.delay, backoff, o.observed.Round(time.Millisecond),
		(o.observed-o.delay).Round(time.Millisecond), timerLateness, o.err),
		map[string]float64{"delay_s": o.delay.Seconds(), "observed_s": o.observed.Seconds(), "late_ms": ms(o.observed - o.delay)})
}

func (tr triggers) testThroughput(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-03.trigger-throughput")
	ctx := harness.Context(t, 3*time.Minute)
	// A task queue no worker polls: the check is about starts, and 1,000
	// runs would keep the machine busy during the tests that follow.
	idle := triggers{c: tr.c, tq: harness.TaskQueue(t)}
	url, _ := idle.startWebhook(t, idle.tq)
	const senders = 16
	o := throughput{events: 1000, repeats: 100}
	// Events 0..n-1 once each, then the first `repeats` of them again.
	type result struct {
		status  int
		latency time.Duration
		err     error
	}
	n := o.events
	results := make([]result, n+o.repeats)
	began := time.Now()
	err := parallel(ctx, n+o.repeats, senders, func(ctx context.Context, i int) error {
		ev := Event{ID: fmt.Sprintf("%04d", i%n), Source: "load", Body: fmt.Sprintf("event %d", i%n)}
		t0 := time.Now()
		s, _, err := post(ctx, url, ev)
		results[i] = result{s, time.Since(t0), err}
		return nil
	})
	elapsed := time.Since(began)
	if err != nil {
		t.Fatal(err)
	}
	var lat []float64
	var firstErr error
	for i, r := range results {
		switch {
		case r.err != nil:
			o.errs++
			firstErr = cmp.Or(firstErr, r.err)
		case r.status == http.StatusCreated:
			o.created++
		case r.status == http.StatusOK:
			o.duplicates++
		}
		if i < n {
			lat = append(lat, ms(r.latency))
		}
	}
	// Repeats race their originals only when a sender is far behind; every
	// event has exactly one 201 either way. No worker polls the queue, so
	// every run stays open: visibility counts each run the webhook started.
	o.runs, o.countErr = idle.countRuns(ctx, "", int64(n))
	o.latency = stats.Summarize(lat)
	m := o.latency.Metrics("start_latency_ms")
	m["events"], m["runs"], m["duplicates_answered"] = float64(n), float64(o.runs), float64(o.duplicates)
	m["events_per_s"] = float64(n+o.repeats) / elapsed.Seconds()
	harness.Decide(check, throughputPredicate, o, fmt.Sprintf("%d events plus %d repeats posted by %d concurrent senders in %.1fs: %d started (201), "+
		"%d answered as duplicates, %d errors (first: %v); visibility on the runs' task queue: %d runs (error: %v); "+
		"POST-to-started latency over %d events p50 %.0fms, p95 %.0fms",
		n, o.repeats, senders, elapsed.Seconds(), o.created, o.duplicates, o.errs, firstErr, o.runs, o.countErr, o.latency.N, o.latency.P50, o.latency.P95), m)
}

// queueSource matches the name of an API method that would read events from
// a message queue.
var queueSource = regexp.MustCompile(`(?i)kafka|topic|consum|subscri|connector|pubsub|sqs`)

// starter matches the API methods through which an outside caller starts a
// workflow, listed in the detail as what a queue consumer has to call.
var starter = regexp.MustCompile(`^WorkflowService\.(StartWorkflowExecution|SignalWithStartWorkflowExecution|ExecuteMultiOperation)$`)

// testNativeQueue looks for an engine-provided message-queue trigger in the
// server's public API (WorkflowService and OperatorService, from the
// descriptors of the API module the client speaks).
func testNativeQueue(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-03.native-queue-trigger")
	var o apiSurface
	var starters []string
	for _, fd := range []protoreflect.FileDescriptor{
		workflowservice.File_temporal_api_workflowservice_v1_service_proto,
		operatorservice.File_temporal_api_operatorservice_v1_service_proto,
	} {
		for i := range fd.Services().Len() {
			svc := fd.Services().Get(i)
			for j := range svc.Methods().Len() {
				name := string(svc.Name()) + "." + string(svc.Methods().Get(j).Name())
				o.methods = append(o.methods, name)
				if queueSource.MatchString(name) {
					o.queueMethods = append(o.queueMethods, name)
				}
				if starter.MatchString(name) {
					starters = append(starters, name)
				}
			}
		}
	}
	if len(o.methods) == 0 {
		t.Fatal("no API methods found in the service descriptors")
	}
	harness.Decide(check, queueTriggerPredicate, o, fmt.Sprintf("%d WorkflowService and OperatorService methods; those naming a message-queue "+
		"source (%s): %v; those that start a workflow, which a queue consumer of one's own must call: %v",
		len(o.methods), queueSource, o.queueMethods, starters),
		map[string]float64{"api_methods": float64(len(o.methods)), "queue_methods": float64(len(o.queueMethods))})
}
