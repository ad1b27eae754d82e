package workflows

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"log/slog"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/durabench/durabench/agent/llm"
	"github.com/durabench/durabench/agent/store"
	"github.com/durabench/durabench/agent/store/storetest"
	"github.com/durabench/durabench/agent/tools"
)

// recordingPauser stands in for the schedule manager: it records the pauses
// the workflow asks for. The real manager is exercised end to end.
type recordingPauser struct {
	mu      sync.Mutex
	reasons []string
}

func (p *recordingPauser) PauseForFailures(_ context.Context, _, reason string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reasons = append(p.reasons, reason)
	return nil
}

func (p *recordingPauser) calls() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.reasons...)
}

// testWriter sends log lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

type fixture struct {
	store  *store.Store
	llm    *llm.LocalServer
	acts   *Activities
	pauser *recordingPauser
	scope  store.Scope
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv, err := llm.StartLocal("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	corpus, err := tools.DefaultCorpus()
	require.NoError(t, err)
	f := &fixture{store: storetest.OpenSQLite(t), llm: srv, pauser: &recordingPauser{}, scope: store.Scope{TenantID: "acme", UserID: "alice"}}
	settings := DefaultSettings()
	settings.LLMAttempts = 1
	f.acts = &Activities{Store: f.store, LLM: &llm.Client{BaseURL: srv.URL()}, Corpus: corpus, HTTP: http.DefaultClient, Schedules: f.pauser, Settings: settings}
	return f
}

// digestQuery is the query of the fixture's schedules.
const digestQuery = "Daily digest about Temporal schedules, durable execution and LLM cost budgets"

// schedule stores a schedule; edit adjusts it first.
func (f *fixture) schedule(t *testing.T, edit func(*store.Schedule)) *store.Schedule {
	t.Helper()
	id := uuid.NewString()
	sc := &store.Schedule{ID: id, TenantID: f.scope.TenantID, UserID: f.scope.UserID, Name: "digest", Cron: "0 9 * * *",
		Timezone: "Asia/Tokyo", Query: digestQuery,
		BudgetUSD: 1, MaxTokens: 20000, TimeoutSeconds: 600, Deliver: []string{tools.OpNotify}, TemporalID: "agent-" + id}
	if edit != nil {
		edit(sc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, f.store.CreateSchedule(ctx, sc, store.Quota{}))
	return sc
}

func (f *fixture) env(t *testing.T) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	// Warnings and errors only: the suite's debug lines drown the test's.
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	env := s.NewTestWorkflowEnvironment()
	env.SetTestTimeout(60 * time.Second)
	Register(env, f.acts)
	return env
}

// runScheduled executes one scheduled run to its end.
func (f *fixture) runScheduled(t *testing.T, sc *store.Schedule) (RunOutcome, string) {
	t.Helper()
	env := f.env(t)
	runID := "run-" + uuid.NewString()
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: runID})
	env.ExecuteWorkflow(ScheduledRunName, ScheduledRunInput{ScheduleID: sc.ID, Trigger: "schedule"})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var out RunOutcome
	require.NoError(t, env.GetWorkflowResult(&out))
	return out, runID
}

func (f *fixture) run(t *testing.T, id string) *store.Run {
	t.Helper()
	r, err := f.store.GetRun(context.Background(), f.scope, id)
	require.NoError(t, err)
	return r
}

func (f *fixture) audit(t *testing.T, sc *store.Schedule) []string {
	t.Helper()
	trail, err := f.store.AuditTrail(context.Background(), f.scope, sc.ID)
	require.NoError(t, err)
	var actions []string
	for _, e := range trail {
		actions = append(actions, e.Action)
	}
	return actions
}

