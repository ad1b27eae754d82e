package ex

import (
	"context"
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	wfcheck "go.temporal.io/sdk/contrib/tools/workflowcheck/workflow"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/analysis/checker"
	"golang.org/x/tools/go/packages"

	"github.com/durabench/durabench/fixtures/nondeterminism"
	"github.com/durabench/durabench/harness"
)

// TestEX05 measures the determinism constraints: workflow.Now, SideEffect
// and MutableSideEffect return recorded values on replay; coroutines
// interleave identically on replay; direct calls to time.Now and math/rand
// are caught at replay; and the static checker workflowcheck flags planted
// violations without flagging this harness's own workflows.
func TestEX05(t *testing.T) {
	t.Parallel()
	t.Run("values_replay", testValuesReplay)
	t.Run("coroutines", testCoroutines)
	t.Run("direct_calls", testDirectCalls)
	t.Run("static_check", testStaticCheck)
}

// configByRound is the configuration ValuesWorkflow reads in each round: it
// changes twice, so MutableSideEffect must record three markers.
var configByRound = []int{1, 1, 2, 2, 2, 3}

// liveSources are real random sources; they count their calls.
type liveSources struct{ calls atomic.Int64 }

func (s *liveSources) Random() int64 { s.calls.Add(1); return rand.Int64() }
func (s *liveSources) UUID() string  { return uuid.NewString() }
func (s *liveSources) Config(round int) int {
	s.calls.Add(1)
	return configByRound[round]
}

// replaySources return values a replay must never produce, and count calls.
type replaySources struct{ random, config atomic.Int64 }

func (s *replaySources) Random() int64        { s.random.Add(1); return -1 }
func (s *replaySources) UUID() string         { return "not-recorded" }
func (s *replaySources) Config(round int) int { s.config.Add(1); return 99 }

func testValuesReplay(t *testing.T) {
	env := harness.Get(t)
	nowCheck := env.Check(t, "EX-05.workflow-now-stable")
	sideCheck := env.Check(t, "EX-05.side-effect-stable")
	mutableCheck := env.Check(t, "EX-05.mutable-side-effect")
	ctx := harness.Context(t, 2*time.Minute)
	c := env.Dial(t)
	tq := harness.TaskQueue(t)
	live := &liveSources{}
	startScenarioWorker(t, c, tq, nil, worker.Options{}, func(r worker.Registry) {
		r.RegisterWorkflowWithOptions((&Values{Sources: live}).Workflow, workflow.RegisterOptions{Name: ValuesWorkflowName})
	})

	rounds := len(configByRound)
	run := startWorkflow(ctx, t, c, scenarioOptions(tq, harness.UniqueID(t, "wf")), ValuesWorkflowName, rounds)
	var recorded ValuesResult
	if err := run.Get(ctx, &recorded); err != nil {
		t.Fatalf("values workflow: %v", err)
	}
	h := mustHistory(ctx, t, c, run.GetID(), run.GetRunID())
	liveCalls := live.calls.Load()

	replay := &replaySources{}
	r, err := NewReplayer(func(reg worker.WorkflowRegistry) {
		reg.RegisterWorkflowWithOptions((&Values{Sources: replay}).Workflow, workflow.RegisterOptions{Name: ValuesWorkflowName})
	})
	if err != nil {
		t.Fatal(err)
	}
	o := valuesReplay{rounds: rounds, configs: configByRound[:rounds], recorded: recorded, replayedAt: time.Now(), markers: countMarkers(h)}
	rp := r.Replay(h, run.GetID())
	var why string
	o.reproduced, why = rp.ReproducesResult(h)
	if v, ok := rp.Result.(ValuesResult); ok {
		o.replayed = v
	}
	o.randomCalls, o.configCalls = replay.random.Load(), replay.config.Load()

	taskTimes := workflowTaskStartTimes(h)
	fromHistory := true
	for _, n := range recorded.Nows {
		fromHistory = fromHistory && slices.ContainsFunc(taskTimes, n.Equal)
	}
	harness.Decide(nowCheck, nowPredicate, o,
		fmt.Sprintf("recorded workflow.Now over %d rounds: %s; replayed %s after the last: %s; each value is a WorkflowTaskStarted time of the history: %v (%s)",
			rounds, formatTimes(recorded.Nows), o.replayedAt.Sub(recorded.Nows[len(recorded.Nows)-1]).Round(time.Millisecond), formatTimes(o.replayed.Nows),
			fromHistory, okOr(o.reproduced, why)),
		map[string]float64{"rounds": float64(rounds)})

	distinct := map[RandomValue]bool{}
	for _, v := range recorded.Randoms {
		distinct[v] = true
	}
	harness.Decide(sideCheck, sideEffectPredicate, o,
		fmt.Sprintf("%d SideEffect calls recorded %d distinct random values and UUIDs (first %+v) in %d SideEffect markers; the replay, whose sources "+
			"would return -1 and \"not-recorded\", returned the recorded values: %v, calling its random source %d times (%s)",
			rounds, len(distinct), recorded.Randoms[0], o.markers["SideEffect"], reflect.DeepEqual(o.replayed.Randoms, recorded.Randoms), o.randomCalls,
			okOr(o.reproduced, why)),
		map[string]float64{"replay_calls": float64(o.randomCalls), "live_calls": float64(liveCalls)})

	harness.Decide(mutableCheck, mutablePredicate, o,
		fmt.Sprintf("configuration %v read in %d MutableSideEffect calls; %d MutableSideEffect markers recorded (%d changes of value); replay with a source "+
			"returning 99 gave %v, calling it %d times (%s)", recorded.Configs, rounds, o.markers["MutableSideEffect"], valueChanges(configByRound[:rounds]),
			o.replayed.Configs, o.configCalls, okOr(o.reproduced, why)),
		map[string]float64{"markers": float64(o.markers["MutableSideEffect"])})
}

