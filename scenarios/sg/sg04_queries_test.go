package sg

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/harness/stats"
)

// TestSG04 measures queries and updates: reading state while running and
// after close, update results, validators, the query reject condition,
// updates that outlive a worker crash, update-id deduplication and query
// latency.
func TestSG04(t *testing.T) {
	env := harness.Get(t)
	c := env.Dial(t)
	tq := harness.TaskQueue(t)
	startWorker(t, c, tq, worker.Options{})
	k := counters{c: c, tq: tq}

	t.Run("query_running", k.testQueryRunning)
	t.Run("query_closed", k.testQueryClosed)
	t.Run("update_result", k.testUpdateResult)
	t.Run("update_validator", k.testUpdateValidator)
	t.Run("query_reject_condition", k.testQueryRejectCondition)
	t.Run("update_survives_restart", testUpdateSurvivesRestart)
	t.Run("update_id_dedup", k.testUpdateIDDedup)
	t.Run("query_latency", k.testQueryLatency)
}

// counters runs CounterWorkflows on a task queue served by an in-process worker.
type counters struct {
	c  client.Client
	tq string
}

func (k counters) start(ctx context.Context, t *testing.T) client.WorkflowRun {
	t.Helper()
	return start(ctx, t, k.c, startOptions(k.tq, harness.UniqueID(t, "wf")), CounterWorkflow)
}

// update runs an update to completion and returns its result.
func update(ctx context.Context, c client.Client, o client.UpdateWorkflowOptions) (int, error) {
	o.WaitForStage = client.WorkflowUpdateStageCompleted
	h, err := c.UpdateWorkflow(ctx, o)
	if err != nil {
		return 0, err
	}
	var v int
	err = h.Get(ctx, &v)
	return v, err
}

func (k counters) add(ctx context.Context, id string, n int) (int, error) {
	return update(ctx, k.c, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: addUpdate, Args: []any{n}})
}

func (k counters) state(ctx context.Context, id string) (CounterState, error) {
	var st CounterState
	err := query(ctx, k.c, id, stateQuery, &st)
	return st, err
}

func (k counters) testQueryRunning(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-04.query-running")
	ctx := harness.Context(t, time.Minute)
	run := k.start(ctx, t)
	before, errBefore := k.state(ctx, run.GetID())
	_, errAdd := k.add(ctx, run.GetID(), 42)
	after, errAfter := k.state(ctx, run.GetID())
	ok := errBefore == nil && errAdd == nil && errAfter == nil && before.Value == 0 && after.Value == 42 && !after.Finished
	check.Result(ok, fmt.Sprintf("query %q on the running workflow: value %d (error: %v); after an add(42) update (error: %v): value %d, "+
		"finished=%v (error: %v)", stateQuery, before.Value, errBefore, errAdd, after.Value, after.Finished, errAfter), nil)
}

// closed runs a CounterWorkflow to completion with value 42.
func (k counters) closed(ctx context.Context, t *testing.T) (string, CounterState) {
	t.Helper()
	run := k.start(ctx, t)
	var result CounterState
	if _, err := k.add(ctx, run.GetID(), 42); err != nil {
		t.Fatalf("add: %v", err)
	}
	if err := finish(ctx, k.c, run.GetID(), &result); err != nil {
		t.Fatalf("finish %s: %v", run.GetID(), err)
	}
	return run.GetID(), result
}

func (k counters) testQueryClosed(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-04.query-closed")
	ctx := harness.Context(t, time.Minute)
	id, result := k.closed(ctx, t)
	st, err := k.state(ctx, id)
	ok := err == nil && st == result && st.Finished && st.Value == 42
	check.Result(ok, fmt.Sprintf("query on the completed workflow (result %+v) answered %+v (error: %v)", result, st, err), nil)
}