func TestScheduledRunCompletes(t *testing.T) {
	f := newFixture(t)
	sc := f.schedule(t, nil)
	out, runID := f.runScheduled(t, sc)
	assert.Equal(t, store.RunCompleted, out.Status, out.Error)

	r := f.run(t, runID)
	assert.Equal(t, store.RunCompleted, r.Status)
	require.NotNil(t, r.EndedAt)
	assert.Greater(t, r.CostUSD, 0.0)
	assert.LessOrEqual(t, r.CostUSD, sc.BudgetUSD)
	assert.Greater(t, r.PromptTokens, int64(0))
	assert.Greater(t, r.CompletionTokens, int64(0))
	assert.Equal(t, llm.LocalModel, r.Model)
	assert.Contains(t, r.Output, "Digest")
	assert.Equal(t, runID+"-agent", r.TaskID)

	calls, err := f.store.RunCalls(context.Background(), f.scope, runID)
	require.NoError(t, err)
	var llmCalls []store.Call
	total := 0.0
	for _, c := range calls {
		total += c.CostUSD
		if c.Kind == "llm" {
			llmCalls = append(llmCalls, c)
		}
	}
	require.Len(t, llmCalls, 2, "decompose and synthesise")
	for _, c := range llmCalls {
		assert.Equal(t, llm.LocalModel, c.Model)
		assert.Equal(t, 0.2, c.Temperature)
		assert.NotZero(t, c.Seed)
		assert.Len(t, c.PromptFingerprint, 32)
	}
	assert.InDelta(t, r.CostUSD, total, 1e-9, "the run's cost is the sum of its calls")
	assert.Equal(t, []string{"schedule.created", "run.started", "run.delivered.notify", "run.closed"}, f.audit(t, sc))
}

// TestBudgetStopsRunMidway gives a budget that pays for decomposing and
// searching but not for the synthesis's worst case.
func TestBudgetStopsRunMidway(t *testing.T) {
	f := newFixture(t)
	sc := f.schedule(t, func(s *store.Schedule) { s.BudgetUSD = 0.012 })
	out, runID := f.runScheduled(t, sc)
	assert.Equal(t, store.RunBudgetExceeded, out.Status)

	r := f.run(t, runID)
	assert.Equal(t, store.RunBudgetExceeded, r.Status)
	require.NotNil(t, r.EndedAt)
	assert.Contains(t, r.Error, "budget exceeded before the synthesise LLM call")
	assert.Greater(t, r.CostUSD, 0.0, "it stopped mid-way, after spending")
	assert.LessOrEqual(t, r.CostUSD, sc.BudgetUSD, "it never spends more than the budget")
	calls, err := f.store.RunCalls(context.Background(), f.scope, runID)
	require.NoError(t, err)
	var names []string
	for _, c := range calls {
		names = append(names, c.Kind+":"+strings.SplitN(c.Name, ":", 2)[0])
	}
	assert.Contains(t, names, "llm:decompose")
	assert.Contains(t, names, "tool:search")
	assert.NotContains(t, names, "llm:synthesise")
	assert.Equal(t, int64(1), f.llmRequests(), "only the decomposition reached the model")
}

func (f *fixture) llmRequests() int64 { return f.llm.Requests() }

func TestTokenBudget(t *testing.T) {
	f := newFixture(t)
	sc := f.schedule(t, func(s *store.Schedule) { s.MaxTokens = 50 })
	out, runID := f.runScheduled(t, sc)
	assert.Equal(t, store.RunBudgetExceeded, out.Status)
	r := f.run(t, runID)
	assert.Contains(t, r.Error, "before the decompose LLM call")
	assert.Zero(t, r.CostUSD)
	assert.Zero(t, f.llmRequests())
}

