package op

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/harness/evidence"
	"github.com/durabench/durabench/harness/stats"
)

// backendRuns is how many reference workflows run on each backend.
const backendRuns = 10

// TestOP03 runs the reference scenario (activities, a timer, a signal, a
// visibility query on a custom search attribute, a server SIGKILL and
// restart) on SQLite, PostgreSQL and MariaDB, each on databases of its own
// whose schema the server's own tool set up, and prints the timings side by
// side.
func TestOP03(t *testing.T) {
	env := harness.Get(t)
	if ok, why := env.CanKillServer(); !ok {
		for _, id := range []string{"OP-03.sqlite", "OP-03.postgresql", "OP-03.mysql", "OP-03.sql-visibility", "OP-03.schema-upgrade", "OP-03.crash-recovery-sql"} {
			env.Check(t, id).NotMeasured(why)
		}
		return
	}
	var runs []backendRun
	for _, b := range []struct {
		backend harness.Backend
		check   string
		pred    func(*testing.T, *harness.Check, backendRun)
	}{
		{harness.SQLite, "OP-03.sqlite", func(t *testing.T, chk *harness.Check, r backendRun) {
			harness.Decide(chk, sqlitePassedPredicate, r, r.describe(), r.metrics())
		}},
		{harness.PostgreSQL, "OP-03.postgresql", func(t *testing.T, chk *harness.Check, r backendRun) {
			harness.Decide(chk, postgresPassedPredicate, r, r.describe(), r.metrics())
		}},
		{harness.MariaDB, "OP-03.mysql", func(t *testing.T, chk *harness.Check, r backendRun) {
			r.mariaVisibility = mariaDBVisibilityAttempt(t, env)
			harness.Decide(chk, mariaDBPassedPredicate, r, r.describe()+"; "+r.mariaVisibility, r.metrics())
		}},
	} {
		t.Run(strings.ToLower(b.backend.String()[:strings.IndexAny(b.backend.String()+" ", " ")]), func(t *testing.T) {
			chk := env.Check(t, b.check)
			if ok, why := env.BackendAvailable(b.backend); !ok {
				chk.NotMeasured(why)
				return
			}
			r := runBackendScenario(t, env, b.backend)
			runs = append(runs, r)
			b.pred(t, chk, r)
		})
	}
	sqlRuns := slices.DeleteFunc(slices.Clone(runs), func(r backendRun) bool { return r.backend == harness.SQLite })

	t.Run("sql_visibility", func(t *testing.T) {
		chk := env.Check(t, "OP-03.sql-visibility")
		if len(sqlRuns) == 0 {
			chk.NotMeasured("no SQL backend was reachable")
			return
		}
		// The timing table sits on a check that every SQL backend measures,
		// so it shows whichever of them was reachable.
		chk.Table(backendTable(runs))
		harness.Decide(chk, sqlVisibilityPredicate, sqlRuns, visibilityDetail(sqlRuns), nil)
	})
	t.Run("schema_upgrade", func(t *testing.T) {
		chk := env.Check(t, "OP-03.schema-upgrade")
		if len(sqlRuns) == 0 {
			chk.NotMeasured("no SQL backend was reachable")
			return
		}
		harness.Decide(chk, schemaIdempotentPredicate, sqlRuns, schemaDetail(sqlRuns), nil)
	})
	t.Run("crash_recovery_sql", func(t *testing.T) {
		chk := env.Check(t, "OP-03.crash-recovery-sql")
		i := slices.IndexFunc(runs, func(r backendRun) bool { return r.backend == harness.PostgreSQL })
		if i < 0 {
			chk.NotMeasured("PostgreSQL was not reachable")
			return
		}
		r := runs[i]
		harness.Decide(chk, crashRecoverySQLPredicate, r, r.describe(), r.metrics())
	})
}