func (k counters) testUpdateResult(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-04.update-result")
	ctx := harness.Context(t, time.Minute)
	run := k.start(ctx, t)
	r1, err1 := k.add(ctx, run.GetID(), 10)
	r2, err2 := k.add(ctx, run.GetID(), 5)
	st, errQ := k.state(ctx, run.GetID())
	ok := err1 == nil && err2 == nil && errQ == nil && r1 == 10 && r2 == 15 && st.Value == 15 && st.Handled == 2
	check.Result(ok, fmt.Sprintf("add(10) returned %d (error: %v), add(5) returned %d (error: %v); query then read value %d after %d update(s) (error: %v)",
		r1, err1, r2, err2, st.Value, st.Handled, errQ), nil)
}

// updateEvents counts the update events of a history.
func updateEvents(events map[enumspb.EventType]int) int {
	return events[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED] + events[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED] +
		events[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED]
}

func (k counters) testUpdateValidator(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-04.update-validator")
	ctx := harness.Context(t, time.Minute)
	run := k.start(ctx, t)
	if _, err := k.state(ctx, run.GetID()); err != nil { // the first workflow task has run
		t.Fatalf("query: %v", err)
	}
	_, totalBefore, err := countEvents(ctx, k.c, run.GetID())
	if err != nil {
		t.Fatalf("history: %v", err)
	}
	_, rejected := k.add(ctx, run.GetID(), -5)
	events, totalAfter, err := countEvents(ctx, k.c, run.GetID())
	if err != nil {
		t.Fatalf("history: %v", err)
	}
	st, errQ := k.state(ctx, run.GetID())
	// A valid update afterwards does leave its events: the count can move.
	v, errValid := k.add(ctx, run.GetID(), 5)
	eventsValid, totalValid, err := countEvents(ctx, k.c, run.GetID())
	if err != nil {
		t.Fatalf("history: %v", err)
	}
	ok := rejected != nil && strings.Contains(rejected.Error(), "n must be in 1..100") && totalAfter == totalBefore && updateEvents(events) == 0 &&
		errQ == nil && st.Value == 0 && st.Handled == 0 && errValid == nil && v == 5 && updateEvents(eventsValid) == 2
	check.Result(ok, fmt.Sprintf("add(-5) was rejected with %q; history had %d events before and %d after, %d of them update events; "+
		"state value %d, handler runs %d (error: %v). A valid add(5) then returned %d (error: %v) and left %d update events (%d events in all)",
		errText(rejected), totalBefore, totalAfter, updateEvents(events), st.Value, st.Handled, errQ, v, errValid, updateEvents(eventsValid), totalValid),
		map[string]float64{"events_before": float64(totalBefore), "events_after_rejection": float64(totalAfter)})
}

