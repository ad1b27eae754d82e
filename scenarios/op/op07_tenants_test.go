package op

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"

	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/harness/metrics"
	"github.com/durabench/durabench/harness/stats"
)

// Namespaces of OP-07's dedicated servers.
const (
	tenantA     = "tenant-a"
	tenantB     = "tenant-b"
	tenantNoisy = "tenant-noisy"
	tenantQuiet = "tenant-quiet"
)

// TestOP07 measures tenant isolation on dedicated servers: one with two
// tenant namespaces (executions, visibility, workers, and a quiet tenant's
// latency beside a noisy tenant's 10K backlog), one with a per-namespace
// rate limit, and one with the server's JWT claim mapper and default
// authorizer, keys served from a JWKS endpoint on loopback.
func TestOP07(t *testing.T) {
	env := harness.Get(t)
	if ok, why := env.CanKillServer(); !ok {
		for _, id := range []string{"OP-07.namespace-isolation", "OP-07.visibility-isolation", "OP-07.worker-isolation",
			"OP-07.noisy-neighbour", "OP-07.namespace-rate-limit", "OP-07.authorization"} {
			env.Check(t, id).NotMeasured("needs dedicated dev servers (namespaces, limits, an authorizer): " + why)
		}
		return
	}
	t.Run("namespaces", testOP07Namespaces)
	t.Run("rate_limit", testOP07RateLimit)
	t.Run("authorization", testOP07Authorization)
}

// tenantDial dials o (HostPort and Namespace set) with the test's logger,
// closed at test end.
func tenantDial(ctx context.Context, t *testing.T, o client.Options) (client.Client, error) {
	o.Logger = harness.TestLogger(t)
	c, err := client.DialContext(ctx, o)
	if err != nil {
		return nil, err
	}
	t.Cleanup(c.Close)
	return c, nil
}

// tenantFixture is the two-tenant server and a client per tenant; it
// remembers every run started in each namespace.
type tenantFixture struct {
	srv     *harness.Server
	clients map[string]client.Client
	mu      sync.Mutex
	started map[string][]string // namespace -> run ids
	// noisyDone counts the noisy activities its workers finished.
	noisyDone atomic.Int64
}

func testOP07Namespaces(t *testing.T) {
	env := harness.Get(t)
	srv := env.StartServer(t, harness.ServerOptions{Namespaces: []string{"default", tenantA, tenantB}})
	ctx := harness.Context(t, 30*time.Second)
	f := &tenantFixture{srv: srv, clients: map[string]client.Client{}, started: map[string][]string{}}
	for _, ns := range []string{tenantA, tenantB} {
		c, err := tenantDial(ctx, t, client.Options{HostPort: srv.Address(), Namespace: ns})
		if err != nil {
			t.Fatalf("harness: dial %s: %v", ns, err)
		}
		f.clients[ns] = c
	}
	t.Run("namespace_isolation", f.testSameID)
	t.Run("visibility_isolation", f.testLists)
	t.Run("worker_isolation", f.testWorkers)
	t.Run("noisy_neighbour", f.testNeighbour)
}

// worker starts an in-process worker of namespace ns on queue, identified
// by label; the returned function stops it.
func (f *tenantFixture) worker(t *testing.T, ns, queue, label string, o worker.Options) func() {
	t.Helper()
	o.Identity = label
	w := worker.New(f.clients[ns], queue, o)
	registerTenant(w, label, &f.noisyDone)
	if err := w.Start(); err != nil {
		t.Fatalf("harness: worker %s: %v", label, err)
	}
	var once sync.Once
	stop := func() { once.Do(w.Stop) }
	t.Cleanup(stop)
	return stop
}

// start starts workflow wf in namespace ns and records its run.
func (f *tenantFixture) start(ctx context.Context, ns string, o client.StartWorkflowOptions, wf any, args ...any) (client.WorkflowRun, error) {
	run, err := f.clients[ns].ExecuteWorkflow(ctx, o, wf, args...)
	if err == nil {
		f.mu.Lock()
		f.started[ns] = append(f.started[ns], run.GetRunID())
		f.mu.Unlock()
	}
	return run, err
}

func (f *tenantFixture) runs(ns string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.started[ns])
}