func workflowTaskStartTimes(h *historypb.History) []time.Time {
	var out []time.Time
	for _, ev := range h.GetEvents() {
		if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED {
			out = append(out, ev.GetEventTime().AsTime())
		}
	}
	return out
}

func formatTimes(ts []time.Time) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.UTC().Format("15:04:05.000")
	}
	return "[" + strings.Join(s, " ") + "]"
}

func okOr(ok bool, why string) string {
	if ok {
		return "replayed result equals the recorded one"
	}
	return why
}

func testCoroutines(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "EX-05.deterministic-coroutines")
	ctx := harness.Context(t, 2*time.Minute)
	c := env.Dial(t)
	tq := harness.TaskQueue(t)
	startScenarioWorker(t, c, tq, nil, worker.Options{})
	runs := startMany(ctx, t, c, tq, coroutinesMin, CoroutinesWorkflow, func(int) []any { return nil }, nil)
	r, err := NewReplayer(func(reg worker.WorkflowRegistry) { reg.RegisterWorkflow(CoroutinesWorkflow) })
	if err != nil {
		t.Fatal(err)
	}
	o := coroutines{runs: len(runs)}
	orders := map[string]bool{}
	for _, run := range runs {
		h := mustHistory(ctx, t, c, run.GetID(), run.GetRunID())
		var order []string
		if err := run.Get(ctx, &order); err != nil {
			t.Fatalf("result of %s: %v", run.GetID(), err)
		}
		orders[strings.Join(order, " ")] = true // the recorded order, from the run's result
		rp := r.Replay(h, run.GetID())
		o.replayed++
		if ok, why := rp.ReproducesResult(h); !ok {
			o.differ = append(o.differ, run.GetID()+": "+why)
		}
	}
	o.orders = len(orders)
	harness.Decide(check, coroutinesPredicate, o, fmt.Sprintf("%d runs of 3 workflow.Go coroutines running a random number of activities before each send on 2 channels "+
		"read through a selector: %d distinct arrival orders recorded; %d replayed; replays whose order differed from the recorded one: %d %v",
		o.runs, o.orders, o.replayed, len(o.differ), o.differ), map[string]float64{"runs": float64(o.runs), "distinct_orders": float64(o.orders), "mismatches": float64(len(o.differ))})
}

