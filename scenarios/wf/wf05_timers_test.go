package wf

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/harness/stats"
)

// TestWF05 measures sleeps, timers and schedules: a 30-day sleep with time
// skipping, timer cancellation, accuracy and survival of a server kill, and
// schedules (interval, cron in a time zone, pause, trigger, backfill,
// overlap policies, catch-up after an outage) on the real server.
func TestWF05(t *testing.T) {
	t.Parallel()
	env := harness.Get(t)
	c := env.Dial(t)
	tq := harness.TaskQueue(t)
	newWorker(t, c, tq, worker.Options{}, registerTimers)
	tt := timerTest{c: c, tq: tq, ns: env.Options.Namespace}
	t.Run("durable_sleep", testDurableSleep)
	t.Run("timer_cancel", tt.testTimerCancel)
	t.Run("schedule_cron_timezone", tt.testCronTimezone)
	t.Run("schedule_backfill", tt.testBackfill)
	t.Run("schedule_overlap", tt.testOverlap)
	// Timer lateness is measured before the clock group: there, two
	// dedicated servers start and one is killed and restarted, and their
	// start-up competes for the CPU with the timers' (p95 55 ms instead of
	// 4-6 ms when they overlapped).
	t.Run("timer_accuracy", tt.testTimerAccuracy)
	// These wait on the clock, so they run side by side.
	t.Run("clock", func(t *testing.T) {
		t.Run("timer_survives_restart", parallel(testTimerSurvivesRestart))
		t.Run("schedule_interval", parallel(tt.testInterval))
		t.Run("schedule_pause_trigger", parallel(tt.testPauseTrigger))
		t.Run("schedule_catchup", parallel(testCatchup))
	})
}

func registerTimers(r worker.Registry) {
	registerWorkflows(r, SleepWorkflow, TimerCancelWorkflow, ManyTimersWorkflow, ScheduledWorkflow)
}

func parallel(f func(*testing.T)) func(*testing.T) {
	return func(t *testing.T) {
		t.Parallel()
		f(t)
	}
}

type timerTest struct {
	c  client.Client
	tq string
	ns string
}

func testDurableSleep(t *testing.T) {
	check := harness.Get(t).Check(t, "WF-05.durable-sleep")
	const sleep = 30 * 24 * time.Hour
	var suite testsuite.WorkflowTestSuite
	tenv := suite.NewTestWorkflowEnvironment()
	tenv.RegisterWorkflow(SleepWorkflow)
	began := time.Now()
	tenv.ExecuteWorkflow(SleepWorkflow, sleep)
	wall := time.Since(began)
	var r SleepReport
	err := tenv.GetWorkflowResult(&r)
	virtual := r.Resumed.Sub(r.Slept)
	// The catalog's bound: "well under a second", so that a suite of such
	// tests runs in seconds.
	const wallBound = time.Second
	o := sleepRun{completed: tenv.IsWorkflowCompleted(), err: err, sleep: sleep, virtual: virtual, wall: wall, wallBound: wallBound}
	harness.Decide(check, durableSleepPredicate, o, fmt.Sprintf("time-skipping test environment: workflow.Sleep(%s) resumed after %.1f virtual days in %s of wall time (bound %s, the catalog's; error: %v)",
		sleep, virtual.Hours()/24, ms(wall), wallBound, err),
		map[string]float64{"virtual_s": virtual.Seconds(), "wall_ms": float64(wall.Milliseconds())})
}

