package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// RunStatus is how a run ended, or running.
type RunStatus string

// Run states. Every state but running is final.
const (
	RunRunning        RunStatus = "running"
	RunCompleted      RunStatus = "completed"
	RunFailed         RunStatus = "failed"
	RunTimedOut       RunStatus = "timed_out"
	RunCancelled      RunStatus = "cancelled"
	RunBudgetExceeded RunStatus = "budget_exceeded"
)

// Failure reports whether the status counts towards the consecutive
// failures that pause a schedule. A cancelled run was the user's choice.
func (s RunStatus) Failure() bool {
	return s == RunFailed || s == RunTimedOut || s == RunBudgetExceeded
}

// Run is one execution of a schedule.
type Run struct {
	ID               string // the Temporal workflow id of the scheduled run
	ScheduleID       string
	TenantID         string
	UserID           string
	TaskID           string // the workflow id of the agent (child) workflow
	Trigger          string // "schedule" or "manual"
	Status           RunStatus
	StartedAt        time.Time
	EndedAt          *time.Time
	CostUSD          float64
	PromptTokens     int64
	CompletionTokens int64
	Model            string
	Error            string
	Output           string
}

// Call is one LLM or tool call a run made, with what reproduces it.
type Call struct {
	Seq               int64   `json:"seq"`
	Kind              string  `json:"kind"` // "llm" or "tool"
	Name              string  `json:"name"` // the step (e.g. "decompose") or the tool
	Model             string  `json:"model,omitempty"`
	Temperature       float64 `json:"temperature"`
	Seed              int64   `json:"seed"`
	PromptFingerprint string  `json:"prompt_fingerprint,omitempty"`
	PromptTokens      int64   `json:"prompt_tokens"`
	CompletionTokens  int64   `json:"completion_tokens"`
	CostUSD           float64 `json:"cost_usd"`
}

const runColumns = `id, schedule_id, tenant_id, user_id, task_id, trigger_kind, status, started_at, ended_at,
	cost_usd, prompt_tokens, completion_tokens, model, error, output`

func scanRun(row interface{ Scan(...any) error }) (*Run, error) {
	var (
		r       Run
		status  string
		started int64
		ended   sql.NullInt64
	)
	err := row.Scan(&r.ID, &r.ScheduleID, &r.TenantID, &r.UserID, &r.TaskID, &r.Trigger, &status, &started, &ended,
		&r.CostUSD, &r.PromptTokens, &r.CompletionTokens, &r.Model, &r.Error, &r.Output)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	r.Status = RunStatus(status)
	r.StartedAt, r.EndedAt = fromMicros(started), fromNullMicros(ended)
	return &r, nil
}

