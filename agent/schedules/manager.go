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
	"go.temporal.io/sdk/temporal"

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

// StoreError is a store write that failed; a Temporal change made for it
// was rolled back (Rollback says how that went).
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
	// OrphanGrace spares from reconciliation what may be a create still
	// under way: a Temporal schedule without a live row, or a row left
	// creating, younger than this.
	OrphanGrace time.Duration
	// OpenRunGrace: a run record open for longer than this is checked
	// against its workflow by reconciliation.
	OpenRunGrace time.Duration
	// TriggerInterval is the least time between two manual triggers of one
	// schedule; 0 sets no rate (a run in flight refuses a trigger all the
	// same).
	TriggerInterval time.Duration
}

// DefaultConfig is the configuration of `durabench agent serve`.
func DefaultConfig() Config {
	return Config{Limits: DefaultLimits(), TaskQueue: "durabench-agent", IDPrefix: "agent-", OrphanGrace: 5 * time.Minute, OpenRunGrace: time.Hour, TriggerInterval: time.Minute}
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

// overlapPolicy: a run still going at the next fire time makes that fire a
// no-op rather than a second concurrent run with its own budget. Trigger
// applies it to manual runs too.
const overlapPolicy = enumspb.SCHEDULE_OVERLAP_POLICY_SKIP

// live reports whether a row is one the user edits (active or paused), as
// opposed to a create or delete under way, or a deleted row.
func live(s store.Status) bool { return s == store.StatusActive || s == store.StatusPaused }

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
		Overlap: overlapPolicy,
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

// Create validates in and inserts the row as creating, the quota checked
// atomically with the insert, so that a refused create never reaches
// Temporal; then it creates the Temporal schedule and marks the row active.
// If Temporal refuses, the row is removed again. A crash between the steps
// leaves a row creating, which is listed and counted in quotas as such, and
// which reconciliation finishes (the Temporal schedule exists) or removes
// (it does not).
func (m *Manager) Create(ctx context.Context, scope store.Scope, in Input) (*View, error) {
	sp, err := m.cfg.Limits.Validate(in, m.now())
	if err != nil {
		return nil, err
	}
	id := uuid.NewString()
	sc := &store.Schedule{ID: id, TenantID: scope.TenantID, UserID: scope.UserID, TemporalID: m.cfg.IDPrefix + id, Status: store.StatusCreating}
	fromSpec(sc, sp)
	err = m.store.CreateSchedule(ctx, sc, store.Quota{PerUser: m.cfg.Limits.MaxPerUser, PerTenant: m.cfg.Limits.MaxPerTenant})
	var qe *store.QuotaError
	if errors.As(err, &qe) {
		return nil, ruleErr(RuleQuota, qe.Scope, "%s", qe.Error())
	}
	if err != nil {
		return nil, &StoreError{Op: "create schedule", Err: err}
	}
	if _, err := m.tc.ScheduleClient().Create(ctx, m.temporalOptions(sc)); err != nil {
		_, rb := m.store.SetStatus(context.WithoutCancel(ctx), store.Transition{ID: id, FromVersion: sc.Version, To: store.StatusDeleted,
			Reason: "Temporal refused the create: " + err.Error(), Action: "schedule.create_failed"})
		return nil, &TemporalError{Op: "create schedule", Err: err, Rollback: rb}
	}
	active, err := m.store.SetStatus(ctx, store.Transition{ID: id, FromVersion: sc.Version, To: store.StatusActive, Action: "schedule.activated"})
	if err == nil {
		return m.view(active), nil
	}
	var ce *store.ConflictError
	if errors.As(err, &ce) && live(ce.Current.Status) {
		return m.view(ce.Current), nil // reconciliation finished the create first
	}
	// Deleted meanwhile, or the store failed: the Temporal schedule goes.
	// A row still creating is then removed by reconciliation.
	rb := deleteTemporal(context.WithoutCancel(ctx), m.tc, sc.TemporalID)
	if (ce != nil || errors.Is(err, store.ErrNotFound)) && rb == nil {
		return nil, ErrConflict
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

// Update replaces the schedule's settings. The store is written first,
// conditional on the version read: of concurrent updates one wins and the
// others get ErrConflict having written nothing, to Temporal either. The
// winner then brings Temporal to the row as the store has it
// (syncTemporal), so that an update never puts older settings over newer
// ones. If Temporal cannot be written, the store change is undone, unless a
// later change superseded it.
func (m *Manager) Update(ctx context.Context, scope store.Scope, id string, in Input) (*View, error) {
	sc, err := m.get(ctx, scope, id)
	if err != nil {
		return nil, err
	}
	if !live(sc.Status) {
		return nil, ruleErr(RuleState, "status", "the schedule is %s", sc.Status)
	}
	sp, err := m.cfg.Limits.Validate(in, m.now())
	if err != nil {
		return nil, err
	}
	old := *sc
	fromSpec(sc, sp)
	if err := m.store.UpdateSchedule(ctx, sc); err != nil {
		switch {
		case errors.Is(err, store.ErrConflict):
			return nil, ErrConflict
		case errors.Is(err, store.ErrNotFound):
			return nil, ErrNotFound
		}
		return nil, &StoreError{Op: "update schedule", Err: err}
	}
	if _, err := m.syncTemporal(ctx, sc.ID); err != nil {
		old.Version = sc.Version
		rb := m.store.UpdateSchedule(context.WithoutCancel(ctx), &old)
		return nil, &TemporalError{Op: "update schedule", Err: err, Rollback: rb}
	}
	return m.view(sc), nil
}

// maxSyncPasses bounds syncTemporal: each pass beyond the first means the
// row changed again while Temporal was being written.
const maxSyncPasses = 5

// syncTemporal brings the Temporal schedule of row id to the row as the
// store has it now, and returns the drift it repaired. It reads the row
// again after writing and goes round again if the row changed meanwhile, so
// that of concurrent writers the last to write has read the newest row: one
// that wrote an older row sees the newer version on its second read and
// writes again. A row not active or paused belongs to the create or delete
// under way, or to reconciliation, and is left alone.
func (m *Manager) syncTemporal(ctx context.Context, id string) (drift, error) {
	var total drift
	for pass := 1; ; pass++ {
		sc, err := m.store.LookupSchedule(ctx, id)
		if err != nil || !live(sc.Status) {
			return total, err
		}
		d, err := m.setTemporal(ctx, sc)
		total = total.or(d)
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			// Gone from Temporal: fine if a delete took the row meanwhile.
			if cur, lerr := m.store.LookupSchedule(ctx, id); lerr == nil && !live(cur.Status) {
				return total, nil
			}
		}
		if err != nil {
			return total, err
		}
		cur, err := m.store.LookupSchedule(ctx, id)
		if err != nil || cur.Version == sc.Version {
			return total, err
		}
		if pass == maxSyncPasses {
			return total, fmt.Errorf("the schedule changed %d times while Temporal was being written; reconciliation will align them", pass)
		}
	}
}

// setTemporal makes the Temporal schedule that of sc, unless it already
// is: spec and action, and paused with its note when that differs. It
// returns the drift it found.
func (m *Manager) setTemporal(ctx context.Context, sc *store.Schedule) (drift, error) {
	opts := m.temporalOptions(sc)
	var d drift
	err := m.tc.ScheduleClient().GetHandle(ctx, sc.TemporalID).Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
		s := in.Description.Schedule
		d = driftOf(s, sc, m.now())
		if !d.any() {
			return nil, temporal.ErrSkipScheduleUpdate
		}
		s.Spec, s.Action = &opts.Spec, opts.Action
		if d.paused {
			st := client.ScheduleState{}
			if s.State != nil {
				st = *s.State
			}
			st.Paused, st.Note = opts.Paused, opts.Note
			s.State = &st
		}
		return &client.ScheduleUpdate{Schedule: &s}, nil
	}})
	return d, err
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
		return m.lost(ctx, err, sc.ID, store.StatusPaused, "pause schedule")
	}
	return m.settled(ctx, updated), nil
}