func (tt timerTest) testTimerCancel(t *testing.T) {
	check := harness.Get(t).Check(t, "WF-05.timer-cancel")
	ctx := harness.Context(t, time.Minute)
	run := start(ctx, t, tt.c, client.StartWorkflowOptions{TaskQueue: tt.tq}, TimerCancelWorkflow, time.Hour)
	if err := waitEvents(ctx, tt.c, run.GetID(), enumspb.EVENT_TYPE_TIMER_STARTED, 1, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := tt.c.SignalWorkflow(ctx, run.GetID(), "", cancelTimerSignal, nil); err != nil {
		t.Fatalf("signal: %v", err)
	}
	var r TimerCancelReport
	err := run.Get(ctx, &r)
	events := mustHistory(ctx, t, tt.c, run.GetID(), "")
	cancelled := len(harness.EventsOf(events, enumspb.EVENT_TYPE_TIMER_CANCELED))
	fired := len(harness.EventsOf(events, enumspb.EVENT_TYPE_TIMER_FIRED))
	o := timerCancel{err: err, path: r.Path, timerErr: r.TimerErr, cancelled: cancelled, fired: fired}
	harness.Decide(check, timerCancelPredicate, o, fmt.Sprintf("one-hour timer cancelled on a signal: workflow took the %q path, the timer returned %s (error: %v); history: %d TimerCanceled, %d TimerFired",
		r.Path, r.TimerErr, err, cancelled, fired), nil)
}

func (tt timerTest) testTimerAccuracy(t *testing.T) {
	check := harness.Get(t).Check(t, "WF-05.timer-accuracy")
	quiet(t) // lateness is measured against a 100 ms bound
	ctx := harness.Context(t, 2*time.Minute)
	// Measured: 100 workflows sleeping one timer each, 1s to 2.98s. Reported
	// alongside: 10 workflows with one sub-second timer, and one workflow
	// holding 40 timers of 1s to 2.95s at once.
	single, short, shared := spread(100, time.Second, 20*time.Millisecond), spread(10, 100*time.Millisecond, 80*time.Millisecond), spread(40, time.Second, 50*time.Millisecond)
	o := client.StartWorkflowOptions{TaskQueue: tt.tq}
	var singleRuns, shortRuns []client.WorkflowRun
	for _, d := range single {
		singleRuns = append(singleRuns, start(ctx, t, tt.c, o, SleepWorkflow, d))
	}
	for _, d := range short {
		shortRuns = append(shortRuns, start(ctx, t, tt.c, o, SleepWorkflow, d))
	}
	sharedRun := start(ctx, t, tt.c, o, ManyTimersWorkflow, shared)
	// fires lists, over the runs' timers, how late each fired after its due
	// time and how long after it started, in seconds.
	fires := func(runs ...client.WorkflowRun) (late, after []float64) {
		var l, a []float64
		for _, r := range runs {
			if err := r.Get(ctx, nil); err != nil {
				t.Fatalf("timer workflow %s: %v", r.GetID(), err)
			}
			rl, ra := timerFires(mustHistory(ctx, t, tt.c, r.GetID(), ""))
			l, a = append(l, rl...), append(a, ra...)
		}
		return l, a
	}
	singleLate, _ := fires(singleRuns...)
	shortLate, shortAfter := fires(shortRuns...)
	sharedLate, _ := fires(sharedRun)
	s, sh, shAfter, sd := stats.Summarize(singleLate), stats.Summarize(shortLate), stats.Summarize(shortAfter), stats.Summarize(sharedLate)
	p95Lo, p95Hi := stats.Bootstrap(singleLate, func(r []float64) float64 { return stats.Quantile(r, 0.95) })
	acc := timerAccuracy{n: s.N, want: len(single), min: s.Min, p95: s.P95, p95Hi: p95Hi, bound: timerLatenessBound.Seconds()}
	harness.Decide(check, timerAccuracyPredicate, acc, fmt.Sprintf("%d real-server timers of 1s to 2.98s, one per workflow: TimerFired after the due time by p50 %s, p95 %s (95%% interval [%s, %s]), p99 %s, max %s, min %s; "+
		"judged on the interval's upper end against %s (the master's typical step overhead band, 5-100 ms): margin %s. "+
		"Also observed: %d sub-second timers (0.1s to 0.82s) fired %s to %s after they started (p50 %s late); "+
		"%d timers of 1s to 2.95s held by one workflow fired p50 %s, p95 %s, max %s late",
		s.N, secs(s.P50), secs(s.P95), secs(p95Lo), secs(p95Hi), secs(s.P99), secs(s.Max), secs(s.Min), timerLatenessBound, secs(timerLatenessBound.Seconds()-p95Hi), sh.N, secs(shAfter.Min), secs(shAfter.Max), secs(sh.P50), sd.N, secs(sd.P50), secs(sd.P95), secs(sd.Max)),
		merge(s.Metrics("lateness_s"), map[string]float64{"lateness_p95_lo_s": p95Lo, "lateness_p95_hi_s": p95Hi,
			"subsecond_fired_after_min_s": shAfter.Min, "subsecond_lateness_p50_s": sh.P50,
			"shared_workflow_lateness_p50_s": sd.P50, "shared_workflow_lateness_p95_s": sd.P95,
		}))
}

// timerLatenessBound bounds the p95 lateness of WF-05.timer-accuracy's
// single timers. Its source is the master's band for a step's overhead,
// 5-100 ms typical (CRITERIA.md, PF-01): firing a due timer is one
// server-side step (a timer task writes TimerFired and schedules a workflow
// task), so it should cost no more than a step. A timer design that polls
// for due timers every second would show a p95 near 0.95 s. Observed on
// this 2-core host in six runs: p95 3-55 ms, the upper end of its
// interval 4-73 ms (73 ms when two dedicated servers started beside the
// timers, hence timer_accuracy runs before the clock group; 40-46 ms at a
// load average of 10 from other work): margin 27-96 ms.
const timerLatenessBound = 100 * time.Millisecond

// spread returns n durations from first, step apart.
func spread(n int, first, step time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = first + time.Duration(i)*step
	}
	return out
}