func (f *tenantFixture) testSameID(t *testing.T) {
	check := harness.Get(t).Check(t, "OP-07.namespace-isolation")
	ctx := harness.Context(t, time.Minute)
	tq := harness.TaskQueue(t)
	for _, ns := range []string{tenantA, tenantB} {
		f.worker(t, ns, tq, "op07-notes-"+ns, worker.Options{})
	}
	id := harness.UniqueID(t, "same")
	opts := client.StartWorkflowOptions{ID: id, TaskQueue: tq, WorkflowExecutionTimeout: 5 * time.Minute}
	o := tenantSameID{a: tenantRun{sent: "for-" + tenantA}, b: tenantRun{sent: "for-" + tenantB}}
	runs := map[string]*tenantRun{tenantA: &o.a, tenantB: &o.b}
	for _, ns := range []string{tenantA, tenantB} {
		r := runs[ns]
		run, err := f.start(ctx, ns, opts, TenantNotesWorkflow)
		if r.startErr = err; err == nil {
			r.runID = run.GetRunID()
		}
	}
	var stepErr error
	if o.a.startErr == nil && o.b.startErr == nil {
		stepErr = f.exchangeNotes(ctx, id, runs)
	}
	onlyA := harness.UniqueID(t, "only-a")
	if _, err := f.start(ctx, tenantA, client.StartWorkflowOptions{ID: onlyA, TaskQueue: tq, WorkflowExecutionTimeout: 5 * time.Minute}, TenantNotesWorkflow); err != nil {
		t.Fatalf("harness: start %s in %s: %v", onlyA, tenantA, err)
	}
	o.crossErr = f.clients[tenantB].SignalWorkflow(ctx, onlyA, "", tenantNoteSignal, "from-"+tenantB)
	detail := fmt.Sprintf("workflow id %s started in %s (run %s, error %v) and in %s (run %s, error %v); signalled %q in %s and %q in %s; "+
		"queries answered %s: %q, %s: %q; after %q was signalled to %s only: %s is %s, %s is %s; a signal sent in %s to id %s, which only %s has: %v",
		id, tenantA, harness.ShortID(o.a.runID), o.a.startErr, tenantB, harness.ShortID(o.b.runID), o.b.startErr,
		o.a.sent, tenantA, o.b.sent, tenantB, tenantA, o.a.notes, tenantB, o.b.notes, tenantDoneSignal, tenantA,
		tenantA, o.a.status, tenantB, o.b.status, tenantB, onlyA, tenantA, o.crossErr)
	if stepErr != nil {
		detail += "; error: " + stepErr.Error()
	}
	harness.Decide(check, tenantSameIDPredicate, o, detail, nil)
}

// exchangeNotes signals each namespace's run its own note, queries both,
// finishes A's run and describes both.
func (f *tenantFixture) exchangeNotes(ctx context.Context, id string, runs map[string]*tenantRun) error {
	for _, ns := range []string{tenantA, tenantB} {
		if err := f.clients[ns].SignalWorkflow(ctx, id, runs[ns].runID, tenantNoteSignal, runs[ns].sent); err != nil {
			return fmt.Errorf("signal in %s: %w", ns, err)
		}
	}
	for _, ns := range []string{tenantA, tenantB} {
		v, err := f.clients[ns].QueryWorkflow(ctx, id, runs[ns].runID, tenantNotesQuery)
		if err != nil {
			return fmt.Errorf("query in %s: %w", ns, err)
		}
		if err := v.Get(&runs[ns].notes); err != nil {
			return fmt.Errorf("query result in %s: %w", ns, err)
		}
	}
	if err := f.clients[tenantA].SignalWorkflow(ctx, id, runs[tenantA].runID, tenantDoneSignal, nil); err != nil {
		return fmt.Errorf("done signal in %s: %w", tenantA, err)
	}
	if err := f.clients[tenantA].GetWorkflow(ctx, id, runs[tenantA].runID).Get(ctx, nil); err != nil {
		return fmt.Errorf("result in %s: %w", tenantA, err)
	}
	for _, ns := range []string{tenantA, tenantB} {
		d, err := f.clients[ns].DescribeWorkflowExecution(ctx, id, runs[ns].runID)
		if err != nil {
			return fmt.Errorf("describe in %s: %w", ns, err)
		}
		runs[ns].status = d.GetWorkflowExecutionInfo().GetStatus()
	}
	return nil
}

// listRuns is every run id namespace ns lists (no query), and its count.
func (f *tenantFixture) listRuns(ctx context.Context, ns string) ([]string, int64, error) {
	c := f.clients[ns]
	var out []string
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{PageSize: 1000, NextPageToken: token})
		if err != nil {
			return nil, 0, err
		}
		for _, e := range resp.GetExecutions() {
			out = append(out, e.GetExecution().GetRunId())
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	cnt, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{})
	return out, cnt.GetCount(), err
}

