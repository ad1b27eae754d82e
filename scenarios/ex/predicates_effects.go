package ex

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"

	"github.com/durabench/durabench/harness/ledger"
	"github.com/durabench/durabench/harness/predicate"
)

// The pass conditions of EX-02's checks. Each judges one EffectWorkflow run
// from three records kept apart: the external system's (the ledger of every
// execution and the keyed store), the SDK's (what the activity reported),
// and the server's (the history).

func effectPredicates() []predicate.Spec {
	return []predicate.Spec{
		memoisedPredicate.Spec(), stableKeyPredicate.Spec(), retryDedupPredicate.Spec(),
		crashAfterWritePredicate.Spec(), attemptsPredicate.Spec(), engineDedupPredicate.Spec(),
	}
}

// effectRun is what one EffectWorkflow left behind.
type effectRun struct {
	id         string
	out        EffectOutcome
	err        error
	executions []ledger.Entry // ledger lines of this run, in order
	stored     []string       // keys of this run in the store
	activityID string         // from ActivityTaskScheduled
	started    *historypb.ActivityTaskStartedEventAttributes
	finisher   string // identity of the worker that completed the last workflow task
}

func (r effectRun) attempts() []int32 {
	out := make([]int32, len(r.executions))
	for i, e := range r.executions {
		out[i] = e.Attempt
	}
	return out
}

func (r effectRun) phases() []string {
	out := make([]string, len(r.executions))
	for i, e := range r.executions {
		out[i] = e.Phase
	}
	return out
}

func (r effectRun) describe() string {
	lines := make([]string, len(r.executions))
	for i, e := range r.executions {
		lines[i] = fmt.Sprintf("attempt %d pid %d %s", e.Attempt, e.PID, e.Phase)
	}
	return fmt.Sprintf("result %+v (error: %v); ledger: [%s]; store holds %d effect(s) for the run",
		r.out, r.err, strings.Join(lines, "; "), len(r.stored))
}

// ranBy reports whether a worker identity (the SDK's default, pid@host@) is
// that of process pid.
func ranBy(identity string, pid int) bool {
	return strings.HasPrefix(identity, strconv.Itoa(pid)+"@")
}

// seq is 1..n.
func seq(n int32) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(i + 1)
	}
	return out
}

// Table inputs: a run's ledger lines and its history's ActivityTaskStarted.
func effectLines(pids []int, phases ...string) []ledger.Entry {
	out := make([]ledger.Entry, len(phases))
	for i, p := range phases {
		out[i] = ledger.Entry{Key: "wf.5", Attempt: int32(i + 1), PID: pids[i%len(pids)], Phase: p}
	}
	return out
}

func startedAttempt(n int32, last *failurepb.Failure) *historypb.ActivityTaskStartedEventAttributes {
	return &historypb.ActivityTaskStartedEventAttributes{Attempt: n, LastFailure: last}
}

var startToCloseTimeout = &failurepb.Failure{Message: "activity StartToClose timeout", FailureInfo: &failurepb.Failure_TimeoutFailureInfo{
	TimeoutFailureInfo: &failurepb.TimeoutFailureInfo{TimeoutType: enumspb.TIMEOUT_TYPE_START_TO_CLOSE}}}

// memoised is an activity completed on a worker that was then killed, and
// the workflow finished by a new worker process (EX-02.result-memoised).
type memoised struct {
	run           effectRun
	first, second int // pids of the killed worker and of its successor
}

// resultMemoised: the workflow completed on the new worker, returning the
// result the killed worker's execution produced (read from history), and
// the ledger counts that one execution.
func resultMemoised(o memoised) bool {
	return o.run.err == nil && len(o.run.executions) == 1 && o.run.out.PID == o.first && ranBy(o.run.finisher, o.second)
}

