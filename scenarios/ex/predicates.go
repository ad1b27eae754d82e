package ex

import (
	"errors"
	"fmt"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"

	"github.com/durabench/durabench/harness/predicate"
)

// The pass conditions of the package's checks: each is a named predicate
// over what a scenario observed, with a table of cases that shows it can
// return false, decided through harness.Decide. This file holds those a
// negative control guards (the scenario and its control run the same
// predicate); predicates_<item>.go hold the others, one file per item.

// Predicates returns every predicate the package defines, with its table.
// Each level check of EX-01..EX-06 is decided by one of them
// (scenarios/rules_test.go).
func Predicates() []predicate.Spec {
	return slices.Concat(
		[]predicate.Spec{serverRestartPredicate.Spec(), chaosPredicate.Spec(), duplicateStartPredicate.Spec()},
		progressPredicates(),
		effectPredicates(),
		idempotencyPredicates(),
		persistencePredicates(),
		determinismPredicates(),
		violationPredicates(),
		replayPredicates(),
	)
}

// outage is what a server kill and restart did to one workflow
// (EX-01.server-sigkill and its in-memory control).
type outage struct {
	err            error
	out            []string
	doneBeforeKill map[int]bool // steps whose completion the server recorded before the kill
	again          []int        // of those, the steps the ledger shows ran more than once
	execs          []int        // ledger executions per step
	killedAt       time.Time
	restartedAt    time.Time // the restarted server process was launched
	readyAt        time.Time // it answered the harness's health check
	timerStarted   time.Time // the TimerStarted event
	timerDue       time.Time
	timerFired     time.Time // zero if no TimerFired event
}

// progressSurvivesServerRestart: the kill landed mid-run (some steps were
// complete), the workflow then returned every step's output, and no step
// completed before the kill ran again.
func progressSurvivesServerRestart(o outage) bool {
	return o.err == nil && len(o.execs) > 0 && slices.Equal(o.out, expectedOutputs(len(o.execs))) &&
		len(o.again) == 0 && len(o.doneBeforeKill) > 0
}

var serverRestartPredicate = predicate.New("EX-01.server-sigkill", "progressSurvivesServerRestart", progressSurvivesServerRestart,
	predicate.Case[outage]{Name: "restarted on the same SQLite file: completes, nothing re-run",
		In: outage{out: expectedOutputs(4), doneBeforeKill: map[int]bool{1: true, 2: true}, execs: []int{1, 1, 1, 1}}, Want: true},
	predicate.Case[outage]{Name: "restarted in memory: the workflow is gone",
		In: outage{err: serviceerror.NewNotFound("workflow execution not found"), doneBeforeKill: map[int]bool{1: true, 2: true}, execs: []int{1, 1, 0, 0}}, Want: false},
	predicate.Case[outage]{Name: "completes but re-ran a step completed before the kill",
		In: outage{out: expectedOutputs(4), doneBeforeKill: map[int]bool{1: true, 2: true}, again: []int{2}, execs: []int{1, 2, 1, 1}}, Want: false},
	predicate.Case[outage]{Name: "started over: returns outputs of a fresh run after losing its history",
		In: outage{out: expectedOutputs(4), doneBeforeKill: map[int]bool{1: true, 2: true}, again: []int{1, 2}, execs: []int{2, 2, 1, 1}}, Want: false},
	predicate.Case[outage]{Name: "the kill landed before any step completed",
		In: outage{out: expectedOutputs(4), doneBeforeKill: map[int]bool{}, execs: []int{1, 1, 1, 1}}, Want: false},
)

// chaosObservation is what a chaos run (EX-01.chaos) or its accounting
// control observed.
type chaosObservation struct {
	planned, fired int    // faults
	stalled        string // why progress stopped before a fault could fire; "" if it did not
	workflows      int    // started
	completed      int    // returned every step's output
	duplicates     int    // executions beyond one per step
	unexplained    int    // duplicates explained by neither a fault that hit their process nor a start-to-close timeout in history
}

// chaosHolds: every planned fault fired, nothing stalled, every workflow
// completed (none lost), and every duplicate side effect is accounted for
// by a fault that hit the process running it or by a timeout the history
// shows.
func chaosHolds(o chaosObservation) bool {
	return o.stalled == "" && o.fired == o.planned && o.workflows > 0 && o.completed == o.workflows && o.unexplained == 0
}

