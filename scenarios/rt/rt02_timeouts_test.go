package rt

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/harness/stats"
)

// TestRT02 measures every timeout type: which error type each produces,
// whether it is retried, when it fires, and how workflow code catches it.
// Configured timeouts are a second or more: the server fires no timer sooner
// than about a second after creating it (see RT-01.sub-second-intervals).
func TestRT02(t *testing.T) {
	t.Run("start_to_close", testStartToClose)
	t.Run("schedule_to_close", testScheduleToClose)
	t.Run("schedule_to_start", testScheduleToStart)
	t.Run("heartbeat", testHeartbeatTimeout)
	t.Run("workflow_run_timeout", testWorkflowRunTimeout)
	t.Run("workflow_execution_timeout", testWorkflowExecutionTimeout)
	t.Run("local_activity_timeouts", testLocalActivityTimeouts)
	t.Run("accuracy_and_catch", testTimeoutAccuracy)
}

// Modes of the timeout scenarios' Scripted activity.
const (
	modeHang         = "hang"           // block until the context ends
	modeBeatThenHang = "beat-then-hang" // heartbeat 1, 2, 3 every 200ms, then block without heartbeats
	modeFailThenHang = "fail-then-hang" // attempts 1 and 2 fail at once, later ones block
)

// timeoutBody is the Scripted activity of the timeout scenarios.
func timeoutBody(ctx context.Context, attempt int32, job Job) (string, error) {
	if job.Mode == modeFailThenHang && attempt <= 2 {
		return "", fmt.Errorf("attempt %d fails by design", attempt)
	}
	if job.Mode == modeBeatThenHang {
		for i := 1; i <= 3; i++ {
			activity.RecordHeartbeat(ctx, i)
			time.Sleep(200 * time.Millisecond) // the work between heartbeats
		}
	}
	return "", hang(ctx)
}

// timeoutType is the type of the TimeoutError in err's chain, or UNSPECIFIED.
func timeoutType(err error) enumspb.TimeoutType {
	var te *temporal.TimeoutError
	if errors.As(err, &te) {
		return te.TimeoutType()
	}
	return enumspb.TIMEOUT_TYPE_UNSPECIFIED
}

// activityTimeline is when the server scheduled, last started and timed
// out the workflow's only activity, from history.
type activityTimeline struct {
	scheduled, started, closed time.Time
}

func timeline(t *testing.T, events []*historypb.HistoryEvent) activityTimeline {
	t.Helper()
	var tl activityTimeline
	tl.scheduled = firstOf(t, events, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED).GetEventTime().AsTime()
	if s := harness.EventsOf(events, enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED); len(s) > 0 {
		tl.started = s[0].GetEventTime().AsTime()
	}
	for _, ev := range events {
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT, enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED, enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			tl.closed = ev.GetEventTime().AsTime()
		}
	}
	return tl
}

// timeoutCall runs one CallWorkflow whose activity is timeoutBody and
// returns the attempts, the activity's timeline (none for a local activity,
// which history records only as a marker) and the workflow error.
func timeoutCall(t *testing.T, in CallInput) ([]attemptRec, activityTimeline, error) {
	t.Helper()
	ctx := harness.Context(t, time.Minute)
	c := harness.Get(t).Dial(t)
	tq, log := scripted(t, c, worker.Options{}, timeoutBody)
	in.Activity = ScriptedName
	_, run, err := call(ctx, t, c, tq, in)
	var tl activityTimeline
	if !in.Local {
		tl = timeline(t, mustHistory(ctx, t, c, run.GetID(), ""))
	}
	return log.attempts(), tl, err
}

