package ex

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/harness"
)

// recordHistoriesEnv, when set to 1, makes TestEX07 write the histories it
// records to fixturesDir (with a manifest) before replaying the committed
// ones: that is how fixtures/histories is produced.
const recordHistoriesEnv = "DURABENCH_RECORD_HISTORIES"

// TestEX07 measures replay accuracy: histories fetched from the server, with
// activities, timers, signals, children, updates and continue-as-new, and a
// randomized corpus, replay with worker.WorkflowReplayer and reproduce the
// recorded results; histories committed under fixtures/histories still
// replay, those recorded with this SDK and those recorded with an older SDK
// release (fixtures/histories/sdk-v*, written by make fixtures-old-sdk).
// Each check is decided by its predicate in predicates_replay.go.
func TestEX07(t *testing.T) {
	t.Parallel()
	env := harness.Get(t)
	x := &replayEnv{c: env.Dial(t), tq: harness.TaskQueue(t), fixtures: map[string]fixture{}}
	startScenarioWorker(t, x.c, x.tq, nil, worker.Options{})
	var err error
	if x.r, err = NewReplayer(registerScenarioWorkflows); err != nil {
		t.Fatal(err)
	}
	t.Run("simple", x.testSimple)
	t.Run("signals_timers", x.testSignalsTimers)
	t.Run("children", x.testChildren)
	t.Run("continue_as_new", x.testContinueAsNew)
	t.Run("updates", x.testUpdates)
	t.Run("corpus", x.testCorpus)
	if os.Getenv(recordHistoriesEnv) == "1" {
		x.writeFixtures(t)
	}
	t.Run("committed_fixtures", x.testCommittedFixtures)
	t.Run("older_sdk", x.testOlderSDK)
}

// replayEnv is shared by the EX-07 subtests: one worker, one replayer, and
// the histories that would become fixtures.
type replayEnv struct {
	c        client.Client
	tq       string
	r        *Replayer
	fixtures map[string]fixture // by file name
}

// fixture is a recorded history and the workflow id it ran under.
type fixture struct {
	id string
	h  *historypb.History
}

// keep records a history as a future fixture and replays it.
func (x *replayEnv) keep(name, id string, h *historypb.History) replayed {
	x.fixtures[name] = fixture{id, h}
	return replayOf(name, x.r.Replay(h, id), h)
}

// run starts wf, lets drive interact with it, and returns its result error
// and history.
func (x *replayEnv) run(ctx context.Context, t *testing.T, prefix string, drive func(client.WorkflowRun) error, wf any, args ...any) (client.WorkflowRun, *historypb.History) {
	t.Helper()
	run := startWorkflow(ctx, t, x.c, scenarioOptions(x.tq, harness.UniqueID(t, prefix)), wf, args...)
	if drive != nil {
		if err := drive(run); err != nil {
			t.Fatal(err)
		}
	}
	if err := run.Get(ctx, nil); err != nil {
		t.Fatalf("%s: %v", prefix, err)
	}
	return run, mustHistory(ctx, t, x.c, run.GetID(), run.GetRunID())
}

func (x *replayEnv) testSimple(t *testing.T) {
	check := harness.Get(t).Check(t, "EX-07.replay-simple")
	ctx := harness.Context(t, 2*time.Minute)
	run, h := x.run(ctx, t, "simple", nil, SimpleWorkflow, 3)
	n := countEvents(h)
	o := simpleReplay{events: len(h.GetEvents()), activities: n[enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED], timers: n[enumspb.EVENT_TYPE_TIMER_FIRED],
		replay: x.keep("simple.json", run.GetID(), h)}
	harness.Decide(check, replaySimplePredicate, o, fmt.Sprintf("%s: history of %d events with %d completed activities and %d fired timers; %s",
		run.GetID(), o.events, o.activities, o.timers, o.replay),
		map[string]float64{"events": float64(o.events), "activities": float64(o.activities), "timers": float64(o.timers)})
}

