package wf

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/harness/stats"
)

// TestWF06 measures queues: routing by task queue, a worker's concurrency
// limit, per-worker and per-queue rate limits, priority keys and priority by
// separate queues, backlog visibility, and fairness between tenants.
func TestWF06(t *testing.T) {
	t.Parallel()
	env := harness.Get(t)
	where := "the package's server (default configuration: 4 partitions per task queue, fairness off)"
	if env.External {
		where = "the external server " + env.Options.HostPort
	}
	qt := newQueueTest(t, env.Dial(t), env.Options.Namespace, where)
	t.Run("task_queue_routing", qt.testRouting)
	t.Run("concurrency_limit", qt.testConcurrency)
	t.Run("rate_limits", func(t *testing.T) { qt.testRateLimits(t, !env.External) })
	t.Run("queue_priority", qt.testQueuePriority)
	t.Run("backlog_visible", qt.testBacklog)
	// Priority and fairness order tasks within a task queue partition; with
	// several partitions the order is approximate. They are measured on the
	// package's server and, when the harness can start servers, on dedicated
	// servers with fairness on, with one partition and with the default four.
	ordering := orderingServers{base: qt}
	if !env.External {
		ordering.one = queueServer(t, "a dedicated dev server with fairness on and one partition per task queue", map[string]string{
			"matching.enableFairness": "true", "matching.numTaskqueueReadPartitions": "1", "matching.numTaskqueueWritePartitions": "1",
		})
		ordering.four = queueServer(t, "a dedicated dev server with fairness on and the default 4 partitions", map[string]string{"matching.enableFairness": "true"})
	}
	t.Run("priority", ordering.testPriority)
	t.Run("fairness", ordering.testFairness)
}

// queueServer starts a dedicated dev server with dynamic config dc and
// returns a queueTest on it, which keeps the server so that a check judged
// there can record its dynamic config (Check.OnServer).
func queueServer(t *testing.T, where string, dc map[string]string) *queueTest {
	t.Helper()
	srv := harness.Get(t).StartServer(t, harness.ServerOptions{DynamicConfig: dc})
	qt := newQueueTest(t, srv.Dial(t), "default", where)
	qt.srv, qt.dc = srv, dc
	return &qt
}

// queueTest runs DispatchWorkflow on its own workflow task queue; the jobs
// go to queues that each test names.
type queueTest struct {
	c     client.Client
	wfTQ  string
	ns    string
	where string            // which server, for details
	srv   *harness.Server   // a dedicated server, nil for the package's
	dc    map[string]string // the dynamic config the dedicated server was given
}

// judgedOn records, for a check judged on qt's server, that server when it
// is a dedicated one (its dynamic config then appears with the check), and
// returns the words that say so in the detail.
func (qt queueTest) judgedOn(check *harness.Check) string {
	if qt.srv == nil {
		return "judged on " + qt.where
	}
	check.OnServer(qt.srv)
	var dc []string
	for _, k := range slices.Sorted(maps.Keys(qt.dc)) {
		dc = append(dc, k+"="+qt.dc[k])
	}
	return fmt.Sprintf("judged on %s, whose dynamic config is not the default (%s; listed with the check): a server with the defaults, such as the temporal CLI's dev server, runs with fairness off", qt.where, strings.Join(dc, ", "))
}

func newQueueTest(t *testing.T, c client.Client, ns, where string) queueTest {
	t.Helper()
	qt := queueTest{c: c, wfTQ: harness.TaskQueue(t), ns: ns, where: where}
	newWorker(t, c, qt.wfTQ, worker.Options{}, func(r worker.Registry) { r.RegisterWorkflow(DispatchWorkflow) })
	return qt
}

func (qt queueTest) dispatch(ctx context.Context, t *testing.T, in DispatchInput) client.WorkflowRun {
	t.Helper()
	return start(ctx, t, qt.c, client.StartWorkflowOptions{TaskQueue: qt.wfTQ}, DispatchWorkflow, in)
}

