package rt

import (
	"context"
	"errors"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"

	"github.com/durabench/durabench/harness/predicate"
)

// The pass conditions of RT-04's checks.

func heartbeatPredicates() []predicate.Spec {
	return []predicate.Spec{
		recordedHeartbeatPredicate.Spec(), stuckPredicate.Spec(), resumePredicate.Spec(), cancelPredicate.Spec(),
		crashPredicate.Spec(), throttledPredicate.Spec(), pausePredicate.Spec(),
	}
}

// throttleOf is the interval at which the Go SDK sends heartbeats at most:
// 80% of the heartbeat timeout (the SDK's heartbeat throttle,
// internal/internal_task_handlers.go in go.temporal.io/sdk v1.50.0; the
// default and maximum throttle intervals do not apply to the timeouts used
// here).
func throttleOf(hb time.Duration) time.Duration { return hb * 8 / 10 }

// detectionBound is how soon after an activity stops heartbeating (stuck,
// or its worker killed) the next attempt must begin: the last heartbeat may
// reach the server up to one throttle interval before the stop, the server
// waits one heartbeat timeout from it, the retry policy waits its interval,
// and dispatch gets the real-time tolerance. Each term is a documented
// mechanism; the sum is what a user of heartbeats can expect instead of
// start-to-close.
func detectionBound(hb, interval time.Duration) time.Duration {
	return throttleOf(hb) + hb + interval + realTime.late
}

// recordedBeat is what describe showed of a heartbeating activity
// (RT-04.heartbeat-recorded).
type recordedBeat struct {
	hb         time.Duration
	details    int           // the heartbeat details describe showed, -1 none
	progress   int           // the activity's own progress when describe answered
	sinceStart time.Duration // from the attempt's start to the last heartbeat time describe showed
	age        time.Duration // from that heartbeat time to the describe
	out        string
	err        error
}

// heartbeatShown: describe showed details the activity had reported (at
// least one, never ahead of its progress) and a last heartbeat time after
// the attempt began and no older than the SDK's throttle interval plus the
// real-time tolerance, so it is the activity's latest report; the activity
// then completed.
func heartbeatShown(r recordedBeat) bool {
	return r.err == nil && r.details >= 1 && r.details <= r.progress && r.sinceStart > 0 && r.age >= 0 &&
		r.age <= throttleOf(r.hb)+realTime.late && r.out != ""
}

var beatOK = recordedBeat{hb: time.Second, details: 9, progress: 9, sinceStart: 918 * time.Millisecond, age: 13 * time.Millisecond, out: "done at 9"}

var recordedHeartbeatPredicate = predicate.New("RT-04.heartbeat-recorded", "heartbeatShown", heartbeatShown,
	predicate.Case[recordedBeat]{Name: "details 9, heartbeat 13 ms old", In: beatOK, Want: true},
	predicate.Case[recordedBeat]{Name: "no details recorded", In: edit(beatOK, func(r *recordedBeat) { r.details = -1 }), Want: false},
	predicate.Case[recordedBeat]{Name: "last heartbeat time stale: 4 s old while the activity beats every 100 ms",
		In: edit(beatOK, func(r *recordedBeat) { r.age = 4 * time.Second }), Want: false},
)

// stuckRun is an activity that stopped heartbeating on attempt 1
// (RT-04.stuck-detected).
type stuckRun struct {
	hb, interval, startToClose time.Duration
	attempt                    int32 // the final attempt, from history
	lastFailure                enumspb.TimeoutType
	detection                  time.Duration // from the stall to the retry's start, by the ledger
	err                        error
}

// stuckDetected: the second attempt followed a Heartbeat timeout, no sooner
// than one heartbeat timeout after the stall and within detectionBound,
// long before start-to-close.
func stuckDetected(r stuckRun) bool {
	return r.err == nil && r.attempt == 2 && r.lastFailure == enumspb.TIMEOUT_TYPE_HEARTBEAT &&
		r.detection >= r.hb && r.detection <= detectionBound(r.hb, r.interval) && detectionBound(r.hb, r.interval) < r.startToClose
}

var stuckOK = stuckRun{hb: time.Second, interval: time.Second, startToClose: 30 * time.Second, attempt: 2,
	lastFailure: enumspb.TIMEOUT_TYPE_HEARTBEAT, detection: 2310 * time.Millisecond}

var stuckPredicate = predicate.New("RT-04.stuck-detected", "stuckDetected", stuckDetected,
	predicate.Case[stuckRun]{Name: "retried 2.3 s after the stall", In: stuckOK, Want: true},
	predicate.Case[stuckRun]{Name: "no heartbeat timeout: start-to-close cut it after 30 s",
		In: edit(stuckOK, func(r *stuckRun) { r.lastFailure, r.detection = enumspb.TIMEOUT_TYPE_START_TO_CLOSE, 31*time.Second }), Want: false},
)

