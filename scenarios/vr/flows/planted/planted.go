// Package planted holds variants of the VR workflows with one deliberate
// change each, for replay tests against the committed v1 histories. A
// variant is v1 (or v2) with one workflow replaced; its Register adds the
// workflows, under the names of package flows, to a worker or a
// worker.WorkflowReplayer.
package planted

import (
	"fmt"
	"slices"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/durabench/durabench/scenarios/vr/flows"
	v1 "github.com/durabench/durabench/scenarios/vr/flows/v1"
	v2 "github.com/durabench/durabench/scenarios/vr/flows/v2"
)

// Kind says what a variant is there to show.
type Kind string

// Kinds of variants.
const (
	// Breaking is a change the catalog (VR-02.planted-changes) lists as one replay must catch.
	Breaking Kind = "breaking"
	// Invisible is a change to what a run does that the Go SDK's replay does not compare
	// (timer durations, child arguments): measured, reported, never counted as caught.
	Invisible Kind = "invisible"
	// Safe is a change replay must let through (VR-02.safe-changes-pass).
	Safe Kind = "safe"
	// Handler is a change to signal or update handling (VR-02.handler-changes).
	Handler Kind = "handler"
	// Unguarded is v2's change made without GetVersion (VR-01.control-unversioned-change).
	Unguarded Kind = "unguarded"
)

// Variant is one planted change.
type Variant struct {
	Name     string // e.g. "activity-reordered"
	Kind     Kind
	Workflow string // the workflow type it changes (flows.Order, ...); "" for all of v2
	Change   string // what differs, for details
	// RegisterWorkflows registers every VR workflow, the changed one included.
	RegisterWorkflows func(worker.WorkflowRegistry)
}

// Guarded is the name of the variant that is v2 itself, every change guarded
// by GetVersion.
const Guarded = "guarded"

// Variants lists every variant, in a stable order.
func Variants() []Variant {
	return slices.Clone(variants)
}

// Lookup returns the variant called name.
func Lookup(name string) (Variant, error) {
	for _, v := range variants {
		if v.Name == name {
			return v, nil
		}
	}
	return Variant{}, fmt.Errorf("no planted variant %q", name)
}

// Of returns the variants of kind k.
func Of(k Kind) []Variant {
	var out []Variant
	for _, v := range variants {
		if v.Kind == k {
			out = append(out, v)
		}
	}
	return out
}

var variants = []Variant{
	v1With(Breaking, "activity-added", flows.Order, "Order runs FraudCheck between Reserve and Charge", orderActivityAdded),
	v1With(Breaking, "activity-removed", flows.Order, "Order no longer runs Charge", orderActivityRemoved),
	v1With(Breaking, "activity-reordered", flows.Order, "Order runs Charge before Reserve", orderActivityReordered),
	v1With(Breaking, "activity-retyped", flows.Order, "Order runs activity type Invoice where it ran Charge", orderActivityRetyped),
	v1With(Breaking, "timer-added", flows.Order, "Order sleeps between Reserve and Charge", orderTimerAdded),
	v1With(Breaking, "child-added", flows.Order, "Order runs a Child workflow between Reserve and Charge", orderChildAdded),

	v1With(Invisible, "timer-duration-changed", flows.Order, "Order's settle timer lasts an hour instead of 10 ms", orderTimerDurationChanged),
	v1With(Invisible, "child-argument-changed", flows.Parent, "Parent passes its child a different item", parentChildArgumentChanged),

	{Name: "activity-body-changed", Kind: Safe, Workflow: flows.Order, Change: "the activities' bodies change, the workflow code does not (the replayer runs no activity)",
		RegisterWorkflows: v1.RegisterWorkflows},
	v1With(Safe, "argument-values-changed", flows.Order, "Order passes Charge a different argument", orderArgumentChanged),
	{Name: Guarded, Kind: Safe, Change: "v2: each change guarded by workflow.GetVersion", RegisterWorkflows: v2.RegisterWorkflows},

	v1With(Handler, "update-handler-changed", flows.Approval, "the amend update handler no longer runs the Amend activity", approvalUpdateHandlerChanged),
	v1With(Handler, "signal-handling-changed", flows.Approval, "on the approve signal, Approval runs Audit with the approver before Fulfil", approvalSignalHandlingChanged),

	{Name: "unguarded-v2", Kind: Unguarded, Change: "v2's three changes (Notify, FraudCheck, Audit) made without workflow.GetVersion",
		RegisterWorkflows: registerUnguarded},
}

// v1With is the variant that registers v1's workflows with name replaced by fn.
func v1With(k Kind, name, wf, change string, fn any) Variant {
	return Variant{Name: name, Kind: k, Workflow: wf, Change: change, RegisterWorkflows: func(r worker.WorkflowRegistry) {
		v1Workflows := map[string]any{
			flows.Approval: v1.Approval, flows.Order: v1.Order, flows.Parent: v1.Parent,
			flows.Child: v1.Child, flows.Loop: v1.Loop, flows.Quick: v1.Quick,
		}
		v1Workflows[wf] = fn
		for n, f := range v1Workflows {
			r.RegisterWorkflowWithOptions(f, workflow.RegisterOptions{Name: n})
		}
	}}
}

func registerUnguarded(r worker.WorkflowRegistry) {
	for n, f := range map[string]any{
		flows.Approval: unguardedApproval, flows.Order: orderActivityAdded, flows.Parent: unguardedParent,
		flows.Child: v2.Child, flows.Loop: v2.Loop, flows.Quick: v2.Quick,
	} {
		r.RegisterWorkflowWithOptions(f, workflow.RegisterOptions{Name: n})
	}
}
