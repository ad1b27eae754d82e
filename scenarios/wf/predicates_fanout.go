package wf

import (
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/durabench/durabench/harness/predicate"
)

// The pass conditions of WF-03's checks, each a named predicate over the
// fan-in a workflow returned, the executions the worker saw and the order
// history recorded.

func fanOutPredicates() []predicate.Spec {
	return []predicate.Spec{
		parallelPredicate.Spec(), selectorOrderPredicate.Spec(), partialFailurePredicate.Spec(),
		kOfNPredicate.Spec(), cancelLosersPredicate.Spec(), boundedPredicate.Spec(), fanOutCrashPredicate.Spec(),
	}
}

// parallelRun is a fan-out of n equal branches (WF-03.parallel-activities).
type parallelRun struct {
	err          error
	values, want map[int]int
	n, runs      int           // branches, and executions the worker saw
	overlap      time.Duration // how long all n were running at once
}

// branchesOverlapped: every result fanned in, each branch ran once, and all
// n executions were running at the same moment.
func branchesOverlapped(o parallelRun) bool {
	return o.err == nil && maps.Equal(o.values, o.want) && o.runs == o.n && o.overlap > 0
}

var fiveResults = map[int]int{1: 100, 2: 200, 3: 300, 4: 400, 5: 500}

var parallelPredicate = predicate.New("WF-03.parallel-activities", "branchesOverlapped", branchesOverlapped,
	predicate.Case[parallelRun]{Name: "five at once for 445 ms", In: parallelRun{values: fiveResults, want: fiveResults, n: 5, runs: 5, overlap: 445 * time.Millisecond}, Want: true},
	predicate.Case[parallelRun]{Name: "branches run one after another", In: parallelRun{values: fiveResults, want: fiveResults, n: 5, runs: 5}, Want: false},
	predicate.Case[parallelRun]{Name: "a result dropped at fan-in",
		In: parallelRun{values: map[int]int{1: 100, 2: 200, 3: 300, 4: 400}, want: fiveResults, n: 5, runs: 5, overlap: 445 * time.Millisecond}, Want: false},
)

// selectorRun is what a selector delivered of branches added in one order
// and completing in another (WF-03.selector-order).
type selectorRun struct {
	err     error
	added   []int   // the order the branches were added to the selector
	order   []int   // the order the selector delivered them
	batches [][]int // completions in history, grouped by the workflow task that saw them
}

// completionOrder: the selector delivered every branch in the order history
// recorded their completions (any order within one workflow task), the
// completions came in at least two tasks, and the delivery differs from
// the order they were added (a selector that returns in added order fails).
func completionOrder(o selectorRun) bool {
	return o.err == nil && len(o.order) == len(o.added) && len(o.batches) >= 2 && !slices.Equal(o.order, o.added) && consistentOrder(o.order, o.batches)
}

var selectorOrderPredicate = predicate.New("WF-03.selector-order", "completionOrder", completionOrder,
	predicate.Case[selectorRun]{Name: "2 4 3 1 as completed",
		In: selectorRun{added: []int{1, 2, 3, 4}, order: []int{2, 4, 3, 1}, batches: [][]int{{2}, {4}, {3}, {1}}}, Want: true},
	predicate.Case[selectorRun]{Name: "delivered in added order",
		In: selectorRun{added: []int{1, 2, 3, 4}, order: []int{1, 2, 3, 4}, batches: [][]int{{2}, {4}, {3}, {1}}}, Want: false},
	predicate.Case[selectorRun]{Name: "all completions seen by one task: order unobserved",
		In: selectorRun{added: []int{1, 2, 3, 4}, order: []int{2, 1, 3, 4}, batches: [][]int{{1, 2, 3, 4}}}, Want: false},
)

// consistentOrder reports whether order lists every id of batches, each
// batch before the next (within one batch all were ready together).
func consistentOrder(order []int, batches [][]int) bool {
	i := 0
	for _, b := range batches {
		if i+len(b) > len(order) {
			return false
		}
		got := slices.Sorted(slices.Values(order[i : i+len(b)]))
		if !slices.Equal(got, slices.Sorted(slices.Values(b))) {
			return false
		}
		i += len(b)
	}
	return i == len(order)
}

