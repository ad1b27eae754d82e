package rt

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/harness/predicate"
	"github.com/durabench/durabench/harness/stats"
)

// TestRT03 measures what stands in for a circuit breaker: retry limits and
// non-retryable errors, worker-side rate limits and slots, the task-queue
// rate limit, a breaker built in an entity workflow, and whether the engine
// itself stops calling a failing dependency.
func TestRT03(t *testing.T) {
	t.Run("stop_after_n_failures", testStopAfterNFailures)
	// The two rate limits take seconds each and run side by side.
	t.Run("rate_limits", func(t *testing.T) {
		t.Run("worker", func(t *testing.T) {
			t.Parallel()
			testRateLimit(t, "RT-03.worker-rate-limit", workerRatePredicate, worker.Options{WorkerActivitiesPerSecond: rateLimit}, 1)
		})
		t.Run("task_queue", func(t *testing.T) {
			t.Parallel()
			testRateLimit(t, "RT-03.queue-rate-limit", queueRatePredicate, worker.Options{TaskQueueActivitiesPerSecond: rateLimit}, 2)
		})
	})
	t.Run("concurrency_slots", testConcurrencySlots)
	t.Run("shared_breaker", testSharedBreaker)
	t.Run("native_breaker", testNativeBreaker)
}

// dependency is a fake downstream service: it counts calls, remembers when
// each began, tracks how many are in flight, and fails while down.
type dependency struct {
	mu       sync.Mutex
	down     bool
	calls    []time.Time
	callers  map[string]int // calls per caller tag
	inFlight int
	peak     int
	work     time.Duration // how long a call takes
}

func newDependency(down bool, work time.Duration) *dependency {
	return &dependency{down: down, work: work, callers: map[string]int{}}
}

// call is one call from caller.
func (d *dependency) call(ctx context.Context, caller string) error {
	d.mu.Lock()
	d.calls = append(d.calls, time.Now())
	d.callers[caller]++
	d.inFlight++
	d.peak = max(d.peak, d.inFlight)
	down := d.down
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.inFlight--
		d.mu.Unlock()
	}()
	if d.work > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d.work): // the call's own latency
		}
	}
	if down {
		return errors.New("dependency unavailable")
	}
	return nil
}

func (d *dependency) setDown(down bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.down = down
}

func (d *dependency) snapshot() (calls []time.Time, callers map[string]int, peak int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.calls), maps.Clone(d.callers), d.peak
}

// dependencyWorker starts a worker whose Scripted activity calls dep,
// tagged caller.
func dependencyWorker(t *testing.T, c client.Client, tq string, o worker.Options, dep *dependency, caller string) {
	t.Helper()
	startWorker(t, c, tq, "", o, func(r worker.Registry) {
		r.RegisterActivityWithOptions(func(ctx context.Context, _ Job) (string, error) {
			return "ok", dep.call(ctx, caller)
		}, activity.RegisterOptions{Name: ScriptedName})
	})
}