func errText(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

func (k counters) testQueryRejectCondition(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-04.query-reject-condition")
	ctx := harness.Context(t, time.Minute)
	closed, _ := k.closed(ctx, t)
	running := k.start(ctx, t)
	ask := func(id string) (*client.QueryWorkflowWithOptionsResponse, error) {
		return k.c.QueryWorkflowWithOptions(ctx, &client.QueryWorkflowWithOptionsRequest{
			WorkflowID: id, QueryType: stateQuery, QueryRejectCondition: enumspb.QUERY_REJECT_CONDITION_NOT_OPEN,
		})
	}
	onClosed, errClosed := ask(closed)
	onRunning, errRunning := ask(running.GetID())
	var st CounterState
	if errRunning == nil && onRunning.QueryResult != nil {
		errRunning = onRunning.QueryResult.Get(&st)
	}
	var rejectedStatus enumspb.WorkflowExecutionStatus
	if errClosed == nil {
		rejectedStatus = onClosed.QueryRejected.GetStatus()
	}
	ok := errClosed == nil && onClosed.QueryResult == nil && rejectedStatus == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED &&
		errRunning == nil && onRunning.QueryRejected == nil && onRunning.QueryResult != nil
	check.Result(ok, fmt.Sprintf("QueryRejectCondition NotOpen: on the completed workflow the query was rejected with status %s "+
		"(answered: %v, error: %v); on a running one it was answered with value %d (rejected: %v, error: %v)",
		rejectedStatus, onClosed != nil && onClosed.QueryResult != nil, errClosed,
		st.Value, onRunning != nil && onRunning.QueryRejected != nil, errRunning), nil)
}

func testUpdateSurvivesRestart(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "SG-04.update-survives-restart")
	ctx := harness.Context(t, 2*time.Minute)
	c := env.Dial(t)
	tq := harness.TaskQueue(t)
	first := startChildWorker(t, env.Options.HostPort, tq)
	run := start(ctx, t, c, startOptions(tq, harness.UniqueID(t, "wf")), CounterWorkflow)
	// The handler of this update waits for "release": accepted, not done.
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: run.GetID(), UpdateName: heldAddUpdate, Args: []any{7}, WaitForStage: client.WorkflowUpdateStageAccepted,
	})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if err := first.Kill(); err != nil {
		t.Fatalf("kill worker: %v", err)
	}
	second := startChildWorker(t, env.Options.HostPort, tq)
	var v int
	if err = c.SignalWorkflow(ctx, run.GetID(), "", releaseSignal, nil); err == nil {
		err = h.Get(ctx, &v)
	}
	var st CounterState
	errFinish := finish(ctx, c, run.GetID(), &st)
	events, _, errHist := countEvents(ctx, c, run.GetID())
	accepted, completed := events[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED], events[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED]
	ok := err == nil && v == 7 && errFinish == nil && st.Value == 7 && st.Handled == 1 && errHist == nil && accepted == 1 && completed == 1
	check.Result(ok, fmt.Sprintf("update %q accepted by worker pid %d, which was SIGKILLed before the handler finished; worker pid %d "+
		"took over and, after the release signal, the caller's handle returned %d (error: %v); the run ended with value %d after %d "+
		"handler run(s) (error: %v); history: %d accepted, %d completed (error: %v)",
		heldAddUpdate, first.PID(), second.PID(), v, err, st.Value, st.Handled, errFinish, accepted, completed, errHist), nil)
}

func (k counters) testUpdateIDDedup(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-04.update-id-dedup")
	ctx := harness.Context(t, time.Minute)
	run := k.start(ctx, t)
	o := client.UpdateWorkflowOptions{WorkflowID: run.GetID(), UpdateID: "add-once", UpdateName: addUpdate, Args: []any{9}}
	// Three calls with one update id at once, then one more after they returned.
	results := make([]int, 4)
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() { results[i], errs[i] = update(ctx, k.c, o) })
	}
	wg.Wait()
	results[3], errs[3] = update(ctx, k.c, o)
	st, errQ := k.state(ctx, run.GetID())
	events, _, errHist := countEvents(ctx, k.c, run.GetID())
	ok := errQ == nil && errHist == nil && st.Handled == 1 && st.Value == 9 && events[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED] == 1
	for i := range results {
		ok = ok && errs[i] == nil && results[i] == 9
	}
	check.Result(ok, fmt.Sprintf("update id %q sent 3× at once and once more after: results %v (errors: %v); the handler ran %d time(s), "+
		"value %d (error: %v); history has %d UpdateCompleted (error: %v)",
		o.UpdateID, results, errs, st.Handled, st.Value, errQ, events[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED], errHist), nil)
}

func (k counters) testQueryLatency(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-04.query-latency")
	ctx := harness.Context(t, 2*time.Minute)
	const n, limit = 1000, 50 * time.Millisecond
	run := k.start(ctx, t)
	if _, err := k.state(ctx, run.GetID()); err != nil { // warm: the workflow is in the worker's cache
		t.Fatalf("query: %v", err)
	}
	lat := make([]float64, 0, n)
	for range n {
		t0 := time.Now()
		if _, err := k.state(ctx, run.GetID()); err != nil {
			check.Fail(fmt.Sprintf("query %d of %d failed: %v", len(lat)+1, n, err), nil)
			return
		}
		lat = append(lat, float64(time.Since(t0))/float64(time.Millisecond))
	}
	sum := stats.Summarize(lat)
	check.Result(sum.P95 < float64(limit/time.Millisecond), fmt.Sprintf("%d sequential queries of a running workflow: p50 %.1fms, p95 %.1fms, "+
		"p99 %.1fms, max %.1fms; limit p95 < %s", n, sum.P50, sum.P95, sum.P99, sum.Max, limit), sum.Metrics("query_ms"))
}
