package schedules

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/durabench/durabench/agent/store"
	"github.com/durabench/durabench/agent/workflows"
)

// ReconcileScheduleID is the Temporal schedule that runs reconciliation; it
// is ours but has no row.
func (m *Manager) ReconcileScheduleID() string { return m.cfg.IDPrefix + "reconcile" }

// EnsureReconcileSchedule creates, or updates to the given interval, the
// Temporal schedule that runs ReconcileWorkflow, and has it run once now:
// at start-up what a crash left behind (a row left creating or deleting, a
// missing or drifted Temporal schedule) is repaired without waiting a whole
// interval.
func (m *Manager) EnsureReconcileSchedule(ctx context.Context, every time.Duration) error {
	if err := m.ensureReconcileSchedule(ctx, every); err != nil {
		return err
	}
	return m.tc.ScheduleClient().GetHandle(ctx, m.ReconcileScheduleID()).Trigger(ctx, client.ScheduleTriggerOptions{})
}

func (m *Manager) ensureReconcileSchedule(ctx context.Context, every time.Duration) error {
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}}
	action := &client.ScheduleWorkflowAction{ID: m.ReconcileScheduleID(), Workflow: workflows.ReconcileName, TaskQueue: m.cfg.TaskQueue}
	_, err := m.tc.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID: m.ReconcileScheduleID(), Spec: spec, Action: action, Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
	})
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return err // nil when created
	}
	return m.tc.ScheduleClient().GetHandle(ctx, m.ReconcileScheduleID()).Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			s := in.Description.Schedule
			s.Spec, s.Action = &spec, action
			return &client.ScheduleUpdate{Schedule: &s}, nil
		},
	})
}

// Reconcile compares the store with Temporal in both directions and repairs
// what differs, the store being the truth about what users asked for:
//   - a live row whose Temporal schedule is missing gets it recreated;
//   - a row and its Temporal schedule that disagree on the spec (the zone,
//     or any of the next fireTimesCompared fire times) or on paused get
//     Temporal rewritten from the row as the store has it at that moment;
//   - a row left creating (a create interrupted) is finished if its
//     Temporal schedule exists and removed if not, once it is older than
//     the orphan grace (it may be a create in progress);
//   - a row left in deleting (a delete interrupted after Temporal) is
//     finished;
//   - a Temporal schedule of ours with no live row is deleted, once it is
//     older than the orphan grace;
//   - a run record left open after its workflow ended (terminated, say) is
//     closed as failed.
//
// Errors on one item are reported and the pass goes on.
func (m *Manager) Reconcile(ctx context.Context) (workflows.ReconcileReport, error) {
	rep := workflows.ReconcileReport{Recreated: []string{}, DeletedOrphans: []string{}, StatusFixed: []string{}, SpecFixed: []string{},
		FinishedCreates: []string{}, RemovedCreates: []string{}, FinishedDeletes: []string{}, ClosedRuns: []string{}, Errors: []string{}}
	fail := func(format string, a ...any) { rep.Errors = append(rep.Errors, fmt.Sprintf(format, a...)) }
	rows, err := m.store.NotDeletedSchedules(ctx)
	if err != nil {
		return rep, err
	}
	live := map[string]bool{}
	for _, sc := range rows {
		rep.Checked++
		switch sc.Status {
		case store.StatusDeleting:
			if err := deleteTemporal(ctx, m.tc, sc.TemporalID); err != nil {
				fail("finish delete of %s: %v", sc.ID, err)
				continue
			}
			if _, err := m.store.SetStatus(ctx, store.Transition{ID: sc.ID, FromVersion: sc.Version, To: store.StatusDeleted, Action: "reconcile.deleted"}); err != nil {
				fail("finish delete of %s: %v", sc.ID, err)
				continue
			}
			rep.FinishedDeletes = append(rep.FinishedDeletes, sc.ID)
			continue
		case store.StatusCreating:
			live[sc.TemporalID] = true // a create under way owns its Temporal schedule
			if m.now().Sub(sc.CreatedAt) < m.cfg.OrphanGrace {
				continue
			}
			if err := m.reconcileCreating(ctx, sc, &rep); err != nil {
				fail("create of %s: %v", sc.ID, err)
			}
			continue
		}
		live[sc.TemporalID] = true
		if err := m.reconcileRow(ctx, sc, &rep); err != nil {
			fail("schedule %s: %v", sc.ID, err)
		}
	}
	if err := m.deleteOrphans(ctx, live, &rep); err != nil {
		fail("listing Temporal schedules: %v", err)
	}
	if err := m.closeStaleRuns(ctx, &rep); err != nil {
		fail("open runs: %v", err)
	}
	return rep, nil
}

