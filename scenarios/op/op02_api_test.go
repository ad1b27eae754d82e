package op

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/proto"

	"github.com/durabench/durabench/harness"
)

// TestOP02 measures the management API on the shared server: every
// lifecycle operation through the client, each observed to take effect
// (describe, query, history, result, visibility), typed errors on misuse, the
// same operations over the server's HTTP API, and the negative control: the
// start-describe observation against a namespace that does not exist.
func TestOP02(t *testing.T) {
	t.Run("start_describe", testOP02StartDescribe)
	t.Run("control_wrong_namespace", testOP02ControlWrongNamespace)
	t.Run("signal_query_update", testOP02SignalQueryUpdate)
	t.Run("cancel_terminate", testOP02CancelTerminate)
	t.Run("list_count", testOP02ListCount)
	t.Run("reset", testOP02Reset)
	t.Run("schedule_crud", testOP02ScheduleCRUD)
	t.Run("typed_errors", testOP02TypedErrors)
	t.Run("http_api", testOP02HTTP)
}

// apiFixture is one subtest's client and task queue, with a worker running
// OP-02's workflows on it.
type apiFixture struct {
	c  client.Client
	ns string
	tq string
}

func newAPIFixture(t *testing.T) apiFixture {
	t.Helper()
	env := harness.Get(t)
	f := apiFixture{c: env.Dial(t), ns: env.Options.Namespace, tq: harness.TaskQueue(t)}
	w := worker.New(f.c, f.tq, worker.Options{})
	registerAPI(w)
	if err := w.Start(); err != nil {
		t.Fatalf("harness: worker: %v", err)
	}
	t.Cleanup(w.Stop)
	return f
}

// apiOptions are the start options of a run of OP-02, terminated at test end
// if left open.
func apiOptions(t *testing.T, c client.Client, id, tq string) client.StartWorkflowOptions {
	t.Cleanup(func() { _ = c.TerminateWorkflow(context.Background(), id, "", "test cleanup") })
	return client.StartWorkflowOptions{ID: id, TaskQueue: tq, WorkflowExecutionTimeout: 3 * time.Minute}
}

// startCounter starts an APICounter from count start and waits until its
// first workflow task completed (a query before that is refused as not ready).
func (f apiFixture) startCounter(ctx context.Context, t *testing.T, id string, start int) client.WorkflowRun {
	t.Helper()
	run, err := f.c.ExecuteWorkflow(ctx, apiOptions(t, f.c, id, f.tq), apiCounterType, start)
	if err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	f.waitTaskAfter(ctx, t, id, run.GetRunID(), 0)
	return run
}

// waitTaskAfter waits until run has a WorkflowTaskCompleted after event
// after, and returns its id.
func (f apiFixture) waitTaskAfter(ctx context.Context, t *testing.T, id, runID string, after int64) int64 {
	t.Helper()
	var done int64
	if err := harness.WaitFor(ctx, 30*time.Second, 20*time.Millisecond, fmt.Sprintf("a workflow task of %s completed after event %d", id, after), func(ctx context.Context) (bool, error) {
		events, err := harness.History(ctx, f.c, id, runID)
		if err != nil {
			return false, err
		}
		done = apiTaskCompletedAfter(events, after)
		return done > 0, nil
	}); err != nil {
		t.Fatal(err)
	}
	return done
}

// apiTaskCompletedAfter is the first WorkflowTaskCompleted after event after,
// 0 if none.
func apiTaskCompletedAfter(events []*historypb.HistoryEvent, after int64) int64 {
	for _, ev := range events {
		if ev.GetEventId() > after && ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
			return ev.GetEventId()
		}
	}
	return 0
}

// count queries a counter run's count.
func (f apiFixture) count(ctx context.Context, id, runID string) (int, error) {
	v, err := f.c.QueryWorkflow(ctx, id, runID, apiCountQuery)
	if err != nil {
		return 0, err
	}
	var n int
	return n, v.Get(&n)
}

// observeStart starts an APICounter through c in c's namespace (no worker is
// needed: the run waits for its first task) and describes it.
func observeStart(ctx context.Context, t *testing.T, c client.Client, id, tq string) apiStart {
	o := apiStart{id: id, wfType: apiCounterType, taskQueue: tq}
	opts := apiOptions(t, c, id, tq)
	o.before = time.Now()
	run, err := c.ExecuteWorkflow(ctx, opts, apiCounterType, 3)
	o.after = time.Now()
	if err != nil {
		o.err = fmt.Errorf("start: %w", err)
		return o
	}
	o.runID = run.GetRunID()
	d, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		o.err = fmt.Errorf("describe: %w", err)
		return o
	}
	info := d.GetWorkflowExecutionInfo()
	o.gotID, o.gotRunID = info.GetExecution().GetWorkflowId(), info.GetExecution().GetRunId()
	o.gotType, o.gotQueue, o.status = info.GetType().GetName(), info.GetTaskQueue(), info.GetStatus()
	o.startTime = info.GetStartTime().AsTime()
	return o
}