func testStartToClose(t *testing.T) {
	check := harness.Get(t).Check(t, "RT-02.start-to-close")
	recs, tl, err := timeoutCall(t, CallInput{Job: Job{Mode: modeHang}, StartToClose: time.Second,
		Retry: &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 2}})
	r := activityTimeoutRun{configured: time.Second, typ: timeoutType(err), state: retryState(err), attempts: attemptNumbers(recs),
		started: !tl.started.IsZero(), fired: tl.closed.Sub(tl.started)}
	harness.Decide(check, startToClosePredicate, r, fmt.Sprintf("activity hanging past start-to-close 1s, maximum attempts 2: attempts %v ran; last attempt timed out %s after it started; workflow error type %s, retry state %s: %v",
		attemptNumbers(recs), ms(tl.closed.Sub(tl.started)), timeoutType(err), retryState(err), err),
		map[string]float64{"attempts": float64(len(recs)), "last_attempt_s": tl.closed.Sub(tl.started).Seconds()})
}

func testScheduleToClose(t *testing.T) {
	check := harness.Get(t).Check(t, "RT-02.schedule-to-close")
	// Attempts 1 and 2 fail at once, attempt 3 starts at about 2s and hangs
	// until schedule-to-close cuts it at 4s.
	const bound = 4 * time.Second
	recs, tl, err := timeoutCall(t, CallInput{Job: Job{Mode: modeFailThenHang}, StartToClose: 10 * time.Second, ScheduleToClose: bound,
		Retry: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 1}})
	due := tl.scheduled.Add(bound)
	late := 0
	for _, r := range recs {
		if r.Start.After(due) {
			late++
		}
	}
	r := activityTimeoutRun{configured: bound, typ: timeoutType(err), state: retryState(err), attempts: attemptNumbers(recs), afterDue: late,
		started: !tl.started.IsZero(), fired: tl.closed.Sub(tl.scheduled)}
	harness.Decide(check, scheduleToClosePredicate, r, fmt.Sprintf("activity failing twice then hanging, retry every 1s, schedule-to-close %s: %d attempts, %d started after the deadline; timed out %s after scheduling; workflow error type %s, retry state %s: %v",
		bound, len(recs), late, ms(tl.closed.Sub(tl.scheduled)), timeoutType(err), retryState(err), err),
		map[string]float64{"attempts": float64(len(recs)), "fired_after_s": tl.closed.Sub(tl.scheduled).Seconds()})
}

func testScheduleToStart(t *testing.T) {
	check := harness.Get(t).Check(t, "RT-02.schedule-to-start")
	recs, tl, err := timeoutCall(t, CallInput{Job: Job{Mode: modeHang}, TaskQueue: harness.UniqueID(t, "no-worker"),
		ScheduleToStart: time.Second, StartToClose: 5 * time.Second})
	r := activityTimeoutRun{configured: time.Second, typ: timeoutType(err), attempts: attemptNumbers(recs), started: !tl.started.IsZero(),
		fired: tl.closed.Sub(tl.scheduled)}
	harness.Decide(check, scheduleToStartPredicate, r, fmt.Sprintf("activity on a task queue no worker polls, schedule-to-start 1s: %d attempts started; timed out %s after scheduling; workflow error type %s: %v",
		len(recs), ms(tl.closed.Sub(tl.scheduled)), timeoutType(err), err),
		map[string]float64{"fired_after_s": tl.closed.Sub(tl.scheduled).Seconds()})
}

func testHeartbeatTimeout(t *testing.T) {
	check := harness.Get(t).Check(t, "RT-02.heartbeat")
	const startToClose = 20 * time.Second
	recs, tl, err := timeoutCall(t, CallInput{Job: Job{Mode: modeBeatThenHang}, StartToClose: startToClose, Heartbeat: time.Second,
		Retry: &temporal.RetryPolicy{MaximumAttempts: 1}})
	took := tl.closed.Sub(tl.started)
	r := heartbeatRun{typ: timeoutType(err), attempts: len(recs), beatFor: 600 * time.Millisecond, hb: time.Second, startToClose: startToClose, took: took}
	bound := r.beatFor + throttleOf(r.hb) + r.hb + realTime.late
	harness.Decide(check, heartbeatTimeoutPredicate, r, fmt.Sprintf("activity heartbeating for %s then silent, heartbeat timeout %s, start-to-close %s: %d attempt(s) ended before it, timed out %s after it started "+
		"(bound %s: the last heartbeat call, the SDK's throttle of %s, the timeout and %s of real-time tolerance; margin %s); workflow error type %s: %v",
		ms(r.beatFor), r.hb, startToClose, r.attempts, ms(took), ms(bound), ms(throttleOf(r.hb)), ms(realTime.late), ms(bound-took), timeoutType(err), err),
		map[string]float64{"fired_after_start_s": took.Seconds()})
}

