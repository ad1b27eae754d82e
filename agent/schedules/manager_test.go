package schedules_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/agent/agenttest"
	"github.com/durabench/durabench/agent/llm"
	"github.com/durabench/durabench/agent/schedules"
	"github.com/durabench/durabench/agent/store"
	"github.com/durabench/durabench/agent/store/storetest"
	"github.com/durabench/durabench/agent/workflows"
)

func TestMain(m *testing.M) { agenttest.Main(m) }

var (
	alice = store.Scope{TenantID: "acme", UserID: "alice"}
	bob   = store.Scope{TenantID: "acme", UserID: "bob"}
	eve   = store.Scope{TenantID: "evil", UserID: "alice"}
)

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// eachBackend runs body with an agent on SQLite and on PostgreSQL.
func eachBackend(t *testing.T, o agenttest.Options, body func(t *testing.T, e *agenttest.Env)) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { body(t, agenttest.New(t, b.Open(t), o)) })
	}
}

func sqliteEnv(t *testing.T, o agenttest.Options) *agenttest.Env {
	return agenttest.New(t, storetest.OpenSQLite(t), o)
}

func daily() schedules.Input {
	return schedules.Input{Name: "Morning digest", Cron: "0 9 * * *", Timezone: "Asia/Tokyo", Query: "Daily digest about Temporal schedules and LLM cost budgets"}
}

func ptr[T any](v T) *T { return &v }

// ourSchedules lists the Temporal schedules with the env's prefix.
func ourSchedules(ctx context.Context, e *agenttest.Env) ([]string, error) {
	it, err := e.Client.ScheduleClient().List(ctx, client.ScheduleListOptions{PageSize: 100})
	if err != nil {
		return nil, err
	}
	var ids []string
	for it.HasNext() {
		s, err := it.Next()
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(s.ID, e.Config.IDPrefix) {
			ids = append(ids, s.ID)
		}
	}
	return ids, nil
}

func describe(t *testing.T, e *agenttest.Env, id string) (*client.ScheduleDescription, error) {
	t.Helper()
	return e.Client.ScheduleClient().GetHandle(ctxFor(t, 30*time.Second), id).Describe(ctxFor(t, 30*time.Second))
}

func TestCreateDailyInTokyo(t *testing.T) {
	eachBackend(t, agenttest.Options{NoWorker: true}, func(t *testing.T, e *agenttest.Env) {
		ctx := ctxFor(t, 60*time.Second)
		v, err := e.Manager.Create(ctx, alice, daily())
		require.NoError(t, err)
		assert.Equal(t, "Asia/Tokyo", v.Timezone)
		assert.Equal(t, store.StatusActive, v.Status)
		require.NotNil(t, v.NextRunAt)
		assert.True(t, strings.HasSuffix(v.NextRunLocal, "T09:00:00+09:00"), v.NextRunLocal)
		assert.True(t, strings.HasSuffix(v.NextRunLocalText, "09:00 JST"), v.NextRunLocalText)
		assert.Equal(t, 0, v.NextRunAt.Hour(), "09:00 in Tokyo is 00:00 UTC")

		desc, err := describe(t, e, v.TemporalScheduleID)
		require.NoError(t, err)
		assert.Equal(t, "Asia/Tokyo", desc.Schedule.Spec.TimeZoneName)
		require.NotEmpty(t, desc.Info.NextActionTimes)
		assert.Equal(t, v.NextRunAt.Unix(), desc.Info.NextActionTimes[0].Unix(), "our next run is Temporal's")
		action := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
		assert.Equal(t, workflows.ScheduledRunName, action.Workflow)
		assert.Equal(t, e.Config.TaskQueue, action.TaskQueue)

		got, err := e.Manager.Get(ctx, alice, v.ID)
		require.NoError(t, err)
		assert.Equal(t, v.Name, got.Name)
		require.NotNil(t, got.Totals)
		assert.Zero(t, got.Totals.Runs)
	})
}