// runBackendScenario starts a dedicated server on b and runs the reference
// scenario there, killing the server while every run's timer is pending.
func runBackendScenario(t *testing.T, env *harness.Env, b harness.Backend) backendRun {
	t.Helper()
	began := time.Now()
	srv := env.StartServer(t, harness.ServerOptions{Backend: b})
	r := backendRun{backend: b, n: backendRuns, serverStart: time.Since(began), first: srv.Info()}
	c := srv.Dial(t)
	tq := referenceWorker(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	tag := harness.UniqueID(t, "backend")
	key := temporal.NewSearchAttributeKeyKeyword("DurabenchScenario")
	began = time.Now()
	runs, startMS, err := startReference(ctx, c, client.StartWorkflowOptions{
		TaskQueue: tq, WorkflowExecutionTimeout: 3 * time.Minute,
		TypedSearchAttributes: temporal.NewSearchAttributes(key.ValueSet(tag)),
	}, tag, r.n)
	r.startMS = startMS
	if err != nil {
		r.err = err
		return r
	}
	// Kill the server only once every run has its timer pending.
	if r.timersPending, err = runs.waitTimers(ctx); err != nil {
		r.err = err
		return r
	}
	if err := srv.Kill(); err != nil {
		t.Fatalf("kill server: %v", err)
	}
	t0 := time.Now()
	if err := srv.Restart(); err != nil {
		t.Fatalf("restart server: %v", err)
	}
	r.recovery = time.Since(t0)
	r.restarted = srv.Info()
	if _, err := runs.signal(ctx, t0, 30*time.Second); err != nil {
		r.err = err
		return r
	}
	r.completed, r.wrong = runs.results(ctx)
	r.total = time.Since(began)
	ids := runs.ids

	query := fmt.Sprintf("DurabenchScenario = '%s' AND ExecutionStatus = 'Completed'", tag)
	t0 = time.Now()
	if err := harness.WaitFor(ctx, 30*time.Second, 200*time.Millisecond, "visibility of "+tag, func(ctx context.Context) (bool, error) {
		res, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: query})
		if err != nil {
			r.visErr = err
			return false, nil
		}
		r.visCount = res.GetCount()
		return r.visCount == int64(r.n), nil
	}); err != nil && r.visErr == nil {
		r.visErr = err
	}
	r.visSettle = time.Since(t0)
	listed, err := listAll(ctx, c, query, 4)
	if err != nil {
		r.visErr = err
	}
	slices.Sort(listed)
	want := slices.Clone(ids)
	slices.Sort(want)
	r.visExact = slices.Equal(listed, want)
	r.visListed = len(listed)
	if other, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: fmt.Sprintf("DurabenchScenario = '%s-none'", tag)}); err == nil {
		r.visOther = other.GetCount()
	} else {
		r.visErr = err
	}
	return r
}

// listAll follows every page of a visibility list of pageSize.
func listAll(ctx context.Context, c client.Client, query string, pageSize int32) ([]string, error) {
	var ids []string
	var token []byte
	for {
		res, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, PageSize: pageSize, NextPageToken: token})
		if err != nil {
			return ids, err
		}
		for _, e := range res.GetExecutions() {
			ids = append(ids, e.GetExecution().GetWorkflowId())
		}
		if token = res.GetNextPageToken(); len(token) == 0 {
			return ids, nil
		}
	}
}

// mariaDBVisibilityAttempt starts a server with both stores on MariaDB and
// returns what happened, for the evidence: the mysql8 visibility schema
// uses JSON operators and functional index parts MariaDB may lack.
func mariaDBVisibilityAttempt(t *testing.T, env *harness.Env) string {
	t.Helper()
	if ok, why := env.BackendAvailable(harness.MariaDBVisibility); !ok {
		return "visibility on MariaDB not tried: " + why
	}
	srv, err := env.TryStartServer(t, harness.ServerOptions{Backend: harness.MariaDBVisibility})
	if err == nil {
		info := srv.Info()
		return "visibility on MariaDB too: the server started (" + info.Persistence + ")"
	}
	msg := err.Error()
	if i := strings.Index(msg, "visibility store:"); i >= 0 {
		msg = msg[i:]
		if j := strings.IndexByte(msg, '\n'); j >= 0 {
			msg = msg[:j]
		}
	}
	return "visibility on MariaDB refused by the server's schema tool: " + msg
}

// backendTable is the timing table across the backends: the same workload
// side by side.
func backendTable(runs []backendRun) evidence.Table {
	tb := evidence.Table{
		Title: fmt.Sprintf("the reference scenario on each backend: %d workflows (activity, 3 s timer, signal, activity), server SIGKILLed with every timer pending", backendRuns),
		Columns: []string{"backend", "stores (schema version)", "server start s", "start p50 ms", "start p95 ms",
			"kill → healthy s", "all complete s", "visibility settle s", "completed"},
	}
	for _, r := range runs {
		s := stats.Summarize(r.startMS)
		tb.Rows = append(tb.Rows, []string{
			r.backend.String(), r.stores(),
			fmt.Sprintf("%.1f", r.serverStart.Seconds()), fmt.Sprintf("%.1f", s.P50), fmt.Sprintf("%.1f", s.P95),
			fmt.Sprintf("%.1f", r.recovery.Seconds()), fmt.Sprintf("%.1f", r.total.Seconds()),
			fmt.Sprintf("%.2f", r.visSettle.Seconds()), fmt.Sprintf("%d of %d", r.completed, r.n),
		})
	}
	return tb
}