// partialRun is a fan-out with one failing branch (WF-03.partial-failure).
type partialRun struct {
	err                error
	values, wantValues map[int]int
	failed, wantFailed map[int]string
}

// othersKept: the workflow completed with every other branch's result and
// knows which branch failed, with its error type.
func othersKept(o partialRun) bool {
	return o.err == nil && maps.Equal(o.values, o.wantValues) && maps.Equal(o.failed, o.wantFailed)
}

var (
	partialValues = map[int]int{1: 100, 2: 200, 4: 400}
	partialFailed = map[int]string{3: branchErrType}
)

var partialFailurePredicate = predicate.New("WF-03.partial-failure", "othersKept", othersKept,
	predicate.Case[partialRun]{Name: "three results, branch 3 named", In: partialRun{values: partialValues, wantValues: partialValues, failed: partialFailed, wantFailed: partialFailed}, Want: true},
	predicate.Case[partialRun]{Name: "all-or-nothing: the failure fails the fan-in",
		In: partialRun{err: errors.New("activity error"), wantValues: partialValues, wantFailed: partialFailed}, Want: false},
)

// quorumRun is one run of QuorumWorkflow (need 3 of 5 within a deadline).
type quorumRun struct {
	name                         string
	err                          error
	path, wantPath               string
	succeeded, wantSucceeded     []int
	failed, wantFailed           []int
	proceeded, earliest, latest  time.Duration // when it proceeded, and the bounds for its path
	losers, cancelled, saw, late []int         // still running; cancelled per the workflow; saw the cancellation; finished anyway
	canceledEvents               int
}

// proceedsAtQuorumOrDeadline: both paths were exercised; on each the
// workflow took the expected path with the expected successes and failures,
// no earlier than it could (the third success, or the deadline) and before
// the alternative would have let it (the quorum path before the deadline;
// the deadline path before the deadline plus a stated allowance, well short
// of the 20 s late branches).
func proceedsAtQuorumOrDeadline(runs []quorumRun) bool {
	paths := map[string]bool{}
	for _, r := range runs {
		if r.err != nil || r.path != r.wantPath || !slices.Equal(r.succeeded, r.wantSucceeded) || !slices.Equal(r.failed, r.wantFailed) ||
			r.proceeded < r.earliest || r.proceeded >= r.latest {
			return false
		}
		paths[r.path] = true
	}
	return paths[pathQuorum] && paths[pathDeadline]
}

// losersCancelled: in every run, the branches still running when it
// proceeded were cancelled, the activities observed it, history records one
// ActivityTaskCanceled each, and none finished anyway.
func losersCancelled(runs []quorumRun) bool {
	ok := len(runs) > 0
	for _, r := range runs {
		ok = ok && len(r.losers) > 0 && slices.Equal(r.cancelled, r.losers) && slices.Equal(r.saw, r.losers) && r.canceledEvents == len(r.losers) && len(r.late) == 0
	}
	return ok
}

var (
	quorumInTime = quorumRun{name: "three in time", path: pathQuorum, wantPath: pathQuorum, succeeded: []int{0, 1, 3}, wantSucceeded: []int{0, 1, 3},
		failed: []int{2}, wantFailed: []int{2}, proceeded: 746 * time.Millisecond, earliest: 600 * time.Millisecond, latest: 10 * time.Second,
		losers: []int{4}, cancelled: []int{4}, saw: []int{4}, canceledEvents: 1}
	quorumDeadline = quorumRun{name: "two in time", path: pathDeadline, wantPath: pathDeadline, succeeded: []int{0, 1}, wantSucceeded: []int{0, 1},
		failed: []int{2}, wantFailed: []int{2}, proceeded: 2102 * time.Millisecond, earliest: 2 * time.Second, latest: 4 * time.Second,
		losers: []int{3, 4}, cancelled: []int{3, 4}, saw: []int{3, 4}, canceledEvents: 2}
)

func withQuorum(r quorumRun, f func(*quorumRun)) quorumRun {
	f(&r)
	return r
}