func (f *tenantFixture) testLists(t *testing.T) {
	check := harness.Get(t).Check(t, "OP-07.visibility-isolation")
	ctx := harness.Context(t, time.Minute)
	tq := harness.TaskQueue(t) // no worker: the runs stay open
	prefix := harness.UniqueID(t, "vis")
	ids := map[string][]string{tenantA: {prefix + "-a1", prefix + "-a2", prefix + "-same"}, tenantB: {prefix + "-b1", prefix + "-same"}}
	for _, ns := range []string{tenantA, tenantB} {
		for _, id := range ids[ns] {
			if _, err := f.start(ctx, ns, client.StartWorkflowOptions{ID: id, TaskQueue: tq, WorkflowExecutionTimeout: 5 * time.Minute}, TenantNotesWorkflow); err != nil {
				t.Fatalf("harness: start %s in %s: %v", id, ns, err)
			}
		}
	}
	o := tenantLists{startedA: f.runs(tenantA), startedB: f.runs(tenantB)}
	began := time.Now()
	o.err = harness.WaitFor(ctx, 30*time.Second, 100*time.Millisecond, "each namespace to list its own runs", func(ctx context.Context) (bool, error) {
		var err error
		if o.listedA, o.countA, err = f.listRuns(ctx, tenantA); err != nil {
			return false, err
		}
		if o.listedB, o.countB, err = f.listRuns(ctx, tenantB); err != nil {
			return false, err
		}
		return !slices.ContainsFunc(o.startedA, func(r string) bool { return !slices.Contains(o.listedA, r) }) &&
			!slices.ContainsFunc(o.startedB, func(r string) bool { return !slices.Contains(o.listedB, r) }), nil
	})
	crossed := func(listed, other []string) []string {
		return slices.DeleteFunc(slices.Clone(listed), func(r string) bool { return !slices.Contains(other, r) })
	}
	harness.Decide(check, tenantListPredicate, o, fmt.Sprintf(
		"runs started on this server: %d in %s, %d in %s (ids %v in %s, %v in %s, %s in both); after %d ms, unfiltered lists: %s returned %d runs (count %d), "+
			"%d of them %s's; %s returned %d (count %d), %d of them %s's (wait error: %v)",
		len(o.startedA), tenantA, len(o.startedB), tenantB, ids[tenantA], tenantA, ids[tenantB], tenantB, prefix+"-same",
		time.Since(began).Milliseconds(), tenantA, len(o.listedA), o.countA, len(crossed(o.listedA, o.startedB)), tenantB,
		tenantB, len(o.listedB), o.countB, len(crossed(o.listedB, o.startedA)), tenantA, o.err),
		map[string]float64{"listed_a": float64(len(o.listedA)), "listed_b": float64(len(o.listedB))})
}

// tenantSharedQueue is the task queue name both tenants use.
const tenantSharedQueue = "shared"

// pollers lists the identities polling the shared queue's workflow tasks in ns.
func (f *tenantFixture) pollers(ctx context.Context, ns string) ([]string, error) {
	resp, err := f.clients[ns].DescribeTaskQueue(ctx, tenantSharedQueue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
	var ids []string
	for _, p := range resp.GetPollers() {
		ids = append(ids, p.GetIdentity())
	}
	return ids, err
}

// tasksStarted lists the identities in a run's WorkflowTaskStarted events.
func (f *tenantFixture) tasksStarted(ctx context.Context, ns, id, runID string) ([]string, error) {
	events, err := harness.History(ctx, f.clients[ns], id, runID)
	var ids []string
	for _, ev := range harness.EventsOf(events, enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED) {
		ids = append(ids, ev.GetWorkflowTaskStartedEventAttributes().GetIdentity())
	}
	return ids, err
}

func (f *tenantFixture) testWorkers(t *testing.T) {
	check := harness.Get(t).Check(t, "OP-07.worker-isolation")
	ctx := harness.Context(t, time.Minute)
	o := tenantWorkers{labelA: "op07-worker-" + tenantA, labelB: "op07-worker-" + tenantB, nsA: tenantA, nsB: tenantB}
	opts := func(ns string) client.StartWorkflowOptions {
		return client.StartWorkflowOptions{ID: harness.UniqueID(t, "who-"+ns), TaskQueue: tenantSharedQueue, WorkflowExecutionTimeout: 5 * time.Minute}
	}
	f.worker(t, tenantA, tenantSharedQueue, o.labelA, worker.Options{})
	// B's run waits on the queue before A's is started, so that A's worker
	// polls while B's task is pending.
	bStarted := time.Now()
	runB, err := f.start(ctx, tenantB, opts(tenantB), tenantWhoRunsName)
	if err != nil {
		t.Fatalf("harness: start in %s: %v", tenantB, err)
	}
	aStarted := time.Now()
	runA, err := f.start(ctx, tenantA, opts(tenantA), tenantWhoRunsName)
	if err != nil {
		t.Fatalf("harness: start in %s: %v", tenantA, err)
	}
	o.errA = runA.Get(ctx, &o.resultA)
	o.tookA = time.Since(aStarted)
	watch := max(3*time.Second, 10*o.tookA+time.Second)
	// The watch gives up after its window when nothing started in B: the
	// expected outcome. A failed read is the harness's.
	var pollersA []string
	var readErr error
	_ = harness.WaitFor(ctx, watch, 100*time.Millisecond, "a task of "+tenantB+"'s run to start (it must not)", func(ctx context.Context) (bool, error) {
		started, err := f.tasksStarted(ctx, tenantB, runB.GetID(), runB.GetRunID())
		if err == nil {
			o.startedB, o.window = len(started), time.Since(bStarted)
			o.pollersB, err = f.pollers(ctx, tenantB)
		}
		if err == nil {
			pollersA, err = f.pollers(ctx, tenantA)
		}
		// The window can end during a read: gRPC's timer may fire a moment
		// before the context records its deadline.
		var deadline *serviceerror.DeadlineExceeded
		if err != nil && (ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &deadline)) {
			return false, nil
		}
		readErr = err
		return o.startedB > 0, err
	})
	if readErr != nil && ctx.Err() == nil {
		t.Fatalf("harness: watching %s's run: %v", tenantB, readErr)
	}
	f.worker(t, tenantB, tenantSharedQueue, o.labelB, worker.Options{})
	o.errB = runB.Get(ctx, &o.resultB)
	started, err := f.tasksStarted(ctx, tenantB, runB.GetID(), runB.GetRunID())
	if err != nil {
		t.Fatalf("harness: history in %s: %v", tenantB, err)
	}
	o.startedByB = started
	detail := fmt.Sprintf("task queue %q in both namespaces; only %s's worker (%s) running: %s's run returned %q in %d ms (error %v); "+
		"%s's run, started first, watched for %d ms (at least 10× %s's run): %d workflow tasks started; pollers of the queue: %s %v, %s %v; "+
		"then %s's worker (%s) started: %s's run returned %q (error %v), its workflow tasks started by %v",
		tenantSharedQueue, tenantA, o.labelA, tenantA, o.resultA, o.tookA.Milliseconds(), o.errA,
		tenantB, o.window.Milliseconds(), tenantA, o.startedB, tenantA, pollersA, tenantB, o.pollersB,
		tenantB, o.labelB, tenantB, o.resultB, o.errB, o.startedByB)
	harness.Decide(check, tenantWorkerPredicate, o, detail,
		map[string]float64{"took_a_ms": float64(o.tookA.Milliseconds()), "watch_b_ms": float64(o.window.Milliseconds())})
}