// jobWorker starts a worker for jobs on tq and returns its probe.
func (qt queueTest) jobWorker(t *testing.T, tq, name string, o worker.Options) *Probe {
	t.Helper()
	p := &Probe{}
	newWorker(t, qt.c, tq, o, func(r worker.Registry) { r.RegisterActivity(&Jobs{Name: name, Probe: p}) })
	return p
}

func (qt queueTest) testRouting(t *testing.T) {
	check := harness.Get(t).Check(t, "WF-06.task-queue-routing")
	ctx := harness.Context(t, time.Minute)
	queues := map[string]string{"A": harness.TaskQueue(t), "B": harness.TaskQueue(t)}
	for name, tq := range queues {
		qt.jobWorker(t, tq, name, worker.Options{})
	}
	var runs []routingRun
	var details []string
	for _, name := range slices.Sorted(maps.Keys(queues)) {
		var ran map[string]int
		err := qt.dispatch(ctx, t, DispatchInput{TaskQueue: queues[name], Tag: name, Count: 10}).Get(ctx, &ran)
		runs = append(runs, routingRun{queue: name, n: 10, err: err, ran: ran})
		details = append(details, fmt.Sprintf("10 jobs sent to queue %s ran on workers %v (error: %v)", name, ran, err))
	}
	harness.Decide(check, routingPredicate, runs, "two workers, each polling its own queue: "+strings.Join(details, "; "), nil)
}

func (qt queueTest) testConcurrency(t *testing.T) {
	check := harness.Get(t).Check(t, "WF-06.concurrency-limit")
	quiet(t) // reaching the limit needs jobs dispatched faster than they finish
	ctx := harness.Context(t, time.Minute)
	const limit, n, d = 4, 24, 250 * time.Millisecond
	tq := harness.TaskQueue(t)
	p := qt.jobWorker(t, tq, "w", worker.Options{MaxConcurrentActivityExecutionSize: limit})
	began := time.Now()
	err := qt.dispatch(ctx, t, DispatchInput{TaskQueue: tq, Tag: "c", Count: n, Duration: d}).Get(ctx, nil)
	took := time.Since(began)
	observed := maxConcurrent(p.Runs())
	o := concurrencyRun{err: err, limit: limit, jobs: n, ran: len(p.Runs()), max: observed}
	harness.Decide(check, concurrencyPredicate, o, fmt.Sprintf("MaxConcurrentActivityExecutionSize=%d, %d jobs of %s queued at once: at most %d ran at the same time; all done in %.2fs (%.2fs if exactly %d at a time) (error: %v)",
		limit, n, d, observed, took.Seconds(), (n/limit*d).Seconds(), limit, err),
		map[string]float64{"max_in_flight": float64(observed), "limit": limit})
}

// The rate-limit measurement's settings. The limit and the tolerance are the
// catalog's (WF-06.rate-limits-measured): counting starts per whole second
// quantises a 20/s rate by one start (5%), and the rest of the 20% is the
// catalog's allowance. rateJobs is enough that the judged window (below)
// holds at least 4 seconds on a 4-partition queue.
const (
	rateLimit     = 20.0
	rateJobs      = 300
	rateTolerance = 0.2
)

