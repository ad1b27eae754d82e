package vr

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/harness/predicate"
	"github.com/durabench/durabench/scenarios/vr/flows"
	v1 "github.com/durabench/durabench/scenarios/vr/flows/v1"
	v2 "github.com/durabench/durabench/scenarios/vr/flows/v2"
)

// TestVR01Deployments measures VR-01 levels 4 and 5: versions kept apart by
// task queues of our own (a pattern), then by Worker Deployments on the
// server: a Pinned run staying on its build after v2 becomes current,
// AutoUpgrade runs moving, a ramp's share of new runs, and a version drained
// and deleted. Levels 2 and 3 are in vr01_versioning_test.go. The
// deployment checks use deployments of their own and run in parallel: each
// mostly waits for the server.
func TestVR01Deployments(t *testing.T) {
	t.Run("task_queue_routing", testQueueRouting)
	t.Run("pinned_build", func(t *testing.T) {
		testVersionSwitch(t, "VR-01.pinned-build", workflow.VersioningBehaviorPinned, pinnedPredicate)
	})
	t.Run("auto_upgrade", func(t *testing.T) {
		testVersionSwitch(t, "VR-01.auto-upgrade", workflow.VersioningBehaviorAutoUpgrade, autoUpgradePredicate)
	})
	t.Run("ramp", testRamp)
	t.Run("drain_and_retire", testDrainAndRetire)
}

// unversionedWorker starts an in-process worker on tq without deployment
// options, stopped at test end.
func unversionedWorker(t *testing.T, c client.Client, tq string, register func(worker.Registry)) {
	t.Helper()
	w := worker.New(c, tq, worker.Options{})
	register(w)
	if err := w.Start(); err != nil {
		t.Fatalf("harness: worker on %s: %v", tq, err)
	}
	t.Cleanup(w.Stop)
}

// outcome is a run's outcome from its result.
func outcome(run client.WorkflowRun, start string, res flows.Result, err error) runOutcome {
	return runOutcome{id: run.GetID(), start: start, code: res.Code, err: err}
}

func (r runOutcome) String() string {
	if r.err != nil {
		return "error: " + r.err.Error()
	}
	return "completed on " + r.code + " code"
}

// testQueueRouting: a v1 run waits for approval on the v1 queue; v2 is then
// deployed on a queue of its own and a new run starts there; both are
// approved.
func testQueueRouting(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "VR-01.task-queue-routing")
	ctx := harness.Context(t, time.Minute)
	c := env.Dial(t)
	o := queueRouting{oldQueue: harness.UniqueID(t, "tq-v1"), newQueue: harness.UniqueID(t, "tq-v2")}
	unversionedWorker(t, c, o.oldQueue, v1.Register)
	opts := func(tq string) client.StartWorkflowOptions {
		return client.StartWorkflowOptions{ID: harness.UniqueID(t, "approval"), TaskQueue: tq, WorkflowExecutionTimeout: 2 * time.Minute}
	}
	old, err := startRun(ctx, t, c, opts(o.oldQueue), flows.Approval, "laptop")
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	unversionedWorker(t, c, o.newQueue, v2.Register)
	fresh, err := startRun(ctx, t, c, opts(o.newQueue), flows.Approval, "phone")
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	queueOf := func(run client.WorkflowRun) string {
		d, err := c.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
		if err != nil {
			return "describe: " + err.Error()
		}
		return d.GetWorkflowExecutionInfo().GetTaskQueue()
	}
	o.old.start, o.fresh.start = queueOf(old), queueOf(fresh)
	res, err := approveRun(ctx, c, old)
	o.old = outcome(old, o.old.start, res, err)
	res, err = approveRun(ctx, c, fresh)
	o.fresh = outcome(fresh, o.fresh.start, res, err)
	harness.Decide(check, queueRoutingPredicate, o, fmt.Sprintf(
		"v1 workers on queue %s, an Approval run started there and left waiting; v2 workers then started on queue %s and a new run started there. "+
			"Old run: on queue %s, %s. New run: on queue %s, %s",
		o.oldQueue, o.newQueue, o.old.start, o.old, o.fresh.start, o.fresh), nil)
}

