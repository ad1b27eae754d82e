package ex

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/harness/stats"
)

// TestEX04 measures state persistence: workflow state is rebuilt from event
// history after worker restarts, with the sticky cache off, after a server
// crash and for long histories, and the history holds every command.
func TestEX04(t *testing.T) {
	t.Parallel()
	t.Run("crash_at_every_step", testCrashAtEveryStep)
	t.Run("no_sticky_cache", testNoStickyCache)
	t.Run("server_restart", testStateServerRestart)
	t.Run("long_history", testLongHistory)
}

// stateDriver advances a StateWorkflow step by step and reads its state.
type stateDriver struct {
	c  client.Client
	id string
}

// advance signals one step and waits until the state shows it.
func (d stateDriver) advance(ctx context.Context, step int) (State, error) {
	if err := d.c.SignalWorkflow(ctx, d.id, "", advanceSignal, nil); err != nil {
		return State{}, fmt.Errorf("signal %s: %w", d.id, err)
	}
	var st State
	err := harness.WaitFor(ctx, time.Minute, 20*time.Millisecond, fmt.Sprintf("step %d of %s", step, d.id), func(ctx context.Context) (bool, error) {
		err := queryState(ctx, d.c, d.id, &st)
		return err == nil && st.Step == step, err
	})
	return st, err
}

func (d stateDriver) state(ctx context.Context) (State, error) {
	var st State
	err := queryState(ctx, d.c, d.id, &st)
	return st, err
}

func testCrashAtEveryStep(t *testing.T) {
	env := harness.Get(t)
	restartCheck := env.Check(t, "EX-04.query-after-restart")
	everyCheck := env.Check(t, "EX-04.crash-at-every-step")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := env.Dial(t)
	const steps = 20

	// The reference run is never crashed.
	refTQ := harness.TaskQueue(t)
	startScenarioWorker(t, c, refTQ, nil, worker.Options{})
	refRun := startWorkflow(ctx, t, c, scenarioOptions(refTQ, harness.UniqueID(t, "ref")), StateWorkflow, steps)
	ref := stateDriver{c, refRun.GetID()}

	tq := harness.TaskQueue(t)
	w := env.StartWorker(t, scenarioRole, roleConfig(env, tq, nil))
	run := startWorkflow(ctx, t, c, scenarioOptions(tq, harness.UniqueID(t, "wf")), StateWorkflow, steps)
	crash := stateDriver{c, run.GetID()}
	var first restartedState
	o := everyStep{steps: steps}
	var recoveries []float64
	for step := 1; step <= steps; step++ {
		want, err := ref.advance(ctx, step)
		if err != nil {
			t.Fatal(err)
		}
		before, err := crash.advance(ctx, step)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Kill(); err != nil {
			t.Fatalf("kill worker: %v", err)
		}
		killed := time.Now()
		o.kills++
		w = env.StartWorker(t, scenarioRole, roleConfig(env, tq, nil))
		after, err := crash.state(ctx)
		recoveries = append(recoveries, time.Since(killed).Seconds())
		if step == 1 {
			first = restartedState{before: before, after: after, uncrashed: want, err: err}
		}
		if err != nil || !reflect.DeepEqual(after, want) || !reflect.DeepEqual(before, want) {
			o.mismatches = append(o.mismatches, fmt.Sprintf("step %d: before kill %+v, after restart %+v (error: %v), uncrashed %+v", step, before, after, err, want))
		}
	}
	o.err = errors.Join(run.Get(ctx, &o.result), refRun.Get(ctx, &o.uncrashed))
	harness.Decide(restartCheck, restartPredicate, first, fmt.Sprintf("state queried on the worker before its SIGKILL: %+v; queried on a new worker process "+
		"after restart: %+v (error: %v); the uncrashed run at the same step: %+v", first.before, first.after, first.err, first.uncrashed), nil)
	sum := stats.Summarize(recoveries)
	harness.Decide(everyCheck, everyStepPredicate, o,
		fmt.Sprintf("worker SIGKILLed after each of %d steps (%d kills) and a new worker process started each time; states differing from the uncrashed run: %d %v; "+
			"final result step %d, counter %d, uncrashed run's step %d, counter %d (error: %v); kill to answered query p50 %.2fs, max %.2fs (includes the sticky-queue fallback)",
			steps, o.kills, len(o.mismatches), o.mismatches, o.result.Step, o.result.Counter, o.uncrashed.Step, o.uncrashed.Counter, o.err, sum.P50, sum.Max),
		map[string]float64{"crash_points": float64(o.kills), "mismatches": float64(len(o.mismatches)), "recovery_p50_s": sum.P50})
}

