package ex

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/harness/ledger"
	"github.com/durabench/durabench/harness/stats"
)

// The chaos run's size: at least 200 concurrent workflows (the catalog's L5).
const (
	chaosWorkflows = 200
	chaosSteps     = 5
	chaosStepTime  = 150 * time.Millisecond
	chaosOutage    = 2 * time.Second
	minFaultGap    = 3 * time.Second
	// A step that finished less than this before a fault may not have had
	// its completion recorded by the server yet: it still counts as in flight.
	completionGrace = time.Second
)

// chaosFault is one planned fault, fired when a share of all steps is done.
type chaosFault struct {
	progress float64
	kind     string // "worker" or "server"
	worker   int
}

// firedFault is a fault as it happened: the process it killed and when.
type firedFault struct {
	kind string // "worker" or "server"
	pid  int    // the killed worker's or server's process
	at   time.Time
}

var chaosPlan = []chaosFault{
	{0.10, "worker", 0},
	{0.30, "worker", 1},
	{0.50, "server", 0},
	{0.70, "worker", 0},
}

func testChaos(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "EX-01.chaos")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	began := time.Now()
	srv, killable := env.KillableServer(t, harness.ServerOptions{}, check)
	if !killable {
		return
	}
	check.OnServer(srv) // a server of its own, to kill
	c := srv.Dial(t)
	tq := harness.TaskQueue(t)
	led := filepath.Join(env.Scratch(t), "ledger.jsonl")
	cfg := harness.RoleConfig{Address: srv.Address(), Namespace: "default", TaskQueue: tq, Args: map[string]string{argLedger: led}}
	// All workflows are started before any worker polls, so that they run
	// concurrently from the first step on.
	ids, runs := startChaosWorkflows(ctx, t, c, tq, harness.UniqueID(t, "chaos"), chaosWorkflows)
	workers := []*harness.Worker{env.StartWorker(t, stepsRole, cfg), env.StartWorker(t, stepsRole, cfg)}

	total := chaosWorkflows * chaosSteps
	var fired []firedFault
	var stalled error
	for _, f := range chaosPlan {
		// Faults are spread out: each waits for its share of progress and for
		// the previous fault to be minFaultGap behind.
		want := int(f.progress * float64(total))
		notBefore := began
		if len(fired) > 0 {
			notBefore = fired[len(fired)-1].at.Add(minFaultGap)
		}
		if stalled = waitLedger(ctx, led, 3*time.Minute, fmt.Sprintf("%d of %d steps done", want, total), func(e []ledger.Entry) bool {
			return ledger.CountPhase(e, ledger.Done) >= want && time.Now().After(notBefore)
		}); stalled != nil {
			break
		}
		at := time.Now()
		var pid int
		switch f.kind {
		case "worker":
			pid = workers[f.worker].PID()
			if err := workers[f.worker].Kill(); err != nil {
				t.Fatalf("kill worker: %v", err)
			}
			workers[f.worker] = env.StartWorker(t, stepsRole, cfg)
		case "server":
			pid = srv.PID()
			if err := srv.Kill(); err != nil {
				t.Fatalf("kill server: %v", err)
			}
			select { // the outage's length is part of the plan
			case <-time.After(chaosOutage):
			case <-ctx.Done():
				t.Fatal("deadline during the outage")
			}
			if err := srv.Restart(); err != nil {
				t.Fatalf("restart server: %v", err)
			}
		}
		fired = append(fired, firedFault{kind: f.kind, pid: pid, at: at})
	}

	acc := account(ctx, t, c, led, ids, runs, fired)
	a := acc.analysis
	obs := chaosObservation{planned: len(chaosPlan), fired: len(fired), workflows: chaosWorkflows, completed: acc.completed,
		duplicates: a.duplicates, unexplained: a.unexplained}
	if stalled != nil {
		obs.stalled = stalled.Error()
	}
	rec := stats.Summarize(a.recovery)
	detail := fmt.Sprintf(
		"%d workflows × %d steps, 2 worker processes; faults fired %d of %d planned (%s); completed %d, lost %d%s; "+
			"executions %d for %d steps, %s; steps in flight at faults (on the killed worker, or anywhere at a server kill) %d; "+
			"recovery (fault → next progress of an affected workflow) p50 %.2fs p95 %.2fs over %d samples (%s); run took %.1fs",
		chaosWorkflows, chaosSteps, len(fired), len(chaosPlan), describeFaults(fired, began), acc.completed, chaosWorkflows-acc.completed,
		stalledOr(stalled, acc.failures), a.executions, total, a.describeDuplicates(), a.inFlight,
		rec.P50, rec.P95, rec.N, describeRecovery(a.byKind), time.Since(began).Seconds())
	metrics := rec.Metrics("recovery_s")
	maps.Copy(metrics, a.metrics())
	maps.Copy(metrics, map[string]float64{
		"workflows": chaosWorkflows, "completed": float64(acc.completed), "lost": float64(chaosWorkflows - acc.completed),
		"faults": float64(len(fired)),
	})
	harness.Decide(check, chaosPredicate, obs, detail, metrics)
}