// timerFires returns, for each fired timer of a history, how long after its
// due time (TimerStarted time plus its duration) and how long after
// TimerStarted the TimerFired event was recorded, in seconds.
func timerFires(events []*historypb.HistoryEvent) (late, after []float64) {
	type timer struct {
		started time.Time
		d       time.Duration
	}
	timers := map[string]timer{}
	for _, ev := range events {
		if a := ev.GetTimerStartedEventAttributes(); a != nil {
			timers[a.GetTimerId()] = timer{ev.GetEventTime().AsTime(), a.GetStartToFireTimeout().AsDuration()}
		}
		if a := ev.GetTimerFiredEventAttributes(); a != nil {
			tm := timers[a.GetTimerId()]
			took := ev.GetEventTime().AsTime().Sub(tm.started)
			late, after = append(late, (took-tm.d).Seconds()), append(after, took.Seconds())
		}
	}
	return late, after
}

func merge(ms ...map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}

func secs(s float64) string { return ms(time.Duration(s * float64(time.Second))) }

func testTimerSurvivesRestart(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "WF-05.timer-survives-restart")
	if ok, why := env.CanKillServer(); !ok {
		check.NotMeasured(why)
		return
	}
	ctx := harness.Context(t, 2*time.Minute)
	srv := env.StartServer(t, harness.ServerOptions{})
	c := srv.Dial(t)
	tq := harness.TaskQueue(t)
	newWorker(t, c, tq, worker.Options{}, registerTimers)
	const timer = 3 * time.Second
	run := start(ctx, t, c, client.StartWorkflowOptions{TaskQueue: tq}, SleepWorkflow, timer)
	var due time.Time
	if err := harness.WaitFor(ctx, 30*time.Second, 20*time.Millisecond, "the timer to start", func(ctx context.Context) (bool, error) {
		events, err := harness.History(ctx, c, run.GetID(), "")
		if started := harness.EventsOf(events, enumspb.EVENT_TYPE_TIMER_STARTED); err == nil && len(started) == 1 {
			due = started[0].GetEventTime().AsTime().Add(timer)
			return true, nil
		}
		return false, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Kill(); err != nil {
		t.Fatalf("kill server: %v", err)
	}
	killedAt := time.Now()
	// The outage lasts until half a second past the timer's due time, by design.
	select {
	case <-time.After(time.Until(due.Add(500 * time.Millisecond))):
	case <-ctx.Done():
		t.Fatal("deadline during the outage")
	}
	restartedAt := time.Now()
	if err := srv.Restart(); err != nil {
		t.Fatalf("restart server: %v", err)
	}
	var r SleepReport
	err := harness.AwaitResult(ctx, run, &r)
	var fired time.Time
	f := harness.EventsOf(mustHistory(ctx, t, c, run.GetID(), ""), enumspb.EVENT_TYPE_TIMER_FIRED)
	if len(f) > 0 {
		fired = f[0].GetEventTime().AsTime()
	}
	o := timerRestart{err: err, fired: len(f), killedBefore: due.Sub(killedAt), restartAfter: restartedAt.Sub(due), firedAfter: fired.Sub(restartedAt), timer: timer}
	if fired.IsZero() {
		o.firedAfter = -1
	}
	harness.Decide(check, timerRestartPredicate, o, fmt.Sprintf("server SIGKILLed %s before a %s timer was due and restarted %s after its due time on the same SQLite file; %d TimerFired, recorded %s after the restart began "+
		"(bound: under the timer's own %s, which a timer re-armed from zero on restart would take); the workflow resumed (error: %v)",
		ms(o.killedBefore), timer, ms(o.restartAfter), len(f), sinceOrNever(fired, restartedAt), timer, err),
		map[string]float64{"fired_after_restart_s": fired.Sub(restartedAt).Seconds()})
}

func sinceOrNever(t, from time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return ms(t.Sub(from))
}

// newSchedule creates a schedule (id and action filled in) whose action
// runs ScheduledWorkflow(hold) on tq. At the end of the test its running
// workflows are terminated and it is deleted.
func newSchedule(ctx context.Context, t *testing.T, c client.Client, tq string, o client.ScheduleOptions, hold bool) client.ScheduleHandle {
	t.Helper()
	o.ID = harness.UniqueID(t, "sched")
	o.Action = &client.ScheduleWorkflowAction{
		ID: o.ID + "-wf", Workflow: ScheduledWorkflow, Args: []any{hold}, TaskQueue: tq, WorkflowExecutionTimeout: 10 * time.Minute,
	}
	h, err := c.ScheduleClient().Create(ctx, o)
	if err != nil {
		t.Fatalf("create schedule: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if d, err := h.Describe(ctx); err == nil {
			for _, w := range d.Info.RunningWorkflows {
				_ = c.TerminateWorkflow(ctx, w.WorkflowID, "", "test cleanup")
			}
		}
		_ = h.Delete(ctx)
	})
	return h
}

