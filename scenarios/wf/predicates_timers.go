package wf

import (
	"errors"
	"fmt"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/durabench/durabench/harness/predicate"
)

// The pass conditions of WF-05's checks, each a named predicate over timer
// events in history and what the server says of its schedules.

func timerPredicates() []predicate.Spec {
	return []predicate.Spec{
		durableSleepPredicate.Spec(), timerRestartPredicate.Spec(), timerCancelPredicate.Spec(),
		intervalPredicate.Spec(), cronTimezonePredicate.Spec(), pauseTriggerPredicate.Spec(),
		backfillPredicate.Spec(), overlapPredicate.Spec(), timerAccuracyPredicate.Spec(), catchupPredicate.Spec(),
	}
}

// sleepRun is a long workflow.Sleep in the time-skipping test environment
// (WF-05.durable-sleep).
type sleepRun struct {
	completed bool
	err       error
	sleep     time.Duration // asked for
	virtual   time.Duration // workflow time from sleeping to resuming
	wall      time.Duration
	wallBound time.Duration
}

// skippedDurably: the workflow resumed after at least the whole sleep in
// workflow time, within wallBound of wall time.
func skippedDurably(o sleepRun) bool {
	return o.completed && o.err == nil && o.virtual >= o.sleep && o.wall < o.wallBound
}

const thirtyDays = 30 * 24 * time.Hour

var durableSleepPredicate = predicate.New("WF-05.durable-sleep", "skippedDurably", skippedDurably,
	predicate.Case[sleepRun]{Name: "30 days in 2 ms", In: sleepRun{completed: true, sleep: thirtyDays, virtual: thirtyDays, wall: 2 * time.Millisecond, wallBound: time.Second}, Want: true},
	predicate.Case[sleepRun]{Name: "no time skipping: the sleep blocks for real until the deadline",
		In: sleepRun{err: errors.New("deadline exceeded"), sleep: thirtyDays, wall: time.Minute, wallBound: time.Second}, Want: false},
	predicate.Case[sleepRun]{Name: "the timer fired early: resumed after 1 day",
		In: sleepRun{completed: true, sleep: thirtyDays, virtual: 24 * time.Hour, wall: 2 * time.Millisecond, wallBound: time.Second}, Want: false},
)

// timerRestart is a timer whose due time fell inside a server outage
// (WF-05.timer-survives-restart).
type timerRestart struct {
	err          error
	fired        int           // TimerFired events
	killedBefore time.Duration // from the kill to the timer's due time
	restartAfter time.Duration // from the due time to the restart
	firedAfter   time.Duration // from the restart to TimerFired
	timer        time.Duration
}

// firedOnRecovery: the outage covered the due time (killed before it,
// restarted after it), the timer fired once and the workflow resumed, and it
// fired within the timer's own duration of the restart: a platform that
// re-armed timers from zero on restart, or lost them, fails.
func firedOnRecovery(o timerRestart) bool {
	return o.err == nil && o.fired == 1 && o.killedBefore > 0 && o.restartAfter > 0 && o.firedAfter >= 0 && o.firedAfter < o.timer
}

var timerRestartPredicate = predicate.New("WF-05.timer-survives-restart", "firedOnRecovery", firedOnRecovery,
	predicate.Case[timerRestart]{Name: "fired 235 ms after the restart",
		In: timerRestart{fired: 1, killedBefore: 2985 * time.Millisecond, restartAfter: 500 * time.Millisecond, firedAfter: 235 * time.Millisecond, timer: 3 * time.Second}, Want: true},
	predicate.Case[timerRestart]{Name: "timers kept in memory: lost with the server",
		In: timerRestart{err: errors.New("context deadline exceeded"), killedBefore: 2985 * time.Millisecond, restartAfter: 500 * time.Millisecond, firedAfter: -1, timer: 3 * time.Second}, Want: false},
	predicate.Case[timerRestart]{Name: "re-armed from zero on restart",
		In: timerRestart{fired: 1, killedBefore: 2985 * time.Millisecond, restartAfter: 500 * time.Millisecond, firedAfter: 3100 * time.Millisecond, timer: 3 * time.Second}, Want: false},
)

// timerCancel is a one-hour timer cancelled on a signal (WF-05.timer-cancel).
type timerCancel struct {
	err              error
	path, timerErr   string
	cancelled, fired int // TimerCanceled and TimerFired events
}

// cancelledNotFired: the workflow took the signal path, its timer returned
// CanceledError, and history records the cancellation and no firing.
func cancelledNotFired(o timerCancel) bool {
	return o.err == nil && o.path == "signal" && o.timerErr == "CanceledError" && o.cancelled == 1 && o.fired == 0
}