var (
	kOfNPredicate = predicate.New("WF-03.k-of-n-deadline", "proceedsAtQuorumOrDeadline", proceedsAtQuorumOrDeadline,
		predicate.Case[[]quorumRun]{Name: "quorum at 746 ms, deadline at 2.1 s", In: []quorumRun{quorumInTime, quorumDeadline}, Want: true},
		predicate.Case[[]quorumRun]{Name: "waits for every branch: the quorum run proceeds at 20 s",
			In: []quorumRun{withQuorum(quorumInTime, func(r *quorumRun) { r.proceeded = 20 * time.Second }), quorumDeadline}, Want: false},
		predicate.Case[[]quorumRun]{Name: "the deadline never fires: both take the quorum path late",
			In: []quorumRun{quorumInTime, withQuorum(quorumDeadline, func(r *quorumRun) { r.path, r.proceeded = pathQuorum, 20*time.Second })}, Want: false},
	)
	cancelLosersPredicate = predicate.New("WF-03.cancel-losers", "losersCancelled", losersCancelled,
		predicate.Case[[]quorumRun]{Name: "losers cancelled and saw it", In: []quorumRun{quorumInTime, quorumDeadline}, Want: true},
		predicate.Case[[]quorumRun]{Name: "cancellation not delivered: the losers ran to completion",
			In: []quorumRun{withQuorum(quorumInTime, func(r *quorumRun) { r.saw, r.late, r.canceledEvents = nil, []int{4}, 0 }), quorumDeadline}, Want: false},
	)
)

// boundedRun is a fan-out behind a workflow-side semaphore
// (WF-03.bounded-concurrency).
type boundedRun struct {
	err               error
	n, k              int
	done, runs        int // successes the workflow counted, executions the worker saw
	observed, counted int // most executions running at once (worker's view; the workflow's own count)
}

// semaphoreBounds: every branch ran once and succeeded, and the most
// executions the worker saw at once equals K: never above it, and reached
// (a bound never reached would not show the semaphore working).
func semaphoreBounds(o boundedRun) bool {
	return o.err == nil && o.done == o.n && o.runs == o.n && o.observed == o.k && o.counted == o.k
}

var boundedPredicate = predicate.New("WF-03.bounded-concurrency", "semaphoreBounds", semaphoreBounds,
	predicate.Case[boundedRun]{Name: "10 at most, of 200", In: boundedRun{n: 200, k: 10, done: 200, runs: 200, observed: 10, counted: 10}, Want: true},
	predicate.Case[boundedRun]{Name: "the semaphore leaks: 200 at once", In: boundedRun{n: 200, k: 10, done: 200, runs: 200, observed: 200, counted: 10}, Want: false},
)

// fanOutCrash is a fan-out whose worker was killed mid-way
// (WF-03.survives-crash).
type fanOutCrash struct {
	err          error
	values, want map[int]int
	n            int
	doneAtKill   int   // branches history recorded completed before the kill
	again        []int // of those, branches that ran again
}

// completedNotRerun: the kill landed mid fan-out, the fan-out finished with
// every result, and no branch completed before the kill ran again.
func completedNotRerun(o fanOutCrash) bool {
	return o.err == nil && maps.Equal(o.values, o.want) && o.doneAtKill > 0 && o.doneAtKill < o.n && len(o.again) == 0
}

var eightResults = map[int]int{1: 100, 2: 200, 3: 300, 4: 400, 5: 500, 6: 600, 7: 700, 8: 800}

var fanOutCrashPredicate = predicate.New("WF-03.survives-crash", "completedNotRerun", completedNotRerun,
	predicate.Case[fanOutCrash]{Name: "3 of 8 done at the kill, none rerun", In: fanOutCrash{values: eightResults, want: eightResults, n: 8, doneAtKill: 3}, Want: true},
	predicate.Case[fanOutCrash]{Name: "the fan-out restarts from scratch", In: fanOutCrash{values: eightResults, want: eightResults, n: 8, doneAtKill: 3, again: []int{1, 2, 3}}, Want: false},
	predicate.Case[fanOutCrash]{Name: "the fan-out is lost with the worker", In: fanOutCrash{err: errors.New("context deadline exceeded"), want: eightResults, n: 8, doneAtKill: 3}, Want: false},
)
