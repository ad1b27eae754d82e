package cp

import (
	"testing"
	"time"

	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/harness"
)

// sagaRole runs SagaWorkflow and its activities in a worker child process
// that CP-01.survives-crash SIGKILLs; sagaArgLedger names its ledger file. A
// short sticky timeout lets another worker take over soon after a kill.
const (
	sagaRole      = "saga"
	sagaArgLedger = "ledger"
)

// roles are the worker child processes a test can SIGKILL.
var roles = map[string]harness.WorkerRole{
	sagaRole: {
		Options: worker.Options{StickyScheduleToStartTimeout: time.Second},
		Register: func(r worker.Registry, cfg harness.RoleConfig) {
			registerSaga(r, &SagaActivities{Ledger: cfg.Args[sagaArgLedger]})
		},
	},
}

func TestMain(m *testing.M) { harness.Main(m, "cp", roles) }