// testStopAfterNFailures: a failing dependency stops receiving calls after N
// consecutive failures, by maximum attempts, or by the activity turning its
// N-th failure into a non-retryable error under an unlimited policy.
func testStopAfterNFailures(t *testing.T) {
	check := harness.Get(t).Check(t, "RT-03.stop-after-n-failures")
	const n = 4
	ctx := harness.Context(t, time.Minute)
	c := harness.Get(t).Dial(t)
	cases := []struct {
		name   string
		policy temporal.RetryPolicy
		stop   bool // the activity gives up after its n-th failure
		state  enumspb.RetryState
	}{
		{"maximum attempts 4", temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 1, MaximumAttempts: n}, false,
			enumspb.RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED},
		{"unlimited attempts, non-retryable error on the 4th failure", temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 1}, true,
			enumspb.RETRY_STATE_NON_RETRYABLE_FAILURE},
	}
	obs := stopObs{n: n}
	var details []string
	for _, tc := range cases {
		dep := newDependency(true, 0)
		tq := harness.TaskQueue(t)
		startWorker(t, c, tq, "", worker.Options{}, func(r worker.Registry) {
			r.RegisterActivityWithOptions(func(ctx context.Context, _ Job) (string, error) {
				err := dep.call(ctx, "")
				if info := activity.GetInfo(ctx); err != nil && tc.stop && info.Attempt >= n {
					return "", temporal.NewNonRetryableApplicationError(fmt.Sprintf("%d consecutive failures: giving up", info.Attempt), "TooManyFailures", err)
				}
				return "ok", err
			}, activity.RegisterOptions{Name: ScriptedName})
		})
		// The schedule-to-close timeout only bounds a run that never stops.
		_, _, err := call(ctx, t, c, tq, CallInput{Activity: ScriptedName, StartToClose: 5 * time.Second, ScheduleToClose: 20 * time.Second, Retry: &tc.policy})
		calls, _, _ := dep.snapshot()
		obs.runs = append(obs.runs, stopRun{name: tc.name, calls: len(calls), failed: err != nil, state: retryState(err), wantState: tc.state})
		details = append(details, fmt.Sprintf("%s: the dependency saw %d calls, then the workflow got: %v (retry state %s)", tc.name, len(calls), err, retryState(err)))
	}
	harness.Decide(check, stopAfterNPredicate, obs, fmt.Sprintf("dependency always failing, N=%d: %v", n, details), nil)
}

// testRateLimit starts workers on one task queue with options o and fans
// out rateCalls calls at once to a dependency, then judges the calls it saw
// begin per second (stats.DrainRate) with rateHeld.
func testRateLimit(t *testing.T, id string, pred *predicate.P[rateRun], o worker.Options, workers int) {
	check := harness.Get(t).Check(t, id)
	ctx := harness.Context(t, 2*time.Minute)
	c := harness.Get(t).Dial(t)
	tq := harness.TaskQueue(t)
	dep := newDependency(false, 0)
	for i := range workers {
		dependencyWorker(t, c, tq, o, dep, fmt.Sprintf("worker-%d", i+1))
	}
	limit := max(o.WorkerActivitiesPerSecond, o.TaskQueueActivitiesPerSecond)
	run := start(ctx, t, c, client.StartWorkflowOptions{TaskQueue: tq}, FanOutWorkflow,
		CallInput{Activity: ScriptedName, StartToClose: time.Minute}, rateCalls)
	var done int
	err := run.Get(ctx, &done)
	calls, callers, _ := dep.snapshot()
	r := rateRun{limit: limit, n: rateCalls, done: done, err: err, Drain: stats.DrainRate(calls)}
	up, down := limit*(1+rateLimitTolerance), limit*(1-rateLimitTolerance)
	// The server divides a queue's limit evenly among the task queue's read
	// partitions (matching ratelimit_manager: rate / numReadPartitions) and
	// tasks land on partitions at random, so the queue runs below its limit
	// once one partition is empty: the tail, reported, not judged. On a
	// server with one read partition 33 calls at 4/s arrived at 4.00/s to the end.
	tail := ""
	if o.TaskQueueActivitiesPerSecond > 0 {
		tail = " (the server divides a per-queue limit among the queue's read partitions, matching.numTaskqueueReadPartitions, default 4: once one is empty its share goes unused)"
	}
	harness.Decide(check, pred, r, fmt.Sprintf("%d calls fanned out at once to %d worker(s) with %s: %d completed, %d calls per second %v; "+
		"judged on seconds 1-%d (up to the middle call, while every partition still held work): %.2f calls/s, 95%% interval %.2f-%.2f, which must lie within %.0f%% of the limit %.0f/s, %.1f-%.1f (margins %+.2f below, %+.2f above); "+
		"first second %d calls (at most %.1f: one second of burst on top of one of rate); %.2f/s after the first second (at most %.1f); %.2f/s after the judged seconds%s; calls per worker %v; workflow error: %v",
		rateCalls, workers, limitName(o), done, len(calls), r.PerSecond, r.Window, r.Rate, r.Lo, r.Hi, rateLimitTolerance*100, limit, down, up, r.Lo-down, up-r.Hi,
		first(r.PerSecond), 2*up, r.AfterBurst, up, r.Tail, tail, callers, err),
		map[string]float64{"rate_per_s": r.Rate, "rate_per_s_lo": r.Lo, "rate_per_s_hi": r.Hi, "limit_per_s": limit,
			"first_second": float64(first(r.PerSecond)), "after_burst_per_s": r.AfterBurst, "tail_per_s": r.Tail})
}