// The accounting control's size: small, no fault, one planted duplicate.
const (
	controlWorkflows = 20
	plantedIndex     = 7 // the workflow whose step plantedStep writes its ledger entries twice
	plantedStep      = 3
)

// testControlChaosAccounting runs the chaos accounting and predicate on a
// small run with no fault, in which one execution of one step writes its
// ledger entries twice as if the step had run twice: the accounting must
// count that duplicate as unexplained and the chaos predicate must fail.
func testControlChaosAccounting(t *testing.T) {
	env := harness.Get(t)
	control := env.Control(t, "EX-01.control-chaos-accounting")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	began := time.Now()
	c := env.Dial(t)
	tq := harness.TaskQueue(t)
	led := filepath.Join(env.Scratch(t), "ledger.jsonl")
	prefix := harness.UniqueID(t, "acct")
	planted := ledger.StepKey{Key: chaosID(prefix, plantedIndex), Step: plantedStep}
	cfg := harness.RoleConfig{Address: env.Options.HostPort, Namespace: env.Options.Namespace, TaskQueue: tq,
		Args: map[string]string{argLedger: led, argPlant: plantArg(planted)}}
	ids, runs := startChaosWorkflows(ctx, t, c, tq, prefix, controlWorkflows)
	w := env.StartWorker(t, stepsRole, cfg)

	acc := account(ctx, t, c, led, ids, runs, nil)
	if n := ledger.Starts(acc.entries)[planted]; n != 2 {
		t.Fatalf("harness: the planted duplicate is not in the ledger: step %d of %s has %d executions, want 2", planted.Step, planted.Key, n)
	}
	a := acc.analysis
	obs := chaosObservation{workflows: controlWorkflows, completed: acc.completed, duplicates: a.duplicates, unexplained: a.unexplained}
	detail := fmt.Sprintf(
		"%d workflows × %d steps on 1 worker process (pid %d), no fault planned; planted: step %d of workflow %s writes its ledger entries twice; "+
			"completed %d, lost %d%s; executions %d for %d steps, %s; run took %.1fs",
		controlWorkflows, chaosSteps, w.PID(), planted.Step, planted.Key, acc.completed, controlWorkflows-acc.completed,
		stalledOr(nil, acc.failures), a.executions, controlWorkflows*chaosSteps, a.describeDuplicates(), time.Since(began).Seconds())
	harness.Decide(control, chaosPredicate, obs, detail, a.metrics())
}

// chaosID is the id of workflow i of a chaos run.
func chaosID(prefix string, i int) string { return fmt.Sprintf("%s-%03d", prefix, i) }

