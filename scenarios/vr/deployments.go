package vr

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	deploymentpb "go.temporal.io/api/deployment/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/scenarios/vr/flows"
	v1 "github.com/durabench/durabench/scenarios/vr/flows/v1"
	v2 "github.com/durabench/durabench/scenarios/vr/flows/v2"
)

// Build ids of the two versions: each version's worker runs that package's
// code, so a result's Code names the build that ran it.
const (
	buildV1 = v1.Code
	buildV2 = v2.Code
)

// UpgradeLoop is the workflow type of upgradeLoop.
const UpgradeLoop = "UpgradeLoop"

// registerVersion registers the code of build (buildV1 or buildV2) with r:
// the flows workflows and activities, and UpgradeLoop.
func registerVersion(r worker.Registry, build string) {
	switch build {
	case buildV1:
		v1.Register(r)
	case buildV2:
		v2.Register(r)
	default:
		panic("vr: no code for build " + build) // a harness fault: a test named an unknown build
	}
	r.RegisterWorkflowWithOptions(upgradeLoop(build), workflow.RegisterOptions{Name: UpgradeLoop})
}

// upgradeLoop is the body of UpgradeLoop in the version whose code is code.
// It is flows.Loop but for one option: it continues as new with
// InitialVersioningBehavior AutoUpgrade, so that the next run of a Pinned
// chain starts on the deployment's current version. flows.Loop continues as
// new with the SDK's default, under which the next run of a Pinned run stays
// pinned to the same version, so a Pinned chain would never move.
func upgradeLoop(code string) func(workflow.Context, flows.LoopState) (flows.LoopState, error) {
	return func(ctx workflow.Context, st flows.LoopState) (flows.LoopState, error) {
		if st.Every < 1 {
			return st, temporal.NewNonRetryableApplicationError("LoopState.Every must be at least 1", "BadLoopState", nil)
		}
		ticks := workflow.GetSignalChannel(ctx, flows.SignalTick)
		for i := 0; i < st.Every && st.Iterations < st.Target; i++ {
			if st.Pending > 0 {
				st.Pending--
			} else {
				ticks.Receive(ctx, nil)
			}
			st.Iterations++
		}
		st.Codes = append(st.Codes, code)
		if st.Iterations >= st.Target {
			return st, nil
		}
		for ticks.ReceiveAsync(nil) {
			st.Pending++
		}
		return st, workflow.NewContinueAsNewErrorWithOptions(ctx, workflow.ContinueAsNewErrorOptions{
			InitialVersioningBehavior: workflow.ContinueAsNewVersioningBehaviorAutoUpgrade,
		}, UpgradeLoop, st)
	}
}

// deployment is one Worker Deployment of a test. Its versions are served by
// in-process workers polling one task queue, each with DeploymentOptions
// naming its version and a default versioning behavior.
type deployment struct {
	c         client.Client
	namespace string
	name      string
	tq        string
	h         client.WorkerDeploymentHandle
	workers   map[string]worker.Worker // by build id
}

// newDeployment names a deployment unique to this test (the server refuses
// '.' and ':' in deployment names; harness ids have neither).
func newDeployment(t *testing.T, c client.Client, namespace string) *deployment {
	name := harness.UniqueID(t, "dep")
	return &deployment{
		c: c, namespace: namespace, name: name, tq: harness.TaskQueue(t),
		h: c.WorkerDeploymentClient().GetHandle(name), workers: map[string]worker.Worker{},
	}
}

func (d *deployment) version(build string) worker.WorkerDeploymentVersion {
	return worker.WorkerDeploymentVersion{DeploymentName: d.name, BuildID: build}
}

// versionString is the deployment version as the server writes it into the
// TemporalWorkerDeploymentVersion search attribute: "<deployment>:<build>".
func (d *deployment) versionString(build string) string { return d.name + ":" + build }

// startVersion starts a worker of build whose workflows default to
// behavior, stopped at the end of the test, and waits until the deployment
// lists the version (the server registers a version at its workers' first
// poll).
func (d *deployment) startVersion(ctx context.Context, t *testing.T, build string, behavior workflow.VersioningBehavior) error {
	t.Helper()
	w := worker.New(d.c, d.tq, worker.Options{
		DeploymentOptions: worker.DeploymentOptions{
			UseVersioning:             true,
			Version:                   d.version(build),
			DefaultVersioningBehavior: behavior,
		},
	})
	registerVersion(w, build)
	if err := w.Start(); err != nil {
		t.Fatalf("harness: worker %s of %s: %v", build, d.name, err)
	}
	t.Cleanup(w.Stop)
	d.workers[build] = w
	return harness.WaitFor(ctx, 30*time.Second, 100*time.Millisecond, "version "+d.versionString(build)+" listed",
		func(ctx context.Context) (bool, error) { return d.listed(ctx, build) })
}

