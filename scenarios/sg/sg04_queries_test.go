package sg

import (
	"context"
	"errors"
	"fmt"
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
	o := runningQuery{added: 42}
	var errBefore, errAdd, errAfter error
	o.before, errBefore = k.state(ctx, run.GetID())
	_, errAdd = k.add(ctx, run.GetID(), o.added)
	o.after, errAfter = k.state(ctx, run.GetID())
	o.err = errors.Join(errBefore, errAdd, errAfter)
	harness.Decide(check, queryRunningPredicate, o, fmt.Sprintf("query %q on the running workflow: value %d (error: %v); after an add(%d) "+
		"update (error: %v): value %d, finished=%v (error: %v)", stateQuery, o.before.Value, errBefore, o.added, errAdd, o.after.Value,
		o.after.Finished, errAfter), nil)
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
	o := closedQuery{result: result}
	d, err := k.c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	o.status = d.GetWorkflowExecutionInfo().GetStatus()
	o.answered, o.err = k.state(ctx, id)
	harness.Decide(check, queryClosedPredicate, o, fmt.Sprintf("query on workflow %s, status %s by describe, whose result was %+v: "+
		"answered %+v (error: %v)", id, o.status, o.result, o.answered, o.err), nil)
}

func (k counters) testUpdateResult(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-04.update-result")
	ctx := harness.Context(t, time.Minute)
	run := k.start(ctx, t)
	o := updateResults{adds: []int{10, 5}}
	var errs []error
	for _, n := range o.adds {
		r, err := k.add(ctx, run.GetID(), n)
		o.results, errs = append(o.results, r), append(errs, err)
	}
	var errQ error
	o.final, errQ = k.state(ctx, run.GetID())
	o.err = errors.Join(append(errs, errQ)...)
	harness.Decide(check, updateResultPredicate, o, fmt.Sprintf("updates add%v returned %v (errors: %v); query then read value %d after %d "+
		"update(s) (error: %v)", o.adds, o.results, errs, o.final.Value, o.final.Handled, errQ), nil)
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
	o := validation{validN: 5}
	var err error
	if _, o.eventsBefore, err = countEvents(ctx, k.c, run.GetID()); err != nil {
		t.Fatalf("history: %v", err)
	}
	_, o.rejected = k.add(ctx, run.GetID(), -5)
	events, totalAfter, err := countEvents(ctx, k.c, run.GetID())
	if err != nil {
		t.Fatalf("history: %v", err)
	}
	o.eventsAfter, o.updateEventsAfter = totalAfter, updateEvents(events)
	var errQ, errValid error
	o.state, errQ = k.state(ctx, run.GetID())
	// A valid update afterwards does leave its events: the count can move.
	o.validResult, errValid = k.add(ctx, run.GetID(), o.validN)
	eventsValid, totalValid, err := countEvents(ctx, k.c, run.GetID())
	if err != nil {
		t.Fatalf("history: %v", err)
	}
	o.validUpdateEvents, o.err = updateEvents(eventsValid), errors.Join(errQ, errValid)
	harness.Decide(check, validatorPredicate, o, fmt.Sprintf("add(-5) was rejected with %q; history had %d events before and %d after, %d of "+
		"them update events; state value %d, handler runs %d (error: %v). A valid add(%d) then returned %d (error: %v) and left %d update "+
		"events (%d events in all)",
		errText(o.rejected), o.eventsBefore, o.eventsAfter, o.updateEventsAfter, o.state.Value, o.state.Handled, errQ, o.validN, o.validResult,
		errValid, o.validUpdateEvents, totalValid),
		map[string]float64{"events_before": float64(o.eventsBefore), "events_after_rejection": float64(o.eventsAfter)})
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
	var o rejectCondition
	onClosed, errClosed := ask(closed)
	onRunning, errRunning := ask(running.GetID())
	var st CounterState
	if errRunning == nil && onRunning.QueryResult != nil {
		errRunning = onRunning.QueryResult.Get(&st)
	}
	o.closedErr, o.runningErr = errClosed, errRunning
	if errClosed == nil {
		o.closedStatus, o.closedAnswered = onClosed.QueryRejected.GetStatus(), onClosed.QueryResult != nil
	}
	if onRunning != nil {
		o.runningAnswered, o.runningRejected = onRunning.QueryResult != nil, onRunning.QueryRejected != nil
	}
	harness.Decide(check, rejectConditionPredicate, o, fmt.Sprintf("QueryRejectCondition NotOpen: on the completed workflow the query was "+
		"rejected with status %s (answered: %v, error: %v); on a running one it was answered: %v, with value %d (rejected: %v, error: %v)",
		o.closedStatus, o.closedAnswered, o.closedErr, o.runningAnswered, st.Value, o.runningRejected, o.runningErr), nil)
}