func (x *replayEnv) testSignalsTimers(t *testing.T) {
	check := harness.Get(t).Check(t, "EX-07.replay-signals-timers")
	ctx := harness.Context(t, 2*time.Minute)
	const signals = 5
	run, h := x.run(ctx, t, "signals", func(run client.WorkflowRun) error {
		for i := range signals {
			// The pause between signals is the scenario: they arrive while
			// timers and activities are in flight.
			time.Sleep(500 * time.Millisecond)
			if err := x.c.SignalWorkflow(ctx, run.GetID(), "", eventSignal, fmt.Sprint(i)); err != nil {
				return err
			}
		}
		return nil
	}, SignalsWorkflow, signals)
	o := signalsReplay{sent: signals, replay: x.keep("signals.json", run.GetID(), h)}
	o.err = run.Get(ctx, &o.order)
	kinds, interleaved := o.kinds()
	harness.Decide(check, replaySignalsPredicate, o, fmt.Sprintf("%s: %d signals sent; recorded order %v (%d signals, %d timers, %d activities; a timer or activity between the first and last signal: %v; error: %v); %s",
		run.GetID(), signals, o.order, kinds["signal"], kinds["timer"], kinds["activity"], interleaved, o.err, o.replay),
		map[string]float64{"signals": float64(kinds["signal"]), "timers": float64(kinds["timer"]), "activities": float64(kinds["activity"])})
}

func (x *replayEnv) testChildren(t *testing.T) {
	check := harness.Get(t).Check(t, "EX-07.replay-children")
	ctx := harness.Context(t, 2*time.Minute)
	const children = 3
	run, h := x.run(ctx, t, "parent", nil, ParentWorkflow, children)
	o := childrenReplay{want: children, parent: x.keep("parent.json", run.GetID(), h)}
	for _, ev := range h.GetEvents() {
		a := ev.GetChildWorkflowExecutionStartedEventAttributes()
		if a == nil {
			continue
		}
		child := a.GetWorkflowExecution()
		ch := mustHistory(ctx, t, x.c, child.GetWorkflowId(), child.GetRunId())
		o.children = append(o.children, x.keep(fmt.Sprintf("child-%d.json", len(o.children)+1), child.GetWorkflowId(), ch))
	}
	harness.Decide(check, replayChildrenPredicate, o, fmt.Sprintf("%s with %d children asked, %d started (child histories replayed): %s; %s",
		run.GetID(), children, len(o.children), o.parent, joinReplays(o.children)),
		map[string]float64{"histories": float64(len(o.children) + 1)})
}

func joinReplays(rs []replayed) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.String()
	}
	return strings.Join(s, "; ")
}

// testContinueAsNew follows a ChainWorkflow chain run by run, replays each
// run, reads the activity result each run's own history records, and
// compares them with the state the last run returned: a platform that lost,
// repeated or altered the state handed over at a continue-as-new returns
// another state than the runs computed.
func (x *replayEnv) testContinueAsNew(t *testing.T) {
	check := harness.Get(t).Check(t, "EX-07.replay-continue-as-new")
	ctx := harness.Context(t, 2*time.Minute)
	const runs = 3
	run := startWorkflow(ctx, t, x.c, scenarioOptions(x.tq, harness.UniqueID(t, "chain")), ChainWorkflow, ChainState{Runs: runs})
	firstRun := run.GetRunID() // Get follows the chain and moves GetRunID to the last run
	o := chainReplay{want: runs}
	if err := run.Get(ctx, &o.final); err != nil {
		t.Fatalf("chain: %v", err)
	}
	var ids []string
	for runID := firstRun; runID != ""; {
		if len(o.runs) == runs+1 {
			break // a chain longer than asked: the predicate sees the extra run
		}
		h := mustHistory(ctx, t, x.c, run.GetID(), runID)
		o.runs = append(o.runs, x.keep(fmt.Sprintf("chain-%d.json", len(o.runs)+1), run.GetID(), h))
		ids = append(ids, runID)
		if v, ok := activityResult(t, h); ok {
			o.computed = append(o.computed, v)
		}
		runID = lastEvent(h).GetWorkflowExecutionContinuedAsNewEventAttributes().GetNewExecutionRunId()
	}
	harness.Decide(check, replayChainPredicate, o, fmt.Sprintf("%s: chain of %d runs (%d asked; run ids %v); Transform results recorded in each run's history %v; "+
		"state the last run returned %+v, expected from those results %+v; %s",
		run.GetID(), len(o.runs), runs, ids, o.computed, o.final, o.carried(), joinReplays(o.runs)),
		map[string]float64{"runs": float64(len(o.runs))})
}

