package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// migration is one schema version. Statements are written once; AUTOID is
// replaced by each dialect's auto-increment primary key.
type migration struct {
	version    int
	name       string
	statements []string
}

// migrations are applied in order and never edited once released: a change
// is a new version.
var migrations = []migration{
	{1, "schedules, runs, run calls, audit events", []string{
		`CREATE TABLE schedules (
			id TEXT PRIMARY KEY,
			tenant_id TEXT NOT NULL,
			user_id TEXT NOT NULL,
			name TEXT NOT NULL,
			cron TEXT NOT NULL,
			timezone TEXT NOT NULL,
			query TEXT NOT NULL,
			budget_usd DOUBLE PRECISION NOT NULL,
			max_tokens BIGINT NOT NULL,
			timeout_seconds BIGINT NOT NULL,
			deliver TEXT NOT NULL,
			approved_operations TEXT NOT NULL,
			temporal_id TEXT NOT NULL UNIQUE,
			status TEXT NOT NULL,
			status_reason TEXT NOT NULL,
			consecutive_failures BIGINT NOT NULL,
			version BIGINT NOT NULL,
			created_at BIGINT NOT NULL,
			updated_at BIGINT NOT NULL
		)`,
		`CREATE INDEX schedules_owner ON schedules (tenant_id, user_id, status, created_at, id)`,
		`CREATE TABLE runs (
			id TEXT PRIMARY KEY,
			schedule_id TEXT NOT NULL REFERENCES schedules (id),
			tenant_id TEXT NOT NULL,
			user_id TEXT NOT NULL,
			task_id TEXT NOT NULL,
			trigger_kind TEXT NOT NULL,
			status TEXT NOT NULL,
			started_at BIGINT NOT NULL,
			ended_at BIGINT,
			cost_usd DOUBLE PRECISION NOT NULL,
			prompt_tokens BIGINT NOT NULL,
			completion_tokens BIGINT NOT NULL,
			model TEXT NOT NULL,
			error TEXT NOT NULL,
			output TEXT NOT NULL
		)`,
		`CREATE INDEX runs_schedule ON runs (schedule_id, started_at, id)`,
		`CREATE INDEX runs_task ON runs (task_id)`,
		`CREATE TABLE run_calls (
			run_id TEXT NOT NULL REFERENCES runs (id),
			seq BIGINT NOT NULL,
			kind TEXT NOT NULL,
			name TEXT NOT NULL,
			model TEXT NOT NULL,
			temperature DOUBLE PRECISION NOT NULL,
			seed BIGINT NOT NULL,
			prompt_fingerprint TEXT NOT NULL,
			prompt_tokens BIGINT NOT NULL,
			completion_tokens BIGINT NOT NULL,
			cost_usd DOUBLE PRECISION NOT NULL,
			PRIMARY KEY (run_id, seq)
		)`,
		`CREATE TABLE audit_events (
			id AUTOID,
			tenant_id TEXT NOT NULL,
			user_id TEXT NOT NULL,
			schedule_id TEXT NOT NULL,
			run_id TEXT NOT NULL,
			action TEXT NOT NULL,
			detail TEXT NOT NULL,
			created_at BIGINT NOT NULL
		)`,
		`CREATE INDEX audit_schedule ON audit_events (schedule_id, id)`,
	}},
	{2, "the latest manual trigger of each schedule", []string{
		`ALTER TABLE schedules ADD COLUMN last_trigger_at BIGINT NOT NULL DEFAULT 0`,
		`ALTER TABLE schedules ADD COLUMN last_trigger_run_id TEXT NOT NULL DEFAULT ''`,
	}},
}

func (s *Store) autoID() string {
	if s.dialect == Postgres {
		return "BIGSERIAL PRIMARY KEY"
	}
	return "INTEGER PRIMARY KEY AUTOINCREMENT"
}

// migrate applies every migration newer than the recorded version, each in
// its own transaction. Two processes starting at once serialise on a lock:
// PostgreSQL's advisory lock, SQLite's write lock (BEGIN IMMEDIATE).
func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return err
	}
	for _, m := range migrations {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			if s.dialect == Postgres {
				// An arbitrary constant key: "durabench agent migrations".
				if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(726175001)`); err != nil {
					return err
				}
			}
			var n int
			if err := s.queryRow(ctx, tx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			for _, st := range m.statements {
				if _, err := tx.ExecContext(ctx, strings.ReplaceAll(st, "AUTOID", s.autoID())); err != nil {
					return fmt.Errorf("version %d (%s): %w", m.version, m.name, err)
				}
			}
			_, err := s.exec(ctx, tx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, micros(s.now()))
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// SchemaVersion is the newest applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v)
	return int(v.Int64), err
}
