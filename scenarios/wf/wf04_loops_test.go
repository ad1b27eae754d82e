package wf

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/harness/predicate"
)

// TestWF04 measures control flow: branching on results, a polling loop with
// durable timers, continue-as-new carrying state with bounded histories, a
// 10,000-iteration loop, signals across continue-as-new, the engine's
// continue-as-new suggestion and update handlers finishing first.
func TestWF04(t *testing.T) {
	t.Parallel()
	env := harness.Get(t)
	c := env.Dial(t)
	tq := harness.TaskQueue(t)
	newWorker(t, c, tq, worker.Options{}, func(r worker.Registry) {
		registerWorkflows(r, BranchWorkflow, PollWorkflow, CounterWorkflow, DrainWorkflow, SuggestWorkflow, HandlersWorkflow)
		r.RegisterActivity(&Loops{})
	})
	lt := loopTest{c: c, tq: tq}
	t.Run("branch_on_result", lt.testBranch)
	t.Run("poll_loop", lt.testPollLoop)
	t.Run("continue_as_new", func(t *testing.T) { lt.testCounter(t, continueAsNewPredicate, 60, 20) })
	t.Run("long_loop_bounded", func(t *testing.T) {
		heavy(t)
		lt.testCounter(t, longLoopPredicate, 10000, 1000)
	})
	t.Run("signals_across_continue_as_new", lt.testSignals)
	t.Run("continue_as_new_suggested", lt.testSuggested)
	t.Run("handlers_finish", lt.testHandlers)
}

type loopTest struct {
	c  client.Client
	tq string
}

func (lt loopTest) start(ctx context.Context, t *testing.T, wf any, args ...any) client.WorkflowRun {
	t.Helper()
	return start(ctx, t, lt.c, client.StartWorkflowOptions{TaskQueue: lt.tq}, wf, args...)
}

func (lt loopTest) testBranch(t *testing.T) {
	check := harness.Get(t).Check(t, "WF-04.branch-on-result")
	ctx := harness.Context(t, time.Minute)
	cases := []struct {
		amount int
		want   string
		ran    []string
	}{
		{500, "approved", []string{"Classify", "Approve"}},
		{5000, "sent to review", []string{"Classify", "Review"}},
	}
	var runs []branchRun
	var details []string
	for _, tc := range cases {
		run := lt.start(ctx, t, BranchWorkflow, tc.amount)
		var out string
		err := run.Get(ctx, &out)
		var ran []string
		for _, ev := range harness.EventsOf(mustHistory(ctx, t, lt.c, run.GetID(), ""), enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) {
			ran = append(ran, ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName())
		}
		runs = append(runs, branchRun{amount: tc.amount, err: err, out: out, want: tc.want, ran: ran, wantRan: tc.ran})
		details = append(details, fmt.Sprintf("amount %d: result %q (error: %v), activities scheduled %v", tc.amount, out, err, ran))
	}
	harness.Decide(check, branchPredicate, runs, strings.Join(details, "; "), nil)
}

func (lt loopTest) testPollLoop(t *testing.T) {
	check := harness.Get(t).Check(t, "WF-04.poll-loop")
	ctx := harness.Context(t, time.Minute)
	in := PollInput{ReadyAt: 3, Interval: 500 * time.Millisecond, Max: 10}
	run := lt.start(ctx, t, PollWorkflow, in)
	var calls int
	err := run.Get(ctx, &calls)
	events := mustHistory(ctx, t, lt.c, run.GetID(), "")
	// The loop's shape in history: call, timer, call, timer, ..., call.
	var shape []string
	var gaps []time.Duration
	var lastTimerStart time.Time
	for _, ev := range events {
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			shape = append(shape, "call")
		case enumspb.EVENT_TYPE_TIMER_STARTED:
			lastTimerStart = ev.GetEventTime().AsTime()
		case enumspb.EVENT_TYPE_TIMER_FIRED:
			shape = append(shape, "timer")
			gaps = append(gaps, ev.GetEventTime().AsTime().Sub(lastTimerStart).Round(time.Millisecond))
		}
	}
	o := pollRun{err: err, calls: calls, readyAt: in.ReadyAt, shape: shape, want: []string{"call", "timer", "call", "timer", "call"}, gaps: gaps, interval: in.Interval}
	harness.Decide(check, pollLoopPredicate, o, fmt.Sprintf("status became ready after %d calls (error: %v); history shape %v; timers fired %v after they started (interval %s)",
		calls, err, shape, gaps, in.Interval), nil)
}