// workflowSpan describes a closed workflow chain from its first run's start
// to its latest run's close.
type workflowSpan struct {
	status      enumspb.WorkflowExecutionStatus
	firstStatus enumspb.WorkflowExecutionStatus
	runs        int // 1, or 2 when the latest run is not the first
	firstStart  time.Time
	lastStart   time.Time
	closed      time.Time
}

func span(ctx context.Context, t *testing.T, c client.Client, id, firstRun string) workflowSpan {
	t.Helper()
	first, err := c.DescribeWorkflowExecution(ctx, id, firstRun)
	if err != nil {
		t.Fatalf("describe %s: %v", id, err)
	}
	latest, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		t.Fatalf("describe %s: %v", id, err)
	}
	fi, li := first.GetWorkflowExecutionInfo(), latest.GetWorkflowExecutionInfo()
	s := workflowSpan{status: li.GetStatus(), firstStatus: fi.GetStatus(), runs: 1,
		firstStart: fi.GetStartTime().AsTime(), lastStart: li.GetStartTime().AsTime(), closed: li.GetCloseTime().AsTime()}
	if li.GetExecution().GetRunId() != firstRun {
		s.runs = 2
	}
	return s
}

func testWorkflowRunTimeout(t *testing.T) {
	check := harness.Get(t).Check(t, "RT-02.workflow-run-timeout")
	ctx := harness.Context(t, time.Minute)
	c := harness.Get(t).Dial(t)
	tq := harness.TaskQueue(t)
	startWorker(t, c, tq, "", worker.Options{}, nil)
	const timeout = 2 * time.Second
	run := start(ctx, t, c, client.StartWorkflowOptions{TaskQueue: tq, WorkflowRunTimeout: timeout}, SleepWorkflow, time.Hour)
	firstRun := run.GetRunID()
	err := run.Get(ctx, nil)
	s := span(ctx, t, c, run.GetID(), firstRun)
	took := s.closed.Sub(s.firstStart)
	r := workflowSpanRun{name: "sleep", timeout: timeout, runs: s.runs, status: s.status, took: took}
	harness.Decide(check, runTimeoutPredicate, r, fmt.Sprintf("workflow sleeping an hour under run timeout %s: closed with status %s %s after it started, %s late (bound %s: 10%% of the 1s timeouts measured; margin %s); client error: %v",
		timeout, s.status, ms(took), ms(took-timeout), ms(timeoutLateBound), ms(timeout+timeoutLateBound-took), err), map[string]float64{"closed_after_s": took.Seconds()})
}