// stopVersion stops build's worker.
func (d *deployment) stopVersion(build string) {
	if w, ok := d.workers[build]; ok {
		w.Stop()
	}
}

// setCurrent makes build the current version and waits until the new
// routing config has reached every task queue of the deployment.
func (d *deployment) setCurrent(ctx context.Context, build string) error {
	desc, err := d.h.Describe(ctx, client.WorkerDeploymentDescribeOptions{})
	if err != nil {
		return fmt.Errorf("describe %s: %w", d.name, err)
	}
	if _, err := d.h.SetCurrentVersion(ctx, client.WorkerDeploymentSetCurrentVersionOptions{
		BuildID: build, ConflictToken: desc.ConflictToken,
	}); err != nil {
		return fmt.Errorf("set current version %s: %w", d.versionString(build), err)
	}
	return d.waitRouting(ctx, build, "")
}

// setRamping makes build the ramping version at pct percent and waits until
// the routing config has reached every task queue.
func (d *deployment) setRamping(ctx context.Context, build string, pct float32, current string) error {
	desc, err := d.h.Describe(ctx, client.WorkerDeploymentDescribeOptions{})
	if err != nil {
		return fmt.Errorf("describe %s: %w", d.name, err)
	}
	if _, err := d.h.SetRampingVersion(ctx, client.WorkerDeploymentSetRampingVersionOptions{
		BuildID: build, Percentage: pct, ConflictToken: desc.ConflictToken,
	}); err != nil {
		return fmt.Errorf("set ramping version %s at %g%%: %w", d.versionString(build), pct, err)
	}
	return d.waitRouting(ctx, current, build)
}

// describeTimeout bounds one DescribeWorkerDeployment call while waiting:
// on this machine it answers in milliseconds, so 10 s is a hung call.
const describeTimeout = 10 * time.Second

// waitRouting waits until the deployment's routing config names current and
// ramping ("" for none) and reports its propagation to the task queues
// completed: until then matching may still route by the previous config.
// The SDK's Describe does not carry the propagation state, so this asks the
// workflow service.
func (d *deployment) waitRouting(ctx context.Context, current, ramping string) error {
	last := "nothing"
	err := harness.WaitFor(ctx, time.Minute, 100*time.Millisecond,
		fmt.Sprintf("routing of %s (current %q, ramping %q) propagated", d.name, current, ramping),
		func(ctx context.Context) (bool, error) {
			// One hung describe must not use up the whole wait: each call
			// gets describeTimeout and a failed one is retried.
			callCtx, cancel := context.WithTimeout(ctx, describeTimeout)
			defer cancel()
			info, err := d.describeRaw(callCtx)
			if err != nil {
				last = err.Error()
				return false, nil
			}
			rc := info.GetRoutingConfig()
			last = fmt.Sprintf("current %q, ramping %q, %s", rc.GetCurrentDeploymentVersion().GetBuildId(),
				rc.GetRampingDeploymentVersion().GetBuildId(), info.GetRoutingConfigUpdateState())
			return rc.GetCurrentDeploymentVersion().GetBuildId() == current &&
				rc.GetRampingDeploymentVersion().GetBuildId() == ramping &&
				info.GetRoutingConfigUpdateState() == enumspb.ROUTING_CONFIG_UPDATE_STATE_COMPLETED, nil
		})
	if err != nil {
		return fmt.Errorf("%w (last seen: %s)", err, last)
	}
	return nil
}

func (d *deployment) describeRaw(ctx context.Context) (*deploymentpb.WorkerDeploymentInfo, error) {
	resp, err := d.c.WorkflowService().DescribeWorkerDeployment(ctx, &workflowservice.DescribeWorkerDeploymentRequest{
		Namespace: d.namespace, DeploymentName: d.name,
	})
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", d.name, err)
	}
	return resp.GetWorkerDeploymentInfo(), nil
}

// drainage is the drainage status DescribeVersion reports for build
// ("" while it is current or ramping, which carry none).
func (d *deployment) drainage(ctx context.Context, build string) (string, error) {
	desc, err := d.h.DescribeVersion(ctx, client.WorkerDeploymentDescribeVersionOptions{BuildID: build})
	if err != nil {
		return "", err
	}
	if desc.Info.DrainageInfo == nil {
		return "", nil
	}
	return drainageName(desc.Info.DrainageInfo.DrainageStatus), nil
}

func drainageName(s client.WorkerDeploymentVersionDrainageStatus) string {
	switch s {
	case client.WorkerDeploymentVersionDrainageStatusDraining:
		return "draining"
	case client.WorkerDeploymentVersionDrainageStatusDrained:
		return "drained"
	}
	return "unspecified"
}