func testDirectCalls(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "EX-05.direct-call-detected")
	ctx := harness.Context(t, 2*time.Minute)
	c := env.Dial(t)
	tq := harness.TaskQueue(t)
	startScenarioWorker(t, c, tq, nil, worker.Options{}, func(r worker.Registry) {
		r.RegisterWorkflow(nondeterminism.TimeBranchWorkflow)
		r.RegisterWorkflow(nondeterminism.RandBranchWorkflow)
	})

	// The time branch: recorded before the cutover, replayed after it. A run
	// whose first workflow task came after the cutover (a loaded machine) is
	// tried again with a longer window.
	var timeRun client.WorkflowRun
	var cutover time.Time
	timeBranch := ""
	for window := 1500 * time.Millisecond; timeBranch != "timer"; window *= 2 {
		if window > 20*time.Second {
			t.Fatalf("harness: no run reached its first workflow task before its cutover (last branch %q)", timeBranch)
		}
		cutover = time.Now().Add(window)
		timeRun = startWorkflow(ctx, t, c, scenarioOptions(tq, harness.UniqueID(t, "time")), nondeterminism.TimeBranchWorkflow, cutover)
		if err := timeRun.Get(ctx, &timeBranch); err != nil {
			t.Fatal(err)
		}
	}
	randRun := startWorkflow(ctx, t, c, scenarioOptions(tq, harness.UniqueID(t, "rand")), nondeterminism.RandBranchWorkflow)
	var randBranch string
	if err := randRun.Get(ctx, &randBranch); err != nil {
		t.Fatal(err)
	}
	r, err := NewReplayer(func(reg worker.WorkflowRegistry) {
		reg.RegisterWorkflow(nondeterminism.TimeBranchWorkflow)
		reg.RegisterWorkflow(nondeterminism.RandBranchWorkflow)
	})
	if err != nil {
		t.Fatal(err)
	}
	// Waiting for the cutover is the scenario: the code runs again later.
	if err := harness.WaitFor(ctx, 10*time.Second, 50*time.Millisecond, "the cutover", func(context.Context) (bool, error) {
		return time.Now().After(cutover), nil
	}); err != nil {
		t.Fatal(err)
	}
	o := directCalls{replays: 40}
	if err := r.Replay(mustHistory(ctx, t, c, timeRun.GetID(), ""), timeRun.GetID()).Err; err != nil {
		o.timeErr = err.Error()
	}

	// The random branch: each replay draws again; half of them take the other path.
	randH := mustHistory(ctx, t, c, randRun.GetID(), "")
	var sample error
	for range o.replays {
		rp := r.Replay(randH, randRun.GetID())
		switch ok, _ := rp.ReproducesResult(randH); {
		case rp.Err != nil:
			o.failed++
			if isNDE(rp.Err) {
				o.nde++
				sample = rp.Err
			}
		case !ok:
			o.silent++
		}
	}
	harness.Decide(check, directCallPredicate, o, fmt.Sprintf("time.Now branch recorded %q before the cutover; replay after it: %s; math/rand branch recorded %q; "+
		"%d replays: %d failed, %d of them with a non-determinism error, %d returned another result without failing; e.g. %v",
		timeBranch, o.timeErr, randBranch, o.replays, o.failed, o.nde, o.silent, sample),
		map[string]float64{"rand_replays": float64(o.replays), "rand_nde": float64(o.nde)})
}

// isNDE reports whether err carries the code of the SDK's non-determinism
// errors.
func isNDE(err error) bool {
	return err != nil && hasNDECode(err.Error())
}

// planted is, for each workflow of fixtures/nondeterminism, the violation it
// plants and a phrase workflowcheck's reason must contain ("" for a
// workflow that must come out clean).
var planted = map[string]struct{ violation, reason string }{
	"PlantedTimeNow":       {"time.Now", "time.Now"},
	"PlantedMathRand":      {"math/rand", "math/rand"},
	"PlantedGoStatement":   {"go statement", "starts goroutine"},
	"PlantedChannel":       {"native channel", "receives from channel"},
	"PlantedMapRange":      {"map range", "iterates over map"},
	"PlantedOSCall":        {"os call", "os.Stdout"},
	"PlantedSleep":         {"time.Sleep", "time.Sleep"},
	"PlantedTransitive":    {"map range in a called helper", "sumWeights"},
	"PlantedGlobalVar":     {"global variable", "runs"},
	"TimeBranchWorkflow":   {"time.Now branch", "time.Now"},
	"RandBranchWorkflow":   {"math/rand branch", "math/rand"},
	"OrderWorkflowChanged": {"", ""},
	"withActivities":       {"", ""},
}

const (
	plantedPkg   = "github.com/durabench/durabench/fixtures/nondeterminism"
	referencePkg = "github.com/durabench/durabench/scenarios/ex"
)

