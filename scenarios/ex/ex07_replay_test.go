package ex

import (
	"context"
	"encoding/json"
	"errors"
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
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/proto"

	"github.com/durabench/durabench/harness"
)

// recordHistoriesEnv, when set to 1, makes TestEX07 write the histories it
// records to fixturesDir (with a manifest) before replaying the committed
// ones: that is how fixtures/histories is produced.
const recordHistoriesEnv = "DURABENCH_RECORD_HISTORIES"

// TestEX07 measures replay accuracy: histories fetched from the server, with
// activities, timers, signals, children, updates and continue-as-new, and a
// randomized corpus, replay with worker.WorkflowReplayer and reproduce the
// recorded results; histories committed under fixtures/ still replay.
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

// keep records a history as a future fixture and replays it, reporting
// whether it reproduced its recorded result.
func (x *replayEnv) keep(name, id string, h *historypb.History) (bool, string) {
	x.fixtures[name] = fixture{id, h}
	return x.r.Replay(h, id).ReproducesResult(h)
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

func eventsPresent(h *historypb.History, types ...enumspb.EventType) bool {
	n := countEvents(h)
	for _, typ := range types {
		if n[typ] == 0 {
			return false
		}
	}
	return true
}

func (x *replayEnv) testSimple(t *testing.T) {
	check := harness.Get(t).Check(t, "EX-07.replay-simple")
	ctx := harness.Context(t, 2*time.Minute)
	run, h := x.run(ctx, t, "simple", nil, SimpleWorkflow, 3)
	ok, why := x.keep("simple.json", run.GetID(), h)
	shape := eventsPresent(h, enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, enumspb.EVENT_TYPE_TIMER_FIRED)
	check.Result(ok && shape, fmt.Sprintf("history of %d events with activities and a timer (both present: %v): %s", len(h.GetEvents()), shape, okOr(ok, why)),
		map[string]float64{"events": float64(len(h.GetEvents()))})
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
	ok, why := x.keep("signals.json", run.GetID(), h)
	rp := x.r.Replay(h, run.GetID())
	var recorded []string
	err := run.Get(ctx, &recorded)
	kinds := map[string]int{}
	for _, e := range recorded {
		kinds[strings.SplitN(e, "-", 2)[0]]++
	}
	check.Result(err == nil && ok && kinds["signal"] == signals && kinds["timer"] > 0 && kinds["activity"] > 0,
		fmt.Sprintf("recorded order %v; replayed result captured by interceptor: %v; %s", recorded, rp.Result, okOr(ok, why)),
		map[string]float64{"signals": float64(kinds["signal"]), "timers": float64(kinds["timer"]), "activities": float64(kinds["activity"])})
}

func (x *replayEnv) testChildren(t *testing.T) {
	check := harness.Get(t).Check(t, "EX-07.replay-children")
	ctx := harness.Context(t, 2*time.Minute)
	const children = 3
	run, h := x.run(ctx, t, "parent", nil, ParentWorkflow, children)
	var results []string
	ok, why := x.keep("parent.json", run.GetID(), h)
	results = append(results, "parent: "+okOr(ok, why))
	replayed := 0
	for _, ev := range h.GetEvents() {
		a := ev.GetChildWorkflowExecutionStartedEventAttributes()
		if a == nil {
			continue
		}
		child := a.GetWorkflowExecution()
		ch := mustHistory(ctx, t, x.c, child.GetWorkflowId(), child.GetRunId())
		cok, cwhy := x.keep(fmt.Sprintf("child-%d.json", replayed+1), child.GetWorkflowId(), ch)
		ok = ok && cok
		replayed++
		results = append(results, fmt.Sprintf("child %d: %s", replayed, okOr(cok, cwhy)))
	}
	check.Result(ok && replayed == children, fmt.Sprintf("parent with %d children (%d child histories replayed): %s", children, replayed, strings.Join(results, "; ")),
		map[string]float64{"histories": float64(replayed + 1)})
}

func (x *replayEnv) testContinueAsNew(t *testing.T) {
	check := harness.Get(t).Check(t, "EX-07.replay-continue-as-new")
	ctx := harness.Context(t, 2*time.Minute)
	const runs = 3
	run := startWorkflow(ctx, t, x.c, scenarioOptions(x.tq, harness.UniqueID(t, "chain")), ChainWorkflow, ChainState{Runs: runs})
	firstRun := run.GetRunID() // Get follows the chain and moves GetRunID to the last run
	var final ChainState
	if err := run.Get(ctx, &final); err != nil {
		t.Fatalf("chain: %v", err)
	}
	ok := final.Run == runs
	var notes []string
	var handedOver *historypb.History // the previous run's history, whose last event hands state over
	i := 0
	for runID := firstRun; runID != ""; {
		i++
		if i > runs {
			t.Fatalf("harness: the chain has more than %d runs", runs)
		}
		h := mustHistory(ctx, t, x.c, run.GetID(), runID)
		rok, why := x.keep(fmt.Sprintf("chain-%d.json", i), run.GetID(), h)
		ok = ok && rok
		notes = append(notes, fmt.Sprintf("run %d: %s", i, okOr(rok, why)))
		if handedOver != nil {
			same := proto.Equal(lastEvent(handedOver).GetWorkflowExecutionContinuedAsNewEventAttributes().GetInput(),
				h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetInput())
			ok = ok && same
			notes = append(notes, fmt.Sprintf("state handed from run %d equals run %d's input: %v", i-1, i, same))
		}
		handedOver = h
		runID = lastEvent(h).GetWorkflowExecutionContinuedAsNewEventAttributes().GetNewExecutionRunId()
	}
	check.Result(ok && i == runs, fmt.Sprintf("chain of %d runs, final state %+v; %s", i, final, strings.Join(notes, "; ")),
		map[string]float64{"runs": float64(i)})
}

func lastEvent(h *historypb.History) *historypb.HistoryEvent {
	return h.GetEvents()[len(h.GetEvents())-1]
}

func (x *replayEnv) testUpdates(t *testing.T) {
	check := harness.Get(t).Check(t, "EX-07.replay-updates")
	ctx := harness.Context(t, 2*time.Minute)
	var outcomes []string
	var rejected error
	run, h := x.run(ctx, t, "updates", func(run client.WorkflowRun) error {
		for _, n := range []int{5, -1, 7} {
			handle, err := x.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
				WorkflowID: run.GetID(), UpdateName: addUpdate, Args: []any{n}, WaitForStage: client.WorkflowUpdateStageCompleted,
			})
			var total int
			if err == nil {
				err = handle.Get(ctx, &total)
			}
			if n < 0 {
				rejected = err
			} else if err != nil {
				return fmt.Errorf("update add %d: %w", n, err)
			}
			outcomes = append(outcomes, fmt.Sprintf("add %d: total %d (error: %v)", n, total, err))
		}
		return x.c.SignalWorkflow(ctx, run.GetID(), "", finishSignal, nil)
	}, UpdatesWorkflow)
	var total int
	err := run.Get(ctx, &total)
	ok, why := x.keep("updates.json", run.GetID(), h)
	n := countEvents(h)
	accepted, completed := n[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED], n[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED]
	var appErr *temporal.ApplicationError
	check.Result(err == nil && total == 12 && errors.As(rejected, &appErr) && accepted == 2 && completed == 2 && ok,
		fmt.Sprintf("%s; result %d; history holds %d accepted and %d completed updates (the rejected one leaves no event); %s",
			strings.Join(outcomes, "; "), total, accepted, completed, okOr(ok, why)),
		map[string]float64{"accepted": float64(accepted)})
}