// stickyTasks counts the workflow tasks of h scheduled on a sticky queue.
func stickyTasks(h *historypb.History) (sticky, total int) {
	for _, ev := range h.GetEvents() {
		if a := ev.GetWorkflowTaskScheduledEventAttributes(); a != nil {
			total++
			if a.GetTaskQueue().GetKind() == enumspb.TASK_QUEUE_KIND_STICKY {
				sticky++
			}
		}
	}
	return sticky, total
}

// commandsRun runs a CommandsWorkflow on tq, feeds it its input signals and
// returns its result, its state queried after completion and its history.
func commandsRun(ctx context.Context, t *testing.T, c client.Client, tq string, rounds int) (CommandsState, CommandsState, *historypb.History, error) {
	t.Helper()
	run := startWorkflow(ctx, t, c, scenarioOptions(tq, harness.UniqueID(t, "wf")), CommandsWorkflow, rounds)
	for i := 1; i <= rounds; i++ {
		if err := c.SignalWorkflow(ctx, run.GetID(), "", inputSignal, fmt.Sprintf("input-%d", i)); err != nil {
			t.Fatalf("signal: %v", err)
		}
	}
	var result, queried CommandsState
	err := run.Get(ctx, &result)
	if err == nil {
		err = queryState(ctx, c, run.GetID(), &queried)
	}
	return result, queried, mustHistory(ctx, t, c, run.GetID(), ""), err
}

func testNoStickyCache(t *testing.T) {
	env := harness.Get(t)
	cacheCheck := env.Check(t, "EX-04.no-sticky-cache")
	historyCheck := env.Check(t, "EX-04.history-complete")
	ctx := harness.Context(t, 2*time.Minute)
	c := env.Dial(t)
	const rounds = 3
	// The same inputs on a worker process with the cache off and on an
	// ordinary (cached) in-process worker.
	noCacheTQ := harness.TaskQueue(t)
	env.StartWorker(t, noCacheRole, roleConfig(env, noCacheTQ, nil))
	cachedTQ := harness.TaskQueue(t)
	startScenarioWorker(t, c, cachedTQ, nil, worker.Options{})

	o := noCache{rounds: rounds}
	var h, refH *historypb.History
	o.result, o.queried, h, o.err = commandsRun(ctx, t, c, noCacheTQ, rounds)
	o.refResult, _, refH, o.refErr = commandsRun(ctx, t, c, cachedTQ, rounds)
	o.sticky, o.tasks = stickyTasks(h)
	o.refSticky, o.refTasks = stickyTasks(refH)
	harness.Decide(cacheCheck, noCachePredicate, o,
		fmt.Sprintf("cache off: %d workflow tasks, %d on a sticky queue; result %+v, state queried after completion equal: %v (error: %v). "+
			"Cached worker: %d of %d tasks sticky; result %+v (error: %v); same result: %v",
			o.tasks, o.sticky, o.result.State, reflect.DeepEqual(o.queried, o.result), o.err, o.refSticky, o.refTasks, o.refResult.State, o.refErr,
			reflect.DeepEqual(o.result, o.refResult)),
		map[string]float64{"workflow_tasks": float64(o.tasks), "sticky_tasks": float64(o.sticky)})

	hc := historyCounts{issued: o.result.Issued, events: countEvents(h), markers: countMarkers(h)}
	if o.err != nil {
		hc.issued = nil // the run did not complete: what it issued is unknown
	}
	harness.Decide(historyCheck, historyPredicate, hc, fmt.Sprintf("%d rounds, %d events (error: %v): %s", rounds, len(h.GetEvents()), o.err, hc.describe()),
		map[string]float64{"events": float64(len(h.GetEvents()))})
}

