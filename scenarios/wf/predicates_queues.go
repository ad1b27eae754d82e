package wf

import (
	"errors"
	"maps"
	"math"
	"time"

	"github.com/durabench/durabench/harness/predicate"
	"github.com/durabench/durabench/harness/stats"
)

// The pass conditions of WF-06's checks, each a named predicate over where
// jobs ran, when they started and in what order the server dispatched them.

func queuePredicates() []predicate.Spec {
	return []predicate.Spec{
		routingPredicate.Spec(), concurrencyPredicate.Spec(), ratePredicate.Spec(), priorityPredicate.Spec(),
		queuePriorityPredicate.Spec(), backlogPredicate.Spec(), fairnessPredicate.Spec(), weightsPredicate.Spec(),
	}
}

// routingRun is n jobs sent to one of two queues, each polled by its own
// worker (WF-06.task-queue-routing).
type routingRun struct {
	queue string
	n     int
	err   error
	ran   map[string]int // jobs per worker
}

// ranOnlyOnOwnQueue: both queues were used, and every job sent to a queue
// ran on that queue's worker alone.
func ranOnlyOnOwnQueue(runs []routingRun) bool {
	ok := len(runs) >= 2
	for _, r := range runs {
		ok = ok && r.err == nil && r.n > 0 && maps.Equal(r.ran, map[string]int{r.queue: r.n})
	}
	return ok
}

var routingPredicate = predicate.New("WF-06.task-queue-routing", "ranOnlyOnOwnQueue", ranOnlyOnOwnQueue,
	predicate.Case[[]routingRun]{Name: "A on A, B on B", In: []routingRun{{queue: "A", n: 10, ran: map[string]int{"A": 10}}, {queue: "B", n: 10, ran: map[string]int{"B": 10}}}, Want: true},
	predicate.Case[[]routingRun]{Name: "one shared pool: jobs land on either worker",
		In: []routingRun{{queue: "A", n: 10, ran: map[string]int{"A": 6, "B": 4}}, {queue: "B", n: 10, ran: map[string]int{"A": 5, "B": 5}}}, Want: false},
)

// concurrencyRun is jobs queued at once for a worker with a concurrency
// limit (WF-06.concurrency-limit).
type concurrencyRun struct {
	err                   error
	limit, jobs, ran, max int // the limit, jobs queued, executions seen, most at once
}

// limitHeldAndReached: every job ran once, and the most running at once
// equals the limit: never above it, and reached.
func limitHeldAndReached(o concurrencyRun) bool {
	return o.err == nil && o.ran == o.jobs && o.max == o.limit
}

var concurrencyPredicate = predicate.New("WF-06.concurrency-limit", "limitHeldAndReached", limitHeldAndReached,
	predicate.Case[concurrencyRun]{Name: "4 of 24 at most", In: concurrencyRun{limit: 4, jobs: 24, ran: 24, max: 4}, Want: true},
	predicate.Case[concurrencyRun]{Name: "the limit is not enforced", In: concurrencyRun{limit: 4, jobs: 24, ran: 24, max: 24}, Want: false},
)

// rateRun is a backlog of jobs drained under one rate limit.
type rateRun struct {
	what          string
	limit         float64 // configured, per second
	want, n       int     // jobs queued, and started
	stats.Drain           // starts per second, judged while every partition still held work
	effective     string  // what the server says the queue's limit is
	partitionRate float64 // the per-partition share of a per-queue limit, 0 for a per-worker one
}

// rateLimits is both limits measured, with the tolerance they are judged by.
type rateLimits struct {
	worker, queue rateRun
	tolerance     float64
}

// rateHeldBothWays: for each limit, every job ran; over at least 3 judged
// seconds the 95% interval of the rate lies within tolerance of the limit
// on both sides (a limiter delivering far below its setting fails as surely
// as one delivering above it); the first second holds no more than the
// limiter's burst of one second of tokens on top of one second of rate; and
// the run after the first second does not exceed the limit by more than
// the tolerance.
func rateHeldBothWays(o rateLimits) bool {
	held := func(r rateRun) bool {
		up := r.limit * (1 + o.tolerance)
		return r.n == r.want && r.n > 0 && r.Window >= 3 && r.Lo >= r.limit*(1-o.tolerance) && r.Hi <= up &&
			len(r.PerSecond) > 0 && float64(r.PerSecond[0]) <= 2*up && r.AfterBurst <= up
	}
	return held(o.worker) && held(o.queue)
}