func TestPauseAfterThreeConsecutiveFailures(t *testing.T) {
	f := newFixture(t)
	sc := f.schedule(t, nil)
	require.NoError(t, f.llm.Inject(llm.Fault{Kind: llm.FaultServerError}))
	for i := 1; i <= 3; i++ {
		out, runID := f.runScheduled(t, sc)
		assert.Equal(t, store.RunFailed, out.Status)
		r := f.run(t, runID)
		assert.Equal(t, store.RunFailed, r.Status)
		assert.Contains(t, r.Error, "HTTP 500")
		if i < 3 {
			assert.Empty(t, f.pauser.calls(), "no pause after %d failures", i)
			assert.Empty(t, out.Paused)
		}
	}
	reasons := f.pauser.calls()
	require.Len(t, reasons, 1)
	assert.Contains(t, reasons[0], "paused after 3 consecutive failed runs")
	assert.Contains(t, reasons[0], "HTTP 500")
	got, err := f.store.LookupSchedule(context.Background(), sc.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(3), got.ConsecutiveFailures)

	// A success resets the count.
	f.llm.ClearFaults()
	out, _ := f.runScheduled(t, sc)
	assert.Equal(t, store.RunCompleted, out.Status)
	got, err = f.store.LookupSchedule(context.Background(), sc.ID)
	require.NoError(t, err)
	assert.Zero(t, got.ConsecutiveFailures)
}

func TestRunDoesNothingWhenScheduleNotActive(t *testing.T) {
	for _, status := range []store.Status{store.StatusPaused, store.StatusDeleting, store.StatusDeleted} {
		t.Run(string(status), func(t *testing.T) {
			f := newFixture(t)
			sc := f.schedule(t, func(s *store.Schedule) { s.Status = status })
			out, runID := f.runScheduled(t, sc)
			assert.Contains(t, out.Skipped, string(status))
			_, err := f.store.GetRun(context.Background(), f.scope, runID)
			require.ErrorIs(t, err, store.ErrNotFound)
			assert.Zero(t, f.llmRequests())
		})
	}
	t.Run("missing", func(t *testing.T) {
		f := newFixture(t)
		out, _ := f.runScheduled(t, &store.Schedule{ID: "no-such-schedule"})
		assert.Contains(t, out.Skipped, "not in the store")
	})
}

func TestRestrictedOperation(t *testing.T) {
	t.Run("refused without approval", func(t *testing.T) {
		f := newFixture(t)
		sc := f.schedule(t, func(s *store.Schedule) { s.Deliver = []string{tools.OpNotify, tools.OpSendEmail} })
		out, runID := f.runScheduled(t, sc)
		assert.Equal(t, store.RunFailed, out.Status)
		r := f.run(t, runID)
		assert.Contains(t, r.Error, `restricted operation "send_email" is not allowed in a background run`)
		assert.Zero(t, r.CostUSD, "refused before spending anything")
		assert.Zero(t, f.llmRequests())
		assert.NotContains(t, f.audit(t, sc), "run.delivered.send_email")
	})
	t.Run("allowed when approved", func(t *testing.T) {
		f := newFixture(t)
		sc := f.schedule(t, func(s *store.Schedule) {
			s.Deliver = []string{tools.OpSendEmail}
			s.ApprovedOperations = []string{tools.OpSendEmail}
		})
		out, _ := f.runScheduled(t, sc)
		assert.Equal(t, store.RunCompleted, out.Status, out.Error)
		assert.Contains(t, f.audit(t, sc), "run.delivered.send_email")
	})
	t.Run("the activity refuses too", func(t *testing.T) {
		f := newFixture(t)
		err := f.acts.Deliver(context.Background(), DeliverInput{Operation: tools.OpDeleteData, Background: true})
		var appErr *temporal.ApplicationError
		require.ErrorAs(t, err, &appErr)
		assert.Equal(t, ErrTypeRestricted, appErr.Type())
		assert.True(t, appErr.NonRetryable())
	})
}

// researchEnv runs the agent workflow alone.
func (f *fixture) researchEnv(t *testing.T, edit func(*ResearchInput)) (*testsuite.TestWorkflowEnvironment, func()) {
	env := f.env(t)
	sc := f.schedule(t, nil)
	plan, err := f.acts.StartRun(context.Background(), StartRunInput{ScheduleID: sc.ID, RunID: "run-" + uuid.NewString(), Trigger: "manual"})
	require.NoError(t, err)
	in := plan.Task
	if edit != nil {
		edit(&in)
	}
	return env, func() { env.ExecuteWorkflow(ResearchName, in) }
}

func researchResult(t *testing.T, env *testsuite.TestWorkflowEnvironment) ResearchResult {
	t.Helper()
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res ResearchResult
	require.NoError(t, env.GetWorkflowResult(&res))
	return res
}

