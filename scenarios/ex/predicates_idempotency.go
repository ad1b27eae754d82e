package ex

import (
	"errors"
	"slices"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/durabench/durabench/harness/predicate"
)

// The pass conditions of EX-03's checks other than duplicate-start-rejected
// (predicates.go, which its negative control shares). What each policy must
// do is what the Temporal documentation states for WorkflowIdConflictPolicy
// and WorkflowIdReusePolicy (docs.temporal.io, "Workflow Id Conflict
// Policy" and "Workflow Id Reuse Policy").

func idempotencyPredicates() []predicate.Spec {
	return []predicate.Spec{
		conflictPredicate.Spec(), reusePredicate.Spec(), concurrentPredicate.Spec(), requestIDPredicate.Spec(), withStartPredicate.Spec(),
	}
}

// startedRun is an attempt that started run id.
func startedRun(id string) attempt { return attempt{runID: id} }

var rejectedAttempt = attempt{err: alreadyStartedErr(caseRun1)}

// conflicts is a running workflow id started again under each conflict
// policy (EX-03.conflict-policies).
type conflicts struct {
	firstRunID                   string
	fail, useExisting, terminate attempt
	oldStatus                    enumspb.WorkflowExecutionStatus // the first run's, after the three starts
}

// conflictPoliciesAsDocumented: Fail rejects the start with
// WorkflowExecutionAlreadyStarted; UseExisting returns the running run;
// TerminateExisting starts a new run and terminates the old one.
func conflictPoliciesAsDocumented(o conflicts) bool {
	return o.firstRunID != "" && o.fail.rejected() &&
		o.useExisting.err == nil && o.useExisting.runID == o.firstRunID &&
		o.terminate.err == nil && o.terminate.runID != "" && o.terminate.runID != o.firstRunID &&
		o.oldStatus == enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED
}

var conflictPredicate = predicate.New("EX-03.conflict-policies", "conflictPoliciesAsDocumented", conflictPoliciesAsDocumented,
	predicate.Case[conflicts]{Name: "rejected, joined, terminated and replaced",
		In: conflicts{firstRunID: caseRun1, fail: rejectedAttempt, useExisting: startedRun(caseRun1), terminate: startedRun(caseRun2),
			oldStatus: enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED}, Want: true},
	predicate.Case[conflicts]{Name: "UseExisting started a second run",
		In: conflicts{firstRunID: caseRun1, fail: rejectedAttempt, useExisting: startedRun(caseRun2), terminate: startedRun("r3"),
			oldStatus: enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED}, Want: false},
	predicate.Case[conflicts]{Name: "TerminateExisting left the old run running",
		In: conflicts{firstRunID: caseRun1, fail: rejectedAttempt, useExisting: startedRun(caseRun1), terminate: startedRun(caseRun2),
			oldStatus: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING}, Want: false},
	predicate.Case[conflicts]{Name: "Fail let the duplicate through",
		In: conflicts{firstRunID: caseRun1, fail: startedRun(caseRun2), useExisting: startedRun(caseRun1), terminate: startedRun("r3"),
			oldStatus: enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED}, Want: false},
)

// reuses is a closed workflow id started again under each reuse policy
// (EX-03.reuse-policies).
type reuses struct {
	succeeded, failed string // run ids of the closed runs: one completed, one failed
	// Starts after the completed run: RejectDuplicate, AllowDuplicateFailedOnly, AllowDuplicate.
	reject, failedOnly, allow attempt
	failedOnlyAfterFailure    attempt // AllowDuplicateFailedOnly after the failed run
}

// newRun: the attempt started a run other than closed.
func (a attempt) newRun(closed string) bool {
	return a.err == nil && a.runID != "" && a.runID != closed
}

// reusePoliciesAsDocumented: after a completed run RejectDuplicate and
// AllowDuplicateFailedOnly reject the start and AllowDuplicate starts a new
// run; after a failed run AllowDuplicateFailedOnly starts a new run.
func reusePoliciesAsDocumented(o reuses) bool {
	return o.succeeded != "" && o.failed != "" && o.reject.rejected() && o.failedOnly.rejected() &&
		o.allow.newRun(o.succeeded) && o.failedOnlyAfterFailure.newRun(o.failed)
}

var reusePredicate = predicate.New("EX-03.reuse-policies", "reusePoliciesAsDocumented", reusePoliciesAsDocumented,
	predicate.Case[reuses]{Name: "rejected, rejected, new run; new run after the failure",
		In: reuses{succeeded: caseRun1, failed: caseRun2, reject: rejectedAttempt, failedOnly: rejectedAttempt, allow: startedRun("r3"),
			failedOnlyAfterFailure: startedRun("r4")}, Want: true},
	predicate.Case[reuses]{Name: "RejectDuplicate ignored",
		In: reuses{succeeded: caseRun1, failed: caseRun2, reject: startedRun("r5"), failedOnly: rejectedAttempt, allow: startedRun("r3"),
			failedOnlyAfterFailure: startedRun("r4")}, Want: false},
	predicate.Case[reuses]{Name: "AllowDuplicateFailedOnly treats a completed run as failed",
		In: reuses{succeeded: caseRun1, failed: caseRun2, reject: rejectedAttempt, failedOnly: startedRun("r5"), allow: startedRun("r3"),
			failedOnlyAfterFailure: startedRun("r4")}, Want: false},
	predicate.Case[reuses]{Name: "a closed id can never be reused",
		In: reuses{succeeded: caseRun1, failed: caseRun2, reject: rejectedAttempt, failedOnly: rejectedAttempt, allow: rejectedAttempt,
			failedOnlyAfterFailure: rejectedAttempt}, Want: false},
)

// concurrentStartsN is the catalog's number of concurrent identical starts
// (EX-03.concurrent-starts).
const concurrentStartsN = 50

