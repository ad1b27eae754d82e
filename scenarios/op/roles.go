package op

import (
	"time"

	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/harness"
)

// Worker roles of OP-04. scaleRole has the SDK's default slots; with
// scaleSlotsRole a worker runs at most scaleSlots activities at once, so that
// activities of fixed latency make its throughput bound by its slots. Both
// finish the activities in hand when told to stop (SIGTERM), within
// scaleStopGrace. scaleArgLedger names the job activities' ledger file.
const (
	scaleRole      = "scale"
	scaleSlotsRole = "scale-slots"
	scaleSlots     = 2
	scaleStopGrace = 30 * time.Second
	scaleArgLedger = "ledger"
)

// roles are the worker child processes a test can start, stop and SIGKILL.
var roles = map[string]harness.WorkerRole{
	scaleRole: {
		Options:  worker.Options{WorkerStopTimeout: scaleStopGrace},
		Register: func(r worker.Registry, cfg harness.RoleConfig) { registerScale(r, cfg.Args[scaleArgLedger]) },
	},
	scaleSlotsRole: {
		Options:  worker.Options{MaxConcurrentActivityExecutionSize: scaleSlots, WorkerStopTimeout: scaleStopGrace},
		Register: func(r worker.Registry, cfg harness.RoleConfig) { registerScale(r, cfg.Args[scaleArgLedger]) },
	},
}