// resumeRun is the retry of the stuck activity (RT-04.resume-from-details).
type resumeRun struct {
	stallAt, resumedAt int
	perItem            []int // runs per item, by the ledger
	err                error
}

// resumedFromDetails: the retry started at the item the stalled attempt
// had reached, no item ran twice and none was skipped.
func resumedFromDetails(r resumeRun) bool {
	return r.err == nil && r.stallAt > 0 && r.resumedAt == r.stallAt && len(r.perItem) > 0 &&
		!slices.ContainsFunc(r.perItem, func(n int) bool { return n != 1 })
}

var resumeOK = resumeRun{stallAt: 5, resumedAt: 5, perItem: slices.Repeat([]int{1}, 10)}

var resumePredicate = predicate.New("RT-04.resume-from-details", "resumedFromDetails", resumedFromDetails,
	predicate.Case[resumeRun]{Name: "resumed at 5, each item once", In: resumeOK, Want: true},
	predicate.Case[resumeRun]{Name: "details lost: the retry started over at 0",
		In: edit(resumeOK, func(r *resumeRun) { r.resumedAt, r.perItem = 0, []int{2, 2, 2, 2, 2, 1, 1, 1, 1, 1} }), Want: false},
)

// cancelRun is a workflow cancelled while its activity heartbeats
// (RT-04.cancel-via-heartbeat).
type cancelRun struct {
	hb                        time.Duration
	endErr                    error         // the activity context's error when it ended
	latency                   time.Duration // from the cancel request to the activity's context ending
	workflowCanceled          bool          // the workflow's error is a CanceledError
	cancelRequested, canceled int           // ActivityTaskCancelRequested and ActivityTaskCanceled events
}

// cancelDelivered: the activity's context was cancelled within one SDK
// throttle interval (the cancellation rides on the answer to the next
// heartbeat call) plus the real-time tolerance, history shows the request
// and the cancellation, and the workflow ended cancelled.
func cancelDelivered(r cancelRun) bool {
	return errors.Is(r.endErr, context.Canceled) && r.workflowCanceled && r.cancelRequested == 1 && r.canceled == 1 &&
		r.latency > 0 && r.latency <= throttleOf(r.hb)+realTime.late
}

var cancelOK = cancelRun{hb: time.Second, endErr: context.Canceled, latency: 106 * time.Millisecond, workflowCanceled: true, cancelRequested: 1, canceled: 1}

var cancelPredicate = predicate.New("RT-04.cancel-via-heartbeat", "cancelDelivered", cancelDelivered,
	predicate.Case[cancelRun]{Name: "context cancelled 106 ms after the request", In: cancelOK, Want: true},
	predicate.Case[cancelRun]{Name: "never delivered: the activity ran until start-to-close",
		In: edit(cancelOK, func(r *cancelRun) {
			r.endErr, r.latency, r.canceled = context.DeadlineExceeded, time.Minute, 0
		}), Want: false},
)

// crashRun is a heartbeating activity whose worker process was SIGKILLed
// (RT-04.worker-crash-detected).
type crashRun struct {
	hb, interval, startToClose time.Duration
	resumedAt                  int           // the item the new worker resumed at, -1 if it never did
	redoneBelow                []int         // items below it processed again
	perItem                    []int         // runs per item, by the ledger
	detection                  time.Duration // from the kill to the resumed attempt's start
	err                        error
}

// crashDetected: another worker resumed the activity past item 0 from its
// heartbeat details within detectionBound of the kill, long before
// start-to-close; nothing below the resume point ran again and every item
// ran.
func crashDetected(r crashRun) bool {
	return r.err == nil && r.resumedAt > 0 && len(r.redoneBelow) == 0 && len(r.perItem) > 0 && !slices.Contains(r.perItem, 0) &&
		r.detection > 0 && r.detection <= detectionBound(r.hb, r.interval) && detectionBound(r.hb, r.interval) < r.startToClose
}

var crashOK = crashRun{hb: time.Second, interval: time.Second, startToClose: time.Minute, resumedAt: 15,
	perItem: slices.Repeat([]int{1}, 30), detection: 2383 * time.Millisecond}

var crashPredicate = predicate.New("RT-04.worker-crash-detected", "crashDetected", crashDetected,
	predicate.Case[crashRun]{Name: "resumed at item 15, 2.4 s after the kill", In: crashOK, Want: true},
	predicate.Case[crashRun]{Name: "detected only by start-to-close, a minute later",
		In: edit(crashOK, func(r *crashRun) { r.detection = 61 * time.Second }), Want: false},
	predicate.Case[crashRun]{Name: "resumed from scratch: items 0-14 ran again",
		In: edit(crashOK, func(r *crashRun) { r.resumedAt, r.redoneBelow = 0, []int{0, 1, 2} }), Want: false},
)