func (o apiStart) describe(ns string) string {
	if o.runID == "" {
		return fmt.Sprintf("start of %s (type %s, task queue %s) in namespace %q refused: %v", o.id, o.wfType, o.taskQueue, ns, o.err)
	}
	return fmt.Sprintf("started %s (type %s, task queue %s) in namespace %q: run %s; describe: id %s, run %s, status %s, type %q, task queue %q, "+
		"start time %s (start call from %s to %s, this host's clock); error: %v",
		o.id, o.wfType, o.taskQueue, ns, harness.ShortID(o.runID), o.gotID, harness.ShortID(o.gotRunID), o.status, o.gotType, o.gotQueue,
		apiClock(o.startTime), apiClock(o.before), apiClock(o.after), o.err)
}

func apiClock(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return t.UTC().Format("15:04:05.000000")
}

func testOP02StartDescribe(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "OP-02.start-describe")
	ctx := harness.Context(t, 30*time.Second)
	o := observeStart(ctx, t, env.Dial(t), harness.UniqueID(t, "api-start"), harness.TaskQueue(t))
	harness.Decide(check, apiStartPredicate, o, o.describe(env.Options.Namespace), nil)
}

// testOP02ControlWrongNamespace runs the start-describe observation and its
// predicate through a client of a namespace that does not exist: the start
// must be refused, with the server's NamespaceNotFound in the detail.
func testOP02ControlWrongNamespace(t *testing.T) {
	env := harness.Get(t)
	control := env.Control(t, "OP-02.control-wrong-namespace")
	ctx := harness.Context(t, 30*time.Second)
	b := make([]byte, 4)
	rand.Read(b)
	ns := "durabench-no-such-namespace-" + hex.EncodeToString(b)
	opts := env.Options // the environment's TLS and API key, another namespace
	opts.Namespace, opts.Logger = ns, harness.TestLogger(t)
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		t.Fatalf("harness: dial %s: %v", env.Options.HostPort, err)
	}
	t.Cleanup(c.Close)
	o := observeStart(ctx, t, c, harness.UniqueID(t, "api-start"), harness.TaskQueue(t))
	harness.Decide(control, apiStartPredicate, o, fmt.Sprintf("%s; error class %s", o.describe(ns), apiErrClass(o.err)), nil)
}

func testOP02SignalQueryUpdate(t *testing.T) {
	check := harness.Get(t).Check(t, "OP-02.signal-query-update")
	ctx := harness.Context(t, time.Minute)
	f := newAPIFixture(t)
	id := harness.UniqueID(t, "api-msg")
	o := apiMessaging{start: 3, added: 5, set: 42}
	run := f.startCounter(ctx, t, id, o.start)
	o.err = func() error {
		var err error
		if o.before, err = f.count(ctx, id, ""); err != nil {
			return fmt.Errorf("query: %w", err)
		}
		if err := f.c.SignalWorkflow(ctx, id, "", apiAddSignal, o.added); err != nil {
			return fmt.Errorf("signal: %w", err)
		}
		if o.afterSignal, err = f.count(ctx, id, ""); err != nil {
			return fmt.Errorf("query after signal: %w", err)
		}
		h, err := f.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID: id, UpdateName: apiSetUpdate, Args: []any{o.set}, WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		if err == nil {
			err = h.Get(ctx, &o.updatePrev)
		}
		if err != nil {
			return fmt.Errorf("update: %w", err)
		}
		if o.afterUpdate, err = f.count(ctx, id, ""); err != nil {
			return fmt.Errorf("query after update: %w", err)
		}
		if err := f.c.SignalWorkflow(ctx, id, "", apiFinishSignal, nil); err != nil {
			return fmt.Errorf("finish signal: %w", err)
		}
		if err := run.Get(ctx, &o.result); err != nil {
			return fmt.Errorf("result: %w", err)
		}
		events, err := harness.History(ctx, f.c, id, run.GetRunID())
		if err != nil {
			return err
		}
		n := harness.EventCounts(events)
		o.signaled, o.updated = n[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED], n[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED]
		return nil
	}()
	harness.Decide(check, apiMessagingPredicate, o, fmt.Sprintf(
		"counter started at %d: query read %d; after signal %s(%d) query read %d; update %s(%d) returned previous %d, then query read %d; "+
			"after signal %s the result was %d; history: %d signaled, %d update-completed events; error: %v",
		o.start, o.before, apiAddSignal, o.added, o.afterSignal, apiSetUpdate, o.set, o.updatePrev, o.afterUpdate,
		apiFinishSignal, o.result, o.signaled, o.updated, o.err), nil)
}

// apiResultClass names the error a run's GetResult returned by its SDK type.
func apiResultClass(err error) string {
	var (
		canceled   *temporal.CanceledError
		terminated *temporal.TerminatedError
		app        *temporal.ApplicationError
		timeout    *temporal.TimeoutError
	)
	switch {
	case err == nil:
		return "none"
	case errors.As(err, &canceled):
		return "CanceledError"
	case errors.As(err, &terminated):
		return "TerminatedError"
	case errors.As(err, &app):
		return "ApplicationError"
	case errors.As(err, &timeout):
		return "TimeoutError"
	default:
		return fmt.Sprintf("%T", err)
	}
}

