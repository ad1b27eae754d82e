package schedules_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/durabench/durabench/agent/agenttest"
	"github.com/durabench/durabench/agent/schedules"
	"github.com/durabench/durabench/agent/store"
	"github.com/durabench/durabench/agent/workflows"
)

// hookedCreates counts the Temporal schedule creates made through it; with
// hold set it holds each until hold is closed, with fail set it refuses
// them.
type hookedCreates struct {
	client.Client
	creates atomic.Int64
	hold    chan struct{}
	fail    error
}

func (h *hookedCreates) ScheduleClient() client.ScheduleClient {
	return hookedScheduleClient{h.Client.ScheduleClient(), h}
}

type hookedScheduleClient struct {
	client.ScheduleClient
	h *hookedCreates
}

func (c hookedScheduleClient) Create(ctx context.Context, o client.ScheduleOptions) (client.ScheduleHandle, error) {
	c.h.creates.Add(1)
	if c.h.hold != nil {
		select {
		case <-c.h.hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if c.h.fail != nil {
		return nil, c.h.fail
	}
	return c.ScheduleClient.Create(ctx, o)
}

// failingStarts makes Temporal refuse to start workflows.
type failingStarts struct{ client.Client }

func (failingStarts) ExecuteWorkflow(context.Context, client.StartWorkflowOptions, any, ...any) (client.WorkflowRun, error) {
	return nil, serviceerror.NewUnavailable("injected: Temporal is unavailable")
}

// assertFiresAsStored checks that Temporal fires the schedule when the
// store says: its next fire time is the store's, and so are the next 10
// fire times of its spec, in the same zone.
func assertFiresAsStored(t *testing.T, e *agenttest.Env, id string) {
	t.Helper()
	v, err := e.Manager.Get(ctxFor(t, 30*time.Second), alice, id)
	require.NoError(t, err)
	desc, err := describe(t, e, v.TemporalScheduleID)
	require.NoError(t, err)
	require.NotNil(t, v.NextRunAt)
	require.NotEmpty(t, desc.Info.NextActionTimes)
	assert.Equal(t, v.NextRunAt.Unix(), desc.Info.NextActionTimes[0].Unix(), "Temporal's next fire time is the store's (cron %q)", v.Cron)
	assert.Equal(t, v.Timezone, desc.Schedule.Spec.TimeZoneName)
	have, err := schedules.CompileSpec(desc.Schedule.Spec)
	require.NoError(t, err)
	want, err := schedules.CompileCron(v.Cron, v.Timezone)
	require.NoError(t, err)
	now := time.Now()
	th, tw := now, now
	for i := 1; i <= 10; i++ {
		th, tw = have.Next(th), want.Next(tw)
		require.True(t, th.Equal(tw), "fire time %d: Temporal %s, the store's cron %q %s", i, th, v.Cron, tw)
	}
}

// TestConcurrentUpdates: concurrent PUTs of one schedule. One wins each
// race; the losers get ErrConflict and write nothing to Temporal, which
// then fires at the winner's times. A loser used to put the settings it
// had read back into Temporal after losing: the API showed the new cron
// while the schedule fired at the old one, for good.
func TestConcurrentUpdates(t *testing.T) {
	eachBackend(t, agenttest.Options{NoWorker: true}, func(t *testing.T, e *agenttest.Env) {
		ctx := ctxFor(t, 90*time.Second)
		crons := []string{"0 6 * * *", "0 7 * * *", "30 7 * * 1-5", "0 8 * * *"}
		conflicts := 0
		for round := range 3 {
			v, err := e.Manager.Create(ctx, alice, daily())
			require.NoError(t, err)
			errs := make([]error, len(crons))
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i, cron := range crons {
				wg.Add(1)
				go func() {
					defer wg.Done()
					in := daily()
					in.Cron = cron
					<-start
					_, errs[i] = e.Manager.Update(ctx, alice, v.ID, in)
				}()
			}
			close(start)
			wg.Wait()
			wins := 0
			for _, err := range errs {
				if err == nil {
					wins++
					continue
				}
				require.ErrorIs(t, err, schedules.ErrConflict, "round %d", round)
				conflicts++
			}
			require.Positive(t, wins, "round %d", round)
			got, err := e.Manager.Get(ctx, alice, v.ID)
			require.NoError(t, err)
			require.Contains(t, crons, got.Cron, "the store has the settings of a winner")
			assertFiresAsStored(t, e, v.ID)
		}
		assert.Positive(t, conflicts, "the updates raced: some lost")
	})
}

// TestReconcileRepairsSpec: a Temporal schedule whose spec changed behind
// the store's back is rewritten from the store. The specs are compared by
// zone and by their next 10 fire times, since Temporal keeps a cron string
// as calendars: a spec whose first fire time is right and a later one
// wrong is caught too.
func TestReconcileRepairsSpec(t *testing.T) {
	eachBackend(t, agenttest.Options{NoWorker: true}, func(t *testing.T, e *agenttest.Env) {
		ctx := ctxFor(t, 60*time.Second)
		for _, tt := range []struct {
			name string
			spec client.ScheduleSpec
		}{
			{"another time", client.ScheduleSpec{CronExpressions: []string{"0 3 * * *"}, TimeZoneName: "Asia/Tokyo"}},
			{"another zone", client.ScheduleSpec{CronExpressions: []string{"0 9 * * *"}, TimeZoneName: "Europe/London"}},
			{"an extra fire time after the next", client.ScheduleSpec{CronExpressions: []string{"0 9 * * *", "0 21 * * 0"}, TimeZoneName: "Asia/Tokyo"}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				v, err := e.Manager.Create(ctx, alice, daily())
				require.NoError(t, err)
				h := e.Client.ScheduleClient().GetHandle(ctx, v.TemporalScheduleID)
				require.NoError(t, h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
					s := in.Description.Schedule
					spec := tt.spec
					s.Spec = &spec
					return &client.ScheduleUpdate{Schedule: &s}, nil
				}}))
				rep, err := e.Manager.Reconcile(ctx)
				require.NoError(t, err)
				assert.Empty(t, rep.Errors)
				assert.Equal(t, []string{v.ID}, rep.SpecFixed)
				assert.Empty(t, rep.StatusFixed)
				assertFiresAsStored(t, e, v.ID)
				trail, err := e.Store.AuditTrail(ctx, alice, v.ID)
				require.NoError(t, err)
				assert.Equal(t, "reconcile.spec_fixed", trail[len(trail)-1].Action)
			})
		}
		rep, err := e.Manager.Reconcile(ctx)
		require.NoError(t, err)
		assert.Empty(t, rep.SpecFixed, "a second pass finds the specs agree")
	})
}

