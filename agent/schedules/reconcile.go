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
// Temporal schedule that runs ReconcileWorkflow.
func (m *Manager) EnsureReconcileSchedule(ctx context.Context, every time.Duration) error {
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
//   - a row and its Temporal schedule that disagree on paused get Temporal
//     set to the row's state;
//   - a row left in deleting (a delete interrupted after Temporal) is
//     finished;
//   - a Temporal schedule of ours with no live row is deleted, once it is
//     older than the orphan grace (it may be a create in progress);
//   - a run record left open after its workflow ended (terminated, say) is
//     closed as failed.
//
// Errors on one item are reported and the pass goes on.
func (m *Manager) Reconcile(ctx context.Context) (workflows.ReconcileReport, error) {
	rep := workflows.ReconcileReport{Recreated: []string{}, DeletedOrphans: []string{}, StatusFixed: []string{}, FinishedDeletes: []string{}, ClosedRuns: []string{}, Errors: []string{}}
	fail := func(format string, a ...any) { rep.Errors = append(rep.Errors, fmt.Sprintf(format, a...)) }
	rows, err := m.store.NotDeletedSchedules(ctx)
	if err != nil {
		return rep, err
	}
	live := map[string]bool{}
	for _, sc := range rows {
		rep.Checked++
		if sc.Status == store.StatusDeleting {
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

func (m *Manager) reconcileRow(ctx context.Context, sc *store.Schedule, rep *workflows.ReconcileReport) error {
	h := m.tc.ScheduleClient().GetHandle(ctx, sc.TemporalID)
	desc, err := h.Describe(ctx)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		if _, err := m.tc.ScheduleClient().Create(ctx, m.temporalOptions(sc)); err != nil {
			return fmt.Errorf("recreate: %w", err)
		}
		rep.Recreated = append(rep.Recreated, sc.ID)
		return m.store.Audit(ctx, store.AuditEvent{Scope: sc.Scope(), ScheduleID: sc.ID, Action: "reconcile.recreated", Detail: "the Temporal schedule was missing"})
	}
	if err != nil {
		return fmt.Errorf("describe: %w", err)
	}
	wantPaused := sc.Status == store.StatusPaused
	if desc.Schedule.State.Paused == wantPaused {
		return nil
	}
	note := "reconciled with the store: " + string(sc.Status)
	if wantPaused {
		err = h.Pause(ctx, client.SchedulePauseOptions{Note: note})
	} else {
		err = h.Unpause(ctx, client.ScheduleUnpauseOptions{Note: note})
	}
	if err != nil {
		return fmt.Errorf("set paused=%v: %w", wantPaused, err)
	}
	rep.StatusFixed = append(rep.StatusFixed, sc.ID)
	return m.store.Audit(ctx, store.AuditEvent{Scope: sc.Scope(), ScheduleID: sc.ID, Action: "reconcile.status_fixed", Detail: note})
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