// StartRun records that run r began. It is idempotent: a retried start finds
// the row already there and returns it unchanged.
func (s *Store) StartRun(ctx context.Context, r Run) (*Run, error) {
	var out *Run
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `INSERT INTO runs (`+runColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, 0, 0, 0, '', '', '') ON CONFLICT (id) DO NOTHING`,
			r.ID, r.ScheduleID, r.TenantID, r.UserID, r.TaskID, r.Trigger, string(RunRunning), micros(s.now()))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 1 {
			if err := s.audit(ctx, tx, AuditEvent{Scope: Scope{r.TenantID, r.UserID}, ScheduleID: r.ScheduleID, RunID: r.ID, Action: "run.started", Detail: r.Trigger}); err != nil {
				return err
			}
		}
		out, err = scanRun(s.queryRow(ctx, tx, `SELECT `+runColumns+` FROM runs WHERE id = ?`, r.ID))
		return err
	})
	return out, err
}

// RunEnd is how a run ended.
type RunEnd struct {
	Status           RunStatus
	CostUSD          float64
	PromptTokens     int64
	CompletionTokens int64
	Model            string
	Error            string
	Output           string
	Calls            []Call
}

// CloseResult says what CloseRun did.
type CloseResult struct {
	// Closed is true for the call that closed the run; a repeated close
	// (an activity retried after a worker crash) finds it closed already.
	Closed bool
	// ConsecutiveFailures of the schedule after this run.
	ConsecutiveFailures int64
}

// CloseRun records the end of a run exactly once: the row is updated only
// while it has no end time, and in the same transaction the schedule's
// consecutive-failure count is advanced or reset and the calls are stored.
func (s *Store) CloseRun(ctx context.Context, runID string, end RunEnd) (CloseResult, error) {
	if end.Status == RunRunning || end.Status == "" {
		return CloseResult{}, fmt.Errorf("close run %s: %q is not a final status", runID, end.Status)
	}
	var out CloseResult
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `UPDATE runs SET status = ?, ended_at = ?, cost_usd = ?, prompt_tokens = ?,
			completion_tokens = ?, model = ?, error = ?, output = ? WHERE id = ? AND ended_at IS NULL`,
			string(end.Status), micros(s.now()), end.CostUSD, end.PromptTokens, end.CompletionTokens, end.Model,
			end.Error, end.Output, runID)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		run, err := scanRun(s.queryRow(ctx, tx, `SELECT `+runColumns+` FROM runs WHERE id = ?`, runID))
		if err != nil {
			return err
		}
		if n == 1 {
			out.Closed = true
			// A success resets the count, a failure advances it, and a
			// cancellation (the user's choice) leaves it as it was.
			change := ""
			switch {
			case end.Status == RunCompleted:
				change = `consecutive_failures = 0`
			case end.Status.Failure():
				change = `consecutive_failures = consecutive_failures + 1`
			}
			if change != "" {
				if _, err := s.exec(ctx, tx, `UPDATE schedules SET `+change+` WHERE id = ?`, run.ScheduleID); err != nil {
					return err
				}
			}
			for _, c := range end.Calls {
				if _, err := s.exec(ctx, tx, `INSERT INTO run_calls (run_id, seq, kind, name, model, temperature, seed,
					prompt_fingerprint, prompt_tokens, completion_tokens, cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
					runID, c.Seq, c.Kind, c.Name, c.Model, c.Temperature, c.Seed, c.PromptFingerprint,
					c.PromptTokens, c.CompletionTokens, c.CostUSD); err != nil {
					return err
				}
			}
			detail := string(end.Status)
			if end.Error != "" {
				detail += ": " + end.Error
			}
			if err := s.audit(ctx, tx, AuditEvent{Scope: Scope{run.TenantID, run.UserID}, ScheduleID: run.ScheduleID, RunID: runID, Action: "run.closed", Detail: detail}); err != nil {
				return err
			}
		}
		return s.queryRow(ctx, tx, `SELECT consecutive_failures FROM schedules WHERE id = ?`, run.ScheduleID).Scan(&out.ConsecutiveFailures)
	})
	return out, err
}

// GetRun returns one of the owner's runs.
func (s *Store) GetRun(ctx context.Context, scope Scope, runID string) (*Run, error) {
	if err := scope.check(); err != nil {
		return nil, err
	}
	return scanRun(s.queryRow(ctx, s.db, `SELECT `+runColumns+` FROM runs WHERE id = ? AND tenant_id = ? AND user_id = ?`,
		runID, scope.TenantID, scope.UserID))
}

// GetRunByTask returns the owner's run whose agent workflow is taskID.
func (s *Store) GetRunByTask(ctx context.Context, scope Scope, taskID string) (*Run, error) {
	if err := scope.check(); err != nil {
		return nil, err
	}
	return scanRun(s.queryRow(ctx, s.db, `SELECT `+runColumns+` FROM runs WHERE task_id = ? AND tenant_id = ? AND user_id = ?`,
		taskID, scope.TenantID, scope.UserID))
}

// LookupRun returns a run by id for the system's own work.
func (s *Store) LookupRun(ctx context.Context, runID string) (*Run, error) {
	return scanRun(s.queryRow(ctx, s.db, `SELECT `+runColumns+` FROM runs WHERE id = ?`, runID))
}

