package rt

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/harness/ledger"
	"github.com/durabench/durabench/harness/predicate"
	"github.com/durabench/durabench/harness/stats"
)

// TestRT01 measures retry policies attempt by attempt: the schedule of
// delays, its cap, the attempt limit, non-retryable errors, per-error delays,
// the schedule-to-close bound, restarts and workflow-level retries.
func TestRT01(t *testing.T) {
	t.Run("retries_until_success", func(t *testing.T) {
		check := harness.Get(t).Check(t, "RT-01.retries-until-success")
		r := observeRetries(t, nil)
		harness.Decide(check, retryPredicate, r, r.describe(), r.metrics())
	})
	// The control runs the same check with a policy that forbids retries.
	t.Run("control_single_attempt", func(t *testing.T) {
		control := harness.Get(t).Control(t, "RT-01.control-single-attempt")
		r := observeRetries(t, &temporal.RetryPolicy{MaximumAttempts: 1})
		harness.Decide(control, retryPredicate, r, r.describe(), r.metrics())
	})
	t.Run("schedule", testSchedule)
	t.Run("non_retryable", testNonRetryable)
	t.Run("next_retry_delay", testNextRetryDelay)
	t.Run("schedule_to_close_bounds", testScheduleToCloseBounds)
	t.Run("survives_restart", testSurvivesRestart)
	t.Run("workflow_retry", testWorkflowRetry)
}

// expectedDelays is the backoff before attempts 2..n under p:
// initial × coefficient^(k-1), capped at the maximum interval.
func expectedDelays(p temporal.RetryPolicy, n int) []time.Duration {
	var out []time.Duration
	d := float64(p.InitialInterval)
	for k := 1; k < n; k++ {
		v := time.Duration(d)
		if p.MaximumInterval > 0 && v > p.MaximumInterval {
			v = p.MaximumInterval
		}
		out = append(out, v)
		d *= p.BackoffCoefficient
	}
	return out
}

// delays is the time from the end of each attempt to the start of the next:
// the backoff the server applied plus dispatch latency.
func delays(recs []attemptRec) []time.Duration {
	recs = slices.Clone(recs)
	slices.SortFunc(recs, func(a, b attemptRec) int { return int(a.Attempt - b.Attempt) })
	var out []time.Duration
	for i := 1; i < len(recs); i++ {
		out = append(out, recs[i].Start.Sub(recs[i-1].End))
	}
	return out
}

func attemptNumbers(recs []attemptRec) []int32 {
	out := make([]int32, len(recs))
	for i, r := range recs {
		out[i] = r.Attempt
	}
	slices.Sort(out)
	return out
}

// failUntil is a scripted activity failing every attempt before n.
func failUntil(n int32) func(context.Context, int32, Job) (string, error) {
	return func(_ context.Context, attempt int32, _ Job) (string, error) {
		if attempt < n {
			return "", fmt.Errorf("attempt %d fails by design", attempt)
		}
		return fmt.Sprintf("succeeded on attempt %d", attempt), nil
	}
}

// scripted starts a worker on a fresh task queue whose Scripted activity is
// body, recording attempts by the real clock.
func scripted(t *testing.T, c client.Client, o worker.Options, body func(context.Context, int32, Job) (string, error)) (string, *attemptLog) {
	t.Helper()
	tq := harness.TaskQueue(t)
	log := newAttemptLog(time.Now)
	startWorker(t, c, tq, "", o, func(r worker.Registry) {
		r.RegisterActivityWithOptions(log.activity(body), activity.RegisterOptions{Name: ScriptedName})
	})
	return tq, log
}

// observeRetries runs an activity that fails before attempt
// retrySucceedsAt and then succeeds, under policy p (nil: the server's
// default), and returns what happened.
func observeRetries(t *testing.T, p *temporal.RetryPolicy) retryRun {
	ctx := harness.Context(t, time.Minute)
	c := harness.Get(t).Dial(t)
	tq, log := scripted(t, c, worker.Options{}, failUntil(retrySucceedsAt))
	out, _, err := call(ctx, t, c, tq, CallInput{Activity: ScriptedName, StartToClose: 10 * time.Second, Retry: p})
	recs := log.attempts()
	r := retryRun{policy: "the server's default policy", attempts: attemptNumbers(recs), delays: delays(recs), out: out, err: err}
	if p != nil {
		r.policy = fmt.Sprintf("a policy with maximum attempts %d", p.MaximumAttempts)
	}
	return r
}

