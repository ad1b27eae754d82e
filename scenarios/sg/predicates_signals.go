package sg

import (
	"errors"
	"fmt"
	"slices"

	"go.temporal.io/api/serviceerror"

	"github.com/durabench/durabench/harness/predicate"
	"github.com/durabench/durabench/harness/stats"
)

// The pass conditions of SG-01's checks, each a named predicate over what a
// CollectWorkflow received and what its history holds.

func signalPredicates() []predicate.Spec {
	return []predicate.Spec{
		deliveredPredicate.Spec(), orderPredicate.Spec(), workerDownPredicate.Spec(), serverCrashPredicate.Spec(),
		closedTargetPredicate.Spec(), underLoadPredicate.Spec(), requestIDPredicate.Spec(),
	}
}

// delivery compares what a collector received with what was sent: senders
// sent items 0..perSender-1 each.
type delivery struct {
	sent, received, lost, duplicated, outOfOrder int
}

func analyse(senders, perSender int, got []Received) delivery {
	d := delivery{sent: senders * perSender, received: len(got)}
	seen := map[[2]int]int{}
	last := map[int]int{}
	for _, r := range got {
		key := [2]int{r.Sender, r.Seq}
		seen[key]++
		if seen[key] > 1 {
			d.duplicated++
		}
		if prev, ok := last[r.Sender]; ok && r.Seq <= prev {
			d.outOfOrder++
		}
		last[r.Sender] = r.Seq
	}
	for s := range senders {
		for q := range perSender {
			if seen[[2]int{s, q}] == 0 {
				d.lost++
			}
		}
	}
	return d
}

// exact: something was sent and every item arrived once, in its sender's order.
func (d delivery) exact() bool {
	return d.sent > 0 && d.received == d.sent && d.lost == 0 && d.duplicated == 0 && d.outOfOrder == 0
}

func (d delivery) String() string {
	return fmt.Sprintf("%d sent, %d received, %d lost, %d duplicated, %d out of order", d.sent, d.received, d.lost, d.duplicated, d.outOfOrder)
}

func (d delivery) metrics() map[string]float64 {
	return map[string]float64{"sent": float64(d.sent), "received": float64(d.received), "lost": float64(d.lost),
		"duplicated": float64(d.duplicated), "out_of_order": float64(d.outOfOrder)}
}

// payload is one signal sent to a running workflow and what the workflow
// returned (SG-01.signal-delivered).
type payload struct {
	sent Item
	got  []Received
	err  error
}

// receivedWithPayload: the workflow received exactly the one item sent,
// sender, sequence and body intact.
func receivedWithPayload(o payload) bool {
	return o.err == nil && len(o.got) == 1 && o.got[0].Sender == o.sent.Sender && o.got[0].Seq == o.sent.Seq && o.got[0].Body == o.sent.Body
}

var (
	caseItem           = Item{Sender: 7, Body: "order #4711 paid"}
	deliveredPredicate = predicate.New("SG-01.signal-delivered", "receivedWithPayload", receivedWithPayload,
		predicate.Case[payload]{Name: "the item received intact",
			In: payload{sent: caseItem, got: []Received{{Item: caseItem}}}, Want: true},
		predicate.Case[payload]{Name: "the payload dropped on the way",
			In: payload{sent: caseItem, got: []Received{{Item: Item{Sender: 7}}}}, Want: false},
		predicate.Case[payload]{Name: "never received: the run timed out waiting",
			In: payload{sent: caseItem, err: errors.New("context deadline exceeded")}, Want: false},
	)
)

// sequence is a run of signals from one sender and how they arrived
// (SG-01.signal-order).
type sequence struct {
	d   delivery
	err error
}

// inSendOrder: every signal arrived once, in the order sent.
func inSendOrder(o sequence) bool { return o.err == nil && o.d.exact() }

var orderPredicate = predicate.New("SG-01.signal-order", "inSendOrder", inSendOrder,
	predicate.Case[sequence]{Name: "100 of 100 in order", In: sequence{d: delivery{sent: 100, received: 100}}, Want: true},
	predicate.Case[sequence]{Name: "3 overtaken by later ones", In: sequence{d: delivery{sent: 100, received: 100, outOfOrder: 3}}, Want: false},
	predicate.Case[sequence]{Name: "one lost", In: sequence{d: delivery{sent: 100, received: 99, lost: 1}, err: errors.New("deadline exceeded")}, Want: false},
)

// workerDown is a collector whose only worker was SIGKILLed before more
// signals were sent (SG-01.worker-down).
type workerDown struct {
	whileDown      int // signals sent with no worker running
	historySignals int // WorkflowExecutionSignaled events in history before a worker started again
	d              delivery
	err            error
}

// keptWhileWorkerDown: signals were sent while no worker ran, the server
// recorded every signal in history before a worker came back, and the new
// worker received them all once, in order.
func keptWhileWorkerDown(o workerDown) bool {
	return o.err == nil && o.whileDown > 0 && o.historySignals == o.d.sent && o.d.exact()
}

var workerDownPredicate = predicate.New("SG-01.worker-down", "keptWhileWorkerDown", keptWhileWorkerDown,
	predicate.Case[workerDown]{Name: "30 sent while down, 31 in history, all received",
		In: workerDown{whileDown: 30, historySignals: 31, d: delivery{sent: 31, received: 31}}, Want: true},
	predicate.Case[workerDown]{Name: "signals refused or dropped with no worker: history has only the first",
		In: workerDown{whileDown: 30, historySignals: 1, d: delivery{sent: 31, received: 1, lost: 30}, err: errors.New("deadline exceeded")}, Want: false},
	predicate.Case[workerDown]{Name: "buffered outside history, then delivered",
		In: workerDown{whileDown: 30, historySignals: 1, d: delivery{sent: 31, received: 31}}, Want: false},
)