func testOP02CancelTerminate(t *testing.T) {
	check := harness.Get(t).Check(t, "OP-02.cancel-terminate")
	ctx := harness.Context(t, time.Minute)
	f := newAPIFixture(t)
	idC, idT := harness.UniqueID(t, "api-cancel"), harness.UniqueID(t, "api-term")
	runC, runT := f.startCounter(ctx, t, idC, 0), f.startCounter(ctx, t, idT, 0)
	o := apiClose{reason: "durabench OP-02 terminate " + idT}
	var errC, errT error
	o.err = func() error {
		if err := f.c.CancelWorkflow(ctx, idC, ""); err != nil {
			return fmt.Errorf("cancel: %w", err)
		}
		errC = runC.Get(ctx, nil)
		o.canceledErr = apiResultClass(errC)
		d, err := f.c.DescribeWorkflowExecution(ctx, idC, runC.GetRunID())
		if err != nil {
			return fmt.Errorf("describe canceled: %w", err)
		}
		o.canceledStatus = d.GetWorkflowExecutionInfo().GetStatus()
		events, err := harness.History(ctx, f.c, idC, runC.GetRunID())
		if err != nil {
			return err
		}
		o.cancelRequested = len(harness.EventsOf(events, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED)) == 1

		if err := f.c.TerminateWorkflow(ctx, idT, "", o.reason); err != nil {
			return fmt.Errorf("terminate: %w", err)
		}
		errT = runT.Get(ctx, nil)
		o.terminatedErr = apiResultClass(errT)
		if d, err = f.c.DescribeWorkflowExecution(ctx, idT, runT.GetRunID()); err != nil {
			return fmt.Errorf("describe terminated: %w", err)
		}
		o.terminatedStatus = d.GetWorkflowExecutionInfo().GetStatus()
		if events, err = harness.History(ctx, f.c, idT, runT.GetRunID()); err != nil {
			return err
		}
		for _, ev := range harness.EventsOf(events, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED) {
			o.gotReason = ev.GetWorkflowExecutionTerminatedEventAttributes().GetReason()
		}
		return nil
	}()
	harness.Decide(check, apiClosePredicate, o, fmt.Sprintf(
		"cancel of %s: describe status %s, GetResult %s (%v), cancel request in history: %t; terminate of %s: describe status %s, GetResult %s (%v), "+
			"reason in history %q (sent %q); error: %v",
		idC, o.canceledStatus, o.canceledErr, errC, o.cancelRequested, idT, o.terminatedStatus, o.terminatedErr, errT, o.gotReason, o.reason, o.err), nil)
}

// apiVisRun is one run of the visibility set: its type, search attribute
// value, batch (before or after the time boundary) and how it ends.
type apiVisRun struct {
	name   string
	wfType string
	tag    string // "a" or "b"
	batch  int    // 1 or 2
	end    enumspb.WorkflowExecutionStatus
	id     string
	start  time.Time // from describe
}

// apiVisPageSize is smaller than every multi-run query's set, so that each
// is listed over several pages.
const apiVisPageSize = 2

