package op

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/server/api/adminservice/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/harness/ledger"
	"github.com/durabench/durabench/harness/stats"
)

// TestOP04 measures scalability: worker processes sharing a queue (with the
// short-workflow throughput beside omes' figure), one worker process against
// two on a slot-bound workload, a saturated queue that a worker joins and
// another leaves, 1 history shard against 4, and 10,000 concurrently open
// workflows whose queued tasks give the backlog signal a scaler reads.
func TestOP04(t *testing.T) {
	t.Run("workers_share_queue", testOP04WorkersShareQueue)
	t.Run("throughput_scales", testOP04ThroughputScales)
	t.Run("saturation_join_leave", testOP04SaturationJoinLeave)
	t.Run("history_shards", testOP04HistoryShards)
	t.Run("concurrent_10k", testOP04Concurrent10K)
}

// Short-workflow throughput: omes' workflow_with_single_noop_activity,
// driven by shortStarters goroutines that each start a workflow, wait for its
// result and start the next. omesNoopRate is the figure the issue gives for
// omes on a default dev server on this kind of machine: a reference shown
// beside ours, not a bound.
const (
	shortStarters = 50
	shortRuns     = 200
	omesNoopRate  = 37.9
)

// scaleCancelPollsOnShutdown is the server setting under which a worker's
// graceful stop cancels its outstanding polls (see the join-leave test).
const scaleCancelPollsOnShutdown = "frontend.enableCancelWorkerPollsOnShutdown"

// scaleInMemory says where the dedicated servers keep their data.
const scaleInMemory = "SQLite in memory (the temporal CLI dev server's default)"

// scaleServerNote describes a dedicated server: its data and dynamic config.
func scaleServerNote(srv *harness.Server) string {
	return fmt.Sprintf("dedicated dev server, %s, %d history shard(s), dynamic config %v", scaleInMemory, srv.Info().HistoryShards, srv.Info().DynamicConfig)
}

// scaleShortRun is a batch of ScaleNoopWorkflows driven from the client.
type scaleShortRun struct {
	ids      []string
	elapsed  time.Duration // first start to last result
	lat      []float64     // ms, start call to result, per completed workflow
	pids     map[int]int   // activities per worker pid
	failed   int
	firstErr error
}

func (r scaleShortRun) completed() int { return len(r.lat) }
func (r scaleShortRun) rate() float64  { return float64(r.completed()) / r.elapsed.Seconds() }

