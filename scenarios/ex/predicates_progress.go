package ex

import (
	"errors"
	"slices"
	"time"

	"github.com/durabench/durabench/harness/predicate"
)

// The pass conditions of EX-01's checks other than server-sigkill and chaos
// (predicates.go, which their negative controls share).

func progressPredicates() []predicate.Spec {
	return []predicate.Spec{completesPredicate.Spec(), workerKillPredicate.Spec(), timerOutagePredicate.Spec()}
}

// stepsRun is what a StepsWorkflow left behind: its result and the external
// ledger's count of executions per step (EX-01.workflow-completes).
type stepsRun struct {
	steps int
	out   []string
	err   error
	execs []int // ledger executions per step
}

// completesOncePerStep: the workflow returned every step's output in order
// and the ledger, which the activity writes on each execution, counts
// exactly one execution of every step.
func completesOncePerStep(o stepsRun) bool {
	return o.err == nil && o.steps > 0 && slices.Equal(o.out, expectedOutputs(o.steps)) &&
		len(o.execs) == o.steps && !slices.ContainsFunc(o.execs, func(n int) bool { return n != 1 })
}

var completesPredicate = predicate.New("EX-01.workflow-completes", "completesOncePerStep", completesOncePerStep,
	predicate.Case[stepsRun]{Name: "5 steps, each executed once",
		In: stepsRun{steps: 5, out: expectedOutputs(5), execs: []int{1, 1, 1, 1, 1}}, Want: true},
	predicate.Case[stepsRun]{Name: "a step executed twice on a healthy worker",
		In: stepsRun{steps: 5, out: expectedOutputs(5), execs: []int{1, 2, 1, 1, 1}}, Want: false},
	predicate.Case[stepsRun]{Name: "the workflow failed after step 3",
		In: stepsRun{steps: 5, out: expectedOutputs(3), err: errors.New("step 4: activity error"), execs: []int{1, 1, 1, 1, 0}}, Want: false},
	predicate.Case[stepsRun]{Name: "returned, but a step never reached the ledger",
		In: stepsRun{steps: 5, out: expectedOutputs(5), execs: []int{1, 1, 0, 1, 1}}, Want: false},
)

// workerKill is what a worker SIGKILL mid-run did to one StepsWorkflow
// (EX-01.worker-sigkill).
type workerKill struct {
	stepsRun
	doneBeforeKill map[int]bool // steps whose completion the server recorded before the kill
	again          []int        // of those, the steps the ledger shows ran more than once
	byNewWorker    int          // steps the new worker process finished
}

// progressSurvivesWorkerKill: the kill landed mid-run, the workflow then
// returned every step's output, the new worker process did the remaining
// work, and no step completed before the kill ran again. (The step in flight
// at the kill may run twice: at-least-once.)
func progressSurvivesWorkerKill(o workerKill) bool {
	return o.err == nil && o.steps > 0 && slices.Equal(o.out, expectedOutputs(o.steps)) &&
		len(o.doneBeforeKill) > 0 && len(o.again) == 0 && o.byNewWorker > 0
}

var workerKillPredicate = predicate.New("EX-01.worker-sigkill", "progressSurvivesWorkerKill", progressSurvivesWorkerKill,
	predicate.Case[workerKill]{Name: "killed after 2 of 6 steps; the step in flight ran again, the others once",
		In: workerKill{stepsRun: stepsRun{steps: 6, out: expectedOutputs(6), execs: []int{1, 1, 2, 1, 1, 1}},
			doneBeforeKill: map[int]bool{1: true, 2: true}, byNewWorker: 4}, Want: true},
	predicate.Case[workerKill]{Name: "the new worker started the workflow over",
		In: workerKill{stepsRun: stepsRun{steps: 6, out: expectedOutputs(6), execs: []int{2, 2, 2, 1, 1, 1}},
			doneBeforeKill: map[int]bool{1: true, 2: true}, again: []int{1, 2}, byNewWorker: 6}, Want: false},
	predicate.Case[workerKill]{Name: "the run never finished after the kill",
		In: workerKill{stepsRun: stepsRun{steps: 6, out: nil, err: errors.New("context deadline exceeded"), execs: []int{1, 1, 1, 0, 0, 0}},
			doneBeforeKill: map[int]bool{1: true, 2: true}}, Want: false},
)

// overdueTimerFiredOnRestart: the timer fell due inside the outage (after
// the kill, before the restart), and its TimerFired event was recorded after
// the restart, no earlier than its due time, and sooner after the restart
// than the time the timer still had to run at the kill. That last bound is
// what tells a timer the server kept from one it lost and re-armed: a timer
// re-armed on restart, from its full duration or from what it had left when
// the server died, fires no sooner than that after the restart; one the
// server kept is overdue and fires as soon as the server processes its
// timers (0.13-0.36s after the relaunch in the committed report's run and
// two runs of this code, with 2.96-2.97s left at the kill: a margin of 8×
// or more). The server's clock and the harness's are this host's.
func overdueTimerFiredOnRestart(o outage) bool {
	if o.timerFired.IsZero() || !o.killedAt.Before(o.timerDue) || !o.timerDue.Before(o.restartedAt) {
		return false
	}
	leftAtKill := o.timerDue.Sub(o.killedAt)
	return !o.timerFired.Before(o.timerDue) && !o.timerFired.Before(o.restartedAt) &&
		o.timerFired.Sub(o.restartedAt) < leftAtKill
}

// timerCase is an outage for the timer table: the timer due due after the
// kill, the server restarted down later, and TimerFired recorded fired
// after the restart (negative: never).
func timerCase(due, down, fired time.Duration) outage {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	o := outage{killedAt: t0, timerDue: t0.Add(due), restartedAt: t0.Add(down)}
	if fired >= 0 {
		o.timerFired = o.restartedAt.Add(fired)
	}
	return o
}

var timerOutagePredicate = predicate.New("EX-01.timer-during-outage", "overdueTimerFiredOnRestart", overdueTimerFiredOnRestart,
	predicate.Case[outage]{Name: "due 2.97s after the kill, server back at 3.97s, fired 0.13s after the restart",
		In: timerCase(2970*time.Millisecond, 3970*time.Millisecond, 130*time.Millisecond), Want: true},
	predicate.Case[outage]{Name: "lost: no TimerFired after the restart",
		In: timerCase(2970*time.Millisecond, 3970*time.Millisecond, -1), Want: false},
	predicate.Case[outage]{Name: "re-armed from zero on restart: fired the full 3s after it",
		In: timerCase(2970*time.Millisecond, 3970*time.Millisecond, 3100*time.Millisecond), Want: false},
	predicate.Case[outage]{Name: "clock paused during the outage: fired the 2.97s it had left after the restart",
		In: timerCase(2970*time.Millisecond, 3970*time.Millisecond, 2970*time.Millisecond+50*time.Millisecond), Want: false},
	predicate.Case[outage]{Name: "recorded during the outage: the kill did not stop the server",
		In: timerCase(2970*time.Millisecond, 3970*time.Millisecond, -900*time.Millisecond), Want: false},
	predicate.Case[outage]{Name: "the server came back before the due time: nothing was overdue",
		In: timerCase(2970*time.Millisecond, 1500*time.Millisecond, 1600*time.Millisecond), Want: false},
)
