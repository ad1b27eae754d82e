package vr

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/scenarios/vr/flows"
	"github.com/durabench/durabench/scenarios/vr/flows/planted"
	v1 "github.com/durabench/durabench/scenarios/vr/flows/v1"
	v2 "github.com/durabench/durabench/scenarios/vr/flows/v2"
)

// TestVR02 measures breaking-change detection: the committed v1 histories
// replayed against planted breaking changes, safe changes and handler
// changes, what the errors name, server histories replayed in one call, and
// the CI gate run as a subprocess.
func TestVR02(t *testing.T) {
	env := harness.Get(t)
	m, hs, err := LoadCommitted(env.Root)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	x := &detection{manifest: m, histories: hs, baseline: replayFailures(ReplayCommitted(v1.RegisterWorkflows, hs)), replays: map[string][]Replayed{}}
	for _, v := range planted.Variants() {
		x.replays[v.Name] = ReplayCommitted(v.RegisterWorkflows, hs)
	}
	t.Run("replay_test_catches", x.testCatches)
	t.Run("planted_changes", x.testPlanted)
	t.Run("safe_changes_pass", x.testSafe)
	t.Run("names_mismatch", x.testNames)
	t.Run("handler_changes", x.testHandlers)
	t.Run("server_histories", testServerHistories)
	t.Run("ci_gate", testCIGate)
}

// detection holds the committed histories and their replays under v1 and
// under every planted variant, shared by the VR-02 subtests.
type detection struct {
	manifest  Manifest
	histories []Committed
	baseline  []string              // histories that do not replay under v1, the code that recorded them
	replays   map[string][]Replayed // by variant name
}

// outcome is whether variant v's replays were caught, with its first error.
func (x *detection) outcome(v planted.Variant) variantOutcome {
	o := variantOutcome{name: v.Name}
	for _, r := range x.replays[v.Name] {
		if r.Err == nil {
			continue
		}
		if o.err == "" {
			o.err = r.Name + ": " + r.Err.Error()
		}
		o.caught = o.caught || IsMismatch(r.Err)
	}
	return o
}

func (x *detection) testCatches(t *testing.T) {
	check := harness.Get(t).Check(t, "VR-02.replay-test-catches")
	const variant, file = "activity-reordered", "order.json"
	o := caught{variant: variant}
	for _, r := range ReplayCommitted(v1.RegisterWorkflows, x.histories) {
		if r.Name == file && r.Err != nil {
			o.baseline = r.Err.Error()
		}
	}
	i := slices.IndexFunc(x.replays[variant], func(r Replayed) bool { return r.Name == file })
	if i < 0 {
		t.Fatalf("harness: no committed %s", file)
	}
	if err := x.replays[variant][i].Err; err != nil {
		o.err, o.mismatch = err.Error(), IsMismatch(err)
	}
	v, _ := planted.Lookup(variant)
	harness.Decide(check, catchesPredicate, o, fmt.Sprintf("committed %s replayed under v1: error %q; under %s (%s): nondeterminism error %v: %s",
		file, o.baseline, variant, v.Change, o.mismatch, short(o.err, 700)), nil)
}

func (x *detection) testPlanted(t *testing.T) {
	check := harness.Get(t).Check(t, "VR-02.planted-changes")
	o := plantedObs{baseline: x.baseline}
	var notes, invisible []string
	for _, v := range planted.Of(planted.Breaking) {
		vo := x.outcome(v)
		o.variants = append(o.variants, vo)
		notes = append(notes, fmt.Sprintf("%s (%s): caught %v, %s", v.Name, v.Change, vo.caught, short(vo.err, 160)))
	}
	caughtN := 0
	for _, vo := range o.variants {
		if vo.caught {
			caughtN++
		}
	}
	// Changes the Go SDK's replay does not compare: reported, never counted
	// as caught, and not part of the catalog's list.
	notCaught := 0
	for _, v := range planted.Of(planted.Invisible) {
		vo := x.outcome(v)
		verdict := "not caught: replay passes"
		if vo.caught {
			verdict = "caught: " + short(vo.err, 160)
		} else {
			notCaught++
		}
		invisible = append(invisible, fmt.Sprintf("%s (%s): %s", v.Name, v.Change, verdict))
	}
	harness.Decide(check, plantedPredicate, o, fmt.Sprintf("%d committed v1 histories (fail under v1: %v); the catalog's planted changes, %d of %d caught: %s. "+
		"Also measured, outside the catalog's list: %s",
		len(x.histories), o.baseline, caughtN, len(o.variants), strings.Join(notes, "; "), strings.Join(invisible, "; ")),
		map[string]float64{"planted": float64(len(o.variants)), "caught": float64(caughtN), "invisible_not_caught": float64(notCaught)})
}

func (x *detection) testSafe(t *testing.T) {
	check := harness.Get(t).Check(t, "VR-02.safe-changes-pass")
	var vs []variantOutcome
	var notes []string
	for _, v := range planted.Of(planted.Safe) {
		vo := x.outcome(v)
		vs = append(vs, vo)
		notes = append(notes, fmt.Sprintf("%s (%s): %d histories, error %q", v.Name, v.Change, len(x.replays[v.Name]), short(vo.err, 300)))
	}
	harness.Decide(check, safePredicate, vs, strings.Join(notes, "; "), map[string]float64{"safe_changes": float64(len(vs))})
}

