package op

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/harness/evidence"
)

// TestOP01 measures the deployment models: the server embedded in the one
// durabench binary (SQLite in memory), the same server on a SQLite file
// keeping a run across a clean restart, and the reference scenario run
// unchanged against a server named only by the environment.
func TestOP01(t *testing.T) {
	t.Run("embedded_binary", testOP01EmbeddedBinary)
	t.Run("persistent_restart", testOP01PersistentRestart)
	t.Run("external_server", testOP01ExternalServer)
	t.Run("services_split", testOP01ServicesSplit)
}

// testOP01ServicesSplit runs each of the server's four services in a
// process of its own, members of one cluster on one PostgreSQL store, and
// completes the reference workflow through the frontend process.
func testOP01ServicesSplit(t *testing.T) {
	env := harness.Get(t)
	chk := env.Check(t, "OP-01.services-split")
	if env.External {
		chk.NotMeasured(deployNoServer(env))
		return
	}
	if ok, why := env.BackendAvailable(harness.PostgreSQL); !ok {
		chk.NotMeasured(why)
		return
	}
	began := time.Now()
	front := env.StartServer(t, harness.ServerOptions{Backend: harness.PostgreSQL, Services: []string{"frontend"}})
	procs := []*harness.Server{front}
	for _, svc := range []string{"history", "matching", "worker"} {
		procs = append(procs, env.StartServer(t, harness.ServerOptions{ShareDatabaseOf: front, Services: []string{svc}, FrontendAddress: front.Address()}))
	}
	o := deploySplit{ready: time.Since(began), want: deployFlowWant("split")}
	for _, p := range procs {
		info := p.Info()
		o.procs = append(o.procs, deployProc{pid: p.PID(), announced: info.PID, services: info.Services, membership: info.Membership})
	}
	o.persistence = front.Info().Persistence
	ctx := harness.Context(t, 2*time.Minute)
	began = time.Now()
	run, res, err := deployReference(ctx, t, front.Dial(t), "split")
	o.took, o.result, o.err = time.Since(began), res, err
	if run != nil {
		o.runID = run.GetRunID()
	}
	harness.Decide(chk, deploySplitPredicate, o, o.describe(), map[string]float64{"ready_s": o.ready.Seconds(), "workflow_s": o.took.Seconds()})
}

// deployExternalNS is the namespace the external-server child is pointed
// at: not default, so that a run landing in default shows the setting was
// ignored.
const deployExternalNS = "deploy-external"

// deployProbeEnv, set in the child of OP-01.external-server, names the file
// where TestOP01ExternalProbe writes what it observed; unset, it skips.
const deployProbeEnv = "DURABENCH_OP01_PROBE"

// deployNoServer is the reason OP-01's checks cannot be measured when the
// package itself runs against an external server: each needs a server the
// harness starts from the durabench binary.
func deployNoServer(env *harness.Env) string {
	return fmt.Sprintf("the package runs against an external server (%s=%s), so the harness starts no server from the durabench binary",
		harness.EnvAddress, env.Options.HostPort)
}

// deployBinary is the durabench binary srv runs from, as an absolute path
// with symlinks followed.
func deployBinary(srv *harness.Server) (string, error) {
	abs, err := filepath.Abs(srv.Binary())
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}

// deployWorker starts an in-process worker of OP-01's workflows on tq,
// stopped at test end; the returned function stops it earlier.
func deployWorker(t *testing.T, c client.Client, tq string) func() {
	t.Helper()
	w := worker.New(c, tq, worker.Options{})
	registerDeploy(w)
	if err := w.Start(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			w.Stop()
		}
	}
	t.Cleanup(stop)
	return stop
}

// deployReference runs the reference scenario on c: a worker on a fresh task
// queue, a deployFlow run, its result. The embedded-binary check and the
// external probe both run exactly this.
func deployReference(ctx context.Context, t *testing.T, c client.Client, name string) (client.WorkflowRun, string, error) {
	t.Helper()
	tq := harness.TaskQueue(t)
	deployWorker(t, c, tq)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: harness.UniqueID(t, "deploy"), TaskQueue: tq, WorkflowExecutionTimeout: time.Minute,
	}, deployFlowType, name)
	if err != nil {
		return nil, "", fmt.Errorf("start: %w", err)
	}
	var res string
	err = run.Get(ctx, &res)
	return run, res, err
}

