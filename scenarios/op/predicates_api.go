package op

import (
	"errors"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/durabench/durabench/harness/predicate"
)

// The pass conditions of OP-02's checks, each a named predicate over what the
// management API returned on the real server and what was then observed of
// the workflow (describe, query, history, result, visibility).

func apiPredicates() []predicate.Spec {
	return []predicate.Spec{
		apiStartPredicate.Spec(),
		apiMessagingPredicate.Spec(),
		apiClosePredicate.Spec(),
		apiVisibilityPredicate.Spec(),
		apiResetPredicate.Spec(),
		apiSchedulePredicate.Spec(),
		apiErrorsPredicate.Spec(),
		apiHTTPPredicate.Spec(),
	}
}

// apiStart is a start followed by a describe of the started run
// (OP-02.start-describe, and its control on a missing namespace).
type apiStart struct {
	id, runID, wfType, taskQueue string    // what was started; runID as the start returned it
	before, after                time.Time // the client's clock around the start call
	err                          error     // of the start or the describe
	// The describe's answer.
	gotID, gotRunID, gotType, gotQueue string
	status                             enumspb.WorkflowExecutionStatus
	startTime                          time.Time
}

// startedAndDescribed: the start and the describe succeeded, and the
// describe shows the started run (id and run id), Running, with the type and
// task queue it was started with and a start time inside the start call
// (server and client read this host's clock).
func startedAndDescribed(o apiStart) bool {
	return o.err == nil && o.runID != "" && o.gotID == o.id && o.gotRunID == o.runID &&
		o.gotType == o.wfType && o.gotQueue == o.taskQueue &&
		o.status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING &&
		!o.startTime.Before(o.before) && !o.startTime.After(o.after)
}

var (
	apiT0      = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	apiStarted = apiStart{id: "w1", runID: "r1", wfType: apiCounterType, taskQueue: "tq", before: apiT0, after: apiT0.Add(5 * time.Millisecond),
		gotID: "w1", gotRunID: "r1", gotType: apiCounterType, gotQueue: "tq", status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, startTime: apiT0.Add(2 * time.Millisecond)}
)

var apiStartPredicate = predicate.New("OP-02.start-describe", "startedAndDescribed", startedAndDescribed,
	predicate.Case[apiStart]{Name: "describe shows the run as started", In: apiStarted, Want: true},
	predicate.Case[apiStart]{Name: "the namespace does not exist: the start fails", In: func() apiStart {
		o := apiStart{id: "w1", wfType: apiCounterType, taskQueue: "tq", before: apiT0, after: apiT0}
		o.err = errors.New(`Namespace durabench-no-such-namespace-1 is not found.`)
		return o
	}(), Want: false},
	predicate.Case[apiStart]{Name: "describe shows another task queue", In: func() apiStart {
		o := apiStarted
		o.gotQueue = "other"
		return o
	}(), Want: false},
	predicate.Case[apiStart]{Name: "start time outside the start call", In: func() apiStart {
		o := apiStarted
		o.startTime = apiT0.Add(-time.Hour)
		return o
	}(), Want: false},
	predicate.Case[apiStart]{Name: "the run already completed", In: func() apiStart {
		o := apiStarted
		o.status = enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
		return o
	}(), Want: false},
)

// apiMessaging is a counter run driven by a signal and an update and read by
// queries (OP-02.signal-query-update).
type apiMessaging struct {
	start       int // the count the run started with
	before      int // query before any message
	added       int // the signal's argument
	afterSignal int // query after the signal
	set         int // the update's argument
	updatePrev  int // the update's result: the count it replaced
	afterUpdate int // query after the update
	result      int // the run's result after the finish signal
	signaled    int // WorkflowExecutionSignaled events in history
	updated     int // WorkflowExecutionUpdateCompleted events in history
	err         error
}

// messagesChangeState: a query read the start count; after the signal it
// read the count plus the signal's argument; the update returned that count
// and the next query, and the run's result, read the update's value; history
// records the signals and the update.
func messagesChangeState(o apiMessaging) bool {
	return o.err == nil && o.before == o.start && o.added != 0 && o.afterSignal == o.start+o.added &&
		o.set != o.afterSignal && o.updatePrev == o.afterSignal && o.afterUpdate == o.set && o.result == o.set &&
		o.signaled >= 1 && o.updated == 1
}

