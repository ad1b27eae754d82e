package cp

import (
	"errors"
	"maps"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/durabench/durabench/harness/predicate"
)

// The pass conditions of CP-04 (dead letter / poison), one named predicate
// per check over what the scenario observed.

func deadLetterPredicates() []predicate.Spec {
	return []predicate.Spec{
		dlIsolatedPredicate.Spec(),
		dlListablePredicate.Spec(),
		dlFailureKeptPredicate.Spec(),
		dlTaggedPredicate.Spec(),
		dlNotifyPredicate.Spec(),
		dlRedrivePredicate.Spec(),
		dlHeldPredicate.Spec(),
	}
}

// dlPoisonRun is one poison run after it closed.
type dlPoisonRun struct {
	id       string
	status   enumspb.WorkflowExecutionStatus
	attempts int       // executions of Process the activity counted
	closed   time.Time // close time from describe
}

// dlGoodRun is one healthy run on the same task queue.
type dlGoodRun struct {
	latency time.Duration // from the start call to the result
	done    time.Time
	err     error
}

// dlIsolation is CP-04.isolated's observation.
type dlIsolation struct {
	maxAttempts int // of the poison's Process
	poison      []dlPoisonRun
	baseline    []dlGoodRun // healthy runs alone on the queue
	alongside   []dlGoodRun // healthy runs started with the poison runs
}

func dlLatencies(runs []dlGoodRun) []time.Duration {
	out := make([]time.Duration, len(runs))
	for i, r := range runs {
		out[i] = r.latency
	}
	slices.Sort(out)
	return out
}

// dlMedian is the median of sorted d, 0 for none.
func dlMedian(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[len(d)/2]
}

// poisonIsolated: every poison run failed after exactly its maximum of
// attempts, and every healthy run completed, those started beside the poison
// before any poison run gave up. The bound is the poison's retry span
// ((maximum attempts - 1) intervals, 2 s here, stretched by the server's
// timer granularity): a queue that served the poison's retries ahead of other
// runs would hold them at least that long. The healthy runs' latency alone
// and beside the poison is reported, not bounded: on a loaded 2-core host
// its noise is of the order of a retry interval.
func poisonIsolated(o dlIsolation) bool {
	if len(o.poison) == 0 || len(o.baseline) == 0 || len(o.alongside) == 0 {
		return false
	}
	firstClose := time.Time{}
	for _, p := range o.poison {
		if p.status != wsFailed || p.attempts != o.maxAttempts {
			return false
		}
		if firstClose.IsZero() || p.closed.Before(firstClose) {
			firstClose = p.closed
		}
	}
	for _, g := range slices.Concat(o.baseline, o.alongside) {
		if g.err != nil {
			return false
		}
	}
	for _, g := range o.alongside {
		if !g.done.Before(firstClose) {
			return false
		}
	}
	return true
}

func dlGood(t0 time.Time, ms ...int) []dlGoodRun {
	out := make([]dlGoodRun, len(ms))
	for i, m := range ms {
		d := time.Duration(m) * time.Millisecond
		out[i] = dlGoodRun{latency: d, done: t0.Add(d)}
	}
	return out
}

func dlPoison(t0 time.Time, attempts int, closeAfter time.Duration) []dlPoisonRun {
	return []dlPoisonRun{{id: "p1", status: wsFailed, attempts: attempts, closed: t0.Add(closeAfter)},
		{id: "p2", status: wsFailed, attempts: attempts, closed: t0.Add(closeAfter + 10*time.Millisecond)}}
}

var dlIsolatedPredicate = predicate.New("CP-04.isolated", "poisonIsolated", poisonIsolated,
	predicate.Case[dlIsolation]{Name: "poison fails after 5 attempts over 2 s; others complete in 60 ms as without it",
		In: dlIsolation{maxAttempts: 5, poison: dlPoison(opCaseT0, 5, 2100*time.Millisecond),
			baseline: dlGood(opCaseT0, 40, 50, 60), alongside: dlGood(opCaseT0, 50, 60, 70)}, Want: true},
	predicate.Case[dlIsolation]{Name: "head-of-line blocking: others wait until the poison gives up",
		In: dlIsolation{maxAttempts: 5, poison: dlPoison(opCaseT0, 5, 2100*time.Millisecond),
			baseline: dlGood(opCaseT0, 40, 50, 60), alongside: dlGood(opCaseT0, 2150, 2160, 2170)}, Want: false},
	predicate.Case[dlIsolation]{Name: "the poison retries forever instead of failing after its attempts",
		In: dlIsolation{maxAttempts: 5,
			poison:   []dlPoisonRun{{id: "p1", status: wsRunning, attempts: 40}},
			baseline: dlGood(opCaseT0, 40, 50, 60), alongside: dlGood(opCaseT0, 50, 60, 70)}, Want: false},
	predicate.Case[dlIsolation]{Name: "a healthy run fails beside the poison",
		In: dlIsolation{maxAttempts: 5, poison: dlPoison(opCaseT0, 5, 2100*time.Millisecond),
			baseline:  dlGood(opCaseT0, 40, 50, 60),
			alongside: append(dlGood(opCaseT0, 50, 60), dlGoodRun{latency: time.Second, done: opCaseT0.Add(time.Second), err: errors.New("workflow timeout")})}, Want: false},
)

