package pf

import (
	"context"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/durabench/durabench/harness"
)

// runInfo is what the server says of one run of a workflow.
type runInfo struct {
	runID      string
	status     enumspb.WorkflowExecutionStatus
	size       int // history bytes
	events     int
	activities int    // completed activities in history
	reason     string // of a termination
	identity   string // who terminated it
	next       string // the run it continued as, if any
}

func describeRun(ctx context.Context, c client.Client, id, runID string) (*runInfo, error) {
	d, err := c.DescribeWorkflowExecution(ctx, id, runID)
	if err != nil {
		return nil, err
	}
	info := d.GetWorkflowExecutionInfo()
	r := &runInfo{runID: runID, status: info.GetStatus(), size: int(info.GetHistorySizeBytes()), events: int(info.GetHistoryLength())}
	events, err := harness.History(ctx, c, id, runID)
	if err != nil {
		return nil, err
	}
	r.activities = len(harness.EventsOf(events, enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED))
	if evs := harness.EventsOf(events, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED); len(evs) > 0 {
		a := evs[0].GetWorkflowExecutionTerminatedEventAttributes()
		r.reason, r.identity = a.GetReason(), a.GetIdentity()
	}
	if evs := harness.EventsOf(events, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW); len(evs) > 0 {
		r.next = evs[0].GetWorkflowExecutionContinuedAsNewEventAttributes().GetNewExecutionRunId()
	}
	return r, nil
}

// describeChain describes every run of a continue-as-new chain from its first.
func describeChain(ctx context.Context, c client.Client, id, firstRun string) ([]*runInfo, error) {
	var runs []*runInfo
	for runID := firstRun; runID != "" && len(runs) < 1000; {
		r, err := describeRun(ctx, c, id, runID)
		if err != nil {
			return nil, err
		}
		runs = append(runs, r)
		runID = r.next
	}
	return runs, nil
}
