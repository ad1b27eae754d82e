package sg

import (
	"errors"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/durabench/durabench/harness/predicate"
)

// The pass conditions of SG-04's checks, each a named predicate over what
// queries and updates of a CounterWorkflow returned and what its history
// holds.

func queryPredicates() []predicate.Spec {
	return []predicate.Spec{
		queryRunningPredicate.Spec(), queryClosedPredicate.Spec(), updateResultPredicate.Spec(), validatorPredicate.Spec(),
		rejectConditionPredicate.Spec(), updateRestartPredicate.Spec(), updateDedupPredicate.Spec(), queryLatencyPredicate.Spec(),
	}
}

// runningQuery is a state query before and after an add update on a running
// workflow (SG-04.query-running).
type runningQuery struct {
	added         int
	before, after CounterState
	err           error
}

// readsCurrentState: the query read 0 before the update and the updated
// value after it, from a workflow not yet finished.
func readsCurrentState(o runningQuery) bool {
	return o.err == nil && o.added != 0 && o.before.Value == 0 && o.after.Value == o.added && !o.after.Finished
}

var queryRunningPredicate = predicate.New("SG-04.query-running", "readsCurrentState", readsCurrentState,
	predicate.Case[runningQuery]{Name: "0, then 42", In: runningQuery{added: 42, after: CounterState{Value: 42, Handled: 1}}, Want: true},
	predicate.Case[runningQuery]{Name: "a stale answer: still 0 after the update", In: runningQuery{added: 42}, Want: false},
	predicate.Case[runningQuery]{Name: "queries unsupported on a running workflow",
		In: runningQuery{added: 42, err: errors.New("query not supported")}, Want: false},
)

// closedQuery is a state query on a completed workflow (SG-04.query-closed).
type closedQuery struct {
	status   enumspb.WorkflowExecutionStatus // by describe, before the query
	result   CounterState                    // the run's result
	answered CounterState                    // the query's answer
	err      error
}

// answersFromFinalState: the workflow had completed, and the query answered
// with its final state, the one its result holds.
func answersFromFinalState(o closedQuery) bool {
	return o.err == nil && o.status == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED && o.result.Finished && o.answered == o.result
}

var (
	caseFinal            = CounterState{Value: 42, Handled: 1, Finished: true}
	queryClosedPredicate = predicate.New("SG-04.query-closed", "answersFromFinalState", answersFromFinalState,
		predicate.Case[closedQuery]{Name: "completed, answered {42 1 true}",
			In: closedQuery{status: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, result: caseFinal, answered: caseFinal}, Want: true},
		predicate.Case[closedQuery]{Name: "queries refused once closed",
			In: closedQuery{status: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, result: caseFinal, err: errors.New("workflow closed")}, Want: false},
		predicate.Case[closedQuery]{Name: "answered from the initial state",
			In: closedQuery{status: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, result: caseFinal}, Want: false},
	)
)

// updateResults is a series of add updates on a running workflow
// (SG-04.update-result).
type updateResults struct {
	adds    []int
	results []int // what each update returned
	final   CounterState
	err     error
}

// returnsRunningSum: each update returned the counter after it, and the
// workflow's state holds every update once.
func returnsRunningSum(o updateResults) bool {
	if o.err != nil || len(o.adds) < 2 || len(o.results) != len(o.adds) {
		return false
	}
	sum := 0
	for i, n := range o.adds {
		sum += n
		if o.results[i] != sum {
			return false
		}
	}
	return o.final.Value == sum && o.final.Handled == len(o.adds)
}

var updateResultPredicate = predicate.New("SG-04.update-result", "returnsRunningSum", returnsRunningSum,
	predicate.Case[updateResults]{Name: "10 then 15", In: updateResults{adds: []int{10, 5}, results: []int{10, 15}, final: CounterState{Value: 15, Handled: 2}}, Want: true},
	predicate.Case[updateResults]{Name: "fire-and-forget: no result returned",
		In: updateResults{adds: []int{10, 5}, results: []int{0, 0}, final: CounterState{Value: 15, Handled: 2}}, Want: false},
	predicate.Case[updateResults]{Name: "a result returned, state unchanged",
		In: updateResults{adds: []int{10, 5}, results: []int{10, 15}}, Want: false},
)