func describe(ctx context.Context, t *testing.T, h client.ScheduleHandle) *client.ScheduleDescription {
	t.Helper()
	d, err := h.Describe(ctx)
	if err != nil {
		t.Fatalf("describe schedule: %v", err)
	}
	return d
}

// waitActions waits until the schedule has taken at least n actions and
// returns its description.
func waitActions(ctx context.Context, t *testing.T, h client.ScheduleHandle, n int, timeout time.Duration) *client.ScheduleDescription {
	t.Helper()
	var d *client.ScheduleDescription
	err := harness.WaitFor(ctx, timeout, 100*time.Millisecond, fmt.Sprintf("%d actions of %s", n, h.GetID()), func(ctx context.Context) (bool, error) {
		var err error
		d, err = h.Describe(ctx)
		return err == nil && d.Info.NumActions >= n, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// nominalTimes returns the scheduled (nominal) times of recent actions, sorted.
func nominalTimes(actions []client.ScheduleActionResult) []time.Time {
	var out []time.Time
	for _, a := range actions {
		out = append(out, a.ScheduleTime.UTC())
	}
	slices.SortFunc(out, time.Time.Compare)
	return out
}

func (tt timerTest) testInterval(t *testing.T) {
	check := harness.Get(t).Check(t, "WF-05.schedule-interval")
	quiet(t) // start times are measured
	ctx := harness.Context(t, time.Minute)
	// Every 2s: the scheduler then sleeps more than a second between fire
	// times (shorter timers fire about a second after they start; see
	// WF-05.timer-accuracy). AllowAll, so that a slow run never skips one.
	const every, n = 2 * time.Second, 4
	h := newSchedule(ctx, t, tt.c, tt.tq, client.ScheduleOptions{
		Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}}, Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL,
	}, false)
	d := waitActions(ctx, t, h, n, 30*time.Second)
	actions := slices.Clone(d.Info.RecentActions)
	slices.SortFunc(actions, func(a, b client.ScheduleActionResult) int { return a.ScheduleTime.Compare(b.ScheduleTime) })
	var gaps, lateness []time.Duration
	for i, a := range actions {
		lateness = append(lateness, a.ActualTime.Sub(a.ScheduleTime).Round(time.Millisecond))
		if i > 0 {
			gaps = append(gaps, a.ScheduleTime.Sub(actions[i-1].ScheduleTime))
		}
	}
	completed := 0
	for _, a := range actions {
		if a.StartWorkflowResult != nil && tt.c.GetWorkflow(ctx, a.StartWorkflowResult.WorkflowID, "").Get(ctx, nil) == nil {
			completed++
		}
	}
	o := intervalRun{want: n, actions: len(actions), every: every, gaps: gaps, lateness: lateness, completed: completed}
	harness.Decide(check, intervalPredicate, o, fmt.Sprintf("schedule every %s: %d actions, nominal times %v apart, each started %v after its nominal time (bound: before the next fire time, %s, the catalog's; margin %s); %d of the started workflows completed",
		every, len(actions), gaps, lateness, every, ms(every-slices.Max(append([]time.Duration{0}, lateness...))), completed), nil)
}

func (tt timerTest) testPauseTrigger(t *testing.T) {
	check := harness.Get(t).Check(t, "WF-05.schedule-pause-trigger")
	ctx := harness.Context(t, time.Minute)
	h := newSchedule(ctx, t, tt.c, tt.tq, client.ScheduleOptions{
		Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: time.Second}}}, Paused: true,
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL,
	}, false)
	createdAt := time.Now()
	// The observation window: at least two fire times pass while paused.
	time.Sleep(2500 * time.Millisecond)
	paused := describe(ctx, t, h)
	if err := h.Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
		t.Fatalf("trigger: %v", err)
	}
	triggered := waitActions(ctx, t, h, 1, 20*time.Second)
	unpausedAt := time.Now()
	if err := h.Unpause(ctx, client.ScheduleUnpauseOptions{Note: "resume"}); err != nil {
		t.Fatalf("unpause: %v", err)
	}
	resumed := waitActions(ctx, t, h, triggered.Info.NumActions+2, 20*time.Second)
	// Every action other than the triggered one must be a fire time at or
	// after the unpause, none from the paused window.
	var during, after int
	for _, a := range resumed.Info.RecentActions {
		switch {
		case len(triggered.Info.RecentActions) == 1 && a.ScheduleTime.Equal(triggered.Info.RecentActions[0].ScheduleTime):
		case a.ScheduleTime.Before(unpausedAt.Truncate(time.Second)):
			during++
		default:
			after++
		}
	}
	o := pauseRun{pausedActions: paused.Info.NumActions, pausedState: paused.Schedule.State.Paused, triggered: triggered.Info.NumActions,
		stillPaused: resumed.Schedule.State.Paused, during: during, after: after}
	harness.Decide(check, pauseTriggerPredicate, o, fmt.Sprintf("schedule every 1s created paused: %d actions in the %s after creation (paused=%v); trigger-now while paused gave %d action; after unpause %d actions in all: the triggered one, %d fire times from the paused window, %d at or after the unpause",
		paused.Info.NumActions, ms(unpausedAt.Sub(createdAt)), paused.Schedule.State.Paused, triggered.Info.NumActions, resumed.Info.NumActions, during, after),
		map[string]float64{"actions_while_paused": float64(paused.Info.NumActions)})
}