func queryStatus(t *testing.T, env *testsuite.TestWorkflowEnvironment) TaskStatus {
	t.Helper()
	v, err := env.QueryWorkflow(QueryStatus)
	require.NoError(t, err)
	var st TaskStatus
	require.NoError(t, v.Get(&st))
	return st
}

// TestPauseResumeAndStatus pauses the task, checks through the status query
// that nothing advances while it is paused, resumes it and lets it finish.
// A signal takes effect at the next step boundary.
func TestPauseResumeAndStatus(t *testing.T) {
	f := newFixture(t)
	env, run := f.researchEnv(t, func(in *ResearchInput) { in.Timeout = 0 })
	var early, late, afterResume TaskStatus
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalPause, nil) }, 0)
	env.RegisterDelayedCallback(func() { early = queryStatus(t, env) }, 30*time.Minute)
	env.RegisterDelayedCallback(func() {
		late = queryStatus(t, env)
		env.SignalWorkflow(SignalResume, nil)
	}, time.Hour)
	env.RegisterDelayedCallback(func() { afterResume = queryStatus(t, env) }, time.Hour+time.Second)
	run()
	res := researchResult(t, env)
	assert.Equal(t, store.RunCompleted, res.Status, res.Error)
	assert.Equal(t, "paused", early.State)
	assert.Equal(t, "paused", late.State)
	assert.Equal(t, early, late, "nothing advanced while paused")
	assert.Less(t, late.Calls, len(res.Calls))
	assert.Equal(t, 1.0, late.BudgetUSD)
	assert.NotEqual(t, "paused", afterResume.State)
	final := queryStatus(t, env)
	assert.Equal(t, "done", final.State)
	assert.Equal(t, len(res.Calls), final.Calls)
	assert.InDelta(t, res.Budget.SpentUSD, final.SpentUSD, 1e-12)
}

func TestCancelSignal(t *testing.T) {
	f := newFixture(t)
	env, run := f.researchEnv(t, func(in *ResearchInput) { in.Timeout = 0 })
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalPause, nil) }, 0)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalCancel, nil) }, time.Minute)
	run()
	res := researchResult(t, env)
	assert.Equal(t, store.RunCancelled, res.Status)
	assert.Equal(t, CodeCancelled, res.ErrorCode)
	assert.Empty(t, res.Report)
	for _, c := range res.Calls {
		assert.NotEqual(t, "synthesise", c.Name, "a cancelled task stops before its next step")
	}
}

func TestTaskTimeout(t *testing.T) {
	f := newFixture(t)
	env, run := f.researchEnv(t, func(in *ResearchInput) { in.Timeout = 10 * time.Minute })
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalPause, nil) }, 0)
	run()
	res := researchResult(t, env)
	assert.Equal(t, store.RunTimedOut, res.Status)
	assert.Contains(t, res.Error, "timeout of 10m0s")
}

// TestSearchGoesOnWithEnoughResults: with a threshold of one hit the agent
// goes on after the first search answers (one search finds at most three
// documents); by default it waits for more.
func TestSearchGoesOnWithEnoughResults(t *testing.T) {
	for _, tt := range []struct {
		enough   int
		min, max int
	}{{enough: 1, min: 1, max: 3}, {enough: 4, min: 4, max: 9}} {
		t.Run(fmt.Sprint("enough=", tt.enough), func(t *testing.T) {
			f := newFixture(t)
			env, run := f.researchEnv(t, func(in *ResearchInput) { in.EnoughResults = tt.enough })
			run()
			res := researchResult(t, env)
			assert.Equal(t, store.RunCompleted, res.Status)
			var n int
			_, err := fmt.Sscanf(res.Report[strings.LastIndex(res.Report, "("):], "(%d sources)", &n)
			require.NoError(t, err, res.Report)
			assert.GreaterOrEqual(t, n, tt.min)
			assert.LessOrEqual(t, n, tt.max)
		})
	}
}