var memoisedPredicate = predicate.New("EX-02.result-memoised", "resultMemoised", resultMemoised,
	predicate.Case[memoised]{Name: "one execution on the killed worker; the new worker finished with its result",
		In: memoised{run: effectRun{out: EffectOutcome{PID: 10}, executions: effectLines([]int{10}, effectApplied), finisher: "11@host@"}, first: 10, second: 11}, Want: true},
	predicate.Case[memoised]{Name: "the new worker ran the activity again",
		In: memoised{run: effectRun{out: EffectOutcome{PID: 11}, executions: effectLines([]int{10, 11}, effectApplied, effectDropped), finisher: "11@host@"}, first: 10, second: 11}, Want: false},
	predicate.Case[memoised]{Name: "no new worker took the workflow over",
		In: memoised{run: effectRun{out: EffectOutcome{PID: 10}, executions: effectLines([]int{10}, effectApplied), finisher: "10@host@"}, first: 10, second: 11}, Want: false},
)

// retried is an activity whose first attempts write and then fail
// (EX-02.stable-idempotency-key and EX-02.ledger-dedup-on-retry).
type retried struct {
	run     effectRun
	failing int32 // attempts that fail after their write
}

// keyStableAcrossAttempts: every attempt ran (1..failing+1, as the SDK
// numbered them) and handed the external system the same key, which is the
// workflow id and the activity id the history's ActivityTaskScheduled
// records.
func keyStableAcrossAttempts(o retried) bool {
	r := o.run
	if r.err != nil || r.activityID == "" || !slices.Equal(r.attempts(), seq(o.failing+1)) {
		return false
	}
	want := r.id + "." + r.activityID
	return !slices.ContainsFunc(r.executions, func(e ledger.Entry) bool { return e.Key != want })
}

func keyedLines(keys ...string) []ledger.Entry {
	out := effectLines([]int{10}, slices.Repeat([]string{effectDropped}, len(keys))...)
	for i := range out {
		out[i].Key = keys[i]
	}
	return out
}

var stableKeyPredicate = predicate.New("EX-02.stable-idempotency-key", "keyStableAcrossAttempts", keyStableAcrossAttempts,
	predicate.Case[retried]{Name: "3 attempts, one key: workflow id + activity id",
		In: retried{run: effectRun{id: "wf", activityID: "5", executions: keyedLines("wf.5", "wf.5", "wf.5")}, failing: 2}, Want: true},
	predicate.Case[retried]{Name: "the activity id changes on retry",
		In: retried{run: effectRun{id: "wf", activityID: "5", executions: keyedLines("wf.5", "wf.6", "wf.7")}, failing: 2}, Want: false},
	predicate.Case[retried]{Name: "the activity was not retried",
		In: retried{run: effectRun{id: "wf", activityID: "5", executions: keyedLines("wf.5")}, failing: 2}, Want: false},
)

// ledgerDroppedRetries: every attempt ran, the first write was applied and
// each retry's was dropped by the keyed store, which holds one effect.
func ledgerDroppedRetries(o retried) bool {
	want := append([]string{effectApplied}, slices.Repeat([]string{effectDropped}, int(o.failing))...)
	return o.run.err == nil && o.failing > 0 && slices.Equal(o.run.phases(), want) && len(o.run.stored) == 1
}

var retryDedupPredicate = predicate.New("EX-02.ledger-dedup-on-retry", "ledgerDroppedRetries", ledgerDroppedRetries,
	predicate.Case[retried]{Name: "applied once, two retries dropped, one effect stored",
		In: retried{run: effectRun{executions: effectLines([]int{10}, effectApplied, effectDropped, effectDropped), stored: []string{"wf.5"}}, failing: 2}, Want: true},
	predicate.Case[retried]{Name: "a new key per attempt: three effects",
		In: retried{run: effectRun{executions: effectLines([]int{10}, effectApplied, effectApplied, effectApplied), stored: []string{"wf.5", "wf.6", "wf.7"}}, failing: 2}, Want: false},
)

// crashAfterWrite is an activity whose worker was SIGKILLed after its write
// and before it reported completion (EX-02.crash-after-write,
// attempts-accounted, engine-dedup-without-key).
type crashAfterWrite struct {
	run    effectRun
	killed int // pid of the worker killed after its write
}

// crashed: the first execution the ledger saw is the killed worker's.
func (o crashAfterWrite) crashed() bool {
	return len(o.run.executions) > 0 && o.run.executions[0].PID == o.killed
}

// keyedStoreHeldOne: the crash landed after the first write, the activity
// ran again, the completing execution found its key already written, and
// the store holds one effect.
func keyedStoreHeldOne(o crashAfterWrite) bool {
	return o.run.err == nil && o.crashed() && len(o.run.executions) >= 2 && len(o.run.stored) == 1 && !o.run.out.Applied
}

