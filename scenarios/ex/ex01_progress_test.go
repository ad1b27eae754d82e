package ex

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/harness/ledger"
)

// TestEX01 measures the progress guarantee: a workflow finishes, with
// completed steps not executed again, through worker and server crashes.
func TestEX01(t *testing.T) {
	t.Run("workflow_completes", testWorkflowCompletes)
	t.Run("worker_sigkill", testWorkerSIGKILL)
	t.Run("server_sigkill", func(t *testing.T) { testServerSIGKILL(t, false) })
	t.Run("control_inmemory_restart", func(t *testing.T) { testServerSIGKILL(t, true) })
	t.Run("chaos", testChaos)
	t.Run("control_chaos_accounting", testControlChaosAccounting)
}

func stepsOptions(tq, id string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID: id, TaskQueue: tq,
		// Short, so that a task held by a killed worker is handed out again soon.
		WorkflowTaskTimeout:      2 * time.Second,
		WorkflowExecutionTimeout: 10 * time.Minute,
	}
}

func startSteps(ctx context.Context, t *testing.T, c client.Client, tq, id string, in StepsInput) client.WorkflowRun {
	t.Helper()
	run, err := c.ExecuteWorkflow(ctx, stepsOptions(tq, id), StepsWorkflow, in)
	if err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	return run
}

// completedSteps returns the steps whose ActivityTaskCompleted event the
// server recorded before at (zero: all). Steps run one at a time, so the
// n-th completion is step n.
func completedSteps(ctx context.Context, c client.Client, id string, at time.Time) (map[int]bool, error) {
	done := map[int]bool{}
	n := 0
	it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, err
		}
		if ev.GetEventType() == enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED {
			n++
			if at.IsZero() || ev.GetEventTime().AsTime().Before(at) {
				done[n] = true
			}
		}
	}
	return done, nil
}

// reexecuted lists the steps in done that the ledger shows ran more than once.
func reexecuted(starts map[ledger.StepKey]int, id string, done map[int]bool) []int {
	var out []int
	for step := range done {
		if starts[ledger.StepKey{Key: id, Step: step}] != 1 {
			out = append(out, step)
		}
	}
	slices.Sort(out)
	return out
}

func executionsPerStep(starts map[ledger.StepKey]int, id string, steps int) []int {
	out := make([]int, steps)
	for i := range out {
		out[i] = starts[ledger.StepKey{Key: id, Step: i + 1}]
	}
	return out
}

func readLedger(t *testing.T, path string) []ledger.Entry {
	t.Helper()
	entries, err := ledger.Read(path)
	if err != nil {
		t.Fatalf("ledger: %v", err)
	}
	return entries
}

// waitLedger waits until the ledger satisfies cond.
func waitLedger(ctx context.Context, path string, timeout time.Duration, what string, cond func([]ledger.Entry) bool) error {
	return harness.WaitFor(ctx, timeout, 20*time.Millisecond, what, func(context.Context) (bool, error) {
		entries, err := ledger.Read(path)
		return err == nil && cond(entries), err
	})
}

func hasEntry(entries []ledger.Entry, id string, step int, phase string) bool {
	return slices.ContainsFunc(entries, func(e ledger.Entry) bool {
		return e.Key == id && e.Step == step && e.Phase == phase
	})
}

func testWorkflowCompletes(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "EX-01.workflow-completes")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := env.Dial(t)
	tq := harness.TaskQueue(t)
	led := filepath.Join(env.Scratch(t), "ledger.jsonl")
	w := worker.New(c, tq, worker.Options{})
	registerSteps(w, &Steps{Ledger: led})
	if err := w.Start(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	defer w.Stop()

	const steps = 5
	id := harness.UniqueID(t, "wf")
	o := stepsRun{steps: steps}
	o.err = startSteps(ctx, t, c, tq, id, StepsInput{Steps: steps, StepDuration: 20 * time.Millisecond}).Get(ctx, &o.out)
	o.execs = executionsPerStep(ledger.Starts(readLedger(t, led)), id, steps)
	harness.Decide(check, completesPredicate, o, fmt.Sprintf("%d-step workflow returned %v (error: %v); ledger executions per step %v", steps, o.out, o.err, o.execs), nil)
}

