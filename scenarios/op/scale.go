package op

import (
	"context"
	"os"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/durabench/durabench/harness/ledger"
)

// OP-04's workflows and activities. Activities report the process id of the
// worker that ran them, so that a test sees which worker process took which
// task; the job activity also writes each execution to an external ledger,
// which counts executions across worker processes that come and go.

// scaleActivityTimeout bounds one attempt of every OP-04 activity: far above
// their latencies, so a timeout in history means a lost task, not a slow one.
const scaleActivityTimeout = time.Minute

// ScaleNoopWorkflow runs one activity that does nothing, as omes'
// workflow_with_single_noop_activity does, and returns the pid of the worker
// that ran it.
func ScaleNoopWorkflow(ctx workflow.Context) (int, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: scaleActivityTimeout})
	var pid int
	err := workflow.ExecuteActivity(ctx, ScaleNoopActivity).Get(ctx, &pid)
	return pid, err
}

// ScaleNoopActivity does nothing but say which process ran it.
func ScaleNoopActivity(context.Context) (int, error) { return os.Getpid(), nil }

// ScaleBatchWorkflow runs n activities of fixed latency at once and returns
// the pid of the worker that ran each.
func ScaleBatchWorkflow(ctx workflow.Context, n int, latency time.Duration) ([]int, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: scaleActivityTimeout})
	futures := make([]workflow.Future, n)
	for i := range futures {
		futures[i] = workflow.ExecuteActivity(ctx, ScaleSleepActivity, latency)
	}
	pids := make([]int, n)
	for i, f := range futures {
		if err := f.Get(ctx, &pids[i]); err != nil {
			return nil, err
		}
	}
	return pids, nil
}

// ScaleSleepActivity holds its slot for latency: the activity's own work,
// which makes the workload bound by the worker's activity slots.
func ScaleSleepActivity(ctx context.Context, latency time.Duration) (int, error) {
	if err := scaleWork(ctx, latency); err != nil {
		return 0, err
	}
	return os.Getpid(), nil
}

// scaleWork is an activity's fixed latency; it ends early only when the
// activity is cancelled.
func scaleWork(ctx context.Context, latency time.Duration) error {
	select {
	case <-time.After(latency):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ScaleJobResult is what one job reports: who ran it and how long its task
// waited in the queue (the server's scheduled and started times).
type ScaleJobResult struct {
	PID             int
	Attempt         int32
	ScheduleToStart time.Duration
}

// ScaleJobWorkflow runs one job activity of fixed latency; no retry, so a
// lost or failed task shows as a failed run.
func ScaleJobWorkflow(ctx workflow.Context, latency time.Duration) (ScaleJobResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: scaleActivityTimeout,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	var res ScaleJobResult
	err := workflow.ExecuteActivity(ctx, (*ScaleActivities).Job, latency).Get(ctx, &res)
	return res, err
}

// ScaleOpenWorkflow completes on its first workflow task: a run started
// while no worker polls its queue stays open, its task queued, until a
// worker comes.
func ScaleOpenWorkflow(workflow.Context) error { return nil }

// ScaleActivities are the activities that write to a ledger.
type ScaleActivities struct {
	Ledger string
}

// Job records its start in the ledger, works for latency, records its end
// and reports its pid, attempt and schedule-to-start latency.
func (a *ScaleActivities) Job(ctx context.Context, latency time.Duration) (ScaleJobResult, error) {
	info := activity.GetInfo(ctx)
	key := info.WorkflowExecution.ID
	if err := ledger.Append(a.Ledger, ledger.Entry{Key: key, Step: 1, Attempt: info.Attempt, Phase: ledger.Start}); err != nil {
		return ScaleJobResult{}, err
	}
	if err := scaleWork(ctx, latency); err != nil {
		return ScaleJobResult{}, err
	}
	if err := ledger.Append(a.Ledger, ledger.Entry{Key: key, Step: 1, Attempt: info.Attempt, Phase: ledger.Done}); err != nil {
		return ScaleJobResult{}, err
	}
	return ScaleJobResult{PID: os.Getpid(), Attempt: info.Attempt, ScheduleToStart: info.StartedTime.Sub(info.ScheduledTime)}, nil
}

// registerScale registers OP-04's workflows and activities; ledger may be
// empty when no job runs.
func registerScale(r worker.Registry, ledgerPath string) {
	r.RegisterWorkflow(ScaleNoopWorkflow)
	r.RegisterWorkflow(ScaleBatchWorkflow)
	r.RegisterWorkflow(ScaleJobWorkflow)
	r.RegisterWorkflow(ScaleOpenWorkflow)
	r.RegisterActivity(ScaleNoopActivity)
	r.RegisterActivity(ScaleSleepActivity)
	r.RegisterActivity(&ScaleActivities{Ledger: ledgerPath})
}