var crashAfterWritePredicate = predicate.New("EX-02.crash-after-write", "keyedStoreHeldOne", keyedStoreHeldOne,
	predicate.Case[crashAfterWrite]{Name: "written by the killed worker, the retry's write dropped",
		In: crashAfterWrite{run: effectRun{executions: effectLines([]int{10, 11}, effectApplied, effectDropped), stored: []string{"wf.5"}}, killed: 10}, Want: true},
	predicate.Case[crashAfterWrite]{Name: "the retry wrote a second effect",
		In: crashAfterWrite{run: effectRun{out: EffectOutcome{Applied: true}, executions: effectLines([]int{10, 11}, effectApplied, effectApplied), stored: []string{"wf.5", "wf.5#2"}}, killed: 10}, Want: false},
	predicate.Case[crashAfterWrite]{Name: "the kill came before any write",
		In: crashAfterWrite{run: effectRun{out: EffectOutcome{Applied: true}, executions: effectLines([]int{11}, effectApplied), stored: []string{"wf.5"}}, killed: 10}, Want: false},
)

// attemptsMadeVisible: the activity ran more than once (the crash made
// at-least-once happen), the SDK numbered the executions the external
// system saw 1..n, the history's ActivityTaskStarted records attempt n, and
// its last failure is the timeout of the killed attempt.
func attemptsMadeVisible(o crashAfterWrite) bool {
	n := int32(len(o.run.executions))
	return o.run.err == nil && n >= 2 && slices.Equal(o.run.attempts(), seq(n)) &&
		o.run.started.GetAttempt() == n && o.run.started.GetLastFailure().GetTimeoutFailureInfo() != nil
}

var attemptsPredicate = predicate.New("EX-02.attempts-accounted", "attemptsMadeVisible", attemptsMadeVisible,
	predicate.Case[crashAfterWrite]{Name: "ledger attempts 1, 2; history attempt 2 after a start-to-close timeout",
		In: crashAfterWrite{run: effectRun{executions: effectLines([]int{10, 11}, effectApplied, effectDropped), started: startedAttempt(2, startToCloseTimeout)}, killed: 10}, Want: true},
	predicate.Case[crashAfterWrite]{Name: "the history shows one attempt where the ledger saw two",
		In: crashAfterWrite{run: effectRun{executions: effectLines([]int{10, 11}, effectApplied, effectDropped), started: startedAttempt(1, nil)}, killed: 10}, Want: false},
	predicate.Case[crashAfterWrite]{Name: "the retry ran with the first attempt's number",
		In: crashAfterWrite{run: effectRun{executions: []ledger.Entry{{Attempt: 1, PID: 10}, {Attempt: 1, PID: 11}}, started: startedAttempt(2, startToCloseTimeout)}, killed: 10}, Want: false},
)

// engineDedupedWithoutKey: with no application key (the ledger, which
// records every execution, stands for such a system), the crash landed after
// the write and the system still received one write: only an engine that
// deduplicates effects itself, or an outbox committed with the completion,
// does that.
func engineDedupedWithoutKey(o crashAfterWrite) bool {
	return o.run.err == nil && o.crashed() && len(o.run.executions) == 1
}

var engineDedupPredicate = predicate.New("EX-02.engine-dedup-without-key", "engineDedupedWithoutKey", engineDedupedWithoutKey,
	predicate.Case[crashAfterWrite]{Name: "the activity ran again after the crash: two writes",
		In: crashAfterWrite{run: effectRun{executions: effectLines([]int{10, 11}, effectApplied, effectDropped)}, killed: 10}, Want: false},
	predicate.Case[crashAfterWrite]{Name: "an engine that checkpoints the effect with its write: not run again, one write",
		In: crashAfterWrite{run: effectRun{executions: effectLines([]int{10}, effectApplied)}, killed: 10}, Want: true},
	predicate.Case[crashAfterWrite]{Name: "the run failed",
		In: crashAfterWrite{run: effectRun{err: errors.New("activity error"), executions: effectLines([]int{10}, effectApplied)}, killed: 10}, Want: false},
)
