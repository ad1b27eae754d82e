package ex

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/harness/ledger"
)

// TestEX02 measures the side-effect guarantee: an activity's result is
// memoised in history; its idempotency key (workflow id + activity id) is
// the same on every attempt, so an external store keyed by it drops the
// duplicates of retries and of a crash between the write and the completion
// report; and whether the engine itself deduplicates effects without a key.
func TestEX02(t *testing.T) {
	t.Parallel()
	t.Run("result_memoised", testResultMemoised)
	t.Run("retry_dedup", testRetryDedup)
	t.Run("crash_after_write", testCrashAfterWrite)
}

// effectFixture is one test's external system: a keyed store and a ledger
// of every execution, shared with worker child processes by path.
type effectFixture struct {
	env    *harness.Env
	tq     string
	store  EffectStore
	ledger string
}

func newEffectFixture(t *testing.T) effectFixture {
	env := harness.Get(t)
	dir := env.Scratch(t)
	store := filepath.Join(dir, "store")
	if err := os.Mkdir(store, 0o755); err != nil {
		t.Fatal(err)
	}
	return effectFixture{env: env, tq: harness.TaskQueue(t), store: EffectStore(store), ledger: filepath.Join(dir, "ledger.jsonl")}
}

func (f effectFixture) args(block bool) map[string]string {
	return map[string]string{argStore: string(f.store), argLedger: f.ledger, argBlock: strconv.FormatBool(block)}
}

func (f effectFixture) worker(t *testing.T, block bool) *harness.Worker {
	return f.env.StartWorker(t, scenarioRole, roleConfig(f.env, f.tq, f.args(block)))
}

// effectRun is what one EffectWorkflow left behind.
type effectRun struct {
	id         string
	out        EffectOutcome
	err        error
	executions []ledger.Entry // ledger lines of this run, in order
	stored     []string       // keys of this run in the store
	activityID string         // from ActivityTaskScheduled
	started    *historypb.ActivityTaskStartedEventAttributes
	finisher   string // identity of the worker that completed the last workflow task
}

// collect waits for the run and gathers the ledger, the store and the history.
func (f effectFixture) collect(ctx context.Context, t *testing.T, c client.Client, run client.WorkflowRun) effectRun {
	t.Helper()
	r := effectRun{id: run.GetID()}
	r.err = run.Get(ctx, &r.out)
	for _, e := range readLedger(t, f.ledger) {
		if strings.HasPrefix(e.Key, r.id+".") {
			r.executions = append(r.executions, e)
		}
	}
	keys, err := f.store.Keys()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.HasPrefix(k, r.id+".") {
			r.stored = append(r.stored, k)
		}
	}
	for _, ev := range mustHistory(ctx, t, c, r.id, "").GetEvents() {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			r.activityID = a.GetActivityId()
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil {
			r.started = a
		}
		if a := ev.GetWorkflowTaskCompletedEventAttributes(); a != nil {
			r.finisher = a.GetIdentity()
		}
	}
	return r
}

func (r effectRun) attempts() []int32 {
	out := make([]int32, len(r.executions))
	for i, e := range r.executions {
		out[i] = e.Attempt
	}
	return out
}

func (r effectRun) describe() string {
	lines := make([]string, len(r.executions))
	for i, e := range r.executions {
		lines[i] = fmt.Sprintf("attempt %d pid %d %s", e.Attempt, e.PID, e.Phase)
	}
	return fmt.Sprintf("result %+v (error: %v); ledger: [%s]; store holds %d effect(s) for the run",
		r.out, r.err, strings.Join(lines, "; "), len(r.stored))
}

func ranBy(identity string, pid int) bool {
	return strings.HasPrefix(identity, strconv.Itoa(pid)+"@")
}

func testResultMemoised(t *testing.T) {
	env := harness.Get(t)
	check := env.Check(t, "EX-02.result-memoised")
	ctx := harness.Context(t, 2*time.Minute)
	c := env.Dial(t)
	f := newEffectFixture(t)
	first := f.worker(t, false)
	run := startWorkflow(ctx, t, c, scenarioOptions(f.tq, harness.UniqueID(t, "wf")), EffectWorkflow, EffectInput{WaitForSignal: true})
	if err := waitEvent(ctx, c, run.GetID(), enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED); err != nil {
		t.Fatal(err)
	}
	if err := first.Kill(); err != nil {
		t.Fatalf("kill worker: %v", err)
	}
	second := f.worker(t, false)
	if err := c.SignalWorkflow(ctx, run.GetID(), "", continueSignal, nil); err != nil {
		t.Fatalf("signal: %v", err)
	}
	r := f.collect(ctx, t, c, run)
	ok := r.err == nil && len(r.executions) == 1 && r.out.PID == first.PID() && ranBy(r.finisher, second.PID())
	check.Result(ok, fmt.Sprintf("the activity ran on worker pid %d, which was SIGKILLed after ActivityTaskCompleted; worker pid %d "+
		"rebuilt the workflow from history and completed it (last workflow task by %q); %s",
		first.PID(), second.PID(), r.finisher, r.describe()),
		map[string]float64{"executions": float64(len(r.executions))})
}