// testRateLimits judges both limits on the package's server; with
// onePartition it also drains the per-queue limit on a dedicated server with
// one partition per task queue, reported beside it (not judged) to show
// where the default queue's tail comes from.
func (qt queueTest) testRateLimits(t *testing.T, onePartition bool) {
	check := harness.Get(t).Check(t, "WF-06.rate-limits-measured")
	quiet(t) // rates are measured; the dedicated server starts inside, not beside another measurement
	var one *queueTest
	if onePartition {
		one = queueServer(t, "a dedicated dev server with one partition per task queue", map[string]string{
			"matching.numTaskqueueReadPartitions": "1", "matching.numTaskqueueWritePartitions": "1"})
	}
	o := rateLimits{tolerance: rateTolerance}
	var alone rateRun
	// The limits are measured side by side, each on its own queue.
	t.Run("measure", func(t *testing.T) {
		if one != nil {
			t.Run("queue_one_partition", parallel(func(t *testing.T) {
				alone = one.measureRate(t, "per-queue on "+one.where, worker.Options{TaskQueueActivitiesPerSecond: rateLimit})
			}))
		}
		t.Run("worker", parallel(func(t *testing.T) {
			o.worker = qt.measureRate(t, "per-worker (WorkerActivitiesPerSecond)", worker.Options{WorkerActivitiesPerSecond: rateLimit})
		}))
		t.Run("queue", parallel(func(t *testing.T) {
			o.queue = qt.measureRate(t, "per-queue (TaskQueueActivitiesPerSecond)", worker.Options{TaskQueueActivitiesPerSecond: rateLimit})
		}))
	})
	also := ""
	if one != nil {
		also = fmt.Sprintf(" Not judged, for comparison: %s", alone)
	}
	harness.Decide(check, ratePredicate, o, fmt.Sprintf("%s; %s. Each judged on the seconds after the first until the middle job started (every partition still held work): "+
		"the 95%% interval of the rate must lie within ±%.0f%% of the limit, [%.0f, %.0f]/s (the catalog's tolerance); the first second may hold one second of burst on top of one of rate (the server's limiter keeps 1 s of tokens), at most %.0f; "+
		"the run after the first second at most %.0f/s.%s",
		o.worker, o.queue, 100*rateTolerance, rateLimit*(1-rateTolerance), rateLimit*(1+rateTolerance), 2*rateLimit*(1+rateTolerance), rateLimit*(1+rateTolerance), also),
		map[string]float64{"limit_per_s": rateLimit, "jobs": rateJobs,
			"worker_rate_per_s": o.worker.Rate, "worker_rate_lo": o.worker.Lo, "worker_rate_hi": o.worker.Hi,
			"queue_rate_per_s": o.queue.Rate, "queue_rate_lo": o.queue.Lo, "queue_rate_hi": o.queue.Hi,
			"worker_after_burst_per_s": o.worker.AfterBurst, "queue_after_burst_per_s": o.queue.AfterBurst,
			"worker_tail_per_s": o.worker.Tail, "queue_tail_per_s": o.queue.Tail, "queue_one_partition_tail_per_s": alone.Tail,
			"worker_first_second": float64(first(o.worker.PerSecond)), "queue_first_second": float64(first(o.queue.PerSecond))})
}

func first(xs []int) int {
	if len(xs) == 0 {
		return 0
	}
	return xs[0]
}

func (r rateRun) String() string {
	s := fmt.Sprintf("%s limit %.0f/s: %d of %d jobs started, per second %v; over seconds 1-%d %.1f/s, 95%% interval [%.1f, %.1f] (margins %+.1f below, %+.1f above); "+
		"%.1f/s after the first second; %.1f/s after the judged seconds",
		r.what, r.limit, r.n, r.want, r.PerSecond, r.Window, r.Rate, r.Lo, r.Hi, r.Lo-r.limit*(1-rateTolerance), r.limit*(1+rateTolerance)-r.Hi, r.AfterBurst, r.Tail)
	if r.partitionRate > 0 {
		s += fmt.Sprintf(" (the server divides a per-queue limit evenly among the queue's %d read partitions, %.0f/s each, and places tasks in partitions at random: once a partition runs dry its share goes unused, so the end of a backlog drains below the limit)",
			int(math.Round(r.limit/r.partitionRate)), r.partitionRate)
	}
	if r.effective != "" {
		s += "; server reports " + r.effective
	}
	return s
}

