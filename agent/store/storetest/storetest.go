// Package storetest opens fresh stores for tests: a SQLite file in the
// test's temporary directory, and a new schema in the local PostgreSQL
// (127.0.0.1:5432, database test, user postgres) dropped when the test ends.
// DURABENCH_AGENT_TEST_PG overrides the PostgreSQL DSN.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/durabench/durabench/agent/store"
)

// DefaultPostgresDSN is the machine's PostgreSQL with trust authentication.
const DefaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Backend opens a fresh, migrated store.
type Backend struct {
	Name string
	Open func(t testing.TB) *store.Store
}

// Backends lists SQLite and PostgreSQL; a test runs its body against each
// as a subtest named after the backend.
func Backends() []Backend {
	return []Backend{{"sqlite", OpenSQLite}, {"postgres", OpenPostgres}}
}

// OpenSQLite opens a store on a new file.
func OpenSQLite(t testing.TB) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := store.Open(ctx, store.SQLite, filepath.Join(t.TempDir(), "agent.db"))
	if err != nil {
		t.Fatalf("storetest: open sqlite: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// PostgresDSN creates a schema of its own for this test and returns a DSN
// whose search_path is that schema; the schema is dropped at cleanup. It
// skips the test, saying why, when PostgreSQL cannot be reached.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv("DURABENCH_AGENT_TEST_PG")
	if base == "" {
		base = DefaultPostgresDSN
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	if err := admin.PingContext(ctx); err != nil {
		admin.Close()
		t.Skipf("storetest: PostgreSQL at %s is unreachable, skipping the PostgreSQL backend: %v", base, err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "agent_test_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		admin.Close()
		t.Fatalf("storetest: create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Logf("storetest: drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("storetest: DSN: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// OpenPostgres opens a store in a schema of its own.
func OpenPostgres(t testing.TB) *store.Store {
	t.Helper()
	dsn := PostgresDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := store.Open(ctx, store.Postgres, dsn)
	if err != nil {
		t.Fatalf("storetest: open postgres: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