// validation is an update the validator rejects, then a valid one
// (SG-04.update-validator).
type validation struct {
	rejected                  error // what the invalid update returned
	eventsBefore, eventsAfter int   // history length before and after it
	updateEventsAfter         int   // update events in history after it
	state                     CounterState
	validN, validResult       int // the valid update's argument, and what it returned
	validUpdateEvents         int // update events in history after the valid one
	err                       error
}

// validAddMessage is the validator's message (validAdd).
const validAddMessage = "n must be in 1..100"

// rejectedWithoutTrace: the invalid update came back with the validator's
// error, left history as it was and the handler unrun, while a valid update
// then ran and left its events (so the count could move).
func rejectedWithoutTrace(o validation) bool {
	return o.err == nil && o.rejected != nil && strings.Contains(o.rejected.Error(), validAddMessage) &&
		o.eventsAfter == o.eventsBefore && o.updateEventsAfter == 0 && o.state.Handled == 0 && o.state.Value == 0 &&
		o.validN > 0 && o.validResult == o.validN && o.validUpdateEvents == 2
}

var validatorPredicate = predicate.New("SG-04.update-validator", "rejectedWithoutTrace", rejectedWithoutTrace,
	predicate.Case[validation]{Name: "rejected, 4 events before and after; the valid one left 2",
		In: validation{rejected: errors.New("n must be in 1..100, got -5"), eventsBefore: 4, eventsAfter: 4, validN: 5, validResult: 5, validUpdateEvents: 2}, Want: true},
	predicate.Case[validation]{Name: "no validator: the handler ran the invalid add",
		In: validation{eventsBefore: 4, eventsAfter: 8, updateEventsAfter: 2, state: CounterState{Value: -5, Handled: 1}, validN: 5, validResult: 0, validUpdateEvents: 4}, Want: false},
	predicate.Case[validation]{Name: "rejected, but recorded in history",
		In: validation{rejected: errors.New("n must be in 1..100, got -5"), eventsBefore: 4, eventsAfter: 6, updateEventsAfter: 2, validN: 5, validResult: 5, validUpdateEvents: 4}, Want: false},
)

// rejectCondition is a query with QueryRejectCondition NotOpen on a closed
// and on a running workflow (SG-04.query-reject-condition).
type rejectCondition struct {
	closedStatus    enumspb.WorkflowExecutionStatus // the rejection's status; unspecified when not rejected
	closedAnswered  bool
	closedErr       error
	runningAnswered bool
	runningRejected bool
	runningErr      error
}

// rejectsOnlyClosed: on the closed workflow the query was rejected with its
// Completed status and not answered; on the running one it was answered.
func rejectsOnlyClosed(o rejectCondition) bool {
	return o.closedErr == nil && !o.closedAnswered && o.closedStatus == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED &&
		o.runningErr == nil && o.runningAnswered && !o.runningRejected
}

var rejectConditionPredicate = predicate.New("SG-04.query-reject-condition", "rejectsOnlyClosed", rejectsOnlyClosed,
	predicate.Case[rejectCondition]{Name: "closed rejected as Completed, running answered",
		In: rejectCondition{closedStatus: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, runningAnswered: true}, Want: true},
	predicate.Case[rejectCondition]{Name: "the condition ignored: the closed workflow answered",
		In: rejectCondition{closedAnswered: true, runningAnswered: true}, Want: false},
	predicate.Case[rejectCondition]{Name: "every query rejected",
		In: rejectCondition{closedStatus: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, runningRejected: true}, Want: false},
)

// updateRestart is an update accepted by a worker SIGKILLed before its
// handler finished (SG-04.update-survives-restart).
type updateRestart struct {
	want, result        int // the update's argument; what the caller's handle returned
	final               CounterState
	accepted, completed int // update events in history
	err                 error
}

// completedAfterCrash: the caller's handle returned the update's result, the
// handler ran once in all, and history accepted and completed it once.
func completedAfterCrash(o updateRestart) bool {
	return o.err == nil && o.result == o.want && o.final.Value == o.want && o.final.Handled == 1 && o.accepted == 1 && o.completed == 1
}

