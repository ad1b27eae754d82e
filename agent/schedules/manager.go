package schedules

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/durabench/durabench/agent/store"
	"github.com/durabench/durabench/agent/workflows"
)

// Errors the API maps to statuses.
var (
	// ErrNotFound is a schedule or task that does not exist for this
	// tenant and user, including one that belongs to someone else.
	ErrNotFound = errors.New("not found")
	// ErrConflict is a write that raced another one; the caller may retry.
	ErrConflict = errors.New("the schedule changed concurrently; read it again and retry")
)

// TemporalError is a Temporal call that failed; nothing was changed in the
// store, or what was changed has been rolled back (Rollback says how that went).
type TemporalError struct {
	Op       string
	Err      error
	Rollback error // non-nil when undoing the first step failed too
}

func (e *TemporalError) Error() string {
	msg := fmt.Sprintf("temporal %s failed: %v", e.Op, e.Err)
	if e.Rollback != nil {
		msg += fmt.Sprintf("; rolling back also failed (reconciliation will repair it): %v", e.Rollback)
	}
	return msg
}

func (e *TemporalError) Unwrap() error { return e.Err }

// StoreError is a store write that failed after Temporal was changed; the
// Temporal change was rolled back (Rollback says how that went).
type StoreError struct {
	Op       string
	Err      error
	Rollback error
}

func (e *StoreError) Error() string {
	msg := fmt.Sprintf("store %s failed: %v", e.Op, e.Err)
	if e.Rollback != nil {
		msg += fmt.Sprintf("; rolling back the Temporal change also failed (reconciliation will repair it): %v", e.Rollback)
	}
	return msg
}

func (e *StoreError) Unwrap() error { return e.Err }

// Config is the manager's configuration.
type Config struct {
	Limits    Limits
	TaskQueue string
	// IDPrefix starts every Temporal schedule id this manager owns;
	// reconciliation treats the others as someone else's.
	IDPrefix string
	// OrphanGrace spares a Temporal schedule without a row that is younger
	// than this: it may be a create whose store write is still under way.
	OrphanGrace time.Duration
	// OpenRunGrace: a run record open for longer than this is checked
	// against its workflow by reconciliation.
	OpenRunGrace time.Duration
}

// DefaultConfig is the configuration of `durabench agent serve`.
func DefaultConfig() Config {
	return Config{Limits: DefaultLimits(), TaskQueue: "durabench-agent", IDPrefix: "agent-", OrphanGrace: 5 * time.Minute, OpenRunGrace: time.Hour}
}

// Manager manages schedules in Temporal and the store.
type Manager struct {
	tc    client.Client
	store *store.Store
	cfg   Config
	now   func() time.Time
}

// New returns a manager.
func New(tc client.Client, s *store.Store, cfg Config) *Manager {
	return &Manager{tc: tc, store: s, cfg: cfg, now: time.Now}
}

// View is a schedule as the API shows it.
type View struct {
	ID                  string           `json:"id"`
	Name                string           `json:"name"`
	Cron                string           `json:"cron"`
	Timezone            string           `json:"timezone"`
	Query               string           `json:"query"`
	BudgetUSD           float64          `json:"budget_usd"`
	MaxTokens           int64            `json:"max_tokens"`
	TimeoutSeconds      int64            `json:"timeout_seconds"`
	Deliver             []string         `json:"deliver"`
	ApprovedOperations  []string         `json:"approved_operations"`
	Status              store.Status     `json:"status"`
	StatusReason        string           `json:"status_reason,omitempty"`
	ConsecutiveFailures int64            `json:"consecutive_failures"`
	NextRunAt           *time.Time       `json:"next_run_at"`         // UTC
	NextRunLocal        string           `json:"next_run_local"`      // RFC 3339 in the schedule's zone
	NextRunLocalText    string           `json:"next_run_local_text"` // e.g. 2026-01-02 09:00 JST
	TemporalScheduleID  string           `json:"temporal_schedule_id"`
	CreatedAt           time.Time        `json:"created_at"`
	UpdatedAt           time.Time        `json:"updated_at"`
	Totals              *store.RunTotals `json:"totals,omitempty"`
}

