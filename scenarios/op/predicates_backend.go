package op

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/harness/predicate"
	"github.com/durabench/durabench/harness/serverinfo"
	"github.com/durabench/durabench/harness/stats"
)

// The pass conditions of OP-03's checks, over what the reference scenario
// observed on each backend (backendRun).

func backendPredicates() []predicate.Spec {
	return []predicate.Spec{
		sqlitePassedPredicate.Spec(),
		postgresPassedPredicate.Spec(),
		mariaDBPassedPredicate.Spec(),
		sqlVisibilityPredicate.Spec(),
		schemaIdempotentPredicate.Spec(),
		crashRecoverySQLPredicate.Spec(),
	}
}

// backendRun is what the reference scenario observed on one backend.
type backendRun struct {
	backend          harness.Backend
	n                int
	first, restarted serverinfo.Info // what the server announced at its first start and after the kill
	startMS          []float64       // start call latencies
	timersPending    int             // runs whose timer had started when the server was killed
	recovery         time.Duration   // SIGKILL to a healthy server again
	serverStart      time.Duration
	completed        int      // runs that returned exactly the expected result
	wrong            []string // the others, with what they returned
	total            time.Duration
	visCount         int64 // count of the tag's completed runs
	visListed        int   // runs listed over every page
	visExact         bool  // the listed ids are exactly the started ones
	visOther         int64 // count for a tag no run has
	visSettle        time.Duration
	visErr           error
	mariaVisibility  string // OP-03.mysql: what happened with visibility on MariaDB
	err              error  // the scenario could not go on (a start refused, a wait expired)
}

// scenarioPassed: every run was killed with its timer pending, then
// returned exactly what its steps produce, and the visibility query on the
// custom search attribute returned exactly the runs, paged.
func scenarioPassed(r backendRun) bool {
	return r.err == nil && r.n > 0 && r.timersPending == r.n && r.recovery > 0 &&
		r.completed == r.n && len(r.wrong) == 0 && visibilityExact(r)
}

func visibilityExact(r backendRun) bool {
	return r.visErr == nil && r.visCount == int64(r.n) && r.visListed == r.n && r.visExact && r.visOther == 0
}

// schemaByTool: both SQL stores carry the version the server's schema tool
// set (the first start applied updates to a new database).
func schemaByTool(r backendRun) bool {
	if len(r.first.Schema) != 2 {
		return false
	}
	for _, s := range r.first.Schema {
		if s.Version == "" || s.UpdatesApplied == 0 || s.VersionBefore != "" {
			return false
		}
	}
	return true
}

func mainPlugin(r backendRun) string {
	if len(r.first.Schema) == 0 {
		return ""
	}
	return r.first.Schema[0].Plugin
}

func sqlitePassed(r backendRun) bool {
	return r.backend == harness.SQLite && strings.HasPrefix(r.first.Persistence, "sqlite file") && scenarioPassed(r)
}

func postgresPassed(r backendRun) bool {
	return r.backend == harness.PostgreSQL && strings.HasPrefix(mainPlugin(r), "postgres") && schemaByTool(r) && scenarioPassed(r)
}

// mariaDBPassed: the main store is MariaDB (or MySQL) through the server's
// mysql8 plugin, with its schema set up by the server's tool.
func mariaDBPassed(r backendRun) bool {
	if r.backend != harness.MariaDB || mainPlugin(r) != "mysql8" || !schemaByTool(r) {
		return false
	}
	db := r.first.Schema[0].DBServer
	return (strings.HasPrefix(db, "MariaDB") || strings.HasPrefix(db, "MySQL")) && scenarioPassed(r)
}

// sqlVisibility: on every SQL backend run, the custom-attribute query
// returned exactly the runs.
func sqlVisibility(runs []backendRun) bool {
	if len(runs) == 0 {
		return false
	}
	for _, r := range runs {
		if r.backend == harness.SQLite || !visibilityExact(r) {
			return false
		}
	}
	return true
}

// schemaIdempotent: on every SQL backend, the first start reported the
// versions the tool set, and the update run again at the restart found the
// same versions and added no row to schema_update_history.
func schemaIdempotent(runs []backendRun) bool {
	if len(runs) == 0 {
		return false
	}
	for _, r := range runs {
		if !schemaByTool(r) || len(r.restarted.Schema) != len(r.first.Schema) {
			return false
		}
		for i, s := range r.restarted.Schema {
			f := r.first.Schema[i]
			if s.VersionBefore != f.Version || s.Version != f.Version || s.UpdatesApplied != 0 || s.HistoryRows != f.HistoryRows {
				return false
			}
		}
	}
	return true
}

// crashRecoverySQL: on PostgreSQL, a SIGKILL with every timer pending lost
// no run.
func crashRecoverySQL(r backendRun) bool {
	return r.backend == harness.PostgreSQL && r.err == nil && r.n > 0 && r.timersPending == r.n &&
		r.recovery > 0 && r.completed == r.n && len(r.wrong) == 0
}