// reconcileCreating finishes a create interrupted after the row was
// written: the Temporal schedule exists (it was made from this row, which
// cannot be edited while creating), so the row becomes active; or it does
// not, and the row is removed, as a create that failed would have left it.
func (m *Manager) reconcileCreating(ctx context.Context, sc *store.Schedule, rep *workflows.ReconcileReport) error {
	_, err := m.tc.ScheduleClient().GetHandle(ctx, sc.TemporalID).Describe(ctx)
	var nf *serviceerror.NotFound
	t := store.Transition{ID: sc.ID, FromVersion: sc.Version, To: store.StatusActive, Action: "reconcile.create_finished"}
	switch {
	case errors.As(err, &nf):
		t.To, t.Action, t.Reason = store.StatusDeleted, "reconcile.create_removed", "the create was interrupted before Temporal had the schedule"
	case err != nil:
		return fmt.Errorf("describe: %w", err)
	}
	_, err = m.store.SetStatus(ctx, t)
	switch {
	case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotFound):
		return nil // the create or a delete moved it on meanwhile
	case err != nil:
		return err
	case t.To == store.StatusActive:
		rep.FinishedCreates = append(rep.FinishedCreates, sc.ID)
	default:
		rep.RemovedCreates = append(rep.RemovedCreates, sc.ID)
	}
	return nil
}

func (m *Manager) reconcileRow(ctx context.Context, sc *store.Schedule, rep *workflows.ReconcileReport) error {
	desc, err := m.tc.ScheduleClient().GetHandle(ctx, sc.TemporalID).Describe(ctx)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		if _, err := m.tc.ScheduleClient().Create(ctx, m.temporalOptions(sc)); err != nil {
			return fmt.Errorf("recreate: %w", err)
		}
		rep.Recreated = append(rep.Recreated, sc.ID)
		// An update may have committed since this pass read the row.
		if _, err := m.syncTemporal(ctx, sc.ID); err != nil {
			return fmt.Errorf("after recreating: %w", err)
		}
		return m.store.Audit(ctx, store.AuditEvent{Scope: sc.Scope(), ScheduleID: sc.ID, Action: "reconcile.recreated", Detail: "the Temporal schedule was missing"})
	}
	if err != nil {
		return fmt.Errorf("describe: %w", err)
	}
	if !driftOf(desc.Schedule, sc, m.now()).any() {
		return nil
	}
	// Repaired from the row as the store has it now, not as this pass read
	// it: a user's update may have landed since, and must not be undone.
	d, err := m.syncTemporal(ctx, sc.ID)
	if err != nil {
		return fmt.Errorf("repair: %w", err)
	}
	if d.spec != "" {
		rep.SpecFixed = append(rep.SpecFixed, sc.ID)
		if err := m.store.Audit(ctx, store.AuditEvent{Scope: sc.Scope(), ScheduleID: sc.ID, Action: "reconcile.spec_fixed", Detail: d.spec}); err != nil {
			return err
		}
	}
	if d.paused {
		rep.StatusFixed = append(rep.StatusFixed, sc.ID)
		return m.store.Audit(ctx, store.AuditEvent{Scope: sc.Scope(), ScheduleID: sc.ID, Action: "reconcile.status_fixed", Detail: "Temporal set to the store's state"})
	}
	return nil
}

// fireTimesCompared is how many fire times from now two specs must share to
// count as the same. Temporal keeps a cron string as calendars, so specs
// are compared by when they fire, not by how they are written.
const fireTimesCompared = 10

// drift is how a Temporal schedule differs from its row.
type drift struct {
	spec   string // how the specs differ; "" when they agree
	paused bool   // paused in one and not in the other
}

func (d drift) any() bool { return d.spec != "" || d.paused }

