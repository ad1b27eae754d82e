package wf

import (
	"errors"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/durabench/durabench/harness/predicate"
)

// The pass conditions of WF-04's checks, each a named predicate over what a
// looping or branching workflow returned and the chain of runs its history
// shows.

func loopPredicates() []predicate.Spec {
	return []predicate.Spec{
		branchPredicate.Spec(), pollLoopPredicate.Spec(), continueAsNewPredicate.Spec(), longLoopPredicate.Spec(),
		signalsAcrossPredicate.Spec(), suggestedPredicate.Spec(), handlersFinishPredicate.Spec(),
	}
}

// branchRun is BranchWorkflow on one amount (WF-04.branch-on-result).
type branchRun struct {
	amount       int
	err          error
	out, want    string
	ran, wantRan []string // activity types scheduled, in order
}

// onlyChosenBranch: for every amount, the workflow returned the chosen
// branch's result and scheduled only that branch's activity after the
// classification; both branches were exercised.
func onlyChosenBranch(runs []branchRun) bool {
	outs := map[string]bool{}
	for _, r := range runs {
		if r.err != nil || r.out != r.want || !slices.Equal(r.ran, r.wantRan) {
			return false
		}
		outs[r.out] = true
	}
	return len(outs) >= 2
}

var branchPredicate = predicate.New("WF-04.branch-on-result", "onlyChosenBranch", onlyChosenBranch,
	predicate.Case[[]branchRun]{Name: "approved and sent to review", In: []branchRun{
		{amount: 500, out: "approved", want: "approved", ran: []string{"Classify", "Approve"}, wantRan: []string{"Classify", "Approve"}},
		{amount: 5000, out: "sent to review", want: "sent to review", ran: []string{"Classify", "Review"}, wantRan: []string{"Classify", "Review"}}}, Want: true},
	predicate.Case[[]branchRun]{Name: "both branches run (no conditional execution)", In: []branchRun{
		{amount: 500, out: "approved", want: "approved", ran: []string{"Classify", "Approve", "Review"}, wantRan: []string{"Classify", "Approve"}},
		{amount: 5000, out: "sent to review", want: "sent to review", ran: []string{"Classify", "Approve", "Review"}, wantRan: []string{"Classify", "Review"}}}, Want: false},
)

// pollRun is PollWorkflow polling until ready (WF-04.poll-loop).
type pollRun struct {
	err            error
	calls, readyAt int
	shape, want    []string        // completions and timer fires in history order
	gaps           []time.Duration // each timer's start to fire
	interval       time.Duration
}

// pollsWithTimers: the loop called until ready, with a durable timer
// between calls in history, each firing no earlier than the interval.
func pollsWithTimers(o pollRun) bool {
	ok := o.err == nil && o.calls == o.readyAt && slices.Equal(o.shape, o.want) && len(o.gaps) == o.readyAt-1
	for _, g := range o.gaps {
		ok = ok && g >= o.interval
	}
	return ok
}

var pollShape = []string{"call", "timer", "call", "timer", "call"}

var pollLoopPredicate = predicate.New("WF-04.poll-loop", "pollsWithTimers", pollsWithTimers,
	predicate.Case[pollRun]{Name: "three calls, two durable timers",
		In: pollRun{calls: 3, readyAt: 3, shape: pollShape, want: pollShape, gaps: []time.Duration{978 * time.Millisecond, time.Second}, interval: 500 * time.Millisecond}, Want: true},
	predicate.Case[pollRun]{Name: "the wait is not durable: no timers in history",
		In: pollRun{calls: 3, readyAt: 3, shape: []string{"call", "call", "call"}, want: pollShape, interval: 500 * time.Millisecond}, Want: false},
)

// counterRun is CounterWorkflow's chain of runs (WF-04.continue-as-new,
// WF-04.long-loop-bounded).
type counterRun struct {
	err                  error
	total, perRun        int
	iter, sum, stateRuns int   // the final state carried through the runs
	lengths              []int // each run's history length, from the server
	bound                int   // the longest a run's history may be
}

// carriedAndBounded: the state carried through every run adds up (all
// iterations, their sum, the runs counted), the server's chain holds the
// expected number of runs, and no run's history exceeds the bound.
func carriedAndBounded(o counterRun) bool {
	runs := (o.total + o.perRun - 1) / max(o.perRun, 1)
	return o.err == nil && o.iter == o.total && o.sum == o.total*(o.total+1)/2 && o.stateRuns == runs &&
		len(o.lengths) == runs && slices.Max(append([]int{0}, o.lengths...)) <= o.bound
}

var (
	counterCarried = counterRun{total: 60, perRun: 20, iter: 60, sum: 1830, stateRuns: 3, lengths: []int{25, 25, 25}, bound: 30}
	// Without continue-as-new the loop runs in one ever-growing history.
	counterOneRun = counterRun{total: 60, perRun: 20, iter: 60, sum: 1830, stateRuns: 1, lengths: []int{65}, bound: 30}
	// The new run starts from a fresh state.
	counterStateLost = counterRun{total: 60, perRun: 20, iter: 20, sum: 210, stateRuns: 1, lengths: []int{25, 25, 25}, bound: 30}
)