var apiMessaged = apiMessaging{start: 3, before: 3, added: 5, afterSignal: 8, set: 42, updatePrev: 8, afterUpdate: 42, result: 42, signaled: 2, updated: 1}

var apiMessagingPredicate = predicate.New("OP-02.signal-query-update", "messagesChangeState", messagesChangeState,
	predicate.Case[apiMessaging]{Name: "signal adds, update sets, queries read both", In: apiMessaged, Want: true},
	predicate.Case[apiMessaging]{Name: "the signal was lost: the query still reads the start count", In: func() apiMessaging {
		o := apiMessaged
		o.afterSignal, o.updatePrev = 3, 3
		return o
	}(), Want: false},
	predicate.Case[apiMessaging]{Name: "update not supported", In: func() apiMessaging {
		o := apiMessaged
		o.updatePrev, o.afterUpdate, o.result, o.updated = 0, 8, 8, 0
		o.err = errors.New("unimplemented: UpdateWorkflowExecution")
		return o
	}(), Want: false},
	predicate.Case[apiMessaging]{Name: "the update's value did not reach the result", In: func() apiMessaging {
		o := apiMessaged
		o.result = 8
		return o
	}(), Want: false},
)

// apiClose is a cancel of one running counter and a terminate of another
// (OP-02.cancel-terminate).
type apiClose struct {
	canceledStatus, terminatedStatus enumspb.WorkflowExecutionStatus // describe after each run closed
	canceledErr, terminatedErr       string                          // the class of the error GetResult returned
	cancelRequested                  bool                            // history of the canceled run has WorkflowExecutionCancelRequested
	reason, gotReason                string                          // the terminate reason sent and the one in history
	err                              error                           // of the cancel or terminate calls or a describe
}

// closedAsAsked: the cancel closed its run Canceled (GetResult a
// CanceledError, the request in history), the terminate closed its run
// Terminated (GetResult a TerminatedError, the reason in history).
func closedAsAsked(o apiClose) bool {
	return o.err == nil &&
		o.canceledStatus == enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED && o.canceledErr == "CanceledError" && o.cancelRequested &&
		o.terminatedStatus == enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED && o.terminatedErr == "TerminatedError" &&
		o.reason != "" && o.gotReason == o.reason
}

var apiClosed = apiClose{canceledStatus: enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, terminatedStatus: enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED,
	canceledErr: "CanceledError", terminatedErr: "TerminatedError", cancelRequested: true, reason: "op02", gotReason: "op02"}

var apiClosePredicate = predicate.New("OP-02.cancel-terminate", "closedAsAsked", closedAsAsked,
	predicate.Case[apiClose]{Name: "Canceled and Terminated", In: apiClosed, Want: true},
	predicate.Case[apiClose]{Name: "cancel ignored: the run is still open", In: func() apiClose {
		o := apiClosed
		o.canceledStatus, o.canceledErr = enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, "none"
		return o
	}(), Want: false},
	predicate.Case[apiClose]{Name: "terminate closes the run as failed", In: func() apiClose {
		o := apiClosed
		o.terminatedStatus, o.terminatedErr = enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, "ApplicationError"
		return o
	}(), Want: false},
	predicate.Case[apiClose]{Name: "terminate reason lost", In: func() apiClose {
		o := apiClosed
		o.gotReason = ""
		return o
	}(), Want: false},
)

// apiQuery is one visibility query judged against the runs it must match.
type apiQuery struct {
	name, query string
	want        []string // "id" of each run the query must match
	listed      []string // ids the pages returned, in order
	pages       int      // pages requested until the next-page token was empty
	count       int64    // CountWorkflowExecutions
	err         error
}

// apiVisibility is a set of visibility queries over runs of known type,
// status, search attribute and start time (OP-02.list-count).
type apiVisibility struct {
	pageSize int
	settled  error // the wait until every run's record showed its final status
	queries  []apiQuery
}