func (d drift) or(e drift) drift {
	if d.spec == "" {
		d.spec = e.spec
	}
	d.paused = d.paused || e.paused
	return d
}

// driftOf compares a Temporal schedule with its row at now.
func driftOf(s client.Schedule, sc *store.Schedule, now time.Time) drift {
	paused := s.State != nil && s.State.Paused
	return drift{spec: specDrift(s.Spec, sc, now), paused: paused != (sc.Status == store.StatusPaused)}
}

// specDrift says how Temporal's spec differs from the row's cron and zone:
// another zone, or another fire time among the next fireTimesCompared, each
// computed by the server's own schedule code in the schedule's zone.
func specDrift(got *client.ScheduleSpec, sc *store.Schedule, now time.Time) string {
	if got == nil {
		return "Temporal's schedule has no spec"
	}
	if got.TimeZoneName != sc.Timezone {
		return fmt.Sprintf("Temporal's time zone is %q, the store's %q", got.TimeZoneName, sc.Timezone)
	}
	want, err := CompileCron(sc.Cron, sc.Timezone)
	if err != nil {
		return fmt.Sprintf("the store's cron does not compile: %v", err)
	}
	have, err := CompileSpec(got)
	if err != nil {
		return fmt.Sprintf("Temporal's spec does not compile: %v", err)
	}
	loc, _ := time.LoadLocation(sc.Timezone) // CompileCron loaded it
	show := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.In(loc).Format(time.RFC3339)
	}
	tHave, tWant := now, now
	for i := 1; i <= fireTimesCompared; i++ {
		tHave, tWant = have.Next(tHave), want.Next(tWant)
		if !tHave.Equal(tWant) {
			return fmt.Sprintf("fire time %d: Temporal %s, the store's cron %q %s", i, show(tHave), sc.Cron, show(tWant))
		}
		if tWant.IsZero() {
			break
		}
	}
	return ""
}

func (m *Manager) deleteOrphans(ctx context.Context, live map[string]bool, rep *workflows.ReconcileReport) error {
	it, err := m.tc.ScheduleClient().List(ctx, client.ScheduleListOptions{PageSize: 100})
	if err != nil {
		return err
	}
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return err
		}
		if !strings.HasPrefix(e.ID, m.cfg.IDPrefix) || e.ID == m.ReconcileScheduleID() || live[e.ID] {
			continue
		}
		desc, err := m.tc.ScheduleClient().GetHandle(ctx, e.ID).Describe(ctx)
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			continue // listing lags behind deletes
		}
		if err != nil {
			rep.Errors = append(rep.Errors, fmt.Sprintf("describe %s: %v", e.ID, err))
			continue
		}
		if m.now().Sub(desc.Info.CreatedAt) < m.cfg.OrphanGrace {
			continue
		}
		if err := deleteTemporal(ctx, m.tc, e.ID); err != nil {
			rep.Errors = append(rep.Errors, fmt.Sprintf("delete orphan %s: %v", e.ID, err))
			continue
		}
		rep.DeletedOrphans = append(rep.DeletedOrphans, e.ID)
	}
	return nil
}

func (m *Manager) closeStaleRuns(ctx context.Context, rep *workflows.ReconcileReport) error {
	runs, err := m.store.OpenRuns(ctx, m.now().Add(-m.cfg.OpenRunGrace))
	if err != nil {
		return err
	}
	for _, r := range runs {
		desc, err := m.tc.DescribeWorkflowExecution(ctx, r.ID, "")
		var nf *serviceerror.NotFound
		state := "missing"
		switch {
		case errors.As(err, &nf):
		case err != nil:
			rep.Errors = append(rep.Errors, fmt.Sprintf("describe run %s: %v", r.ID, err))
			continue
		case desc.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
			continue
		default:
			state = desc.GetWorkflowExecutionInfo().GetStatus().String()
		}
		res, err := m.store.CloseRun(ctx, r.ID, store.RunEnd{Status: store.RunFailed,
			Error: "the run's workflow ended (" + state + ") without recording its end"})
		if err != nil {
			rep.Errors = append(rep.Errors, fmt.Sprintf("close run %s: %v", r.ID, err))
			continue
		}
		if res.Closed {
			rep.ClosedRuns = append(rep.ClosedRuns, r.ID)
		}
	}
	return nil
}