// testVersionSwitch: a deployment whose v1 and v2 workers default to
// behavior; v1 current, an Approval run started and left waiting; v2 made
// current; a new run started; the waiting run approved.
func testVersionSwitch(t *testing.T, id string, behavior workflow.VersioningBehavior, p *predicate.P[versionSwitch]) {
	t.Parallel()
	env := harness.Get(t)
	check := env.Check(t, id)
	ctx := harness.Context(t, 2*time.Minute)
	c := env.Dial(t)
	o := observeSwitch(ctx, t, c, env.Options.Namespace, behavior)
	detail := fmt.Sprintf("deployment %s, v1 and v2 workers with default behavior %s. Approval run on v1 (current): %s; "+
		"v2 set current (routing propagated): current now %q; a new run: %s; the first run, approved after the switch: %s, describe %s",
		o.name, o.behavior, o.before, o.current, o.fresh, o.old, o.after)
	if o.err != nil {
		detail += "; error: " + o.err.Error()
	}
	harness.Decide(check, p, o, detail, nil)
}

func observeSwitch(ctx context.Context, t *testing.T, c client.Client, namespace string, behavior workflow.VersioningBehavior) versionSwitch {
	d := newDeployment(t, c, namespace)
	o := versionSwitch{name: d.name, behavior: sdkBehaviorName(behavior)}
	for _, b := range []string{buildV1, buildV2} {
		if o.err = d.startVersion(ctx, t, b, behavior); o.err != nil {
			return o
		}
	}
	if o.err = d.setCurrent(ctx, buildV1); o.err != nil {
		return o
	}
	run, err := d.start(ctx, t, harness.UniqueID(t, "approval"), flows.Approval, "laptop")
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	if o.before, o.err = waitOnBuild(ctx, c, run, buildV1); o.err != nil {
		return o
	}
	if o.err = d.setCurrent(ctx, buildV2); o.err != nil {
		return o
	}
	info, err := d.describeRaw(ctx)
	if err != nil {
		o.err = err
		return o
	}
	o.current = info.GetRoutingConfig().GetCurrentDeploymentVersion().GetBuildId()
	o.fresh = d.quick(ctx, harness.UniqueID(t, "quick"))
	res, err := approveRun(ctx, c, run)
	o.old = outcome(run, o.before.Build, res, err)
	o.after, o.err = describeRun(ctx, c, run.GetID(), run.GetRunID())
	return o
}

// quick starts a Quick run and waits for its result. Quick runs end by
// themselves (or at their execution timeout), so none is terminated at test
// end.
func (d *deployment) quick(ctx context.Context, id string) runOutcome {
	run, err := d.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: d.tq, WorkflowExecutionTimeout: time.Minute}, flows.Quick, "item")
	if err != nil {
		return runOutcome{id: id, err: fmt.Errorf("start: %w", err)}
	}
	var res flows.Result
	err = harness.AwaitResult(ctx, run, &res)
	return outcome(run, "", res, err)
}

// Ramp: rampPercent of new runs should go to v2, judged over rampStarts
// runs (at least the catalog's 200: 300 puts the catalog's 10-point
// tolerance at 3.8 standard deviations of the binomial share, since the
// server picks by a hash of each random workflow id).
const (
	rampPercent = 30
	rampStarts  = 300
)