// cronTimes computes, independently of the server, the first n times after
// from at hour:minute in loc on the given weekdays (all days when empty).
func cronTimes(from time.Time, n, hour, minute int, loc *time.Location, days ...time.Weekday) []time.Time {
	var out []time.Time
	local := from.In(loc)
	for i := 0; len(out) < n; i++ {
		at := time.Date(local.Year(), local.Month(), local.Day()+i, hour, minute, 0, 0, loc)
		if at.After(from) && (len(days) == 0 || slices.Contains(days, at.Weekday())) {
			out = append(out, at.UTC())
		}
	}
	return out
}

func utcTimes(ts []time.Time) []time.Time {
	out := make([]time.Time, len(ts))
	for i, t := range ts {
		out[i] = t.UTC()
	}
	return out
}

func (tt timerTest) testCronTimezone(t *testing.T) {
	check := harness.Get(t).Check(t, "WF-05.schedule-cron-timezone")
	ctx := harness.Context(t, time.Minute)
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	// New York springs forward on 14 March 2027: 09:30 local moves from 14:30 to 13:30 UTC.
	dstFrom := time.Date(2027, 3, 10, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		spec client.ScheduleSpec
		want func(from time.Time, n int) []time.Time
	}{
		{"Asia/Tokyo 08:15 on Mondays and Thursdays", client.ScheduleSpec{CronExpressions: []string{"15 8 * * 1,4"}, TimeZoneName: "Asia/Tokyo"},
			func(from time.Time, n int) []time.Time {
				return cronTimes(from, n, 8, 15, tokyo, time.Monday, time.Thursday)
			}},
		{"America/New_York 09:30 daily from 10 March 2027", client.ScheduleSpec{CronExpressions: []string{"30 9 * * *"}, TimeZoneName: "America/New_York", StartAt: dstFrom},
			func(time.Time, int) []time.Time { return cronTimes(dstFrom, 10, 9, 30, ny) }},
	}
	var obs []cronCase
	var details []string
	for _, tc := range cases {
		from := time.Now()
		h := newSchedule(ctx, t, tt.c, tt.tq, client.ScheduleOptions{Spec: tc.spec, Paused: true}, false)
		got := utcTimes(describe(ctx, t, h).Info.NextActionTimes)
		want := tc.want(from, len(got))
		obs = append(obs, cronCase{name: tc.name, got: got, want: want})
		details = append(details, fmt.Sprintf("%s: server's next action times %s; computed in Go with time.LoadLocation %s; equal: %v",
			tc.name, fmtTimes(got), fmtTimes(want), slices.Equal(got, want)))
	}
	harness.Decide(check, cronTimezonePredicate, obs, strings.Join(details, "; "), nil)
}