func TestRulesRefuseBeforeTemporal(t *testing.T) {
	e := sqliteEnv(t, agenttest.Options{NoWorker: true})
	ctx := ctxFor(t, 60*time.Second)
	for _, tt := range []struct {
		name string
		edit func(*schedules.Input)
		rule string
	}{
		{"0,1 9 against 60 minutes", func(i *schedules.Input) { i.Cron = "0,1 9 * * *" }, schedules.RuleMinInterval},
		{"NaN budget", func(i *schedules.Input) { i.BudgetUSD = ptr(math.NaN()) }, schedules.RuleBudget},
		{"negative budget", func(i *schedules.Input) { i.BudgetUSD = ptr(-1.0) }, schedules.RuleBudget},
		{"unknown timezone", func(i *schedules.Input) { i.Timezone = "Asia/Atlantis" }, schedules.RuleTimezone},
		{"timeout too long", func(i *schedules.Input) { i.TimeoutSeconds = ptr(int64(86400)) }, schedules.RuleTimeout},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := daily()
			tt.edit(&in)
			_, err := e.Manager.Create(ctx, alice, in)
			assert.True(t, schedules.IsRule(err, tt.rule), "%v", err)
		})
	}
	ids, err := ourSchedules(ctx, e)
	require.NoError(t, err)
	assert.Empty(t, ids, "a refused create leaves nothing in Temporal")
	list, _, err := e.Manager.List(ctx, alice, "", store.Page{Limit: 10})
	require.NoError(t, err)
	assert.Empty(t, list)
}

// TestQuotaUnderConcurrentCreates: 20 creates at once against a quota of 5.
// The row is written first, with the quota checked atomically: the 15
// refused never reach Temporal, which sees exactly 5 creates.
func TestQuotaUnderConcurrentCreates(t *testing.T) {
	eachBackend(t, agenttest.Options{NoWorker: true, Config: func(c *schedules.Config) { c.Limits.MaxPerUser = 5 }}, func(t *testing.T, e *agenttest.Env) {
		ctx := ctxFor(t, 120*time.Second)
		tc := &hookedCreates{Client: e.Client}
		m := schedules.New(tc, e.Store, e.Config)
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			created []string
			refused int
			others  []error
		)
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				in := daily()
				in.Name = fmt.Sprint("digest ", i)
				v, err := m.Create(ctx, alice, in)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					created = append(created, v.TemporalScheduleID)
				case schedules.IsRule(err, schedules.RuleQuota):
					refused++
				default:
					others = append(others, err)
				}
			}()
		}
		wg.Wait()
		require.Empty(t, others)
		assert.Len(t, created, 5)
		assert.Equal(t, 15, refused)
		assert.Equal(t, int64(5), tc.creates.Load(), "a create refused by the quota never reaches Temporal")
		list, _, err := e.Manager.List(ctx, alice, "", store.Page{Limit: 100})
		require.NoError(t, err)
		assert.Len(t, list, 5)
		agenttest.WaitFor(t, 60*time.Second, "Temporal to list exactly the 5 created schedules", func(ctx context.Context) (bool, error) {
			ids, err := ourSchedules(ctx, e)
			slices.Sort(ids)
			slices.Sort(created)
			return err == nil && slices.Equal(created, ids), err
		})
	})
}

func TestPauseResumeIdempotent(t *testing.T) {
	e := sqliteEnv(t, agenttest.Options{NoWorker: true})
	ctx := ctxFor(t, 60*time.Second)
	v, err := e.Manager.Create(ctx, alice, daily())
	require.NoError(t, err)
	for range 2 {
		p, err := e.Manager.Pause(ctx, alice, v.ID, "on holiday")
		require.NoError(t, err)
		assert.Equal(t, store.StatusPaused, p.Status)
		assert.Equal(t, "on holiday", p.StatusReason)
		assert.Nil(t, p.NextRunAt, "a paused schedule has no next run")
	}
	desc, err := describe(t, e, v.TemporalScheduleID)
	require.NoError(t, err)
	assert.True(t, desc.Schedule.State.Paused)
	assert.Equal(t, "on holiday", desc.Schedule.State.Note)
	for range 2 {
		r, err := e.Manager.Resume(ctx, alice, v.ID)
		require.NoError(t, err)
		assert.Equal(t, store.StatusActive, r.Status)
		assert.Empty(t, r.StatusReason)
		assert.NotNil(t, r.NextRunAt)
	}
	desc, err = describe(t, e, v.TemporalScheduleID)
	require.NoError(t, err)
	assert.False(t, desc.Schedule.State.Paused)
}