// TestCreateOrder: a create writes its row first, as creating (listed so,
// and counted in the quota), then the Temporal schedule, then marks the
// row active; a create that Temporal refuses leaves no row behind.
func TestCreateOrder(t *testing.T) {
	eachBackend(t, agenttest.Options{NoWorker: true, Config: func(c *schedules.Config) { c.Limits.MaxPerUser = 1 }}, func(t *testing.T, e *agenttest.Env) {
		ctx := ctxFor(t, 60*time.Second)
		held := &hookedCreates{Client: e.Client, hold: make(chan struct{})}
		var (
			v    *schedules.View
			done = make(chan error, 1)
		)
		go func() {
			var err error
			v, err = schedules.New(held, e.Store, e.Config).Create(ctx, alice, daily())
			done <- err
		}()
		agenttest.WaitFor(t, 10*time.Second, "the row to be listed as creating while Temporal's create is held", func(ctx context.Context) (bool, error) {
			list, _, err := e.Manager.List(ctx, alice, "", store.Page{Limit: 10})
			return err == nil && len(list) == 1 && list[0].Status == store.StatusCreating, err
		})
		_, err := e.Manager.Create(ctx, alice, daily())
		assert.True(t, schedules.IsRule(err, schedules.RuleQuota), "a create under way counts in the quota: %v", err)
		close(held.hold)
		require.NoError(t, <-done)
		assert.Equal(t, store.StatusActive, v.Status)
		assert.Equal(t, int64(1), held.creates.Load())
		assertFiresAsStored(t, e, v.ID)

		require.NoError(t, e.Manager.Delete(ctx, alice, v.ID))
		refused := &hookedCreates{Client: e.Client, fail: serviceerror.NewUnavailable("injected: Temporal is unavailable")}
		_, err = schedules.New(refused, e.Store, e.Config).Create(ctx, alice, daily())
		var te *schedules.TemporalError
		require.ErrorAs(t, err, &te)
		assert.Nil(t, te.Rollback)
		list, _, err := e.Manager.List(ctx, alice, "", store.Page{Limit: 10})
		require.NoError(t, err)
		assert.Empty(t, list, "the refused create's row is gone")
		_, err = e.Manager.Create(ctx, alice, daily())
		require.NoError(t, err, "and so is its place in the quota")
	})
}