func (m *Manager) view(sc *store.Schedule) *View {
	v := &View{
		ID: sc.ID, Name: sc.Name, Cron: sc.Cron, Timezone: sc.Timezone, Query: sc.Query, BudgetUSD: sc.BudgetUSD,
		MaxTokens: sc.MaxTokens, TimeoutSeconds: sc.TimeoutSeconds, Deliver: nonNil(sc.Deliver),
		ApprovedOperations: nonNil(sc.ApprovedOperations), Status: sc.Status, StatusReason: sc.StatusReason,
		ConsecutiveFailures: sc.ConsecutiveFailures, TemporalScheduleID: sc.TemporalID, CreatedAt: sc.CreatedAt, UpdatedAt: sc.UpdatedAt,
	}
	if sc.Status != store.StatusActive {
		return v
	}
	ft, err := CompileCron(sc.Cron, sc.Timezone)
	if err != nil {
		return v // validated on the way in; nothing better to show
	}
	if next := ft.Next(m.now()); !next.IsZero() {
		loc, _ := time.LoadLocation(sc.Timezone)
		utc := next.UTC()
		v.NextRunAt = &utc
		v.NextRunLocal = next.In(loc).Format(time.RFC3339)
		v.NextRunLocalText = next.In(loc).Format("2006-01-02 15:04 MST")
	}
	return v
}

func nonNilCalls(v []store.Call) []store.Call {
	if v == nil {
		return []store.Call{}
	}
	return v
}

func nonNil(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

// temporalOptions is the Temporal schedule for a row.
func (m *Manager) temporalOptions(sc *store.Schedule) client.ScheduleOptions {
	return client.ScheduleOptions{
		ID:   sc.TemporalID,
		Spec: client.ScheduleSpec{CronExpressions: []string{sc.Cron}, TimeZoneName: sc.Timezone},
		Action: &client.ScheduleWorkflowAction{
			ID:        sc.TemporalID, // Temporal appends the fire time
			Workflow:  workflows.ScheduledRunName,
			Args:      []any{workflows.ScheduledRunInput{ScheduleID: sc.ID, Trigger: "schedule"}},
			TaskQueue: m.cfg.TaskQueue,
		},
		// A run still going at the next fire time makes that fire a no-op
		// rather than a second concurrent run with its own budget.
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		Paused:  sc.Status == store.StatusPaused,
		Note:    sc.StatusReason,
		Memo:    map[string]any{"schedule_id": sc.ID, "tenant_id": sc.TenantID, "user_id": sc.UserID},
	}
}

func fromSpec(sc *store.Schedule, sp Spec) {
	sc.Name, sc.Cron, sc.Timezone, sc.Query = sp.Name, sp.Cron, sp.Timezone, sp.Query
	sc.BudgetUSD, sc.MaxTokens, sc.TimeoutSeconds = sp.BudgetUSD, sp.MaxTokens, int64(sp.Timeout/time.Second)
	sc.Deliver, sc.ApprovedOperations = sp.Deliver, sp.ApprovedOperations
}

// Create validates in, creates the Temporal schedule, then the row (the
// quota is checked atomically with the insert). When the row cannot be
// written the Temporal schedule is deleted again.
func (m *Manager) Create(ctx context.Context, scope store.Scope, in Input) (*View, error) {
	sp, err := m.cfg.Limits.Validate(in, m.now())
	if err != nil {
		return nil, err
	}
	id := uuid.NewString()
	sc := &store.Schedule{ID: id, TenantID: scope.TenantID, UserID: scope.UserID, TemporalID: m.cfg.IDPrefix + id, Status: store.StatusActive}
	fromSpec(sc, sp)
	handle, err := m.tc.ScheduleClient().Create(ctx, m.temporalOptions(sc))
	if err != nil {
		return nil, &TemporalError{Op: "create schedule", Err: err}
	}
	err = m.store.CreateSchedule(ctx, sc, store.Quota{PerUser: m.cfg.Limits.MaxPerUser, PerTenant: m.cfg.Limits.MaxPerTenant})
	if err == nil {
		return m.view(sc), nil
	}
	rb := handle.Delete(context.WithoutCancel(ctx))
	var qe *store.QuotaError
	if errors.As(err, &qe) && rb == nil {
		return nil, ruleErr(RuleQuota, qe.Scope, "%s", qe.Error())
	}
	return nil, &StoreError{Op: "create schedule", Err: err, Rollback: rb}
}

// get returns the owner's schedule or ErrNotFound.
func (m *Manager) get(ctx context.Context, scope store.Scope, id string) (*store.Schedule, error) {
	sc, err := m.store.GetSchedule(ctx, scope, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	return sc, err
}

// Get returns the owner's schedule with its next run and totals.
func (m *Manager) Get(ctx context.Context, scope store.Scope, id string) (*View, error) {
	sc, err := m.get(ctx, scope, id)
	if err != nil {
		return nil, err
	}
	totals, err := m.store.Totals(ctx, scope, id)
	if err != nil {
		return nil, err
	}
	v := m.view(sc)
	v.Totals = &totals
	return v, nil
}

// List returns a page of the owner's schedules, optionally by status.
func (m *Manager) List(ctx context.Context, scope store.Scope, status store.Status, page store.Page) ([]*View, string, error) {
	list, next, err := m.store.ListSchedules(ctx, scope, status, page)
	if err != nil {
		return nil, "", err
	}
	views := make([]*View, 0, len(list))
	for _, sc := range list {
		views = append(views, m.view(sc))
	}
	return views, next, nil
}

// Update replaces the schedule's settings: Temporal first, then the store;
// if the store refuses, the old Temporal settings are put back.
func (m *Manager) Update(ctx context.Context, scope store.Scope, id string, in Input) (*View, error) {
	sc, err := m.get(ctx, scope, id)
	if err != nil {
		return nil, err
	}
	sp, err := m.cfg.Limits.Validate(in, m.now())
	if err != nil {
		return nil, err
	}
	old := *sc
	fromSpec(sc, sp)
	handle := m.tc.ScheduleClient().GetHandle(ctx, sc.TemporalID)
	if err := m.setTemporal(ctx, handle, sc); err != nil {
		return nil, &TemporalError{Op: "update schedule", Err: err}
	}
	if err := m.store.UpdateSchedule(ctx, sc); err != nil {
		rb := m.setTemporal(context.WithoutCancel(ctx), handle, &old)
		if errors.Is(err, store.ErrConflict) && rb == nil {
			return nil, ErrConflict
		}
		if errors.Is(err, store.ErrNotFound) && rb == nil {
			return nil, ErrNotFound
		}
		return nil, &StoreError{Op: "update schedule", Err: err, Rollback: rb}
	}
	return m.view(sc), nil
}

// setTemporal makes the Temporal schedule's spec and action those of sc.
func (m *Manager) setTemporal(ctx context.Context, h client.ScheduleHandle, sc *store.Schedule) error {
	opts := m.temporalOptions(sc)
	return h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
		s := in.Description.Schedule
		s.Spec = &opts.Spec
		s.Action = opts.Action
		return &client.ScheduleUpdate{Schedule: &s}, nil
	}})
}