// scaleRunShort runs n ScaleNoopWorkflows on tq, starters at a time.
func scaleRunShort(ctx context.Context, c client.Client, tq, prefix string, n, starters int) scaleShortRun {
	r := scaleShortRun{pids: map[int]int{}, ids: make([]string, n)}
	next := make(chan int, n)
	for i := range n {
		r.ids[i] = fmt.Sprintf("%s-%05d", prefix, i)
		next <- i
	}
	close(next)
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for range starters {
		wg.Go(func() {
			for i := range next {
				t0 := time.Now()
				run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: r.ids[i], TaskQueue: tq, WorkflowExecutionTimeout: 2 * time.Minute}, ScaleNoopWorkflow)
				var pid int
				if err == nil {
					err = run.Get(ctx, &pid)
				}
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					r.failed++
					if r.firstErr == nil {
						r.firstErr = err
					}
				} else {
					r.pids[pid]++
					r.lat = append(r.lat, scaleMS(d))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	return r
}

func scaleMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// scaleTarget is the server a subtest loads: a dedicated in-memory server
// when the harness can start one, else the environment's.
type scaleTarget struct {
	c    client.Client
	addr string
	ns   string
	note string          // where the server keeps its data, or why it is the environment's
	srv  *harness.Server // the dedicated server; nil on the environment's
}

// judgedOn records the dedicated server, if there is one, with each check.
func (s scaleTarget) judgedOn(checks ...*harness.Check) {
	for _, c := range checks {
		if s.srv != nil {
			c.OnServer(s.srv)
		}
	}
}

// scaleDedicated starts the dedicated server, with dynamic config dc on top
// of the harness's (nil for none).
func scaleDedicated(t *testing.T, dc map[string]string) scaleTarget {
	env := harness.Get(t)
	if ok, why := env.CanKillServer(); !ok {
		return scaleTarget{c: env.Dial(t), addr: env.Options.HostPort, ns: env.Options.Namespace, note: "the environment's server (" + why + ")"}
	}
	srv := env.StartServer(t, harness.ServerOptions{InMemory: true, DynamicConfig: dc})
	return scaleTarget{c: srv.Dial(t), addr: srv.Address(), ns: "default", note: scaleServerNote(srv), srv: srv}
}

func (s scaleTarget) role(tq string, args map[string]string) harness.RoleConfig {
	return harness.RoleConfig{Address: s.addr, Namespace: s.ns, TaskQueue: tq, Args: args}
}

func testOP04WorkersShareQueue(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "OP-04.workers-share-queue")
	ctx := harness.Context(t, 3*time.Minute)
	target := scaleDedicated(t, nil)
	target.judgedOn(check)
	tq := harness.TaskQueue(t)
	w1 := env.StartWorker(t, scaleRole, target.role(tq, nil))
	w2 := env.StartWorker(t, scaleRole, target.role(tq, nil))
	r := scaleRunShort(ctx, target.c, tq, harness.UniqueID(t, "noop"), shortRuns, shortStarters)
	o := shareQueue{workers: []int{w1.PID(), w2.PID()}, byPID: r.pids, want: len(r.ids), completed: r.completed(), err: r.firstErr}
	s := stats.Summarize(r.lat)
	m := s.Metrics("noop_workflow_ms")
	m["noop_workflows_per_s"] = r.rate()
	m["omes_reference_workflows_per_s"] = omesNoopRate
	harness.Decide(check, shareQueuePredicate, o, fmt.Sprintf(
		"%s; 2 worker processes (pids %d, %d; SDK default options) polling task queue %s: %d of %d ScaleNoopWorkflows completed (one no-op activity each), activities by pid %v, %d failed (first error: %v). "+
			"Short-workflow throughput, %d concurrent starters each starting a workflow and waiting for its result, cold start included: %.1f workflows/s (%d in %.2f s), start-to-result %s; "+
			"reference, not a bound: omes' workflow_with_single_noop_activity measured %.1f workflows/s on a default dev server on this kind of machine (issue 12)",
		target.note, w1.PID(), w2.PID(), tq, o.completed, o.want, r.pids, r.failed, r.firstErr,
		shortStarters, r.rate(), o.completed, r.elapsed.Seconds(), scaleDescribe(s), omesNoopRate), m)
}

func scaleDescribe(s stats.Summary) string {
	return fmt.Sprintf("p50 %.1f ms [%.1f, %.1f], p95 %.1f ms, max %.1f ms (n=%d)", s.P50, s.P50Lo, s.P50Hi, s.P95, s.Max, s.N)
}

// The slot-bound workload: each round runs one ScaleBatchWorkflow of
// speedupBatch activities of speedupLatency on one worker process, and one
// on two, each worker with scaleSlots activity slots. Slot-bound, one worker
// needs speedupBatch/scaleSlots waves of speedupLatency and two need half as
// many; the rest (starting the workflow, its tasks) is the same for both and
// is what keeps the ratio below 2.
const (
	speedupRounds  = 8
	speedupBatch   = 16
	speedupLatency = 250 * time.Millisecond
)

// scaleBatchRun is one timed ScaleBatchWorkflow.
type scaleBatchRun struct {
	took time.Duration
	pids []int
	err  error
}

func scaleRunBatch(ctx context.Context, t *testing.T, c client.Client, tq string, n int) scaleBatchRun {
	t0 := time.Now()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: harness.UniqueID(t, "batch"), TaskQueue: tq, WorkflowExecutionTimeout: 2 * time.Minute},
		ScaleBatchWorkflow, n, speedupLatency)
	var pids []int
	if err == nil {
		err = run.Get(ctx, &pids)
	}
	return scaleBatchRun{took: time.Since(t0), pids: pids, err: err}
}

