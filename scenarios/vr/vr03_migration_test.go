package vr

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	batchpb "go.temporal.io/api/batch/v1"
	deploymentpb "go.temporal.io/api/deployment/v1"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/harness/stats"
	"github.com/durabench/durabench/scenarios/vr/flows"
)

// TestVR03 measures migration with Worker Deployments, as one migration
// from v1 to v2 of a deployment whose workers pin their runs: with v1
// current, runs are started and a start every 100 ms begins; v2 is made
// current under that load. Each subtest then does what its check names
// with runs of its own (drain and cut over, continue-as-new onto v2, list
// and move the runs left on v1 in bulk and one by one) and the last rolls
// back to v1. Every subtest can run alone: the migration above is the
// top-level test's.
func TestVR03(t *testing.T) {
	env := harness.Get(t)
	ctx := harness.Context(t, 3*time.Minute)
	m := startMigration(ctx, t, env.Dial(t), env.Options.Namespace)
	t.Run("drain_cutover", m.testDrainCutover)
	t.Run("continue_as_new_upgrade", m.testContinueAsNew)
	t.Run("list_old_runs", m.testListOldRuns)
	t.Run("version_override", m.testVersionOverride)
	t.Run("batch_move", m.testBatchMove)
	t.Run("zero_downtime", m.testZeroDowntime)
	t.Run("rollback", m.testRollback)
}

// Load across the switch: a start every loadEvery, loadStarts in all, v2
// made current once loadBeforeSwitch starts have been issued (the catalog's
// "a start every 100 ms"; 10 s in all keeps the package in its budget).
const (
	loadEvery        = 100 * time.Millisecond
	loadStarts       = 100
	loadBeforeSwitch = 30
	loadRunTimeout   = 30 * time.Second // a load run with no result this long after its start is stuck
)

// loadStart is one start of the load.
type loadStart struct {
	issued  time.Time
	latency time.Duration
	run     client.WorkflowRun
	err     error // the start's error
	done    chan struct{}
	res     flows.Result
	runErr  error // the run's failure, or the timeout that made it stuck
	stuck   bool  // no result within loadRunTimeout of the start
	mu      sync.Mutex
}

// migration is the shared state of TestVR03.
type migration struct {
	c         client.Client
	d         *deployment
	err       error                         // a deployment operation of the migration that failed
	startedOn map[client.WorkflowRun]string // the build each run below first completed a workflow task on
	cutover   []client.WorkflowRun
	batch     []client.WorkflowRun
	batchID   string // the workflow id prefix of the batch runs
	override  client.WorkflowRun
	loop      client.WorkflowRun
	loopFirst string // the loop's first run id (the handle follows the chain)
	loopTicks int    // ticks sent to the loop before the switch

	loadMu                       sync.Mutex
	load                         []*loadStart
	loadDone                     chan struct{}
	switchRequested, switchReady time.Time
}

// loopTarget and loopEvery shape the UpgradeLoop chain: two runs of two
// iterations each.
const (
	loopTarget = 4
	loopEvery  = 2
)