// The noisy neighbour's workload.
const (
	tenantBacklogWanted = 10000 // the catalog's 10K backlog
	tenantFanOuts       = 11    // noisy workflows, each scheduling tenantFanOutSize activities at once
	tenantFanOutSize    = 1000  // under the server's 2,000 pending activities per workflow
	tenantQuietRuns     = 4     // quiet workflows run side by side in each phase
	tenantQuietSteps    = 40    // sequential steps in each
	tenantMinSamples    = 100   // samples each phase needs for its p95's interval
	tenantMaxRatio      = 2.0   // the catalog's 2× the baseline
)

// quietPhase runs the quiet tenant's workflows side by side and returns
// every step's schedule-to-start (ms).
func (f *tenantFixture) quietPhase(ctx context.Context, t *testing.T, tq string, runs, steps int) ([]float64, error) {
	var mu sync.Mutex
	var all []float64
	var errs []error
	var wg sync.WaitGroup
	for range runs {
		wg.Go(func() {
			run, err := f.start(ctx, tenantA, client.StartWorkflowOptions{ID: harness.UniqueID(t, "quiet"), TaskQueue: tq, WorkflowExecutionTimeout: 2 * time.Minute}, TenantStepsWorkflow, steps)
			var ms []float64
			if err == nil {
				err = run.Get(ctx, &ms)
			}
			mu.Lock()
			defer mu.Unlock()
			all = append(all, ms...)
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	return all, errors.Join(errs...)
}

// backlog reads the server's approximate backlog of an activity queue. The
// noisy namespace's own calls may exhaust its rate limit while it
// schedules: a refused read is asked again, within 30 s.
func (f *tenantFixture) backlog(ctx context.Context, ns, queue string) (int64, error) {
	var n int64
	var last error
	err := harness.WaitFor(ctx, 30*time.Second, 200*time.Millisecond, "the backlog of "+queue, func(ctx context.Context) (bool, error) {
		var err error
		n, err = scaleBacklog(ctx, f.clients[ns], ns, queue, enumspb.TASK_QUEUE_TYPE_ACTIVITY)
		var exhausted *serviceerror.ResourceExhausted
		if errors.As(err, &exhausted) {
			last = err
			return false, nil
		}
		return true, err
	})
	if err != nil && last != nil {
		err = fmt.Errorf("%w (last refusal: %v)", err, last)
	}
	return n, err
}

func (f *tenantFixture) testNeighbour(t *testing.T) {
	check := harness.Get(t).Check(t, "OP-07.noisy-neighbour")
	ctx := harness.Context(t, 4*time.Minute)
	quiet, noisy := tenantA, tenantB
	qtq := harness.TaskQueue(t)
	f.worker(t, quiet, qtq, "op07-quiet", worker.Options{})
	if _, err := f.quietPhase(ctx, t, qtq, 1, 5); err != nil { // warm-up: connections, caches
		t.Fatalf("harness: quiet warm-up: %v", err)
	}
	o := tenantNeighbour{backlogWanted: tenantBacklogWanted, minN: tenantMinSamples, maxRatio: tenantMaxRatio}
	baseStart := time.Now()
	base, baseErr := f.quietPhase(ctx, t, qtq, tenantQuietRuns, tenantQuietSteps)
	baseTook := time.Since(baseStart)
	o.baseErr, o.baseN = baseErr, len(base)

	// The noisy tenant's backlog: fan-outs scheduling all their activities
	// at once on a queue no worker polls yet.
	wfq, actq := harness.TaskQueue(t)+"-wf", harness.TaskQueue(t)+"-act"
	f.worker(t, noisy, wfq, "op07-noisy-workflows", worker.Options{})
	fillStart := time.Now()
	for i := range tenantFanOuts {
		if _, err := f.start(ctx, noisy, client.StartWorkflowOptions{ID: fmt.Sprintf("%s-%d", harness.UniqueID(t, "fanout"), i), TaskQueue: wfq, WorkflowExecutionTimeout: 10 * time.Minute},
			TenantFanOutWorkflow, TenantFanOut{N: tenantFanOutSize, Queue: actq}); err != nil {
			t.Fatalf("harness: noisy fan-out: %v", err)
		}
	}
	total := int64(tenantFanOuts * tenantFanOutSize)
	var built int64
	if err := harness.WaitFor(ctx, 2*time.Minute, 250*time.Millisecond, fmt.Sprintf("a backlog of %d noisy activity tasks", total), func(ctx context.Context) (bool, error) {
		var err error
		built, err = f.backlog(ctx, noisy, actq)
		return built >= total, err
	}); err != nil {
		t.Fatalf("harness: %v (last seen %d)", err, built)
	}
	fillTook := time.Since(fillStart)
	// A noisy worker with too few slots drains the backlog slowly while the
	// quiet tenant runs its phase again.
	f.worker(t, noisy, actq, "op07-noisy-activities", worker.Options{MaxConcurrentActivityExecutionSize: tenantNoisySlots})
	before, err := f.backlog(ctx, noisy, actq)
	if err != nil {
		t.Fatalf("harness: backlog: %v", err)
	}
	loadStart, done0 := time.Now(), f.noisyDone.Load()
	loaded, loadedErr := f.quietPhase(ctx, t, qtq, tenantQuietRuns, tenantQuietSteps)
	loadTook, finished := time.Since(loadStart), f.noisyDone.Load()-done0
	after, err := f.backlog(ctx, noisy, actq)
	if err != nil {
		t.Fatalf("harness: backlog: %v", err)
	}
	o.loadedErr, o.loadedN, o.backlogMin = loadedErr, len(loaded), min(before, after)
	o.ratioLo, o.ratioHi = stats.BootstrapRatio(loaded, base, func(xs []float64) float64 { return stats.Quantile(xs, 0.95) })
	bs, ls := stats.Summarize(base), stats.Summarize(loaded)
	bLo, bHi := stats.Bootstrap(base, func(xs []float64) float64 { return stats.Quantile(xs, 0.95) })
	lLo, lHi := stats.Bootstrap(loaded, func(xs []float64) float64 { return stats.Quantile(xs, 0.95) })
	drained := float64(finished) / loadTook.Seconds()
	detail := fmt.Sprintf("server on %s. Quiet tenant %s: %d runs side by side × %d sequential activities per phase, schedule-to-start from the server's scheduled and started times. "+
		"Baseline (alone, %.1f s): n=%d p50 %.1f ms p95 %.1f ms [%.1f, %.1f] p99 %.1f ms (error %v). "+
		"Noisy tenant %s: %d workflows × %d activities scheduled at once on a queue without workers, backlog %d reached after %.1f s; then one worker with %d slot(s) "+
		"(%s per task) finished %d of its activities during the quiet phase, %.1f tasks/s (counted by the activity); the server's backlog count (cached for seconds) %d when the quiet phase began, %d when it ended (%.1f s). Loaded: n=%d p50 %.1f ms p95 %.1f ms [%.1f, %.1f] p99 %.1f ms (error %v). "+
		"p95 ratio loaded/baseline %.2f, 95%% interval [%.2f, %.2f], judged on its upper bound against the catalog's %.0f× (backlog needed: %d, the catalog's 10K)",
		f.srv.Persistence(), quiet, tenantQuietRuns, tenantQuietSteps, baseTook.Seconds(), bs.N, bs.P50, bs.P95, bLo, bHi, bs.P99, baseErr,
		noisy, tenantFanOuts, tenantFanOutSize, built, fillTook.Seconds(), tenantNoisySlots, tenantNoisyWork, finished, drained, before, after, loadTook.Seconds(),
		ls.N, ls.P50, ls.P95, lLo, lHi, ls.P99, loadedErr, ls.P95/max(bs.P95, 1e-9), o.ratioLo, o.ratioHi, tenantMaxRatio, tenantBacklogWanted)
	m := map[string]float64{"backlog_before": float64(before), "backlog_after": float64(after), "fill_s": fillTook.Seconds(), "drain_per_s": drained, "noisy_finished": float64(finished),
		"baseline_p95_lo": bLo, "baseline_p95_hi": bHi, "loaded_p95_lo": lLo, "loaded_p95_hi": lHi, "p95_ratio_lo": o.ratioLo, "p95_ratio_hi": o.ratioHi}
	maps.Copy(m, bs.Metrics("baseline_schedule_to_start_ms"))
	maps.Copy(m, ls.Metrics("loaded_schedule_to_start_ms"))
	harness.Decide(check, tenantNeighbourPredicate, o, detail, m)
}

// tenantNoisySlots keeps the noisy tenant's drain light: the check is about
// the server keeping tenants apart, and on 2 cores a busy drain worker takes
// CPU from everyone, quiet tenant included, whatever the server does.
const tenantNoisySlots = 1

// The rate-limit server's per-namespace limit.
const (
	tenantLimit      = 20  // frontend.namespaceRPS of the noisy namespace: calls per second on the one frontend
	tenantBurstRatio = 1   // frontend.namespaceBurstRatio: burst = limit × ratio
	tenantNoisyRate  = 100 // calls per second the noisy tenant offers: 5× its limit
	tenantQuietRate  = 10  // calls per second the quiet tenant offers: half its limit
)

// tenantCall is one raw call's outcome.
type tenantCall struct {
	at      time.Time
	latency time.Duration
	err     error
}

// tenantPace starts a raw StartWorkflowExecution in ns every 1/rate second
// for d, without the SDK's retries (a raw call on a context without retry
// options is tried once), and returns every call's outcome.
func tenantPace(ctx context.Context, svc workflowservice.WorkflowServiceClient, ns, tq string, rate int, d time.Duration) []tenantCall {
	var mu sync.Mutex
	var out []tenantCall
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	end := time.After(d)
	for {
		select {
		case <-end:
			wg.Wait()
			return out
		case <-ctx.Done():
			wg.Wait()
			return out
		case <-tick.C:
			wg.Go(func() {
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				began := time.Now()
				_, err := svc.StartWorkflowExecution(cctx, &workflowservice.StartWorkflowExecutionRequest{
					Namespace: ns, WorkflowId: "op07-rate-" + uuid.NewString(), WorkflowType: &commonpb.WorkflowType{Name: "TenantNotesWorkflow"},
					TaskQueue: &taskqueuepb.TaskQueue{Name: tq}, RequestId: uuid.NewString(), Identity: "op07-rate",
				})
				mu.Lock()
				defer mu.Unlock()
				out = append(out, tenantCall{at: began, latency: time.Since(began), err: err})
			})
		}
	}
}

// tenantTally counts calls accepted, refused with ResourceExhausted and
// failed otherwise, with their latencies (ms) and the span from the first
// call to the last answer.
func tenantTally(calls []tenantCall) (ok, exhausted int, other []error, latMS []float64, span time.Duration) {
	var first, last time.Time
	for _, c := range calls {
		switch {
		case c.err == nil:
			ok++
		case tenantIsExhausted(c.err):
			exhausted++
		default:
			other = append(other, c.err)
		}
		latMS = append(latMS, float64(c.latency.Microseconds())/1000)
		if first.IsZero() || c.at.Before(first) {
			first = c.at
		}
		if end := c.at.Add(c.latency); end.After(last) {
			last = end
		}
	}
	return ok, exhausted, other, latMS, last.Sub(first)
}

func testOP07RateLimit(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "OP-07.namespace-rate-limit")
	// The limit is scoped to the noisy namespace alone (a constrained
	// dynamic-config value): the quiet one and the server's own keep the
	// default.
	scoped := func(v int) string { return fmt.Sprintf("[{constraints: {namespace: %s}, value: %d}]", tenantNoisy, v) }
	dc := map[string]string{"frontend.namespaceRPS": scoped(tenantLimit), "frontend.namespaceBurstRatio": scoped(tenantBurstRatio)}
	srv := env.StartServer(t, harness.ServerOptions{Namespaces: []string{"default", tenantNoisy, tenantQuiet}, Metrics: true, DynamicConfig: dc})
	check.OnServer(srv)
	ctx := harness.Context(t, time.Minute)
	svc := srv.Dial(t).WorkflowService()
	tq := harness.TaskQueue(t) // no worker: the started runs stay open

	// The quiet tenant alone, for its latency without a noisy neighbour.
	qBase := tenantPace(ctx, svc, tenantQuiet, tq, tenantQuietRate, 2*time.Second)
	_, _, _, qBaseLat, _ := tenantTally(qBase)

	before, err := metrics.Scrape(ctx, srv.MetricsURL())
	if err != nil {
		t.Fatalf("harness: scrape: %v", err)
	}
	const window = 5 * time.Second
	var noisyCalls, quietCalls []tenantCall
	var wg sync.WaitGroup
	wg.Go(func() { noisyCalls = tenantPace(ctx, svc, tenantNoisy, tq, tenantNoisyRate, window) })
	wg.Go(func() { quietCalls = tenantPace(ctx, svc, tenantQuiet, tq, tenantQuietRate, window) })
	wg.Wait()
	o := tenantThrottle{limit: tenantLimit, burst: tenantLimit * tenantBurstRatio, offered: len(noisyCalls), quietSent: len(quietCalls)}
	var other, quietOther []error
	o.accepted, o.exhausted, other, _, o.window = tenantTally(noisyCalls)
	o.otherErrors = len(other)
	var quietLat []float64
	o.quietOK, o.quietExhausted, quietOther, quietLat, _ = tenantTally(quietCalls)
	// The server's counters reach its Prometheus endpoint on the reporter's
	// next flush: wait until they account for every refusal the noisy tenant
	// saw (they stay short of it, and the detail says so, if they never do).
	var after metrics.Snapshot
	flushErr := harness.WaitFor(ctx, 10*time.Second, 250*time.Millisecond, "the server's resource-exhausted counters", func(ctx context.Context) (bool, error) {
		var err error
		if after, err = metrics.Scrape(ctx, srv.MetricsURL()); err != nil {
			return false, err
		}
		delta := after.Sub(before)
		o.serverNoisy = delta.Total("service_errors_resource_exhausted", map[string]string{"namespace": tenantMetricLabel(tenantNoisy)}).Sum
		o.serverQuiet = delta.Total("service_errors_resource_exhausted", map[string]string{"namespace": tenantMetricLabel(tenantQuiet)}).Sum
		return o.serverNoisy >= float64(o.exhausted), nil
	})
	systemThrottled := after.Total("service_errors_resource_exhausted", map[string]string{"namespace": tenantMetricLabel("temporal-system")}).Sum
	qb, ql := stats.Summarize(qBaseLat), stats.Summarize(quietLat)
	achieved := float64(o.accepted) / o.window.Seconds()
	bound := o.burst + o.limit*o.window.Seconds()
	detail := fmt.Sprintf("dynamic config %v, scoped to %s (the server's own temporal-system namespace had %.0f refusals since start). "+
		"Over %.2f s, noisy %s offered %d raw starts (%d/s, not retried): %d accepted (%.1f/s against its limit of %d/s, %.1f/s once the burst of %.0f is taken out; token-bucket bound burst + rate × window = %.0f), "+
		"%d refused with ResourceExhausted, %d other errors%s; server's service_errors_resource_exhausted: %s %.0f, %s %.0f. "+
		"Quiet %s at %d/s meanwhile: %d sent, %d accepted, %d ResourceExhausted, %d other errors; start latency p50 %.1f ms p95 %.1f ms (n=%d), "+
		"alone before: p50 %.1f ms p95 %.1f ms (n=%d)",
		dc, tenantNoisy, systemThrottled, o.window.Seconds(), tenantNoisy, o.offered, tenantNoisyRate, o.accepted, achieved, tenantLimit, (float64(o.accepted)-o.burst)/o.window.Seconds(), o.burst, bound,
		o.exhausted, o.otherErrors, tenantFirstErr(other), tenantNoisy, o.serverNoisy, tenantQuiet, o.serverQuiet,
		tenantQuiet, tenantQuietRate, o.quietSent, o.quietOK, o.quietExhausted, len(quietOther), ql.P50, ql.P95, ql.N, qb.P50, qb.P95, qb.N)
	if len(quietOther) > 0 {
		detail += "; first quiet error: " + quietOther[0].Error()
	}
	if flushErr != nil {
		detail += "; server counters: " + flushErr.Error()
	}
	m := map[string]float64{"noisy_offered": float64(o.offered), "noisy_accepted": float64(o.accepted), "noisy_exhausted": float64(o.exhausted),
		"noisy_achieved_per_s": achieved, "limit_per_s": tenantLimit, "server_exhausted_noisy": o.serverNoisy, "server_exhausted_quiet": o.serverQuiet}
	maps.Copy(m, ql.Metrics("quiet_start_ms"))
	maps.Copy(m, qb.Metrics("quiet_alone_start_ms"))
	harness.Decide(check, tenantThrottlePredicate, o, detail, m)
}

// tenantMetricLabel is namespace ns as the server's Prometheus labels spell
// it (dashes become underscores).
func tenantMetricLabel(ns string) string { return strings.ReplaceAll(ns, "-", "_") }

func tenantFirstErr(errs []error) string {
	if len(errs) == 0 {
		return ""
	}
	return " (first: " + errs[0].Error() + ")"
}

// tenantAttempt dials ns with credentials creds (none if empty) and starts
// a TenantWhoRuns run on tq; the error is the dial's or the start's.
func tenantAttempt(ctx context.Context, t *testing.T, addr, ns, token, tq string) (client.WorkflowRun, error) {
	o := client.Options{HostPort: addr, Namespace: ns}
	if token != "" {
		o.Credentials = client.NewAPIKeyStaticCredentials(token)
		o.ConnectionOptions = client.ConnectionOptions{TLSDisabled: true}
	}
	c, err := tenantDial(ctx, t, o)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: harness.UniqueID(t, "auth"), TaskQueue: tq, WorkflowExecutionTimeout: 5 * time.Minute}, tenantWhoRunsName)
	if err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	return run, nil
}