// dlListing is CP-04.listable-by-status's observation.
type dlListing struct {
	query  string
	listed []string // workflow ids the query returned
	want   []string // the poison runs' ids
	err    error    // of the query or the wait for visibility
}

func dlSameSet(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

// failedRunsListed: the query on status and workflow type returned exactly
// the poison runs, none of the healthy ones.
func failedRunsListed(l dlListing) bool {
	return l.err == nil && len(l.want) > 0 && dlSameSet(l.listed, l.want)
}

var dlListablePredicate = predicate.New("CP-04.listable-by-status", "failedRunsListed", failedRunsListed,
	predicate.Case[dlListing]{Name: "exactly the failed runs listed", In: dlListing{listed: []string{"p2", "p1"}, want: []string{"p1", "p2"}}, Want: true},
	predicate.Case[dlListing]{Name: "visibility never shows them",
		In: dlListing{want: []string{"p1", "p2"}, err: errors.New("waiting for 2 failed runs: gave up after 30s")}, Want: false},
	predicate.Case[dlListing]{Name: "the query ignores the status and lists healthy runs too",
		In: dlListing{listed: []string{"p1", "p2", "g1"}, want: []string{"p1", "p2"}}, Want: false},
	predicate.Case[dlListing]{Name: "the query is refused", In: dlListing{want: []string{"p1"}, err: errors.New("InvalidArgument: unknown field")}, Want: false},
)

// dlKept is what one failed run's history keeps.
type dlKept struct {
	id         string
	input      string // Item decoded from the first event's input
	given      string // the item the run was started with
	failure    string // the close event's failure message
	causeType  string // the application failure in its cause chain
	causeMsg   string
	attempt    int32 // of the last ActivityTaskStarted of Process
	retryState enumspb.RetryState
}

// dlFailureKept is CP-04.failure-kept's observation.
type dlFailureKept struct {
	maxAttempts int32
	runs        []dlKept
	err         error // reading a history
}

// failedRunKept: every failed run's history gives back its input, a close
// failure whose cause is the poison's error, and the attempt count that
// exhausted the policy.
func failedRunKept(f dlFailureKept) bool {
	if f.err != nil || len(f.runs) == 0 {
		return false
	}
	for _, r := range f.runs {
		if r.input != r.given || r.failure == "" || r.causeType != MalformedItemType || r.causeMsg == "" ||
			r.attempt != f.maxAttempts || r.retryState != enumspb.RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED {
			return false
		}
	}
	return true
}

func dlKeptCase(edit func(*dlKept)) dlFailureKept {
	k := dlKept{id: "p1", input: "poison-1", given: "poison-1", failure: "activity error", causeType: MalformedItemType,
		causeMsg: `cannot parse item "poison-1"`, attempt: 5, retryState: enumspb.RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED}
	if edit != nil {
		edit(&k)
	}
	return dlFailureKept{maxAttempts: 5, runs: []dlKept{k}}
}

var dlFailureKeptPredicate = predicate.New("CP-04.failure-kept", "failedRunKept", failedRunKept,
	predicate.Case[dlFailureKept]{Name: "input, cause and 5 attempts kept", In: dlKeptCase(nil), Want: true},
	predicate.Case[dlFailureKept]{Name: "the cause is lost: only a generic failure", In: dlKeptCase(func(k *dlKept) { k.causeType, k.causeMsg = "", "" }), Want: false},
	predicate.Case[dlFailureKept]{Name: "the input is not kept", In: dlKeptCase(func(k *dlKept) { k.input = "" }), Want: false},
	predicate.Case[dlFailureKept]{Name: "no attempt count", In: dlKeptCase(func(k *dlKept) { k.attempt, k.retryState = 0, enumspb.RETRY_STATE_UNSPECIFIED }), Want: false},
	predicate.Case[dlFailureKept]{Name: "history unreadable", In: dlFailureKept{maxAttempts: 5, err: errors.New("NotFound")}, Want: false},
)

// dlTagging is CP-04.tagged's observation.
type dlTagging struct {
	query   string
	listed  map[string]string // workflow id -> DeadLetterReason the listing returned
	want    []string          // the poison runs' ids
	reason  string            // the reason each must carry
	upserts int               // UpsertWorkflowSearchAttributes events across the poison runs
	err     error
}

// taggedAndFound: the query on the tag returned exactly the poison runs,
// each carrying the reason, and the tag came from the runs themselves (an
// upsert event in each history).
func taggedAndFound(d dlTagging) bool {
	if d.err != nil || len(d.want) == 0 || !dlSameSet(slices.Collect(maps.Keys(d.listed)), d.want) || d.upserts < len(d.want) {
		return false
	}
	for _, r := range d.listed {
		if r != d.reason {
			return false
		}
	}
	return true
}

var dlTaggedPredicate = predicate.New("CP-04.tagged", "taggedAndFound", taggedAndFound,
	predicate.Case[dlTagging]{Name: "both poison runs found by the tag with the reason",
		In: dlTagging{listed: map[string]string{"p1": MalformedItemType, "p2": MalformedItemType}, want: []string{"p1", "p2"}, reason: MalformedItemType, upserts: 2}, Want: true},
	predicate.Case[dlTagging]{Name: "search attributes cannot be added: the query is refused",
		In: dlTagging{want: []string{"p1", "p2"}, reason: MalformedItemType, err: errors.New("InvalidArgument: DeadLetter is not a valid search attribute")}, Want: false},
	predicate.Case[dlTagging]{Name: "the tag is set but the reason is missing",
		In: dlTagging{listed: map[string]string{"p1": "", "p2": ""}, want: []string{"p1", "p2"}, reason: MalformedItemType, upserts: 2}, Want: false},
	predicate.Case[dlTagging]{Name: "one run never tagged itself",
		In: dlTagging{listed: map[string]string{"p1": MalformedItemType}, want: []string{"p1", "p2"}, reason: MalformedItemType, upserts: 1}, Want: false},
)

// dlNotify is CP-04.notify's observation.
type dlNotify struct {
	notices []DeadLetterNotice // what the webhook received
	poison  []string           // ids that must be named
	healthy []string           // ids that must not
	wfType  string
	reason  string
	err     error // waiting for the notices
}

// deadLetterNotified: every poison run's notice reached the webhook naming
// the run, its workflow type and the reason, and no healthy run was
// notified.
func deadLetterNotified(n dlNotify) bool {
	if n.err != nil || len(n.poison) == 0 {
		return false
	}
	got := map[string]bool{}
	for _, x := range n.notices {
		if slices.Contains(n.healthy, x.WorkflowID) {
			return false
		}
		if x.WorkflowType == n.wfType && x.Reason == n.reason && x.RunID != "" {
			got[x.WorkflowID] = true
		}
	}
	for _, id := range n.poison {
		if !got[id] {
			return false
		}
	}
	return true
}

func dlNotice(id string) DeadLetterNotice {
	return DeadLetterNotice{WorkflowID: id, RunID: "r-" + id, WorkflowType: "PoisonWorkflow", Reason: MalformedItemType, Error: "cannot parse"}
}

var dlNotifyPredicate = predicate.New("CP-04.notify", "deadLetterNotified", deadLetterNotified,
	predicate.Case[dlNotify]{Name: "one notice per poison run",
		In: dlNotify{notices: []DeadLetterNotice{dlNotice("p1"), dlNotice("p2")}, poison: []string{"p1", "p2"}, healthy: []string{"g1"},
			wfType: "PoisonWorkflow", reason: MalformedItemType}, Want: true},
	predicate.Case[dlNotify]{Name: "the sink received nothing",
		In: dlNotify{poison: []string{"p1", "p2"}, healthy: []string{"g1"}, wfType: "PoisonWorkflow", reason: MalformedItemType,
			err: errors.New("waiting for 2 notices: gave up after 10s")}, Want: false},
	predicate.Case[dlNotify]{Name: "a healthy run notified",
		In: dlNotify{notices: []DeadLetterNotice{dlNotice("p1"), dlNotice("p2"), dlNotice("g1")}, poison: []string{"p1", "p2"}, healthy: []string{"g1"},
			wfType: "PoisonWorkflow", reason: MalformedItemType}, Want: false},
	predicate.Case[dlNotify]{Name: "the body does not name the reason",
		In: dlNotify{notices: []DeadLetterNotice{{WorkflowID: "p1", RunID: "r", WorkflowType: "PoisonWorkflow"}}, poison: []string{"p1"},
			wfType: "PoisonWorkflow", reason: MalformedItemType}, Want: false},
)

// dlRedriven is one dead-lettered run re-driven by reset.
type dlRedriven struct {
	id, item string
	oldRunID string
	newRunID string
	err      error  // of the reset
	result   string // of the new run
	runErr   error
}

// dlRedrive is CP-04.redrive's observation.
type dlRedrive struct {
	query  string
	before int64 // dead letters counted before the re-drive
	runs   []dlRedriven
	after  int64 // counted after
	err    error // waiting for a count
}

// redrivenToZero: the dead letters were counted, each was re-driven after
// the fix and completed processing its original input, and the count came
// back to zero.
func redrivenToZero(r dlRedrive) bool {
	if r.err != nil || len(r.runs) == 0 || r.before != int64(len(r.runs)) || r.after != 0 {
		return false
	}
	for _, x := range r.runs {
		if x.err != nil || x.runErr != nil || x.newRunID == "" || x.newRunID == x.oldRunID || x.result != "processed "+x.item {
			return false
		}
	}
	return true
}

func dlRedriveCase(after int64, result string, resetErr error) dlRedrive {
	return dlRedrive{before: 2, after: after, runs: []dlRedriven{
		{id: "p1", item: "poison-1", oldRunID: "a", newRunID: "b", result: "processed poison-1"},
		{id: "p2", item: "poison-2", oldRunID: "c", newRunID: "d", result: result, err: resetErr}}}
}

var dlRedrivePredicate = predicate.New("CP-04.redrive", "redrivenToZero", redrivenToZero,
	predicate.Case[dlRedrive]{Name: "both re-driven and completed; count 2 then 0", In: dlRedriveCase(0, "processed poison-2", nil), Want: true},
	predicate.Case[dlRedrive]{Name: "re-driven without the fix: fails again and stays counted",
		In: dlRedriveCase(1, "", nil), Want: false},
	predicate.Case[dlRedrive]{Name: "reset refused", In: dlRedriveCase(1, "", errors.New("InvalidArgument")), Want: false},
	predicate.Case[dlRedrive]{Name: "completed but the count never drops", In: dlRedriveCase(2, "processed poison-2", nil), Want: false},
)

// dlHeld is CP-04.poison-activity-held's observation.
type dlHeld struct {
	interval       time.Duration // the poison activity's retry interval
	observedGap    time.Duration // the longest gap between its attempts before the pause
	threshold      int32         // attempt count from which an activity is held
	found          []string      // workflow ids whose pending activity reached the threshold
	poison         string        // the run with the poison activity
	attemptAtFind  int32
	pauseErr       error
	state          enumspb.PendingActivityState // after the pause settled
	window         time.Duration                // watched after the pause
	grewDuring     int                          // executions during the window
	pausedIdentity string                       // from the pending activity's pause info
}

// poisonActivityHeld: the scan by attempt count found the poison run and
// only it; the pause was accepted, the activity shows as paused, and no
// attempt ran over a window longer than both its configured retry interval
// and the longest gap observed between its attempts (the server arms short
// retry timers late), so that a retry still going on would have shown.
func poisonActivityHeld(h dlHeld) bool {
	return slices.Equal(h.found, []string{h.poison}) && h.attemptAtFind >= h.threshold && h.pauseErr == nil &&
		h.state == enumspb.PENDING_ACTIVITY_STATE_PAUSED && h.window > h.interval && h.window > h.observedGap && h.grewDuring == 0
}

func dlHeldCase(edit func(*dlHeld)) dlHeld {
	h := dlHeld{interval: 200 * time.Millisecond, observedGap: time.Second, threshold: 5, found: []string{"p1"}, poison: "p1", attemptAtFind: 5,
		state: enumspb.PENDING_ACTIVITY_STATE_PAUSED, window: 2 * time.Second}
	if edit != nil {
		edit(&h)
	}
	return h
}

var dlHeldPredicate = predicate.New("CP-04.poison-activity-held", "poisonActivityHeld", poisonActivityHeld,
	predicate.Case[dlHeld]{Name: "found at attempt 5, paused, no attempt in 2 s", In: dlHeldCase(nil), Want: true},
	predicate.Case[dlHeld]{Name: "pause unsupported: keeps retrying",
		In: dlHeldCase(func(h *dlHeld) {
			h.pauseErr, h.state, h.grewDuring = errors.New("Unimplemented"), enumspb.PENDING_ACTIVITY_STATE_SCHEDULED, 9
		}), Want: false},
	predicate.Case[dlHeld]{Name: "paused in name only: attempts go on", In: dlHeldCase(func(h *dlHeld) { h.grewDuring = 3 }), Want: false},
	predicate.Case[dlHeld]{Name: "the scan cannot tell the poison from a slow run", In: dlHeldCase(func(h *dlHeld) { h.found = []string{"p1", "slow"} }), Want: false},
	predicate.Case[dlHeld]{Name: "window no longer than the retry interval proves nothing", In: dlHeldCase(func(h *dlHeld) { h.window = 100 * time.Millisecond }), Want: false},
	predicate.Case[dlHeld]{Name: "window shorter than the observed gap between attempts", In: dlHeldCase(func(h *dlHeld) { h.observedGap = 3 * time.Second }), Want: false},
)