// testWorkflowExecutionTimeout: a chain whose first run continues as new (or
// fails and is retried) after 1.5s, and whose second run would sleep an
// hour, is closed when the execution timeout elapses from the chain's start.
// The 4s timeout leaves the second run at least a second before the
// deadline even when the first run starts a second late (a worker starting
// under load): the server fires a timer due sooner than about a second after
// it is created about a second late (see RT-01.sub-second-intervals), and
// retries no run that could not start before the deadline.
func testWorkflowExecutionTimeout(t *testing.T) {
	check := harness.Get(t).Check(t, "RT-02.workflow-execution-timeout")
	const timeout, firstRun = 4 * time.Second, 1500 * time.Millisecond
	modes := []string{ChainContinueAsNew, ChainRetry}
	spans := make([]workflowSpan, len(modes))
	t.Run("chains", func(t *testing.T) {
		for i, mode := range modes {
			t.Run(mode, func(t *testing.T) {
				t.Parallel()
				ctx := harness.Context(t, time.Minute)
				c := harness.Get(t).Dial(t)
				tq := harness.TaskQueue(t)
				startWorker(t, c, tq, "", worker.Options{}, nil)
				o := client.StartWorkflowOptions{TaskQueue: tq, WorkflowExecutionTimeout: timeout}
				if mode == ChainRetry {
					o.RetryPolicy = &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 1}
				}
				run := start(ctx, t, c, o, ChainWorkflow, mode, firstRun)
				id := run.GetRunID()
				_ = run.Get(ctx, nil) // the outcome is read from the runs' descriptions
				spans[i] = span(ctx, t, c, run.GetID(), id)
			})
		}
	})
	if t.Failed() {
		return
	}
	var chains []workflowSpanRun
	var details []string
	m := map[string]float64{}
	for i, s := range spans {
		took := s.closed.Sub(s.firstStart)
		perRun := s.lastStart.Add(timeout).Sub(s.firstStart)
		chains = append(chains, workflowSpanRun{name: modes[i], timeout: timeout, runs: s.runs, status: s.status, took: took, perRun: perRun})
		details = append(details, fmt.Sprintf("%s: first run closed %s, second run started %s into the chain and closed %s with the chain %s after its start (a per-run timeout would have closed it at %s)",
			modes[i], s.firstStatus, ms(s.lastStart.Sub(s.firstStart)), s.status, ms(took), ms(perRun))+
			fmt.Sprintf(", %s after the deadline (bound %s, halfway to the per-run close)", ms(took-timeout), ms((perRun-timeout)/2)))
		m[modes[i]+"_closed_after_s"] = took.Seconds()
	}
	harness.Decide(check, executionTimeoutPredicate, chains, fmt.Sprintf("execution timeout %s (each chain must close after it and nearer to it than to the close a per-run timeout would give): %v", timeout, details), m)
}

func testLocalActivityTimeouts(t *testing.T) {
	check := harness.Get(t).Check(t, "RT-02.local-activity-timeouts")
	cases := []struct {
		name string
		want enumspb.TimeoutType
		in   CallInput
	}{
		{"start-to-close 1s, schedule-to-close 10s, one attempt", enumspb.TIMEOUT_TYPE_START_TO_CLOSE,
			CallInput{Local: true, StartToClose: time.Second, ScheduleToClose: 10 * time.Second, Retry: &temporal.RetryPolicy{MaximumAttempts: 1}}},
		{"schedule-to-close 1s, start-to-close 5s, cut during attempt 1", enumspb.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE,
			CallInput{Local: true, StartToClose: 5 * time.Second, ScheduleToClose: time.Second}},
		{"start-to-close 1s, retry every 200ms, schedule-to-close 2.5s, cut during attempt 3", enumspb.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE,
			CallInput{Local: true, StartToClose: time.Second, ScheduleToClose: 2500 * time.Millisecond,
				Retry: &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 1}}},
	}
	var obs []localTimeout
	var details []string
	for _, tc := range cases {
		tc.in.Job = Job{Mode: modeHang}
		began := time.Now()
		recs, _, err := timeoutCall(t, tc.in)
		o := localTimeout{name: tc.name, want: tc.want, got: timeoutType(err), attempts: len(recs), took: time.Since(began)}
		obs = append(obs, o)
		details = append(details, fmt.Sprintf("%s: %d attempts, workflow error type %s after %s (want %s)",
			tc.name, o.attempts, o.got, ms(o.took), tc.want))
	}
	harness.Decide(check, localTimeoutsPredicate, obs, fmt.Sprintf("local activities hanging: %v", details), nil)
}

// timeoutSample is one call of the accuracy run, with the timeout it must
// hit and when: after the configured duration from the activity's
// scheduling or start.
type timeoutSample struct {
	in        CallInput
	want      enumspb.TimeoutType
	after     time.Duration
	fromStart bool
	details   int  // heartbeat details the timeout must carry, -1 none
	timed     bool // counts towards accuracy (its timer's base is known)
}

// timeoutRun is a TimeoutsWorkflow making the calls of samples at once.
type timeoutRun struct {
	samples []timeoutSample
	run     client.WorkflowRun
}

