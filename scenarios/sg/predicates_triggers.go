package sg

import (
	"errors"
	"slices"
	"time"

	"github.com/durabench/durabench/harness/predicate"
	"github.com/durabench/durabench/harness/stats"
)

// The pass conditions of SG-03's checks, each a named predicate over the
// runs a trigger started, as the server reports them.

func triggerPredicates() []predicate.Spec {
	return []predicate.Spec{
		signalWithStartPredicate.Spec(), updateWithStartPredicate.Spec(), schedulePredicate.Spec(), webhookPredicate.Spec(),
		startDelayPredicate.Spec(), throughputPredicate.Spec(), queueTriggerPredicate.Spec(),
	}
}

// signalWithStart is two signal-with-start calls on one workflow id that
// did not exist (SG-03.signal-with-start).
type signalWithStart struct {
	absentBefore      bool     // describe said NotFound before the first call
	runs              []string // run id each call returned
	received          []int    // sequence numbers the run received
	started, signaled int      // history events
	err               error
}

// startedThenSignalled: the first call started the run, the second
// signalled that same run, and one run received both signals.
func startedThenSignalled(o signalWithStart) bool {
	return o.err == nil && o.absentBefore && len(o.runs) == 2 && o.runs[0] == o.runs[1] && slices.Equal(o.received, []int{0, 1}) &&
		o.started == 1 && o.signaled == 2
}

var signalWithStartPredicate = predicate.New("SG-03.signal-with-start", "startedThenSignalled", startedThenSignalled,
	predicate.Case[signalWithStart]{Name: "one run, both signals",
		In: signalWithStart{absentBefore: true, runs: []string{"r1", "r1"}, received: []int{0, 1}, started: 1, signaled: 2}, Want: true},
	predicate.Case[signalWithStart]{Name: "the second call started another run",
		In: signalWithStart{absentBefore: true, runs: []string{"r1", "r2"}, received: []int{0}, started: 1, signaled: 1}, Want: false},
	predicate.Case[signalWithStart]{Name: "the signal of the starting call was lost",
		In: signalWithStart{absentBefore: true, runs: []string{"r1", "r1"}, received: []int{1}, started: 1, signaled: 1}, Want: false},
)

// updateWithStart is update-with-start add(5) then add(3) on one workflow id
// with conflict policy UseExisting (SG-03.update-with-start).
type updateWithStart struct {
	runs    []string
	results []int // what each call's update returned
	final   CounterState
	err     error
}

// startedThenUpdated: the first call started the run and returned its
// update's result, the second updated the same run and returned the sum,
// and the run ran both handlers.
func startedThenUpdated(o updateWithStart) bool {
	return o.err == nil && len(o.runs) == 2 && o.runs[0] == o.runs[1] && slices.Equal(o.results, []int{5, 8}) &&
		o.final.Value == 8 && o.final.Handled == 2
}

var updateWithStartPredicate = predicate.New("SG-03.update-with-start", "startedThenUpdated", startedThenUpdated,
	predicate.Case[updateWithStart]{Name: "one run, results 5 and 8",
		In: updateWithStart{runs: []string{"r1", "r1"}, results: []int{5, 8}, final: CounterState{Value: 8, Handled: 2, Finished: true}}, Want: true},
	predicate.Case[updateWithStart]{Name: "the second call started a fresh run",
		In: updateWithStart{runs: []string{"r1", "r2"}, results: []int{5, 3}, final: CounterState{Value: 3, Handled: 1, Finished: true}}, Want: false},
	predicate.Case[updateWithStart]{Name: "started, but no update result returned",
		In: updateWithStart{runs: []string{"r1"}, err: errors.New("update-with-start not supported")}, Want: false},
)

// scheduled is a paused schedule triggered by hand (SG-03.schedule-trigger).
type scheduled struct {
	sent, got      Event  // the action's argument; the run's result
	wantMemo, memo string // the memo field configured; read back by describe
	wantAttr, attr string // the search attribute configured; read back by describe
	actionSeen     bool   // the schedule listed a started workflow among its recent actions
	err            error
}