var (
	rateWorker = rateRun{limit: 20, want: 300, n: 300, Drain: stats.Drain{PerSecond: []int{20, 20, 20, 20, 20, 20, 20, 20}, Window: 6, Rate: 20, Lo: 20, Hi: 20, AfterBurst: 20}}
	rateQueue  = rateRun{limit: 20, want: 300, n: 300, Drain: stats.Drain{PerSecond: []int{40, 20, 20, 20, 20, 20, 19, 11}, Window: 4, Rate: 20, Lo: 20, Hi: 20, AfterBurst: 18.5}}
)

func withRate(r rateRun, f func(*rateRun)) rateRun {
	f(&r)
	return r
}

var ratePredicate = predicate.New("WF-06.rate-limits-measured", "rateHeldBothWays", rateHeldBothWays,
	predicate.Case[rateLimits]{Name: "both at 20/s", In: rateLimits{worker: rateWorker, queue: rateQueue, tolerance: 0.2}, Want: true},
	predicate.Case[rateLimits]{Name: "the per-queue limit delivers 10/s of its 20",
		In: rateLimits{worker: rateWorker, queue: withRate(rateQueue, func(r *rateRun) { r.Rate, r.Lo, r.Hi = 10, 9.5, 10.5 }), tolerance: 0.2}, Want: false},
	predicate.Case[rateLimits]{Name: "the per-worker limit is ignored: 200/s",
		In: rateLimits{worker: withRate(rateWorker, func(r *rateRun) {
			r.Drain = stats.Drain{PerSecond: []int{200, 100}, AfterBurst: 100}
		}), queue: rateQueue, tolerance: 0.2}, Want: false},
	predicate.Case[rateLimits]{Name: "an unbounded first burst", In: rateLimits{worker: rateWorker, queue: withRate(rateQueue, func(r *rateRun) { r.PerSecond = []int{150, 20, 20, 20, 20, 20, 19, 11} }), tolerance: 0.2}, Want: false},
)

// priorityRun is how often high-priority jobs queued behind low-priority
// ones were dispatched first, on the package's server and, where the
// harness can start one, on a one-partition server (WF-06.priority).
type priorityRun struct {
	base, one   float64 // fraction of (high, low) pairs with high first
	oneMeasured bool
	baseMin     float64
	oneMin      float64
}

// highAhead: on the default queue, high went ahead in at least baseMin of
// the pairs (first-in-first-out gives 0, random order 0.5); on one
// partition, where the order is exact, in at least oneMin.
func highAhead(o priorityRun) bool {
	return o.base >= o.baseMin && (!o.oneMeasured || o.one >= o.oneMin)
}

var priorityPredicate = predicate.New("WF-06.priority", "highAhead", highAhead,
	predicate.Case[priorityRun]{Name: "99% and 100%", In: priorityRun{base: 0.99, one: 1, oneMeasured: true, baseMin: 0.65, oneMin: 0.95}, Want: true},
	predicate.Case[priorityRun]{Name: "priority keys ignored: first in, first out", In: priorityRun{base: 0, one: 0, oneMeasured: true, baseMin: 0.65, oneMin: 0.95}, Want: false},
	predicate.Case[priorityRun]{Name: "approximate even on one partition", In: priorityRun{base: 0.8, one: 0.8, oneMeasured: true, baseMin: 0.65, oneMin: 0.95}, Want: false},
)

// queuePriority is a high-priority queue with its own worker served while a
// low-priority queue holds a backlog (WF-06.queue-priority).
type queuePriority struct {
	highErr, lowErr error
	highs, started  int // high-priority jobs sent, and started
	lowsLeft        int // low-priority jobs that started only after every high one finished
}

// highServedDuringBacklog: every high-priority job ran and finished while
// low-priority jobs were still waiting.
func highServedDuringBacklog(o queuePriority) bool {
	return o.highErr == nil && o.lowErr == nil && o.started == o.highs && o.lowsLeft > 0
}