func (r retryRun) describe() string {
	return fmt.Sprintf("activity failing on attempts 1 to %d, under %s: attempts %v ran, delays between them %s; workflow result %q (error: %v)",
		retrySucceedsAt-1, r.policy, r.attempts, msList(r.delays), r.out, r.err)
}

func (r retryRun) metrics() map[string]float64 {
	return map[string]float64{"attempts": float64(len(r.attempts))}
}

// scheduleRun is a run of always-failing activities under one policy.
type scheduleRun struct {
	name          string
	server        bool // run on the server, which reports a retry state; the test environment reports none
	policy        temporal.RetryPolicy
	tol           tolerance
	copies        int
	recs          []attemptRec
	err           error
	wall, elapsed time.Duration // wall-clock time and time by the run's clock
}

func (r scheduleRun) want() []time.Duration {
	return expectedDelays(r.policy, int(r.policy.MaximumAttempts))
}

// perActivity is each activity's attempts, in attempt order.
func (r scheduleRun) perActivity() [][]attemptRec {
	by := map[string][]attemptRec{}
	for _, rec := range r.recs {
		by[rec.ActivityID] = append(by[rec.ActivityID], rec)
	}
	var out [][]attemptRec
	for _, id := range slices.Sorted(maps.Keys(by)) {
		out = append(out, by[id])
	}
	return out
}

// attemptsRun is the run's attempts as RT-01.max-attempts judges them.
func (r scheduleRun) attemptsRun() attemptsRun {
	a := attemptsRun{name: r.name, max: r.policy.MaximumAttempts, copies: r.copies, server: r.server, state: retryState(r.err)}
	for _, recs := range r.perActivity() {
		a.per = append(a.per, attemptNumbers(recs))
	}
	var app *temporal.ApplicationError
	if errors.As(r.err, &app) {
		a.lastMsg = app.Message()
	}
	return a
}

// capAt is the index of the first expected delay at the maximum interval:
// the delays before it grow, the ones from it on are capped.
func (r scheduleRun) capAt() int {
	for i, d := range r.want() {
		if d == r.policy.MaximumInterval {
			return i
		}
	}
	return len(r.want())
}

// phase is delays [lo, hi) of every activity with the policy's, and
// describes them.
func (r scheduleRun) phase(lo, hi int) (run delayRun, detail string, late []time.Duration) {
	run = delayRun{name: r.name, want: r.want()[lo:hi], tol: r.tol}
	var got []string
	for _, recs := range r.perActivity() {
		d := delays(recs)
		d = d[min(lo, len(d)):min(hi, len(d))]
		_, l := fits(run.want, d, r.tol)
		run.got = append(run.got, d)
		late = append(late, l...)
		got = append(got, msList(d))
	}
	return run, fmt.Sprintf("%s (initial %s, coefficient %g, maximum %s, %d attempts, %d activities; %s by its clock in %s wall): delays %s, policy %s, worst lateness %s (tolerance -%s/+%s: %s)",
		r.name, r.policy.InitialInterval, r.policy.BackoffCoefficient, r.policy.MaximumInterval, r.policy.MaximumAttempts, r.copies,
		r.elapsed.Round(time.Millisecond), r.wall.Round(time.Millisecond), strings.Join(got, " "), msList(run.want), ms(maxAbs(late)), r.tol.early, r.tol.late, r.tol.why), late
}