var chaosPredicate = predicate.New("EX-01.chaos", "chaosHolds", chaosHolds,
	predicate.Case[chaosObservation]{Name: "200 workflows through 4 faults, every duplicate explained",
		In: chaosObservation{planned: 4, fired: 4, workflows: 200, completed: 200, duplicates: 31}, Want: true},
	predicate.Case[chaosObservation]{Name: "no fault planned, no duplicate",
		In: chaosObservation{workflows: 20, completed: 20}, Want: true},
	predicate.Case[chaosObservation]{Name: "one planted duplicate with no fault behind it",
		In: chaosObservation{workflows: 20, completed: 20, duplicates: 1, unexplained: 1}, Want: false},
	predicate.Case[chaosObservation]{Name: "a duplicate on a worker that was not killed",
		In: chaosObservation{planned: 4, fired: 4, workflows: 200, completed: 200, duplicates: 30, unexplained: 1}, Want: false},
	predicate.Case[chaosObservation]{Name: "two workflows lost",
		In: chaosObservation{planned: 4, fired: 4, workflows: 200, completed: 198, duplicates: 30}, Want: false},
	predicate.Case[chaosObservation]{Name: "stalled after two faults",
		In: chaosObservation{planned: 4, fired: 2, stalled: "waiting for 500 of 1000 steps done: gave up after 3m0s", workflows: 200, completed: 200}, Want: false},
	predicate.Case[chaosObservation]{Name: "nothing started",
		In: chaosObservation{planned: 4, fired: 4}, Want: false},
)

// attempt is the observed result of one start.
type attempt struct {
	runID string
	err   error
}

// alreadyStarted reports whether err is the server's
// WorkflowExecutionAlreadyStarted.
func alreadyStarted(err error) bool {
	var as *serviceerror.WorkflowExecutionAlreadyStarted
	return errors.As(err, &as)
}

func (a attempt) rejected() bool { return alreadyStarted(a.err) }

// duplicateStart is what a second start of a running workflow id did
// (EX-03.duplicate-start-rejected and its TerminateExisting control).
type duplicateStart struct {
	firstRunID string
	second     attempt                         // the second start of the running id
	oldStatus  enumspb.WorkflowExecutionStatus // the first run's status after the second start
	joined     attempt                         // a third start with the SDK's default (no error when already started)
}

// duplicateStartRejected: the second start of the running id was rejected
// with WorkflowExecutionAlreadyStarted and created no run, the first run is
// still running, and the SDK's default joined that same run.
func duplicateStartRejected(d duplicateStart) bool {
	return d.second.rejected() && d.second.runID == "" &&
		d.oldStatus == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING &&
		d.joined.err == nil && d.firstRunID != "" && d.joined.runID == d.firstRunID
}

func alreadyStartedErr(runID string) error {
	return serviceerror.NewWorkflowExecutionAlreadyStarted("Workflow execution is already running. WorkflowId: wf, RunId: "+runID+".", "", runID)
}

const (
	caseRun1 = "0198c0de-0000-7000-8000-00000000a001"
	caseRun2 = "0198c0de-0000-7000-8000-00000000b002"
)

var duplicateStartPredicate = predicate.New("EX-03.duplicate-start-rejected", "duplicateStartRejected", duplicateStartRejected,
	predicate.Case[duplicateStart]{Name: "conflict policy Fail: rejected, the running run untouched and joined by the SDK default",
		In: duplicateStart{firstRunID: caseRun1, second: attempt{err: alreadyStartedErr(caseRun1)},
			oldStatus: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, joined: attempt{runID: caseRun1}}, Want: true},
	predicate.Case[duplicateStart]{Name: "conflict policy TerminateExisting: a second run starts and the first is terminated",
		In: duplicateStart{firstRunID: caseRun1, second: attempt{runID: caseRun2},
			oldStatus: enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, joined: attempt{runID: caseRun2}}, Want: false},
	predicate.Case[duplicateStart]{Name: "rejected with another error than WorkflowExecutionAlreadyStarted",
		In: duplicateStart{firstRunID: caseRun1, second: attempt{err: fmt.Errorf("start: %w", serviceerror.NewUnavailable("connection refused"))},
			oldStatus: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, joined: attempt{runID: caseRun1}}, Want: false},
	predicate.Case[duplicateStart]{Name: "rejected, but the first run had already closed",
		In: duplicateStart{firstRunID: caseRun1, second: attempt{err: alreadyStartedErr(caseRun1)},
			oldStatus: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, joined: attempt{runID: caseRun1}}, Want: false},
	predicate.Case[duplicateStart]{Name: "rejected, but the SDK default started a new run instead of joining",
		In: duplicateStart{firstRunID: caseRun1, second: attempt{err: alreadyStartedErr(caseRun1)},
			oldStatus: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, joined: attempt{runID: caseRun2}}, Want: false},
)