// exactlyMatching: the records settled, and for every query the pages listed
// each matching run once and nothing else, the count equals the matching
// runs, and the listing took more than one page whenever it held more runs
// than a page.
func exactlyMatching(o apiVisibility) bool {
	if o.settled != nil || o.pageSize < 1 || len(o.queries) == 0 {
		return false
	}
	for _, q := range o.queries {
		if q.err != nil || len(q.want) == 0 || q.count != int64(len(q.want)) || len(q.listed) != len(q.want) ||
			!slices.Equal(slices.Sorted(slices.Values(q.listed)), slices.Sorted(slices.Values(q.want))) {
			return false
		}
		if minPages := (len(q.want) + o.pageSize - 1) / o.pageSize; q.pages < minPages {
			return false
		}
	}
	return true
}

var apiListed = apiVisibility{pageSize: 2, queries: []apiQuery{
	{name: "type", want: []string{"r1", "r2", "r4"}, listed: []string{"r4", "r2", "r1"}, pages: 2, count: 3},
	{name: "status", want: []string{"r2"}, listed: []string{"r2"}, pages: 1, count: 1},
}}

var apiVisibilityPredicate = predicate.New("OP-02.list-count", "exactlyMatching", exactlyMatching,
	predicate.Case[apiVisibility]{Name: "every query lists and counts exactly its runs, paged", In: apiListed, Want: true},
	predicate.Case[apiVisibility]{Name: "a filter ignored: an extra run listed and counted", In: apiVisibility{pageSize: 2, queries: []apiQuery{
		{name: "type", want: []string{"r1", "r2"}, listed: []string{"r3", "r2", "r1"}, pages: 2, count: 3}}}, Want: false},
	predicate.Case[apiVisibility]{Name: "paging repeats a run and drops another", In: apiVisibility{pageSize: 2, queries: []apiQuery{
		{name: "type", want: []string{"r1", "r2", "r4"}, listed: []string{"r4", "r2", "r2"}, pages: 2, count: 3}}}, Want: false},
	predicate.Case[apiVisibility]{Name: "page size ignored: one page", In: apiVisibility{pageSize: 2, queries: []apiQuery{
		{name: "type", want: []string{"r1", "r2", "r4"}, listed: []string{"r4", "r2", "r1"}, pages: 1, count: 3}}}, Want: false},
	predicate.Case[apiVisibility]{Name: "custom search attribute refused", In: apiVisibility{pageSize: 2, queries: []apiQuery{
		{name: "attribute", want: []string{"r1"}, err: errors.New("invalid argument: invalid query: unknown or invalid search attribute: DurabenchScenario")}}}, Want: false},
	predicate.Case[apiVisibility]{Name: "records never settled", In: apiVisibility{pageSize: 2, settled: errors.New("gave up after 30s"), queries: apiListed.queries}, Want: false},
)

// apiReset is a reset of a counter run to the workflow task that processed
// its first signal, signals after it not reapplied (OP-02.reset).
type apiReset struct {
	oldRun, newRun string
	point          int64 // the WorkflowTaskCompleted event reset to
	err            error // of the reset, a history read or the query
	// Of the new run's history: events before the point identical in type
	// to the old run's, and the event that replaced the point.
	prefixSame        bool
	resetEvent        enumspb.EventType
	resetCause        enumspb.WorkflowTaskFailedCause
	resetBase         string // the base run id the reset event names
	oldStatus         enumspb.WorkflowExecutionStatus
	countBefore       int // signals' sum up to the point
	countOld          int // the old run's count before the reset
	countNew          int // query on the new run after the reset
	signalsAfterPoint int // signals in the new run's history after the point
}

// resetFromEvent: the reset made a new run whose history repeats the old
// run's up to the chosen event, then records a workflow task failed for the
// reset naming the old run; the old run was terminated; the new run's state
// is the state at the point (later signals not reapplied).
func resetFromEvent(o apiReset) bool {
	return o.err == nil && o.newRun != "" && o.newRun != o.oldRun && o.point > 0 && o.prefixSame &&
		o.resetEvent == enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED &&
		o.resetCause == enumspb.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW && o.resetBase == o.oldRun &&
		o.oldStatus == enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED &&
		o.countOld != o.countBefore && o.countNew == o.countBefore && o.signalsAfterPoint == 0
}