// testCounter runs CounterWorkflow for total iterations, continuing as new
// every perRun, and checks the carried state and each run's history length.
func (lt loopTest) testCounter(t *testing.T, p *predicate.P[counterRun], total, perRun int) {
	check := harness.Get(t).Check(t, p.Check())
	ctx := harness.Context(t, 2*time.Minute)
	began := time.Now()
	run := lt.start(ctx, t, CounterWorkflow, CounterState{Total: total, PerRun: perRun})
	firstRun := run.GetRunID() // Get follows the chain and moves the run id on
	var st CounterState
	err := run.Get(ctx, &st)
	took := time.Since(began)
	chain, cerr := runChain(ctx, lt.c, run.GetID(), firstRun)
	if cerr != nil {
		t.Fatal(cerr)
	}
	var lengths []int
	var delays []time.Duration
	for i, r := range chain {
		lengths = append(lengths, r.events)
		if i > 0 {
			delays = append(delays, r.firstTaskDelay)
		}
	}
	slices.Sort(delays)
	// The bound: a run holds one SideEffect marker per iteration plus its
	// own events (started, a workflow task's three, the close: 5 observed);
	// 10 for them. A run that did more than 10 iterations beyond perRun,
	// or a loop that never continued as new, exceeds it.
	bound := perRun + 10
	longest := slices.Max(lengths)
	o := counterRun{err: err, total: total, perRun: perRun, iter: st.Iter, sum: st.Sum, stateRuns: st.Runs, lengths: lengths, bound: bound}
	harness.Decide(check, p, o, fmt.Sprintf("loop of %d iterations continuing as new every %d: finished in %.1fs with %d iterations, sum %d (want %d), %d runs counted by the state (error: %v); "+
		"the chain of runs has %d histories, the longest %d events (bound %d); each new run's first workflow task was scheduled a median %s after the run started",
		total, perRun, took.Seconds(), st.Iter, st.Sum, total*(total+1)/2, st.Runs, err, len(lengths), longest, bound, ms(delays[len(delays)/2])),
		map[string]float64{"runs": float64(len(lengths)), "max_history_events": float64(longest), "duration_s": took.Seconds(),
			"new_run_first_task_delay_ms": float64(delays[len(delays)/2].Milliseconds())})
}

// chainRun is one run of a chain of continued-as-new runs.
type chainRun struct {
	events         int           // history length
	firstTaskDelay time.Duration // from the run's start to its first workflow task being scheduled
}

// runChain follows a chain of continued-as-new runs from runID.
func runChain(ctx context.Context, c client.Client, id, runID string) ([]chainRun, error) {
	var out []chainRun
	for runID != "" {
		events, err := harness.History(ctx, c, id, runID)
		if err != nil {
			return nil, err
		}
		r := chainRun{events: len(events)}
		if sched := harness.EventsOf(events, enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED); len(sched) > 0 {
			r.firstTaskDelay = sched[0].GetEventTime().AsTime().Sub(events[0].GetEventTime().AsTime())
		}
		out = append(out, r)
		runID = events[len(events)-1].GetWorkflowExecutionContinuedAsNewEventAttributes().GetNewExecutionRunId()
	}
	return out, nil
}