func testOP01EmbeddedBinary(t *testing.T) {
	env := harness.Get(t)
	chk := env.Check(t, "OP-01.embedded-binary")
	if env.External {
		chk.NotMeasured(deployNoServer(env))
		return
	}
	began := time.Now()
	srv := env.StartServer(t, harness.ServerOptions{InMemory: true})
	bin, err := deployBinary(srv)
	if err != nil {
		t.Fatalf("durabench binary: %v", err)
	}
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatalf("durabench binary: %v", err)
	}
	startTook := time.Since(began)
	info := srv.Info()
	o := deployEmbedded{bin: bin, childPID: srv.PID(), announcedPID: info.PID, persistence: info.Persistence,
		infoVersion: info.ServerVersion, want: deployFlowWant("embedded")}
	exe, exeErr := os.Readlink(fmt.Sprintf("/proc/%d/exe", o.childPID))
	o.exe = exe
	if exeErr != nil {
		o.exe = "unreadable: " + exeErr.Error()
	}
	ctx := harness.Context(t, time.Minute)
	c := srv.Dial(t)
	sys, sysErr := c.WorkflowService().GetSystemInfo(ctx, &workflowservice.GetSystemInfoRequest{})
	o.systemVersion = sys.GetServerVersion()
	began = time.Now()
	run, res, runErr := deployReference(ctx, t, c, "embedded")
	runTook := time.Since(began)
	o.result, o.err = res, errors.Join(runErr, sysErr)
	runDesc := "not started"
	if run != nil {
		events, err := harness.History(ctx, c, run.GetID(), run.GetRunID())
		if err != nil {
			t.Fatal(err)
		}
		o.activities = harness.EventCounts(events)[enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED]
		runDesc = fmt.Sprintf("run %s/%s: %d events, %d ActivityTaskCompleted", run.GetID(), harness.ShortID(run.GetRunID()), len(events), o.activities)
	}
	mb := float64(st.Size()) / 1e6
	harness.Decide(chk, deployEmbeddedPredicate, o, fmt.Sprintf(
		"binary %s (%.1f MB); server process pid %d, /proc/%d/exe = %s, announced pid %d; persistence %q; "+
			"server version announced %q, GetSystemInfo %q; ready after %.1fs; %s; result %q (want %q) in %.2fs, error: %v",
		bin, mb, o.childPID, o.childPID, o.exe, o.announcedPID, o.persistence, o.infoVersion, o.systemVersion,
		startTook.Seconds(), runDesc, o.result, o.want, runTook.Seconds(), o.err),
		map[string]float64{"binary_mb": mb, "server_ready_s": startTook.Seconds(), "workflow_s": runTook.Seconds()})
}

func testOP01PersistentRestart(t *testing.T) {
	env := harness.Get(t)
	chk := env.Check(t, "OP-01.persistent-restart")
	if env.External {
		chk.NotMeasured(deployNoServer(env))
		return
	}
	srv := env.StartServer(t, harness.ServerOptions{})
	ctx := harness.Context(t, 2*time.Minute)
	o, detail := deployRestartRun(ctx, t, srv)
	harness.Decide(chk, deployRestartPredicate, o, detail.String(), detail.metrics)
}

// deployRestartDetail collects what the restart check observed, in order.
type deployRestartDetail struct {
	parts   []string
	metrics map[string]float64
}

func (d *deployRestartDetail) add(format string, a ...any) {
	d.parts = append(d.parts, fmt.Sprintf(format, a...))
}
func (d *deployRestartDetail) String() string { return strings.Join(d.parts, "; ") }