// TestConcurrentRequests: the same request sent several times at once (a
// double click, a client retry) succeeds each time and leaves Temporal and
// the store agreeing.
func TestConcurrentRequests(t *testing.T) {
	eachBackend(t, agenttest.Options{NoWorker: true}, func(t *testing.T, e *agenttest.Env) {
		ctx := ctxFor(t, 90*time.Second)
		v, err := e.Manager.Create(ctx, alice, daily())
		require.NoError(t, err)
		all := func(op func() error) {
			t.Helper()
			errs := make([]error, 5)
			var wg sync.WaitGroup
			for i := range errs {
				wg.Add(1)
				go func() { defer wg.Done(); errs[i] = op() }()
			}
			wg.Wait()
			for _, err := range errs {
				require.NoError(t, err)
			}
		}
		all(func() error { _, err := e.Manager.Pause(ctx, alice, v.ID, "twice"); return err })
		desc, err := describe(t, e, v.TemporalScheduleID)
		require.NoError(t, err)
		assert.True(t, desc.Schedule.State.Paused)
		all(func() error { _, err := e.Manager.Resume(ctx, alice, v.ID); return err })
		desc, err = describe(t, e, v.TemporalScheduleID)
		require.NoError(t, err)
		assert.False(t, desc.Schedule.State.Paused)
		got, err := e.Manager.Get(ctx, alice, v.ID)
		require.NoError(t, err)
		assert.Equal(t, store.StatusActive, got.Status)
		all(func() error {
			err := e.Manager.Delete(ctx, alice, v.ID)
			if errors.Is(err, schedules.ErrNotFound) {
				return nil // it was already gone when this one looked
			}
			return err
		})
		_, err = describe(t, e, v.TemporalScheduleID)
		var nf *serviceerror.NotFound
		require.ErrorAs(t, err, &nf)
		sc, err := e.Store.LookupSchedule(ctx, v.ID)
		require.NoError(t, err)
		assert.Equal(t, store.StatusDeleted, sc.Status)
	})
}

func TestUpdate(t *testing.T) {
	e := sqliteEnv(t, agenttest.Options{NoWorker: true})
	ctx := ctxFor(t, 60*time.Second)
	v, err := e.Manager.Create(ctx, alice, daily())
	require.NoError(t, err)
	in := daily()
	in.Cron, in.Timezone, in.Name = "30 7 * * 1-5", "Europe/London", "Weekday digest"
	u, err := e.Manager.Update(ctx, alice, v.ID, in)
	require.NoError(t, err)
	assert.Equal(t, "Weekday digest", u.Name)
	desc, err := describe(t, e, v.TemporalScheduleID)
	require.NoError(t, err)
	assert.Equal(t, "Europe/London", desc.Schedule.Spec.TimeZoneName)
	assert.Equal(t, u.NextRunAt.Unix(), desc.Info.NextActionTimes[0].Unix())

	in.Cron = "*/5 * * * *"
	_, err = e.Manager.Update(ctx, alice, v.ID, in)
	assert.True(t, schedules.IsRule(err, schedules.RuleMinInterval))
	desc, err = describe(t, e, v.TemporalScheduleID)
	require.NoError(t, err)
	assert.Equal(t, "Europe/London", desc.Schedule.Spec.TimeZoneName, "a refused update changes nothing")
}

// failingDeletes makes Temporal refuse schedule deletes.
type failingDeletes struct{ client.Client }

func (f failingDeletes) ScheduleClient() client.ScheduleClient {
	return failingScheduleClient{f.Client.ScheduleClient()}
}

type failingScheduleClient struct{ client.ScheduleClient }

func (f failingScheduleClient) GetHandle(ctx context.Context, id string) client.ScheduleHandle {
	return failingHandle{f.ScheduleClient.GetHandle(ctx, id)}
}