var queuePriorityPredicate = predicate.New("WF-06.queue-priority", "highServedDuringBacklog", highServedDuringBacklog,
	predicate.Case[queuePriority]{Name: "5 high done, 14 low left", In: queuePriority{highs: 5, started: 5, lowsLeft: 14}, Want: true},
	predicate.Case[queuePriority]{Name: "the high queue waits for the low backlog", In: queuePriority{highs: 5, started: 5}, Want: false},
)

// backlogRun is jobs queued with no worker, then drained (WF-06.backlog-visible).
type backlogRun struct {
	queuedErr, err, drainedErr error // waits for the backlog to show, the jobs to finish, the backlog to clear
	n, count                   int64 // jobs queued; the backlog count reported
	age                        time.Duration
	sinceSent                  time.Duration // from sending the jobs to the report
}

// backlogShown: DescribeTaskQueue reported exactly the queued jobs, with an
// age that is positive and no older than the time since they were sent
// (plus 100 ms for the two clocks' rounding), and reported the backlog
// cleared once a worker drained it.
func backlogShown(o backlogRun) bool {
	return o.queuedErr == nil && o.count == o.n && o.age > 0 && o.age <= o.sinceSent+100*time.Millisecond && o.err == nil && o.drainedErr == nil
}

var backlogPredicate = predicate.New("WF-06.backlog-visible", "backlogShown", backlogShown,
	predicate.Case[backlogRun]{Name: "20 queued, 5 s old, then 0", In: backlogRun{n: 20, count: 20, age: 5080 * time.Millisecond, sinceSent: 5106 * time.Millisecond}, Want: true},
	predicate.Case[backlogRun]{Name: "no backlog statistics: always 0",
		In: backlogRun{queuedErr: errors.New("waiting for the backlog: gave up after 30s"), n: 20, sinceSent: 30 * time.Second}, Want: false},
	predicate.Case[backlogRun]{Name: "the count is right but the age is not tracked (a fixed value)",
		In: backlogRun{n: 20, count: 20, age: time.Hour, sinceSent: 5106 * time.Millisecond}, Want: false},
)

// fairnessRun is tenant b's share of the first dispatches behind tenant a's
// 10× backlog, on the server it is judged on (WF-06.fairness).
type fairnessRun struct {
	share, min float64
	dispatches int
}

// tenantNotStarved: b got at least min of the first dispatches (an even
// share is 0.5, first-in-first-out 0).
func tenantNotStarved(o fairnessRun) bool { return o.dispatches > 0 && o.share >= o.min }

var fairnessPredicate = predicate.New("WF-06.fairness", "tenantNotStarved", tenantNotStarved,
	predicate.Case[fairnessRun]{Name: "50% with fairness on", In: fairnessRun{share: 0.5, min: 0.4, dispatches: 10}, Want: true},
	predicate.Case[fairnessRun]{Name: "fairness off: first in, first out", In: fairnessRun{share: 0, min: 0.4, dispatches: 10}, Want: false},
)

// weightsRun is the a:b split of the first n dispatches with fairness
// weights 3 and 1 (WF-06.fairness-weights).
type weightsRun struct {
	a, b      int
	weight    float64 // a's weight over b's
	tolerance float64
}

// dispatchFollowsWeights: both tenants were dispatched, and the a:b ratio
// is within tolerance of the weights' ratio.
func dispatchFollowsWeights(o weightsRun) bool {
	return o.a > 0 && o.b > 0 && math.Abs(float64(o.a)/float64(o.b)/o.weight-1) <= o.tolerance
}

var weightsPredicate = predicate.New("WF-06.fairness-weights", "dispatchFollowsWeights", dispatchFollowsWeights,
	predicate.Case[weightsRun]{Name: "30:10", In: weightsRun{a: 30, b: 10, weight: 3, tolerance: 0.25}, Want: true},
	predicate.Case[weightsRun]{Name: "weights ignored: 20:20", In: weightsRun{a: 20, b: 20, weight: 3, tolerance: 0.25}, Want: false},
	predicate.Case[weightsRun]{Name: "first in, first out: 40:0", In: weightsRun{a: 40, b: 0, weight: 3, tolerance: 0.25}, Want: false},
)
