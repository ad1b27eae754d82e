package wf

import (
	"errors"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/durabench/durabench/harness/predicate"
)

// The pass conditions of WF-01's checks, each a named predicate over what a
// step returned and what its workflow's history recorded.

func stepPredicates() []predicate.Spec {
	return []predicate.Spec{
		activityStepPredicate.Spec(), localActivityPredicate.Spec(), asyncInvocationPredicate.Spec(),
		asyncCompletionPredicate.Spec(), perStepOptionsPredicate.Spec(), longLocalPredicate.Spec(),
		dynamicActivityPredicate.Spec(),
	}
}

// stepCall is one activity step run by PriceWorkflow (WF-01.activity-step).
type stepCall struct {
	err       error
	sent      Order
	got, want Quote
	scheduled int   // ActivityTaskScheduled events
	recorded  Order // the input as the scheduled event records it
}

// ranAsTypedStep: the workflow got the typed result computed from its typed
// input, through one scheduled activity whose recorded input decodes to it.
func ranAsTypedStep(o stepCall) bool {
	return o.err == nil && o.got == o.want && o.scheduled == 1 && o.recorded == o.sent
}

var (
	priceOrder = Order{ID: "o-1", Qty: 3, Price: 2.5}
	priceQuote = Quote{OrderID: "o-1", Total: 7.5, Where: "main/tq/local=false", Attempt: 1}
)

var activityStepPredicate = predicate.New("WF-01.activity-step", "ranAsTypedStep", ranAsTypedStep,
	predicate.Case[stepCall]{Name: "typed result through one recorded step",
		In: stepCall{sent: priceOrder, got: priceQuote, want: priceQuote, scheduled: 1, recorded: priceOrder}, Want: true},
	predicate.Case[stepCall]{Name: "the activity type is not registered: the workflow never completes",
		In: stepCall{err: errors.New("context deadline exceeded"), sent: priceOrder, want: priceQuote, scheduled: 1, recorded: priceOrder}, Want: false},
	predicate.Case[stepCall]{Name: "the input lost its fields on the way (decoded as zero values)",
		In: stepCall{sent: priceOrder, got: Quote{OrderID: "", Where: "main/tq/local=false", Attempt: 1}, want: priceQuote, scheduled: 1, recorded: Order{}}, Want: false},
)

// localCall is one local activity run by LocalPriceWorkflow
// (WF-01.local-activity).
type localCall struct {
	err        error
	got, want  Quote // want says it ran in the workflow's worker as a local activity
	markers    int   // MarkerRecorded events
	markerName string
	recorded   Quote // the result the marker records
	scheduled  int   // ActivityTaskScheduled events: none for a local activity
}

// recordedAsMarker: the step ran in the workflow worker as a local activity
// (the activity's own info says so) and its result is the one recorded in a
// single LocalActivity marker, with no activity task scheduled.
func recordedAsMarker(o localCall) bool {
	return o.err == nil && o.got == o.want && o.markers == 1 && o.markerName == "LocalActivity" && o.recorded == o.got && o.scheduled == 0
}

var localQuote = Quote{OrderID: "o-local", Total: 5, Where: "main/tq/local=true", Attempt: 1}

var localActivityPredicate = predicate.New("WF-01.local-activity", "recordedAsMarker", recordedAsMarker,
	predicate.Case[localCall]{Name: "ran locally, result in one marker",
		In: localCall{got: localQuote, want: localQuote, markers: 1, markerName: "LocalActivity", recorded: localQuote}, Want: true},
	predicate.Case[localCall]{Name: "no local activities: the step went through the task queue",
		In: localCall{got: Quote{OrderID: "o-local", Total: 5, Where: "main/tq/local=false", Attempt: 1}, want: localQuote, scheduled: 1}, Want: false},
	predicate.Case[localCall]{Name: "ran locally but nothing recorded (a replay would run it again)",
		In: localCall{got: localQuote, want: localQuote}, Want: false},
)

// asyncCall is AsyncPriceWorkflow's run: one synchronous step, then three
// futures awaited afterwards (WF-01.async-invocation).
type asyncCall struct {
	err        error
	resultsOK  bool // every quote equals the one computed from its order
	scheduled  int  // ActivityTaskScheduled events
	tasks      int  // workflow tasks that scheduled the three futures
	afterSync  bool // the futures were scheduled after the synchronous step completed
	overlapped time.Duration
}

// futuresAwaitedLater: every result came back, the three futures were all
// scheduled by one workflow task after the synchronous step, and their
// executions overlapped (they were not awaited one by one).
func futuresAwaitedLater(o asyncCall) bool {
	return o.err == nil && o.resultsOK && o.scheduled == 4 && o.tasks == 1 && o.afterSync && o.overlapped > 0
}