type failingHandle struct{ client.ScheduleHandle }

func (failingHandle) Delete(context.Context) error {
	return serviceerror.NewUnavailable("injected: Temporal is unavailable")
}

func TestDeleteCompleteOrReportedFailed(t *testing.T) {
	eachBackend(t, agenttest.Options{NoWorker: true}, func(t *testing.T, e *agenttest.Env) {
		ctx := ctxFor(t, 60*time.Second)
		v, err := e.Manager.Create(ctx, alice, daily())
		require.NoError(t, err)

		broken := schedules.New(failingDeletes{e.Client}, e.Store, e.Config)
		err = broken.Delete(ctx, alice, v.ID)
		var te *schedules.TemporalError
		require.ErrorAs(t, err, &te)
		assert.Nil(t, te.Rollback)
		got, err := e.Manager.Get(ctx, alice, v.ID)
		require.NoError(t, err, "a failed delete leaves the schedule as it was")
		assert.Equal(t, store.StatusActive, got.Status)
		_, err = describe(t, e, v.TemporalScheduleID)
		require.NoError(t, err)

		require.NoError(t, e.Manager.Delete(ctx, alice, v.ID))
		_, err = e.Manager.Get(ctx, alice, v.ID)
		require.ErrorIs(t, err, schedules.ErrNotFound)
		_, err = describe(t, e, v.TemporalScheduleID)
		var nf *serviceerror.NotFound
		require.ErrorAs(t, err, &nf, "the Temporal schedule is gone")
		require.ErrorIs(t, e.Manager.Delete(ctx, alice, v.ID), schedules.ErrNotFound)
	})
}

func TestCrossTenantIsNotFound(t *testing.T) {
	eachBackend(t, agenttest.Options{NoWorker: true}, func(t *testing.T, e *agenttest.Env) {
		ctx := ctxFor(t, 60*time.Second)
		v, err := e.Manager.Create(ctx, alice, daily())
		require.NoError(t, err)
		for _, who := range []store.Scope{bob, eve} {
			for _, op := range []struct {
				name string
				do   func() error
			}{
				{"get", func() error { _, err := e.Manager.Get(ctx, who, v.ID); return err }},
				{"update", func() error {
					in := daily()
					in.Name = "mine now"
					_, err := e.Manager.Update(ctx, who, v.ID, in)
					return err
				}},
				{"delete", func() error { return e.Manager.Delete(ctx, who, v.ID) }},
				{"pause", func() error { _, err := e.Manager.Pause(ctx, who, v.ID, ""); return err }},
				{"resume", func() error { _, err := e.Manager.Resume(ctx, who, v.ID); return err }},
				{"trigger", func() error { _, err := e.Manager.Trigger(ctx, who, v.ID); return err }},
				{"runs", func() error { _, err := e.Manager.Runs(ctx, who, v.ID, store.Page{Limit: 10}); return err }},
			} {
				t.Run(who.TenantID+"/"+who.UserID+"/"+op.name, func(t *testing.T) {
					require.ErrorIs(t, op.do(), schedules.ErrNotFound)
				})
			}
		}
		got, err := e.Manager.Get(ctx, alice, v.ID)
		require.NoError(t, err)
		assert.Equal(t, daily().Name, got.Name)
		assert.Equal(t, store.StatusActive, got.Status)
		_, err = describe(t, e, v.TemporalScheduleID)
		require.NoError(t, err)
	})
}