// measureRate queues rateJobs instant jobs on a fresh queue with no worker,
// waits until the server reports all of them in the backlog, then starts
// one worker with options o and measures the rate at which they start. A
// backlog first keeps the starter's own pace out of the measurement.
//
// The rate is judged on the seconds after the first (which holds the
// limiter's burst) up to the second in which the middle job started
// (stats.DrainRate): every partition then still held work unless one
// received under an eighth of the jobs, which for 300 jobs over 4
// partitions (binomial, mean 75, sd 7.5) is 5 standard deviations away. A
// clean-clone run that took the median of every second to the end saw 15/s
// from a 20/s per-queue limit: the tail.
func (qt queueTest) measureRate(t *testing.T, what string, o worker.Options) rateRun {
	ctx := harness.Context(t, 2*time.Minute)
	tq := harness.TaskQueue(t)
	run := qt.dispatch(ctx, t, DispatchInput{TaskQueue: tq, Tag: "r", Count: rateJobs})
	if err := waitEvents(ctx, qt.c, run.GetID(), enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, rateJobs, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := qt.waitBacklog(ctx, tq, func(n int64) bool { return n >= rateJobs }); err != nil {
		t.Fatal(err)
	}
	// Enough pollers that the limit, not polling, sets the pace.
	o.MaxConcurrentActivityTaskPollers = 8
	p := qt.jobWorker(t, tq, "r", o)
	if err := run.Get(ctx, nil); err != nil {
		t.Fatalf("rate run: %v", err)
	}
	var starts []time.Time
	for _, r := range p.Runs() {
		starts = append(starts, r.Start)
	}
	r := rateRun{what: what, limit: rateLimit, want: rateJobs, n: len(starts), Drain: stats.DrainRate(starts)}
	if o.TaskQueueActivitiesPerSecond > 0 {
		resp, err := qt.c.WorkflowService().DescribeTaskQueue(ctx, &workflowservice.DescribeTaskQueueRequest{
			Namespace: qt.ns, TaskQueue: &taskqueuepb.TaskQueue{Name: tq}, TaskQueueType: enumspb.TASK_QUEUE_TYPE_ACTIVITY, ReportConfig: true,
		})
		if err == nil && resp.GetEffectiveRateLimit() != nil {
			e := resp.GetEffectiveRateLimit()
			r.effective = fmt.Sprintf("an effective limit of %.1f/s (source %s)", e.GetRequestsPerSecond(), e.GetRateLimitSource())
		}
		// matching.numTaskqueueReadPartitions: the server's default, 4,
		// unless a dedicated server was given another.
		partitions := 4
		if v, ok := qt.dc["matching.numTaskqueueReadPartitions"]; ok {
			partitions, _ = strconv.Atoi(v)
		}
		if partitions > 1 {
			r.partitionRate = rateLimit / float64(partitions)
		}
	}
	return r
}

// dispatchOrder queues each batch on a fresh queue with no worker, one after
// the other (each fully scheduled before the next), then starts one worker
// that runs one job at a time; it returns the batch tag of each job in the
// order the jobs were dispatched.
func (qt queueTest) dispatchOrder(ctx context.Context, t *testing.T, batches ...DispatchInput) []string {
	t.Helper()
	tq := harness.TaskQueue(t)
	total := 0
	var runs []client.WorkflowRun
	for _, in := range batches {
		in.TaskQueue = tq
		run := qt.dispatch(ctx, t, in)
		if err := waitEvents(ctx, qt.c, run.GetID(), enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, in.Count, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, run)
		total += in.Count
	}
	// Let the whole backlog reach the queue before anything is dispatched.
	if _, err := qt.waitBacklog(ctx, tq, func(n int64) bool { return n >= int64(total) }); err != nil {
		t.Fatal(err)
	}
	p := qt.jobWorker(t, tq, "one", worker.Options{MaxConcurrentActivityExecutionSize: 1})
	for _, run := range runs {
		if err := run.Get(ctx, nil); err != nil {
			t.Fatalf("dispatch %s: %v", run.GetID(), err)
		}
	}
	var order []string
	for _, r := range p.Runs() {
		order = append(order, r.Tag[:strings.LastIndex(r.Tag, "-")])
	}
	return order
}

// queueStats is the activity backlog of tq as DescribeTaskQueue reports it.
func (qt queueTest) queueStats(ctx context.Context, tq string) (*taskqueuepb.TaskQueueStats, error) {
	resp, err := qt.c.WorkflowService().DescribeTaskQueue(ctx, &workflowservice.DescribeTaskQueueRequest{
		Namespace: qt.ns, TaskQueue: &taskqueuepb.TaskQueue{Name: tq}, TaskQueueType: enumspb.TASK_QUEUE_TYPE_ACTIVITY, ReportStats: true,
	})
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", tq, err)
	}
	return resp.GetStats(), nil
}