// realSchedule runs copies always-failing activities at once on the dev server.
func realSchedule(t *testing.T, name string, p temporal.RetryPolicy, tol tolerance, copies int) scheduleRun {
	ctx := harness.Context(t, 2*time.Minute)
	c := harness.Get(t).Dial(t)
	tq, log := scripted(t, c, worker.Options{}, failUntil(p.MaximumAttempts+1))
	began := time.Now()
	run := start(ctx, t, c, client.StartWorkflowOptions{TaskQueue: tq}, FanOutWorkflow,
		CallInput{Activity: ScriptedName, StartToClose: 10 * time.Second, Retry: &p}, copies)
	err := run.Get(ctx, nil)
	wall := time.Since(began)
	return scheduleRun{name: name, server: true, policy: p, tol: tol, copies: copies, recs: log.attempts(), err: err, wall: wall, elapsed: wall}
}

// skippedSchedule runs one always-failing activity in the time-skipping
// test environment, whose clock the activity reads.
func skippedSchedule(p temporal.RetryPolicy) scheduleRun {
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(quietLogger())
	tenv := suite.NewTestWorkflowEnvironment()
	log := newAttemptLog(tenv.Now)
	tenv.RegisterWorkflow(CallWorkflow)
	tenv.RegisterActivityWithOptions(log.activity(failUntil(p.MaximumAttempts+1)), activity.RegisterOptions{Name: ScriptedName})
	began, virtual := time.Now(), tenv.Now()
	tenv.ExecuteWorkflow(CallWorkflow, CallInput{Activity: ScriptedName, StartToClose: 10 * time.Second, Retry: &p})
	return scheduleRun{name: "time-skipped", policy: p, tol: skipped, copies: 1, recs: log.attempts(), err: tenv.GetWorkflowError(),
		wall: time.Since(began), elapsed: tenv.Now().Sub(virtual)}
}

// testSchedule measures the schedule of always-failing activities in
// skipped time (intervals of seconds to a minute) and in real time on the dev
// server (intervals of 1s to 3s, four activities at once), and a sub-second
// schedule in real time.
func testSchedule(t *testing.T) {
	env := harness.Get(t)
	backoff := env.Check(t, "RT-01.backoff-timing")
	maxInterval := env.Check(t, "RT-01.max-interval")
	maxAttempts := env.Check(t, "RT-01.max-attempts")
	accuracy := env.Check(t, "RT-01.real-time-accuracy")
	subSecond := env.Check(t, "RT-01.sub-second-intervals")

	sk := skippedSchedule(temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 10})
	var rt, sub scheduleRun
	t.Run("real_time", func(t *testing.T) {
		t.Run("seconds", func(t *testing.T) {
			t.Parallel()
			rt = realSchedule(t, "real time", temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 3 * time.Second, MaximumAttempts: 6}, realTime, 4)
		})
		t.Run("sub_second", func(t *testing.T) {
			t.Parallel()
			sub = realSchedule(t, "real time, sub-second", temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 1.5, MaximumInterval: 500 * time.Millisecond, MaximumAttempts: 6}, subSecondTol, 1)
		})
	})
	if t.Failed() {
		return
	}

	// both checks one phase of the time-skipped and the real-time run.
	// both gathers one phase of the time-skipped and the real-time run.
	both := func(growing bool) ([]delayRun, string, map[string]float64) {
		m := map[string]float64{}
		var runs []delayRun
		var details []string
		for _, r := range []scheduleRun{sk, rt} {
			lo, hi := 0, r.capAt()
			if !growing {
				lo, hi = hi, len(r.want())
			}
			run, detail, late := r.phase(lo, hi)
			runs = append(runs, run)
			details = append(details, detail)
			m[strings.ReplaceAll(r.name, " ", "_")+"_worst_lateness_ms"] = msOf(maxAbs(late))
		}
		return runs, strings.Join(details, "; "), m
	}
	runs, detail, m := both(true)
	harness.Decide(backoff, backoffPredicate, runs, detail, m)
	runs, detail, m = both(false)
	harness.Decide(maxInterval, maxIntervalPredicate, runs, detail, m)

	harness.Decide(maxAttempts, maxAttemptsPredicate, []attemptsRun{sk.attemptsRun(), rt.attemptsRun()}, fmt.Sprintf(
		"time-skipped, maximum attempts %d: attempts %v ran, workflow error: %v; real time, maximum attempts %d, %d activities: attempts per activity %v, workflow error: %v (retry state %s)",
		sk.policy.MaximumAttempts, attemptNumbers(sk.recs), sk.err, rt.policy.MaximumAttempts, rt.copies, attemptsPer(rt), rt.err, retryState(rt.err)),
		map[string]float64{"skipped_attempts": float64(len(sk.recs)), "real_attempts": float64(len(rt.recs))})

	_, _, late := rt.phase(0, len(rt.want()))
	lr := latenessRun{want: rt.copies * len(rt.want()), ms: msValues(late)}
	s := stats.Summarize(lr.ms)
	harness.Decide(accuracy, realTimeAccuracyPredicate, lr, fmt.Sprintf(
		"real time on the dev server, %d delays of %d activities retried at once under policy %s: lateness behind the policy p50 %.1fms (95%% interval %.1f-%.1fms), p95 %.1fms, max %.1fms, min %.1fms; "+
			"the median's interval must end under %s (10%% of the shortest interval, 1s: margin %.1fms), none early by more than %s, and every delay within +%s (RT-01.backoff-timing, .max-interval)",
		len(late), rt.copies, msList(rt.want()), s.P50, s.P50Lo, s.P50Hi, s.P95, s.Max, s.Min, ms(retryAccuracyBound), msOf(retryAccuracyBound)-s.P50Hi, realTime.early, ms(realTime.late)), s.Metrics("lateness_ms"))

	subRun, detail, late := sub.phase(0, len(sub.want()))
	if all := slices.Concat(delaysPer(sub)...); len(all) > 0 && slices.Min(all) >= 900*time.Millisecond {
		shortest := slices.Min(all)
		detail += fmt.Sprintf("; no delay was shorter than %s, consistent with the server arming no timer sooner than about 1s after it is created (history.timerProcessorMaxTimeShift, default 1s)", ms(shortest))
	}
	harness.Decide(subSecond, subSecondPredicate, []delayRun{subRun}, detail, stats.Summarize(msValues(late)).Metrics("lateness_ms"))
}

