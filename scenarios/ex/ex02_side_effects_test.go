package ex

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
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
	o := memoised{run: r, first: first.PID(), second: second.PID()}
	harness.Decide(check, memoisedPredicate, o, fmt.Sprintf("the activity ran on worker pid %d, which was SIGKILLed after ActivityTaskCompleted; worker pid %d "+
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
	o := retried{run: r, failing: failing}

	keys := map[string]bool{}
	for _, e := range r.executions {
		keys[e.Key] = true
	}
	harness.Decide(keyCheck, stableKeyPredicate, o, fmt.Sprintf("%d attempts %v (attempts 1-%d fail after their write; error: %v); keys seen: %v; "+
		"workflow id + activity id from history's ActivityTaskScheduled: %q",
		len(r.executions), r.attempts(), failing, r.err, slices.Sorted(maps.Keys(keys)), r.id+"."+r.activityID),
		map[string]float64{"attempts": float64(len(r.executions))})
	harness.Decide(dedupCheck, retryDedupPredicate, o, fmt.Sprintf("an activity that writes and then fails, retried: %s", r.describe()),
		map[string]float64{"executions": float64(len(r.executions)), "effects": float64(len(r.stored))})
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
	o := crashAfterWrite{run: r, killed: first.PID()}

	harness.Decide(crashCheck, crashAfterWritePredicate, o, fmt.Sprintf("worker pid %d SIGKILLed after its write, before reporting completion; worker pid %d ran the retry: %s",
		first.PID(), second.PID(), r.describe()),
		map[string]float64{"executions": float64(len(r.executions)), "effects": float64(len(r.stored))})

	n := len(r.executions)
	lastFailure := r.started.GetLastFailure()
	harness.Decide(accountCheck, attemptsPredicate, o, fmt.Sprintf("the external system saw %d executions, numbered by the SDK %v; "+
		"history's ActivityTaskStarted records attempt %d with last failure %q (a timeout: %v)",
		n, r.attempts(), r.started.GetAttempt(), lastFailure.GetMessage(), lastFailure.GetTimeoutFailureInfo() != nil),
		map[string]float64{"attempts": float64(n)})

	// Without a key the external system keeps every write: the ledger,
	// which records each execution, stands for it.
	writes := make([]string, n)
	for i, e := range r.executions {
		writes[i] = fmt.Sprintf("attempt %d by pid %d", e.Attempt, e.PID)
	}
	harness.Decide(engineCheck, engineDedupPredicate, o, fmt.Sprintf("with no application idempotency key, the external system (the ledger of every "+
		"execution) received %d write(s) for one activity: [%s]; worker pid %d, SIGKILLed after its write, made the first: %v; "+
		"history's ActivityTaskStarted records attempt %d after %q; the workflow's result error: %v",
		n, strings.Join(writes, "; "), first.PID(), o.crashed(), r.started.GetAttempt(), lastFailure.GetMessage(), r.err),
		map[string]float64{"writes_without_key": float64(n)})
}