// concurrentStarts is concurrentStartsN identical starts of one id released
// at once, under conflict policy Fail and then UseExisting
// (EX-03.concurrent-starts).
type concurrentStarts struct {
	n                          int
	started, rejected, other   int   // outcomes under Fail
	visible                    int64 // runs visibility counts for the Fail id
	countErr                   error
	useDistinct, useErrs, useN int // distinct run ids and errors under UseExisting, of useN starts
}

// oneRunFromConcurrentStarts: under Fail exactly one start succeeded and
// every other was rejected with WorkflowExecutionAlreadyStarted, and
// visibility counts one run; under UseExisting every start returned the
// same run.
func oneRunFromConcurrentStarts(o concurrentStarts) bool {
	return o.n >= concurrentStartsN && o.started == 1 && o.rejected == o.n-1 && o.other == 0 &&
		o.countErr == nil && o.visible == 1 && o.useN >= concurrentStartsN && o.useErrs == 0 && o.useDistinct == 1
}

var concurrentPredicate = predicate.New("EX-03.concurrent-starts", "oneRunFromConcurrentStarts", oneRunFromConcurrentStarts,
	predicate.Case[concurrentStarts]{Name: "1 started, 49 rejected, 1 run visible; UseExisting: 1 run",
		In: concurrentStarts{n: 50, started: 1, rejected: 49, visible: 1, useN: 50, useDistinct: 1}, Want: true},
	predicate.Case[concurrentStarts]{Name: "a race let two starts through",
		In: concurrentStarts{n: 50, started: 2, rejected: 48, visible: 2, useN: 50, useDistinct: 1}, Want: false},
	predicate.Case[concurrentStarts]{Name: "UseExisting created two runs",
		In: concurrentStarts{n: 50, started: 1, rejected: 49, visible: 1, useN: 50, useDistinct: 2}, Want: false},
	predicate.Case[concurrentStarts]{Name: "starts failed with another error under load",
		In: concurrentStarts{n: 50, started: 1, rejected: 40, other: 9, visible: 1, useN: 50, useDistinct: 1}, Want: false},
)

// requestIDs is a start request sent again with the same request id, then
// with a new one (EX-03.request-id-dedup).
type requestIDs struct {
	first, retry, fresh attempt
}

// sameRunForSameRequestID: the retried request returned the first request's
// run without error, while a new request id for the running id is rejected
// (so the retry was recognised by its request id, not accepted blindly).
func sameRunForSameRequestID(o requestIDs) bool {
	return o.first.err == nil && o.first.runID != "" && o.retry.err == nil && o.retry.runID == o.first.runID && o.fresh.rejected()
}

var requestIDPredicate = predicate.New("EX-03.request-id-dedup", "sameRunForSameRequestID", sameRunForSameRequestID,
	predicate.Case[requestIDs]{Name: "the retry returned the same run; a new request id was rejected",
		In: requestIDs{first: startedRun(caseRun1), retry: startedRun(caseRun1), fresh: rejectedAttempt}, Want: true},
	predicate.Case[requestIDs]{Name: "no request-id dedup: the retry was rejected as a duplicate",
		In: requestIDs{first: startedRun(caseRun1), retry: rejectedAttempt, fresh: rejectedAttempt}, Want: false},
	predicate.Case[requestIDs]{Name: "the retry started a second run",
		In: requestIDs{first: startedRun(caseRun1), retry: startedRun(caseRun2), fresh: rejectedAttempt}, Want: false},
)

// withStarts is signal-with-start and update-with-start each sent twice with
// the same ids (EX-03.with-start-idempotent).
type withStarts struct {
	sigRuns    []string // run ids signal-with-start returned
	sigErr     error
	pings      int // signals the workflow received, by query
	updRuns    []string
	updResults []int // what each update returned
	updErr     error
	bumps      int // times the update handler ran, by query
}

func sameRunTwice(runs []string) bool {
	return len(runs) == 2 && runs[0] != "" && runs[0] == runs[1]
}

// withStartIdempotent: both signal-with-starts reached one run, which
// received both signals; both update-with-starts with one update id reached
// one run, where the update ran once and both calls got its result.
func withStartIdempotent(o withStarts) bool {
	return o.sigErr == nil && sameRunTwice(o.sigRuns) && o.pings == 2 &&
		o.updErr == nil && sameRunTwice(o.updRuns) && o.bumps == 1 && slices.Equal(o.updResults, []int{1, 1})
}

var withStartPredicate = predicate.New("EX-03.with-start-idempotent", "withStartIdempotent", withStartIdempotent,
	predicate.Case[withStarts]{Name: "one run each; 2 signals, the update once",
		In: withStarts{sigRuns: []string{caseRun1, caseRun1}, pings: 2, updRuns: []string{caseRun2, caseRun2}, updResults: []int{1, 1}, bumps: 1}, Want: true},
	predicate.Case[withStarts]{Name: "the update ran twice",
		In: withStarts{sigRuns: []string{caseRun1, caseRun1}, pings: 2, updRuns: []string{caseRun2, caseRun2}, updResults: []int{1, 2}, bumps: 2}, Want: false},
	predicate.Case[withStarts]{Name: "the second signal-with-start started a new run",
		In: withStarts{sigRuns: []string{caseRun1, "r3"}, pings: 1, updRuns: []string{caseRun2, caseRun2}, updResults: []int{1, 1}, bumps: 1}, Want: false},
	predicate.Case[withStarts]{Name: "the second update-with-start failed",
		In: withStarts{sigRuns: []string{caseRun1, caseRun1}, pings: 2, updRuns: []string{caseRun2}, updResults: []int{1},
			updErr: errors.New("workflow execution already started"), bumps: 1}, Want: false},
)