func delaysPer(r scheduleRun) [][]time.Duration {
	var out [][]time.Duration
	for _, recs := range r.perActivity() {
		out = append(out, delays(recs))
	}
	return out
}

func attemptsPer(r scheduleRun) [][]int32 {
	var out [][]int32
	for _, recs := range r.perActivity() {
		out = append(out, attemptNumbers(recs))
	}
	return out
}

func msValues(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = msOf(d)
	}
	return out
}

func maxAbs(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d, -d)
	}
	return m
}

func first[T any](xs []T) (v T) {
	if len(xs) > 0 {
		v = xs[0]
	}
	return v
}

func last[T any](xs []T) (v T) {
	if len(xs) > 0 {
		v = xs[len(xs)-1]
	}
	return v
}

// testNonRetryable: an error type listed in NonRetryableErrorTypes, and an
// application error created non-retryable, each stop after one attempt.
func testNonRetryable(t *testing.T) {
	for _, tc := range []struct {
		check, errType string
		pred           *predicate.P[nonRetryableRun]
		policy         temporal.RetryPolicy
		fail           func() error
	}{
		{"RT-01.non-retryable-types", "DependencyGone", nonRetryableTypesPredicate,
			temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond, MaximumAttempts: 5, NonRetryableErrorTypes: []string{"DependencyGone"}},
			func() error { return temporal.NewApplicationError("dependency gone", "DependencyGone") }},
		{"RT-01.non-retryable-error", "Fatal", nonRetryableErrorPredicate,
			temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond}, // unlimited attempts
			func() error { return temporal.NewNonRetryableApplicationError("fatal", "Fatal", nil) }},
	} {
		t.Run(tc.errType, func(t *testing.T) {
			check := harness.Get(t).Check(t, tc.check)
			ctx := harness.Context(t, time.Minute)
			c := harness.Get(t).Dial(t)
			tq, log := scripted(t, c, worker.Options{}, func(context.Context, int32, Job) (string, error) { return "", tc.fail() })
			// The schedule-to-close timeout only bounds a run that keeps retrying.
			_, _, err := call(ctx, t, c, tq, CallInput{Activity: ScriptedName, StartToClose: 5 * time.Second, ScheduleToClose: 5 * time.Second, Retry: &tc.policy})
			r := nonRetryableRun{allowed: tc.policy.MaximumAttempts, errType: tc.errType, state: retryState(err), attempts: len(log.attempts())}
			var app *temporal.ApplicationError
			if errors.As(err, &app) {
				r.gotType = app.Type()
			}
			harness.Decide(check, tc.pred, r, fmt.Sprintf("policy allows %s attempts; activity returned error type %s: %d attempt(s) ran; the workflow received type %q with retry state %s: %v",
				attemptsAllowed(tc.policy), tc.errType, r.attempts, r.gotType, r.state, err), map[string]float64{"attempts": float64(r.attempts)})
		})
	}
}