func testOP02ListCount(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "OP-02.list-count")
	ctx := harness.Context(t, 2*time.Minute)
	f := newAPIFixture(t)
	if env.External {
		// The harness's dev server registers the attribute; an external
		// server may not have it, which says nothing of its API.
		sa, err := f.c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: f.ns})
		if err != nil {
			t.Fatalf("harness: search attributes of %s: %v", f.ns, err)
		}
		if _, ok := sa.GetCustomAttributes()[apiScenarioAttr]; !ok {
			check.NotMeasured(fmt.Sprintf("external server: namespace %s has no custom search attribute %s (Keyword) to query", f.ns, apiScenarioAttr))
			return
		}
	}
	running, completed, terminated := enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED
	runs := []*apiVisRun{
		{name: "r1", wfType: apiCounterType, tag: "a", batch: 1, end: completed},
		{name: "r2", wfType: apiCounterType, tag: "a", batch: 1, end: running},
		{name: "r3", wfType: apiEchoType, tag: "a", batch: 1, end: completed},
		{name: "r4", wfType: apiCounterType, tag: "b", batch: 1, end: terminated},
		{name: "r5", wfType: apiCounterType, tag: "a", batch: 2, end: running},
		{name: "r6", wfType: apiCounterType, tag: "b", batch: 2, end: running},
		{name: "r7", wfType: apiEchoType, tag: "b", batch: 2, end: completed},
		{name: "r8", wfType: apiCounterType, tag: "a", batch: 2, end: completed},
	}
	suffix := harness.UniqueID(t, "")
	tags := map[string]string{"a": "api-a" + suffix, "b": "api-b" + suffix}
	key := temporal.NewSearchAttributeKeyKeyword(apiScenarioAttr)
	// Each batch is started and brought to its end states before the next,
	// so that the two batches' start times are apart by whole round trips.
	for batch := 1; batch <= 2; batch++ {
		for _, r := range runs {
			if r.batch != batch {
				continue
			}
			r.id = harness.UniqueID(t, "api-vis-"+r.name)
			opts := apiOptions(t, f.c, r.id, f.tq)
			opts.TypedSearchAttributes = temporal.NewSearchAttributes(key.ValueSet(tags[r.tag]))
			var arg any = 0
			if r.wfType == apiEchoType {
				arg = r.name
			}
			run, err := f.c.ExecuteWorkflow(ctx, opts, r.wfType, arg)
			if err != nil {
				t.Fatalf("start %s: %v", r.id, err)
			}
			switch {
			case r.end == terminated:
				err = f.c.TerminateWorkflow(ctx, r.id, "", "durabench OP-02 visibility set")
			case r.end == completed && r.wfType == apiCounterType:
				err = f.c.SignalWorkflow(ctx, r.id, "", apiFinishSignal, nil)
			}
			if err == nil && r.end == completed {
				err = run.Get(ctx, nil)
			}
			if err != nil {
				t.Fatalf("harness: bringing %s to %s: %v", r.id, r.end, err)
			}
			d, err := f.c.DescribeWorkflowExecution(ctx, r.id, "")
			if err != nil {
				t.Fatalf("describe %s: %v", r.id, err)
			}
			if got := d.GetWorkflowExecutionInfo().GetStatus(); got != r.end {
				t.Fatalf("harness: %s is %s, want %s", r.id, got, r.end)
			}
			r.start = d.GetWorkflowExecutionInfo().GetStartTime().AsTime()
		}
	}
	var last1, first2 time.Time
	for _, r := range runs {
		if r.batch == 1 && r.start.After(last1) {
			last1 = r.start
		}
		if r.batch == 2 && (first2.IsZero() || r.start.Before(first2)) {
			first2 = r.start
		}
	}
	boundary := last1.Add(first2.Sub(last1) / 2)
	o := apiVisibility{pageSize: apiVisPageSize}
	scope := fmt.Sprintf("TaskQueue = '%s'", f.tq)

	// Visibility is eventually consistent: wait until the task queue's
	// listing shows every run with the status describe gave it.
	var seen map[string]enumspb.WorkflowExecutionStatus
	o.settled = harness.WaitFor(ctx, 30*time.Second, 200*time.Millisecond, "every run's visibility record at its final status", func(ctx context.Context) (bool, error) {
		seen = map[string]enumspb.WorkflowExecutionStatus{}
		var token []byte
		for {
			resp, err := f.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: f.ns, Query: scope, PageSize: 100, NextPageToken: token})
			if err != nil {
				return false, err
			}
			for _, e := range resp.GetExecutions() {
				seen[e.GetExecution().GetWorkflowId()] = e.GetStatus()
			}
			if token = resp.GetNextPageToken(); len(token) == 0 {
				break
			}
		}
		for _, r := range runs {
			if seen[r.id] != r.end {
				return false, nil
			}
		}
		return len(seen) == len(runs), nil
	})

	match := func(keep func(r *apiVisRun) bool) []string {
		var ids []string
		for _, r := range runs {
			if keep(r) {
				ids = append(ids, r.id)
			}
		}
		return ids
	}
	b := boundary.UTC().Format(time.RFC3339Nano)
	specs := []struct {
		name, query string
		want        []string
	}{
		{"type", fmt.Sprintf("WorkflowType = '%s'", apiCounterType), match(func(r *apiVisRun) bool { return r.wfType == apiCounterType })},
		{"status", "ExecutionStatus = 'Running'", match(func(r *apiVisRun) bool { return r.end == running })},
		{"search attribute", fmt.Sprintf("%s = '%s'", apiScenarioAttr, tags["a"]), match(func(r *apiVisRun) bool { return r.tag == "a" })},
		{"start time >=", fmt.Sprintf("StartTime >= '%s'", b), match(func(r *apiVisRun) bool { return !r.start.Before(boundary) })},
		{"start time <", fmt.Sprintf("StartTime < '%s'", b), match(func(r *apiVisRun) bool { return r.start.Before(boundary) })},
		{"all four", fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Completed' AND %s = '%s' AND StartTime < '%s'", apiCounterType, apiScenarioAttr, tags["a"], b),
			match(func(r *apiVisRun) bool {
				return r.wfType == apiCounterType && r.end == completed && r.tag == "a" && r.start.Before(boundary)
			})},
	}
	names := map[string]string{}
	for _, r := range runs {
		names[r.id] = r.name
	}
	for _, s := range specs {
		q := apiQuery{name: s.name, query: scope + " AND " + s.query, want: s.want}
		q.listed, q.pages, q.err = apiListPaged(ctx, f.c, f.ns, q.query, apiVisPageSize)
		if q.err == nil {
			var resp *workflowservice.CountWorkflowExecutionsResponse
			resp, q.err = f.c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: f.ns, Query: q.query})
			q.count = resp.GetCount()
		}
		o.queries = append(o.queries, q)
	}

	var parts []string
	for _, q := range o.queries {
		parts = append(parts, fmt.Sprintf("%s [%s]: want %v, listed %v over %d pages, count %d, error %v",
			q.name, strings.TrimPrefix(q.query, scope+" AND "), apiNames(q.want, names), apiNames(q.listed, names), q.pages, q.count, q.err))
	}
	var runDesc []string
	for _, r := range runs {
		runDesc = append(runDesc, fmt.Sprintf("%s %s/%s/batch %d/%s", r.name, r.wfType, r.tag, r.batch, strings.TrimPrefix(r.end.String(), "WORKFLOW_EXECUTION_STATUS_")))
	}
	metrics := map[string]float64{"queries": float64(len(o.queries))}
	harness.Decide(check, apiVisibilityPredicate, o, fmt.Sprintf(
		"%d runs on task queue %s (%s; search attribute %s values a=%s b=%s); start-time boundary %s, %s after batch 1's last start and before batch 2's first; "+
			"records settled: %v; page size %d; each query scoped by TaskQueue: %s",
		len(runs), f.tq, strings.Join(runDesc, ", "), apiScenarioAttr, tags["a"], tags["b"], b, boundary.Sub(last1).Round(time.Microsecond),
		o.settled, apiVisPageSize, strings.Join(parts, "; ")), metrics)
}

