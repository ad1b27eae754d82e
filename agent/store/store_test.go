package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durabench/durabench/agent/store"
	"github.com/durabench/durabench/agent/store/storetest"
)

// eachBackend runs body against SQLite and PostgreSQL.
func eachBackend(t *testing.T, body func(t *testing.T, s *store.Store)) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { body(t, b.Open(t)) })
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newSchedule(scope store.Scope, name string) *store.Schedule {
	id := uuid.NewString()
	return &store.Schedule{
		ID: id, TenantID: scope.TenantID, UserID: scope.UserID, Name: name, Cron: "0 9 * * *",
		Timezone: "Asia/Tokyo", Query: "digest", BudgetUSD: 1, MaxTokens: 10000, TimeoutSeconds: 600,
		Deliver: []string{"notify"}, TemporalID: "agent-" + id,
	}
}

var (
	alice = store.Scope{TenantID: "acme", UserID: "alice"}
	bob   = store.Scope{TenantID: "acme", UserID: "bob"}
	eve   = store.Scope{TenantID: "evil", UserID: "alice"} // same user id, other tenant
)

func TestMigrations(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := testCtx(t)
		v, err := s.SchemaVersion(ctx)
		require.NoError(t, err)
		assert.Equal(t, 2, v)
	})
	t.Run("reopen applies nothing twice", func(t *testing.T) {
		ctx := testCtx(t)
		path := t.TempDir() + "/agent.db"
		for range 2 {
			s, err := store.Open(ctx, store.SQLite, path)
			require.NoError(t, err)
			v, err := s.SchemaVersion(ctx)
			require.NoError(t, err)
			assert.Equal(t, 2, v)
			require.NoError(t, s.Close())
		}
		dsn := storetest.PostgresDSN(t)
		for range 2 {
			s, err := store.Open(ctx, store.Postgres, dsn)
			require.NoError(t, err)
			require.NoError(t, s.Close())
		}
	})
}

func TestOpenErrors(t *testing.T) {
	ctx := testCtx(t)
	for _, tt := range []struct {
		name    string
		dialect store.Dialect
		dsn     string
		want    string
	}{
		{"unknown dialect", "mysql", "x", `unknown store dialect "mysql"`},
		{"sqlite without path", store.SQLite, "", "database file path is required"},
		{"sqlite in missing directory", store.SQLite, t.TempDir() + "/no/such/dir/a.db", "sqlite"},
		{"postgres without dsn", store.Postgres, "", "DSN is required"},
		{"postgres refused", store.Postgres, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2", "postgres"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := store.Open(ctx, tt.dialect, tt.dsn)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestScheduleScoping(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := testCtx(t)
		sc := newSchedule(alice, "digest")
		require.NoError(t, s.CreateSchedule(ctx, sc, store.Quota{}))

		got, err := s.GetSchedule(ctx, alice, sc.ID)
		require.NoError(t, err)
		assert.Equal(t, sc.Name, got.Name)
		assert.Equal(t, []string{"notify"}, got.Deliver)
		assert.Equal(t, store.StatusActive, got.Status)
		assert.Equal(t, sc.CreatedAt, got.CreatedAt)

		for _, tt := range []struct {
			name  string
			scope store.Scope
			want  error
		}{
			{"other user, same tenant", bob, store.ErrNotFound},
			{"same user id, other tenant", eve, store.ErrNotFound},
			{"empty tenant", store.Scope{UserID: "alice"}, store.ErrNoScope},
			{"empty user", store.Scope{TenantID: "acme"}, store.ErrNoScope},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := s.GetSchedule(ctx, tt.scope, sc.ID)
				require.ErrorIs(t, err, tt.want)
				list, _, err := s.ListSchedules(ctx, tt.scope, "", store.Page{Limit: 10})
				if tt.want == store.ErrNoScope {
					require.ErrorIs(t, err, store.ErrNoScope)
				} else {
					require.NoError(t, err)
					assert.Empty(t, list)
				}
				other := *got
				other.TenantID, other.UserID, other.Name = tt.scope.TenantID, tt.scope.UserID, "hijacked"
				require.ErrorIs(t, s.UpdateSchedule(ctx, &other), tt.want)
				_, err = s.Totals(ctx, tt.scope, sc.ID)
				if tt.want == store.ErrNoScope {
					require.ErrorIs(t, err, store.ErrNoScope)
				}
			})
		}
		again, err := s.GetSchedule(ctx, alice, sc.ID)
		require.NoError(t, err)
		assert.Equal(t, "digest", again.Name, "a cross-tenant update must change nothing")
	})
}