// waitBacklog waits until tq's reported backlog count satisfies cond and
// returns the last stats seen.
func (qt queueTest) waitBacklog(ctx context.Context, tq string, cond func(int64) bool) (*taskqueuepb.TaskQueueStats, error) {
	var last *taskqueuepb.TaskQueueStats
	err := harness.WaitFor(ctx, 30*time.Second, 100*time.Millisecond, "the backlog of "+tq, func(ctx context.Context) (bool, error) {
		s, err := qt.queueStats(ctx, tq)
		if err != nil {
			return false, err
		}
		last = s
		return cond(s.GetApproximateBacklogCount()), nil
	})
	if err != nil {
		return last, fmt.Errorf("%w (last backlog count %d)", err, last.GetApproximateBacklogCount())
	}
	return last, nil
}

// precedence is the fraction of (first, second) pairs in which the first
// tag's job was dispatched before the second's: 1 when every first job went
// ahead, 0 when all went after.
func precedence(order []string, first, second string) float64 {
	ahead, pairs, seenFirst := 0, 0, 0
	for _, tag := range order {
		switch tag {
		case first:
			seenFirst++
		case second:
			ahead += seenFirst
		}
	}
	nFirst, nSecond := count(order, first), count(order, second)
	pairs = nFirst * nSecond
	if pairs == 0 {
		return 0
	}
	return float64(ahead) / float64(pairs)
}

func count(tags []string, tag string) int {
	n := 0
	for _, t := range tags {
		if t == tag {
			n++
		}
	}
	return n
}

// orderingServers are where priority and fairness are measured: the
// package's server, and dedicated servers with fairness on and one or four
// partitions per task queue (nil against an external server).
type orderingServers struct {
	base      queueTest
	one, four *queueTest
}

// priorityOrder queues n jobs of priority key 5, then n of key 1, and
// returns how often a high-priority job went ahead of a low-priority one.
func (qt queueTest) priorityOrder(ctx context.Context, t *testing.T, n int) (float64, string) {
	t.Helper()
	order := qt.dispatchOrder(ctx, t,
		DispatchInput{Tag: "low", Count: n, Priority: temporal.Priority{PriorityKey: 5}},
		DispatchInput{Tag: "high", Count: n, Priority: temporal.Priority{PriorityKey: 1}})
	prec := precedence(order, "high", "low")
	return prec, fmt.Sprintf("on %s, high before low in %.0f%% of (high, low) pairs, order %s", qt.where, 100*prec, compact(order))
}

func (o orderingServers) testPriority(t *testing.T) {
	check := harness.Get(t).Check(t, "WF-06.priority")
	ctx := harness.Context(t, 2*time.Minute)
	const n = 40
	// The catalog's bounds: the default configuration must clearly honour
	// priority (first-in-first-out gives 0%, random order 50%: 65% is
	// nearer all than random); one partition orders tasks exactly, less an
	// allowance of 5% for tasks dispatched while the backlog was loaded.
	pr := priorityRun{baseMin: 0.65, oneMin: 0.95}
	var baseD string
	pr.base, baseD = o.base.priorityOrder(ctx, t, n)
	details := []string{baseD + " (bound 65%)"}
	metrics := map[string]float64{"high_before_low_default": pr.base}
	if o.one != nil {
		var oneD string
		pr.one, oneD = o.one.priorityOrder(ctx, t, n)
		pr.oneMeasured = true
		details = append(details, oneD+" (bound 95%), "+o.one.judgedOn(check))
		metrics["high_before_low_one_partition"] = pr.one
	}
	harness.Decide(check, priorityPredicate, pr, fmt.Sprintf("%d jobs of priority key 5 queued, then %d of priority key 1 behind them, one worker slot: %s",
		n, n, strings.Join(details, "; ")), metrics)
}