var (
	continueAsNewPredicate = predicate.New("WF-04.continue-as-new", "carriedAndBounded", carriedAndBounded,
		predicate.Case[counterRun]{Name: "3 runs of 25 events carry 60 iterations", In: counterCarried, Want: true},
		predicate.Case[counterRun]{Name: "no continue-as-new: one history of 65 events", In: counterOneRun, Want: false},
		predicate.Case[counterRun]{Name: "the state is not carried", In: counterStateLost, Want: false},
	)
	longLoopPredicate = predicate.New("WF-04.long-loop-bounded", "carriedAndBounded", carriedAndBounded,
		predicate.Case[counterRun]{Name: "10 runs of 1005 events carry 10,000 iterations",
			In: counterRun{total: 10000, perRun: 1000, iter: 10000, sum: 50005000, stateRuns: 10, lengths: slices.Repeat([]int{1005}, 10), bound: 1010}, Want: true},
		predicate.Case[counterRun]{Name: "a run outgrows the bound",
			In: counterRun{total: 10000, perRun: 1000, iter: 10000, sum: 50005000, stateRuns: 10, lengths: append(slices.Repeat([]int{1005}, 9), 2010), bound: 1010}, Want: false},
	)
)

// drainRun is DrainWorkflow receiving numbered signals across
// continue-as-new (WF-04.signals-across-continue-as-new).
type drainRun struct {
	err     error
	sent    int
	got     []int // the items received, sorted
	runs    int
	drained int // taken from the channel just before continuing as new
}

// everySignalOnce: every item 0..sent-1 was received exactly once, across
// more than one run, with some drained at a continue-as-new (so the
// boundary was crossed while signals arrived).
func everySignalOnce(o drainRun) bool {
	return o.err == nil && slices.Equal(o.got, upTo(o.sent)) && o.runs > 1 && o.drained > 0
}

func upTo(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

var signalsAcrossPredicate = predicate.New("WF-04.signals-across-continue-as-new", "everySignalOnce", everySignalOnce,
	predicate.Case[drainRun]{Name: "100 over 4 runs, 80 drained", In: drainRun{sent: 100, got: upTo(100), runs: 4, drained: 80}, Want: true},
	predicate.Case[drainRun]{Name: "signals pending at continue-as-new are lost",
		In: drainRun{err: errors.New("context deadline exceeded"), sent: 100, got: upTo(20), runs: 4}, Want: false},
	predicate.Case[drainRun]{Name: "one delivered twice", In: drainRun{sent: 3, got: []int{0, 1, 1, 2}, runs: 2, drained: 1}, Want: false},
)

// suggestRun is SuggestWorkflow looping until the engine suggests
// continue-as-new (WF-04.continue-as-new-suggested).
type suggestRun struct {
	err          error
	run          int               // 1 once it continued on the suggestion
	last         enumspb.EventType // the first run's last event
	length, size int               // history length and bytes when the suggestion came
	reasons      []string
	countLimit   int // the server's limit.historyCount.suggestContinueAsNew
	sizeLimit    int // and limit.historySize.suggestContinueAsNew
	perIteration int // history events one loop iteration adds
}

// continuedOnSuggestion: the first run ended in continue-as-new on the
// engine's suggestion, with a reason, at a history that had reached one of
// the server's documented thresholds (4,096 events or 4 MiB by default) and
// (for the event count) not more than one iteration past it: a suggestion
// that comes early, late or never fails.
func continuedOnSuggestion(o suggestRun) bool {
	atCount := o.length >= o.countLimit && o.length < o.countLimit+o.perIteration
	return o.err == nil && o.run == 1 && o.last == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW && len(o.reasons) > 0 &&
		(atCount || o.size >= o.sizeLimit)
}

var suggestedPredicate = predicate.New("WF-04.continue-as-new-suggested", "continuedOnSuggestion", continuedOnSuggestion,
	predicate.Case[suggestRun]{Name: "suggested at 4,123 events",
		In: suggestRun{run: 1, last: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW, length: 4123, size: 551545, reasons: []string{"too many history events"},
			countLimit: 4096, sizeLimit: 4 << 20, perIteration: 206}, Want: true},
	predicate.Case[suggestRun]{Name: "never suggested: the loop hits its safety limit",
		In: suggestRun{err: errors.New("the engine never suggested continue-as-new"), countLimit: 4096, sizeLimit: 4 << 20, perIteration: 206}, Want: false},
	predicate.Case[suggestRun]{Name: "suggested from the first task, long before any threshold",
		In: suggestRun{run: 1, last: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW, length: 209, size: 28000, reasons: []string{"reason 0"},
			countLimit: 4096, sizeLimit: 4 << 20, perIteration: 206}, Want: false},
)

// handlersRun is HandlersWorkflow continuing as new with updates in flight
// (WF-04.handlers-finish).
type handlersRun struct {
	updateErrs int
	results    []int
	err        error
	served     int
	order      []string // update completions and continue-as-new in the first run's history
}

// handlersFinishFirst: every caller got its result, the next run counted
// them all served, and the first run's history completes every update
// before continuing as new.
func handlersFinishFirst(o handlersRun) bool {
	return o.updateErrs == 0 && slices.Equal(o.results, []int{10, 20, 30}) && o.err == nil && o.served == 3 &&
		slices.Equal(o.order, []string{"update-completed", "update-completed", "update-completed", "continued-as-new"})
}

var handlersFinishPredicate = predicate.New("WF-04.handlers-finish", "handlersFinishFirst", handlersFinishFirst,
	predicate.Case[handlersRun]{Name: "three updates, then continue-as-new",
		In: handlersRun{results: []int{10, 20, 30}, served: 3, order: []string{"update-completed", "update-completed", "update-completed", "continued-as-new"}}, Want: true},
	predicate.Case[handlersRun]{Name: "continued as new under the handlers: callers get errors",
		In: handlersRun{updateErrs: 3, results: []int{0, 0, 0}, served: 0, order: []string{"continued-as-new"}}, Want: false},
)