func TestDecomposeParsesListMarkers(t *testing.T) {
	for _, tt := range []struct{ line, want string }{
		{"1. durable execution", "durable execution"},
		{"- cost budgets", "cost budgets"},
		{"* 2026 AI news", "2026 AI news"},
		{"2026 AI news", "2026 AI news"},
		{"  3) time zones ", "time zones"},
	} {
		assert.Equal(t, tt.want, strings.TrimSpace(listMarker.ReplaceAllString(tt.line, "")))
	}
}

func TestRunEnd(t *testing.T) {
	res := ResearchResult{Status: store.RunCompleted, Budget: Budget{SpentUSD: 0.5}, PromptTokens: 3, Model: "m", Report: "r"}
	for _, tt := range []struct {
		name   string
		err    error
		status store.RunStatus
		msg    string
	}{
		{"result", nil, store.RunCompleted, ""},
		{"timeout", temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_START_TO_CLOSE, nil), store.RunTimedOut, "spend is unknown"},
		{"cancelled", temporal.NewCanceledError(), store.RunCancelled, "cancelled"},
		{"other", errors.New("boom"), store.RunFailed, "boom"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			end := runEnd(res, tt.err)
			assert.Equal(t, tt.status, end.Status)
			assert.Contains(t, end.Error, tt.msg)
		})
	}
}

func TestBudget(t *testing.T) {
	b := Budget{MaxUSD: 1, MaxTokens: 100}
	r1, err := b.Reserve("a", 0.6, 50)
	require.NoError(t, err)
	_, err = b.Reserve("b", 0.5, 10)
	var be *BudgetExceededError
	require.ErrorAs(t, err, &be, "0.6 reserved + 0.5 > 1")
	b.Settle(r1, 0.1, 20)
	_, err = b.Reserve("c", 0.9, 80)
	require.NoError(t, err)
	_, err = b.Reserve("d", 0, 1)
	require.ErrorAs(t, err, &be, "tokens run out too")
	assert.InDelta(t, 0.1, b.SpentUSD, 1e-12)
}

// decomposeBound is the most one attempt of a run's decompose call can use,
// and its cost.
func (f *fixture) decomposeBound(t *testing.T) (llm.Bound, float64) {
	t.Helper()
	st := f.acts.Settings
	b, err := llm.UpperBound(llm.Request{Messages: decomposeMessages(digestQuery, st.MaxSubqueries), MaxTokens: st.DecomposeMaxTokens})
	require.NoError(t, err)
	return b, b.Cost(st.Pricing.For(st.Model))
}