func limitName(o worker.Options) string {
	if o.TaskQueueActivitiesPerSecond > 0 {
		return fmt.Sprintf("TaskQueueActivitiesPerSecond %g (enforced by the server)", o.TaskQueueActivitiesPerSecond)
	}
	return fmt.Sprintf("WorkerActivitiesPerSecond %g", o.WorkerActivitiesPerSecond)
}

func testConcurrencySlots(t *testing.T) {
	check := harness.Get(t).Check(t, "RT-03.concurrency-slots")
	ctx := harness.Context(t, time.Minute)
	c := harness.Get(t).Dial(t)
	tq := harness.TaskQueue(t)
	const slots, n = 3, 12
	dep := newDependency(false, 300*time.Millisecond)
	dependencyWorker(t, c, tq, worker.Options{MaxConcurrentActivityExecutionSize: slots}, dep, "worker")
	run := start(ctx, t, c, client.StartWorkflowOptions{TaskQueue: tq}, FanOutWorkflow,
		CallInput{Activity: ScriptedName, StartToClose: time.Minute}, n)
	var done int
	err := run.Get(ctx, &done)
	calls, _, peak := dep.snapshot()
	// peak == slots shows the demand filled every slot.
	harness.Decide(check, slotsPredicate, slotsRun{slots: slots, n: n, done: done, calls: len(calls), peak: peak, err: err}, fmt.Sprintf("%d calls of 300ms fanned out at once to a worker with %d activity slots: at most %d in flight at the dependency; %d calls completed; workflow error: %v",
		n, slots, peak, done, err), map[string]float64{"peak_in_flight": float64(peak), "slots": slots})
}