var timerCancelPredicate = predicate.New("WF-05.timer-cancel", "cancelledNotFired", cancelledNotFired,
	predicate.Case[timerCancel]{Name: "cancelled", In: timerCancel{path: "signal", timerErr: "CanceledError", cancelled: 1}, Want: true},
	predicate.Case[timerCancel]{Name: "timers cannot be cancelled: it still fires", In: timerCancel{path: "signal", timerErr: "", fired: 1}, Want: false},
)

// intervalRun is an every-2-s schedule's first actions (WF-05.schedule-interval).
type intervalRun struct {
	want, actions int
	every         time.Duration
	gaps          []time.Duration // between nominal times
	lateness      []time.Duration // from each nominal time to the actual start
	completed     int             // started workflows that completed
}

// firesEveryInterval: enough actions, nominal times exactly the interval
// apart, each started at or after its nominal time and before the next
// (the catalog's bound), and every started workflow completed.
func firesEveryInterval(o intervalRun) bool {
	ok := o.actions >= o.want && len(o.gaps) == o.actions-1 && len(o.lateness) == o.actions && o.completed == o.actions
	for _, g := range o.gaps {
		ok = ok && g == o.every
	}
	for _, l := range o.lateness {
		ok = ok && l >= 0 && l < o.every
	}
	return ok
}

var intervalPredicate = predicate.New("WF-05.schedule-interval", "firesEveryInterval", firesEveryInterval,
	predicate.Case[intervalRun]{Name: "4 actions 2 s apart, up to 222 ms late",
		In: intervalRun{want: 4, actions: 4, every: 2 * time.Second, gaps: slices.Repeat([]time.Duration{2 * time.Second}, 3),
			lateness: []time.Duration{222 * time.Millisecond, 25 * time.Millisecond, 37 * time.Millisecond, 26 * time.Millisecond}, completed: 4}, Want: true},
	predicate.Case[intervalRun]{Name: "a polling scheduler: fires a whole interval late",
		In: intervalRun{want: 4, actions: 4, every: 2 * time.Second, gaps: slices.Repeat([]time.Duration{2 * time.Second}, 3),
			lateness: slices.Repeat([]time.Duration{2100 * time.Millisecond}, 4), completed: 4}, Want: false},
	predicate.Case[intervalRun]{Name: "drifting interval",
		In: intervalRun{want: 4, actions: 4, every: 2 * time.Second, gaps: []time.Duration{2 * time.Second, 2300 * time.Millisecond, 2300 * time.Millisecond},
			lateness: slices.Repeat([]time.Duration{30 * time.Millisecond}, 4), completed: 4}, Want: false},
)

// cronCase is one cron schedule's next action times as the server reports
// them and as Go's time zone database gives them.
type cronCase struct {
	name      string
	got, want []time.Time
}

// serverMatchesTZDB: both time zones were checked, and the server reported
// next action times equal to those computed independently for each.
func serverMatchesTZDB(cases []cronCase) bool {
	ok := len(cases) >= 2
	for _, c := range cases {
		ok = ok && len(c.got) > 0 && slices.Equal(c.got, c.want)
	}
	return ok
}

var (
	nyBefore = time.Date(2027, 3, 13, 14, 30, 0, 0, time.UTC)
	nyAfter  = time.Date(2027, 3, 14, 13, 30, 0, 0, time.UTC)
	tokyoMon = time.Date(2026, 12, 6, 23, 15, 0, 0, time.UTC)
)

var cronTimezonePredicate = predicate.New("WF-05.schedule-cron-timezone", "serverMatchesTZDB", serverMatchesTZDB,
	predicate.Case[[]cronCase]{Name: "Tokyo and New York across the change",
		In: []cronCase{{"tokyo", []time.Time{tokyoMon}, []time.Time{tokyoMon}}, {"ny", []time.Time{nyBefore, nyAfter}, []time.Time{nyBefore, nyAfter}}}, Want: true},
	predicate.Case[[]cronCase]{Name: "daylight saving ignored: 14:30 UTC after the change",
		In: []cronCase{{"tokyo", []time.Time{tokyoMon}, []time.Time{tokyoMon}}, {"ny", []time.Time{nyBefore, nyBefore.Add(24 * time.Hour)}, []time.Time{nyBefore, nyAfter}}}, Want: false},
	predicate.Case[[]cronCase]{Name: "time zone ignored: UTC",
		In: []cronCase{{"tokyo", []time.Time{tokyoMon.Add(9 * time.Hour)}, []time.Time{tokyoMon}}, {"ny", []time.Time{nyBefore, nyAfter}, []time.Time{nyBefore, nyAfter}}}, Want: false},
)

