package store

import (
	"context"
	"time"
)

// AuditEvent is one recorded action on a schedule or run.
type AuditEvent struct {
	ID         int64
	Scope      Scope
	ScheduleID string
	RunID      string
	Action     string // e.g. schedule.created, run.closed, reconcile.recreated
	Detail     string
	CreatedAt  time.Time
}

func (s *Store) audit(ctx context.Context, q querier, e AuditEvent) error {
	_, err := s.exec(ctx, q, `INSERT INTO audit_events (tenant_id, user_id, schedule_id, run_id, action, detail, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, e.Scope.TenantID, e.Scope.UserID, e.ScheduleID, e.RunID, e.Action, e.Detail, micros(s.now()))
	return err
}

// Audit records an event outside any other write.
func (s *Store) Audit(ctx context.Context, e AuditEvent) error {
	return s.audit(ctx, s.db, e)
}

// AuditTrail returns the events of the owner's schedule, oldest first.
func (s *Store) AuditTrail(ctx context.Context, scope Scope, scheduleID string) ([]AuditEvent, error) {
	if err := scope.check(); err != nil {
		return nil, err
	}
	rows, err := s.query(ctx, s.db, `SELECT id, tenant_id, user_id, schedule_id, run_id, action, detail, created_at
		FROM audit_events WHERE schedule_id = ? AND tenant_id = ? AND user_id = ? ORDER BY id`,
		scheduleID, scope.TenantID, scope.UserID)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(row interface{ Scan(...any) error }) (AuditEvent, error) {
		var (
			e  AuditEvent
			at int64
		)
		err := row.Scan(&e.ID, &e.Scope.TenantID, &e.Scope.UserID, &e.ScheduleID, &e.RunID, &e.Action, &e.Detail, &at)
		e.CreatedAt = fromMicros(at)
		return e, err
	})
}
