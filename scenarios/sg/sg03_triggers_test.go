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
	"slices"
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
	o := startOptions(tr.tq, id)
	o.WorkflowExecutionErrorWhenAlreadyStarted = false
	terminateAtEnd(t, tr.c, id)
	var runs []string
	var err error
	for seq := range 2 {
		var run client.WorkflowRun
		run, err = tr.c.SignalWithStartWorkflow(ctx, id, itemSignal, Item{Seq: seq, SentAt: time.Now()}, o, CollectWorkflow, CollectInput{Expect: 2})
		if err != nil {
			break
		}
		runs = append(runs, run.GetRunID())
	}
	var got []Received
	if err == nil {
		err = tr.c.GetWorkflow(ctx, id, "").Get(ctx, &got)
	}
	events, _, histErr := countEvents(ctx, tr.c, id)
	var nf *serviceerror.NotFound
	ok := errors.As(before, &nf) && err == nil && len(runs) == 2 && runs[0] == runs[1] && slices.Equal(seqs(got), []int{0, 1}) &&
		histErr == nil && events[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED] == 1 && events[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED] == 2
	check.Result(ok, fmt.Sprintf("before: describe said %v; signal-with-start ×2 returned runs %v (error: %v); the run received signals %v; "+
		"history: %d started, %d signaled (error: %v)",
		before, harness.ShortIDs(runs), err, seqs(got), events[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED],
		events[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED], histErr), nil)
}