var asyncInvocationPredicate = predicate.New("WF-01.async-invocation", "futuresAwaitedLater", futuresAwaitedLater,
	predicate.Case[asyncCall]{Name: "three futures in one task, running together",
		In: asyncCall{resultsOK: true, scheduled: 4, tasks: 1, afterSync: true, overlapped: 300 * time.Millisecond}, Want: true},
	predicate.Case[asyncCall]{Name: "calls block: each future scheduled after the previous finished",
		In: asyncCall{resultsOK: true, scheduled: 4, tasks: 3, afterSync: true}, Want: false},
	predicate.Case[asyncCall]{Name: "a future's result lost",
		In: asyncCall{err: errors.New("activity error"), scheduled: 4, tasks: 1, afterSync: true, overlapped: 300 * time.Millisecond}, Want: false},
)

// asyncCompletion is a step left pending and completed from outside by its
// task token (WF-01.async-completion).
type asyncCompletion struct {
	completeErr error // CompleteActivity's
	err         error // the workflow's
	sent, got   Quote
	completed   int // ActivityTaskCompleted events
}

// completedByToken: CompleteActivity was accepted and the workflow received
// exactly what was sent, recorded as one completion.
func completedByToken(o asyncCompletion) bool {
	return o.completeErr == nil && o.err == nil && o.got == o.sent && o.completed == 1
}

var sentQuote = Quote{OrderID: "o-ext", Total: 42, Where: "completed from outside by task token"}

var asyncCompletionPredicate = predicate.New("WF-01.async-completion", "completedByToken", completedByToken,
	predicate.Case[asyncCompletion]{Name: "completed from outside",
		In: asyncCompletion{sent: sentQuote, got: sentQuote, completed: 1}, Want: true},
	predicate.Case[asyncCompletion]{Name: "ErrResultPending unsupported: the step failed and the token is unknown",
		In: asyncCompletion{completeErr: errors.New("NotFound: invalid activityID or activity already timed out or invoking workflow is completed"),
			err: errors.New("activity error")}, Want: false},
)

// perStep is what PerStepWorkflow's two steps came to (WF-01.per-step-options).
type perStep struct {
	recorded, wantRecorded [2]string // each step's queue, timeout and attempts as scheduled in history
	aWhere, wantAWhere     string    // where step A ran
	aAttempts, bAttempts   []int32   // attempts each worker saw
	aResultAttempt         int32
	aErr, bTimeout         string
	bTook                  time.Duration // step B's start to its timeout
	bConfigured, bWork     time.Duration // its configured timeout, and how long its work would take
}

// eachStepOwnOptions: history records each step with its own queue,
// timeout and retry policy; A ran on queue A and succeeded at attempt 3 of
// 3; B ran once on queue B and failed StartToClose no earlier than its
// 500 ms timeout and before its 2 s of work would have finished (the bound:
// a timeout firing later is indistinguishable from none).
func eachStepOwnOptions(o perStep) bool {
	return o.recorded == o.wantRecorded && o.aErr == "" && o.aWhere == o.wantAWhere && o.aResultAttempt == 3 &&
		equalInts(o.aAttempts, 1, 2, 3) && equalInts(o.bAttempts, 1) &&
		o.bTimeout == enumspb.TIMEOUT_TYPE_START_TO_CLOSE.String() && o.bTook >= o.bConfigured && o.bTook < o.bWork
}

func equalInts(got []int32, want ...int32) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

var perStepWant = [2]string{"queue=A start-to-close=10s max-attempts=3", "queue=B start-to-close=500ms max-attempts=1"}

var perStepOptionsPredicate = predicate.New("WF-01.per-step-options", "eachStepOwnOptions", eachStepOwnOptions,
	predicate.Case[perStep]{Name: "each step kept its options (B timed out at 1.02 s)",
		In: perStep{recorded: perStepWant, wantRecorded: perStepWant, aWhere: "A", wantAWhere: "A", aAttempts: []int32{1, 2, 3}, bAttempts: []int32{1},
			aResultAttempt: 3, bTimeout: "StartToClose", bTook: 1023 * time.Millisecond, bConfigured: 500 * time.Millisecond, bWork: 2 * time.Second}, Want: true},
	predicate.Case[perStep]{Name: "workflow-wide options: B inherits A's 10 s timeout and completes",
		In: perStep{recorded: [2]string{perStepWant[0], "queue=B start-to-close=10s max-attempts=3"}, wantRecorded: perStepWant, aWhere: "A", wantAWhere: "A",
			aAttempts: []int32{1, 2, 3}, bAttempts: []int32{1}, aResultAttempt: 3, bTook: 2 * time.Second, bConfigured: 500 * time.Millisecond, bWork: 2 * time.Second}, Want: false},
	predicate.Case[perStep]{Name: "B's timeout fired only after its work would have ended",
		In: perStep{recorded: perStepWant, wantRecorded: perStepWant, aWhere: "A", wantAWhere: "A", aAttempts: []int32{1, 2, 3}, bAttempts: []int32{1},
			aResultAttempt: 3, bTimeout: "StartToClose", bTook: 2100 * time.Millisecond, bConfigured: 500 * time.Millisecond, bWork: 2 * time.Second}, Want: false},
)