func testOP04ThroughputScales(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "OP-04.throughput-scales")
	ctx := harness.Context(t, 3*time.Minute)
	c := env.Dial(t)
	tqOne, tqTwo := harness.UniqueID(t, "tq-one"), harness.UniqueID(t, "tq-two")
	cfg := func(tq string) harness.RoleConfig {
		return harness.RoleConfig{Address: env.Options.HostPort, Namespace: env.Options.Namespace, TaskQueue: tq}
	}
	solo := env.StartWorker(t, scaleSlotsRole, cfg(tqOne))
	pair := []*harness.Worker{env.StartWorker(t, scaleSlotsRole, cfg(tqTwo)), env.StartWorker(t, scaleSlotsRole, cfg(tqTwo))}
	// One untimed wave on each queue opens the connections.
	for _, tq := range []string{tqOne, tqTwo} {
		if r := scaleRunBatch(ctx, t, c, tq, 2*scaleSlots); r.err != nil {
			t.Fatalf("warm-up batch on %s: %v", tq, r.err)
		}
	}
	var one, two, ratios []float64
	o := speedup{oneBusy: true, twoBusy: true}
	var firstErr error
	for i := range speedupRounds {
		// Alternate which goes first, so that a drift of the host weighs on both.
		order := []string{tqOne, tqTwo}
		if i%2 == 1 {
			order = []string{tqTwo, tqOne}
		}
		took := map[string]time.Duration{}
		for _, tq := range order {
			r := scaleRunBatch(ctx, t, c, tq, speedupBatch)
			if r.err != nil {
				o.failures++
				firstErr = scaleFirstErr(firstErr, r.err)
				continue
			}
			took[tq] = r.took
			ran := map[int]int{}
			for _, p := range r.pids {
				ran[p]++
			}
			if tq == tqOne && (len(ran) != 1 || ran[solo.PID()] != speedupBatch) {
				o.oneBusy = false
			}
			if tq == tqTwo && (len(ran) != 2 || ran[pair[0].PID()] == 0 || ran[pair[1].PID()] == 0) {
				o.twoBusy = false
			}
		}
		if took[tqOne] > 0 && took[tqTwo] > 0 {
			one, two = append(one, scaleMS(took[tqOne])), append(two, scaleMS(took[tqTwo]))
			ratios = append(ratios, float64(took[tqOne])/float64(took[tqTwo]))
		}
	}
	rs, s1, s2 := stats.Summarize(ratios), stats.Summarize(one), stats.Summarize(two)
	o.rounds, o.p50, o.lo, o.hi = len(ratios), rs.P50, rs.P50Lo, rs.P50Hi
	ideal1 := time.Duration(speedupBatch/scaleSlots) * speedupLatency
	m := scaleMerge(rs.Metrics("speedup_ratio"), s1.Metrics("one_worker_batch_ms"), s2.Metrics("two_workers_batch_ms"))
	harness.Decide(check, speedupPredicate, o, fmt.Sprintf(
		"%d rounds on the shared server, each a batch of %d activities of fixed latency %s on 1 worker process (%d activity slots; slot-bound floor %s) and on 2 (floor %s), alternating which goes first: "+
			"1 worker %s; 2 workers %s; per-round ratio 1/2 %s; median %.2f×, bootstrap 95%% interval [%.2f, %.2f], judged on its lower bound against %.1f× (catalog): margin %+.2f. "+
			"Single worker ran all its activities: %t; both of the pair ran activities in every round: %t; %d batches failed (first error: %v)",
		o.rounds, speedupBatch, speedupLatency, scaleSlots, ideal1, ideal1/2, scaleDescribe(s1), scaleDescribe(s2), scaleRatios(ratios),
		rs.P50, rs.P50Lo, rs.P50Hi, scaleMinSpeedup, rs.P50Lo-scaleMinSpeedup, o.oneBusy, o.twoBusy, o.failures, firstErr), m)
}

