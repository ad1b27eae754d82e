package op

import (
	"errors"
	"fmt"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// OP-02's workflows: a counter whose state the management operations change
// and read (signal, query, update, cancel, reset), and an echo that completes
// at once (closed runs for visibility queries, the schedule's action).

// Names of OP-02's workflows and messages, as registered and as the HTTP API
// and visibility queries name them.
const (
	apiCounterType  = "apiCounter"
	apiEchoType     = "apiEcho"
	apiAddSignal    = "api-add"    // adds its int argument to the count
	apiFinishSignal = "api-finish" // completes the run with the count
	apiCountQuery   = "api-count"  // the count
	apiSetUpdate    = "api-set"    // sets the count, returns the previous one; refuses a negative count
)

// apiScenarioAttr is the custom Keyword search attribute the harness's dev
// server registers on its namespaces at start.
const apiScenarioAttr = "DurabenchScenario"

// APICounter keeps a count from start: signals add to it, a query reads it,
// an update sets it. It returns the count when finished, and ends canceled
// (with the count) when its cancellation is requested.
func APICounter(ctx workflow.Context, start int) (int, error) {
	count := start
	if err := workflow.SetQueryHandler(ctx, apiCountQuery, func() (int, error) { return count, nil }); err != nil {
		return 0, err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, apiSetUpdate, func(_ workflow.Context, n int) (int, error) {
		prev := count
		count = n
		return prev, nil
	}, workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, n int) error {
		if n < 0 {
			return fmt.Errorf("count %d is negative", n)
		}
		return nil
	}}); err != nil {
		return 0, err
	}
	add := workflow.GetSignalChannel(ctx, apiAddSignal)
	finish := workflow.GetSignalChannel(ctx, apiFinishSignal)
	for done := false; !done; {
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(add, func(c workflow.ReceiveChannel, _ bool) {
			var n int
			c.Receive(ctx, &n)
			count += n
		})
		sel.AddReceive(finish, func(c workflow.ReceiveChannel, _ bool) {
			c.Receive(ctx, nil)
			done = true
		})
		sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {})
		sel.Select(ctx)
		if ctx.Err() != nil {
			return count, ctx.Err()
		}
	}
	return count, nil
}

// APIEcho returns its input.
func APIEcho(_ workflow.Context, s string) (string, error) { return s, nil }

func registerAPI(w worker.Registry) {
	w.RegisterWorkflowWithOptions(APICounter, workflow.RegisterOptions{Name: apiCounterType})
	w.RegisterWorkflowWithOptions(APIEcho, workflow.RegisterOptions{Name: apiEchoType})
}

// apiErrClass names the typed service error err is, as errors.As finds it:
// the class a caller can branch on. "none" for no error; an error of no
// Temporal service type is named by its Go type.
func apiErrClass(err error) string {
	var (
		nsNotFound *serviceerror.NamespaceNotFound
		notFound   *serviceerror.NotFound
		started    *serviceerror.WorkflowExecutionAlreadyStarted
		invalid    *serviceerror.InvalidArgument
		failedPre  *serviceerror.FailedPrecondition
	)
	switch {
	case err == nil:
		return "none"
	case errors.As(err, &nsNotFound):
		return "NamespaceNotFound"
	case errors.As(err, &notFound):
		return "NotFound"
	case errors.As(err, &started):
		return "WorkflowExecutionAlreadyStarted"
	case errors.As(err, &invalid):
		return "InvalidArgument"
	case errors.As(err, &failedPre):
		return "FailedPrecondition"
	default:
		return fmt.Sprintf("untyped %T", err)
	}
}