// TestRetriedAttemptsAreCharged makes the LLM fail before it answers.
// Temporal retries the call on the server, out of the workflow's sight; every
// attempt is recorded as a call of its own, and the run's cost counts each:
// a malformed answer at the attempt's worst case (the provider bills it and
// reports nothing), a refusal (429, 500) at nothing.
func TestRetriedAttemptsAreCharged(t *testing.T) {
	type failed struct {
		err    string
		billed bool
	}
	malformed := failed{"malformed chat completions response", true}
	for _, tt := range []struct {
		name     string
		faults   []llm.Fault
		status   store.RunStatus
		failed   []failed
		requests int64
	}{
		{"malformed twice, then an answer", []llm.Fault{{Kind: llm.FaultMalformed, Times: 2}},
			store.RunCompleted, []failed{malformed, malformed}, 4},
		{"malformed every time", []llm.Fault{{Kind: llm.FaultMalformed}},
			store.RunFailed, []failed{malformed, malformed, malformed}, 3},
		{"refused twice, then an answer", []llm.Fault{{Kind: llm.FaultRateLimit, Times: 1}, {Kind: llm.FaultServerError, Times: 1}},
			store.RunCompleted, []failed{{"HTTP 429", false}, {"HTTP 500", false}}, 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.acts.Settings.LLMAttempts = 3
			bound, worst := f.decomposeBound(t)
			sc := f.schedule(t, nil)
			for _, fault := range tt.faults {
				require.NoError(t, f.llm.Inject(fault))
			}
			out, runID := f.runScheduled(t, sc)
			assert.Equal(t, tt.status, out.Status, out.Error)
			assert.Equal(t, tt.requests, f.llmRequests())

			r := f.run(t, runID)
			calls, err := f.store.RunCalls(context.Background(), f.scope, runID)
			require.NoError(t, err)
			var attempts []store.Call
			var total float64
			var prompt, completion int64
			for _, c := range calls {
				total += c.CostUSD
				prompt += c.PromptTokens
				completion += c.CompletionTokens
				if strings.HasPrefix(c.Name, "decompose attempt") {
					attempts = append(attempts, c)
				}
			}
			require.Len(t, attempts, len(tt.failed), "every failed attempt is recorded")
			for i, c := range attempts {
				assert.Contains(t, c.Name, fmt.Sprintf("decompose attempt %d failed: ", i+1))
				assert.Contains(t, c.Name, tt.failed[i].err)
				if tt.failed[i].billed {
					assert.InDelta(t, worst, c.CostUSD, 1e-12, "charged its worst case")
					assert.Equal(t, []int64{bound.PromptTokens, bound.CompletionTokens}, []int64{c.PromptTokens, c.CompletionTokens})
				} else {
					assert.Zero(t, c.CostUSD, "a refusal is not billed")
					assert.Zero(t, c.PromptTokens+c.CompletionTokens)
				}
			}
			assert.InDelta(t, total, r.CostUSD, 1e-9, "the run's cost counts every attempt")
			assert.Equal(t, []int64{prompt, completion}, []int64{r.PromptTokens, r.CompletionTokens})
			assert.LessOrEqual(t, r.CostUSD, sc.BudgetUSD)
		})
	}
}

// TestAttemptsShrinkToFitBudget: an LLM call reserves the worst case of each
// attempt before it is made, so with less budget left it gets fewer
// attempts (its retry policy's MaximumAttempts), and a run whose every
// attempt fails still spends no more than its budget.
func TestAttemptsShrinkToFitBudget(t *testing.T) {
	for _, tt := range []struct {
		worstCases float64 // the budget, in worst cases of a decompose attempt
		attempts   int64
		status     store.RunStatus
	}{
		{3.5, 3, store.RunFailed},
		{2.5, 2, store.RunFailed},
		{1.5, 1, store.RunFailed},
		{0.5, 0, store.RunBudgetExceeded},
	} {
		t.Run(fmt.Sprintf("budget of %.1f attempts", tt.worstCases), func(t *testing.T) {
			f := newFixture(t)
			f.acts.Settings.LLMAttempts = 3
			_, worst := f.decomposeBound(t)
			sc := f.schedule(t, func(s *store.Schedule) { s.BudgetUSD = tt.worstCases * worst })
			require.NoError(t, f.llm.Inject(llm.Fault{Kind: llm.FaultMalformed}))
			out, runID := f.runScheduled(t, sc)
			assert.Equal(t, tt.status, out.Status, out.Error)
			assert.Equal(t, tt.attempts, f.llmRequests(), "attempts made")
			r := f.run(t, runID)
			assert.InDelta(t, float64(tt.attempts)*worst, r.CostUSD, 1e-12, "each attempt is charged")
			assert.LessOrEqual(t, r.CostUSD, sc.BudgetUSD)
		})
	}
}