func goodRun(b harness.Backend, plugin, db string) backendRun {
	persistence := "sqlite file /tmp/x/temporal.db"
	var schema, again []serverinfo.Schema
	if plugin != "" {
		persistence = plugin + " durabench_x"
		schema = []serverinfo.Schema{
			{Store: "main", Plugin: plugin, DBServer: db, Version: "1.19", UpdatesApplied: 20, HistoryRows: 21},
			{Store: "visibility", Plugin: "postgres12_pgx", DBServer: "PostgreSQL 15.20", Version: "1.14", UpdatesApplied: 15, HistoryRows: 16},
		}
		again = []serverinfo.Schema{
			{Store: "main", Plugin: plugin, DBServer: db, VersionBefore: "1.19", Version: "1.19", HistoryRows: 21},
			{Store: "visibility", Plugin: "postgres12_pgx", DBServer: "PostgreSQL 15.20", VersionBefore: "1.14", Version: "1.14", HistoryRows: 16},
		}
	}
	return backendRun{
		backend: b, n: 10, first: serverinfo.Info{Persistence: persistence, Schema: schema}, restarted: serverinfo.Info{Persistence: persistence, Schema: again},
		timersPending: 10, recovery: 2 * time.Second, completed: 10, visCount: 10, visListed: 10, visExact: true,
	}
}

// edit returns a changed copy of r; the schema slices are copied so that
// an edit does not reach the run it started from.
func edit(r backendRun, f func(*backendRun)) backendRun {
	r.first.Schema = slices.Clone(r.first.Schema)
	r.restarted.Schema = slices.Clone(r.restarted.Schema)
	f(&r)
	return r
}

var (
	pgRun    = goodRun(harness.PostgreSQL, "postgres12_pgx", "PostgreSQL 15.20")
	mariaRun = goodRun(harness.MariaDB, "mysql8", "MariaDB 10.11.19")
	liteRun  = goodRun(harness.SQLite, "", "")
)

var sqlitePassedPredicate = predicate.New("OP-03.sqlite", "sqlitePassed", sqlitePassed,
	predicate.Case[backendRun]{Name: "every run survived the kill and was listed", In: liteRun, Want: true},
	predicate.Case[backendRun]{Name: "in-memory SQLite: the runs are gone after the restart",
		In: edit(liteRun, func(r *backendRun) {
			r.first.Persistence = "sqlite (in memory)"
			r.completed, r.wrong = 0, []string{"backend-0: workflow not found"}
		}), Want: false},
	predicate.Case[backendRun]{Name: "one run's timer result lost", In: edit(liteRun, func(r *backendRun) {
		r.completed, r.wrong = 9, []string{`backend-3 returned "first-3-attempt1|sig-3|second-3-attempt1"`}
	}), Want: false},
)

var postgresPassedPredicate = predicate.New("OP-03.postgresql", "postgresPassed", postgresPassed,
	predicate.Case[backendRun]{Name: "schema by the tool, scenario passed", In: pgRun, Want: true},
	predicate.Case[backendRun]{Name: "a database someone prepared by hand: no update applied by the tool",
		In: edit(pgRun, func(r *backendRun) { r.first.Schema[0].UpdatesApplied = 0; r.first.Schema[0].VersionBefore = "1.19" }), Want: false},
	predicate.Case[backendRun]{Name: "visibility listed a run twice across pages", In: edit(pgRun, func(r *backendRun) { r.visListed, r.visExact = 11, false }), Want: false},
	predicate.Case[backendRun]{Name: "the server was never killed", In: edit(pgRun, func(r *backendRun) { r.recovery = 0 }), Want: false},
)

var mariaDBPassedPredicate = predicate.New("OP-03.mysql", "mariaDBPassed", mariaDBPassed,
	predicate.Case[backendRun]{Name: "MariaDB main store through mysql8, scenario passed", In: mariaRun, Want: true},
	predicate.Case[backendRun]{Name: "the main store was PostgreSQL after all",
		In: edit(mariaRun, func(r *backendRun) { r.first.Schema = pgRun.first.Schema }), Want: false},
	predicate.Case[backendRun]{Name: "the scenario stopped: a start refused",
		In: edit(mariaRun, func(r *backendRun) { r.err = errors.New("start backend-0: Error 1213 deadlock"); r.completed = 0 }), Want: false},
)

var sqlVisibilityPredicate = predicate.New("OP-03.sql-visibility", "sqlVisibility", sqlVisibility,
	predicate.Case[[]backendRun]{Name: "PostgreSQL and MariaDB setups listed exactly the runs", In: []backendRun{pgRun, mariaRun}, Want: true},
	predicate.Case[[]backendRun]{Name: "the count never reached the runs", In: []backendRun{pgRun, edit(mariaRun, func(r *backendRun) { r.visCount = 7 })}, Want: false},
	predicate.Case[[]backendRun]{Name: "the attribute query failed", In: []backendRun{edit(pgRun, func(r *backendRun) {
		r.visErr = errors.New("invalid search attribute: DurabenchScenario")
	})}, Want: false},
	predicate.Case[[]backendRun]{Name: "no SQL backend ran", In: nil, Want: false},
)