func startMigration(ctx context.Context, t *testing.T, c client.Client, namespace string) *migration {
	m := &migration{c: c, d: newDeployment(t, c, namespace), loadDone: make(chan struct{}), startedOn: map[client.WorkflowRun]string{}}
	m.batchID = harness.UniqueID(t, "batch")
	for _, b := range []string{buildV1, buildV2} {
		if m.err = m.d.startVersion(ctx, t, b, workflow.VersioningBehaviorPinned); m.err != nil {
			close(m.loadDone)
			return m
		}
	}
	if m.err = m.d.setCurrent(ctx, buildV1); m.err != nil {
		close(m.loadDone)
		return m
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	switchNow := make(chan struct{})
	go m.runLoad(loadCtx, t, switchNow)
	t.Cleanup(func() { stopLoad(); <-m.loadDone; m.waitLoadRuns() })

	approval := func(id string) client.WorkflowRun {
		run, err := m.d.start(ctx, t, id, flows.Approval, "item")
		if err != nil {
			t.Fatalf("harness: %v", err)
		}
		return run
	}
	for range 2 {
		m.cutover = append(m.cutover, approval(harness.UniqueID(t, "cutover")))
	}
	for i := range 3 {
		m.batch = append(m.batch, approval(fmt.Sprintf("%s-%d", m.batchID, i)))
	}
	m.override = approval(harness.UniqueID(t, "override"))
	loop, err := m.d.start(ctx, t, harness.UniqueID(t, "loop"), UpgradeLoop, flows.LoopState{Target: loopTarget, Every: loopEvery})
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	m.loop, m.loopFirst = loop, loop.GetRunID()
	if m.err = c.SignalWorkflow(ctx, loop.GetID(), "", flows.SignalTick, nil); m.err != nil {
		return m
	}
	m.loopTicks = 1
	// Every run is on v1 before the switch: a run that never completes a
	// workflow task there stops the migration with the error.
	for _, run := range m.tracked() {
		v, err := waitOnBuild(ctx, c, run, buildV1)
		if err != nil {
			m.err = err
			return m
		}
		m.startedOn[run] = v.Build
	}
	select {
	case <-switchNow:
	case <-ctx.Done():
		t.Fatalf("harness: load did not reach %d starts", loadBeforeSwitch)
	}
	m.switchRequested = time.Now()
	m.err = m.d.setCurrent(ctx, buildV2)
	m.switchReady = time.Now()
	return m
}

// runLoad issues loadStarts Quick starts, one every loadEvery, each in a
// goroutine of its own so that a slow start does not delay the next, and
// closes switchNow once loadBeforeSwitch have been issued.
func (m *migration) runLoad(ctx context.Context, t *testing.T, switchNow chan<- struct{}) {
	defer close(m.loadDone)
	tick := time.NewTicker(loadEvery)
	defer tick.Stop()
	for i := range loadStarts {
		if i == loadBeforeSwitch {
			close(switchNow)
		}
		s := &loadStart{issued: time.Now(), done: make(chan struct{})}
		m.loadMu.Lock()
		m.load = append(m.load, s)
		m.loadMu.Unlock()
		go func() {
			defer close(s.done)
			id := fmt.Sprintf("%s-load-%03d", m.d.name, i)
			run, err := m.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: m.d.tq, WorkflowExecutionTimeout: time.Minute}, flows.Quick, "item")
			s.mu.Lock()
			s.latency, s.run, s.err = time.Since(s.issued), run, err
			s.mu.Unlock()
			if err != nil {
				return
			}
			rctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), s.issued.Add(loadRunTimeout))
			defer cancel()
			var res flows.Result
			err = harness.AwaitResult(rctx, run, &res)
			s.mu.Lock()
			s.res, s.runErr, s.stuck = res, err, err != nil && rctx.Err() != nil
			s.mu.Unlock()
		}()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// waitLoadRuns waits until every load start has its outcome.
func (m *migration) waitLoadRuns() {
	m.loadMu.Lock()
	load := append([]*loadStart{}, m.load...)
	m.loadMu.Unlock()
	for _, s := range load {
		<-s.done
	}
}

// tracked is every run the migration started besides the load.
func (m *migration) tracked() []client.WorkflowRun {
	return append(append(append([]client.WorkflowRun{}, m.cutover...), m.batch...), m.override, m.loop)
}

func (m *migration) testDrainCutover(t *testing.T) {
	check := harness.Get(t).Check(t, "VR-03.drain-cutover")
	ctx := harness.Context(t, time.Minute)
	o := cutover{err: m.err}
	if o.err == nil {
		var fresh []client.WorkflowRun
		for range 2 {
			run, err := m.d.start(ctx, t, harness.UniqueID(t, "new"), flows.Approval, "item")
			if err != nil {
				t.Fatalf("harness: %v", err)
			}
			fresh = append(fresh, run)
		}
		for _, run := range m.cutover {
			res, err := approveRun(ctx, m.c, run)
			o.old = append(o.old, outcome(run, m.startedOn[run], res, err))
		}
		for _, run := range fresh {
			res, err := approveRun(ctx, m.c, run)
			o.fresh = append(o.fresh, outcome(run, "", res, err))
		}
	}
	harness.Decide(check, cutoverPredicate, o, fmt.Sprintf(
		"deployment %s, v1 and v2 workers pinning their runs. Approval runs started with v1 current, approved after v2 became current: %v. "+
			"Approval runs started after the switch: %v%s",
		m.d.name, outcomes(o.old), outcomes(o.fresh), errSuffix(o.err)), nil)
}