// deployRestartRun starts a deployAwait run on srv, stops the server cleanly
// once the run waits for its signal (its first activity done), restarts it
// on the same file, and finishes the run through a new client and worker, so
// that nothing but the server's database carries the run across.
func deployRestartRun(ctx context.Context, t *testing.T, srv *harness.Server) (deployRestart, *deployRestartDetail) {
	const name, sig = "restart", "go"
	d := &deployRestartDetail{metrics: map[string]float64{}}
	o := deployRestart{persistence: srv.Info().Persistence, pidBefore: srv.PID(), want: deployAwaitWant(name, sig)}
	d.add("server pid %d, persistence %q", o.pidBefore, o.persistence)
	c := srv.Dial(t)
	tq := harness.TaskQueue(t)
	stopWorker := deployWorker(t, c, tq)
	id := harness.UniqueID(t, "deploy")
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: tq, WorkflowExecutionTimeout: 2 * time.Minute}, deployAwaitType, name)
	if err != nil {
		o.err = fmt.Errorf("start: %w", err)
		d.add("start: %v", err)
		return o, d
	}
	o.runID = run.GetRunID()
	// The run waits for the signal once the workflow task after its
	// activity's completion has completed.
	if err := harness.WaitFor(ctx, 30*time.Second, 50*time.Millisecond, "the run waiting for its signal", func(ctx context.Context) (bool, error) {
		events, err := harness.History(ctx, c, id, o.runID)
		if err != nil {
			return false, err
		}
		o.before = deployEventTypes(events)
		return deployWaitingForSignal(o.before), nil
	}); err != nil {
		o.err = err
		d.add("run %s/%s before the stop: %v (history %v)", id, harness.ShortID(o.runID), err, o.before)
		return o, d
	}
	d.add("run %s/%s waiting for its signal with %d events (%s)", id, harness.ShortID(o.runID), len(o.before), deployEventNames(o.before))
	stopWorker()
	began := time.Now()
	o.stopErr = srv.Stop()
	stopTook := time.Since(began)
	db := strings.TrimPrefix(o.persistence, "sqlite file ")
	size := "no file"
	if st, err := os.Stat(db); err == nil {
		size = fmt.Sprintf("%d bytes", st.Size())
	}
	d.add("SIGTERM: exited in %.2fs (error: %v), database file %s", stopTook.Seconds(), o.stopErr, size)
	began = time.Now()
	o.restartErr = srv.Restart()
	restartTook := time.Since(began)
	d.metrics["stop_s"], d.metrics["restart_s"] = stopTook.Seconds(), restartTook.Seconds()
	if o.restartErr != nil {
		d.add("restart: %v", o.restartErr)
		return o, d
	}
	o.pidAfter, o.persistenceAfter = srv.PID(), srv.Info().Persistence
	d.add("restarted as pid %d in %.2fs, persistence %q", o.pidAfter, restartTook.Seconds(), o.persistenceAfter)

	c2 := srv.Dial(t)
	desc, err := c2.DescribeWorkflowExecution(ctx, id, "")
	o.describeErr = err
	o.runIDAfter = desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	o.statusAfter = desc.GetWorkflowExecutionInfo().GetStatus()
	if err != nil {
		d.add("describe after the restart: %v", err)
		o.err = err
		return o, d
	}
	events, err := harness.History(ctx, c2, id, o.runID)
	if err != nil {
		d.add("history after the restart: %v", err)
		o.err = err
		return o, d
	}
	o.after = deployEventTypes(events)
	d.add("describe after the restart: run %s, %s; history %d events", harness.ShortID(o.runIDAfter), o.statusAfter, len(o.after))
	deployWorker(t, c2, tq)
	began = time.Now()
	if err := c2.SignalWorkflow(ctx, id, o.runID, deploySignal, sig); err != nil {
		o.err = fmt.Errorf("signal: %w", err)
		d.add("signal: %v", err)
		return o, d
	}
	o.err = c2.GetWorkflow(ctx, id, o.runID).Get(ctx, &o.result)
	d.metrics["complete_after_signal_s"] = time.Since(began).Seconds()
	d.add("signalled %q through a new client and worker: result %q (want %q) after %.2fs, error: %v",
		sig, o.result, o.want, time.Since(began).Seconds(), o.err)
	return o, d
}

// deployWaitingForSignal reports whether a deployAwait history shows the
// first activity completed and the workflow task after it completed (the
// run now blocks on its signal).
func deployWaitingForSignal(types []enumspb.EventType) bool {
	activityDone := false
	for _, ty := range types {
		switch {
		case ty == enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			activityDone = true
		case activityDone && ty == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			return true
		}
	}
	return false
}

// deployEventTypes is a history's event types, in order.
func deployEventTypes(events []*historypb.HistoryEvent) []enumspb.EventType {
	out := make([]enumspb.EventType, len(events))
	for i, ev := range events {
		out[i] = ev.GetEventType()
	}
	return out
}

// deployEventNames lists event types without their EVENT_TYPE_ prefix.
func deployEventNames(types []enumspb.EventType) string {
	names := make([]string, len(types))
	for i, ty := range types {
		names[i] = strings.TrimPrefix(ty.String(), "EVENT_TYPE_")
	}
	return strings.Join(names, ",")
}

// deployProbeReport is what TestOP01ExternalProbe writes for its parent.
type deployProbeReport struct {
	Address    string `json:"address"`
	Namespace  string `json:"namespace"`
	External   bool   `json:"external"`
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	Result     string `json:"result"`
	Error      string `json:"error,omitempty"`
}