// listed reports whether the deployment lists build among its versions. A
// deployment that does not exist yet (the server creates it at its first
// worker's first poll) lists none.
func (d *deployment) listed(ctx context.Context, build string) (bool, error) {
	desc, err := d.h.Describe(ctx, client.WorkerDeploymentDescribeOptions{})
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return false, nil
		}
		return false, err
	}
	return slices.ContainsFunc(desc.Info.VersionSummaries, func(s client.WorkerDeploymentVersionSummary) bool {
		return s.Version.BuildID == build
	}), nil
}

// start starts workflow typ on the deployment's task queue; a run left open
// is terminated at test end.
func (d *deployment) start(ctx context.Context, t *testing.T, id, typ string, arg any) (client.WorkflowRun, error) {
	return startRun(ctx, t, d.c, client.StartWorkflowOptions{ID: id, TaskQueue: d.tq, WorkflowExecutionTimeout: 5 * time.Minute}, typ, arg)
}

func startRun(ctx context.Context, t *testing.T, c client.Client, o client.StartWorkflowOptions, typ string, arg any) (client.WorkflowRun, error) {
	run, err := c.ExecuteWorkflow(ctx, o, typ, arg)
	if err != nil {
		return nil, fmt.Errorf("start %s %s: %w", typ, o.ID, err)
	}
	t.Cleanup(func() {
		_ = c.TerminateWorkflow(context.Background(), run.GetID(), run.GetRunID(), "test cleanup")
	})
	return run, nil
}

// runVersioning is where a run stands, as DescribeWorkflowExecution reports
// it: the version that completed its last workflow task and the behavior it
// declared, and any override.
type runVersioning struct {
	Build    string // build id of the run's deployment version; "" before its first workflow task completes
	Behavior string // "pinned", "auto-upgrade" or "" (unversioned or not yet known)
	Override string // build id of a pinned override, "auto-upgrade" for an auto-upgrade override, "" for none
	Status   enumspb.WorkflowExecutionStatus
}

func (v runVersioning) String() string {
	s := fmt.Sprintf("%s on %q", v.Behavior, v.Build)
	if v.Override != "" {
		s += ", override " + v.Override
	}
	return s
}

func describeRun(ctx context.Context, c client.Client, id, runID string) (runVersioning, error) {
	desc, err := c.DescribeWorkflowExecution(ctx, id, runID)
	if err != nil {
		return runVersioning{}, err
	}
	info := desc.GetWorkflowExecutionInfo()
	vi := info.GetVersioningInfo()
	v := runVersioning{Build: vi.GetDeploymentVersion().GetBuildId(), Behavior: behaviorName(vi.GetBehavior()), Status: info.GetStatus()}
	switch o := vi.GetVersioningOverride(); {
	case o.GetPinned() != nil:
		v.Override = o.GetPinned().GetVersion().GetBuildId()
	case o.GetAutoUpgrade():
		v.Override = "auto-upgrade"
	}
	return v, nil
}

func sdkBehaviorName(b workflow.VersioningBehavior) string {
	switch b {
	case workflow.VersioningBehaviorPinned:
		return "pinned"
	case workflow.VersioningBehaviorAutoUpgrade:
		return "auto-upgrade"
	}
	return ""
}

func behaviorName(b enumspb.VersioningBehavior) string {
	switch b {
	case enumspb.VERSIONING_BEHAVIOR_PINNED:
		return "pinned"
	case enumspb.VERSIONING_BEHAVIOR_AUTO_UPGRADE:
		return "auto-upgrade"
	}
	return ""
}

// waitOnBuild waits until a run has completed a workflow task on build (it
// is then routed, and a Pinned run pinned, to that version).
func waitOnBuild(ctx context.Context, c client.Client, run client.WorkflowRun, build string) (runVersioning, error) {
	var v runVersioning
	err := harness.WaitFor(ctx, 30*time.Second, 100*time.Millisecond, "run "+run.GetID()+" on build "+build,
		func(ctx context.Context) (bool, error) {
			var err error
			v, err = describeRun(ctx, c, run.GetID(), run.GetRunID())
			return err == nil && v.Build == build, err
		})
	return v, err
}

// approveRun signals an Approval run to finish and waits for its result.
func approveRun(ctx context.Context, c client.Client, run client.WorkflowRun) (flows.Result, error) {
	var res flows.Result
	if err := c.SignalWorkflow(ctx, run.GetID(), run.GetRunID(), flows.SignalApprove, "operator"); err != nil {
		return res, fmt.Errorf("signal %s: %w", run.GetID(), err)
	}
	err := harness.AwaitResult(ctx, run, &res)
	return res, err
}
