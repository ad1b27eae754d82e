package sg

import (
	"errors"
	"net/http"
	"time"

	"github.com/durabench/durabench/harness/predicate"
)

// The pass conditions of SG-02's checks, each a named predicate over what
// an ApprovalWorkflow (or a waiter) reported, what its history holds and
// what the worker observed.

func waitingPredicates() []predicate.Spec {
	return []predicate.Spec{
		awaitPredicate.Spec(), awaitTimeoutPredicate.Spec(), updateApprovalPredicate.Spec(), callbackPredicate.Spec(),
		escalationPredicate.Spec(), restartedWaitPredicate.Spec(), longWaitPredicate.Spec(), manyWaitersPredicate.Spec(),
	}
}

// release is an approval wait released by a signal (SG-02.await-condition).
type release struct {
	openBefore bool           // describe said Running right before the signal
	before     ApprovalResult // the state query's answer right before the signal
	approver   string         // who the signal said approved
	res        ApprovalResult // the run's result
	err        error
}

// releasedBySignal: the run was still waiting, unapproved, when the signal
// came, and returned approved by that signal's approver.
func releasedBySignal(o release) bool {
	return o.err == nil && o.openBefore && !o.before.Approved && o.res.Approved && o.res.Approver == o.approver && o.res.Via == "signal"
}

var awaitPredicate = predicate.New("SG-02.await-condition", "releasedBySignal", releasedBySignal,
	predicate.Case[release]{Name: "waiting, then approved by alice's signal",
		In: release{openBefore: true, approver: "alice", res: ApprovalResult{Approved: true, Approver: "alice", Via: "signal"}}, Want: true},
	predicate.Case[release]{Name: "Await did not block: the run had completed unapproved before the signal",
		In: release{approver: "alice", res: ApprovalResult{}}, Want: false},
	predicate.Case[release]{Name: "the signal never released the wait",
		In: release{openBefore: true, approver: "alice", err: errors.New("context deadline exceeded")}, Want: false},
)

// timeout is an approval wait with a timeout and no signal
// (SG-02.await-timeout).
type timeout struct {
	timeout     time.Duration
	res         ApprovalResult
	timersFired int // TimerFired events in history
	err         error
}

// timedOutOnTime: AwaitWithTimeout returned false (unapproved) on one timer
// that fired no earlier than the timeout and less than timerLateness after it
// (the run's own workflow time).
func timedOutOnTime(o timeout) bool {
	return o.err == nil && o.res.TimedOut && !o.res.Approved && o.timersFired == 1 && onTime(o.res.Waited, o.timeout)
}

var awaitTimeoutPredicate = predicate.New("SG-02.await-timeout", "timedOutOnTime", timedOutOnTime,
	predicate.Case[timeout]{Name: "false after 2.016s on one timer",
		In: timeout{timeout: 2 * time.Second, res: ApprovalResult{TimedOut: true, Waited: 2016 * time.Millisecond}, timersFired: 1}, Want: true},
	predicate.Case[timeout]{Name: "fired early",
		In: timeout{timeout: 2 * time.Second, res: ApprovalResult{TimedOut: true, Waited: 1500 * time.Millisecond}, timersFired: 1}, Want: false},
	predicate.Case[timeout]{Name: "fired 4s late",
		In: timeout{timeout: 2 * time.Second, res: ApprovalResult{TimedOut: true, Waited: 6 * time.Second}, timersFired: 1}, Want: false},
	predicate.Case[timeout]{Name: "the timeout never fired: the run hung",
		In: timeout{timeout: 2 * time.Second, err: errors.New("context deadline exceeded")}, Want: false},
)

// updateApproval is an approval sent as an update (SG-02.approval-by-update).
type updateApproval struct {
	before   ApprovalResult // queried before the update
	approver string
	reply    ApprovalResult // what the update call returned to its caller
	res      ApprovalResult // the run's result
	err      error
}