// testSharedBreaker drives the breaker kept in an entity workflow from
// separate caller workflows: it must open after 3 failures reported by any
// of them, refuse calls while open without reaching the dependency,
// half-open after its timer and close on a successful probe.
func testSharedBreaker(t *testing.T) {
	check := harness.Get(t).Check(t, "RT-03.shared-breaker-pattern")
	ctx := harness.Context(t, time.Minute)
	c := harness.Get(t).Dial(t)
	tq := harness.TaskQueue(t)
	dep := newDependency(true, 0)
	guarded := &Guarded{Client: c, Dependency: func(ctx context.Context) error { return dep.call(ctx, "") }}
	startWorker(t, c, tq, "", worker.Options{}, func(r worker.Registry) {
		r.RegisterActivityWithOptions(guarded.Call, activity.RegisterOptions{Name: GuardedName})
	})
	cfg := BreakerConfig{Threshold: 3, OpenFor: 2 * time.Second}
	breakerID := harness.UniqueID(t, "breaker")
	breaker := start(ctx, t, c, client.StartWorkflowOptions{ID: breakerID, TaskQueue: tq}, BreakerWorkflow, cfg)
	state := func() BreakerState {
		t.Helper()
		v, err := c.QueryWorkflow(ctx, breakerID, "", "state")
		var st BreakerState
		if err == nil {
			err = v.Get(&st)
		}
		if err != nil {
			t.Fatalf("query breaker: %v", err)
		}
		return st
	}
	// callers makes k guarded calls, each from its own workflow, one after another.
	callers := func(k int) []string {
		var out []string
		for range k {
			res, _, err := call(ctx, t, c, tq, CallInput{Activity: GuardedName, Job: Job{Breaker: breakerID}, StartToClose: 10 * time.Second,
				Retry: &temporal.RetryPolicy{MaximumAttempts: 1}})
			var app *temporal.ApplicationError
			switch {
			case err == nil:
				out = append(out, res)
			case errors.As(err, &app):
				out = append(out, app.Type())
			default:
				out = append(out, err.Error())
			}
		}
		return out
	}

	failing := callers(cfg.Threshold)
	afterFailures := state()
	callsWhenOpened, _, _ := dep.snapshot()
	refused := callers(4)
	callsWhileOpen, _, _ := dep.snapshot()
	dep.setDown(false)
	if err := harness.WaitFor(ctx, 30*time.Second, 50*time.Millisecond, "the breaker to half-open", func(context.Context) (bool, error) {
		return state().State == BreakerHalfOpen, nil
	}); err != nil {
		t.Fatal(err)
	}
	halfOpen := state()
	probe := callers(1)
	closed := state()
	after := callers(1)
	final := state()
	calls, _, _ := dep.snapshot()

	openFor := halfOpen.HalfOpenAt.Sub(halfOpen.OpenedAt)
	r := breakerRun{threshold: cfg.Threshold, openFor: cfg.OpenFor, stateAfterFailures: afterFailures.State, callsWhenOpened: len(callsWhenOpened),
		refused: refused, callsWhileOpen: len(callsWhileOpen), halfOpenAfter: openFor, probeState: closed.State, final: final.State, calls: len(calls)}
	harness.Decide(check, sharedBreakerPredicate, r, fmt.Sprintf("breaker workflow (threshold %d, open for %s) shared by %d caller workflows: failing calls returned %v and left it %s; "+
		"4 more calls returned %v, dependency calls %d -> %d; half-open after %s (workflow time); probe returned %v, breaker %s; next call %v, breaker %s; transitions %v; dependency saw %d calls in all",
		cfg.Threshold, cfg.OpenFor, cfg.Threshold+6, failing, afterFailures.State, refused, len(callsWhenOpened), len(callsWhileOpen), ms(openFor),
		probe, closed.State, after, final.State, final.Transitions, len(calls)),
		map[string]float64{"dependency_calls": float64(len(calls)), "refused": float64(final.Rejected), "half_open_after_s": openFor.Seconds()})
	if err := c.SignalWorkflow(ctx, breakerID, "", "stop", nil); err != nil {
		t.Fatalf("stop breaker: %v", err)
	}
	if err := breaker.Get(ctx, nil); err != nil {
		t.Fatalf("breaker workflow: %v", err)
	}
}

// testNativeBreaker: without user code, does the engine stop dispatching an
// activity type whose calls keep failing across workflows? Eight workflows
// call a failing dependency one after another; a native breaker tripping at
// N=3 would let at most 3 calls through.
func testNativeBreaker(t *testing.T) {
	check := harness.Get(t).Check(t, "RT-03.native-breaker")
	ctx := harness.Context(t, time.Minute)
	c := harness.Get(t).Dial(t)
	tq := harness.TaskQueue(t)
	dep := newDependency(true, 0)
	dependencyWorker(t, c, tq, worker.Options{}, dep, "worker")
	const workflows, n = 8, 3
	var outcomes []string
	for range workflows {
		_, _, err := call(ctx, t, c, tq, CallInput{Activity: ScriptedName, StartToClose: 5 * time.Second, Retry: &temporal.RetryPolicy{MaximumAttempts: 1}})
		outcomes = append(outcomes, failureType(err))
	}
	calls, _, _ := dep.snapshot()
	harness.Decide(check, nativeBreakerPredicate, nativeRun{workflows: workflows, n: n, calls: len(calls), outcomes: outcomes}, fmt.Sprintf("%d workflows each called, one after another, an activity type whose dependency always fails: the dependency received %d calls (a breaker tripping after %d failures would have let %d through); outcomes %v",
		workflows, len(calls), n, n, outcomes),
		map[string]float64{"dependency_calls": float64(len(calls)), "workflows": workflows})
}

// failureType names the innermost application failure of err by its type,
// or by its message when it has none.
func failureType(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return cmp.Or(app.Type(), app.Message())
	}
	if err == nil {
		return "ok"
	}
	return err.Error()
}