// TestOP01ExternalProbe runs the reference scenario exactly as a package
// running against an external server does: env.Dial, whose options the
// harness took from the environment (envconfig). OP-01.external-server runs
// it in a child process of this test binary; anywhere else it skips.
func TestOP01ExternalProbe(t *testing.T) {
	out := os.Getenv(deployProbeEnv)
	if out == "" {
		t.Skipf("runs only as the child process of OP-01.external-server (%s unset)", deployProbeEnv)
	}
	env := harness.Get(t)
	ctx := harness.Context(t, time.Minute)
	rep := deployProbeReport{Address: env.Options.HostPort, Namespace: env.Options.Namespace, External: env.External}
	run, res, err := deployReference(ctx, t, env.Dial(t), "external")
	if run != nil {
		rep.WorkflowID, rep.RunID = run.GetID(), run.GetRunID()
	}
	rep.Result = res
	if err != nil {
		rep.Error = err.Error()
	}
	b, merr := json.Marshal(rep)
	if merr != nil {
		t.Fatal(merr)
	}
	if werr := os.WriteFile(out, b, 0o644); werr != nil {
		t.Fatal(werr)
	}
	if err != nil || res != deployFlowWant("external") {
		t.Errorf("reference scenario on %s, namespace %s: result %q, error: %v", rep.Address, rep.Namespace, res, err)
	}
}

func testOP01ExternalServer(t *testing.T) {
	env := harness.Get(t)
	chk := env.Check(t, "OP-01.external-server")
	if env.External {
		chk.NotMeasured(deployNoServer(env) + " to point a child at")
		return
	}
	srv := env.StartServer(t, harness.ServerOptions{InMemory: true, Namespaces: []string{"default", deployExternalNS}})
	bin, err := deployBinary(srv)
	if err != nil {
		t.Fatalf("durabench binary: %v", err)
	}
	dir := env.Scratch(t)
	evDir, probeOut, logPath := filepath.Join(dir, "evidence"), filepath.Join(dir, "probe.json"), filepath.Join(dir, "child.log")
	o := deployExternal{address: srv.Address(), namespace: deployExternalNS, exitCode: -1, want: deployFlowWant("external")}

	// The child inherits this environment but no TEMPORAL_* setting of its
	// own, and no envconfig profile file: the server and namespace reach it
	// through these two variables only.
	childEnv := map[string]string{
		harness.EnvAddress:     o.address,
		"TEMPORAL_NAMESPACE":   o.namespace,
		"TEMPORAL_CONFIG_FILE": filepath.Join(dir, "no-such-profile.toml"),
		harness.EnvEvidenceDir: evDir,
		harness.EnvBinary:      bin,
		deployProbeEnv:         probeOut,
	}
	ctx := harness.Context(t, 2*time.Minute)
	args := []string{"-test.run=^TestOP01ExternalProbe$", "-test.count=1", "-test.v", "-test.timeout=90s"}
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = deployChildEnv(os.Environ(), childEnv)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 10 * time.Second
	began := time.Now()
	out, runErr := cmd.CombinedOutput()
	took := time.Since(began)
	if err := os.WriteFile(logPath, out, 0o644); err != nil {
		t.Fatal(err)
	}
	if cmd.ProcessState != nil {
		o.exitCode = cmd.ProcessState.ExitCode()
	}
	detail := []string{fmt.Sprintf("child %s %s with %s=%s %s=%s (no TLS or API key: the dev server serves plaintext without authorization): exit %d in %.1fs (error: %v)",
		filepath.Base(os.Args[0]), args[0], harness.EnvAddress, childEnv[harness.EnvAddress], "TEMPORAL_NAMESPACE", childEnv["TEMPORAL_NAMESPACE"], o.exitCode, took.Seconds(), runErr)}

	var childEnvRec evidence.Environment
	if b, err := os.ReadFile(filepath.Join(evDir, "env-"+env.Package+".json")); err != nil {
		detail = append(detail, fmt.Sprintf("its evidence environment: %v", err))
	} else if err := json.Unmarshal(b, &childEnvRec); err != nil {
		detail = append(detail, fmt.Sprintf("its evidence environment: %v", err))
	} else {
		o.envMode, o.envAddress, o.envNamespace = childEnvRec.Mode, childEnvRec.Address, childEnvRec.Namespace
		detail = append(detail, fmt.Sprintf("its evidence environment: mode %q, address %s, namespace %q, server version %q, persistence %q",
			o.envMode, o.envAddress, o.envNamespace, childEnvRec.ServerVersion, childEnvRec.Persistence))
	}
	var rep deployProbeReport
	if b, err := os.ReadFile(probeOut); err != nil {
		o.probeErr = fmt.Sprintf("no probe report: %v", err)
		detail = append(detail, o.probeErr+"; child output: "+deployTail(out))
	} else if err := json.Unmarshal(b, &rep); err != nil {
		o.probeErr = fmt.Sprintf("probe report: %v", err)
		detail = append(detail, o.probeErr)
	} else {
		o.probeResult, o.probeErr = rep.Result, rep.Error
		detail = append(detail, fmt.Sprintf("probe: client of %s namespace %q (external %t), run %s/%s, result %q (want %q), error: %q",
			rep.Address, rep.Namespace, rep.External, rep.WorkflowID, harness.ShortID(rep.RunID), rep.Result, o.want, rep.Error))
	}
	if rep.WorkflowID != "" {
		nc, err := client.DialContext(ctx, client.Options{HostPort: o.address, Namespace: o.namespace, Logger: harness.TestLogger(t)})
		if err != nil {
			t.Fatalf("dial %s namespace %s: %v", o.address, o.namespace, err)
		}
		t.Cleanup(nc.Close)
		desc, err := nc.DescribeWorkflowExecution(ctx, rep.WorkflowID, rep.RunID)
		info := desc.GetWorkflowExecutionInfo()
		o.describeStatus, o.describeType = info.GetStatus(), info.GetType().GetName()
		if err == nil {
			err = nc.GetWorkflow(ctx, rep.WorkflowID, rep.RunID).Get(ctx, &o.parentResult)
		}
		_, derr := srv.Dial(t).DescribeWorkflowExecution(ctx, rep.WorkflowID, rep.RunID)
		var nf *serviceerror.NotFound
		o.inDefault = !errors.As(derr, &nf)
		detail = append(detail, fmt.Sprintf("from the parent in namespace %q: %s, type %q, task queue %s, result %q (error: %v); in namespace default: %s",
			o.namespace, o.describeStatus, o.describeType, info.GetTaskQueue(), o.parentResult, err, apiErrClass(derr)))
	}
	harness.Decide(chk, deployExternalPredicate, o, strings.Join(detail, "; "), map[string]float64{"child_s": took.Seconds()})
}