// Pause pauses the owner's schedule; pausing a paused schedule is a no-op.
func (m *Manager) Pause(ctx context.Context, scope store.Scope, id, reason string) (*View, error) {
	sc, err := m.get(ctx, scope, id)
	if err != nil {
		return nil, err
	}
	if reason == "" {
		reason = "paused by the user"
	}
	return m.pause(ctx, sc, reason, "schedule.paused")
}

// PauseForFailures pauses a schedule after consecutive failed runs; it is
// what ScheduledRunWorkflow calls, not a user. A schedule no longer active
// (paused meanwhile, being deleted, gone) needs nothing.
func (m *Manager) PauseForFailures(ctx context.Context, scheduleID, reason string) error {
	sc, err := m.store.LookupSchedule(ctx, scheduleID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if sc.Status != store.StatusActive {
		return nil
	}
	_, err = m.pause(ctx, sc, reason, "schedule.paused_after_failures")
	return err
}

func (m *Manager) pause(ctx context.Context, sc *store.Schedule, reason, action string) (*View, error) {
	switch sc.Status {
	case store.StatusPaused:
		return m.view(sc), nil
	case store.StatusActive:
	default:
		return nil, ruleErr(RuleState, "status", "the schedule is %s", sc.Status)
	}
	h := m.tc.ScheduleClient().GetHandle(ctx, sc.TemporalID)
	if err := h.Pause(ctx, client.SchedulePauseOptions{Note: reason}); err != nil {
		return nil, &TemporalError{Op: "pause schedule", Err: err}
	}
	updated, err := m.store.SetStatus(ctx, store.Transition{ID: sc.ID, FromVersion: sc.Version, To: store.StatusPaused, Reason: reason, Action: action})
	if err != nil {
		if cur := m.wonBy(ctx, err, sc.ID, store.StatusPaused); cur != nil {
			return m.view(cur), nil
		}
		rb := h.Unpause(context.WithoutCancel(ctx), client.ScheduleUnpauseOptions{Note: "rolled back: " + err.Error()})
		if errors.Is(err, store.ErrConflict) && rb == nil {
			return nil, ErrConflict
		}
		return nil, &StoreError{Op: "pause schedule", Err: err, Rollback: rb}
	}
	return m.view(updated), nil
}

// wonBy returns the schedule when err is a conflict with a concurrent
// request that already brought it to the wanted state: the Temporal side is
// in that state too, so there is nothing to roll back.
func (m *Manager) wonBy(ctx context.Context, err error, id string, want store.Status) *store.Schedule {
	if !errors.Is(err, store.ErrConflict) {
		return nil
	}
	cur, lerr := m.store.LookupSchedule(ctx, id)
	if lerr != nil || cur.Status != want {
		return nil
	}
	return cur
}

// Resume resumes the owner's schedule and clears its failure count;
// resuming an active schedule is a no-op that returns its next run.
func (m *Manager) Resume(ctx context.Context, scope store.Scope, id string) (*View, error) {
	sc, err := m.get(ctx, scope, id)
	if err != nil {
		return nil, err
	}
	switch sc.Status {
	case store.StatusActive:
		return m.view(sc), nil
	case store.StatusPaused:
	default:
		return nil, ruleErr(RuleState, "status", "the schedule is %s", sc.Status)
	}
	h := m.tc.ScheduleClient().GetHandle(ctx, sc.TemporalID)
	if err := h.Unpause(ctx, client.ScheduleUnpauseOptions{Note: "resumed by the user"}); err != nil {
		return nil, &TemporalError{Op: "resume schedule", Err: err}
	}
	updated, err := m.store.SetStatus(ctx, store.Transition{ID: sc.ID, FromVersion: sc.Version, To: store.StatusActive, ResetFailures: true, Action: "schedule.resumed"})
	if err != nil {
		if cur := m.wonBy(ctx, err, sc.ID, store.StatusActive); cur != nil {
			return m.view(cur), nil
		}
		rb := h.Pause(context.WithoutCancel(ctx), client.SchedulePauseOptions{Note: sc.StatusReason})
		if errors.Is(err, store.ErrConflict) && rb == nil {
			return nil, ErrConflict
		}
		return nil, &StoreError{Op: "resume schedule", Err: err, Rollback: rb}
	}
	return m.view(updated), nil
}

// Delete deletes the owner's schedule completely or reports that it did
// not: the row is marked deleting (so that a run firing meanwhile does
// nothing), the Temporal schedule is deleted, then the row is marked
// deleted. If Temporal refuses, the row goes back to its state and the
// error is returned; the schedule is then exactly as before.
func (m *Manager) Delete(ctx context.Context, scope store.Scope, id string) error {
	sc, err := m.get(ctx, scope, id)
	if err != nil {
		return err
	}
	orig, cur := sc.Status, sc
	if orig != store.StatusDeleting {
		cur, err = m.store.SetStatus(ctx, store.Transition{ID: sc.ID, FromVersion: sc.Version, To: store.StatusDeleting, Reason: sc.StatusReason, Action: "schedule.deleting"})
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil // a concurrent delete finished first
		case errors.Is(err, store.ErrConflict):
			// A concurrent delete took over: finish it with its intent.
			if cur = m.wonBy(ctx, err, sc.ID, store.StatusDeleting); cur == nil {
				return ErrConflict
			}
			orig = store.StatusDeleting
		case err != nil:
			return err
		}
	}
	if err := deleteTemporal(ctx, m.tc, sc.TemporalID); err != nil {
		var rb error
		if orig != store.StatusDeleting {
			_, rb = m.store.SetStatus(context.WithoutCancel(ctx), store.Transition{ID: sc.ID, FromVersion: cur.Version, To: orig, Reason: sc.StatusReason, Action: "schedule.delete_failed"})
		}
		return &TemporalError{Op: "delete schedule", Err: err, Rollback: rb}
	}
	_, err = m.store.SetStatus(ctx, store.Transition{ID: sc.ID, FromVersion: cur.Version, To: store.StatusDeleted, Action: "schedule.deleted"})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil // a concurrent delete finished first
	case err != nil:
		// The Temporal schedule is gone and the row says deleting:
		// reconciliation finishes the delete.
		return &StoreError{Op: "delete schedule", Err: err}
	}
	return nil
}