// OpenRuns returns runs without an end that started before the given time,
// for reconciliation to check against Temporal.
func (s *Store) OpenRuns(ctx context.Context, startedBefore time.Time) ([]*Run, error) {
	rows, err := s.query(ctx, s.db, `SELECT `+runColumns+` FROM runs WHERE ended_at IS NULL AND started_at < ? ORDER BY started_at, id`,
		micros(startedBefore))
	if err != nil {
		return nil, err
	}
	return collect(rows, scanRun)
}

// OwnsSchedule returns ErrNotFound unless the owner has a schedule of that
// id, deleted or not: a deleted schedule's run history stays readable by
// its owner, and only by its owner.
func (s *Store) OwnsSchedule(ctx context.Context, scope Scope, scheduleID string) error {
	if err := scope.check(); err != nil {
		return err
	}
	var n int
	if err := s.queryRow(ctx, s.db, `SELECT COUNT(*) FROM schedules WHERE id = ? AND tenant_id = ? AND user_id = ?`,
		scheduleID, scope.TenantID, scope.UserID).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// ListRuns returns a page of the runs of the owner's schedule, newest first.
// The schedule may be deleted: its history stays readable by its owner.
func (s *Store) ListRuns(ctx context.Context, scope Scope, scheduleID string, p Page) ([]*Run, string, error) {
	if err := scope.check(); err != nil {
		return nil, "", err
	}
	where := `schedule_id = ? AND tenant_id = ? AND user_id = ?`
	args := []any{scheduleID, scope.TenantID, scope.UserID}
	if p.PageToken != "" {
		c, err := decodeCursor(p.PageToken)
		if err != nil {
			return nil, "", err
		}
		where += ` AND (started_at < ? OR (started_at = ? AND id < ?))`
		args = append(args, c.created, c.created, c.id)
	}
	args = append(args, p.Limit+1)
	rows, err := s.query(ctx, s.db, `SELECT `+runColumns+` FROM runs WHERE `+where+` ORDER BY started_at DESC, id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, "", err
	}
	list, err := collect(rows, scanRun)
	if err != nil || len(list) <= p.Limit {
		return list, "", err
	}
	list = list[:p.Limit]
	last := list[len(list)-1]
	return list, cursor{created: micros(last.StartedAt), id: last.ID}.encode(), nil
}

// RunTotals sums a schedule's runs.
type RunTotals struct {
	Runs             int64   `json:"runs"`
	CostUSD          float64 `json:"cost_usd"`
	PromptTokens     int64   `json:"prompt_tokens"`
	CompletionTokens int64   `json:"completion_tokens"`
}

// Totals returns the cumulative cost and tokens of the owner's schedule.
func (s *Store) Totals(ctx context.Context, scope Scope, scheduleID string) (RunTotals, error) {
	var t RunTotals
	if err := scope.check(); err != nil {
		return t, err
	}
	err := s.queryRow(ctx, s.db, `SELECT COUNT(*), COALESCE(SUM(cost_usd), 0), COALESCE(SUM(prompt_tokens), 0),
		COALESCE(SUM(completion_tokens), 0) FROM runs WHERE schedule_id = ? AND tenant_id = ? AND user_id = ?`,
		scheduleID, scope.TenantID, scope.UserID).Scan(&t.Runs, &t.CostUSD, &t.PromptTokens, &t.CompletionTokens)
	return t, err
}

// RunCalls returns the calls of the owner's run in order.
func (s *Store) RunCalls(ctx context.Context, scope Scope, runID string) ([]Call, error) {
	if _, err := s.GetRun(ctx, scope, runID); err != nil {
		return nil, err
	}
	rows, err := s.query(ctx, s.db, `SELECT seq, kind, name, model, temperature, seed, prompt_fingerprint, prompt_tokens,
		completion_tokens, cost_usd FROM run_calls WHERE run_id = ? ORDER BY seq`, runID)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(row interface{ Scan(...any) error }) (Call, error) {
		var c Call
		err := row.Scan(&c.Seq, &c.Kind, &c.Name, &c.Model, &c.Temperature, &c.Seed, &c.PromptFingerprint,
			&c.PromptTokens, &c.CompletionTokens, &c.CostUSD)
		return c, err
	})
}