func (x *detection) testNames(t *testing.T) {
	check := harness.Get(t).Check(t, "VR-02.names-mismatch")
	var es []errorNames
	var notes []string
	sample := ""
	for _, v := range planted.Of(planted.Breaking) {
		for _, r := range x.replays[v.Name] {
			if !IsMismatch(r.Err) {
				continue
			}
			i := slices.IndexFunc(x.histories, func(c Committed) bool { return c.File == r.Name })
			e := namesOf(v.Name, r.Err.Error(), r.WorkflowType, x.histories[i].WorkflowID)
			es = append(es, e)
			notes = append(notes, fmt.Sprintf("%s on %s: workflow %v, event id %v, expected %v, actual %v (%s)",
				v.Name, r.Name, e.workflow, e.eventID, e.expected, e.actual, short(r.Err.Error(), 140)))
			if v.Name == "activity-reordered" {
				sample = r.Err.Error()
			}
		}
	}
	harness.Decide(check, namesPredicate, es, fmt.Sprintf("what each error of a caught planted change names (the workflow's type or id, "+
		"an event id or position labelled as such, what history holds, the command the code produced): %s. The whole error for activity-reordered: %s",
		strings.Join(notes, "; "), sample), map[string]float64{"errors": float64(len(es))})
}

// handlerMessages says, per handler variant, whether a history holds the
// messages its changed handler handles.
var handlerMessages = map[string]func([]*historypb.HistoryEvent) bool{
	"update-handler-changed": func(evs []*historypb.HistoryEvent) bool {
		return slices.ContainsFunc(harness.EventsOf(evs, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED), func(e *historypb.HistoryEvent) bool {
			return e.GetWorkflowExecutionUpdateAcceptedEventAttributes().GetAcceptedRequest().GetInput().GetName() == flows.UpdateAmend
		})
	},
	"signal-handling-changed": func(evs []*historypb.HistoryEvent) bool {
		return slices.ContainsFunc(harness.EventsOf(evs, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED), func(e *historypb.HistoryEvent) bool {
			return e.GetWorkflowExecutionSignaledEventAttributes().GetSignalName() == flows.SignalApprove
		})
	},
}

func (x *detection) testHandlers(t *testing.T) {
	check := harness.Get(t).Check(t, "VR-02.handler-changes")
	o := handlerObservation{baseline: x.baseline}
	var notes []string
	for _, v := range planted.Of(planted.Handler) {
		holds, ok := handlerMessages[v.Name]
		if !ok {
			t.Fatalf("harness: no message test for handler variant %s", v.Name)
		}
		o.variants = append(o.variants, v.Name)
		for _, r := range x.replays[v.Name] {
			if r.WorkflowType != v.Workflow {
				continue
			}
			i := slices.IndexFunc(x.histories, func(c Committed) bool { return c.File == r.Name })
			hr := handlerReplay{variant: v.Name, history: r.Name, hasMessages: holds(x.histories[i].History.GetEvents()), caught: IsMismatch(r.Err)}
			if r.Err != nil {
				hr.err = r.Err.Error()
			}
			o.replays = append(o.replays, hr)
			notes = append(notes, fmt.Sprintf("%s (%s) on %s (holds its messages: %v): caught %v %s",
				v.Name, v.Change, r.Name, hr.hasMessages, hr.caught, short(hr.err, 160)))
		}
	}
	harness.Decide(check, handlerPredicate, o, fmt.Sprintf("Approval histories fail under v1: %v; %s", o.baseline, strings.Join(notes, "; ")),
		map[string]float64{"replays": float64(len(o.replays))})
}