func scaleRatios(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(x, 'f', 2, 64)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func scaleFirstErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

func scaleMerge(ms ...map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}

// The saturated run: jobJobs ScaleJobWorkflows, each one activity of
// jobLatency, are started at once on a queue served by one worker process
// with scaleSlots slots. Once the server reports a backlog of at least
// jobBacklogShown tasks and that worker has finished jobLeaverFirst jobs, a
// second joins; once the second has begun jobJoinerFirst, the first is told
// to stop (SIGTERM) and finishes what it holds; the second finishes the
// rest. The server refreshes the reported backlog at most every 5 s, so
// there are enough jobs to keep one worker saturated past a refresh.
const (
	jobJobs         = 80
	jobLatency      = 250 * time.Millisecond
	jobBacklogShown = 10
	jobLeaverFirst  = 4
	jobJoinerFirst  = 2
	jobStarters     = 20
)

// scaleSampler reads a task queue's ApproximateBacklogCount until stopped.
type scaleSampler struct {
	mu      sync.Mutex
	samples []int64
	peak    int64
	err     error
	stop    chan struct{}
	done    chan struct{}
}

func scaleSampleBacklog(ctx context.Context, c client.Client, ns, tq string, typ enumspb.TaskQueueType, every time.Duration) *scaleSampler {
	b := &scaleSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			n, err := scaleBacklog(ctx, c, ns, tq, typ)
			b.mu.Lock()
			if err != nil {
				b.err = scaleFirstErr(b.err, err)
			} else {
				b.samples = append(b.samples, n)
				b.peak = max(b.peak, n)
			}
			b.mu.Unlock()
			select {
			case <-b.stop:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return b
}

func (b *scaleSampler) Peak() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peak
}

func (b *scaleSampler) Stop() []int64 {
	close(b.stop)
	<-b.done
	return b.samples
}

// scaleBacklog is the server's ApproximateBacklogCount for one task queue type.
func scaleBacklog(ctx context.Context, c client.Client, ns, tq string, typ enumspb.TaskQueueType) (int64, error) {
	resp, err := c.WorkflowService().DescribeTaskQueue(ctx, &workflowservice.DescribeTaskQueueRequest{
		Namespace: ns, TaskQueue: &taskqueuepb.TaskQueue{Name: tq, Kind: enumspb.TASK_QUEUE_KIND_NORMAL}, TaskQueueType: typ, ReportStats: true,
	})
	if err != nil {
		return 0, err
	}
	return resp.GetStats().GetApproximateBacklogCount(), nil
}

// scaleFailedEvents counts the events of failed or timed-out tasks.
var scaleFailedEvents = []enumspb.EventType{
	enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED, enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
	enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED, enumspb.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
}

func testOP04SaturationJoinLeave(t *testing.T) {
	env := harness.Get(t)
	bpCheck := env.Check(t, "OP-04.backpressure")
	jlCheck := env.Check(t, "OP-04.worker-join-leave")
	ctx := harness.Context(t, 3*time.Minute)
	// A worker that stops gracefully can still be handed a task by a poll
	// in flight, and that task then waits out its start-to-close timeout:
	// the server's frontend.enableCancelWorkerPollsOnShutdown (false by
	// default) cancels the worker's polls before its shutdown and tells the
	// SDK to finish what its polls return, which is what a deployment that
	// stops workers mid-run should set. With the default, one clean-clone
	// make test saw a WorkflowTaskTimedOut (StartToClose) in 1 of 80 runs
	// as the worker left; the server names the setting and its effect in
	// its dynamic config, recorded in the detail.
	target := scaleDedicated(t, map[string]string{scaleCancelPollsOnShutdown: "true"})
	target.judgedOn(bpCheck, jlCheck)
	c, ns, tq := target.c, target.ns, harness.TaskQueue(t)
	led := filepath.Join(env.Scratch(t), "ledger.jsonl")
	cfg := target.role(tq, map[string]string{scaleArgLedger: led})
	entries := func() []ledger.Entry {
		e, err := ledger.Read(led)
		if err != nil {
			t.Fatalf("ledger: %v", err)
		}
		return e
	}
	count := func(pid int, phase string) int {
		n := 0
		for _, e := range entries() {
			if e.PID == pid && e.Phase == phase {
				n++
			}
		}
		return n
	}

	leaver := env.StartWorker(t, scaleSlotsRole, cfg)
	ids := make([]string, jobJobs)
	runs := make([]client.WorkflowRun, jobJobs)
	var wg sync.WaitGroup
	var startErr error
	var mu sync.Mutex
	next := make(chan int, jobJobs)
	prefix := harness.UniqueID(t, "job")
	for i := range jobJobs {
		ids[i] = fmt.Sprintf("%s-%03d", prefix, i)
		next <- i
	}
	close(next)
	jobsAt := time.Now()
	for range jobStarters {
		wg.Go(func() {
			for i := range next {
				run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: ids[i], TaskQueue: tq, WorkflowExecutionTimeout: 2 * time.Minute}, ScaleJobWorkflow, jobLatency)
				mu.Lock()
				runs[i], startErr = run, scaleFirstErr(startErr, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if startErr != nil {
		t.Fatalf("starting jobs: %v", startErr)
	}
	// Sampled from now on: the server caches a queue's stats for 5 s, so a
	// reading taken before the jobs were queued would hide them that long.
	sampler := scaleSampleBacklog(ctx, c, ns, tq, enumspb.TASK_QUEUE_TYPE_ACTIVITY, 250*time.Millisecond)
	var waitErrs []error
	wait := func(what string, cond func() bool) {
		if err := harness.WaitFor(ctx, 30*time.Second, 50*time.Millisecond, what, func(context.Context) (bool, error) { return cond(), nil }); err != nil {
			waitErrs = append(waitErrs, err)
		}
	}
	wait("a backlog reported and the first worker's first jobs done", func() bool {
		return sampler.Peak() >= jobBacklogShown && count(leaver.PID(), ledger.Done) >= jobLeaverFirst
	})
	joinAt := time.Now()
	joiner := env.StartWorker(t, scaleSlotsRole, cfg)
	wait("the joining worker's first jobs", func() bool { return count(joiner.PID(), ledger.Start) >= jobJoinerFirst })
	stopAt := time.Now()
	var exitAt time.Time
	if err := leaver.Stop(scaleStopGrace + 10*time.Second); err != nil {
		waitErrs = append(waitErrs, fmt.Errorf("the stopped worker: %w", err))
	} else {
		exitAt = time.Now()
	}

	results := make([]ScaleJobResult, jobJobs)
	jl := joinLeave{jobs: jobJobs, leaverExited: !exitAt.IsZero(), execs: map[string]int{}}
	for i, run := range runs {
		if err := run.Get(ctx, &results[i]); err != nil {
			jl.err = scaleFirstErr(jl.err, fmt.Errorf("%s: %w", ids[i], err))
			continue
		}
		jl.completed++
		jl.maxAttempt = max(jl.maxAttempt, results[i].Attempt)
	}
	backlog := sampler.Stop()
	failedEvents := map[enumspb.EventType]int{}
	for _, id := range ids {
		events, err := harness.History(ctx, c, id, "")
		if err != nil {
			t.Fatal(err)
		}
		counts := harness.EventCounts(events)
		// A workflow task that waited on the stopped worker's sticky queue
		// times out schedule-to-start and goes back to the normal queue:
		// that is how the server releases a leaving worker's work, not a
		// failed task; it is counted apart.
		for _, ev := range harness.EventsOf(events, enumspb.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT) {
			if ev.GetWorkflowTaskTimedOutEventAttributes().GetTimeoutType() == enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START {
				jl.stickyReleases++
				counts[enumspb.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT]--
			}
		}
		for _, typ := range scaleFailedEvents {
			failedEvents[typ] += counts[typ]
			jl.failedTasks += counts[typ]
		}
	}
	all := entries()
	finished := map[string]bool{}
	for _, e := range all {
		if e.Phase == ledger.Done {
			finished[e.Key] = true
		}
	}
	afterStop, execs := 0, 0
	for _, e := range all {
		if e.Phase != ledger.Start {
			continue
		}
		execs++
		jl.execs[e.Key]++
		switch e.PID {
		case leaver.PID():
			jl.leaverJobs++
			if !finished[e.Key] {
				jl.leaverUnfinished++
			}
			if e.At.After(stopAt) {
				afterStop++
			}
		case joiner.PID():
			jl.joinerJobs++
		}
		if !exitAt.IsZero() && e.At.After(exitAt) {
			jl.afterLeave++
		}
	}
	var s2s []float64
	for _, r := range results {
		if r.PID != 0 {
			s2s = append(s2s, scaleMS(r.ScheduleToStart))
		}
	}
	ss := stats.Summarize(s2s)
	bp := backpressure{latency: jobLatency, backlogPeak: slices.Max(append(backlog, 0)), s2sFirst: scaleDur(ss.Min), s2sMax: scaleDur(ss.Max),
		jobs: jobJobs, completed: jl.completed, lost: jobJobs - min(jl.completed, len(jl.execs))}
	ledgerNote := fmt.Sprintf("ledger: %d executions of %d jobs (%d ran more than once)", execs, len(jl.execs), scaleCountOver(jl.execs, 1))
	harness.Decide(bpCheck, backpressurePredicate, bp, fmt.Sprintf(
		"%s; %d ScaleJobWorkflows started at once (one activity of fixed latency %s each, no retries), served first by one worker process with %d activity slots: "+
			"ApproximateBacklogCount of the activity queue (new, so 0 before), sampled every 250 ms once the jobs were queued (the server refreshes it at most every 5 s): peak %d (samples %v); schedule-to-start (the server's scheduled and started times) %s, "+
			"from %.0f ms (a free slot) to %.0f ms (a task queued behind busy slots; at least one job latency, %s, counts as a rise). "+
			"Capacity returned %.1f s after the start (a second worker joined): %d of %d runs completed, %d lost; %s; waits: %v",
		target.note, jobJobs, jobLatency, scaleSlots, bp.backlogPeak, backlog, scaleDescribe(ss), ss.Min, ss.Max, jobLatency,
		joinAt.Sub(jobsAt).Seconds(), bp.completed, bp.jobs, bp.lost, ledgerNote, waitErrs),
		scaleMerge(ss.Metrics("schedule_to_start_ms"), map[string]float64{"backlog_peak": float64(bp.backlogPeak)}))
	harness.Decide(jlCheck, joinLeavePredicate, jl, fmt.Sprintf(
		"%s; %d jobs of %s on one queue: worker %d (%d slots) alone, worker %d joined once the server reported a backlog of %d or more and %d jobs were done, and ran %d jobs; worker %d got SIGTERM %.2f s after the join "+
			"(it finishes held activities, grace %s) and exited %.2f s later: it ran %d jobs, %d begun before and %d after the signal, %d unfinished; %d jobs began after it exited. "+
			"%d of %d runs completed, highest attempt %d, failed or timed-out task events in history %v (total %d), sticky workflow tasks released by a schedule-to-start timeout %d; %s; first failed run: %v; waits: %v",
		target.note, jobJobs, jobLatency, leaver.PID(), scaleSlots, joiner.PID(), jobBacklogShown, jobLeaverFirst, jl.joinerJobs, leaver.PID(), stopAt.Sub(joinAt).Seconds(), scaleStopGrace,
		exitAt.Sub(stopAt).Seconds(), jl.leaverJobs, jl.leaverJobs-afterStop, afterStop, jl.leaverUnfinished, jl.afterLeave,
		jl.completed, jl.jobs, jl.maxAttempt, failedEvents, jl.failedTasks, jl.stickyReleases, ledgerNote, jl.err, waitErrs),
		map[string]float64{"joiner_jobs": float64(jl.joinerJobs), "leaver_jobs": float64(jl.leaverJobs), "after_leave_jobs": float64(jl.afterLeave)})
}

func scaleDur(x float64) time.Duration { return time.Duration(x * float64(time.Millisecond)) }

func scaleCountOver(m map[string]int, n int) int {
	c := 0
	for _, v := range m {
		if v > n {
			c++
		}
	}
	return c
}

// shardRuns is the workload each shard server runs: short workflows, as in
// the throughput figure, enough that every one of 4 shards gets some.
const shardRuns = 100

func testOP04HistoryShards(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "OP-04.history-shards")
	if ok, why := env.CanKillServer(); !ok {
		check.NotMeasured("needs dedicated servers with 1 and 4 history shards: " + why)
		return
	}
	ctx := harness.Context(t, 3*time.Minute)
	var o shardSpread
	var notes []string
	var config map[string]string
	m := map[string]float64{}
	for _, shards := range []int{1, 4} {
		srv := env.StartServer(t, harness.ServerOptions{InMemory: true, HistoryShards: shards})
		target := scaleTarget{c: srv.Dial(t), addr: srv.Address(), ns: "default"}
		tq := harness.TaskQueue(t)
		w := env.StartWorker(t, scaleRole, target.role(tq, nil))
		r := scaleRunShort(ctx, target.c, tq, harness.UniqueID(t, fmt.Sprintf("shard%d", shards)), shardRuns, shortStarters)
		byShard, err := scaleShardsOf(ctx, t, srv.Address(), r.ids)
		if err != nil {
			t.Fatalf("describing mutable state: %v", err)
		}
		config = srv.Info().DynamicConfig
		run := shardRun{shards: srv.Info().HistoryShards, byShard: byShard, want: len(r.ids), completed: r.completed(), rate: r.rate()}
		if shards == 1 {
			o.one = run
		} else {
			o.four = run
		}
		s := stats.Summarize(r.lat)
		maps.Copy(m, s.Metrics(fmt.Sprintf("shards%d_noop_workflow_ms", shards)))
		m[fmt.Sprintf("shards%d_workflows_per_s", shards)] = r.rate()
		notes = append(notes, fmt.Sprintf("%d shard(s) (server announced %d; worker pid %d): %d of %d completed (first error: %v), %.1f workflows/s, start-to-result %s; workflows per shard id %v",
			shards, run.shards, w.PID(), run.completed, run.want, r.firstErr, r.rate(), scaleDescribe(s), byShard))
	}
	harness.Decide(check, shardsPredicate, o, fmt.Sprintf(
		"two dedicated dev servers (%s, dynamic config %v) started one after the other, each running the same %d ScaleNoopWorkflows (%d concurrent starters, one worker process); "+
			"the shard of each workflow is the server's own answer (admin API DescribeMutableState, field shard_id). %s. Throughput 4 shards / 1 shard: %.2f× (2 cores; the shards share one SQLite database)",
		scaleInMemory, config, shardRuns, shortStarters, strings.Join(notes, "; "), o.four.rate/o.one.rate), m)
}

// scaleShardsOf asks the server which history shard holds each workflow.
func scaleShardsOf(ctx context.Context, t *testing.T, addr string, ids []string) (map[int32]int, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = conn.Close() })
	admin := adminservice.NewAdminServiceClient(conn)
	out := map[int32]int{}
	for _, id := range ids {
		resp, err := admin.DescribeMutableState(ctx, &adminservice.DescribeMutableStateRequest{
			Namespace: "default", Execution: &commonpb.WorkflowExecution{WorkflowId: id}, SkipForceReload: true,
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		n, err := strconv.ParseInt(resp.GetShardId(), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%s: shard id %q: %w", id, resp.GetShardId(), err)
		}
		out[int32(n)]++
	}
	return out, nil
}

// The scaleConcurrent workflows of OP-04.concurrent-10k are started by
// tenKStarters on a queue no worker polls, so each stays open with its first
// workflow task queued: a backlog of exactly scaleConcurrent tasks, which
// OP-04.backlog-signal compares with the count the server reports. A worker
// then drains the queue and each completes.
const (
	tenKStarters = 50
	tenKPollers  = 16
)

// scaleProcStatus reads VmRSS and VmHWM (KiB) of process pid.
func scaleProcStatus(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			rss, _ = strconv.ParseInt(f[1], 10, 64)
		case "VmHWM:":
			hwm, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	if rss == 0 {
		return 0, 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return rss, hwm, nil
}

func scaleCount(ctx context.Context, c client.Client, ns, query string) (int64, error) {
	resp, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: ns, Query: query})
	return resp.GetCount(), err
}

// scaleSettle reads the backlog until it is within tolerance of want (0: equal to
// it) or the deadline passes; it returns the last reading, whether it got
// there, and how long that took.
func scaleSettle(ctx context.Context, c client.Client, ns, tq string, want int64) (backlogLevel, time.Duration, error) {
	t0 := time.Now()
	l := backlogLevel{real: want}
	var readErr error
	err := harness.WaitFor(ctx, 30*time.Second, 250*time.Millisecond, fmt.Sprintf("the reported backlog to reach %d", want), func(ctx context.Context) (bool, error) {
		n, err := scaleBacklog(ctx, c, ns, tq, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
		if err != nil {
			readErr = err
			return false, nil
		}
		l.reported = n
		return float64(scaleAbs(n-want)) <= scaleBacklogTolerance*float64(want), nil
	})
	l.settled = err == nil
	return l, time.Since(t0), errors.Join(err, readErr)
}

func testOP04Concurrent10K(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "OP-04.concurrent-10k")
	backlogCheck := env.Check(t, "OP-04.backlog-signal")
	if ok, why := env.CanKillServer(); !ok {
		reason := "measured on a dedicated server, whose memory the test reads and which no one else shares: " + why
		check.NotMeasured(reason)
		backlogCheck.NotMeasured(reason)
		return
	}
	ctx := harness.Context(t, 15*time.Minute)
	srv := env.StartServer(t, harness.ServerOptions{InMemory: true})
	c := srv.Dial(t)
	pid, tq := srv.PID(), harness.TaskQueue(t)
	rss0, _, err := scaleProcStatus(pid)
	if err != nil {
		t.Fatal(err)
	}

	o := tenK{want: scaleConcurrent}
	prefix := harness.UniqueID(t, "open")
	next := make(chan int, scaleConcurrent)
	for i := range scaleConcurrent {
		next <- i
	}
	close(next)
	var mu sync.Mutex
	var wg sync.WaitGroup
	lat := make([]float64, 0, scaleConcurrent)
	t0 := time.Now()
	for range tenKStarters {
		wg.Go(func() {
			for i := range next {
				s := time.Now()
				_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("%s-%05d", prefix, i), TaskQueue: tq}, ScaleOpenWorkflow)
				d := time.Since(s)
				mu.Lock()
				if err != nil {
					o.err = scaleFirstErr(o.err, err)
				} else {
					o.started++
					lat = append(lat, scaleMS(d))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	startTook := time.Since(t0)
	ls := stats.Summarize(lat)
	o.startP95 = scaleDur(ls.P95)

	running := fmt.Sprintf("TaskQueue = '%s' AND ExecutionStatus = 'Running'", tq)
	completed := fmt.Sprintf("TaskQueue = '%s' AND ExecutionStatus = 'Completed'", tq)
	var waitErrs []error
	countTo := func(query string, want int64, timeout time.Duration, got *int64) time.Duration {
		t0 := time.Now()
		if err := harness.WaitFor(ctx, timeout, 500*time.Millisecond, fmt.Sprintf("%d workflows matching %s", want, query), func(ctx context.Context) (bool, error) {
			n, err := scaleCount(ctx, c, "default", query)
			if err != nil {
				return false, err
			}
			*got = n
			return n >= want, nil
		}); err != nil {
			waitErrs = append(waitErrs, err)
		}
		return time.Since(t0)
	}
	visLag := countTo(running, int64(o.started), 2*time.Minute, &o.running)
	rssOpen, _, err := scaleProcStatus(pid)
	if err != nil {
		t.Fatal(err)
	}
	var bs backlogSignal
	level, riseLag, riseErr := scaleSettle(ctx, c, "default", tq, o.running)
	bs.levels = append(bs.levels, level)

	// Many pollers, so that the drain is bound by the server, not by the
	// round trips of the SDK's default two.
	w := worker.New(c, tq, worker.Options{MaxConcurrentWorkflowTaskPollers: tenKPollers})
	registerScale(w, "")
	if err := w.Start(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	t.Cleanup(w.Stop)
	drainTook := countTo(completed, int64(o.started), 8*time.Minute, &o.completed)
	var fallLag time.Duration
	var fallErr error
	bs.drained, fallLag, fallErr = scaleSettle(ctx, c, "default", tq, 0)
	rssEnd, hwm, err := scaleProcStatus(pid)
	if err != nil {
		t.Fatal(err)
	}
	o.rssPeakKiB = hwm
	mib := func(kib int64) float64 { return float64(kib) / 1024 }
	harness.Decide(check, tenKPredicate, o, fmt.Sprintf(
		"%s (pid %d); %d ScaleOpenWorkflows started by %d concurrent starters on a queue no worker polled: %d started in %.1f s (%.0f/s; first error: %v), start latency %s, p99 %.1f ms; "+
			"a count query (%s) saw %d Running at once, %.1f s after the last start; then one in-process worker (%d workflow task pollers) ran each workflow's one task: count of Completed %d after %.1f s (%.0f/s). "+
			"Server memory VmRSS %.0f MiB before, %.0f MiB with all open, %.0f MiB at the end, peak VmHWM %.0f MiB (the in-memory database lives in the server process); waits: %v",
		scaleServerNote(srv), pid, scaleConcurrent, tenKStarters, o.started, startTook.Seconds(), float64(o.started)/startTook.Seconds(), o.err, scaleDescribe(ls), ls.P99,
		running, o.running, visLag.Seconds(), tenKPollers, o.completed, drainTook.Seconds(), float64(o.completed)/drainTook.Seconds(), mib(rss0), mib(rssOpen), mib(rssEnd), mib(hwm), waitErrs),
		scaleMerge(ls.Metrics("start_ms"), map[string]float64{
			"start_per_s": float64(o.started) / startTook.Seconds(), "drain_s": drainTook.Seconds(),
			"server_rss_before_mib": mib(rss0), "server_rss_open_mib": mib(rssOpen), "server_rss_end_mib": mib(rssEnd), "server_hwm_mib": mib(hwm),
		}))
	harness.Decide(backlogCheck, backlogSignalPredicate, bs, fmt.Sprintf(
		"%s; real backlog: %d workflows Running by a count query on a queue no worker had polled, each with its first workflow task queued. "+
			"DescribeTaskQueue (workflow type, ReportStats) ApproximateBacklogCount read every 250 ms (the server caches partition stats %s): %d, within %.0f%% of %d (catalog bound): %t, after %.1f s (error: %v). "+
			"After a worker drained the queue (all Completed by count): %d, reached %t, %.1f s after the last completion was counted (error: %v)",
		scaleServerNote(srv), level.real, "for matching.TaskQueueInfoByBuildIdTTL, 5 s by default", level.reported, scaleBacklogTolerance*100, level.real, level.settled, riseLag.Seconds(), riseErr,
		bs.drained.reported, bs.drained.settled, fallLag.Seconds(), fallErr),
		map[string]float64{"backlog_real": float64(level.real), "backlog_reported": float64(level.reported), "backlog_rise_lag_s": riseLag.Seconds(),
			"backlog_drained_reported": float64(bs.drained.reported), "backlog_fall_lag_s": fallLag.Seconds()})
}