// approvedSynchronously: the run was waiting unapproved, the update call
// itself returned the approval, and the run ended approved by it.
func approvedSynchronously(o updateApproval) bool {
	byUpdate := func(r ApprovalResult) bool { return r.Approved && r.Approver == o.approver && r.Via == "update" }
	return o.err == nil && !o.before.Approved && byUpdate(o.reply) && byUpdate(o.res)
}

var (
	caseDave                = ApprovalResult{Approved: true, Approver: "dave", Via: "update"}
	updateApprovalPredicate = predicate.New("SG-02.approval-by-update", "approvedSynchronously", approvedSynchronously,
		predicate.Case[updateApproval]{Name: "dave's update answered with the approval",
			In: updateApproval{approver: "dave", reply: caseDave, res: caseDave}, Want: true},
		predicate.Case[updateApproval]{Name: "accepted but answered before the handler ran (no outcome)",
			In: updateApproval{approver: "dave", res: caseDave}, Want: false},
		predicate.Case[updateApproval]{Name: "updates unsupported",
			In: updateApproval{approver: "dave", err: errors.New("unknown update type approve")}, Want: false},
	)
)

// callback is an activity completed from outside by an HTTP callback
// (SG-02.webhook-callback).
type callback struct {
	pendingBefore int    // activities the server listed as pending, started, before the POST
	status        int    // the callback endpoint's answer
	decision      string // what the callback posted
	result        string // what the workflow returned
	err           error
}

// callbackWokeWorkflow: the activity was pending on the server when the
// callback came, the endpoint completed it (204) and the workflow returned
// the posted decision.
func callbackWokeWorkflow(o callback) bool {
	return o.err == nil && o.pendingBefore == 1 && o.status == http.StatusNoContent && o.result == o.decision
}

var callbackPredicate = predicate.New("SG-02.webhook-callback", "callbackWokeWorkflow", callbackWokeWorkflow,
	predicate.Case[callback]{Name: "pending, completed by the POST",
		In: callback{pendingBefore: 1, status: 204, decision: "approved", result: "approved"}, Want: true},
	predicate.Case[callback]{Name: "completion by id refused",
		In: callback{pendingBefore: 1, status: 502, decision: "approved", err: errors.New("activity not found")}, Want: false},
	predicate.Case[callback]{Name: "nothing was pending: the activity did not wait for the callback",
		In: callback{status: 204, decision: "approved", result: ""}, Want: false},
)

// escalation is two approvals that time out at escalateAfter and escalate:
// one approved afterwards, one left to its final deadline (SG-02.escalation).
type escalation struct {
	escalateAfter, deadline time.Duration
	seen                    bool // the approved run's query showed its escalation before the approval was sent
	approved, expired       ApprovalResult
	approvedErr, expiredErr error
}

// escalatedThenWaited: both runs escalated once, on time; the first was
// then still waiting and an approval released it; the second ended
// unapproved at its final deadline, on time.
func escalatedThenWaited(o escalation) bool {
	a, e := o.approved, o.expired
	okApproved := o.approvedErr == nil && o.seen && a.Approved && a.Via == "signal" && a.TimedOut && len(a.Escalations) == 1 &&
		onTime(a.EscalatedAfter, o.escalateAfter)
	okExpired := o.expiredErr == nil && !e.Approved && e.TimedOut && len(e.Escalations) == 1 &&
		onTime(e.EscalatedAfter, o.escalateAfter) && onTime(e.Waited, o.deadline)
	return okApproved && okExpired
}

