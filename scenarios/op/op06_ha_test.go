package op

import (
	"context"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/durabench/durabench/harness"
)

// TestOP06 measures availability: a single server SIGKILLed and restarted
// on its SQLite file, and a cluster of two server processes on one
// PostgreSQL store in which one node is SIGKILLed for good.
func TestOP06(t *testing.T) {
	env := harness.Get(t)
	if ok, why := env.CanKillServer(); !ok {
		env.Check(t, "OP-06.crash-recovery").NotMeasured(why)
		env.Check(t, "OP-06.multi-node-failover").NotMeasured(why)
		return
	}
	t.Run("crash_recovery", func(t *testing.T) {
		chk := env.Check(t, "OP-06.crash-recovery")
		r := runBackendScenario(t, env, harness.SQLite)
		harness.Decide(chk, crashRecoveryPredicate, r, r.describe(), r.metrics())
	})
	t.Run("multi_node_failover", func(t *testing.T) {
		chk := env.Check(t, "OP-06.multi-node-failover")
		if ok, why := env.BackendAvailable(harness.PostgreSQL); !ok {
			chk.NotMeasured(why)
			return
		}
		f := runFailover(t, env)
		harness.Decide(chk, failoverPredicate, f, f.describe(), f.metrics())
	})
}

// failoverShards spreads workflows over both nodes: each node owns some.
const failoverShards = 4

// runFailover starts two cluster members on one PostgreSQL store, runs the
// reference workflows through a client that reaches both frontends, kills
// one member while every timer is pending, and lets the other finish.
func runFailover(t *testing.T, env *harness.Env) failover {
	t.Helper()
	n1 := env.StartServer(t, harness.ServerOptions{Backend: harness.PostgreSQL, Cluster: true, HistoryShards: failoverShards})
	n2 := env.StartServer(t, harness.ServerOptions{ShareDatabaseOf: n1, Cluster: true, HistoryShards: failoverShards})
	f := failover{n: backendRuns, nodes: []string{n1.Address(), n2.Address()},
		members: [][]string{n1.Info().Membership, n2.Info().Membership}, persistence: n1.Info().Persistence}
	o := clusterClientOptions(n1.Address(), n2.Address())
	o.Logger = harness.TestLogger(t)
	c, err := client.Dial(o)
	if err != nil {
		t.Fatalf("dial cluster: %v", err)
	}
	t.Cleanup(c.Close)
	tq := referenceWorker(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	runs, _, err := startReference(ctx, c, client.StartWorkflowOptions{TaskQueue: tq, WorkflowExecutionTimeout: 4 * time.Minute}, harness.UniqueID(t, "failover"), f.n)
	if err != nil {
		f.err = err
		return f
	}
	if f.timersPending, err = runs.waitTimers(ctx); err != nil {
		f.err = err
		return f
	}
	// Both frontends answered before the kill: each saw a describe.
	for _, node := range []*harness.Server{n1, n2} {
		if _, err := node.Dial(t).DescribeWorkflowExecution(ctx, runs.ids[0], ""); err == nil {
			f.answeredBefore++
		}
	}
	if err := n1.Kill(); err != nil {
		t.Fatalf("kill node 1: %v", err)
	}
	killed := time.Now()
	if f.firstSignal, err = runs.signal(ctx, killed, 2*time.Minute); err != nil {
		f.err = err
		return f
	}
	f.completed, f.wrong = runs.results(ctx)
	f.allDone = time.Since(killed)
	// After the kill only node 2 answers.
	nc := n2.Dial(t)
	if d, err := nc.DescribeWorkflowExecution(ctx, runs.ids[0], ""); err == nil && d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		f.survivorSees = true
	}
	return f
}