func testStateServerRestart(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "EX-04.server-restart")
	if ok, why := env.CanKillServer(); !ok {
		check.NotMeasured(why)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv := env.StartServer(t, harness.ServerOptions{})
	check.OnServer(srv) // a server of its own, to kill
	c := srv.Dial(t)
	tq := harness.TaskQueue(t)
	cfg := harness.RoleConfig{Address: srv.Address(), Namespace: "default", TaskQueue: tq}
	w := env.StartWorker(t, scenarioRole, cfg)
	const steps = 4
	run := startWorkflow(ctx, t, c, scenarioOptions(tq, harness.UniqueID(t, "wf")), StateWorkflow, steps)
	d := stateDriver{c, run.GetID()}
	var before State
	for step := 1; step < steps; step++ {
		var err error
		if before, err = d.advance(ctx, step); err != nil {
			t.Fatal(err)
		}
	}
	// Worker and server both die; the state must come back from the database.
	if err := w.Kill(); err != nil {
		t.Fatalf("kill worker: %v", err)
	}
	if err := srv.Kill(); err != nil {
		t.Fatalf("kill server: %v", err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatalf("restart server: %v", err)
	}
	env.StartWorker(t, scenarioRole, cfg)
	var after State
	err := harness.WaitFor(ctx, time.Minute, 200*time.Millisecond, "a query after the restart", func(ctx context.Context) (bool, error) {
		st, err := d.state(ctx)
		after = st
		return err == nil, nil
	})
	var result State
	if err == nil {
		if _, err = d.advance(ctx, steps); err == nil {
			err = run.Get(ctx, &result)
		}
	}
	v, _ := Transform(context.Background(), steps)
	o := serverState{before: before, after: after, result: result, added: v, err: err}
	harness.Decide(check, serverStatePredicate, o, fmt.Sprintf("state before SIGKILL of worker and server: %+v; after the server restarted on the same SQLite file and a new worker started: %+v; "+
		"one more step (adding %d to the counter) then completed with %+v (error: %v)", before, after, v, result, err), nil)
}

func testLongHistory(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "EX-04.long-history-rebuild")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := env.Dial(t)
	tq := harness.TaskQueue(t)
	w := env.StartWorker(t, scenarioRole, roleConfig(env, tq, nil))
	in := LongInput{Batches: 10, PerBatch: 1010}
	run := startWorkflow(ctx, t, c, scenarioOptions(tq, harness.UniqueID(t, "wf")), LongHistoryWorkflow, in)
	want := LongState{Markers: in.Batches * in.PerBatch}
	for n := range want.Markers {
		want.Sum += n % 97
	}
	var cached LongState
	if err := harness.WaitFor(ctx, 2*time.Minute, 200*time.Millisecond, "all markers", func(ctx context.Context) (bool, error) {
		err := queryState(ctx, c, run.GetID(), &cached)
		return err == nil && cached.Markers == want.Markers, err
	}); err != nil {
		t.Fatal(err)
	}
	desc, err := c.DescribeWorkflowExecution(ctx, run.GetID(), "")
	if err != nil {
		t.Fatal(err)
	}
	events := desc.GetWorkflowExecutionInfo().GetHistoryLength()
	cachedLatency := timedQueries(ctx, t, c, run.GetID(), 3, &LongState{})

	// Evict: the worker dies and one with the cache off takes over, so every
	// query rebuilds the state from the whole history.
	if err := w.Kill(); err != nil {
		t.Fatalf("kill worker: %v", err)
	}
	env.StartWorker(t, noCacheRole, roleConfig(env, tq, nil))
	var rebuilt LongState
	if err := queryState(ctx, c, run.GetID(), &rebuilt); err != nil { // the first query also waits out the sticky fallback
		t.Fatal(err)
	}
	rebuild := timedQueries(ctx, t, c, run.GetID(), 3, &rebuilt)
	if err := c.SignalWorkflow(ctx, run.GetID(), "", finishSignal, nil); err != nil {
		t.Fatal(err)
	}
	var result LongState
	err = run.Get(ctx, &result)
	o := longHistory{events: events, want: want, cached: cached, rebuilt: rebuilt, result: result, err: err}
	harness.Decide(check, longHistoryPredicate, o, fmt.Sprintf("%d history events (the catalog asks for at least %d); state on the caching worker %+v (query p50 %.0fms); worker killed, a worker with the cache off "+
		"rebuilt %+v from the whole history (query p50 %.0fms over 3 queries, %.0fx the cached query); result %+v (error: %v); expected %+v",
		events, longHistoryMin, cached, cachedLatency*1000, rebuilt, rebuild*1000, rebuild/cachedLatency, result, err, want),
		map[string]float64{"history_events": float64(events), "rebuild_s": rebuild, "cached_query_s": cachedLatency})
}

// timedQueries runs n state queries and returns their median latency in
// seconds; out holds the last answer.
func timedQueries(ctx context.Context, t *testing.T, c client.Client, id string, n int, out any) float64 {
	t.Helper()
	var lat []float64
	for range n {
		start := time.Now()
		if err := queryState(ctx, c, id, out); err != nil {
			t.Fatal(err)
		}
		lat = append(lat, time.Since(start).Seconds())
	}
	slices.Sort(lat)
	return lat[len(lat)/2]
}
