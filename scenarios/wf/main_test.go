package wf

import (
	"flag"
	"testing"
	"time"

	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/harness"
)

// ledgerRole is a worker child process that runs the parent/child and
// fan-out workflows and records their steps in the ledger named by the "ledger"
// argument; a short sticky timeout lets a new worker take over soon after
// this one is killed.
const ledgerRole = "ledger"

var roles = map[string]harness.WorkerRole{
	ledgerRole: {
		Options: worker.Options{StickyScheduleToStartTimeout: time.Second},
		Register: func(r worker.Registry, cfg harness.RoleConfig) {
			registerWorkflows(r, ParentWorkflow, ChildWorkflow, FanOutWorkflow)
			r.RegisterActivity(&Children{Ledger: cfg.Args["ledger"]})
			r.RegisterActivity(&Branches{Ledger: cfg.Args["ledger"]})
		},
	},
}

// TestMain lets the items, and the subtests that wait on clocks and server
// restarts, run side by side: they mostly wait rather than compute, and the
// default parallelism (GOMAXPROCS, often 2) would run them nearly one after
// another. An explicit -test.parallel is respected.
func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		if err := flag.Set("test.parallel", "16"); err != nil {
			panic(err)
		}
	}
	harness.Main(m, "wf", roles)
}