// serverCrash is a collector that had signals accepted, with no worker
// running, before its server was SIGKILLed and restarted on the same
// database (SG-01.server-restart).
type serverCrash struct {
	restarted bool
	d         delivery
	err       error
}

// deliveredAfterServerCrash: after the restart every accepted signal reached
// the first worker to run, once and in order (no worker ran before the
// crash, so each one came from the database).
func deliveredAfterServerCrash(o serverCrash) bool {
	return o.err == nil && o.restarted && o.d.exact()
}

var serverCrashPredicate = predicate.New("SG-01.server-restart", "deliveredAfterServerCrash", deliveredAfterServerCrash,
	predicate.Case[serverCrash]{Name: "30 of 30 after the restart", In: serverCrash{restarted: true, d: delivery{sent: 30, received: 30}}, Want: true},
	predicate.Case[serverCrash]{Name: "an in-memory store: the run is gone",
		In: serverCrash{restarted: true, d: delivery{sent: 30, lost: 30}, err: errors.New("workflow not found")}, Want: false},
	predicate.Case[serverCrash]{Name: "the last 5 accepted but not yet written",
		In: serverCrash{restarted: true, d: delivery{sent: 30, received: 25, lost: 5}, err: errors.New("deadline exceeded")}, Want: false},
)

// closedSignal is a signal sent to a workflow that had completed
// (SG-01.closed-target-rejected).
type closedSignal struct {
	closed bool  // describe said Completed before the signal
	err    error // what SignalWorkflow returned
}

// rejectedAsNotFound: the workflow had closed and the signal was refused
// with NotFound, not accepted and dropped.
func rejectedAsNotFound(o closedSignal) bool {
	var nf *serviceerror.NotFound
	return o.closed && errors.As(o.err, &nf)
}

var closedTargetPredicate = predicate.New("SG-01.closed-target-rejected", "rejectedAsNotFound", rejectedAsNotFound,
	predicate.Case[closedSignal]{Name: "NotFound: workflow execution already completed",
		In: closedSignal{closed: true, err: serviceerror.NewNotFound("workflow execution already completed")}, Want: true},
	predicate.Case[closedSignal]{Name: "accepted and dropped silently", In: closedSignal{closed: true}, Want: false},
	predicate.Case[closedSignal]{Name: "refused for another reason",
		In: closedSignal{closed: true, err: serviceerror.NewUnavailable("try again")}, Want: false},
)

// underLoad is one collector signalled by concurrent senders
// (SG-01.no-loss-under-load).
type underLoad struct {
	senders int
	d       delivery
	latency stats.Summary // per received signal, send call to the receiving workflow task, ms
	err     error
}

// exactlyOnceUnderLoad: with more than one sender, every signal arrived
// once, each sender's in its order, and the delivery latency of every one
// was measured.
func exactlyOnceUnderLoad(o underLoad) bool {
	return o.err == nil && o.senders > 1 && o.d.exact() && o.latency.N == o.d.received && o.latency.P95 > 0
}

var underLoadPredicate = predicate.New("SG-01.no-loss-under-load", "exactlyOnceUnderLoad", exactlyOnceUnderLoad,
	predicate.Case[underLoad]{Name: "1000 of 1000, p95 32 ms",
		In: underLoad{senders: 10, d: delivery{sent: 1000, received: 1000}, latency: stats.Summary{N: 1000, P50: 22, P95: 32}}, Want: true},
	predicate.Case[underLoad]{Name: "2 duplicated by a retried send",
		In: underLoad{senders: 10, d: delivery{sent: 1000, received: 1002, duplicated: 2}, latency: stats.Summary{N: 1002, P50: 22, P95: 32}}, Want: false},
	predicate.Case[underLoad]{Name: "interleaving senders reordered one sender's signals",
		In: underLoad{senders: 10, d: delivery{sent: 1000, received: 1000, outOfOrder: 12}, latency: stats.Summary{N: 1000, P50: 22, P95: 32}}, Want: false},
)

// requestRetry is signal 0 sent twice with one request id, then signals 1
// and 2 with new ids, to a collector that ends at its third item
// (SG-01.request-id-dedup).
type requestRetry struct {
	received     []int // sequence numbers, in arrival order
	signalEvents int   // WorkflowExecutionSignaled events in history
	err          error
}

// deliveredOnceByRequestID: the retried signal arrived once (a duplicate
// would take the place of 2) and history recorded three signals.
func deliveredOnceByRequestID(o requestRetry) bool {
	return o.err == nil && slices.Equal(o.received, []int{0, 1, 2}) && o.signalEvents == 3
}

var requestIDPredicate = predicate.New("SG-01.request-id-dedup", "deliveredOnceByRequestID", deliveredOnceByRequestID,
	predicate.Case[requestRetry]{Name: "received 0 1 2, 3 events", In: requestRetry{received: []int{0, 1, 2}, signalEvents: 3}, Want: true},
	predicate.Case[requestRetry]{Name: "the retry delivered again", In: requestRetry{received: []int{0, 0, 1}, signalEvents: 4}, Want: false},
	predicate.Case[requestRetry]{Name: "delivered once but recorded twice", In: requestRetry{received: []int{0, 1, 2}, signalEvents: 4}, Want: false},
)