var updateRestartPredicate = predicate.New("SG-04.update-survives-restart", "completedAfterCrash", completedAfterCrash,
	predicate.Case[updateRestart]{Name: "returned 7, one run, accepted and completed once",
		In: updateRestart{want: 7, result: 7, final: CounterState{Value: 7, Handled: 1}, accepted: 1, completed: 1}, Want: true},
	predicate.Case[updateRestart]{Name: "the accepted update lost with the worker",
		In: updateRestart{want: 7, accepted: 1, err: errors.New("context deadline exceeded")}, Want: false},
	predicate.Case[updateRestart]{Name: "the handler ran again on the new worker",
		In: updateRestart{want: 7, result: 7, final: CounterState{Value: 14, Handled: 2}, accepted: 2, completed: 2}, Want: false},
)

// updateDedup is one update id sent several times (SG-04.update-id-dedup).
type updateDedup struct {
	want            int
	results         []int // what each call returned
	errs            []error
	handled, value  int // handler runs and counter, by query
	completedEvents int // UpdateCompleted events in history
	err             error
}

// ranOnce: every call returned the one result, the handler ran once, and
// history completed the update once.
func ranOnce(o updateDedup) bool {
	if o.err != nil || len(o.results) < 2 || errors.Join(o.errs...) != nil {
		return false
	}
	return !slices.ContainsFunc(o.results, func(r int) bool { return r != o.want }) &&
		o.handled == 1 && o.value == o.want && o.completedEvents == 1
}

var updateDedupPredicate = predicate.New("SG-04.update-id-dedup", "ranOnce", ranOnce,
	predicate.Case[updateDedup]{Name: "four calls, one run",
		In: updateDedup{want: 9, results: []int{9, 9, 9, 9}, handled: 1, value: 9, completedEvents: 1}, Want: true},
	predicate.Case[updateDedup]{Name: "each call ran the handler",
		In: updateDedup{want: 9, results: []int{9, 18, 27, 36}, handled: 4, value: 36, completedEvents: 4}, Want: false},
	predicate.Case[updateDedup]{Name: "the repeat after completion was refused",
		In: updateDedup{want: 9, results: []int{9, 9, 9, 0}, errs: []error{nil, nil, nil, errors.New("update id already used")}, handled: 1, value: 9, completedEvents: 1}, Want: false},
)

// queryP50Bound bounds the median round trip of a query to a running
// workflow held in the worker's cache, judged on the upper end of the
// median's bootstrap 95% interval. Source: Temporal's published latency of
// Temporal Cloud (docs.temporal.io/cloud/service-availability): the median
// of one SignalWorkflowExecution call, the closest published call to a
// query (one request to one running workflow), was 11 ms over a week in
// January 2026 and 19 ms in August 2026; the bound takes the lower. A query
// to a server on the same host crosses no network and writes nothing: a
// platform whose queries are fast answers in less. The median, not the p95,
// is judged: the p95's interval here ranged from 4.2-6.1 to 8.0-13.0 ms
// between three runs of a loaded host, the median's from 2.6-2.7 to 2.9 ms
// (4.0-4.1 ms in the committed report, taken beside three other packages):
// a margin of ×2.7 at worst.
const queryP50Bound = 11 * time.Millisecond

// queryLatencyMin is the catalog's sample size.
const queryLatencyMin = 1000

// queryLatency is sequential queries of one running workflow
// (SG-04.query-latency).
type queryLatency struct {
	n          int
	p50, p50Hi float64 // ms: the median and the upper end of its bootstrap 95% interval
	p95        float64 // ms, reported
	err        error   // the first failed query
}

// queriesFast: at least queryLatencyMin queries all answered, and the
// median's interval lies below queryP50Bound.
func queriesFast(o queryLatency) bool {
	return o.err == nil && o.n >= queryLatencyMin && o.p50 > 0 && o.p50Hi < ms(queryP50Bound)
}

var queryLatencyPredicate = predicate.New("SG-04.query-latency", "queriesFast", queriesFast,
	predicate.Case[queryLatency]{Name: "median 2.8 ms, interval up to 2.9", In: queryLatency{n: 1000, p50: 2.8, p50Hi: 2.9, p95: 5}, Want: true},
	predicate.Case[queryLatency]{Name: "each query replays the history: median 25 ms", In: queryLatency{n: 1000, p50: 25, p50Hi: 26, p95: 40}, Want: false},
	predicate.Case[queryLatency]{Name: "median below the bound, its interval reaching above", In: queryLatency{n: 1000, p50: 10.5, p50Hi: 11.4, p95: 20}, Want: false},
	predicate.Case[queryLatency]{Name: "a query failed", In: queryLatency{n: 412, err: errors.New("query timed out")}, Want: false},
)