func (x *replayEnv) testCorpus(t *testing.T) {
	check := harness.Get(t).Check(t, "EX-07.replay-corpus")
	ctx := harness.Context(t, 2*time.Minute)
	const n = 100
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
	var differ []string
	failedActivities := 0
	for _, run := range runs {
		h := mustHistory(ctx, t, x.c, run.GetID(), run.GetRunID())
		failedActivities += countEvents(h)[enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED]
		if ok, why := x.r.Replay(h, run.GetID()).ReproducesResult(h); !ok {
			differ = append(differ, run.GetID()+": "+why)
		}
	}
	check.Result(len(differ) == 0, fmt.Sprintf("%d randomized workflows (%d timers, %d activities of which %d exhausted their retries, %d children, "+
		"%d signals): %d replays differ from their recorded result %v", n, kinds[stepTimer], kinds[stepActivity], failedActivities, kinds[stepChild],
		kinds[stepSignal], len(differ), differ),
		map[string]float64{"histories": n, "mismatches": float64(len(differ))})
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
	dir := filepath.Join(env.Root, fixturesDir)
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatalf("harness: fixture manifest: %v", err)
	}
	var m fixtureManifest
	if err := json.Unmarshal(b, &m); err != nil || len(m.Histories) == 0 {
		t.Fatalf("harness: fixture manifest %s: %v (%d histories)", dir, err, len(m.Histories))
	}
	var failed []string
	for _, entry := range m.Histories {
		name := entry.File
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("harness: %v", err)
		}
		h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
		f.Close()
		if err != nil {
			t.Fatalf("harness: fixture %s: %v", name, err)
		}
		if ok, why := x.r.Replay(h, entry.WorkflowID).ReproducesResult(h); !ok {
			failed = append(failed, name+": "+why)
		}
	}
	check.Result(len(failed) == 0, fmt.Sprintf("%d histories recorded %s with SDK %s and server %s, replayed with SDK %s: %d do not reproduce their result %v",
		len(m.Histories), m.Recorded.Format(time.DateOnly), m.SDKVersion, m.ServerVersion, temporal.SDKVersion, len(failed), failed),
		map[string]float64{"histories": float64(len(m.Histories)), "failed": float64(len(failed))})
}
