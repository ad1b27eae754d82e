package vr

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Schema evolution (VR-04): the current (v2) data types and workflows that
// read the payloads and histories v1 code recorded under
// fixtures/payloads/vr04. The v1 code they evolved from is in schema_v1.go.

// Names under which v1 and v2 register their workflows and activities: a
// history recorded by v1 replays against the v2 function of the same name.
const (
	schemaOrderWorkflow   = "SchemaOrder"
	schemaChargeActivity  = "SchemaCharge"
	schemaInvoiceWorkflow = "SchemaInvoice"
	schemaApproveActivity = "SchemaApprove"
	schemaDecodeOrder     = "SchemaDecodeOrder"
	schemaEchoOrder       = "SchemaEchoOrder"
	schemaDecodeInvoice   = "SchemaDecodeInvoice"
	schemaEchoInvoice     = "SchemaEchoInvoice"
)

// schemaOrder is an order as v2 code knows it. Since v1 (schemaOrderV1)
// Currency was added, Coupon removed, and Customer renamed CustomerName;
// UnmarshalJSON maps the old name.
type schemaOrder struct {
	ID           string `json:"id"`
	CustomerName string `json:"customer_name"`
	Amount       int64  `json:"amount"` // cents
	Currency     string `json:"currency"`
}

// UnmarshalJSON reads both names of the customer: "customer_name", and
// "customer" as v1 wrote it.
func (o *schemaOrder) UnmarshalJSON(b []byte) error {
	type plain schemaOrder // the same fields without this method: no recursion
	var v struct {
		plain
		Customer *string `json:"customer"` // v1's name of CustomerName
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*o = schemaOrder(v.plain)
	if o.CustomerName == "" && v.Customer != nil {
		o.CustomerName = *v.Customer
	}
	return nil
}

// schemaReceipt is what the order workflow returns; unchanged since v1.
type schemaReceipt struct {
	OrderID  string `json:"order_id"`
	Customer string `json:"customer"`
	Charged  int64  `json:"charged"`
}

// schemaInvoice is an invoice as v2 code knows it. Total changed type: v1
// wrote a decimal string of euros ("12.50"), v2 holds whole cents. No field
// mapping reads the old value: the plain JSON converter fails on it, and the
// upcasting converter (schema_convert.go) rewrites v1 payloads.
type schemaInvoice struct {
	Number   string `json:"number"`
	Customer string `json:"customer"`
	Total    int64  `json:"total"` // cents
}

// schemaDecoded is what a decode workflow saw of one payload: decoded as its
// input by the workflow, and decoded as its input by an activity.
type schemaDecoded[T any] struct {
	Workflow T `json:"workflow"`
	Activity T `json:"activity"`
}

// schemaActivityOptions allow one attempt: a payload that cannot decode
// fails the same way every time, and a retry would only delay the report.
var schemaActivityOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 10 * time.Second,
	RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
}

// schemaOrderFlow charges an order and returns its receipt. The receipt is
// built from the decoded input, and an order without a customer is refused
// before the charge, so that replaying a v1 history whose customer was not
// mapped schedules no activity (a non-determinism error) and returns another
// receipt.
func schemaOrderFlow(ctx workflow.Context, o schemaOrder) (schemaReceipt, error) {
	if o.CustomerName == "" {
		return schemaReceipt{}, temporal.NewNonRetryableApplicationError("order "+o.ID+" has no customer", "NoCustomer", nil)
	}
	ctx = workflow.WithActivityOptions(ctx, schemaActivityOptions)
	var charged int64
	if err := workflow.ExecuteActivity(ctx, schemaChargeActivity, o).Get(ctx, &charged); err != nil {
		return schemaReceipt{}, err
	}
	return schemaReceipt{OrderID: o.ID, Customer: o.CustomerName, Charged: charged}, nil
}

func schemaChargeOrder(_ context.Context, o schemaOrder) (int64, error) { return o.Amount, nil }

// schemaInvoiceFlow approves an invoice with a total. An invoice decoded
// without one is refused before the activity, so that a v1 history replayed
// without a working upcast does not schedule what it recorded.
func schemaInvoiceFlow(ctx workflow.Context, inv schemaInvoice) (schemaInvoice, error) {
	if inv.Total <= 0 {
		return schemaInvoice{}, temporal.NewNonRetryableApplicationError("invoice "+inv.Number+" has no total", "NoTotal", nil)
	}
	ctx = workflow.WithActivityOptions(ctx, schemaActivityOptions)
	var approved schemaInvoice
	err := workflow.ExecuteActivity(ctx, schemaApproveActivity, inv).Get(ctx, &approved)
	return approved, err
}

func schemaApproveInvoice(_ context.Context, inv schemaInvoice) (schemaInvoice, error) {
	inv.Customer = strings.ToUpper(inv.Customer)
	return inv, nil
}

// schemaDecodeFlow returns a workflow that takes one payload twice: as T,
// decoded by the SDK when the workflow task runs, and untouched, handed to
// the activity echo, which decodes it as T in turn.
func schemaDecodeFlow[T any](echo string) func(workflow.Context, T, converter.RawValue) (schemaDecoded[T], error) {
	return func(ctx workflow.Context, in T, raw converter.RawValue) (schemaDecoded[T], error) {
		ctx = workflow.WithActivityOptions(ctx, schemaActivityOptions)
		var fromActivity T
		if err := workflow.ExecuteActivity(ctx, echo, raw).Get(ctx, &fromActivity); err != nil {
			return schemaDecoded[T]{}, err
		}
		return schemaDecoded[T]{Workflow: in, Activity: fromActivity}, nil
	}
}

func schemaEcho[T any](_ context.Context, v T) (T, error) { return v, nil }

// registerSchemaWorkflows registers the v2 workflows (all a replayer needs).
func registerSchemaWorkflows(r worker.WorkflowRegistry) {
	r.RegisterWorkflowWithOptions(schemaOrderFlow, workflow.RegisterOptions{Name: schemaOrderWorkflow})
	r.RegisterWorkflowWithOptions(schemaInvoiceFlow, workflow.RegisterOptions{Name: schemaInvoiceWorkflow})
	r.RegisterWorkflowWithOptions(schemaDecodeFlow[schemaOrder](schemaEchoOrder), workflow.RegisterOptions{Name: schemaDecodeOrder})
	r.RegisterWorkflowWithOptions(schemaDecodeFlow[schemaInvoice](schemaEchoInvoice), workflow.RegisterOptions{Name: schemaDecodeInvoice})
}

// registerSchemaWorker registers the v2 workflows and activities.
func registerSchemaWorker(r worker.Registry) {
	registerSchemaWorkflows(r)
	r.RegisterActivityWithOptions(schemaChargeOrder, activity.RegisterOptions{Name: schemaChargeActivity})
	r.RegisterActivityWithOptions(schemaApproveInvoice, activity.RegisterOptions{Name: schemaApproveActivity})
	r.RegisterActivityWithOptions(schemaEcho[schemaOrder], activity.RegisterOptions{Name: schemaEchoOrder})
	r.RegisterActivityWithOptions(schemaEcho[schemaInvoice], activity.RegisterOptions{Name: schemaEchoInvoice})
}
