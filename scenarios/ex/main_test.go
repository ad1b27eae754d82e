package ex

import (
	"testing"
	"time"

	"go.temporal.io/sdk/worker"

	"github.com/durabench/durabench/harness"
)

// Worker roles run in child processes. stepsRole runs StepsWorkflow;
// scenarioRole and noCacheRole run the EX-02..EX-07 workflows
// (registerScenario), the latter with the sticky workflow cache disabled.
// A short sticky timeout lets another worker take over soon after one is
// killed.
const (
	stepsRole    = "steps"
	scenarioRole = "scenario"
	noCacheRole  = "scenario-nocache"
)

var roles = map[string]harness.WorkerRole{
	stepsRole: {
		Options: worker.Options{StickyScheduleToStartTimeout: time.Second},
		Register: func(r worker.Registry, cfg harness.RoleConfig) {
			plant, err := parsePlant(cfg.Args[argPlant])
			if err != nil {
				panic(err) // a harness fault: the test passed a bad argument
			}
			registerSteps(r, &Steps{Ledger: cfg.Args[argLedger], Plant: plant})
		},
	},
	scenarioRole: {
		Options: worker.Options{StickyScheduleToStartTimeout: time.Second},
		Register: func(r worker.Registry, cfg harness.RoleConfig) {
			registerScenario(r, cfg.Args)
		},
	},
	noCacheRole: {
		// Every workflow task replays the whole history.
		Prepare: func() { worker.SetStickyWorkflowCacheSize(0) },
		Register: func(r worker.Registry, cfg harness.RoleConfig) {
			registerScenario(r, cfg.Args)
		},
	},
}

func TestMain(m *testing.M) { harness.Main(m, "ex", roles) }