func fmtTimes(ts []time.Time) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.Format("01-02T15:04Z")
	}
	return "[" + strings.Join(s, " ") + "]"
}

func (tt timerTest) testBackfill(t *testing.T) {
	check := harness.Get(t).Check(t, "WF-05.schedule-backfill")
	ctx := harness.Context(t, time.Minute)
	h := newSchedule(ctx, t, tt.c, tt.tq, client.ScheduleOptions{Spec: client.ScheduleSpec{CronExpressions: []string{"0 * * * *"}}, Paused: true}, false)
	// Five hourly fire times lie in the range, none on its edges.
	top := time.Now().UTC().Truncate(time.Hour)
	from, to := top.Add(-5*time.Hour-30*time.Minute), top.Add(-30*time.Minute)
	var want []time.Time
	for at := from.Truncate(time.Hour).Add(time.Hour); at.Before(to); at = at.Add(time.Hour) {
		want = append(want, at)
	}
	if err := h.Backfill(ctx, client.ScheduleBackfillOptions{Backfill: []client.ScheduleBackfill{
		{Start: from, End: to, Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL},
	}}); err != nil {
		t.Fatalf("backfill: %v", err)
	}
	d := waitActions(ctx, t, h, len(want), 30*time.Second)
	got := nominalTimes(d.Info.RecentActions)
	completed := 0
	for _, a := range d.Info.RecentActions {
		if a.StartWorkflowResult != nil && tt.c.GetWorkflow(ctx, a.StartWorkflowResult.WorkflowID, "").Get(ctx, nil) == nil {
			completed++
		}
	}
	o := backfillRun{actions: d.Info.NumActions, got: got, want: want, completed: completed}
	harness.Decide(check, backfillPredicate, o, fmt.Sprintf("hourly schedule (paused) backfilled over %s..%s: %d actions with nominal times %s, expected one per fire time %s; %d workflows completed",
		from.Format("15:04Z"), to.Format("15:04Z"), d.Info.NumActions, fmtTimes(got), fmtTimes(want), completed), nil)
}

// overlap describes schedule id and the workflows it started that are
// still running.
func (tt timerTest) overlap(ctx context.Context, id string) (overlapState, []string, error) {
	resp, err := tt.c.WorkflowService().DescribeSchedule(ctx, &workflowservice.DescribeScheduleRequest{Namespace: tt.ns, ScheduleId: id})
	if err != nil {
		return overlapState{}, nil, err
	}
	info := resp.GetInfo()
	var running []string
	for _, a := range info.GetRecentActions() {
		wfID := a.GetStartWorkflowResult().GetWorkflowId()
		st, err := status(ctx, tt.c, wfID)
		if err != nil {
			return overlapState{}, nil, err
		}
		if st == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			running = append(running, wfID)
		}
	}
	return overlapState{info.GetActionCount(), info.GetOverlapSkipped(), info.GetBufferSize(), int64(len(running))}, running, nil
}