// pauseRun is a 1-s schedule created paused, triggered, then unpaused
// (WF-05.schedule-pause-trigger).
type pauseRun struct {
	pausedActions int  // actions while paused, over at least two fire times
	pausedState   bool // the schedule described as paused then
	triggered     int  // actions after trigger-now
	stillPaused   bool // described as paused after the unpause
	during, after int  // later actions with nominal times in the paused window, and at or after the unpause
}

// pauseHoldsTriggerFires: nothing fired while paused, trigger-now started
// exactly one run, and after the unpause the schedule fired again, never for
// a fire time from the paused window.
func pauseHoldsTriggerFires(o pauseRun) bool {
	return o.pausedActions == 0 && o.pausedState && o.triggered == 1 && !o.stillPaused && o.during == 0 && o.after >= 2
}

var pauseTriggerPredicate = predicate.New("WF-05.schedule-pause-trigger", "pauseHoldsTriggerFires", pauseHoldsTriggerFires,
	predicate.Case[pauseRun]{Name: "paused, triggered once, resumed", In: pauseRun{pausedState: true, triggered: 1, after: 2}, Want: true},
	predicate.Case[pauseRun]{Name: "pause ignored: fired while paused", In: pauseRun{pausedActions: 2, pausedState: true, triggered: 3, after: 2}, Want: false},
	predicate.Case[pauseRun]{Name: "unpause replays the paused window", In: pauseRun{pausedState: true, triggered: 1, during: 2, after: 2}, Want: false},
)

// backfillRun is a paused hourly schedule backfilled over five past fire
// times (WF-05.schedule-backfill).
type backfillRun struct {
	actions   int
	got, want []time.Time // nominal times of the actions, and the fire times in the range
	completed int
}

// onePerMissedFire: one action per fire time in the range, with exactly
// those nominal times, each run completed.
func onePerMissedFire(o backfillRun) bool {
	return len(o.want) > 0 && o.actions == len(o.want) && slices.Equal(o.got, o.want) && o.completed == len(o.want)
}

var fiveHours = []time.Time{
	time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC), time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC), time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC),
	time.Date(2026, 12, 3, 11, 0, 0, 0, time.UTC), time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC),
}

var backfillPredicate = predicate.New("WF-05.schedule-backfill", "onePerMissedFire", onePerMissedFire,
	predicate.Case[backfillRun]{Name: "five of five", In: backfillRun{actions: 5, got: fiveHours, want: fiveHours, completed: 5}, Want: true},
	predicate.Case[backfillRun]{Name: "backfill collapsed into one run", In: backfillRun{actions: 1, got: fiveHours[4:], want: fiveHours, completed: 1}, Want: false},
)

// overlapState is what a schedule reports about overlapping runs; running
// counts the started workflows still open.
type overlapState struct {
	actions, skipped, buffered, running int64
}

func (s overlapState) String() string {
	return fmt.Sprintf("%d started, %d skipped, %d buffered, %d running", s.actions, s.skipped, s.buffered, s.running)
}

// overlapCase is one overlap policy's schedule backfilled over five fire
// times while each run holds.
type overlapCase struct {
	policy           enumspb.ScheduleOverlapPolicy
	first, wantFirst overlapState // while the first run held
	final, wantFinal int64        // runs started in all, after every run finished
}

// overlapAsDocumented: all three policies were observed, each with the
// started, skipped, buffered and running counts its documentation gives
// while the first run held, and the runs it starts in all.
func overlapAsDocumented(cases []overlapCase) bool {
	ok := len(cases) == 3
	for _, c := range cases {
		ok = ok && c.first == c.wantFirst && c.final == c.wantFinal
	}
	return ok
}

var overlapDocumented = []overlapCase{
	{enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, overlapState{1, 4, 0, 1}, overlapState{1, 4, 0, 1}, 1, 1},
	{enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE, overlapState{1, 3, 1, 1}, overlapState{1, 3, 1, 1}, 2, 2},
	{enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL, overlapState{5, 0, 0, 5}, overlapState{5, 0, 0, 5}, 5, 5},
}

var overlapPredicate = predicate.New("WF-05.schedule-overlap", "overlapAsDocumented", overlapAsDocumented,
	predicate.Case[[]overlapCase]{Name: "Skip, BufferOne, AllowAll as documented", In: overlapDocumented, Want: true},
	predicate.Case[[]overlapCase]{Name: "every policy behaves as AllowAll", In: []overlapCase{
		{enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, overlapState{5, 0, 0, 5}, overlapState{1, 4, 0, 1}, 5, 1},
		overlapDocumented[1], overlapDocumented[2]}, Want: false},
)

