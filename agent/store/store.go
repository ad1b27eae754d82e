// Package store keeps the background agent's business records: schedules,
// runs (with the LLM and tool calls each made) and audit events. Temporal
// holds the triggers and the workflow state; this store is what the API
// reads and what reconciliation compares Temporal against.
//
// Two backends share one implementation over database/sql: SQLite in a
// file (the pure-Go modernc.org/sqlite driver) by default, PostgreSQL
// (pgx) when a DSN is given. Migrations are versioned and applied on Open.
// Every call made on behalf of a user takes a Scope, and every such query
// filters by tenant and user; an empty scope is refused, never widened.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver
)

// Dialect names a backend.
type Dialect string

// The two backends.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Errors callers match with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	// ErrConflict is a write that lost a race: the row changed since it
	// was read (its version or status is not what the caller expected).
	ErrConflict = errors.New("changed concurrently")
	ErrNoScope  = errors.New("tenant and user are required")
)

// ConflictError is ErrConflict with the row as the losing transaction saw
// it, read in that same transaction: the caller decides what to do from the
// state that beat it, not from a later read that may already show yet
// another change.
type ConflictError struct{ Current *Schedule }

func (e *ConflictError) Error() string { return ErrConflict.Error() }

// Is makes errors.Is(err, ErrConflict) hold.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// QuotaError is a create refused because the user or the tenant already
// has as many live schedules as allowed.
type QuotaError struct {
	Scope string // "user" or "tenant"
	Limit int
	Count int
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("%s quota reached: %d of %d live schedules", e.Scope, e.Count, e.Limit)
}

// Scope is the tenant and user a call acts for.
type Scope struct {
	TenantID string
	UserID   string
}

func (s Scope) check() error {
	if s.TenantID == "" || s.UserID == "" {
		return ErrNoScope
	}
	return nil
}

// Store is an open database with the schema migrated.
type Store struct {
	db      *sql.DB
	dialect Dialect
	now     func() time.Time
}

// Open connects and applies pending migrations. dsn is a SQLite file path
// for SQLite and a PostgreSQL URL or key=value DSN for PostgreSQL.
func Open(ctx context.Context, dialect Dialect, dsn string) (*Store, error) {
	var (
		db  *sql.DB
		err error
	)
	switch dialect {
	case SQLite:
		if dsn == "" {
			return nil, errors.New("sqlite: a database file path is required")
		}
		// BEGIN IMMEDIATE takes the write lock at the start of every
		// transaction, which is what makes the quota count and the insert
		// atomic; WAL lets readers run beside the one writer.
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "foreign_keys(ON)")
		q.Set("_txlock", "immediate")
		db, err = sql.Open("sqlite", "file:"+dsn+"?"+q.Encode())
	case Postgres:
		if dsn == "" {
			return nil, errors.New("postgres: a DSN is required")
		}
		db, err = sql.Open("pgx", dsn)
	default:
		return nil, fmt.Errorf("unknown store dialect %q (want sqlite or postgres)", dialect)
	}
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, dialect: dialect, now: time.Now}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", dialect, err)
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s migrations: %w", dialect, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// rebind turns the ? placeholders our queries are written with into
// PostgreSQL's $n. None of our SQL has a literal question mark.
func (s *Store) rebind(q string) string {
	if s.dialect != Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) exec(ctx context.Context, q querier, query string, args ...any) (sql.Result, error) {
	return q.ExecContext(ctx, s.rebind(query), args...)
}

func (s *Store) query(ctx context.Context, q querier, query string, args ...any) (*sql.Rows, error) {
	return q.QueryContext(ctx, s.rebind(query), args...)
}

func (s *Store) queryRow(ctx context.Context, q querier, query string, args ...any) *sql.Row {
	return q.QueryRowContext(ctx, s.rebind(query), args...)
}

// inTx runs f in a transaction, committing when f returns nil.
func (s *Store) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		return errors.Join(err, rollback(tx))
	}
	return tx.Commit()
}

func rollback(tx *sql.Tx) error {
	if err := tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return err
	}
	return nil
}

// Timestamps are stored as microseconds since the epoch in both backends,
// so that no driver's time parsing is involved and values round-trip exactly.
func micros(t time.Time) int64 { return t.UTC().UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

func nullMicros(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: micros(*t), Valid: true}
}

func fromNullMicros(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}