func (tt timerTest) testOverlap(t *testing.T) {
	check := harness.Get(t).Check(t, "WF-05.schedule-overlap")
	ctx := harness.Context(t, 2*time.Minute)
	// A yearly schedule, backfilled over five past New Years while every run
	// holds until told to finish: each run outlasts the interval.
	from, to := time.Date(2021, 12, 31, 12, 0, 0, 0, time.UTC), time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		policy       enumspb.ScheduleOverlapPolicy
		first        overlapState
		finalActions int64
	}{
		{enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, overlapState{1, 4, 0, 1}, 1},
		{enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE, overlapState{1, 3, 1, 1}, 2},
		{enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL, overlapState{5, 0, 0, 5}, 5},
	}
	var obs []overlapCase
	var details []string
	for _, tc := range cases {
		h := newSchedule(ctx, t, tt.c, tt.tq, client.ScheduleOptions{Spec: client.ScheduleSpec{CronExpressions: []string{"0 0 1 1 *"}}, Overlap: tc.policy}, true)
		if err := h.Backfill(ctx, client.ScheduleBackfillOptions{Backfill: []client.ScheduleBackfill{{Start: from, End: to}}}); err != nil {
			t.Fatalf("backfill: %v", err)
		}
		var first overlapState
		if err := harness.WaitFor(ctx, 30*time.Second, 100*time.Millisecond, "the backfill to be processed", func(ctx context.Context) (bool, error) {
			s, _, err := tt.overlap(ctx, h.GetID())
			if err != nil {
				return false, nil
			}
			first = s
			return s.actions+s.skipped+s.buffered == 5 && s.running == s.actions, nil
		}); err != nil {
			t.Fatalf("%s: %v (last state: %s)", tc.policy, err, first)
		}
		// Finish every run, and any buffered run once it starts.
		var final overlapState
		if err := harness.WaitFor(ctx, time.Minute, 100*time.Millisecond, "every run to finish", func(ctx context.Context) (bool, error) {
			s, running, err := tt.overlap(ctx, h.GetID())
			if err != nil {
				return false, nil
			}
			for _, id := range running {
				_ = tt.c.SignalWorkflow(ctx, id, "", finishSignal, nil)
			}
			final = s
			return s.running == 0 && s.buffered == 0, nil
		}); err != nil {
			t.Fatalf("%s: %v (last state: %s)", tc.policy, err, final)
		}
		obs = append(obs, overlapCase{policy: tc.policy, first: first, wantFirst: tc.first, final: final.actions, wantFinal: tc.finalActions})
		details = append(details, fmt.Sprintf("%s: while the first run held, %s; after the runs finished, %d started in all",
			tc.policy, first, final.actions))
	}
	harness.Decide(check, overlapPredicate, obs, "5 fire times backfilled while runs hold: "+strings.Join(details, "; "), nil)
}

