package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Status is a schedule's lifecycle state.
type Status string

// Schedule states. Creating is the row written before the Temporal
// schedule exists, and deleting the intent recorded before the Temporal
// schedule is deleted, so that a crash between the two steps leaves a row
// that reconciliation finishes or removes, rather than an orphan Temporal
// schedule or a row it would recreate. Creating counts in quotas.
const (
	StatusCreating Status = "creating"
	StatusActive   Status = "active"
	StatusPaused   Status = "paused"
	StatusDeleting Status = "deleting"
	StatusDeleted  Status = "deleted"
)

// Schedule is one user's scheduled agent task.
type Schedule struct {
	ID                  string
	TenantID            string
	UserID              string
	Name                string
	Cron                string
	Timezone            string
	Query               string
	BudgetUSD           float64
	MaxTokens           int64
	TimeoutSeconds      int64
	Deliver             []string // operations run with the result, e.g. notify
	ApprovedOperations  []string // restricted operations the user approved
	TemporalID          string
	Status              Status
	StatusReason        string
	ConsecutiveFailures int64
	Version             int64
	CreatedAt           time.Time
	UpdatedAt           time.Time
	// LastTriggerAt and LastTriggerRunID are the latest manual run claimed
	// (zero and "" if none): they make the trigger rate and the overlap
	// check atomic under concurrent triggers. They are not settings, so
	// claiming one does not advance Version.
	LastTriggerAt    time.Time
	LastTriggerRunID string
}

// Scope is the owner of the schedule.
func (sc *Schedule) Scope() Scope { return Scope{TenantID: sc.TenantID, UserID: sc.UserID} }

// Quota limits live (not deleted) schedules; zero means no limit.
type Quota struct {
	PerUser   int
	PerTenant int
}

const scheduleColumns = `id, tenant_id, user_id, name, cron, timezone, query, budget_usd, max_tokens,
	timeout_seconds, deliver, approved_operations, temporal_id, status, status_reason,
	consecutive_failures, version, created_at, updated_at, last_trigger_at, last_trigger_run_id`

func scanSchedule(row interface{ Scan(...any) error }) (*Schedule, error) {
	var (
		sc                Schedule
		deliver, approved string
		created, updated  int64
		triggered         int64
		status            string
	)
	err := row.Scan(&sc.ID, &sc.TenantID, &sc.UserID, &sc.Name, &sc.Cron, &sc.Timezone, &sc.Query,
		&sc.BudgetUSD, &sc.MaxTokens, &sc.TimeoutSeconds, &deliver, &approved, &sc.TemporalID, &status,
		&sc.StatusReason, &sc.ConsecutiveFailures, &sc.Version, &created, &updated, &triggered, &sc.LastTriggerRunID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(deliver), &sc.Deliver); err != nil {
		return nil, fmt.Errorf("schedule %s deliver: %w", sc.ID, err)
	}
	if err := json.Unmarshal([]byte(approved), &sc.ApprovedOperations); err != nil {
		return nil, fmt.Errorf("schedule %s approved_operations: %w", sc.ID, err)
	}
	sc.Status = Status(status)
	sc.CreatedAt, sc.UpdatedAt = fromMicros(created), fromMicros(updated)
	if triggered != 0 {
		sc.LastTriggerAt = fromMicros(triggered)
	}
	return &sc, nil
}

func jsonList(v []string) string {
	if v == nil {
		v = []string{}
	}
	b, _ := json.Marshal(v) // a []string always marshals
	return string(b)
}