// deleteTemporal deletes a Temporal schedule; one already gone is fine.
func deleteTemporal(ctx context.Context, tc client.Client, id string) error {
	err := tc.ScheduleClient().GetHandle(ctx, id).Delete(ctx)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return nil
	}
	return err
}

// Triggered names the run a trigger started.
type Triggered struct {
	RunID  string `json:"run_id"`
	TaskID string `json:"task_id"`
}

// Trigger runs the owner's active schedule now. It starts the same
// workflow the schedule starts, with an id of our choosing, so that the
// caller learns which run to read; Temporal's own trigger does not say.
func (m *Manager) Trigger(ctx context.Context, scope store.Scope, id string) (*Triggered, error) {
	sc, err := m.get(ctx, scope, id)
	if err != nil {
		return nil, err
	}
	if sc.Status != store.StatusActive {
		return nil, ruleErr(RuleState, "status", "the schedule is %s; resume it before triggering", sc.Status)
	}
	runID := sc.TemporalID + "-manual-" + uuid.NewString()
	_, err = m.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: runID, TaskQueue: m.cfg.TaskQueue},
		workflows.ScheduledRunName, workflows.ScheduledRunInput{ScheduleID: sc.ID, Trigger: "manual"})
	if err != nil {
		return nil, &TemporalError{Op: "start run", Err: err}
	}
	if err := m.store.Audit(ctx, store.AuditEvent{Scope: scope, ScheduleID: sc.ID, RunID: runID, Action: "schedule.triggered"}); err != nil {
		return nil, err
	}
	return &Triggered{RunID: runID, TaskID: runID + "-agent"}, nil
}