func (tr triggers) testUpdateWithStart(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-03.update-with-start")
	ctx := harness.Context(t, time.Minute)
	id := harness.UniqueID(t, "wf")
	terminateAtEnd(t, tr.c, id)
	var runs []string
	var results []int
	var err error
	for _, n := range []int{5, 3} {
		o := startOptions(tr.tq, id)
		o.WorkflowIDConflictPolicy = enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING
		o.WorkflowExecutionErrorWhenAlreadyStarted = false
		var h client.WorkflowUpdateHandle
		h, err = tr.c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
			StartWorkflowOperation: tr.c.NewWithStartWorkflowOperation(o, CounterWorkflow),
			UpdateOptions: client.UpdateWorkflowOptions{
				UpdateName: addUpdate, Args: []any{n}, WaitForStage: client.WorkflowUpdateStageCompleted,
			},
		})
		var v int
		if err == nil {
			err = h.Get(ctx, &v)
		}
		if err != nil {
			break
		}
		runs, results = append(runs, h.RunID()), append(results, v)
	}
	var st CounterState
	if err == nil {
		err = finish(ctx, tr.c, id, &st)
	}
	ok := err == nil && len(runs) == 2 && runs[0] == runs[1] && slices.Equal(results, []int{5, 8}) && st.Value == 8 && st.Handled == 2
	check.Result(ok, fmt.Sprintf("update-with-start add(5) then add(3) with conflict policy UseExisting: runs %v, update results %v "+
		"(error: %v); the run ended with value %d after %d update(s)", harness.ShortIDs(runs), results, err, st.Value, st.Handled), nil)
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
	sent := Event{ID: "nightly-report", Source: "schedule", Body: "report for 2024-06-01"}
	// Paused and triggered by hand: the test does not wait for a calendar.
	h, err := tr.c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID: harness.UniqueID(t, "sched"), Paused: true,
		Action: &client.ScheduleWorkflowAction{
			ID: harness.UniqueID(t, "wf"), Workflow: EventWorkflow, Args: []any{sent}, TaskQueue: tr.tq,
			WorkflowExecutionTimeout: 10 * time.Minute,
			Memo:                     map[string]any{"team": "billing"},
			TypedSearchAttributes:    temporal.NewSearchAttributes(key.ValueSet("schedule")),
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
	if err := harness.WaitFor(ctx, time.Minute, 100*time.Millisecond, "the schedule's action", func(ctx context.Context) (bool, error) {
		d, err := h.Describe(ctx)
		if err != nil {
			return false, err
		}
		if len(d.Info.RecentActions) > 0 {
			started = d.Info.RecentActions[0].StartWorkflowResult
		}
		return started != nil, nil
	}); err != nil {
		check.Fail(fmt.Sprintf("a triggered schedule recorded no action: %v", err), nil)
		return
	}
	terminateAtEnd(t, tr.c, started.WorkflowID)
	var got Event
	err = tr.c.GetWorkflow(ctx, started.WorkflowID, started.FirstExecutionRunID).Get(ctx, &got)
	memo, attr, descErr := memoAndAttribute(ctx, tr.c, started.WorkflowID, "team", triggerAttribute)
	ok := err == nil && got == sent && descErr == nil && memo == "billing" && attr == "schedule"
	check.Result(ok, fmt.Sprintf("paused schedule triggered by hand started %s; the run returned %+v (error: %v); memo team=%q, "+
		"search attribute %s=%q (error: %v)", started.WorkflowID, got, err, memo, triggerAttribute, attr, descErr), nil)
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

	ok := true
	var lines []string
	for _, ev := range events {
		ps := byEvent[ev.ID]
		created, dups, errs := 0, 0, 0
		runIDs := map[string]bool{}
		for _, p := range ps {
			switch {
			case p.err != nil:
				errs++
			case p.status == http.StatusCreated && !p.reply.Duplicate:
				created++
			case p.reply.Duplicate:
				dups++
			}
			runIDs[p.reply.RunID] = true
		}
		var got Event
		runErr := tr.c.GetWorkflow(ctx, h.prefix+ev.ID, "").Get(ctx, &got)
		ok = ok && created == 1 && dups == len(ps)-1 && errs == 0 && len(runIDs) == 1 && runErr == nil && got == ev
		lines = append(lines, fmt.Sprintf("event %s posted %d×: %d started, %d answered as duplicates, %d errors, %d distinct run id(s); run returned %q (error: %v)",
			ev.ID, len(ps), created, dups, errs, len(runIDs), got.Body, runErr))
	}
	runs, countErr := tr.countRuns(ctx, fmt.Sprintf("WorkflowId STARTS_WITH '%s'", h.prefix), int64(len(events)))
	ok = ok && countErr == nil && runs == int64(len(events))
	check.Result(ok, fmt.Sprintf("httptest endpoint on 127.0.0.1 starting EventWorkflow with the event id as workflow id "+
		"(reuse policy RejectDuplicate): %s; visibility counts %d run(s) for the %d events (error: %v)",
		strings.Join(lines, "; "), runs, len(events), countErr), map[string]float64{"events": float64(len(events)), "runs": float64(runs)})
}

