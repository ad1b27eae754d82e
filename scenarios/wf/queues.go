package wf

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// jobs names the Jobs activity in workflow code.
var jobs *Jobs

// Jobs holds the queued-work activity; each worker of a test gets its own,
// named so that the test sees where a job ran.
type Jobs struct {
	Name  string
	Probe *Probe
}

// JobInput is one unit of queued work, tagged for the probe.
type JobInput struct {
	Tag      string
	Duration time.Duration
}

// Job does the work (it takes Duration) and returns the worker's name.
func (j *Jobs) Job(ctx context.Context, in JobInput) (string, error) {
	i := j.Probe.begin(in.Tag, activity.GetInfo(ctx).Attempt)
	err := work(ctx, in.Duration, false)
	j.Probe.end(i, err != nil)
	return j.Name, err
}

// DispatchInput asks DispatchWorkflow to queue Count jobs, tagged Tag-0,
// Tag-1, ..., on TaskQueue with the given priority and fairness settings.
type DispatchInput struct {
	TaskQueue string
	Tag       string
	Count     int
	Duration  time.Duration
	Priority  temporal.Priority
}

// JobTag is the tag of job i of a dispatch.
func JobTag(tag string, i int) string { return fmt.Sprintf("%s-%d", tag, i) }

// DispatchWorkflow schedules every job at once and waits for all of them;
// it returns how many ran on each worker.
func DispatchWorkflow(ctx workflow.Context, in DispatchInput) (map[string]int, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           in.TaskQueue,
		StartToCloseTimeout: time.Minute,
		Priority:            in.Priority,
		// Every job goes through the queue, never straight to a local worker.
		DisableEagerExecution: true,
	})
	futures := make([]workflow.Future, in.Count)
	for i := range futures {
		futures[i] = workflow.ExecuteActivity(ctx, jobs.Job, JobInput{Tag: JobTag(in.Tag, i), Duration: in.Duration})
	}
	ran := map[string]int{}
	for _, f := range futures {
		var name string
		if err := f.Get(ctx, &name); err != nil {
			return ran, err
		}
		ran[name]++
	}
	return ran, nil
}