// testRamp: v1 current, v2 ramping at rampPercent; rampStarts Quick runs.
func testRamp(t *testing.T) {
	t.Parallel()
	env := harness.Get(t)
	check := env.Check(t, "VR-01.ramp")
	ctx := harness.Context(t, 2*time.Minute)
	c := env.Dial(t)
	d := newDeployment(t, c, env.Options.Namespace)
	o := rampShare{percent: rampPercent}
	for _, b := range []string{buildV1, buildV2} {
		if o.err = d.startVersion(ctx, t, b, workflow.VersioningBehaviorPinned); o.err != nil {
			break
		}
	}
	if o.err == nil {
		if o.err = d.setCurrent(ctx, buildV1); o.err == nil {
			o.err = d.setRamping(ctx, buildV2, rampPercent, buildV1)
		}
	}
	var failures []string
	if o.err == nil {
		outs := make([]runOutcome, rampStarts)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 25) // starts in flight: enough to keep the server busy, few enough not to starve the other checks
		for i := range outs {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				rctx, cancel := context.WithTimeout(ctx, time.Minute)
				defer cancel()
				outs[i] = d.quick(rctx, fmt.Sprintf("%s-ramp-%03d", d.name, i))
			}()
		}
		wg.Wait()
		o.starts = len(outs)
		for _, r := range outs {
			switch {
			case r.err != nil:
				o.failed++
				failures = append(failures, r.err.Error())
			case r.code == buildV2:
				o.onRamping++
			case r.code == buildV1:
				o.onCurrent++
			}
		}
	}
	detail := fmt.Sprintf("deployment %s: v1 current, v2 ramping at %d%%; %d Quick runs with random ids: %d on v2 (%.1f%%), %d on v1, %d failed",
		d.name, rampPercent, o.starts, o.onRamping, o.rampSharePercent(), o.onCurrent, o.failed)
	if len(failures) > 0 {
		detail += "; first failure: " + failures[0]
	}
	if o.err != nil {
		detail += "; error: " + o.err.Error()
	}
	harness.Decide(check, rampPredicate, o, detail, map[string]float64{
		"starts": float64(o.starts), "on_ramping": float64(o.onRamping), "ramp_share_pct": o.rampSharePercent(), "configured_pct": rampPercent,
	})
}

// retireConfig is the dedicated server's dynamic config for
// VR-01.drain-and-retire: drainage is first checked after the grace period
// and then every refresh interval (3 minutes each by default); a version
// with pollers seen within PollerHistoryTTL (5 minutes by default) cannot be
// deleted, and an idle poll lasts the long-poll expiration (1 minute), so
// polls are renewed every second to keep a running worker in that history.
var retireConfig = map[string]string{
	"matching.wv.VersionDrainageStatusVisibilityGracePeriod": "1s",
	"matching.wv.VersionDrainageStatusRefreshInterval":       "1s",
	"matching.PollerHistoryTTL":                              "3s",
	"matching.longPollExpirationInterval":                    "1s",
}

// testDrainAndRetire: on a dedicated server, v1 current with two pinned
// Approval runs; v2 made current and a v2 run left waiting; v1's drainage
// watched while its runs are open and after they are approved; v1 deleted
// while draining, while its worker polls, and after the worker stopped;
// then the v2 run approved and a new run started.
func testDrainAndRetire(t *testing.T) {
	t.Parallel()
	env := harness.Get(t)
	check := env.Check(t, "VR-01.drain-and-retire")
	if ok, why := env.CanKillServer(); !ok {
		check.NotMeasured("needs a dedicated server whose drainage intervals and poller history TTL are lowered: " + why)
		return
	}
	ctx := harness.Context(t, 2*time.Minute)
	srv := env.StartServer(t, harness.ServerOptions{DynamicConfig: retireConfig})
	check.OnServer(srv)
	c := srv.Dial(t)
	o, timings, err := observeRetirement(ctx, t, c)
	keys := slices.Sorted(maps.Keys(o.config))
	cfg := make([]string, len(keys))
	for i, k := range keys {
		cfg[i] = k + "=" + o.config[k]
	}
	runs := make([]string, len(o.runs))
	for i, r := range o.runs {
		runs[i] = fmt.Sprintf("%s (want %s) %s", r.id, o.want[i], r)
	}
	detail := fmt.Sprintf("dedicated server with %s. v1 after v2 became current, its %d pinned runs open: %s (after %.0f ms); "+
		"DeleteVersion then: %v. Runs approved; v1 then: %s (after %.0f ms more); DeleteVersion with v1's worker still polling: %v. "+
		"Worker stopped; DeleteVersion %d call(s) over %.0f ms, last: %v; v1 still listed: %v. Runs: %s",
		strings.Join(cfg, ", "), o.pinned, o.whileOpen, timings["draining_ms"], errText(o.deleteDraining), o.afterClose, timings["drained_ms"],
		errText(o.deletePolled), o.deleteAttempts, timings["delete_ms"], errText(o.deleteErr), o.stillListed, strings.Join(runs, "; "))
	if err != nil {
		detail += "; stopped by: " + err.Error()
	}
	harness.Decide(check, retirePredicate, o, detail, timings)
}

func errText(err error) string {
	if err == nil {
		return "accepted"
	}
	return "refused: " + err.Error()
}