// apiListPaged lists query with pageSize, following every next-page token,
// and returns the ids listed in order and the pages requested.
func apiListPaged(ctx context.Context, c client.Client, ns, query string, pageSize int32) ([]string, int, error) {
	var (
		ids   []string
		token []byte
	)
	// A bound on pages: the sets here are under 10 runs, so a listing that
	// does not end within 50 pages is looping.
	for pages := 1; pages <= 50; pages++ {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: ns, Query: query, PageSize: pageSize, NextPageToken: token})
		if err != nil {
			return ids, pages, err
		}
		for _, e := range resp.GetExecutions() {
			ids = append(ids, e.GetExecution().GetWorkflowId())
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return ids, pages, nil
		}
	}
	return ids, 50, fmt.Errorf("still a next-page token after 50 pages of %d", pageSize)
}

// apiNames maps ids to the short names of the visibility set's runs.
func apiNames(ids []string, names map[string]string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		if n, ok := names[id]; ok {
			out[i] = n
		} else {
			out[i] = id
		}
	}
	return out
}

func testOP02Reset(t *testing.T) {
	check := harness.Get(t).Check(t, "OP-02.reset")
	ctx := harness.Context(t, time.Minute)
	f := newAPIFixture(t)
	id := harness.UniqueID(t, "api-reset")
	const first, second = 5, 7
	run := f.startCounter(ctx, t, id, 0)
	o := apiReset{oldRun: run.GetRunID(), countBefore: first}
	if err := f.c.SignalWorkflow(ctx, id, "", apiAddSignal, first); err != nil {
		t.Fatalf("signal: %v", err)
	}
	events, err := harness.History(ctx, f.c, id, o.oldRun)
	if err != nil {
		t.Fatal(err)
	}
	signaled := harness.EventsOf(events, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
	if len(signaled) != 1 {
		t.Fatalf("harness: %d signaled events, want 1", len(signaled))
	}
	// The reset point: the workflow task that processed the first signal.
	o.point = f.waitTaskAfter(ctx, t, id, o.oldRun, signaled[0].GetEventId())
	if err := f.c.SignalWorkflow(ctx, id, "", apiAddSignal, second); err != nil {
		t.Fatalf("signal: %v", err)
	}
	var oldEvents []*historypb.HistoryEvent
	o.err = func() error {
		var err error
		if o.countOld, err = f.count(ctx, id, o.oldRun); err != nil {
			return fmt.Errorf("query before reset: %w", err)
		}
		resp, err := f.c.ResetWorkflowExecution(ctx, &workflowservice.ResetWorkflowExecutionRequest{
			Namespace: f.ns, WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: id, RunId: o.oldRun},
			Reason: "durabench OP-02: reset to the task after the first signal", WorkflowTaskFinishEventId: o.point,
			RequestId: uuid.NewString(), ResetReapplyExcludeTypes: []enumspb.ResetReapplyExcludeType{enumspb.RESET_REAPPLY_EXCLUDE_TYPE_SIGNAL},
		})
		if err != nil {
			return fmt.Errorf("reset: %w", err)
		}
		o.newRun = resp.GetRunId()
		if oldEvents, err = harness.History(ctx, f.c, id, o.oldRun); err != nil {
			return err
		}
		f.waitTaskAfter(ctx, t, id, o.newRun, o.point)
		newEvents, err := harness.History(ctx, f.c, id, o.newRun)
		if err != nil {
			return err
		}
		o.prefixSame = len(newEvents) >= int(o.point) && len(oldEvents) >= int(o.point)
		for i := 0; o.prefixSame && i < int(o.point)-1; i++ {
			o.prefixSame = newEvents[i].GetEventId() == oldEvents[i].GetEventId() && newEvents[i].GetEventType() == oldEvents[i].GetEventType()
		}
		for _, ev := range newEvents {
			if ev.GetEventId() == o.point {
				o.resetEvent = ev.GetEventType()
				a := ev.GetWorkflowTaskFailedEventAttributes()
				o.resetCause, o.resetBase = a.GetCause(), a.GetBaseRunId()
			}
			if ev.GetEventId() > o.point && ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED {
				o.signalsAfterPoint++
			}
		}
		d, err := f.c.DescribeWorkflowExecution(ctx, id, o.oldRun)
		if err != nil {
			return fmt.Errorf("describe old run: %w", err)
		}
		o.oldStatus = d.GetWorkflowExecutionInfo().GetStatus()
		if o.countNew, err = f.count(ctx, id, o.newRun); err != nil {
			return fmt.Errorf("query new run: %w", err)
		}
		return nil
	}()
	harness.Decide(check, apiResetPredicate, o, fmt.Sprintf(
		"counter from 0, signals +%d then +%d (count %d before the reset); reset run %s to WorkflowTaskCompleted event %d (the task after the first signal), "+
			"signals after it excluded from reapply: new run %s; its events 1..%d same as the old run's: %t; event %d is %s, cause %s, base run %s; "+
			"old run now %s; new run's count %d, signals after the point in its history %d; old history %d events; error: %v",
		first, second, o.countOld, harness.ShortID(o.oldRun), o.point, harness.ShortID(o.newRun), o.point-1, o.prefixSame, o.point, o.resetEvent,
		o.resetCause, harness.ShortID(o.resetBase), o.oldStatus, o.countNew, o.signalsAfterPoint, len(oldEvents), o.err), nil)
}