var escalationPredicate = predicate.New("SG-02.escalation", "escalatedThenWaited", escalatedThenWaited,
	predicate.Case[escalation]{Name: "escalated at 1.07s; approved after; the other expired at 3.02s",
		In: escalation{escalateAfter: time.Second, deadline: 3 * time.Second, seen: true,
			approved: ApprovalResult{Approved: true, Via: "signal", TimedOut: true, Escalations: []string{"paged"}, EscalatedAfter: 1066 * time.Millisecond},
			expired:  ApprovalResult{TimedOut: true, Escalations: []string{"paged"}, EscalatedAfter: 1058 * time.Millisecond, Waited: 3015 * time.Millisecond}}, Want: true},
	predicate.Case[escalation]{Name: "no escalation: the timeout ended the wait",
		In: escalation{escalateAfter: time.Second, deadline: 3 * time.Second,
			approved: ApprovalResult{Approved: true, Via: "signal", TimedOut: true},
			expired:  ApprovalResult{TimedOut: true, Waited: 1010 * time.Millisecond}}, Want: false},
	predicate.Case[escalation]{Name: "the final deadline never came",
		In: escalation{escalateAfter: time.Second, deadline: 3 * time.Second, seen: true,
			approved:   ApprovalResult{Approved: true, Via: "signal", TimedOut: true, Escalations: []string{"paged"}, EscalatedAfter: 1066 * time.Millisecond},
			expiredErr: errors.New("context deadline exceeded")}, Want: false},
)

// restartedWait is an approval wait across a worker SIGKILL and a server
// SIGKILL and restart (SG-02.wait-survives-restart).
type restartedWait struct {
	after    ApprovalResult // the new worker's answer to the state query after both restarts
	afterErr error
	approver string
	res      ApprovalResult
	err      error
}

// waitOutlivedRestarts: after the restarts a new worker rebuilt the wait
// (it answered the query, still unapproved), and the signal sent then
// released it.
func waitOutlivedRestarts(o restartedWait) bool {
	return o.afterErr == nil && !o.after.Approved && o.err == nil && o.res.Approved && o.res.Approver == o.approver
}

var restartedWaitPredicate = predicate.New("SG-02.wait-survives-restart", "waitOutlivedRestarts", waitOutlivedRestarts,
	predicate.Case[restartedWait]{Name: "still waiting after the restarts, released by frank",
		In: restartedWait{approver: "frank", res: ApprovalResult{Approved: true, Approver: "frank"}}, Want: true},
	predicate.Case[restartedWait]{Name: "an in-memory store: the run is gone",
		In: restartedWait{afterErr: errors.New("workflow not found"), approver: "frank", err: errors.New("workflow not found")}, Want: false},
)

// longWaitWall bounds the wall time of a week-long wait under time
// skipping. Source: the catalog (SG-02.long-wait-tested, "in under a
// second"), after CRITERIA's DX-04 "tested in milliseconds": a unit test
// suite runs it. Without time skipping it takes the 7 days. Observed here:
// 0.3-1.3 ms.
const longWaitWall = time.Second

// virtualSlack is how far a virtual duration may exceed the one due: the
// test environment's clock moves only by the timers it skips, so none is
// expected (observed: exact to the nanosecond); a second leaves room for
// the wall time of the run itself should the clock follow it.
const virtualSlack = time.Second

// longWait is a 7-day approval with escalation at day 1 run twice under
// time skipping: unapproved, and approved at approveAt
// (SG-02.long-wait-tested).
type longWait struct {
	escalateAt, deadline, approveAt time.Duration
	expired, approved               ApprovalResult
	expiredWall, approvedWall       time.Duration
	expiredErr, approvedErr         error
}

// weekTestedFast: the unapproved run escalated at day 1 and expired at day 7
// of virtual time, the approved one ended at the approval, and each took
// less than longWaitWall.
func weekTestedFast(o longWait) bool {
	near := func(got, want time.Duration) bool { return got >= want && got < want+virtualSlack }
	e, a := o.expired, o.approved
	return o.expiredErr == nil && !e.Approved && len(e.Escalations) == 1 && near(e.EscalatedAfter, o.escalateAt) && near(e.Waited, o.deadline) &&
		o.approvedErr == nil && a.Approved && len(a.Escalations) == 1 && near(a.Waited, o.approveAt) &&
		o.expiredWall < longWaitWall && o.approvedWall < longWaitWall
}