// TestReconcileFinishesCreates: rows a crash left creating are finished
// when their Temporal schedule exists and removed when it does not, once
// they are older than the orphan grace, by the pass that runs when the
// reconciliation schedule is set up (at start-up) rather than an interval
// later.
func TestReconcileFinishesCreates(t *testing.T) {
	eachBackend(t, agenttest.Options{Config: func(c *schedules.Config) { c.OrphanGrace = 0 }}, func(t *testing.T, e *agenttest.Env) {
		ctx := ctxFor(t, 90*time.Second)
		leftCreating := func(name string) *store.Schedule {
			id := uuid.NewString()
			sc := &store.Schedule{ID: id, TenantID: alice.TenantID, UserID: alice.UserID, Name: name, Cron: "0 9 * * *", Timezone: "Asia/Tokyo",
				Query: "digest", BudgetUSD: 1, MaxTokens: 1000, TimeoutSeconds: 600, TemporalID: e.Config.IDPrefix + id, Status: store.StatusCreating}
			require.NoError(t, e.Store.CreateSchedule(ctx, sc, store.Quota{}))
			return sc
		}
		inTemporal, notInTemporal := leftCreating("Temporal has it"), leftCreating("Temporal never had it")
		_, err := e.Client.ScheduleClient().Create(ctx, client.ScheduleOptions{
			ID: inTemporal.TemporalID, Spec: client.ScheduleSpec{CronExpressions: []string{inTemporal.Cron}, TimeZoneName: inTemporal.Timezone},
			Action: &client.ScheduleWorkflowAction{Workflow: workflows.ScheduledRunName, TaskQueue: e.Config.TaskQueue,
				Args: []any{workflows.ScheduledRunInput{ScheduleID: inTemporal.ID, Trigger: "schedule"}}},
		})
		require.NoError(t, err)

		cfg := e.Config
		cfg.OrphanGrace = time.Hour
		rep, err := schedules.New(e.Client, e.Store, cfg).Reconcile(ctx)
		require.NoError(t, err)
		assert.Empty(t, rep.FinishedCreates, "within the grace a create may be under way")
		assert.Empty(t, rep.RemovedCreates)
		assert.Empty(t, rep.DeletedOrphans, "nor is its Temporal schedule an orphan")

		require.NoError(t, e.Manager.EnsureReconcileSchedule(ctx, time.Hour))
		agenttest.WaitFor(t, 30*time.Second, "the start-up reconciliation to settle both rows", func(ctx context.Context) (bool, error) {
			a, err := e.Store.LookupSchedule(ctx, inTemporal.ID)
			if err != nil {
				return false, err
			}
			b, err := e.Store.LookupSchedule(ctx, notInTemporal.ID)
			return err == nil && a.Status == store.StatusActive && b.Status == store.StatusDeleted, err
		})
		assertFiresAsStored(t, e, inTemporal.ID)
		_, err = e.Manager.Get(ctx, alice, notInTemporal.ID)
		require.ErrorIs(t, err, schedules.ErrNotFound)
	})
}