// compact writes a dispatch order as runs, e.g. "high×18 low×1 high×2 ...".
func compact(order []string) string {
	var parts []string
	for i := 0; i < len(order); {
		j := i
		for j < len(order) && order[j] == order[i] {
			j++
		}
		parts = append(parts, fmt.Sprintf("%s×%d", order[i], j-i))
		i = j
	}
	return strings.Join(parts, " ")
}

func (qt queueTest) testQueuePriority(t *testing.T) {
	check := harness.Get(t).Check(t, "WF-06.queue-priority")
	ctx := harness.Context(t, time.Minute)
	const lows, highs, d = 20, 5, 100 * time.Millisecond
	lowTQ, highTQ := harness.TaskQueue(t), harness.TaskQueue(t)
	one := worker.Options{MaxConcurrentActivityExecutionSize: 1}
	lowP, highP := qt.jobWorker(t, lowTQ, "low", one), qt.jobWorker(t, highTQ, "high", one)
	low := qt.dispatch(ctx, t, DispatchInput{TaskQueue: lowTQ, Tag: "low", Count: lows, Duration: d})
	if err := waitEvents(ctx, qt.c, low.GetID(), enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, lows, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	herr := qt.dispatch(ctx, t, DispatchInput{TaskQueue: highTQ, Tag: "high", Count: highs, Duration: d}).Get(ctx, nil)
	highDone := time.Now()
	lerr := low.Get(ctx, nil)
	var waits []time.Duration
	for _, r := range highP.Runs() {
		waits = append(waits, r.Start.Sub(sent).Round(time.Millisecond))
	}
	lowsLeft := 0
	for _, r := range lowP.Runs() {
		if r.Start.After(highDone) {
			lowsLeft++
		}
	}
	o := queuePriority{highErr: herr, lowErr: lerr, highs: highs, started: len(waits), lowsLeft: lowsLeft}
	harness.Decide(check, queuePriorityPredicate, o, fmt.Sprintf("%d jobs of %s queued on a low-priority queue, then %d on a high-priority queue, each queue served by its own one-slot worker: the high-priority jobs started %v after they were sent and all finished %s after, while %d low-priority jobs were still waiting (errors: %v, %v)",
		lows, d, highs, waits, ms(highDone.Sub(sent)), lowsLeft, herr, lerr),
		map[string]float64{"high_done_ms": float64(highDone.Sub(sent).Milliseconds()), "low_backlog_left": float64(lowsLeft)})
}

func (qt queueTest) testBacklog(t *testing.T) {
	check := harness.Get(t).Check(t, "WF-06.backlog-visible")
	ctx := harness.Context(t, time.Minute)
	const n = 20
	tq := harness.TaskQueue(t)
	run := qt.dispatch(ctx, t, DispatchInput{TaskQueue: tq, Tag: "b", Count: n})
	sent := time.Now()
	queued, qerr := qt.waitBacklog(ctx, tq, func(c int64) bool { return c == n })
	shown := time.Since(sent)
	qt.jobWorker(t, tq, "w", worker.Options{})
	err := run.Get(ctx, nil)
	drainedAt := time.Now()
	drained, derr := qt.waitBacklog(ctx, tq, func(c int64) bool { return c == 0 })
	age := queued.GetApproximateBacklogAge().AsDuration()
	o := backlogRun{queuedErr: qerr, err: err, drainedErr: derr, n: n, count: queued.GetApproximateBacklogCount(), age: age, sinceSent: shown}
	harness.Decide(check, backlogPredicate, o, fmt.Sprintf("%d jobs queued with no worker: DescribeTaskQueue reported a backlog of %d, oldest %s (bound: no older than the %s since they were sent), %s after they were queued (error: %v); after a worker drained it the backlog read %d %s later (error: %v)",
		n, queued.GetApproximateBacklogCount(), ms(age), ms(shown), ms(shown), qerr, drained.GetApproximateBacklogCount(), ms(time.Since(drainedAt)), derr),
		map[string]float64{"backlog_count": float64(queued.GetApproximateBacklogCount()), "backlog_age_ms": float64(age.Milliseconds()), "visible_after_ms": float64(shown.Milliseconds())})
}

// fairnessShare queues a 10× backlog for tenant a, then tenant b's jobs, and
// returns b's share of the first 2×nb dispatches and a description.
func (qt queueTest) fairnessShare(ctx context.Context, t *testing.T, nb int) (float64, string) {
	t.Helper()
	order := qt.dispatchOrder(ctx, t,
		DispatchInput{Tag: "a", Count: 10 * nb, Priority: temporal.Priority{FairnessKey: "tenant-a"}},
		DispatchInput{Tag: "b", Count: nb, Priority: temporal.Priority{FairnessKey: "tenant-b"}})
	share := float64(count(order[:2*nb], "b")) / float64(2*nb)
	return share, fmt.Sprintf("on %s, b got %.0f%% of the first %d dispatches, order %s", qt.where, 100*share, 2*nb, compact(order))
}

// weightRatio queues n jobs of weight 3 (a), then n of weight 1 (b), and
// returns the a and b counts and their ratio in the first n dispatches, and
// a description.
func (qt queueTest) weightRatio(ctx context.Context, t *testing.T, n int) (int, int, float64, string) {
	t.Helper()
	order := qt.dispatchOrder(ctx, t,
		DispatchInput{Tag: "a", Count: n, Priority: temporal.Priority{FairnessKey: "weight-3", FairnessWeight: 3}},
		DispatchInput{Tag: "b", Count: n, Priority: temporal.Priority{FairnessKey: "weight-1", FairnessWeight: 1}})
	a, b := count(order[:n], "a"), count(order[:n], "b")
	ratio := float64(a) / math.Max(float64(b), 1)
	if b == 0 {
		ratio = math.Inf(1)
	}
	return a, b, ratio, fmt.Sprintf("on %s, the first %d dispatches were %d a and %d b (ratio %.2f), order %s", qt.where, n, a, b, ratio, compact(order))
}

func (o orderingServers) testFairness(t *testing.T) {
	env := harness.Get(t)
	fair := env.Check(t, "WF-06.fairness")
	weights := env.Check(t, "WF-06.fairness-weights")
	ctx := harness.Context(t, 2*time.Minute)
	const nb, nw = 5, 40
	// Judged on one partition with fairness on where the harness can start
	// one, else on the package's server as it is; the others are reported.
	judged := &o.base
	observed := []*queueTest{}
	if o.one != nil {
		judged, observed = o.one, []*queueTest{o.four, &o.base}
	}
	share, shareD := judged.fairnessShare(ctx, t, nb)
	a, b, ratio, ratioD := judged.weightRatio(ctx, t, nw)
	shareDs, ratioDs := []string{shareD}, []string{ratioD}
	for _, q := range observed {
		_, d := q.fairnessShare(ctx, t, nb)
		shareDs = append(shareDs, "also "+d)
		_, _, _, d = q.weightRatio(ctx, t, nw)
		ratioDs = append(ratioDs, "also "+d)
	}
	// The catalog's bounds: b's share at least 40% (80% of an even share),
	// and the a:b ratio within 25% of the weights' 3.
	fairOn, weightsOn := judged.judgedOn(fair), judged.judgedOn(weights)
	harness.Decide(fair, fairnessPredicate, fairnessRun{share: share, min: 0.4, dispatches: 2 * nb},
		fmt.Sprintf("tenant a queued %d jobs (fairness key tenant-a), then tenant b %d (tenant-b), one worker slot; an even share is 50%%, first-in-first-out 0%%, bound 40%%; %s: %s",
			10*nb, nb, fairOn, strings.Join(shareDs, "; ")), map[string]float64{"b_share": share})
	harness.Decide(weights, weightsPredicate, weightsRun{a: a, b: b, weight: 3, tolerance: 0.25},
		fmt.Sprintf("%d jobs of fairness weight 3 (a) queued, then %d of weight 1 (b), one worker slot; the weights' ratio is 3 (tolerance 25%%); %s: %s",
			nw, nw, weightsOn, strings.Join(ratioDs, "; ")), map[string]float64{"dispatch_ratio": ratio, "weight_ratio": 3})
}