func testCatchup(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "WF-05.schedule-catchup")
	if ok, why := env.CanKillServer(); !ok {
		check.NotMeasured(why)
		return
	}
	ctx := harness.Context(t, 2*time.Minute)
	srv := env.StartServer(t, harness.ServerOptions{})
	c := srv.Dial(t)
	tq := harness.TaskQueue(t)
	newWorker(t, c, tq, worker.Options{}, registerTimers)
	// The outage (14s) is longer than the catch-up window (10s, the server's
	// minimum), so the oldest missed fire times fall outside it.
	const every, window, outage = 2 * time.Second, 10 * time.Second, 14 * time.Second
	h := newSchedule(ctx, t, c, tq, client.ScheduleOptions{
		Spec:    client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}},
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL, CatchupWindow: window,
	}, false)
	waitActions(ctx, t, h, 2, 30*time.Second)
	if err := srv.Kill(); err != nil {
		t.Fatalf("kill server: %v", err)
	}
	killedAt := time.Now()
	time.Sleep(outage) // the outage itself
	restartedAt := time.Now()
	if err := srv.Restart(); err != nil {
		t.Fatalf("restart server: %v", err)
	}
	// Wait until the schedule has caught up, fired once more on its own, and
	// visibility lists every run.
	var d *client.ScheduleDescription
	var runs map[time.Time]time.Time // nominal -> actual start
	if err := harness.WaitFor(ctx, time.Minute, 200*time.Millisecond, "the schedule to catch up", func(ctx context.Context) (bool, error) {
		var err error
		if d, err = h.Describe(ctx); err != nil {
			return false, nil
		}
		if runs, err = scheduledRuns(ctx, c, h.GetID()+"-wf-"); err != nil {
			return false, nil
		}
		natural := 0
		for nominal, actual := range runs {
			if nominal.After(restartedAt) && actual.Sub(nominal) < every {
				natural++
			}
		}
		return d.Info.NumActionsMissedCatchupWindow > 0 && natural > 0 && len(runs) == d.Info.NumActions, nil
	}); err != nil {
		t.Fatalf("%v (listed %d runs)", err, len(runs))
	}
	nominals := slices.SortedFunc(maps.Keys(runs), time.Time.Compare)
	// Every fire time from the first run to the last either ran or was missed.
	var missed, caughtUp []time.Time
	var caughtUpLate []time.Duration
	for at := nominals[0]; !at.After(nominals[len(nominals)-1]); at = at.Add(every) {
		actual, ran := runs[at]
		switch {
		case !ran:
			missed = append(missed, at)
		case at.Before(restartedAt) && actual.After(restartedAt):
			caughtUp = append(caughtUp, at)
			caughtUpLate = append(caughtUpLate, actual.Sub(at).Round(100*time.Millisecond))
		}
	}
	oldestSkipped := len(missed) > 0 && len(caughtUp) > 0 && missed[len(missed)-1].Before(caughtUp[0])
	o := catchupRun{missed: len(missed), serverMissed: d.Info.NumActionsMissedCatchupWindow, caughtUp: len(caughtUp), oldestSkipped: oldestSkipped,
		missedInOutage: allWithin(missed, killedAt.Add(-every), restartedAt), late: caughtUpLate, window: window, slack: catchupSlack}
	harness.Decide(check, catchupPredicate, o, fmt.Sprintf("schedule every %s with a %s catch-up window; server down %.1fs (from %s to %s): %d fire times skipped (server counts %d missed), %s; %d caught up after the restart, %s, started %v after their nominal times "+
		"(bound: the window plus %s); every nominal time ran at most once (%d runs listed for %d actions)",
		every, window, restartedAt.Sub(killedAt).Seconds(), killedAt.UTC().Format("15:04:05"), restartedAt.UTC().Format("15:04:05"),
		len(missed), d.Info.NumActionsMissedCatchupWindow, clock(missed), len(caughtUp), clock(caughtUp), caughtUpLate, catchupSlack, len(runs), d.Info.NumActions),
		map[string]float64{"missed": float64(len(missed)), "caught_up": float64(len(caughtUp)), "outage_s": restartedAt.Sub(killedAt).Seconds()})
}

// catchupSlack is how far past the catch-up window a caught-up run may
// start: the window is judged by the scheduler when it wakes after the
// restart, and the run then starts through a workflow task; 2 s is a stated
// allowance for that (the restart itself took under a second here), not a
// documented guarantee.
const catchupSlack = 2 * time.Second

func allWithin(ts []time.Time, from, to time.Time) bool {
	for _, t := range ts {
		if t.Before(from) || t.After(to) {
			return false
		}
	}
	return true
}

func clock(ts []time.Time) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.UTC().Format("15:04:05")
	}
	return "[" + strings.Join(s, " ") + "]"
}

// scheduledRuns lists the workflows a schedule started (their ids are
// prefix + nominal time) with their actual start times.
func scheduledRuns(ctx context.Context, c client.Client, prefix string) (map[time.Time]time.Time, error) {
	out := map[time.Time]time.Time{}
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: "default", Query: "WorkflowType = 'ScheduledWorkflow'", NextPageToken: token,
		})
		if err != nil {
			return nil, err
		}
		for _, e := range resp.GetExecutions() {
			id := e.GetExecution().GetWorkflowId()
			if !strings.HasPrefix(id, prefix) {
				continue
			}
			nominal, err := time.Parse(time.RFC3339, strings.TrimPrefix(id, prefix))
			if err != nil {
				return nil, fmt.Errorf("workflow id %s: %w", id, err)
			}
			out[nominal.UTC()] = e.GetStartTime().AsTime()
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return out, nil
		}
	}
}