// TestTriggerLimits: a manual trigger obeys the schedule's overlap policy
// (refused while a run is in flight; of concurrent triggers one starts a
// run) and the trigger rate (refused, saying when to retry). Five triggers
// used to give five runs in flight, each with a full budget.
func TestTriggerLimits(t *testing.T) {
	eachBackend(t, agenttest.Options{}, func(t *testing.T, e *agenttest.Env) {
		ctx := ctxFor(t, 120*time.Second)
		t.Run("overlap", func(t *testing.T) {
			cfg := e.Config
			cfg.TriggerInterval = 0
			m := schedules.New(e.Client, e.Store, cfg)
			v, err := m.Create(ctx, alice, daily())
			require.NoError(t, err)
			e.LLM.Hold()
			defer e.LLM.Release()
			var (
				wg       sync.WaitGroup
				mu       sync.Mutex
				start    = make(chan struct{})
				started  []*schedules.Triggered
				overlaps int
				others   []error
			)
			for range 5 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					tr, err := m.Trigger(ctx, alice, v.ID)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						started = append(started, tr)
					case schedules.IsRule(err, schedules.RuleOverlap):
						overlaps++
					default:
						others = append(others, err)
					}
				}()
			}
			close(start)
			wg.Wait()
			require.Empty(t, others)
			require.Len(t, started, 1, "one of five concurrent triggers starts a run")
			assert.Equal(t, 4, overlaps)
			agenttest.WaitFor(t, 60*time.Second, "the run's first LLM call", func(context.Context) (bool, error) { return e.LLM.Held() >= 1, nil })
			_, err = m.Trigger(ctx, alice, v.ID)
			assert.True(t, schedules.IsRule(err, schedules.RuleOverlap), "a trigger while the run is in flight: %v", err)
			e.LLM.Release()
			require.NoError(t, e.Client.GetWorkflow(ctx, started[0].RunID, "").Get(ctx, nil))
			tr, err := m.Trigger(ctx, alice, v.ID)
			require.NoError(t, err, "the run has ended: the next trigger starts one")
			require.NoError(t, e.Client.GetWorkflow(ctx, tr.RunID, "").Get(ctx, nil))
		})
		t.Run("rate", func(t *testing.T) {
			v, err := e.Manager.Create(ctx, alice, daily())
			require.NoError(t, err)
			_, err = schedules.New(failingStarts{e.Client}, e.Store, e.Config).Trigger(ctx, alice, v.ID)
			var te *schedules.TemporalError
			require.ErrorAs(t, err, &te)
			require.NoError(t, te.Rollback)
			tr, err := e.Manager.Trigger(ctx, alice, v.ID)
			require.NoError(t, err, "a trigger that started nothing counts neither as a run in flight nor against the rate")
			require.NoError(t, e.Client.GetWorkflow(ctx, tr.RunID, "").Get(ctx, nil))
			_, err = e.Manager.Trigger(ctx, alice, v.ID)
			var re *schedules.RuleError
			require.True(t, errors.As(err, &re), "%v", err)
			assert.Equal(t, schedules.RuleTriggerRate, re.Rule)
			assert.Positive(t, re.RetryAfter)
			assert.LessOrEqual(t, re.RetryAfter, e.Config.TriggerInterval)
		})
	})
}

// TestConcurrentDeletes: many deletes of one schedule at once all succeed
// (or find it gone), round after round. A delete that lost the transition
// to deleting used to decide from a second read, which could already see
// the winner's delete over, and answer "changed concurrently": the flaky
// failure of TestConcurrentRequests, seen mostly on PostgreSQL, where the
// transactions run side by side. The decision is now made on the row as
// the losing transaction found it. The rows have no Temporal schedule (a
// delete takes that as already done), which keeps each delete short and
// the race tight.
func TestConcurrentDeletes(t *testing.T) {
	eachBackend(t, agenttest.Options{NoWorker: true}, func(t *testing.T, e *agenttest.Env) {
		ctx := ctxFor(t, 120*time.Second)
		for round := range 80 {
			id := uuid.NewString()
			require.NoError(t, e.Store.CreateSchedule(ctx, &store.Schedule{ID: id, TenantID: alice.TenantID, UserID: alice.UserID, Name: "digest",
				Cron: "0 9 * * *", Timezone: "Asia/Tokyo", Query: "digest", BudgetUSD: 1, MaxTokens: 1000, TimeoutSeconds: 600,
				TemporalID: e.Config.IDPrefix + id}, store.Quota{}))
			errs := make([]error, 8)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					errs[i] = e.Manager.Delete(ctx, alice, id)
				}()
			}
			close(start)
			wg.Wait()
			for _, err := range errs {
				if !errors.Is(err, schedules.ErrNotFound) {
					require.NoError(t, err, "round %d", round)
				}
			}
			sc, err := e.Store.LookupSchedule(ctx, id)
			require.NoError(t, err)
			require.Equal(t, store.StatusDeleted, sc.Status, "round %d", round)
		}
	})
}