// startChaosWorkflows starts n StepsWorkflows of chaosSteps steps at once.
func startChaosWorkflows(ctx context.Context, t *testing.T, c client.Client, tq, prefix string, n int) ([]string, []client.WorkflowRun) {
	t.Helper()
	ids := make([]string, n)
	runs := make([]client.WorkflowRun, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range ids {
		ids[i] = chaosID(prefix, i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			runs[i], errs[i] = c.ExecuteWorkflow(ctx, stepsOptions(tq, ids[i]), StepsWorkflow,
				StepsInput{Steps: chaosSteps, StepDuration: chaosStepTime})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("starting the chaos workflows: %v", err)
	}
	return ids, runs
}

// accounting is the end of a chaos run: results, ledger and its analysis.
type accounting struct {
	completed int
	failures  []string // a few workflows that did not complete, for the detail
	entries   []ledger.Entry
	analysis  chaosAnalysis
}

// account waits for every run, reads the ledger, fetches the history of
// each workflow with a duplicate execution and accounts for every
// duplicate against the faults that fired and the histories.
func account(ctx context.Context, t *testing.T, c client.Client, led string, ids []string, runs []client.WorkflowRun, fired []firedFault) accounting {
	t.Helper()
	var acc accounting
	for i, r := range waitAll(ctx, runs) {
		if r.err == nil && slices.Equal(r.out, expectedOutputs(chaosSteps)) {
			acc.completed++
		} else if len(acc.failures) < 3 {
			acc.failures = append(acc.failures, fmt.Sprintf("%s: %v %v", ids[i], r.out, r.err))
		}
	}
	closed := closeTimes(ctx, c, ids)
	acc.entries = readLedger(t, led)
	retries := map[ledger.StepKey]retryEvidence{}
	var historyErrs []error
	for _, id := range duplicated(acc.entries) {
		events, err := harness.History(ctx, c, id, "")
		if err != nil {
			historyErrs = append(historyErrs, err)
			continue
		}
		ev, err := stepRetries(events)
		if err != nil {
			historyErrs = append(historyErrs, fmt.Errorf("history of %s: %w", id, err))
			continue
		}
		for step, e := range ev {
			retries[ledger.StepKey{Key: id, Step: step}] = e
		}
	}
	acc.analysis = analyseChaos(acc.entries, fired, closed, retries)
	acc.analysis.historyErrs = historyErrs
	return acc
}

func stalledOr(stalled error, failures []string) string {
	var parts []string
	if stalled != nil {
		parts = append(parts, "stalled: "+stalled.Error())
	}
	if len(failures) > 0 {
		parts = append(parts, "e.g. "+strings.Join(failures, "; "))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

func describeRecovery(byKind map[string][]float64) string {
	var parts []string
	for _, kind := range slices.Sorted(maps.Keys(byKind)) {
		s := stats.Summarize(byKind[kind])
		parts = append(parts, fmt.Sprintf("after %s kills p50 %.2fs p95 %.2fs, n=%d", kind, s.P50, s.P95, s.N))
	}
	return strings.Join(parts, "; ")
}

func describeFaults(fired []firedFault, began time.Time) string {
	parts := make([]string, len(fired))
	for i, f := range fired {
		parts[i] = fmt.Sprintf("%s pid %d killed at %.1fs", f.kind, f.pid, f.at.Sub(began).Seconds())
	}
	return strings.Join(parts, ", ")
}

type runResult struct {
	out []string
	err error
}

// waitAll waits for every run concurrently, retrying through outages.
func waitAll(ctx context.Context, runs []client.WorkflowRun) []runResult {
	out := make([]runResult, len(runs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 50)
	for i, run := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i].err = harness.AwaitResult(ctx, run, &out[i].out)
		}()
	}
	wg.Wait()
	return out
}

// closeTimes returns each closed workflow's close time.
func closeTimes(ctx context.Context, c client.Client, ids []string) map[string]time.Time {
	out := map[string]time.Time{}
	for _, id := range ids {
		d, err := c.DescribeWorkflowExecution(ctx, id, "")
		if err != nil {
			continue
		}
		if ct := d.GetWorkflowExecutionInfo().GetCloseTime(); ct != nil {
			out[id] = ct.AsTime()
		}
	}
	return out
}

// duplicated lists the workflows of which some step has more than one
// execution in the ledger.
func duplicated(entries []ledger.Entry) []string {
	seen := map[string]bool{}
	for k, n := range ledger.Starts(entries) {
		if n > 1 {
			seen[k.Key] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// retryEvidence is what a workflow's history says about the activity of one
// step: the attempt of its final ActivityTaskStarted event, and whether that
// event's last failure (the failure of the attempt before) is a timeout.
type retryEvidence struct {
	attempt      int32
	afterTimeout bool
}

// stepRetries reads, for each step of a StepsWorkflow history, the retry
// evidence of its activity. The step is read from the input of the
// ActivityTaskScheduled event, and the ActivityTaskStarted event is matched
// to it by its scheduled event id. The server writes one ActivityTaskStarted
// per scheduled activity, for the attempt that closed it, with the previous
// attempt's failure as its last failure.
func stepRetries(events []*historypb.HistoryEvent) (map[int]retryEvidence, error) {
	stepOf := map[int64]int{}
	out := map[int]retryEvidence{}
	dc := converter.GetDefaultDataConverter()
	for _, ev := range events {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			var in StepInput
			if err := dc.FromPayloads(a.GetInput(), &in); err != nil {
				return nil, fmt.Errorf("input of activity %s: %w", a.GetActivityId(), err)
			}
			stepOf[ev.GetEventId()] = in.Step
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil {
			step, ok := stepOf[a.GetScheduledEventId()]
			if !ok {
				return nil, fmt.Errorf("ActivityTaskStarted %d: no ActivityTaskScheduled %d", ev.GetEventId(), a.GetScheduledEventId())
			}
			out[step] = retryEvidence{attempt: a.GetAttempt(), afterTimeout: a.GetLastFailure().GetTimeoutFailureInfo() != nil}
		}
	}
	return out, nil
}

type chaosAnalysis struct {
	executions  int
	duplicates  int                  // executions beyond one per step
	byWorker    int                  // duplicates of an execution in flight on a killed worker's process
	byServer    int                  // duplicates of an execution in flight at a server kill
	timedOut    int                  // duplicates of an attempt that the history shows timed out and was retried
	unexplained int                  // duplicates explained by none of these
	examples    []string             // a few unexplained duplicates, for the detail
	inFlight    int                  // (fault, step) pairs with an execution hit by the fault
	recovery    []float64            // seconds, per (fault, affected workflow)
	byKind      map[string][]float64 // the same, per kind of fault
	historyErrs []error              // histories that could not be read (their duplicates stay unexplained)
}

func (a chaosAnalysis) describeDuplicates() string {
	s := fmt.Sprintf("duplicates %d: in flight on a killed worker's process %d, in flight at a server kill %d, "+
		"re-executed after a start-to-close timeout shown in history (final ActivityTaskStarted attempt > 1, last failure a timeout) %d, unexplained %d",
		a.duplicates, a.byWorker, a.byServer, a.timedOut, a.unexplained)
	if len(a.examples) > 0 {
		s += " (e.g. " + strings.Join(a.examples, "; ") + ")"
	}
	if len(a.historyErrs) > 0 {
		s += fmt.Sprintf("; %d histories unreadable: %v", len(a.historyErrs), errors.Join(a.historyErrs...))
	}
	return s
}

func (a chaosAnalysis) metrics() map[string]float64 {
	return map[string]float64{
		"executions": float64(a.executions), "duplicates": float64(a.duplicates), "in_flight_at_faults": float64(a.inFlight),
		"duplicates_killed_worker": float64(a.byWorker), "duplicates_server_kill": float64(a.byServer),
		"timed_out_reexecutions": float64(a.timedOut), "unexplained_duplicates": float64(a.unexplained),
	}
}

type execKey struct {
	key     string
	step    int
	attempt int32
	pid     int
}

// analyseChaos accounts for every execution in the ledger against the faults
// and the retry evidence of the histories. A step may run more than once
// only if an earlier execution was hit by a fault (in flight on the worker
// process a worker kill killed, or on any worker at a server kill), or if
// the history shows that the activity was retried after a start-to-close
// timeout: its final ActivityTaskStarted has an attempt above 1 and above
// the earlier execution's, and a timeout as its last failure
// (at-least-once). Anything else is a duplicate the platform owes an
// explanation for.
func analyseChaos(entries []ledger.Entry, fired []firedFault, closed map[string]time.Time, retries map[ledger.StepKey]retryEvidence) chaosAnalysis {
	a := chaosAnalysis{byKind: map[string][]float64{}}
	doneAt := map[execKey]time.Time{}
	for _, e := range entries {
		if e.Phase == ledger.Done {
			doneAt[execKey{e.Key, e.Step, e.Attempt, e.PID}] = e.At
		}
	}
	// hit: execution e was in flight when fault f killed the process it ran
	// on (a server kill cuts every worker off).
	hit := func(e ledger.Entry, f firedFault) bool {
		if e.At.After(f.at) || (f.kind == "worker" && e.PID != f.pid) {
			return false
		}
		d, ok := doneAt[execKey{e.Key, e.Step, e.Attempt, e.PID}]
		return !ok || d.After(f.at.Add(-completionGrace))
	}
	byStep := map[ledger.StepKey][]ledger.Entry{}
	for _, e := range entries {
		if e.Phase == ledger.Start {
			a.executions++
			k := ledger.StepKey{Key: e.Key, Step: e.Step}
			byStep[k] = append(byStep[k], e)
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(byStep), func(x, y ledger.StepKey) int {
		return cmp.Or(strings.Compare(x.Key, y.Key), cmp.Compare(x.Step, y.Step))
	}) {
		execs := byStep[k]
		sort.SliceStable(execs, func(i, j int) bool { return execs[i].At.Before(execs[j].At) })
		a.duplicates += len(execs) - 1
		for _, e := range execs[:len(execs)-1] {
			i := slices.IndexFunc(fired, func(f firedFault) bool { return hit(e, f) })
			ev, ok := retries[k]
			switch {
			case i >= 0 && fired[i].kind == "worker":
				a.byWorker++
			case i >= 0:
				a.byServer++
			case ok && ev.afterTimeout && ev.attempt > 1 && e.Attempt < ev.attempt:
				a.timedOut++
			default:
				a.unexplained++
				if len(a.examples) < 3 {
					a.examples = append(a.examples, fmt.Sprintf("%s step %d attempt %d on pid %d, %d executions", k.Key, k.Step, e.Attempt, e.PID, len(execs)))
				}
			}
		}
	}
	for _, f := range fired {
		for k, execs := range byStep {
			if !slices.ContainsFunc(execs, func(e ledger.Entry) bool { return hit(e, f) }) {
				continue
			}
			a.inFlight++
			if next, ok := nextProgress(byStep, closed, k, f.at); ok {
				sec := next.Sub(f.at).Seconds()
				a.recovery = append(a.recovery, sec)
				a.byKind[f.kind] = append(a.byKind[f.kind], sec)
			}
		}
	}
	return a
}

// nextProgress is the first sign after t that workflow k.Key moved past step
// k.Step: a later step starting, or the workflow closing.
func nextProgress(byStep map[ledger.StepKey][]ledger.Entry, closed map[string]time.Time, k ledger.StepKey, t time.Time) (time.Time, bool) {
	for step := k.Step + 1; step <= chaosSteps; step++ {
		for _, e := range byStep[ledger.StepKey{Key: k.Key, Step: step}] {
			if e.At.After(t) {
				return e.At, true
			}
		}
	}
	ct, ok := closed[k.Key]
	return ct, ok && ct.After(t)
}

// TestAnalyseChaos checks the accounting on hand-made ledgers, so that a
// duplicate the platform cannot explain is really counted as such.
func TestAnalyseChaos(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	entry := func(phase string, step, pid int, attempt int32, ms int) ledger.Entry {
		return ledger.Entry{Key: "wf", Step: step, Attempt: attempt, PID: pid, Phase: phase, At: at(ms)}
	}
	start := func(step, pid int, attempt int32, ms int) ledger.Entry {
		return entry(ledger.Start, step, pid, attempt, ms)
	}
	done := func(step, pid int, attempt int32, ms int) ledger.Entry {
		return entry(ledger.Done, step, pid, attempt, ms)
	}
	const killed, other, restarted, server = 101, 102, 103, 900 // pids: two workers, the killed one's successor, the server
	workerKill := []firedFault{{"worker", killed, at(5000)}}
	serverKill := []firedFault{{"server", server, at(5000)}}
	timeoutOnStep1 := map[ledger.StepKey]retryEvidence{{Key: "wf", Step: 1}: {attempt: 2, afterTimeout: true}}
	type counts struct{ duplicates, byWorker, byServer, timedOut, unexplained, inFlight int }
	tests := []struct {
		name    string
		entries []ledger.Entry
		fired   []firedFault
		retries map[ledger.StepKey]retryEvidence
		want    counts
	}{
		{"once each", []ledger.Entry{start(1, killed, 1, 0), done(1, killed, 1, 150), start(2, killed, 1, 200), done(2, killed, 1, 350)},
			workerKill, nil, counts{}},
		{"in flight on the killed worker's pid", []ledger.Entry{start(1, killed, 1, 4900), start(1, restarted, 2, 8000), done(1, restarted, 2, 8150)},
			workerKill, nil, counts{duplicates: 1, byWorker: 1, inFlight: 1}},
		{"done on the killed pid just before the kill, completion not yet recorded", []ledger.Entry{start(1, killed, 1, 4700), done(1, killed, 1, 4850), start(1, restarted, 2, 8000)},
			workerKill, nil, counts{duplicates: 1, byWorker: 1, inFlight: 1}},
		{"in flight on another pid at a worker kill", []ledger.Entry{start(1, other, 1, 4900), done(1, other, 1, 5050), start(1, restarted, 2, 5200), done(1, restarted, 2, 5350)},
			workerKill, nil, counts{duplicates: 1, unexplained: 1}},
		{"in flight at a server kill, on any pid", []ledger.Entry{start(1, other, 1, 4900), start(1, restarted, 2, 8000), done(1, restarted, 2, 8150)},
			serverKill, nil, counts{duplicates: 1, byServer: 1, inFlight: 1}},
		{"retried after a timeout the history shows", []ledger.Entry{start(1, other, 1, 6000), done(1, other, 1, 10000), start(1, restarted, 2, 9100), done(1, restarted, 2, 9250)},
			workerKill, timeoutOnStep1, counts{duplicates: 1, timedOut: 1}},
		{"the same without the history's evidence", []ledger.Entry{start(1, other, 1, 6000), done(1, other, 1, 10000), start(1, restarted, 2, 9100), done(1, restarted, 2, 9250)},
			workerKill, nil, counts{duplicates: 1, unexplained: 1}},
		{"the history shows a retry after an application failure, not a timeout", []ledger.Entry{start(1, other, 1, 6000), done(1, other, 1, 6150), start(1, other, 2, 6500)},
			workerKill, map[ledger.StepKey]retryEvidence{{Key: "wf", Step: 1}: {attempt: 2}}, counts{duplicates: 1, unexplained: 1}},
		{"a timeout in history, but the duplicate has the final attempt's number", []ledger.Entry{start(1, other, 2, 6000), done(1, other, 2, 6150), start(1, other, 2, 6500)},
			workerKill, timeoutOnStep1, counts{duplicates: 1, unexplained: 1}},
		{"a planted duplicate with no fault", []ledger.Entry{start(1, other, 1, 6000), done(1, other, 1, 6150), start(1, other, 1, 6151), done(1, other, 1, 6300)},
			nil, map[ledger.StepKey]retryEvidence{{Key: "wf", Step: 1}: {attempt: 1}}, counts{duplicates: 1, unexplained: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := analyseChaos(tt.entries, tt.fired, map[string]time.Time{}, tt.retries)
			assert.Equal(t, tt.want, counts{a.duplicates, a.byWorker, a.byServer, a.timedOut, a.unexplained, a.inFlight})
		})
	}
}

// TestStepRetries reads the retry evidence of each step from a hand-made
// history: step 1 closed on its first attempt, step 2 on attempt 2 after a
// start-to-close timeout, step 3 on attempt 3 after an application failure.
func TestStepRetries(t *testing.T) {
	dc := converter.GetDefaultDataConverter()
	var events []*historypb.HistoryEvent
	add := func(step int, attempt int32, last *failurepb.Failure) {
		in, err := dc.ToPayloads(StepInput{Step: step, Duration: chaosStepTime})
		require.NoError(t, err)
		scheduled := int64(len(events) + 1)
		events = append(events,
			&historypb.HistoryEvent{EventId: scheduled, EventType: enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
				Attributes: &historypb.HistoryEvent_ActivityTaskScheduledEventAttributes{ActivityTaskScheduledEventAttributes: &historypb.ActivityTaskScheduledEventAttributes{
					ActivityId: strconv.Itoa(step), Input: in}}},
			&historypb.HistoryEvent{EventId: scheduled + 1, EventType: enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED,
				Attributes: &historypb.HistoryEvent_ActivityTaskStartedEventAttributes{ActivityTaskStartedEventAttributes: &historypb.ActivityTaskStartedEventAttributes{
					ScheduledEventId: scheduled, Attempt: attempt, LastFailure: last}}})
	}
	add(1, 1, nil)
	add(2, 2, &failurepb.Failure{Message: "activity StartToClose timeout", FailureInfo: &failurepb.Failure_TimeoutFailureInfo{
		TimeoutFailureInfo: &failurepb.TimeoutFailureInfo{TimeoutType: enumspb.TIMEOUT_TYPE_START_TO_CLOSE}}})
	add(3, 3, &failurepb.Failure{Message: "boom", FailureInfo: &failurepb.Failure_ApplicationFailureInfo{
		ApplicationFailureInfo: &failurepb.ApplicationFailureInfo{Type: "Boom"}}})
	got, err := stepRetries(events)
	require.NoError(t, err)
	assert.Equal(t, map[int]retryEvidence{1: {attempt: 1}, 2: {attempt: 2, afterTimeout: true}, 3: {attempt: 3}}, got)
}

func TestParsePlant(t *testing.T) {
	k := ledger.StepKey{Key: "acct-TestEX01-control#x-000", Step: 3}
	got, err := parsePlant(plantArg(k))
	require.NoError(t, err)
	assert.Equal(t, k, got)
	none, err := parsePlant("")
	require.NoError(t, err)
	assert.Equal(t, ledger.StepKey{}, none)
	for _, bad := range []string{"wf", "wf#", "wf#0", "#3", "wf#x"} {
		_, err := parsePlant(bad)
		assert.Error(t, err, bad)
	}
}