var apiResetDone = apiReset{oldRun: "r1", newRun: "r2", point: 9, prefixSame: true, resetEvent: enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED,
	resetCause: enumspb.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW, resetBase: "r1", oldStatus: enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED,
	countBefore: 5, countOld: 12, countNew: 5}

var apiResetPredicate = predicate.New("OP-02.reset", "resetFromEvent", resetFromEvent,
	predicate.Case[apiReset]{Name: "new run from the point, state at the point", In: apiResetDone, Want: true},
	predicate.Case[apiReset]{Name: "reset refused", In: apiReset{oldRun: "r1", point: 9, err: errors.New("invalid argument: workflow task finish event id")}, Want: false},
	predicate.Case[apiReset]{Name: "new run started from scratch", In: func() apiReset {
		o := apiResetDone
		o.prefixSame, o.countNew = false, 0
		return o
	}(), Want: false},
	predicate.Case[apiReset]{Name: "the new run carries the state after the point", In: func() apiReset {
		o := apiResetDone
		o.countNew, o.signalsAfterPoint = 12, 1
		return o
	}(), Want: false},
)

// apiSchedule is a schedule taken through its life (OP-02.schedule-crud).
type apiSchedule struct {
	err                         error         // of create, describe, update, pause, unpause, trigger or delete
	every, gotEvery             time.Duration // interval created / described
	actionType, gotActionType   string
	updatedEvery, gotUpdated    time.Duration // after the update
	paused, unpaused            bool          // the describe's Paused after pause / unpause
	note, gotNote               string        // pause note sent / described
	actionsBefore, actionsAfter int           // NumActions before / after the trigger
	triggeredType               string        // workflow type of the run the trigger started (its describe)
	afterDelete                 string        // class of describe's error after delete
}

// scheduleManaged: every operation succeeded and took effect as its next
// describe showed; the trigger started a run of the action's type; a describe
// after delete is NotFound.
func scheduleManaged(o apiSchedule) bool {
	return o.err == nil && o.every > 0 && o.gotEvery == o.every && o.actionType != "" && o.gotActionType == o.actionType &&
		o.updatedEvery != o.every && o.gotUpdated == o.updatedEvery && o.paused && o.note != "" && o.gotNote == o.note && !o.unpaused &&
		o.actionsAfter == o.actionsBefore+1 && o.triggeredType == o.actionType && o.afterDelete == "NotFound"
}

var apiScheduled = apiSchedule{every: 24 * time.Hour, gotEvery: 24 * time.Hour, actionType: apiEchoType, gotActionType: apiEchoType,
	updatedEvery: 48 * time.Hour, gotUpdated: 48 * time.Hour, paused: true, note: "hold", gotNote: "hold", actionsAfter: 1,
	triggeredType: apiEchoType, afterDelete: "NotFound"}

var apiSchedulePredicate = predicate.New("OP-02.schedule-crud", "scheduleManaged", scheduleManaged,
	predicate.Case[apiSchedule]{Name: "created, described, updated, paused, unpaused, triggered, deleted", In: apiScheduled, Want: true},
	predicate.Case[apiSchedule]{Name: "update not applied", In: func() apiSchedule {
		o := apiScheduled
		o.gotUpdated = o.every
		return o
	}(), Want: false},
	predicate.Case[apiSchedule]{Name: "trigger started nothing", In: func() apiSchedule {
		o := apiScheduled
		o.actionsAfter, o.triggeredType = 0, ""
		return o
	}(), Want: false},
	predicate.Case[apiSchedule]{Name: "still there after delete", In: func() apiSchedule {
		o := apiScheduled
		o.afterDelete = "none"
		return o
	}(), Want: false},
	predicate.Case[apiSchedule]{Name: "schedules not supported", In: apiSchedule{err: errors.New("unimplemented: CreateSchedule")}, Want: false},
)

// apiMisuse is one misuse of the API and the error classes it may return.
type apiMisuse struct {
	op     string
	accept []string // error classes (apiErrClass) the catalog accepts
	got    string   // the class returned
}

// typedErrors: each misuse returned one of the typed errors it may.
func typedErrors(cases []apiMisuse) bool {
	if len(cases) == 0 {
		return false
	}
	for _, c := range cases {
		if !slices.Contains(c.accept, c.got) {
			return false
		}
	}
	return true
}