// TestChatHeartbeatsAttempts follows the attempts an LLM call passes on in
// its heartbeats: each attempt first reports itself unanswered (so that an
// attempt that times out or loses its worker is charged), then how it ended.
func TestChatHeartbeatsAttempts(t *testing.T) {
	f := newFixture(t)
	f.acts.Settings.LLMAttempts = 3
	sc := f.schedule(t, nil)
	require.NoError(t, f.llm.Inject(llm.Fault{Kind: llm.FaultServerError, Times: 1}))
	env := f.env(t)
	var mu sync.Mutex
	var beats [][]Attempt
	env.SetOnActivityHeartbeatListener(func(info *activity.Info, details converter.EncodedValues) {
		var a []Attempt
		if info.ActivityType.Name != "Chat" || details.Get(&a) != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		beats = append(beats, a)
	})
	env.ExecuteWorkflow(ScheduledRunName, ScheduledRunInput{ScheduleID: sc.ID, Trigger: "schedule"})
	require.NoError(t, env.GetWorkflowError())

	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, len(beats), 3, "%+v", beats)
	refused := Attempt{Number: 1, Refused: true, Error: "chat completions: HTTP 500: server error (injected)"}
	assert.Equal(t, []Attempt{{Number: 1, Error: errNoAnswer}}, beats[0], "the first attempt, before the call")
	assert.Equal(t, []Attempt{refused}, beats[1], "how it ended, before the failure is reported")
	assert.Equal(t, []Attempt{refused, {Number: 2, Error: errNoAnswer}}, beats[2], "the second attempt starts from it")
}

func TestReserveAttempts(t *testing.T) {
	per := Reservation{USD: 0.1, Tokens: 100}
	for _, tt := range []struct {
		name   string
		budget Budget
		most   int32
		want   int32
	}{
		{"all fit", Budget{MaxUSD: 1, MaxTokens: 1000}, 3, 3},
		{"dollars for two", Budget{MaxUSD: 0.25, MaxTokens: 1000}, 3, 2},
		{"tokens for two", Budget{MaxUSD: 1, MaxTokens: 250}, 3, 2},
		{"spent and reserved count", Budget{MaxUSD: 1, MaxTokens: 1000, SpentUSD: 0.6, ReservedUSD: 0.25}, 3, 1},
		{"at least one", Budget{MaxUSD: 1, MaxTokens: 1000}, 0, 1},
		{"not even one", Budget{MaxUSD: 0.05, MaxTokens: 1000}, 3, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.budget
			n, res, err := b.ReserveAttempts("c", per, tt.most)
			if tt.want == 0 {
				var be *BudgetExceededError
				require.ErrorAs(t, err, &be)
				assert.Equal(t, tt.budget, b, "nothing reserved")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, n)
			assert.Equal(t, Reservation{USD: float64(n) * per.USD, Tokens: int64(n) * per.Tokens}, res)
			assert.InDelta(t, tt.budget.ReservedUSD+res.USD, b.ReservedUSD, 1e-12)
		})
	}
}

func TestAttemptCharge(t *testing.T) {
	bound := llm.Bound{PromptTokens: 100, CompletionTokens: 50}
	for _, tt := range []struct {
		name    string
		attempt Attempt
		want    llm.Usage
	}{
		{"answered", Attempt{Usage: &llm.Usage{PromptTokens: 40, CompletionTokens: 10}}, llm.Usage{PromptTokens: 40, CompletionTokens: 10}},
		{"reported more than the bound", Attempt{Usage: &llm.Usage{PromptTokens: 400, CompletionTokens: 10}}, llm.Usage{PromptTokens: 100, CompletionTokens: 10}},
		{"refused", Attempt{Refused: true, Error: "HTTP 429"}, llm.Usage{}},
		{"malformed", Attempt{Error: "malformed"}, llm.Usage{PromptTokens: 100, CompletionTokens: 50}},
		{"no answer", Attempt{Error: errNoAnswer}, llm.Usage{PromptTokens: 100, CompletionTokens: 50}},
	} {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.want, tt.attempt.Charge(bound)) })
	}
}

func TestAttemptError(t *testing.T) {
	for _, tt := range []struct{ name, msg, want string }{
		{"plain", "HTTP 500: overloaded", "HTTP 500: overloaded"},
		{"NUL dropped", "bad\x00body", "badbody"},
		{"invalid UTF-8 dropped", "bad\xffbody", "badbody"},
		{"cut to 200 bytes", strings.Repeat("x", 300), strings.Repeat("x", 200)},
		{"a rune cut in half is dropped", strings.Repeat("x", 199) + "é", strings.Repeat("x", 199)},
	} {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.want, attemptError(errors.New(tt.msg))) })
	}
}