// testServerHistories runs every v1 workflow, then lists its closed runs
// from the server and replays them all, fetched by the replayer, in one
// call under v2 and in one call under v2's unguarded changes.
func testServerHistories(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "VR-02.server-histories")
	c, tq := env.Dial(t), harness.TaskQueue(t)
	ctx := harness.Context(t, time.Minute)
	flowsWorker(t, c, tq, v1.Register)
	approval := start(ctx, t, c, tq, harness.UniqueID(t, "approval"), flows.Approval, "kettle")
	if err := c.SignalWorkflow(ctx, approval.GetID(), "", flows.SignalApprove, "erin"); err != nil {
		t.Fatalf("harness: %v", err)
	}
	runs := []string{approval.GetID()}
	for _, wf := range []string{flows.Order, flows.Parent, flows.Quick} {
		runs = append(runs, start(ctx, t, c, tq, harness.UniqueID(t, strings.ToLower(wf)), wf, "kettle").GetID())
	}
	loop := start(ctx, t, c, tq, harness.UniqueID(t, "loop"), flows.Loop, flows.LoopState{Target: 2, Every: 1})
	tick(ctx, t, c, loop.GetID(), 2)
	for _, id := range append(runs, loop.GetID()) {
		if err := harness.AwaitResult(ctx, c.GetWorkflow(ctx, id, ""), nil); err != nil {
			t.Fatalf("harness: %s: %v", id, err)
		}
	}
	o := serverReplay{started: map[string]int{flows.Approval: 1, flows.Order: 1, flows.Parent: 1, flows.Child: 1, flows.Quick: 1, flows.Loop: 2}, replayed: map[string]int{}}
	want := 0
	for _, n := range o.started {
		want += n
	}
	query := fmt.Sprintf("TaskQueue = '%s' AND ExecutionStatus != 'Running'", tq)
	if err := harness.WaitFor(ctx, 30*time.Second, 100*time.Millisecond, "closed runs to be visible", func(ctx context.Context) (bool, error) {
		n, err := c.CountWorkflow(ctx, countRequest(env.Options.Namespace, query))
		return err == nil && int(n.GetCount()) == want, err
	}); err != nil {
		t.Fatalf("harness: %v", err)
	}
	began := time.Now()
	rs, err := ReplayFromServer(ctx, c, env.Options.Namespace, query, v2.RegisterWorkflows)
	took := time.Since(began)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	for _, r := range rs {
		o.replayed[r.WorkflowType]++
	}
	o.failed = replayFailures(rs)
	unguarded, err := planted.Lookup("unguarded-v2")
	if err != nil {
		t.Fatal(err)
	}
	us, err := ReplayFromServer(ctx, c, env.Options.Namespace, query, unguarded.RegisterWorkflows)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	var flagged []string
	for _, r := range us {
		if IsMismatch(r.Err) {
			o.unguarded++
			flagged = append(flagged, r.WorkflowType)
		}
	}
	harness.Decide(check, serverHistoriesPredicate, o, fmt.Sprintf("v1 runs closed per type %v; one call listing %q and replaying under v2 what it fetched: "+
		"per type %v in %d ms, failed %v; the same call under %s flagged %d histories (types %v)",
		o.started, query, o.replayed, took.Milliseconds(), shortAll(o.failed, 300), unguarded.Name, o.unguarded, flagged),
		map[string]float64{"histories": float64(len(rs)), "replay_ms": float64(took.Milliseconds()), "unguarded_flagged": float64(o.unguarded)})
}

// testCIGate runs TestV2ReplaysCommittedV1Histories in a subprocess (this
// test binary) with a breaking variant swapped in for v2, then with the
// guarded one.
func testCIGate(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "VR-02.ci-gate")
	ctx := harness.Context(t, 2*time.Minute)
	var g gate
	var breakingOut string
	g.breaking, breakingOut = runGate(ctx, t, env, "activity-reordered")
	g.guarded, _ = runGate(ctx, t, env, planted.Guarded)
	describe := func(r gateRun) string {
		return fmt.Sprintf("%s: exit %d in %.0f ms, the gate test ran %v, the mismatch printed %v", r.variant, r.exit, r.ms, r.ran, r.mismatch)
	}
	harness.Decide(check, ciGatePredicate, g, fmt.Sprintf("the test binary run as `-test.run '^TestV2ReplaysCommittedV1Histories$'` with %s set to "+
		"%s; %s. What the breaking run printed: %s", replayVariantEnv, describe(g.breaking), describe(g.guarded), short(gateFailure(breakingOut), 1200)),
		map[string]float64{"breaking_ms": g.breaking.ms, "guarded_ms": g.guarded.ms})
}

// runGate runs the gate test in a subprocess with variant in place of v2.
// The subprocess's TestMain dials this package's server instead of starting
// its own (the gate uses none) and writes its evidence to a scratch
// directory, not this run's.
func runGate(ctx context.Context, t *testing.T, env *harness.Env, variant string) (gateRun, string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run", "^TestV2ReplaysCommittedV1Histories$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), replayVariantEnv+"="+variant, harness.EnvEvidenceDir+"="+env.Scratch(t))
	if !env.External {
		cmd.Env = append(cmd.Env, harness.EnvAddress+"="+env.Options.HostPort)
	}
	began := time.Now()
	out, err := cmd.CombinedOutput()
	r := gateRun{variant: variant, ms: float64(time.Since(began).Milliseconds())}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("harness: running the gate: %v\n%s", err, out)
	}
	r.exit = cmd.ProcessState.ExitCode()
	text := string(out)
	r.ran = strings.Contains(text, "--- PASS: TestV2ReplaysCommittedV1Histories") || strings.Contains(text, "--- FAIL: TestV2ReplaysCommittedV1Histories")
	r.mismatch = IsMismatch(errors.New(text))
	return r, text
}

// gateFailure is the part of the gate's output from the start of the gate
// test on (with -test.v its errors come before its FAIL line).
func gateFailure(out string) string {
	if i := strings.Index(out, "=== RUN"); i >= 0 {
		out = out[i:]
	}
	return strings.Join(strings.Fields(out), " ")
}

func countRequest(namespace, query string) *workflowservice.CountWorkflowExecutionsRequest {
	return &workflowservice.CountWorkflowExecutionsRequest{Namespace: namespace, Query: query}
}