// throttleRun is a burst of about a thousand heartbeats a second
// (RT-04.throttled).
type throttleRun struct {
	hb      time.Duration
	calls   int           // RecordHeartbeat calls in the burst
	took    time.Duration // the burst's length
	rpcs    int64         // heartbeat RPCs the client sent during it
	final   int           // the details describe showed last, within finalWait of the burst's end
	current time.Duration // from the burst's end to describe first showing the final details, -1 if it did not
	err     error         // the workflow's, after the activity was released
}

// throttleBound is the most heartbeat RPCs a burst of d may send: one at
// once, then one per throttle interval.
func throttleBound(hb, d time.Duration) int64 {
	th := throttleOf(hb)
	return 1 + int64((d+th-1)/th)
}

// heartbeatsThrottled: at least a thousand calls, at least one and at most
// throttleBound RPCs for them, and the final details reached the server
// within one throttle interval plus the real-time tolerance after the
// burst (coalesced, not dropped).
func heartbeatsThrottled(r throttleRun) bool {
	return r.err == nil && r.calls >= 1000 && r.rpcs >= 1 && r.rpcs <= throttleBound(r.hb, r.took) && r.final == r.calls &&
		r.current >= 0 && r.current <= throttleOf(r.hb)+realTime.late
}

var throttleOK = throttleRun{hb: 2 * time.Second, calls: 1737, took: 2001 * time.Millisecond, rpcs: 2, final: 1737, current: 1223 * time.Millisecond}

var throttledPredicate = predicate.New("RT-04.throttled", "heartbeatsThrottled", heartbeatsThrottled,
	predicate.Case[throttleRun]{Name: "1737 calls, 2 RPCs, final details 1.2 s after", In: throttleOK, Want: true},
	predicate.Case[throttleRun]{Name: "no throttling: one RPC per call", In: edit(throttleOK, func(r *throttleRun) { r.rpcs = 1737 }), Want: false},
	predicate.Case[throttleRun]{Name: "throttled by dropping: the final details never arrived",
		In: edit(throttleOK, func(r *throttleRun) { r.final, r.current = 1200, -1 }), Want: false},
)

// pauseRun is an activity paused through the API, then unpaused
// (RT-04.pause-via-heartbeat).
type pauseRun struct {
	hb                  time.Duration
	stopped             time.Duration // from the pause request to the activity's context ending, -1 if it did not
	cause               error         // the context's cause
	paused              bool          // describe during the pause
	attemptsWhilePaused int
	resumed             []int // the offset each attempt resumed from
	out                 string
	err                 error
	apiErr              error // PauseActivity's or UnpauseActivity's
}

// pausedAndResumed: the activity learned of the pause at a heartbeat
// (context cause ErrActivityPaused, within a throttle interval plus the
// real-time tolerance), no attempt ran during the pause while describe
// showed it paused, and after unpause an attempt resumed past 0 and
// completed.
func pausedAndResumed(r pauseRun) bool {
	return r.apiErr == nil && errors.Is(r.cause, activity.ErrActivityPaused) && r.stopped > 0 && r.stopped <= throttleOf(r.hb)+realTime.late &&
		r.paused && r.attemptsWhilePaused == 1 && len(r.resumed) == 2 && r.resumed[1] > 0 && r.err == nil && r.out != ""
}

var pauseOK = pauseRun{hb: time.Second, stopped: 799 * time.Millisecond, cause: activity.ErrActivityPaused, paused: true,
	attemptsWhilePaused: 1, resumed: []int{0, 17}, out: "done at 17"}

var pausePredicate = predicate.New("RT-04.pause-via-heartbeat", "pausedAndResumed", pausedAndResumed,
	predicate.Case[pauseRun]{Name: "stopped 0.8 s after the pause, resumed at 17", In: pauseOK, Want: true},
	predicate.Case[pauseRun]{Name: "pause not delivered: the activity kept running",
		In: edit(pauseOK, func(r *pauseRun) { r.stopped, r.cause, r.resumed = -1, nil, []int{0} }), Want: false},
	predicate.Case[pauseRun]{Name: "no pause API: PauseActivity unimplemented",
		In: pauseRun{hb: time.Second, stopped: -1, apiErr: errors.New("rpc error: code = Unimplemented desc = unknown method PauseActivity")}, Want: false},
	predicate.Case[pauseRun]{Name: "retried during the pause",
		In: edit(pauseOK, func(r *pauseRun) { r.attemptsWhilePaused = 3 }), Want: false},
)