func outcomes(rs []runOutcome) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.String()
	}
	return "[" + strings.Join(s, "; ") + "]"
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return "; error: " + err.Error()
}

func (m *migration) testContinueAsNew(t *testing.T) {
	check := harness.Get(t).Check(t, "VR-03.continue-as-new-upgrade")
	ctx := harness.Context(t, time.Minute)
	o := canChain{target: loopTarget, beforeSwitch: m.loopTicks, err: m.err}
	if o.err == nil {
		for i := m.loopTicks; i < loopTarget && o.err == nil; i++ {
			o.err = m.c.SignalWorkflow(ctx, m.loop.GetID(), "", flows.SignalTick, nil)
		}
	}
	if o.err == nil {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		o.err = harness.AwaitResult(rctx, m.loop, &o.result)
		cancel()
	}
	if o.err == nil {
		o.runs, o.err = chainRuns(ctx, m.c, m.loop.GetID(), m.loopFirst)
	}
	runs := make([]string, len(o.runs))
	for i, r := range o.runs {
		runs[i] = r.String()
	}
	harness.Decide(check, continueAsNewPredicate, o, fmt.Sprintf(
		"UpgradeLoop (flows.Loop continuing as new with InitialVersioningBehavior AutoUpgrade; %d iterations, continue-as-new every %d) started on v1, "+
			"%d tick(s) sent before v2 became current, the rest after. Runs of the chain: [%s]; result: %d iterations, codes %v, %d pending%s",
		loopTarget, loopEvery, o.beforeSwitch, strings.Join(runs, "; "), o.result.Iterations, o.result.Codes, o.result.Pending, errSuffix(o.err)), nil)
}

// chainRuns describes each run of a continue-as-new chain from its first.
func chainRuns(ctx context.Context, c client.Client, id, runID string) ([]runVersioning, error) {
	var out []runVersioning
	for runID != "" {
		v, err := describeRun(ctx, c, id, runID)
		if err != nil {
			return out, err
		}
		out = append(out, v)
		events, err := harness.History(ctx, c, id, runID)
		if err != nil {
			return out, err
		}
		runID = ""
		if n := len(events); n > 0 {
			runID = events[n-1].GetWorkflowExecutionContinuedAsNewEventAttributes().GetNewExecutionRunId()
		}
	}
	return out, nil
}

// effectiveBuild is the build a run's versioning resolves to: a pinned
// override's, else the version that ran its last workflow task.
func (v runVersioning) effectiveBuild() string {
	if v.Override != "" && v.Override != "auto-upgrade" {
		return v.Override
	}
	return v.Build
}

func (m *migration) testListOldRuns(t *testing.T) {
	check := harness.Get(t).Check(t, "VR-03.list-old-runs")
	ctx := harness.Context(t, time.Minute)
	o := oldRunListing{err: m.err, query: fmt.Sprintf("TemporalWorkerDeploymentVersion = '%s' AND ExecutionStatus = 'Running'", m.d.versionString(buildV1))}
	if o.err == nil {
		newcomer, err := m.d.start(ctx, t, harness.UniqueID(t, "new"), flows.Approval, "item")
		if err != nil {
			t.Fatalf("harness: %v", err)
		}
		if _, o.err = waitOnBuild(ctx, m.c, newcomer, buildV2); o.err == nil {
			runs := append(m.tracked(), newcomer)
			// Visibility follows the store: ask until the listing agrees
			// with what describe says of every run, or give up and keep
			// the last answer.
			_ = harness.WaitFor(ctx, 15*time.Second, 200*time.Millisecond, "listing to agree", func(ctx context.Context) (bool, error) {
				o.onOld, o.onNew, o.err = m.openByBuild(ctx, runs)
				if o.err != nil {
					return false, o.err
				}
				o.listed, o.err = listIDs(ctx, m.c, o.query)
				return o.err == nil && sameSet(o.listed, o.onOld), o.err
			})
		}
		if _, err := approveRun(ctx, m.c, newcomer); err != nil {
			t.Logf("approving the v2 run: %v", err)
		}
	}
	harness.Decide(check, listOldRunsPredicate, o, fmt.Sprintf(
		"query %q listed %v; describe shows open on v1: %v, open on v2: %v%s", o.query, o.listed, o.onOld, o.onNew, errSuffix(o.err)), nil)
}