// measure waits for the run and returns the lateness of each timed sample
// behind its configured value, in ms, and what history recorded and the
// workflow caught for each sample.
func (r timeoutRun) measure(ctx context.Context, t *testing.T, c client.Client) (lateness map[enumspb.TimeoutType][]float64, records []timeoutRecord) {
	t.Helper()
	lateness = map[enumspb.TimeoutType][]float64{}
	var caught []Caught
	wfErr := r.run.Get(ctx, &caught)
	byActivity := activityEvents(mustHistory(ctx, t, c, r.run.GetID(), ""))
	for i, s := range r.samples {
		rec := timeoutRecord{id: r.run.GetID() + "/" + s.in.ActivityID, want: s.want, wantDetails: s.details, histDetails: -1, caughtDetails: -1}
		if wfErr != nil {
			rec.workflowErr = wfErr.Error()
		} else if i < len(caught) {
			rec.caughtType, rec.caughtDetails, rec.fallback = caught[i].TimeoutType, caught[i].Details, caught[i].Fallback
		}
		ev := byActivity[s.in.ActivityID]
		if ev == nil || ev.timedOut == nil {
			records = append(records, rec)
			continue
		}
		info := ev.timedOut.GetActivityTaskTimedOutEventAttributes().GetFailure().GetTimeoutFailureInfo()
		rec.recorded, rec.histType = true, info.GetTimeoutType()
		if p := info.GetLastHeartbeatDetails(); p != nil {
			if err := converter.GetDefaultDataConverter().FromPayloads(p, &rec.histDetails); err != nil {
				t.Fatalf("heartbeat details of %s: %v", s.in.ActivityID, err)
			}
		}
		records = append(records, rec)
		if s.timed {
			base := ev.scheduled
			if s.fromStart {
				base = ev.started
			}
			lateness[s.want] = append(lateness[s.want], msOf(ev.timedOut.GetEventTime().AsTime().Sub(base)-s.after))
		}
	}
	return lateness, records
}

// describeRecords counts what history recorded and the workflows caught, by
// timeout type, and lists every record that differs from what it should be.
func describeRecords(records []timeoutRecord) string {
	type key struct {
		hist             enumspb.TimeoutType
		details          int
		caught, fallback string
		caughtDetails    int
	}
	counts := map[key]int{}
	var order []key
	var wrong []string
	for _, r := range records {
		k := key{r.histType, r.histDetails, r.caughtType, r.fallback, r.caughtDetails}
		if !r.recorded {
			k.hist = enumspb.TIMEOUT_TYPE_UNSPECIFIED
		}
		if counts[k] == 0 {
			order = append(order, k)
		}
		counts[k]++
		if !timeoutsRecordedAndCaught(recordedTimeouts{activity: []timeoutRecord{r}, wantActivity: 1}) {
			wrong = append(wrong, fmt.Sprintf("%s (want %s, details %d): recorded %t as %s details %d, caught %q details %d, fallback %q, workflow error %q",
				r.id, r.want, r.wantDetails, r.recorded, r.histType, r.histDetails, r.caughtType, r.caughtDetails, r.fallback, r.workflowErr))
		}
	}
	var parts []string
	for _, k := range order {
		hist := "no ActivityTaskTimedOut event"
		if k.hist != enumspb.TIMEOUT_TYPE_UNSPECIFIED {
			hist = fmt.Sprintf("ActivityTaskTimedOut type %s with heartbeat details %s", k.hist, detailsText(k.details))
		}
		caught := "not caught"
		if k.caught != "" {
			caught = fmt.Sprintf("caught as TimeoutError type %s details %s, fallback %q", k.caught, detailsText(k.caughtDetails), k.fallback)
		}
		parts = append(parts, fmt.Sprintf("%d× %s, %s", counts[k], hist, caught))
	}
	return fmt.Sprintf("%s; not as expected: %v", strings.Join(parts, "; "), wrong)
}

func detailsText(d int) string {
	if d < 0 {
		return "none"
	}
	return fmt.Sprint(d)
}