var apiMisused = []apiMisuse{
	{op: "describe missing", accept: []string{"NotFound"}, got: "NotFound"},
	{op: "signal closed", accept: []string{"NotFound", "FailedPrecondition"}, got: "NotFound"},
	{op: "start running id", accept: []string{"WorkflowExecutionAlreadyStarted"}, got: "WorkflowExecutionAlreadyStarted"},
	{op: "empty task queue", accept: []string{"InvalidArgument"}, got: "InvalidArgument"},
}

var apiErrorsPredicate = predicate.New("OP-02.typed-errors", "typedErrors", typedErrors,
	predicate.Case[[]apiMisuse]{Name: "every misuse typed", In: apiMisused, Want: true},
	predicate.Case[[]apiMisuse]{Name: "an untyped error for a bad argument", In: func() []apiMisuse {
		o := slices.Clone(apiMisused)
		o[3].got = "untyped *errors.errorString"
		return o
	}(), Want: false},
	predicate.Case[[]apiMisuse]{Name: "signal to a closed run accepted silently", In: func() []apiMisuse {
		o := slices.Clone(apiMisused)
		o[1].got = "none"
		return o
	}(), Want: false},
	predicate.Case[[]apiMisuse]{Name: "nothing tried", In: nil, Want: false},
)

// apiHTTP is a run driven through the HTTP API and observed through gRPC
// (OP-02.http-api).
type apiHTTP struct {
	statuses          []int  // HTTP status of start, describe, signal, query, terminate
	startRunID        string // the start's response
	descRunID         string // the HTTP describe's run id
	descType          string
	descStatus        enumspb.WorkflowExecutionStatus
	grpcRunID         string                          // gRPC describe after the start
	start, added      int                             // the start count and the signal's argument
	grpcCount         int                             // gRPC query after the HTTP signal
	httpCount         int                             // the HTTP query's result
	terminatedStatus  enumspb.WorkflowExecutionStatus // gRPC describe after the HTTP terminate
	reason, gotReason string
	err               error
}

// httpOperates: every HTTP call answered 200; the started run is the one
// gRPC describes; the HTTP describe shows it Running with its type; the HTTP
// signal changed the count as a gRPC query read it, and the HTTP query read
// the same count; the HTTP terminate closed the run Terminated with its
// reason.
func httpOperates(o apiHTTP) bool {
	if o.err != nil || len(o.statuses) != 5 {
		return false
	}
	for _, s := range o.statuses {
		if s != 200 {
			return false
		}
	}
	return o.startRunID != "" && o.grpcRunID == o.startRunID && o.descRunID == o.startRunID && o.descType == apiCounterType &&
		o.descStatus == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING && o.added != 0 && o.grpcCount == o.start+o.added &&
		o.httpCount == o.grpcCount && o.terminatedStatus == enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED &&
		o.reason != "" && o.gotReason == o.reason
}

var apiOverHTTP = apiHTTP{statuses: []int{200, 200, 200, 200, 200}, startRunID: "r1", descRunID: "r1", descType: apiCounterType,
	descStatus: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, grpcRunID: "r1", start: 3, added: 4, grpcCount: 7, httpCount: 7,
	terminatedStatus: enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, reason: "http", gotReason: "http"}

var apiHTTPPredicate = predicate.New("OP-02.http-api", "httpOperates", httpOperates,
	predicate.Case[apiHTTP]{Name: "every operation over HTTP took effect", In: apiOverHTTP, Want: true},
	predicate.Case[apiHTTP]{Name: "no HTTP API: connection refused", In: apiHTTP{err: errors.New("dial tcp 127.0.0.1:7243: connect: connection refused")}, Want: false},
	predicate.Case[apiHTTP]{Name: "signal route missing: 404", In: func() apiHTTP {
		o := apiOverHTTP
		o.statuses = []int{200, 200, 404, 200, 200}
		o.grpcCount, o.httpCount = 3, 3
		return o
	}(), Want: false},
	predicate.Case[apiHTTP]{Name: "terminate answered but the run is still open", In: func() apiHTTP {
		o := apiOverHTTP
		o.terminatedStatus = enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
		return o
	}(), Want: false},
)