// deployChildEnv is base without its TEMPORAL_* variables and without the
// keys of set, followed by set.
func deployChildEnv(base []string, set map[string]string) []string {
	var out []string
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := set[k]; ok || strings.HasPrefix(k, "TEMPORAL_") {
			continue
		}
		out = append(out, kv)
	}
	for k, v := range set {
		out = append(out, k+"="+v)
	}
	return out
}

// deployTail is the end of a child's output, for a detail.
func deployTail(out []byte) string {
	const n = 600
	s := strings.TrimSpace(string(out))
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return s
}

func TestDeployHelpers(t *testing.T) {
	const (
		started   = enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
		wtDone    = enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
		actSched  = enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
		actDone   = enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
		wtSched   = enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED
		wtStarted = enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED
	)
	for _, c := range []struct {
		name  string
		types []enumspb.EventType
		want  bool
	}{
		{"activity scheduled, not done", []enumspb.EventType{started, wtSched, wtStarted, wtDone, actSched}, false},
		{"activity done, next workflow task pending", []enumspb.EventType{started, wtDone, actSched, actDone, wtSched, wtStarted}, false},
		{"activity done, next workflow task completed", []enumspb.EventType{started, wtDone, actSched, actDone, wtSched, wtStarted, wtDone}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := deployWaitingForSignal(c.types); got != c.want {
				t.Errorf("deployWaitingForSignal = %t, want %t", got, c.want)
			}
		})
	}
	for _, c := range []struct {
		name string
		base []string
		set  map[string]string
		want []string
	}{
		{"inherited TEMPORAL_ settings dropped", []string{"PATH=/bin", "TEMPORAL_API_KEY=k", "TEMPORAL_TLS=true"},
			map[string]string{"TEMPORAL_ADDRESS": "a:1"}, []string{"PATH=/bin", "TEMPORAL_ADDRESS=a:1"}},
		{"a key set replaces the inherited one", []string{"DURABENCH_EVIDENCE_DIR=/x", "HOME=/root"},
			map[string]string{"DURABENCH_EVIDENCE_DIR": "/y"}, []string{"HOME=/root", "DURABENCH_EVIDENCE_DIR=/y"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := deployChildEnv(c.base, c.set); !slices.Equal(got, c.want) {
				t.Errorf("deployChildEnv = %q, want %q", got, c.want)
			}
		})
	}
}