func testWorkerSIGKILL(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "EX-01.worker-sigkill")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := env.Dial(t)
	tq := harness.TaskQueue(t)
	led := filepath.Join(env.Scratch(t), "ledger.jsonl")
	cfg := harness.RoleConfig{Address: env.Options.HostPort, Namespace: env.Options.Namespace, TaskQueue: tq, Args: map[string]string{"ledger": led}}
	first := env.StartWorker(t, stepsRole, cfg)

	const steps = 6
	id := harness.UniqueID(t, "wf")
	run := startSteps(ctx, t, c, tq, id, StepsInput{Steps: steps, StepDuration: 400 * time.Millisecond})
	// Kill while step 3 is running: steps 1 and 2 are done.
	if err := waitLedger(ctx, led, time.Minute, "step 3 to start", func(e []ledger.Entry) bool { return hasEntry(e, id, 3, ledger.Start) }); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	if err := first.Kill(); err != nil {
		t.Fatalf("kill worker: %v", err)
	}
	done, err := completedSteps(ctx, c, id, killedAt)
	if err != nil {
		t.Fatalf("history: %v", err)
	}
	if len(done) == 0 || len(done) == steps {
		t.Fatalf("harness: the kill did not land mid-run (%d of %d steps completed)", len(done), steps)
	}
	second := env.StartWorker(t, stepsRole, cfg)

	o := workerKill{stepsRun: stepsRun{steps: steps}, doneBeforeKill: done}
	o.err = run.Get(ctx, &o.out)
	entries := readLedger(t, led)
	starts := ledger.Starts(entries)
	o.again = reexecuted(starts, id, done)
	o.execs = executionsPerStep(starts, id, steps)
	o.byNewWorker = stepsDoneBy(entries, id, second.PID())
	recovery := firstProgressAfter(entries, id, killedAt, second.PID())
	harness.Decide(check, workerKillPredicate, o, fmt.Sprintf(
		"worker pid %d SIGKILLed with %d of %d steps completed; worker pid %d finished %d steps and the run: result %v (error: %v); "+
			"completed steps re-executed: %v; ledger executions per step %v; first step finished by the new worker %.2fs after the kill",
		first.PID(), len(done), steps, second.PID(), o.byNewWorker, o.out, o.err, o.again, o.execs, recovery.Seconds()),
		map[string]float64{"recovery_s": recovery.Seconds(), "completed_before_kill": float64(len(done))})
}

// stepsDoneBy counts the steps of id that process pid finished.
func stepsDoneBy(entries []ledger.Entry, id string, pid int) int {
	n := 0
	for _, e := range entries {
		if e.Key == id && e.PID == pid && e.Phase == ledger.Done {
			n++
		}
	}
	return n
}

// firstProgressAfter is how long after t0 process pid first finished a step of id.
func firstProgressAfter(entries []ledger.Entry, id string, t0 time.Time, pid int) time.Duration {
	for _, e := range entries {
		if e.Key == id && e.PID == pid && e.Phase == ledger.Done && e.At.After(t0) {
			return e.At.Sub(t0)
		}
	}
	return -1
}

