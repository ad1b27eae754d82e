package op

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/durabench/durabench/harness"
	"github.com/durabench/durabench/harness/predicate"
)

// The pass conditions of OP-06's checks.

func haPredicates() []predicate.Spec {
	return []predicate.Spec{crashRecoveryPredicate.Spec(), failoverPredicate.Spec()}
}

// crashRecovered: a SQLite-file server SIGKILLed with every timer pending
// came back and lost no run; the recovery time is measured.
func crashRecovered(r backendRun) bool {
	return r.backend == harness.SQLite && strings.HasPrefix(r.first.Persistence, "sqlite file") && r.err == nil &&
		r.n > 0 && r.timersPending == r.n && r.recovery > 0 && r.completed == r.n && len(r.wrong) == 0
}

var crashRecoveryPredicate = predicate.New("OP-06.crash-recovery", "crashRecovered", crashRecovered,
	predicate.Case[backendRun]{Name: "every run completed after the restart", In: liteRun, Want: true},
	predicate.Case[backendRun]{Name: "in-memory server: the runs did not survive",
		In: edit(liteRun, func(r *backendRun) {
			r.first.Persistence = "sqlite (in memory)"
			r.completed, r.wrong = 0, []string{"backend-0: workflow not found"}
		}), Want: false},
	predicate.Case[backendRun]{Name: "the restart never became healthy", In: edit(liteRun, func(r *backendRun) {
		r.recovery, r.err = 0, errors.New("server health: gave up after 60s")
	}), Want: false},
)

// failover is what the two-node cluster observed.
type failover struct {
	n              int
	nodes          []string   // the two frontends
	members        [][]string // each node's ringpop addresses
	persistence    string
	timersPending  int
	answeredBefore int           // frontends that answered a describe before the kill
	firstSignal    time.Duration // kill to the first signal accepted
	allDone        time.Duration // kill to every run completed
	completed      int
	wrong          []string
	survivorSees   bool // node 2 describes a run as completed after the kill
	err            error
}

// failedOver: two members, each with its frontend answering, and after one
// was killed with every timer pending, every run completed with its exact
// result through the other.
func failedOver(f failover) bool {
	return f.err == nil && len(f.nodes) == 2 && len(f.members) == 2 && len(f.members[0]) > 0 && len(f.members[1]) > 0 &&
		f.answeredBefore == 2 && f.n > 0 && f.timersPending == f.n && f.completed == f.n && len(f.wrong) == 0 && f.survivorSees
}

var goodFailover = failover{n: 10, nodes: []string{"127.0.0.1:1", "127.0.0.1:2"},
	members: [][]string{{"history 127.0.0.1:3"}, {"history 127.0.0.1:4"}}, timersPending: 10, answeredBefore: 2,
	firstSignal: 8 * time.Second, allDone: 15 * time.Second, completed: 10, survivorSees: true}

func editFailover(f failover, e func(*failover)) failover { e(&f); return f }

var failoverPredicate = predicate.New("OP-06.multi-node-failover", "failedOver", failedOver,
	predicate.Case[failover]{Name: "node 2 finished every run", In: goodFailover, Want: true},
	predicate.Case[failover]{Name: "runs on the dead node's shards never moved", In: editFailover(goodFailover, func(f *failover) {
		f.completed, f.wrong = 6, []string{"failover-1: context deadline exceeded"}
		f.err = errors.New("waiting for signal failover-1: gave up after 2m0s")
	}), Want: false},
	predicate.Case[failover]{Name: "one node only: the second never joined", In: editFailover(goodFailover, func(f *failover) { f.answeredBefore = 1 }), Want: false},
)

func (f failover) describe() string {
	d := fmt.Sprintf("two members on %s, frontends %s, ringpop %v and %v; %d of 2 frontends answered before the kill; node 1 SIGKILLed with %d of %d timers pending; first signal accepted %.1f s after the kill, every run done %.1f s after it; %d of %d returned the exact result; node 2 describes a completed run: %t",
		f.persistence, strings.Join(f.nodes, " and "), f.members[0], f.members[1], f.answeredBefore, f.timersPending, f.n,
		f.firstSignal.Seconds(), f.allDone.Seconds(), f.completed, f.n, f.survivorSees)
	if len(f.wrong) > 0 {
		d += " (not: " + strings.Join(f.wrong, "; ") + ")"
	}
	if f.err != nil {
		d += fmt.Sprintf("; stopped: %v", f.err)
	}
	return d
}

func (f failover) metrics() map[string]float64 {
	return map[string]float64{"first_signal_s": f.firstSignal.Seconds(), "all_done_s": f.allDone.Seconds(), "completed": float64(f.completed), "runs": float64(f.n)}
}