// observeRetirement returns what it saw, the times it waited (ms), and the
// error that stopped it early, if any.
func observeRetirement(ctx context.Context, t *testing.T, c client.Client) (retirement, map[string]float64, error) {
	o := retirement{config: retireConfig, pinned: 2}
	timings := map[string]float64{}
	d := newDeployment(t, c, "default")
	for _, b := range []string{buildV1, buildV2} {
		if err := d.startVersion(ctx, t, b, workflow.VersioningBehaviorPinned); err != nil {
			return o, timings, err
		}
	}
	if err := d.setCurrent(ctx, buildV1); err != nil {
		return o, timings, err
	}
	var pinned []client.WorkflowRun
	var startedOn []string
	for range o.pinned {
		run, err := d.start(ctx, t, harness.UniqueID(t, "approval"), flows.Approval, "laptop")
		if err != nil {
			t.Fatalf("harness: %v", err)
		}
		v, err := waitOnBuild(ctx, c, run, buildV1)
		if err != nil {
			return o, timings, err
		}
		pinned = append(pinned, run)
		startedOn = append(startedOn, v.Build)
	}
	if err := d.setCurrent(ctx, buildV2); err != nil {
		return o, timings, err
	}
	// The version reports draining once it stops being current; the first
	// visibility check, after the grace period, must keep it draining since
	// its pinned runs are open.
	since := time.Now()
	waitErr := harness.WaitFor(ctx, 20*time.Second, 100*time.Millisecond, "v1 draining, checked once", func(ctx context.Context) (bool, error) {
		desc, err := d.h.DescribeVersion(ctx, client.WorkerDeploymentDescribeVersionOptions{BuildID: buildV1})
		if err != nil {
			return false, err
		}
		di := desc.Info.DrainageInfo
		if di == nil {
			return false, nil
		}
		o.whileOpen = drainageName(di.DrainageStatus)
		return di.LastCheckedTime.After(di.LastChangedTime) || o.whileOpen != "draining", nil
	})
	timings["draining_ms"] = float64(time.Since(since).Milliseconds())
	if waitErr != nil {
		return o, timings, waitErr
	}
	_, o.deleteDraining = d.h.DeleteVersion(ctx, client.WorkerDeploymentDeleteVersionOptions{BuildID: buildV1})
	waiting, err := d.start(ctx, t, harness.UniqueID(t, "approval-v2"), flows.Approval, "phone")
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	for i, run := range pinned {
		res, err := approveRun(ctx, c, run)
		o.runs = append(o.runs, outcome(run, startedOn[i], res, err))
		o.want = append(o.want, buildV1)
	}
	since = time.Now()
	waitErr = harness.WaitFor(ctx, 30*time.Second, 200*time.Millisecond, "v1 drained", func(ctx context.Context) (bool, error) {
		var err error
		o.afterClose, err = d.drainage(ctx, buildV1)
		return o.afterClose == "drained", err
	})
	timings["drained_ms"] = float64(time.Since(since).Milliseconds())
	if waitErr != nil {
		return o, timings, waitErr
	}
	_, o.deletePolled = d.h.DeleteVersion(ctx, client.WorkerDeploymentDeleteVersionOptions{BuildID: buildV1})
	d.stopVersion(buildV1)
	since = time.Now()
	waitErr = harness.WaitFor(ctx, 30*time.Second, 250*time.Millisecond, "v1 deleted", func(ctx context.Context) (bool, error) {
		o.deleteAttempts++
		_, o.deleteErr = d.h.DeleteVersion(ctx, client.WorkerDeploymentDeleteVersionOptions{BuildID: buildV1})
		return o.deleteErr == nil, nil
	})
	timings["delete_ms"] = float64(time.Since(since).Milliseconds())
	timings["delete_attempts"] = float64(o.deleteAttempts)
	if waitErr == nil {
		o.stillListed, waitErr = d.listed(ctx, buildV1)
	}
	res, err := approveRun(ctx, c, waiting)
	o.runs = append(o.runs, outcome(waiting, "", res, err))
	o.want = append(o.want, buildV2)
	after := d.quick(ctx, harness.UniqueID(t, "quick"))
	o.runs = append(o.runs, after)
	o.want = append(o.want, buildV2)
	return o, timings, waitErr
}