// startedAsConfigured: the trigger started a run that received the
// configured argument and carries the configured memo and search attribute.
func startedAsConfigured(o scheduled) bool {
	return o.err == nil && o.actionSeen && o.got == o.sent && o.memo == o.wantMemo && o.attr == o.wantAttr
}

var (
	caseEvent         = Event{ID: "nightly-report", Source: "schedule", Body: "report for 2024-06-01"}
	schedulePredicate = predicate.New("SG-03.schedule-trigger", "startedAsConfigured", startedAsConfigured,
		predicate.Case[scheduled]{Name: "argument, memo and attribute carried",
			In: scheduled{sent: caseEvent, got: caseEvent, wantMemo: "billing", memo: "billing", wantAttr: "schedule", attr: "schedule", actionSeen: true}, Want: true},
		predicate.Case[scheduled]{Name: "the memo and attribute dropped",
			In: scheduled{sent: caseEvent, got: caseEvent, wantMemo: "billing", wantAttr: "schedule", actionSeen: true}, Want: false},
		predicate.Case[scheduled]{Name: "the trigger started nothing",
			In: scheduled{sent: caseEvent, wantMemo: "billing", wantAttr: "schedule", err: errors.New("no recent action")}, Want: false},
	)
)

// webhookEvent is what the webhook answered for one event posted one or more
// times, and what its run returned.
type webhookEvent struct {
	id                         string
	posts, created, duplicates int // posts; answered 201 started; answered as duplicates
	errs, runIDs               int // failed posts; distinct run ids answered
	sent, got                  Event
	runErr                     error
}

// webhookRun is a handful of events posted to the webhook, some repeated
// after completion and some at once (SG-03.http-webhook).
type webhookRun struct {
	events   []webhookEvent
	runs     int64 // visibility's count of runs with the webhook's id prefix
	countErr error
}

// oneRunPerEvent: each event started one run, every repeat was answered
// with that run, the runs returned their events, and visibility holds one
// run per event.
func oneRunPerEvent(o webhookRun) bool {
	if len(o.events) == 0 || o.countErr != nil || o.runs != int64(len(o.events)) {
		return false
	}
	repeated := false
	for _, e := range o.events {
		if e.created != 1 || e.duplicates != e.posts-1 || e.errs != 0 || e.runIDs != 1 || e.runErr != nil || e.got != e.sent {
			return false
		}
		repeated = repeated || e.posts > 1
	}
	return repeated
}

func caseWebhookEvent(id string, posts int) webhookEvent {
	ev := Event{ID: id, Body: "event " + id}
	return webhookEvent{id: id, posts: posts, created: 1, duplicates: posts - 1, runIDs: 1, sent: ev, got: ev}
}

var webhookPredicate = predicate.New("SG-03.http-webhook", "oneRunPerEvent", oneRunPerEvent,
	predicate.Case[webhookRun]{Name: "a ×2, b ×1, c ×3: three runs",
		In: webhookRun{events: []webhookEvent{caseWebhookEvent("a", 2), caseWebhookEvent("b", 1), caseWebhookEvent("c", 3)}, runs: 3}, Want: true},
	predicate.Case[webhookRun]{Name: "a repeat after completion started a second run",
		In: webhookRun{events: []webhookEvent{{id: "a", posts: 2, created: 2, runIDs: 2}, caseWebhookEvent("b", 1)}, runs: 3}, Want: false},
	predicate.Case[webhookRun]{Name: "concurrent repeats: one failed instead of joining",
		In: webhookRun{events: []webhookEvent{{id: "c", posts: 3, created: 1, duplicates: 1, errs: 1, runIDs: 1}}, runs: 1}, Want: false},
)