// lost answers a pause or resume whose store transition failed after its
// Temporal change. Temporal is not put back to what this request read,
// which a concurrent winner may have changed since, but brought to the row
// as the store has it. A conflict with a request that reached the wanted
// state is success.
func (m *Manager) lost(ctx context.Context, err error, id string, want store.Status, op string) (*View, error) {
	_, rb := m.syncTemporal(context.WithoutCancel(ctx), id)
	var ce *store.ConflictError
	switch {
	case errors.As(err, &ce) && ce.Current.Status == want:
		return m.view(ce.Current), nil
	case errors.Is(err, store.ErrConflict) && rb == nil:
		return nil, ErrConflict
	case errors.Is(err, store.ErrNotFound) && rb == nil:
		return nil, ErrNotFound
	}
	return nil, &StoreError{Op: op, Err: err, Rollback: rb}
}

// settled is the view of a committed pause or resume once Temporal is
// checked against the store: an update that read the row before this
// transition may have written the former paused state over ours. If the
// check fails, the change stands (runs follow the store: a run of a
// schedule paused there does nothing) and reconciliation aligns Temporal;
// the failure is left in the audit trail.
func (m *Manager) settled(ctx context.Context, sc *store.Schedule) *View {
	if _, err := m.syncTemporal(ctx, sc.ID); err != nil {
		_ = m.store.Audit(context.WithoutCancel(ctx), store.AuditEvent{Scope: sc.Scope(), ScheduleID: sc.ID, Action: "schedule.sync_failed",
			Detail: "checking Temporal after " + string(sc.Status) + ": " + err.Error()})
	}
	return m.view(sc)
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
		return m.lost(ctx, err, sc.ID, store.StatusActive, "resume schedule")
	}
	return m.settled(ctx, updated), nil
}