func testOP02ScheduleCRUD(t *testing.T) {
	check := harness.Get(t).Check(t, "OP-02.schedule-crud")
	ctx := harness.Context(t, time.Minute)
	f := newAPIFixture(t)
	id := harness.UniqueID(t, "api-sched")
	o := apiSchedule{every: 24 * time.Hour, updatedEvery: 48 * time.Hour, actionType: apiEchoType, note: "durabench OP-02 pause"}
	// Phase the interval so that its next time is about 12 hours away: only
	// the trigger starts a run while the test looks.
	offset := time.Duration(time.Now().Add(12*time.Hour).UnixNano() % int64(o.every))
	var triggered client.ScheduleWorkflowExecution
	var next time.Time // the first next action time described
	o.err = func() error {
		h, err := f.c.ScheduleClient().Create(ctx, client.ScheduleOptions{
			ID:     id,
			Spec:   client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: o.every, Offset: offset}}},
			Action: &client.ScheduleWorkflowAction{ID: id + "-run", Workflow: apiEchoType, Args: []any{"scheduled"}, TaskQueue: f.tq},
		})
		if err != nil {
			return fmt.Errorf("create: %w", err)
		}
		t.Cleanup(func() { _ = h.Delete(context.Background()) })
		d, err := h.Describe(ctx)
		if err != nil {
			return fmt.Errorf("describe: %w", err)
		}
		o.gotEvery = apiEvery(d)
		if len(d.Info.NextActionTimes) > 0 {
			next = d.Info.NextActionTimes[0]
		}
		if a, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction); ok {
			o.gotActionType = fmt.Sprint(a.Workflow)
		}
		if err := h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			s := in.Description.Schedule
			s.Spec.Intervals = []client.ScheduleIntervalSpec{{Every: o.updatedEvery, Offset: offset}}
			return &client.ScheduleUpdate{Schedule: &s}, nil
		}}); err != nil {
			return fmt.Errorf("update: %w", err)
		}
		if d, err = h.Describe(ctx); err != nil {
			return fmt.Errorf("describe after update: %w", err)
		}
		o.gotUpdated = apiEvery(d)
		if err := h.Pause(ctx, client.SchedulePauseOptions{Note: o.note}); err != nil {
			return fmt.Errorf("pause: %w", err)
		}
		if d, err = h.Describe(ctx); err != nil {
			return fmt.Errorf("describe after pause: %w", err)
		}
		o.paused, o.gotNote = d.Schedule.State.Paused, d.Schedule.State.Note
		if err := h.Unpause(ctx, client.ScheduleUnpauseOptions{Note: "durabench OP-02 unpause"}); err != nil {
			return fmt.Errorf("unpause: %w", err)
		}
		if d, err = h.Describe(ctx); err != nil {
			return fmt.Errorf("describe after unpause: %w", err)
		}
		o.unpaused, o.actionsBefore = d.Schedule.State.Paused, d.Info.NumActions
		if err := h.Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
			return fmt.Errorf("trigger: %w", err)
		}
		if err := harness.WaitFor(ctx, 30*time.Second, 100*time.Millisecond, "the triggered action", func(ctx context.Context) (bool, error) {
			d, err := h.Describe(ctx)
			if err != nil {
				return false, err
			}
			o.actionsAfter = d.Info.NumActions
			for _, a := range d.Info.RecentActions {
				if a.StartWorkflowResult != nil {
					triggered = *a.StartWorkflowResult
				}
			}
			return o.actionsAfter > o.actionsBefore && triggered.WorkflowID != "", nil
		}); err != nil {
			return err
		}
		wd, err := f.c.DescribeWorkflowExecution(ctx, triggered.WorkflowID, triggered.FirstExecutionRunID)
		if err != nil {
			return fmt.Errorf("describe the triggered run: %w", err)
		}
		o.triggeredType = wd.GetWorkflowExecutionInfo().GetType().GetName()
		if err := h.Delete(ctx); err != nil {
			return fmt.Errorf("delete: %w", err)
		}
		// A deleted schedule's describe may answer until the deletion has
		// been processed; wait for the first error and classify it.
		var after error
		if err := harness.WaitFor(ctx, 10*time.Second, 100*time.Millisecond, "describe to fail after delete", func(ctx context.Context) (bool, error) {
			_, after = h.Describe(ctx)
			return after != nil, nil
		}); err != nil {
			o.afterDelete = "none"
			return nil
		}
		o.afterDelete = apiErrClass(after)
		return nil
	}()
	harness.Decide(check, apiSchedulePredicate, o, fmt.Sprintf(
		"schedule %s: created every %s (offset %s), described every %s, next action %s, action %q; updated to every %s, described %s; paused with note %q: paused %t, note %q; "+
			"unpaused: paused %t; trigger: actions %d -> %d, run %s of type %q; after delete describe: %s; error: %v",
		id, o.every, offset.Round(time.Second), o.gotEvery, apiNext(next), o.gotActionType, o.updatedEvery, o.gotUpdated, o.note, o.paused, o.gotNote,
		o.unpaused, o.actionsBefore, o.actionsAfter, triggered.WorkflowID, o.triggeredType, o.afterDelete, o.err), nil)
}