func TestScheduleUpdateAndStatus(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := testCtx(t)
		sc := newSchedule(alice, "digest")
		require.NoError(t, s.CreateSchedule(ctx, sc, store.Quota{}))

		stale := *sc
		sc.Name, sc.Cron = "renamed", "30 8 * * 1-5"
		require.NoError(t, s.UpdateSchedule(ctx, sc))
		assert.Equal(t, int64(2), sc.Version)
		stale.Name = "lost update"
		require.ErrorIs(t, s.UpdateSchedule(ctx, &stale), store.ErrConflict)

		paused, err := s.SetStatus(ctx, store.Transition{ID: sc.ID, FromVersion: sc.Version, To: store.StatusPaused, Reason: "holiday", Action: "schedule.paused"})
		require.NoError(t, err)
		assert.Equal(t, store.StatusPaused, paused.Status)
		assert.Equal(t, "holiday", paused.StatusReason)
		_, err = s.SetStatus(ctx, store.Transition{ID: sc.ID, FromVersion: sc.Version, To: store.StatusActive})
		require.ErrorIs(t, err, store.ErrConflict, "a transition from a stale version must fail")

		list, _, err := s.ListSchedules(ctx, alice, store.StatusPaused, store.Page{Limit: 10})
		require.NoError(t, err)
		require.Len(t, list, 1)
		list, _, err = s.ListSchedules(ctx, alice, store.StatusActive, store.Page{Limit: 10})
		require.NoError(t, err)
		assert.Empty(t, list)

		deleted, err := s.SetStatus(ctx, store.Transition{ID: sc.ID, FromVersion: paused.Version, To: store.StatusDeleted, Action: "schedule.deleted"})
		require.NoError(t, err)
		_, err = s.GetSchedule(ctx, alice, sc.ID)
		require.ErrorIs(t, err, store.ErrNotFound)
		_, err = s.SetStatus(ctx, store.Transition{ID: sc.ID, FromVersion: deleted.Version, To: store.StatusActive})
		require.ErrorIs(t, err, store.ErrNotFound, "a deleted schedule cannot come back")
		got, err := s.LookupSchedule(ctx, sc.ID)
		require.NoError(t, err)
		assert.Equal(t, store.StatusDeleted, got.Status)

		trail, err := s.AuditTrail(ctx, alice, sc.ID)
		require.NoError(t, err)
		var actions []string
		for _, e := range trail {
			actions = append(actions, e.Action)
		}
		assert.Equal(t, []string{"schedule.created", "schedule.updated", "schedule.paused", "schedule.deleted"}, actions)
	})
}

func TestListSchedulesPaging(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := testCtx(t)
		want := map[string]bool{}
		for i := range 7 {
			sc := newSchedule(alice, fmt.Sprint("s", i))
			require.NoError(t, s.CreateSchedule(ctx, sc, store.Quota{}))
			want[sc.ID] = true
		}
		require.NoError(t, s.CreateSchedule(ctx, newSchedule(bob, "bob's"), store.Quota{}))
		seen := map[string]bool{}
		tok, pages := "", 0
		for {
			list, next, err := s.ListSchedules(ctx, alice, "", store.Page{Limit: 3, PageToken: tok})
			require.NoError(t, err)
			pages++
			for _, sc := range list {
				assert.False(t, seen[sc.ID], "a schedule appears on two pages")
				seen[sc.ID] = true
			}
			if next == "" {
				break
			}
			tok = next
		}
		assert.Equal(t, want, seen)
		assert.Equal(t, 3, pages)
		_, _, err := s.ListSchedules(ctx, alice, "", store.Page{Limit: 3, PageToken: "not-a-token!"})
		require.ErrorIs(t, err, store.ErrBadCursor)
	})
}