// openByBuild sorts the open runs among runs and the load's by the build
// describe resolves them to.
func (m *migration) openByBuild(ctx context.Context, runs []client.WorkflowRun) (onV1, onV2 []string, err error) {
	m.loadMu.Lock()
	for _, s := range m.load {
		s.mu.Lock()
		if s.run != nil && s.runErr == nil && s.res.Code == "" {
			runs = append(runs, s.run) // no outcome yet: may be open
		}
		s.mu.Unlock()
	}
	m.loadMu.Unlock()
	for _, run := range runs {
		v, err := describeRun(ctx, m.c, run.GetID(), run.GetRunID())
		if err != nil {
			return nil, nil, err
		}
		if v.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			continue
		}
		switch v.effectiveBuild() {
		case buildV1:
			onV1 = append(onV1, run.GetID())
		case buildV2:
			onV2 = append(onV2, run.GetID())
		}
	}
	return onV1, onV2, nil
}

func listIDs(ctx context.Context, c client.Client, query string) ([]string, error) {
	var ids []string
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token})
		if err != nil {
			return nil, fmt.Errorf("list %q: %w", query, err)
		}
		for _, e := range resp.GetExecutions() {
			ids = append(ids, e.GetExecution().GetWorkflowId())
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return ids, nil
		}
	}
}

func (m *migration) testVersionOverride(t *testing.T) {
	check := harness.Get(t).Check(t, "VR-03.version-override")
	ctx := harness.Context(t, time.Minute)
	o := overrideMove{err: m.err}
	if o.err == nil {
		run := m.override
		if o.before, o.err = describeRun(ctx, m.c, run.GetID(), run.GetRunID()); o.err == nil {
			_, o.err = m.c.UpdateWorkflowExecutionOptions(ctx, client.UpdateWorkflowExecutionOptionsRequest{
				WorkflowId: run.GetID(), RunId: run.GetRunID(),
				WorkflowExecutionOptionsChanges: client.WorkflowExecutionOptionsChanges{
					VersioningOverride: &client.VersioningOverrideChange{Value: &client.PinnedVersioningOverride{Version: m.d.version(buildV2)}},
				},
			})
		}
		if o.err == nil {
			res, err := approveRun(ctx, m.c, run)
			o.run = outcome(run, o.before.Build, res, err)
			o.after, o.err = describeRun(ctx, m.c, run.GetID(), run.GetRunID())
		}
	}
	harness.Decide(check, overridePredicate, o, fmt.Sprintf(
		"Approval run started with v1 current, v2 current since: %s; UpdateWorkflowExecutionOptions with a pinned override to %s, then approved: %s; describe after: %s%s",
		o.before, m.d.versionString(buildV2), o.run, o.after, errSuffix(o.err)), nil)
}