// CreateSchedule inserts sc if the owner's and the tenant's live schedules
// (every state but deleted, creating included) stay within q. Counting and
// inserting happen in one transaction that holds a per-tenant lock, so
// concurrent creates cannot exceed the quota.
func (s *Store) CreateSchedule(ctx context.Context, sc *Schedule, q Quota) error {
	if err := sc.Scope().check(); err != nil {
		return err
	}
	now := s.now()
	sc.CreatedAt, sc.UpdatedAt = fromMicros(micros(now)), fromMicros(micros(now))
	sc.Version = 1
	if sc.Status == "" {
		sc.Status = StatusActive
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if s.dialect == Postgres {
			// Serialise creates per tenant; SQLite's BEGIN IMMEDIATE already
			// serialises all writers.
			if _, err := s.exec(ctx, tx, `SELECT pg_advisory_xact_lock(hashtextextended(?, 0))`, "quota:"+sc.TenantID); err != nil {
				return err
			}
		}
		for _, c := range []struct {
			scope string
			limit int
			where string
			args  []any
		}{
			{"user", q.PerUser, `tenant_id = ? AND user_id = ?`, []any{sc.TenantID, sc.UserID}},
			{"tenant", q.PerTenant, `tenant_id = ?`, []any{sc.TenantID}},
		} {
			if c.limit <= 0 {
				continue
			}
			var n int
			if err := s.queryRow(ctx, tx, `SELECT COUNT(*) FROM schedules WHERE `+c.where+` AND status <> 'deleted'`, c.args...).Scan(&n); err != nil {
				return err
			}
			if n >= c.limit {
				return &QuotaError{Scope: c.scope, Limit: c.limit, Count: n}
			}
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO schedules (`+scheduleColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, '')`,
			sc.ID, sc.TenantID, sc.UserID, sc.Name, sc.Cron, sc.Timezone, sc.Query, sc.BudgetUSD, sc.MaxTokens,
			sc.TimeoutSeconds, jsonList(sc.Deliver), jsonList(sc.ApprovedOperations), sc.TemporalID, string(sc.Status),
			sc.StatusReason, sc.ConsecutiveFailures, sc.Version, micros(sc.CreatedAt), micros(sc.UpdatedAt)); err != nil {
			return err
		}
		return s.audit(ctx, tx, AuditEvent{Scope: sc.Scope(), ScheduleID: sc.ID, Action: "schedule.created", Detail: sc.Cron + " " + sc.Timezone})
	})
}

// GetSchedule returns the owner's schedule; a deleted schedule, or one of
// another user or tenant, is ErrNotFound.
func (s *Store) GetSchedule(ctx context.Context, scope Scope, id string) (*Schedule, error) {
	if err := scope.check(); err != nil {
		return nil, err
	}
	return scanSchedule(s.queryRow(ctx, s.db, `SELECT `+scheduleColumns+` FROM schedules
		WHERE id = ? AND tenant_id = ? AND user_id = ? AND status <> 'deleted'`, id, scope.TenantID, scope.UserID))
}

// LookupSchedule returns a schedule by id whatever its owner and state. It is
// for the system's own work (runs, reconciliation), never for a user request.
func (s *Store) LookupSchedule(ctx context.Context, id string) (*Schedule, error) {
	return scanSchedule(s.queryRow(ctx, s.db, `SELECT `+scheduleColumns+` FROM schedules WHERE id = ?`, id))
}