// TestQuotaConcurrent fires 20 creates at once: the count and the insert are
// one atomic step, so exactly the quota succeeds.
func TestQuotaConcurrent(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := testCtx(t)
		for _, tt := range []struct {
			name       string
			quota      store.Quota
			owners     []store.Scope
			wantOK     int
			wantScope  string
			concurrent int
		}{
			{"per user", store.Quota{PerUser: 5}, []store.Scope{{TenantID: "t-user", UserID: "u"}}, 5, "user", 20},
			{"per tenant", store.Quota{PerUser: 20, PerTenant: 7}, []store.Scope{{TenantID: "t-ten", UserID: "u1"}, {TenantID: "t-ten", UserID: "u2"}}, 7, "tenant", 20},
		} {
			t.Run(tt.name, func(t *testing.T) {
				var (
					wg       sync.WaitGroup
					mu       sync.Mutex
					ok       int
					refusals []*store.QuotaError
					others   []error
				)
				for i := range tt.concurrent {
					wg.Add(1)
					go func() {
						defer wg.Done()
						err := s.CreateSchedule(ctx, newSchedule(tt.owners[i%len(tt.owners)], "q"), tt.quota)
						mu.Lock()
						defer mu.Unlock()
						var qe *store.QuotaError
						switch {
						case err == nil:
							ok++
						case errors.As(err, &qe):
							refusals = append(refusals, qe)
						default:
							others = append(others, err)
						}
					}()
				}
				wg.Wait()
				require.Empty(t, others)
				assert.Equal(t, tt.wantOK, ok)
				assert.Len(t, refusals, tt.concurrent-tt.wantOK)
				for _, qe := range refusals {
					assert.Equal(t, tt.wantScope, qe.Scope)
				}
				total := 0
				for _, o := range tt.owners {
					list, _, err := s.ListSchedules(ctx, o, "", store.Page{Limit: 100})
					require.NoError(t, err)
					total += len(list)
				}
				assert.Equal(t, tt.wantOK, total, "rows in the database")
			})
		}
	})
}

func TestRunCloseOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := testCtx(t)
		sc := newSchedule(alice, "digest")
		require.NoError(t, s.CreateSchedule(ctx, sc, store.Quota{}))
		closeRun := func(id string, end store.RunEnd) store.CloseResult {
			t.Helper()
			_, err := s.StartRun(ctx, store.Run{ID: id, ScheduleID: sc.ID, TenantID: sc.TenantID, UserID: sc.UserID, TaskID: "task-" + id, Trigger: "schedule"})
			require.NoError(t, err)
			res, err := s.CloseRun(ctx, id, end)
			require.NoError(t, err)
			return res
		}

		// Failures count up, a success resets them, a cancellation leaves them.
		steps := []struct {
			status store.RunStatus
			want   int64
		}{
			{store.RunFailed, 1}, {store.RunTimedOut, 2}, {store.RunCompleted, 0},
			{store.RunBudgetExceeded, 1}, {store.RunCancelled, 1}, {store.RunFailed, 2},
		}
		for i, st := range steps {
			res := closeRun(fmt.Sprint("run-", i), store.RunEnd{Status: st.status, CostUSD: 0.25, PromptTokens: 100, CompletionTokens: 50, Model: "m"})
			assert.True(t, res.Closed)
			assert.Equal(t, st.want, res.ConsecutiveFailures, "after %s", st.status)
		}

		// Closing concurrently, as two attempts of a retried activity could:
		// exactly one closes the record.
		id := "run-concurrent"
		started, err := s.StartRun(ctx, store.Run{ID: id, ScheduleID: sc.ID, TenantID: sc.TenantID, UserID: sc.UserID, TaskID: "task-x", Trigger: "manual"})
		require.NoError(t, err)
		again, err := s.StartRun(ctx, store.Run{ID: id, ScheduleID: sc.ID, TenantID: sc.TenantID, UserID: sc.UserID, TaskID: "task-other", Trigger: "manual"})
		require.NoError(t, err)
		assert.Equal(t, started, again, "a repeated start returns the first record")
		calls := []store.Call{{Seq: 1, Kind: "llm", Name: "decompose", Model: "m", Temperature: 0.2, Seed: 7, PromptFingerprint: "abc", PromptTokens: 10, CompletionTokens: 5, CostUSD: 0.01}}
		var wg sync.WaitGroup
		results := make([]store.CloseResult, 4)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				results[i], err = s.CloseRun(ctx, id, store.RunEnd{Status: store.RunCompleted, CostUSD: 0.5, Model: "m", Calls: calls})
				assert.NoError(t, err)
			}()
		}
		wg.Wait()
		closed := 0
		for _, r := range results {
			if r.Closed {
				closed++
			}
		}
		assert.Equal(t, 1, closed)
		got, err := s.GetRun(ctx, alice, id)
		require.NoError(t, err)
		assert.Equal(t, store.RunCompleted, got.Status)
		require.NotNil(t, got.EndedAt)
		gotCalls, err := s.RunCalls(ctx, alice, id)
		require.NoError(t, err)
		assert.Equal(t, calls, gotCalls)
		_, err = s.RunCalls(ctx, eve, id)
		require.ErrorIs(t, err, store.ErrNotFound)
		byTask, err := s.GetRunByTask(ctx, alice, "task-x")
		require.NoError(t, err)
		assert.Equal(t, id, byTask.ID)
		_, err = s.GetRunByTask(ctx, bob, "task-x")
		require.ErrorIs(t, err, store.ErrNotFound)

		trail, err := s.AuditTrail(ctx, alice, sc.ID)
		require.NoError(t, err)
		closes := 0
		for _, e := range trail {
			if e.RunID == id && e.Action == "run.closed" {
				closes++
			}
		}
		assert.Equal(t, 1, closes)

		totals, err := s.Totals(ctx, alice, sc.ID)
		require.NoError(t, err)
		assert.Equal(t, int64(len(steps)+1), totals.Runs)
		assert.InDelta(t, 0.25*float64(len(steps))+0.5, totals.CostUSD, 1e-9)
		assert.Equal(t, int64(100*len(steps)), totals.PromptTokens)

		_, err = s.CloseRun(ctx, id, store.RunEnd{Status: store.RunRunning})
		require.Error(t, err, "running is not a final status")

		open, err := s.OpenRuns(ctx, time.Now().Add(time.Hour))
		require.NoError(t, err)
		assert.Empty(t, open)
	})
}