func TestReconcile(t *testing.T) {
	eachBackend(t, agenttest.Options{Config: func(c *schedules.Config) { c.OrphanGrace = 0; c.OpenRunGrace = 0 }}, func(t *testing.T, e *agenttest.Env) {
		ctx := ctxFor(t, 120*time.Second)
		kept, err := e.Manager.Create(ctx, alice, daily())
		require.NoError(t, err)
		lost, err := e.Manager.Create(ctx, alice, daily())
		require.NoError(t, err)
		drifted, err := e.Manager.Create(ctx, alice, daily())
		require.NoError(t, err)

		// Behind the manager's back: a Temporal schedule deleted, one
		// paused, one created without a row; a run record left open.
		require.NoError(t, e.Client.ScheduleClient().GetHandle(ctx, lost.TemporalScheduleID).Delete(ctx))
		require.NoError(t, e.Client.ScheduleClient().GetHandle(ctx, drifted.TemporalScheduleID).Pause(ctx, client.SchedulePauseOptions{Note: "by hand"}))
		orphanID := e.Config.IDPrefix + "orphan"
		_, err = e.Client.ScheduleClient().Create(ctx, client.ScheduleOptions{
			ID: orphanID, Spec: client.ScheduleSpec{CronExpressions: []string{"0 9 * * *"}},
			Action: &client.ScheduleWorkflowAction{Workflow: workflows.ScheduledRunName, TaskQueue: e.Config.TaskQueue,
				Args: []any{workflows.ScheduledRunInput{ScheduleID: "gone"}}},
		})
		require.NoError(t, err)
		_, err = e.Store.StartRun(ctx, store.Run{ID: "run-without-workflow", ScheduleID: kept.ID, TenantID: alice.TenantID, UserID: alice.UserID, TaskID: "t", Trigger: "schedule"})
		require.NoError(t, err)

		// Reconciliation runs as its own scheduled workflow: trigger it.
		require.NoError(t, e.Manager.EnsureReconcileSchedule(ctx, time.Hour))
		require.NoError(t, e.Manager.EnsureReconcileSchedule(ctx, 2*time.Hour), "ensuring twice updates")
		agenttest.WaitFor(t, 90*time.Second, "reconciliation to repair everything", func(ctx context.Context) (bool, error) {
			if err := e.Client.ScheduleClient().GetHandle(ctx, e.Manager.ReconcileScheduleID()).Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
				return false, err
			}
			if _, err := describe(t, e, lost.TemporalScheduleID); err != nil {
				return false, nil
			}
			d, err := describe(t, e, drifted.TemporalScheduleID)
			if err != nil || d.Schedule.State.Paused {
				return false, nil
			}
			if _, err := describe(t, e, orphanID); err == nil {
				return false, nil
			}
			r, err := e.Store.LookupRun(ctx, "run-without-workflow")
			return err == nil && r.EndedAt != nil, err
		})
		r, err := e.Store.LookupRun(ctx, "run-without-workflow")
		require.NoError(t, err)
		assert.Equal(t, store.RunFailed, r.Status)
		assert.Contains(t, r.Error, "without recording its end")
		_, err = describe(t, e, kept.TemporalScheduleID)
		require.NoError(t, err, "a consistent schedule is left alone")
		trail, err := e.Store.AuditTrail(ctx, alice, lost.ID)
		require.NoError(t, err)
		assert.Equal(t, "reconcile.recreated", trail[len(trail)-1].Action)

		// A second pass finds nothing to do.
		rep, err := e.Manager.Reconcile(ctx)
		require.NoError(t, err)
		assert.Empty(t, rep.Recreated)
		assert.Empty(t, rep.StatusFixed)
		assert.Empty(t, rep.SpecFixed)
		assert.Empty(t, rep.Errors)
		assert.Equal(t, 3, rep.Checked)
	})
}