// longLocal is LongLocalWorkflow's run: a local activity failing twice, then
// working longer than the workflow task timeout (WF-01.long-local-activity).
type longLocal struct {
	err                           error
	attempts                      int             // executions the worker saw
	resultAttempt, markerAttempt  int32           // the attempt the result and the marker name
	gaps, wantGaps                []time.Duration // between attempt starts, and the retry policy's intervals
	coefficient                   float64
	lastTook, taskTimeout         time.Duration
	tasks, taskTimeouts, taskFail int // workflow tasks completed, timed out, failed
}

// extendedAndRetried: the third attempt's result reached the workflow and
// its marker; each retry started no earlier than 90% of its interval (the
// retry policy's) and before the next interval in the sequence would have
// elapsed (interval × coefficient: a platform retrying without backoff, or
// compounding it twice, falls outside); the last attempt outlasted the task
// timeout, yet no workflow task timed out or failed, and more than one
// completed (the SDK heartbeat the task).
func extendedAndRetried(o longLocal) bool {
	ok := o.err == nil && o.attempts == 3 && o.resultAttempt == 3 && o.markerAttempt == 3 && len(o.gaps) == 2 && len(o.wantGaps) == 2 &&
		o.lastTook > o.taskTimeout && o.taskTimeouts == 0 && o.taskFail == 0 && o.tasks >= 2
	for i := range min(len(o.gaps), len(o.wantGaps)) {
		w := o.wantGaps[i]
		ok = ok && o.gaps[i] >= w*9/10 && float64(o.gaps[i]) < float64(w)*o.coefficient
	}
	return ok
}

var longLocalPredicate = predicate.New("WF-01.long-local-activity", "extendedAndRetried", extendedAndRetried,
	predicate.Case[longLocal]{Name: "retried at 201 and 401 ms, task heartbeat 3 times",
		In: longLocal{attempts: 3, resultAttempt: 3, markerAttempt: 3, gaps: []time.Duration{201 * time.Millisecond, 401 * time.Millisecond},
			wantGaps: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}, coefficient: 2, lastTook: 2500 * time.Millisecond, taskTimeout: time.Second, tasks: 4}, Want: true},
	predicate.Case[longLocal]{Name: "the workflow task times out under the long local activity",
		In: longLocal{err: errors.New("workflow timed out"), attempts: 3, resultAttempt: 0, markerAttempt: 0, gaps: []time.Duration{201 * time.Millisecond, 401 * time.Millisecond},
			wantGaps: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}, coefficient: 2, lastTook: 2500 * time.Millisecond, taskTimeout: time.Second, tasks: 1, taskTimeouts: 3}, Want: false},
	predicate.Case[longLocal]{Name: "retried without backoff",
		In: longLocal{attempts: 3, resultAttempt: 3, markerAttempt: 3, gaps: []time.Duration{3 * time.Millisecond, 2 * time.Millisecond},
			wantGaps: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}, coefficient: 2, lastTook: 2500 * time.Millisecond, taskTimeout: time.Second, tasks: 4}, Want: false},
	predicate.Case[longLocal]{Name: "backoff compounded twice (800 ms for the second retry)",
		In: longLocal{attempts: 3, resultAttempt: 3, markerAttempt: 3, gaps: []time.Duration{201 * time.Millisecond, 801 * time.Millisecond},
			wantGaps: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}, coefficient: 2, lastTook: 2500 * time.Millisecond, taskTimeout: time.Second, tasks: 4}, Want: false},
)

// dynamicCall is a call to an unregistered activity type
// (WF-01.dynamic-activity).
type dynamicCall struct {
	err       error
	got, want string // the type name and raw arguments as the dynamic activity echoed them
}

// dynamicAnswered: the dynamic activity answered with the type name it was
// called by and the arguments decoded.
func dynamicAnswered(o dynamicCall) bool { return o.err == nil && o.got == o.want }

var dynamicActivityPredicate = predicate.New("WF-01.dynamic-activity", "dynamicAnswered", dynamicAnswered,
	predicate.Case[dynamicCall]{Name: "echoed type and arguments",
		In: dynamicCall{got: `ReportForTenant42("ledger", 7)`, want: `ReportForTenant42("ledger", 7)`}, Want: true},
	predicate.Case[dynamicCall]{Name: "no dynamic registration: the task fails as unregistered",
		In: dynamicCall{err: errors.New(`unable to find activityType=ReportForTenant42`), want: `ReportForTenant42("ledger", 7)`}, Want: false},
)