func TestListRunsPaging(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := testCtx(t)
		sc := newSchedule(alice, "digest")
		require.NoError(t, s.CreateSchedule(ctx, sc, store.Quota{}))
		for i := range 5 {
			_, err := s.StartRun(ctx, store.Run{ID: fmt.Sprint("r", i), ScheduleID: sc.ID, TenantID: sc.TenantID, UserID: sc.UserID, TaskID: fmt.Sprint("t", i), Trigger: "schedule"})
			require.NoError(t, err)
		}
		var ids []string
		tok := ""
		for {
			list, next, err := s.ListRuns(ctx, alice, sc.ID, store.Page{Limit: 2, PageToken: tok})
			require.NoError(t, err)
			for _, r := range list {
				ids = append(ids, r.ID)
			}
			if next == "" {
				break
			}
			tok = next
		}
		assert.ElementsMatch(t, []string{"r0", "r1", "r2", "r3", "r4"}, ids)
		list, _, err := s.ListRuns(ctx, eve, sc.ID, store.Page{Limit: 10})
		require.NoError(t, err)
		assert.Empty(t, list, "another tenant sees no runs")
		open, err := s.OpenRuns(ctx, time.Now().Add(time.Minute))
		require.NoError(t, err)
		assert.Len(t, open, 5)
	})
}

// TestConcurrentTransitions races transitions from one version of a row:
// exactly one applies and writes its audit event; every other reports a
// conflict carrying the row as the winner left it and writes nothing. On
// PostgreSQL the losers used to read the same version, have their UPDATE
// match no row once the winner committed, and report success all the same.
func TestConcurrentTransitions(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := testCtx(t)
		targets := []store.Status{store.StatusPaused, store.StatusDeleting}
		for round := range 5 {
			sc := newSchedule(alice, fmt.Sprint("round ", round))
			require.NoError(t, s.CreateSchedule(ctx, sc, store.Quota{}))
			const racers = 8
			var (
				wg    sync.WaitGroup
				start = make(chan struct{})
				won   = make(chan *store.Schedule, racers)
				lost  = make(chan error, racers)
			)
			for i := range racers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					to := targets[i%len(targets)]
					got, err := s.SetStatus(ctx, store.Transition{ID: sc.ID, FromVersion: sc.Version, To: to, Action: "test." + string(to)})
					if err != nil {
						lost <- err
						return
					}
					won <- got
				}()
			}
			close(start)
			wg.Wait()
			close(won)
			close(lost)
			require.Equal(t, 1, len(won), "round %d: exactly one transition applies, not %d", round, len(won))
			winner := <-won
			for err := range lost {
				var ce *store.ConflictError
				require.ErrorAs(t, err, &ce)
				require.ErrorIs(t, err, store.ErrConflict)
				assert.Equal(t, winner.Status, ce.Current.Status, "the conflict carries the winner's row")
				assert.Equal(t, winner.Version, ce.Current.Version)
			}
			got, err := s.LookupSchedule(ctx, sc.ID)
			require.NoError(t, err)
			assert.Equal(t, winner.Status, got.Status)
			assert.Equal(t, sc.Version+1, got.Version)
			trail, err := s.AuditTrail(ctx, alice, sc.ID)
			require.NoError(t, err)
			require.Len(t, trail, 2, "the create and the one transition that happened")
			assert.Equal(t, "test."+string(winner.Status), trail[1].Action)
		}
	})
}

