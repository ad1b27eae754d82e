package vr

import (
	"fmt"
	"log/slog"
	"reflect"
	"sync"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// schemaReplayer replays histories against the v2 workflows with a given
// data converter, and captures what the workflow function returned, so that
// a replay is judged on its result as well as on its commands.
type schemaReplayer struct {
	r       worker.WorkflowReplayer
	dc      converter.DataConverter
	capture *schemaCapture
}

// schemaReplay is the outcome of one replay.
type schemaReplay struct {
	Err      string // the replayer's error, "" if none
	Result   any    // what the workflow function returned
	Recorded any    // the result the history recorded, decoded into Result's type with the replayer's converter
	Same     bool   // Result equals Recorded
}

func newSchemaReplayer(dc converter.DataConverter) (*schemaReplayer, error) {
	capture := &schemaCapture{results: map[string]capturedResult{}}
	r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{
		DataConverter: dc,
		Interceptors:  []interceptor.WorkerInterceptor{capture},
	})
	if err != nil {
		return nil, fmt.Errorf("replayer: %w", err)
	}
	registerSchemaWorkflows(r)
	return &schemaReplayer{r: r, dc: dc, capture: capture}, nil
}

// quietReplay drops the replayer's logs: the error it returns is the record.
var quietReplay = log.NewStructuredLogger(slog.New(slog.DiscardHandler))

// replay replays h, which must end with the run's completion.
func (r *schemaReplayer) replay(h *historypb.History) schemaReplay {
	runID := uuid.NewString()
	err := r.r.ReplayWorkflowHistoryWithOptions(quietReplay, h, worker.ReplayWorkflowHistoryOptions{
		OriginalExecution: workflow.Execution{ID: "vr04-replay", RunID: runID},
	})
	var out schemaReplay
	if err != nil {
		out.addErr(err.Error())
	}
	got, ok := r.capture.take(runID)
	switch {
	case !ok:
		out.addErr("the workflow function did not return during replay")
		return out
	case got.err != nil:
		out.addErr(fmt.Sprintf("the workflow function returned error %v", got.err))
		return out
	case got.result == nil:
		out.addErr("the workflow function returned no result")
		return out
	}
	out.Result = got.result
	last := h.GetEvents()[len(h.GetEvents())-1]
	if last.GetEventType() != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED {
		out.addErr("the history ends with " + last.GetEventType().String() + ", not a completion")
		return out
	}
	ptr := reflect.New(reflect.TypeOf(got.result))
	if err := r.dc.FromPayloads(last.GetWorkflowExecutionCompletedEventAttributes().GetResult(), ptr.Interface()); err != nil {
		out.addErr("decoding the recorded result: " + err.Error())
		return out
	}
	out.Recorded = ptr.Elem().Interface()
	out.Same = reflect.DeepEqual(out.Recorded, out.Result)
	return out
}

func (s *schemaReplay) addErr(msg string) {
	if s.Err != "" {
		s.Err += "; "
	}
	s.Err += msg
}

// schemaCapture records, by run id, what workflow functions returned.
type schemaCapture struct {
	interceptor.WorkerInterceptorBase
	mu      sync.Mutex
	results map[string]capturedResult
}

type capturedResult struct {
	result any
	err    error
}

func (c *schemaCapture) InterceptWorkflow(_ workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	i := &schemaCaptureInbound{capture: c}
	i.Next = next
	return i
}

func (c *schemaCapture) take(runID string) (capturedResult, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.results[runID]
	delete(c.results, runID)
	return r, ok
}

type schemaCaptureInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	capture *schemaCapture
}

func (i *schemaCaptureInbound) ExecuteWorkflow(ctx workflow.Context, in *interceptor.ExecuteWorkflowInput) (any, error) {
	res, err := i.Next.ExecuteWorkflow(ctx, in)
	i.capture.mu.Lock()
	i.capture.results[workflow.GetInfo(ctx).WorkflowExecution.RunID] = capturedResult{result: res, err: err}
	i.capture.mu.Unlock()
	return res, err
}