// TestRuns exercises scheduled runs end to end on the real server: a
// triggered run with its cost and tokens, a run stopped by its budget, a
// restricted operation refused, and the pause after three failures.
func TestRuns(t *testing.T) {
	// No trigger rate: the failures case triggers one schedule three times.
	eachBackend(t, agenttest.Options{Config: func(c *schedules.Config) { c.TriggerInterval = 0 }}, func(t *testing.T, e *agenttest.Env) {
		ctx := ctxFor(t, 180*time.Second)
		trigger := func(t *testing.T, in schedules.Input) (*schedules.View, *store.Run) {
			t.Helper()
			v, err := e.Manager.Create(ctx, alice, in)
			require.NoError(t, err)
			tr, err := e.Manager.Trigger(ctx, alice, v.ID)
			require.NoError(t, err)
			return v, e.WaitRunClosed(t, alice, tr.RunID, 60*time.Second)
		}
		t.Run("completed with cost and tokens", func(t *testing.T) {
			v, run := trigger(t, daily())
			assert.Equal(t, store.RunCompleted, run.Status, run.Error)
			assert.Equal(t, "manual", run.Trigger)
			assert.Greater(t, run.CostUSD, 0.0)
			assert.Greater(t, run.PromptTokens+run.CompletionTokens, int64(0))
			assert.Equal(t, llm.LocalModel, run.Model)
			h, err := e.Manager.Runs(ctx, alice, v.ID, store.Page{Limit: 10})
			require.NoError(t, err)
			require.Len(t, h.Runs, 1)
			assert.Equal(t, int64(1), h.Totals.Runs)
			assert.InDelta(t, run.CostUSD, h.Totals.CostUSD, 1e-12)

			// The recorded histories replay with this code, and the agent's
			// history carries the version marker of its signals and query.
			require.NoError(t, e.Client.GetWorkflow(ctx, run.ID, "").Get(ctx, nil))
			for _, id := range []string{run.ID, run.TaskID} {
				hist := history(t, e, id)
				replayer := worker.NewWorkflowReplayer()
				workflows.RegisterWorkflows(replayer)
				require.NoError(t, replayer.ReplayWorkflowHistory(nil, hist), id)
				if id == run.TaskID {
					assert.True(t, hasVersionMarker(hist, workflows.VersionPauseResume))
				}
			}
		})
		t.Run("stopped by its budget", func(t *testing.T) {
			in := daily()
			in.BudgetUSD = ptr(0.012)
			_, run := trigger(t, in)
			assert.Equal(t, store.RunBudgetExceeded, run.Status)
			assert.Contains(t, run.Error, "budget exceeded before")
			assert.LessOrEqual(t, run.CostUSD, 0.012)
			assert.Greater(t, run.CostUSD, 0.0)
		})
		t.Run("restricted operation refused", func(t *testing.T) {
			in := daily()
			in.Deliver = []string{"send_email"}
			_, run := trigger(t, in)
			assert.Equal(t, store.RunFailed, run.Status)
			assert.Contains(t, run.Error, `restricted operation "send_email"`)
		})
		t.Run("paused after three consecutive failures", func(t *testing.T) {
			require.NoError(t, e.LLM.Inject(llm.Fault{Kind: llm.FaultServerError}))
			defer e.LLM.ClearFaults()
			v, err := e.Manager.Create(ctx, alice, daily())
			require.NoError(t, err)
			for i := 1; i <= 3; i++ {
				tr, err := e.Manager.Trigger(ctx, alice, v.ID)
				require.NoError(t, err, "run %d", i)
				run := e.WaitRunClosed(t, alice, tr.RunID, 60*time.Second)
				assert.Equal(t, store.RunFailed, run.Status)
				// Wait for the run workflow to finish its pause decision.
				require.NoError(t, e.Client.GetWorkflow(ctx, tr.RunID, "").Get(ctx, nil))
			}
			got, err := e.Manager.Get(ctx, alice, v.ID)
			require.NoError(t, err)
			assert.Equal(t, store.StatusPaused, got.Status)
			assert.Contains(t, got.StatusReason, "paused after 3 consecutive failed runs")
			assert.Contains(t, got.StatusReason, "HTTP 500")
			desc, err := describe(t, e, v.TemporalScheduleID)
			require.NoError(t, err)
			assert.True(t, desc.Schedule.State.Paused)
			assert.Contains(t, desc.Schedule.State.Note, "3 consecutive failed runs")
			_, err = e.Manager.Trigger(ctx, alice, v.ID)
			assert.True(t, schedules.IsRule(err, schedules.RuleState), "a paused schedule is not triggered: %v", err)

			e.LLM.ClearFaults()
			r, err := e.Manager.Resume(ctx, alice, v.ID)
			require.NoError(t, err)
			assert.Zero(t, r.ConsecutiveFailures, "resume clears the count")
		})
	})
}