const caseDay = 24 * time.Hour

var longWaitPredicate = predicate.New("SG-02.long-wait-tested", "weekTestedFast", weekTestedFast,
	predicate.Case[longWait]{Name: "a week in 1.2 ms",
		In: longWait{escalateAt: caseDay, deadline: 7 * caseDay, approveAt: 3 * caseDay,
			expired:     ApprovalResult{Escalations: []string{"paged"}, EscalatedAfter: caseDay, Waited: 7 * caseDay},
			approved:    ApprovalResult{Approved: true, Escalations: []string{"paged"}, Waited: 3 * caseDay},
			expiredWall: 1200 * time.Microsecond, approvedWall: 300 * time.Microsecond}, Want: true},
	predicate.Case[longWait]{Name: "no time skipping: the test ran for real until its own timeout",
		In: longWait{escalateAt: caseDay, deadline: 7 * caseDay, approveAt: 3 * caseDay,
			expired:     ApprovalResult{Escalations: []string{"paged"}, EscalatedAfter: caseDay, Waited: 7 * caseDay},
			approved:    ApprovalResult{Approved: true, Escalations: []string{"paged"}, Waited: 3 * caseDay},
			expiredWall: 10 * time.Minute, approvedWall: 10 * time.Minute}, Want: false},
	predicate.Case[longWait]{Name: "the skipped clock jumped past the escalation",
		In: longWait{escalateAt: caseDay, deadline: 7 * caseDay, approveAt: 3 * caseDay,
			expired:     ApprovalResult{Waited: 7 * caseDay},
			approved:    ApprovalResult{Approved: true, Waited: 3 * caseDay},
			expiredWall: time.Millisecond, approvedWall: time.Millisecond}, Want: false},
)

// manyWaitersN is how many workflows SG-02.many-waiters keeps waiting at
// once: the catalog's 1,000, which start, wait and resume in under a minute
// on two loaded cores; manyWaitersSlots is the catalog's 4 workflow-task
// slots, far fewer than the waits.
const manyWaitersN, manyWaitersSlots = 1000, 4

// waiting is many workflows waiting at once on one worker with few
// workflow-task slots (SG-02.many-waiters).
type waiting struct {
	n, slots     int
	arrived      int64   // reached their wait (counted outside replay)
	resumedEarly int64   // went past it before any signal
	slotsUsed    float64 // the worker's workflow-task slots in use while all waited
	resumed      int64   // went past it after the signals
	completed    int64   // visibility's count of completed runs
	err          error   // a wait for one of the above that gave up
}

// waitsHoldNoSlots: far more workflows than slots all reached their wait,
// none went past it unsignalled, no slot was in use while they waited, and
// every one resumed and completed once signalled.
func waitsHoldNoSlots(o waiting) bool {
	n := int64(o.n)
	return o.err == nil && o.n >= manyWaitersN && o.slots <= manyWaitersSlots && o.arrived == n && o.resumedEarly == 0 &&
		o.slotsUsed == 0 && o.resumed == n && o.completed == n
}

var manyWaitersPredicate = predicate.New("SG-02.many-waiters", "waitsHoldNoSlots", waitsHoldNoSlots,
	predicate.Case[waiting]{Name: "1000 waiting on 4 slots, none in use, all resumed",
		In: waiting{n: 1000, slots: 4, arrived: 1000, resumed: 1000, completed: 1000}, Want: true},
	predicate.Case[waiting]{Name: "each wait holds a slot: 4 got through",
		In: waiting{n: 1000, slots: 4, arrived: 4, slotsUsed: 4, err: errors.New("waiting for every waiter to reach its wait: gave up")}, Want: false},
	predicate.Case[waiting]{Name: "evicted waits lost their signals",
		In: waiting{n: 1000, slots: 4, arrived: 1000, resumed: 980, completed: 980, err: errors.New("waiting for every waiter to complete: gave up")}, Want: false},
)