// activityResult decodes the result of the first completed activity in h.
func activityResult(t *testing.T, h *historypb.History) (int, bool) {
	t.Helper()
	for _, ev := range h.GetEvents() {
		if a := ev.GetActivityTaskCompletedEventAttributes(); a != nil {
			var v int
			if err := converter.GetDefaultDataConverter().FromPayloads(a.GetResult(), &v); err != nil {
				t.Fatalf("harness: activity result in history: %v", err)
			}
			return v, true
		}
	}
	return 0, false
}

func lastEvent(h *historypb.History) *historypb.HistoryEvent {
	return h.GetEvents()[len(h.GetEvents())-1]
}

func (x *replayEnv) testUpdates(t *testing.T) {
	check := harness.Get(t).Check(t, "EX-07.replay-updates")
	ctx := harness.Context(t, 2*time.Minute)
	o := updatesReplay{sent: []int{5, -1, 7}}
	var outcomes []string
	run, h := x.run(ctx, t, "updates", func(run client.WorkflowRun) error {
		for _, n := range o.sent {
			handle, err := x.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
				WorkflowID: run.GetID(), UpdateName: addUpdate, Args: []any{n}, WaitForStage: client.WorkflowUpdateStageCompleted,
			})
			var total int
			if err == nil {
				err = handle.Get(ctx, &total)
			}
			if n <= 0 {
				o.rejected = err
			}
			outcomes = append(outcomes, fmt.Sprintf("add %d: total %d (error: %v)", n, total, err))
		}
		return x.c.SignalWorkflow(ctx, run.GetID(), "", finishSignal, nil)
	}, UpdatesWorkflow)
	o.err = run.Get(ctx, &o.result)
	o.replay = x.keep("updates.json", run.GetID(), h)
	n := countEvents(h)
	o.accepted, o.completed = n[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED], n[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED]
	harness.Decide(check, replayUpdatesPredicate, o, fmt.Sprintf("%s: %s; result %d (error: %v); history holds %d accepted and %d completed updates; %s",
		run.GetID(), strings.Join(outcomes, "; "), o.result, o.err, o.accepted, o.completed, o.replay),
		map[string]float64{"accepted": float64(o.accepted), "completed": float64(o.completed)})
}

func (x *replayEnv) testCorpus(t *testing.T) {
	check := harness.Get(t).Check(t, "EX-07.replay-corpus")
	ctx := harness.Context(t, 2*time.Minute)
	const n = minCorpus
	seeds := make([]int64, n)
	for i := range seeds {
		seeds[i] = rand.Int64()
	}
	kinds := map[int]int{}
	for _, seed := range seeds {
		for _, step := range CorpusPlan(seed) {
			kinds[step.Kind]++
		}
	}
	runs := startMany(ctx, t, x.c, x.tq, n, CorpusWorkflow, func(i int) []any { return []any{seeds[i]} }, func(run client.WorkflowRun, i int) error {
		for _, step := range CorpusPlan(seeds[i]) {
			if step.Kind == stepSignal {
				if err := x.c.SignalWorkflow(ctx, run.GetID(), "", eventSignal, fmt.Sprintf("%x", rand.Uint32())); err != nil {
					return err
				}
			}
		}
		return nil
	})
	var o corpusReplay
	failedActivities := 0
	for _, run := range runs {
		h := mustHistory(ctx, t, x.c, run.GetID(), run.GetRunID())
		failedActivities += countEvents(h)[enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED]
		o.histories++
		if r := replayOf(run.GetID(), x.r.Replay(h, run.GetID()), h); !r.ok {
			o.differ = append(o.differ, r.String())
		}
	}
	harness.Decide(check, replayCorpusPredicate, o, fmt.Sprintf("%d randomized workflows replayed (%d timers, %d activities of which %d exhausted their retries, %d children, "+
		"%d signals): %d replays differ from their recorded result %v", o.histories, kinds[stepTimer], kinds[stepActivity], failedActivities, kinds[stepChild],
		kinds[stepSignal], len(o.differ), o.differ),
		map[string]float64{"histories": float64(o.histories), "mismatches": float64(len(o.differ))})
}

// fixturesDir holds committed histories and their manifest.
const fixturesDir = "fixtures/histories"

// fixtureManifest describes the committed histories.
type fixtureManifest struct {
	Recorded      time.Time         `json:"recorded"`
	SDKVersion    string            `json:"sdk_version"`
	ServerVersion string            `json:"server_version"`
	Histories     []manifestHistory `json:"histories"`
}