func attemptsAllowed(p temporal.RetryPolicy) string {
	if p.MaximumAttempts == 0 {
		return "unlimited"
	}
	return fmt.Sprint(p.MaximumAttempts)
}

func retryState(err error) enumspb.RetryState {
	var ae *temporal.ActivityError
	if errors.As(err, &ae) {
		return ae.RetryState()
	}
	return enumspb.RETRY_STATE_UNSPECIFIED
}

// testNextRetryDelay: attempt 1 fails asking for a 2.5s delay instead of the
// 1s backoff, attempt 2 fails plainly (backoff 2s), attempt 3 succeeds.
func testNextRetryDelay(t *testing.T) {
	check := harness.Get(t).Check(t, "RT-01.next-retry-delay")
	ctx := harness.Context(t, time.Minute)
	c := harness.Get(t).Dial(t)
	const asked = 2500 * time.Millisecond
	tq, log := scripted(t, c, worker.Options{}, func(_ context.Context, attempt int32, _ Job) (string, error) {
		switch attempt {
		case 1:
			return "", temporal.NewApplicationErrorWithOptions("busy, retry later", "Throttled", temporal.ApplicationErrorOptions{NextRetryDelay: asked})
		case 2:
			return "", errors.New("plain failure")
		}
		return "done", nil
	})
	p := temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumAttempts: 5}
	out, _, err := call(ctx, t, c, tq, CallInput{Activity: ScriptedName, StartToClose: 5 * time.Second, Retry: &p})
	got := delays(log.attempts())
	want := []time.Duration{asked, expectedDelays(p, 3)[1]}
	_, late := fits(want, got, realTime)
	harness.Decide(check, nextRetryDelayPredicate, overrideRun{want: want, got: got, out: out, err: err}, fmt.Sprintf("policy backoff would be %s then %s; attempt 1 asked NextRetryDelay %s: delays %s, expected %s, lateness %s; result %q (error: %v)",
		ms(p.InitialInterval), ms(want[1]), ms(asked), msList(got), msList(want), msList(late), out, err),
		map[string]float64{"delay1_ms": msOf(first(got)), "delay2_ms": msOf(last(got))})
}