// maxDeleteAttempts bounds the retries of a delete whose transition to
// deleting lost to a concurrent edit.
const maxDeleteAttempts = 5

// Delete deletes the owner's schedule completely or reports that it did
// not: the row is marked deleting (so that a run firing meanwhile does
// nothing), the Temporal schedule is deleted, then the row is marked
// deleted. If Temporal refuses, the row goes back to its state and the
// error is returned; the schedule is then exactly as before. Concurrent
// deletes all succeed: one that loses the transition decides from the row
// as the winner left it (deleting: finish it; deleted: done; edited: try
// again), never from a later read that may show the delete already over.
func (m *Manager) Delete(ctx context.Context, scope store.Scope, id string) error {
	cur, err := m.get(ctx, scope, id)
	if err != nil {
		return err
	}
	// orig is the state to restore if Temporal refuses; a delete begun by
	// another request is not ours to undo.
	orig, origReason := cur.Status, cur.StatusReason
	for attempt := 1; cur.Status != store.StatusDeleting; attempt++ {
		next, err := m.store.SetStatus(ctx, store.Transition{ID: id, FromVersion: cur.Version, To: store.StatusDeleting, Reason: cur.StatusReason, Action: "schedule.deleting"})
		var ce *store.ConflictError
		switch {
		case err == nil:
			cur = next
		case errors.Is(err, store.ErrNotFound):
			return nil // a concurrent delete finished first
		case errors.As(err, &ce) && attempt < maxDeleteAttempts:
			cur, orig, origReason = ce.Current, ce.Current.Status, ce.Current.StatusReason
		case ce != nil:
			return ErrConflict
		default:
			return err
		}
	}
	if err := deleteTemporal(ctx, m.tc, cur.TemporalID); err != nil {
		var rb error
		if orig != store.StatusDeleting {
			_, rb = m.store.SetStatus(context.WithoutCancel(ctx), store.Transition{ID: id, FromVersion: cur.Version, To: orig, Reason: origReason, Action: "schedule.delete_failed"})
		}
		return &TemporalError{Op: "delete schedule", Err: err, Rollback: rb}
	}
	_, err = m.store.SetStatus(ctx, store.Transition{ID: id, FromVersion: cur.Version, To: store.StatusDeleted, Action: "schedule.deleted"})
	switch {
	case err == nil, errors.Is(err, store.ErrNotFound):
		return nil // ErrNotFound: a concurrent delete finished first
	case errors.Is(err, store.ErrConflict):
		// The request whose delete this finished put the row back after
		// Temporal refused it.
		return ErrConflict
	}
	// The Temporal schedule is gone and the row says deleting:
	// reconciliation finishes the delete.
	return &StoreError{Op: "delete schedule", Err: err}
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

// triggerStartGrace is how long a claimed manual run that Temporal does not
// know counts as in flight: its start may still be under way (the SDK gives
// a start call 10 s, retries included, unless the caller's deadline is
// longer). A claim released after a failed start does not count at all.
const triggerStartGrace = time.Minute

// Trigger runs the owner's active schedule now. It starts the same
// workflow the schedule starts, with an id of our choosing, so that the
// caller learns which run to read; Temporal's own trigger does not say.
// The schedule's overlap policy holds for it (RuleOverlap while a run is
// in flight) and so does the trigger rate (RuleTriggerRate, with
// RetryAfter). The run is claimed in the store before it starts, by a
// conditional write on the last claim, so that of concurrent triggers one
// starts a run.
func (m *Manager) Trigger(ctx context.Context, scope store.Scope, id string) (*Triggered, error) {
	sc, err := m.get(ctx, scope, id)
	if err != nil {
		return nil, err
	}
	if sc.Status != store.StatusActive {
		return nil, ruleErr(RuleState, "status", "the schedule is %s; resume it before triggering", sc.Status)
	}
	if err := m.checkInFlight(ctx, sc); err != nil {
		return nil, err
	}
	if err := m.checkTriggerRate(sc); err != nil {
		return nil, err
	}
	runID := sc.TemporalID + "-manual-" + uuid.NewString()
	claim := store.TriggerClaim{ID: sc.ID, RunID: runID, PrevRunID: sc.LastTriggerRunID, PrevAt: sc.LastTriggerAt, MinInterval: m.cfg.TriggerInterval}
	if _, err := m.store.ClaimTrigger(ctx, claim); err != nil {
		var ce *store.ConflictError
		switch {
		case errors.As(err, &ce):
			return nil, m.claimRefused(ce.Current, claim)
		case errors.Is(err, store.ErrNotFound):
			return nil, ErrNotFound
		}
		return nil, err
	}
	_, err = m.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: runID, TaskQueue: m.cfg.TaskQueue},
		workflows.ScheduledRunName, workflows.ScheduledRunInput{ScheduleID: sc.ID, Trigger: "manual"})
	if err != nil {
		return nil, &TemporalError{Op: "start run", Err: err, Rollback: m.store.ReleaseTrigger(context.WithoutCancel(ctx), claim)}
	}
	if err := m.store.Audit(ctx, store.AuditEvent{Scope: scope, ScheduleID: sc.ID, RunID: runID, Action: "schedule.triggered"}); err != nil {
		return nil, err
	}
	return &Triggered{RunID: runID, TaskID: runID + "-agent"}, nil
}

