package vr

import (
	"context"
	"strings"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// The v1 code of VR-04, before the schema changed: the types and workflows
// that wrote the payloads and histories under fixtures/payloads/vr04. The
// tests run it only to record those fixtures again (DURABENCH_RECORD_VR04=1).

// schemaOrderV1 is an order as v1 wrote it.
type schemaOrderV1 struct {
	ID       string `json:"id"`
	Customer string `json:"customer"` // renamed customer_name in v2
	Amount   int64  `json:"amount"`
	Coupon   string `json:"coupon"` // removed in v2
}

// schemaInvoiceV1 is an invoice as v1 wrote it.
type schemaInvoiceV1 struct {
	Number   string `json:"number"`
	Customer string `json:"customer"`
	Total    string `json:"total"` // decimal euros; whole cents in v2
}

func schemaOrderFlowV1(ctx workflow.Context, o schemaOrderV1) (schemaReceipt, error) {
	if o.Customer == "" {
		return schemaReceipt{}, temporal.NewNonRetryableApplicationError("order "+o.ID+" has no customer", "NoCustomer", nil)
	}
	ctx = workflow.WithActivityOptions(ctx, schemaActivityOptions)
	var charged int64
	if err := workflow.ExecuteActivity(ctx, schemaChargeActivity, o).Get(ctx, &charged); err != nil {
		return schemaReceipt{}, err
	}
	return schemaReceipt{OrderID: o.ID, Customer: o.Customer, Charged: charged}, nil
}

func schemaChargeOrderV1(_ context.Context, o schemaOrderV1) (int64, error) { return o.Amount, nil }

func schemaInvoiceFlowV1(ctx workflow.Context, inv schemaInvoiceV1) (schemaInvoiceV1, error) {
	if inv.Total == "" {
		return schemaInvoiceV1{}, temporal.NewNonRetryableApplicationError("invoice "+inv.Number+" has no total", "NoTotal", nil)
	}
	ctx = workflow.WithActivityOptions(ctx, schemaActivityOptions)
	var approved schemaInvoiceV1
	err := workflow.ExecuteActivity(ctx, schemaApproveActivity, inv).Get(ctx, &approved)
	return approved, err
}

func schemaApproveInvoiceV1(_ context.Context, inv schemaInvoiceV1) (schemaInvoiceV1, error) {
	inv.Customer = strings.ToUpper(inv.Customer)
	return inv, nil
}

// registerSchemaWorkerV1 registers the v1 workflows and activities under the
// names v2 uses.
func registerSchemaWorkerV1(r worker.Registry) {
	r.RegisterWorkflowWithOptions(schemaOrderFlowV1, workflow.RegisterOptions{Name: schemaOrderWorkflow})
	r.RegisterWorkflowWithOptions(schemaInvoiceFlowV1, workflow.RegisterOptions{Name: schemaInvoiceWorkflow})
	r.RegisterActivityWithOptions(schemaChargeOrderV1, activity.RegisterOptions{Name: schemaChargeActivity})
	r.RegisterActivityWithOptions(schemaApproveInvoiceV1, activity.RegisterOptions{Name: schemaApproveActivity})
}
