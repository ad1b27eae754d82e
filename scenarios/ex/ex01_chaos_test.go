package ex

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.temporal.io/sdk/client"

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

type firedFault struct {
	kind string
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
	c := srv.Dial(t)
	tq := harness.TaskQueue(t)
	led := filepath.Join(env.Scratch(t), "ledger.jsonl")
	cfg := harness.RoleConfig{Address: srv.Address(), Namespace: "default", TaskQueue: tq, Args: map[string]string{"ledger": led}}
	// All workflows are started before any worker polls, so that they run
	// concurrently from the first step on.
	ids := make([]string, chaosWorkflows)
	runs := make([]client.WorkflowRun, chaosWorkflows)
	prefix := harness.UniqueID(t, "chaos")
	startErrs := make([]error, chaosWorkflows)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%03d", prefix, i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			runs[i], startErrs[i] = c.ExecuteWorkflow(ctx, stepsOptions(tq, ids[i]), StepsWorkflow,
				StepsInput{Steps: chaosSteps, StepDuration: chaosStepTime})
		}()
	}
	wg.Wait()
	if err := errors.Join(startErrs...); err != nil {
		t.Fatalf("starting the chaos workflows: %v", err)
	}
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
		switch f.kind {
		case "worker":
			if err := workers[f.worker].Kill(); err != nil {
				t.Fatalf("kill worker: %v", err)
			}
			workers[f.worker] = env.StartWorker(t, stepsRole, cfg)
		case "server":
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
		fired = append(fired, firedFault{f.kind, at})
	}

	results := waitAll(ctx, runs)
	closed := closeTimes(ctx, c, ids)
	entries := readLedger(t, led)
	a := analyseChaos(entries, fired, closed)
	completed, failures := 0, []string{}
	for i, r := range results {
		if r.err == nil && slices.Equal(r.out, expectedOutputs(chaosSteps)) {
			completed++
		} else if len(failures) < 3 {
			failures = append(failures, fmt.Sprintf("%s: %v %v", ids[i], r.out, r.err))
		}
	}
	lost := chaosWorkflows - completed
	rec := stats.Summarize(a.recovery)
	ok := stalled == nil && len(fired) == len(chaosPlan) && lost == 0 && a.unexplained == 0
	detail := fmt.Sprintf(
		"%d workflows × %d steps, 2 worker processes; faults fired %d of %d planned (%s); completed %d, lost %d%s; "+
			"executions %d for %d steps, duplicates %d, in flight at faults %d, re-executions after a start-to-close timeout %d, "+
			"duplicates explained by neither in-flight work nor a timeout %d; "+
			"recovery (fault → next progress of an affected workflow) p50 %.2fs p95 %.2fs over %d samples (%s); run took %.1fs",
		chaosWorkflows, chaosSteps, len(fired), len(chaosPlan), describeFaults(fired, began), completed, lost, stalledOr(stalled, failures),
		a.executions, total, a.duplicates, a.inFlight, a.timedOut, a.unexplained,
		rec.P50, rec.P95, rec.N, describeRecovery(a.byKind), time.Since(began).Seconds())
	metrics := rec.Metrics("recovery_s")
	for k, v := range map[string]float64{
		"workflows": chaosWorkflows, "completed": float64(completed), "lost": float64(lost),
		"executions": float64(a.executions), "duplicates": float64(a.duplicates), "in_flight_at_faults": float64(a.inFlight),
		"unexplained_duplicates": float64(a.unexplained), "faults": float64(len(fired)), "timed_out_reexecutions": float64(a.timedOut),
	} {
		metrics[k] = v
	}
	check.Result(ok, detail, metrics)
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
		parts[i] = fmt.Sprintf("%s kill at %.1fs", f.kind, f.at.Sub(began).Seconds())
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

type chaosAnalysis struct {
	executions  int
	duplicates  int                  // executions beyond one per step
	inFlight    int                  // executions in flight at some fault
	timedOut    int                  // re-executions after the earlier run's start-to-close timeout
	unexplained int                  // re-executions explained by neither a fault nor a timeout
	recovery    []float64            // seconds, per (fault, affected workflow)
	byKind      map[string][]float64 // the same, per kind of fault
}

type execKey struct {
	key     string
	step    int
	attempt int32
	pid     int
}

// analyseChaos accounts for every execution in the ledger against the faults.
// A step may run more than once only if an earlier execution was in flight
// at a fault, or ran past its start-to-close timeout (at-least-once);
// anything else is a duplicate the platform owes an explanation for.
func analyseChaos(entries []ledger.Entry, fired []firedFault, closed map[string]time.Time) chaosAnalysis {
	a := chaosAnalysis{byKind: map[string][]float64{}}
	doneAt := map[execKey]time.Time{}
	for _, e := range entries {
		if e.Phase == ledger.Done {
			doneAt[execKey{e.Key, e.Step, e.Attempt, e.PID}] = e.At
		}
	}
	inFlightAt := func(e ledger.Entry, f firedFault) bool {
		if e.At.After(f.at) {
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
	for _, execs := range byStep {
		sort.Slice(execs, func(i, j int) bool { return execs[i].At.Before(execs[j].At) })
		a.duplicates += len(execs) - 1
		for i, e := range execs[:len(execs)-1] {
			switch {
			case slices.ContainsFunc(fired, func(f firedFault) bool { return inFlightAt(e, f) }):
			case execs[i+1].At.Sub(e.At) >= stepStartToClose:
				// The step never fails, so a retry this late follows its own
				// start-to-close timeout (a worker starved on a loaded machine):
				// at-least-once, not a fault's work.
				a.timedOut++
			default:
				a.unexplained++
			}
		}
	}
	for _, f := range fired {
		for k, execs := range byStep {
			if !slices.ContainsFunc(execs, func(e ledger.Entry) bool { return inFlightAt(e, f) }) {
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
	start := func(step, pid, ms int) ledger.Entry {
		return ledger.Entry{Key: "wf", Step: step, Attempt: 1, PID: pid, Phase: ledger.Start, At: at(ms)}
	}
	done := func(step, pid, ms int) ledger.Entry {
		return ledger.Entry{Key: "wf", Step: step, Attempt: 1, PID: pid, Phase: ledger.Done, At: at(ms)}
	}
	kill := []firedFault{{"worker", at(5000)}}
	tests := []struct {
		name                                 string
		entries                              []ledger.Entry
		duplicates, timedOut, unexplained, n int
	}{
		{"once each", []ledger.Entry{start(1, 1, 0), done(1, 1, 150), start(2, 1, 200), done(2, 1, 350)}, 0, 0, 0, 0},
		{"in flight at the kill", []ledger.Entry{start(1, 1, 4900), start(1, 2, 8000), done(1, 2, 8150)}, 1, 0, 0, 1},
		{"done just before the kill", []ledger.Entry{start(1, 1, 4700), done(1, 1, 4850), start(1, 2, 8000)}, 1, 0, 0, 1},
		{"after its own timeout", []ledger.Entry{start(1, 1, 6000), done(1, 1, 10000), start(1, 2, 9100)}, 1, 1, 0, 0},
		{"unexplained", []ledger.Entry{start(1, 1, 6000), done(1, 1, 6150), start(1, 2, 6500)}, 1, 0, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := analyseChaos(tt.entries, kill, map[string]time.Time{})
			assert.Equal(t, []int{tt.duplicates, tt.timedOut, tt.unexplained, tt.n},
				[]int{a.duplicates, a.timedOut, a.unexplained, a.inFlight})
		})
	}
}