func (lt loopTest) testSignals(t *testing.T) {
	check := harness.Get(t).Check(t, "WF-04.signals-across-continue-as-new")
	ctx := harness.Context(t, 2*time.Minute)
	const senders, each, perRun = 4, 25, 5
	run := lt.start(ctx, t, DrainWorkflow, DrainState{Expected: senders * each, PerRun: perRun})
	// Four senders at once, each a steady stream (one signal every 100ms, by
	// design, for 2.5s), so that signals keep arriving while runs close.
	if err := concurrently(senders, func(s int) error {
		for k := range each {
			if err := lt.c.SignalWorkflow(ctx, run.GetID(), "", itemSignal, s*each+k); err != nil {
				return fmt.Errorf("signal %d: %w", s*each+k, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var st DrainState
	err := run.Get(wctx, &st)
	if err != nil {
		// Lost signals leave the workflow waiting: say how many it has.
		if v, qerr := lt.c.QueryWorkflow(ctx, run.GetID(), "", "seen"); qerr == nil {
			var n int
			_ = v.Get(&n)
			err = fmt.Errorf("%w; the current run has seen %d of %d", err, n, senders*each)
		}
	}
	got := slices.Sorted(slices.Values(st.Seen))
	o := drainRun{err: err, sent: senders * each, got: got, runs: st.Runs, drained: st.Drained}
	harness.Decide(check, signalsAcrossPredicate, o, fmt.Sprintf("%d signals from %d concurrent senders to a workflow continuing as new every %d items: %d runs, %d received (each of 0..%d exactly once: %v), %d of them drained from the channel just before continue-as-new (error: %v)",
		senders*each, senders, perRun, st.Runs, len(st.Seen), senders*each-1, slices.Equal(got, upTo(senders*each)), st.Drained, err),
		map[string]float64{"runs": float64(st.Runs), "drained": float64(st.Drained), "received": float64(len(st.Seen))})
}

func (lt loopTest) testSuggested(t *testing.T) {
	check := harness.Get(t).Check(t, "WF-04.continue-as-new-suggested")
	heavy(t)
	ctx := harness.Context(t, 2*time.Minute)
	run := lt.start(ctx, t, SuggestWorkflow, SuggestState{})
	firstRun := run.GetRunID()
	var st SuggestState
	err := run.Get(ctx, &st)
	first := mustHistory(ctx, t, lt.c, run.GetID(), firstRun)
	last := first[len(first)-1].GetEventType()
	// The server's defaults (limit.historyCount.suggestContinueAsNew and
	// limit.historySize.suggestContinueAsNew, dynamic config constants in
	// go.temporal.io/server v1.32.0); one iteration adds 200 markers, an
	// activity's three events and a workflow task's three.
	const countLimit, sizeLimit, perIteration = 4096, 4 << 20, 206
	o := suggestRun{err: err, run: st.Run, last: last, length: st.Length, size: st.Size, reasons: st.Reasons,
		countLimit: countLimit, sizeLimit: sizeLimit, perIteration: perIteration}
	harness.Decide(check, suggestedPredicate, o, fmt.Sprintf("the loop had no iteration count of its own; the engine suggested continue-as-new after %d iterations, at history length %d and size %d bytes (reasons %v); "+
		"the server's thresholds are %d events or %d bytes, one iteration adds %d events, so the suggestion must come at [%d, %d) events or past %d bytes; the first run ended with %s after %d events (error: %v)",
		st.Iterations, st.Length, st.Size, st.Reasons, countLimit, sizeLimit, perIteration, countLimit, countLimit+perIteration, sizeLimit, last, len(first), err),
		map[string]float64{"history_length_at_suggestion": float64(st.Length), "history_bytes_at_suggestion": float64(st.Size)})
}

func (lt loopTest) testHandlers(t *testing.T) {
	check := harness.Get(t).Check(t, "WF-04.handlers-finish")
	ctx := harness.Context(t, time.Minute)
	run := lt.start(ctx, t, HandlersWorkflow, 0, false)
	firstRun := run.GetRunID()
	const n = 3
	handles := make([]client.WorkflowUpdateHandle, n)
	if err := concurrently(n, func(i int) error {
		var err error
		handles[i], err = lt.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID: run.GetID(), UpdateName: workUpdate, Args: []any{i + 1}, WaitForStage: client.WorkflowUpdateStageAccepted,
		})
		return err
	}); err != nil {
		t.Fatalf("update: %v", err)
	}
	// All three handlers are in flight (accepted, sleeping) when rollover arrives.
	if err := lt.c.SignalWorkflow(ctx, run.GetID(), firstRun, rolloverSignal, nil); err != nil {
		t.Fatalf("signal: %v", err)
	}
	results := make([]int, n)
	var uerrs []error
	for i, h := range handles {
		if err := h.Get(ctx, &results[i]); err != nil {
			uerrs = append(uerrs, err)
		}
	}
	var served int
	err := run.Get(ctx, &served)
	// In the first run, every update completed before the continue-as-new.
	var order []string
	for _, ev := range mustHistory(ctx, t, lt.c, run.GetID(), firstRun) {
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
			order = append(order, "update-completed")
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
			order = append(order, "continued-as-new")
		}
	}
	o := handlersRun{updateErrs: len(uerrs), results: results, err: err, served: served, order: order}
	harness.Decide(check, handlersFinishPredicate, o, fmt.Sprintf("%d updates in flight (each on a 300ms timer) when the rollover signal came: callers received %v (errors: %v); the next run reports %d served (error: %v); first run's history: %v",
		n, results, uerrs, served, err, order), nil)
}