func testUpdateSurvivesRestart(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "SG-04.update-survives-restart")
	ctx := harness.Context(t, 2*time.Minute)
	c := env.Dial(t)
	tq := harness.TaskQueue(t)
	first := startChildWorker(t, env.Options.HostPort, tq)
	run := start(ctx, t, c, startOptions(tq, harness.UniqueID(t, "wf")), CounterWorkflow)
	o := updateRestart{want: 7}
	// The handler of this update waits for "release": accepted, not done.
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: run.GetID(), UpdateName: heldAddUpdate, Args: []any{o.want}, WaitForStage: client.WorkflowUpdateStageAccepted,
	})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if err := first.Kill(); err != nil {
		t.Fatalf("kill worker: %v", err)
	}
	second := startChildWorker(t, env.Options.HostPort, tq)
	if err = c.SignalWorkflow(ctx, run.GetID(), "", releaseSignal, nil); err == nil {
		err = h.Get(ctx, &o.result)
	}
	errFinish := finish(ctx, c, run.GetID(), &o.final)
	events, _, errHist := countEvents(ctx, c, run.GetID())
	o.accepted, o.completed = events[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED], events[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED]
	o.err = errors.Join(err, errFinish, errHist)
	harness.Decide(check, updateRestartPredicate, o, fmt.Sprintf("update %q(%d) accepted by worker pid %d, which was SIGKILLed before the "+
		"handler finished; worker pid %d took over and, after the release signal, the caller's handle returned %d (error: %v); the run ended "+
		"with value %d after %d handler run(s) (error: %v); history: %d accepted, %d completed (error: %v)",
		heldAddUpdate, o.want, first.PID(), second.PID(), o.result, err, o.final.Value, o.final.Handled, errFinish, o.accepted, o.completed, errHist), nil)
}

func (k counters) testUpdateIDDedup(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-04.update-id-dedup")
	ctx := harness.Context(t, time.Minute)
	run := k.start(ctx, t)
	o := updateDedup{want: 9, results: make([]int, 4), errs: make([]error, 4)}
	uo := client.UpdateWorkflowOptions{WorkflowID: run.GetID(), UpdateID: "add-once", UpdateName: addUpdate, Args: []any{o.want}}
	// Three calls with one update id at once, then one more after they returned.
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() { o.results[i], o.errs[i] = update(ctx, k.c, uo) })
	}
	wg.Wait()
	o.results[3], o.errs[3] = update(ctx, k.c, uo)
	st, errQ := k.state(ctx, run.GetID())
	events, _, errHist := countEvents(ctx, k.c, run.GetID())
	o.handled, o.value = st.Handled, st.Value
	o.completedEvents, o.err = events[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED], errors.Join(errQ, errHist)
	harness.Decide(check, updateDedupPredicate, o, fmt.Sprintf("update id %q, add(%d), sent 3× at once and once more after: results %v "+
		"(errors: %v); the handler ran %d time(s), value %d; history has %d UpdateCompleted (error: %v)",
		uo.UpdateID, o.want, o.results, o.errs, o.handled, o.value, o.completedEvents, o.err), nil)
}

func (k counters) testQueryLatency(t *testing.T) {
	check := harness.Get(t).Check(t, "SG-04.query-latency")
	ctx := harness.Context(t, 2*time.Minute)
	run := k.start(ctx, t)
	if _, err := k.state(ctx, run.GetID()); err != nil { // warm: the workflow is in the worker's cache
		t.Fatalf("query: %v", err)
	}
	lat := make([]float64, 0, queryLatencyMin)
	var o queryLatency
	for range queryLatencyMin {
		t0 := time.Now()
		if _, err := k.state(ctx, run.GetID()); err != nil {
			o.err = fmt.Errorf("query %d of %d: %w", len(lat)+1, queryLatencyMin, err)
			break
		}
		lat = append(lat, ms(time.Since(t0)))
	}
	sum := stats.Summarize(lat)
	p95Lo, p95Hi := stats.Bootstrap(lat, func(r []float64) float64 { return stats.Quantile(r, 0.95) })
	o.n, o.p50, o.p50Hi, o.p95 = len(lat), sum.P50, sum.P50Hi, sum.P95
	m := sum.Metrics("query_ms")
	m["query_ms_p95_lo"], m["query_ms_p95_hi"], m["query_ms_p50_bound"] = p95Lo, p95Hi, ms(queryP50Bound)
	harness.Decide(check, queryLatencyPredicate, o, fmt.Sprintf("%d sequential queries of a running workflow: p50 %.1fms (95%% interval "+
		"%.1f-%.1f), p95 %.1fms (95%% interval %.1f-%.1f), p99 %.1fms, max %.1fms (error: %v); bound: the median's interval below %s "+
		"(the published median of one signal call on Temporal Cloud, January 2026), %.1f× its upper end",
		o.n, sum.P50, sum.P50Lo, sum.P50Hi, sum.P95, p95Lo, p95Hi, sum.P99, sum.Max, o.err, queryP50Bound, ms(queryP50Bound)/max(sum.P50Hi, 1e-9)), m)
}