// TestRunTimesOut holds the LLM past the task's timeout: the agent stops at
// its deadline and the run record closes as timed out, with the spend so far.
func TestRunTimesOut(t *testing.T) {
	e := sqliteEnv(t, agenttest.Options{})
	ctx := ctxFor(t, 120*time.Second)
	in := daily()
	in.TimeoutSeconds = ptr(int64(10))
	v, err := e.Manager.Create(ctx, alice, in)
	require.NoError(t, err)
	e.LLM.Hold()
	defer e.LLM.Release()
	tr, err := e.Manager.Trigger(ctx, alice, v.ID)
	require.NoError(t, err)
	run := e.WaitRunClosed(t, alice, tr.RunID, 90*time.Second)
	assert.Equal(t, store.RunTimedOut, run.Status)
	assert.Contains(t, run.Error, "timeout of 10s")
	assert.Zero(t, run.CostUSD, "the only call never answered")
	got, err := e.Manager.Get(ctx, alice, v.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(1), got.ConsecutiveFailures, "a timeout counts as a failure")
}

func history(t *testing.T, e *agenttest.Env, workflowID string) *historypb.History {
	t.Helper()
	it := e.Client.GetWorkflowHistory(ctxFor(t, 30*time.Second), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		h.Events = append(h.Events, ev)
	}
	return h
}

func hasVersionMarker(h *historypb.History, changeID string) bool {
	for _, ev := range h.Events {
		m := ev.GetMarkerRecordedEventAttributes()
		if m == nil || m.GetMarkerName() != "Version" {
			continue
		}
		if p := m.GetDetails()["change-id"]; p != nil && len(p.GetPayloads()) > 0 && strings.Contains(string(p.GetPayloads()[0].GetData()), changeID) {
			return true
		}
	}
	return false
}

// TestTaskControl pauses, inspects and cancels a running task through the
// manager's task operations.
func TestTaskControl(t *testing.T) {
	e := sqliteEnv(t, agenttest.Options{})
	ctx := ctxFor(t, 120*time.Second)
	v, err := e.Manager.Create(ctx, alice, daily())
	require.NoError(t, err)
	e.LLM.Hold()
	defer e.LLM.Release()
	tr, err := e.Manager.Trigger(ctx, alice, v.ID)
	require.NoError(t, err)
	agenttest.WaitFor(t, 60*time.Second, "the first LLM call to be in flight", func(context.Context) (bool, error) { return e.LLM.Held() == 1, nil })

	require.NoError(t, e.Manager.SignalTask(ctx, alice, tr.TaskID, workflows.SignalPause))
	require.ErrorIs(t, e.Manager.SignalTask(ctx, eve, tr.TaskID, workflows.SignalCancel), schedules.ErrNotFound)
	_, err = e.Manager.TaskStatus(ctx, bob, tr.TaskID)
	require.ErrorIs(t, err, schedules.ErrNotFound)
	e.LLM.Release()
	agenttest.WaitFor(t, 60*time.Second, "the task to pause after its step", func(ctx context.Context) (bool, error) {
		tv, err := e.Manager.TaskStatus(ctx, alice, tr.TaskID)
		if err != nil {
			return false, err
		}
		return tv.Live != nil && tv.Live.State == "paused" && tv.Live.Calls > 0, nil
	})
	require.NoError(t, e.Manager.SignalTask(ctx, alice, tr.TaskID, workflows.SignalCancel))
	run := e.WaitRunClosed(t, alice, tr.RunID, 60*time.Second)
	assert.Equal(t, store.RunCancelled, run.Status)
	assert.Greater(t, run.CostUSD, 0.0, "the spend before the cancel is recorded")
	tv, err := e.Manager.TaskStatus(ctx, alice, tr.TaskID)
	require.NoError(t, err)
	assert.Equal(t, store.RunCancelled, tv.Run.Status)
	err = e.Manager.SignalTask(ctx, alice, tr.TaskID, workflows.SignalResume)
	var nf *serviceerror.NotFound
	assert.True(t, schedules.IsRule(err, schedules.RuleState) || errors.As(err, &nf), "signalling a finished task: %v", err)
}