var schemaIdempotentPredicate = predicate.New("OP-03.schema-upgrade", "schemaIdempotent", schemaIdempotent,
	predicate.Case[[]backendRun]{Name: "second update found the same versions and added nothing", In: []backendRun{pgRun, mariaRun}, Want: true},
	predicate.Case[[]backendRun]{Name: "the second update re-applied a version", In: []backendRun{edit(pgRun, func(r *backendRun) {
		r.restarted.Schema = []serverinfo.Schema{{Version: "1.19", VersionBefore: "1.19", UpdatesApplied: 1, HistoryRows: 22}, r.restarted.Schema[1]}
	})}, Want: false},
	predicate.Case[[]backendRun]{Name: "the restart reported another version", In: []backendRun{edit(mariaRun, func(r *backendRun) {
		r.restarted.Schema = []serverinfo.Schema{{Version: "1.18", VersionBefore: "1.18", HistoryRows: 21}, r.restarted.Schema[1]}
	})}, Want: false},
)

var crashRecoverySQLPredicate = predicate.New("OP-03.crash-recovery-sql", "crashRecoverySQL", crashRecoverySQL,
	predicate.Case[backendRun]{Name: "every run completed after the kill", In: pgRun, Want: true},
	predicate.Case[backendRun]{Name: "two runs lost with the kill", In: edit(pgRun, func(r *backendRun) {
		r.completed, r.wrong = 8, []string{"backend-1: workflow not found", "backend-2: workflow not found"}
	}), Want: false},
	predicate.Case[backendRun]{Name: "killed before the timers were pending", In: edit(pgRun, func(r *backendRun) { r.timersPending = 4 }), Want: false},
)

// stores names a run's stores and schema versions for the table.
func (r backendRun) stores() string {
	if len(r.first.Schema) == 0 {
		return r.first.Persistence
	}
	var parts []string
	for _, s := range r.first.Schema {
		parts = append(parts, fmt.Sprintf("%s: %s via %s (%s)", s.Store, s.DBServer, s.Plugin, s.Version))
	}
	return strings.Join(parts, "; ")
}

// describe is what a run observed, for a check's detail.
func (r backendRun) describe() string {
	s := stats.Summarize(r.startMS)
	d := fmt.Sprintf("%s [%s]: server ready in %.1f s; %d starts p50 %.1f ms p95 %.1f ms; SIGKILL with %d of %d timers pending, healthy again %.1f s later; %d of %d returned the exact result of every step",
		r.backend, r.stores(), r.serverStart.Seconds(), len(r.startMS), s.P50, s.P95, r.timersPending, r.n, r.recovery.Seconds(), r.completed, r.n)
	if len(r.wrong) > 0 {
		d += fmt.Sprintf(" (not: %s)", strings.Join(r.wrong, "; "))
	}
	d += fmt.Sprintf("; visibility DurabenchScenario+Completed count %d, %d listed in pages of 4 (exact set: %t), other tag %d, settled in %.2f s",
		r.visCount, r.visListed, r.visExact, r.visOther, r.visSettle.Seconds())
	if r.visErr != nil {
		d += fmt.Sprintf(" (error: %v)", r.visErr)
	}
	if r.err != nil {
		d += fmt.Sprintf("; stopped: %v", r.err)
	}
	return d
}

func (r backendRun) metrics() map[string]float64 {
	m := stats.Summarize(r.startMS).Metrics("start_ms")
	m["recovery_s"] = r.recovery.Seconds()
	m["complete_s"] = r.total.Seconds()
	m["completed"] = float64(r.completed)
	m["runs"] = float64(r.n)
	return m
}

func visibilityDetail(runs []backendRun) string {
	var parts []string
	for _, r := range runs {
		parts = append(parts, fmt.Sprintf("%s [%s]: count %d of %d, listed %d in pages of 4, exact set %t, other tag %d, settled %.2f s",
			r.backend, r.stores(), r.visCount, r.n, r.visListed, r.visExact, r.visOther, r.visSettle.Seconds()))
	}
	return strings.Join(parts, "; ")
}

func schemaDetail(runs []backendRun) string {
	var parts []string
	for _, r := range runs {
		for i, s := range r.first.Schema {
			a := serverinfo.Schema{}
			if i < len(r.restarted.Schema) {
				a = r.restarted.Schema[i]
			}
			parts = append(parts, fmt.Sprintf("%s %s store %s on %s: new database set up to %s (%d updates, %d history rows); update at restart found %s, left %s, applied %d (history rows %d)",
				r.backend, s.Store, s.Database, s.DBServer, s.Version, s.UpdatesApplied, s.HistoryRows, a.VersionBefore, a.Version, a.UpdatesApplied, a.HistoryRows))
		}
	}
	return strings.Join(parts, "; ")
}