// NotDeletedSchedules returns every schedule not yet deleted, for
// reconciliation.
func (s *Store) NotDeletedSchedules(ctx context.Context) ([]*Schedule, error) {
	rows, err := s.query(ctx, s.db, `SELECT `+scheduleColumns+` FROM schedules WHERE status <> 'deleted' ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanSchedule)
}

func collect[T any](rows *sql.Rows, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// ErrBadCursor is a page token that this store did not issue.
var ErrBadCursor = errors.New("invalid page token")

// cursor is the position after the last row of a page: rows are ordered by
// creation time, then id.
type cursor struct {
	created int64
	id      string
}

func (c cursor) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.created, 10) + "|" + c.id))
}

func decodeCursor(tok string) (cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return cursor{}, ErrBadCursor
	}
	ts, id, ok := strings.Cut(string(b), "|")
	if !ok || id == "" {
		return cursor{}, ErrBadCursor
	}
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return cursor{}, ErrBadCursor
	}
	return cursor{created: n, id: id}, nil
}

// Page asks for up to Limit rows after the position PageToken names.
type Page struct {
	Limit     int
	PageToken string
}

// ListSchedules returns a page of the owner's schedules, oldest first,
// optionally only those in one state, and the token of the next page ("" at
// the end).
func (s *Store) ListSchedules(ctx context.Context, scope Scope, status Status, p Page) ([]*Schedule, string, error) {
	if err := scope.check(); err != nil {
		return nil, "", err
	}
	where := []string{`tenant_id = ?`, `user_id = ?`, `status <> 'deleted'`}
	args := []any{scope.TenantID, scope.UserID}
	if status != "" {
		where = append(where, `status = ?`)
		args = append(args, string(status))
	}
	if p.PageToken != "" {
		c, err := decodeCursor(p.PageToken)
		if err != nil {
			return nil, "", err
		}
		where = append(where, `(created_at > ? OR (created_at = ? AND id > ?))`)
		args = append(args, c.created, c.created, c.id)
	}
	// One row more than asked tells whether there is a next page.
	args = append(args, p.Limit+1)
	rows, err := s.query(ctx, s.db, `SELECT `+scheduleColumns+` FROM schedules WHERE `+strings.Join(where, " AND ")+
		` ORDER BY created_at, id LIMIT ?`, args...)
	if err != nil {
		return nil, "", err
	}
	list, err := collect(rows, scanSchedule)
	if err != nil || len(list) <= p.Limit {
		return list, "", err
	}
	list = list[:p.Limit]
	last := list[len(list)-1]
	return list, cursor{created: micros(last.CreatedAt), id: last.ID}.encode(), nil
}

// UpdateSchedule writes sc's editable fields if the row still has version
// sc.Version and is live; sc.Version and sc.UpdatedAt are then advanced.
func (s *Store) UpdateSchedule(ctx context.Context, sc *Schedule) error {
	if err := sc.Scope().check(); err != nil {
		return err
	}
	now := fromMicros(micros(s.now()))
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `UPDATE schedules SET name = ?, cron = ?, timezone = ?, query = ?, budget_usd = ?,
			max_tokens = ?, timeout_seconds = ?, deliver = ?, approved_operations = ?, version = version + 1, updated_at = ?
			WHERE id = ? AND tenant_id = ? AND user_id = ? AND version = ? AND status IN ('active', 'paused')`,
			sc.Name, sc.Cron, sc.Timezone, sc.Query, sc.BudgetUSD, sc.MaxTokens, sc.TimeoutSeconds,
			jsonList(sc.Deliver), jsonList(sc.ApprovedOperations), micros(now),
			sc.ID, sc.TenantID, sc.UserID, sc.Version)
		if err != nil {
			return err
		}
		if err := s.expectOne(ctx, tx, res, sc.Scope(), sc.ID); err != nil {
			return err
		}
		sc.Version++
		sc.UpdatedAt = now
		return s.audit(ctx, tx, AuditEvent{Scope: sc.Scope(), ScheduleID: sc.ID, Action: "schedule.updated", Detail: sc.Cron + " " + sc.Timezone})
	})
}

// expectOne turns an update that matched no row into ErrNotFound (no such
// live row for this owner) or ErrConflict (the row changed since read).
func (s *Store) expectOne(ctx context.Context, tx *sql.Tx, res sql.Result, scope Scope, id string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 1 {
		return nil
	}
	var count int
	if err := s.queryRow(ctx, tx, `SELECT COUNT(*) FROM schedules WHERE id = ? AND tenant_id = ? AND user_id = ? AND status <> 'deleted'`,
		id, scope.TenantID, scope.UserID).Scan(&count); err != nil {
		return err
	}
	if count == 0 {
		return ErrNotFound
	}
	return ErrConflict
}

// Transition moves a schedule to a new state.
type Transition struct {
	ID          string
	FromVersion int64 // the version the caller read; a different one is ErrConflict
	To          Status
	Reason      string
	// ResetFailures clears the consecutive-failure count (on resume).
	ResetFailures bool
	Action        string // audit action, e.g. "schedule.paused"
}

// SetStatus applies t and returns the schedule as it now is. A row whose
// version is not t.FromVersion is a *ConflictError carrying the row as it
// is; a deleted row is ErrNotFound. Either way nothing is written, the
// audit event included.
func (s *Store) SetStatus(ctx context.Context, t Transition) (*Schedule, error) {
	var out *Schedule
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := s.current(ctx, tx, t.ID)
		if err != nil {
			return err
		}
		if cur.Version != t.FromVersion {
			return &ConflictError{Current: cur}
		}
		failures := cur.ConsecutiveFailures
		if t.ResetFailures {
			failures = 0
		}
		now := s.now()
		res, err := s.exec(ctx, tx, `UPDATE schedules SET status = ?, status_reason = ?, consecutive_failures = ?,
			version = version + 1, updated_at = ? WHERE id = ? AND version = ?`,
			string(t.To), t.Reason, failures, micros(now), t.ID, t.FromVersion)
		if err != nil {
			return err
		}
		// PostgreSQL (read committed) lets two transactions read the same
		// version above; the second UPDATE then waits for the first to
		// commit and matches no row. That transition changed nothing and
		// must say so.
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			if cur, err = s.current(ctx, tx, t.ID); err != nil {
				return err
			}
			return &ConflictError{Current: cur}
		}
		cur.Status, cur.StatusReason, cur.ConsecutiveFailures = t.To, t.Reason, failures
		cur.Version++
		cur.UpdatedAt = fromMicros(micros(now))
		out = cur
		return s.audit(ctx, tx, AuditEvent{Scope: cur.Scope(), ScheduleID: cur.ID, Action: t.Action, Detail: t.Reason})
	})
	return out, err
}

// current reads a row in tx; a deleted or missing one is ErrNotFound.
func (s *Store) current(ctx context.Context, tx *sql.Tx, id string) (*Schedule, error) {
	cur, err := scanSchedule(s.queryRow(ctx, tx, `SELECT `+scheduleColumns+` FROM schedules WHERE id = ?`, id))
	if err == nil && cur.Status == StatusDeleted {
		return nil, ErrNotFound
	}
	return cur, err
}

// TriggerClaim reserves the next manual run of a schedule.
type TriggerClaim struct {
	ID    string
	RunID string // the run being claimed
	// PrevRunID and PrevAt are LastTriggerRunID and LastTriggerAt as the
	// caller read them: a run claimed since then makes this claim a conflict.
	PrevRunID string
	PrevAt    time.Time
	// MinInterval is the least time since the previous claim.
	MinInterval time.Duration
}

// ClaimTrigger records c.RunID as the schedule's latest manual run, if the
// schedule is active, no run was claimed since the caller read it, and the
// previous claim is at least c.MinInterval old. Otherwise nothing changes
// and the error is a *ConflictError with the row as it is (ErrNotFound for
// a deleted one): of concurrent triggers exactly one claims.
func (s *Store) ClaimTrigger(ctx context.Context, c TriggerClaim) (*Schedule, error) {
	var out *Schedule
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		now := fromMicros(micros(s.now()))
		res, err := s.exec(ctx, tx, `UPDATE schedules SET last_trigger_at = ?, last_trigger_run_id = ?
			WHERE id = ? AND status = 'active' AND last_trigger_run_id = ? AND last_trigger_at <= ?`,
			micros(now), c.RunID, c.ID, c.PrevRunID, micros(now.Add(-c.MinInterval)))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		cur, err := s.current(ctx, tx, c.ID)
		if err != nil {
			return err
		}
		if n != 1 {
			return &ConflictError{Current: cur}
		}
		out = cur
		return nil
	})
	return out, err
}

// ReleaseTrigger undoes c when its run could not be started, so that a
// trigger that started nothing neither counts against the rate nor looks
// like a run in flight. A claim made since c is left alone (ErrConflict).
func (s *Store) ReleaseTrigger(ctx context.Context, c TriggerClaim) error {
	prevAt := int64(0)
	if !c.PrevAt.IsZero() {
		prevAt = micros(c.PrevAt)
	}
	res, err := s.exec(ctx, s.db, `UPDATE schedules SET last_trigger_at = ?, last_trigger_run_id = ?
		WHERE id = ? AND last_trigger_run_id = ?`, prevAt, c.PrevRunID, c.ID, c.RunID)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return ErrConflict
	}
	return nil
}
