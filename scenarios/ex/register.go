package ex

import (
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Arguments of registerScenario, passed to worker child processes as
// harness.RoleConfig.Args.
const (
	argStore  = "store"  // EffectStore directory
	argLedger = "ledger" // ledger file of the Effect activity
	argBlock  = "block"  // "true": the Effect activity holds its completion
	argPlant  = "plant"  // stepsRole: "workflow-id#step" whose ledger entries the Step activity writes twice
)

// registerScenario registers the workflows and activities of EX-02, EX-04,
// EX-05, EX-06 (the original OrderWorkflow) and EX-07 on r.
func registerScenario(r worker.Registry, args map[string]string) {
	registerScenarioWorkflows(r)
	effects := &Effects{Store: EffectStore(args[argStore]), Ledger: args[argLedger], Block: args[argBlock] == "true"}
	r.RegisterActivityWithOptions(effects.Run, activity.RegisterOptions{Name: EffectActivityName})
	r.RegisterActivityWithOptions(Transform, activity.RegisterOptions{Name: TransformActivityName})
	r.RegisterActivityWithOptions(Flaky, activity.RegisterOptions{Name: FlakyActivityName})
	for _, name := range []string{ReserveActivity, ChargeActivity, ValidateActivity} {
		r.RegisterActivityWithOptions(orderStep(name), activity.RegisterOptions{Name: name})
	}
}

// registerScenarioWorkflows registers the workflows of registerScenario; a
// replayer needs only these.
func registerScenarioWorkflows(r worker.WorkflowRegistry) {
	for _, wf := range []any{
		EffectWorkflow, StateWorkflow, CommandsWorkflow, ChildWorkflow, LongHistoryWorkflow,
		SimpleWorkflow, SignalsWorkflow, ParentWorkflow, ChainWorkflow, UpdatesWorkflow, CorpusWorkflow,
		CoroutinesWorkflow, PanicWorkflow,
	} {
		r.RegisterWorkflow(wf)
	}
	r.RegisterWorkflowWithOptions(OrderWorkflow, workflow.RegisterOptions{Name: OrderWorkflowName})
}