// timerAccuracy is how late 100 real-server timers of 1-3 s fired, one per
// workflow (WF-05.timer-accuracy), in seconds.
type timerAccuracy struct {
	n, want    int
	min        float64 // the earliest (negative: fired before its due time)
	p95, p95Hi float64 // p95 lateness and the upper end of its bootstrap 95% interval
	bound      float64
}

// timersPrompt: every timer fired, none before its due time, and the upper
// end of the 95% interval of the p95 lateness is under the bound (judged on
// the interval: a timing check).
func timersPrompt(o timerAccuracy) bool {
	return o.n == o.want && o.n > 0 && o.min >= 0 && o.p95Hi < o.bound
}

var timerAccuracyPredicate = predicate.New("WF-05.timer-accuracy", "timersPrompt", timersPrompt,
	predicate.Case[timerAccuracy]{Name: "p95 4 ms, interval up to 9 ms", In: timerAccuracy{n: 100, want: 100, min: 0.001, p95: 0.004, p95Hi: 0.009, bound: 0.1}, Want: true},
	predicate.Case[timerAccuracy]{Name: "timers polled every second: p95 0.95 s late", In: timerAccuracy{n: 100, want: 100, min: 0.01, p95: 0.95, p95Hi: 0.98, bound: 0.1}, Want: false},
	predicate.Case[timerAccuracy]{Name: "p95 under the bound, its interval reaching above", In: timerAccuracy{n: 100, want: 100, min: 0.001, p95: 0.08, p95Hi: 0.2, bound: 0.1}, Want: false},
	predicate.Case[timerAccuracy]{Name: "a timer fired early", In: timerAccuracy{n: 100, want: 100, min: -0.2, p95: 0.004, p95Hi: 0.009, bound: 0.1}, Want: false},
)

// catchupRun is an every-2-s schedule with a 10 s catch-up window through a
// 14 s server outage (WF-05.schedule-catchup).
type catchupRun struct {
	missed, serverMissed int             // fire times that never ran; the server's count of missed ones
	caughtUp             int             // fire times from the outage that ran after the restart
	oldestSkipped        bool            // every missed fire time is older than every caught-up one
	missedInOutage       bool            // the missed fire times all fall in the outage
	late                 []time.Duration // caught-up runs: from nominal time to start
	window, slack        time.Duration
}

// catchesUpWithinWindow: some fire times were skipped and the server counts
// exactly those as missed, all from the outage and older than every one
// caught up; some were caught up, each started within the catch-up window
// (plus a stated slack) of its nominal time.
func catchesUpWithinWindow(o catchupRun) bool {
	ok := o.missed > 0 && o.missed == o.serverMissed && o.caughtUp > 0 && o.oldestSkipped && o.missedInOutage && len(o.late) == o.caughtUp
	for _, l := range o.late {
		ok = ok && l <= o.window+o.slack
	}
	return ok
}

var catchupPredicate = predicate.New("WF-05.schedule-catchup", "catchesUpWithinWindow", catchesUpWithinWindow,
	predicate.Case[catchupRun]{Name: "2 skipped, 5 caught up",
		In: catchupRun{missed: 2, serverMissed: 2, caughtUp: 5, oldestSkipped: true, missedInOutage: true,
			late:   []time.Duration{9400 * time.Millisecond, 7400 * time.Millisecond, 5400 * time.Millisecond, 3400 * time.Millisecond, 1400 * time.Millisecond},
			window: 10 * time.Second, slack: 2 * time.Second}, Want: true},
	predicate.Case[catchupRun]{Name: "no catch-up: everything in the outage skipped",
		In: catchupRun{missed: 7, serverMissed: 7, oldestSkipped: true, missedInOutage: true, window: 10 * time.Second, slack: 2 * time.Second}, Want: false},
	predicate.Case[catchupRun]{Name: "window ignored: every missed fire time replayed",
		In: catchupRun{caughtUp: 7, oldestSkipped: false, missedInOutage: true,
			late:   []time.Duration{13400 * time.Millisecond, 11400 * time.Millisecond, 9400 * time.Millisecond, 7400 * time.Millisecond, 5400 * time.Millisecond, 3400 * time.Millisecond, 1400 * time.Millisecond},
			window: 10 * time.Second, slack: 2 * time.Second}, Want: false},
)