// TestCreatingCountsInQuota: a row being created is listed with its status
// and counts against the quota like a live one.
func TestCreatingCountsInQuota(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := testCtx(t)
		sc := newSchedule(alice, "being created")
		sc.Status = store.StatusCreating
		require.NoError(t, s.CreateSchedule(ctx, sc, store.Quota{PerUser: 1}))
		list, _, err := s.ListSchedules(ctx, alice, "", store.Page{Limit: 10})
		require.NoError(t, err)
		require.Len(t, list, 1)
		assert.Equal(t, store.StatusCreating, list[0].Status)
		var qe *store.QuotaError
		require.ErrorAs(t, s.CreateSchedule(ctx, newSchedule(alice, "second"), store.Quota{PerUser: 1}), &qe)
		_, err = s.SetStatus(ctx, store.Transition{ID: sc.ID, FromVersion: sc.Version, To: store.StatusDeleted, Action: "schedule.create_failed"})
		require.NoError(t, err)
		require.NoError(t, s.CreateSchedule(ctx, newSchedule(alice, "second"), store.Quota{PerUser: 1}), "a removed create frees its place")
	})
}

// TestClaimTrigger: of concurrent claims on one schedule exactly one wins;
// a claim is refused too soon after the last one, on a schedule not
// active, and after a claim the caller did not see; a release undoes a
// claim.
func TestClaimTrigger(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := testCtx(t)
		sc := newSchedule(alice, "triggered")
		require.NoError(t, s.CreateSchedule(ctx, sc, store.Quota{}))

		const racers = 8
		var (
			wg     sync.WaitGroup
			start  = make(chan struct{})
			mu     sync.Mutex
			won    []string
			others []error
		)
		for i := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				run := fmt.Sprint("run-", i)
				_, err := s.ClaimTrigger(ctx, store.TriggerClaim{ID: sc.ID, RunID: run})
				mu.Lock()
				defer mu.Unlock()
				var ce *store.ConflictError
				switch {
				case err == nil:
					won = append(won, run)
				case !errors.As(err, &ce):
					others = append(others, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		require.Empty(t, others)
		require.Len(t, won, 1, "exactly one concurrent claim wins")
		cur, err := s.LookupSchedule(ctx, sc.ID)
		require.NoError(t, err)
		assert.Equal(t, won[0], cur.LastTriggerRunID)
		assert.False(t, cur.LastTriggerAt.IsZero())
		assert.Equal(t, sc.Version, cur.Version, "a claim is not a settings change")

		next := store.TriggerClaim{ID: sc.ID, RunID: "run-next", PrevRunID: cur.LastTriggerRunID, PrevAt: cur.LastTriggerAt}
		for _, tt := range []struct {
			name  string
			claim store.TriggerClaim
		}{
			{"too soon", store.TriggerClaim{ID: sc.ID, RunID: "run-x", PrevRunID: cur.LastTriggerRunID, MinInterval: time.Hour}},
			{"a claim not seen", store.TriggerClaim{ID: sc.ID, RunID: "run-x", PrevRunID: "run-older"}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := s.ClaimTrigger(ctx, tt.claim)
				var ce *store.ConflictError
				require.ErrorAs(t, err, &ce)
				assert.Equal(t, won[0], ce.Current.LastTriggerRunID, "nothing changed")
			})
		}
		_, err = s.ClaimTrigger(ctx, next)
		require.NoError(t, err)
		require.NoError(t, s.ReleaseTrigger(ctx, next))
		cur, err = s.LookupSchedule(ctx, sc.ID)
		require.NoError(t, err)
		assert.Equal(t, won[0], cur.LastTriggerRunID, "released: the previous claim is back")
		assert.Equal(t, next.PrevAt, cur.LastTriggerAt)
		require.ErrorIs(t, s.ReleaseTrigger(ctx, next), store.ErrConflict, "released once only")

		paused, err := s.SetStatus(ctx, store.Transition{ID: sc.ID, FromVersion: cur.Version, To: store.StatusPaused, Action: "schedule.paused"})
		require.NoError(t, err)
		_, err = s.ClaimTrigger(ctx, store.TriggerClaim{ID: sc.ID, RunID: "run-paused", PrevRunID: paused.LastTriggerRunID})
		var ce *store.ConflictError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, store.StatusPaused, ce.Current.Status)
	})
}