// apiNext is a next action time and how far away it is.
func apiNext(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return fmt.Sprintf("%s (in %s)", t.UTC().Format(time.RFC3339), time.Until(t).Round(time.Minute))
}

// apiEvery is the first interval of a described schedule, 0 if none.
func apiEvery(d *client.ScheduleDescription) time.Duration {
	if d.Schedule.Spec == nil || len(d.Schedule.Spec.Intervals) == 0 {
		return 0
	}
	return d.Schedule.Spec.Intervals[0].Every
}

func testOP02TypedErrors(t *testing.T) {
	check := harness.Get(t).Check(t, "OP-02.typed-errors")
	ctx := harness.Context(t, time.Minute)
	f := newAPIFixture(t)
	notFound, closed := []string{"NotFound"}, []string{"NotFound", "FailedPrecondition"}
	started, invalid := []string{"WorkflowExecutionAlreadyStarted"}, []string{"InvalidArgument"}
	var cases []apiMisuse
	var parts []string
	try := func(op string, accept []string, err error) {
		cases = append(cases, apiMisuse{op: op, accept: accept, got: apiErrClass(err)})
		parts = append(parts, fmt.Sprintf("%s: %s (%v)", op, apiErrClass(err), err))
	}

	_, err := f.c.DescribeWorkflowExecution(ctx, harness.UniqueID(t, "api-missing"), "")
	try("describe a missing workflow", notFound, err)

	closedID := harness.UniqueID(t, "api-closed")
	run, err := f.c.ExecuteWorkflow(ctx, apiOptions(t, f.c, closedID, f.tq), apiEchoType, "done")
	if err == nil {
		err = run.Get(ctx, nil)
	}
	if err != nil {
		t.Fatalf("harness: completing %s: %v", closedID, err)
	}
	try("signal a completed workflow", closed, f.c.SignalWorkflow(ctx, closedID, "", apiAddSignal, 1))
	try("terminate a completed workflow", closed, f.c.TerminateWorkflow(ctx, closedID, "", "durabench OP-02 misuse"))

	runningID := harness.UniqueID(t, "api-running")
	f.startCounter(ctx, t, runningID, 0)
	_, err = f.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: runningID, TaskQueue: f.tq, WorkflowExecutionErrorWhenAlreadyStarted: true}, apiCounterType, 0)
	try("start the id of a running workflow", started, err)

	_, err = f.c.WorkflowService().StartWorkflowExecution(ctx, &workflowservice.StartWorkflowExecutionRequest{
		Namespace: f.ns, WorkflowId: harness.UniqueID(t, "api-noqueue"), WorkflowType: &commonpb.WorkflowType{Name: apiCounterType},
		TaskQueue: &taskqueuepb.TaskQueue{Name: ""}, RequestId: uuid.NewString(),
	})
	try("start with an empty task queue (gRPC)", invalid, err)

	_, err = f.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: f.ns, Query: "NoSuchAttribute = 'x'"})
	try("list with an unknown search attribute", invalid, err)

	harness.Decide(check, apiErrorsPredicate, cases, strings.Join(parts, "; "), nil)
}

// apiHTTPPayload is v in the standard JSON payload encoding (metadata and
// data base64, as encoding/json writes []byte).
func apiHTTPPayload(v any) (map[string]any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return map[string]any{"metadata": map[string][]byte{"encoding": []byte("json/plain")}, "data": data}, nil
}

// apiHTTPClient calls the server's HTTP API (grpc-gateway) with payloads in
// the standard encoding: the "+no-payload-shorthand" media type selects the
// marshaler that reads and writes them, in the request and the response.
type apiHTTPClient struct {
	base     string // http://host:port/api/v1/namespaces/{ns}/workflows/
	statuses []int
}

const apiHTTPMedia = "application/json+no-payload-shorthand"

// call sends body (nil: none) to path under the workflow routes and decodes
// a 200 answer into resp.
func (h *apiHTTPClient) call(ctx context.Context, method, path string, body any, resp proto.Message) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", apiHTTPMedia)
	req.Header.Set("Accept", apiHTTPMedia)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer r.Body.Close()
	h.statuses = append(h.statuses, r.StatusCode)
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	if r.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, r.StatusCode, b)
	}
	if err := (temporalproto.CustomJSONUnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, resp); err != nil {
		return fmt.Errorf("%s %s: decoding %s: %w", method, path, b, err)
	}
	return nil
}