// testTimeoutAccuracy runs, at once and each in its own workflow, three
// timeouts of each activity timeout type, a heartbeat timeout carrying
// details and three workflow run timeouts; it measures when each fired
// against its configured value, and checks that history records each with
// its type and that the workflow caught each as a TimeoutError and took its
// fallback path. A fourth workflow with four start-to-close timeouts due
// within milliseconds of each other shows how timeouts of one workflow
// cluster.
func testTimeoutAccuracy(t *testing.T) {
	env := harness.Get(t)
	accuracy := env.Check(t, "RT-02.accuracy")
	recorded := env.Check(t, "RT-02.recorded-and-catchable")
	ctx := harness.Context(t, time.Minute)
	c := env.Dial(t)
	tq, _ := scripted(t, c, worker.Options{}, timeoutBody)
	hangJob := Job{Mode: modeHang}
	once := &temporal.RetryPolicy{MaximumAttempts: 1}
	startToClose := timeoutSample{CallInput{Job: hangJob, StartToClose: time.Second, Retry: once}, enumspb.TIMEOUT_TYPE_START_TO_CLOSE, time.Second, true, -1, true}
	kinds := []timeoutSample{
		startToClose,
		{CallInput{Job: hangJob, TaskQueue: harness.UniqueID(t, "no-worker"), ScheduleToStart: time.Second, StartToClose: 5 * time.Second},
			enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START, time.Second, false, -1, true},
		// The server caps start-to-close at schedule-to-close; counted from
		// the later start, it comes due after schedule-to-close.
		{CallInput{Job: hangJob, ScheduleToClose: 2 * time.Second, StartToClose: 10 * time.Second, Retry: once},
			enumspb.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE, 2 * time.Second, false, -1, true},
		// No heartbeat at all: the timer runs from the start.
		{CallInput{Job: hangJob, StartToClose: 10 * time.Second, Heartbeat: time.Second, Retry: once},
			enumspb.TIMEOUT_TYPE_HEARTBEAT, time.Second, true, -1, true},
	}
	launch := func(samples ...timeoutSample) timeoutRun {
		calls := make([]CallInput, len(samples))
		for i := range samples {
			samples[i].in.Activity = ScriptedName
			samples[i].in.ActivityID = fmt.Sprintf("sample-%d", i)
			calls[i] = samples[i].in
		}
		return timeoutRun{samples, start(ctx, t, c, client.StartWorkflowOptions{TaskQueue: tq}, TimeoutsWorkflow, calls)}
	}
	var runs []timeoutRun
	for _, k := range kinds {
		for range 3 {
			runs = append(runs, launch(k))
		}
	}
	runs = append(runs, launch(timeoutSample{CallInput{Job: Job{Mode: modeBeatThenHang}, StartToClose: 10 * time.Second, Heartbeat: time.Second, Retry: once},
		enumspb.TIMEOUT_TYPE_HEARTBEAT, 0, true, 3, false}))
	const runTimeout = time.Second
	var sleepers []client.WorkflowRun
	for range 3 {
		sleepers = append(sleepers, start(ctx, t, c, client.StartWorkflowOptions{TaskQueue: tq, WorkflowRunTimeout: runTimeout}, SleepWorkflow, time.Hour))
	}
	cluster := launch(startToClose, startToClose, startToClose, startToClose)

	lateness := map[enumspb.TimeoutType][]float64{}
	rec := recordedTimeouts{runsWanted: len(sleepers)}
	for _, r := range append(runs, cluster) {
		rec.wantActivity += len(r.samples)
	}
	for _, r := range runs {
		l, records := r.measure(ctx, t, c)
		for k, v := range l {
			lateness[k] = append(lateness[k], v...)
		}
		rec.activity = append(rec.activity, records...)
	}
	clusterLate, clusterRecords := cluster.measure(ctx, t, c)
	rec.activity = append(rec.activity, clusterRecords...)
	var runTimedOut []string
	for _, r := range sleepers {
		wfEvents := mustHistory(ctx, t, c, r.GetID(), "")
		to := harness.EventsOf(wfEvents, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT)
		if len(to) != 1 {
			runTimedOut = append(runTimedOut, fmt.Sprintf("%s: %d WorkflowExecutionTimedOut events", r.GetID(), len(to)))
			continue
		}
		rec.runs++
		startedAt := firstOf(t, wfEvents, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED).GetEventTime().AsTime()
		lateness[enumspb.TIMEOUT_TYPE_UNSPECIFIED] = append(lateness[enumspb.TIMEOUT_TYPE_UNSPECIFIED], msOf(to[0].GetEventTime().AsTime().Sub(startedAt)-runTimeout))
	}

	harness.Decide(recorded, recordedPredicate, rec, fmt.Sprintf("%d activity timeouts in %d workflows (3 each of StartToClose, ScheduleToStart, ScheduleToClose, Heartbeat without details; a Heartbeat after details 1-3; one workflow with 4 StartToClose): %s; "+
		"%d of %d workflow run timeouts recorded as WorkflowExecutionTimedOut %v",
		len(rec.activity), len(runs)+1, describeRecords(rec.activity), rec.runs, rec.runsWanted, runTimedOut),
		map[string]float64{"activity_timeouts": float64(len(rec.activity)), "run_timeouts_recorded": float64(rec.runs)})

	var all []float64
	perType := ""
	for _, k := range []enumspb.TimeoutType{enumspb.TIMEOUT_TYPE_START_TO_CLOSE, enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START, enumspb.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE, enumspb.TIMEOUT_TYPE_HEARTBEAT, enumspb.TIMEOUT_TYPE_UNSPECIFIED} {
		name := k.String()
		if k == enumspb.TIMEOUT_TYPE_UNSPECIFIED {
			name = "WorkflowRun"
		}
		perType += fmt.Sprintf(" %s %s;", name, fmtMS(lateness[k]))
		all = append(all, lateness[k]...)
	}
	s := stats.Summarize(all)
	lo, hi := p95Interval(all)
	m := s.Metrics("lateness_ms")
	m["lateness_ms_p95_lo"], m["lateness_ms_p95_hi"] = lo, hi
	cl := stats.Summarize(clusterLate[enumspb.TIMEOUT_TYPE_START_TO_CLOSE])
	m["cluster_lateness_ms_max"] = cl.Max
	clusterNote := ""
	if cl.Max > 500 {
		clusterNote = " (consistent with the server arming a workflow's next activity timer only after the previous one fires, and no sooner than about 1s after its timer queue last read: history.timerProcessorMaxTimeShift)"
	}
	harness.Decide(accuracy, timeoutAccuracyPredicate, accuracyRun{want: len(kinds)*3 + len(sleepers), ms: all}, fmt.Sprintf(
		"%d timeouts, one per workflow, fired at once on the dev server; lateness behind the configured value (ms, from history):%s p50 %.1fms, p95 %.1fms (95%% interval %.1f-%.1fms), max %.1fms, min %.1fms; "+
			"the p95 interval's upper end must be under %s (10%% of the 1s timeouts: margin %.1fms) and none early by more than %s. "+
			"Not counted: four start-to-close timeouts of one workflow due within milliseconds of each other were late by %s ms%s",
		s.N, perType, s.P50, s.P95, lo, hi, s.Max, s.Min, ms(timeoutLateBound), msOf(timeoutLateBound)-hi, realTime.early, fmtMS(clusterLate[enumspb.TIMEOUT_TYPE_START_TO_CLOSE]), clusterNote), m)
}

func fmtMS(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.0f", x)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// activityRecord is one activity's events, by activity id.
type activityRecord struct {
	scheduled, started time.Time
	timedOut           *historypb.HistoryEvent
}

func activityEvents(events []*historypb.HistoryEvent) map[string]*activityRecord {
	byEvent := map[int64]*activityRecord{}
	byID := map[string]*activityRecord{}
	for _, ev := range events {
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			r := &activityRecord{scheduled: ev.GetEventTime().AsTime()}
			byEvent[ev.GetEventId()] = r
			byID[ev.GetActivityTaskScheduledEventAttributes().GetActivityId()] = r
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			if r := byEvent[ev.GetActivityTaskStartedEventAttributes().GetScheduledEventId()]; r != nil {
				r.started = ev.GetEventTime().AsTime()
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
			if r := byEvent[ev.GetActivityTaskTimedOutEventAttributes().GetScheduledEventId()]; r != nil {
				r.timedOut = ev
			}
		}
	}
	return byID
}