// startDelay is a workflow started with a start delay (SG-03.start-delay).
type startDelay struct {
	delay    time.Duration
	observed time.Duration // WorkflowExecutionStarted to the first WorkflowTaskStarted, by history event times
	found    bool          // history had a WorkflowTaskStarted
	err      error
}

// deferredByDelay: the first workflow task started no earlier than the
// delay and less than timerLateness after it.
func deferredByDelay(o startDelay) bool {
	return o.err == nil && o.found && onTime(o.observed, o.delay)
}

var startDelayPredicate = predicate.New("SG-03.start-delay", "deferredByDelay", deferredByDelay,
	predicate.Case[startDelay]{Name: "2.007s for 2s", In: startDelay{delay: 2 * time.Second, observed: 2007 * time.Millisecond, found: true}, Want: true},
	predicate.Case[startDelay]{Name: "the delay ignored: the task ran at once",
		In: startDelay{delay: 2 * time.Second, observed: 15 * time.Millisecond, found: true}, Want: false},
	predicate.Case[startDelay]{Name: "held far past the delay",
		In: startDelay{delay: 2 * time.Second, observed: 4 * time.Second, found: true}, Want: false},
)

// throughput is a burst of events and repeats posted concurrently to the
// webhook (SG-03.trigger-throughput).
type throughput struct {
	events, repeats           int
	created, duplicates, errs int   // answers: 201 started, 200 duplicate, failed
	runs                      int64 // visibility's count of runs on the webhook's task queue
	countErr                  error
	latency                   stats.Summary // POST to started answer, one per event's first post, ms
}

// exactlyOneStartPerEvent: every event started one run and every repeat was
// answered as a duplicate, with no error; visibility holds exactly one run
// per event; and each event's start latency was measured.
func exactlyOneStartPerEvent(o throughput) bool {
	return o.events > 0 && o.repeats > 0 && o.errs == 0 && o.created == o.events && o.duplicates == o.repeats &&
		o.countErr == nil && o.runs == int64(o.events) && o.latency.N == o.events
}

var throughputPredicate = predicate.New("SG-03.trigger-throughput", "exactlyOneStartPerEvent", exactlyOneStartPerEvent,
	predicate.Case[throughput]{Name: "1000 started, 100 duplicates, 1000 runs",
		In: throughput{events: 1000, repeats: 100, created: 1000, duplicates: 100, runs: 1000, latency: stats.Summary{N: 1000, P95: 218}}, Want: true},
	predicate.Case[throughput]{Name: "starts refused under load",
		In: throughput{events: 1000, repeats: 100, created: 950, duplicates: 100, errs: 50, runs: 950, latency: stats.Summary{N: 1000, P95: 218}}, Want: false},
	predicate.Case[throughput]{Name: "racing repeats started duplicate runs",
		In: throughput{events: 1000, repeats: 100, created: 1020, duplicates: 80, runs: 1020, latency: stats.Summary{N: 1000, P95: 218}}, Want: false},
)

// apiSurface is the server's public API, read from its service descriptors
// (SG-03.native-queue-trigger).
type apiSurface struct {
	methods      []string // every WorkflowService and OperatorService method
	queueMethods []string // those naming a message-queue source
}

// queueSourceOffered: the API has methods, and one of them configures a
// message-queue source.
func queueSourceOffered(o apiSurface) bool {
	return len(o.methods) > 0 && len(o.queueMethods) > 0
}

var queueTriggerPredicate = predicate.New("SG-03.native-queue-trigger", "queueSourceOffered", queueSourceOffered,
	predicate.Case[apiSurface]{Name: "an engine with a Kafka source method",
		In: apiSurface{methods: []string{"WorkflowService.StartWorkflowExecution", "TriggerService.CreateKafkaSource"},
			queueMethods: []string{"TriggerService.CreateKafkaSource"}}, Want: true},
	predicate.Case[apiSurface]{Name: "starts and signals only",
		In: apiSurface{methods: []string{"WorkflowService.StartWorkflowExecution", "WorkflowService.SignalWithStartWorkflowExecution"}}, Want: false},
)