// testScheduleToCloseBounds: an always-failing activity retried every second
// under a 3.5s schedule-to-close timeout stops once the next attempt could
// not start in time.
func testScheduleToCloseBounds(t *testing.T) {
	check := harness.Get(t).Check(t, "RT-01.schedule-to-close-bounds")
	ctx := harness.Context(t, time.Minute)
	c := harness.Get(t).Dial(t)
	tq, log := scripted(t, c, worker.Options{}, failUntil(1000))
	const interval, bound = time.Second, 3500 * time.Millisecond
	p := temporal.RetryPolicy{InitialInterval: interval, BackoffCoefficient: 1}
	_, run, err := call(ctx, t, c, tq, CallInput{Activity: ScriptedName, StartToClose: time.Second, ScheduleToClose: bound, Retry: &p})
	events := mustHistory(ctx, t, c, run.GetID(), "")
	scheduled := firstOf(t, events, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED).GetEventTime().AsTime()
	closeEv := append(harness.EventsOf(events, enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED), harness.EventsOf(events, enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT)...)
	if len(closeEv) != 1 {
		t.Fatalf("want one activity close event, got %d", len(closeEv))
	}
	closed := closeEv[0].GetEventTime().AsTime()
	due := scheduled.Add(bound)
	recs := log.attempts()
	var afterDue int
	for _, r := range recs {
		if r.Start.After(due) {
			afterDue++
		}
	}
	var te *temporal.TimeoutError
	cause := "the last attempt's failure"
	if errors.As(err, &te) {
		cause = "a TimeoutError of type " + te.TimeoutType().String()
	}
	r := boundRun{interval: interval, bound: bound, attempts: len(recs), afterDue: afterDue, closed: closed.Sub(scheduled), state: retryState(err)}
	harness.Decide(check, scheduleToCloseBoundsPredicate, r, fmt.Sprintf("retry every %s, schedule-to-close %s: %d attempts, %d started after the deadline; activity closed %s after scheduling (next attempt would have started %s after, past the deadline); workflow error has retry state %s with %s as cause: %v",
		ms(interval), bound, len(recs), afterDue, ms(closed.Sub(scheduled)), ms(closed.Add(interval).Sub(scheduled)), retryState(err), cause, err),
		map[string]float64{"attempts": float64(len(recs)), "closed_after_s": closed.Sub(scheduled).Seconds()})
}

// testSurvivesRestart kills the worker and the server while a retry is
// waiting for its backoff, restarts both, and checks that the attempt count
// and the backoff carry on.
func testSurvivesRestart(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "RT-01.survives-restart")
	ctx := harness.Context(t, 3*time.Minute)
	srv, killable := env.KillableServer(t, harness.ServerOptions{}, check)
	if !killable {
		return
	}
	c := srv.Dial(t)
	tq := harness.TaskQueue(t)
	led := filepath.Join(env.Scratch(t), "ledger.jsonl")
	cfg := harness.RoleConfig{Address: srv.Address(), Namespace: "default", TaskQueue: tq, Args: map[string]string{"ledger": led}}
	w1 := env.StartWorker(t, workerRole, cfg)

	p := temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 2 * time.Second}
	const succeedAt = 5
	run := start(ctx, t, c, client.StartWorkflowOptions{TaskQueue: tq}, CallWorkflow,
		CallInput{Activity: RetrierName, Job: Job{SucceedAt: succeedAt}, StartToClose: 5 * time.Second, Retry: &p})
	// Attempt 2 has failed and attempt 3 waits for its 2s backoff: no attempt is running.
	pa := waitPending(ctx, t, c, run.GetID(), "attempt 3 to wait for its backoff", func(pa *workflowpb.PendingActivityInfo) bool {
		return pa.GetAttempt() == 3 && pa.GetState() == enumspb.PENDING_ACTIVITY_STATE_SCHEDULED
	})
	due := pa.GetScheduledTime().AsTime()
	killedAt := time.Now()
	if err := w1.Kill(); err != nil {
		t.Fatalf("kill worker: %v", err)
	}
	if err := srv.Kill(); err != nil {
		t.Fatalf("kill server: %v", err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatalf("restart server: %v", err)
	}
	restartedAt := time.Now()
	w2 := env.StartWorker(t, workerRole, cfg)

	var out string
	err := getResult(ctx, run, &out)
	entries := readLedger(t, led)
	starts := entriesOf(entries, ledger.Start)
	fails := entriesOf(entries, phaseFail)
	var attempts []int32
	for _, e := range starts {
		attempts = append(attempts, e.Attempt)
	}
	// Delays from each failure to the next start, for attempts 4 and 5
	// (after the restart); attempt 3's delay spans the outage.
	var after []time.Duration
	for i := 3; i < len(starts) && i-1 < len(fails); i++ {
		after = append(after, starts[i].At.Sub(fails[i-1].At))
	}
	want := expectedDelays(p, succeedAt)[2:]
	_, late := fits(want, after, realTime)
	var attempt3 time.Time
	if len(starts) >= 3 {
		attempt3 = starts[2].At
	}
	r := restartRun{succeedAt: succeedAt, attempts: attempts, want: want, after: after, attempt3Late: attempt3.Sub(due), out: out, err: err}
	check.OnServer(srv)
	harness.Decide(check, survivesRestartPredicate, r, fmt.Sprintf("worker pid %d and the server SIGKILLed while attempt 3 waited for its backoff (due %s after the kill); server back after %s, worker pid %d started; "+
		"attempts by ledger %v; attempt 3 began %s after its due time; delays before attempts 4-5 %s, policy %s, lateness %s; result %q (error: %v)",
		w1.PID(), ms(due.Sub(killedAt)), ms(restartedAt.Sub(killedAt)), w2.PID(), attempts, ms(attempt3.Sub(due)), msList(after), msList(want), msList(late), out, err),
		map[string]float64{"outage_s": restartedAt.Sub(killedAt).Seconds(), "attempt3_after_due_s": attempt3.Sub(due).Seconds()})
}