func (m *migration) testBatchMove(t *testing.T) {
	check := harness.Get(t).Check(t, "VR-03.batch-move")
	ctx := harness.Context(t, time.Minute)
	o := batchMove{err: m.err, query: fmt.Sprintf("TemporalWorkerDeploymentVersion = '%s' AND ExecutionStatus = 'Running' AND WorkflowId STARTS_WITH '%s-'",
		m.d.versionString(buildV1), m.batchID)}
	var jobID string
	if o.err == nil {
		jobID, o.err = m.moveInBatch(ctx, &o)
	}
	if o.err == nil {
		for _, run := range m.batch {
			v, err := describeRun(ctx, m.c, run.GetID(), run.GetRunID())
			if err != nil {
				o.err = err
				break
			}
			o.moved = append(o.moved, v)
		}
		// The override reaches visibility after the batch: wait for the
		// query to stop matching, and keep the last count.
		_ = harness.WaitFor(ctx, 15*time.Second, 200*time.Millisecond, "old-version query to match none", func(ctx context.Context) (bool, error) {
			resp, err := m.c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: o.query})
			if err != nil {
				return false, err
			}
			o.remaining = int(resp.GetCount())
			return o.remaining == 0, nil
		})
	}
	if o.err == nil {
		for _, run := range m.batch {
			res, err := approveRun(ctx, m.c, run)
			o.runs = append(o.runs, outcome(run, m.startedOn[run], res, err))
		}
	}
	moved := make([]string, len(o.moved))
	for i, v := range o.moved {
		moved[i] = v.String()
	}
	harness.Decide(check, batchMovePredicate, o, fmt.Sprintf(
		"%d Approval runs started with v1 current, v2 current since. Batch %s (update options: pinned override to %s) over %q: %s, %d total, %d done, %d failed. "+
			"Runs after it: [%s]; the query then matched %d. Approved: %v%s",
		len(m.batch), jobID, m.d.versionString(buildV2), o.query, o.state, o.total, o.succeeded, o.failed, strings.Join(moved, "; "), o.remaining,
		outcomes(o.runs), errSuffix(o.err)),
		map[string]float64{"batch_total": float64(o.total), "batch_done": float64(o.succeeded), "batch_failed": float64(o.failed)})
}

// moveInBatch waits until the query matches every batch run, starts a batch
// setting a pinned override to v2 on each run it matches, and waits for the
// batch to finish (one batch runs per namespace at a time).
func (m *migration) moveInBatch(ctx context.Context, o *batchMove) (string, error) {
	err := harness.WaitFor(ctx, 15*time.Second, 200*time.Millisecond, "old-version query to match the batch runs", func(ctx context.Context) (bool, error) {
		resp, err := m.c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: o.query})
		return err == nil && resp.GetCount() == int64(len(m.batch)), err
	})
	if err != nil {
		return "", err
	}
	jobID := m.batchID + "-job"
	_, err = m.c.WorkflowService().StartBatchOperation(ctx, &workflowservice.StartBatchOperationRequest{
		Namespace: m.d.namespace, JobId: jobID, VisibilityQuery: o.query, Reason: "move runs left on v1 to v2",
		Operation: &workflowservice.StartBatchOperationRequest_UpdateWorkflowOptionsOperation{
			UpdateWorkflowOptionsOperation: &batchpb.BatchOperationUpdateWorkflowExecutionOptions{
				Identity: "durabench",
				WorkflowExecutionOptions: &workflowpb.WorkflowExecutionOptions{VersioningOverride: &workflowpb.VersioningOverride{
					Override: &workflowpb.VersioningOverride_Pinned{Pinned: &workflowpb.VersioningOverride_PinnedOverride{
						Behavior: workflowpb.VersioningOverride_PINNED_OVERRIDE_BEHAVIOR_PINNED,
						Version:  &deploymentpb.WorkerDeploymentVersion{DeploymentName: m.d.name, BuildId: buildV2},
					}},
				}},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"versioning_override"}},
			},
		},
	})
	if err != nil {
		return jobID, fmt.Errorf("start batch: %w", err)
	}
	err = harness.WaitFor(ctx, 30*time.Second, 200*time.Millisecond, "batch "+jobID+" to finish", func(ctx context.Context) (bool, error) {
		d, err := m.c.WorkflowService().DescribeBatchOperation(ctx, &workflowservice.DescribeBatchOperationRequest{Namespace: m.d.namespace, JobId: jobID})
		if err != nil {
			return false, err
		}
		o.state = strings.ToLower(strings.TrimPrefix(d.GetState().String(), "BATCH_OPERATION_STATE_"))
		o.total, o.succeeded, o.failed = d.GetTotalOperationCount(), d.GetCompleteOperationCount(), d.GetFailureOperationCount()
		return d.GetState() != enumspb.BATCH_OPERATION_STATE_RUNNING && d.GetState() != enumspb.BATCH_OPERATION_STATE_UNSPECIFIED, nil
	})
	return jobID, err
}