func testOP07Authorization(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "OP-07.authorization")
	const kid = "op07-key"
	iss := newTenantIssuer(t, kid)
	forgedKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("harness: RSA key: %v", err)
	}
	forger := &tenantIssuer{key: forgedKey, kid: kid} // same key id, another key: its signatures cannot verify
	srv := env.StartServer(t, harness.ServerOptions{JWKSURL: iss.url, Namespaces: []string{"default", tenantA, tenantB}})
	ctx := harness.Context(t, time.Minute)
	tq := harness.TaskQueue(t)
	writerA := iss.token(t, "op07-writer-a", tenantA+":write")
	o := tenantAuth{}
	own, err := tenantAttempt(ctx, t, srv.Address(), tenantA, writerA, tq)
	if o.ownErr = err; err == nil {
		o.ownRun = own.GetRunID()
	}
	o.crossErr = tenantErrOf(tenantAttempt(ctx, t, srv.Address(), tenantB, writerA, tq))
	o.noTokenErr = tenantErrOf(tenantAttempt(ctx, t, srv.Address(), tenantA, "", tq))
	o.forgedErr = tenantErrOf(tenantAttempt(ctx, t, srv.Address(), tenantA, forger.token(t, "op07-forger", tenantA+":write"), tq))
	o.readerErr = tenantErrOf(tenantAttempt(ctx, t, srv.Address(), tenantA, iss.token(t, "op07-reader-a", tenantA+":read"), tq))
	var resultErr error
	if o.ownErr == nil {
		// A worker holding the same token runs the run to completion.
		c, err := tenantDial(ctx, t, client.Options{HostPort: srv.Address(), Namespace: tenantA,
			Credentials: client.NewAPIKeyStaticCredentials(writerA), ConnectionOptions: client.ConnectionOptions{TLSDisabled: true}})
		if err == nil {
			w := worker.New(c, tq, worker.Options{Identity: "op07-auth-worker"})
			registerTenant(w, "op07-auth-worker", new(atomic.Int64))
			if err = w.Start(); err == nil {
				defer w.Stop()
				err = c.GetWorkflow(ctx, own.GetID(), own.GetRunID()).Get(ctx, &o.ownResult)
			}
		}
		resultErr = err
	}
	o.jwksFetches = iss.fetches.Load()
	detail := fmt.Sprintf("server %s, namespaces %v; JWKS (RS256, kid %q) fetched %d times. Token with permissions [%s:write] starting on %s: run %s, result %q (error %v); "+
		"same token on %s: %v; no token on %s: %v; token signed by another key under the same kid on %s: %v; token [%s:read] starting on %s: %v",
		srv.Info().Authorization, srv.Info().Namespaces, kid, o.jwksFetches, tenantA, tenantA, harness.ShortID(o.ownRun), o.ownResult, errors.Join(o.ownErr, resultErr),
		tenantB, o.crossErr, tenantA, o.noTokenErr, tenantA, o.forgedErr, tenantA, tenantA, o.readerErr)
	if resultErr != nil {
		o.ownResult = ""
	}
	harness.Decide(check, tenantAuthPredicate, o, detail, nil)
}

// tenantErrOf is the error of a (value, error) pair.
func tenantErrOf[T any](_ T, err error) error { return err }