// checkInFlight refuses a trigger while a run of sc is in flight: one the
// schedule started (Temporal lists those), or the last manual run, whose
// workflow is still running or was claimed so recently that its start may
// still be under way.
func (m *Manager) checkInFlight(ctx context.Context, sc *store.Schedule) error {
	var nf *serviceerror.NotFound
	desc, err := m.tc.ScheduleClient().GetHandle(ctx, sc.TemporalID).Describe(ctx)
	switch {
	case errors.As(err, &nf):
		// Missing from Temporal (reconciliation recreates it): it runs nothing.
	case err != nil:
		return &TemporalError{Op: "describe schedule", Err: err}
	case len(desc.Info.RunningWorkflows) > 0:
		return overlapErr(desc.Info.RunningWorkflows[0].WorkflowID)
	}
	if sc.LastTriggerRunID == "" {
		return nil
	}
	run, err := m.tc.DescribeWorkflowExecution(ctx, sc.LastTriggerRunID, "")
	switch {
	case errors.As(err, &nf):
		if m.now().Sub(sc.LastTriggerAt) < triggerStartGrace {
			return overlapErr(sc.LastTriggerRunID)
		}
	case err != nil:
		return &TemporalError{Op: "describe run", Err: err}
	case run.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return overlapErr(sc.LastTriggerRunID)
	}
	return nil
}

func overlapErr(runID string) *RuleError {
	return ruleErr(RuleOverlap, "trigger", "run %s of this schedule is in flight, and the schedule's overlap policy (%s) starts no second run beside it; wait for it to end or cancel its task",
		runID, overlapPolicy)
}

// checkTriggerRate refuses a trigger sooner than TriggerInterval after the
// last one, saying when to retry.
func (m *Manager) checkTriggerRate(sc *store.Schedule) error {
	if sc.LastTriggerAt.IsZero() || m.cfg.TriggerInterval <= 0 {
		return nil
	}
	wait := sc.LastTriggerAt.Add(m.cfg.TriggerInterval).Sub(m.now())
	if wait <= 0 {
		return nil
	}
	e := ruleErr(RuleTriggerRate, "trigger", "the schedule was last triggered at %s; one manual trigger per %s is allowed, so retry in %s",
		sc.LastTriggerAt.Format(time.RFC3339), m.cfg.TriggerInterval, wait.Round(time.Second))
	e.RetryAfter = wait
	return e
}

// claimRefused says why a trigger claim lost, from the row as the claim
// found it: the schedule is no longer active, a concurrent trigger claimed
// a run (which is now in flight), or the rate.
func (m *Manager) claimRefused(cur *store.Schedule, claim store.TriggerClaim) error {
	switch {
	case cur.Status != store.StatusActive:
		return ruleErr(RuleState, "status", "the schedule is %s; resume it before triggering", cur.Status)
	case cur.LastTriggerRunID != claim.PrevRunID:
		return overlapErr(cur.LastTriggerRunID)
	}
	if err := m.checkTriggerRate(cur); err != nil {
		return err
	}
	return ErrConflict
}

// History is a page of runs with the schedule's cumulative totals.
type History struct {
	Runs          []*store.Run    `json:"runs"`
	NextPageToken string          `json:"next_page_token,omitempty"`
	Totals        store.RunTotals `json:"totals"`
}

// Runs returns the owner's schedule's runs, newest first, and its totals,
// also after the schedule was deleted.
func (m *Manager) Runs(ctx context.Context, scope store.Scope, id string, page store.Page) (*History, error) {
	err := m.store.OwnsSchedule(ctx, scope, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
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