// getResult waits for a run's result, retrying while the server is
// unreachable after a restart; a workflow failure is returned at once.
func getResult(ctx context.Context, run client.WorkflowRun, out any) error {
	for {
		err := run.Get(ctx, out)
		var wee *temporal.WorkflowExecutionError
		if err == nil || errors.As(err, &wee) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond): // backoff before asking again
		}
	}
}

// testWorkflowRetry: a workflow failing its first two runs is retried as new
// runs with the configured backoff, read from each run's history.
func testWorkflowRetry(t *testing.T) {
	check := harness.Get(t).Check(t, "RT-01.workflow-retry")
	ctx := harness.Context(t, time.Minute)
	c := harness.Get(t).Dial(t)
	tq := harness.TaskQueue(t)
	startWorker(t, c, tq, "", worker.Options{}, nil)
	p := temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumAttempts: 5}
	run := start(ctx, t, c, client.StartWorkflowOptions{TaskQueue: tq, RetryPolicy: &p}, FlakyWorkflow, int32(3))
	firstRun := run.GetRunID() // Get follows the chain and moves the run's id to the last run
	var got int32
	err := run.Get(ctx, &got)

	var attempts []int32
	var gaps, backoffs []time.Duration
	var failedAt time.Time
	for runID := firstRun; runID != ""; {
		events := mustHistory(ctx, t, c, run.GetID(), runID)
		started := firstOf(t, events, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED).GetWorkflowExecutionStartedEventAttributes()
		attempts = append(attempts, started.GetAttempt())
		taskStarted := firstOf(t, events, enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED).GetEventTime().AsTime()
		if !failedAt.IsZero() {
			gaps = append(gaps, taskStarted.Sub(failedAt))
			backoffs = append(backoffs, started.GetFirstWorkflowTaskBackoff().AsDuration())
		}
		runID = ""
		if f := harness.EventsOf(events, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED); len(f) == 1 {
			failedAt = f[0].GetEventTime().AsTime()
			runID = f[0].GetWorkflowExecutionFailedEventAttributes().GetNewExecutionRunId()
		}
	}
	want := expectedDelays(p, 3)
	_, late := fits(want, gaps, realTime)
	r := workflowRetryRun{attempts: attempts, want: want, backoffs: backoffs, gaps: gaps, got: got, err: err}
	harness.Decide(check, workflowRetryPredicate, r, fmt.Sprintf("workflow failing runs 1-2 with retry policy %s×%g: runs with attempts %v; recorded first-task backoffs %s; from each failure to the next run's first task %s, policy %s, lateness %s; result attempt %d (error: %v)",
		ms(p.InitialInterval), p.BackoffCoefficient, attempts, msList(backoffs), msList(gaps), msList(want), msList(late), got, err),
		map[string]float64{"runs": float64(len(attempts))})
}