// History is a page of runs with the schedule's cumulative totals.
type History struct {
	Runs          []*store.Run    `json:"runs"`
	NextPageToken string          `json:"next_page_token,omitempty"`
	Totals        store.RunTotals `json:"totals"`
}

// Runs returns the owner's schedule's runs, newest first, and its totals.
func (m *Manager) Runs(ctx context.Context, scope store.Scope, id string, page store.Page) (*History, error) {
	if _, err := m.get(ctx, scope, id); err != nil {
		return nil, err
	}
	runs, next, err := m.store.ListRuns(ctx, scope, id, page)
	if err != nil {
		return nil, err
	}
	totals, err := m.store.Totals(ctx, scope, id)
	if err != nil {
		return nil, err
	}
	if runs == nil {
		runs = []*store.Run{}
	}
	return &History{Runs: runs, NextPageToken: next, Totals: totals}, nil
}

// Task signals and status: the task must be a run of this tenant and user.

// SignalTask sends pause, resume or cancel to the owner's running task.
func (m *Manager) SignalTask(ctx context.Context, scope store.Scope, taskID, signal string) error {
	if _, err := m.store.GetRunByTask(ctx, scope, taskID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return ErrNotFound
		}
		return err
	}
	err := m.tc.SignalWorkflow(ctx, taskID, "", signal, nil)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return ruleErr(RuleState, "task", "the task is not running")
	}
	if err != nil {
		return &TemporalError{Op: "signal task", Err: err}
	}
	return nil
}

// TaskView is a task's live status, its run record and the calls it made
// (model, temperature, seed and prompt fingerprint of each LLM call).
type TaskView struct {
	TaskID string                `json:"task_id"`
	Live   *workflows.TaskStatus `json:"live,omitempty"` // from the workflow's status query
	Run    *store.Run            `json:"run"`
	Calls  []store.Call          `json:"calls"` // recorded when the run closes
}

// TaskStatus queries the owner's task.
func (m *Manager) TaskStatus(ctx context.Context, scope store.Scope, taskID string) (*TaskView, error) {
	run, err := m.store.GetRunByTask(ctx, scope, taskID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	calls, err := m.store.RunCalls(ctx, scope, run.ID)
	if err != nil {
		return nil, err
	}
	tv := &TaskView{TaskID: taskID, Run: run, Calls: nonNilCalls(calls)}
	v, err := m.tc.QueryWorkflow(ctx, taskID, "", workflows.QueryStatus)
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return tv, nil // not started yet, or gone from retention: the record is what there is
		}
		return nil, &TemporalError{Op: "query task", Err: err}
	}
	var st workflows.TaskStatus
	if err := v.Get(&st); err != nil {
		return nil, err
	}
	tv.Live = &st
	return tv, nil
}