func testOP02HTTP(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "OP-02.http-api")
	addr := env.HTTPAddress()
	if addr == "" {
		check.NotMeasured("external server (" + harness.EnvAddress + "): the harness does not know its HTTP API address")
		return
	}
	ctx := harness.Context(t, time.Minute)
	f := newAPIFixture(t)
	id := harness.UniqueID(t, "api-http")
	h := &apiHTTPClient{base: fmt.Sprintf("http://%s/api/v1/namespaces/%s/workflows/", addr, url.PathEscape(f.ns))}
	wf := url.PathEscape(id)
	o := apiHTTP{start: 3, added: 4, reason: "durabench OP-02 HTTP terminate"}
	t.Cleanup(func() { _ = f.c.TerminateWorkflow(context.Background(), id, "", "test cleanup") })
	o.err = func() error {
		startIn, err := apiHTTPPayload(o.start)
		if err != nil {
			return err
		}
		var started workflowservice.StartWorkflowExecutionResponse
		if err := h.call(ctx, http.MethodPost, wf, map[string]any{
			"workflowType": map[string]string{"name": apiCounterType}, "taskQueue": map[string]string{"name": f.tq},
			"input": map[string]any{"payloads": []any{startIn}}, "requestId": uuid.NewString(), "identity": "durabench-op02-http",
			"workflowExecutionTimeout": "180s",
		}, &started); err != nil {
			return err
		}
		o.startRunID = started.GetRunId()
		d, err := f.c.DescribeWorkflowExecution(ctx, id, "")
		if err != nil {
			return fmt.Errorf("gRPC describe: %w", err)
		}
		o.grpcRunID = d.GetWorkflowExecutionInfo().GetExecution().GetRunId()
		var desc workflowservice.DescribeWorkflowExecutionResponse
		if err := h.call(ctx, http.MethodGet, wf, nil, &desc); err != nil {
			return err
		}
		info := desc.GetWorkflowExecutionInfo()
		o.descRunID, o.descType, o.descStatus = info.GetExecution().GetRunId(), info.GetType().GetName(), info.GetStatus()
		f.waitTaskAfter(ctx, t, id, o.startRunID, 0)

		addIn, err := apiHTTPPayload(o.added)
		if err != nil {
			return err
		}
		if err := h.call(ctx, http.MethodPost, wf+"/signal/"+url.PathEscape(apiAddSignal), map[string]any{
			"input": map[string]any{"payloads": []any{addIn}}, "identity": "durabench-op02-http", "requestId": uuid.NewString(),
		}, &workflowservice.SignalWorkflowExecutionResponse{}); err != nil {
			return err
		}
		if o.grpcCount, err = f.count(ctx, id, ""); err != nil {
			return fmt.Errorf("gRPC query: %w", err)
		}
		var q workflowservice.QueryWorkflowResponse
		if err := h.call(ctx, http.MethodPost, wf+"/query/"+url.PathEscape(apiCountQuery), map[string]any{}, &q); err != nil {
			return err
		}
		ps := q.GetQueryResult().GetPayloads()
		if len(ps) != 1 || string(ps[0].GetMetadata()["encoding"]) != "json/plain" {
			return fmt.Errorf("HTTP query result: %v", ps)
		}
		if err := json.Unmarshal(ps[0].GetData(), &o.httpCount); err != nil {
			return fmt.Errorf("HTTP query result %q: %w", ps[0].GetData(), err)
		}
		if err := h.call(ctx, http.MethodPost, wf+"/terminate", map[string]any{"reason": o.reason, "identity": "durabench-op02-http"},
			&workflowservice.TerminateWorkflowExecutionResponse{}); err != nil {
			return err
		}
		if d, err = f.c.DescribeWorkflowExecution(ctx, id, o.startRunID); err != nil {
			return fmt.Errorf("gRPC describe after terminate: %w", err)
		}
		o.terminatedStatus = d.GetWorkflowExecutionInfo().GetStatus()
		events, err := harness.History(ctx, f.c, id, o.startRunID)
		if err != nil {
			return err
		}
		for _, ev := range harness.EventsOf(events, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED) {
			o.gotReason = ev.GetWorkflowExecutionTerminatedEventAttributes().GetReason()
		}
		return nil
	}()
	o.statuses = slices.Clone(h.statuses)
	harness.Decide(check, apiHTTPPredicate, o, fmt.Sprintf(
		"HTTP API at %s (%s): start/describe/signal/query/terminate answered %v; start returned run %s, gRPC describe run %s; "+
			"HTTP describe: run %s, type %q, status %s; after HTTP signal %s(%d) on count %d the gRPC query read %d and the HTTP query %s read %d; "+
			"after HTTP terminate gRPC describe shows %s, reason in history %q (sent %q); error: %v",
		addr, apiHTTPMedia, o.statuses, harness.ShortID(o.startRunID), harness.ShortID(o.grpcRunID), harness.ShortID(o.descRunID), o.descType, o.descStatus,
		apiAddSignal, o.added, o.start, o.grpcCount, apiCountQuery, o.httpCount, o.terminatedStatus, o.gotReason, o.reason, o.err), nil)
}

// TestAPIErrClass: each typed service error is named by its class, wrapped
// or not, and an untyped error by its Go type.
func TestAPIErrClass(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, "none"},
		{serviceerror.NewNotFound("workflow execution already completed"), "NotFound"},
		{fmt.Errorf("start: %w", serviceerror.NewNamespaceNotFound("x")), "NamespaceNotFound"},
		{serviceerror.NewWorkflowExecutionAlreadyStarted("running", "", ""), "WorkflowExecutionAlreadyStarted"},
		{serviceerror.NewInvalidArgument("missing task queue name"), "InvalidArgument"},
		{serviceerror.NewFailedPrecondition("closed"), "FailedPrecondition"},
		{errors.New("plain"), "untyped *errors.errorString"},
	} {
		if got := apiErrClass(tc.err); got != tc.want {
			t.Errorf("apiErrClass(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