func (m *migration) testZeroDowntime(t *testing.T) {
	check := harness.Get(t).Check(t, "VR-03.zero-downtime")
	<-m.loadDone
	m.waitLoadRuns()
	o := loadRun{planned: loadStarts, switchErr: m.err}
	var errs []string
	for _, s := range m.load {
		ms := float64(s.latency.Microseconds()) / 1000
		switch {
		case s.err != nil:
			o.refused++
			errs = append(errs, "start: "+s.err.Error())
			continue
		case m.switchRequested.IsZero() || s.issued.Before(m.switchRequested):
			o.before = append(o.before, ms)
		case s.issued.Before(m.switchReady):
			o.during = append(o.during, ms)
		default:
			o.after = append(o.after, ms)
		}
		o.started++
		switch {
		case s.stuck:
			o.stuck++
			errs = append(errs, "stuck: "+s.runErr.Error())
		case s.runErr != nil:
			o.failed++
			errs = append(errs, "failed: "+s.runErr.Error())
		default:
			o.completed++
			switch s.res.Code {
			case buildV1:
				o.onOld++
			case buildV2:
				o.onNew++
			}
		}
	}
	before, during, after := stats.Summarize(o.before), stats.Summarize(o.during), stats.Summarize(o.after)
	detail := fmt.Sprintf("%d Quick starts, one every %s, on deployment %s; v2 made current once %d had been issued (switch and propagation took %d ms). "+
		"Started %d, refused %d; completed %d (%d on v1 code, %d on v2), failed %d, stuck %d. Start latency ms p50/p95: before %.1f/%.1f (n=%d), "+
		"during the switch %.1f/%.1f (n=%d), after %.1f/%.1f (n=%d)%s",
		loadStarts, loadEvery, m.d.name, loadBeforeSwitch, m.switchReady.Sub(m.switchRequested).Milliseconds(),
		o.started, o.refused, o.completed, o.onOld, o.onNew, o.failed, o.stuck,
		before.P50, before.P95, before.N, during.P50, during.P95, during.N, after.P50, after.P95, after.N, errSuffix(o.switchErr))
	if len(errs) > 0 {
		detail += "; first problem: " + errs[0]
	}
	metrics := map[string]float64{"started": float64(o.started), "refused": float64(o.refused), "failed": float64(o.failed), "stuck": float64(o.stuck),
		"switch_ms": float64(m.switchReady.Sub(m.switchRequested).Milliseconds())}
	maps.Copy(metrics, before.Metrics("start_before_ms"))
	maps.Copy(metrics, during.Metrics("start_during_ms"))
	maps.Copy(metrics, after.Metrics("start_after_ms"))
	harness.Decide(check, zeroDowntimePredicate, o, detail, metrics)
}

func (m *migration) testRollback(t *testing.T) {
	check := harness.Get(t).Check(t, "VR-03.rollback")
	ctx := harness.Context(t, time.Minute)
	o := rollbackRun{err: m.err}
	if o.err == nil {
		run, err := m.d.start(ctx, t, harness.UniqueID(t, "pinned-v2"), flows.Approval, "item")
		if err != nil {
			t.Fatalf("harness: %v", err)
		}
		if o.pinned, o.err = waitOnBuild(ctx, m.c, run, buildV2); o.err == nil {
			o.err = m.d.setCurrent(ctx, buildV1)
		}
		if o.err == nil {
			var info *deploymentpb.WorkerDeploymentInfo
			if info, o.err = m.d.describeRaw(ctx); o.err == nil {
				o.current = info.GetRoutingConfig().GetCurrentDeploymentVersion().GetBuildId()
			}
			o.fresh = m.d.quick(ctx, harness.UniqueID(t, "quick"))
			res, err := approveRun(ctx, m.c, run)
			o.old = outcome(run, o.pinned.Build, res, err)
		}
	}
	harness.Decide(check, rollbackPredicate, o, fmt.Sprintf(
		"with v2 current, an Approval run: %s; v1 set current again: current now %q; a new run: %s; the v2 run, approved after: %s%s",
		o.pinned, o.current, o.fresh, o.old, errSuffix(o.err)), nil)
}