type manifestHistory struct {
	File       string `json:"file"`
	WorkflowID string `json:"workflow_id"`
}

// writeFixtures writes the histories recorded by this run and their manifest.
func (x *replayEnv) writeFixtures(t *testing.T) {
	env := harness.Get(t)
	dir := filepath.Join(env.Root, fixturesDir)
	info, err := x.c.WorkflowService().GetSystemInfo(context.Background(), &workflowservice.GetSystemInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	m := fixtureManifest{Recorded: time.Now().UTC().Truncate(time.Second), SDKVersion: temporal.SDKVersion, ServerVersion: info.GetServerVersion()}
	for name, f := range x.fixtures {
		b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(f.h)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		m.Histories = append(m.Histories, manifestHistory{File: name, WorkflowID: f.id})
	}
	slices.SortFunc(m.Histories, func(a, b manifestHistory) int { return strings.Compare(a.File, b.File) })
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d histories to %s", len(m.Histories), dir)
}

func (x *replayEnv) testCommittedFixtures(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "EX-07.replay-committed-fixtures")
	s := x.replaySet(t, fixturesDir)
	harness.Decide(check, replayFixturesPredicate, s, s.String(),
		map[string]float64{"histories": float64(s.histories), "failed": float64(len(s.failed))})
}

// olderSDKGlob matches the sets of histories recorded with older SDK
// releases (make fixtures-old-sdk).
const olderSDKGlob = fixturesDir + "/sdk-v*"

// testOlderSDK replays, on the SDK under test, every set of histories that
// an older SDK release recorded (fixtures/sdk-v*, a module of its own).
func (x *replayEnv) testOlderSDK(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "EX-07.replay-older-sdk")
	dirs, err := filepath.Glob(filepath.Join(env.Root, olderSDKGlob))
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	var o olderSDKReplay
	var notes []string
	histories, failed := 0, 0
	for _, dir := range dirs {
		rel, err := filepath.Rel(env.Root, dir)
		if err != nil {
			t.Fatalf("harness: %v", err)
		}
		s := x.replaySet(t, rel)
		o.sets = append(o.sets, s)
		notes = append(notes, s.String())
		histories += s.histories
		failed += len(s.failed)
	}
	if len(dirs) == 0 {
		notes = append(notes, "no set of histories matches "+olderSDKGlob)
	}
	harness.Decide(check, replayOlderSDKPredicate, o, strings.Join(notes, "; "),
		map[string]float64{"sets": float64(len(o.sets)), "histories": float64(histories), "failed": float64(failed)})
}

// replaySet replays the histories a manifest lists in dir (relative to the
// repository root) and reports what they were recorded with and which did
// not reproduce their result. A missing or unreadable manifest or history
// is a harness fault.
func (x *replayEnv) replaySet(t *testing.T, dir string) fixtureSet {
	t.Helper()
	root := harness.Get(t).Root
	b, err := os.ReadFile(filepath.Join(root, dir, "manifest.json"))
	if err != nil {
		t.Fatalf("harness: fixture manifest: %v", err)
	}
	var m fixtureManifest
	if err := json.Unmarshal(b, &m); err != nil || len(m.Histories) == 0 {
		t.Fatalf("harness: fixture manifest %s: %v (%d histories)", dir, err, len(m.Histories))
	}
	s := fixtureSet{dir: dir, recordedSDK: m.SDKVersion, recordedOn: m.ServerVersion, recordedAt: m.Recorded.Format(time.DateOnly), replayingWith: temporal.SDKVersion}
	for _, entry := range m.Histories {
		f, err := os.Open(filepath.Join(root, dir, entry.File))
		if err != nil {
			t.Fatalf("harness: %v", err)
		}
		h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
		f.Close()
		if err != nil {
			t.Fatalf("harness: fixture %s: %v", entry.File, err)
		}
		s.histories++
		for _, ev := range h.GetEvents() {
			if v := ev.GetWorkflowTaskCompletedEventAttributes().GetSdkMetadata().GetSdkVersion(); v != "" && !slices.Contains(s.writtenBy, v) {
				s.writtenBy = append(s.writtenBy, v)
			}
		}
		if r := replayOf(entry.File, x.r.Replay(h, entry.WorkflowID), h); !r.ok {
			s.failed = append(s.failed, r.String())
		}
	}
	return s
}