func testStaticCheck(t *testing.T) {
	env := harness.Get(t)
	flagCheck := env.Check(t, "EX-05.static-check-flags")
	cleanCheck := env.Check(t, "EX-05.reference-clean")
	// workflowcheck runs as a library over the packages and, for facts, every
	// package they depend on.
	pkgs, err := packages.Load(&packages.Config{Mode: packages.LoadAllSyntax, Dir: env.Root}, plantedPkg, referencePkg)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if packages.PrintErrors(pkgs) > 0 {
		t.Fatal("harness: packages to check do not load")
	}
	analyzer := wfcheck.NewChecker(wfcheck.Config{}).NewAnalyzer()
	graph, err := checker.Analyze([]*analysis.Analyzer{analyzer}, pkgs, nil)
	if err != nil {
		t.Fatalf("workflowcheck: %v", err)
	}
	reports := map[string]map[string][]string{} // package -> function -> first lines of diagnostics
	workflows := map[string][]string{}
	for _, act := range graph.Roots {
		path := act.Package.PkgPath
		workflows[path] = workflowFuncs(act.Package)
		reports[path] = map[string][]string{}
		for _, d := range act.Diagnostics {
			fn := enclosingFunc(act.Package, d.Pos)
			reports[path][fn] = append(reports[path][fn], strings.SplitN(d.Message, "\n", 2)[0])
		}
	}
	for _, fn := range workflows[plantedPkg] {
		if _, ok := planted[fn]; !ok {
			t.Fatalf("harness: workflow %s of fixtures/nondeterminism has no entry in the planted table", fn)
		}
	}

	var o staticFlags
	var missed []string
	for _, fn := range workflows[plantedPkg] {
		p, got := planted[fn], reports[plantedPkg][fn]
		if p.violation != "" {
			o.planted = append(o.planted, p.violation)
		}
		switch {
		case p.violation == "":
			if len(got) > 0 {
				o.falsePositives = append(o.falsePositives, fmt.Sprintf("%s: %v", fn, got))
			}
		case slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, p.reason) }):
			o.flagged = append(o.flagged, p.violation)
		default:
			missed = append(missed, fmt.Sprintf("%s (%s, diagnostics %v)", p.violation, fn, got))
		}
	}
	slices.Sort(o.flagged)
	harness.Decide(flagCheck, staticFlagsPredicate, o,
		fmt.Sprintf("workflowcheck %s over the %d workflow functions of fixtures/nondeterminism (%d with a planted violation): flagged %d %v; "+
			"missed %d %v; flagged a correct one: %v", moduleVersion(env.Root, "go.temporal.io/sdk/contrib/tools/workflowcheck/workflow"),
			len(workflows[plantedPkg]), len(o.planted), len(o.flagged), o.flagged, len(missed), missed, o.falsePositives),
		map[string]float64{"planted": float64(len(o.planted)), "flagged": float64(len(o.flagged))})

	ref := referenceClean{workflows: workflows[referencePkg], reports: reports[referencePkg]}
	harness.Decide(cleanCheck, referenceCleanPredicate, ref,
		fmt.Sprintf("workflowcheck over the %d workflow functions of scenarios/ex %v: %d reported %v",
			len(ref.workflows), ref.workflows, len(ref.reports), ref.noisy()),
		map[string]float64{"workflows": float64(len(ref.workflows)), "reported": float64(len(ref.reports))})
}

// workflowFuncs lists the functions and methods of pkg whose first parameter
// is a workflow.Context, which is what workflowcheck treats as a workflow.
func workflowFuncs(pkg *packages.Package) []string {
	var out []string
	for _, f := range pkg.Syntax {
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Type.Params == nil || len(fd.Type.Params.List) == 0 {
				continue
			}
			named, ok := types.Unalias(pkg.TypesInfo.TypeOf(fd.Type.Params.List[0].Type)).(*types.Named)
			if ok && named.Obj().Name() == "Context" && named.Obj().Pkg() != nil && strings.HasPrefix(named.Obj().Pkg().Path(), "go.temporal.io/sdk/") {
				out = append(out, fd.Name.Name)
			}
		}
	}
	slices.Sort(out)
	return out
}

// enclosingFunc names the function declared around pos (workflowcheck
// reports at the workflow function's name).
func enclosingFunc(pkg *packages.Package, pos token.Pos) string {
	for _, f := range pkg.Syntax {
		for _, decl := range f.Decls {
			if fd, ok := decl.(*ast.FuncDecl); ok && fd.Pos() <= pos && pos <= fd.End() {
				return fd.Name.Name
			}
		}
	}
	return pkg.Fset.Position(pos).String()
}

// moduleVersion is the version of the module providing pkg, as the go
// command resolves it in dir.
func moduleVersion(dir, pkg string) string {
	pkgs, err := packages.Load(&packages.Config{Mode: packages.NeedName | packages.NeedModule, Dir: dir}, pkg)
	if err != nil || len(pkgs) == 0 || pkgs[0].Module == nil {
		return "(unknown version)"
	}
	return pkgs[0].Module.Version
}