func testRetryDedup(t *testing.T) {
	env := harness.Get(t)
	keyCheck := env.Check(t, "EX-02.stable-idempotency-key")
	dedupCheck := env.Check(t, "EX-02.ledger-dedup-on-retry")
	ctx := harness.Context(t, 2*time.Minute)
	c := env.Dial(t)
	f := newEffectFixture(t)
	startScenarioWorker(t, c, f.tq, f.args(false), worker.Options{})
	const failing = 2
	run := startWorkflow(ctx, t, c, scenarioOptions(f.tq, harness.UniqueID(t, "wf")), EffectWorkflow, EffectInput{FailAttempts: failing})
	r := f.collect(ctx, t, c, run)

	want := r.id + "." + r.activityID
	keys := map[string]bool{}
	for _, e := range r.executions {
		keys[e.Key] = true
	}
	keyOK := r.err == nil && r.activityID != "" && len(r.executions) == failing+1 &&
		slices.Equal(r.attempts(), []int32{1, 2, 3}) && len(keys) == 1 && keys[want]
	keyCheck.Result(keyOK, fmt.Sprintf("%d attempts (attempts 1-%d fail after their write); keys seen: %v; expected workflow id + activity id %q",
		len(r.executions), failing, sortedKeys(keys), want), map[string]float64{"attempts": float64(len(r.executions))})

	phases := make([]string, len(r.executions))
	for i, e := range r.executions {
		phases[i] = e.Phase
	}
	dedupOK := r.err == nil && len(r.executions) == failing+1 && len(r.stored) == 1 &&
		slices.Equal(phases, []string{effectApplied, effectDropped, effectDropped})
	dedupCheck.Result(dedupOK, fmt.Sprintf("an activity that writes and then fails, retried: %s", r.describe()),
		map[string]float64{"executions": float64(len(r.executions)), "effects": float64(len(r.stored))})
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func testCrashAfterWrite(t *testing.T) {
	env := harness.Get(t)
	crashCheck := env.Check(t, "EX-02.crash-after-write")
	accountCheck := env.Check(t, "EX-02.attempts-accounted")
	engineCheck := env.Check(t, "EX-02.engine-dedup-without-key")
	ctx := harness.Context(t, 2*time.Minute)
	c := env.Dial(t)
	f := newEffectFixture(t)
	// The first worker writes, then holds the completion until it is killed.
	first := f.worker(t, true)
	run := startWorkflow(ctx, t, c, scenarioOptions(f.tq, harness.UniqueID(t, "wf")), EffectWorkflow, EffectInput{})
	if err := waitLedger(ctx, f.ledger, 30*time.Second, "the first write", func(entries []ledger.Entry) bool {
		return slices.ContainsFunc(entries, func(e ledger.Entry) bool { return e.PID == first.PID() })
	}); err != nil {
		t.Fatal(err)
	}
	if err := first.Kill(); err != nil {
		t.Fatalf("kill worker: %v", err)
	}
	second := f.worker(t, false)
	r := f.collect(ctx, t, c, run)
	crashed := len(r.executions) > 0 && r.executions[0].PID == first.PID()

	crashOK := r.err == nil && crashed && len(r.executions) >= 2 && len(r.stored) == 1 && !r.out.Applied
	crashCheck.Result(crashOK, fmt.Sprintf("worker pid %d SIGKILLed after its write, before reporting completion; worker pid %d ran the retry: %s",
		first.PID(), second.PID(), r.describe()),
		map[string]float64{"executions": float64(len(r.executions)), "effects": float64(len(r.stored))})

	n := int32(len(r.executions))
	sequential := slices.Equal(r.attempts(), seq(n))
	histAttempt := r.started.GetAttempt()
	lastFailure := r.started.GetLastFailure().GetMessage()
	accountOK := r.err == nil && n >= 2 && sequential && histAttempt == n && r.out.Attempt == n && lastFailure != ""
	accountCheck.Result(accountOK, fmt.Sprintf("the ledger saw attempts %v; the SDK reported attempt %d to the completing execution; "+
		"history's ActivityTaskStarted records attempt %d with last failure %q", r.attempts(), r.out.Attempt, histAttempt, lastFailure),
		map[string]float64{"attempts": float64(n)})

	// Without a key the external system keeps every write: one per execution.
	engineCheck.Result(r.err == nil && crashed && n == 1, fmt.Sprintf("with no application idempotency key, the external system received %d writes for one "+
		"logical effect (the ledger keeps every execution: %v): the engine re-ran the activity after the crash and offers no dedupe or outbox "+
		"of its own for activity effects", n, r.attempts()), map[string]float64{"writes_without_key": float64(n)})
}

// seq is 1..n.
func seq(n int32) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(i + 1)
	}
	return out
}