// runServerOutage kills the server while a workflow's timer is pending, keeps
// it down past the timer's due time, restarts it on the same database (or, in
// memory, on nothing) and waits for the workflow.
func runServerOutage(t *testing.T, inMemory bool, checks ...*harness.Check) outage {
	env := harness.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv := env.StartServer(t, harness.ServerOptions{InMemory: inMemory})
	for _, c := range checks {
		c.OnServer(srv) // a server of its own, to kill: its persistence is what is judged
	}
	c := srv.Dial(t)
	tq := harness.TaskQueue(t)
	led := filepath.Join(env.Scratch(t), "ledger.jsonl")
	w := worker.New(c, tq, worker.Options{})
	registerSteps(w, &Steps{Ledger: led})
	if err := w.Start(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	t.Cleanup(w.Stop)

	const steps, timer = 4, 3 * time.Second
	id := harness.UniqueID(t, "wf")
	run := startSteps(ctx, t, c, tq, id, StepsInput{Steps: steps, StepDuration: 100 * time.Millisecond, TimerAfterStep: 2, Timer: timer})
	var o outage
	if err := harness.WaitFor(ctx, time.Minute, 50*time.Millisecond, "the timer to start", func(ctx context.Context) (bool, error) {
		started, err := eventTime(ctx, c, id, enumspb.EVENT_TYPE_TIMER_STARTED)
		o.timerStarted, o.timerDue = started, started.Add(timer)
		return !started.IsZero(), err
	}); err != nil {
		t.Fatal(err)
	}
	o.killedAt = time.Now()
	done, err := completedSteps(ctx, c, id, o.killedAt)
	if err != nil {
		t.Fatalf("history: %v", err)
	}
	o.doneBeforeKill = done
	if err := srv.Kill(); err != nil {
		t.Fatalf("kill server: %v", err)
	}
	// The outage lasts until a second past the timer's due time, by design.
	select {
	case <-time.After(time.Until(o.timerDue.Add(time.Second))):
	case <-ctx.Done():
		t.Fatal("deadline during the outage")
	}
	// The restart begins when the process is launched; it can fire timers
	// before the harness sees it healthy.
	o.restartedAt = time.Now()
	if err := srv.Restart(); err != nil {
		t.Fatalf("restart server: %v", err)
	}
	o.readyAt = time.Now()
	o.err = harness.AwaitResult(ctx, run, &o.out)
	if o.err == nil {
		o.timerFired, _ = eventTime(ctx, c, id, enumspb.EVENT_TYPE_TIMER_FIRED)
	}
	starts := ledger.Starts(readLedger(t, led))
	o.again = reexecuted(starts, id, done)
	o.execs = executionsPerStep(starts, id, steps)
	return o
}

// eventTime returns the time of the first event of type typ, zero if none.
func eventTime(ctx context.Context, c client.Client, id string, typ enumspb.EventType) (time.Time, error) {
	it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return time.Time{}, err
		}
		if ev.GetEventType() == typ {
			return ev.GetEventTime().AsTime(), nil
		}
	}
	return time.Time{}, nil
}

func testServerSIGKILL(t *testing.T, inMemory bool) {
	env := harness.Get(t)
	if inMemory {
		control := env.Control(t, "EX-01.control-inmemory-restart")
		if ok, why := env.CanKillServer(); !ok {
			control.NotMeasured(why)
			return
		}
		o := runServerOutage(t, true, control)
		harness.Decide(control, serverRestartPredicate, o, "in-memory server restarted mid-run: "+o.describe(), nil)
		return
	}
	progress := env.Check(t, "EX-01.server-sigkill")
	timerCheck := env.Check(t, "EX-01.timer-during-outage")
	if ok, why := env.CanKillServer(); !ok {
		progress.NotMeasured(why)
		timerCheck.NotMeasured(why)
		return
	}
	o := runServerOutage(t, false, progress, timerCheck)
	harness.Decide(progress, serverRestartPredicate, o, "server SIGKILLed mid-run and restarted on the same SQLite file: "+o.describe(),
		map[string]float64{"outage_s": o.restartedAt.Sub(o.killedAt).Seconds()})
	metrics := map[string]float64{"timer_left_at_kill_s": o.timerDue.Sub(o.killedAt).Seconds()}
	if !o.timerFired.IsZero() {
		metrics["timer_lateness_s"] = o.timerFired.Sub(o.timerDue).Seconds()
		metrics["timer_fired_after_restart_s"] = o.timerFired.Sub(o.restartedAt).Seconds()
	}
	harness.Decide(timerCheck, timerOutagePredicate, o, fmt.Sprintf(
		"server SIGKILLed %s after TimerStarted, with %s left on the timer; relaunched %s after the kill (%s after the due time), healthy %s later; "+
			"TimerFired recorded %s after the relaunch, %s after the due time (bound: under the %s the timer had left at the kill, "+
			"which a timer re-armed on restart would wait again)",
		o.killedAt.Sub(o.timerStarted).Round(time.Millisecond), o.timerDue.Sub(o.killedAt).Round(time.Millisecond),
		o.restartedAt.Sub(o.killedAt).Round(time.Millisecond), o.restartedAt.Sub(o.timerDue).Round(time.Millisecond),
		o.readyAt.Sub(o.restartedAt).Round(time.Millisecond), sinceOrNone(o.timerFired, o.restartedAt), sinceOrNone(o.timerFired, o.timerDue),
		o.timerDue.Sub(o.killedAt).Round(time.Millisecond)),
		metrics)
}

func sinceOrNone(t, from time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Sub(from).Round(time.Millisecond).String()
}

func (o outage) describe() string {
	return fmt.Sprintf("%d steps completed before the kill, outage %.2fs; result %v (error: %v); completed steps re-executed: %v; ledger executions per step %v",
		len(o.doneBeforeKill), o.restartedAt.Sub(o.killedAt).Seconds(), o.out, o.err, o.again, o.execs)
}
