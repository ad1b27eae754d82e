package ex

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/google/uuid"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/proto"
)

// Replayer replays recorded histories with worker.WorkflowReplayer and
// captures, through a workflow interceptor, what the workflow function
// returned during the replay, so that a test can compare replayed results
// with the recorded ones.
type Replayer struct {
	r       worker.WorkflowReplayer
	capture *replayCapture
}

// Replay is the outcome of replaying one history.
type Replay struct {
	Err      error // the replayer's error (a non-determinism error, for instance)
	Returned bool  // the workflow function returned during the replay
	Result   any   // what it returned
	WfErr    error // the error it returned (a *workflow.ContinueAsNewError for continue-as-new)
}

// NewReplayer returns a replayer with the workflows that register adds.
func NewReplayer(register func(worker.WorkflowRegistry)) (*Replayer, error) {
	capture := &replayCapture{outcomes: map[string]Replay{}}
	r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{
		Interceptors: []interceptor.WorkerInterceptor{capture},
	})
	if err != nil {
		return nil, fmt.Errorf("replayer: %w", err)
	}
	register(r)
	return &Replayer{r: r, capture: capture}, nil
}

// Replay replays h as a run of workflow id (which the history does not
// record; code that derives ids from it needs the original one). Each call
// gets its own run id so that outcomes do not mix.
func (r *Replayer) Replay(h *historypb.History, id string) Replay {
	runID := uuid.NewString()
	err := r.r.ReplayWorkflowHistoryWithOptions(quiet, h, worker.ReplayWorkflowHistoryOptions{
		OriginalExecution: workflow.Execution{ID: id, RunID: runID},
	})
	out := r.capture.take(runID)
	out.Err = err
	return out
}

// ReproducesResult reports whether the replayed result is the one recorded in
// h's closing event: the same payload for a completed run, the same input for
// the next run of a continue-as-new. It says why not otherwise.
func (rp Replay) ReproducesResult(h *historypb.History) (bool, string) {
	if rp.Err != nil {
		return false, "replay error: " + rp.Err.Error()
	}
	if !rp.Returned {
		return false, "the workflow function did not return during replay"
	}
	last := h.GetEvents()[len(h.GetEvents())-1]
	var recorded, replayed *commonpb.Payloads
	switch last.GetEventType() {
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
		if rp.WfErr != nil {
			return false, "replay returned error " + rp.WfErr.Error()
		}
		recorded = last.GetWorkflowExecutionCompletedEventAttributes().GetResult()
		p, err := converter.GetDefaultDataConverter().ToPayloads(rp.Result)
		if err != nil {
			return false, "encoding the replayed result: " + err.Error()
		}
		replayed = p
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
		var can *workflow.ContinueAsNewError
		if !errors.As(rp.WfErr, &can) {
			return false, fmt.Sprintf("replay returned %v, not continue-as-new", rp.WfErr)
		}
		recorded = last.GetWorkflowExecutionContinuedAsNewEventAttributes().GetInput()
		replayed = can.Input
	default:
		return false, "the history does not end with completion or continue-as-new but " + last.GetEventType().String()
	}
	if !proto.Equal(recorded, replayed) {
		return false, fmt.Sprintf("recorded %s, replayed %s", payloadText(recorded), payloadText(replayed))
	}
	return true, ""
}

func payloadText(p *commonpb.Payloads) string {
	var s string
	for _, pl := range p.GetPayloads() {
		s += string(pl.GetData())
	}
	return s
}

// FetchHistory reads the whole history of one run from the server.
func FetchHistory(ctx context.Context, c client.Client, id, runID string) (*historypb.History, error) {
	h := &historypb.History{}
	it := c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", id, err)
		}
		h.Events = append(h.Events, ev)
	}
	return h, nil
}

// quiet drops the replayer's logs: a failing replay is expected in some
// scenarios and its error is what the test records.
var quiet = log.NewStructuredLogger(slog.New(slog.DiscardHandler))

// replayCapture records, per run id, what workflow functions returned.
type replayCapture struct {
	interceptor.WorkerInterceptorBase
	mu       sync.Mutex
	outcomes map[string]Replay
}

func (c *replayCapture) InterceptWorkflow(ctx workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	i := &captureInbound{capture: c}
	i.Next = next
	return i
}

func (c *replayCapture) take(runID string) Replay {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.outcomes[runID]
	delete(c.outcomes, runID)
	return out
}

type captureInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	capture *replayCapture
}

func (i *captureInbound) ExecuteWorkflow(ctx workflow.Context, in *interceptor.ExecuteWorkflowInput) (any, error) {
	res, err := i.Next.ExecuteWorkflow(ctx, in)
	i.capture.mu.Lock()
	i.capture.outcomes[workflow.GetInfo(ctx).WorkflowExecution.RunID] = Replay{Returned: true, Result: res, WfErr: err}
	i.capture.mu.Unlock()
	return res, err
}