func (tr triggers) testStartDelay(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-03.start-delay")
	ctx := harness.Context(t, time.Minute)
	const delay = 2 * time.Second
	o := startOptions(tr.tq, harness.UniqueID(t, "wf"))
	o.StartDelay = delay
	run := start(ctx, t, tr.c, o, EventWorkflow, Event{ID: "delayed"})
	err := run.Get(ctx, nil)
	var startedAt, firstTask time.Time
	var backoff time.Duration
	it := tr.c.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for err == nil && it.HasNext() {
		ev, e := it.Next()
		if e != nil {
			err = e
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
	observed := firstTask.Sub(startedAt)
	// The timer that ends the delay fires on the server; a loaded machine
	// adds well under 3s before a poller takes the task.
	ok := err == nil && !firstTask.IsZero() && observed >= delay && observed < delay+3*time.Second
	check.Result(ok, fmt.Sprintf("StartDelay %s: history says first workflow task backoff %s, and the first WorkflowTaskStarted came %s after "+
		"WorkflowExecutionStarted (error: %v)", delay, backoff, observed.Round(time.Millisecond), err),
		map[string]float64{"delay_s": delay.Seconds(), "observed_s": observed.Seconds()})
}

func (tr triggers) testThroughput(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-03.trigger-throughput")
	ctx := harness.Context(t, 3*time.Minute)
	// A task queue no worker polls: the check is about starts, and 1,000
	// runs would keep the machine busy during the tests that follow.
	idle := triggers{c: tr.c, tq: harness.TaskQueue(t)}
	url, _ := idle.startWebhook(t, idle.tq)
	const n, repeats, senders = 1000, 100, 16
	// Events 0..n-1 once each, then the first `repeats` of them again.
	type result struct {
		status  int
		latency time.Duration
		err     error
	}
	results := make([]result, n+repeats)
	began := time.Now()
	err := parallel(ctx, n+repeats, senders, func(ctx context.Context, i int) error {
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
	created, dups, errs := 0, 0, 0
	var lat []float64
	var firstErr error
	for i, r := range results {
		switch {
		case r.err != nil:
			errs++
			firstErr = cmp.Or(firstErr, r.err)
		case r.status == http.StatusCreated:
			created++
		case r.status == http.StatusOK:
			dups++
		}
		if i < n {
			lat = append(lat, float64(r.latency)/float64(time.Millisecond))
		}
	}
	// Repeats race their originals only when a sender is far behind; every
	// event has exactly one 201 either way.
	runs, countErr := idle.countRuns(ctx, "", n)
	started, startedErr := idle.countRuns(ctx, "ExecutionStatus = 'Running'", n)
	sum := stats.Summarize(lat)
	m := sum.Metrics("start_latency_ms")
	m["events"], m["runs"], m["duplicates_answered"] = n, float64(runs), float64(dups)
	m["events_per_s"] = float64(n+repeats) / elapsed.Seconds()
	ok := created == n && dups == repeats && errs == 0 && countErr == nil && runs == n && startedErr == nil && started == n
	check.Result(ok, fmt.Sprintf("%d events plus %d repeats posted by %d concurrent senders in %.1fs: %d started (201), %d answered as "+
		"duplicates, %d errors (first: %v); visibility on the run's task queue: %d runs, %d running (errors: %v, %v); "+
		"POST-to-started latency p50 %.0fms, p95 %.0fms",
		n, repeats, senders, elapsed.Seconds(), created, dups, errs, firstErr, runs, started, countErr, startedErr, sum.P50, sum.P95), m)
}

// queueSource matches the name of an API method that would read events from
// a message queue.
var queueSource = regexp.MustCompile(`(?i)kafka|topic|consum|subscri|connector|pubsub|sqs`)

// testNativeQueue looks for an engine-provided message-queue trigger in the
// server's public API (WorkflowService and OperatorService, from the
// descriptors of the API module the client speaks).
func testNativeQueue(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-03.native-queue-trigger")
	var methods, matches []string
	for _, fd := range []protoreflect.FileDescriptor{
		workflowservice.File_temporal_api_workflowservice_v1_service_proto,
		operatorservice.File_temporal_api_operatorservice_v1_service_proto,
	} {
		for i := range fd.Services().Len() {
			svc := fd.Services().Get(i)
			for j := range svc.Methods().Len() {
				name := string(svc.Name()) + "." + string(svc.Methods().Get(j).Name())
				methods = append(methods, name)
				if queueSource.MatchString(name) {
					matches = append(matches, name)
				}
			}
		}
	}
	if len(methods) == 0 {
		t.Fatal("no API methods found in the service descriptors")
	}
	detail := fmt.Sprintf("%d WorkflowService and OperatorService methods; those naming a message-queue source (%s): %v",
		len(methods), queueSource, matches)
	if len(matches) == 0 {
		detail += ". No engine-provided Kafka-style connector: a queue event starts a workflow only through consumer code of " +
			"one's own that calls StartWorkflow or SignalWithStart, as the http-webhook check does"
	}
	check.Result(len(matches) > 0, detail,
		map[string]float64{"api_methods": float64(len(methods)), "queue_methods": float64(len(matches))})
}
